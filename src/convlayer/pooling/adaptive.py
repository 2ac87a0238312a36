"""Adaptive and global pooling: a fixed output size, whatever the input's, and gradients.

Output row ``i`` of ``out_h`` pools the input rows of PyTorch's bin ``floor(i * h / out_h)``
to ``ceil((i + 1) * h / out_h)`` (:func:`convlayer.shapes.adaptive_bins`), and likewise for
columns; a global pooling is the one bin of the whole image. Bins differ in size, so there
are no taps to walk; instead both reductions are separable: pool the rows of each row bin
(a loop over ``out_h``), then the columns of each column bin (over ``out_w``), each one
vectorised NumPy reduction over the batch, the columns and the channels.
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from ..shapes import AdaptiveGeometry, IntPair
from ._taps import ArrayLike, image_chunks, plane_index, planes

__all__ = [
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward", "global_max_pool2d", "global_max_pool2d_backward",
]


def _counts(geom: AdaptiveGeometry) -> np.ndarray:
    """Pixels in each bin, shape (out_h, out_w, 1), float64."""
    rows = np.array([stop - start for start, stop in geom.rows], np.float64)
    cols = np.array([stop - start for start, stop in geom.cols], np.float64)
    return (rows[:, None] * cols[None, :])[:, :, None]


def _chunks(geom: AdaptiveGeometry, dtype) -> "list[slice]":
    """Batch slices whose (images, out_h or h, w or out_w, c) work buffers fit the budget."""
    widest = max(geom.out_h * geom.w, geom.h * geom.out_w)
    return list(image_chunks(geom.n, widest * geom.c * np.dtype(dtype).itemsize))


def _reduce_bins(x: np.ndarray, geom: AdaptiveGeometry, reduce, dtype, y: np.ndarray) -> None:
    """``y[:, i, j] = reduce(x[:, row bin i, column bin j])`` for a separable ``reduce``
    (``np.sum`` or ``np.max``), rows first."""
    for part in _chunks(geom, dtype):
        rows = np.empty((x[part].shape[0], geom.out_h, geom.w, geom.c), dtype)
        for i, (start, stop) in enumerate(geom.rows):
            reduce(x[part, start:stop], axis=1, out=rows[:, i])
        for j, (start, stop) in enumerate(geom.cols):
            reduce(rows[:, :, start:stop], axis=2, out=y[part, :, j])


def _spread_bins(share: np.ndarray, geom: AdaptiveGeometry, gx: np.ndarray) -> None:
    """Add ``share[:, i, j]`` to every pixel of bin ``(i, j)`` of ``gx``: the adjoint of
    :func:`_reduce_bins` with ``np.sum``."""
    for part in _chunks(geom, gx.dtype):
        rows = np.zeros((share[part].shape[0], geom.out_h, geom.w, geom.c), gx.dtype)
        for j, (start, stop) in enumerate(geom.cols):
            rows[:, :, start:stop] += share[part, :, j:j + 1]
        for i, (start, stop) in enumerate(geom.rows):
            gx[part, start:stop] += rows[:, i:i + 1]


def _argmax_bins(x: np.ndarray, geom: AdaptiveGeometry, y: np.ndarray, index: np.ndarray) -> None:
    """Each bin's maximum and where it first occurs in row-major order, ``row * w + col``.

    Separable too: the first maximum of a bin lies in the first row whose maximum over the
    bin's columns is the bin's maximum, at that row's first maximum. ``numpy.argmax`` takes
    the first NaN as the maximum, so a bin holding NaN points at its first NaN.
    """
    for part in _chunks(geom, np.int64):
        images = x[part].shape[0]
        col_max = np.empty((images, geom.h, geom.out_w, geom.c), x.dtype)
        col_arg = np.empty(col_max.shape, np.int64)
        for j, (start, stop) in enumerate(geom.cols):
            block = x[part, :, start:stop]
            found = np.argmax(block, axis=2)[:, :, None]
            col_max[:, :, j] = np.take_along_axis(block, found, axis=2)[:, :, 0]
            col_arg[:, :, j] = start + found[:, :, 0]
        for i, (start, stop) in enumerate(geom.rows):
            found = np.argmax(col_max[:, start:stop], axis=1)[:, None]  # each bin's first row
            y[part, i] = np.take_along_axis(col_max[:, start:stop], found, axis=1)[:, 0]
            col = np.take_along_axis(col_arg[:, start:stop], found, axis=1)[:, 0]
            index[part, i] = (start + found[:, 0]) * geom.w + col


def _max_of_bins(x: np.ndarray, geom: AdaptiveGeometry, return_indices: bool):
    """The maxima in the user's layout, with their indices if asked."""
    y, y_nhwc = _validate.new_pool_output(geom, x.dtype)
    if not return_indices:
        _reduce_bins(x, geom, np.max, x.dtype, y_nhwc)
        return y
    indices, indices_nhwc = _validate.new_pool_output(geom, np.int64)
    _argmax_bins(x, geom, y_nhwc, indices_nhwc)
    return y, indices


def _max_grad(grad_out: np.ndarray, x: np.ndarray, geom: AdaptiveGeometry) -> np.ndarray:
    """Send each bin's gradient to its first maximum; bins that share it add up."""
    dtype = np.result_type(grad_out.dtype, x.dtype, np.float32)
    grad_x, gx = _validate.new_pool_input_grad(geom, dtype)
    y = np.empty((geom.n, geom.out_h, geom.out_w, geom.c), x.dtype)
    index = np.empty(y.shape, np.int64)
    _argmax_bins(x, geom, y, index)
    flat, axis = planes(gx, geom.channels_first)
    np.add.at(flat, plane_index(index, axis), grad_out.astype(dtype, copy=False))
    return grad_x


def _avg_grad(grad_out: np.ndarray, x: np.ndarray, geom: AdaptiveGeometry) -> np.ndarray:
    grad_x, gx = _validate.new_pool_input_grad(geom, np.result_type(grad_out.dtype, x.dtype, np.float32))
    _spread_bins((grad_out / _counts(geom)).astype(grad_x.dtype, copy=False), geom, gx)
    return grad_x


def _mean_of_bins(x: np.ndarray, geom: AdaptiveGeometry) -> np.ndarray:
    y, y_nhwc = _validate.new_pool_output(geom, np.result_type(x.dtype, np.float32))
    _reduce_bins(x, geom, lambda a, axis, out: np.sum(a, axis=axis, dtype=y.dtype, out=out), y.dtype, y_nhwc)
    y_nhwc /= _counts(geom)
    return y


# Adaptive pooling.


def adaptive_avg_pool2d(x: ArrayLike, output_size: IntPair, *, data_format: str = "channels_last") -> np.ndarray:
    """Average pooling to a fixed output size (``torch.nn.functional.adaptive_avg_pool2d``).

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
        Image or batch, channels last (channels first with ``data_format``), any real dtype.
    output_size : int or (int, int)
        ``(out_h, out_w)``; None in a pair keeps that axis's size, as in PyTorch.
    data_format : {'channels_last', 'channels_first'}

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        Of dtype ``numpy.result_type(x, numpy.float32)``.

    Raises
    ------
    ValueError
        x not 3-D or 4-D, an image of no pixels, output_size not positive.
    TypeError
        Non-numeric or complex x, a non-integer output_size.

    Notes
    -----
    Output pixel ``(i, j)`` is the mean of bin ``floor(i * h / out_h)`` to
    ``ceil((i + 1) * h / out_h)`` (rows) by the same over columns: PyTorch's bins, which
    overlap where h is not a multiple of out_h. An ``output_size`` larger than the image
    repeats pixels. The mean is the row sums, then the column sums, divided by the bin's size.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool2d(np.arange(5.0).reshape(1, 5, 1), (1, 3))[..., 0]
    array([[0.5, 2. , 3.5]])
    """
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    return _mean_of_bins(x, geom)


def adaptive_avg_pool2d_backward(grad_out: ArrayLike, x: ArrayLike, output_size: IntPair, *,
                                 data_format: str = "channels_last") -> np.ndarray:
    """Gradient of ``sum(grad_out * adaptive_avg_pool2d(x, output_size))`` with respect to x.

    Parameters
    ----------
    grad_out : array_like, the shape of ``adaptive_avg_pool2d(x, output_size)``
    x, output_size, data_format
        The arguments of the forward call (only x's shape is used).

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_avg_pool2d`, and if grad_out does not have the output's shape.

    Notes
    -----
    Each bin's gradient, divided by its size, goes to each of its pixels; overlapping bins add.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool2d_backward(np.ones((1, 2, 1)), np.zeros((1, 3, 1)), (1, 2))[..., 0]
    array([[0.5, 1. , 0.5]])
    """
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    grad = _validate.pool_grad_nhwc(grad_out, geom, geom.output_shape, f"output_size {(geom.out_h, geom.out_w)}")
    return _avg_grad(grad, x, geom)


def adaptive_max_pool2d(x: ArrayLike, output_size: IntPair, return_indices: bool = False, *,
                        data_format: str = "channels_last") -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
    """Max pooling to a fixed output size (``torch.nn.functional.adaptive_max_pool2d``).

    Parameters
    ----------
    x, output_size, data_format
        As for :func:`adaptive_avg_pool2d`.
    return_indices : bool
        Also return where each maximum is, ``row * w + col`` in its own image plane (int64),
        as :func:`convlayer.max_pool2d` does.

    Returns
    -------
    ndarray, shape (out_h, out_w, c) or (n, out_h, out_w, c)
        Of x's dtype (and the indices, with ``return_indices``).

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_avg_pool2d`, and return_indices not True or False.

    Notes
    -----
    The bins are :func:`adaptive_avg_pool2d`'s. NaN in a bin gives NaN. Indices point at the
    first maximum in row-major order (a bin holding NaN: its first NaN).

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_max_pool2d(np.array([[1, 9, 2, 3, 7]])[..., None], (1, 2))[..., 0]
    array([[9, 7]])
    """
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    return _max_of_bins(x, geom, _validate.as_flag("return_indices", return_indices))


def adaptive_max_pool2d_backward(grad_out: ArrayLike, x: ArrayLike, output_size: IntPair, *,
                                 data_format: str = "channels_last") -> np.ndarray:
    """Gradient of ``sum(grad_out * adaptive_max_pool2d(x, output_size))`` with respect to x.

    Parameters
    ----------
    grad_out : array_like, the shape of ``adaptive_max_pool2d(x, output_size)``
    x, output_size, data_format
        The arguments of the forward call.

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_max_pool2d`, and if grad_out does not have the output's shape.

    Notes
    -----
    Each bin's gradient goes to its first maximum in row-major order (a NaN bin's: its first
    NaN); a pixel that is the maximum of overlapping bins collects all their gradients.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 9.0, 2.0]])[..., None]
    >>> adaptive_max_pool2d_backward(np.ones((1, 2, 1)), x, (1, 2))[..., 0]
    array([[0., 2., 0.]])
    """
    x, geom = _validate.adaptive_args(x, output_size, data_format)
    grad = _validate.pool_grad_nhwc(grad_out, geom, geom.output_shape, f"output_size {(geom.out_h, geom.out_w)}")
    return _max_grad(grad, x, geom)


# Global pooling.


def _global_shape(geom: AdaptiveGeometry, keepdims: bool) -> tuple:
    """``(n, c)`` or ``(c,)``; with keepdims, the 1x1 image in the user's layout."""
    if _validate.as_flag("keepdims", keepdims):
        return geom.output_shape
    return ((geom.n,) if geom.batched else ()) + (geom.c,)


def global_avg_pool2d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "channels_last") -> np.ndarray:
    """The mean of each image plane (ONNX ``GlobalAveragePool``, Keras ``GlobalAveragePooling2D``).

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
        Channels last (channels first with ``data_format``), any real dtype.
    keepdims : bool
        Keep the pooled axes as size 1: ``(n, 1, 1, c)`` (``(n, c, 1, 1)`` channels first,
        ONNX's shape) instead of ``(n, c)``.
    data_format : {'channels_last', 'channels_first'}

    Returns
    -------
    ndarray, shape (n, c) or (c,); with keepdims x's rank
        Of dtype ``numpy.result_type(x, numpy.float32)``.

    Raises
    ------
    ValueError
        x not 3-D or 4-D, or an image of no pixels (its mean is undefined).
    TypeError
        Non-numeric or complex x, keepdims not True or False.

    Notes
    -----
    ``adaptive_avg_pool2d(x, 1)`` with the pooled axes dropped. An empty batch gives an
    empty result.

    Examples
    --------
    >>> import numpy as np
    >>> global_avg_pool2d(np.arange(8.0).reshape(2, 2, 2))
    array([3., 4.])
    """
    x, geom = _validate.adaptive_args(x, None, data_format)
    return _mean_of_bins(x, geom).reshape(_global_shape(geom, keepdims))


def global_avg_pool2d_backward(grad_out: ArrayLike, x: ArrayLike, keepdims: bool = False, *,
                               data_format: str = "channels_last") -> np.ndarray:
    """Gradient of ``sum(grad_out * global_avg_pool2d(x, keepdims))``: each pixel gets its
    plane's gradient divided by ``h * w``.

    Parameters
    ----------
    grad_out : array_like, the shape of ``global_avg_pool2d(x, keepdims)``
    x, keepdims, data_format
        The arguments of the forward call (only x's shape is used).

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_avg_pool2d`, and if grad_out does not have the output's shape.

    Notes
    -----
    grad_out has the forward's shape: ``(n, c)`` or ``(c,)``, or with keepdims x's rank.

    Examples
    --------
    >>> import numpy as np
    >>> global_avg_pool2d_backward(np.array([4.0]), np.zeros((2, 2, 1)))[..., 0]
    array([[1., 1.],
           [1., 1.]])
    """
    x, geom = _validate.adaptive_args(x, None, data_format)
    grad = _validate.pool_grad_nhwc(grad_out, geom, _global_shape(geom, keepdims), f"keepdims {bool(keepdims)}")
    return _avg_grad(grad, x, geom)


def global_max_pool2d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "channels_last") -> np.ndarray:
    """The maximum of each image plane (ONNX ``GlobalMaxPool``, Keras ``GlobalMaxPooling2D``).

    Parameters
    ----------
    x, keepdims, data_format
        As for :func:`global_avg_pool2d`.

    Returns
    -------
    ndarray, shape (n, c) or (c,); with keepdims x's rank
        Of x's dtype.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_avg_pool2d`.

    Notes
    -----
    A plane holding NaN gives NaN, as ``numpy.max`` does.

    Examples
    --------
    >>> import numpy as np
    >>> global_max_pool2d(np.arange(8).reshape(2, 2, 2), keepdims=True)[..., 1]
    array([[7]])
    """
    x, geom = _validate.adaptive_args(x, None, data_format)
    return _max_of_bins(x, geom, False).reshape(_global_shape(geom, keepdims))


def global_max_pool2d_backward(grad_out: ArrayLike, x: ArrayLike, keepdims: bool = False, *,
                               data_format: str = "channels_last") -> np.ndarray:
    """Gradient of ``sum(grad_out * global_max_pool2d(x, keepdims))`` with respect to x.

    Parameters
    ----------
    grad_out : array_like, the shape of ``global_max_pool2d(x, keepdims)``
    x, keepdims, data_format
        The arguments of the forward call.

    Returns
    -------
    ndarray, the shape of x
        Of dtype ``numpy.result_type(grad_out, x, numpy.float32)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_max_pool2d`, and if grad_out does not have the output's shape.

    Notes
    -----
    Each plane's gradient goes to its first maximum in row-major order (first NaN, if any).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [5.0, 2.0]])[..., None]
    >>> global_max_pool2d_backward(np.array([3.0]), x)[..., 0]
    array([[0., 3.],
           [0., 0.]])
    """
    x, geom = _validate.adaptive_args(x, None, data_format)
    grad = _validate.pool_grad_nhwc(grad_out, geom, _global_shape(geom, keepdims), f"keepdims {bool(keepdims)}")
    return _max_grad(grad, x, geom)
