"""`convlayer filter` for photos: colour in, colour out, visible maps, upright JPEGs, resumable runs."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlayer
from convlayer import conv2d, images, kernels

CLI = [sys.executable, "-m", "convlayer.cli.main", "filter"]
_SOURCE = str(Path(convlayer.__file__).resolve().parents[1])  # run the convlayer these tests import
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")]))}


def run_cli(*args, cwd=None):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=ENV)


def _rgb(h=23, w=31, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_per_channel_blur_is_conv2d_groups_3_at_the_inputs_bit_depth(tmp_path):
    pixels = _rgb()
    Image.fromarray(pixels).save(tmp_path / "in.png")
    result = run_cli(tmp_path / "in.png", "--per-channel", "-k", "blur", "--save-raw", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    exact = conv2d(pixels.astype(np.float64), kernels.depthwise("blur", 3, np.float64), groups=3, pad_mode="edge")
    np.testing.assert_allclose(np.load(tmp_path / "o" / "in.npy"), exact, rtol=1e-5, atol=1e-4)
    with Image.open(tmp_path / "o" / "in.blur.png") as written:
        assert written.mode == "RGB"
        colour = np.asarray(written)
    np.testing.assert_array_equal(colour, np.clip(np.round(exact), 0, 255).astype(np.uint8))
    sidecar = json.loads((tmp_path / "o" / "in.json").read_text())
    assert sidecar["layer"]["groups"] == 3 and sidecar["layer"]["pad_mode"] == "edge"
    assert "filter i on input channel j alone" in sidecar["layer"]["per_channel"]
    assert sidecar["channels"][0] == {"name": "blur", "file": "in.blur.png", "dtype": "uint8", "per_channel": True,
                                      "scale": "none", "clipped_low": 0, "clipped_high": 0, "clip": [0.0, 255.0]}


def test_a_flat_red_image_stays_red(tmp_path):
    red = np.zeros((12, 17, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(tmp_path / "red.png")
    result = run_cli(tmp_path / "red.png", "--per-channel", "-k", "blur", "-k", "gaussian", "-k", "sharpen",
                     "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    for name in ("blur", "gaussian", "sharpen"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / f"red.{name}.png")), red)


def test_per_channel_keeps_sixteen_bits_and_gray_and_clips_like_an_editor(tmp_path):
    import tifffile

    deep = np.random.default_rng(1).integers(0, 2**16, (14, 15, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", deep)
    gray = _rgb(seed=2)[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    result = run_cli(tmp_path / "deep.tif", tmp_path / "gray.png", "--per-channel", "-k", "sharpen",
                     "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    written = tifffile.imread(tmp_path / "o" / "deep.sharpen.tif")
    exact = conv2d(deep.astype(np.float64), kernels.depthwise("sharpen", 3, np.float64), groups=3, pad_mode="edge")
    assert written.dtype == np.uint16 and written.shape == deep.shape
    np.testing.assert_array_equal(written, np.clip(np.round(exact), 0, 65535))
    assert (exact > 65535).any() and (exact < 0).any()  # so the clipping was tested
    with Image.open(tmp_path / "o" / "gray.sharpen.png") as shown:
        assert shown.mode == "L" and shown.size == (gray.shape[1], gray.shape[0])
    assert "gray.png: a gray image, filtered as its one channel" in result.stderr
    assert "deep.tif: a 16-bit image" in result.stderr


def test_per_channel_refuses_a_kernel_file_that_mixes_channels(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "in.png")
    np.save(tmp_path / "k.npy", np.ones((3, 3, 3)))
    result = run_cli(tmp_path / "in.png", "--per-channel", "--kernel-file", tmp_path / "k.npy", "-o", tmp_path / "o")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "--per-channel applies 2-D filters to each channel on its own; --kernel-file" in result.stderr
    assert not (tmp_path / "o").exists()


def test_per_channel_figure_is_in_colour(tmp_path):
    Image.fromarray(_rgb(40, 60)).save(tmp_path / "in.png")
    result = run_cli(tmp_path / "in.png", "--per-channel", "-k", "blur", "--figure", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    figure = np.asarray(Image.open(tmp_path / "o" / "in.figure.png").convert("RGB"), dtype=float)
    assert np.abs(figure[..., 0] - figure[..., 1]).mean() > 5  # colour, not gray or a colour map of one channel


def test_edge_maps_of_a_shipped_photo_are_visible(tmp_path):
    """Scaled by percentiles, the signed edge map's median is mid-gray and a ReLU'd one is brighter
    than scaled to its single strongest edge."""
    result = run_cli("sample:chelsea", "-k", "edge", "-o", tmp_path / "signed")
    assert result.returncode == 0, result.stderr
    signed = np.asarray(Image.open(tmp_path / "signed" / "chelsea.edge.png"), dtype=float)
    assert np.median(signed) > 100
    means = {}
    for scale in ("percentile", "minmax"):
        result = run_cli("sample:chelsea", "-k", "edge", "--relu", "--scale", scale, "-o", tmp_path / scale)
        assert result.returncode == 0, result.stderr
        means[scale] = np.asarray(Image.open(tmp_path / scale / "chelsea.edge.png"), dtype=float).mean()
    assert means["percentile"] > 2 * means["minmax"]


def test_a_gray_image_is_not_tripled(tmp_path):
    gray = _rgb(seed=3)[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.save(tmp_path / "lap.npy", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float))
    outputs = {}
    for mode in ("rgb", "gray"):
        result = run_cli(tmp_path / "g.png", "--kernel-file", tmp_path / "lap.npy", "--mode", mode, "--save-raw",
                         "-o", tmp_path / mode)
        assert result.returncode == 0, result.stderr
        outputs[mode] = np.load(tmp_path / mode / "g.npy")
        notes = json.loads((tmp_path / mode / "g.json").read_text())["notes"]
        assert notes == ([f"{tmp_path / 'g.png'}: a gray image, filtered as its one channel"] if mode == "rgb" else [])
    np.testing.assert_array_equal(outputs["rgb"], outputs["gray"])
    np.save(tmp_path / "three.npy", np.ones((3, 3, 3)))  # a kernel of three channels: repeated, and said
    result = run_cli(tmp_path / "g.png", "--kernel-file", tmp_path / "three.npy", "-o", tmp_path / "three")
    assert result.returncode == 0 and "a gray image, repeated over R, G and B" in result.stderr


def _upright_and_stored(orientation):
    """An upright portrait (white block at the top) and the landscape pixels a phone stores."""
    upright = np.zeros((48, 32, 3), np.uint8)
    upright[:12] = 255
    return upright, np.rot90(upright, 1 if orientation == 6 else -1)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied_on_read(tmp_path, orientation):
    upright, stored = _upright_and_stored(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    pixels, notes = images.read(tmp_path / "phone.jpg")
    assert pixels.shape == upright.shape
    np.testing.assert_allclose(pixels, upright, atol=40)
    assert notes == [f"{tmp_path / 'phone.jpg'}: EXIF orientation {orientation}: {images.ORIENTATIONS[orientation]} "
                     f"to stand upright"]
    result = run_cli(tmp_path / "phone.jpg", "--per-channel", "-k", "identity", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "o" / "phone.identity.png")), upright, atol=40)
    assert f"EXIF orientation {orientation}" in json.loads((tmp_path / "o" / "phone.json").read_text())["notes"][0]


def test_sample_photos_by_name(tmp_path):
    result = run_cli("sample:coffee", "sample:camera", "-k", "blur", "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "camera.blur.png", "camera.json", "coffee.blur.png", "coffee.json"]
    assert result.stdout.startswith(f"wrote 4 files for 2 images in {(tmp_path / 'o').resolve()}")
    assert json.loads((tmp_path / "o" / "coffee.json").read_text())["input_shape"] == [400, 600, 3]
    result = run_cli("sample:moon", "-k", "blur", "-o", tmp_path / "m")
    assert result.returncode == 2 and result.stderr.splitlines() == [
        "convlayer filter: error: sample:moon: no such sample photo; choose from sample:astronaut, "
        "sample:chelsea, sample:coffee, sample:rocket, sample:camera"]


def _checksums(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_an_interrupted_folder_run_resumed_with_skip_existing_ends_as_an_uninterrupted_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for i in range(40):
        Image.fromarray(np.roll(pixels, i, axis=1)).save(folder / f"img{i:02d}.png", compress_level=1)
    arguments = [str(folder), "-k", "edge", "-k", "blur", "--save-raw", "--per-channel"]
    whole = subprocess.run(CLI + arguments + ["-o", str(tmp_path / "whole")], capture_output=True, text=True,
                           env=ENV)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "out"
    process = subprocess.Popen(CLI + arguments + ["-o", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    printed, err = process.communicate(timeout=60)
    assert process.returncode == 130, f"exit code {process.returncode}; stdout: {printed!r}; stderr: {err!r}"
    done = len(list(out.glob("*.json")))
    assert 0 < done < 40
    again = subprocess.run(CLI + arguments + ["-o", str(out)], capture_output=True, text=True, env=ENV)
    assert again.returncode == 2 and "exists; use --overwrite to replace it, or --skip-existing" in again.stderr
    resumed = subprocess.run(CLI + arguments + ["--skip-existing", "-o", str(out)], capture_output=True, text=True,
                             env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"for {40 - done} images in" in resumed.stdout
    assert f"kept the outputs of {done} images already done (--skip-existing)" in resumed.stdout
    assert _checksums(out) == _checksums(tmp_path / "whole")


def test_skip_existing_refuses_outputs_made_with_other_settings(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    assert run_cli(tmp_path / "a.png", "-k", "blur", "-o", tmp_path / "o").returncode == 0
    kept = run_cli(tmp_path / "a.png", "-k", "blur", "--skip-existing", "-o", tmp_path / "o")
    assert kept.returncode == 0 and "wrote 0 files for 0 images" in kept.stdout
    other = run_cli(tmp_path / "a.png", "-k", "blur", "--strides", "2", "--skip-existing", "-o", tmp_path / "o")
    assert other.returncode == 2 and other.stderr.splitlines() == [
        f"convlayer filter: error: {tmp_path / 'o' / 'a.json'} was written with other settings (strides); use "
        f"--overwrite to replace its outputs, or another -o"]
    both = run_cli(tmp_path / "a.png", "-k", "blur", "--skip-existing", "--overwrite", "-o", tmp_path / "o")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
