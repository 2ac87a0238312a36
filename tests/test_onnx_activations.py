"""convlayer.onnx's element-wise activations against their formulas in float64, and the
fusion of ``Mul(x, Sigmoid(x))`` into one Swish node.

The activations run over cache-sized chunks, on two threads for large arrays: the sizes
below cross chunk boundaries, leave a short last chunk and pass the threading threshold.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("onnx")
from onnx import helper  # noqa: E402

import convlayer.onnx  # noqa: E402
from convlayer.onnx import elementwise  # noqa: E402

from .test_onnx_load import graph_model, one_node  # noqa: E402

U32 = 2.0**-24


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


FORMULAS = [  # (op, attributes, float64 formula)
    ("Relu", {}, lambda x: np.maximum(x, 0)),
    ("LeakyRelu", {"alpha": 0.1}, lambda x: np.where(x >= 0, x, 0.1 * x)),
    ("LeakyRelu", {"alpha": -1.5}, lambda x: np.where(x >= 0, x, -1.5 * x)),  # not a max of x and alpha x
    ("Clip", {"min": -0.5, "max": 0.25}, lambda x: np.minimum(np.maximum(x, -0.5), 0.25)),
    ("Sigmoid", {}, _sigmoid),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, lambda x: np.clip(0.3 * x + 0.4, 0, 1)),
    ("HardSwish", {}, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    ("Swish", {}, lambda x: x * _sigmoid(x)),
    ("Swish", {"alpha": 0.5}, lambda x: x * _sigmoid(0.5 * x)),
]
SHAPES = [(1, 2, 4, 4), (3, 5, 301, 229)]  # 1,034,205 items: 32 chunks of 2**15, a short last one


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op, attrs, formula", FORMULAS, ids=[f"{op}{attrs}" for op, attrs, _ in FORMULAS])
def test_activation_matches_its_formula(op, attrs, formula, shape):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 8).astype(np.float32)
    x.flat[:4] = [-100.0, 100.0, 0.0, -3.0]  # exp's overflow, saturation, the kinks
    before = x.copy()
    got = convlayer.onnx.load(one_node(op, attrs, shape, opset=24 if op == "Swish" else 17))(x)
    exact = formula(x.astype(np.float64))
    # a few roundings of values no larger than |x| (or 1): far below any wrong formula's error
    np.testing.assert_array_less(np.abs(got - exact), 8 * U32 * (np.abs(x) + 1))
    np.testing.assert_array_equal(x, before)  # the caller's array is never written


EDGES = [np.nan, np.inf, -np.inf, 88.0, 88.8, 89.0, -87.0, -87.4, -88.0, -104.0, 1e-30, -1e-30, 0.0, 1e30, -1e30]


@pytest.mark.parametrize("op, attrs, formula", [f for f in FORMULAS if f[0] in ("Sigmoid", "Swish")],
                         ids=lambda v: str(v) if not callable(v) else "")
def test_sigmoid_and_swish_at_the_edges_of_exp(op, attrs, formula):
    # exp(-x) overflows beyond x < -88.7 and underflows past x > 87.3; NaN stays NaN and
    # swish(-inf) is NaN (-inf / inf), as the float64 formula gives, without a warning
    x = np.array(EDGES + [-e for e in EDGES[3:]], np.float32).reshape(1, 1, 1, -1)
    model = convlayer.onnx.load(one_node(op, attrs, x.shape, opset=24 if op == "Swish" else 17))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = model(x)
    with np.errstate(over="ignore", invalid="ignore"):
        exact = formula(x.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exact))
    finite = ~np.isnan(exact)
    np.testing.assert_array_equal(np.isinf(got[finite]), np.isinf(exact[finite]))
    close = finite & np.isfinite(exact)
    np.testing.assert_array_less(np.abs(got[close] - exact[close]), 8 * U32 * (np.abs(x[close]) + 1))


def test_chunks_of_float64_and_of_a_non_contiguous_array():
    x = np.random.default_rng(0).standard_normal((70, 3001))

    def step(part, scratch):  # scratch is free space of part's size
        np.multiply(part, 2, out=scratch)
        np.subtract(part, scratch, out=part)
    for array in (x.copy(), np.asfortranarray(x), x.T.copy()[:, ::2].T):  # C order; the others in one piece
        want = -array
        assert elementwise._by_chunks(array, step) is array
        np.testing.assert_array_equal(array, want)


def _swish_graph(order, extra_reader=False, other=False):
    sigmoid = helper.make_node("Sigmoid", ["c"], ["s"], name="gate")
    operands = ["s", "c"] if order else ["c", "s"]
    if other:
        operands[operands.index("c")] = "x"
    nodes = [helper.make_node("Relu", ["x"], ["c"], name="relu"), sigmoid,
             helper.make_node("Mul", operands, ["m"], name="mul")]
    out = "m"
    if extra_reader:
        nodes.append(helper.make_node("Add", ["m", "s"], ["y"], name="add"))
        out = "y"
    return graph_model(nodes, [("x", (2, 3, 5, 6))], [(out, None)])


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("extra_reader, other", [(False, False), (True, False), (False, True)])
def test_mul_of_a_sigmoid_becomes_one_swish_only_when_nothing_else_reads_it(order, extra_reader, other):
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6)).astype(np.float32)
    model = convlayer.onnx.load(_swish_graph(order, extra_reader, other))
    ops = [node.op for node in model.graph.nodes]
    fused = not extra_reader and not other
    assert ("Swish" in ops) == fused and ("Sigmoid" in ops) != fused
    c = np.maximum(x.astype(np.float64), 0)
    gate = _sigmoid(c)
    want = (x if other else c) * gate + (gate if extra_reader else 0)
    np.testing.assert_array_less(np.abs(model(x) - want), 8 * U32 * (np.abs(want) + 1))
