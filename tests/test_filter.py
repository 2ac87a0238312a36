"""`convlayer filter` end to end: real photos, bad inputs, interruption, figures."""

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlayer
from convlayer import conv2d, images, kernels

CLI = [sys.executable, "-m", "convlayer.cli.main", "filter"]
# The command runs the convlayer these tests import, whatever cwd= is (a relative PYTHONPATH
# would otherwise stop resolving, and an installed copy would run instead).
_SOURCE = str(Path(convlayer.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")]))}


def run_cli(*args, cwd=None):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=ENV)


def assert_float32_layer(raw, pixels, kernel, bias=0.0, **options):
    """``raw``, a float32 output of the layer, is within float32 rounding of its exact value.

    The oracle is conv2d in float64 on the same pixels and float32 weights. Each value sums
    n = Fh * Fw * C products and the bias in float32, so it errs by at most gamma_(n+1) ~ (n + 1) u
    times the same sum on |pixels|, |kernel| and |bias| (Higham 3.1); per channel, the largest
    such sum serves (FFT, if picked, spreads its error over the image); 2 for headroom. A wrong
    tap or a lost bias is off by O(a pixel) and fails.
    """
    kernel = np.asarray(kernel, np.float32).astype(np.float64)
    bias = np.asarray(bias, np.float32).astype(np.float64)
    wide = np.asarray(pixels, np.float64)
    exact = conv2d(wide, kernel, bias, **options)
    bound = conv2d(np.abs(wide), np.abs(kernel), np.abs(bias), **options)
    assert raw.dtype == np.float32 and raw.shape == exact.shape
    terms = kernel[..., 0].size + 1
    for channel in range(exact.shape[-1]):
        atol = 2 * terms * 2.0**-24 * bound[..., channel].max()
        np.testing.assert_allclose(raw[..., channel], exact[..., channel], rtol=0, atol=atol,
                                   err_msg=f"channel {channel}")


def shipped_photos():
    from skimage import data
    from sklearn.datasets import load_sample_image

    photos = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee")}
    photos.update({name: load_sample_image(f"{name}.jpg") for name in ("china", "flower")})
    return photos


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name, pixels in shipped_photos().items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(folder / "flat.png")
    return folder


def test_photos_end_to_end(photo_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli(photo_dir, "-k", "edge", "-k", "blur", "--bias", "1", "0", "--padding", "valid",
                     "--save-raw", "-o", out)
    assert result.returncode == 0, result.stderr
    for source in sorted(photo_dir.iterdir()):
        pixels = np.asarray(Image.open(source))
        raw = np.load(out / f"{source.stem}.npy")
        assert raw.shape == (pixels.shape[0] - 2, pixels.shape[1] - 2, 2) and raw.dtype == np.float32
        assert_float32_layer(raw, pixels, kernels.stack(["edge", "blur"], 3), [1.0, 0.0], padding="valid")
        for channel in ("edge", "blur"):
            shown = Image.open(out / f"{source.stem}.{channel}.png")
            assert shown.mode == "L" and shown.size == (raw.shape[1], raw.shape[0])
        sidecar = json.loads((out / f"{source.stem}.json").read_text())
        assert sidecar["output_shape"] == list(raw.shape)
        assert [c["file"] for c in sidecar["channels"]] == [f"{source.stem}.edge.png", f"{source.stem}.blur.png"]
        edge = raw[..., 0] - 1.0  # without the bias
        if source.stem == "flat":
            assert np.all(edge == 0)
        else:
            assert np.abs(edge).max() > 100


@pytest.mark.parametrize("scale", ["minmax", "percentile", "none"])
def test_display_scaling_is_stated_and_exact(photo_dir, tmp_path, scale):
    out = tmp_path / "out"
    assert run_cli(photo_dir / "coffee.png", "-k", "sobel_x", "--save-raw", "--scale", scale, "-o", out).returncode == 0
    raw = np.load(out / "coffee.npy")[..., 0]
    channel = json.loads((out / "coffee.json").read_text())["channels"][0]
    expected = {"minmax": (-np.abs(raw).max(), np.abs(raw).max()), "none": (0, 255),  # signed: 0 is mid-gray
                "percentile": (-np.percentile(np.abs(raw), 98), np.percentile(np.abs(raw), 98))}[scale]
    assert channel["scale"] == scale and (channel["low"], channel["high"]) == pytest.approx(expected)
    shown = np.asarray(Image.open(out / "coffee.sobel_x.png"), dtype=float)
    inside = (raw >= channel["low"]) & (raw <= channel["high"])
    np.testing.assert_allclose((channel["low"] + shown / 255 * (channel["high"] - channel["low"]))[inside],
                               raw[inside], atol=(channel["high"] - channel["low"]) / 255)
    assert channel["clipped_low"] == np.count_nonzero(shown[raw < channel["low"]] == 0) == np.sum(~inside & (raw < 0))
    assert channel["clipped_high"] == np.sum(~inside & (raw > 0))


def test_figure_decodes_with_expected_size_and_is_not_blank(photo_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli(photo_dir / "chelsea.png", "-k", "edge", "-k", "blur", "--relu", "--figure", "-o", out)
    assert result.returncode == 0, result.stderr
    figure = np.asarray(Image.open(out / "chelsea.figure.png").convert("L"), dtype=float)
    assert figure.shape == (506, 4 * 462)  # 4 panels of 4.2 x 4.6 inches at 110 dpi
    assert figure.std() > 20


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand: Pillow cannot write 16-bit colour."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + pixels[i].astype(">u2").tobytes() for i in range(height))
    header = _png_header(width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels])
    return header + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")


def _corrupt_tiff() -> bytes:
    """A TIFF declaring 60000x60000 pixels with no data, a tag of an unknown type and a bad
    offset: tifffile logs a warning for each before it fails."""
    entries = [(256, 4, 1, 60000), (257, 4, 1, 60000), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 1000), (277, 3, 1, 1), (278, 4, 1, 60000), (999, 99, 1, 0), (1000, 4, 10**6, 500)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + struct.pack("<HH" if kind == 3 else "<I", *(
            (value, 0) if kind == 3 else (value,)))
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def _corpus(folder: Path) -> dict:
    """Bad inputs, each as the extra command-line arguments that use it (see CORPUS_CASES)."""
    good = folder / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image\n")
    data = good.read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) - 30])
    (folder / "header.png").write_bytes(_png_header(64, 64))
    (folder / "bomb.png").write_bytes(_png_header(100_000, 100_000) + _png_chunk(b"IEND", b""))
    (folder / "no_images").mkdir()
    (folder / "no_images" / "notes.txt").write_text("hello")
    (folder / "a_file").write_text("x")
    np.save(folder / "k_shape.npy", np.ones((3, 3, 5)))
    np.save(folder / "k_rank.npy", np.ones(3))
    nan = np.ones((3, 3))
    nan[1, 1] = np.nan
    np.save(folder / "k_nan.npy", nan)
    (folder / "k_text.txt").write_text("1 2\n3\n")
    np.save(folder / "k_huge.npy", np.full((3, 3), 1e308))  # finite in float64, inf in float32
    (folder / "k_empty.csv").write_text("")
    (folder / "k_comments.txt").write_text("# no numbers here\n")
    (folder / "huge_corrupt.tif").write_bytes(_corrupt_tiff())
    return {
        "missing file": ["missing.png", "-k", "edge"],
        "folder with no images": ["no_images", "-k", "edge"],
        "empty file": ["empty.png", "-k", "edge"],
        "text named .png": ["text.png", "-k", "edge"],
        "truncated png": ["truncated.png", "-k", "edge"],
        "png of only its header": ["header.png", "-k", "edge"],
        "decompression bomb": ["bomb.png", "-k", "edge"],
        "output is a file": ["good.png", "-k", "edge", "-o", "a_file"],
        "output under a file": ["good.png", "-k", "edge", "-o", "a_file/out"],
        "kernel file wrong channels": ["good.png", "--kernel-file", "k_shape.npy"],
        "kernel file wrong rank": ["good.png", "--kernel-file", "k_rank.npy"],
        "kernel file with nan": ["good.png", "--kernel-file", "k_nan.npy"],
        "kernel file ragged text": ["good.png", "--kernel-file", "k_text.txt"],
        "kernel file missing": ["good.png", "--kernel-file", "nope.npy"],
        "kernel file beyond float32": ["good.png", "--kernel-file", "k_huge.npy", "--save-raw"],
        "kernel file empty csv": ["good.png", "--kernel-file", "k_empty.csv"],
        "kernel file only comments": ["good.png", "--kernel-file", "k_comments.txt"],
        "corrupt 60000x60000 tiff": ["huge_corrupt.tif", "-k", "edge"],
        "unknown kernel name": ["good.png", "-k", "edgy"],
        "no kernel": ["good.png"],
        "bias count": ["good.png", "-k", "edge", "-k", "blur", "--bias", "1"],
        "bad padding": ["good.png", "-k", "edge", "--padding", "smae"],
        "bad strides": ["good.png", "-k", "edge", "--strides", "0"],
        "bad pad mode": ["good.png", "-k", "edge", "--pad-mode", "mirror"],
        "kernel larger than image": ["good.png", "-k", "edge", "--padding", "valid", "--dilation", "9"],
    }


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, _corpus(folder)


CORPUS_CASES = [
    "missing file", "folder with no images", "empty file", "text named .png", "truncated png",
    "png of only its header", "decompression bomb", "output is a file", "output under a file",
    "kernel file wrong channels", "kernel file wrong rank", "kernel file with nan",
    "kernel file ragged text", "kernel file missing", "kernel file beyond float32",
    "kernel file empty csv", "kernel file only comments", "corrupt 60000x60000 tiff", "unknown kernel name", "no kernel", "bias count",
    "bad padding", "bad strides", "bad pad mode", "kernel larger than image",
]


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(corpus_dir, case):
    folder, cases = corpus_dir
    args = cases[case]
    if "-o" not in args:
        args = args + ["-o", "out"]
    before = _snapshot(folder)
    result = run_cli(*args, cwd=folder)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convlayer filter: "), result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(folder) == before


def test_corrupt_file_in_a_folder_is_skipped_and_reported(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((10, 12, 3), i * 40, np.uint8)).save(folder / f"img{i}.png")
    (folder / "img2.png").write_text("broken")
    result = run_cli(folder, "-k", "blur", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "skipped" in result.stderr and "img2.png" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"img{i}.{ext}" for i in (0, 1, 3, 4) for ext in ("blur.png", "json"))


def test_existing_outputs_are_not_overwritten_without_flag(tmp_path):
    source = tmp_path / "a.png"
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(source)
    out = tmp_path / "out"
    assert run_cli(source, "-k", "edge", "-o", out).returncode == 0
    before = _snapshot(out)
    result = run_cli(source, "-k", "edge", "--bias", "5", "-o", out)
    assert result.returncode == 2 and "exists; use --overwrite" in result.stderr
    assert _snapshot(out) == before
    assert run_cli(source, "-k", "edge", "--bias", "5", "--overwrite", "-o", out).returncode == 0
    assert _snapshot(out) != before


def test_inputs_with_one_name_would_clash(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / sub / "same.png")
    result = run_cli(tmp_path / "a" / "same.png", tmp_path / "b" / "same.png", "-k", "edge", "-o", tmp_path / "o")
    assert result.returncode == 2 and "would both write" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_interrupted_folder_run_leaves_only_complete_files(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)
    for i in range(60):
        Image.fromarray(np.roll(pixels, i, axis=1)).save(folder / f"img{i:02d}.png", compress_level=1)
    out = tmp_path / "out"
    process = subprocess.Popen(CLI + [str(folder), "-k", "edge", "-k", "blur", "--save-raw", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    printed, err = process.communicate(timeout=60)
    # the whole of what the child said goes into the message: a child that missed the Ctrl-C
    # shows how it ended (see the fixture ctrl_c_reaches_children for why one did)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, (
        f"exit code {process.returncode}; stdout: {printed!r}; stderr: {err!r}")
    written = list(out.iterdir())
    assert 0 < len(list(out.glob("*.json"))) < 60
    for path in written:
        assert not path.name.startswith("."), f"temporary file left: {path.name}"
        if path.suffix == ".png":
            Image.open(path).load()
        elif path.suffix == ".npy":
            assert np.load(path).shape == (384, 384, 2)
        else:
            json.loads(path.read_text())


def test_sixteen_bit_gray_png_keeps_precision(tmp_path):
    pixels = (np.arange(30 * 20).reshape(30, 20, 1) * 100 + 3).astype(np.uint16)
    (tmp_path / "deep.png").write_bytes(_png16(pixels))
    result = run_cli(tmp_path / "deep.png", "-k", "blur", "--mode", "gray", "--save-raw", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    expected = conv2d(pixels.astype(np.float64), kernels.stack(["blur"], 1, dtype=np.float64))
    np.testing.assert_allclose(np.load(tmp_path / "o" / "deep.npy"), expected, rtol=1e-6)


def test_sixteen_bit_tiff_keeps_precision_and_colour_png_says_it_cannot(tmp_path):
    import tifffile

    pixels = (np.random.default_rng(1).integers(0, 2**16, (16, 18, 3))).astype(np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", pixels)
    (tmp_path / "deep_rgb.png").write_bytes(_png16(pixels))
    result = run_cli(tmp_path / "deep.tif", tmp_path / "deep_rgb.png", "-k", "identity", "--save-raw",
                     "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    identity = np.load(tmp_path / "o" / "deep.npy")[..., 0]
    np.testing.assert_array_equal(identity, pixels.astype(np.float64).sum(axis=2))
    notes = [line for line in result.stderr.splitlines() if "deep_rgb.png" in line]
    assert len(notes) == 1 and "16-bit RGB PNG read at 8 bits per channel" in notes[0]


def test_alpha_palette_and_gray_modes(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, (12, 14, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "palette.png")
    out = tmp_path / "o"
    result = run_cli(tmp_path / "alpha.png", tmp_path / "palette.png", "-k", "identity", "--save-raw", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "alpha.png: alpha channel dropped" in result.stderr
    np.testing.assert_array_equal(np.load(out / "alpha.npy")[..., 0], rgba[..., :3].sum(axis=2, dtype=float))
    expanded = np.asarray(palette.convert("RGB"), dtype=float)
    np.testing.assert_array_equal(np.load(out / "palette.npy")[..., 0], expanded.sum(axis=2))
    gray = run_cli(tmp_path / "alpha.png", "-k", "identity", "--mode", "gray", "--save-raw", "-o", tmp_path / "g")
    assert gray.returncode == 0
    luminance = rgba[..., :3].astype(float) @ [0.2125, 0.7154, 0.0721]
    np.testing.assert_allclose(np.load(tmp_path / "g" / "alpha.npy")[..., 0], luminance, rtol=1e-5)


@pytest.mark.parametrize("shape", [(3, 3), (3, 3, 3), (3, 3, 3, 2)])
def test_kernel_files(tmp_path, shape):
    image = np.random.default_rng(3).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    kernel = np.random.default_rng(4).standard_normal(shape)
    np.save(tmp_path / "mine.npy", kernel)
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "mine.npy", "--strides", "2",
                     "--flip", "--save-raw", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    layer = {2: lambda k: kernels.stack([k], 3, np.float64), 3: lambda k: k[..., None], 4: lambda k: k}[len(shape)]
    assert_float32_layer(np.load(tmp_path / "o" / "in.npy"), image, layer(kernel), strides=2, flip=True)


def test_csv_kernel_file(tmp_path):
    image = np.random.default_rng(5).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    (tmp_path / "lap.csv").write_text("0,1,0\n1,-4,1\n0,1,0\n")
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "lap.csv", "-k", "blur", "--save-raw",
                     "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    assert_float32_layer(np.load(tmp_path / "o" / "in.npy"), image, kernels.stack([laplacian, "blur"], 3))
    assert (tmp_path / "o" / "in.lap.png").exists()


def test_outputs_are_ordinary_files(tmp_path):
    """Written through a temporary file, but with the mode a plain open() would give."""
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "a.png")
    assert run_cli(tmp_path / "a.png", "-k", "edge", "-o", tmp_path / "o").returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "o").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------------------- odd inputs, quiet readers


def _gifs(folder: Path) -> dict:
    rng = np.random.default_rng(14)
    pixels = [rng.integers(0, 256, (12, 15, 3), dtype=np.uint8) for _ in range(3)]
    frames = [Image.fromarray(p).convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for p in pixels]
    frames[0].save(folder / "static.gif")
    frames[0].save(folder / "clear.gif", transparency=0)
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    with Image.open(folder / "static.gif") as image:
        colours = np.asarray(image.convert("RGB"))
    with Image.open(folder / "clear.gif") as image:
        clear = np.asarray(image.convert("RGBA"))
    return {"static": colours, "clear": clear, "animated": colours}


def test_gif_is_read_as_its_colours_and_an_animation_as_its_first_frame(tmp_path):
    """A GIF's Pillow mode is 'P' and its tile's raw mode an int: read it as its colours."""
    expected = _gifs(tmp_path)
    for name, colours in expected.items():
        pixels, notes = images.read(tmp_path / f"{name}.gif")
        assert pixels.dtype == np.uint8 and pixels.shape == colours.shape
        np.testing.assert_array_equal(pixels, colours)
        palette = f"{tmp_path / f'{name}.gif'}: a palette image, read as its {'RGBA' if name == 'clear' else 'RGB'} colours"
        if name == "animated":
            assert notes == [palette, f"{tmp_path / 'animated.gif'}: an animated image of 3 frames; only the first was read"]
        else:
            assert notes == [palette]
    result = run_cli(tmp_path / "static.gif", "-k", "identity", "--save-raw", "-o", tmp_path / "o")
    assert result.returncode == 0 and result.stderr.splitlines() == [
        f"convlayer filter: note: {tmp_path / 'static.gif'}: a palette image, read as its RGB colours"], result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "static.npy")[..., 0],
                                  expected["static"].sum(axis=2, dtype=float))
    result = run_cli(tmp_path / "animated.gif", "-k", "edge", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[1:] == [
        f"convlayer filter: note: {tmp_path / 'animated.gif'}: an animated image of 3 frames; only the first was read"]
    sidecar = json.loads((tmp_path / "o" / "animated.json").read_text())
    assert "only the first was read" in sidecar["notes"][1]


def test_kernel_file_beyond_float32_is_refused_naming_the_file(tmp_path):
    """1e308 is finite in float64 but inf after the cast to float32: refused, not NaN maps."""
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "in.png")
    np.save(tmp_path / "k.npy", np.full((3, 3), 1e308))
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "k.npy", "--save-raw", "-o", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"convlayer filter: error: --kernel-file {tmp_path / 'k.npy'}: values up to 1e+308 are beyond the range "
        f"of float32, the type the layer computes in (largest 3.403e+38)"]
    assert not (tmp_path / "o").exists()
    np.save(tmp_path / "edge.npy", np.full((3, 3), 3e38))  # within float32: accepted, exact
    assert run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "edge.npy", "-o", tmp_path / "o").returncode == 0


def test_overflowing_output_is_one_note_not_numpy_warnings(tmp_path):
    """A kernel that fits float32 can still overflow the output: one note, no RuntimeWarning."""
    pixels = np.zeros((6, 7, 3), np.uint8)
    pixels[:2, :2] = 255
    Image.fromarray(pixels).save(tmp_path / "in.png")
    np.save(tmp_path / "k.npy", np.full((3, 3), 1e36))
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "k.npy", "-k", "edge", "--save-raw",
                     "--figure", "-o", tmp_path / "o")
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convlayer filter: note: "), result.stderr
    assert "NaN or infinite" in lines[0]
    raw = np.load(tmp_path / "o" / "in.npy")[..., 0]
    assert np.isinf(raw).any() and np.isfinite(raw).any()
    shown = np.asarray(Image.open(tmp_path / "o" / "in.k.png"))
    assert (shown[np.isinf(raw)] == 255).all() and (shown[raw == 0] == 0).all()  # inf saturates
    import tifffile  # a float image holding NaN and inf, its edge map in the figure

    pixels = np.random.default_rng(7).random((12, 13)).astype(np.float32) * 3e38
    pixels[3, 3], pixels[5, 5] = np.nan, np.inf
    tifffile.imwrite(tmp_path / "wild.tif", pixels)
    result = run_cli(tmp_path / "wild.tif", "-k", "edge", "--figure", "-o", tmp_path / "w")
    assert result.returncode == 0 and (tmp_path / "w" / "wild.figure.png").exists()
    assert result.stderr.splitlines()[0].endswith("wild.tif: a gray image, filtered as its one channel")
    assert len(result.stderr.splitlines()) == 2 and "NaN or infinite" in result.stderr, result.stderr


def test_empty_text_kernel_is_one_line_without_numpy_warning(tmp_path):
    """np.loadtxt warns "input contained no data" on an empty file: only convlayer's line shows."""
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "k.csv").write_text("")
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "k.csv", "-o", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"convlayer filter: error: --kernel-file {tmp_path / 'k.csv'}: no numbers in the file (a text "
        f"kernel is rows of numbers, separated by spaces or commas)"]


def test_corrupt_tiff_prints_no_tifffile_log_lines_and_the_logger_is_restored(tmp_path):
    """tifffile logs each oddity of a corrupt file: only convlayer's one line shows."""
    import logging

    (tmp_path / "huge.tif").write_bytes(_corrupt_tiff())
    result = run_cli(tmp_path / "huge.tif", "-k", "edge", "-o", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"convlayer filter: skipped {tmp_path / 'huge.tif'}: not a readable TIFF image "
        f"(failed to read 3600000000 bytes, got 0)"]
    logger = logging.getLogger("tifffile")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        with pytest.raises(images.ImageError, match="huge.tif: not a readable TIFF"):
            images.read(tmp_path / "huge.tif")
        assert records == [] and logger.level == logging.NOTSET
        logger.warning("still heard")
        assert len(records) == 1
    finally:
        logger.removeHandler(handler)


def test_figure_of_a_file_with_a_cjk_name_prints_nothing(tmp_path):
    """matplotlib warns of each glyph its fonts lack: the figure is drawn without a word."""
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "图像.png")
    result = run_cli(tmp_path / "图像.png", "-k", "edge", "--figure", "-o", tmp_path / "o")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert Image.open(tmp_path / "o" / "图像.figure.png").size[0] > 0


def test_an_image_too_large_for_memory_is_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    from convlayer.cli import filter as command
    from convlayer.cli.main import main

    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "a.png")

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(command, "conv2d", no_memory)
    assert main(["filter", str(tmp_path / "a.png"), "-k", "edge", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"convlayer filter: skipped {tmp_path / 'a.png'}: not enough memory (try --chunks, which computes it "
        f"piece by piece)"]
