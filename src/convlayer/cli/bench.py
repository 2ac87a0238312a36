"""``convlayer bench``: the performance suite (see :mod:`convlayer.bench`), printed as a table."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  convlayer bench
  convlayer bench --only 3x3 --no-backward
  convlayer bench --every-algorithm          # each algorithm's ratio to torch, too
  convlayer bench --json results.json

Peers, each when installed: PyTorch (2 threads), JAX (on the CPU: JAX_PLATFORMS=cpu
is set unless already set) and SciPy (single-channel shapes).
Compare ratios, not milliseconds. For the OpenBLAS kernel OpenBLAS would pick by itself:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convlayer bench"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", metavar="TEXT", help="only the shapes whose name contains TEXT")
    parser.add_argument("--no-backward", action="store_true", help="skip the gradients")
    parser.add_argument("--every-algorithm", action="store_true",
                        help="also time each algorithm that can compute a shape, as a ratio to torch")
    parser.add_argument("--reps-time", type=float, default=0.3, metavar="SECONDS",
                        help="timed seconds per contender and shape (default 0.3)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to PATH as JSON")


def run(args: argparse.Namespace) -> int:
    from .. import bench

    cases = [case for case in bench.SUITE if args.only is None or args.only in case.name]
    if not cases:
        raise ValueError(f"no shape of the suite contains {args.only!r}")
    if args.reps_time <= 0:
        raise ValueError(f"--reps-time must be positive; got {args.reps_time}")
    results = bench.run_suite(cases, args.reps_time, backward=not args.no_backward,
                              every_algorithm=args.every_algorithm)
    if args.json:
        bench.write_json(results, args.json)
        print(f"wrote {args.json}")
    return 0
