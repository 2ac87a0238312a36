"""The model ``convlayer train --data`` trains: a small CNN from options, or a JSON file.

Two forms of ``--model FILE``, one JSON object each:

- the options' small CNN, ``{"conv": [16, 32], "dense": [64], "dropout": 0.25,
  "kernel_size": 3, "batch_norm": false}`` (every key optional, the defaults as shown): per
  ``conv`` entry a convolution with that many filters ('same' padding), a batch norm if asked,
  a ReLU and 2x2 max pooling (while the image is 2 pixels or more); then a flatten, dropout,
  per ``dense`` entry a dense layer and a ReLU, and a dense layer with one output per class;
- any layers of :mod:`convlayer.nn`, ``{"layers": [{"class": "Conv2D", "config":
  {"in_channels": 3, "out_channels": 8, "kernel_size": 3}}, {"class": "ReLU", "config": {}},
  ...]}``, as a saved model's architecture lists them (:mod:`convlayer.nn.saving`); the first
  must take the images' channels and the last give one value per class.
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT = {"conv": [16, 32], "dense": [64], "dropout": 0.25, "kernel_size": 3, "batch_norm": False}


def from_args(args) -> "dict | None":
    """The architecture the options or ``--model`` give; None when neither gives one."""
    options = {key: getattr(args, key) for key in ("conv", "dense", "dropout") if getattr(args, key) is not None}
    if args.model is not None:
        if options:
            raise ValueError(f"--model and --{'/--'.join(options)} both describe the model; give one of them")
        return read(args.model)
    if not options:
        return None
    spec = dict(DEFAULT)
    for key in ("conv", "dense"):
        if key in options:
            spec[key] = _int_list(f"--{key}", options[key])
    if "dropout" in options:
        spec["dropout"] = options["dropout"]
    return check(spec, "the options")


def read(path) -> dict:
    """The architecture in the JSON file ``path``, checked."""
    try:
        spec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"--model {path}: not JSON ({error})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"--model {path}: must hold a JSON object, {{\"conv\": [...], ...}} or "
                         f"{{\"layers\": [...]}}; got {type(spec).__name__}")
    return check(spec, f"--model {path}")


def check(spec: dict, source: str) -> dict:
    if "layers" in spec:
        if set(spec) != {"layers"} or not isinstance(spec["layers"], list):
            raise ValueError(f"{source}: a \"layers\" list stands alone; got keys {sorted(spec)}")
        return spec
    unknown = sorted(set(spec) - set(DEFAULT))
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(DEFAULT)} or \"layers\"")
    spec = {**DEFAULT, **spec}
    for key in ("conv", "dense"):
        values = spec[key]
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                   for v in values):
            raise ValueError(f"{source}: {key} must be a list of positive integers; got {values!r}")
    if not isinstance(spec["kernel_size"], int) or spec["kernel_size"] < 1:
        raise ValueError(f"{source}: kernel_size must be a positive integer; got {spec['kernel_size']!r}")
    if not isinstance(spec["dropout"], (int, float)) or not 0 <= spec["dropout"] < 1:
        raise ValueError(f"{source}: dropout must be in [0, 1); got {spec['dropout']!r}")
    if not isinstance(spec["batch_norm"], bool):
        raise ValueError(f"{source}: batch_norm must be true or false; got {spec['batch_norm']!r}")
    return spec


def build(spec: dict, input_shape: tuple, classes: int, seed: int):
    """The ``Sequential`` model of ``spec`` for images of ``input_shape`` and ``classes`` classes."""
    from .. import nn
    from ..nn import saving

    input_shape = tuple(int(n) for n in input_shape)
    if "layers" in spec:
        layers = saving.layer_list(spec["layers"], "--model")
        model = nn.Sequential(layers, input_shape=input_shape, seed=seed)
        shape = input_shape
        for layer in model.layers:
            shape = tuple(layer.output_shape(shape))
        if shape != (classes,):
            raise ValueError(f"--model: the last layer gives {shape} per image; the data has {classes} classes, "
                             f"so it must give ({classes},)")
        return model
    (h, w, channels), layers = input_shape, []
    for filters in spec["conv"]:
        layers += [nn.Conv2D(channels, filters, spec["kernel_size"])]
        layers += [nn.BatchNorm2D(filters)] if spec["batch_norm"] else []
        layers += [nn.ReLU()]
        if min(h, w) >= 2:
            layers.append(nn.MaxPool2D(2))
            h, w = h // 2, w // 2
        channels = filters
    layers.append(nn.Flatten())
    if spec["dropout"]:
        layers.append(nn.Dropout(spec["dropout"], seed=seed))
    features = h * w * channels
    for units in spec["dense"]:
        layers += [nn.Dense(features, units), nn.ReLU()]
        features = units
    layers.append(nn.Dense(features, classes))
    return nn.Sequential(layers, input_shape=input_shape, seed=seed)


def _int_list(option: str, text: str) -> list:
    """'16,32' -> [16, 32]; '' -> []."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = None
    if values is None or any(v < 1 for v in values):
        raise ValueError(f"{option} must be positive integers separated by commas, such as 16,32; got {text!r}")
    return values
