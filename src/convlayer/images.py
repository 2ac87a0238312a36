"""Reading and writing images: one small module, every failure one clear line.

Pillow reads PNG, JPEG, BMP, GIF and WebP; tifffile reads TIFF at full depth (any bit
depth, any channel count). Both are imported when an image is read, not at
``import convlayer``. Pixel values are kept as stored: 0..255 for 8-bit images,
0..65535 for 16-bit ones.

What each reader really raises on a bad file (missing, empty, not an image, truncated,
header only, a decompression bomb) becomes an :class:`ImageError`, a ``ValueError`` whose
message names the file.
"""

from __future__ import annotations

import struct
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


def read(path: "str | Path") -> tuple[np.ndarray, list[str]]:
    """Read an image as stored; return ``(pixels (h, w, c), notes)``.

    ``c`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); palette and other Pillow
    modes are expanded to RGB(A). ``notes`` are one-line remarks for the user, e.g. when a
    16-bit PNG can only be read at 8 bits per channel.

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


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        pixels = np.asarray(tifffile.imread(path))
    except Exception as error:  # tifffile raises many kinds; each is a bad file
        raise ImageError(f"{path}: not a readable TIFF image ({_first_line(error)})") from None
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
        notes = [f"{path}: {_first_line(w.message)}" for w in caught]
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({_first_line(error)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        raise ImageError(f"{path}: not a readable image ({_first_line(error)})") from None
    if reduced:
        notes.append(f"{path}: {reduced}-bit {mode} PNG read at 8 bits per channel (Pillow cannot "
                     f"read it at full depth; save it as a 16-bit TIFF to keep every bit)")
    return pixels, notes


def _reduced_depth(image) -> int:
    """The bit depth Pillow will drop on load (16 for 16-bit colour PNGs), else 0."""
    rawmode = image.tile[0][3] if image.tile else ""
    rawmode = rawmode[0] if isinstance(rawmode, tuple) else str(rawmode)
    return 16 if ";16" in rawmode and image.mode not in ("I;16", "I;16B", "I", "F") else 0


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


def _first_line(error) -> str:
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
    sidecar can state it: ``value = low + pixel / 255 * (high - low)``.
    """
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if low < 0:
        top = max(-low, high)
        low, high = -top, top
    else:
        low = 0.0
    span = high - low if high > low else 1.0
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) / span * 255, 0, 255)
    return np.round(scaled).astype(np.uint8), {"low": low, "high": high, "pixel": "round((value - low) / (high - low) * 255)"}


def write_png(path: "str | Path", pixels: np.ndarray) -> Path:
    """Write a uint8 (h, w) or (h, w, 3) array as PNG, whole or not at all."""
    from PIL import Image

    picture = Image.fromarray(pixels)
    # Fast zlib level: these are display images, and level 6 tripled the time of a run.
    return atomic_write(path, lambda temporary: picture.save(temporary, format="PNG", compress_level=1))
