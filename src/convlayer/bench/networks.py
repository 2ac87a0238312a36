"""``convlayer bench --suite networks``: the convolutional layers of real networks, against PyTorch.

The layers come from ``networks.json`` (package data, recorded from ten torchvision models
at 1x3x224x224 by ``benchmarks/record_networks.py``): each distinct ``Conv2d`` configuration
once, and per model the layers it runs and how many times. A layer that several of the
chosen models share is timed once per batch size.

For each layer and batch size (1 and 8 by default) four contenders run on the same float32
data in this process, timed as the shapes suite times them (:func:`~.timing.time_calls`:
pauses, rotating order, medians), the forward pass and then the backward pass:

- ``convlayer_cl``: ``conv2d``, channels-last (NHWC x, HWIO kernel), ``algorithm="auto"``;
- ``convlayer_cf``: ``conv2d(..., data_format="channels_first")`` (NCHW x, OIHW kernel);
- ``torch_nchw`` and ``torch_cl``: PyTorch (``TORCH_THREADS`` threads) in its two memory
  formats, called as the model calls it, with its own ``padding`` argument (the shapes suite
  pads beforehand, because PyTorch's 'same' refuses strides; a recorded layer's padding is
  PyTorch's own, so PyTorch pads here as it does in the model).

The bias is passed on both sides when the layer has one. Backward: ``conv2d_backward`` in both
layouts against ``aten.convolution_backward``, which computes the input and kernel gradients,
and the bias's when the layer has one (``conv2d_backward`` always returns the bias's, a sum
over the output gradient).

A row gives ``ratio`` (conv/torch: convlayer channels-last / the better PyTorch layout),
``cf_nchw`` (convlayer channels_first / PyTorch NCHW, the same layout on both sides) and
``cf_cl`` (convlayer channels_first / channels-last), and flags a ratio or cf_nchw above
:data:`SLOW` and a cf_cl above :data:`CF_SLOW`. Per model, :func:`model_totals` adds up
count x median for each contender; PyTorch's total is the better of its two layouts' totals
(a model runs in one memory format). Geometric means are over the distinct layers, once each.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import numpy as np

from ..algorithms import compiled
from ..functional import conv2d, conv2d_backward
from ..shapes import conv2d_output_shape
from .cases import Layer, layer_inputs
from .libraries import TORCH_THREADS, torch_peer
from .suite import auto_choice, environment, environment_line, geometric_mean
from .timing import time_calls

SLOW = 2.0  # a layer slower than PyTorch by more than this is flagged
CF_SLOW = 1.2  # and channels_first slower than channels-last by more than this
BATCHES = (1, 8)
CONTENDERS = ("convlayer_cl", "convlayer_cf", "torch_nchw", "torch_cl")


def recorded() -> dict:
    """The shipped JSON: ``{"layers": [record, ...], "models": {name: [[index, count], ...]}}``."""
    return json.loads(resources.files(__package__).joinpath("networks.json").read_text())


def select(data: dict, models=None, only: "str | None" = None):
    """``(counts, layers)``: each chosen model's ``[(index, count), ...]``, and the distinct
    layers they run by index, those whose name contains ``only`` (all when None).

    Raises ValueError on a model that is not recorded, or when no layer's name contains ``only``.
    """
    names = list(data["models"])
    models = names if models is None else list(dict.fromkeys(models))
    for model in models:
        if model not in data["models"]:
            raise ValueError(f"unknown model {model!r}; the recorded models are {', '.join(names)}")
    counts = {model: [(index, count) for index, count in data["models"][model]] for model in models}
    layers = {index: Layer.from_record(data["layers"][index]) for model in models for index, _ in counts[model]}
    layers = {index: layer for index, layer in sorted(layers.items()) if only is None or only in layer.name}
    if not layers:
        raise ValueError(f"no layer of {', '.join(models)} contains {only!r}")
    return counts, layers


def _channels_first(x: np.ndarray, kernel: np.ndarray):
    """NCHW and OIHW copies of a channels-last x and HWIO kernel."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def forward_row(layer: Layer, n: int, rng: np.random.Generator, reps_time: float, torch=None) -> dict:
    """Time one layer's forward pass at batch ``n``: convlayer in both layouts, PyTorch in both."""
    x, kernel, bias = layer_inputs(layer, n, rng)
    x_cf, kernel_cf = _channels_first(x, kernel)
    calls = {"convlayer_cl": lambda: conv2d(x, kernel, bias, **layer.options),
             "convlayer_cf": lambda: conv2d(x_cf, kernel_cf, bias, **layer.options,
                                            data_format="channels_first")}
    if torch is not None:
        calls.update(torch.layer_forward(layer, x_cf, kernel_cf, bias))
    algorithm, why = auto_choice(layer, x, kernel)
    return dict(shape=layer.name, batch=n, algorithm=algorithm, why=why,
                **layer_ratios({name: value * 1e3 for name, value in time_calls(calls, reps_time).items()}))


def backward_row(layer: Layer, n: int, rng: np.random.Generator, reps_time: float, torch=None) -> dict:
    """Time one layer's gradients at batch ``n``, as :func:`forward_row` times its forward pass."""
    x, kernel, _ = layer_inputs(layer, n, rng)
    grad = rng.standard_normal(conv2d_output_shape(x.shape, kernel.shape, **layer.options), dtype=np.float32)
    x_cf, kernel_cf = _channels_first(x, kernel)
    grad_cf = np.ascontiguousarray(grad.transpose(0, 3, 1, 2))
    calls = {"convlayer_cl": lambda: conv2d_backward(grad, x, kernel, **layer.options),
             "convlayer_cf": lambda: conv2d_backward(grad_cf, x_cf, kernel_cf, **layer.options,
                                                     data_format="channels_first")}
    if torch is not None:
        calls.update(torch.layer_backward(layer, x_cf, kernel_cf, grad_cf))
    return dict(shape=layer.name, batch=n,
                **layer_ratios({name: value * 1e3 for name, value in time_calls(calls, reps_time).items()}))


def layer_ratios(ms: dict) -> dict:
    """One layer's medians ``ms`` with its ratios and flags (see the module's notes).

    >>> row = layer_ratios({"convlayer_cl": 3.0, "convlayer_cf": 4.5, "torch_nchw": 2.0, "torch_cl": 1.0})
    >>> row["ratio"], row["cf_nchw"], row["cf_cl"], row["flags"]
    (3.0, 2.25, 1.5, ['conv/torch>2', 'cf/nchw>2', 'cf/cl>1.2'])
    """
    row = dict(ms=ms, cf_cl=ms["convlayer_cf"] / ms["convlayer_cl"])
    if "torch_nchw" in ms and "torch_cl" in ms:
        row["torch_ms"] = min(ms["torch_nchw"], ms["torch_cl"])
        row["ratio"] = ms["convlayer_cl"] / row["torch_ms"]
        row["cf_nchw"] = ms["convlayer_cf"] / ms["torch_nchw"]
    row["flags"] = [flag for flag, key, limit in _FLAGS if row.get(key, 0) > limit]
    return row


_FLAGS = [(f"conv/torch>{SLOW:g}", "ratio", SLOW), (f"cf/nchw>{SLOW:g}", "cf_nchw", SLOW),
          (f"cf/cl>{CF_SLOW:g}", "cf_cl", CF_SLOW)]


def model_totals(ms_by_layer: dict, counts) -> dict:
    """One model's sum of count x median per contender, over its layers that were timed.

    ``ms_by_layer`` maps a layer's index to its medians; ``counts`` is the model's
    ``[(index, count), ...]``. ``calls`` counts the timed calls, ``of`` all of them.

    >>> ms = {0: dict(convlayer_cl=2.0, convlayer_cf=3.0, torch_nchw=1.0, torch_cl=4.0),
    ...       1: dict(convlayer_cl=1.0, convlayer_cf=1.0, torch_nchw=2.0, torch_cl=1.0)}
    >>> totals = model_totals(ms, [(0, 3), (1, 2), (7, 1)])
    >>> totals["calls"], totals["of"], totals["convlayer_cl"], totals["torch_nchw"], totals["torch_cl"]
    (5, 6, 8.0, 7.0, 14.0)
    >>> totals["torch"], totals["ratio"], round(totals["cf_ratio"], 4)
    (7.0, 1.1428571428571428, 1.5714)
    """
    timed = [(index, count) for index, count in counts if index in ms_by_layer]
    totals: dict = dict(calls=sum(count for _, count in timed), of=sum(count for _, count in counts))
    for name in CONTENDERS:
        if timed and all(name in ms_by_layer[index] for index, _ in timed):
            totals[name] = sum(count * ms_by_layer[index][name] for index, count in timed)
    if "torch_nchw" in totals and "torch_cl" in totals:
        totals["torch"] = min(totals["torch_nchw"], totals["torch_cl"])
        totals["ratio"] = totals["convlayer_cl"] / totals["torch"]
        totals["cf_ratio"] = totals["convlayer_cf"] / totals["torch"]
    return totals


def summarise(rows) -> dict:
    """Geometric means of the rows' ratios (each layer once) and how many rows each flag marks.

    >>> s = summarise([dict(ratio=2.0, cf_nchw=1.0, cf_cl=1.0, flags=[]),
    ...                dict(ratio=0.5, cf_nchw=4.0, cf_cl=1.3, flags=["cf/nchw>2", "cf/cl>1.2"])])
    >>> s["ratio"], s["cf_nchw"], round(s["cf_cl"], 4), s["flagged"]
    (1.0, 2.0, 1.1402, {'cf/nchw>2': 1, 'cf/cl>1.2': 1})
    """
    return dict(layers=len(rows), **{key: geometric_mean(row.get(key) for row in rows)
                                     for key in ("ratio", "cf_nchw", "cf_cl")},
                flagged=dict(Counter(flag for row in rows for flag in row["flags"])))


def run_networks(models=None, batches=BATCHES, only: "str | None" = None, reps_time: float = 0.3,
                 backward: bool = True, echo=print) -> dict:
    """Run the networks suite; ``echo`` each table line as it is ready; return everything measured.

    ``models``: names from the JSON (default all); ``only``: only the layers whose name
    contains it. Raises ValueError on an unknown model, a batch size below 1 or a filter
    that leaves no layer, before anything is timed.
    """
    counts, layers = select(recorded(), models, only)
    if not batches or any(int(n) != n or n < 1 for n in batches):
        raise ValueError(f"batch sizes must be positive integers; got {list(batches)}")
    torch = torch_peer()
    results: dict = dict(environment=environment({"torch": torch} if torch else {}), models=counts,
                         sections=[])
    echo(environment_line(results["environment"]))
    calls = sum(count for pairs in counts.values() for _, count in pairs)
    echo(f"{len(layers)} distinct layers of {len(counts)} models ({calls} Conv2d calls at batch 1)")
    rng = np.random.default_rng(0)
    for part in ("forward", "backward") if backward else ("forward",):
        for n in batches:
            results["sections"].append(_section(part, n, layers, counts, rng, reps_time, torch, echo))
    results["compile_seconds"] = compiled.compile_seconds()
    echo(_closing(results))
    return results


def _section(part, n, layers, counts, rng, reps_time, torch, echo) -> dict:
    """One pass at one batch size: a row per layer, then the per-model totals."""
    time_row = forward_row if part == "forward" else backward_row
    echo(_header(part, n))
    rows = []
    for index, layer in layers.items():
        rows.append(dict(layer=index, **time_row(layer, n, rng, reps_time, torch)))
        echo(_layer_line(rows[-1]))
    ms_by_layer = {row["layer"]: row["ms"] for row in rows}
    section = dict(part=part, batch=n, rows=rows, **summarise(rows),
                   totals={model: model_totals(ms_by_layer, pairs) for model, pairs in counts.items()})
    echo(_totals_lines(section))
    return section


_NAME = 34


def _cell(row: dict, key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else format("-", spec.split(".")[0].rstrip("f") + "s")


def _header(part: str, n: int) -> str:
    return (f"\n{f'{part}, batch {n}':<{_NAME}} {'cl ms':>9} {'cf ms':>9} {'torch ms':>9} "
            f"{'conv/torch':>10} {'cf/nchw':>8} {'cf/cl':>6}  {'auto':<10} flags")


def _layer_line(row: dict) -> str:
    ms = row["ms"]
    return (f"{row['shape']:<{_NAME}} {ms['convlayer_cl']:>9.3f} {ms['convlayer_cf']:>9.3f} "
            f"{_cell(row, 'torch_ms', '>9.3f')} {_cell(row, 'ratio', '>10.2f')} "
            f"{_cell(row, 'cf_nchw', '>8.2f')} {row['cf_cl']:>6.2f}  {row.get('algorithm', ''):<10} "
            + " ".join(row["flags"])).rstrip()


def _totals_lines(section: dict) -> str:
    lines = [f"per model, {section['part']}, batch {section['batch']}: sum of count x median, ms",
             f"  {'model':<20} {'calls':>7} {'convlayer cl':>12} {'convlayer cf':>12} {'torch':>9} "
             f"{'conv/torch':>10} {'cf/torch':>8}"]
    for model, totals in section["totals"].items():
        calls = f"{totals['calls']}" if totals["calls"] == totals["of"] else f"{totals['calls']}/{totals['of']}"
        if not totals["calls"]:
            lines.append(f"  {model:<20} {calls:>7}  (no layer timed)")
            continue
        lines.append(f"  {model:<20} {calls:>7} {totals['convlayer_cl']:>12.3f} "
                     f"{totals['convlayer_cf']:>12.3f} "
                     f"{_cell(totals, 'torch', '>9.3f')} {_cell(totals, 'ratio', '>10.2f')} "
                     f"{_cell(totals, 'cf_ratio', '>8.2f')}")
    flagged = ", ".join(f"{count} {flag}" for flag, count in section["flagged"].items()) or "none"
    lines.append(f"geometric mean over {section['layers']} layers: conv/torch {section['ratio']:.2f}, "
                 f"cf/nchw {section['cf_nchw']:.2f}, cf/cl {section['cf_cl']:.2f}; flagged: {flagged}")
    return "\n".join(lines)


def _closing(results: dict) -> str:
    sections = results["sections"]
    heads = [f"{'fwd' if s['part'] == 'forward' else 'bwd'} b{s['batch']}" for s in sections]
    lines = ["", "conv/torch per model (total convlayer channels-last / total torch, its better layout):",
             f"  {'model':<20} " + " ".join(f"{head:>8}" for head in heads)]
    for model in results["models"]:
        ratios = (_cell(section["totals"][model], "ratio", ">8.2f") for section in sections)
        lines.append(f"  {model:<20} " + " ".join(ratios))
    lines.append(f"  {'geomean of layers':<20} " + " ".join(f"{s['ratio']:>8.2f}" for s in sections))
    lines += ["conv/torch = convlayer channels-last / the better of torch NCHW and channels_last "
              f"({TORCH_THREADS} threads); cf/nchw = convlayer channels_first / torch NCHW;",
              f"cf/cl = convlayer channels_first / channels-last; below 1: convlayer is faster; flagged: "
              f"conv/torch or cf/nchw above {SLOW:g}, cf/cl above {CF_SLOW:g}"]
    if "numba" in results["environment"]:
        lines.append(f"compiled loops: {results['compile_seconds']:.1f} s compiling them (or loading them "
                     "from Numba's cache) in the warm-up calls, not timed")
    return "\n".join(lines)
