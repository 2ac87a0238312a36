"""Models from files: ONNX models run exactly on convlayer's own ops.

``pip install 'convlayer[onnx]'`` brings the ``onnx`` package, which only
:mod:`convlayer.onnx.graph` imports (``import convlayer`` never does).

    import convlayer.onnx
    model = convlayer.onnx.load("resnet18.onnx")   # a path, bytes or an onnx.ModelProto
    logits = model(images)                         # (n, 3, 224, 224) float32 -> (n, 1000)
"""

from __future__ import annotations

from . import elementwise, resize, spatial, tensors  # noqa: F401  (they register their ops)
from ._table import OPS
from .graph import read
from .model import OnnxModel
from .prepare import prepare


def load(source) -> OnnxModel:
    """Read an ONNX model and prepare it to run on convlayer's ops.

    Parameters
    ----------
    source : str, pathlib.Path, bytes or onnx.ModelProto

    Returns
    -------
    OnnxModel
        ``model(x)`` for one input and one output, ``model.run({name: array})`` for a dict
        of every output; inputs and outputs keep the layout the model declares (NCHW for
        PyTorch exports). ``model.summary()`` prints the per-layer table.

    Raises
    ------
    ValueError
        The file is not an ONNX model, or a node uses an operator, attribute or output
        outside what convlayer runs (one line naming the node, the op and what is missing).

    Notes
    -----
    Batch normalisation after a convolution is folded into its kernel and bias (float64,
    rounded once); constant sub-graphs run once at load time; activations stay
    channels-last between the ops that take them (:mod:`convlayer.onnx.layout`).
    """
    return OnnxModel(prepare(read(source)))


def supported_ops() -> list:
    """The ONNX operators :func:`load` accepts.

    >>> "Conv" in supported_ops()
    True
    """
    return sorted(OPS)


__all__ = ["OnnxModel", "load", "supported_ops"]
