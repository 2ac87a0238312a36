"""Graph models: residual and concatenating networks written by hand.

``Add`` and ``Concat`` join several values; :class:`Model` runs any graph of layers built
by calling them on :func:`Input` and on each other's outputs (as Keras's functional API)::

    x = nn.Input((32, 32, 16))
    y = nn.ReLU()(nn.BatchNorm2D(16)(nn.Conv2D(16, 16, 3)(x)))
    out = nn.ReLU()(nn.Add()([x, y]))            # a residual block
    model = nn.Model(x, out)

A ``Model`` is a :class:`Sequential` whose layers run in graph order, so ``fit``,
``predict``, ``evaluate``, ``save``/``load`` and ``to_onnx`` work alike; ``nn.Model.load(path)``
(or ``nn.Sequential.load(path)``) rebuilds a saved graph whole.
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .model import Sequential
from .symbolic import Input, Symbol


class Add(Layer):
    """The element-wise sum of several inputs of one shape (a residual connection).

    >>> Add().forward([np.ones((1, 2)), np.ones((1, 2))]).tolist()
    [[2.0, 2.0]]
    """

    takes_list = True

    def forward(self, xs, training=False):
        self._count = len(xs)
        out = np.array(xs[0], dtype=np.result_type(*xs, np.float32), copy=True)
        for x in xs[1:]:
            out += x
        return out

    def backward(self, grad):
        return [grad] * self._count

    def output_shape(self, input_shapes):
        if len({tuple(s) for s in input_shapes}) != 1:
            raise ValueError(f"Add needs inputs of one shape; got {[tuple(s) for s in input_shapes]}")
        return tuple(input_shapes[0])


class Concat(Layer):
    """Join inputs along the channels (the last axis), as DenseNet and U-Net do.

    >>> Concat().forward([np.zeros((1, 4, 4, 2)), np.ones((1, 4, 4, 3))]).shape
    (1, 4, 4, 5)
    """

    takes_list = True

    def forward(self, xs, training=False):
        self._sizes = [x.shape[-1] for x in xs]
        return np.concatenate(xs, axis=-1)

    def backward(self, grad):
        return np.split(grad, np.cumsum(self._sizes)[:-1], axis=-1)

    def output_shape(self, input_shapes):
        rest = {tuple(s[:-1]) for s in input_shapes}
        if len(rest) != 1:
            raise ValueError(f"Concat needs inputs that differ only in channels; got {[tuple(s) for s in input_shapes]}")
        return tuple(input_shapes[0][:-1]) + (sum(s[-1] for s in input_shapes),)


class Model(Sequential):
    """A graph of layers from ``inputs`` (an :func:`Input`) to ``outputs`` (a layer's symbol).

    ``layers`` lists them in run order; each layer may appear once (a layer keeps what its
    backward needs from its one call).

    >>> from convlayer import nn
    >>> x = nn.Input((4, 4, 2))
    >>> model = nn.Model(x, nn.Add()([x, nn.Conv2D(2, 2, 3, seed=0)(x)]))
    >>> model.forward(np.zeros((1, 4, 4, 2), np.float32)).shape
    (1, 4, 4, 2)
    """

    def __init__(self, inputs: Symbol, outputs: Symbol, *, seed=None):
        if not isinstance(inputs, Symbol) or inputs.layer is not None:
            raise TypeError(f"inputs must be an nn.Input(...); got {inputs!r}")
        self.order = _run_order(inputs, outputs)
        self.inputs, self.outputs = inputs, outputs
        super().__init__([s.layer for s in self.order], input_shape=inputs.shape, seed=seed)

    @classmethod
    def _rebuild(cls, layers: list, input_shape, inputs) -> "Model":
        """The graph whose layer ``i`` reads ``inputs[i]`` (``'x'``: the input; else a layer index)."""
        x, symbols = Input(input_shape), []
        for layer, reads in zip(layers, inputs):
            parts = [x if i == "x" else symbols[i] for i in reads]
            symbols.append(layer(parts if layer.takes_list else parts[0]))
        return cls(x, symbols[-1])

    def _check_shapes(self) -> None:
        """Nothing to do: calling each layer on its inputs' symbols checked the shapes."""

    def forward(self, x, training=False):
        self._check_batch(x)
        values = {id(self.inputs): x}
        for symbol in self.order:
            args = [values[id(part)] for part in symbol.inputs]
            values[id(symbol)] = symbol.layer.forward(args if symbol.layer.takes_list else args[0], training=training)
        return values[id(self.outputs)]

    def backward(self, grad):
        grads = {id(self.outputs): grad}
        for symbol in reversed(self.order):
            grad_in = symbol.layer.backward(grads.pop(id(symbol)))
            for part, g in zip(symbol.inputs, grad_in if symbol.layer.takes_list else [grad_in]):
                grads[id(part)] = g if id(part) not in grads else grads[id(part)] + g
        return grads[id(self.inputs)]

    def summary(self, input_shape=None, *, show: bool = True) -> str:
        """Each layer, what it reads (``<- 0, 3``: layer indices, ``x``: the input), its output
        shape and parameter count, and a total."""
        index = {id(s): i for i, s in enumerate(self.order)}
        rows = [("Layer", "Inputs", "Output shape", "Param #")]
        for i, symbol in enumerate(self.order):
            reads = ", ".join("x" if p is self.inputs else str(index[id(p)]) for p in symbol.inputs)
            shape = "?" if symbol.shape is None else str((None,) + symbol.shape)
            rows.append((f"{i}: {symbol.layer!r}", reads, shape, f"{symbol.layer.num_params:,}"))
        widths = [max(len(row[col]) for row in rows) for col in range(4)]
        line = "=" * (sum(widths) + 6)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"  # noqa
        text = "\n".join([line, fmt(rows[0]), line] + [fmt(r) for r in rows[1:]]
                         + [line, f"Total params: {self.num_params:,}"])
        if show:
            print(text)
        return text

    def receptive_field(self, input_shape=None):
        raise ValueError("receptive_field follows one chain of layers (Sequential); a graph Model has several paths")


def _run_order(inputs: Symbol, outputs: Symbol) -> list:
    """The layer symbols between ``inputs`` and ``outputs``, each after what it reads."""
    order, seen, layers = [], set(), set()

    def visit(symbol):
        if id(symbol) in seen or symbol is inputs:
            return
        if symbol.layer is None:
            raise ValueError(f"outputs depend on {symbol!r}, which is not the model's input")
        seen.add(id(symbol))
        for part in symbol.inputs:
            visit(part)
        if id(symbol.layer) in layers:
            raise ValueError(f"{symbol.layer!r} is called twice; a layer may appear once in a Model "
                             f"(it keeps what its backward needs from its one call)")
        layers.add(id(symbol.layer))
        order.append(symbol)

    visit(outputs)
    return order


__all__ = ["Add", "Concat", "Input", "Model"]
