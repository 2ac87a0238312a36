"""The public ops: ``conv2d`` and, as later issues add them, its gradient and relatives.

Each op reads in four steps: normalise (one boundary, :mod:`._validate`), resolve padding
(integers, :mod:`.shapes`), compute (:mod:`.algorithms`), add bias.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from . import _validate
from .algorithms import buffers, im2col
from .shapes import IntPair, Padding

ArrayLike = Union[np.ndarray, "list", "tuple", float, int]


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
        a bias of the wrong shape.
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
    args = _validate.conv_args(
        x, kernel, bias, strides=strides, padding=padding, dilation=dilation, groups=groups,
        flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    result, nhwc = _validate.new_output(args.geom, args.dtype)
    im2col.correlate(args.x, args.kernel, args.geom, args.pad_mode, nhwc, buffers.get_memory_budget())
    if args.bias is not None:
        nhwc += args.bias
    return result


def relu(x: ArrayLike) -> np.ndarray:
    """Rectified linear unit, ``max(x, 0)`` element-wise, as a new array of x's dtype.

    NaN stays NaN (as ``numpy.maximum`` does), so a broken input is not hidden.

    >>> relu([-1.5, 0.0, 2.0])
    array([0., 0., 2.])
    """
    array = _validate.as_real_array("x", x)
    return np.maximum(array, array.dtype.type(0))
