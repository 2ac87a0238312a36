"""Benchmark ``convlayer.conv2d`` against ``torch.nn.functional.conv2d`` and JAX.

The libraries run the same shapes in the same process, with torch limited
to 2 threads (JAX, when installed, keeps XLA's own thread pool; ``JAX_PLATFORMS``
is set to ``cpu`` unless it is already set).  For every shape the script

1. builds float32 inputs (x in NHWC, kernel in HWIO for convlayer; the same
   data in NCHW / OIHW for torch, once NCHW-contiguous and once channels_last;
   NHWC / HWIO for JAX's jitted ``lax.conv_general_dilated``),
2. checks that convlayer and torch agree (max relative error, printed), and
   that JAX agrees with torch (flagged ``JAX MISMATCH`` when it does not),
3. warms every function up, then times them interleaved (round-robin, so
   that machine noise hits all of them alike) and keeps the median,
4. reports convlayer ms, the best torch layout's ms, and their ratio; JAX's ms
   and convlayer / JAX.

TensorFlow-style 'same' padding with stride > 1 is not accepted by torch's
``padding='same'``; torch then gets the explicit TF padding, through the
``padding=`` argument when it is symmetric, otherwise through ``F.pad``
inside the timed call (marked with ``*`` in the table).  JAX gets the same
padding as explicit (low, high) pairs from :mod:`convlayer.shapes`, and each
call ends in ``block_until_ready()``; its compilation happens before timing.

Usage::

    .venv/bin/python benchmarks/bench_conv2d.py [--reps-time 0.5] [--only 3x3] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import convlayer

TORCH_THREADS = 2
MIN_REPS = 5
MAX_REPS = 50
MISMATCH_TOL = 1e-4  # max relative error above which a result is flagged


@dataclass(frozen=True)
class Case:
    n: int
    h: int
    w: int
    c_in: int
    c_out: int
    fh: int
    fw: int
    stride: int
    padding: str
    groups: int = 1

    @property
    def name(self) -> str:
        s = (f"{self.n}x{self.h}x{self.w}x{self.c_in}->{self.c_out} "
             f"{self.fh}x{self.fw} s{self.stride} {self.padding}")
        return s + (f" g{self.groups}" if self.groups > 1 else "")


SUITE = [
    Case(1, 512, 512, 3, 2, 3, 3, 1, "same"),
    Case(1, 1024, 1024, 1, 1, 3, 3, 1, "same"),
    Case(1, 256, 256, 1, 1, 31, 31, 1, "same"),
    Case(8, 56, 56, 64, 64, 3, 3, 1, "same"),
    Case(8, 28, 28, 128, 128, 3, 3, 1, "same"),
    Case(8, 14, 14, 256, 256, 3, 3, 1, "same"),
    Case(8, 56, 56, 256, 64, 1, 1, 1, "valid"),
    Case(8, 224, 224, 3, 64, 7, 7, 2, "same"),
    Case(8, 112, 112, 32, 32, 3, 3, 1, "same", groups=32),
    Case(64, 8, 8, 1, 16, 3, 3, 1, "same"),
]


# --------------------------------------------------------------------------- #
# Environment report
# --------------------------------------------------------------------------- #

def print_environment() -> dict:
    """Print versions, OpenBLAS env variables and threadpoolctl info."""
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                          "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "env": env,
        "threadpools": threadpool_info(),
    }
    print(f"python {info['python']}  numpy {info['numpy']}  torch {info['torch']} "
          f"(threads={info['torch_threads']})  cpus={info['cpu_count']}")
    print("env: " + "  ".join(f"{k}={v if v is not None else '<unset>'}" for k, v in env.items()))
    if info["threadpools"] is None:
        print("threadpoolctl: not installed")
    for pool in info["threadpools"] or []:
        print(f"threadpool: {pool.get('internal_api')} {pool.get('version') or ''} "
              f"arch/coretype={pool.get('architecture', '-')} "
              f"threads={pool.get('num_threads')} "
              f"({os.path.basename(pool.get('filepath', ''))})")
    print()
    return info


def threadpool_info() -> list[dict] | None:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries, if available."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_info()


# --------------------------------------------------------------------------- #
# Inputs and callables
# --------------------------------------------------------------------------- #

def make_inputs(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x (NHWC) and kernel (HWIO), float32."""
    x = rng.standard_normal((case.n, case.h, case.w, case.c_in), dtype=np.float32)
    kernel = rng.standard_normal(
        (case.fh, case.fw, case.c_in // case.groups, case.c_out), dtype=np.float32)
    return x, kernel


def tf_same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def torch_padding(case: Case) -> tuple[object, tuple[int, int, int, int] | None]:
    """(padding= argument for F.conv2d, explicit F.pad tuple or None)."""
    if case.padding == "valid":
        return 0, None
    if case.stride == 1:
        return "same", None
    top, bottom = tf_same_pads(case.h, case.fh, case.stride)
    left, right = tf_same_pads(case.w, case.fw, case.stride)
    if top == bottom and left == right:
        return (top, left), None
    return 0, (left, right, top, bottom)  # F.pad order: last dim first


def make_convlayer_fn(case: Case, x: np.ndarray, kernel: np.ndarray):
    def run():
        return convlayer.conv2d(x, kernel, padding=case.padding,
                                strides=(case.stride, case.stride), groups=case.groups)
    return run


def make_torch_fn(case: Case, x: np.ndarray, kernel: np.ndarray, channels_last: bool):
    """F.conv2d on NCHW/OIHW tensors in the requested memory format."""
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)          # NHWC -> NCHW view
    wt = torch.from_numpy(kernel).permute(3, 2, 0, 1)     # HWIO -> OIHW view
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xt = xt.contiguous(memory_format=fmt)
    wt = wt.contiguous(memory_format=fmt)
    padding, pad = torch_padding(case)
    stride, groups = case.stride, case.groups

    def run():
        inp = F.pad(xt, pad) if pad is not None else xt
        return F.conv2d(inp, wt, stride=stride, padding=padding, groups=groups)
    return run


def load_jax():
    """The ``jax`` module on the CPU, or None when JAX is not installed."""
    if importlib.util.find_spec("jax") is None:
        return None
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no probing for accelerators
    import jax
    return jax


def make_jax_fn(jax, case: Case, x: np.ndarray, kernel: np.ndarray):
    """Jitted lax.conv_general_dilated, NHWC/HWIO, convlayer's padding as (low, high) pairs."""
    pads = convlayer.shapes.resolve_padding((case.h, case.w), (case.fh, case.fw),
                                            case.stride, case.padding)
    conv = jax.jit(lambda x, kernel: jax.lax.conv_general_dilated(
        x, kernel, (case.stride, case.stride), pads,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=case.groups))
    xj, kernelj = jax.device_put((x, kernel), jax.devices("cpu")[0])

    def run():
        return conv(xj, kernelj).block_until_ready()
    return run


def torch_to_nhwc(y: torch.Tensor) -> np.ndarray:
    return y.permute(0, 2, 3, 1).contiguous().numpy()


# --------------------------------------------------------------------------- #
# Checking and timing
# --------------------------------------------------------------------------- #

def max_rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|  (inf if shapes differ)."""
    if got.shape != ref.shape:
        return math.inf
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / scale


def time_interleaved(fns: dict, reps_time: float) -> dict[str, float]:
    """Median seconds per call of each fn, measured round-robin.

    Rounds continue until the slowest function has accumulated ``reps_time``
    seconds (but at least MIN_REPS and at most MAX_REPS rounds).  The order
    within a round rotates so that no function is always first.
    """
    names = list(fns)
    samples = {name: [] for name in names}
    for fn in fns.values():  # warm-up
        fn()
    for rep in range(MAX_REPS):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t0)
        if rep + 1 >= MIN_REPS and max(sum(s) for s in samples.values()) >= reps_time:
            break
    return {name: statistics.median(s) for name, s in samples.items()}


def run_case(case: Case, reps_time: float, rng: np.random.Generator, jax=None) -> dict:
    """Check and time one shape; returns a result row (with JAX's columns when ``jax``)."""
    x, kernel = make_inputs(case, rng)
    fns = {
        "convlayer": make_convlayer_fn(case, x, kernel),
        "nchw": make_torch_fn(case, x, kernel, channels_last=False),
        "cl": make_torch_fn(case, x, kernel, channels_last=True),
    }
    if jax is not None:
        fns["jax"] = make_jax_fn(jax, case, x, kernel)
    row = {"shape": case.name, "torch_pad_in_call": torch_padding(case)[1] is not None}
    try:
        got = np.asarray(fns["convlayer"]())
    except Exception as exc:  # report and go on with the other shapes
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    ref_nchw = torch_to_nhwc(fns["nchw"]())
    ref_cl = torch_to_nhwc(fns["cl"]())
    row["dtype"] = str(got.dtype)
    row["max_rel_err"] = max(max_rel_error(got, ref_nchw), max_rel_error(got, ref_cl))
    row["torch_layouts_rel_err"] = max_rel_error(ref_cl, ref_nchw)
    if jax is not None:
        row["jax_rel_err"] = max_rel_error(np.asarray(fns["jax"]()), ref_nchw)

    medians = time_interleaved(fns, reps_time)
    best = min(("nchw", "cl"), key=medians.get)
    row.update(
        convlayer_ms=medians["convlayer"] * 1e3,
        torch_nchw_ms=medians["nchw"] * 1e3,
        torch_cl_ms=medians["cl"] * 1e3,
        torch_ms=medians[best] * 1e3,
        torch_layout=best,
        ratio=medians["convlayer"] / medians[best],
    )
    if jax is not None:
        row.update(jax_ms=medians["jax"] * 1e3, jax_ratio=medians["convlayer"] / medians["jax"])
    return row


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #

HEADER = (f"{'shape':<36} {'convlayer ms':>12} {'torch ms':>15} {'ratio':>7} {'max rel err':>12}"
          f" {'jax ms':>9} {'conv/jax':>8}")


def format_row(row: dict) -> str:
    if "error" in row:
        return f"{row['shape']:<36} ERROR {row['error']}"
    mark = "*" if row["torch_pad_in_call"] else " "
    torch_col = f"{row['torch_ms']:.3f}{mark}({row['torch_layout']})"
    flag = "" if row["max_rel_err"] <= MISMATCH_TOL else "  MISMATCH"
    if row.get("jax_rel_err", 0.0) > MISMATCH_TOL:
        flag += "  JAX MISMATCH"
    if row["dtype"] != "float32":
        flag += f"  dtype={row['dtype']}"
    jax_cols = (f" {row['jax_ms']:>9.3f} {row['jax_ratio']:>8.2f}" if "jax_ms" in row
                else f" {'-':>9} {'-':>8}")
    return (f"{row['shape']:<36} {row['convlayer_ms']:>12.3f} {torch_col:>15} "
            f"{row['ratio']:>7.2f} {row['max_rel_err']:>12.2e}{jax_cols}{flag}")


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else math.nan


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps-time", type=float, default=0.5,
                   help="seconds per measurement (default 0.5)")
    p.add_argument("--only", metavar="SUBSTRING", default=None,
                   help="run only shapes whose name contains SUBSTRING")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the results to PATH as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(TORCH_THREADS)
    cases = [c for c in SUITE if args.only is None or args.only in c.name]
    if not cases:
        print(f"no shape matches --only {args.only!r}", file=sys.stderr)
        return 2

    jax = load_jax()
    info = print_environment()
    info["jax"] = jax.__version__ if jax is not None else None
    print(f"jax {info['jax']} (XLA's own threads)\n" if jax is not None else "jax: not installed\n")
    print(HEADER)
    print("-" * len(HEADER))
    rng = np.random.default_rng(0)
    rows = []
    with torch.inference_mode():
        for case in cases:
            row = run_case(case, args.reps_time, rng, jax)
            rows.append(row)
            print(format_row(row), flush=True)

    ratios = [r["ratio"] for r in rows if "ratio" in r]
    gmean = geometric_mean(ratios)
    print("-" * len(HEADER))
    if any(r.get("torch_pad_in_call") for r in rows):
        print("* torch time includes F.pad (asymmetric TF 'same' padding, stride > 1)")
    print(f"geometric mean of ratios convlayer/torch: {gmean:.3f} over {len(ratios)} shapes")
    jax_ratios = [r["jax_ratio"] for r in rows if "jax_ratio" in r]
    jax_gmean = geometric_mean(jax_ratios)
    if jax_ratios:
        ahead = sum(ratio < 1 for ratio in jax_ratios)
        print(f"geometric mean of ratios convlayer/jax: {jax_gmean:.3f} over {len(jax_ratios)} "
              f"shapes; convlayer ahead on {ahead}")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "results": rows, "geomean_ratio": gmean,
                       "jax_geomean_ratio": jax_gmean}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
