"""The image ops on convlayer's own functions, channels-last: Conv, ConvTranspose,
BatchNormalization, the pools and Pad.

Each handler takes the node and its input arrays (input 0 as ``(n, h, w, c)``) and returns
its outputs channels-last. Kernels arrive in ONNX's layout ``(k, c / groups, fh, fw)``,
or already channels-last in ``node.attrs['_kernel']`` when :mod:`.prepare` made them so.
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from .. import functional as F
from .. import normalization
from .. import pooling
from ..algorithms.layout import activation_ready
from ..transposed import conv_transpose2d
from .layout import axis_last
from ._table import AUTO_PAD, AXIS, SPATIAL, any_value, one_of, op, pads4, pair
from .elementwise import CLAMPS, activate, compiled_parameters


def padding(attrs: dict):
    """ONNX's ``auto_pad`` and ``pads`` (top, left, bottom, right) as convlayer's padding."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto != "NOTSET":
        return {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}[auto]
    top, left, bottom, right = attrs.get("pads", (0, 0, 0, 0))
    return (top, bottom), (left, right)


def _window(attrs: dict) -> dict:
    return dict(strides=tuple(attrs.get("strides", (1, 1))), padding=padding(attrs),
                dilation=tuple(attrs.get("dilations", (1, 1))))


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """ONNX's ``(k, c / groups, fh, fw)`` kernel as convlayer's ``(fh, fw, c / groups, k)``."""
    return np.ascontiguousarray(np.asarray(weight).transpose(2, 3, 1, 0))


def transpose_kernel(weight: np.ndarray) -> np.ndarray:
    """ONNX's transposed kernel ``(c, k / groups, fh, fw)`` as ``(fh, fw, k / groups, c)``."""
    return np.ascontiguousarray(np.asarray(weight).transpose(2, 3, 1, 0))


_CONV = dict(auto_pad=AUTO_PAD, pads=pads4(), strides=pair(), dilations=pair(), kernel_shape=pair(),
             group=any_value)


@op("Conv", SPATIAL, **_CONV)
def conv(node, x, weight, bias=None):
    args = _checked(node, x, weight, bias)
    activation = node.attrs.get("_activation")  # see prepare.fuse_activations: it adds the bias
    if activation is not None and activation.op in CLAMPS:  # the bias and the clamp in one pass
        return F.conv2d_checked(args, *CLAMPS[activation.op](activation))
    parameters = compiled_parameters(activation) if activation is not None else None
    if parameters is not None and activation_ready(args.dtype):  # the bias and the activation in one pass
        return F.conv2d_checked(args, activation=(activation.op, *parameters))
    out = F.conv2d_checked(args if activation is None else args._replace(bias=None))
    return out if activation is None else activate(activation, out, args.bias)


def summing(node) -> bool:
    """Whether :func:`conv_and_means` can sum Conv ``node``'s output as it activates it: a
    float32 laid-out kernel and an absorbed activation with a compiled pass (Swish,
    Sigmoid, HardSigmoid, HardSwish; a Relu or Clip is a clamp inside the convolution's
    loops, which do not sum)."""
    activation, kernel = node.attrs.get("_activation"), node.attrs.get("_kernel")
    return (node.op == "Conv" and kernel is not None and kernel.dtype == np.float32 and activation is not None
            and activation.op not in CLAMPS and compiled_parameters(activation) is not None
            and activation_ready(kernel.dtype))


def conv_and_means(node, x, weight, bias=None):
    """``(out, means)``: Conv ``node``'s output for x (as :func:`conv`) and its channel means,
    ``(n, k)``, as GlobalAveragePool gives them, for a node that is :func:`summing`. The
    activation pass writes each output row's channel sums as it goes (on the depthwise
    loop's threads, right after each computed its rows: :func:`.layout.activation_rows`),
    so the means cost no pass of their own over the output; the rows' sums are then added
    up, and divided by the pixels. Otherwise (another dtype at run time) the node, then
    the pooling."""
    args = _checked(node, x, weight, bias)
    activation, geom = node.attrs["_activation"], args.geom
    if not activation_ready(args.dtype):
        out = conv(node, x, weight, bias)
        return out, pooling.global_avg_pool2d(out)
    sums = np.empty((geom.n * geom.out_h, geom.k), np.float32)
    out = F.conv2d_checked(args, activation=(activation.op, *compiled_parameters(activation), sums))
    means = sums.reshape(geom.n, geom.out_h, geom.k).sum(axis=1)
    means /= geom.out_h * geom.out_w
    return out, means


def _checked(node, x, weight, bias) -> _validate.ConvArgs:
    """conv2d's checked arguments for this Conv node and ``x``: remembered per input shape and
    dtype where the kernel and bias are the node's own constants (the checks on the geometry,
    the kernel's dtype and the bias cost 14 us a call inside efficientnet_b0, 0.9 ms of its
    batch-1 run), checked afresh otherwise."""
    kernel, constant = node.attrs.get("_kernel"), "_kernel" in node.attrs and (bias is None or "_bias" in node.attrs)
    kernel = conv_kernel(weight) if kernel is None else kernel
    bias = node.attrs.get("_bias", bias)
    key = (x.shape, x.dtype, id(kernel), id(bias))
    known = node.attrs.setdefault("_checked", {}) if constant else {}
    if key in known:
        return known[key]._replace(x=x)
    window = dict(groups=node.attrs.get("group", 1), **_window(node.attrs))
    args = _validate.conv_args(x, kernel, bias, flip=False, pad_mode="constant", data_format="channels_last", **window)
    if constant and len(known) < CHECKED_KEPT:
        known[key] = args._replace(x=None)
    return args


CHECKED_KEPT = 8  # input shapes remembered per Conv node


@op("ConvTranspose", SPATIAL, output_padding=pair(), output_shape=pair(), **_CONV)
def conv_transpose(node, x, weight, bias=None):
    attrs = node.attrs
    kernel = attrs.get("_kernel")
    kernel = transpose_kernel(weight) if kernel is None else kernel
    window = _window(attrs)
    extra = tuple(attrs.get("output_padding", (0, 0)))
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        window["padding"] = _transpose_pads(attrs, x.shape[1:3], kernel.shape[:2], window, extra)
    return conv_transpose2d(x, kernel, bias, output_padding=extra, groups=attrs.get("group", 1), **window)


def _transpose_pads(attrs, size, kernel, window, extra):
    """ONNX's pads for a given output_shape or SAME: the total, split as the spec says."""
    pads = []
    for axis in range(2):
        s, d = window["strides"][axis], window["dilation"][axis]
        out = attrs["output_shape"][axis] if "output_shape" in attrs else size[axis] * s
        total = s * (size[axis] - 1) + extra[axis] + (kernel[axis] - 1) * d + 1 - out
        if total < 0:
            raise ValueError(f"ConvTranspose output_shape {list(attrs['output_shape'])} is larger than the "
                             f"kernel reaches from input size {tuple(size)}")
        small, large = total // 2, total - total // 2
        pads.append((small, large) if attrs.get("auto_pad") == "SAME_UPPER" else (large, small))
    return tuple(pads)


@op("BatchNormalization", SPATIAL, epsilon=any_value, momentum=any_value, training_mode=one_of(0),
    spatial=one_of(1))
def batch_norm(node, x, scale, shift, mean, variance):
    return normalization.batch_norm(x, mean, variance, scale, shift, epsilon=node.attrs.get("epsilon", 1e-5))


_POOL = dict(auto_pad=AUTO_PAD, pads=pads4(), strides=pair(), dilations=pair(), kernel_shape=pair(),
             ceil_mode=one_of(0, 1))


@op("MaxPool", SPATIAL, storage_order=one_of(0), **_POOL)
def max_pool(node, x):
    return pooling.max_pool2d(x, tuple(node.attrs["kernel_shape"]), ceil_mode=bool(node.attrs.get("ceil_mode", 0)),
                              **_window(node.attrs))


@op("AveragePool", SPATIAL, count_include_pad=one_of(0, 1), **_POOL)
def avg_pool(node, x):
    attrs = node.attrs
    return pooling.avg_pool2d(x, tuple(attrs["kernel_shape"]), ceil_mode=bool(attrs.get("ceil_mode", 0)),
                              count_include_pad=bool(attrs.get("count_include_pad", 0)), **_window(attrs))


@op("GlobalAveragePool", SPATIAL)
def global_avg_pool(node, x):
    return pooling.global_avg_pool2d(x, keepdims=True)


@op("GlobalMaxPool", SPATIAL)
def global_max_pool(node, x):
    return pooling.global_max_pool2d(x, keepdims=True)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@op("Pad", AXIS, mode=one_of(*_PAD_MODES), pads=any_value, value=any_value)
def pad(node, channels_last, x, pads=None, value=None, axes=None):
    """np.pad with ONNX's begins and ends per axis, moved to NHWC's axes when x lies so."""
    pads = np.asarray(node.attrs["pads"] if pads is None else pads, np.int64).tolist()
    rank, count = x.ndim, len(pads) // 2
    axes = list(range(count)) if axes is None else [int(a) % rank for a in np.asarray(axes).tolist()]
    widths = [(0, 0)] * rank
    for axis, before, after in zip(axes, pads[:count], pads[count:]):
        if before < 0 or after < 0:
            raise ValueError(f"negative pads {pads} (cropping) are not supported")
        widths[axis_last(axis) if channels_last else axis] = (before, after)
    return _pad(node, x, widths, value), channels_last


def _pad(node, x, widths, value):
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        return np.pad(x, widths, mode=_PAD_MODES[mode])
    fill = node.attrs.get("value", 0.0) if value is None else np.asarray(value).item()
    return np.pad(x, widths, mode="constant", constant_values=fill)
