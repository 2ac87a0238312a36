"""Reading and writing images: one small module, every failure one clear line.

Pillow reads PNG, JPEG, BMP, GIF and WebP; tifffile reads TIFF at full depth (any bit
depth, any channel count). Both are imported when an image is read, not at
``import convlayer``. Pixel values are kept as stored: 0..255 for 8-bit images,
0..65535 for 16-bit ones. Of an animated image (GIF, APNG, WebP) the first frame is read,
and a note says how many frames were left out.

What each reader really raises on a bad file (missing, empty, not an image, truncated,
header only, a decompression bomb) becomes an :class:`ImageError`, a ``ValueError`` whose
message names the file. The readers print nothing: tifffile's log messages about a corrupt
file are silenced while it reads (:func:`quiet_tifffile`).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np

from ._files import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
LUMINANCE = np.array([0.2125, 0.7154, 0.0721])  # Rec. 709, as skimage.color.rgb2gray


class ImageError(ValueError):
    """An image that cannot be read or written; the message names the file."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_zarr_store(path: "str | Path") -> bool:
    """A folder holding a Zarr array or group (format 2 or 3)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


def read(path: "str | Path") -> tuple[np.ndarray, list[str]]:
    """Read an image as stored; return ``(pixels (h, w, c), notes)``.

    ``c`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); palette images (every GIF,
    palette PNGs) are read as their colours, RGB or, with a transparent colour, RGBA, as
    Pillow's ``convert`` gives them (a GIF whose palette is all grays, which Pillow opens as
    gray, stays gray); other Pillow modes are expanded to RGB(A). Of an animated image (GIF,
    APNG, WebP) only the first frame is read, and a note says so: the other frames are
    ignored, not silently. ``notes`` are one-line remarks for the user, e.g. that note, or
    that a 16-bit PNG can only be read at 8 bits per channel.

    Raises
    ------
    ImageError
        For a missing, empty, corrupt or truncated file, or a decompression bomb.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty")
    if path.suffix.lower() in (".tif", ".tiff"):
        return _read_tiff(path), []
    return _read_pillow(path)


_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "level": logging.NOTSET}  # blocks open in any thread; the level they found


@contextlib.contextmanager
def quiet_tifffile():
    """Silence tifffile's logger (``logging.getLogger('tifffile')``) inside the block.

    tifffile logs each oddity of a corrupt file (a missing tag, a bad offset) as a warning,
    which without logging configured goes straight to stderr; the error convlayer raises
    already says the file is unreadable. The logger's level is restored when the last block
    open in any thread ends (Dask's threads read regions of one TIFF at once: each restoring
    the level it found would leave the logger silenced for good).
    """
    logger = logging.getLogger("tifffile")
    with _QUIET_LOCK:
        if not _quiet["depth"]:
            _quiet["level"] = logger.level
            logger.setLevel(logging.CRITICAL + 1)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if not _quiet["depth"]:
                logger.setLevel(_quiet["level"])


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with quiet_tifffile():
            pixels = np.asarray(tifffile.imread(path))
    except Exception as error:  # tifffile raises many kinds; each is a bad file
        raise ImageError(f"{path}: not a readable TIFF image ({first_line(error)})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] > 4:
        raise ImageError(f"{path}: a TIFF of shape {pixels.shape} is not one (h, w, c) image")
    return pixels


def _read_pillow(path: Path) -> tuple[np.ndarray, list[str]]:
    from PIL import Image

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                reduced, mode = _reduced_depth(image), image.mode
                image.load()
                pixels = _as_array(image)
                frames = _frame_count(image)
        notes = [f"{path}: {first_line(w.message)}" for w in caught]
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({first_line(error)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        raise ImageError(f"{path}: not a readable image ({first_line(error)})") from None
    if reduced:
        notes.append(f"{path}: {reduced}-bit {mode} PNG read at 8 bits per channel (Pillow cannot "
                     f"read it at full depth; save it as a 16-bit TIFF to keep every bit)")
    if frames != 1:
        notes.append(f"{path}: an animated image of {frames} frames; only the first was read"
                     if frames else f"{path}: only the first frame was read (what follows it is unreadable)")
    return pixels, notes


def _reduced_depth(image) -> int:
    """The bit depth Pillow will drop on load (16 for 16-bit colour PNGs), else 0.

    Only a PNG tile's decoder arguments start with a raw mode string such as 'RGB;16B';
    other formats put other things there (a GIF tile holds ``(bits, interlace, ...)``).
    """
    if image.format != "PNG" or not image.tile:
        return 0
    args = image.tile[0][3]
    rawmode = args[0] if isinstance(args, tuple) and args else args
    if not isinstance(rawmode, str):
        return 0
    return 16 if ";16" in rawmode and image.mode not in ("I;16", "I;16B", "I", "F") else 0


def _frame_count(image) -> int:
    """How many frames the image has (1 for a still one); 0 when the later ones are unreadable."""
    try:
        return int(getattr(image, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, struct.error, zlib.error):
        return 0


def _as_array(image) -> np.ndarray:
    """Pillow image to (h, w, c): palette expanded, 1-bit to 0/255, 16-bit kept."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I", "F"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    pixels = np.asarray(image)
    if image.mode == "I":  # 32-bit integers: narrow when the values allow
        pixels = pixels.astype(np.uint16) if 0 <= pixels.min() and pixels.max() < 2**16 else pixels
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def first_line(error) -> str:
    """The first line of an error's (or warning's) message; its type's name when it has none."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def prepare(pixels: np.ndarray, mode: str) -> tuple[np.ndarray, list[str]]:
    """What the layer sees: ``mode='rgb'`` gives (h, w, 3), ``'gray'`` (h, w, 1).

    Alpha is dropped (with a note); a gray image in 'rgb' mode has three equal channels, so
    one layer fits every image of a run. 'gray' is Rec. 709 luminance, in float32.
    """
    notes = []
    channels = pixels.shape[2]
    if channels in (2, 4):
        notes.append("alpha channel dropped")
        pixels = pixels[:, :, : channels - 1]
    if mode == "gray":
        if pixels.shape[2] == 1:
            return pixels, notes
        return (pixels.astype(np.float64) @ LUMINANCE).astype(np.float32)[:, :, None], notes
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels, notes


def display_scaling(values: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scale one output channel to uint8 for viewing; return it and the mapping used.

    Non-negative maps go linearly from 0..max to 0..255. Signed maps are scaled
    symmetrically, -a..a to 0..255, so 0 is mid-gray (128). The mapping is returned so a
    sidecar can state it: ``value = low + pixel / 255 * (high - low)``. The range is that of
    the finite values: NaN is shown as ``low``, +inf as 255 and -inf as 0.
    """
    values = np.asarray(values, dtype=np.float64)  # float32's extremes overflow on the way to 0..255
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if low < 0:
        top = max(-low, high)
        low, high = -top, top
    else:
        low = 0.0
    span = high - low if high > low else 1.0
    with np.errstate(over="ignore"):  # float64 extremes: they saturate, as they should
        beyond = np.nan_to_num(values, nan=low, posinf=high + span, neginf=low - span)
        scaled = np.clip((beyond - low) / span * 255, 0, 255)
    return np.round(scaled).astype(np.uint8), {"low": low, "high": high, "pixel": "round((value - low) / (high - low) * 255)"}


def write_png(path: "str | Path", pixels: np.ndarray) -> Path:
    """Write a uint8 (h, w) or (h, w, 3) array as PNG, whole or not at all."""
    from PIL import Image

    picture = Image.fromarray(pixels)
    # Fast zlib level: these are display images, and level 6 tripled the time of a run.
    return atomic_write(path, lambda temporary: picture.save(temporary, format="PNG", compress_level=1))
