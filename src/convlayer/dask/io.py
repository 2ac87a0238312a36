"""Images from files as lazy Dask arrays: :func:`read_image` (one TIFF or Zarr image, read
region by region) and :func:`read_images` (a folder of photos as one batch)."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .. import images
from .._args import as_int

DEFAULT_CHUNK = 4096  # rows and columns per chunk when neither the user nor the file says


def read_image(path: "str | Path", chunks: "int | tuple[int, int] | None" = None) -> da.Array:
    """One image as a lazy ``(h, w, c)`` Dask array, read chunk by chunk where the format allows.

    Parameters
    ----------
    path : str or Path
        A Zarr array store (a folder such as ``scene.zarr`` holding an array of shape
        (h, w) or (h, w, c)), a TIFF file (read region by region through tifffile's Zarr
        view), or any image :func:`convlayer.images.read` reads (read whole, then chunked).
    chunks : int or (int, int), optional
        Rows and columns per chunk; all channels are in one chunk. Default: the Zarr
        store's own chunks, 4096 for other files.

    Returns
    -------
    dask.array.Array, shape (h, w, c)
        The pixels as stored (a 2-D image gets ``c = 1``).

    Raises
    ------
    convlayer.images.ImageError
        A missing or unreadable file, a Zarr group, an array that is not one image.

    Examples
    --------
    >>> import tempfile, tifffile, numpy as np
    >>> path = tempfile.mkdtemp() + "/a.tif"
    >>> tifffile.imwrite(path, np.zeros((5, 6, 3), np.uint8))
    >>> read_image(path, chunks=4).chunks
    ((4, 1), (4, 2), (3,))
    """
    path = Path(path)
    if images.is_zarr_store(path):
        source = _zarr_array(path)
    elif path.suffix.lower() in (".tif", ".tiff") and path.is_file() and path.stat().st_size:
        source = _TiffImage(path)
    else:
        stored, _ = images.read(path)  # Pillow's formats cannot be read by region
        source = stored
    shape = tuple(source.shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] > 4):
        raise images.ImageError(f"{path}: an array of shape {shape} is not one (h, w, c) image")
    rows, cols = _chunk_pair(chunks, source)
    pixels = da.from_array(source, chunks=(rows, cols) + ((-1,) if len(shape) == 3 else ()),
                           meta=np.empty((0,) * len(shape), source.dtype))
    return pixels if pixels.ndim == 3 else pixels[:, :, None]


def _chunk_pair(chunks, source) -> tuple[int, int]:
    if chunks is None:
        own = getattr(source, "chunks", None)
        return tuple(own[:2]) if isinstance(own, tuple) else (DEFAULT_CHUNK, DEFAULT_CHUNK)
    return (chunks, chunks) if isinstance(chunks, int) else tuple(chunks)


def _zarr_array(path: Path):
    import zarr

    try:
        found = zarr.open(str(path), mode="r")
    except Exception as error:  # zarr raises many kinds; each is an unreadable store
        raise images.ImageError(f"{path}: not a readable Zarr store ({images.first_line(error)})") from None
    if not hasattr(found, "shape") or not hasattr(found, "dtype"):
        raise images.ImageError(f"{path}: a Zarr group, not an array; give the array's folder inside it")
    return found


class _TiffImage:
    """A TIFF's first image, read region by region; it holds only the path, so it pickles."""

    def __init__(self, path: Path):
        import tifffile

        self.path = str(path)
        try:
            with images.quiet_tifffile(), tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                self.shape, self.dtype = tuple(series.shape), np.dtype(series.dtype)
        except Exception as error:  # tifffile raises many kinds; each is a bad file
            raise images.ImageError(f"{path}: not a readable TIFF image ({images.first_line(error)})") from None
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        import tifffile
        import zarr

        with images.quiet_tifffile(), tifffile.imread(self.path, aszarr=True) as store:
            return zarr.open(store, mode="r")[key]


def read_images(paths, *, mode: str = "rgb", batch_size: int = 64) -> da.Array:
    """Many same-size images (a folder, or a list of files) as one lazy batch ``(n, h, w, c)``.

    Each chunk is a batch of ``batch_size`` images, read and prepared by the task that
    uses it (on a cluster, by a worker), so the batch never sits in memory whole.

    Parameters
    ----------
    paths : str, Path or sequence of them
        A folder (its image files, sorted by name) or image files.
    mode : {'rgb', 'gray'}
        As in :func:`convlayer.images.prepare`: three colour channels or luminance.
    batch_size : int
        Images per chunk.

    Returns
    -------
    dask.array.Array, shape (n, h, w, c)
        ``h, w, c`` and the dtype come from the first image; computing a batch with an
        image of another shape raises :class:`convlayer.images.ImageError`.

    Examples
    --------
    >>> import tempfile, tifffile, numpy as np
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     tifffile.imwrite(folder / f"{i}.tif", np.full((4, 5, 3), i, np.uint8))
    >>> batch = read_images(folder, batch_size=2)
    >>> batch.shape, batch.chunks[0], int(batch[2].max().compute())
    ((3, 4, 5, 3), (2, 1), 2)
    """
    files = _image_files(paths)
    batch_size = as_int("batch_size", batch_size, minimum=1)
    first = _prepared(files[0], mode)
    parts = [
        da.from_delayed(dask.delayed(_read_batch)(files[start:start + batch_size], mode, first.shape),
                        (len(files[start:start + batch_size]),) + first.shape, first.dtype)
        for start in range(0, len(files), batch_size)
    ]
    return da.concatenate(parts)


def _image_files(paths) -> list:
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        found = sorted(p for p in Path(paths).iterdir() if p.is_file() and images.is_image_path(p))
    else:
        found = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not found:
        raise ValueError(f"paths must name image files or a folder of them; got {paths!r} with none")
    return found


def _prepared(path: Path, mode: str) -> np.ndarray:
    stored, _ = images.read(path)
    return images.prepare(stored, mode)[0]


def _read_batch(files: list, mode: str, shape: tuple) -> np.ndarray:
    """Read, prepare and stack one batch of images, each of the expected shape."""
    pixels = [_prepared(path, mode) for path in files]
    for path, image in zip(files, pixels):
        if image.shape != shape:
            raise images.ImageError(f"{path}: shape {image.shape} differs from the first image's {shape}")
    return np.stack(pixels)
