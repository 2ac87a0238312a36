"""``convlayer bench MODEL.onnx``: a whole model on convlayer against the peers installed.

Peers: onnxruntime (2 intra-op threads, the CPU provider), the onnx package's
ReferenceEvaluator (NumPy, written for clarity; slow, so it gets one timed run), and
PyTorch eager (2 threads) when a torchvision model of the same architecture is named. Each
runs on the same input, batch by batch, in runs rotating between contenders as
:func:`.timing.time_calls` makes them (a pause, warm calls, then timed calls), and the
*fastest* call counts, not the median: on the shared 2-core machine this was measured on,
a 2-thread call that loses a time slice to another tenant takes 10-20x longer (PyTorch's
resnet18 layer of 1 ms took 21 ms every other run), and the fastest call is the one that
did not. Compare the ratios, not the milliseconds.
"""

from __future__ import annotations

import time

import numpy as np

from .libraries import TORCH_THREADS
from . import timing

THREADS = 2  # intra-op threads for onnxruntime and PyTorch, as for the other suites


def _onnxruntime(path: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _reference(path: str):
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(path)
    name = evaluator.input_names[0]
    return lambda x: evaluator.run(None, {name: x})


def _torchvision(name: str):
    import sys
    import types

    import torch

    stub = "torchvision._meta_registrations"  # a CPU torch lacks torchvision's compiled ops
    sys.modules.setdefault(stub, types.ModuleType(stub))
    import torchvision

    torch.set_num_threads(TORCH_THREADS)
    model = getattr(torchvision.models, name)(weights=None).eval()

    def call(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))
    return call


def contenders(path: str, *, torchvision: "str | None" = None, reference: bool = True) -> dict:
    """name -> call(x) for convlayer and each peer that imports; missing peers are skipped."""
    from .. import onnx as convlayer_onnx

    model = convlayer_onnx.load(path)
    calls = {"convlayer": model}
    makers = [("onnxruntime", lambda: _onnxruntime(str(path)))]
    if torchvision:
        makers.append(("torch", lambda: _torchvision(torchvision)))
    if reference:
        makers.append(("reference", lambda: _reference(str(path))))
    for name, make in makers:
        try:
            calls[name] = make()
        except ImportError:
            continue
    return calls


def fastest_calls(calls: dict, reps_time: float) -> dict:
    """The fastest of each callable's calls, in runs rotating between them until each has
    had ``reps_time`` seconds (at least ``timing.MIN_ROUNDS`` runs)."""
    names = list(calls)
    samples = {name: [] for name in names}
    for call in calls.values():
        call()  # first-call costs: compilation, thread pools
    for round_ in range(timing.MAX_ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if round_ < timing.MIN_ROUNDS or sum(samples[name]) < reps_time:
                samples[name].extend(timing._run(calls[name]))
        if round_ + 1 >= timing.MIN_ROUNDS and min(sum(s) for s in samples.values()) >= reps_time:
            break
    return {name: min(values) for name, values in samples.items()}


def run_model(path, batches=(1, 8), *, torchvision=None, reference=True, reps_time=1.0, seed=0) -> list:
    """Rows ``{'batch', '<contender>': seconds, ...}`` for the model at ``path``."""
    calls = contenders(path, torchvision=torchvision, reference=reference)
    declared = calls["convlayer"].graph.inputs[0].shape
    rows = []
    for batch in batches:
        x = np.random.default_rng(seed).standard_normal((batch,) + tuple(declared[1:])).astype(np.float32)
        timed = {name: (lambda call=call: call(x)) for name, call in calls.items() if name != "reference"}
        row = {"batch": batch, **fastest_calls(timed, reps_time)}
        if "reference" in calls:  # one run: it takes seconds where the others take milliseconds
            start = time.perf_counter()
            calls["reference"](x)
            row["reference"] = time.perf_counter() - start
        rows.append(row)
    return rows


def table(name: str, rows: list) -> str:
    """The rows as text: milliseconds per contender and convlayer's ratio to each."""
    peers = [key for key in rows[0] if key not in ("batch", "convlayer")]
    lines = [f"{name}: milliseconds per call (fastest), convlayer's time over each peer's"]
    for row in rows:
        cells = [f"batch {row['batch']}", f"convlayer {row['convlayer'] * 1e3:.1f}"]
        cells += [f"{peer} {row[peer] * 1e3:.1f} (x{row['convlayer'] / row[peer]:.2f})" for peer in peers]
        lines.append("  ".join(cells))
    return "\n".join(lines)
