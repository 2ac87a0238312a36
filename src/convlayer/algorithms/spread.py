"""Windows that read a small part of their padded input: gather what they read, no more.

A dilation or padding far larger than the image (a 3x3 kernel with dilation 3000 on a
16x16 image: 'same' padding adds 6000 zeros on each side) or strides far longer than the
kernel make the padded input, and with it every algorithm's slab of padded rows, far
larger than what the windows read: ``fh * out_h`` rows and ``fw * out_w`` columns. Work
memory must follow the taps, not the dilated span.

Along such an axis, position ``a * out + i`` of a *gathered* input holds the pixel that
tap ``a`` of output ``i`` reads. Its input index is computed from the pad mode's rule
(:func:`sources`: zero, edge, wrap, reflect, symmetric, as ``np.pad`` means them), never
from a padded index map, so a span of 10^20 costs nothing. The convolution of the gathered
input with stride 1, dilation ``out`` and no padding along that axis is the same
convolution, computed by whichever algorithm suits it. Rows are gathered for a chunk of
output rows and images at a time, within the memory budget (:class:`Plan`); the gradient
flows back to x through the same indices (:func:`fold_gradient`). :mod:`.dispatch` runs the
convolution of each chunk.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry

# Gather an axis when its padded extent is over RATIO times the positions its windows read
# (and at least MIN_EXTENT): ordinary layers, whose windows overlap or touch (stride <=
# kernel, dilation <= output size), read more than half their padded input and are left alone.
RATIO = 2
MIN_EXTENT = 64
# A block of one output pixel holds its window's whole span (the slab, and about as much again
# in temporaries): when that passes half the budget (301 x 301 pixels for a 3x3 kernel at
# dilation 150, under a budget of 1 MiB), the axes whose span is over RATIO times their taps
# are gathered too, whatever the output size, so the work memory follows the taps.
SLABS_PER_PIXEL = 4


def wanted(geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether the rows or the columns of ``geom`` are read so sparsely that they are gathered."""
    return any(gathered_axes(geom, itemsize, budget))


def gathered_axes(geom: ConvGeometry, itemsize: int, budget: int) -> tuple[bool, bool]:
    """Whether the rows, and whether the columns, of ``geom`` are gathered (``itemsize``
    bytes an item of work memory, ``budget`` the memory budget)."""
    wide = _too_wide(geom, itemsize, budget)
    return _sparse(geom, 0, wide), _sparse(geom, 1, wide)


def _too_wide(geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether one output pixel's padded window passes half the budget (see :data:`SLABS_PER_PIXEL`)."""
    span_h, span_w = (geom.fh - 1) * geom.dilation[0] + 1, (geom.fw - 1) * geom.dilation[1] + 1
    return SLABS_PER_PIXEL * span_h * span_w * geom.c * itemsize > budget // 2


def _sparse(geom: ConvGeometry, axis: int, wide: bool) -> bool:
    """Whether axis 0 (rows) or 1 (columns) of ``geom`` is gathered: its padded extent is over
    RATIO times the positions its windows read, or (``wide``: see :func:`_too_wide`) its span
    is over RATIO times its taps."""
    size, kernel, out = (geom.h, geom.fh, geom.out_h) if axis == 0 else (geom.w, geom.fw, geom.out_w)
    extent = size + sum(geom.pads[axis])
    spread_out = wide and (kernel - 1) * geom.dilation[axis] + 1 > RATIO * kernel
    return out > 0 and extent > MIN_EXTENT and (spread_out or extent > RATIO * kernel * out)


def sources(size: int, before: int, stride: int, dilation: int, kernel: int, start: int, stop: int,
            pad_mode: str) -> np.ndarray:
    """Input indices, ``(kernel * (stop - start),)``: entry ``a * (stop - start) + i - start``
    is the index that tap ``a`` of output ``i`` reads along an axis of ``size`` pixels with
    ``before`` pixels of padding (-1: a zero of constant padding).

    >>> sources(4, 2, 1, 3, 2, 0, 3, "constant")
    array([-1, -1,  0,  1,  2,  3])
    >>> sources(4, 2, 1, 3, 2, 0, 3, "reflect")
    array([2, 1, 0, 1, 2, 3])
    """
    count = stop - start
    index = np.empty(kernel * count, np.intp)
    for a in range(kernel):
        first = start * stride + a * dilation - before  # Python ints: no overflow however large
        index[a * count : (a + 1) * count] = _positions(first, stride, count, size, pad_mode)
    return index


def axis_sources(geom: ConvGeometry, axis: int, pad_mode: str, start: int = 0,
                 stop: "int | None" = None) -> np.ndarray:
    """:func:`sources` along axis 0 (rows) or 1 (columns) of ``geom``, for outputs
    ``start`` to ``stop`` (default: all)."""
    size, kernel, out = (geom.h, geom.fh, geom.out_h) if axis == 0 else (geom.w, geom.fw, geom.out_w)
    return sources(size, geom.pads[axis][0], geom.strides[axis], geom.dilation[axis], kernel, start,
                   out if stop is None else stop, pad_mode)


def _positions(first: int, step: int, count: int, size: int, pad_mode: str) -> np.ndarray:
    """The input index of padded positions ``first + i * step`` (input coordinates), i < count."""
    steps = np.arange(count, dtype=np.int64)
    if pad_mode in ("constant", "edge"):
        low = min(max(0, -(first // step)), count)  # the first i with first + i * step >= 0
        high = min(max(low, (size - 1 - first) // step + 1), count) if size else low
        fill_low, fill_high = (-1, -1) if pad_mode == "constant" else (0, size - 1)
        index = np.full(count, fill_low, np.int64)
        index[high:] = fill_high
        if high > low:  # positions inside the image: two or more means a step below its size
            index[low:high] = first + low * step + steps[: high - low] * min(step, size)
        return index
    if size == 1:
        return np.zeros(count, np.int64)
    period = {"wrap": size, "reflect": 2 * (size - 1), "symmetric": 2 * size}[pad_mode]
    phase = (first % period + steps * (step % period)) % period
    if pad_mode == "wrap":
        return phase
    mirror = period - phase if pad_mode == "reflect" else period - 1 - phase
    return np.where(phase < size, phase, mirror)


class Plan:
    """The gathered geometry of each chunk and the indices it copies from x.

    ``work`` is the bytes a chunk's gathered input (``itemsize`` per item: double it for
    its gradient too) and its temporaries take, half the budget at most; ``cols`` the
    gathered columns' input indices (None: the columns are not gathered).
    """

    def __init__(self, geom: ConvGeometry, pad_mode: str, itemsize: int, budget: int):
        self.geom, self.pad_mode = geom, pad_mode
        self.cols = None
        width = geom.w
        if gathered_axes(geom, itemsize, budget)[1]:  # rows always are: chunks are rows
            self.cols = axis_sources(geom, 1, pad_mode)
            width = len(self.cols)
        # the gathered chunk and as much again for fancy indexing's temporaries: half the budget
        row_bytes = 2 * geom.fh * width * geom.c * itemsize
        self.rows_per_chunk = max(1, min(geom.out_h, budget // 2 // max(row_bytes, 1)))
        whole = self.rows_per_chunk == geom.out_h
        self.images_per_chunk = max(1, budget // 2 // max(row_bytes * geom.out_h, 1)) if whole else 1
        self.work = min(budget // 2, self.images_per_chunk * self.rows_per_chunk * row_bytes)

    def chunks(self):
        """``(n0, n1, r0, r1, row indices, chunk geometry, pad mode)`` for each chunk."""
        geom, cols = self.geom, self.cols
        for n0 in range(0, geom.n, self.images_per_chunk):
            n1 = min(n0 + self.images_per_chunk, geom.n)
            for r0 in range(0, geom.out_h, self.rows_per_chunk):
                r1 = min(r0 + self.rows_per_chunk, geom.out_h)
                rows = axis_sources(geom, 0, self.pad_mode, r0, r1)
                sub = geom._replace(
                    n=n1 - n0, h=len(rows), out_h=r1 - r0, strides=(1, geom.strides[1]),
                    dilation=(r1 - r0, geom.dilation[1]), pads=((0, 0), geom.pads[1]),
                )
                mode = self.pad_mode
                if cols is not None:
                    sub = sub._replace(w=len(cols), strides=(1, 1), dilation=(r1 - r0, geom.out_w),
                                       pads=((0, 0), (0, 0)))
                    mode = "constant"
                yield n0, n1, r0, r1, rows, sub, mode


def gather(x: np.ndarray, rows, cols, sub: ConvGeometry) -> np.ndarray:
    """The gathered input of a chunk of images x (:meth:`Plan.chunks` gives the rest)."""
    gathered = np.zeros((x.shape[0], sub.h, sub.w, x.shape[3]), x.dtype)
    into, source = _read(rows, cols)
    gathered[into] = x[source]
    return gathered


def fold_gradient(grad_x: np.ndarray, rows, cols, grad_gathered: np.ndarray) -> None:
    """Add a chunk's gathered gradient onto the pixels of ``grad_x`` (the chunk's images) it
    copied (``np.add.at``: a padded pixel may copy one input pixel many times)."""
    into, source = _read(rows, cols)
    np.add.at(grad_x, source, grad_gathered[into])


def _read(rows: np.ndarray, cols: "np.ndarray | None"):
    """The positions of the gathered chunk that copy a pixel, and the pixels they copy."""
    kept_rows = np.flatnonzero(rows >= 0)
    if cols is None:
        return (slice(None), kept_rows), (slice(None), rows[kept_rows])
    kept_cols = np.flatnonzero(cols >= 0)
    return ((slice(None), kept_rows[:, None], kept_cols[None, :]),
            (slice(None), rows[kept_rows][:, None], cols[kept_cols][None, :]))
