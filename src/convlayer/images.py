"""Reading and writing images: one small module, every failure one clear line.

Pillow reads PNG, JPEG, BMP, GIF and WebP; tifffile reads TIFF at full depth (any bit
depth, any channel count). Both are imported when an image is read, not at
``import convlayer``. Pixel values are kept as stored: 0..255 for 8-bit images,
0..65535 for 16-bit ones. A JPEG's EXIF orientation is applied, so a phone's portrait
photo is read upright. ``sample:NAME`` reads one of the photos that ship inside
scikit-image (:data:`SAMPLES`), so examples run on a fresh install. Of an animated image (GIF, APNG, WebP) the first frame is read,
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


SAMPLE_PREFIX = "sample:"
SAMPLES = {  # the photos that ship inside scikit-image (skimage.data), no download
    "astronaut": "Eileen Collins, 512x512 RGB",
    "chelsea": "a cat, 300x451 RGB",
    "coffee": "a cup of coffee, 400x600 RGB",
    "rocket": "a rocket launch, 427x640 RGB",
    "camera": "a cameraman, 512x512 gray",
}
ORIENTATIONS = {  # EXIF orientation: what reading it upright does
    2: "mirrored left to right", 3: "rotated 180 degrees", 4: "mirrored top to bottom",
    5: "mirrored along the main diagonal", 6: "rotated 90 degrees clockwise",
    7: "mirrored along the other diagonal", 8: "rotated 90 degrees counter-clockwise",
}


class ImageError(ValueError):
    """An image that cannot be read or written; the message names the file."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_sample(source: "str | Path") -> bool:
    """Whether ``source`` names a shipped sample photo, ``sample:NAME``."""
    return str(source).lower().startswith(SAMPLE_PREFIX)


def source_stem(source: "str | Path") -> str:
    """The name outputs take: 'photo' for 'photos/photo.jpg', 'coffee' for 'sample:coffee'."""
    return str(source)[len(SAMPLE_PREFIX):].lower() if is_sample(source) else Path(source).stem


def read_sample(source: "str | Path") -> np.ndarray:
    """A shipped sample photo, ``sample:NAME`` or ``NAME``, as (h, w, c) uint8.

    >>> read_sample("sample:coffee").shape
    (400, 600, 3)
    """
    name = source_stem(source) if is_sample(source) else str(source).lower()
    if name not in SAMPLES:
        raise ImageError(f"{source}: no such sample photo; choose from "
                         f"{', '.join(SAMPLE_PREFIX + n for n in SAMPLES)}")
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


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
    that a 16-bit PNG can only be read at 8 bits per channel. ``path`` may be
    ``sample:NAME``, a photo of :data:`SAMPLES`. A JPEG (or other image) with an EXIF
    orientation is turned upright, as a phone or an image viewer shows it, with a note.

    Raises
    ------
    ImageError
        For a missing, empty, corrupt or truncated file, or a decompression bomb.
    """
    if is_sample(path):
        return read_sample(path), []
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
                upright, orientation = _upright(image)
                pixels = _as_array(upright)
                frames = _frame_count(image)
        notes = [f"{path}: {first_line(w.message)}" for w in caught]
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({first_line(error)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        raise ImageError(f"{path}: not a readable image ({first_line(error)})") from None
    if reduced:
        notes.append(f"{path}: {reduced}-bit {mode} PNG read at 8 bits per channel (Pillow cannot "
                     f"read it at full depth; save it as a 16-bit TIFF to keep every bit)")
    if orientation in ORIENTATIONS:
        notes.append(f"{path}: EXIF orientation {orientation}: {ORIENTATIONS[orientation]} to stand upright")
    if mode in ("P", "PA"):
        notes.append(f"{path}: a palette image, read as its {'RGBA' if pixels.shape[2] == 4 else 'RGB'} colours")
    if frames != 1:
        notes.append(f"{path}: an animated image of {frames} frames; only the first was read"
                     if frames else f"{path}: only the first frame was read (what follows it is unreadable)")
    return pixels, notes


def _upright(image):
    """The image as a viewer shows it (EXIF orientation applied) and the orientation found."""
    from PIL import ImageOps

    orientation = image.getexif().get(0x0112, 1)  # the Orientation tag
    if orientation not in ORIENTATIONS:
        return image, orientation
    return ImageOps.exif_transpose(image), orientation


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


def prepare(pixels: np.ndarray, mode: str, *, repeat_gray: bool = True) -> tuple[np.ndarray, list[str]]:
    """What the layer sees, and notes that say what was done to get it.

    ``mode='rgb'`` keeps the colour channels, (h, w, 3); a gray image is repeated over
    three channels (so one layer fits every image of a batch) unless ``repeat_gray`` is
    False, when it stays (h, w, 1). ``'gray'`` gives (h, w, 1): Rec. 709 luminance of a
    colour image, in float32. Alpha is dropped. Every change is a note, as is a 16-bit image
    (its values, 0..65535, are filtered as they are: 257 times those of the same image at 8
    bits), so a gray photo filtered 3x larger than expected never goes unexplained.
    """
    notes = []
    channels = pixels.shape[2]
    if channels in (2, 4):
        notes.append(f"alpha channel dropped (the layer sees the {'gray' if channels == 2 else 'R, G, B'} channels)")
        pixels = pixels[:, :, : channels - 1]
    if pixels.dtype.itemsize == 2 and pixels.dtype.kind in "ui":
        notes.append(f"a 16-bit image: its values (0..{np.iinfo(pixels.dtype).max}) are filtered as they are")
    if mode == "gray":
        if pixels.shape[2] == 1:
            return pixels, notes
        notes.append("colour converted to gray (Rec. 709 luminance, --mode gray)")
        return (pixels.astype(np.float64) @ LUMINANCE).astype(np.float32)[:, :, None], notes
    if pixels.shape[2] == 1 and repeat_gray:
        notes.append("a gray image, repeated over R, G and B (each filter sees it three times)")
        pixels = np.repeat(pixels, 3, axis=2)
    elif pixels.shape[2] == 1:
        notes.append("a gray image, filtered as its one channel")
    return pixels, notes


SCALES = ("percentile", "minmax", "none")
PERCENTILES = (2.0, 98.0)  # display scaling keeps these, as scikit-image's contrast stretching does


def display_scaling(values: np.ndarray, scale: str = "percentile") -> tuple[np.ndarray, dict]:
    """Scale one output channel to uint8 for viewing; return it and the mapping used.

    ``scale``:

    - ``'percentile'`` (robust): a signed map goes from -a..a to 0..255, 0 mid-gray (128),
      with ``a`` the 98th percentile of ``|value|``; a map of one sign from its 2nd to its
      98th percentile (:data:`PERCENTILES`). Edge maps are heavy-tailed: scaled to their
      single strongest edge they are nearly black, while here the strongest 2 % saturate.
    - ``'minmax'``: the same with ``a`` the largest ``|value|``, and 0..max for a map that
      is not negative.
    - ``'none'``: the values themselves, rounded and clipped to 0..255, as an image editor
      shows them.

    The mapping is returned so a sidecar can state it: ``value = low + pixel / 255 * (high -
    low)``, with how many values lay below ``low`` and above ``high`` (clipped). The range is that of the finite values: NaN
    is shown as ``low``, +inf as 255 and -inf as 0.
    """
    values = np.asarray(values, dtype=np.float64)  # float32's extremes overflow on the way to 0..255
    low, high, record = _display_range(values[np.isfinite(values)], scale)
    span = high - low if high > low else 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # float64 extremes: they saturate, as they should
        beyond = np.nan_to_num(values, nan=low, posinf=high + span, neginf=low - span)
        scaled = (beyond - low) / span * 255
        clipped = {"clipped_low": int(np.count_nonzero(beyond < low)),  # shown as 0 and 255
                   "clipped_high": int(np.count_nonzero(beyond > high))}
    shown = np.round(np.clip(scaled, 0, 255)).astype(np.uint8)
    return shown, {"scale": scale, **record, "low": low, "high": high,
                   "pixel": "round((value - low) / (high - low) * 255), clipped to 0..255", **clipped}


def _display_range(finite: np.ndarray, scale: str) -> tuple[float, float, dict]:
    """The values shown as 0 and 255, and how they were chosen."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(repr, SCALES))}; got {scale!r}")
    if scale == "none" or not finite.size:
        return 0.0, 255.0, {}
    signed = finite.min() < 0 < finite.max()
    if scale == "minmax":  # 0..max, or symmetric about 0 when anything is negative
        low, high = float(finite.min()), float(finite.max())
        if low < 0:
            return -max(-low, high), max(-low, high), {"signed": True}
        return 0.0, high, {"signed": False}
    if signed:
        top = float(np.percentile(np.abs(finite), PERCENTILES[1]))
        if top > 0:
            return -top, top, {"signed": True, "percentile": PERCENTILES[1]}
        return _display_range(finite, "minmax")
    low, high = (float(v) for v in np.percentile(finite, PERCENTILES))
    if high <= low:
        return _display_range(finite, "minmax")
    return low, high, {"signed": False, "percentiles": list(PERCENTILES)}


def editor_pixels(values: np.ndarray, dtype, scale: str = "none") -> tuple[np.ndarray, dict]:
    """A colour (or gray) result as an image of the input's ``dtype``; and how it was made.

    ``scale='none'`` does what an image editor does with a filter's result: an integer image
    is rounded and clipped to its type's range (0..255, 0..65535), a float image kept as it
    is. ``'percentile'`` and ``'minmax'`` stretch all channels together (so colours keep
    their balance) from their 2nd and 98th percentiles, or their extremes, to that range.
    """
    dtype = np.dtype(dtype)
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    top = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    bottom = float(np.iinfo(dtype).min) if dtype.kind in "ui" else 0.0
    record = {"scale": scale}
    if scale != "none" and finite.size:
        low, high = ((float(finite.min()), float(finite.max())) if scale == "minmax"
                     else tuple(float(v) for v in np.percentile(finite, PERCENTILES)))
        if high > low:
            values = bottom + (values - low) / (high - low) * (top - bottom)
            record.update({"low": low, "high": high, "to": [bottom, top]})
    if dtype.kind == "f":
        return values.astype(np.float32), record
    with np.errstate(invalid="ignore"):
        record.update({"clipped_low": int(np.count_nonzero(values < bottom - 0.5)),
                       "clipped_high": int(np.count_nonzero(values > top + 0.5)), "clip": [bottom, top]})
        shown = np.clip(np.round(np.nan_to_num(values, nan=bottom)), bottom, top).astype(dtype)
    return shown, record


def write_image(path: "str | Path", pixels: np.ndarray) -> Path:
    """Write an (h, w, 1) or (h, w, 3) image of any depth, whole or not at all.

    PNG for 8-bit, and for 16-bit gray; any other depth (16-bit colour, float) as TIFF,
    which ``path`` must then name.
    """
    if Path(path).suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return atomic_write(path, lambda temporary: tifffile.imwrite(
            temporary, pixels if pixels.shape[2] > 1 else pixels[:, :, 0],
            photometric="rgb" if pixels.shape[2] == 3 else "minisblack"))
    if pixels.dtype != np.uint8 and not (pixels.dtype == np.uint16 and pixels.shape[2] == 1):
        raise ImageError(f"{path}: a PNG holds 8-bit images and 16-bit gray ones; got "
                         f"{pixels.dtype} with {pixels.shape[2]} channels (write a .tif)")
    return write_png(path, pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def write_png(path: "str | Path", pixels: np.ndarray) -> Path:
    """Write a uint8 (h, w) or (h, w, 3) array, or a uint16 (h, w) one, as PNG, whole or not at all."""
    from PIL import Image

    picture = Image.fromarray(pixels)
    # Fast zlib level: these are display images, and level 6 tripled the time of a run.
    return atomic_write(path, lambda temporary: picture.save(temporary, format="PNG", compress_level=1))
