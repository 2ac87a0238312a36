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

from convlayer import conv2d, kernels

CLI = [sys.executable, "-m", "convlayer.cli.main", "filter"]


def run_cli(*args, cwd=None):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=cwd)


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
        expected = conv2d(pixels, kernels.stack(["edge", "blur"], 3), [1.0, 0.0], padding="valid")
        assert raw.shape == (pixels.shape[0] - 2, pixels.shape[1] - 2, 2) and raw.dtype == np.float32
        np.testing.assert_allclose(raw, expected, rtol=1e-6, atol=1e-3)
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


def test_display_scaling_is_stated_and_exact(photo_dir, tmp_path):
    out = tmp_path / "out"
    assert run_cli(photo_dir / "coffee.png", "-k", "sobel_x", "--save-raw", "-o", out).returncode == 0
    raw = np.load(out / "coffee.npy")[..., 0]
    channel = json.loads((out / "coffee.json").read_text())["channels"][0]
    assert channel["low"] == -channel["high"] == -np.abs(raw).max()  # signed: 0 is mid-gray
    shown = np.asarray(Image.open(out / "coffee.sobel_x.png"), dtype=float)
    np.testing.assert_allclose(channel["low"] + shown / 255 * (channel["high"] - channel["low"]), raw,
                               atol=(channel["high"] - channel["low"]) / 255)


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
    "kernel file ragged text", "kernel file missing", "unknown kernel name", "no kernel", "bias count",
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
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
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
    expected = conv2d(image, layer(kernel).astype(np.float32), strides=2, flip=True)
    np.testing.assert_allclose(np.load(tmp_path / "o" / "in.npy"), expected, rtol=1e-5, atol=1e-3)


def test_csv_kernel_file(tmp_path):
    image = np.random.default_rng(5).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    (tmp_path / "lap.csv").write_text("0,1,0\n1,-4,1\n0,1,0\n")
    result = run_cli(tmp_path / "in.png", "--kernel-file", tmp_path / "lap.csv", "-k", "blur", "--save-raw",
                     "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    expected = conv2d(image, kernels.stack([laplacian, "blur"], 3))
    np.testing.assert_allclose(np.load(tmp_path / "o" / "in.npy"), expected, rtol=1e-5, atol=1e-3)
    assert (tmp_path / "o" / "in.lap.png").exists()


def test_outputs_are_ordinary_files(tmp_path):
    """Written through a temporary file, but with the mode a plain open() would give."""
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "a.png")
    assert run_cli(tmp_path / "a.png", "-k", "edge", "-o", tmp_path / "o").returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "o").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
