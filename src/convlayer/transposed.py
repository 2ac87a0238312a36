"""The transposed convolution, ``conv_transpose2d``, beside its gradient.

It is the adjoint of :func:`convlayer.conv2d`: the input gradient of a forward convolution
that maps the result's shape back to x's. So it reads in conv2d's four steps with the roles
turned round: normalise (:func:`._validate.transpose_args`, both kernel layouts become the
forward convolution's ``(fh, fw, k // groups, c)``), resolve the sizes
(:mod:`.shapes.transpose`), compute the forward convolution's input gradient
(:func:`.algorithms.dispatch.input_gradient`), add the bias. Its gradients are the forward
convolution itself (for x) and the forward convolution's kernel gradient with the roles of
input and gradient swapped (for the kernel).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _validate
from .algorithms import backward, buffers, dispatch, layout
from .functional import ArrayLike, Conv2DGrads
from .shapes import IntPair, Padding


def conv_transpose2d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: "ArrayLike | None" = None,
    *,
    strides: IntPair = 1,
    padding: Padding = "same",
    output_padding: "IntPair | None" = None,
    output_shape: "Sequence[int] | None" = None,
    dilation: IntPair = 1,
    groups: int = 1,
    data_format: str = "channels_last",
    algorithm: str = "auto",
) -> np.ndarray:
    """2D transposed convolution ("fractionally strided", "deconvolution"), as in TensorFlow,
    Keras, PyTorch and ONNX.

    Parameters
    ----------
    x : array_like, shape (h, w, c) or (n, h, w, c)
        Image or batch, channels last (``(c, h, w)`` or ``(n, c, h, w)`` with
        ``data_format="channels_first"``). Any real dtype.
    kernel : array_like, shape (fh, fw, k // groups, c)
        TensorFlow's and Keras's layout, output channels before input channels;
        channels-first takes PyTorch's and ONNX's ``(c, k // groups, fh, fw)``. Either is
        the kernel of the forward :func:`~convlayer.conv2d` from ``k`` channels to ``c``.
    bias : None, scalar or array_like, shape (k,)
        Added to every output pixel of its channel.
    strides : int or (int, int)
        The forward convolution's strides: the upsampling factor.
    padding : {'same', 'same_lower', 'valid', 'full'}, int, (int, int) or ((int, int), (int, int))
        The forward convolution's padding; here it crops the result.
    output_padding : None, int or (int, int)
        Rows and columns added at the bottom and right (PyTorch, Keras); each must be smaller
        than the stride or the dilation along its axis.
    output_shape : None, (int, int) or the result's whole shape
        The result's ``(H', W')`` (TensorFlow, ONNX): any size the forward convolution maps
        back to x's.
    dilation : int or (int, int)
        Spacing between kernel taps; 1 means none.
    groups : int
        ``c`` and ``k`` split into groups transposed separately.
    data_format : {'channels_last', 'channels_first'}
        Layout of ``x``, ``kernel`` and the result.
    algorithm : {'auto', 'im2col', 'shift', 'depthwise', 'fft', 'winograd'}
        How to compute it, every choice the same up to rounding: 'im2col' is col2im of one
        GEMM; the others name the algorithm of the stride-1 correlation it becomes (of x,
        or with strides of x stuffed with zeros), used where it applies, auto's choice
        elsewhere (:func:`convlayer.algorithms.choose_transpose.input_gradient`).

    Returns
    -------
    ndarray, shape (out_h, out_w, k) or (n, out_h, out_w, k)
        (``(n?, k, out_h, out_w)`` channels-first.) A new array of dtype
        ``numpy.result_type(x, kernel, numpy.float32)``.

    Raises
    ------
    ValueError
        Shape or channel mismatch, a bad padding word, non-positive strides or dilation,
        groups that do not divide, an output_padding not below the stride or the dilation,
        an output_shape the forward convolution does not map back to x's size (the message
        names both and the range it could be), an output_shape and an output_padding that
        disagree, padding that crops more than the kernel spreads, a bias of the wrong shape.
    TypeError
        Non-numeric or complex dtypes.

    Notes
    -----
    The definition is the adjoint: ``conv_transpose2d(y, kernel, output_shape=S, ...)`` is
    ``conv2d_backward(y, x_of_shape_S, kernel, ...).grad_x`` with the same strides, padding,
    dilation and groups (plus the bias), so ``<conv2d(x, kernel), y> == <x,
    conv_transpose2d(y, kernel)>``. Input pixel ``i`` adds ``x[i] * kernel[a]`` to output
    row ``i * s + a * d - top``: every pixel spreads a kernel-sized stamp, ``s`` apart, and
    the padding crops ``top`` rows at the start.

    Output size per axis (``span = (f - 1) * d + 1``) without ``output_shape``: 'same'
    ``h * s`` (padding resolved as conv2d's 'same' on that size, the odd one after);
    'valid' ``h * s + max(span - s, 0)``; 'full' ``(h - 1) * s - span + 2`` (TensorFlow and
    Keras); explicit padding ``(h - 1) * s - top - bottom + span + output_padding``
    (PyTorch). With ``output_padding`` a padding word means what Keras makes of it: the
    symmetric padding ``span // 2`` ('same', 'same_lower'), 0 ('valid') or ``span - 1``
    ('full') in PyTorch's formula, so that ``output_padding=0`` and None differ for 'same'
    as they do in Keras. ``output_shape`` with ``output_padding``: both must give the same
    size. Rows past the last one any input pixel reaches (output_padding, or an
    output_shape at the top of its range) are zero, plus the bias.

    Only zero padding (the forward convolution's ``pad_mode`` is 'constant') and kernels of
    rank 4. At stride 1 it runs as a correlation of x with the rotated kernel (any forward
    algorithm); with strides as col2im of one GEMM per block (no product with a stuffed
    zero), or, for a depthwise layer (``groups == c``), as the stride-1 correlation of x
    with ``s - 1`` zeros stuffed between its pixels (see
    :func:`convlayer.algorithms.choose_transpose.input_gradient`); work memory within
    :func:`convlayer.get_memory_budget`. An empty batch or image gives the bias over the
    output.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.ones((2, 2, 1)), np.ones((2, 2, 1, 1)), strides=2)[..., 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    >>> conv_transpose2d(np.ones((2, 2, 1)), np.ones((3, 3, 1, 1)), strides=2, padding="valid")[..., 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    >>> conv_transpose2d(np.ones((1, 8, 16, 16)), np.ones((8, 4, 3, 3)), strides=2, padding=1,
    ...                  output_padding=1, data_format="channels_first").shape
    (1, 4, 32, 32)
    """
    args = _validate.transpose_args(
        x, kernel, bias, strides=strides, padding=padding, output_padding=output_padding,
        output_shape=output_shape, dilation=dilation, groups=groups, data_format=data_format,
    )
    result, out = _validate.new_transpose_output(args.geom, args.dtype)
    forward = args.geom.forward()
    if forward is not None:
        reached = out[:, : forward.h, : forward.w]
        dispatch.input_gradient(args.kernel, forward, args.x, reached, buffers.get_memory_budget(), algorithm)
    if args.bias is not None:
        layout.add_per_channel(out, args.bias)
    return result


def conv_transpose2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    kernel: ArrayLike,
    *,
    strides: IntPair = 1,
    padding: Padding = "same",
    output_padding: "IntPair | None" = None,
    output_shape: "Sequence[int] | None" = None,
    dilation: IntPair = 1,
    groups: int = 1,
    data_format: str = "channels_last",
    algorithm: str = "auto",
) -> Conv2DGrads:
    """Gradients of :func:`conv_transpose2d`: of ``sum(grad_out * conv_transpose2d(x, kernel, bias, ...))``.

    Parameters
    ----------
    grad_out : array_like, shape of ``conv_transpose2d(x, kernel, ...)``
    x, kernel : array_like
        The transposed convolution's input and kernel.
    strides, padding, output_padding, output_shape, dilation, groups, data_format, algorithm
        As for :func:`conv_transpose2d` (``algorithm`` picks the algorithm of both
        gradients where it applies, auto's choice elsewhere).

    Returns
    -------
    Conv2DGrads
        ``(grad_x, grad_kernel, grad_bias)`` with the shapes of x, the kernel (its layout)
        and ``(k,)``, new arrays of dtype ``numpy.result_type(x, kernel, numpy.float32)``.

    Raises
    ------
    ValueError
        Any error :func:`conv_transpose2d` raises, and a grad_out whose shape is not the
        output's.
    TypeError
        Non-numeric or complex dtypes.

    Notes
    -----
    ``grad_x`` is the forward :func:`~convlayer.conv2d` of grad_out with the same kernel,
    strides, padding, dilation and groups (the adjoint's adjoint); ``grad_kernel`` is that
    convolution's kernel gradient with the roles swapped: grad_out as its input, x as the
    gradient of its output; ``grad_bias`` is grad_out summed over images and pixels. Rows
    of the output that no input pixel reaches pass no gradient to x or the kernel.

    Examples
    --------
    >>> import numpy as np
    >>> grads = conv_transpose2d_backward(np.ones((4, 4, 1)), np.ones((2, 2, 1)), np.ones((2, 2, 1, 1)),
    ...                                   strides=2)
    >>> grads.grad_x[..., 0]
    array([[4., 4.],
           [4., 4.]])
    >>> grads.grad_kernel[..., 0, 0]
    array([[4., 4.],
           [4., 4.]])
    >>> grads.grad_bias
    array([16.])
    """
    args, grad_nhwc = _validate.transpose_grad_args(
        grad_out, x, kernel, strides=strides, padding=padding, output_padding=output_padding,
        output_shape=output_shape, dilation=dilation, groups=groups, data_format=data_format,
    )
    budget = buffers.get_memory_budget()
    grad_x, grad_x_nhwc = _validate.new_transpose_input_grad(args.geom, args.dtype)
    forward = args.geom.forward()
    if forward is None:
        grad_hwio = np.zeros(args.kernel.shape, args.dtype)
    else:
        reached = grad_nhwc[:, : forward.h, : forward.w]
        grad_hwio = dispatch.correlate_with_kernel_gradient(reached, args.kernel, forward, grad_x_nhwc, args.x,
                                                            budget, algorithm)
    grad_kernel = _validate.transpose_kernel_from_hwio(grad_hwio.astype(args.dtype, copy=False), args.geom)
    grad_bias = backward.bias_gradient(grad_nhwc, args.dtype, budget)
    return Conv2DGrads(grad_x, grad_kernel, grad_bias)
