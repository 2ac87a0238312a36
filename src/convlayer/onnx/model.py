"""``OnnxModel``: a prepared graph, run node by node on convlayer's ops."""

from __future__ import annotations

import numpy as np

from . import fused, layout
from ._table import AXIS, BROADCAST, OPS, PLAIN, SAME, SHAPE, SPATIAL
from .graph import Graph
from .elementwise import INPLACE, binary_into
from .prepare import last_uses


class OnnxModel:
    """An ONNX model run with convlayer's ops (see :func:`convlayer.onnx.load`).

    Attributes
    ----------
    graph : Graph
        The checked and folded graph: nodes in run order, constants by name.
    input_names, output_names : list of str
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.input_names = [t.name for t in graph.inputs]
        self.output_names = [t.name for t in graph.outputs]
        self._freed = last_uses(graph)

    def __call__(self, x) -> np.ndarray:
        """The one output of a one-input, one-output model, for input ``x``."""
        if len(self.input_names) != 1 or len(self.output_names) != 1:
            raise ValueError(f"model(x) needs a model with one input and one output; this one has inputs "
                             f"{self.input_names} and outputs {self.output_names}: use model.run({{...}})")
        return self.run({self.input_names[0]: x})[self.output_names[0]]

    def run(self, feeds: dict, *, trace=None) -> dict:
        """Every graph output, by name, for the inputs ``feeds`` (name -> array).

        ``trace(node, inputs, outputs, channels_last)``, if given, sees every node's arrays
        as it runs (the summary reads shapes this way).
        """
        missing = [name for name in self.input_names if name not in feeds]
        unknown = [name for name in feeds if name not in self.input_names]
        if missing or unknown:
            raise ValueError(f"inputs must be {self.input_names}; got {sorted(feeds)}")
        values = {name: (value, False) for name, value in self.graph.constants.items()}
        for tensor in self.graph.inputs:
            values[tensor.name] = (self._input(tensor, feeds[tensor.name]), False)
        kept = {id(array) for array, _ in values.values()}  # the caller's arrays and the weights
        for node, freed in zip(self.graph.nodes, self._freed):
            inputs = [values.get(name, (None, False)) if name else (None, False) for name in node.inputs]
            owned = [name in freed and node.inputs.count(name) == 1 and _owns(array, kept)
                     for name, (array, _) in zip(node.inputs, inputs)]
            try:
                if trace is not None and "_parts" in node.attrs:  # a fused node: its layers one by one, traced
                    results, flag = _run_parts(node.attrs["_parts"], values, trace)
                else:
                    results, flag = _run_node(node, inputs, owned)
            except (ValueError, TypeError) as error:
                raise type(error)(f"node {node.name!r} ({node.op}): {error}") from None
            kept.update(_viewed(results, inputs))
            if trace is not None and "_parts" not in node.attrs:
                trace(node, inputs, results, flag)
            for name, result in zip(node.outputs, results):
                values[name] = (result, flag)
            for name in freed:
                del values[name]
        return {name: _declared(*values[name]) for name in self.output_names}

    def _input(self, tensor, value) -> np.ndarray:
        array = np.asarray(value)
        if tensor.dtype is not None and array.dtype != tensor.dtype:
            array = array.astype(tensor.dtype)
        if tensor.shape is not None:
            fixed = [(got, want) for got, want in zip(array.shape, tensor.shape) if isinstance(want, int)]
            if array.ndim != len(tensor.shape) or any(got != want for got, want in fixed):
                raise ValueError(f"input {tensor.name!r} must have shape {_dims(tensor.shape)}; got {array.shape}")
        return array

    def summary(self, input_shape=None, *, show: bool = True) -> str:
        """The per-layer table of :func:`convlayer.onnx.summary.table`; printed unless ``show=False``."""
        from .summary import table

        text = table(self, input_shape)
        if show:
            print(text)
        return text

    def __repr__(self) -> str:
        return f"OnnxModel({self.graph.name!r}, {len(self.graph.nodes)} nodes, inputs {self.input_names})"


def _dims(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) + ")"


def _declared(array, channels_last) -> np.ndarray:
    return layout.to_first(array) if channels_last else array


def _owns(array, kept) -> bool:
    """Whether ``array`` is a node's own new float array (not a view, not the caller's, not a
    weight, not an input passed through by Identity or Dropout)."""
    return (isinstance(array, np.ndarray) and array.base is None and id(array) not in kept
            and np.issubdtype(array.dtype, np.floating))


def _viewed(results, inputs) -> list:
    """The ids of the inputs whose memory a result holds (Identity and Dropout pass an input
    through, Reshape or Flatten return a view): a later node may not write over them even
    where it reads them last, since the result lives on."""
    return [id(array) for array, _ in inputs if isinstance(array, np.ndarray)
            and any(r is array or (isinstance(r, np.ndarray) and r.base is array) for r in results)]


def _run_parts(parts, values: dict, trace):
    """Run a fused node's original nodes in order, each traced; return the last's outputs."""
    local = {}
    for part in parts:
        inputs = [local.get(name) or values.get(name, (None, False)) if name else (None, False)
                  for name in part.inputs]
        results, flag = _run_node(part, inputs)
        trace(part, inputs, results, flag)
        local.update((name, (result, flag)) for name, result in zip(part.outputs, results))
    return results, flag


def _run_node(node, values, owned=None):
    """Run one node on ``values`` [(array, channels_last)]; return (outputs, channels_last).

    ``owned[i]`` says input i is a new array no later node reads: an element-wise op may
    write its result over it.
    """
    arrays = [array for array, _ in values]
    flags = [flag for _, flag in values]
    owned = owned or [False] * len(values)
    if node.domain == fused.DOMAIN:  # made by prepare, never read from a file (check refuses other domains)
        x = arrays[0] if flags[0] else layout.to_last(arrays[0])
        return [fused.run(node, x, owned[0] and flags[0], *arrays[1:])], True
    entry = OPS[node.op]
    kind = entry.kind
    if kind == SAME:
        if owned[0] and node.op in INPLACE:
            return [INPLACE[node.op](node, *arrays)], flags[0]
        return [entry.run(node, *arrays)], flags[0]
    if kind == SHAPE:
        return [entry.run(node, flags, *arrays)], False
    if kind == SPATIAL:
        x = arrays[0]
        if x.ndim != 4 and not (x.ndim == 2 and node.op == "BatchNormalization"):  # (n, c) is channels-last
            raise ValueError(f"needs a 4-D input (n, c, h, w); got shape {x.shape}")
        x = layout.to_last(x) if x.ndim == 4 and not flags[0] else x
        rest = [_first(a, f) for a, f in zip(arrays[1:], flags[1:])]
        return [entry.run(node, x, *rest)], x.ndim == 4
    if kind == BROADCAST:
        last = any(flags) and max(np.ndim(a) for a in arrays) <= 4
        aligned = [_aligned(a, f, last) for a, f in zip(arrays, flags)]
        mine = [own and a is b for own, a, b in zip(owned, arrays, aligned)]
        result = binary_into(node, *aligned, mine) if len(aligned) == 2 else None
        return [entry.run(node, *aligned) if result is None else result], last
    if kind == AXIS:
        last = flags[0] and all(f or a is None or np.ndim(a) != 4 for a, f in zip(arrays, flags))
        if node.op == "Concat":
            last = any(flags) and all(np.ndim(a) == 4 for a in arrays)
            arrays = [_aligned(a, f, last) for a, f in zip(arrays, flags)]
        else:
            arrays = [arrays[0] if last else _first(arrays[0], flags[0])] + [
                _first(a, f) for a, f in zip(arrays[1:], flags[1:])]
        result, flag = entry.run(node, last, *arrays)
        return [result], flag
    assert kind == PLAIN, kind
    return [entry.run(node, *[_first(a, f) for a, f in zip(arrays, flags)])], False


def _first(array, channels_last):
    return layout.to_first(array) if channels_last else array


def _aligned(array, channels_last, last):
    """``array`` in the layout chosen for an element-wise op (``last``: channels-last)."""
    if array is None or channels_last == last:
        return array
    return layout.to_last(array) if last else layout.to_first(array)
