"""convlayer explain: the numbers drawn come from shapes, the files decode, the arithmetic is conv2d's."""

import io
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from convlayer import conv2d, explain, kernels, shapes
from convlayer.cli.main import main
from convlayer.explain import formulas
from convlayer.nn import AvgPool2D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU, Sequential
from convlayer.sharing import kernel_index

pytest.importorskip("matplotlib")
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402


def _texts(figure) -> list:
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


# The numbers: annotations against convlayer.shapes.

PADDINGS = ["same", "same_lower", "valid", "full", 1, (0, 2)]  # (0, 2): 0 before, 2 after, on each axis
GRID = list(itertools.product([1, 2, 5, 6, 7], [1, 2, 3, 4], [1, 2, 3], [1, 2], PADDINGS))


def _expected(size, kernel, stride, dilation, padding):
    """Output size and pads from shapes, or None where shapes refuses the layer."""
    try:
        out = shapes.output_size(size, kernel, stride, padding, dilation)
    except ValueError:
        return None
    return out, shapes.pad_amounts(size, kernel, stride, padding, dilation)


@pytest.mark.parametrize("size, kernel, stride, dilation, padding", GRID)
def test_annotations_are_the_numbers_of_shapes(size, kernel, stride, dilation, padding):
    width = size + 3  # height and width differ, so each axis is checked on its own
    padding_2d = (padding, padding) if isinstance(padding, tuple) else padding
    height_case = _expected(size, kernel, stride, dilation, padding)
    width_case = _expected(width, kernel, stride, dilation, padding)
    if height_case is None or width_case is None:
        with pytest.raises(ValueError, match="does not fit"):
            explain.annotations((size, width), kernel, strides=stride, padding=padding_2d, dilation=dilation)
        return
    notes = explain.annotations((size, width), kernel, strides=stride, padding=padding_2d, dilation=dilation)
    assert notes.output_hw == (height_case[0], width_case[0])
    assert notes.pads == (height_case[1], width_case[1])
    assert notes.padded_hw == (size + sum(height_case[1]), width + sum(width_case[1]))
    for axis, (n, (out, (before, after))) in enumerate([(size, height_case), (width, width_case)]):
        labels = notes.axes[axis]
        span = shapes.span(kernel, dilation)
        assert (labels.size, labels.span, labels.out, labels.pads) == (n, span, out, (before, after))
        text = "\n".join(labels.formulas)
        first, second = explain.SIDES[axis]
        if padding in ("same", "same_lower"):
            assert f"ceil({n} / {stride}) = {out}" in text
            assert text.endswith(f"+ {span} - {n}, 0) = {before + after}: {first} {before}, {second} {after}")
        elif padding == "valid":
            assert f"ceil(({n} - {span} + 1) / {stride}) = {out}" in text
        else:
            assert f"floor(({n} + {before} + {after} - {span}) / {stride}) + 1 = {out}" in text
        if dilation > 1:
            assert f"({kernel} - 1) * {dilation} + 1 = {span}" in labels.formulas[0]


def test_tensorflow_same_puts_the_odd_zero_after():
    notes = explain.annotations(6, 3, strides=2, padding="same")
    assert notes.pads == ((0, 1), (0, 1))
    assert explain.annotations(6, 3, strides=2, padding="same_lower").pads == ((1, 0), (1, 0))


@pytest.mark.parametrize("sharing, banks", [("shared", None), ("tiled", (2, 2)), ("regions", (2, 3)),
                                            ("unshared", None)])
@pytest.mark.parametrize("channels, filters, bias", [(1, 1, True), (3, 2, True), (4, 8, False)])
def test_parameter_count_comes_from_shapes(sharing, banks, channels, filters, bias):
    notes = explain.annotations((6, 7), (3, 2), strides=1, channels=channels, filters=filters, bias=bias,
                                sharing=sharing, banks=banks)
    expected = shapes.num_params((3, 2), channels, filters, bias=bias, sharing=sharing,
                                 output_size=notes.output_hw, regions=banks, tiles=banks)
    assert notes.params == expected
    assert notes.params_formula.endswith(f"= {expected:,}")
    per_bank = f"(2 * 3 * {channels} + 1) * {filters}" if bias else f"2 * 3 * {channels} * {filters}"
    assert per_bank in notes.params_formula


def test_the_issue_parameter_formula():
    assert explain.annotations(5, 3, channels=3, filters=2).params_formula == (
        "parameters = (Fw * Fh * C + 1) * K = (3 * 3 * 3 + 1) * 2 = 56")


@pytest.mark.parametrize("sharing, banks", [("tiled", (2, 3)), ("regions", (2, 2)), ("unshared", None),
                                            ("shared", None)])
def test_bank_numbers_follow_kernel_index(sharing, banks):
    notes = explain.annotations((7, 5), 3, sharing=sharing, banks=banks)
    rows, cols = kernel_index(7, 5, sharing, notes.banks)
    np.testing.assert_array_equal(explain.bank_numbers(notes), rows * notes.banks[1] + cols)


# The formula text: one module writes it for the figures and for `convlayer shape`.

FORMULA_LAYERS = [  # (input HxW, kernel, strides, padding word for explain, --padding for shape, dilation)
    ("6x6", 3, 2, "same", "same", 1), ("5x5", 4, 1, "same_lower", "same_lower", 1),
    ("7x9", 3, 2, "valid", "valid", 2), ("7x7", 3, 2, "full", "full", 1),
    ("6x6", 3, 2, ((0, 1), (2, 0)), "0,1,2,0", 1), ("224x224", 7, 2, "same", "same", 1),
]


@pytest.mark.parametrize("hw, kernel, stride, padding, argument, dilation", FORMULA_LAYERS)
def test_explain_and_shape_write_the_formulas_of_one_module(capsys, hw, kernel, stride, padding, argument,
                                                             dilation):
    h, w = map(int, hw.split("x"))
    notes = explain.annotations((h, w), kernel, strides=stride, padding=padding, dilation=dilation)
    assert main(["shape", "--input", hw, "--kernel-size", str(kernel), "--strides", str(stride), "--padding",
                 argument, "--dilation", str(dilation)]) == 0
    printed = capsys.readouterr().out
    for axis, labels in enumerate(notes.axes):
        numbers = (labels.size, labels.kernel, labels.stride, labels.dilation, labels.pads, labels.out,
                   notes.padding)
        figure = formulas.axis_formulas(axis, *numbers)
        report = formulas.axis_formulas(axis, *numbers, report=True)
        assert labels.formulas == figure
        assert all(line in printed for line in report)
        assert figure[:-1] == report[:-1]  # they differ only in what the last line says about the sides
        core = report[-1].split(";")[0].split(" (the odd zero")[0]
        assert figure[-1].startswith(core)


@pytest.mark.parametrize("fh, fw, c, k, bias, groups", [(3, 2, 3, 8, True, 1), (5, 1, 16, 32, False, 4),
                                                         (7, 7, 6, 64, True, 2)])
def test_the_parameter_formula_states_the_count_of_shapes(fh, fw, c, k, bias, groups):
    count = shapes.num_params((fh, fw), c, k, bias=bias, groups=groups)
    report = formulas.params_formula(fh, fw, c, k, count, bias=bias, groups=groups, report=True)
    figure = formulas.params_formula(fh, fw, c, k, count, bias=bias, groups=groups)
    channels = f"{c} / {groups}" if groups > 1 else f"{c}"
    assert report.endswith(f"{fh} * {fw} * {channels}{' + 1)' if bias else ''} * {k} = {count:,}")
    assert figure.endswith(f"{fw} * {fh} * {channels}{' + 1)' if bias else ''} * {k} = {count:,}")
    assert formulas.params_numbers(fh, fw, c, k, bias=bias, groups=groups, grid=(2, 3)) == (
        report.split(" = ")[1] + " * (2 * 3)")


# The figures draw those numbers.


@pytest.mark.parametrize("input_hw, kernel, strides, padding, dilation", [
    (6, 3, 2, "same", 1), (7, 3, 2, "same", 1), ((5, 8), (3, 2), (1, 2), "valid", 1),
    (7, 3, 1, "same", 2), (6, 4, 1, ((0, 2), (3, 1)), 1), (40, 5, 3, "same", 1),
])
def test_sliding_figure_labels_are_the_annotations(input_hw, kernel, strides, padding, dilation):
    notes = explain.annotations(input_hw, kernel, strides=strides, padding=padding, dilation=dilation)
    figure = explain.sliding_figure(input_hw, kernel, strides=strides, padding=padding, dilation=dilation)
    texts = _texts(figure)
    (top, bottom), (left, right) = notes.pads
    for label in (f"top: {top}", f"bottom: {bottom}", f"left\n{left}", f"right\n{right}"):
        assert label in texts
    for line in explain.formula_lines(notes):
        assert line in texts
    (oh, ow), (ph, pw) = notes.output_hw, notes.padded_hw
    assert f"output {oh}x{ow}" in texts
    assert any(f"-> {ph}x{pw}" in t or "(no padding)" in t for t in texts)
    assert any(f"->  {oh}x{ow} output" in t for t in texts)


def test_sharing_figure_writes_each_pixels_bank_and_the_count():
    figure = explain.sliding_figure(6, 3, sharing="tiled", banks=(2, 2), channels=3, filters=4)
    notes = explain.annotations(6, 3, sharing="tiled", banks=(2, 2), channels=3, filters=4)
    assert notes.params_formula in _texts(figure)
    numbers = [t.get_text() for t in figure.axes[1].texts]  # the output panel
    assert sorted(numbers) == sorted(str(b) for b in explain.bank_numbers(notes).ravel())


def test_channels_figure_shows_every_slice_and_the_count():
    figure = explain.channels_figure(5, 3, channels=3, filters=2, strides=2)
    texts = _texts(figure)
    assert "parameters = (Fw * Fh * C + 1) * K = (3 * 3 * 3 + 1) * 2 = 56" in texts
    for c, k in itertools.product(range(3), range(2)):
        assert f"W[:, :, {c}, {k}]\n3x3" in texts
    assert "y[:, :, 1]\n3x3" in texts and "b[1]" in texts
    many = _texts(explain.channels_figure(8, 3, channels=16, filters=8))
    assert "W[:, :, 15, 7]\n3x3" in many and not any("W[:, :, 2, 0]" in t for t in many)


# The animation.


@pytest.mark.parametrize("input_hw, strides, max_frames, frames", [
    (6, 2, 64, 9), ((4, 5), 1, 64, 20), (8, 1, 10, 10), (7, 1, 5, 5),
])
def test_gif_has_one_frame_per_position_or_the_capped_count(tmp_path, input_hw, strides, max_frames, frames):
    target = tmp_path / "slide.gif"
    notes = explain.annotations(input_hw, 3, strides=strides)
    assert len(explain.animation_positions(notes.output_hw, max_frames)) == frames
    count = explain.write_animation(target, input_hw, 3, strides=strides, max_frames=max_frames, dpi=40)
    assert count == frames
    with Image.open(target) as gif:
        assert gif.n_frames == frames
        for index in range(gif.n_frames):
            gif.seek(index)
            assert len(gif.convert("RGB").getcolors(1 << 16)) > 4  # drawn, not blank


def test_animation_positions_are_row_major_and_capped():
    assert explain.animation_positions((2, 3)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    capped = explain.animation_positions((10, 10), max_frames=8)
    assert capped[:3] == [(0, 0), (1, 3), (2, 6)] and len(capped) == 8


# Real values: the pixel arithmetic is conv2d's.


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("strides, padding, dilation", [(1, "same", 1), (2, "same", 1), (2, "valid", 1),
                                                        (1, "same", 2), (3, 1, 1), ((2, 1), "full", (1, 2))])
def test_pixel_arithmetic_equals_conv2d(dtype, strides, padding, dilation):
    rng = np.random.default_rng(0)
    x = (rng.random((9, 11, 3)) * 255).astype(dtype)
    kernel = rng.standard_normal((3, 3, 3)).astype(np.float32)
    y = conv2d(x, kernel, 0.25, strides=strides, padding=padding, dilation=dilation)
    for at in [(0, 0), (y.shape[0] - 1, y.shape[1] - 1), (y.shape[0] // 2, 1)]:
        step = explain.pixel_arithmetic(x, kernel, 0.25, at=at, strides=strides, padding=padding,
                                        dilation=dilation)
        assert step.output == float(y[at])
        # total is float64; y sums the 27 products and the bias in y's dtype, so it errs by at
        # most gamma_28 * (sum |products| + |bias|), gamma_n ~ n u (Higham 3.1); 2 for headroom
        unit = np.finfo(y.dtype).eps / 2
        assert abs(step.total - float(y[at])) <= 2 * 28 * unit * (np.abs(step.products).sum() + 0.25)
        np.testing.assert_allclose(step.products, step.patch * kernel)
        (top, _), (left, _) = shapes.resolve_padding(x.shape[:2], (3, 3), strides, padding, dilation)
        padded = np.pad(x.astype(np.float64), ((top, 10), (left, 10), (0, 0)))
        rows = step.rows + top
        cols = step.cols + left
        np.testing.assert_array_equal(step.patch, padded[rows[:, None], cols[None, :]])
        assert step.inside.all() == (min(step.rows) >= 0 and min(step.cols) >= 0
                                     and max(step.rows) < 9 and max(step.cols) < 11)


def test_pixel_figure_writes_the_numbers():
    x = np.arange(25, dtype=np.uint8).reshape(5, 5)
    step = explain.pixel_arithmetic(x, kernels.get("edge"), 1.0, at=(0, 2))
    texts = _texts(explain.pixel_figure(step, x, name="edge"))
    assert explain.sum_line(step) in texts
    value = conv2d(x, kernels.get("edge"), 1.0)[0, 2]
    assert explain.sum_line(step).endswith(f"= {explain.number(value, 6)}")
    assert "16" in texts and "-7" in texts  # products: 2 * 8 at the centre, 7 * -1 below it
    assert any("hatched taps read zero padding" in t for t in texts)  # row -1 is padding


def test_cli_at_prints_conv2d_value(tmp_path, capsys):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    target = tmp_path / "pixel.png"
    assert main(["explain", str(tmp_path / "photo.png"), "-k", "sobel_x", "--at", "3,4", "--bias", "0.5",
                 "--strides", "2", "-o", str(target)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    expected = conv2d(pixels, kernels.stack(["sobel_x"], 3)[..., 0], 0.5, strides=2)[3, 4]
    assert float(re.search(r"= (\S+)$", line).group(1)) == pytest.approx(float(expected))
    _assert_decodes(target)


# Files: every output decodes and is not blank.


def _assert_decodes(path: Path) -> None:
    if path.suffix == ".svg":
        assert path.read_text().lstrip().startswith("<?xml") and "<path" in path.read_text()
        return
    if path.suffix == ".pdf":
        assert path.read_bytes().startswith(b"%PDF")
        return
    with Image.open(path) as picture:
        picture.load()
        colours = picture.convert("RGB").getcolors(1 << 20)
        assert picture.width > 200 and picture.height > 150
        assert len(colours) > 8  # not blank


@pytest.mark.parametrize("argv, name", [
    (["--input", "7x7", "--kernel-size", "3x3", "--strides", "2", "--padding", "same"], "stride.png"),
    (["--input", "6x6", "--kernel-size", "3", "--strides", "2", "--animate", "--max-frames", "4"], "slide.gif"),
    (["--input", "5x5", "--channels", "3", "--filters", "2", "--strides", "2"], "channels.jpg"),
    (["--input", "7x7x3", "--filters", "5"], "channels.png"),
    (["--input", "7x7", "--dilation", "2"], "dilation.svg"),
    (["--input", "6x6", "--sharing", "regions", "--banks", "2x3"], "regions.png"),
    (["--input", "6x6", "--sharing", "unshared", "--filters", "2"], "unshared.pdf"),
    (["--input", "9x5", "-k", "sobel_x", "--padding", "1,0,2,0"], "explicit.png"),
])
def test_every_output_decodes(tmp_path, capsys, argv, name):
    target = tmp_path / name
    assert main(["explain", *argv, "-o", str(target)]) == 0
    assert f"wrote {target.resolve()}" in capsys.readouterr().out
    _assert_decodes(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_cli_prints_the_formulas(tmp_path, capsys):
    assert main(["explain", "--input", "6x6", "--strides", "2", "-o", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out
    assert "max((3 - 1) * 2 + 3 - 6, 0) = 1: left 0, right 1" in out


@pytest.mark.parametrize("argv, message", [
    (["--input", "6y6"], "--input must be HxW or HxWxC, e.g. 7x7; got '6y6'"),
    (["--input", "0x6"], "--input must be HxW or HxWxC"),
    ([], "give --input HxW"),
    (["--input", "6x6", "--kernel-size", "9", "--padding", "valid"], "kernel height 9 does not fit"),
    (["--input", "6x6", "--padding", "smae"], "got 'smae'"),
    (["--input", "6x6", "--strides", "0"], "strides must be positive integers"),
    (["--input", "6x6", "--kernel-size", "foo"], "--kernel-size must be F or FhxFw; got 'foo'"),
    (["--input", "6x6", "--kernel", "foo"], "-k/--kernel must name a filter (edge, blur, "),
    (["--input", "6x6", "-k", "edge", "--kernel-size", "5"], "give -k edge or --kernel-size 5, not both"),
    (["IMAGE", "--kernel-size", "3"], "--kernel-size draws a layer's geometry; it does not go with IMAGE"),
    (["IMAGE", "--bias", "1", "0"], "--bias needs one value per output channel (1); got 2: [1.0, 0.0]"),
    (["--input", "6x6", "--channels", "0"], "--channels must be a positive integer; got '0'"),
    (["--input", "6x6x3", "--channels", "2"], "has 3 channels but --channels is 2"),
    (["--input", "6x6", "--sharing", "tiled"], "--sharing tiled needs --banks RxC"),
    (["--input", "6x6", "--banks", "2x2"], "--banks goes with --sharing tiled or regions; got no --sharing"),
    (["--input", "6x6", "--sharing", "regions", "--banks", "7x7"], "--banks 7x7: 7x7 banks on a 6x6 output grid; at most 6x6"),
    (["--input", "6x6", "--sharing", "odd"], "invalid choice: 'odd'"),
    (["--input", "6x6", "--animate"], "--animate writes a GIF; name it FILE.gif"),
    (["--input", "6x6", "--animate", "--sharing", "shared", "-o", "OUT/x.gif"], "--animate draws one window"),
    (["--input", "6x6", "--max-frames", "0", "--animate", "-o", "OUT/x.gif"],
     "--max-frames must be a positive integer"),
    (["--input", "6x6", "--at", "1,2"], "--at needs an IMAGE"),
    (["--input", "6x6", "--bias", "1"], "--bias needs an IMAGE"),
    (["IMAGE", "--input", "5x5"], "give IMAGE or --input, not both"),
    (["IMAGE", "--at", "100,3"],
     "--at must be a pixel of the 8x8 output (row 0..7, column 0..7); got (100, 3)"),
    (["IMAGE", "--at", "1"], "--at must be ROW,COL of an output pixel"),
    (["IMAGE", "-k", "3x3"], "-k 3x3: with IMAGE give a named filter"),
    (["IMAGE", "--channels", "3"], "--channels draws a layer's geometry; it does not go with IMAGE"),
    (["IMAGE", "--animate"], "--animate draws a layer's geometry"),
    (["missing.png"], "missing.png: no such file"),
    (["--input", "6x6", "-o", "OUT/x.gif"],
     "the file must end in .png, .pdf, .svg, .jpg, .jpeg (a GIF needs --animate)"),
    (["--input", "6x6", "-o", "OUT/no/such/x.png"], "does not exist"),
])
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(tmp_path / "IMAGE.png")
    (tmp_path / "OUT").mkdir()
    argv = ["explain", *[a if a != "IMAGE" else "IMAGE.png" for a in argv]]
    argv += [] if "-o" in argv else ["-o", "OUT/x.png"]
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list((tmp_path / "OUT").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IMAGE.png", "OUT"]


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["explain", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "convlayer explain --input 7x7 --kernel-size 3x3 --strides 2 --padding same -o stride.png" in out
    assert "--at 120,200" in out


# Receptive fields.


def _fields(model, input_shape):
    return [(r.size, r.jump, r.start) for r in model.receptive_field(input_shape)]


def test_receptive_field_by_hand():
    two = Sequential([Conv2D(1, 2, 3), Conv2D(2, 2, 3)])
    assert _fields(two, (8, 8, 1)) == [((3, 3), (1, 1), (-1, -1)), ((5, 5), (1, 1), (-2, -2))]
    strided = Sequential([Conv2D(1, 2, 3, strides=2, padding="valid"), ReLU(),
                          Conv2D(2, 2, 3, padding="valid")])
    assert _fields(strided, None) == [((3, 3), (2, 2), (0, 0))] * 2 + [((7, 7), (2, 2), (0, 0))]
    same = Sequential([Conv2D(1, 2, 3, strides=2), Conv2D(2, 2, 3)])  # 8 wide: pads (0, 1), then (1, 1)
    assert _fields(same, (8, 8, 1)) == [((3, 3), (2, 2), (0, 0)), ((7, 7), (2, 2), (-2, -2))]
    pooled = Sequential([Conv2D(1, 2, (3, 5), dilation=2, padding="valid"), MaxPool2D(2), Dropout(),
                         AvgPool2D(3, strides=1, padding="same"), Flatten(), Dense(4, 2)])
    assert _fields(pooled, (20, 20, 1)) == [((5, 9), (1, 1), (0, 0)), ((6, 10), (2, 2), (0, 0)),
                                            ((6, 10), (2, 2), (0, 0)), ((10, 14), (2, 2), (-2, -2))]


def test_receptive_field_records_and_errors():
    model = Sequential([Conv2D(1, 2, 3), ReLU(), Flatten(), Dense(128, 2)], input_shape=(8, 8, 1))
    records = model.receptive_field()
    assert [r.index for r in records] == [0, 1]  # Flatten ends it
    assert records[1].layer == "ReLU()" and records[1].output_shape == (8, 8, 2)
    with pytest.raises(ValueError, match=r"receptive_field needs input_shape.*pads with 'same'"):
        Sequential([Conv2D(1, 2, 3)]).receptive_field()

    class Odd(Layer):
        pass

    with pytest.raises(ValueError, match="receptive_field does not know how Odd"):
        Sequential([Odd()]).receptive_field((4, 4, 1))


@pytest.mark.parametrize("layers, input_hw", [
    ([Conv2D(1, 1, 3, strides=2), Conv2D(1, 1, 3), AvgPool2D(2)], (33, 31)),
    ([Conv2D(1, 1, (2, 3), strides=(1, 2), padding="same_lower"), Conv2D(1, 1, 3, dilation=2, padding=1)],
     (29, 34)),
    ([Conv2D(1, 1, 5, strides=3, padding="valid"), AvgPool2D(2, strides=1, padding="same"), Conv2D(1, 1, 2)],
     (47, 46)),
])
def test_receptive_field_matches_the_gradient(layers, input_hw):
    """A unit's field is the box where its gradient on the input is non-zero (ones: nothing cancels).

    Checked on units whose field lies inside the input: near a border, padding in a middle
    layer (or pixels a VALID stride drops) leaves part of the field unread.
    """
    model = Sequential(layers)
    for layer in layers:
        for name, param in layer.params.items():
            param[...] = 1.0 if name == "kernel" else 0.0
    out = model.forward(np.ones((1, *input_hw, 1)))
    record = model.receptive_field((*input_hw, 1))[-1]
    for unit in [(out.shape[1] // 2, out.shape[2] // 2), (out.shape[1] // 3, out.shape[2] // 2 + 1)]:
        grad = np.zeros_like(out)
        grad[0, unit[0], unit[1], 0] = 1.0
        rows, cols = np.nonzero(model.backward(grad)[0, :, :, 0])
        first = [record.start[a] + unit[a] * record.jump[a] for a in (0, 1)]
        last = [first[a] + record.size[a] - 1 for a in (0, 1)]
        assert 0 <= min(first) and last[0] < input_hw[0] and last[1] < input_hw[1]  # inside
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (first[0], last[0], first[1], last[1])


def test_receptive_field_figure(tmp_path):
    model = Sequential([Conv2D(1, 4, 3), ReLU(), MaxPool2D(2), Conv2D(4, 4, 3)])
    records = model.receptive_field((8, 8, 1))
    figure = explain.receptive_field_figure(records, (8, 8))
    texts = _texts(figure)
    first = "0: Conv2D(1, 4, kernel_size=3) + 1: ReLU()  ->  field 3x3, jump 1, unit (4, 4) sees rows 3..5"
    assert any(t.startswith(first) for t in texts)
    assert any("3: Conv2D(4, 4, kernel_size=3)  ->  field 8x8, jump 2" in t for t in texts)
    unit, first = explain.centre_unit(records[-1], (8, 8))
    assert first == tuple(records[-1].start[a] + unit[a] * records[-1].jump[a] for a in (0, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    _assert_decodes_bytes(buffer.getvalue())


def _assert_decodes_bytes(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as picture:
        assert len(picture.convert("RGB").getcolors(1 << 20)) > 8


# The README's gallery.


def test_readme_gallery_pictures_exist_and_decode():
    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    section = readme[readme.index("## Pictures"):readme.index("## Padding: SAME and VALID")]
    names = re.findall(r"\]\((docs/gallery/[^)]+)\)", section)
    assert len(names) >= 12
    total = 0
    for name in names:
        path = root / name
        _assert_decodes(path)
        total += path.stat().st_size
        assert path.stat().st_size < 400_000
    assert total < 3_000_000
