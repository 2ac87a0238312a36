"""Element-wise ops: activations and arithmetic. They run on any layout (see :mod:`.layout`)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ._table import BROADCAST, SAME, any_value, one_of, op


@op("Relu", SAME)
def relu(node, x):
    return F.relu(x)


@op("LeakyRelu", SAME, alpha=any_value)
def leaky_relu(node, x):
    alpha = x.dtype.type(node.attrs.get("alpha", 0.01))
    return np.where(x >= 0, x, x * alpha)


@op("Clip", SAME, min=any_value, max=any_value)
def clip(node, x, low=None, high=None):
    low = node.attrs.get("min") if low is None else low
    high = node.attrs.get("max") if high is None else high
    out = x if low is None else np.maximum(x, np.asarray(low, x.dtype))
    out = out if high is None else np.minimum(out, np.asarray(high, x.dtype))
    return out.copy() if out is x else out


@op("Sigmoid", SAME)
def sigmoid(node, x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88 gives 1 / inf = 0, as it should
        return 1 / (1 + np.exp(-x))


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
        raise ValueError(f"training_mode=True is not supported (inference only)")
    return x


_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
          10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


@op("Cast", SAME, to=one_of(*_TYPES), saturate=any_value)
def cast(node, x):
    return x.astype(_TYPES[node.attrs["to"]])


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
