"""Symbolic tensors: what calling a layer on a layer's output builds, for graph models.

``nn.Input(shape)`` starts a graph; ``layer(symbol)`` (or ``layer([a, b])`` for Add and
Concat) records the call and, when the input shape is known, the output's shape.
:class:`convlayer.nn.Model` runs the recorded calls in order.
"""

from __future__ import annotations


class Symbol:
    """A value of a graph model: the layer that makes it (None for an input), from what."""

    def __init__(self, layer, inputs: list, shape: "tuple | None", name: str):
        self.layer, self.inputs, self.shape, self.name = layer, list(inputs), shape, name

    @classmethod
    def connect(cls, layer, inputs) -> "Symbol":
        """The symbol of ``layer`` applied to ``inputs`` (one symbol, or a list for Add and Concat)."""
        many = isinstance(inputs, (list, tuple))
        if many != layer.takes_list:
            wanted = "a list of symbols" if layer.takes_list else "one symbol"
            raise TypeError(f"{layer!r} takes {wanted}; got {type(inputs).__name__}")
        parts = list(inputs) if many else [inputs]
        for part in parts:
            if not isinstance(part, Symbol):
                raise TypeError(f"{layer!r} must be called on nn.Input(...) or another layer's output; got "
                                f"{type(part).__name__} (use layer.forward(x) to compute)")
        shapes = [part.shape for part in parts]
        shape = None
        if all(s is not None for s in shapes):
            shape = tuple(layer.output_shape(shapes if many else shapes[0]))
        return cls(layer, parts, shape, f"{type(layer).__name__}")

    def __repr__(self) -> str:
        return f"Symbol({self.name}, shape={self.shape})"


def Input(shape=None, name: str = "input") -> Symbol:  # noqa: N802 (a constructor, as Keras names it)
    """The input of a graph model: one example's shape, e.g. ``(32, 32, 3)`` (None if unknown).

    >>> Input((8, 8, 1))
    Symbol(input, shape=(8, 8, 1))
    """
    return Symbol(None, [], None if shape is None else tuple(shape), name)
