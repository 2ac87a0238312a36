"""Shared test helpers."""

from typing import NamedTuple

import numpy as np
import pytest

from convlayer import bench


def _work_memory(call):
    """Run ``call()``; return (peak bytes traced beyond the arrays it returns, its result).

    NumPy reports its allocations to tracemalloc, so this is the work memory the call used
    (:func:`convlayer.bench.work_memory`, which also gives back the kept work buffer first).
    ``call`` runs once untraced before, so lazy imports (SciPy's FFT) and thread pools are
    not counted.
    """
    call()
    return bench.work_memory(call)


@pytest.fixture
def ctrl_c_reaches_children():
    """Ctrl-C reaches the test's child processes as in a terminal: SIGINT at its default in
    this process while the test runs (restored after), so a child Python raises
    KeyboardInterrupt on it.

    A test run started as a background job without job control (``make test &`` from a
    script) inherits SIGINT ignored, and Python keeps an inherited "ignored": a child
    started from it then never sees the Ctrl-C a test sends (it wrote every image and
    exited 0, in such runs only; under ``timeout``, which catches SIGINT itself, the run
    starts with it at the default again, which is why it came and went).
    """
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def work_memory():
    """``used, result = work_memory(call)``: see :func:`_work_memory`."""
    return _work_memory


# ----------------------------------------------------------------------------- float32 forward bound

U32 = 2.0**-24  # unit roundoff of float32


def _terms(layer) -> int:
    """How many rounded terms each output value of ``layer`` sums (0: exact in float32)."""
    from convlayer import nn

    if isinstance(layer, nn.Conv2D):  # every kind of sharing: one kernel's taps per output
        fh, fw = layer.kernel_size
        return fh * fw * layer.in_channels // layer.options["groups"] + layer.bias
    if isinstance(layer, nn.Conv2DTranspose):  # at most every tap of every input channel per output
        fh, fw = layer.kernel_size
        return fh * fw * layer.in_channels // layer.transpose_options["groups"] + layer.bias
    if isinstance(layer, nn.Dense):
        return layer.in_features + layer.bias
    if isinstance(layer, nn.AvgPool2D):  # the window's sum, then one division
        fh, fw = (layer.pool_size, layer.pool_size) if isinstance(layer.pool_size, int) else layer.pool_size
        return fh * fw + 1
    if isinstance(layer, nn.LPPool2D):  # float64 throughout, rounded once
        return 1
    if isinstance(layer, nn.BatchNorm2D):  # x * scale + shift, scale and shift rounded once
        return 3
    if isinstance(layer, nn.Add):
        return 1
    if isinstance(layer, nn.Concat):
        return 0
    if isinstance(layer, (nn.ReLU, nn.MaxPool2D, nn.Flatten, nn.Dropout, nn.AdaptiveMaxPool2D, nn.GlobalMaxPool2D,
                          nn.MaxUnpool2D)):
        return 0  # picks, copies or (at inference) the identity: no rounding
    raise TypeError(f"no float32 error count for {layer!r}; add one to tests/conftest.py")


def _float64_forward(model, x, absolute=False):
    """``model.forward(x)`` in float64 on a copy; with ``absolute``, on |x|, |W| and |b|."""
    import copy

    wide = copy.deepcopy(model)
    for layer in wide.layers:
        layer.params = {name: (np.abs(p) if absolute else p).astype(np.float64)
                        for name, p in layer.params.items()}
    x = np.asarray(x, np.float64)
    return wide.forward(np.abs(x) if absolute else x)


class ExactForward(NamedTuple):
    """The float64 forward pass and, per value, how far a float32 one may stray from it."""

    exact: np.ndarray
    bound: np.ndarray

    def check(self, got, label="") -> None:
        """Assert ``|got - exact| <= bound`` everywhere; name the worst value if not."""
        assert got.shape == self.exact.shape, (label, got.shape, self.exact.shape)
        error = np.abs(np.asarray(got, np.float64) - self.exact)
        worst = np.unravel_index(np.argmax(error - self.bound), error.shape)
        assert error[worst] <= self.bound[worst], (
            f"{label} at {worst}: |{got[worst]} - {self.exact[worst]}| = {error[worst]:.3g} exceeds "
            f"the float32 bound {self.bound[worst]:.3g}")


def _exact_forward(model, x) -> ExactForward:
    """The float64 forward pass and how far a float32 one may stray from it, per value.

    Each layer's float32 sum of n products errs by at most gamma_n = n u / (1 - n u) times
    the sum of |terms| (Higham, Accuracy and Stability, 3.1). ReLU and max-pool are monotone
    and 1-Lipschitz, the linear layers carry an error through |W|, so to first order the
    output errs by at most (sum over layers of n_l) * u times the same network run in float64
    on |x|, |W| and |b|: the bound is elementwise. It holds for any summation order, block
    plan or batch size (not for FFT or Winograd, whose error spreads over the whole output).
    The factor 2 covers 1 / (1 - n u) and the second-order terms (both below 1e-3 of the
    bound for n < 10**4) and the float64 reference's own rounding (2**-29 of it). A wrong tap,
    a lost bias or dropout left on moves a value by O(1) of its |terms| and still fails.
    """
    terms = sum(_terms(layer) for layer in model.layers)
    bound = 2 * terms * U32 * _float64_forward(model, x, absolute=True)
    return ExactForward(_float64_forward(model, x), bound)


@pytest.fixture
def exact_forward():
    """``exact_forward(model, x).check(got)``: see :func:`_exact_forward`."""
    return _exact_forward


# ----------------------------------------------------------------------------- Hypothesis profiles

try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is a test extra; only test_properties.py needs it
    pass
else:
    import os as _os

    # "ci" (the default): the same examples on every run, few enough that tests/test_properties.py
    # takes about a minute on 2 cores. "fuzz" (HYPOTHESIS_PROFILE=fuzz, `make fuzz`): fresh
    # random examples each run, many more of them.
    _hypothesis_settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None,
                                          print_blob=True)
    _hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True)
    _hypothesis_settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ----------------------------------------------------------------------------- ONNX models


def _script(path):
    """The Python file at ``path`` (a script of examples/ or benchmarks/) imported as a module."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script():
    """``module = script(path)``: a script that is not part of the package, imported."""
    return _script


@pytest.fixture(scope="session")
def torchvision():
    """torchvision beside the CPU torch, without its compiled operators' meta registrations
    (``import torchvision`` registers them and fails on a CPU build; building a model never
    calls them: see benchmarks/record_networks.py)."""
    import sys
    import types

    pytest.importorskip("torch")
    name = "torchvision._meta_registrations"
    sys.modules.setdefault(name, types.ModuleType(name))
    return pytest.importorskip("torchvision")


def _onnx_terms(node, shapes) -> int:
    """How many rounded terms each output of one ONNX node sums (see :func:`_onnx_bound`)."""
    op, x = node.op, shapes[0] if shapes else ()
    if op in ("Conv", "ConvTranspose"):
        fh, fw, per_group, _ = node.attrs["_kernel"].shape
        channels = per_group if op == "Conv" else x[-1] // node.attrs.get("group", 1)
        return fh * fw * channels + 2  # the taps, the bias, a folded batch norm's rounding
    if op in ("Gemm", "MatMul"):
        return x[0 if node.attrs.get("transA", 0) else -1] + 2
    if op == "AveragePool":
        return int(np.prod(node.attrs["kernel_shape"])) + 1
    if op == "GlobalAveragePool":
        return x[1] * x[2] + 1  # channels-last inside
    if op == "ReduceMean":
        return int(np.prod(x)) + 1
    if op == "Softmax":  # exp of x - max (relative error <= 1/e + 2 ulp), the sum, a division
        return x[node.attrs.get("axis", -1)] + 5
    return {"BatchNormalization": 3, "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Sigmoid": 4, "Swish": 4, "HardSigmoid": 2,
            "HardSwish": 4, "LeakyRelu": 1, "Resize": 4}.get(op, 0)


_ABS_OPS = {  # |.| networks that dominate the op and its error (first order)
    "Sigmoid": lambda x: 0.5 + x / 4,  # sigma(x) <= 1/2 + |x|/4, and it is 1/4-Lipschitz
    "HardSigmoid": lambda x: 0.5 + x / 4,
    "Swish": lambda x: x * (0.5 + x / 4),  # x sigma(x), its rounding relative to that
    "HardSwish": lambda x: x * (0.5 + x / 6),
    "LeakyRelu": lambda x: x,
    "Clip": lambda x: x,
}


def _wide(graph, transform):
    """A copy of a prepared graph with ``transform`` applied to its float weights."""
    import copy

    graph = copy.deepcopy(graph)
    for name, value in graph.constants.items():
        if np.issubdtype(value.dtype, np.floating):
            graph.constants[name] = transform(value).astype(np.float64)
    for node in _unfused(graph.nodes):
        if node.op == "Conv" and node.inputs[1] in graph.constants:  # the float64 (folded) weights
            node.attrs["_kernel"] = np.transpose(graph.constants[node.inputs[1]], (2, 3, 1, 0))
            if "_bias" in node.attrs:
                node.attrs["_bias"] = graph.constants[node.inputs[2]]
        for key in ("_kernel", "_weights"):
            if key in node.attrs:
                node.attrs[key] = transform(node.attrs[key]).astype(np.float64)
    return graph


def _unfused(nodes) -> list:
    """The nodes with each fused node (a squeeze-excite block, convlayer.onnx.fused) replaced
    by the nodes it was made of, in order: the per-node check bounds each of those; that the
    fused node gives their values exactly is tested in test_onnx_load."""
    return [part for node in nodes for part in node.attrs.get("_parts", [node])]


def _rounded(value):
    array, flag = value
    if array is not None and np.issubdtype(np.asarray(array).dtype, np.floating):
        array = np.asarray(array).astype(np.float32)
    return array, flag


def _onnx_check(model, x):
    """Check every node of a loaded ONNX model against its float32 error bound; return the
    float64 run's outputs.

    The graph runs in float64 (the exact chain). At each node, the float32 node runs on its
    inputs rounded to float32, and must equal the float64 node on those same rounded inputs
    within 2 * n * 2**-24 times the node run in float64 on |inputs| and |weights| (n: the
    terms each output sums, see :func:`_onnx_terms`; a batch norm as its |scale| and
    |shift|, Sub as Add, a sigmoid as 1/2 + |x|/4, which dominates it and its slope). This
    is Higham's componentwise bound for one op, as :func:`_exact_forward` applies it to a
    whole Sequential; across a deep random network that product of |weights| grows
    without bound, so it is applied node by node, and the chain is checked in float64.
    """
    from convlayer.onnx.model import _run_node

    exact, absolute = _wide(model.graph, lambda v: v), _wide(model.graph, np.abs)
    values = {name: (value, False) for name, value in exact.constants.items()}
    values[exact.inputs[0].name] = (np.asarray(x, np.float64), False)
    for node, node64, node_abs in zip(*(_unfused(graph.nodes) for graph in (model.graph, exact, absolute))):
        inputs = [values[name] if name else (None, False) for name in node.inputs]
        rounded = [_rounded(value) for value in inputs]
        got, flag = _run_node(node, rounded)
        want, _ = _run_node(node64, [(None if a is None else np.asarray(a).astype(np.float64)
                                      if np.issubdtype(np.asarray(a).dtype, np.floating) else a, f)
                                     for a, f in rounded])
        bound = _node_bound(node, node_abs, absolute, model.graph.constants, rounded)
        for name, g, w, b in zip(node.outputs, got, want, bound):
            error = np.abs(np.asarray(g, np.float64) - w)
            assert np.all(error <= b), (node.name, node.op, float(np.max(error - b)))
        results, flag = _run_node(node64, inputs)
        for name, result in zip(node.outputs, results):
            values[name] = (result, flag)
    outs = {}
    for tensor in exact.outputs:
        out, flag = values[tensor.name]
        outs[tensor.name] = np.transpose(out, (0, 3, 1, 2)) if flag else out
    return outs


def _node_bound(node, node_abs, absolute, original, rounded):
    """2 n u times the node on |inputs| and |weights| (see :func:`_onnx_check`)."""
    from convlayer.onnx.model import _run_node

    terms = _onnx_terms(node, [np.shape(a) for a, _ in rounded if a is not None])
    if terms == 0:
        return [0.0] * len(node.outputs)
    _absolute(node_abs, absolute, original)
    wide = [(None if a is None else np.abs(a).astype(np.float64) if np.issubdtype(np.asarray(a).dtype, np.floating)
             else a, f) for a, f in rounded]
    if node_abs.op == "BatchNormalization":
        wide[1:5] = [(absolute.constants[name], False) for name in node_abs.inputs[1:5]]
    if node_abs.op == "Softmax":  # positive, and the error is relative to itself
        wide[0] = (np.asarray(rounded[0][0], np.float64), rounded[0][1])
    if node_abs.op in _ABS_OPS:
        results = [_ABS_OPS[node_abs.op](wide[0][0])]
    else:
        results, _ = _run_node(node_abs, wide)
    return [2 * terms * U32 * r for r in results]


def _absolute(node, graph, original) -> None:
    """Make one prepared node compute on |weights|: the |.| network of :func:`_onnx_check`."""
    from convlayer import normalization

    if node.op == "Sub":
        node.op = "Add"
    if node.op == "BatchNormalization" and not node.inputs[1].endswith("/abs/g"):
        consts, eps = graph.constants, node.attrs.get("epsilon", 1e-5)
        gamma, beta, mean, variance = (original[n] for n in node.inputs[1:5])
        scale, shift = normalization.affine(mean, variance, gamma, beta, eps)
        tag = node.name + "/abs"
        consts[tag + "/g"], consts[tag + "/b"] = np.abs(scale), np.abs(shift)
        consts[tag + "/m"], consts[tag + "/v"] = np.zeros_like(scale), np.full_like(scale, 1 - eps)
        node.inputs = [node.inputs[0], tag + "/g", tag + "/b", tag + "/m", tag + "/v"]


@pytest.fixture
def onnx_check():
    """``outputs64 = onnx_check(model, x)``: see :func:`_onnx_check`."""
    return _onnx_check
