"""The performance suite: ``conv2d`` and ``conv2d_backward`` against their peers, shape by shape.

For each shape of the speed issue's suite (float32, channels-last), every contender runs
on the same data in this process: convlayer (``algorithm="auto"``), PyTorch when it can be
imported (``torch.nn.functional.conv2d`` with 2 threads, the better of NCHW and
channels_last), SciPy for the single-channel shapes (``scipy.signal.correlate``, which picks
direct or FFT itself), and once, on the smallest shape, the tutorial's plain loops
(:func:`convlayer.reference.conv2d`). The backward pass (input and kernel gradients) is
timed against ``torch.ops.aten.convolution_backward``, PyTorch's own gradient kernel.

Timing: after a warm-up call, rounds of a few consecutive calls per contender, the order
rotating from round to round, until each contender has had about ``reps_time`` seconds;
the median call counts. Runs of consecutive calls, not single calls interleaved: NumPy's
OpenBLAS and PyTorch keep their idle threads spinning for a while after each call, and a
contender that starts while the other library's threads spin loses a core. Compare the
ratios, not the milliseconds: a shared machine's speed drifts. Peak work memory is
measured with :mod:`tracemalloc` in one more call (what conv2d allocates beyond its output).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
import tracemalloc
from typing import Callable, NamedTuple

import numpy as np

from . import _validate, reference
from .algorithms import choose
from .functional import conv2d, conv2d_backward

TORCH_THREADS = 2
RUN = 3  # consecutive calls per contender and round
MIN_ROUNDS, MAX_ROUNDS = 2, 30


class Case(NamedTuple):
    """One shape of the suite: ``n x h x w x c -> k``, an ``f x f`` kernel."""

    n: int
    h: int
    w: int
    c: int
    k: int
    f: int
    strides: int = 1
    padding: str = "same"
    groups: int = 1

    @property
    def name(self) -> str:
        text = f"{self.n}x{self.h}x{self.w}x{self.c}->{self.k} {self.f}x{self.f}"
        text += f" s{self.strides}" if self.strides > 1 else ""
        text += f" {self.padding}" if self.padding != "same" else ""
        return text + (f" g{self.groups}" if self.groups > 1 else "")

    @property
    def options(self) -> dict:
        return dict(strides=self.strides, padding=self.padding, groups=self.groups)


SUITE = [
    Case(1, 512, 512, 3, 2, 3),  # the tutorial's demo
    Case(1, 1024, 1024, 1, 1, 3),
    Case(1, 256, 256, 1, 1, 31),
    Case(8, 56, 56, 64, 64, 3),
    Case(8, 28, 28, 128, 128, 3),
    Case(8, 14, 14, 256, 256, 3),
    Case(8, 56, 56, 256, 64, 1, padding="valid"),
    Case(8, 224, 224, 3, 64, 7, strides=2),
    Case(8, 112, 112, 32, 32, 3, groups=32),
    Case(64, 8, 8, 1, 16, 3),
]


def inputs(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """float32 x (n, h, w, c) and kernel (f, f, c // groups, k)."""
    x = rng.standard_normal((case.n, case.h, case.w, case.c), dtype=np.float32)
    kernel = rng.standard_normal((case.f, case.f, case.c // case.groups, case.k), dtype=np.float32)
    return x, kernel


def time_calls(calls: "dict[str, Callable]", reps_time: float) -> dict[str, float]:
    """Median seconds per call of each callable (see the module's notes on timing)."""
    names = list(calls)
    samples: dict = {name: [] for name in names}
    for call in calls.values():
        call()  # warm-up: first-call costs (imports, thread pools, caches) are not counted
    for round_ in range(MAX_ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(RUN):
                start = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - start)
        if round_ + 1 >= MIN_ROUNDS and min(sum(s) for s in samples.values()) >= reps_time:
            break
    return {name: statistics.median(values) for name, values in samples.items()}


def work_memory(call: Callable[[], object]) -> int:
    """Peak bytes that ``call()`` allocates beyond what it returns (tracemalloc)."""
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in (result if isinstance(result, tuple) else (result,)))
    return max(peak - returned, 0)


def auto_choice(case: Case, x: np.ndarray, kernel: np.ndarray) -> tuple[str, str]:
    """What ``algorithm="auto"`` picks for this shape, and why."""
    args = _validate.conv_args(x, kernel, None, **case.options, dilation=1, flip=False,
                               pad_mode="constant", data_format="channels_last")
    return choose.auto_choice(args.x, args.kernel, args.geom)


def forward_row(case: Case, rng: np.random.Generator, reps_time: float, peers: dict,
                every_algorithm: bool = False) -> dict:
    """Time one shape's forward pass against the peers; return a result row.

    ``every_algorithm``: also time each explicit algorithm that can compute the shape.
    """
    x, kernel = inputs(case, rng)
    calls = {"convlayer": lambda: conv2d(x, kernel, **case.options)}
    if every_algorithm:
        calls.update(_explicit_calls(case, x, kernel))
    if "torch" in peers:
        calls.update(peers["torch"].forward(case, x, kernel))
    if "scipy" in peers and case.c == case.k == 1:
        calls["scipy"] = _scipy_forward(peers["scipy"], case, x, kernel)
    medians = time_calls(calls, reps_time)
    algorithm, why = auto_choice(case, x, kernel)
    row = dict(shape=case.name, algorithm=algorithm, why=why,
               work_mib=work_memory(calls["convlayer"]) / 2**20, ms={k: v * 1e3 for k, v in medians.items()})
    return _with_ratios(row, medians)


def backward_row(case: Case, rng: np.random.Generator, reps_time: float, peers: dict) -> dict:
    """Time one shape's gradients (input and kernel) against PyTorch's; return a result row."""
    x, kernel = inputs(case, rng)
    grad = rng.standard_normal(conv2d(x[:1], kernel, **case.options).shape[1:], dtype=np.float32)
    grad = np.broadcast_to(grad, (case.n,) + grad.shape).copy()
    calls = {"convlayer": lambda: conv2d_backward(grad, x, kernel, **case.options)[:2]}
    if "torch" in peers:
        calls.update(peers["torch"].backward(case, x, kernel, grad))
    medians = time_calls(calls, reps_time)
    row = dict(shape=case.name, work_mib=work_memory(calls["convlayer"]) / 2**20,
               ms={k: v * 1e3 for k, v in medians.items()})
    return _with_ratios(row, medians)


def _explicit_calls(case: Case, x, kernel) -> dict:
    geom = _validate.conv_args(x, kernel, None, **case.options, dilation=1, flip=False,
                               pad_mode="constant", data_format="channels_last").geom
    return {f"algorithm={name}": (lambda name=name: conv2d(x, kernel, **case.options, algorithm=name))
            for name in choose.ALGORITHMS if choose.unsupported(name, geom) is None}


def _with_ratios(row: dict, medians: dict) -> dict:
    torch_times = [medians[k] for k in ("torch_nchw", "torch_cl") if k in medians]
    if torch_times:
        row["torch_ms"] = min(torch_times) * 1e3
        row["ratio"] = medians["convlayer"] / min(torch_times)
        row["algorithm_ratios"] = {name.split("=")[1]: value / min(torch_times)
                                   for name, value in medians.items() if name.startswith("algorithm=")}
    if "scipy" in medians:
        row["scipy_ratio"] = medians["convlayer"] / medians["scipy"]
    return row


def _scipy_forward(signal, case: Case, x: np.ndarray, kernel: np.ndarray) -> Callable:
    image, filt = x[0, :, :, 0], kernel[:, :, 0, 0]
    return lambda: signal.correlate(image, filt, mode="same")  # odd kernel: TF's 'same'


class _Torch:
    """PyTorch's forward and backward on the same data, NCHW and channels_last."""

    def __init__(self, torch):
        self.torch = torch
        torch.set_num_threads(TORCH_THREADS)

    def _tensors(self, case: Case, x, kernel, channels_last: bool):
        torch = self.torch
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        pads = _validate.conv_args(x, kernel, None, **case.options, dilation=1, flip=False,
                                   pad_mode="constant", data_format="channels_last").geom.pads
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        xt = torch.nn.functional.pad(xt, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        wt = torch.from_numpy(kernel).permute(3, 2, 0, 1)
        return xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)

    def forward(self, case: Case, x, kernel) -> dict:
        """TF padding applied beforehand (torch's 'same' refuses strides), so not timed."""
        calls = {}
        for name, channels_last in (("torch_nchw", False), ("torch_cl", True)):
            xt, wt = self._tensors(case, x, kernel, channels_last)
            calls[name] = self._forward_call(xt, wt, case)
        return calls

    def _forward_call(self, xt, wt, case: Case):
        conv = self.torch.nn.functional.conv2d
        return lambda: conv(xt, wt, stride=case.strides, groups=case.groups)

    def backward(self, case: Case, x, kernel, grad) -> dict:
        calls = {}
        for name, channels_last in (("torch_nchw", False), ("torch_cl", True)):
            xt, wt = self._tensors(case, x, kernel, channels_last)
            fmt = self.torch.channels_last if channels_last else self.torch.contiguous_format
            gt = self.torch.from_numpy(grad).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
            calls[name] = self._backward_call(gt, xt, wt, case)
        return calls

    def _backward_call(self, gt, xt, wt, case: Case):
        op = self.torch.ops.aten.convolution_backward
        stride = [case.strides] * 2
        return lambda: op(gt, xt, wt, None, stride, [0, 0], [1, 1], False, [0, 0], case.groups,
                          [True, True, False])


def peers() -> dict:
    """The peers that can be imported here: {'torch': ..., 'scipy': scipy.signal}."""
    found = {}
    try:
        import torch
    except ImportError:
        pass
    else:
        found["torch"] = _Torch(torch)
    try:
        from scipy import signal
    except ImportError:
        pass
    else:
        found["scipy"] = signal
    return found


def reference_row(case: Case, rng: np.random.Generator) -> dict:
    """The tutorial's plain loops against conv2d on one (small) shape: one call each."""
    x, kernel = inputs(case, rng)
    start = time.perf_counter()
    reference.conv2d(x, kernel, **case.options)
    loops = time.perf_counter() - start
    fast = time_calls({"convlayer": lambda: conv2d(x, kernel, **case.options)}, 0.2)["convlayer"]
    return dict(shape=case.name, loops_ms=loops * 1e3, convlayer_ms=fast * 1e3, speedup=loops / fast)


def environment(found: dict) -> dict:
    """Versions, CPUs, the OpenBLAS variables and which BLAS kernel is in use."""
    info = dict(python=platform.python_version(), numpy=np.__version__, cpus=os.cpu_count(),
                machine=platform.machine(),
                env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                    "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")})
    if "torch" in found:
        info["torch"] = found["torch"].torch.__version__
    try:
        import threadpoolctl
    except ImportError:
        return info
    info["blas"] = [f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
                    f"threads={p.get('num_threads')}" for p in threadpoolctl.threadpool_info()]
    return info


def geometric_mean(values) -> float:
    values = [v for v in values if v and v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else math.nan


def run_suite(cases=SUITE, reps_time: float = 0.3, backward: bool = True, echo=print,
              every_algorithm: bool = False) -> dict:
    """Run the suite; ``echo`` each table line as it is ready; return everything measured.

    ``every_algorithm``: also time each explicit algorithm per shape (forward only).
    """
    found = peers()
    results: dict = {"environment": environment(found), "forward": [], "backward": []}
    rng = np.random.default_rng(0)
    echo(_environment_line(results["environment"]))
    echo(_FORWARD_HEADER)
    for case in cases:
        results["forward"].append(forward_row(case, rng, reps_time, found, every_algorithm))
        echo(_forward_line(results["forward"][-1]))
    if backward:
        echo(_BACKWARD_HEADER)
        for case in cases:
            results["backward"].append(backward_row(case, rng, reps_time, found))
            echo(_backward_line(results["backward"][-1]))
    smallest = min(cases, key=lambda case: case.n * case.h * case.w * case.c * case.k * case.f**2)
    results["reference"] = reference_row(smallest, rng)
    for part in ("forward", "backward"):
        results[f"{part}_geomean"] = geometric_mean(row.get("ratio") for row in results[part])
    echo(_summary(results))
    return results


_FORWARD_HEADER = (f"\nforward{'':<29} {'convlayer ms':>12} {'torch ms':>9} {'ratio':>6} {'scipy':>6} "
                   f"{'work MiB':>8}  auto")
_BACKWARD_HEADER = (f"\nbackward{'':<28} {'convlayer ms':>12} {'torch ms':>9} {'ratio':>6} {'':>6} "
                    f"{'work MiB':>8}")


def _cell(value, spec: str) -> str:
    return format(value, spec) if value is not None else format("-", spec.split(".")[0].rstrip("f") + "s")


def _forward_line(row: dict) -> str:
    each = "  ".join(f"{name} {ratio:.2f}" for name, ratio in row.get("algorithm_ratios", {}).items())
    return (f"{row['shape']:<36} {row['ms']['convlayer']:>12.3f} {_cell(row.get('torch_ms'), '>9.3f')} "
            f"{_cell(row.get('ratio'), '>6.2f')} {_cell(row.get('scipy_ratio'), '>6.2f')} "
            f"{row['work_mib']:>8.1f}  {row['algorithm']}" + (f"  [{each}]" if each else ""))


def _backward_line(row: dict) -> str:
    return (f"{row['shape']:<36} {row['ms']['convlayer']:>12.3f} {_cell(row.get('torch_ms'), '>9.3f')} "
            f"{_cell(row.get('ratio'), '>6.2f')} {'':>6} {row['work_mib']:>8.1f}")


def _environment_line(info: dict) -> str:
    blas = "; ".join(info.get("blas", [])) or "threadpoolctl not installed"
    torch = f", torch {info['torch']} ({TORCH_THREADS} threads)" if "torch" in info else ", no torch"
    set_ = ", ".join(f"{name}={value}" for name, value in info["env"].items() if value is not None)
    line = f"numpy {info['numpy']}{torch}, {info['cpus']} CPUs; BLAS: {blas}"
    return line + (f"; set: {set_}" if set_ else "")


def _summary(results: dict) -> str:
    ref = results["reference"]
    lines = ["", "ratio = convlayer / best of torch NCHW and channels_last (below 1: convlayer is faster);",
             "scipy = convlayer / scipy.signal.correlate (single-channel shapes)",
             f"geometric mean of ratios: forward {results['forward_geomean']:.2f}"
             + (f", backward {results['backward_geomean']:.2f}" if results["backward"] else ""),
             f"tutorial's plain loops on {ref['shape']}: {ref['loops_ms']:.0f} ms, "
             f"{ref['speedup']:.0f}x conv2d's {ref['convlayer_ms']:.3f} ms"]
    return "\n".join(lines)


def write_json(results: dict, path: str) -> None:
    """Write the results whole or not at all (a temporary name, then a rename)."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(results, handle, indent=2, default=float)
    os.replace(temporary, path)
