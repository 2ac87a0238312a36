"""The public ops, each beside its gradient: ``conv2d`` and ``conv2d_backward``, ``relu``
and ``relu_backward``; relatives come as later issues add them.

Each op reads in four steps: normalise (one boundary, :mod:`._validate`), resolve padding
(integers, :mod:`.shapes`), compute (:mod:`.algorithms`), add bias.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import numpy as np

from . import _validate
from .algorithms import backward, buffers, dispatch
from .shapes import IntPair, Padding

ArrayLike = Union[np.ndarray, "list", "tuple", float, int]


class Conv2DGrads(NamedTuple):
    """The gradients of a convolution, each shaped (and laid out) like what it is for."""

    grad_x: np.ndarray  # x's shape
    grad_kernel: np.ndarray  # kernel's shape
    grad_bias: np.ndarray  # (k,); (1,) for a single-filter kernel of rank 2 or 3


def conv2d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: "ArrayLike | None" = None,
    *,
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
    groups: int = 1,
    flip: bool = False,
    pad_mode: str = "constant",
    data_format: str = "channels_last",
    algorithm: str = "auto",
) -> np.ndarray:
    """2D convolution layer (cross-correlation), as in TensorFlow and PyTorch.

    Parameters
    ----------
    x : array_like, shape (h, w), (h, w, c) or (n, h, w, c)
        Image or batch, channels last (``(c, h, w)`` or ``(n, c, h, w)`` with
        ``data_format="channels_first"``). Any real dtype; lists and memory maps work.
    kernel : array_like, shape (fh, fw), (fh, fw, c) or (fh, fw, c // groups, k)
        Its rank decides the form: one 2-D filter on a 2-D image; one filter over all ``c``
        channels (the output has no channel axis); or ``k`` filters. Channels-first takes
        PyTorch's ``(k, c // groups, fh, fw)`` (and ``(c, fh, fw)`` for one filter).
    bias : None, scalar or array_like, shape (k,)
        Added to every output pixel of its channel.
    strides : int or (int, int)
        Step of the window, ``(vertical, horizontal)``.
    padding : {'same', 'same_lower', 'valid', 'full'}, int, (int, int) or ((int, int), (int, int))
        A padding word, ``p`` zeros on every side, ``(p_h, p_w)``, or explicit
        ``((top, bottom), (left, right))``. Case does not matter ('SAME' works).
    dilation : int or (int, int)
        Spacing between kernel taps; 1 means none.
    groups : int
        Split channels into groups convolved separately; ``c`` and ``k`` must divide by it
        (``groups == c`` is a depthwise convolution).
    flip : bool
        Rotate the kernel by 180 degrees: the mathematical convolution of image filtering.
    pad_mode : {'constant', 'reflect', 'symmetric', 'edge', 'wrap'}
        How padded pixels are filled, with NumPy's meanings (``np.pad``); PyTorch's 'zeros',
        'replicate' and 'circular' are accepted as aliases.
    data_format : {'channels_last', 'channels_first'}
        Layout of ``x``, ``kernel`` and the result.
    algorithm : {'auto', 'im2col', 'shift', 'depthwise', 'fft', 'winograd', 'grouped'}
        How to compute it; every choice gives the same result up to rounding. 'auto' picks
        by shape (see :mod:`convlayer.algorithms.choose`); the others are for tests and
        benchmarks: 'shift' needs groups=1, 'depthwise' groups == c, 'fft' strides 1 and
        groups=1 (and spreads a NaN or inf over its whole block, which 'auto' avoids).

    Returns
    -------
    ndarray, shape (out_h, out_w), (n?, out_h, out_w) or (n?, out_h, out_w, k)
        A new array of dtype ``numpy.result_type(x, kernel, numpy.float32)``: float32
        stays float32, float64 stays float64, uint8 with a float32 kernel gives float32,
        integers with integers give float64.

    Raises
    ------
    ValueError
        Shape or channel mismatch, a bad padding word or pad mode, non-positive strides or
        dilation, groups that do not divide, a kernel that does not fit the padded input,
        a bias of the wrong shape, an unknown algorithm or one that cannot compute the call.
    TypeError
        Non-numeric or complex dtypes.

    Notes
    -----
    Output size per axis (``span = (f - 1) * dilation + 1``): 'same' gives
    ``ceil(size / stride)`` with total padding ``max((out - 1) * stride + span - size, 0)``,
    of which the top/left get ``total // 2`` and the odd extra zero goes to the
    bottom/right (TensorFlow; 'same_lower' is the opposite, as JAX's 'SAME_LOWER');
    'valid' gives ``ceil((size - span + 1) / stride)``; explicit padding gives
    ``floor((size + before + after - span) / stride) + 1`` (PyTorch's formula);
    'full' pads ``span - 1`` on every side.

    An empty batch gives an empty result. An image of zero height or width gives the bias
    over the padding when the padding alone fits the kernel (as in TensorFlow); with
    'same' padding it gives an empty result; otherwise the kernel does not fit (ValueError).
    Bool inputs count as 0 and 1. NaN and inf propagate as in NumPy arithmetic.

    Work memory (padded slab and patch matrix) is bounded by
    :func:`convlayer.get_memory_budget` (256 MiB unless set): larger inputs are computed
    in blocks of images, output rows and columns.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> conv2d(x, np.ones((2, 2)), padding="valid")
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 3, 2)), [0, 1], strides=2).shape
    (3, 3, 2)
    >>> conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 3)), 1.0, padding="valid")
    array([[28., 28., 28.],
           [28., 28., 28.],
           [28., 28., 28.]])
    """
    if _validate.is_dask_array(x):  # lazy, chunk by chunk: see convlayer.dask
        from . import dask as _dask

        return _dask.conv2d(x, kernel, bias, strides=strides, padding=padding, dilation=dilation,
                            groups=groups, flip=flip, pad_mode=pad_mode, data_format=data_format,
                            algorithm=algorithm)
    args = _validate.conv_args(
        x, kernel, bias, strides=strides, padding=padding, dilation=dilation, groups=groups,
        flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    return _convolved(args, algorithm)


def conv2d_checked(args: _validate.ConvArgs, low=None, high=None, activation=None) -> np.ndarray:
    """:func:`conv2d` of arguments :func:`._validate.conv_args` has checked (the ONNX runner
    keeps them per layer and input shape: :mod:`convlayer.onnx.spatial`), then clamped to
    ``[low, high]`` (None: that side unbounded) as by :func:`numpy.clip`, in the same pass
    as the bias (a layer and its Relu or ReLU6; the depthwise loop clamps each sum as it
    stores it), or with ``activation``, ``(name, alpha, beta)``: Sigmoid, Swish,
    HardSigmoid or HardSwish with ONNX's parameters, for a float32 result with the compiled
    loops (:func:`.algorithms.layout.activation_ready`), in the compiled pass that adds the
    bias (:func:`.algorithms.layout.add_bias_activation`); the depthwise loop's threads
    each activate the rows they have just computed. ``(name, alpha, beta, sums)`` also
    writes each output row's channel sums of the activated values into ``sums``, a float32
    ``(n * out_h, k)`` array (:func:`.algorithms.layout.activation_rows`)."""
    return _convolved(args, "auto", low, high, activation)


def _convolved(args: _validate.ConvArgs, algorithm, low=None, high=None, activation=None) -> np.ndarray:
    """The result of checked arguments: a new array in the caller's layout."""
    result, nhwc = _validate.new_output(args.geom, args.dtype)
    dispatch.correlate(args.x, args.kernel, args.geom, args.pad_mode, nhwc, buffers.get_memory_budget(), algorithm,
                       args.bias, low, high, activation)
    return result


def conv2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    kernel: ArrayLike,
    *,
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
    groups: int = 1,
    flip: bool = False,
    pad_mode: str = "constant",
    data_format: str = "channels_last",
    algorithm: str = "auto",
) -> Conv2DGrads:
    """Gradients of :func:`conv2d`: of ``sum(grad_out * conv2d(x, kernel, bias, ...))``.

    Parameters
    ----------
    grad_out : array_like, shape of ``conv2d(x, kernel, ...)``
        The gradient of a loss with respect to the convolution's output.
    x, kernel : array_like
        The convolution's input and kernel, in any form :func:`conv2d` accepts.
    strides, padding, dilation, groups, flip, pad_mode, data_format
        As for :func:`conv2d`. (The bias does not change any gradient, so it is not taken.)
    algorithm : {'auto', 'im2col', 'shift', 'depthwise', 'fft', 'winograd', 'grouped'}
        As for :func:`conv2d`; see Notes for where each applies.

    Returns
    -------
    Conv2DGrads
        A named tuple ``(grad_x, grad_kernel, grad_bias)``: ``grad_x`` with x's shape,
        ``grad_kernel`` with the kernel's shape (and layout), ``grad_bias`` with shape
        ``(k,)``, where ``k = 1`` for a single-filter kernel of rank 2 or 3. All three are
        new arrays of :func:`conv2d`'s result dtype, ``numpy.result_type(x, kernel,
        numpy.float32)`` (grad_out is cast to it), also when x is an integer image.

    Raises
    ------
    ValueError
        Any error :func:`conv2d` raises, and a grad_out whose shape is not the output's.
    TypeError
        Non-numeric or complex dtypes.

    Notes
    -----
    With the patch matrix ``P`` of :func:`conv2d` (one row per output pixel, one column per
    kernel tap and channel) and the kernel as a matrix ``W``, per group:
    ``grad_kernel = P^T @ grad_out``, ``grad_bias`` is grad_out summed over images and
    pixels, and ``grad_x`` is ``grad_out @ W^T`` added back onto the pixels each patch was
    read from. A padded pixel that copies an input pixel ('reflect', 'symmetric', 'edge',
    'wrap') passes its gradient on to that pixel; zero padding passes nothing. With
    ``flip=True`` the gradient is for the kernel as given, not the rotated one.
    Work memory is bounded by :func:`convlayer.get_memory_budget`, as for :func:`conv2d`.

    At stride 1 with zero padding (no wider than the kernel), ``grad_x`` is itself a
    convolution (of grad_out with the rotated kernel, channels swapped) and goes through
    ``algorithm`` (or ``auto``'s choice); otherwise through one pass that computes both
    gradients, grouped's for 'grouped' (or auto's choice of it), im2col's otherwise. The
    kernel's gradient takes the 'shift', 'depthwise', 'fft', 'winograd' or 'grouped' route
    when that is the algorithm (or auto's choice), im2col's otherwise (see
    :func:`convlayer.algorithms.choose.backward`).

    Examples
    --------
    >>> import numpy as np
    >>> grads = conv2d_backward(np.ones((2, 2)), np.arange(9.0).reshape(3, 3), np.ones((2, 2)),
    ...                         padding="valid")
    >>> grads.grad_x
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> grads.grad_kernel
    array([[ 8., 12.],
           [20., 24.]])
    >>> grads.grad_bias
    array([4.])
    """
    args, grad_nhwc = _validate.conv_grad_args(
        grad_out, x, kernel, strides=strides, padding=padding, dilation=dilation,
        groups=groups, flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    grad_x, grad_x_nhwc = _validate.new_input_grad(args.geom, args.dtype)
    grad_hwio = dispatch.correlate_backward(args.x, args.kernel, args.geom, args.pad_mode, grad_nhwc,
                                           grad_x_nhwc, buffers.get_memory_budget(), algorithm)
    grad_kernel = _validate.kernel_from_hwio(grad_hwio, args.geom, bool(flip))
    grad_bias = backward.bias_gradient(grad_nhwc, args.dtype, buffers.get_memory_budget())
    return Conv2DGrads(grad_x, grad_kernel, grad_bias)


def relu(x: ArrayLike) -> np.ndarray:
    """Rectified linear unit, ``max(x, 0)`` element-wise, as a new array of x's dtype.

    NaN stays NaN (as ``numpy.maximum`` does), so a broken input is not hidden.

    >>> relu([-1.5, 0.0, 2.0])
    array([0., 0., 2.])
    """
    if _validate.is_dask_array(x):
        from . import dask as _dask

        return _dask.relu(x)
    array = _validate.as_real_array("x", x)
    return np.maximum(array, array.dtype.type(0))


def relu_backward(grad_out: ArrayLike, x: ArrayLike) -> np.ndarray:
    """Gradient of :func:`relu`: ``grad_out`` where ``x > 0``, zero elsewhere.

    The gradient at ``x == 0`` is 0, as in PyTorch and TensorFlow (``x`` NaN gives 0 too).
    ``grad_out`` and ``x`` must have the same shape. The result is a new array of dtype
    ``numpy.result_type(x, numpy.float32)``, x's float type, as :func:`conv2d`'s rule gives.

    >>> relu_backward([1.0, 1.0, 1.0], [-1.5, 0.0, 2.0])
    array([0., 0., 1.])
    """
    grad = _validate.as_real_array("grad_out", grad_out)
    array = _validate.as_real_array("x", x)
    if grad.shape != array.shape:
        raise ValueError(
            f"grad_out must have x's shape {array.shape} (relu's output); got grad_out shape "
            f"{grad.shape}"
        )
    dtype = np.result_type(array.dtype, np.float32)
    return np.where(array > 0, grad, 0).astype(dtype, copy=False)


def dense(x: ArrayLike, weights: ArrayLike, bias: "ArrayLike | None" = None) -> np.ndarray:
    """A fully connected layer: ``x @ weights + bias``.

    Parameters
    ----------
    x : array_like, shape (n, in_features)
    weights : array_like, shape (in_features, out_features)
    bias : None or array_like, shape (out_features,)

    Returns
    -------
    ndarray, shape (n, out_features), dtype ``numpy.result_type(x, weights, numpy.float32)``

    >>> dense([[1.0, 2.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [0.5, 0.5, 0.5])
    array([[1.5, 2.5, 3.5]])
    """
    x, weights = _validate.as_real_array("x", x), _validate.as_real_array("weights", weights)
    if x.ndim != 2 or weights.ndim != 2 or x.shape[1] != weights.shape[0]:
        raise ValueError(
            f"x must be (n, in_features) and weights (in_features, out_features); got x shape "
            f"{x.shape} and weights shape {weights.shape}"
        )
    dtype = np.result_type(x, weights, np.float32)
    out = np.matmul(x.astype(dtype, copy=False), weights.astype(dtype, copy=False))
    if bias is not None:
        out += _validate.as_real_array("bias", bias).astype(dtype, copy=False)
    return out


def dense_backward(grad_out: ArrayLike, x: ArrayLike, weights: ArrayLike) -> tuple:
    """Gradients of :func:`dense`: ``(grad_x, grad_weights, grad_bias)``.

    ``grad_x = grad_out @ weights.T``, ``grad_weights = x.T @ grad_out`` and ``grad_bias``
    is ``grad_out`` summed over the batch.

    >>> gx, gw, gb = dense_backward([[1.0, 1.0]], [[2.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]])
    >>> gx, gw.tolist(), gb
    (array([[1., 1.]]), [[2.0, 2.0], [3.0, 3.0]], array([1., 1.]))
    """
    grad = _validate.as_real_array("grad_out", grad_out)
    x, weights = _validate.as_real_array("x", x), _validate.as_real_array("weights", weights)
    if grad.shape != (x.shape[0], weights.shape[1]):
        raise ValueError(
            f"grad_out must have dense's output shape {(x.shape[0], weights.shape[1])}; got "
            f"grad_out shape {grad.shape}"
        )
    dtype = np.result_type(x, weights, np.float32)
    grad = grad.astype(dtype, copy=False)
    return grad @ weights.T.astype(dtype), x.T.astype(dtype) @ grad, grad.sum(axis=0)


def dropout_mask(rng: np.random.Generator, shape: tuple, rate: float, dtype=np.float32) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability ``rate``, else ``1 / (1 - rate)``.

    Multiplying by it keeps every value's expectation, so inference needs no rescaling.

    >>> mask = dropout_mask(np.random.default_rng(0), (1000,), 0.25)
    >>> sorted(set(mask.tolist())) == [0.0, np.float32(1 / 0.75)]
    True
    """
    keep = rng.random(shape) >= rate
    return keep.astype(dtype) / np.asarray(1 - rate, dtype)
