"""The out-of-core dispatch: convlayer's ops on Dask arrays, chunk by chunk.

``convlayer.conv2d(dask_array, ...)`` comes here and returns a lazy Dask array with the
values of the in-memory call, chunked along N, H and W (never along channels). It works in
four steps, each an ordinary Dask operation, so any scheduler runs it (threads, processes,
a ``dask.distributed`` cluster):

1. the same checks as in memory (:func:`convlayer._validate.conv_args` on a zero-memory
   stand-in of the input's shape and dtype), and the input seen as ``(n, h, w, c)``;
2. *pad* by an index map: the padded border strips are the indices ``np.pad`` gives (or
   zeros), so every pad mode means exactly what NumPy means, even where the padding reaches
   across the image (reflect, wrap);
3. *align*: every row chunk but the last covers ``stride * m`` padded rows for ``m`` output
   rows, and borrows the ``span - stride`` rows its last window reaches into from the next
   chunk (``dask.array.overlap`` with ``boundary='none'``); the same for columns;
4. *compute*: the in-memory :func:`convlayer.conv2d` with ``padding='valid'`` on each block,
   which gives exactly that block's ``m`` output rows.

Also here: :func:`relu` on Dask arrays, :func:`predict` (a model batch by batch),
:func:`read_image` (a TIFF or Zarr image, read lazily) and :func:`read_images` (a folder of
photos as one lazy batch). Importing this module imports Dask; ``import convlayer`` does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dask
import dask.array as da
import numpy as np

from . import _validate, functional, images, shapes
from ._args import as_int
from .shapes import IntPair, Padding

__all__ = ["conv2d", "predict", "read_image", "read_images", "relu"]


def conv2d(
    x: da.Array,
    kernel,
    bias=None,
    *,
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
    groups: int = 1,
    flip: bool = False,
    pad_mode: str = "constant",
    data_format: str = "channels_last",
) -> da.Array:
    """:func:`convlayer.conv2d` on a Dask array: lazy, chunk by chunk, with the same values.

    Parameters
    ----------
    x : dask.array.Array, shape (h, w), (h, w, c) or (n, h, w, c)
        Any chunking; channels-first with ``data_format="channels_first"``.
    kernel, bias, strides, padding, dilation, groups, flip, pad_mode, data_format
        As for :func:`convlayer.conv2d`; ``kernel`` and ``bias`` are small in-memory arrays.

    Returns
    -------
    dask.array.Array, the shape and dtype of ``convlayer.conv2d(x.compute(), ...)``
        Chunked along images like ``x``; along rows (columns) in chunks of
        ``ceil(chunk / stride)`` output pixels, where ``chunk`` is ``x``'s largest row
        (column) chunk, or one chunk when ``x`` has one; all channels in one chunk.

    Raises
    ------
    ValueError, TypeError
        The errors of :func:`convlayer.conv2d`, before any chunk is computed.

    Notes
    -----
    Values equal the in-memory call: the per-block work is that call, on the block's
    padded rows. They can differ in the last bit, as BLAS may round a matrix product of
    fewer rows differently (within 1e-12 relative in float64 in the tests). Each block reads its chunk plus
    ``span - stride`` rows and columns of its neighbours (``span = (f - 1) * dilation + 1``),
    so chunks are at least that large; smaller ones are merged. Work memory per running
    task is one input block, one output block and :func:`convlayer.get_memory_budget`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, convlayer
    >>> x = da.from_array(np.arange(64.0).reshape(8, 8), chunks=4)
    >>> y = convlayer.conv2d(x, np.ones((3, 3)), strides=2)
    >>> y.chunks
    ((2, 2), (2, 2))
    >>> np.array_equal(y.compute(), convlayer.conv2d(x.compute(), np.ones((3, 3)), strides=2))
    True
    """
    stand_in = np.broadcast_to(np.zeros((), x.dtype), x.shape)  # shape and dtype, no memory
    args = _validate.conv_args(
        stand_in, kernel, bias, strides=strides, padding=padding, dilation=dilation,
        groups=groups, flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    geom = args.geom
    if 0 in geom.output_shape:
        return da.zeros(geom.output_shape, dtype=args.dtype)
    if 0 in (geom.h, geom.w, geom.c):  # no pixels in, some out: the bias over the padding
        return da.from_array(functional.conv2d(x.compute(), kernel, bias, strides=strides, padding=padding,
                                               dilation=dilation, groups=groups, flip=flip,
                                               pad_mode=pad_mode, data_format=data_format))
    nhwc = _validate._x_nhwc(x, geom)
    padded = _pad(nhwc, geom.pads, args.pad_mode)
    rows = _plan(nhwc.chunks[1], geom.out_h, geom.strides[0], shapes.span(geom.fh, geom.dilation[0]))
    cols = _plan(nhwc.chunks[2], geom.out_w, geom.strides[1], shapes.span(geom.fw, geom.dilation[1]))
    y = _correlate(padded, args, rows, cols)
    return _user_layout(y, geom)


def _pad(x: da.Array, pads, pad_mode: str) -> da.Array:
    """Pad rows (axis 1) and columns (axis 2) of ``(n, h, w, c)`` with NumPy's pad modes."""
    return _pad_axis(_pad_axis(x, 1, pads[0], pad_mode), 2, pads[1], pad_mode)


def _pad_axis(x: da.Array, axis: int, pads: tuple[int, int], pad_mode: str) -> da.Array:
    """Border strips gathered through the indices ``np.pad`` gives (-1 marks a zero)."""
    before, after = pads
    if before == after == 0:
        return x
    size = x.shape[axis]
    if pad_mode == "constant":
        source = np.pad(np.arange(size), pads, mode="constant", constant_values=-1)
    else:
        source = np.pad(np.arange(size), pads, mode=pad_mode)
    strips = [_strip(x, axis, source[:before], pad_mode), x, _strip(x, axis, source[before + size:], pad_mode)]
    return da.concatenate([strip for strip in strips if strip.shape[axis]], axis=axis)


def _strip(x: da.Array, axis: int, source: np.ndarray, pad_mode: str) -> da.Array:
    """The padded pixels that copy input pixels ``source`` along ``axis`` (zeros if constant)."""
    if pad_mode == "constant":
        shape = x.shape[:axis] + (len(source),) + x.shape[axis + 1:]
        chunks = x.chunks[:axis] + ((len(source),),) + x.chunks[axis + 1:]
        return da.zeros(shape, dtype=x.dtype, chunks=chunks)
    return da.take(x, source, axis=axis)


def _plan(in_chunks: Sequence[int], out_size: int, stride: int, span: int) -> tuple[int, ...]:
    """Output chunk sizes along one axis: ``ceil(chunk / stride)``, large enough for the halo.

    Every output chunk but the last reads ``stride * m`` padded pixels of its own and
    ``span - stride`` of the next chunk's, which must hold them.
    """
    if len(in_chunks) == 1:
        return (out_size,)
    smallest = max(-(-(span - stride) // stride), 1)
    size = max(-(-max(in_chunks) // stride), smallest)
    full, rest = divmod(out_size, size)
    return (size,) * full + ((rest,) if rest else ())


def _correlate(padded: da.Array, args: _validate.ConvArgs, rows, cols) -> da.Array:
    """Valid correlation of aligned, overlapping blocks into ``(n, out_h, out_w, k)`` chunks."""
    geom = args.geom
    (sh, sw), halo_h, halo_w = geom.strides, _halo(geom, 0), _halo(geom, 1)
    padded_chunks = (_input_chunks(rows, sh, padded.shape[1]), _input_chunks(cols, sw, padded.shape[2]))
    aligned = padded.rechunk((padded.chunks[0],) + padded_chunks + (padded.shape[3],))
    # Dask's overlap takes an asymmetric depth only with boundary='none': exactly the
    # after-only halo needed, and the image's last chunk has none (its window ends inside).
    blocks = da.overlap.overlap(aligned, depth={0: 0, 1: (0, halo_h), 2: (0, halo_w), 3: 0},
                                boundary="none", allow_rechunk=False)
    # trim=False-like blocks: the output chunks must be given, Dask cannot infer them.
    return blocks.map_blocks(
        _correlate_block, args.kernel, args.bias, geom.strides, geom.dilation, geom.groups,
        chunks=(aligned.chunks[0], rows, cols, (geom.k,)), dtype=args.dtype,
        meta=np.empty((0, 0, 0, 0), args.dtype),
    )


def _halo(geom: shapes.ConvGeometry, axis: int) -> int:
    """Padded pixels a block borrows from the next one: ``span - stride``, or none."""
    kernel = (geom.fh, geom.fw)[axis]
    return max(shapes.span(kernel, geom.dilation[axis]) - geom.strides[axis], 0)


def _input_chunks(out_chunks, stride: int, padded_size: int) -> tuple[int, ...]:
    """Padded input chunks: ``stride * m`` for each output chunk, the rest to the last."""
    sizes = [stride * m for m in out_chunks[:-1]]
    return tuple(sizes) + (padded_size - sum(sizes),)


def _correlate_block(block: np.ndarray, kernel, bias, strides, dilation, groups) -> np.ndarray:
    """One block's output: the in-memory valid correlation of its padded rows and columns."""
    return functional.conv2d(block, kernel, bias, strides=strides, padding="valid",
                             dilation=dilation, groups=groups)


def _user_layout(y: da.Array, geom: shapes.ConvGeometry) -> da.Array:
    """Undo the ``(n, out_h, out_w, k)`` view: drop axes, or move channels first."""
    if geom.kernel_rank < 4:
        y = y[..., 0]
    elif geom.channels_first:
        y = y.transpose(0, 3, 1, 2)
    return y if geom.batched else y[0]


def relu(x: da.Array) -> da.Array:
    """:func:`convlayer.relu` on a Dask array: ``max(x, 0)``, lazily, x's dtype and chunks.

    >>> import dask.array as da
    >>> relu(da.from_array([-1.5, 0.0, 2.0])).compute()
    array([0., 0., 2.])
    """
    _validate.as_real_array("x", np.zeros((), x.dtype))  # the dtype checks, on no data
    return da.maximum(x, x.dtype.type(0))


def predict(model, x: da.Array, batch_size: int = 256) -> da.Array:
    """A model's outputs for a Dask array of examples, batch by batch, lazily.

    Parameters
    ----------
    model : convlayer.nn.Sequential (or anything with ``forward(batch)``)
        Sent to each worker once; its ``forward`` runs on batches of ``batch_size``.
    x : dask.array.Array, shape (n, ...)
        The examples; each batch is one chunk of ``x`` rechunked along ``n`` only.
    batch_size : int

    Returns
    -------
    dask.array.Array, shape (n, ...)
        ``model.forward`` of each batch, concatenated; equal to ``model.predict(x.compute())``.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from convlayer.nn import Conv2D, Flatten, Dense, Sequential
    >>> model = Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 4 * 4, 3)], seed=0)
    >>> x = da.zeros((10, 4, 4, 1), chunks=5)
    >>> predict(model, x, batch_size=4).chunks
    ((4, 4, 2), (3,))
    """
    batch_size = as_int("batch_size", batch_size, minimum=1)
    batches = x.rechunk((batch_size,) + tuple(-1 for _ in x.shape[1:]))
    probe = model.forward(np.zeros((1,) + x.shape[1:], x.dtype))
    shared = dask.delayed(model, traverse=False)  # one task holds the model; batches refer to it
    parts = [
        da.from_delayed(dask.delayed(_forward)(shared, batch), (size,) + probe.shape[1:], probe.dtype)
        for batch, size in zip(batches.to_delayed().ravel(), batches.chunks[0])
    ]
    return da.concatenate(parts) if parts else da.from_array(model.forward(np.asarray(x)))


def _forward(model, batch: np.ndarray) -> np.ndarray:
    """One batch through the model (inference: no dropout)."""
    return model.forward(batch)



# Images from files, read lazily.

DEFAULT_CHUNK = 4096  # rows and columns per chunk when neither the user nor the file says


def is_zarr_store(path: "str | Path") -> bool:
    """A folder holding a Zarr array or group (format 2 or 3)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


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
    if is_zarr_store(path):
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
        raise images.ImageError(f"{path}: not a readable Zarr store ({images._first_line(error)})") from None
    if not hasattr(found, "shape") or not hasattr(found, "dtype"):
        raise images.ImageError(f"{path}: a Zarr group, not an array; give the array's folder inside it")
    return found


class _TiffImage:
    """A TIFF's first image, read region by region; it holds only the path, so it pickles."""

    def __init__(self, path: Path):
        import tifffile

        self.path = str(path)
        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                self.shape, self.dtype = tuple(series.shape), np.dtype(series.dtype)
        except Exception as error:  # tifffile raises many kinds; each is a bad file
            raise images.ImageError(f"{path}: not a readable TIFF image ({images._first_line(error)})") from None
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        import tifffile
        import zarr

        with tifffile.imread(self.path, aszarr=True) as store:
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
