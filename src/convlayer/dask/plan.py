"""How each axis of a Dask convolution is cut: integers and index maps, no arrays of pixels.

Rows are cut where the input's chunks are cut, if those cuts are multiples of the stride
(else at multiples of it: a rechunk), so output chunk ``i`` is the windows that start in
input chunk ``i``; chunks smaller than the halo are merged. Which input pixel each padded
position copies is ``np.pad`` of the pixel indices (-1 for a zero), so every pad mode means
exactly what NumPy means, even where padding reaches across the image (reflect twice, wrap).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .. import shapes


class AxisPlan(NamedTuple):
    """How one axis is cut, and which input pixel each padded position copies."""

    chunks: tuple  # input chunk sizes; every cut a multiple of the stride
    out: tuple  # output chunk sizes: chunk i holds the windows that start in input chunk i
    source: np.ndarray  # input index of each padded position, -1 for a zero
    stride: int
    span: int


def axis_plan(in_chunks: Sequence[int], geom: shapes.ConvGeometry, axis: int,
              pad_mode: str) -> AxisPlan:
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
    return AxisPlan(chunks, out, source, stride, span)


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


def window(plan: AxisPlan, index: int) -> slice:
    """The padded positions output chunk ``index`` reads along one axis."""
    first = sum(plan.out[:index]) * plan.stride
    return slice(first, first + (plan.out[index] - 1) * plan.stride + plan.span)


def pieces(sources: np.ndarray, chunks: tuple, own: int) -> list:
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
