"""The inner loop of a convolution for one output pixel, with the real numbers.

:func:`pixel_arithmetic` gathers the input values under the kernel's taps (zeros where a
tap falls on padding), multiplies them by the weights, sums per channel and adds the bias;
``convlayer explain IMAGE --at ROW,COL`` draws it (:func:`convlayer.explain.pixel_figure`).
The result is checked against :func:`convlayer.conv2d` itself.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import shapes
from .._args import as_pair


class PixelArithmetic(NamedTuple):
    """The inner loop of a convolution for one output pixel, with the real numbers."""

    at: tuple[int, int]  # output row and column
    rows: np.ndarray  # (fh,) input rows of the taps (negative or >= h: padding)
    cols: np.ndarray  # (fw,) input columns of the taps
    patch: np.ndarray  # (fh, fw, c) the input under the taps, 0 where a tap falls on padding
    inside: np.ndarray  # (fh, fw) True where the tap reads a real pixel
    kernel: np.ndarray  # (fh, fw, c)
    products: np.ndarray  # (fh, fw, c) patch * kernel, in float64
    channel_sums: np.ndarray  # (c,) the products summed per channel
    bias: float
    total: float  # channel_sums.sum() + bias, in float64
    output: float  # conv2d(x, kernel, bias, ...)[at]: the layer's own value


def pixel_arithmetic(x, kernel, bias=0.0, *, at, strides=1, padding="same", dilation=1) -> PixelArithmetic:
    """The numbers behind output pixel ``at`` of ``conv2d(x, kernel, bias, ...)``.

    Parameters
    ----------
    x : array_like, shape (h, w) or (h, w, c)
    kernel : array_like, shape (fh, fw) or (fh, fw, c)
        One filter (cross-correlation: not flipped).
    bias : float
    at : (int, int)
        Output row and column.
    strides, padding, dilation
        As for :func:`convlayer.conv2d` (zero padding).

    Returns
    -------
    PixelArithmetic
        ``total`` is computed here in float64; ``output`` is ``conv2d``'s value, equal up to
        float32 rounding.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> step = pixel_arithmetic(x, np.ones((2, 2)), 0.5, at=(1, 1), strides=2, padding="valid")
    >>> step.patch[..., 0].tolist(), step.total, step.output
    ([[10.0, 11.0], [14.0, 15.0]], 50.5, 50.5)
    """
    from ..functional import conv2d

    x, kernel = np.asarray(x), np.asarray(kernel)
    x = x[:, :, None] if x.ndim == 2 else x
    kernel = kernel[:, :, None] if kernel.ndim == 2 else kernel
    if x.ndim != 3 or kernel.ndim != 3:
        raise ValueError(f"pixel_arithmetic takes x (h, w[, c]) and one filter (fh, fw[, c]); got x "
                         f"shape {x.shape} and kernel shape {kernel.shape}")
    geom = shapes.conv_geometry(x.shape, kernel.shape, strides, padding, dilation)
    row, col = check_at(at, (geom.out_h, geom.out_w))
    bias = float(bias)
    output = float(conv2d(x, kernel, bias, strides=strides, padding=padding, dilation=dilation)[row, col])
    rows = row * geom.strides[0] - geom.pads[0][0] + np.arange(geom.fh) * geom.dilation[0]
    cols = col * geom.strides[1] - geom.pads[1][0] + np.arange(geom.fw) * geom.dilation[1]
    inside = ((rows >= 0) & (rows < geom.h))[:, None] & ((cols >= 0) & (cols < geom.w))[None, :]
    patch = np.zeros(kernel.shape, np.float64)
    patch[inside] = x[np.clip(rows, 0, geom.h - 1)[:, None], np.clip(cols, 0, geom.w - 1)[None, :]][inside]
    products = patch * kernel.astype(np.float64)
    channel_sums = products.sum(axis=(0, 1))
    return PixelArithmetic((row, col), rows, cols, patch, inside, kernel.astype(np.float64), products,
                           channel_sums, bias, float(channel_sums.sum() + bias), output)


def check_at(at, out_hw, name: str = "at") -> tuple[int, int]:
    """``at`` as (row, column) of an ``out_hw`` output, or a ValueError naming ``name``."""
    row, col = as_pair(name, at, minimum=0)
    if row >= out_hw[0] or col >= out_hw[1]:
        raise ValueError(f"{name} must be a pixel of the {out_hw[0]}x{out_hw[1]} output (row 0.."
                         f"{out_hw[0] - 1}, column 0..{out_hw[1] - 1}); got ({row}, {col})")
    return row, col


def number(value: float, digits: int = 4) -> str:
    """A value as the figures write it: integers without a point, others to ``digits`` digits.

    >>> number(255.0), number(-0.1111111), number(1234.5678, 6)
    ('255', '-0.1111', '1234.57')
    """
    value = float(value)
    if value.is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def sum_line(step: PixelArithmetic) -> str:
    """'output (r, c) = s0 + s1 + s2 + bias b = value': the last step, as printed and drawn."""
    signed = lambda v: number(v, 6) if v >= 0 else f"({number(v, 6)})"  # noqa: E731
    sums = " + ".join(signed(s) for s in step.channel_sums)
    return (f"output ({step.at[0]}, {step.at[1]}) = {sums} + bias {signed(step.bias)} "
            f"= {number(step.output, 6)}")
