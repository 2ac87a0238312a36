"""`convlayer shape --transpose` and `convlayer explain --transpose`: numbers, figures, errors."""

import numpy as np
import pytest

import convlayer
from convlayer import shapes
from convlayer.cli.main import main


@pytest.mark.parametrize("argv, expected", [
    (["--input", "16x16x256", "--kernel", "4", "--filters", "128", "--strides", "2", "--padding", "1"],
     ["output      32 x 32 x 128", "(16 - 1) * 2 - 1 - 1 + 4 + 0 = 32", "top 1 and bottom 1 cropped",
      "(4 * 4 * 256 + 1) * 128 = 524,416"]),
    (["--input", "64x64x64", "--kernel", "3", "--filters", "32", "--strides", "2", "--padding", "1",
      "--output-padding", "1"],
     ["output      128 x 128 x 32", "(64 - 1) * 2 - 1 - 1 + 3 + 1 = 128", "output_padding 1 x 1"]),
    (["--input", "3x3x1", "--kernel", "3", "--filters", "2", "--strides", "3x2", "--padding", "0",
      "--output-shape", "10x8"],
     ["output      10 x 8 x 2", "H' = 10, as output_shape asks", "1 row of zeros at the bottom",
      "1 column of zeros at the right"]),
    (["--input", "3x3x1", "--kernel", "3", "--strides", "2"],
     ["H' = H * s = 3 * 2 = 6", "max((3 - 1) * 2 + 3 - 6, 0) = 1: top 0, bottom 1 cropped"]),
    (["--input", "5x5x1", "--kernel", "3", "--strides", "2", "--padding", "valid", "--dilation", "2"],
     ["Fh_eff = (Fh - 1) * d + 1 = (3 - 1) * 2 + 1 = 5",
      "H' = H * s + max(Fh_eff - s, 0) = 5 * 2 + max(5 - 2, 0) = 13"]),
])
def test_shape_transpose_prints_sizes_and_formulas(capsys, argv, expected):
    assert main(["shape", "--transpose"] + argv) == 0
    text = capsys.readouterr().out
    for line in expected:
        assert line in text


def test_shape_transpose_numbers_are_the_ops():
    geom = shapes.transpose_geometry((64, 64, 64), (3, 3, 32, 64), 2, 1, 1)
    y = convlayer.conv_transpose2d(np.zeros((64, 64, 64), np.float32), np.zeros((3, 3, 32, 64), np.float32),
                                   strides=2, padding=1, output_padding=1)
    assert y.shape == geom.output_shape == (128, 128, 32)


@pytest.mark.parametrize("argv, message", [
    (["shape", "--transpose", "--input", "3x3x1", "--kernel", "3", "--strides", "3x2", "--output-shape", "11x8"],
     "output_shape height 11 is not one conv2d maps back to x height 3"),
    (["shape", "--transpose", "--input", "3x3x1", "--kernel", "3", "--strides", "2", "--output-padding", "2"],
     "output_padding must be smaller than the stride or the dilation"),
    (["explain", "--transpose", "--input", "3x3", "--channels", "2"],
     "--transpose draws one channel's geometry; leave out --channels"),
    (["explain", "--input", "3x3", "--output-padding", "1"], "--output-padding needs --transpose"),
    (["explain", "--transpose", "--input", "1x1", "--kernel-size", "5", "--padding", "full"],
     "padding 'full' crops more than the kernel spreads"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explain_transpose_writes_the_figure_and_the_formulas(capsys, tmp_path):
    target = tmp_path / "up.png"
    assert main(["explain", "--transpose", "--input", "3x3", "--kernel-size", "3", "--strides", "2", "-o",
                 str(target)]) == 0
    text = capsys.readouterr().out
    assert target.stat().st_size > 1000
    assert "H' = H * s = 3 * 2 = 6" in text
    assert "output pixels sum 1 to 4 stamps" in text and "the checkerboard" in text


@pytest.mark.parametrize("options", [
    dict(strides=2, padding="same"), dict(strides=2, padding=1, output_padding=1), dict(strides=3, padding="valid"),
    dict(strides=(3, 2), padding=0, output_shape=(10, 8)), dict(strides=2, padding=3, dilation=2),
])
def test_overlap_counts_are_the_op_on_ones(options):
    """The numbers in the figure's output cells: conv_transpose2d of ones with a kernel of ones."""
    from convlayer.explain.transpose import overlap_counts, transpose_figure

    geom = shapes.transpose_geometry((3, 3, 1), (3, 3, 1, 1), options.pop("strides"), options.pop("padding"),
                                     options.get("output_padding"), options.get("output_shape"),
                                     options.get("dilation", 1))
    ones = convlayer.conv_transpose2d(np.ones((3, 3, 1)), np.ones((3, 3, 1, 1)), strides=geom.strides,
                                      padding=geom.pads, output_shape=(geom.out_h, geom.out_w), dilation=geom.dilation)
    np.testing.assert_array_equal(overlap_counts(geom), ones[..., 0])
    figure = transpose_figure((3, 3), (3, 3), strides=geom.strides, padding=geom.pads,
                              output_shape=(geom.out_h, geom.out_w), dilation=geom.dilation)
    assert len(figure.axes) == 4


def test_the_readme_example_runs():
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Transposed convolution"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {"np": np, "convlayer": convlayer}
    exec(compile(block, "README transposed convolution", "exec"), namespace)
    assert namespace["grads"].grad_x.shape == (2, 16, 16, 256)
    sizes = [line.split("# ")[1] for line in block.splitlines() if ".shape" in line and "#" in line]
    assert sizes[0].startswith("(2, 32, 32, 128)")
    assert convlayer.conv_transpose2d(namespace["y"], namespace["kernel"], strides=2,
                                      output_shape=(31, 31)).shape == (2, 31, 31, 128)


@pytest.mark.parametrize("groups", [1, 4])
def test_shape_transpose_channels_first_prints_pytorchs_layouts(capsys, groups):
    """With --data-format channels_first the report reads as PyTorch's: input (C, H, W), the
    kernel as ConvTranspose2d.weight (C, K/groups, Fh, Fw), output (K, H', W')."""
    torch = pytest.importorskip("torch")
    layer = torch.nn.ConvTranspose2d(64, 16, 3, stride=2, padding=1, output_padding=1, groups=groups)
    out = layer(torch.zeros(1, 64, 32, 32)).shape[1:]
    argv = ["shape", "--transpose", "--input", "64x32x32", "--kernel-size", "3", "--filters", "16", "--strides", "2",
            "--padding", "1", "--output-padding", "1", "--groups", str(groups), "--data-format", "channels_first"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[1:] == "64 x 32 x 32".split()
    assert lines[1].split("(")[0].split()[1:] == " x ".join(map(str, layer.weight.shape)).split()
    assert lines[2].split()[1:] == " x ".join(map(str, out)).split()
