"""Channels-last inside, NCHW at the edges.

An ONNX image tensor is ``(n, c, h, w)``. convlayer's ops are fastest channels-last (a
channels-first call copies its input channels-last and back, a chunk at a time), so the
runner keeps 4-D activations as ``(n, h, w, c)`` between the ops that can take them and
turns them back only where an op needs the declared layout (Reshape, Flatten, Transpose,
a graph output). A value carries a flag, ``channels_last``: True means the array holds the
logical NCHW tensor transposed to NHWC.

Measured by conv2d on every convolution of the model at batch 8 (sum of each layer's
fastest of 5 calls, 2 shared cores): channels-first took 1.31x the channels-last time on
resnet18 and 5.6x on mobilenet_v2 (its depthwise and 1x1 layers copy their input
channels-last and back); the two transposes at the edges cost less than 1% of either.
"""

from __future__ import annotations

import numpy as np

TO_LAST = (0, 2, 3, 1)  # NCHW -> NHWC
TO_FIRST = (0, 3, 1, 2)  # NHWC -> NCHW
AXIS_LAST = {0: 0, 1: 3, 2: 1, 3: 2}  # an NCHW axis -> where it lies in NHWC


def to_last(array: np.ndarray) -> np.ndarray:
    """The NHWC copy of an NCHW array (lower ranks are broadcast shapes: padded to 4-D)."""
    array = np.asarray(array)
    if array.ndim < 4:
        array = array.reshape((1,) * (4 - array.ndim) + array.shape)
    return np.ascontiguousarray(array.transpose(TO_LAST))


def to_first(array: np.ndarray) -> np.ndarray:
    """The NCHW copy of an NHWC array."""
    return np.ascontiguousarray(array.transpose(TO_FIRST))


def logical_shape(array: np.ndarray, channels_last: bool) -> tuple:
    """The shape the ONNX graph sees."""
    if not channels_last:
        return array.shape
    n, h, w, c = array.shape
    return n, c, h, w


def axis_last(axis: int, rank: int = 4) -> int:
    """Where NCHW axis ``axis`` (negative counts from the end) lies in NHWC."""
    return AXIS_LAST[axis % rank]
