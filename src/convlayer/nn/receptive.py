"""Receptive fields: which input pixels each unit of a chain of layers sees.

:meth:`convlayer.nn.Sequential.receptive_field` documents the recurrence; this module runs it.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import shapes
from .._args import as_pair, padding_2d
from .layers import Dense, Dropout, Flatten, Layer, ReLU
from .pool import AvgPool2D, LPPool2D, MaxPool2D, _Binned


def receptive_field(layers: list, shape: "tuple | None") -> "list[ReceptiveField]":
    """One :class:`ReceptiveField` per layer of ``layers`` from an input of one example's ``shape``,
    up to the first layer that sees the whole input."""
    size, jump, start = (1, 1), (1, 1), (0, 0)
    records = []
    for index, layer in enumerate(layers):
        if isinstance(layer, (Dense, Flatten, _Binned)):
            break
        window = _window(layer)
        if window is not None:
            kernel, strides, padding, dilation = window
            pads = _pads_before(layer, shape, kernel, strides, padding, dilation)
            k_eff = tuple(shapes.span(k, d) for k, d in zip(kernel, dilation))
            size = tuple(r + (k - 1) * j for r, k, j in zip(size, k_eff, jump))
            start = tuple(s - p * j for s, p, j in zip(start, pads, jump))
            jump = tuple(j * s for j, s in zip(jump, strides))
        shape = layer.output_shape(shape) if shape is not None else None
        records.append(ReceptiveField(index, repr(layer), size, jump, start, shape))
    return records


class ReceptiveField(NamedTuple):
    """The input pixels one unit of a layer's output sees; pairs are (vertical, horizontal)."""

    index: int  # the layer's position in the model
    layer: str  # its repr
    size: tuple  # field height and width, in input pixels
    jump: tuple  # input pixels between neighbouring units (the product of the strides so far)
    start: tuple  # first input row and column of unit (0, 0)'s field; negative: padding
    output_shape: "tuple | None"  # one example's shape after the layer, if known


def _window(layer: Layer):
    """(kernel, strides, padding, dilation) of a sliding-window layer; None if it keeps the field."""
    if isinstance(layer, (ReLU, Dropout)):
        return None
    if isinstance(layer, (MaxPool2D, AvgPool2D, LPPool2D)):
        pool = as_pair("pool_size", layer.pool_size)
        strides = pool if layer.strides is None else as_pair("strides", layer.strides)
        return pool, strides, layer.padding, as_pair("dilation", layer.options["dilation"])
    options = getattr(layer, "options", None)
    if hasattr(layer, "kernel_size") and isinstance(options, dict):  # Conv2D and its relatives
        return (layer.kernel_size, as_pair("strides", options.get("strides", 1)),
                options.get("padding", "valid"), as_pair("dilation", options.get("dilation", 1)))
    raise ValueError(f"receptive_field does not know how {layer!r} maps its input; it knows Conv2D, "
                     f"MaxPool2D, AvgPool2D, LPPool2D, ReLU, Dropout, Flatten, Dense and the global and adaptive pools")


def _pads_before(layer, shape, kernel, strides, padding, dilation) -> tuple:
    """Zeros before the first row and column; the size matters only for 'same' words."""
    form = padding_2d(padding)
    if isinstance(form, str) and form in ("same", "same_lower"):
        if shape is None:
            raise ValueError(f"receptive_field needs input_shape, one example's shape such as "
                             f"(28, 28, 1), because {layer!r} pads with {form!r}; got None")
        size_hw = tuple(shape[:2])
    else:
        size_hw = (0, 0)  # 'valid', 'full' and explicit padding do not depend on the size
    (top, _), (left, _) = shapes.resolve_padding(size_hw, kernel, strides, padding, dilation)
    return top, left
