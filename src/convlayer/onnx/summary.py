"""The per-layer table of an ONNX model: what ``model.summary()`` and ``convlayer explain
MODEL.onnx`` print.

One row per node that changes the image (convolutions, pools, resizes, joins, the dense
head): op, output shape, kernel, strides, dilation, groups, the padding on each side and
the rule that produced it, the parameter count by the tutorial's formula
(``(Fh * Fw * C / groups + 1) * K``), the multiply-adds, and the receptive field and jump.
A row whose padding is asymmetric (TensorFlow 'SAME' with stride 2 on an even size puts
the odd zero after) is flagged: a PyTorch port must write that pad out explicitly.

Shapes come from one run on zeros of the input shape (batch 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import shapes
from .layout import logical_shape

_WINDOWED = ("Conv", "ConvTranspose", "MaxPool", "AveragePool")
_SHOWN = _WINDOWED + ("GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Resize", "Concat", "Add", "Flatten",
                      "Pad", "BatchNormalization")


class Row(NamedTuple):
    """One layer of the table; pairs are (vertical, horizontal)."""

    name: str
    op: str
    output_shape: tuple
    kernel: "tuple | None"
    strides: "tuple | None"
    dilation: "tuple | None"
    groups: "int | None"
    pads: "tuple | None"  # (top, bottom, left, right)
    rule: str  # which rule produced the pads
    params: int
    formula: str  # how params was counted
    macs: int  # multiply-adds per example
    field: "tuple | None"  # receptive field (rows, cols) in input pixels; None once global
    jump: "tuple | None"  # input pixels between neighbouring outputs
    asymmetric: bool


def rows(model, input_shape=None) -> list:
    """The table's rows for ``model`` (an OnnxModel) on inputs of ``input_shape`` (NCHW)."""
    shape = _input_shape(model, input_shape)
    fields = {model.input_names[0]: ((1, 1), (1, 1))}
    table = []

    def trace(node, inputs, outputs, channels_last):
        x = inputs[0][0] if inputs and inputs[0][0] is not None else None
        in_shape = logical_shape(x, inputs[0][1]) if x is not None else ()
        out_shape = logical_shape(outputs[0], channels_last) if np.ndim(outputs[0]) else ()
        field = _field(node, [fields.get(name) for name in node.inputs if name], in_shape, out_shape)
        for name in node.outputs:
            fields[name] = field
        if node.op in _SHOWN:
            table.append(_row(node, model.graph.constants, in_shape, out_shape, field))

    dtype = model.graph.inputs[0].dtype or np.float32
    model.run({model.input_names[0]: np.zeros(shape, dtype)}, trace=trace)
    return table


def _input_shape(model, given) -> tuple:
    if len(model.input_names) != 1:
        raise ValueError(f"summary needs a model with one input; this one has {model.input_names}")
    if given is not None:
        return tuple(int(d) for d in given)
    declared = model.graph.inputs[0].shape
    if declared is None or not all(isinstance(d, int) or d in (None, "n", "N", "batch", "batch_size")
                                   for d in declared):
        raise ValueError(f"summary needs input_shape (the model declares {declared}), e.g. (1, 3, 224, 224)")
    return tuple(d if isinstance(d, int) else 1 for d in (declared[:1] + tuple(declared[1:])))


def _window(node, in_shape, out_shape, constants):
    """(kernel, strides, dilation, groups, pads, rule) of a sliding-window node."""
    attrs = node.attrs
    kernel = tuple(attrs["_kernel"].shape[:2]) if "_kernel" in attrs else tuple(attrs.get("kernel_shape", (1, 1)))
    strides, dilation = tuple(attrs.get("strides", (1, 1))), tuple(attrs.get("dilations", (1, 1)))
    auto = attrs.get("auto_pad", "NOTSET")
    if node.op == "ConvTranspose":
        top, left, bottom, right = attrs.get("pads", (0, 0, 0, 0))
        rule = "explicit pads, cropped from the output" if auto == "NOTSET" else f"auto_pad {auto}, on the output"
        return kernel, strides, dilation, attrs.get("group", 1), (top, bottom, left, right), rule
    if auto == "NOTSET":
        top, left, bottom, right = attrs.get("pads", (0, 0, 0, 0))
        rule = "explicit pads"
    else:
        word = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}[auto]
        (top, bottom), (left, right) = shapes.resolve_padding(in_shape[2:4], kernel, strides, word, dilation)
        rule = {"same": "auto_pad SAME_UPPER: TensorFlow 'same', the odd zero after",
                "same_lower": "auto_pad SAME_LOWER: the odd zero before", "valid": "auto_pad VALID"}[word]
    if attrs.get("ceil_mode", 0):
        rule += ", ceil_mode"
    return kernel, strides, dilation, attrs.get("group", 1), (top, bottom, left, right), rule


def _row(node, constants, in_shape, out_shape, field) -> Row:
    kernel = strides = dilation = groups = pads = None
    rule, params, formula, macs = "", 0, "", 0
    if node.op in _WINDOWED:
        kernel, strides, dilation, groups, pads, rule = _window(node, in_shape, out_shape, constants)
    if node.op in ("Conv", "ConvTranspose"):
        c, k = in_shape[1], out_shape[1]
        bias = len(node.inputs) > 2 and bool(node.inputs[2])
        params = shapes.num_params(kernel, c, k, bias=bias, groups=groups)
        formula = f"({kernel[0]}*{kernel[1]}*{c}/{groups} + {int(bias)})*{k}" + (
            f" (BatchNormalization {node.attrs['_folded']!r} folded in)" if "_folded" in node.attrs else "")
        pixels = int(np.prod(out_shape[2:])) if node.op == "Conv" else int(np.prod(in_shape[2:]))
        macs = pixels * kernel[0] * kernel[1] * (c if node.op == "Conv" else k) // groups * (
            k if node.op == "Conv" else c)
    elif node.op in ("Gemm", "MatMul"):
        weight = node.attrs.get("_weights", constants.get(node.inputs[1]))
        if weight is not None:
            n_in, n_out = weight.shape[-2:] if node.op == "MatMul" or "_weights" in node.attrs or not \
                node.attrs.get("transB", 0) else weight.shape[::-1]
            bias = len(node.inputs) > 2 and bool(node.inputs[2])
            params, formula = (n_in + bias) * n_out, f"({n_in} + {int(bias)})*{n_out}"
            macs = int(np.prod(out_shape[1:-1], dtype=np.int64)) * n_in * n_out
    asymmetric = pads is not None and (pads[0] != pads[1] or pads[2] != pads[3])
    return Row(node.name, node.op, tuple(out_shape), kernel, strides, dilation, groups, pads, rule, params, formula,
               macs, field[0] if field else None, field[1] if field else None, asymmetric)


def _field(node, inputs, in_shape, out_shape):
    """(field, jump) of a node's output from its inputs'; None once an output sees everything."""
    known = [f for f in inputs if f is not None]
    if not known or len(out_shape) != 4 or node.op in ("GlobalAveragePool", "GlobalMaxPool"):
        return None
    size = tuple(max(f[0][axis] for f in known) for axis in range(2))
    jump = known[0][1]
    if node.op in ("Conv", "MaxPool", "AveragePool"):
        kernel = tuple(node.attrs["_kernel"].shape[:2]) if "_kernel" in node.attrs else tuple(node.attrs["kernel_shape"])
        strides, dilation = node.attrs.get("strides", (1, 1)), node.attrs.get("dilations", (1, 1))
        size = tuple(r + (shapes.span(k, d) - 1) * j for r, k, d, j in zip(size, kernel, dilation, jump))
        jump = tuple(j * s for j, s in zip(jump, strides))
    elif node.op in ("ConvTranspose", "Resize") and len(in_shape) == 4:
        jump = tuple(j * i / o for j, i, o in zip(jump, in_shape[2:], out_shape[2:]))
        jump = tuple(int(j) if float(j).is_integer() else round(j, 3) for j in jump)
    return size, jump


def table(model, input_shape=None) -> str:
    """The summary as text: one line per row, the flags, and the totals."""
    found = rows(model, input_shape)
    head = ("#", "layer", "op", "output", "kernel", "stride", "dil", "groups", "pads t,b,l,r", "params", "MACs",
            "field", "jump")
    lines = [head]
    for index, row in enumerate(found):
        pair = lambda p: "" if p is None else f"{p[0]}x{p[1]}"  # noqa: E731
        lines.append((str(index), _short(row.name), row.op, "x".join(map(str, row.output_shape[1:])),
                      pair(row.kernel), pair(row.strides), pair(row.dilation),
                      "" if row.groups in (None, 1) else str(row.groups),
                      "" if row.pads is None else ",".join(map(str, row.pads)) + (" !" if row.asymmetric else ""),
                      f"{row.params:,}" if row.params else "", f"{row.macs:,}" if row.macs else "",
                      "all" if row.field is None else pair(row.field), "" if row.jump is None else pair(row.jump)))
    widths = [max(len(line[col]) for line in lines) for col in range(len(head))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-" * len(text[0]))
    text += _notes(found)
    return "\n".join(text)


def _notes(found) -> list:
    total, macs = sum(r.params for r in found), sum(r.macs for r in found)
    notes = ["", f"Total params: {total:,}   multiply-adds per example: {macs:,}",
             "params: (Fh*Fw*C/groups + 1)*K for a convolution, (in + 1)*out for a dense layer (+1: the bias)"]
    rules = sorted({r.rule for r in found if r.rule})
    notes += [f"padding rules: {'; '.join(rules)}"] if rules else []
    flagged = [f"{i} ({_short(r.name)}: pads {r.pads[0]},{r.pads[1]} / {r.pads[2]},{r.pads[3]}, {r.rule})"
               for i, r in enumerate(found) if r.asymmetric]
    if flagged:
        notes.append("! asymmetric padding, which PyTorch's Conv2d(padding=...) cannot write: a port needs an "
                     "explicit F.pad before the layer: rows " + "; ".join(flagged))
    return notes


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]
