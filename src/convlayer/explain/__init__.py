"""Pictures that explain a convolutional layer with the user's own numbers.

- :func:`sliding_figure`: the padded input (the zeros on each side drawn and counted), the
  kernel's footprint at a few output positions, the output grid, and the output-size
  formula filled in; with ``sharing=`` each output pixel is coloured by its kernel bank.
- :func:`write_animation`: the same as a GIF, one frame per output position.
- :func:`channels_figure`: C input channels and K filters, summed plus bias into each
  output channel, with the parameter count.
- :func:`pixel_arithmetic` and :func:`pixel_figure`: the real numbers behind one output pixel.
- :func:`receptive_field_figure`: the fields of ``Sequential.receptive_field()``.

Every number drawn comes from :mod:`convlayer.shapes` through :func:`annotations` (or, for
real values, from the arrays and :func:`convlayer.conv2d`), which tests check. This module
computes what is written; :mod:`convlayer.explain.draw` places it. Figures are
``matplotlib.figure.Figure`` objects (never pyplot), imported when drawn; nothing here
calls ``show()``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import shapes
from .._args import as_int, as_pair, padding_2d
from ..sharing import kernel_index
from . import formulas, grids
from .formulas import SIDES
from .pixel import PixelArithmetic, check_at, number, pixel_arithmetic, sum_line

__all__ = [
    "Annotations", "AxisLabels", "PixelArithmetic", "animation_positions", "annotations",
    "bank_numbers", "centre_unit", "channel_lines", "channels_figure", "default_positions",
    "field_label", "formula_lines", "number", "pixel_arithmetic", "pixel_figure", "receptive_field_figure",
    "shown_indices", "sliding_figure", "sum_line", "title", "window_origin", "write_animation",
]



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


# The sliding window.


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


def sliding_figure(input_hw, kernel_hw, *, strides=1, padding="same", dilation=1, positions=None,
                   sharing=None, banks=None, channels=1, filters=1, axes=None):
    """The padded input, the kernel at a few output positions, the output, the formulas.

    Parameters
    ----------
    input_hw, kernel_hw, strides, padding, dilation
        The layer, as for :func:`annotations`.
    positions : list of (int, int), optional
        Output positions whose windows are drawn (default :func:`default_positions`: the
        first, its right neighbour, and the last, which shows the padding after).
    sharing : {'shared', 'tiled', 'regions', 'unshared'}, optional
        Colour each output pixel by the kernel bank it uses
        (:func:`convlayer.sharing.kernel_index`) and add the parameter count; ``banks`` is
        ``(T_h, T_w)`` or ``(R_h, R_w)``.
    channels, filters : int
        ``C`` and ``K``, for that parameter count.
    axes : three Axes, optional
        Input panel, output panel, and one for the formulas.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from . import draw

    notes = annotations(input_hw, kernel_hw, strides=strides, padding=padding, dilation=dilation,
                        channels=channels, filters=filters, sharing=sharing or "shared", banks=banks)
    positions = default_positions(notes.output_hw) if positions is None else [tuple(p) for p in positions]
    for position in positions:
        check_at(position, notes.output_hw, "positions")
    lines = formula_lines(notes, with_params=bool(sharing))
    figure, (ax_in, ax_out, ax_text) = draw.sliding_axes(notes, lines, axes)
    draw.draw_input(ax_in, notes)
    (oh, ow), text = notes.output_hw, title(notes)
    if sharing:
        banks_ = bank_numbers(notes)
        colours = [draw.bank_colour(int(banks_[p]), notes.banks[1]) for p in positions]
        draw.draw_output(ax_out, notes, f"output {oh}x{ow}: each number is a kernel bank")
        draw.colour_banks(ax_out, notes, banks_)
        banks_text = _count(notes.banks[0] * notes.banks[1], "kernel bank")
        text += f"\nsharing '{sharing}': {banks_text}, one colour each"
    else:
        colours = [grids.WINDOWS[i % len(grids.WINDOWS)] for i in range(len(positions))]
        draw.draw_output(ax_out, notes, f"output {oh}x{ow}")
    draw.windows(ax_in, notes, [window_origin(notes, p) for p in positions], colours)
    draw.mark_output(ax_out, notes, positions, colours, filled=not sharing)
    draw.write_lines(ax_text, lines)
    figure.suptitle(text, fontsize=11)
    return figure


def write_animation(path, input_hw, kernel_hw, *, strides=1, padding="same", dilation=1,
                    max_frames: int = 64, duration_ms: int = 700, dpi: int = 80) -> int:
    """Write a GIF of the kernel sliding over the padded input; return the number of frames.

    One frame per output position in row-major order (:func:`animation_positions`: capped at
    ``max_frames`` with a stride over positions), the output cell being computed highlighted
    and the ones before it shaded. The file is written whole or not at all.
    """
    from . import draw

    notes = annotations(input_hw, kernel_hw, strides=strides, padding=padding, dilation=dilation)
    positions = animation_positions(notes.output_hw, max_frames)
    origins = [window_origin(notes, p) for p in positions]
    captions = [_caption(notes, position, origin, frame, len(positions))
                for frame, (position, origin) in enumerate(zip(positions, origins), 1)]
    frames = list(draw.animation_frames(notes, positions, origins, captions, title(notes),
                                        formula_lines(notes), dpi))
    draw.save_gif(path, frames, duration_ms)
    return len(frames)


def _caption(notes: Annotations, position, origin, frame: int, count: int) -> str:
    (r0, c0), (span_h, span_w) = origin, (notes.axes[0].span, notes.axes[1].span)
    return (f"frame {frame}/{count}: output ({position[0]}, {position[1]}) = sum of kernel x input over "
            f"rows {r0}..{r0 + span_h - 1}, columns {c0}..{c0 + span_w - 1} (outside the input: zeros)")


# Channels and filters.


def shown_indices(count: int) -> list:
    """Which channels or filters a figure draws: all up to 4, else 0, 1, None (dots), last.

    >>> shown_indices(3), shown_indices(64)
    ([0, 1, 2], [0, 1, None, 63])
    """
    return list(range(count)) if count <= 4 else [0, 1, None, count - 1]


def channels_figure(input_hw, kernel_hw, *, channels, filters, strides=1, padding="same", dilation=1,
                    bias=True, ax=None):
    """C input channels and K filters: each output channel a sum over channels, plus a bias.

    One row per output channel ``k``: ``x[:, :, c] * W[:, :, c, k]`` for each channel ``c``
    (``*`` is the sliding multiply-and-add), summed, plus ``b[k]``, gives ``y[:, :, k]``.
    Grids are drawn to scale (the kernel at least readable); above 4 channels or filters
    the middle ones are elided. The parameter count ``(Fw * Fh * C + 1) * K`` and every
    size come from :func:`annotations`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from . import draw

    notes = annotations(input_hw, kernel_hw, strides=strides, padding=padding, dilation=dilation,
                        channels=channels, filters=filters, bias=bias)
    (h, w), (fh, fw), (oh, ow) = notes.input_hw, notes.kernel_hw, notes.output_hw
    cell = min(0.6, 4.0 / max(h, w, oh, ow))
    kernel_cell = max(cell, 1.4 / max(fh, fw))
    row_height = max(h * cell, fh * kernel_cell, oh * cell) + 1.6
    cs, ks = shown_indices(notes.channels), shown_indices(notes.filters)
    heights = [row_height if k is not None else 1.2 for k in ks]
    lines = channel_lines(notes, bias)
    width = max(draw.row_width(notes, cs, cell, kernel_cell, bias), 0.19 * max(map(len, lines)))
    figure, ax = draw.units_axes(ax, width, sum(heights) + 2.4)
    bottom = 0.0
    for k, height in zip(ks, heights):
        middle, bottom = bottom + height / 2 - 0.5, bottom + height
        if k is None:
            ax.text(0, middle, f"...  {notes.filters - 3} more output channels, each with its own "
                    f"{fh}x{fw}x{notes.channels} filter and bias", fontsize=9, va="center", color="#404040")
        else:
            draw.equation_row(ax, notes, k, cs, middle, cell, kernel_cell, bias)
    draw.text_block(ax, 0, bottom, lines)
    equation = "y[:, :, k] = sum over c of x[:, :, c] * W[:, :, c, k]" + (" + b[k]" if bias else "")
    figure.suptitle(f"{_count(notes.channels, 'input channel')}, {_count(notes.filters, 'filter')}: "
                    f"{equation}\n{title(notes)}", fontsize=11)
    return figure


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def channel_lines(notes: Annotations, bias: bool = True) -> list[str]:
    """The text under a channels figure: parameters, the kernel's shape, what ``*`` means."""
    (fh, fw), (oh, ow), c, k = notes.kernel_hw, notes.output_hw, notes.channels, notes.filters
    return [notes.params_formula,
            f"kernel W: Fh x Fw x C x K = {fh} x {fw} x {c} x {k}" + (f";  bias b: K = {k}" if bias else "")
            + f";  output y: H' x W' x K = {oh} x {ow} x {k}",
            "*  slides the kernel slice over the zero-padded channel, multiplying and adding "
            "(cross-correlation)"]


# Real values: one output pixel of an image (the arithmetic is in convlayer.explain.pixel).


def pixel_figure(step: PixelArithmetic, image, *, name: str = "kernel", channel_names=None):
    """The arithmetic of one output pixel: patch x kernel = products, summed, plus the bias.

    Parameters
    ----------
    step : PixelArithmetic
        From :func:`pixel_arithmetic`.
    image : ndarray, shape (h, w) or (h, w, 3)
        The input as shown (uint8, or floats in [0, 1]), for the panel locating the window.
    name : str
        The kernel's name, for the title.
    channel_names : list of str, optional
        One per channel (default 'R', 'G', 'B' for three channels, else 'channel 0', ...).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from . import draw

    c = step.kernel.shape[2]
    if channel_names is None:
        channel_names = ["R", "G", "B"] if c == 3 else [f"channel {i}" for i in range(c)]
    texts = [np.vectorize(number, otypes=[str])(a) for a in (step.patch, step.kernel, step.products)]
    texts.append([number(s, 6) for s in step.channel_sums])
    fh, fw = step.kernel.shape[:2]
    heading = (f"{name} at output ({step.at[0]}, {step.at[1]}): each input value times its kernel "
               f"weight, all {fh * fw * c} products summed, plus the bias")
    lines = [sum_line(step), "the same value as convlayer.conv2d gives at this pixel"
             + ("; hatched taps read zero padding" if not step.inside.all() else "")]
    return draw.pixel_panels(step, image, heading, lines, channel_names, texts)


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


def receptive_field_figure(records, input_hw, *, ax=None):
    """The receptive field of one unit per layer, nested over the input grid.

    Parameters
    ----------
    records : list of ReceptiveField
        ``Sequential.receptive_field(input_shape)``; layers that keep the field (ReLU,
        Dropout) are listed with the layer before them.
    input_hw : (int, int)
        The input's height and width.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from . import draw

    h, w = as_pair("input_hw", input_hw)
    groups = _field_groups(records)
    fields = []
    for group in groups:
        unit, first = centre_unit(group[0], (h, w))
        fields.append((first, unit, field_label(group, unit, first)))
    heading = (f"receptive fields in a {h}x{w} input: the unit nearest the centre of each layer's "
               f"output\n(hatched: padding)")
    return draw.receptive_fields([group[0] for group in groups], fields, (h, w), heading, ax)


def _field_groups(records) -> list[list]:
    """Records that change the field, each followed by the ones after it that keep it."""
    groups = []
    for record in records:
        if groups and _field(record) == _field(groups[-1][0]):
            groups[-1].append(record)
        else:
            groups.append([record])
    return groups


def _field(record) -> tuple:
    return record.size, record.jump, record.start


def field_label(group, unit, first) -> str:
    """'0: Conv2D(...) + 1: ReLU()  ->  field 3x3, jump 1, unit (4, 4) sees rows 3..5, columns 3..5'."""
    (size_h, size_w), names = group[0].size, " + ".join(f"{r.index}: {r.layer}" for r in group)
    return (f"{names}  ->  field {size_h}x{size_w}, jump {_pair_text(*group[0].jump)}, unit {unit} sees "
            f"rows {first[0]}..{first[0] + size_h - 1}, columns {first[1]}..{first[1] + size_w - 1}")
