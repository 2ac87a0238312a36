"""Saved models: weights and architecture in one ``.npz`` file, without pickle.

A file written by :meth:`Sequential.save <convlayer.nn.Sequential.save>` holds every parameter
and buffer under ``'{index}.{Layer}.{name}'`` and, under ``'__architecture__'``, a JSON string
that rebuilds the model::

    {"format": "convlayer.nn/1", "class": "Sequential", "input_shape": [8, 8, 1],
     "layers": [{"class": "Conv2D", "config": {"in_channels": 1, ...}}, ...]}

Each layer's ``config`` is its constructor's keyword arguments (:meth:`Layer.config
<convlayer.nn.Layer.config>`); a layer argument (``MaxUnpool2D``'s pool) is written
``{"layer": index}``. A graph :class:`~convlayer.nn.Model` adds each layer's ``"inputs"``
(``"x"`` for the model's input, else a layer index); its output is the last layer's.

Only layer classes that convlayer knows are built from a file: those of :mod:`convlayer.nn`
and subclasses of :class:`~convlayer.nn.Layer` defined (imported) in the running program, by
``'module.QualName'``. Nothing in a file is executed.
"""

from __future__ import annotations

import json
import types

import numpy as np

from .layers import Layer

ARCHITECTURE_KEY = "__architecture__"
FORMAT = "convlayer.nn/1"


def architecture(model) -> "str | None":
    """The JSON text that rebuilds ``model``'s layers, or None if a layer cannot say how."""
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    layers = []
    for layer in model.layers:
        config = layer.config()
        if config is None:
            return None
        layers.append({"class": _class_name(type(layer)), "config": {k: _plain(v, index) for k, v in config.items()}})
    description = {"format": FORMAT, "class": type(model).__name__,
                   "input_shape": None if model.input_shape is None else list(model.input_shape), "layers": layers}
    order = getattr(model, "order", None)
    if order is not None:  # a graph Model: what each layer reads
        for entry, symbol in zip(layers, order):
            entry["inputs"] = ["x" if part is model.inputs else index[id(part.layer)] for part in symbol.inputs]
    return json.dumps(description)


def read(text: str, path) -> tuple:
    """What the architecture ``text`` (read from ``path``) describes: ``(model class name, input
    shape, layers with new weights, inputs)``, ``inputs`` being each layer's list of what it reads
    (``'x'`` or a layer index) for a graph model, else None."""
    try:
        description = json.loads(text)
        if description.get("format") != FORMAT:
            raise ValueError(f"{path}: the stored architecture has format {description.get('format')!r}; this "
                             f"convlayer reads {FORMAT!r}")
        shape = description["input_shape"]
        inputs = [entry["inputs"] for entry in description["layers"]] if description["class"] == "Model" else None
        entries = description["layers"]
    except (KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: its stored architecture cannot be read ({error!r})") from None
    return description["class"], None if shape is None else tuple(shape), layer_list(entries, path), inputs


def layer_list(entries: list, source: str) -> list:
    """Layers from a list of ``{"class": ..., "config": {...}}`` entries, as :func:`architecture`
    writes them (``convlayer train --model`` reads this form); errors name ``source``."""
    built = []
    try:
        for entry in entries:
            built.append(_layer(entry, built))
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise ValueError(f"{source}: layer {len(built)} cannot be built ({type(error).__name__}: {error}); each "
                         f"entry is {{\"class\": \"Conv2D\", \"config\": {{...}}}}") from None
    except ValueError as error:
        raise ValueError(f"{source}: layer {len(built)}: {error}") from None
    return built


def _layer(entry: dict, built: list) -> Layer:
    cls = _known_classes().get(entry["class"])
    if cls is None:
        raise ValueError(f"layer class {entry['class']!r} is not known: import the module that defines it "
                         f"before loading (convlayer builds only Layer subclasses the program has imported)")
    arguments = {k: _restored(v, built) for k, v in entry["config"].items()}
    return cls(**arguments)


def _plain(value, index: dict):
    """``value`` as JSON can hold it: tuples as lists, NumPy scalars as numbers, layers as indices."""
    if isinstance(value, Layer):
        if id(value) not in index:
            raise ValueError(f"{value!r} is an argument of a layer but not in the model")
        return {"layer": index[id(value)]}
    if isinstance(value, (tuple, list)):
        return [_plain(v, index) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restored(value, built: list):
    """The inverse of :func:`_plain`: lists back to tuples, ``{"layer": i}`` to that layer."""
    if isinstance(value, dict):
        return built[value["layer"]]
    if isinstance(value, list):
        return tuple(_restored(v, built) for v in value)
    return value


def _class_name(cls: type) -> str:
    return cls.__name__ if cls.__module__.startswith("convlayer.nn.") else f"{cls.__module__}.{cls.__qualname__}"


def _known_classes() -> dict:
    """Every Layer subclass defined so far, by the name :func:`_class_name` gives it."""
    return {_class_name(cls): cls for cls in _family(Layer)}


def _family(base: type) -> list:
    """``base`` and every subclass of it defined so far, at any depth."""
    found, stack = [], [base]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def model_class(base: type, name: str, path) -> type:
    """``base`` (Sequential) or the subclass of it (graph.Model) called ``name`` in a saved file."""
    kinds = {kind.__name__: kind for kind in _family(base)}
    if name not in kinds:
        raise ValueError(f"{path}: model class {name!r} is not known; expected one of {sorted(kinds)}")
    return kinds[name]


class ClassOrInstance:
    """A method that does one thing called on the class and another called on an instance.

    ``Sequential.load(path)`` is :meth:`~convlayer.nn.Sequential.from_file` (the whole model from a file);
    ``model.load(path)`` is :meth:`~convlayer.nn.Sequential.load_weights` (the weights into that model).
    """

    def __init__(self, on_class: str, on_instance: str, doc: str):
        self.on_class, self.on_instance, self.__doc__ = on_class, on_instance, doc

        def load(cls, path):  # on the class: a bound method with this help (what help() and autodoc show)
            return getattr(cls, on_class)(path)

        load.__doc__ = doc
        self._on_class = load

    def __set_name__(self, owner, name):
        self._on_class.__name__, self._on_class.__qualname__ = name, f"{owner.__name__}.{name}"
        self._on_class.__module__ = owner.__module__

    def __get__(self, instance, owner):
        if instance is not None:
            return getattr(instance, self.on_instance)
        return types.MethodType(self._on_class, owner)
