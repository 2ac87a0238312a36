"""Plain-loop convolution, written from the definition, for teaching and for tests.

This is the tutorial's algorithm with its two bugs fixed: it builds the padded image before
sliding the window (the tutorial's loop indexed the unpadded one), and it computes in the
result dtype (the tutorial summed uint8 pixels, which wraps around at 256). It is slow on
purpose: one Python iteration per output value, so that every step can be read.

It shares the argument checks and shape logic of :func:`convlayer.conv2d` (so the same call
means the same thing) but none of its compute code. :func:`conv2d_backward` is the same loop
read backwards: each output value sends its gradient to the window and the filter it came
from, and each padded pixel sends its gradient to the input pixel it copies. The poolings'
loops (``max_pool2d``, ``avg_pool2d``, ``lp_pool2d``, ``max_unpool2d``, the adaptive and
global pools) live in :mod:`convlayer._reference_pool` and are importable from here.
"""

from __future__ import annotations

import numpy as np

from . import _validate
from ._reference_pool import (  # noqa: F401  (the pooling loops, re-exported)
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    global_avg_pool2d,
    global_max_pool2d,
    lp_pool2d,
    max_pool2d,
    max_unpool2d,
)
from .functional import Conv2DGrads


def conv2d(
    x,
    kernel,
    bias=None,
    *,
    strides=1,
    padding="same",
    dilation=1,
    groups=1,
    flip=False,
    pad_mode="constant",
    data_format="channels_last",
) -> np.ndarray:
    """Reference for :func:`convlayer.conv2d`: same arguments, same result, plain loops.

    Examples
    --------
    >>> import numpy as np
    >>> conv2d(np.arange(9.0).reshape(3, 3), np.ones((2, 2)), padding="valid")
    array([[ 8., 12.],
           [20., 24.]])
    """
    args = _validate.conv_args(
        x, kernel, bias, strides=strides, padding=padding, dilation=dilation, groups=groups,
        flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    result, out = _validate.new_output(args.geom, args.dtype)
    _correlate_loops(args, out)
    return result


def _correlate_loops(args: _validate.ConvArgs, out: np.ndarray) -> None:
    """Fill out (n, out_h, out_w, k): each value is one window times one filter, summed."""
    geom, kernel = args.geom, args.kernel
    padded = _pad(args.x.astype(args.dtype), geom.pads, args.pad_mode)
    for image in range(geom.n):
        for i in range(geom.out_h):
            for j in range(geom.out_w):
                for channel in range(geom.k):
                    window = padded[_window(geom, image, i, j, channel)]
                    total = np.sum(window * kernel[:, :, :, channel])
                    if args.bias is not None:
                        total = total + args.bias[channel]
                    out[image, i, j, channel] = total


def _window(geom, image: int, i: int, j: int, channel: int) -> tuple:
    """Index of the padded pixels that output (image, i, j, channel) reads, (fh, fw, c/groups)."""
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    channels_per_group = geom.c // geom.groups
    group = channel // (geom.k // geom.groups)
    return (
        image,
        slice(i * sh, i * sh + (geom.fh - 1) * dh + 1, dh),
        slice(j * sw, j * sw + (geom.fw - 1) * dw + 1, dw),
        slice(group * channels_per_group, (group + 1) * channels_per_group),
    )


def conv2d_backward(
    grad_out,
    x,
    kernel,
    *,
    strides=1,
    padding="same",
    dilation=1,
    groups=1,
    flip=False,
    pad_mode="constant",
    data_format="channels_last",
) -> Conv2DGrads:
    """Reference for :func:`convlayer.conv2d_backward`: same arguments, plain loops.

    Examples
    --------
    >>> import numpy as np
    >>> x, kernel = np.array([[0.0, 1.0, 2.0]]), np.array([[1.0, 1.0]])
    >>> grads = conv2d_backward(np.ones((1, 2)), x, kernel, padding="valid")
    >>> grads.grad_x, grads.grad_kernel, grads.grad_bias
    (array([[1., 2., 1.]]), array([[1., 3.]]), array([2.]))
    """
    args, grad = _validate.conv_grad_args(
        grad_out, x, kernel, strides=strides, padding=padding, dilation=dilation, groups=groups,
        flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    grad_x, grad_x_nhwc = _validate.new_input_grad(args.geom, args.dtype)
    grad_padded, grad_kernel, grad_bias = _backward_loops(args, grad.astype(args.dtype))
    _unpad(grad_padded, args.geom, args.pad_mode, grad_x_nhwc)
    grad_kernel = _validate.kernel_from_hwio(grad_kernel, args.geom, bool(flip))
    return Conv2DGrads(grad_x, grad_kernel, grad_bias)


def _backward_loops(args: _validate.ConvArgs, grad: np.ndarray):
    """Gradients of the padded input, the (fh, fw, c/groups, k) kernel and the bias.

    Output value (image, i, j, channel) was ``sum(window * filter) + bias``: its gradient
    goes to each window pixel times the filter, to the filter times the window, and to
    the bias.
    """
    geom, kernel = args.geom, args.kernel
    padded = _pad(args.x.astype(args.dtype), geom.pads, args.pad_mode)
    grad_padded = np.zeros_like(padded)
    grad_kernel = np.zeros_like(kernel)
    grad_bias = np.zeros(geom.k, args.dtype)
    for image in range(geom.n):
        for i in range(geom.out_h):
            for j in range(geom.out_w):
                for channel in range(geom.k):
                    window = _window(geom, image, i, j, channel)
                    g = grad[image, i, j, channel]
                    grad_padded[window] += g * kernel[:, :, :, channel]
                    grad_kernel[:, :, :, channel] += g * padded[window]
                    grad_bias[channel] += g
    return grad_padded, grad_kernel, grad_bias


def _unpad(grad_padded: np.ndarray, geom, pad_mode: str, grad_x: np.ndarray) -> None:
    """Add each padded pixel's gradient to the input pixel it is a copy of (zeros: none)."""
    rows = _copied_from(geom.h, geom.pads[0], pad_mode)
    cols = _copied_from(geom.w, geom.pads[1], pad_mode)
    for p, row in enumerate(rows):
        for q, col in enumerate(cols):
            if row >= 0 and col >= 0:
                grad_x[:, row, col] += grad_padded[:, p, q]


def _copied_from(size: int, pads, pad_mode: str) -> np.ndarray:
    """For each padded position on one axis, the input index np.pad copies there (-1: a zero)."""
    if size == 0 or pad_mode == "constant":
        return np.pad(np.arange(size), pads, mode="constant", constant_values=-1)
    return np.pad(np.arange(size), pads, mode=pad_mode)


def _pad(x: np.ndarray, pads, pad_mode: str) -> np.ndarray:
    """The padded batch (n, h + top + bottom, w + left + right, c), by ``np.pad``."""
    widths = ((0, 0), pads[0], pads[1], (0, 0))
    if x.size == 0 or pad_mode == "constant":
        return np.pad(x, widths, mode="constant")
    return np.pad(x, widths, mode=pad_mode)


def banked_conv2d(x, kernel, bias=None, *, strides=1, padding="same", sharing="unshared"):
    """Reference for the weight-sharing ops (``sharing`` names which): plain loops.

    Pixel ``(i, j)`` of the output uses bank ``(bank_row(i), bank_col(j))``, written out
    here from the definitions: ``i % T`` for tiles, the ``numpy.array_split`` piece that
    holds ``i`` for regions, ``i`` itself when nothing is shared.
    """
    args = _validate.banked_args(x, kernel, bias, strides=strides, padding=padding, sharing=sharing)
    geom, banks = args.geom, args.kernel
    rows = [_bank_of(i, geom.out_h, banks.shape[0], sharing) for i in range(geom.out_h)]
    cols = [_bank_of(j, geom.out_w, banks.shape[1], sharing) for j in range(geom.out_w)]
    result, out = _validate.new_output(geom, args.dtype)
    padded = _pad(args.x.astype(args.dtype), geom.pads, "constant")
    (sh, sw), (fh, fw) = geom.strides, (geom.fh, geom.fw)
    for image in range(geom.n):
        for i in range(geom.out_h):
            for j in range(geom.out_w):
                window = padded[image, i * sh : i * sh + fh, j * sw : j * sw + fw, :]
                kernel_ij = banks[rows[i], cols[j]]  # (fh, fw, c, k)
                for channel in range(geom.k):
                    total = np.sum(window * kernel_ij[..., channel])
                    if args.bias is not None:
                        total = total + args.bias[rows[i], cols[j], channel]
                    out[image, i, j, channel] = total
    return result


def _bank_of(index: int, size: int, count: int, sharing: str) -> int:
    if sharing == "unshared":
        return index
    if sharing == "tiled":
        return index % count
    for bank, piece in enumerate(np.array_split(np.arange(size), count)):  # regions
        if index in piece:
            return bank
    raise AssertionError("every index lies in one piece")


def conv_transpose2d(
    x,
    kernel,
    bias=None,
    *,
    strides=1,
    padding="same",
    output_padding=None,
    output_shape=None,
    dilation=1,
    groups=1,
    data_format="channels_last",
) -> np.ndarray:
    """Reference for :func:`convlayer.conv_transpose2d`: same arguments, plain loops.

    Each input pixel stamps the kernel, times its value, onto the output: tap ``(a, b)``
    lands ``(i * s_h + a * d_h - top, j * s_w + b * d_w - left)``. Stamps overlap where
    the kernel spans more than the stride; what falls in the padding is cropped.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.array([[[1.0], [2.0]]]), np.ones((1, 3, 1, 1)), strides=(1, 2),
    ...                  padding="valid")[..., 0]
    array([[1., 1., 3., 2., 2.]])
    """
    args = _validate.transpose_args(
        x, kernel, bias, strides=strides, padding=padding, output_padding=output_padding,
        output_shape=output_shape, dilation=dilation, groups=groups, data_format=data_format,
    )
    result, out = _validate.new_transpose_output(args.geom, args.dtype)
    pixels = args.x.astype(args.dtype)
    for image, i, j, channel, a, b, row, col, outputs in _stamps(args.geom):
        out[image, row, col, outputs] += pixels[image, i, j, channel] * args.kernel[a, b, :, channel]
    if args.bias is not None:
        out += args.bias
    return result


def _stamps(geom):
    """Every (image, i, j, input channel, tap a, tap b, output row, output col, output
    channels) where an input value lands inside the output."""
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    top, left = geom.pads[0][0], geom.pads[1][0]
    per_group_in, per_group_out = geom.c // geom.groups, geom.k // geom.groups
    for image in range(geom.n):
        for i in range(geom.h):
            for j in range(geom.w):
                for channel in range(geom.c):
                    group = channel // per_group_in
                    outputs = slice(group * per_group_out, (group + 1) * per_group_out)
                    for a in range(geom.fh):
                        for b in range(geom.fw):
                            row, col = i * sh + a * dh - top, j * sw + b * dw - left
                            if 0 <= row < geom.out_h and 0 <= col < geom.out_w:
                                yield image, i, j, channel, a, b, row, col, outputs


def conv_transpose2d_backward(
    grad_out,
    x,
    kernel,
    *,
    strides=1,
    padding="same",
    output_padding=None,
    output_shape=None,
    dilation=1,
    groups=1,
    data_format="channels_last",
) -> Conv2DGrads:
    """Reference for :func:`convlayer.conv_transpose2d_backward`: the stamps read backwards.

    Each stamp added ``x * tap`` to one output value, so that value's gradient goes to the
    input pixel times the tap, and to the tap times the input pixel.

    Examples
    --------
    >>> import numpy as np
    >>> grads = conv_transpose2d_backward(np.ones((1, 5, 1)), np.array([[[1.0], [2.0]]]),
    ...                                   np.ones((1, 3, 1, 1)), strides=(1, 2), padding="valid")
    >>> grads.grad_x[..., 0], grads.grad_kernel[0, :, 0, 0], grads.grad_bias
    (array([[3., 3.]]), array([3., 3., 3.]), array([5.]))
    """
    options = dict(strides=strides, padding=padding, output_padding=output_padding, output_shape=output_shape,
                   dilation=dilation, groups=groups, data_format=data_format)
    args, grad = _validate.transpose_grad_args(grad_out, x, kernel, **options)
    grad = grad.astype(args.dtype)
    grad_x, grad_x_nhwc = _validate.new_transpose_input_grad(args.geom, args.dtype)
    grad_kernel = np.zeros_like(args.kernel)
    pixels = args.x.astype(args.dtype)
    for image, i, j, channel, a, b, row, col, outputs in _stamps(args.geom):
        g = grad[image, row, col, outputs]
        grad_x_nhwc[image, i, j, channel] += np.sum(g * args.kernel[a, b, :, channel])
        grad_kernel[a, b, :, channel] += g * pixels[image, i, j, channel]
    grad_bias = np.sum(grad, axis=(0, 1, 2))
    return Conv2DGrads(grad_x, _validate.transpose_kernel_from_hwio(grad_kernel, args.geom), grad_bias)
