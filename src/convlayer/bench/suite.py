"""The performance suite: ``conv2d`` and ``conv2d_backward`` against their peers, shape by shape.

For each shape of :data:`~convlayer.bench.cases.SUITE` (float32, channels-last), every
contender runs on the same data in this process: convlayer (``algorithm="auto"``) and each
peer that can be imported (:mod:`.libraries`); each is timed as :mod:`.timing` says. Once,
on the tutorial's demo shape (1x512x512x3->2 3x3, one call of about 3 s), the tutorial's
plain loops (:func:`convlayer.reference.conv2d`) run too; when ``cases`` leave the demo
shape out, on the smallest shape instead. Each shape gives a row of milliseconds and
ratios, printed as a table line as soon as it is ready.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time

import numpy as np

from .. import _blas, _malloc, _validate, reference
from ..algorithms import choose, compiled
from ..functional import conv2d, conv2d_backward
from .cases import SUITE, Case, Layer, inputs, loops_case
from .libraries import TORCH_THREADS, peers
from .timing import time_calls, work_memory


def auto_choice(case: "Case | Layer", x: np.ndarray, kernel: np.ndarray) -> tuple[str, str]:
    """What ``algorithm="auto"`` picks for this shape (channels-last x and kernel), and why."""
    options = {"dilation": 1, **case.options}  # a Case has no dilation, a Layer has
    args = _validate.conv_args(x, kernel, None, **options, flip=False, pad_mode="constant",
                               data_format="channels_last")
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
    info["blas_spin"] = _blas.status["done"]  # whether convlayer set OPENBLAS_THREAD_TIMEOUT
    info["malloc"] = _malloc.status["done"]  # whether convlayer set glibc's thresholds
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
    echo(environment_line(results["environment"]))
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


def environment_line(info: dict) -> str:
    """The versions, threads and BLAS a run measured with, in one line."""
    blas = "; ".join(info.get("blas", [])) or "threadpoolctl not installed"
    torch = f", torch {info['torch']} ({TORCH_THREADS} threads)" if "torch" in info else ", no torch"
    torch += f", jax {info['jax']} (XLA's own threads)" if "jax" in info else ", no jax"
    set_ = ", ".join(f"{name}={value}" for name, value in info["env"].items() if value is not None)
    loops = f"numba {info['numba']} (compiled loops)" if "numba" in info else "no numba (NumPy loops)"
    line = f"numpy {info['numpy']}, {loops}{torch}, {info['cpus']} CPUs; BLAS: {blas}"
    spin = f"; OpenBLAS's idle spin: {info['blas_spin']}" if "blas_spin" in info else ""
    spin += f"; malloc: {info['malloc']}" if "malloc" in info else ""
    return line + (f"; set: {set_}" if set_ else "") + spin


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
             f"{ref['speedup']:.0f}x conv2d's {ref['convlayer_ms']:.3f} ms" + _target(results)]
    if "numba" in results["environment"]:
        lines.append(f"compiled loops: {results['compile_seconds']:.1f} s compiling them (or loading them "
                     "from Numba's cache) in the warm-up calls, not timed")
    return "\n".join(lines)


def _target(results: dict) -> str:
    """The demo shape's target, which assumes the compiled loops: without Numba (a dependency,
    so only where it does not import) the line says why it is not measured against it."""
    if not results["reference"]["demo"]:
        return ""
    if "numba" not in results["environment"]:
        return " (Numba does not import here: NumPy loops, not held to the 1,000x target)"
    return " (target: at least 1,000x on the demo shape)"


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
