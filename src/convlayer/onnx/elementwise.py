"""Element-wise ops: activations and arithmetic. They run on any layout (see :mod:`.layout`)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ._table import BROADCAST, SAME, any_value, one_of, op

# In-place forms, for an input no one else reads (the runner decides, see .model): the same
# values without a new array per op, which at batch 8 is most of an activation's time.
INPLACE = {}


def inplace(name):
    def register(function):
        INPLACE[name] = function
        return function
    return register


@op("Relu", SAME)
def relu(node, x):
    return F.relu(x)


@inplace("Relu")
def relu_into(node, x):
    return np.maximum(x, x.dtype.type(0), out=x)


@op("LeakyRelu", SAME, alpha=any_value)
def leaky_relu(node, x):
    alpha = x.dtype.type(node.attrs.get("alpha", 0.01))
    return np.where(x >= 0, x, x * alpha)


@op("Clip", SAME, min=any_value, max=any_value)
def clip(node, x, low=None, high=None):
    low = node.attrs.get("min") if low is None else low
    high = node.attrs.get("max") if high is None else high
    return clip_into(node, x.copy(), low, high)


@inplace("Clip")
def clip_into(node, x, low=None, high=None):
    low = node.attrs.get("min") if low is None else low
    high = node.attrs.get("max") if high is None else high
    if low is not None:
        np.maximum(x, np.asarray(low, x.dtype), out=x)
    if high is not None:
        np.minimum(x, np.asarray(high, x.dtype), out=x)
    return x


@op("Sigmoid", SAME)
def sigmoid(node, x):
    return sigmoid_into(node, np.array(x, dtype=np.result_type(x, np.float32)))


@inplace("Sigmoid")
def sigmoid_into(node, x):
    """``1 / (1 + exp(-x))`` written over x; exp(-x) = inf for x < -88 gives 0, as it should."""
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += x.dtype.type(1)
        return np.reciprocal(x, out=x)


@op("HardSigmoid", SAME, alpha=any_value, beta=any_value)
def hard_sigmoid(node, x):
    alpha, beta = (x.dtype.type(node.attrs.get(k, d)) for k, d in (("alpha", 0.2), ("beta", 0.5)))
    return np.clip(x * alpha + beta, 0, 1)


@op("HardSwish", SAME)
def hard_swish(node, x):
    return x * np.clip(x / x.dtype.type(6) + x.dtype.type(0.5), 0, 1)


@op("Identity", SAME)
def identity(node, x):
    return x


@op("Dropout", SAME, seed=any_value, ratio=any_value)
def dropout(node, x, ratio=None, training=None):
    if training is not None and bool(np.asarray(training)):
        raise ValueError("training_mode=True is not supported (inference only)")
    return x


_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
          10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


@op("Cast", SAME, to=one_of(*_TYPES), saturate=any_value)
def cast(node, x):
    return x.astype(_TYPES[node.attrs["to"]])


_UFUNCS = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def binary_into(node, a, b, owned):
    """``a op b`` written over an operand no one else reads, or None when neither fits."""
    ufunc = _UFUNCS.get(node.op)
    if ufunc is None or a.dtype != b.dtype or (node.op == "Div" and not np.issubdtype(a.dtype, np.floating)):
        return None
    shape = np.broadcast_shapes(a.shape, b.shape)
    if owned[0] and a.shape == shape:
        return ufunc(a, b, out=a)
    if owned[1] and b.shape == shape and node.op in ("Add", "Mul"):
        return ufunc(a, b, out=b)
    return None


@op("Add", BROADCAST)
def add(node, a, b):
    return a + b


@op("Sub", BROADCAST)
def sub(node, a, b):
    return a - b


@op("Mul", BROADCAST)
def mul(node, a, b):
    return a * b


@op("Div", BROADCAST)
def div(node, a, b):
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return (np.abs(a) // np.abs(b)) * np.sign(a) * np.sign(b)  # ONNX truncates toward zero
    return a / b
