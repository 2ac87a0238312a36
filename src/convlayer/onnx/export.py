"""Writing ``convlayer.nn`` models as ONNX files that onnxruntime runs with the same outputs.

The file takes and returns what the convlayer model does: ``(n, h, w, c)`` images. Inside,
ONNX's operators are NCHW, so one Transpose goes in before the first layer that needs it
and one comes back out wherever the channels-last order matters (a ``Flatten()`` in
convlayer's order, a 4-D output). Padding words become explicit pads, computed from the
shapes (:func:`convlayer.shapes.resolve_padding`), so no exporter rule is left to guess.

Layers are read by name and attributes (this module does not import :mod:`convlayer.nn`,
which imports it lazily), as a writer of ONNX would read a Keras model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import shapes
from .._args import as_pair
from .._files import atomic_write


class _Writer:
    """Nodes and weights of the graph being written; values by name with their layout."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.weights, self.count = [], [], 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def weight(self, stem: str, array) -> str:
        name = self.name(stem)
        self.weights.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list, **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


class _Value:
    """A value of the graph: its ONNX name, one example's convlayer shape, and whether it
    lies NCHW (convlayer's NHWC transposed) or as convlayer has it."""

    def __init__(self, name, shape, nchw=False):
        self.name, self.shape, self.nchw = name, tuple(shape), nchw


def _nchw(w: _Writer, value: _Value) -> str:
    if value.nchw or len(value.shape) != 3:
        return value.name
    return w.node("Transpose", [value.name], perm=[0, 3, 1, 2])


def _nhwc(w: _Writer, value: _Value) -> str:
    if not value.nchw or len(value.shape) != 3:
        return value.name
    return w.node("Transpose", [value.name], perm=[0, 2, 3, 1])


def _pads(size_hw, kernel, strides, padding, dilation) -> list:
    (top, bottom), (left, right) = shapes.resolve_padding(size_hw, kernel, strides, padding, dilation)
    return [top, left, bottom, right]


def _conv(w, layer, value, shape):
    if layer.sharing != "shared":
        raise ValueError(f"{layer!r} cannot be written to ONNX: only shared weights (sharing='shared') have an "
                         f"ONNX operator")
    o = layer.options
    strides, dilation = as_pair("strides", o["strides"]), as_pair("dilation", o["dilation"])
    inputs = [_nchw(w, value), w.weight("kernel", layer.params["kernel"].transpose(3, 2, 0, 1))]
    if layer.bias:
        inputs.append(w.weight("bias", layer.params["bias"]))
    return w.node("Conv", inputs, kernel_shape=list(layer.kernel_size), strides=list(strides),
                  dilations=list(dilation), group=o["groups"],
                  pads=_pads(value.shape[:2], layer.kernel_size, strides, o["padding"], dilation)), True


def _conv_transpose(w, layer, value, shape):
    o = layer.transpose_options
    strides, dilation = as_pair("strides", o["strides"]), as_pair("dilation", o["dilation"])
    top, left, bottom, right = _pads(shape[:2], layer.kernel_size, strides, o["padding"], dilation)
    extra = [out - ((size - 1) * s + shapes.span(k, d) - before - after)
             for out, size, s, k, d, before, after in zip(shape[:2], value.shape[:2], strides, layer.kernel_size,
                                                          dilation, (top, left), (bottom, right))]
    inputs = [_nchw(w, value), w.weight("kernel", layer.params["kernel"].transpose(3, 2, 0, 1))]
    if layer.bias:
        inputs.append(w.weight("bias", layer.params["bias"]))
    return w.node("ConvTranspose", inputs, kernel_shape=list(layer.kernel_size), strides=list(strides),
                  dilations=list(dilation), group=o["groups"], pads=[top, left, bottom, right],
                  output_padding=extra), True


def _pool(w, layer, value, shape):
    pool = as_pair("pool_size", layer.pool_size)
    strides = pool if layer.strides is None else as_pair("strides", layer.strides)
    options = layer.options
    dilation = as_pair("dilation", options.get("dilation", 1))
    attrs = dict(kernel_shape=list(pool), strides=list(strides),
                 pads=_pads(value.shape[:2], pool, strides, layer.padding, dilation),
                 ceil_mode=int(options.get("ceil_mode", False)))
    if dilation != (1, 1):  # AveragePool takes dilations from opset 19 on
        attrs["dilations"] = list(dilation)
    if type(layer).__name__ == "AvgPool2D":
        attrs["count_include_pad"] = int(options.get("count_include_pad", False))
        return w.node("AveragePool", [_nchw(w, value)], **attrs), True
    return w.node("MaxPool", [_nchw(w, value)], **attrs), True


def _global(w, layer, value, shape):
    op = "GlobalAveragePool" if type(layer).__name__ == "GlobalAvgPool2D" else "GlobalMaxPool"
    out = w.node(op, [_nchw(w, value)])
    return (out, True) if len(shape) == 3 else (w.node("Flatten", [out], axis=1), False)


def _batch_norm(w, layer, value, shape):
    names = [w.weight(k, layer.params[k]) for k in ("gamma", "beta")]
    names += [w.weight(k, layer.buffers[k]) for k in ("running_mean", "running_var")]
    return w.node("BatchNormalization", [_nchw(w, value)] + names, epsilon=layer.epsilon), len(shape) == 3


def _flatten(w, layer, value, shape):
    first = layer.data_format == "channels_first"
    return w.node("Flatten", [_nchw(w, value) if first else _nhwc(w, value)], axis=1), False


def _dense(w, layer, value, shape):
    inputs = [value.name, w.weight("weights", layer.params["weights"])]
    if layer.bias:
        inputs.append(w.weight("bias", layer.params["bias"]))
    return w.node("Gemm", inputs), False


def _same_layout(w, op, layer, values, shape, **attrs):
    nchw = len(shape) == 3
    names = [_nchw(w, v) if nchw else v.name for v in values]
    if op == "Concat":
        attrs["axis"] = 1 if nchw else -1
    return w.node(op, names, **attrs), nchw


_WRITERS = {
    "Conv2D": _conv, "Conv2DTranspose": _conv_transpose, "MaxPool2D": _pool, "AvgPool2D": _pool,
    "GlobalAvgPool2D": _global, "GlobalMaxPool2D": _global, "BatchNorm2D": _batch_norm, "Flatten": _flatten,
    "Dense": _dense,
    "ReLU": lambda w, layer, value, shape: (w.node("Relu", [value.name]), value.nchw),
    "Dropout": lambda w, layer, value, shape: (value.name, value.nchw),  # the identity at inference
    "Add": lambda w, layer, values, shape: _same_layout(w, "Add", layer, values, shape),
    "Concat": lambda w, layer, values, shape: _same_layout(w, "Concat", layer, values, shape),
}


def _calls(model):
    """(layer, input symbols or None, output key) in run order, for Sequential and Model."""
    order = getattr(model, "order", None)
    if order is None:
        previous = "input"
        for index, layer in enumerate(model.layers):
            yield layer, [previous], index
            previous = index
        return
    key = {id(model.inputs): "input", **{id(s): i for i, s in enumerate(order)}}
    for index, symbol in enumerate(order):
        yield symbol.layer, [key[id(part)] for part in symbol.inputs], index


def to_onnx(model, path, *, input_shape=None, opset: int = 17) -> Path:
    """Write ``model`` (a ``convlayer.nn`` Sequential or Model) as an ONNX file; return its path.

    The file's input is ``(n, h, w, c)`` float32 named ``'input'`` (``n`` free), its output
    the model's, named ``'output'``. ``input_shape`` (one example's) defaults to the model's.
    A layer without an ONNX form (tiled, region and unshared weights, Lp and adaptive pools,
    unpooling) raises ValueError naming it.
    """
    import onnx
    from onnx import helper, numpy_helper

    shape = tuple(input_shape) if input_shape is not None else model.input_shape
    if shape is None:
        raise ValueError("to_onnx needs input_shape, one example's shape such as (32, 32, 3); got None")
    w = _Writer(helper, numpy_helper)
    values = {"input": _Value("input", shape)}
    last = values["input"]
    for layer, reads, key in _calls(model):
        writer = _WRITERS.get(type(layer).__name__)
        if writer is None:
            raise ValueError(f"{layer!r} cannot be written to ONNX; layers that can: {', '.join(sorted(_WRITERS))}")
        inputs = [values[r] for r in reads]
        out_shape = tuple(layer.output_shape([v.shape for v in inputs] if layer.takes_list else inputs[0].shape))
        name, nchw = writer(w, layer, inputs if layer.takes_list else inputs[0], out_shape)
        last = values[key] = _Value(name, out_shape, nchw)
    w.nodes.append(helper.make_node("Identity", [_nhwc(w, last)], ["output"], name="output"))
    float32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(w.nodes, "convlayer", [helper.make_tensor_value_info("input", float32, ("n",) + shape)],
                              [helper.make_tensor_value_info("output", float32, ("n",) + last.shape)], w.weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="convlayer")
    onnx.checker.check_model(proto)
    return atomic_write(path, lambda temporary: onnx.save(proto, temporary))
