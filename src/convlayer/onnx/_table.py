"""The operator table: how each ONNX op runs, and which attributes it understands.

Each op module registers its ops with :func:`op`. An entry holds the handler, its layout
kind (see :mod:`.run`) and, per attribute, a check that returns None for a value it
handles or a few words on what is missing. An attribute not in the table is refused: a
model is run exactly or not at all.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

# Layout kinds: what the runner does to a channels-last input before calling the handler.
SPATIAL = "spatial"  # input 0 channels-last; the result is channels-last
SAME = "same"  # element-wise on one input: any layout, kept
BROADCAST = "broadcast"  # element-wise on several: all channels-last if one is (ranks <= 4)
AXIS = "axis"  # axis-aware: gets every input in one layout and the flag, returns its flag
PLAIN = "plain"  # needs the declared (NCHW) layout
SHAPE = "shape"  # reads only the shape: gets the flags, never copies


class Op(NamedTuple):
    run: Callable
    kind: str
    attrs: dict  # attribute name -> check(value) -> None or what is missing
    outputs: int  # how many outputs it computes (more are refused)


OPS: dict = {}


def op(name: str, kind: str, outputs: int = 1, **attrs):
    """Register the decorated function as the handler of ONNX op ``name``."""
    def register(function):
        OPS[name] = Op(function, kind, attrs, outputs)
        return function
    return register


def any_value(value):
    """A check that accepts every value."""
    return None


def one_of(*allowed):
    """A check that accepts only ``allowed``."""
    def check(value):
        if value in allowed:
            return None
        return f"{value!r} is not supported; supported: {', '.join(repr(a) for a in allowed)}"
    return check


def pair():
    """A check for a 2-D attribute: a list of two ints (kernel_shape, strides, dilations)."""
    def check(value):
        return None if len(value) == 2 else f"{list(value)} is not 2-D (only 2-D images are supported)"
    return check


def pads4():
    """A check for 2-D pads: four non-negative ints."""
    def check(value):
        if len(value) != 4:
            return f"{list(value)} is not 2-D (only 2-D images are supported)"
        return None if min(value) >= 0 else f"{list(value)} has negative pads (cropping is not supported)"
    return check


AUTO_PAD = one_of("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
