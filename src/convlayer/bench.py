"""The performance suite: ``conv2d`` and ``conv2d_backward`` against their peers, shape by shape.

For each shape of the speed issue's suite (float32, channels-last), every contender runs
on the same data in this process: convlayer (``algorithm="auto"``), PyTorch when it can be
imported (``torch.nn.functional.conv2d`` with 2 threads, the better of NCHW and
channels_last), JAX when it can be imported (``jax.lax.conv_general_dilated``, jitted, NHWC
and HWIO), SciPy for the single-channel shapes (``scipy.signal.correlate``, which picks
direct or FFT itself), and once, on the tutorial's demo shape (1x512x512x3->2 3x3, one
call of about 3 s), the tutorial's plain loops (:func:`convlayer.reference.conv2d`); when
``cases`` leave the demo shape out, the loops run on the smallest shape instead. The
backward pass (input and kernel gradients) is timed against
``torch.ops.aten.convolution_backward``, PyTorch's own gradient kernel, and against
``jax.vjp`` of the convolution, jitted.

Peers get TensorFlow's 'same' padding as explicit numbers from :mod:`convlayer.shapes`
(the odd zero at the bottom/right), applied before the timed call for PyTorch and passed
as ``(low, high)`` pairs to JAX. Inputs are put on the peer's device beforehand; each JAX
call ends in ``block_until_ready()``, so its time is the computation, not its dispatch.

Threads: PyTorch is held to 2 threads; JAX is left as a user gets it (holding it would take
``XLA_FLAGS`` set before JAX starts). XLA's CPU client starts its own threads (15 in a
JAX-only process on this 2-core machine) and, measured with JAX 0.10.2 over this suite,
keeps both cores busy on some shapes and one on others: CPU time / wall time between 0.9
and 2.0, shape by shape.
Before importing JAX, :func:`peers` sets ``JAX_PLATFORMS=cpu`` in ``os.environ`` when that
variable is not already set, so that JAX stays on the CPU and does not probe for
accelerators (a probe that warns on a machine with a GPU and a CPU-only jaxlib); it sets
nothing else.

Timing: after a warm-up call (for JAX, the compilation), rounds of a few consecutive calls
per contender, the order rotating from round to round; a contender leaves the rotation once
it has had about ``reps_time`` seconds (and at least two rounds), so a 300 ms call is not
repeated as often as a 1 ms one. The median call counts. Runs of consecutive calls, not
single calls interleaved: NumPy's OpenBLAS, PyTorch and XLA keep their idle threads
spinning for a while after each call, and a contender that starts while another library's
threads spin loses a core. So each run starts after ``SETTLE`` seconds of sleep, then
untimed calls for ``WARM_SECONDS`` (the contender's own threads and the CPUs wake up: right
after a pause the depthwise layer took 4 ms a call instead of 2), and lasts ``RUN`` calls or
``RUN_SECONDS``, whichever is longer (without the pause, PyTorch's 2-thread times came out
1.5-2x too slow on some shapes, one lost time slice per call). Compare the ratios, not the milliseconds: a shared machine's
speed drifts. PyTorch's two threads suffer most when other work runs on the machine: its
times were seen to snap to multiples of about 8 ms (a scheduler slice). Peak work memory
is measured with :mod:`tracemalloc` in one more call (what conv2d allocates beyond its
output).
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
from ._bench_peers import TORCH_THREADS, peers
from .algorithms import choose, compiled
from .algorithms.buffers import release_work_buffers
from .functional import conv2d, conv2d_backward

RUN = 3  # consecutive calls per contender and round, at least
RUN_SECONDS = 0.04  # and at least this long
SETTLE = 0.1  # seconds of sleep before each run: other libraries' idle threads stop spinning
WARM_SECONDS = 0.02  # then untimed calls for this long (at least one)
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
            if round_ >= MIN_ROUNDS and sum(samples[name]) >= reps_time:
                continue  # it has had its time: a slow peer is not dragged along by a fast one
            time.sleep(SETTLE)
            warm_start = time.perf_counter()
            calls[name]()
            while time.perf_counter() - warm_start < WARM_SECONDS:
                calls[name]()
            run_start = count = 0
            while count < RUN or time.perf_counter() - run_start < RUN_SECONDS:
                start = time.perf_counter()
                run_start = run_start or start
                calls[name]()
                samples[name].append(time.perf_counter() - start)
                count += 1
        if round_ + 1 >= MIN_ROUNDS and min(sum(s) for s in samples.values()) >= reps_time:
            break
    return {name: statistics.median(values) for name, values in samples.items()}


def work_memory(call: Callable[[], object]) -> tuple[int, object]:
    """``(bytes, result)``: the peak that ``call()`` allocates beyond what it returns, and
    what it returns (tracemalloc; a tuple result counts all its arrays as returned).

    The work buffer that conv2d keeps between calls is given back first, so that the
    call's own allocation of it is counted. The tests measure with this too.
    """
    release_work_buffers()
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in (result if isinstance(result, tuple) else (result,)))
    return max(peak - returned, 0), result


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
    for peer in peers.values():
        calls.update(peer.forward(case, x, kernel))
    medians = time_calls(calls, reps_time)
    algorithm, why = auto_choice(case, x, kernel)
    row = dict(shape=case.name, algorithm=algorithm, why=why,
               work_mib=work_memory(calls["convlayer"])[0] / 2**20, ms={k: v * 1e3 for k, v in medians.items()})
    return _with_ratios(row, medians)


def backward_row(case: Case, rng: np.random.Generator, reps_time: float, peers: dict) -> dict:
    """Time one shape's gradients (input and kernel) against PyTorch's and JAX's; return a row."""
    x, kernel = inputs(case, rng)
    grad = rng.standard_normal(conv2d(x[:1], kernel, **case.options).shape[1:], dtype=np.float32)
    grad = np.broadcast_to(grad, (case.n,) + grad.shape).copy()
    calls = {"convlayer": lambda: conv2d_backward(grad, x, kernel, **case.options)[:2]}
    for peer in peers.values():
        calls.update(peer.backward(case, x, kernel, grad))
    medians = time_calls(calls, reps_time)
    row = dict(shape=case.name, work_mib=work_memory(calls["convlayer"])[0] / 2**20,
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
    if "jax" in medians:
        row["jax_ms"] = medians["jax"] * 1e3
        row["jax_ratio"] = medians["convlayer"] / medians["jax"]
    if "scipy" in medians:
        row["scipy_ratio"] = medians["convlayer"] / medians["scipy"]
    return row


def loops_case(cases) -> Case:
    """The shape for the tutorial's loops: the demo shape if it is among ``cases``, else the smallest."""
    if SUITE[0] in cases:
        return SUITE[0]
    return min(cases, key=lambda case: case.n * case.h * case.w * case.c * case.k * case.f**2)


def reference_row(case: Case, rng: np.random.Generator) -> dict:
    """The tutorial's plain loops against conv2d on one shape: one call of the loops."""
    x, kernel = inputs(case, rng)
    start = time.perf_counter()
    reference.conv2d(x, kernel, **case.options)
    loops = time.perf_counter() - start
    fast = time_calls({"convlayer": lambda: conv2d(x, kernel, **case.options)}, 0.2)["convlayer"]
    return dict(shape=case.name, demo=case == SUITE[0], loops_ms=loops * 1e3, convlayer_ms=fast * 1e3,
                speedup=loops / fast)


def environment(found: dict) -> dict:
    """Versions, CPUs, the OpenBLAS variables and which BLAS kernel is in use."""
    info = dict(python=platform.python_version(), numpy=np.__version__, cpus=os.cpu_count(),
                machine=platform.machine(),
                env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                    "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")})
    if "torch" in found:
        info["torch"] = found["torch"].torch.__version__
    if "jax" in found:
        info["jax"] = found["jax"].jax.__version__
    if compiled.enabled():
        from importlib.metadata import version

        info["numba"] = version("numba")
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
    results["reference"] = reference_row(loops_case(cases), rng)
    results["compile_seconds"] = compiled.compile_seconds()
    for part in ("forward", "backward"):
        results[f"{part}_geomean"] = geometric_mean(row.get("ratio") for row in results[part])
        jax_ratios = [row["jax_ratio"] for row in results[part] if "jax_ratio" in row]
        results[f"{part}_jax_geomean"] = geometric_mean(jax_ratios)
        results[f"{part}_ahead_of_jax"] = sum(ratio < 1 for ratio in jax_ratios)
        results[f"{part}_jax_shapes"] = len(jax_ratios)
    echo(_summary(results))
    return results


_COLUMNS = f"{'convlayer ms':>12} {'torch ms':>9} {'conv/torch':>10} {'jax ms':>9} {'conv/jax':>8}"
_FORWARD_HEADER = f"\nforward{'':<29} {_COLUMNS} {'conv/scipy':>10} {'work MiB':>8}  auto"
_BACKWARD_HEADER = f"\nbackward{'':<28} {_COLUMNS} {'':>10} {'work MiB':>8}"


def _cell(value, spec: str) -> str:
    return format(value, spec) if value is not None else format("-", spec.split(".")[0].rstrip("f") + "s")


def _times(row: dict) -> str:
    """The shape, convlayer's time and each peer's time and ratio (the columns both tables share)."""
    return (f"{row['shape']:<36} {row['ms']['convlayer']:>12.3f} {_cell(row.get('torch_ms'), '>9.3f')} "
            f"{_cell(row.get('ratio'), '>10.2f')} {_cell(row.get('jax_ms'), '>9.3f')} "
            f"{_cell(row.get('jax_ratio'), '>8.2f')}")


def _forward_line(row: dict) -> str:
    each = "  ".join(f"{name} {ratio:.2f}" for name, ratio in row.get("algorithm_ratios", {}).items())
    return (f"{_times(row)} {_cell(row.get('scipy_ratio'), '>10.2f')} {row['work_mib']:>8.1f}  "
            f"{row['algorithm']}" + (f"  [{each}]" if each else ""))


def _backward_line(row: dict) -> str:
    return f"{_times(row)} {'':>10} {row['work_mib']:>8.1f}"


def _environment_line(info: dict) -> str:
    blas = "; ".join(info.get("blas", [])) or "threadpoolctl not installed"
    torch = f", torch {info['torch']} ({TORCH_THREADS} threads)" if "torch" in info else ", no torch"
    torch += f", jax {info['jax']} (XLA's own threads)" if "jax" in info else ", no jax"
    set_ = ", ".join(f"{name}={value}" for name, value in info["env"].items() if value is not None)
    loops = f"numba {info['numba']} (compiled loops)" if "numba" in info else "no numba (NumPy loops)"
    line = f"numpy {info['numpy']}, {loops}{torch}, {info['cpus']} CPUs; BLAS: {blas}"
    return line + (f"; set: {set_}" if set_ else "")


def _summary(results: dict) -> str:
    ref = results["reference"]
    parts = ("forward", "backward") if results["backward"] else ("forward",)
    lines = ["", "conv/torch = convlayer / best of torch NCHW and channels_last, conv/jax = convlayer / jax,",
             "conv/scipy = convlayer / scipy.signal.correlate (single-channel shapes); below 1: convlayer "
             "is faster",
             "geometric mean of ratios to torch: "
             + ", ".join(f"{part} {results[f'{part}_geomean']:.2f}" for part in parts),
             _jax_summary(results, parts),
             f"tutorial's plain loops on {ref['shape']}: {ref['loops_ms']:.0f} ms, "
             f"{ref['speedup']:.0f}x conv2d's {ref['convlayer_ms']:.3f} ms"
             + (" (target: at least 1,000x on the demo shape)" if ref["demo"] else "")]
    if "numba" in results["environment"]:
        lines.append(f"compiled loops: {results['compile_seconds']:.1f} s compiling them (or loading them "
                     "from Numba's cache) in the warm-up calls, not timed")
    return "\n".join(lines)


def _jax_summary(results: dict, parts) -> str:
    if "jax" not in results["environment"]:
        return "jax: not installed (pip install 'convlayer[bench]')"
    return "geometric mean of ratios to jax: " + ", ".join(
        f"{part} {results[f'{part}_jax_geomean']:.2f} (convlayer ahead on "
        f"{results[f'{part}_ahead_of_jax']} of {results[f'{part}_jax_shapes']} shapes)" for part in parts)


def write_json(results: dict, path: str) -> None:
    """Write the results whole or not at all (a temporary name, then a rename)."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(results, handle, indent=2, default=float)
    os.replace(temporary, path)
