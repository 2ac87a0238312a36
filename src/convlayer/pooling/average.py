"""Average and Lp pooling: sums over each window's taps, and their gradients.

Average pooling divides a window's sum by the number of its real pixels (TensorFlow,
PyTorch's ``count_include_pad=False``), or with ``count_include_pad=True`` by its taps inside
the padded input (PyTorch's default, ONNX's ``count_include_pad=1``). Lp pooling is
``(sum of |x|^p over the window)^(1/p)``; padding adds nothing to the sum. The windows are
walked tap by tap (:mod:`._taps`).
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from ..shapes import IntPair, Padding
from ._taps import ArrayLike, divisors, output_chunks, taps

__all__ = ["avg_pool2d", "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward"]


def avg_pool2d(
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """2D average pooling: the mean of the real pixels in each window (``tf.nn.avg_pool2d``).

    Parameters
    ----------
    x, pool_size, strides, padding, dilation, ceil_mode, data_format
        As for :func:`convlayer.max_pool2d`.
    count_include_pad : bool
        Divide by the window's taps inside the padded input, padding included (PyTorch's
        ``AvgPool2d`` default), instead of by its real pixels.

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        A new array of dtype ``numpy.result_type(x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`convlayer.max_pool2d`, and count_include_pad not True or False.

    Notes
    -----
    Each window's sum is divided by the number of real, unpadded pixels in it, as
    TensorFlow does (PyTorch's ``count_include_pad=False``), not by ``ph * pw``. With
    ``count_include_pad=True`` the divisor counts padding too, whatever form the padding was
    given in ('same' words included, as ONNX does with ``auto_pad``), but never the part of a
    ``ceil_mode`` window that hangs past the padded input (PyTorch divides by that clipped
    window). With dilation a window holds its dilated taps only (ONNX); PyTorch's
    ``avg_pool2d`` has no dilation. Output sizes are those of :func:`convlayer.max_pool2d`.

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
    >>> avg_pool2d(np.ones((2, 2, 1)), 2, padding=1, count_include_pad=True)[..., 0]  # 1 / 4
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation,
                                  ceil_mode=ceil_mode)
    include_pad = _validate.as_flag("count_include_pad", count_include_pad)
    y, y_nhwc = _validate.new_pool_output(geom, np.result_type(x.dtype, np.float32))
    for out_index, x_index in taps(geom):
        y_nhwc[out_index] += x[x_index]
    y_nhwc /= divisors(geom, include_pad)
    return y


def avg_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * avg_pool2d(x, ...))`` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``avg_pool2d(x, ...)``
        Gradient of the loss with respect to the pooled output.
    x, pool_size, strides, padding, dilation, ceil_mode, count_include_pad, data_format
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
    Each window's gradient is divided by the forward's divisor and handed to each of its
    real pixels (padding takes its share and drops it); overlapping windows add up.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool2d_backward(np.ones((1, 1, 1)), np.zeros((2, 2, 1)), 2)[..., 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    x, grad_out, geom = _validate.pool_grad_args(grad_out, x, pool_size, strides, padding, data_format,
                                                 dilation=dilation, ceil_mode=ceil_mode)
    include_pad = _validate.as_flag("count_include_pad", count_include_pad)
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    counts = divisors(geom, include_pad)
    for part in output_chunks(geom, 8 + gx.itemsize):  # the share, maybe via float64
        share, gxs = (grad_out[part] / counts).astype(gx.dtype, copy=False), gx[part]
        for out_index, x_index in taps(geom):
            gxs[x_index] += share[out_index]
    return grad_x


# Lp pooling.


def _abs_power(values: np.ndarray, p: float, dtype) -> np.ndarray:
    """``|values| ** p`` in ``dtype``, in a new array (the cast first: no int8 -128 overflow)."""
    result = np.abs(values.astype(dtype))
    if p == 2:
        return np.multiply(result, result, out=result)
    return result if p == 1 else np.power(result, p, out=result)


def _root(sums: np.ndarray, p: float) -> np.ndarray:
    """``sums ** (1 / p)`` in place."""
    if p == 2:
        return np.sqrt(sums, out=sums)
    return sums if p == 1 else np.power(sums, 1 / p, out=sums)


def lp_pool2d(
    x: ArrayLike,
    p: float,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """2D power-average (Lp) pooling: ``(sum over the window of |x|^p)^(1/p)`` (ONNX ``LpPool``).

    Parameters
    ----------
    x, pool_size, strides, padding, dilation, ceil_mode, data_format
        As for :func:`convlayer.max_pool2d`.
    p : float
        The norm's order, a finite number > 0 (ONNX's default is 2). ``p=1`` sums ``|x|``;
        a large ``p`` approaches max pooling of ``|x|``.

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        Of dtype ``numpy.result_type(x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`convlayer.max_pool2d`, and p not a finite number > 0.

    Notes
    -----
    Padding adds nothing to a window's sum, so every padding form and ``ceil_mode`` sum the
    real pixels. ``torch.nn.functional.lp_pool2d`` differs in three places, where it equals
    this function on ``|x|`` only: it sums ``x^p``, not ``|x|^p`` (for odd ``p`` a negative
    input gives a different value or NaN); with ``ceil_mode`` it scales a clipped window's
    mean by the whole window's area instead of summing; and it has no padding or dilation.
    The powers, sums and root are computed in float64 (float32 input too) and rounded once.
    ``|x|^p`` can overflow for large ``p`` and ``|x|``, as in PyTorch and ONNX.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[3.0, -4.0], [0.0, 0.0]])[..., None]
    >>> lp_pool2d(x, 2, 2)[..., 0]
    array([[5.]])
    >>> lp_pool2d(x, 1, 2)[..., 0]
    array([[7.]])
    """
    p = _validate.as_norm_order(p)
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation,
                                  ceil_mode=ceil_mode)
    y, y_nhwc = _validate.new_pool_output(geom, np.result_type(x.dtype, np.float32))
    for part in output_chunks(geom, 16):  # float64 sums, and one tap's powers
        y_nhwc[part] = _lp_sums(x[part], geom, p)
    return y


def _lp_sums(x: np.ndarray, geom, p: float) -> np.ndarray:
    """``(sum |x|^p)^(1/p)`` of every window, (n, out_h, out_w, c), in float64 at least:
    float32's power and root lose a few ulps that a float64 pass rounded once does not."""
    sums = np.zeros((x.shape[0], geom.out_h, geom.out_w, geom.c), np.promote_types(x.dtype, np.float64))
    for out_index, x_index in taps(geom):
        sums[out_index] += _abs_power(x[x_index], p, sums.dtype)
    return _root(sums, p)


def lp_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    p: float,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * lp_pool2d(x, p, ...))`` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``lp_pool2d(x, p, ...)``
    x, p, pool_size, strides, padding, dilation, ceil_mode, data_format
        The arguments of the forward call.

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`lp_pool2d`, and if grad_out does not have the pooled output's shape.

    Notes
    -----
    A window with output ``y`` sends ``grad * sign(x) * |x|^(p-1) / y^(p-1)`` to each real
    pixel. A window whose pixels are all 0 (``y = 0``, where the root has no derivative)
    sends nothing, as PyTorch's autograd does, and so does a pixel equal to 0.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[3.0, -4.0], [0.0, 0.0]])[..., None]
    >>> lp_pool2d_backward(np.ones((1, 1, 1)), x, 2, 2)[..., 0]
    array([[ 0.6, -0.8],
           [ 0. ,  0. ]])
    """
    p = _validate.as_norm_order(p)
    x, grad_out, geom = _validate.pool_grad_args(grad_out, x, pool_size, strides, padding, data_format,
                                                 dilation=dilation, ceil_mode=ceil_mode)
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    for part in output_chunks(geom, 40):  # float64 sums, scales and a tap's three temporaries
        _lp_grad_into(x[part], grad_out[part], geom, p, gx[part])
    return grad_x


def _lp_grad_into(x: np.ndarray, grad_out: np.ndarray, geom, p: float, gx: np.ndarray) -> None:
    """Add each window's ``grad / y^(p-1)`` times each pixel's slope into ``gx``."""
    y = _lp_sums(x, geom, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(y == 0, 0, grad_out / y ** (p - 1))
        for out_index, x_index in taps(geom):
            gx[x_index] += scale[out_index] * _slope(x[x_index], p, y.dtype)


def _slope(values: np.ndarray, p: float, dtype) -> np.ndarray:
    """The derivative of ``|x|^p / p``: ``sign(x) |x|^(p-1)``, 0 at 0 (also for p < 1)."""
    xs = values.astype(dtype)
    if p == 2:
        return xs
    if p == 1:
        return np.sign(xs)
    return np.sign(xs) * np.where(xs == 0, 0, _abs_power(xs, p - 1, dtype))
