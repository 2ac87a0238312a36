"""What an explain figure writes about a layer: every number and line of text.

:func:`annotations` takes the layer's sizes, resolves them through :mod:`convlayer.shapes`
and fills the formulas in (:mod:`convlayer.explain.formulas`); the other functions turn
those numbers into what a figure shows: window positions, kernel banks, titles, lines of
text, the unit whose receptive field is drawn. Tests check them against
:mod:`convlayer.shapes`; :mod:`convlayer.explain.figures` draws them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import shapes
from .._args import as_int, as_pair, padding_2d
from ..sharing import kernel_index
from . import formulas


class AxisLabels(NamedTuple):
    """What is written about one axis (height or width) of a convolution."""

    size: int  # H or W
    kernel: int  # Fh or Fw
    stride: int
    dilation: int
    span: int  # the dilated kernel, (kernel - 1) * dilation + 1
    pads: tuple[int, int]  # zeros before and after
    out: int  # H' or W'
    formulas: tuple[str, ...]  # the output-size (and span) formulas, numbers filled in


class Annotations(NamedTuple):
    """Every number an explain figure draws, from :mod:`convlayer.shapes`."""

    input_hw: tuple[int, int]
    kernel_hw: tuple[int, int]
    strides: tuple[int, int]
    dilation: tuple[int, int]
    padding: str  # the padding word, or 'explicit'
    pads: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    output_hw: tuple[int, int]
    axes: tuple[AxisLabels, AxisLabels]  # height, width
    channels: int
    filters: int
    sharing: str
    banks: tuple[int, int]  # kernel banks along (rows, cols) of the output
    params: int
    params_formula: str

    @property
    def padded_hw(self) -> tuple[int, int]:
        (top, bottom), (left, right) = self.pads
        return self.input_hw[0] + top + bottom, self.input_hw[1] + left + right


def annotations(
    input_hw, kernel_hw, *, strides=1, padding="same", dilation=1, channels=1, filters=1,
    bias=True, sharing="shared", banks=None,
) -> Annotations:
    """The numbers and formulas an explain figure shows for one layer.

    Parameters
    ----------
    input_hw, kernel_hw : int or (int, int)
        ``(H, W)`` and ``(Fh, Fw)``.
    strides, padding, dilation
        As for :func:`convlayer.conv2d`.
    channels, filters : int
        ``C`` and ``K``, for the parameter count.
    bias : bool
    sharing : {'shared', 'tiled', 'regions', 'unshared'}
    banks : (int, int), optional
        ``(T_h, T_w)`` for 'tiled', ``(R_h, R_w)`` for 'regions'.

    Examples
    --------
    >>> notes = annotations(6, 3, strides=2)
    >>> notes.pads, notes.output_hw
    (((0, 1), (0, 1)), (3, 3))
    >>> notes.axes[1].formulas[1]
    "padding = max((W' - 1) * s + Fw - W, 0) = max((3 - 1) * 2 + 3 - 6, 0) = 1: left 0, right 1"
    """
    (h, w), (fh, fw) = as_pair("input", input_hw), as_pair("kernel", kernel_hw)
    c, k = as_int("channels", channels, minimum=1), as_int("filters", filters, minimum=1)
    geom = shapes.conv_geometry((h, w, c), (fh, fw, c, k), strides, padding, dilation)
    form = padding_2d(padding)
    word = form if isinstance(form, str) else "explicit"
    axes = tuple(_axis_labels(geom, axis, word) for axis in (0, 1))
    out_hw = (geom.out_h, geom.out_w)
    banks = _banks(sharing, banks, out_hw)
    params = shapes.num_params((fh, fw), c, k, bias=bias, sharing=sharing, output_size=out_hw,
                               regions=banks, tiles=banks)
    formula = "parameters = " + formulas.params_formula(fh, fw, c, k, params, bias=bias, sharing=sharing,
                                                        banks=banks)
    return Annotations((h, w), (fh, fw), geom.strides, geom.dilation, word, geom.pads, out_hw,
                       axes, c, k, sharing, banks, params, formula)


def _axis_labels(geom: shapes.ConvGeometry, axis: int, word: str) -> AxisLabels:
    size, kernel = (geom.h, geom.fh) if axis == 0 else (geom.w, geom.fw)
    stride, dilation = geom.strides[axis], geom.dilation[axis]
    span, pads, out = shapes.span(kernel, dilation), geom.pads[axis], (geom.out_h, geom.out_w)[axis]
    lines = formulas.axis_formulas(axis, size, kernel, stride, dilation, pads, out, word)
    return AxisLabels(size, kernel, stride, dilation, span, pads, out, lines)


def _banks(sharing: str, banks, out_hw) -> tuple[int, int]:
    """Kernel banks along each axis of the output for a sharing kind."""
    if sharing == "shared":
        return 1, 1
    if sharing == "unshared":
        return out_hw
    if sharing not in shapes.SHARING_KINDS:
        kinds = ", ".join(map(repr, shapes.SHARING_KINDS))
        raise ValueError(f"sharing must be one of {kinds}; got {sharing!r}")
    if banks is None:
        raise ValueError(f"sharing={sharing!r} needs banks=(rows, cols); got None")
    rows, cols = as_pair("banks", banks)
    if sharing == "regions" and (rows > out_hw[0] or cols > out_hw[1]):
        raise ValueError(f"banks {rows}x{cols} cuts the {out_hw[0]}x{out_hw[1]} output into more "
                         f"regions than it has rows or columns")
    return rows, cols


def window_origin(notes: Annotations, position) -> tuple[int, int]:
    """Input row and column of the top-left tap of output ``position``'s window.

    Negative, or past the input's last row or column, means padding.

    >>> window_origin(annotations(7, 3, strides=2), (1, 3))
    (1, 5)
    """
    (top, _), (left, _) = notes.pads
    return position[0] * notes.strides[0] - top, position[1] * notes.strides[1] - left


def bank_numbers(notes: Annotations) -> np.ndarray:
    """(out_h, out_w) ints: the kernel bank each output pixel uses, numbered row by row.

    >>> bank_numbers(annotations(3, 3, sharing="tiled", banks=(1, 2)))
    array([[0, 1, 0],
           [0, 1, 0],
           [0, 1, 0]])
    """
    rows, cols = kernel_index(*notes.output_hw, notes.sharing, notes.banks)
    return rows * notes.banks[1] + cols


def default_positions(out_hw) -> list[tuple[int, int]]:
    """The windows a still picture shows: the first, its right neighbour, and the last."""
    out_h, out_w = out_hw
    chosen = [(0, 0), (0, 1), (out_h - 1, out_w - 1)]
    return [p for i, p in enumerate(chosen) if p[1] < out_w and p not in chosen[:i]]


def animation_positions(out_hw, max_frames: int = 64) -> list[tuple[int, int]]:
    """Output positions the animation shows, in row-major order.

    Every position while there are at most ``max_frames``; beyond that every ``step``-th,
    with ``step = ceil(count / max_frames)``, so at most ``max_frames`` frames.

    >>> len(animation_positions((4, 4))), len(animation_positions((10, 10), max_frames=8))
    (16, 8)
    """
    out_h, out_w = out_hw
    max_frames = as_int("max_frames", max_frames, minimum=1)
    step = -(-(out_h * out_w) // max_frames)
    return [divmod(index, out_w) for index in range(0, out_h * out_w, step)]


def formula_lines(notes: Annotations, *, with_params: bool = False) -> list[str]:
    """The text under a sliding figure: each axis's formulas, then the parameter count."""
    lines = []
    for name, labels in zip(("height", "width"), notes.axes):
        lines += [f"{name}:  {labels.formulas[0]}"] + [f"{'':12s}{f}" for f in labels.formulas[1:]]
    return lines + ([notes.params_formula] if with_params else [])


def title(notes: Annotations) -> str:
    """One line naming the layer: sizes, stride, padding, dilation, output size."""
    (h, w), (fh, fw), (sh, sw) = notes.input_hw, notes.kernel_hw, notes.strides
    text = f"{h}x{w} input, {fh}x{fw} kernel, stride {_pair_text(sh, sw)}, padding '{notes.padding}'"
    if notes.dilation != (1, 1):
        text += f", dilation {_pair_text(*notes.dilation)}"
    return text + f"  ->  {notes.output_hw[0]}x{notes.output_hw[1]} output"


def _pair_text(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}x{b}"


# Channels and filters.


def shown_indices(count: int) -> list:
    """Which channels or filters a figure draws: all up to 4, else 0, 1, None (dots), last.

    >>> shown_indices(3), shown_indices(64)
    ([0, 1, 2], [0, 1, None, 63])
    """
    return list(range(count)) if count <= 4 else [0, 1, None, count - 1]

def channel_lines(notes: Annotations, bias: bool = True) -> list[str]:
    """The text under a channels figure: parameters, the kernel's shape, what ``*`` means."""
    (fh, fw), (oh, ow), c, k = notes.kernel_hw, notes.output_hw, notes.channels, notes.filters
    return [notes.params_formula,
            f"kernel W: Fh x Fw x C x K = {fh} x {fw} x {c} x {k}" + (f";  bias b: K = {k}" if bias else "")
            + f";  output y: H' x W' x K = {oh} x {ow} x {k}",
            "*  slides the kernel slice over the zero-padded channel, multiplying and adding "
            "(cross-correlation)"]


# Receptive fields.


def centre_unit(record, input_hw) -> tuple[tuple[int, int], tuple[int, int]]:
    """The unit of a layer whose field is centred nearest the input's centre, and where it starts.

    ``record`` is one of ``Sequential.receptive_field()``'s; returns ``((row, col), (first_row,
    first_col))``.
    """
    unit, first = [], []
    for axis in (0, 1):
        size, jump, start = record.size[axis], record.jump[axis], record.start[axis]
        count = record.output_shape[axis] if record.output_shape is not None else 1
        wanted = ((input_hw[axis] - 1) / 2 - start - (size - 1) / 2) / jump
        index = int(min(max(round(wanted), 0), count - 1))
        unit.append(index)
        first.append(start + index * jump)
    return tuple(unit), tuple(first)

def field_label(group, unit, first) -> str:
    """'0: Conv2D(...) + 1: ReLU()  ->  field 3x3, jump 1, unit (4, 4) sees rows 3..5, columns 3..5'."""
    (size_h, size_w), names = group[0].size, " + ".join(f"{r.index}: {r.layer}" for r in group)
    return (f"{names}  ->  field {size_h}x{size_w}, jump {_pair_text(*group[0].jump)}, unit {unit} sees "
            f"rows {first[0]}..{first[0] + size_h - 1}, columns {first[1]}..{first[1] + size_w - 1}")
