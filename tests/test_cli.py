"""The command line: numbers, figures, errors, and what `import convlayer` pulls in."""

import subprocess
import sys

import numpy as np
import pytest

from convlayer.cli.main import main


def test_shape_prints_the_readme_worked_example(capsys):
    assert main(["shape", "--input", "224x224x3", "--kernel-size", "7x7", "--filters", "64",
                 "--strides", "2", "--padding", "same"]) == 0
    text = capsys.readouterr().out
    assert "output      112 x 112 x 64" in text
    assert "ceil(224 / 2) = 112" in text
    assert "max((112 - 1) * 2 + 7 - 224, 0) = 5: top 2, bottom 3" in text
    assert "left 2, right 3" in text
    assert "(7 * 7 * 3 + 1) * 64 = 9,472" in text


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--input", "8x32x32x16", "--kernel-size", "3", "--filters", "32", "--padding", "valid",
          "--dilation", "2", "--groups", "4", "--no-bias"],
         ["output      8 x 28 x 28 x 32", "Fh_eff = (Fh - 1) * d + 1 = (3 - 1) * 2 + 1 = 5",
          "3 * 3 * 16 / 4 * 32 = 1,152"]),
        (["--input", "6x6", "--kernel-size", "3", "--strides", "2", "--padding", "0,1,0,1"],
         ["output      3 x 3 x 1", "floor((6 + 0 + 1 - 3) / 2) + 1 = 3; top 0, bottom 1"]),
        (["--input", "5x5x1", "--kernel-size", "4", "--padding", "same_lower"],
         ["top 2, bottom 1", "(the odd zero goes to the top)"]),
        (["--input", "7x9x3", "--kernel-size", "3x5", "--padding", "full", "--strides", "2x1"],
         ["output      5 x 13 x 1", "floor((7 + 2 + 2 - 3) / 2) + 1 = 5"]),
    ],
)
def test_shape_variants(capsys, argv, expected):
    assert main(["shape"] + argv) == 0
    text = capsys.readouterr().out
    for line in expected:
        assert line in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["shape", "--input", "6x6", "--kernel-size", "9", "--padding", "valid"],
         "convlayer shape: error: kernel height 9 does not fit the padded input height 6"),
        (["shape", "--input", "6x6x3", "--kernel-size", "3", "--padding", "smae"], "got 'smae'"),
        (["shape", "--input", "6y6", "--kernel-size", "3"], "--input must be HxW or HxWxC or NxHxWxC; got '6y6'"),
        (["shape", "--input", "6x6x3", "--kernel-size", "3", "--strides", "0"], "strides must be positive integers"),
        (["shape", "--input", "6x6x3"], "--kernel-size is required, e.g. --kernel-size 3x3"),
        (["demo", "--photo", "moon"], "invalid choice: 'moon'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code = _run(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def _run(argv):
    """main()'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_demo_writes_a_real_figure(tmp_path, capsys):
    from PIL import Image

    target = tmp_path / "figure.png"
    assert main(["demo", "-o", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    picture = np.asarray(Image.open(target).convert("L"), dtype=float)
    assert picture.shape[0] > 300 and picture.shape[1] > 1000
    assert picture.std() > 20  # not blank: photo, maps and colour bars
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_demo_layer_values():
    """The demo's layer is the tutorial's: edge with bias 1, blur with bias 0, then ReLU."""
    from convlayer.cli.demo import apply_layer

    image = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    maps = apply_layer(image)
    padded = np.pad(image.astype(float).sum(axis=2), 1)
    edge = 8 * padded[1:-1, 1:-1] - sum(padded[1 + i : 7 + i, 1 + j : 8 + j]
                                        for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0))
    blur = sum(padded[1 + i : 7 + i, 1 + j : 8 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
    np.testing.assert_allclose(maps[..., 0], np.maximum(edge + 1, 0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(maps[..., 1], blur, rtol=1e-5)


@pytest.mark.parametrize("command", [["demo"], ["explain", "--input", "5x5"]])
def test_output_in_a_missing_folder_names_the_users_path(tmp_path, capsys, command):
    target = tmp_path / "missing-folder" / "x.png"
    assert main(command + ["-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convlayer {command[0]}: error:") and len(err.strip().splitlines()) == 1
    assert f"-o {target}: the folder {target.parent} does not exist" in err
    assert ".tmp" not in err  # not the temporary name the file would have been written under


def test_atomic_write_into_a_missing_folder_names_the_destination(tmp_path):
    from convlayer._files import atomic_write

    target = tmp_path / "missing" / "out.txt"
    with pytest.raises(FileNotFoundError, match="does not exist") as caught:
        atomic_write(target, lambda name: None)
    assert str(caught.value) == f"cannot write {target}: the folder {target.parent} does not exist"


def test_version(capsys):
    import convlayer

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"convlayer {convlayer.__version__}\n" == "convlayer 0.1.0\n"


def test_python_dash_m_convlayer_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "convlayer", "shape", "--input", "4x4", "--kernel-size", "3"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "output      4 x 4 x 1" in out.stdout
    version = subprocess.run([sys.executable, "-m", "convlayer", "--version"], capture_output=True, text=True)
    assert version.stdout == "convlayer 0.1.0\n"


def test_a_closed_pipe_on_stdout_ends_quietly():
    """`convlayer shape ... | head -1`: the reader goes away; no 'Broken pipe', no traceback."""
    import os

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes
    try:
        out = subprocess.run([sys.executable, "-m", "convlayer", "shape", "--input", "224x224x3",
                              "--kernel-size", "7", "--sharing"], stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert out.stderr == ""
    assert out.returncode == 141  # 128 + SIGPIPE, as a shell reports a reader that went away


def test_banks_without_sharing_is_an_error_naming_both(capsys):
    assert _run(["shape", "--input", "8x8x1", "--kernel-size", "3", "--banks", "2x2"]) == 2
    err = capsys.readouterr().err
    assert "--banks 2x2 goes with --sharing" in err and len(err.strip().splitlines()) == 1
    assert _run(["explain", "--input", "8x8", "--banks", "2x2"]) == 2
    err = capsys.readouterr().err
    assert "--banks goes with --sharing tiled or regions; got no --sharing" in err


@pytest.mark.parametrize("argv", [
    ["shape", "--input", "4x4x1", "--kernel-size", "3", "--sharing", "--banks", "8x8"],
    ["explain", "--input", "4x4", "--sharing", "tiled", "--banks", "8x8"],
    ["explain", "--input", "4x4", "--sharing", "regions", "--banks", "8x8"],
])
def test_more_banks_than_output_pixels_is_an_error(tmp_path, capsys, argv):
    """64 banks on a 4x4 output grid: the message names --banks, what came and the most allowed."""
    assert _run(argv + (["-o", str(tmp_path / "x.png")] if argv[0] == "explain" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("error: --banks 8x8: 8x8 banks on a 4x4 output grid; at most 4x4 "
                        "(one bank per output pixel)")
    assert not (tmp_path / "x.png").exists()


def test_shape_of_a_channels_first_input(capsys):
    """PyTorch's 3x224x224 with --data-format channels_first: C=3, the numbers of Conv2d(3, 64, 7, 2, 3)."""
    import torch
    assert main(["shape", "--input", "3x224x224", "--data-format", "channels_first", "--kernel-size", "7",
                 "--filters", "64", "--strides", "2", "--padding", "3"]) == 0
    captured = capsys.readouterr()
    expected = torch.nn.Conv2d(3, 64, 7, 2, 3)(torch.zeros(1, 3, 224, 224)).shape[1:]
    assert f"output      {' x '.join(map(str, expected))}\n" in captured.out  # 64 x 112 x 112
    assert "input       3 x 224 x 224" in captured.out
    assert "kernel      64 x 3 x 7 x 7  (K x C x Fh x Fw)" in captured.out
    assert "(7 * 7 * 3 + 1) * 64 = 9,472" in captured.out
    assert captured.err == ""


def test_shape_warns_when_the_input_looks_channels_first(capsys):
    assert main(["shape", "--input", "3x224x224", "--kernel-size", "3"]) == 0
    err = capsys.readouterr().err
    assert err == ("convlayer shape: warning: --input 3x224x224 is read channels-last, as H=3, W=224, C=224; "
                   "for PyTorch's CxHxW give --data-format channels_first\n")
    assert main(["shape", "--input", "3x224x224", "--kernel-size", "3", "--data-format", "channels_last"]) == 0
    assert capsys.readouterr().err == ""  # said explicitly: no warning
    assert main(["shape", "--input", "224x224x3", "--kernel-size", "3"]) == 0
    assert capsys.readouterr().err == ""


def test_shape_usage_names_the_forms_it_parses(capsys):
    with pytest.raises(SystemExit):
        main(["shape", "--help"])
    text = capsys.readouterr().out
    assert "[NxH]xWxC" not in text
    assert "HxW, HxWxC or NxHxWxC" in " ".join(text.split())


def test_help_has_examples(capsys):
    for command in ("shape", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_import_convlayer_imports_only_numpy():
    code = ("import sys, convlayer; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'scipy', 'matplotlib', 'skimage', 'PIL', 'torch', 'dask', 'tqdm', 'sklearn', 'numba', "
            "'llvmlite', 'threadpoolctl', 'argparse'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "convlayer.cli.main", "shape", "--input", "4x4",
                          "--kernel-size", "3"], capture_output=True, text=True)
    assert out.returncode == 0 and "output      4 x 4 x 1" in out.stdout


def test_shape_sharing_compares_parameter_counts(capsys):
    assert main(["shape", "--input", "224x224x3", "--kernel-size", "7", "--filters", "64", "--strides", "2",
                 "--sharing", "--banks", "2x3"]) == 0
    text = capsys.readouterr().out
    assert "shared    (7 * 7 * 3 + 1) * 64 " in text and "=           9,472" in text
    assert "tiled     (7 * 7 * 3 + 1) * 64 * (2 * 3)" in text and f"{9472 * 6:,}" in text
    assert "unshared  (7 * 7 * 3 + 1) * 64 * (112 * 112)" in text and f"{9472 * 112 * 112:,}" in text


def _broken_import(name):
    """An ImportError raised inside an installed package, as a version clash gives."""
    return ImportError(f"cannot import name 'collections_to_dsk' from '{name}.base'", name=f"{name}.base")


@pytest.mark.parametrize("error, expected", [
    (ModuleNotFoundError("No module named 'sklearn'", name="sklearn"),
     "needs the package 'sklearn': pip install 'convlayer[train]'"),
    (ModuleNotFoundError("No module named 'no_such_pkg'", name="no_such_pkg"),
     "needs the package 'no_such_pkg'"),
])
def test_a_missing_optional_package_gets_the_install_hint(error, expected, monkeypatch):
    from convlayer import _optional

    monkeypatch.setattr(_optional.importlib.util, "find_spec", lambda name: None)
    assert _optional.describe(error) == expected


def test_an_installed_but_broken_package_is_not_told_to_install_itself(monkeypatch, capsys, tmp_path):
    from PIL import Image

    from convlayer import _optional
    from convlayer.cli import _stream

    Image.new("L", (4, 4)).save(tmp_path / "in.png")

    def broken():
        raise _broken_import("numpy")  # installed here; the message must not say 'pip install'

    monkeypatch.setattr(_stream, "_require_dask", broken)
    assert main(["filter", str(tmp_path / "in.png"), "-k", "edge", "--save-zarr",
                 "-o", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "pip install" not in line
    assert "the package 'numpy' is installed but does not import: cannot import name" in line
    assert f"found numpy {np.__version__}" in line
    assert _optional.describe(_broken_import("numpy")) in line
