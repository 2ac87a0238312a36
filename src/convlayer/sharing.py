"""The weight-sharing spectrum: which kernel each output pixel uses.

A convolution shares one kernel over every output pixel. Its relatives differ only in
that choice; they gather the same patches and multiply each by *its* kernel:

- shared (:func:`convlayer.conv2d`): one kernel for all pixels;
- tiled (:func:`tiled_conv2d`, Le et al., 2010): pixel ``(i, j)`` uses kernel
  ``(i % T_h, j % T_w)``, so pixels ``T`` apart share;
- regions (:func:`region_conv2d`, as in DeepID): the output grid is cut into
  ``R_h x R_w`` regions by ``numpy.array_split`` along each axis, one kernel per region;
- unshared (:func:`locally_connected2d`, as in DeepFace): every pixel its own kernel.

The kernels form a grid of *banks* (:data:`convlayer.shapes.BANK_GRIDS` names its size for
each kind), and the choice is separable: the kernel of pixel ``(i, j)`` is
``kernel[rows[i], cols[j]]``, with one index array per axis from :func:`bank_index`.
Everything else (padding, strides, patches, memory blocks, gradients) is the convolution's
own code, in :mod:`convlayer.algorithms.im2col`.
"""

from __future__ import annotations

import numpy as np

from . import _validate
from .algorithms import buffers, im2col, im2col_backward
from . import shapes
from .algorithms.banks import BankIndex
from .functional import ArrayLike, Conv2DGrads
from .shapes import IntPair, Padding


def bank_index(size: int, sharing: str, count: int = 1) -> np.ndarray:
    """For each output position along one axis, the index of the kernel bank it uses.

    Parameters
    ----------
    size : int
        The output's length along the axis (``out_h`` or ``out_w``).
    sharing : {'shared', 'tiled', 'regions', 'unshared'}
    count : int
        Banks along the axis: the tile period ``T`` for 'tiled', the number of regions
        ``R`` for 'regions'; ignored for 'shared' (1) and 'unshared' (``size``).

    Examples
    --------
    >>> bank_index(5, "tiled", 2)
    array([0, 1, 0, 1, 0])
    >>> bank_index(5, "regions", 2)
    array([0, 0, 0, 1, 1])
    >>> bank_index(3, "unshared")
    array([0, 1, 2])
    """
    sharing = shapes.check_sharing(sharing)
    if sharing == "shared":
        return np.zeros(size, np.intp)
    if sharing == "unshared":
        return np.arange(size)
    if sharing == "tiled":
        return np.arange(size) % count
    lengths = [len(part) for part in np.array_split(np.arange(size), count)]  # regions
    return np.repeat(np.arange(count), lengths)


def kernel_index(out_h: int, out_w: int, sharing: str, banks=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Two (out_h, out_w) integer arrays: the bank row and column each output pixel uses.

    ``banks`` is ``(T_h, T_w)`` for 'tiled' and ``(R_h, R_w)`` for 'regions'.

    >>> rows, cols = kernel_index(2, 3, "tiled", (1, 2))
    >>> cols
    array([[0, 1, 0],
           [0, 1, 0]])
    """
    rows = bank_index(out_h, sharing, banks[0])
    cols = bank_index(out_w, sharing, banks[1])
    return np.broadcast_to(rows[:, None], (out_h, out_w)), np.broadcast_to(cols[None, :], (out_h, out_w))


def locally_connected2d(
    x: ArrayLike, kernel: ArrayLike, bias: "ArrayLike | None" = None, *,
    strides: IntPair = 1, padding: Padding = "valid",
) -> np.ndarray:
    """A locally-connected layer: a convolution without weight sharing.

    Every output pixel ``(i, j)`` has its own kernel ``kernel[i, j]`` and bias
    ``bias[i, j]``; padding and strides mean what they mean for :func:`convlayer.conv2d`.

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
    kernel : array_like, shape (out_h, out_w, fh, fw, c, k)
    bias : None, scalar or array_like, shape (out_h, out_w, k)
    strides, padding
        As for ``conv2d``; the default padding is 'valid', as in Keras' LocallyConnected2D.

    Returns
    -------
    ndarray, shape (out_h, out_w, k) or (n, out_h, out_w, k)
        In ``numpy.result_type(x, kernel, numpy.float32)``.

    Notes
    -----
    The kernel is ``out_h * out_w`` times a convolution's, and so are the parameters (see
    ``shapes.num_params(..., sharing="unshared")``). Work memory beyond input, output and
    kernel: the patch matrix and a stack of per-pixel kernels for a block of output rows,
    bounded together by :func:`convlayer.get_memory_budget`.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(3, 3, 1)
    >>> kernel = np.ones((2, 2, 2, 2, 1, 1))
    >>> kernel[1, 1] *= 10                                  # the bottom-right pixel's own kernel
    >>> locally_connected2d(x, kernel)[..., 0]
    array([[  8.,  12.],
           [ 20., 240.]])
    """
    return _banked("unshared", x, kernel, bias, strides, padding)


def region_conv2d(
    x: ArrayLike, kernel: ArrayLike, bias: "ArrayLike | None" = None, *,
    strides: IntPair = 1, padding: Padding = "same",
) -> np.ndarray:
    """One filter bank per region of the output grid (as in DeepID).

    The ``(out_h, out_w)`` output grid is cut into ``R_h x R_w`` regions by
    ``numpy.array_split`` along each axis (earlier regions get the extra rows), and region
    ``(a, b)`` uses ``kernel[a, b]`` and ``bias[a, b]``. ``R = (1, 1)`` is ``conv2d``;
    ``R = (out_h, out_w)`` is :func:`locally_connected2d`.

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
    kernel : array_like, shape (r_h, r_w, fh, fw, c, k)
    bias : None, scalar or array_like, shape (r_h, r_w, k)

    Returns
    -------
    ndarray, shape (out_h, out_w, k) or (n, out_h, out_w, k)

    Examples
    --------
    >>> kernel = np.stack([np.ones((1, 1, 1, 1)), -np.ones((1, 1, 1, 1))])[None]  # left, right
    >>> region_conv2d(np.ones((2, 4, 1)), kernel)[..., 0]
    array([[ 1.,  1., -1., -1.],
           [ 1.,  1., -1., -1.]])
    """
    return _banked("regions", x, kernel, bias, strides, padding)


def tiled_conv2d(
    x: ArrayLike, kernel: ArrayLike, bias: "ArrayLike | None" = None, *,
    strides: IntPair = 1, padding: Padding = "same",
) -> np.ndarray:
    """Tiled weight sharing (Le et al., 2010): output pixels ``T`` apart share a kernel.

    Pixel ``(i, j)`` uses ``kernel[i % T_h, j % T_w]`` and ``bias[i % T_h, j % T_w]``.
    ``T = (1, 1)`` is ``conv2d``; ``T = (out_h, out_w)`` is :func:`locally_connected2d`.

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
    kernel : array_like, shape (t_h, t_w, fh, fw, c, k)
    bias : None, scalar or array_like, shape (t_h, t_w, k)

    Examples
    --------
    >>> kernel = np.array([1.0, 10.0]).reshape(1, 2, 1, 1, 1, 1)   # T = (1, 2)
    >>> tiled_conv2d(np.ones((1, 5, 1)), kernel)[..., 0]
    array([[ 1., 10.,  1., 10.,  1.]])
    """
    return _banked("tiled", x, kernel, bias, strides, padding)


def _banked(sharing: str, x, kernel, bias, strides, padding) -> np.ndarray:
    """The one forward path of the sharing kinds: conv2d's gather, each pixel its bank."""
    args = _validate.banked_args(x, kernel, bias, strides=strides, padding=padding, sharing=sharing)
    index = _bank_index(args, sharing)
    result, nhwc = _validate.new_output(args.geom, args.dtype)
    im2col.correlate(args.x, args.kernel, args.geom, "constant", nhwc, buffers.get_memory_budget(), index)
    if args.bias is not None:
        nhwc += args.bias[index.rows[:, None], index.cols[None, :]]
    return result


def _bank_index(args, sharing: str) -> BankIndex:
    """The bank row of each output row and the bank column of each output column."""
    b_h, b_w = args.kernel.shape[:2]
    return BankIndex(bank_index(args.geom.out_h, sharing, b_h), bank_index(args.geom.out_w, sharing, b_w))


def locally_connected2d_backward(grad_out, x, kernel, *, strides=1, padding="valid") -> Conv2DGrads:
    """Gradients of :func:`locally_connected2d`: ``(grad_x, grad_kernel, grad_bias)``.

    The exact gradient of ``sum(grad_out * locally_connected2d(x, kernel, bias, ...))``,
    shaped like x, the kernel and the bias ``(out_h, out_w, k)``.
    """
    return _banked_backward("unshared", grad_out, x, kernel, strides, padding)


def region_conv2d_backward(grad_out, x, kernel, *, strides=1, padding="same") -> Conv2DGrads:
    """Gradients of :func:`region_conv2d`; each region's kernel sums its pixels' gradients."""
    return _banked_backward("regions", grad_out, x, kernel, strides, padding)


def tiled_conv2d_backward(grad_out, x, kernel, *, strides=1, padding="same") -> Conv2DGrads:
    """Gradients of :func:`tiled_conv2d`; each tile's kernel sums its pixels' gradients."""
    return _banked_backward("tiled", grad_out, x, kernel, strides, padding)


def _banked_backward(sharing: str, grad_out, x, kernel, strides, padding) -> Conv2DGrads:
    args, grad_nhwc = _validate.banked_grad_args(grad_out, x, kernel, strides=strides, padding=padding,
                                                 sharing=sharing)
    index = _bank_index(args, sharing)
    grad_x, grad_x_nhwc = _validate.new_input_grad(args.geom, args.dtype)
    grad_kernel = im2col_backward.correlate_backward(args.x, args.kernel, args.geom, "constant", grad_nhwc,
                                                     grad_x_nhwc, buffers.get_memory_budget(), index)
    b_h, b_w, k = args.kernel.shape[0], args.kernel.shape[1], args.kernel.shape[-1]
    grad_bias = np.zeros((b_h, b_w, k), args.dtype)
    np.add.at(grad_bias, (index.rows[:, None], index.cols[None, :]), grad_nhwc.sum(axis=0, dtype=args.dtype))
    return Conv2DGrads(grad_x, grad_kernel, grad_bias)
