"""Pooling: the maximum or the mean over each window, with TensorFlow's semantics, and gradients.

A pooling window slides like a convolution's kernel (same padding words, same output sizes:
:func:`convlayer.shapes.pool_geometry`, reached through :func:`convlayer._validate.pool_args`),
but padded positions are not zeros: max pooling ignores them (as if
they were ``-inf``) and average pooling divides by the number of real, unpadded pixels in
the window, as ``tf.nn.max_pool2d`` and ``tf.nn.avg_pool2d`` do.

Nothing is padded in memory. A window is ``ph * pw`` *taps*; tap ``(a, b)`` of output pixel
``(i, j)`` reads input pixel ``(i * s_h + a - top, j * s_w + b - left)``. For one tap the
output pixels whose input pixel is real form a rectangle of the output, and their input
pixels a strided rectangle of ``x``, so each tap is one vectorised NumPy operation on two
views; the only Python loop is over the taps. Work memory is the size of the output.
"""

from __future__ import annotations

from typing import Iterator, Union

import numpy as np

from . import _validate
from .shapes import IntPair, Padding, PoolGeometry

__all__ = ["avg_pool2d", "avg_pool2d_backward", "max_pool2d", "max_pool2d_backward"]

ArrayLike = Union[np.ndarray, "list", "tuple", float, int]


def _tap_rows(offset, size, stride, before, out) -> "tuple[slice, slice] | None":
    """Output and input slices along one axis where tap ``offset`` reads a real pixel."""
    first = max(0, -(-(before - offset) // stride))  # first output index in the image
    stop = min(out, (size - 1 + before - offset) // stride + 1)
    if stop <= first:
        return None
    start = first * stride + offset - before
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def _reaching(pool: int, size: int, stride: int, before: int, out: int) -> range:
    """The taps along one axis that read a real pixel for some output: a pool far larger
    than the image ('same' with pool_size 2^40) loops over the image, not the pool."""
    if out == 0:
        return range(0)
    return range(max(0, before - (out - 1) * stride), min(pool, before + size))


def _taps(geom: PoolGeometry) -> Iterator[tuple[tuple, tuple]]:
    """Yield ``(out_index, x_index)`` for each tap in row-major window order.

    ``y[out_index]`` and ``x[x_index]`` are same-shaped views of the ``(n, h, w, c)``
    arrays: the output pixels that tap reaches inside the image, and the pixels it reads.
    """
    (sh, sw), ((top, _), (left, _)) = geom.strides, geom.pads
    for a in _reaching(geom.pool[0], geom.h, sh, top, geom.out_h):
        rows = _tap_rows(a, geom.h, sh, top, geom.out_h)
        for b in _reaching(geom.pool[1], geom.w, sw, left, geom.out_w):
            cols = _tap_rows(b, geom.w, sw, left, geom.out_w)
            if rows is not None and cols is not None:
                all_ = slice(None)
                yield (all_, rows[0], cols[0]), (all_, rows[1], cols[1])


def _real_counts(geom: PoolGeometry, dtype) -> np.ndarray:
    """The number of real (unpadded) pixels in each window, shape ``(out_h, out_w, 1)``."""
    per_axis = []
    for size, pool, stride, (before, _), out in (
        (geom.h, geom.pool[0], geom.strides[0], geom.pads[0], geom.out_h),
        (geom.w, geom.pool[1], geom.strides[1], geom.pads[1], geom.out_w),
    ):
        # Python ints: a pool or padding of 2^40 would overflow NumPy's
        counts = [min(i * stride + pool, before + size) - max(i * stride, before) for i in range(out)]
        per_axis.append(np.array(counts, np.int64))
    return (per_axis[0][:, None] * per_axis[1][None, :])[:, :, None].astype(dtype)


def _lowest(dtype: np.dtype):
    """A value no real pixel is below: what max pooling pretends padding is."""
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _max_into(x: np.ndarray, geom: PoolGeometry, y: np.ndarray) -> None:
    """Fill ``y`` (n, out_h, out_w, c) with the window maxima of ``x`` (n, h, w, c)."""
    y.fill(_lowest(x.dtype))  # every window holds a real pixel, so this is overwritten
    for out_index, x_index in _taps(geom):
        np.maximum(y[out_index], x[x_index], out=y[out_index])  # NaN wins, as in np.max


# Max pooling.


def max_pool2d(
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """2D max pooling: the largest value in each window, per channel (``tf.nn.max_pool2d``).

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
        Image or batch, channels last (``(c, h, w)`` or ``(n, c, h, w)`` with
        ``data_format="channels_first"``). Any real dtype.
    pool_size : int or (int, int)
        Window size ``(ph, pw)``.
    strides : int or (int, int), optional
        Step of the window, ``(vertical, horizontal)``; None (the default) means
        ``pool_size``, so windows tile the image without overlap.
    padding : {'valid', 'same', 'same_lower', 'full'}, int, (int, int) or ((int, int), (int, int))
        As for :func:`convlayer.conv2d`. Explicit padding must leave at least one real pixel
        in every window.
    data_format : {'channels_last', 'channels_first'}
        Layout of ``x`` and the result.

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        A new array of x's dtype (integers stay integers).

    Raises
    ------
    ValueError
        x not 3-D or 4-D, non-positive pool_size or strides, a bad padding word, a window
        that does not fit the padded input or holds only padding.
    TypeError
        Non-numeric or complex dtypes, non-integer pool_size or strides.

    Notes
    -----
    Padded positions are ignored (as if ``-inf``), as in TensorFlow. Output sizes are those
    of a convolution with kernel ``pool_size``: 'same' gives ``ceil(size / stride)`` with
    total padding ``max((out - 1) * stride + p - size, 0)``, the odd extra on the
    bottom/right; 'valid' gives ``ceil((size - p + 1) / stride)``. A window containing NaN
    gives NaN, as ``numpy.max`` does. An empty batch gives an empty result.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16).reshape(4, 4, 1)
    >>> max_pool2d(x, 2)[..., 0]
    array([[ 5,  7],
           [13, 15]])
    >>> max_pool2d(x, 3, strides=2, padding="same")[..., 0]
    array([[10, 11],
           [14, 15]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format)
    y, y_nhwc = _validate.new_pool_output(geom, x.dtype)
    _max_into(x, geom, y_nhwc)
    return y


def max_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * max_pool2d(x, ...))`` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``max_pool2d(x, ...)``
        Gradient of the loss with respect to the pooled output.
    x, pool_size, strides, padding, data_format
        The arguments of the forward call.

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d`, and if grad_out does not have the pooled output's shape.

    Notes
    -----
    Each window's gradient goes to its arg-max. Ties go to the *first* maximum in row-major
    window order (top row first, left to right), as ``numpy.argmax`` over the flattened
    window; a window holding NaN sends its gradient to its first NaN. Where windows overlap
    (strides smaller than pool_size) a pixel collects the gradient of every window whose
    maximum it is.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 3], [3, 2]]).reshape(2, 2, 1)
    >>> max_pool2d_backward(np.ones((1, 1, 1)), x, 2)[..., 0]
    array([[0., 1.],
           [0., 0.]])
    """
    x, grad_out, geom = _validate.pool_grad_args(grad_out, x, pool_size, strides, padding, data_format)
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    y = np.empty((geom.n, geom.out_h, geom.out_w, geom.c), x.dtype)
    _max_into(x, geom, y)
    taken = np.zeros(y.shape, bool)  # windows whose arg-max an earlier tap already was
    for out_index, x_index in _taps(geom):
        xs = x[x_index]
        hit = xs == y[out_index]
        if xs.dtype.kind == "f":
            hit |= np.isnan(xs)  # only in windows whose maximum is NaN
        hit &= ~taken[out_index]
        taken[out_index] |= hit
        gx[x_index] += np.where(hit, grad_out[out_index], 0)
    return grad_x


# Average pooling.


def avg_pool2d(
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """2D average pooling: the mean of the real pixels in each window (``tf.nn.avg_pool2d``).

    Parameters
    ----------
    x, pool_size, strides, padding, data_format
        As for :func:`max_pool2d`.

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        A new array of dtype ``numpy.result_type(x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d`.

    Notes
    -----
    Each window's sum is divided by the number of real, unpadded pixels in it, as
    TensorFlow does (PyTorch's ``count_include_pad=False``), not by ``ph * pw``. Output sizes
    are those of :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4, 1)
    >>> avg_pool2d(x, 2)[..., 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> avg_pool2d(np.ones((3, 3, 1)), 3, strides=1, padding="same")[..., 0]  # corner: 4 / 4
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format)
    y, y_nhwc = _validate.new_pool_output(geom, np.result_type(x.dtype, np.float32))
    for out_index, x_index in _taps(geom):
        y_nhwc[out_index] += x[x_index]
    y_nhwc /= _real_counts(geom, y.dtype)
    return y


def avg_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * avg_pool2d(x, ...))`` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``avg_pool2d(x, ...)``
        Gradient of the loss with respect to the pooled output.
    x, pool_size, strides, padding, data_format
        The arguments of the forward call (only x's shape is used).

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`avg_pool2d`, and if grad_out does not have the pooled output's shape.

    Notes
    -----
    Each window's gradient is spread equally over its real pixels (each gets
    ``grad / count``); overlapping windows add up.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool2d_backward(np.ones((1, 1, 1)), np.zeros((2, 2, 1)), 2)[..., 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    x, grad_out, geom = _validate.pool_grad_args(grad_out, x, pool_size, strides, padding, data_format)
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    share = grad_out / _real_counts(geom, grad_x.dtype)
    for out_index, x_index in _taps(geom):
        gx[x_index] += share[out_index]
    return grad_x
