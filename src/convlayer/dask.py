"""The out-of-core dispatch: convlayer's ops on Dask arrays, chunk by chunk.

``convlayer.conv2d(dask_array, ...)`` comes here and returns a lazy Dask array with the
values of the in-memory call, chunked along N, H and W (never along channels). It works in
four steps:

1. the same checks as in memory (:func:`convlayer._validate.conv_args` on a zero-memory
   stand-in of the input's shape and dtype), and the input seen as ``(n, h, w, c)``;
2. *align*: rows are cut where the input's chunks are cut, if those cuts are multiples of
   the stride (else at multiples of it: a rechunk), so output chunk ``i`` is the windows
   that start in input chunk ``i``; chunks smaller than the halo are merged;
3. *gather*, by index maps: a block's padded rows are ``np.pad`` of the row indices
   (-1 for a zero), so every pad mode means exactly what NumPy means, even where padding
   reaches across the image (reflect twice, wrap); a block reads its own chunk and copies of
   the few rows and columns it needs from other chunks;
4. *compute*: a valid correlation of each block by the algorithm layer
   (:func:`convlayer.algorithms.choose.correlate`, as the in-memory call runs it, on the
   kernel checked and cast once in step 1), which gives exactly that block's output pixels.

Also here: :func:`relu` on Dask arrays, :func:`predict` (a model batch by batch),
:func:`read_image` (a TIFF or Zarr image, read lazily) and :func:`read_images` (a folder of
photos as one lazy batch). Importing this module imports Dask; ``import convlayer`` does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import _validate, images, shapes
from .algorithms import buffers, choose, spread
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
    algorithm: str = "auto",
) -> da.Array:
    """:func:`convlayer.conv2d` on a Dask array: lazy, chunk by chunk, with the same values.

    Parameters
    ----------
    x : dask.array.Array, shape (h, w), (h, w, c) or (n, h, w, c)
        Any chunking; channels-first with ``data_format="channels_first"``.
    kernel, bias, strides, padding, dilation, groups, flip, pad_mode, data_format, algorithm
        As for :func:`convlayer.conv2d`; ``kernel`` and ``bias`` are small in-memory arrays,
        and ``algorithm`` (checked now) is what each block uses ('auto' chooses per block).

    Returns
    -------
    dask.array.Array, the shape and dtype of ``convlayer.conv2d(x.compute(), ...)``
        Chunked along images like ``x``; output row chunk ``i`` holds the windows that
        start in ``x``'s row chunk ``i`` (about ``chunk / stride`` rows), and the same for
        columns; all channels in one chunk.

    Raises
    ------
    ValueError, TypeError
        The errors of :func:`convlayer.conv2d`, before any chunk is computed.

    Notes
    -----
    Each block is computed as the in-memory call computes a ``padding='valid'`` call on the
    padded pixels its windows read, so values equal the in-memory call; they can differ in
    the last bit, as BLAS may round a product of fewer rows differently (the tests allow
    1e-12 relative in float64, and most blocks agree bit for bit).

    Row chunks are cut where ``x``'s are if those cuts are multiples of the stride (else
    ``x`` is rechunked to ``stride * ceil(chunk / stride)``); chunks shorter than the halo,
    ``max(before, span - stride - before)`` with ``span = (f - 1) * dilation + 1`` and
    ``before`` the leading padding, are merged with the next. A block reads its own chunk
    and copies of the few rows and columns it needs from the others: the peak memory of
    the threaded scheduler is about one and a half rows of chunks, plus, per running task,
    one block, its output and :func:`convlayer.get_memory_budget`.

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
    geom, algorithm = args.geom, choose.check_name(algorithm)
    if 0 in geom.output_shape:
        return da.zeros(geom.output_shape, dtype=args.dtype)
    if 0 in (geom.h, geom.w, geom.c):  # no pixels in, some out: the bias over the padding
        result, nhwc = _validate.new_output(geom, args.dtype)
        _correlate_into(_validate.x_nhwc(x.compute(), geom), args.kernel, args.bias, geom,
                        args.pad_mode, nhwc, algorithm)
        return da.from_array(result)
    nhwc = _validate.x_nhwc(x, geom)
    rows = _axis_plan(nhwc.chunks[1], geom, 0, args.pad_mode)
    cols = _axis_plan(nhwc.chunks[2], geom, 1, args.pad_mode)
    aligned = nhwc.rechunk((nhwc.chunks[0], rows.chunks, cols.chunks, geom.c))  # no-op when aligned
    return _user_layout(_correlate(aligned, args, rows, cols, algorithm), geom)


# Step 2: chunks aligned to the stride.


class _AxisPlan(NamedTuple):
    """How one axis is cut, and which input pixel each padded position copies."""

    chunks: tuple  # input chunk sizes; every cut a multiple of the stride
    out: tuple  # output chunk sizes: chunk i holds the windows that start in input chunk i
    source: np.ndarray  # input index of each padded position, -1 for a zero
    stride: int
    span: int


def _axis_plan(in_chunks: Sequence[int], geom: shapes.ConvGeometry, axis: int,
               pad_mode: str) -> _AxisPlan:
    """Cut an axis at input-chunk boundaries ``b`` that are multiples of the stride ``s``.

    Output chunk ``i`` is then output pixels ``b[i] / s`` to ``b[i+1] / s``; its windows
    read padded pixels ``b[i]`` to ``b[i+1] - s + span``: input chunk ``i`` less its first
    ``before`` pixels (the leading padding's width), plus the previous chunk's last
    ``before`` and the next chunk's first ``span - s - before``. Chunks shorter than that
    halo are merged, so a block reads little beyond its own chunk.
    """
    size, stride = (geom.h, geom.w)[axis], geom.strides[axis]
    pads = geom.pads[axis]
    span = shapes.span((geom.fh, geom.fw)[axis], geom.dilation[axis])
    out_size = (geom.out_h, geom.out_w)[axis]
    cuts = np.cumsum(in_chunks)[:-1].tolist()
    if any(cut % stride for cut in cuts):
        step = stride * -(-max(in_chunks) // stride)
        cuts = list(range(step, size, step))
    halo = max(pads[0], span - stride - pads[0], 1)
    bounds = _merged(cuts, halo, (out_size - 1) * stride, size)
    chunks = tuple(np.diff([0] + bounds + [size]).tolist())
    out = tuple(np.diff([0] + [b // stride for b in bounds] + [out_size]).tolist())
    if pad_mode == "constant":
        source = np.pad(np.arange(size), pads, mode="constant", constant_values=-1)
    else:
        source = np.pad(np.arange(size), pads, mode=pad_mode)
    return _AxisPlan(chunks, out, source, stride, span)


def _merged(cuts: list, least: int, last_start: int, size: int) -> list:
    """The cuts that keep every chunk at least ``least`` long and start no output chunk past
    the last window (``last_start``)."""
    kept = []
    for cut in cuts:
        if cut - (kept[-1] if kept else 0) >= least and cut <= last_start:
            kept.append(cut)
    while kept and size - kept[-1] < least:
        kept.pop()
    return kept


def _window(plan: _AxisPlan, index: int) -> slice:
    """The padded positions output chunk ``index`` reads along one axis."""
    first = sum(plan.out[:index]) * plan.stride
    return slice(first, first + (plan.out[index] - 1) * plan.stride + plan.span)


def _pieces(sources: np.ndarray, chunks: tuple, own: int) -> list:
    """``(chunk, lo, hi)`` for each input chunk the sources touch: the index range read.

    The block's own chunk is read whole (it is passed as it is, not copied).
    """
    starts = np.cumsum((0,) + chunks)
    real = sources[sources >= 0]
    pieces = []
    for chunk in np.unique(np.searchsorted(starts, real, side="right") - 1).tolist():
        if chunk == own:
            pieces.append((chunk, int(starts[chunk]), int(starts[chunk + 1]) - 1))
        else:
            inside = real[(real >= starts[chunk]) & (real < starts[chunk + 1])]
            pieces.append((chunk, int(inside.min()), int(inside.max())))
    return pieces


# Steps 3 and 4: one task per output block.


def _correlate(x: da.Array, args: _validate.ConvArgs, rows: _AxisPlan, cols: _AxisPlan,
               algorithm: str) -> da.Array:
    """Valid correlation of each gathered block, into ``(n, out_h, out_w, k)`` chunks.

    A block task takes its own input chunk and copies of the strips it reads from others,
    so each chunk is freed once its own block is done (a view of a neighbour, as Dask's
    overlap passes on, would keep the whole neighbour in memory).
    """
    geom = args.geom
    token = tokenize(x, args.kernel, args.bias, geom, args.pad_mode)
    name, strips, shared = f"conv2d-{token}", f"conv2d-strip-{token}", f"conv2d-layer-{token}"
    graph = {shared: (args.kernel, args.bias, rows.source, cols.source, geom, algorithm)}  # sent once
    starts = np.cumsum((0,) + rows.chunks), np.cumsum((0,) + cols.chunks)
    for i, j in np.ndindex(len(rows.chunks), len(cols.chunks)):
        window = _window(rows, i), _window(cols, j)
        pieces = [(r, c) for r in _pieces(rows.source[window[0]], rows.chunks, i)
                  for c in _pieces(cols.source[window[1]], cols.chunks, j)]
        if not pieces:  # a block of padding alone: its own chunk still gives the images' shape
            pieces = [((i, int(starts[0][i]), int(starts[0][i + 1]) - 1),
                       (j, int(starts[1][j]), int(starts[1][j + 1]) - 1))]
        for a in range(x.numblocks[0]):
            parts = []
            for (p, r_lo, r_hi), (q, c_lo, c_hi) in pieces:
                key = (x.name, a, p, q, 0)
                if (p, q) != (i, j):
                    local = (slice(r_lo - starts[0][p], r_hi + 1 - starts[0][p]),
                             slice(c_lo - starts[1][q], c_hi + 1 - starts[1][q]))
                    graph[(strips, a, i, j, p, q)] = (_strip_copy, key, *local)
                    key = (strips, a, i, j, p, q)
                parts.append([key, r_lo, r_hi, c_lo, c_hi])  # a list: Dask finds keys in lists
            graph[(name, a, i, j, 0)] = (_correlate_block, parts, window, shared)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=[x])
    chunks = (x.chunks[0], rows.out, cols.out, (geom.k,))
    return da.Array(layers, name, chunks, meta=np.empty((0, 0, 0, 0), args.dtype))


def _strip_copy(chunk: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """A copy of the strip of a chunk that a block reads: a view would keep the whole chunk."""
    return chunk[:, rows, cols].copy()


def _correlate_block(parts: list, window: tuple, shared: tuple) -> np.ndarray:
    """One output block: gather its padded pixels from the parts, then a valid correlation.

    ``parts`` are ``[array, lo, hi, c_lo, c_hi]``: input rows ``lo..hi`` and columns
    ``c_lo..c_hi`` (inclusive); ``window`` the padded rows and columns the block reads.
    """
    kernel, bias, row_source, col_source, geom, algorithm = shared
    block = _gather(parts, row_source[window[0]], col_source[window[1]])
    valid = _valid_geometry(geom, block.shape)
    out = np.empty((valid.n, valid.out_h, valid.out_w, valid.k), kernel.dtype)
    _correlate_into(block, kernel, bias, valid, "constant", out, algorithm)
    return out


def _valid_geometry(geom: shapes.ConvGeometry, block_shape: tuple) -> shapes.ConvGeometry:
    """``geom`` for a gathered block: its own size, no padding, the windows that fit in it.

    A lone window gets stride 1, as :func:`convlayer._validate.conv_args` gives any call whose
    stride steps past its input: the same window, and the same choice of algorithm.
    """
    n, h, w, _ = block_shape
    spans = shapes.span(geom.fh, geom.dilation[0]), shapes.span(geom.fw, geom.dilation[1])
    out_h, out_w = (h - spans[0]) // geom.strides[0] + 1, (w - spans[1]) // geom.strides[1] + 1
    strides = tuple(s if out > 1 else 1 for s, out in zip(geom.strides, (out_h, out_w)))
    return geom._replace(n=n, h=h, w=w, pads=((0, 0), (0, 0)), strides=strides, out_h=out_h, out_w=out_w)


def _correlate_into(x: np.ndarray, kernel: np.ndarray, bias, geom: shapes.ConvGeometry,
                    pad_mode: str, out: np.ndarray, algorithm: str) -> None:
    """Fill ``out`` (n, out_h, out_w, k) as :func:`convlayer.conv2d` does after its checks."""
    run = spread.correlate if spread.wanted(geom) else choose.correlate
    run(x, kernel, geom, pad_mode, out, buffers.get_memory_budget(), algorithm)
    if bias is not None:
        out += bias


def _gather(parts: list, row_sources: np.ndarray, col_sources: np.ndarray) -> np.ndarray:
    """The block ``x[:, row_sources][:, :, col_sources]``, zero where a source is -1."""
    first = parts[0][0]
    shape = (first.shape[0], len(row_sources), len(col_sources), first.shape[3])
    if len(parts) == 1:  # a view of one chunk will do when the block is a range of it
        (to_r, from_r), (to_c, from_c) = _placements(parts[0], row_sources, col_sources)
        if _is_slice(to_r, shape[1]) and _is_slice(to_c, shape[2]):
            return first[:, from_r, from_c]
    zeros = (row_sources < 0).any() or (col_sources < 0).any()
    block = (np.zeros if zeros else np.empty)(shape, first.dtype)
    for array, r_lo, r_hi, c_lo, c_hi in parts:
        (to_r, from_r), (to_c, from_c) = _placements((array, r_lo, r_hi, c_lo, c_hi), row_sources, col_sources)
        if isinstance(to_r, slice) and isinstance(to_c, slice):
            block[:, to_r, to_c] = array[:, from_r, from_c]
        else:  # reflected or wrapped pixels: index arrays, rows against columns
            to_r, from_r = _indices(to_r, shape[1]), _indices(from_r, array.shape[1])
            to_c, from_c = _indices(to_c, shape[2]), _indices(from_c, array.shape[2])
            block[:, to_r[:, None], to_c[None, :]] = array[:, from_r[:, None], from_c[None, :]]
    return block


def _is_slice(selection, length: int) -> bool:
    return isinstance(selection, slice) and selection == slice(0, length)


def _indices(selection, length: int) -> np.ndarray:
    return np.arange(length)[selection]


def _placements(part, row_sources: np.ndarray, col_sources: np.ndarray) -> tuple:
    """:func:`_placement` of a part's rows and of its columns."""
    return _placement(row_sources, part[1], part[2]), _placement(col_sources, part[3], part[4])


def _placement(sources: np.ndarray, lo: int, hi: int) -> tuple:
    """Where the sources in ``lo..hi`` sit in the block, and which pixels of the part they are:
    two slices when both run in steps of one, else two index arrays."""
    inside = np.flatnonzero((sources >= lo) & (sources <= hi))
    taken = sources[inside] - lo
    if inside.size and (np.diff(inside) == 1).all() and (np.diff(taken) == 1).all():
        return slice(int(inside[0]), int(inside[-1]) + 1), slice(int(taken[0]), int(taken[-1]) + 1)
    return inside, taken


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
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                self.shape, self.dtype = tuple(series.shape), np.dtype(series.dtype)
        except Exception as error:  # tifffile raises many kinds; each is a bad file
            raise images.ImageError(f"{path}: not a readable TIFF image ({images.first_line(error)})") from None
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
