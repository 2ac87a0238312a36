"""``conv2d`` on a Dask array: one task per output block, with the values of the in-memory call.

It works in four steps:

1. the same checks as in memory (:func:`convlayer._validate.conv_args` on a zero-memory
   stand-in of the input's shape and dtype), and the input seen as ``(n, h, w, c)``;
2. *align* (:mod:`.plan`): rows and columns cut at multiples of the stride, so output
   chunk ``i`` is the windows that start in input chunk ``i``;
3. *gather* (:mod:`.blocks`), by index maps: a block reads its own chunk and copies of the
   few rows and columns it needs from other chunks;
4. *compute* (:mod:`.blocks`): a valid correlation of each block by the algorithm layer
   (:func:`convlayer.algorithms.dispatch.correlate`, as the in-memory call runs it, on the
   kernel checked and cast once in step 1), which gives exactly that block's output pixels.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .. import _validate, shapes
from ..algorithms import buffers, choose, spread
from ..shapes import IntPair, Padding
from . import blocks, plan


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
        pixels = _validate.x_nhwc(x.compute(), geom)
        blocks.correlate_into(pixels, args.kernel, args.bias, geom, args.pad_mode, nhwc, algorithm)
        return da.from_array(result)
    nhwc = _validate.x_nhwc(x, geom)
    axes = spread.gathered_axes(geom, args.dtype.itemsize, buffers.get_memory_budget())
    if any(axes):  # a huge padded input read sparsely
        return _user_layout(_gathered(nhwc, args, axes, algorithm), geom)
    rows = plan.axis_plan(nhwc.chunks[1], geom, 0, args.pad_mode)
    cols = plan.axis_plan(nhwc.chunks[2], geom, 1, args.pad_mode)
    aligned = nhwc.rechunk((nhwc.chunks[0], rows.chunks, cols.chunks, geom.c))  # no-op when aligned
    return _user_layout(_correlate(aligned, args, rows, cols, algorithm), geom)


def _gathered(nhwc: da.Array, args: _validate.ConvArgs, axes: tuple, algorithm: str) -> da.Array:
    """The convolution of the rows and columns its windows read (:mod:`..algorithms.spread`),
    gathered lazily along ``axes`` (rows?, columns?): position ``a * out + i`` of a gathered
    axis holds what tap ``a`` of output ``i`` reads, so stride 1, dilation ``out`` and no
    padding there give the same windows."""
    geom = args.geom
    taken = [slice(0, geom.h), slice(0, geom.w)]  # without the zero row and column added below
    strides, dilation, pads = list(geom.strides), list(geom.dilation), list(geom.pads)
    for axis, out in enumerate((geom.out_h, geom.out_w)):
        if axes[axis]:
            index = spread.axis_sources(geom, axis, args.pad_mode)
            taken[axis] = np.where(index >= 0, index, nhwc.shape[axis + 1])  # -1: the zero added below
            strides[axis], dilation[axis], pads[axis] = 1, out, (0, 0)
    with_zero = da.pad(nhwc, ((0, 0), (0, 1), (0, 1), (0, 0)))  # one zero row and column past the end
    gathered = with_zero[:, taken[0]][:, :, taken[1]]
    mode = args.pad_mode if any(pads[0] + pads[1]) else "constant"
    return conv2d(gathered, args.kernel, args.bias, strides=tuple(strides), padding=tuple(pads),
                  dilation=tuple(dilation), groups=geom.groups, pad_mode=mode, algorithm=algorithm)


def _correlate(x: da.Array, args: _validate.ConvArgs, rows: plan.AxisPlan, cols: plan.AxisPlan,
               algorithm: str) -> da.Array:
    """Valid correlation of each gathered block, into ``(n, out_h, out_w, k)`` chunks.

    A block task takes its own input chunk and copies of the strips it reads from others,
    so each chunk is freed once its own block is done (a view of a neighbour, as Dask's
    overlap passes on, would keep the whole neighbour in memory).
    """
    geom = args.geom
    token = tokenize(x, args.kernel, args.bias, geom, args.pad_mode, algorithm)
    name, strips, shared = f"conv2d-{token}", f"conv2d-strip-{token}", f"conv2d-layer-{token}"
    graph = {shared: (args.kernel, args.bias, rows.source, cols.source, geom, algorithm)}  # sent once
    starts = np.cumsum((0,) + rows.chunks), np.cumsum((0,) + cols.chunks)
    for i, j in np.ndindex(len(rows.chunks), len(cols.chunks)):
        window = plan.window(rows, i), plan.window(cols, j)
        pieces = [(r, c) for r in plan.pieces(rows.source[window[0]], rows.chunks, i)
                  for c in plan.pieces(cols.source[window[1]], cols.chunks, j)]
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
                    graph[(strips, a, i, j, p, q)] = (blocks.strip_copy, key, *local)
                    key = (strips, a, i, j, p, q)
                parts.append([key, r_lo, r_hi, c_lo, c_hi])  # a list: Dask finds keys in lists
            graph[(name, a, i, j, 0)] = (blocks.correlate_block, parts, window, shared)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=[x])
    chunks = (x.chunks[0], rows.out, cols.out, (geom.k,))
    return da.Array(layers, name, chunks, meta=np.empty((0, 0, 0, 0), args.dtype))


def _user_layout(y: da.Array, geom: shapes.ConvGeometry) -> da.Array:
    """Undo the ``(n, out_h, out_w, k)`` view: drop axes, or move channels first."""
    if geom.kernel_rank < 4:
        y = y[..., 0]
    elif geom.channels_first:
        y = y.transpose(0, 3, 1, 2)
    return y if geom.batched else y[0]
