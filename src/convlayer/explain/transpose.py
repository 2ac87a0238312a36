"""The transposed convolution drawn with the user's numbers: ``convlayer explain --transpose``.

Three panels, one idea seen two ways:

- the input, with a few pixels picked out in colour;
- the *stuffed* input: its pixels ``s`` apart with ``s - 1`` zeros between them, padded with
  ``span - 1 - top`` zeros (cropped where that is negative), over which the rotated kernel
  slides at stride 1: the transposed convolution as an ordinary one (conv_arithmetic's
  picture);
- the output, where each picked pixel stamps the kernel (its outline, tap ``(a, b)`` at
  ``(i * s + a * d - top, j * s + b * d - left)``), every cell numbered and shaded by how many
  stamps overlap there: when the kernel is not a multiple of the stride the counts alternate,
  the checkerboard of uneven overlap. Rows the padding crops are drawn outside the output's
  frame, hatched; rows no stamp reaches (output_padding) are zeros inside it.

Every number comes from :func:`convlayer.shapes.transpose_geometry`; the formulas are
:func:`convlayer.explain.formulas.transpose_axis_formulas`.
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from . import draw, grids
from .formulas import transpose_axis_formulas


def overlap_counts(geom: shapes.TransposeGeometry) -> np.ndarray:
    """(out_h, out_w): how many (input pixel, tap) stamps land on each output cell.

    >>> geom = shapes.transpose_geometry((2, 2, 1), (3, 3, 1, 1), 2, "valid")
    >>> overlap_counts(geom)
    array([[1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1],
           [2, 2, 4, 2, 2],
           [1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1]])
    """
    rows = _axis_counts(geom.h, geom.fh, geom.strides[0], geom.dilation[0], geom.pads[0][0], geom.out_h)
    cols = _axis_counts(geom.w, geom.fw, geom.strides[1], geom.dilation[1], geom.pads[1][0], geom.out_w)
    return np.outer(rows, cols)


def _axis_counts(size, kernel, stride, dilation, before, out, start=None) -> np.ndarray:
    """Stamps per position along one axis, output positions ``start .. start + out - 1`` (default 0)."""
    start = 0 if start is None else start
    counts = np.zeros(out, int)
    for i in range(size):
        for a in range(kernel):
            position = i * stride + a * dilation - before - start
            if 0 <= position < out:
                counts[position] += 1
    return counts


def default_pixels(geom: shapes.TransposeGeometry) -> list[tuple[int, int]]:
    """Input pixels to pick out: the first, its right neighbour (their stamps overlap when the
    kernel spans more than the stride), and the last."""
    picked = [(0, 0)]
    if geom.w > 1:
        picked.append((0, 1))
    if (geom.h - 1, geom.w - 1) not in picked:
        picked.append((geom.h - 1, geom.w - 1))
    return picked


def transpose_lines(geom: shapes.TransposeGeometry, padding, output_padding=None,
                    output_shape: bool = False) -> list[str]:
    """The formula lines under the figure (and printed by the command)."""
    word = padding if isinstance(padding, str) else "explicit"
    extra = (None, None) if output_padding is None else shapes_pair(output_padding)
    lines = []
    for axis, (name, size, kernel, out) in enumerate((("height:", geom.h, geom.fh, geom.out_h),
                                                       ("width:", geom.w, geom.fw, geom.out_w))):
        text = transpose_axis_formulas(axis, size, kernel, geom.strides[axis], geom.dilation[axis],
                                       geom.pads[axis], out, word, extra[axis], output_shape)
        lines += [f"{name if i == 0 else '':8s}{line}" for i, line in enumerate(text)]
    lines.append(_overlap_line(geom))
    return lines


def shapes_pair(value) -> tuple[int, int]:
    """An int or a pair as a pair."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _overlap_line(geom: shapes.TransposeGeometry) -> str:
    counts = overlap_counts(geom)
    low, high = (int(counts.min()), int(counts.max())) if counts.size else (0, 0)
    if low == high:
        return f"every output pixel sums {high} stamp{'s' if high != 1 else ''}: even overlap"
    uneven = [f"{'Fh' if axis == 0 else 'Fw'} = {f} is not a multiple of s = {s}"
              for axis, (f, s) in enumerate(zip((geom.fh, geom.fw), geom.strides)) if f % s]
    why = f" ({'; '.join(uneven)}: the checkerboard)" if uneven else " (fewer stamps reach the border)"
    return f"output pixels sum {low} to {high} stamps{why}"


def transpose_figure(input_hw, kernel_hw, *, strides=1, padding="same", output_padding=None, output_shape=None,
                     dilation=1, pixels=None):
    """Draw a transposed convolution: input, stuffed input, stamped output, formulas.

    Parameters
    ----------
    input_hw, kernel_hw : (int, int)
    strides, padding, output_padding, output_shape, dilation
        As for :func:`convlayer.conv_transpose2d`.
    pixels : list of (int, int), optional
        Input pixels whose stamps are drawn (default :func:`default_pixels`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    (h, w), (fh, fw) = input_hw, kernel_hw
    geom = shapes.transpose_geometry((h, w, 1), (fh, fw, 1, 1), strides, padding, output_padding, output_shape,
                                     dilation)
    pixels = default_pixels(geom) if pixels is None else [tuple(p) for p in pixels]
    colours = [grids.WINDOWS[i % len(grids.WINDOWS)] for i in range(len(pixels))]
    lines = transpose_lines(geom, padding, output_padding, output_shape is not None)
    stuffed = _stuffed_extent(geom)
    figure, (ax_in, ax_stuffed, ax_out, ax_text) = _axes(geom, stuffed, lines)
    _draw_input(ax_in, geom, pixels, colours)
    _draw_stuffed(ax_stuffed, geom, stuffed, pixels, colours)
    _draw_output(ax_out, geom, pixels, colours)
    draw.write_lines(ax_text, lines)
    figure.suptitle(_title(geom, padding, output_padding, output_shape), fontsize=11)
    return figure


def _title(geom, padding, output_padding, output_shape) -> str:
    stride = f"{geom.strides[0]}" if geom.strides[0] == geom.strides[1] else f"{geom.strides[0]}x{geom.strides[1]}"
    parts = [f"transposed: {geom.h}x{geom.w} input, {geom.fh}x{geom.fw} kernel, stride {stride}",
             f"padding {padding!r}" if isinstance(padding, str) else f"padding {padding}"]
    if output_padding is not None:
        parts.append(f"output_padding {output_padding}")
    if output_shape is not None:
        parts.append(f"output_shape {tuple(output_shape)}")
    if geom.dilation != (1, 1):
        parts.append(f"dilation {geom.dilation[0]}x{geom.dilation[1]}")
    return ", ".join(parts) + f"  ->  {geom.out_h}x{geom.out_w} output"


def _stuffed_extent(geom) -> tuple[tuple[int, int], tuple[int, int]]:
    """The stuffed canvas's first and last stuffed coordinate per axis (negative: padding)."""
    extents = []
    for axis in (0, 1):
        span = shapes.span((geom.fh, geom.fw)[axis], geom.dilation[axis])
        before, out = geom.pads[axis][0], (geom.out_h, geom.out_w)[axis]
        extents.append((before - (span - 1), before + out - 1))
    return tuple(extents)


def _axes(geom, stuffed, lines):
    from matplotlib.figure import Figure

    (r0, r1), (c0, c1) = stuffed
    sh, sw = r1 - r0 + 1, c1 - c0 + 1
    rows = max(geom.h, sh, geom.out_h + 2 * max(geom.pads[0]))
    cols = [geom.w + 2, sw + 2, geom.out_w + 2 * max(geom.pads[1]) + 2]
    cell = min(0.42, max(0.05, 11.0 / sum(cols)))
    text_width = 0.0753 * max(len(line) for line in lines)
    width = max(sum(cols) * cell + 1.0, text_width + 0.9, 8.0)
    figure = Figure(figsize=(width, rows * cell + 2.0 + 0.19 * len(lines)), layout="constrained")
    spec = figure.add_gridspec(2, 3, width_ratios=cols, height_ratios=[rows * cell + 1.2, 0.19 * len(lines)])
    return figure, [figure.add_subplot(spec[0, i]) for i in range(3)] + [figure.add_subplot(spec[1, :])]


def _draw_input(ax, geom, pixels, colours) -> None:
    grids.grid(ax, 0, 0, geom.h, geom.w, grids.INPUT)
    for (i, j), colour in zip(pixels, colours):
        grids.cell_rect(ax, i, j, 1, 1, facecolor=colour, alpha=0.6, edgecolor=colour, lw=2)
    if max(geom.h, geom.w) <= grids.MAX_TEXT:
        labels = [[f"{i},{j}" for j in range(geom.w)] for i in range(geom.h)]
        grids.cell_texts(ax, 0, 0, labels, fontsize=grids.fontsize_for(geom.w * 2.2))
    ax.set_title(f"input {geom.h}x{geom.w}", fontsize=10, pad=16)
    grids.frame(ax, -0.5, geom.w - 0.5, -0.5, geom.h - 0.5)


def _draw_stuffed(ax, geom, stuffed, pixels, colours) -> None:
    """Input pixels s apart, stuffed zeros between, padding zeros around; the kernel at stride 1."""
    (r0, r1), (c0, c1) = stuffed
    (sh, sw) = geom.strides
    last_r, last_c = (geom.h - 1) * sh, (geom.w - 1) * sw
    rows, cols = r1 - r0 + 1, c1 - c0 + 1
    grids.grid(ax, 0, 0, rows, cols, "white", edge="#b0b0b0")
    small = max(rows, cols) <= grids.MAX_TEXT * 2
    for r in range(rows):
        for c in range(cols):
            y, x = r + r0, c + c0
            inside = 0 <= y <= last_r and 0 <= x <= last_c
            if inside and y % sh == 0 and x % sw == 0:
                colour = dict(zip(pixels, colours)).get((y // sh, x // sw), grids.INPUT)
                grids.cell_rect(ax, r, c, 1, 1, facecolor=colour, alpha=0.6 if colour != grids.INPUT else 1, lw=0)
            elif inside:  # a stuffed zero
                grids.cell_rect(ax, r, c, 1, 1, facecolor="#fff4d6", lw=0)
                if small:
                    ax.text(c, r, "0", ha="center", va="center", fontsize=grids.fontsize_for(cols), color="#a07000")
            else:  # padding
                grids.hatched(ax, r, c, 1, 1)
    grids.grid(ax, 0, 0, rows, cols, "none", edge="#808080")
    grids.window(ax, 0, 0, (geom.fh, geom.fw), geom.dilation, "#404040", fill=0.15)
    sides = [f"{side} {-first}" if first <= 0 else f"{side} {first} cropped" for side, first in (("top", r0),
                                                                                                  ("left", c0))]
    ax.set_title(f"stuffed: {sh - 1}x{sw - 1} zeros between pixels (yellow), padding {', '.join(sides)} "
                 f"(hatched);\nthe rotated kernel slides at stride 1 (grey: output 0, 0)",
                 fontsize=9, pad=10)
    grids.frame(ax, -0.5, cols - 0.5, -0.5, rows - 0.5)


def _draw_output(ax, geom, pixels, colours) -> None:
    """The output: overlap counts (the checkerboard), stamps, cropped and zero rows."""
    import matplotlib

    (top, _), (left, _) = geom.pads
    span_h, span_w = shapes.span(geom.fh, geom.dilation[0]), shapes.span(geom.fw, geom.dilation[1])
    full_h, full_w = (geom.h - 1) * geom.strides[0] + span_h, (geom.w - 1) * geom.strides[1] + span_w
    r_lo, r_hi = -top, max(full_h - top, geom.out_h)
    c_lo, c_hi = -left, max(full_w - left, geom.out_w)
    rows = _axis_counts(geom.h, geom.fh, geom.strides[0], geom.dilation[0], top, r_hi - r_lo, start=r_lo)
    cols = _axis_counts(geom.w, geom.fw, geom.strides[1], geom.dilation[1], left, c_hi - c_lo, start=c_lo)
    counts = np.outer(rows, cols)
    cmap = matplotlib.colormaps["Greens"]
    high = max(int(counts.max(initial=1)), 1)
    small = max(r_hi - r_lo, c_hi - c_lo) <= grids.MAX_TEXT * 2
    for (r, c), count in np.ndenumerate(counts):
        y, x = r + r_lo, c + c_lo
        kept = 0 <= y < geom.out_h and 0 <= x < geom.out_w
        if kept:
            grids.cell_rect(ax, y, x, 1, 1, facecolor=cmap(0.12 + 0.6 * count / high), lw=0)
        elif count:
            grids.hatched(ax, y, x, 1, 1)
        if small and (kept or count):
            ax.text(x, y, str(count), ha="center", va="center", fontsize=grids.fontsize_for(c_hi - c_lo),
                    color="black" if kept else "#909090")
    grids.grid(ax, 0, 0, geom.out_h, geom.out_w, "none", edge="black")
    for (i, j), colour in zip(pixels, colours):
        grids.window(ax, i * geom.strides[0] - top, j * geom.strides[1] - left, (geom.fh, geom.fw), geom.dilation,
                     colour, fill=0.0)
    bottom, right = max(full_h - top - geom.out_h, 0), max(full_w - left - geom.out_w, 0)
    ax.set_title(f"output {geom.out_h}x{geom.out_w}: stamps per pixel (the overlap);\noutside the frame, "
                 f"cropped by the padding:\ntop {top}, bottom {bottom}, left {left}, right {right}", fontsize=9,
                 pad=10)
    grids.frame(ax, c_lo - 0.5, c_hi - 0.5, r_lo - 0.5, r_hi - 0.5)
