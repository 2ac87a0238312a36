"""Plain-loop pooling, written from the definitions, for teaching and for tests.

One Python iteration per output value and per tap: output pixel ``(i, j)`` of a sliding
pool reads the taps ``(i * s_h - top + a * d_h, j * s_w - left + b * d_w)`` for ``a < ph``,
``b < pw``; a tap inside the image is a *real* pixel, one in the padding only counts (for
``count_include_pad``), one past the padded input (a ``ceil_mode`` window) does not exist.
Adaptive pools read PyTorch's bins. The argument checks and shapes are those of the fast
ops (so the same call means the same thing), none of their compute code. Re-exported by
:mod:`convlayer.reference`.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate


def _window(geom, i: int, j: int) -> tuple[list, int]:
    """The real pixels ``(row, col)`` of window ``(i, j)`` in row-major tap order, and how
    many of its taps lie in the padded input."""
    (sh, sw), (dh, dw), ((top, bottom), (left, right)) = geom.strides, geom.dilation, geom.pads
    real, padded = [], 0
    for a in range(geom.pool[0]):
        row = i * sh - top + a * dh
        for b in range(geom.pool[1]):
            col = j * sw - left + b * dw
            padded += -top <= row < geom.h + bottom and -left <= col < geom.w + right
            if 0 <= row < geom.h and 0 <= col < geom.w:
                real.append((row, col))
    return real, padded


def _first_max(values: list) -> int:
    """Position of the first maximum; the first NaN wins over any number."""
    best = 0
    for k, value in enumerate(values):
        if math.isnan(values[best]):
            break
        if math.isnan(value) or value > values[best]:
            best = k
    return best


def _slide(x, geom, reduce, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``reduce(values, pixels, padded_count)`` to every window and channel."""
    y, y_nhwc = _validate.new_pool_output(geom, dtype)
    for image in range(geom.n):
        for i in range(geom.out_h):
            for j in range(geom.out_w):
                pixels, padded = _window(geom, i, j)
                for channel in range(geom.c):
                    values = [x[image, r, c, channel].item() for r, c in pixels]
                    y_nhwc[image, i, j, channel] = reduce(values, pixels, padded)
    return y, y_nhwc


def max_pool2d(x, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False, return_indices=False,
               *, data_format="channels_last"):
    """Reference for :func:`convlayer.max_pool2d`: same arguments, same result, plain loops.

    >>> max_pool2d(np.arange(9).reshape(3, 3, 1), 2, ceil_mode=True, return_indices=True)[1][..., 0]
    array([[4, 5],
           [7, 8]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation, ceil_mode=ceil_mode)
    y, _ = _slide(x, geom, lambda values, pixels, padded: values[_first_max(values)], x.dtype)
    if not return_indices:
        return y

    def index(values, pixels, padded):
        row, col = pixels[_first_max(values)]
        return row * geom.w + col

    return y, _slide(x, geom, index, np.int64)[0]


def avg_pool2d(x, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False, count_include_pad=False,
               *, data_format="channels_last"):
    """Reference for :func:`convlayer.avg_pool2d`: the sum of the real pixels over their
    count, or over the taps in the padded input.

    >>> avg_pool2d(np.ones((2, 2, 1)), 2, padding=1, count_include_pad=True)[..., 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation, ceil_mode=ceil_mode)
    divide = (lambda values, padded: padded) if count_include_pad else (lambda values, padded: len(values))
    return _slide(x, geom, lambda values, pixels, padded: sum(values) / divide(values, padded),
                  np.result_type(x.dtype, np.float32))[0]


def lp_pool2d(x, p, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False, *,
              data_format="channels_last"):
    """Reference for :func:`convlayer.lp_pool2d`: ``(sum |x|^p)^(1/p)`` over the real pixels.

    >>> lp_pool2d(np.array([[3.0, -4.0]])[..., None], 2, (1, 2))[..., 0]
    array([[5.]])
    """
    p = _validate.as_norm_order(p)
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation, ceil_mode=ceil_mode)
    return _slide(x, geom, lambda values, pixels, padded: sum(abs(v) ** p for v in values) ** (1 / p),
                  np.result_type(x.dtype, np.float32))[0]


def max_unpool2d(x, indices, output_size, *, data_format="channels_last"):
    """Reference for :func:`convlayer.max_unpool2d`: zeros, then each value at its index.

    >>> max_unpool2d(np.array([[[7]]]), np.array([[[2]]]), (2, 2))[..., 0]
    array([[0, 0],
           [7, 0]])
    """
    x, indices, geom = _validate.unpool_args(x, indices, output_size, data_format)
    out = np.zeros(geom.input_shape, x.dtype)
    out_nhwc = _validate.pool_nhwc(out, geom)
    for image, i, j, channel in np.ndindex(x.shape):
        row, col = divmod(int(indices[image, i, j, channel]), geom.w)
        out_nhwc[image, row, col, channel] = x[image, i, j, channel]
    return out


def _bins(x, geom, reduce, dtype):
    """Apply ``reduce(values, pixels)`` to every adaptive bin and channel."""
    y, y_nhwc = _validate.new_pool_output(geom, dtype)
    for image in range(geom.n):
        for i, (top, bottom) in enumerate(geom.rows):
            for j, (left, right) in enumerate(geom.cols):
                pixels = [(r, c) for r in range(top, bottom) for c in range(left, right)]
                for channel in range(geom.c):
                    values = [x[image, r, c, channel].item() for r, c in pixels]
                    y_nhwc[image, i, j, channel] = reduce(values, pixels)
    return y


def adaptive_avg_pool2d(x, output_size, *, data_format="channels_last"):
    """Reference for :func:`convlayer.adaptive_avg_pool2d`: the mean of each of PyTorch's bins.

    >>> adaptive_avg_pool2d(np.arange(5.0).reshape(1, 5, 1), (1, 3))[..., 0]
    array([[0.5, 2. , 3.5]])
    """
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    return _bins(x, geom, lambda values, pixels: sum(values) / len(values), np.result_type(x.dtype, np.float32))


def adaptive_max_pool2d(x, output_size, return_indices=False, *, data_format="channels_last"):
    """Reference for :func:`convlayer.adaptive_max_pool2d`: the first maximum of each bin."""
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    y = _bins(x, geom, lambda values, pixels: values[_first_max(values)], x.dtype)
    if not return_indices:
        return y
    spot = lambda values, pixels: pixels[_first_max(values)][0] * geom.w + pixels[_first_max(values)][1]  # noqa: E731
    return y, _bins(x, geom, spot, np.int64)


def global_avg_pool2d(x, keepdims=False, *, data_format="channels_last"):
    """Reference for :func:`convlayer.global_avg_pool2d`: one bin, the whole image.

    >>> global_avg_pool2d(np.arange(8.0).reshape(2, 2, 2))
    array([3., 4.])
    """
    x_, geom = _validate.adaptive_args(x, None, data_format)
    y = _bins(x_, geom, lambda values, pixels: sum(values) / len(values), np.result_type(x_.dtype, np.float32))
    return y if keepdims else y.reshape(((geom.n,) if geom.batched else ()) + (geom.c,))


def global_max_pool2d(x, keepdims=False, *, data_format="channels_last"):
    """Reference for :func:`convlayer.global_max_pool2d`."""
    x_, geom = _validate.adaptive_args(x, None, data_format)
    y = _bins(x_, geom, lambda values, pixels: values[_first_max(values)], x_.dtype)
    return y if keepdims else y.reshape(((geom.n,) if geom.batched else ()) + (geom.c,))
