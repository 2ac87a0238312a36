"""Resize: nearest and linear (bilinear) interpolation of the image axes, with the
coordinate modes exporters write.

Output pixel ``i`` of an axis resized from ``size`` to ``out`` (``scale = out / size``
when sizes are given) reads input coordinate ``x`` by the coordinate mode:

- ``half_pixel``: ``(i + 0.5) / scale - 0.5`` (PyTorch's align_corners=False, TensorFlow 2);
- ``pytorch_half_pixel``: the same, but 0 when ``out == 1``;
- ``align_corners``: ``i * (size - 1) / (out - 1)`` (0 when ``out == 1``);
- ``asymmetric``: ``i / scale`` (PyTorch's nearest, TensorFlow 1);
- ``tf_half_pixel_for_nn``: ``(i + 0.5) / scale``.

Nearest rounds ``x`` by ``nearest_mode``; linear clamps ``x`` to ``[0, size - 1]`` and
mixes the two pixels around it. Both are separable: one axis, then the other.
"""

from __future__ import annotations

import numpy as np

from ._table import AXIS, any_value, one_of, op

_COORDINATES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
_ROUNDING = {
    "round_prefer_floor": lambda x: np.ceil(x - 0.5),
    "round_prefer_ceil": lambda x: np.floor(x + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def source(mode: str, out: int, size: int, scale: float) -> np.ndarray:
    """The input coordinate each of ``out`` output pixels reads, by coordinate ``mode``.

    >>> source("asymmetric", 4, 2, 2.0).tolist()
    [0.0, 0.5, 1.0, 1.5]
    >>> source("align_corners", 3, 2, 1.5).tolist()
    [0.0, 0.5, 1.0]
    """
    i = np.arange(out, dtype=np.float64)
    if mode == "align_corners":
        return i * ((size - 1) / (out - 1)) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    if mode == "pytorch_half_pixel" and out == 1:
        return np.zeros(1)
    return (i + 0.5) / scale - 0.5


@op("Resize", AXIS, mode=one_of("nearest", "linear"), coordinate_transformation_mode=one_of(*_COORDINATES),
    nearest_mode=one_of(*_ROUNDING), cubic_coeff_a=any_value, exclude_outside=one_of(0), antialias=one_of(0),
    keep_aspect_ratio_policy=one_of("stretch"), extrapolation_value=any_value)
def resize(node, channels_last, x, roi=None, scales=None, sizes=None):
    attrs = node.attrs
    if attrs.get("_opset", 11) < 11:  # Resize-10: (x, scales), Upsample's coordinates
        scales, roi = roi, None
        attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor", **attrs}
    shape = np.array(x.shape)[[0, 3, 1, 2]] if channels_last else np.array(x.shape)
    if sizes is not None and np.size(sizes):
        sizes = np.asarray(sizes, np.int64)
        scales = sizes / shape
    else:
        scales = np.asarray(scales, np.float64)
        sizes = np.floor(shape * scales).astype(np.int64)
    if x.ndim != 4 or tuple(sizes[:2]) != tuple(shape[:2]):
        raise ValueError(f"only the two image axes of a 4-D tensor can be resized; "
                         f"got input shape {tuple(shape.tolist())} to {tuple(sizes.tolist())}")
    axes = (1, 2) if channels_last else (2, 3)
    for axis, out, size, scale in zip(axes, sizes[2:], shape[2:], scales[2:]):
        x = _resize_axis(x, axis, int(out), int(size), float(scale), attrs)
    return x, channels_last


def _resize_axis(x, axis, out, size, scale, attrs):
    """Resize one axis of ``x`` from ``size`` to ``out`` pixels."""
    where = source(attrs.get("coordinate_transformation_mode", "half_pixel"), out, size, scale)
    if attrs.get("mode", "nearest") == "nearest":
        index = _ROUNDING[attrs.get("nearest_mode", "round_prefer_floor")](where)
        return np.take(x, np.clip(index, 0, size - 1).astype(np.intp), axis=axis)
    where = np.clip(where, 0, size - 1)
    low = np.floor(where).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    shape = [1] * x.ndim
    shape[axis] = out
    weight = (where - low).astype(x.dtype).reshape(shape)
    below = np.take(x, low, axis=axis)
    return below + (np.take(x, high, axis=axis) - below) * weight
