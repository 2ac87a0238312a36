"""From a read graph to a runnable one: refuse what cannot be run exactly, then fold.

1. :func:`check`: every node's op, attributes and outputs must be in the table
   (:mod:`._table`); anything else is refused here, at load time, with one line naming the
   node, the op and what is missing.
2. :func:`fold_constants`: nodes whose inputs are all constants (Constant, Identity on
   weights, shape arithmetic) run once now.
3. :func:`fold_batch_norms`: a BatchNormalization right after a Conv (its only reader)
   becomes the Conv's kernel and bias: ``kernel * scale`` and ``(bias - mean) * scale +
   beta`` per output channel, computed in float64 and rounded once.
4. :func:`fuse_swish`: ``Mul(x, Sigmoid(x))`` (SiLU, EfficientNet's activation) becomes one
   Swish node when the Mul alone reads the Sigmoid: one pass over x instead of two ops and
   an array between them.
5. :func:`fuse_activations`: an activation (Relu, Clip, Swish, ...) that alone reads a
   Conv's output becomes part of that Conv: its bias and the activation in one pass over
   each chunk of the output.
6. Kernels are laid out channels-last once, not on every call.
7. :func:`.fused.fuse`: each squeeze-excite block (GlobalAveragePool, two 1x1 Convs, Mul)
   becomes one node, with the activated Conv before it where only the block reads its output
   and the 1x1 Conv after it where only that Conv reads the block's.
"""

from __future__ import annotations

import numpy as np

from .. import normalization
from . import fused
from ._table import OPS, SHAPE
from .elementwise import CLAMPS, STEPS
from .graph import Graph, Node
from .spatial import conv_kernel, transpose_kernel


def check(graph: Graph) -> None:
    """Raise ValueError, one line, for the first node convlayer cannot run exactly."""
    for node in graph.nodes:
        where = f"node {node.name!r} ({node.op})"
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(f"{where}: operators of domain {node.domain!r} are not supported (only ONNX's own)")
        entry = OPS.get(node.op)
        if entry is None:
            raise ValueError(f"{where}: the operator {node.op} is not supported; supported: {', '.join(sorted(OPS))}")
        for name, value in node.attrs.items():
            if name not in entry.attrs:
                raise ValueError(f"{where}: the attribute {name!r} is not supported"
                                 f"{'; supported: ' + ', '.join(sorted(entry.attrs)) if entry.attrs else ''}")
            problem = entry.attrs[name](value)
            if problem is not None:
                raise ValueError(f"{where}: {name} {problem}")
        used = [name for name in node.outputs[entry.outputs:] if name]
        if used:
            raise ValueError(f"{where}: output {len(node.outputs) - len(used)} ({used[0]!r}) is not supported "
                             f"(only the first {entry.outputs})")
        _check_values(graph, node, where)


def _constant_input(graph, node, index):
    return graph.constants.get(node.inputs[index]) if len(node.inputs) > index and node.inputs[index] else None


def _check_values(graph, node, where):
    """Refusals that depend on a constant input's value, known at load time."""
    if node.op in ("Conv", "ConvTranspose") and len(node.inputs) > 1 and node.inputs[1] in graph.constants:
        rank = graph.constants[node.inputs[1]].ndim
        if rank != 4:
            raise ValueError(f"{where}: a kernel of rank {rank} is not supported (only 2-D convolutions: rank 4)")
    if node.op in ("MaxPool", "AveragePool") and "kernel_shape" not in node.attrs:
        raise ValueError(f"{where}: kernel_shape is missing")
    scales = graph.constants.get(node.inputs[2 if graph.opset >= 11 else 1]) if node.op == "Resize" else None
    if scales is not None and scales.size and (scales.size != 4 or scales[0] != 1 or scales[1] != 1):
        raise ValueError(f"{where}: scales {scales.tolist()} resize more than the two image axes of a 4-D "
                         f"tensor (only those are supported)")
    training = _constant_input(graph, node, 2) if node.op == "Dropout" else None
    if training is not None and bool(training):
        raise ValueError(f"{where}: training_mode=True is not supported (inference only)")
    pads = (_constant_input(graph, node, 1) if graph.opset >= 11 else node.attrs.get("pads")) if node.op == "Pad" else None
    if pads is not None and min(list(pads), default=0) < 0:
        raise ValueError(f"{where}: negative pads {list(map(int, pads))} (cropping) are not supported")


def readers(graph: Graph) -> dict:
    """How many node inputs (and graph outputs) read each value."""
    count = {}
    for name in [n for node in graph.nodes for n in node.inputs] + [t.name for t in graph.outputs]:
        count[name] = count.get(name, 0) + 1
    return count


def fold_batch_norms(graph: Graph) -> None:
    """Fold each BatchNormalization that alone reads a Conv's output into that Conv."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    count, consts = readers(graph), graph.constants
    kept = []
    for node in graph.nodes:
        conv = producer.get(node.inputs[0]) if node.op == "BatchNormalization" else None
        if (conv is None or conv.op != "Conv" or count.get(conv.outputs[0]) != 1 or conv.inputs[1] not in consts
                or not all(name in consts for name in node.inputs[1:5])
                or (len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in consts)):
            kept.append(node)
            continue
        gamma, beta, mean, variance = (consts[name] for name in node.inputs[1:5])
        scale, shift = normalization.affine(mean, variance, gamma, beta, node.attrs.get("epsilon", 1e-5))
        weight = consts[conv.inputs[1]]
        bias = consts[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(len(scale))
        folded = f"{conv.name}/folded_{node.name}"
        consts[folded + "/W"] = weight.astype(np.float64) * scale[:, None, None, None]  # rounded once, when
        consts[folded + "/B"] = bias.astype(np.float64) * scale + shift  # laid out in the weight's dtype
        conv.attrs["_dtype"] = weight.dtype
        conv.inputs = [conv.inputs[0], folded + "/W", folded + "/B"]
        conv.outputs = list(node.outputs[:1])
        conv.attrs["_folded"] = node.name
    graph.nodes = kept


def fuse_swish(graph: Graph) -> None:
    """Make each ``Mul(x, Sigmoid(x))`` (either order) whose Sigmoid output only that Mul
    reads one ``Swish`` node (alpha 1) named after the Mul."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    count = readers(graph)
    fused = set()
    for index, node in enumerate(graph.nodes):
        if node.op != "Mul" or len(node.inputs) != 2:
            continue
        for position in (0, 1):
            gate = producer.get(node.inputs[position])
            x = node.inputs[1 - position]
            if gate is not None and gate.op == "Sigmoid" and gate.inputs[0] == x and count.get(gate.outputs[0]) == 1:
                graph.nodes[index] = Node(node.name, "Swish", [x], list(node.outputs), {"alpha": 1.0, "_fused": gate.name})
                fused.add(id(gate))
                break
    graph.nodes = [node for node in graph.nodes if id(node) not in fused]


def fuse_activations(graph: Graph) -> None:
    """Make each activation of :data:`.elementwise.STEPS` that alone reads a Conv's output
    (and whose other inputs, Clip's bounds, are constants) part of that Conv: the Conv's
    ``_activation`` (with Clip's bounds as attributes), run over its output after the bias.

    Measured through convlayer.onnx (same process, fastest of several runs), the bias as a
    pass of its own: mobilenet_v2 batch 8 107.8 ms with it, 89.2 with no bias at all;
    efficientnet_b0 172 and 163 (with 16 or 24 channels, ``out += bias`` is a short loop per
    pixel). Fused, against the passes apart: mobilenet_v2 batch 8 104.6 -> 92.5 ms,
    efficientnet_b0 batch 1 28.6 -> 26.7 and batch 8 177 -> 153.

    A Relu or Clip that alone reads an Add's output (a residual block's sum) becomes that
    Add's ``_activation`` the same way: the sum and the clamp in one pass over the values
    (:func:`.elementwise.binary_into`).
    """
    producer = {out: node for node in graph.nodes for out in node.outputs}
    count, consts, outputs = readers(graph), graph.constants, {t.name for t in graph.outputs}
    kept = []
    for node in graph.nodes:
        conv = producer.get(node.inputs[0]) if node.op in STEPS and node.inputs else None
        bounds = [name for name in node.inputs[1:] if name]
        takes = conv is not None and (conv.op == "Conv" or conv.op == "Add" and node.op in CLAMPS)
        if (not takes or "_activation" in conv.attrs or count.get(conv.outputs[0]) != 1
                or conv.outputs[0] in outputs or not all(name in consts for name in bounds)):
            kept.append(node)
            continue
        attrs = dict(node.attrs)
        for key, name in zip(("min", "max"), node.inputs[1:]):
            if name:
                attrs[key] = consts[name]
        conv.attrs["_activation"] = Node(node.name, node.op, node.inputs[:1], list(node.outputs), attrs)
        conv.outputs = list(node.outputs)
    graph.nodes = kept


def fold_constants(graph: Graph) -> None:
    """Run now every node whose inputs are all constants; its outputs become constants."""
    kept = []
    for node in graph.nodes:
        entry = OPS[node.op]
        if all(not name or name in graph.constants for name in node.inputs) and entry.kind != "spatial":
            args = [graph.constants[name] if name else None for name in node.inputs]
            result = entry.run(node, [False] * len(args), *args) if entry.kind == SHAPE else (
                entry.run(node, False, *args) if entry.kind == "axis" else entry.run(node, *args))
            result = result[0] if entry.kind == "axis" else result
            graph.constants[node.outputs[0]] = np.asarray(result)
        else:
            kept.append(node)
    graph.nodes = kept


def lay_out_kernels(graph: Graph) -> None:
    """Give Conv and ConvTranspose their channels-last kernel, and Gemm its transposed weights."""
    for node in graph.nodes:
        weight = graph.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
        if weight is None:
            continue
        if node.op == "Conv":
            dtype = node.attrs.get("_dtype", weight.dtype)
            node.attrs["_kernel"] = conv_kernel(weight).astype(dtype, copy=False)
            if len(node.inputs) > 2 and node.inputs[2] in graph.constants:
                node.attrs["_bias"] = graph.constants[node.inputs[2]].astype(dtype)
        elif node.op == "ConvTranspose":
            node.attrs["_kernel"] = transpose_kernel(weight)
        elif node.op == "Gemm" and node.attrs.get("transB", 0):
            node.attrs["_weights"] = np.ascontiguousarray(weight.T)


def prepare(graph: Graph) -> Graph:
    """Check, fold and lay out ``graph`` in place; return it."""
    check(graph)
    for node in graph.nodes:
        node.attrs["_opset"] = graph.opset
    fold_constants(graph)
    fold_batch_norms(graph)
    fuse_swish(graph)
    fuse_activations(graph)
    lay_out_kernels(graph)
    fused.fuse(graph, readers(graph))
    return graph


def last_uses(graph: Graph) -> list:
    """For each node, the values no later node (nor the graph's outputs) reads: freed after it."""
    last = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = index
    keep = {t.name for t in graph.outputs} | set(graph.constants) | {t.name for t in graph.inputs}
    freed = [[] for _ in graph.nodes]
    for name, index in last.items():
        if name and name not in keep:
            freed[index].append(name)
    return freed


__all__ = ["Node", "check", "fold_batch_norms", "fold_constants", "fuse_activations", "fuse_swish", "lay_out_kernels",
           "last_uses", "prepare", "readers"]
