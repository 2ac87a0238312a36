"""The windows of a sliding pooling as taps: one vectorised operation per tap, no padding in
memory, work memory the size of the output.

A window is ``ph * pw`` taps; tap ``(a, b)`` of output pixel ``(i, j)`` reads input pixel
``(i * s_h + a * d_h - top, j * s_w + b * d_w - left)``. For one tap the output pixels whose
input pixel is real form a rectangle of the output, and their input pixels a strided
rectangle of ``x``, so each tap is one NumPy operation on two views; the only Python loop is
over the taps. Padding, and the part of a ``ceil_mode`` window that hangs past the padded
input, are never read. Work buffers the size of the output (a max pool's bookkeeping, a
gradient's share, Lp's float64 sums) are made a chunk of images at a time within
:func:`convlayer.get_memory_budget` (one image at least).
"""

from __future__ import annotations

from typing import Iterator, Union

import numpy as np

from ..algorithms.buffers import get_memory_budget
from ..shapes import PoolGeometry, window_taps

ALL = slice(None)
ArrayLike = Union[np.ndarray, "list", "tuple", float, int]


def _tap_rows(offset, size, stride, before, out) -> "tuple[slice, slice] | None":
    """Output and input slices along one axis where the tap at ``offset`` reads a real pixel."""
    first = max(0, -(-(before - offset) // stride))  # first output index in the image
    stop = min(out, (size - 1 + before - offset) // stride + 1)
    if stop <= first:
        return None
    start = first * stride + offset - before
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def _reaching(pool: int, size: int, stride: int, dilation: int, before: int, out: int) -> range:
    """The taps along one axis that may read a real pixel for some output: a pool far larger
    than the image ('same' with pool_size 2^40) loops over the image, not the pool."""
    if out == 0:
        return range(0)
    first = max(0, -(-(before - (out - 1) * stride) // dilation))
    return range(first, min(pool, -(-(before + size) // dilation)))


def taps(geom: PoolGeometry) -> Iterator[tuple[tuple, tuple]]:
    """Yield ``(out_index, x_index)`` for each tap in row-major window order.

    ``y[out_index]`` and ``x[x_index]`` are same-shaped views of the ``(n, out_h, out_w, c)``
    and ``(n, h, w, c)`` arrays: the output pixels that tap reaches inside the image, and
    the pixels it reads.
    """
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilation, geom.pads
    for a in _reaching(geom.pool[0], geom.h, sh, dh, top, geom.out_h):
        rows = _tap_rows(a * dh, geom.h, sh, top, geom.out_h)
        if rows is None:
            continue
        for b in _reaching(geom.pool[1], geom.w, sw, dw, left, geom.out_w):
            cols = _tap_rows(b * dw, geom.w, sw, left, geom.out_w)
            if cols is not None:
                yield (ALL, rows[0], cols[0]), (ALL, rows[1], cols[1])


def flat_index(geom: PoolGeometry, x_index: tuple) -> np.ndarray:
    """``row * w + col`` of the input pixels a tap reads, shape (1, rows, cols, 1)."""
    rows = np.arange(geom.h, dtype=np.int64)[x_index[1]]
    cols = np.arange(geom.w, dtype=np.int64)[x_index[2]]
    return (rows[:, None] * geom.w + cols[None, :])[None, :, :, None]


def divisors(geom: PoolGeometry, include_pad: bool) -> np.ndarray:
    """Each window's taps in the image (or in the padded input), shape ``(out_h, out_w, 1)``,
    as float64: exact below 2^53, and no int64 overflow for pools of 2^40 a side."""
    per_axis = [
        np.array(window_taps(size, pool, stride, dilation, pads, out, include_pad=include_pad), np.float64)
        for size, pool, stride, dilation, pads, out in zip(
            (geom.h, geom.w), geom.pool, geom.strides, geom.dilation, geom.pads, (geom.out_h, geom.out_w))
    ]
    return (per_axis[0][:, None] * per_axis[1][None, :])[:, :, None]


def lowest(dtype: np.dtype):
    """A value no real pixel is below: what max pooling pretends padding is."""
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def image_chunks(n: int, bytes_per_image: int) -> Iterator[slice]:
    """Slices of the batch whose work buffers stay within the memory budget (one image at
    least, however large)."""
    step = max(1, get_memory_budget() // max(1, bytes_per_image))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def output_chunks(geom: PoolGeometry, bytes_per_value: int) -> Iterator[slice]:
    """Slices of the batch whose work buffers, ``bytes_per_value`` for each output value,
    stay within the memory budget."""
    return image_chunks(geom.n, geom.out_h * geom.out_w * geom.c * bytes_per_value)


def planes(array: np.ndarray, channels_first: bool) -> "tuple[np.ndarray, int]":
    """View the (n, h, w, c) view of a C-contiguous array in the user's layout as its image
    planes, (n, h * w, c) or (n, c, h * w), without copying; return it and the plane axis."""
    n, h, w, c = array.shape
    if channels_first:
        return array.transpose(0, 3, 1, 2).reshape(n, c, h * w), 2
    return array.reshape(n, h * w, c), 1


def plane_index(indices: np.ndarray, axis: int) -> tuple:
    """Fancy index that picks, for every (n, i, j, c), pixel ``indices`` of its own plane."""
    n, out_h, out_w, c = indices.shape
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    return (batch, indices, channel) if axis == 1 else (batch, channel, indices)
