"""convlayer.onnx on graphs written with onnx.helper: each op against NumPy written from
ONNX's definition, every refusal as one line, the inputs each form of ``load`` takes."""

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convlayer.onnx  # noqa: E402


def graph_model(nodes, inputs, outputs, constants=(), opset=17):
    """A ModelProto: ``inputs``/``outputs`` are (name, shape) of float32 tensors."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in constants])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def one_node(op, attrs=None, shape=(1, 2, 4, 4), extra=(), outputs=("y",), opset=17, **kw):
    inputs = ["x"] + [name for name, _ in extra]
    node = helper.make_node(op, inputs, list(outputs), name="n1", **(attrs or {}))
    return graph_model([node], [("x", shape)], [(o, None) for o in outputs], extra, opset)


REFUSED = [
    (one_node("Einsum", {"equation": "ij->ji"}), r"node 'n1' \(Einsum\): the operator Einsum is not supported; "
                                                  r"supported: .*Conv"),
    (one_node("Resize", {"mode": "cubic"}), r"node 'n1' \(Resize\): mode 'cubic' is not supported; supported: "
                                            r"'nearest', 'linear'"),
    (one_node("Resize", {"coordinate_transformation_mode": "tf_crop_and_resize"}),
     r"node 'n1' \(Resize\): coordinate_transformation_mode 'tf_crop_and_resize' is not supported"),
    (one_node("Resize", {"antialias": 1}), r"node 'n1' \(Resize\): antialias 1 is not supported"),
    (one_node("MaxPool", {"kernel_shape": [2, 2], "storage_order": 1}),
     r"node 'n1' \(MaxPool\): storage_order 1 is not supported; supported: 0"),
    (one_node("MaxPool", {"kernel_shape": [2, 2]}, outputs=("y", "indices")),
     r"node 'n1' \(MaxPool\): output 1 \('indices'\) is not supported \(only the first 1\)"),
    (one_node("MaxPool", {"kernel_shape": [2, 2, 2]}, shape=(1, 1, 4, 4, 4)),
     r"node 'n1' \(MaxPool\): kernel_shape \[2, 2, 2\] is not 2-D"),
    (one_node("AveragePool", {"kernel_shape": [2, 2], "pads": [0, 0, -1, 0]}),
     r"node 'n1' \(AveragePool\): pads \[0, 0, -1, 0\] has negative pads"),
    (one_node("MaxPool", {}), r"node 'n1' \(MaxPool\): kernel_shape is missing"),
    (one_node("Conv", extra=[("w", np.zeros((2, 2, 3), np.float32))], shape=(1, 2, 8)),
     r"node 'n1' \(Conv\): a kernel of rank 3 is not supported \(only 2-D convolutions: rank 4\)"),
    (one_node("Conv", {"foo": 1}, extra=[("w", np.zeros((2, 2, 3, 3), np.float32))]),
     r"node 'n1' \(Conv\): the attribute 'foo' is not supported; supported: auto_pad, dilations"),
    (one_node("BatchNormalization", {"training_mode": 1},
              extra=[(n, np.ones(2, np.float32)) for n in "sbmv"]),
     r"node 'n1' \(BatchNormalization\): training_mode 1 is not supported; supported: 0"),
    (one_node("Pad", {"mode": "symmetric"}, extra=[("p", np.zeros(8, np.int64))]),
     r"node 'n1' \(Pad\): mode 'symmetric' is not supported"),
    (one_node("Pad", extra=[("p", np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64))]),
     r"node 'n1' \(Pad\): negative pads \[0, 0, -1, 0, 0, 0, 0, 0\] \(cropping\) are not supported"),
    (one_node("Dropout", extra=[("r", np.array(0.5, np.float32)), ("t", np.array(True))]),
     r"node 'n1' \(Dropout\): training_mode=True is not supported \(inference only\)"),
    (one_node("Gemm", {"transA": 2}, shape=(2, 2), extra=[("b", np.ones((2, 2), np.float32))]),
     r"node 'n1' \(Gemm\): transA 2 is not supported"),
]


@pytest.mark.parametrize("model, message", REFUSED, ids=[m.graph.node[0].op_type + str(i) for i, (m, _) in
                                                           enumerate(REFUSED)])
def test_refused_at_load_time_in_one_line(model, message):
    with pytest.raises(ValueError, match=message) as caught:
        convlayer.onnx.load(model)
    assert "\n" not in str(caught.value)


def test_custom_domains_are_refused():
    node = helper.make_node("Relu", ["x"], ["y"], name="n1", domain="com.microsoft")
    model = graph_model([node], [("x", (1, 2))], [("y", None)])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(ValueError, match=r"node 'n1' \(Relu\): operators of domain 'com.microsoft' are not supported"):
        convlayer.onnx.load(model)


def test_resize_of_other_axes_is_refused():
    scales = [("roi", np.zeros(0, np.float32)), ("scales", np.array([1, 2, 2, 2], np.float32))]
    with pytest.raises(ValueError, match=r"node 'n1' \(Resize\): scales \[1.0, 2.0, 2.0, 2.0\] resize more than "
                                         r"the two image axes of a 4-D tensor \(only those are supported\)"):
        convlayer.onnx.load(one_node("Resize", {"mode": "nearest"}, extra=scales))
    sizes = [("roi", np.zeros(0, np.float32)), ("scales", np.zeros(0, np.float32)),
             ("sizes", np.array([1, 4, 8, 8], np.int64))]
    model = convlayer.onnx.load(one_node("Resize", {"mode": "nearest"}, extra=sizes))  # known only when run
    with pytest.raises(ValueError, match=r"node 'n1' \(Resize\): only the two image axes of a 4-D tensor can be "
                                         r"resized; got input shape \(1, 2, 4, 4\) to \(1, 4, 8, 8\)"):
        model(np.zeros((1, 2, 4, 4), np.float32))


def test_sources_and_inputs(tmp_path):
    model = one_node("Relu")
    path = tmp_path / "relu.onnx"
    onnx.save(model, str(path))
    x = np.array([[[[-1.0, 2.0]]]], np.float32).repeat(2, 1).repeat(4, 2).repeat(2, 3)
    for source in (model, model.SerializeToString(), path, str(path)):
        loaded = convlayer.onnx.load(source)
        np.testing.assert_array_equal(loaded(x), np.maximum(x, 0))
        assert loaded.run({"x": x})["y"].shape == x.shape
    with pytest.raises(ValueError, match=r"input 'x' must have shape \(1, 2, 4, 4\); got \(1, 2, 4\)"):
        loaded(x[..., 0])
    with pytest.raises(ValueError, match=r"inputs must be \['x'\]; got \['z'\]"):
        loaded.run({"z": x})
    with pytest.raises(ValueError, match="no file"):
        convlayer.onnx.load(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01not a model")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        convlayer.onnx.load(tmp_path / "junk.onnx")
    with pytest.raises(TypeError, match="model must be a path, bytes or an onnx.ModelProto; got int"):
        convlayer.onnx.load(3)


def test_import_convlayer_does_not_import_onnx():
    code = "import sys, convlayer, convlayer.nn; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)


def run(op, attrs=None, extra=(), x=X, opset=17):
    return convlayer.onnx.load(one_node(op, attrs, x.shape, extra, opset=opset))(x)


def test_older_opsets_take_attributes():
    np.testing.assert_array_equal(run("Clip", {"min": 0.0, "max": 0.5}, opset=6), np.clip(X, 0, 0.5))
    np.testing.assert_array_equal(run("Unsqueeze", {"axes": [0]}, opset=11), X[None])
    e = np.exp(X.reshape(2, -1) - X.reshape(2, -1).max(1, keepdims=True))
    np.testing.assert_allclose(run("Softmax", {"axis": 1}, opset=11), (e / e.sum(1, keepdims=True)).reshape(X.shape),
                               rtol=1e-6)
    scales = np.array([1, 1, 2, 3], np.float32)
    want = X.repeat(2, 2).repeat(3, 3)
    np.testing.assert_array_equal(run("Resize", {"mode": "nearest"}, [("s", scales)], opset=10), want)


@pytest.mark.parametrize("mode, nearest, want", [
    ("asymmetric", "floor", [0, 0, 1, 1, 2, 2]),
    ("half_pixel", "round_prefer_floor", [0, 0, 1, 1, 2, 2]),
    ("align_corners", "round_prefer_ceil", [0, 0, 1, 1, 2, 2]),
    ("tf_half_pixel_for_nn", "floor", [0, 0, 1, 1, 2, 2]),
    ("asymmetric", "ceil", [0, 1, 1, 2, 2, 2]),
])
def test_resize_nearest_coordinates(mode, nearest, want):
    x = np.arange(3, dtype=np.float32).reshape(1, 1, 1, 3)
    extra = [("roi", np.zeros(0, np.float32)), ("scales", np.array([1, 1, 1, 2], np.float32))]
    got = run("Resize", {"mode": "nearest", "coordinate_transformation_mode": mode, "nearest_mode": nearest},
              extra, x=x)
    assert got.ravel().tolist() == want


def test_resize_linear_by_sizes_against_hand_values():
    x = np.array([0.0, 3.0], np.float32).reshape(1, 1, 1, 2)
    extra = [("roi", np.zeros(0, np.float32)), ("scales", np.zeros(0, np.float32)),
             ("sizes", np.array([1, 1, 1, 4], np.int64))]
    half = run("Resize", {"mode": "linear"}, extra, x=x)
    assert half.ravel().tolist() == [0.0, 0.75, 2.25, 3.0]  # (i + 0.5) / 2 - 0.5, clamped
    corners = run("Resize", {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, extra, x=x)
    np.testing.assert_allclose(corners.ravel(), [0.0, 1.0, 2.0, 3.0], rtol=1e-6)


def test_shape_slice_gather_cast_constant_of_shape_on_a_channels_last_value():
    """A Conv makes x channels-last inside; Shape still sees NCHW, Slice cuts channels."""
    w = np.zeros((4, 3, 1, 1), np.float32)
    w[[0, 1, 2, 3], [0, 1, 2, 0]] = 1.0
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["channels"], name="gather", axis=0),
        helper.make_node("Cast", ["channels"], ["cf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Slice", ["c", "start", "stop", "axis"], ["part"], name="slice"),
        helper.make_node("ConstantOfShape", ["s"], ["ones"], name="ones",
                         value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("Mul", ["part", "cf"], ["scaled"], name="mul"),
        helper.make_node("Add", ["scaled", "ones"], ["y"], name="add"),
    ]
    constants = [("w", w), ("one", np.array(1, np.int64)), ("start", np.array([0], np.int64)),
                 ("stop", np.array([2**63 - 1], np.int64)), ("axis", np.array([1], np.int64))]
    model = graph_model(nodes, [("x", (2, 3, 5, 6))], [("y", None)], constants)
    got = convlayer.onnx.load(model)(X)
    want = np.concatenate([X, X[:, :1]], 1) * 4 + 1
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_in_place_ops_leave_values_that_are_still_read_alone():
    """Relu may write over its input only when no later node reads it: here Identity passes
    the Conv's output on, and Add still reads it."""
    w = np.ones((2, 3, 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Identity", ["c"], ["i"], name="identity"),
             helper.make_node("Relu", ["i"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["r"], ["s"], name="sigmoid"),
             helper.make_node("Add", ["s", "c"], ["y"], name="add")]
    model = graph_model(nodes, [("x", (2, 3, 5, 6))], [("y", None)], [("w", w)])
    c = np.repeat(X.sum(1, keepdims=True), 2, 1)
    x = X.copy()
    got = convlayer.onnx.load(model)(x)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.maximum(c, 0))) + c, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, X)  # the caller's array is never written


def _conv_then(nodes, x_shape=(2, 3, 5, 6)):
    """A model whose nodes read ``c``, a 1x1 Conv's output of 2 channels (sums of x's)."""
    w = np.ones((2, 3, 1, 1), np.float32)
    return graph_model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv")] + nodes,
                       [("x", x_shape)], [("y", None)],
                       [("w", w), ("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64))])


def test_the_last_reader_of_a_value_read_twice_writes_over_it():
    """A squeeze-excite block: GlobalAveragePool reads c, then Mul, its last reader, may
    write c * mean over c instead of a new array."""
    model = _conv_then([helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
                        helper.make_node("Mul", ["c", "g"], ["y"], name="mul")])
    c = np.repeat(X.sum(1, keepdims=True), 2, 1)
    seen = {}

    def trace(node, inputs, outputs, channels_last):
        seen[node.name] = (inputs, outputs)

    got = convlayer.onnx.load(model).run({"x": X}, trace=trace)["y"]
    np.testing.assert_allclose(got, c * c.mean((2, 3), keepdims=True), rtol=1e-5)
    inputs, outputs = seen["mul"]
    assert outputs[0] is inputs[0][0]  # written over c


def test_a_value_that_a_live_view_holds_is_not_written_over():
    """Slice returns a view of c, read after Mul, c's last reader: Mul must not write over c."""
    model = _conv_then([helper.make_node("Slice", ["c", "zero", "one", "zero"], ["v"], name="view"),
                        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
                        helper.make_node("Mul", ["c", "g"], ["m"], name="mul"),
                        helper.make_node("Add", ["m", "v"], ["y"], name="add")])
    c = np.repeat(X.sum(1, keepdims=True), 2, 1)
    seen = {}

    def trace(node, inputs, outputs, channels_last):
        seen[node.name] = outputs[0].base is inputs[0][0]

    got = convlayer.onnx.load(model).run({"x": X}, trace=trace)["y"]
    assert seen["view"]  # the case this test is about: Slice's result is a view of c
    np.testing.assert_allclose(got, c * c.mean((2, 3), keepdims=True) + c[:1], rtol=1e-5)


def _squeeze_excite(first_act, second_act, order=0, after=None, extra=()):
    """x (2, 6, 5, 7; a Conv's copy of the input, so a value the runner owns) ->
    GlobalAveragePool -> 1x1 Conv 6->3 (+ first_act) -> 1x1 Conv 3->6 (+ second_act) -> Mul
    with x (``order`` 1: Mul(s, x)); ``after``: a node reading "y" (and maybe x) that makes
    the output "z"; ``extra``: more nodes."""
    rng = np.random.default_rng(8)
    w1, b1 = rng.standard_normal((3, 6, 1, 1)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    w2, b2 = rng.standard_normal((6, 3, 1, 1)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    identity = np.eye(6, dtype=np.float32)[:, :, None, None]
    nodes = [helper.make_node("Conv", ["input", "identity"], ["x"], name="copy"),
             helper.make_node("GlobalAveragePool", ["x"], ["g"], name="pool"),
             helper.make_node("Conv", ["g", "w1", "b1"], ["h0"], name="fc1")]
    nodes += [helper.make_node(first_act, ["h0"], ["h"], name="act1")] if first_act else []
    nodes += [helper.make_node("Conv", ["h" if first_act else "h0", "w2", "b2"], ["s0"], name="fc2")]
    nodes += [helper.make_node(second_act, ["s0"], ["s"], name="act2")] if second_act else []
    nodes += [helper.make_node("Mul", ["x", "s" if second_act else "s0"][::1 - 2 * order], ["y"], name="scale")]
    nodes += ([after] if after else []) + list(extra)
    model = graph_model(nodes, [("input", (2, 6, 5, 7))], [("z" if after else "y", None)],
                        [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("identity", identity)],
                        opset=24 if "Swish" in (first_act,) else 17)
    return model, (w1[:, :, 0, 0].astype(np.float64), b1, w2[:, :, 0, 0].astype(np.float64), b2)


_SE_ACTIVATIONS = {None: lambda v: v, "Relu": lambda v: np.maximum(v, 0), "Swish": lambda v: v / (1 + np.exp(-v)),
                   "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "HardSigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1)}
SE_CASES = [("Relu", "Sigmoid", 0), ("Swish", "Sigmoid", 1), ("Relu", "HardSigmoid", 0), (None, None, 1)]


@pytest.mark.parametrize("compiled_loops", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("first, second, order", SE_CASES)
def test_a_squeeze_excite_block_runs_as_one_node_with_the_values_of_its_nodes(first, second, order, compiled_loops,
                                                                             monkeypatch):
    # with the compiled loops, each dense layer is a product and one compiled call planned
    # for the node; without, the Conv node's own handler on a 1x1 image
    from convlayer.algorithms import compiled
    from convlayer.onnx import fused

    model, (w1, b1, w2, b2) = _squeeze_excite(first, second, order)
    x = np.random.default_rng(9).standard_normal((2, 6, 5, 7)).astype(np.float32)
    with compiled.use_compiled(compiled_loops):
        loaded = convlayer.onnx.load(model)
        assert [node.op for node in loaded.graph.nodes] == ["Conv", "SqueezeExcite"]
        got = loaded(x)
        means = x.astype(np.float64).mean((2, 3))
        scale = _SE_ACTIVATIONS[second](_SE_ACTIVATIONS[first](means @ w1.T + b1) @ w2.T + b2)
        np.testing.assert_allclose(got, x * scale[:, :, None, None], rtol=1e-5, atol=1e-6)
        monkeypatch.setattr(fused, "fuse", lambda graph, readers: None)
        apart = convlayer.onnx.load(model)
        assert "SqueezeExcite" not in [node.op for node in apart.graph.nodes]
        np.testing.assert_array_equal(got, apart(x))  # the same products and passes: the same bits


def test_a_squeeze_excite_block_leaves_x_alone_while_a_later_node_reads_it():
    # the Add reads x after the block: the block must not write its product over x
    model, (w1, b1, w2, b2) = _squeeze_excite("Relu", "Sigmoid", after=helper.make_node("Add", ["y", "x"], ["z"]))
    x = np.random.default_rng(10).standard_normal((2, 6, 5, 7)).astype(np.float32)
    loaded = convlayer.onnx.load(model)
    assert [node.op for node in loaded.graph.nodes] == ["Conv", "SqueezeExcite", "Add"]
    means = x.astype(np.float64).mean((2, 3))
    scale = 1 / (1 + np.exp(-(np.maximum(means @ w1.T + b1, 0) @ w2.T + b2)))
    np.testing.assert_allclose(loaded(x), x * scale[:, :, None, None] + x, rtol=1e-5, atol=1e-6)


def test_a_squeeze_excite_block_whose_inner_value_is_read_elsewhere_stays_apart():
    # the pooled means are read by a second node too: fusing would lose them
    model, _ = _squeeze_excite("Relu", "Sigmoid", extra=[helper.make_node("Relu", ["g"], ["unused"])])
    assert "SqueezeExcite" not in [node.op for node in convlayer.onnx.load(model).graph.nodes]


def test_the_summary_shows_the_layers_of_a_fused_block():
    from convlayer.onnx import summary

    model, _ = _squeeze_excite("Relu", "Sigmoid")
    rows = summary.rows(convlayer.onnx.load(model), (2, 6, 5, 7))
    assert [(row.op, row.output_shape, row.params) for row in rows] == [
        ("Conv", (2, 6, 5, 7), (6 + 0) * 6), ("GlobalAveragePool", (2, 6, 1, 1), 0),
        ("Conv", (2, 3, 1, 1), (6 + 1) * 3), ("Conv", (2, 6, 1, 1), (3 + 1) * 6)]


ACTIVATED = {"Swish": lambda v: v / (1 + np.exp(-v)), "HardSwish": lambda v: v * np.clip(v / 6 + 0.5, 0, 1),
             "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Relu": lambda v: np.maximum(v, 0)}


def _activated_squeeze_excite(activation, groups, also_reads_x=False, project=None, shape=(2, 16, 9, 11)):
    """input ``shape`` -> 3x3 Conv 16->16 (``groups``, pads 1, bias) -> ``activation``
    (Swish as the exporters write it: Mul(c, Sigmoid(c))) = x -> the block of
    :func:`_squeeze_excite` (Relu, Sigmoid) -> y; ``also_reads_x``: y + x is the output;
    ``project``: a 1x1 Conv 16 -> ``project`` with bias reads y (the output)."""
    rng = np.random.default_rng(11)
    wc = (rng.standard_normal((16, 16 // groups, 3, 3)) * 0.3).astype(np.float32)
    bc = rng.standard_normal(16).astype(np.float32)
    w1, b1 = rng.standard_normal((4, 16, 1, 1)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    w2, b2 = rng.standard_normal((16, 4, 1, 1)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "wc", "bc"], ["c"], name="conv", group=groups, pads=[1, 1, 1, 1])]
    if activation == "Swish":
        nodes += [helper.make_node("Sigmoid", ["c"], ["gate"], name="gate"),
                  helper.make_node("Mul", ["c", "gate"], ["x"], name="swish")]
    else:
        nodes += [helper.make_node(activation, ["c"], ["x"], name="act")]
    nodes += [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="pool"),
              helper.make_node("Conv", ["g", "w1", "b1"], ["h0"], name="fc1"),
              helper.make_node("Relu", ["h0"], ["h"], name="act1"),
              helper.make_node("Conv", ["h", "w2", "b2"], ["s0"], name="fc2"),
              helper.make_node("Sigmoid", ["s0"], ["s"], name="act2"),
              helper.make_node("Mul", ["x", "s"], ["y"], name="scale")]
    nodes += [helper.make_node("Add", ["y", "x"], ["z"], name="add")] if also_reads_x else []
    wp = (rng.standard_normal((project or 1, 16, 1, 1)) * 0.3).astype(np.float32)
    bp = rng.standard_normal(project or 1).astype(np.float32)
    nodes += [helper.make_node("Conv", ["y", "wp", "bp"], ["p"], name="proj")] if project else []
    out = "z" if also_reads_x else "p" if project else "y"
    model = graph_model(nodes, [("input", shape)], [(out, None)],
                        [("wc", wc), ("bc", bc), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("wp", wp),
                         ("bp", bp)])

    def exact(inp):  # float64
        from convlayer import reference

        kernel = wc.transpose(2, 3, 1, 0).astype(np.float64)
        c = reference.conv2d(inp.transpose(0, 2, 3, 1).astype(np.float64), kernel, bc, padding=1, groups=groups)
        x = ACTIVATED[activation](c)  # (n, h, w, c)
        means = x.mean((1, 2))
        scale = 1 / (1 + np.exp(-(np.maximum(means @ w1[:, :, 0, 0].T + b1, 0) @ w2[:, :, 0, 0].T + b2)))
        y = x * scale[:, None, None, :]
        if project:
            y = y @ wp[:, :, 0, 0].T.astype(np.float64) + bp
        return (y + x if also_reads_x else y).transpose(0, 3, 1, 2)

    return model, exact


@pytest.mark.parametrize("groups", [1, 16], ids=["dense", "depthwise"])
@pytest.mark.parametrize("activation", ["Swish", "HardSwish", "Sigmoid"])
def test_a_squeeze_excite_block_takes_in_the_activated_conv_before_it(activation, groups, monkeypatch):
    # the Conv's activation pass sums each output row's channels as it writes them (the
    # depthwise loop's threads, or the pass after a product): the block's means without a
    # pass of their own; the Conv's output is the block's to write over
    from convlayer.onnx import fused

    model, exact = _activated_squeeze_excite(activation, groups)
    x = np.random.default_rng(12).standard_normal((2, 16, 9, 11)).astype(np.float32)
    loaded = convlayer.onnx.load(model)
    assert [node.op for node in loaded.graph.nodes] == ["SqueezeExcite"]
    assert [part.name for part in loaded.graph.nodes[0].attrs["_parts"]] == ["conv", "pool", "fc1", "fc2", "scale"]
    got = loaded(x)
    want = exact(x)
    # the 3x3 conv sums at most 16 * 9 taps and the bias (145 roundings: under 1e-5 of the
    # sum of magnitudes, here of the order of the largest output), then a few roundings each
    # in the activation and the block: far below any wrong sum or scale
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    monkeypatch.setattr(fused, "fuse", lambda graph, readers: None)
    np.testing.assert_allclose(convlayer.onnx.load(model)(x), got, rtol=1e-5, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("activation, also_reads_x", [("Relu", False), ("Swish", True)])
def test_the_conv_before_a_squeeze_excite_block_stays_apart_when_it_cannot_sum(activation, also_reads_x):
    # a Relu is a clamp inside the convolution's loops (no activation pass to sum in); a
    # later node that reads x needs it as the Conv wrote it
    model, exact = _activated_squeeze_excite(activation, 16, also_reads_x)
    x = np.random.default_rng(13).standard_normal((2, 16, 9, 11)).astype(np.float32)
    loaded = convlayer.onnx.load(model)
    ops = [node.op for node in loaded.graph.nodes]
    assert ops[:2] == ["Conv", "SqueezeExcite"]
    want = exact(x)
    np.testing.assert_allclose(loaded(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# (batch, image, filters of the 1x1 Conv): the scale in each image's weights (one image, or
# images of 576 pixels >= fused.PROJECT_MIN_PIXELS), or x scaled first (a batch of 99-pixel
# images; more filters than pixels)
PROJECTIONS = [(1, (9, 11), 8), (2, (24, 24), 8), (2, (9, 11), 8), (1, (9, 11), 120)]


@pytest.mark.parametrize("n, size, filters", PROJECTIONS, ids=["one-image", "batch", "small-images", "wide"])
def test_a_squeeze_excite_block_takes_in_the_1x1_conv_after_it(n, size, filters, monkeypatch):
    from convlayer.onnx import fused

    shape = (n, 16) + size
    model, exact = _activated_squeeze_excite("Swish", 16, project=filters, shape=shape)
    loaded = convlayer.onnx.load(model)
    assert [node.op for node in loaded.graph.nodes] == ["SqueezeExcite"]
    assert [part.name for part in loaded.graph.nodes[0].attrs["_parts"]] == ["conv", "pool", "fc1", "fc2", "scale",
                                                                             "proj"]
    x = np.random.default_rng(14).standard_normal(shape).astype(np.float32)
    got, want = loaded(x), exact(x)
    assert got.shape == (n, filters) + size
    # the 1x1 Conv's 16 terms after the block's few roundings: values of order 10
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    monkeypatch.setattr(fused, "fuse", lambda graph, readers: None)
    np.testing.assert_allclose(convlayer.onnx.load(model)(x), got, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_a_1x1_conv_after_a_block_whose_output_is_read_elsewhere_stays_apart():
    model, _ = _activated_squeeze_excite("Swish", 16, project=8)
    model.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    loaded = convlayer.onnx.load(model)
    assert [node.op for node in loaded.graph.nodes] == ["SqueezeExcite", "Conv"]


def test_the_summary_shows_the_conv_a_block_took_in():
    from convlayer.onnx import summary

    model, _ = _activated_squeeze_excite("HardSwish", 16)
    rows = summary.rows(convlayer.onnx.load(model), (2, 16, 9, 11))
    assert [(row.op, row.output_shape) for row in rows][:4] == [
        ("Conv", (2, 16, 9, 11)), ("GlobalAveragePool", (2, 16, 1, 1)), ("Conv", (2, 4, 1, 1)), ("Conv", (2, 16, 1, 1))]


def _conv_of(x, weight, bias):
    """The float64 convolution of NCHW x with an OIHW weight, stride 1, no padding."""
    from convlayer import reference

    out = reference.conv2d(x.transpose(0, 2, 3, 1).astype(np.float64), weight.transpose(2, 3, 1, 0), padding=0)
    return out.transpose(0, 3, 1, 2) + bias[:, None, None]


def test_a_conv_node_checks_each_new_input_shape_and_reuses_the_checks_of_one_seen():
    rng = np.random.default_rng(12)
    weight, bias = rng.standard_normal((4, 3, 2, 2)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    model = convlayer.onnx.load(graph_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")],
                                            [("x", None)], [("y", None)], [("w", weight), ("b", bias)]))
    for shape in [(1, 3, 5, 6), (2, 3, 7, 4), (1, 3, 5, 6), (1, 3, 6, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(model(x), _conv_of(x, weight, bias), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channel"):  # a shape that fails the checks fails every time
        model(np.zeros((1, 2, 5, 6), np.float32))
    with pytest.raises(ValueError, match="channel"):
        model(np.zeros((1, 2, 5, 6), np.float32))


def test_a_conv_whose_weights_are_an_input_is_checked_with_each_call_s_weights():
    rng = np.random.default_rng(13)
    model = convlayer.onnx.load(graph_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                                            [("x", (1, 3, 5, 6)), ("w", None)], [("y", None)]))
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    for k in (4, 2, 4):
        weight = rng.standard_normal((k, 3, 2, 2)).astype(np.float32)
        np.testing.assert_allclose(model.run({"x": x, "w": weight})["y"], _conv_of(x, weight, np.zeros(k)),
                                   rtol=1e-5, atol=1e-5)
