"""Element-wise ops: activations and arithmetic. They run on any layout (see :mod:`.layout`)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..algorithms import layout, parallel
from ._table import BROADCAST, SAME, any_value, one_of, op

# In-place forms, for an input no one else reads (the runner decides, see .model): the same
# values without a new array per op, which at batch 8 is most of an activation's time.
INPLACE = {}

# Each activation as a step over a chunk written in place (``step(part, scratch)``,
# scratch free space of part's size): the op runs it over the array chunk by chunk
# (:func:`_by_chunks`), and a Conv that absorbed the activation (prepare.fuse_activations)
# runs it right after adding its bias to the same chunk (:func:`activate`).
STEPS = {}


def step_of(name):
    def register(factory):
        STEPS[name] = factory
        return factory
    return register


@step_of("Relu")
def _relu(node, dtype):
    zero = dtype.type(0)
    return lambda part, scratch: np.maximum(part, zero, out=part)


@step_of("LeakyRelu")
def _leaky_relu(node, dtype):
    alpha = dtype.type(node.attrs.get("alpha", 0.01))

    def step(part, scratch):
        np.multiply(part, alpha, out=scratch)
        np.copyto(part, scratch, where=part < 0)
    return step


@step_of("Clip")
def _clip(node, dtype, low=None, high=None):
    """One pass of :func:`numpy.clip` (a NaN stays NaN, as in ``max(min(x, high), low)``)."""
    low = node.attrs.get("min") if low is None else low
    high = node.attrs.get("max") if high is None else high
    low, high = (None if bound is None else np.asarray(bound, dtype) for bound in (low, high))
    if low is None and high is None:
        return lambda part, scratch: None
    return lambda part, scratch: np.clip(part, low, high, out=part)


@step_of("Sigmoid")
def _sigmoid(node, dtype):
    """``1 / (1 + exp(-x))``; exp(-x) = inf for x < -88 gives 0, as it should."""
    def step(part, scratch):
        np.negative(part, out=part)
        np.exp(part, out=part)
        part += part.dtype.type(1)
        np.reciprocal(part, out=part)
    return step


@step_of("Swish")
def _swish(node, dtype):
    """``x / (1 + exp(-alpha x))`` (ONNX's Swish; load makes one of Sigmoid then Mul, SiLU)."""
    alpha = dtype.type(-node.attrs.get("alpha", 1.0))

    def step(part, scratch):
        np.multiply(part, alpha, out=scratch)
        np.exp(scratch, out=scratch)
        scratch += scratch.dtype.type(1)
        np.divide(part, scratch, out=part)
    return step


@step_of("HardSigmoid")
def _hard_sigmoid(node, dtype):
    alpha, beta = (dtype.type(node.attrs.get(k, d)) for k, d in (("alpha", 0.2), ("beta", 0.5)))

    def step(part, scratch):
        part *= alpha
        part += beta
        np.clip(part, 0, 1, out=part)
    return step


@step_of("HardSwish")
def _hard_swish(node, dtype):
    """``x * clip(x / 6 + 1/2, 0, 1)``."""
    six, half = dtype.type(6), dtype.type(0.5)

    def step(part, scratch):
        np.divide(part, six, out=scratch)
        scratch += half
        np.clip(scratch, 0, 1, out=scratch)
        part *= scratch
    return step


@op("Relu", SAME)
def relu(node, x):
    return F.relu(x)


@op("LeakyRelu", SAME, alpha=any_value)
def leaky_relu(node, x):
    return _new(node, x)


@op("Clip", SAME, min=any_value, max=any_value)
def clip(node, x, low=None, high=None):
    return _in_place(node, x.copy(), low, high)


@op("Sigmoid", SAME)
def sigmoid(node, x):
    return _new(node, x)


@op("Swish", SAME, alpha=any_value)
def swish(node, x):
    return _new(node, x)


@op("HardSigmoid", SAME, alpha=any_value, beta=any_value)
def hard_sigmoid(node, x):
    return _new(node, x)


@op("HardSwish", SAME)
def hard_swish(node, x):
    return _new(node, x)


def _in_place(node, x, *bounds):
    """Activation ``node`` written over x, chunk by chunk (its step in :data:`STEPS`); in one
    compiled pass where that applies (:func:`_compiled`)."""
    if _compiled(node, x):
        return x
    return _by_chunks(x, STEPS[node.op](node, x.dtype, *bounds))


# The activations with a compiled pass (.layout.add_bias_activation) and their (alpha, beta)
# defaults, ONNX's. On efficientnet_b0, whose Swish layers these are, the NumPy passes (exp,
# add, divide over cache-sized chunks) took 7 of 31 ms at batch 1 and 34 of 139 at batch 8.
COMPILED = {"Sigmoid": (1.0, 0.0), "Swish": (1.0, 0.0), "HardSigmoid": (0.2, 0.5), "HardSwish": (1.0, 0.0)}


def compiled_parameters(node) -> "tuple[float, float] | None":
    """``(alpha, beta)`` of activation ``node`` for its compiled pass, or None where it has none."""
    if node.op not in COMPILED:
        return None
    return tuple(node.attrs.get(key, default) for key, default in zip(("alpha", "beta"), COMPILED[node.op]))


def _compiled(node, x, bias=None) -> bool:
    """Whether activation ``node`` (bias added first) was written over x in one compiled pass."""
    parameters = compiled_parameters(node)
    return parameters is not None and layout.add_bias_activation(x, bias, node.op, *parameters)


def _new(node, x):
    return _in_place(node, np.array(x, dtype=np.result_type(x, np.float32)))


for _name in STEPS:
    INPLACE[_name] = _in_place


# The activations that are a clamp, as ``(low, high)`` (None: unbounded) for
# :func:`convlayer.functional.conv2d_checked`: with a Conv's bias, the sum and the clamp in one pass.
CLAMPS = {"Relu": lambda node: (0, None), "Clip": lambda node: (node.attrs.get("min"), node.attrs.get("max"))}


def activate(node, x: np.ndarray, bias=None) -> np.ndarray:
    """Activation ``node`` (a Swish, Sigmoid, ... that a Conv absorbed) written over x, a
    new channels-last array, after adding ``bias`` (per channel, the last axis) in the same
    pass over each chunk: a Conv's output crosses memory once for both. (A Relu or Clip,
    :data:`CLAMPS`, goes into the Conv itself: :func:`convlayer.functional.conv2d_checked`.)"""
    if _compiled(node, x, bias):
        return x
    step = STEPS[node.op](node, x.dtype)
    if bias is None:
        return _by_chunks(x, step)
    k, bias = x.shape[-1], np.asarray(bias, x.dtype)

    def biased(part, scratch):
        rows = part.reshape(-1, k) if part.ndim == 1 else part
        rows += bias
        step(part, scratch)
    return _by_chunks(x, biased, multiple=k)


# Items an activation works on at a time: its passes (exp, add, divide, ...) then run over a
# chunk that stays in the core's cache, so the array crosses memory once, not once a pass.
# Swish on 8x112x112x32 float32, quiet 2-core machine: 3.9 ms pass by pass over the whole
# array; in chunks, on one thread 2.7 ms (2**15 to 2**17 items alike), on two 3.05 ms for
# chunks of 2**15 (the threads wait for each other's many small calls), 2.0 for 2**16,
# 1.84 for 2**17, 1.7 for 2**18 and 2.1 for 2**19 (a chunk and its scratch outgrow L2).
CHUNK = 2**17


def _by_chunks(x, step, multiple: int = 1):
    """Run ``step(part, scratch)`` over x (in place) chunk by chunk, on every core for a large x.

    ``scratch`` is a free array of ``part``'s size and dtype; each chunk's size is a multiple
    of ``multiple`` (whole pixels, for a per-channel step). A non-contiguous x is done in
    one piece.
    """
    if not x.flags.c_contiguous:
        step(x, np.empty_like(x))
        return x
    flat = x.reshape(-1)
    chunk = max(multiple, CHUNK // multiple * multiple)
    starts = range(0, flat.size, chunk)

    def worker(part_starts):
        scratch = np.empty(min(chunk, flat.size), x.dtype)
        for start in part_starts:
            part = flat[start : start + chunk]
            step(part, scratch[: part.size])
    with np.errstate(over="ignore", invalid="ignore"):  # exp(inf), -inf / inf: NaN, as in the formula
        parallel.run_parts(worker, starts, parallel.threads_for(flat.size * PASSES))
    return x


PASSES = 4  # an activation's passes over its items, as parallel.threads_for counts work


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
    """``a op b`` written over an operand no one else reads, or None when neither fits. An
    Add that absorbed a Relu or Clip (:func:`.prepare.fuse_activations`) clamps its sums,
    in the same pass where the operands allow (:func:`.layout.add_clamped`)."""
    ufunc = _UFUNCS.get(node.op)
    if ufunc is None or a.dtype != b.dtype or (node.op == "Div" and not np.issubdtype(a.dtype, np.floating)):
        return None
    shape = np.broadcast_shapes(a.shape, b.shape)
    target, other = (a, b) if owned[0] and a.shape == shape else (
        (b, a) if owned[1] and b.shape == shape and node.op in ("Add", "Mul") else (None, None))
    if target is None:
        return None
    bounds = _clamp_of(node)
    if bounds is not None and layout.add_clamped(target, other, *bounds):
        return target
    return _clamped(node, ufunc(a, b, out=target))


@op("Add", BROADCAST)
def add(node, a, b):
    return _clamped(node, a + b)


def _clamp_of(node):
    """``(low, high)`` of the Relu or Clip an Add absorbed, or None."""
    activation = node.attrs.get("_activation")
    return None if activation is None else CLAMPS[activation.op](activation)


def _clamped(node, result):
    """``result`` (the node's own new array) clamped in place to the bounds of :func:`_clamp_of`."""
    bounds = _clamp_of(node)
    if bounds is not None:
        layout.clamp(result, *bounds)
    return result


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
