"""Record the Conv2d layers of torchvision's models for ``convlayer bench --suite networks``.

Each model in :data:`MODELS` is built with random weights (nothing is downloaded) and run
once on a zero image of :data:`INPUT_SHAPE`; a forward hook on every ``torch.nn.Conv2d``
records what the layer was called with: input height, width and channels, output channels,
kernel size, strides, padding (PyTorch's symmetric padding per axis: ``[p_h, p_w]`` zeros
on both sides), dilation, groups and whether it has a bias. Identical layers are kept once;
each model lists ``[layer index, how many times it ran]``. The result is the small JSON that
ships with convlayer (``src/convlayer/bench/networks.json``), so the bench runs without
torchvision.

torchvision is not a dependency of convlayer. Install it beside the CPU torch, in a
separate virtual environment:

    python -m venv /tmp/tv
    /tmp/tv/bin/pip install torch==2.13.0 pillow
    /tmp/tv/bin/pip install --no-deps torchvision==0.28.0
    /tmp/tv/bin/python benchmarks/record_networks.py [--output PATH] [--models resnet50,vgg16]

torchvision 0.28.0's compiled operators (``nms`` and the like) need a torch built with them
(its CUDA wheel); building a model never calls them, but ``import torchvision`` registers
their meta kernels, which fails on a CPU torch. :func:`import_torchvision` skips that one
module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

import torch

MODELS = (
    "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "squeezenet1_1", "vgg16",
    "regnet_y_400mf", "shufflenet_v2_x1_0", "resnext50_32x4d", "convnext_tiny",
)
# vgg16's 13 layers are all plain 3x3 convolutions with a bias, several of them among the
# largest in the list; its first four (224 and 112 pixels, 3 to 128 channels) stand for
# them and keep the bench short.
FIRST_LAYERS = {"vgg16": 4}
INPUT_SHAPE = (1, 3, 224, 224)
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src" / "convlayer" / "bench" / "networks.json"


def import_torchvision():
    """torchvision, imported beside a CPU torch without its meta registrations (see above)."""
    name = "torchvision._meta_registrations"
    sys.modules.setdefault(name, types.ModuleType(name))
    import torchvision

    return torchvision


def _symmetric_padding(module: torch.nn.Conv2d) -> list[int]:
    """``[p_h, p_w]``: the module's zeros on each side, per axis (its 'valid' and 'same' too)."""
    if module.padding_mode != "zeros":
        raise ValueError(f"{module}: padding_mode must be 'zeros'; got {module.padding_mode!r}")
    if module.padding == "valid":
        return [0, 0]
    if module.padding == "same":  # stride 1: the dilated kernel's span minus one, split in two
        totals = [d * (f - 1) for f, d in zip(module.kernel_size, module.dilation)]
        if any(total % 2 for total in totals):
            raise ValueError(f"{module}: 'same' padding puts {totals} zeros around; not symmetric")
        return [total // 2 for total in totals]
    return list(module.padding)


def layer_config(module: torch.nn.Conv2d, x: torch.Tensor) -> dict:
    """One call of a Conv2d on ``x`` (NCHW) as the bench's JSON records it."""
    return dict(h=x.shape[2], w=x.shape[3], c=x.shape[1], k=module.out_channels,
                f=list(module.kernel_size), strides=list(module.stride),
                padding=_symmetric_padding(module), dilation=list(module.dilation),
                groups=module.groups, bias=module.bias is not None)


def conv_calls(model: torch.nn.Module, x: torch.Tensor) -> list[dict]:
    """The config of each Conv2d call while ``model(x)`` runs, in the order they ran."""
    calls: list[dict] = []
    hooks = [module.register_forward_hook(lambda conv, inputs, out: calls.append(layer_config(conv, inputs[0])))
             for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def collect(calls_by_model: dict[str, list[dict]]) -> dict:
    """``{"layers": [distinct configs], "models": {name: [[layer index, count], ...]}}``."""
    layers: list[dict] = []
    index: dict[str, int] = {}
    models = {}
    for name, calls in calls_by_model.items():
        counts: dict[int, int] = {}
        for config in calls:
            key = json.dumps(config, sort_keys=True)
            if key not in index:
                index[key] = len(layers)
                layers.append(config)
            counts[index[key]] = counts.get(index[key], 0) + 1
        models[name] = [[i, count] for i, count in counts.items()]
    return dict(layers=layers, models=models)


def to_text(data: dict, note: str) -> str:
    """The JSON, one layer and one model per line, so that a diff reads layer by layer."""
    layers = ",\n".join(f"    {json.dumps(layer)}" for layer in data["layers"])
    models = ",\n".join(f"    {json.dumps(name)}: {json.dumps(pairs)}" for name, pairs in data["models"].items())
    return (f'{{\n  "note": {json.dumps(note)},\n  "layers": [\n{layers}\n  ],\n'
            f'  "models": {{\n{models}\n  }}\n}}\n')


def record(names, torchvision) -> dict:
    """Build each named model, record its Conv2d calls, keep the layers it is cut to."""
    calls_by_model = {}
    for name in names:
        model = getattr(torchvision.models, name)(weights=None).eval()
        calls = conv_calls(model, torch.zeros(INPUT_SHAPE))
        calls_by_model[name] = calls[:FIRST_LAYERS.get(name)]
        print(f"{name}: {len(calls_by_model[name])} of {len(calls)} Conv2d calls")
    return collect(calls_by_model)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision model names")
    args = parser.parse_args(argv)
    torchvision = import_torchvision()
    data = record(args.models.split(","), torchvision)
    note = (f"Conv2d layers of torchvision {torchvision.__version__} models on a {INPUT_SHAPE} input, "
            f"recorded by benchmarks/record_networks.py; first layers only: {FIRST_LAYERS}")
    temporary = args.output.with_name(f"{args.output.name}.tmp{os.getpid()}")
    temporary.write_text(to_text(data, note))
    os.replace(temporary, args.output)
    print(f"{len(data['layers'])} distinct layers; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
