"""``convlayer bench``: the performance suites (see :mod:`convlayer.bench`), printed as tables."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  convlayer bench
  convlayer bench --only 3x3 --no-backward
  convlayer bench --every-algorithm          # each algorithm's ratio to torch, too
  convlayer bench --json results.json
  convlayer bench --suite networks --models resnet50,mobilenet_v2 --batch 8
  convlayer bench --suite networks --only g32 --no-backward --reps-time 0.05
  convlayer bench resnet18.onnx --batch 1,8 --torchvision resnet18

--suite shapes (the default): ten shapes. Peers, each when installed: PyTorch (2 threads),
JAX (on the CPU: JAX_PLATFORMS=cpu is set unless already set) and SciPy (single-channel shapes).
--suite networks: the Conv2d layers of ten torchvision models (recorded in convlayer, no
torchvision needed), channels-last and channels_first against PyTorch NCHW and channels_last,
batch 1 and 8, per-layer ratios, per-model totals. Every layer of every model: long; narrow it
with --models, --batch, --only and --reps-time.
MODEL.onnx: the whole model on convlayer.onnx against onnxruntime (2 threads), the onnx
ReferenceEvaluator (one run) and PyTorch eager (2 threads, with --torchvision NAME).
Compare ratios, not milliseconds. For the OpenBLAS kernel OpenBLAS would pick by itself:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convlayer bench"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL.onnx",
                        help="time a whole ONNX model on convlayer against onnxruntime, the onnx "
                             "ReferenceEvaluator and (with --torchvision) PyTorch, each when installed")
    parser.add_argument("--torchvision", metavar="NAME",
                        help="with MODEL.onnx: also time torchvision's NAME (random weights) in PyTorch")
    parser.add_argument("--no-reference", action="store_true", help="with MODEL.onnx: skip the ReferenceEvaluator")
    parser.add_argument("--suite", choices=("shapes", "networks"), default="shapes",
                        help="shapes: ten shapes against every peer (default); networks: the layers of "
                             "torchvision's models against PyTorch")
    parser.add_argument("--only", metavar="TEXT", help="only the shapes (or layers) whose name contains TEXT")
    parser.add_argument("--no-backward", action="store_true", help="skip the gradients")
    parser.add_argument("--every-algorithm", action="store_true",
                        help="shapes: also time each algorithm that can compute a shape, as a ratio to torch")
    parser.add_argument("--models", metavar="LIST",
                        help="networks: comma-separated model names (default: every recorded model)")
    parser.add_argument("--batch", metavar="LIST", help="networks: comma-separated batch sizes (default 1,8)")
    parser.add_argument("--reps-time", type=float, default=0.3, metavar="SECONDS",
                        help="timed seconds per contender and shape (default 0.3)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to PATH as JSON")


def run(args: argparse.Namespace) -> int:
    from .. import bench

    if args.model is not None:
        return _run_model(args)
    if args.suite == "networks":
        return _run_networks(args)
    if args.models is not None or args.batch is not None:
        raise ValueError("--models and --batch apply to --suite networks only")
    cases = [case for case in bench.SUITE if args.only is None or args.only in case.name]
    if not cases:
        raise ValueError(f"no shape of the suite contains {args.only!r}")
    _check_reps_time(args.reps_time)
    results = bench.run_suite(cases, args.reps_time, backward=not args.no_backward,
                              every_algorithm=args.every_algorithm)
    _write(bench, results, args.json)
    return 0


def _run_networks(args: argparse.Namespace) -> int:
    from .. import bench

    if args.every_algorithm:
        raise ValueError("--every-algorithm applies to --suite shapes only")
    models = None if args.models is None else [name.strip() for name in args.models.split(",") if name.strip()]
    if models == []:
        raise ValueError(f"--models must name at least one model; got {args.models!r}")
    _check_reps_time(args.reps_time)
    results = bench.run_networks(models, _batches(args.batch), args.only, args.reps_time,
                                 backward=not args.no_backward)
    _write(bench, results, args.json)
    return 0


def _run_model(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..bench import models

    if not Path(args.model).is_file():
        raise ValueError(f"MODEL.onnx must be an ONNX file; no file {args.model!r}")
    _check_reps_time(args.reps_time)
    rows = models.run_model(args.model, _batches(args.batch), torchvision=args.torchvision,
                            reference=not args.no_reference, reps_time=args.reps_time)
    print(models.table(Path(args.model).name, rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return 0


def _batches(text: "str | None") -> tuple[int, ...]:
    """'1,8' -> (1, 8); None -> the default batch sizes."""
    if text is None:
        from ..bench.networks import BATCHES

        return BATCHES
    try:
        batches = tuple(int(part) for part in text.split(","))
    except ValueError:
        batches = ()
    if not batches or min(batches) < 1:
        raise ValueError(f"--batch must be positive integers separated by commas, like 1,8; got {text!r}")
    return batches


def _check_reps_time(seconds: float) -> None:
    if seconds <= 0:
        raise ValueError(f"--reps-time must be positive; got {seconds}")


def _write(bench, results: dict, path: "str | None") -> None:
    if path:
        bench.write_json(results, path)
        print(f"wrote {path}")
