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
from convlayer.algorithms import compiled  # noqa: E402
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
# 1,068,435 items: 8 chunks of 2**17 and a short one, and at 4 passes an item above
# parallel.PARALLEL_MIN_WORK (2**22): two threads where the machine has them
SHAPES = [(1, 2, 4, 4), (3, 5, 311, 229)]


@pytest.mark.parametrize("compiled_loops", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op, attrs, formula", FORMULAS, ids=[f"{op}{attrs}" for op, attrs, _ in FORMULAS])
def test_activation_matches_its_formula(op, attrs, formula, shape, compiled_loops):
    # Sigmoid, Swish, HardSigmoid and HardSwish on float32 take one compiled pass at every
    # size where Numba is installed (layout.add_bias_activation), NumPy's passes otherwise
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 8).astype(np.float32)
    x.flat[:4] = [-100.0, 100.0, 0.0, -3.0]  # exp's overflow, saturation, the kinks
    before = x.copy()
    with compiled.use_compiled(compiled_loops):
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
    # every value also among 2**16 others: a Sigmoid or Swish that large goes through the compiled loop
    # (layout.add_bias_activation, its own exp), a small one through NumPy's passes
    edges = np.array(EDGES + [-e for e in EDGES[3:]], np.float32)
    x = np.concatenate([edges, np.random.default_rng(5).standard_normal(2**16).astype(np.float32) * 30, edges])
    x = x.reshape(1, 1, 1, -1)
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


def _conv_then(op, attrs, extra_reader=False, k=5, size=(7, 9)):
    """Conv (3 -> k channels, 3x3, with bias) on a 2x3 x ``size`` input, then ``op``; with
    ``extra_reader`` an Add reads the Conv's output too. Clip without attributes takes its
    bounds as constant inputs (opset 11 on)."""
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((k, 3, 3, 3)).astype(np.float32)
    bias = (rng.standard_normal(k) * 4).astype(np.float32)
    constants = [("W", weight), ("B", bias)]
    inputs = ["c"]
    if op == "Clip" and not attrs:
        constants += [("lo", np.float32(-0.5)), ("hi", np.float32(1.5))]
        inputs += ["lo", "hi"]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node(op, inputs, ["a"], name="act", **attrs)]
    out = "a"
    if extra_reader:
        nodes.append(helper.make_node("Add", ["a", "c"], ["y"], name="add"))
        out = "y"
    model = graph_model(nodes, [("x", (2, 3) + size)], [(out, None)], constants,
                        opset=24 if op == "Swish" else 17)
    return model, weight.astype(np.float64), bias.astype(np.float64)


ACTIVATIONS = FORMULAS + [("Clip", {}, lambda x: np.clip(x, -0.5, 1.5))]


# 2 x 10 x 64 x 71 = 90,880 values, above layout.ADD_COMPILED_MIN: a Relu or Clip there takes
# the compiled pass (a Sigmoid, Swish, HardSigmoid or HardSwish takes it at every size)
@pytest.mark.parametrize("size", [(7, 9), (64, 71)], ids=["small", "large"])
@pytest.mark.parametrize("extra_reader", [False, True])
@pytest.mark.parametrize("op, attrs, formula", ACTIVATIONS, ids=[f"{op}{attrs}" for op, attrs, _ in ACTIVATIONS])
def test_an_activation_alone_reading_a_conv_becomes_part_of_it(op, attrs, formula, extra_reader, size):
    # fused: one Conv node adds its bias and applies the activation chunk by chunk (a
    # Sigmoid, Swish, HardSigmoid or HardSwish: in one compiled pass); with a second reader
    # of the Conv's output (the Add) the activation stays a node of its own
    model_proto, weight, bias = _conv_then(op, attrs, extra_reader, k=5 if size == (7, 9) else 10, size=size)
    model = convlayer.onnx.load(model_proto)
    ops = [node.op for node in model.graph.nodes]
    assert (op in ops) == extra_reader
    x = np.random.default_rng(4).standard_normal((2, 3) + size).astype(np.float32)
    torch = pytest.importorskip("torch")
    conv = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(weight),
                                      torch.from_numpy(bias), padding=1).numpy()
    want = formula(conv) + (conv if extra_reader else 0)
    magnitude = torch.nn.functional.conv2d(torch.from_numpy(np.abs(x).astype(np.float64)),
                                           torch.from_numpy(np.abs(weight)), torch.from_numpy(np.abs(bias)),
                                           padding=1).numpy()
    # the convolution's float32 sums (28 terms) and the activation's few roundings
    np.testing.assert_array_less(np.abs(model(x) - want), 64 * U32 * (magnitude + 1))


DEPTHWISE = [  # (channels, image, kernel, stride): one thread, two (enough work), a pixel remainder
    (16, (7, 9), 3, 1), (64, (64, 61), 3, 1), (24, (29, 31), 5, 2), (48, (23, 23), 7, 1)]


@pytest.mark.parametrize("channels, size, kernel, stride", DEPTHWISE, ids=[f"{c}x{s[0]}x{s[1]}-{f}s{t}" for c, s, f, t
                                                                         in DEPTHWISE])
@pytest.mark.parametrize("op, attrs, formula", FORMULAS[4:], ids=[f"{op}{attrs}" for op, attrs, _ in FORMULAS[4:]])
def test_a_depthwise_conv_and_its_activation_against_pytorch(op, attrs, formula, channels, size, kernel, stride):
    # the depthwise loop adds the bias to each sum; each of its threads then activates the
    # output rows it has just written (layout.activation_rows)
    rng = np.random.default_rng(channels)
    weight = (rng.standard_normal((channels, 1, kernel, kernel)) / kernel).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    pad = kernel // 2
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", group=channels, pads=[pad] * 4,
                              strides=[stride] * 2),
             helper.make_node(op, ["c"], ["y"], name="act", **attrs)]
    model = convlayer.onnx.load(graph_model(nodes, [("x", (2, channels) + size)], [("y", None)],
                                            [("W", weight), ("B", bias)], opset=24 if op == "Swish" else 17))
    assert [node.op for node in model.graph.nodes] == ["Conv"]
    x = rng.standard_normal((2, channels) + size).astype(np.float32)
    torch = pytest.importorskip("torch")

    def conv(a, w, b):
        a, w, b = (torch.from_numpy(v.astype(np.float64)) for v in (a, w, b))
        return torch.nn.functional.conv2d(a, w, b, stride=stride, padding=pad, groups=channels).numpy()

    want = formula(conv(x, weight, bias))
    magnitude = conv(np.abs(x), np.abs(weight), np.abs(bias))
    # the float32 sums (at most 50 terms) and the activation's few roundings
    np.testing.assert_array_less(np.abs(model(x) - want), 128 * U32 * (magnitude + 1))


def _add_then(op, attrs, second="x", extra_reader=False, shape=(2, 8, 33, 35)):
    """x -> Relu (a new array: the Add's own to write over) -> r; Add(r, ``second``) -> s;
    ``op`` (Relu, Clip) of s -> y; with ``extra_reader`` a Mul reads s too.
    ``second``: "x" (the caller's array, the same shape) or "b" (a (1, c, 1, 1) constant)."""
    constants = [("b", np.linspace(-1, 1, shape[1], dtype=np.float32).reshape(1, -1, 1, 1))]
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="copy"),
             helper.make_node("Add", ["r", second], ["s"], name="add"),
             helper.make_node(op, ["s"], ["y"], name="act", **attrs)]
    out = "y"
    if extra_reader:
        nodes.append(helper.make_node("Mul", ["y", "s"], ["z"], name="mul"))
        out = "z"
    return graph_model(nodes, [("x", shape)], [(out, None)], constants)


ADD_CLAMPS = [("Relu", {}, lambda s: np.maximum(s, 0)), ("Clip", {"min": -0.5, "max": 0.25}, lambda s: np.clip(s, -0.5, 0.25))]


@pytest.mark.parametrize("compiled_loops", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("second", ["x", "b"], ids=["same-shape", "broadcast"])
@pytest.mark.parametrize("op, attrs, clamp", ADD_CLAMPS, ids=[op for op, _, _ in ADD_CLAMPS])
def test_a_relu_or_clip_alone_reading_an_add_becomes_part_of_it(op, attrs, clamp, second, compiled_loops):
    # a residual block's sum and its Relu: one node, one pass over the values where both
    # operands have the output's shape (layout.add_clamped), NumPy's sum then the clamp
    # otherwise; the values are float32's sum, clamped: equal to the formula's, bit for bit
    x = np.random.default_rng(21).standard_normal((2, 8, 33, 35)).astype(np.float32)
    x.flat[:3] = [np.nan, np.inf, -np.inf]
    before = x.copy()
    with compiled.use_compiled(compiled_loops):
        model = convlayer.onnx.load(_add_then(op, attrs, second))
        assert [node.op for node in model.graph.nodes] == ["Relu", "Add"]
        got = model(x)
    other = x if second == "x" else np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, -1, 1, 1)
    with np.errstate(invalid="ignore"):  # inf + -inf
        want = clamp(np.maximum(x, 0) + other)
    np.testing.assert_array_equal(got, want)  # NaN where the formula gives NaN, and every other value
    np.testing.assert_array_equal(x, before)  # the caller's array is never written


def test_an_add_read_by_another_node_keeps_its_relu_apart():
    model = convlayer.onnx.load(_add_then("Relu", {}, extra_reader=True))
    assert [node.op for node in model.graph.nodes] == ["Relu", "Add", "Relu", "Mul"]
    x = np.random.default_rng(22).standard_normal((2, 8, 33, 35)).astype(np.float32)
    s = np.maximum(x, 0) + x
    np.testing.assert_array_equal(model(x), np.maximum(s, 0) * s)


def test_an_add_of_the_callers_arrays_with_its_relu_writes_neither():
    # no operand is a node's own new array: the sum is a new array, clamped in place
    x = np.random.default_rng(23).standard_normal((2, 3, 4, 5)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "x"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"], name="act")]
    model = convlayer.onnx.load(graph_model(nodes, [("x", x.shape)], [("y", None)]))
    assert [node.op for node in model.graph.nodes] == ["Add"]
    before = x.copy()
    np.testing.assert_array_equal(model(x), np.maximum(x + x, 0))
    np.testing.assert_array_equal(x, before)
