"""Tensor ops: joining, reshaping, slicing, products, softmax, means, and the shape
arithmetic exporters write (Shape, Gather, Slice, Cast, ConstantOfShape) for static shapes.

``AXIS`` handlers take ``channels_last`` after the node and return ``(output, flag)``:
they map their NCHW axes onto an NHWC array rather than copy it back.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ._table import AXIS, PLAIN, SHAPE, any_value, one_of, op
from .layout import axis_last, logical_shape, to_first


def _axes(node, given, rank):
    """An op's axes from its input (newer opsets) or its attribute (older ones), made positive."""
    axes = node.attrs.get("axes") if given is None else np.asarray(given).tolist()
    return None if axes is None else sorted(int(a) % rank for a in axes)


@op("Concat", AXIS, axis=any_value)
def concat(node, channels_last, *parts):
    axis = node.attrs["axis"]
    axis = axis_last(axis) if channels_last else axis
    return np.concatenate(parts, axis=axis), channels_last


@op("Flatten", PLAIN, axis=any_value)
def flatten(node, x):
    axis = node.attrs.get("axis", 1) % max(x.ndim, 1) if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


@op("Reshape", PLAIN, allowzero=one_of(0, 1))
def reshape(node, x, shape):
    shape = [int(s) for s in np.asarray(shape).tolist()]
    if not node.attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@op("Transpose", PLAIN, perm=any_value)
def transpose(node, x):
    return np.ascontiguousarray(np.transpose(x, node.attrs.get("perm")))


@op("Squeeze", PLAIN, axes=any_value)
def squeeze(node, x, axes=None):
    axes = _axes(node, axes, x.ndim)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))


@op("Unsqueeze", PLAIN, axes=any_value)
def unsqueeze(node, x, axes=None):
    count = len(np.asarray(node.attrs.get("axes") if axes is None else axes).ravel())
    axes = _axes(node, axes, x.ndim + count)
    return np.expand_dims(x, tuple(axes))


@op("Gemm", PLAIN, alpha=any_value, beta=any_value, transA=one_of(0, 1), transB=one_of(0, 1))
def gemm(node, a, b, c=None):
    attrs = node.attrs
    a = a.T if attrs.get("transA", 0) else a
    b = node.attrs.get("_weights", b.T if attrs.get("transB", 0) else b)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha == 1.0 and (c is None or (beta == 1.0 and np.ndim(c) == 1)):
        return F.dense(a, b, c)
    out = np.matmul(a, b) * a.dtype.type(alpha)
    return out if c is None else out + c * a.dtype.type(beta)


@op("MatMul", PLAIN)
def matmul(node, a, b):
    return np.matmul(a, b)


@op("Softmax", PLAIN, axis=any_value)
def softmax(node, x):
    if node.attrs.get("_opset", 13) < 13:  # the old Softmax: over everything from axis on, as a matrix
        axis = node.attrs.get("axis", 1) % x.ndim
        return _softmax(x.reshape(int(np.prod(x.shape[:axis])), -1), 1).reshape(x.shape)
    return _softmax(x, node.attrs.get("axis", -1))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@op("ReduceMean", AXIS, axes=any_value, keepdims=one_of(0, 1), noop_with_empty_axes=one_of(0, 1))
def reduce_mean(node, channels_last, x, axes=None):
    rank, keep = x.ndim, bool(node.attrs.get("keepdims", 1))
    axes = _axes(node, axes, rank)
    if axes is None or axes == []:
        if node.attrs.get("noop_with_empty_axes", 0):
            return x, channels_last
        axes = list(range(rank))
    if channels_last and not keep and 1 not in axes and not {2, 3} <= set(axes):
        x, channels_last = to_first(x), False  # kept axes would come out in another order
    where = tuple(axis_last(a) for a in axes) if channels_last else tuple(axes)
    mean = x.mean(axis=where, keepdims=keep, dtype=np.float64 if x.dtype == np.float64 else None)
    return mean.astype(x.dtype, copy=False), channels_last and keep


@op("Constant", PLAIN, value=any_value, value_float=any_value, value_floats=any_value, value_int=any_value,
    value_ints=any_value)
def constant(node):
    (name, value), = ((k, v) for k, v in node.attrs.items() if not k.startswith("_"))
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}.get(name)
    return np.asarray(value) if dtype is None else np.asarray(value, dtype)


@op("Shape", SHAPE, start=any_value, end=any_value)
def shape(node, flags, x):
    dims = logical_shape(x, flags[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(dims))
    return np.asarray(dims[start:end], np.int64)


@op("Gather", PLAIN, axis=any_value)
def gather(node, x, indices):
    return np.take(x, np.asarray(indices, np.int64), axis=node.attrs.get("axis", 0))


@op("Slice", AXIS, starts=any_value, ends=any_value, axes=any_value)
def slice_(node, channels_last, x, starts=None, ends=None, axes=None, steps=None):
    starts = np.asarray(node.attrs["starts"] if starts is None else starts).tolist()
    ends = np.asarray(node.attrs["ends"] if ends is None else ends).tolist()
    axes = list(range(len(starts))) if axes is None and "axes" not in node.attrs else (
        np.asarray(node.attrs["axes"] if axes is None else axes).tolist())
    steps = [1] * len(starts) if steps is None else np.asarray(steps).tolist()
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis % x.ndim
        index[axis_last(axis) if channels_last else axis] = slice(*_clamped(start, end, step))
    return np.ascontiguousarray(x[tuple(index)]), channels_last


def _clamped(start, end, step):
    """ONNX's huge ends (INT64_MAX) and starts as a Python slice takes them."""
    big = 2**62
    return max(min(start, big), -big), max(min(end, big), -big), step


@op("ConstantOfShape", PLAIN, value=any_value)
def constant_of_shape(node, dims):
    value = node.attrs.get("value", np.zeros(1, np.float32))
    return np.full(tuple(np.asarray(dims, np.int64).tolist()), np.asarray(value).ravel()[0], np.asarray(value).dtype)
