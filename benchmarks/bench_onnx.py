"""Whole torchvision models on convlayer.onnx against onnxruntime, PyTorch eager and the onnx
ReferenceEvaluator: the table of the README's "Models from files" section.

Each model is built with random weights (nothing is downloaded), exported by
torch.onnx.export (TorchScript exporter, opset 17, batch axis free) and timed by
convlayer.bench.models.run_model at batch 1 and 8 on 224x224: rotating runs, fastest call,
onnxruntime and PyTorch on 2 threads, every contender of a model in one process. Each model
gets a fresh process: in one process for all three, whichever model came second ran 5-10x
slower for every contender (PyTorch included), an effect of the earlier models' runs that
a fresh process does not carry.

    python benchmarks/bench_onnx.py [--models resnet18,mobilenet_v2,efficientnet_b0] [--reps-time 1]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import types
from pathlib import Path


def export(name: str, folder: Path) -> Path:
    stub = "torchvision._meta_registrations"
    sys.modules.setdefault(stub, types.ModuleType(stub))
    import torch
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), buffer, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    path = folder / f"{name}.onnx"
    path.write_bytes(buffer.getvalue())
    return path


def main() -> None:
    import warnings

    from convlayer.bench import models

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,mobilenet_v2,efficientnet_b0")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--reps-time", type=float, default=1.0)
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batch.split(","))
    names = args.models.split(",")
    if len(names) > 1:
        import subprocess

        for name in names:
            subprocess.run([sys.executable, __file__, "--models", name, "--batch", args.batch,
                            "--reps-time", str(args.reps_time)], check=True)
        return
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            path = export(name, Path(folder))
            rows = models.run_model(path, batches, torchvision=name, reps_time=args.reps_time)
            print(models.table(name, rows), flush=True)


if __name__ == "__main__":
    main()
