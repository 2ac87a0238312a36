"""The figures that explain a layer, each a ``matplotlib.figure.Figure``.

- :func:`sliding_figure`: the padded input (the zeros on each side drawn and counted), the
  kernel's footprint at a few output positions, the output grid, and the output-size
  formula filled in; with ``sharing=`` each output pixel is coloured by its kernel bank.
- :func:`write_animation`: the same as a GIF, one frame per output position.
- :func:`channels_figure`: C input channels and K filters, summed plus bias into each
  output channel, with the parameter count.
- :func:`pixel_figure`: the real numbers behind one output pixel.
- :func:`receptive_field_figure`: the fields of ``Sequential.receptive_field()``.

What is written comes from :mod:`convlayer.explain.labels` (or, for real values, from
:mod:`convlayer.explain.pixel`); :mod:`convlayer.explain.draw` places it. Figures are built
without pyplot, so they need no display; matplotlib is imported when one is drawn, and
nothing here calls ``show()``.
"""

from __future__ import annotations

import numpy as np

from .._args import as_pair
from . import draw, grids
from .labels import (
    Annotations,
    animation_positions,
    annotations,
    bank_numbers,
    centre_unit,
    channel_lines,
    default_positions,
    field_label,
    formula_lines,
    shown_indices,
    title,
    window_origin,
)
from .pixel import PixelArithmetic, check_at, number, sum_line


def sliding_figure(input_hw, kernel_hw, *, strides=1, padding="same", dilation=1, positions=None,
                   sharing=None, banks=None, channels=1, filters=1, axes=None):
    """The padded input, the kernel at a few output positions, the output, the formulas.

    Parameters
    ----------
    input_hw, kernel_hw, strides, padding, dilation
        The layer, as for :func:`~convlayer.explain.annotations`.
    positions : list of (int, int), optional
        Output positions whose windows are drawn (default
        :func:`~convlayer.explain.default_positions`: the first, its right neighbour, and the
        last, which shows the padding after).
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

    One frame per output position in row-major order
    (:func:`~convlayer.explain.animation_positions`: capped at ``max_frames`` with a stride
    over positions), the output cell being computed highlighted and the ones before it
    shaded. The file is written whole or not at all.
    """
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


def channels_figure(input_hw, kernel_hw, *, channels, filters, strides=1, padding="same", dilation=1,
                    bias=True, ax=None):
    """C input channels and K filters: each output channel a sum over channels, plus a bias.

    One row per output channel ``k``: ``x[:, :, c] * W[:, :, c, k]`` for each channel ``c``
    (``*`` is the sliding multiply-and-add), summed, plus ``b[k]``, gives ``y[:, :, k]``.
    Grids are drawn to scale (the kernel at least readable); above 4 channels or filters
    the middle ones are elided. The parameter count ``(Fw * Fh * C + 1) * K`` and every
    size come from :func:`~convlayer.explain.annotations`.

    Returns
    -------
    matplotlib.figure.Figure
    """
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

# Real values: one output pixel of an image.


def pixel_figure(step: PixelArithmetic, image, *, name: str = "kernel", channel_names=None):
    """The arithmetic of one output pixel: patch x kernel = products, summed, plus the bias.

    Parameters
    ----------
    step : PixelArithmetic
        From :func:`~convlayer.explain.pixel_arithmetic`.
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
