"""Max pooling, its arg-max indices, max unpooling, and their gradients.

Padded positions never win (as if they were ``-inf``), as in ``tf.nn.max_pool2d`` and
``torch.nn.functional.max_pool2d``. The windows are walked tap by tap (:mod:`._taps`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import _validate
from ..algorithms import compiled
from ..shapes import IntPair, Padding, PoolGeometry
from ._taps import ArrayLike, flat_index, lowest, output_chunks, plane_index, planes, taps

__all__ = ["max_pool2d", "max_pool2d_backward", "max_unpool2d", "max_unpool2d_backward"]


def _max_into(x: np.ndarray, geom: PoolGeometry, y: np.ndarray) -> None:
    """Fill ``y`` (n, out_h, out_w, c) with the window maxima of ``x`` (n, h, w, c).

    Float arrays, both C-contiguous, go through the compiled loop
    (:func:`..algorithms._pool_loops.max_rows`), each output pixel's window once; others
    tap by tap, one ``np.maximum`` over the whole output per tap (each pass crosses memory).
    Against those passes, same machine, back to back: resnet18's 3x3 stride-2 pool on
    1x112x112x64 1.23 -> 0.43 ms (one thread; PyTorch 0.28 on two), 8x112x112x64 8.8 -> 1.76
    (two; PyTorch 1.95), vgg16's 2x2 on 1x224x224x64 2.0 -> 0.88.
    """
    if y.size and x.dtype.kind == "f" and x.flags.c_contiguous and y.flags.c_contiguous and compiled.usable(x, y):
        (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilation, geom.pads
        compiled.run_loop("max_rows", y.shape[0] * y.shape[1], x, *geom.pool, sh, sw, dh, dw, top, left, y,
                          work=y.size * geom.pool[0] * geom.pool[1])
        return
    y.fill(lowest(x.dtype))  # every window holds a real pixel, so this is overwritten
    for out_index, x_index in taps(geom):
        np.maximum(y[out_index], x[x_index], out=y[out_index])  # NaN wins, as in np.max


def _first_hits(x: np.ndarray, geom: PoolGeometry, y: np.ndarray) -> Iterator[tuple[tuple, tuple, np.ndarray]]:
    """Yield ``(out_index, x_index, hit)`` per tap, ``hit`` True where the tap is its window's
    first maximum ``y`` in row-major order (in a window whose maximum is NaN: its first NaN)."""
    nan = y.dtype.kind == "f" and bool(np.isnan(y).any())
    taken = np.zeros(y.shape, bool)  # windows whose first maximum an earlier tap was
    for out_index, x_index in taps(geom):
        xs = x[x_index]
        hit = xs == y[out_index]
        if nan:
            hit |= np.isnan(xs)  # only in windows whose maximum is NaN
        np.greater(hit, taken[out_index], out=hit)  # and not taken before
        taken[out_index] |= hit
        yield out_index, x_index, hit


def _argmax_into(x: np.ndarray, geom: PoolGeometry, y: np.ndarray, index: np.ndarray) -> None:
    """Fill ``y`` with the window maxima and ``index`` with where each first occurs,
    ``row * w + col``."""
    _max_into(x, geom, y)
    for out_index, x_index, hit in _first_hits(x, geom, y):
        np.copyto(index[out_index], flat_index(geom, x_index), where=hit)


def max_pool2d(
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    data_format: str = "channels_last",
) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
    """2D max pooling: the largest value in each window, per channel (``tf.nn.max_pool2d``,
    ``torch.nn.functional.max_pool2d``).

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
        Image or batch, channels last (``(c, h, w)`` or ``(n, c, h, w)`` with
        ``data_format="channels_first"``). Any real dtype.
    pool_size : int or (int, int)
        Window size ``(ph, pw)``, in taps.
    strides : int or (int, int), optional
        Step of the window, ``(vertical, horizontal)``; None (the default) means
        ``pool_size``, so windows tile the image without overlap.
    padding : {'valid', 'same', 'same_lower', 'full'}, int, (int, int) or ((int, int), (int, int))
        As for :func:`convlayer.conv2d`, with the dilated window. Explicit padding must leave at
        least one real pixel in every window.
    dilation : int or (int, int)
        Spacing of the taps: a window spans ``(p - 1) * d + 1`` pixels (1: none).
    ceil_mode : bool
        Round the output size up rather than down (PyTorch's and ONNX's rule): the extra last
        window may hang past the padded input, but must start inside the input or its
        top/left padding.
    return_indices : bool
        Also return where each maximum is.
    data_format : {'channels_last', 'channels_first'}
        Layout of ``x`` and the result.

    Returns
    -------
    values : ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        A new array of x's dtype (integers stay integers).
    indices : ndarray of int64, the shape of values
        Only with ``return_indices``: the position of each maximum flattened over its own
        image plane, ``row * w + col`` (PyTorch's convention), for :func:`max_unpool2d`.

    Raises
    ------
    ValueError
        x not 3-D or 4-D, non-positive pool_size, strides or dilation, a bad padding word, a
        window that does not fit the padded input or holds only padding.
    TypeError
        Non-numeric or complex dtypes, non-integer pool_size, strides or dilation, a
        ceil_mode or return_indices other than True or False.

    Notes
    -----
    Padded positions are ignored (as if ``-inf``), as in TensorFlow and PyTorch. Output sizes
    are those of a convolution with kernel ``pool_size``: 'same' gives ``ceil(size / stride)``;
    otherwise ``floor((size + before + after - span) / stride) + 1`` with ``span = (p - 1) * d
    + 1`` (``ceil`` with ``ceil_mode``, less one if that last window would start past
    ``size + before``). A window containing NaN gives NaN, as ``numpy.max`` does. A window
    whose dilated taps all miss the image (PyTorch gives ``-inf`` there) is refused.

    Indices point at the *first* maximum in row-major window order, as PyTorch's do; a window
    holding NaN points at its first NaN, where PyTorch points at its last one. They agree
    with where :func:`max_pool2d_backward` sends the gradient.

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
    >>> max_pool2d(x, 3, strides=2, ceil_mode=True)[..., 0]   # the second window hangs past
    array([[10, 11],
           [14, 15]])
    >>> values, indices = max_pool2d(x, 2, dilation=2, strides=1, return_indices=True)
    >>> indices[..., 0]
    array([[10, 11],
           [14, 15]])
    """
    x, geom = _validate.pool_args(x, pool_size, strides, padding, data_format, dilation=dilation,
                                  ceil_mode=ceil_mode)
    y, y_nhwc = _validate.new_pool_output(geom, x.dtype)
    if not _validate.as_flag("return_indices", return_indices):
        _max_into(x, geom, y_nhwc)
        return y
    indices, indices_nhwc = _validate.new_pool_output(geom, np.int64)
    for part in output_chunks(geom, 2):  # two bools per value: taken, hit
        _argmax_into(x[part], geom, y_nhwc[part], indices_nhwc[part])
    return y, indices


def max_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * max_pool2d(x, ...))`` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``max_pool2d(x, ...)``
        Gradient of the loss with respect to the pooled output.
    x, pool_size, strides, padding, dilation, ceil_mode, data_format
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
    window and as PyTorch; a window holding NaN sends its gradient to its first NaN (PyTorch:
    its last). Where windows overlap (strides smaller than the window) a pixel collects the
    gradient of every window whose maximum it is.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 3], [3, 2]]).reshape(2, 2, 1)
    >>> max_pool2d_backward(np.ones((1, 1, 1)), x, 2)[..., 0]
    array([[0., 1.],
           [0., 0.]])
    """
    x, grad_out, geom = _validate.pool_grad_args(grad_out, x, pool_size, strides, padding, data_format,
                                                 dilation=dilation, ceil_mode=ceil_mode)
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    for part in output_chunks(geom, x.itemsize + 2 + gx.itemsize):  # maxima, two bools, a share
        xs, gxs, grads = x[part], gx[part], grad_out[part]
        y = np.empty((xs.shape[0], geom.out_h, geom.out_w, geom.c), x.dtype)
        _max_into(xs, geom, y)
        for out_index, x_index, hit in _first_hits(xs, geom, y):
            gxs[x_index] += np.where(hit, grads[out_index], 0)
    return grad_x


# Unpooling.


def max_unpool2d(
    x: ArrayLike,
    indices: ArrayLike,
    output_size: "IntPair | tuple[int, ...]",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Put pooled values back where :func:`max_pool2d` found them; zeros elsewhere
    (``torch.nn.functional.max_unpool2d``, ONNX ``MaxUnpool``).

    Parameters
    ----------
    x : array_like, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        Values to place, e.g. ``max_pool2d``'s (channels first with ``data_format``).
    indices : array_like of integers, the shape of x
        Where each value goes in its own image plane, ``row * w + col``, as
        ``max_pool2d(..., return_indices=True)`` returns them.
    output_size : int, (int, int) or a whole shape in x's layout
        The unpooled image size ``(h, w)``, usually the pooled input's.
    data_format : {'channels_last', 'channels_first'}

    Returns
    -------
    ndarray, shape (h, w, c) or (n, h, w, c)
        Of x's dtype.

    Raises
    ------
    ValueError
        indices not of x's shape or outside ``[0, h * w)``, a whole-shape output_size that
        changes the batch or channel size, x not 3-D or 4-D.
    TypeError
        indices not integers, x not real.

    Notes
    -----
    output_size is required, as SPEC.md has it: PyTorch's default (the inverse of a pooling's
    output-size formula) needs the pooling's arguments, which the indices do not carry. Where
    two values go to the same pixel (overlapping windows sharing a maximum) one of them is
    kept; from ``max_pool2d`` they are equal.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 5], [7, 2]])[..., None]
    >>> values, indices = max_pool2d(x, 2, return_indices=True)
    >>> max_unpool2d(values, indices, (2, 2))[..., 0]
    array([[0, 0],
           [7, 0]])
    """
    x, indices, geom = _validate.unpool_args(x, indices, output_size, data_format)
    out = np.zeros(geom.input_shape, x.dtype)
    flat, axis = planes(_validate.pool_nhwc(out, geom), geom.channels_first)
    flat[plane_index(indices, axis)] = x
    return out


def max_unpool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    indices: ArrayLike,
    output_size: "IntPair | tuple[int, ...]",
    *,
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of ``sum(grad_out * max_unpool2d(x, indices, output_size))`` with respect to x.

    Parameters
    ----------
    grad_out : array_like, the shape of ``max_unpool2d(x, ...)``
    x, indices, output_size, data_format
        The arguments of the forward call (only x's shape is used).

    Returns
    -------
    ndarray, the shape of x
        ``grad_out`` read at each index, of dtype ``numpy.result_type(grad_out, x,
        numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_unpool2d`, and if grad_out does not have the unpooled shape.

    Notes
    -----
    Every value gets the gradient at its index, also where two indices coincide (as
    PyTorch's gather does), so this is the exact gradient when the indices are distinct.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(4.0).reshape(2, 2, 1)
    >>> max_unpool2d_backward(g, np.ones((1, 1, 1)), np.array([[[2]]]), (2, 2))[..., 0]
    array([[2.]])
    """
    x, indices, geom = _validate.unpool_args(x, indices, output_size, data_format)
    grad = _validate.as_real_array("grad_out", grad_out)
    if grad.shape != geom.input_shape:
        raise ValueError(f"grad_out must have the unpooled shape {geom.input_shape} (x shape "
                         f"{geom.output_shape}, output_size {(geom.h, geom.w)}); got grad_out shape {grad.shape}")
    dtype = np.result_type(grad.dtype, x.dtype, np.float32)
    flat, axis = planes(_validate.pool_nhwc(np.ascontiguousarray(grad, dtype), geom), geom.channels_first)
    grad_x, gx = _validate.new_pool_output(geom, dtype)
    gx[...] = flat[plane_index(indices, axis)]
    return grad_x
