"""An ONNX file read into plain Python: nodes, constants, inputs and outputs.

This is the only module that imports the ``onnx`` package (installed by the ``onnx``
extra). Everything after reading works on the :class:`Graph` below, NumPy arrays and
Python numbers, so the checks and the ops can be read and tested without protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Node:
    """One operator call: ``outputs = op(inputs, **attrs)``; '' is an input left out."""

    name: str
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    domain: str = ""


@dataclass
class Tensor:
    """A graph input or output as the file declares it: dims are ints, names or None."""

    name: str
    shape: "tuple | None"
    dtype: "np.dtype | None"


@dataclass
class Graph:
    """A model's graph: nodes in run order, constants by name, declared inputs and outputs."""

    nodes: list
    constants: dict
    inputs: list
    outputs: list
    opset: int
    name: str = "graph"


def read(source) -> Graph:
    """A :class:`Graph` from a path, ``bytes`` or an ``onnx.ModelProto``."""
    import onnx
    from onnx import numpy_helper

    model = _model_proto(onnx, source)
    opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=1)
    graph = model.graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    nodes = [Node(node.name or f"{node.op_type}_{index}", node.op_type, list(node.input), list(node.output),
                  {a.name: _attribute(onnx, numpy_helper, a) for a in node.attribute}, node.domain)
             for index, node in enumerate(graph.node)]
    inputs = [_tensor(onnx, value) for value in graph.input if value.name not in constants]
    outputs = [_tensor(onnx, value) for value in graph.output]
    return Graph(nodes, constants, inputs, outputs, opset, graph.name or "graph")


def _model_proto(onnx, source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(source))
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"model must be an ONNX file, its bytes or an onnx.ModelProto; no file {str(path)!r}")
        try:
            return onnx.load(str(path))
        except Exception as error:  # protobuf's DecodeError and friends: say which file
            raise ValueError(f"{str(path)!r} is not an ONNX model ({type(error).__name__}: {error})") from None
    if type(source).__name__ == "ModelProto":
        return source
    raise TypeError(f"model must be a path, bytes or an onnx.ModelProto; got {type(source).__name__}")


def _attribute(onnx, numpy_helper, attribute):
    """An attribute's value as Python: numbers, strings, lists, tensors as arrays."""
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    if isinstance(value, (int, float)):
        return value
    return value  # graphs, sparse tensors, type protos: checks refuse the ops that carry them


def _tensor(onnx, value) -> Tensor:
    kind = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        return Tensor(value.name, None, None)
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type)) if kind.elem_type else None
    if not kind.HasField("shape"):
        return Tensor(value.name, None, dtype)
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in kind.shape.dim)
    return Tensor(value.name, dims, dtype)
