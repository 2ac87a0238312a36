"""How :mod:`convlayer.explain` draws: panels, windows, rows of grids, frames.

Every number and every line of text arrives here already computed (from
:mod:`convlayer.shapes`, through :mod:`convlayer.explain.labels`); this module only places
it. Matplotlib is imported inside its functions, when a figure is drawn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._files import atomic_write
from . import grids

MONO = "DejaVu Sans Mono"  # formulas line up in a fixed-width font; it ships with matplotlib
_RGB = (6, 4, 0)  # tab20's red, green and blue


def _tab20(index: int):
    from matplotlib import colormaps

    return colormaps["tab20"].colors[index % 20]


# The sliding window: padded input, output, formulas.


def sliding_axes(notes, lines: Sequence[str], axes=None):
    """Input and output panels side by side (cells of one size), the text lines below."""
    if axes is not None:
        return axes[0].figure, list(axes)
    from matplotlib.figure import Figure

    (ph, pw), (oh, ow) = notes.padded_hw, notes.output_hw
    cell = min(0.42, max(0.03, 4.2 / max(ph, pw)))
    text_width = 0.0753 * max((len(line) for line in lines), default=0)
    width = max(pw * cell + max(ow * cell, 1.6) + 2.4, text_width + 0.9, 7.0)
    height = max(ph, oh) * cell + 1.7 + 0.19 * len(lines)
    figure = Figure(figsize=(width, height), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=[pw + 2, _output_extent(notes)[0] + 2],
                               height_ratios=[max(ph, oh) * cell + 1.0, 0.19 * max(len(lines), 1)])
    return figure, [figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1]),
                    figure.add_subplot(grid[1, :])]


def draw_input(ax, notes) -> None:
    """The padded input: hatched zeros, the real pixels, and the count on each side."""
    (h, w), ((top, bottom), (left, right)) = notes.input_hw, notes.pads
    ph, pw = notes.padded_hw
    grids.hatched(ax, -top, -left, ph, pw)
    grids.grid(ax, 0, 0, h, w, grids.INPUT, lines=False)
    grids.grid(ax, -top, -left, ph, pw, "none", edge="#b0b0b0")
    grids.grid(ax, 0, 0, h, w, "none", lines=False, edge="black")
    if max(ph, pw) <= grids.MAX_TEXT:
        zeros = [["0" if not (0 <= r < h and 0 <= c < w) else "" for c in range(-left, w + right)]
                 for r in range(-top, h + bottom)]
        grids.cell_texts(ax, -top, -left, zeros, colour="#808080", fontsize=grids.fontsize_for(pw))
    middle_x, middle_y = (w - 1) / 2, (h - 1) / 2
    sides = [(f"top: {top}", (middle_x, -top - 0.5), (0, 3), "center", "bottom"),
             (f"bottom: {bottom}", (middle_x, h + bottom - 0.5), (0, -3), "center", "top"),
             (f"left\n{left}", (-left - 0.5, middle_y), (-4, 0), "right", "center"),
             (f"right\n{right}", (w + right - 0.5, middle_y), (4, 0), "left", "center")]
    for text, point, offset, ha, va in sides:  # the counts sit just outside the padded grid
        ax.annotate(text, point, xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=9,
                    color="#404040", annotation_clip=False)
    padded = f"with zero padding (hatched) -> {ph}x{pw}" if (ph, pw) != (h, w) else "(no padding)"
    ax.set_title(f"input {h}x{w} {padded}", fontsize=10, pad=16)
    extra = (max(ph, notes.output_hw[0]) - ph) / 2  # both panels show as many rows: cells of one size
    grids.frame(ax, -left - 0.5, w + right - 0.5, -top - 0.5 - extra, h + bottom - 0.5 + extra)


def _output_extent(notes) -> tuple[float, float]:
    """Width and height, in cells, of the output panel: as tall as the input's, never too narrow."""
    (ph, pw), (oh, ow) = notes.padded_hw, notes.output_hw
    return max(ow, 0.3 * pw), max(ph, oh)


def draw_output(ax, notes, title: str) -> None:
    oh, ow = notes.output_hw
    grids.grid(ax, 0, 0, oh, ow, grids.OUTPUT)
    ax.set_title(title, fontsize=10, pad=16)
    width, height = _output_extent(notes)
    dx, dy = (width - ow) / 2, (height - oh) / 2
    grids.frame(ax, -0.5 - dx, ow - 0.5 + dx, -0.5 - dy, oh - 0.5 + dy)


def windows(ax, notes, origins, colours) -> list:
    """Each window's footprint, outlines inset a little more each so they stay apart."""
    artists = []
    for index, ((top, left), colour) in enumerate(zip(origins, colours)):
        artists += grids.window(ax, top, left, notes.kernel_hw, notes.dilation, colour, inset=0.07 * index)
    return artists


def bank_colour(bank: int, per_row: int, *, light: bool = False):
    """One of ten colours for a bank; banks side by side or one above the other differ.

    Banks are numbered row by row, ``per_row`` to a row; with ``per_row`` a multiple of 10,
    each row shifts the colours by one so vertical neighbours differ too.
    """
    shift = bank // per_row if per_row % 10 == 0 else 0
    return _tab20(2 * ((bank + shift) % 10) + light)


def colour_banks(ax, notes, banks: np.ndarray) -> None:
    """Fill every output cell with its bank's colour and, when it fits, its bank number."""
    oh, ow = notes.output_hw
    for (r, c), bank in np.ndenumerate(banks):
        grids.cell_rect(ax, r, c, 1, 1, facecolor=bank_colour(int(bank), notes.banks[1], light=True), lw=0)
    grids.grid(ax, 0, 0, oh, ow, "none")
    if max(oh, ow) <= grids.MAX_TEXT:
        grids.cell_texts(ax, 0, 0, banks.astype(str), fontsize=grids.fontsize_for(ow))


def mark_output(ax, notes, positions, colours, *, filled=True) -> list:
    """Highlight the output cells being computed (filled, or outlined over bank colours)."""
    artists = []
    for (row, col), colour in zip(positions, colours):
        style = dict(facecolor=colour, alpha=0.55, lw=2.2, edgecolor=colour) if filled else \
            dict(fill=False, lw=2.6, edgecolor="black")
        artists.append(grids.cell_rect(ax, row, col, 1, 1, **style))
        if filled and max(notes.output_hw) <= 10:
            artists.append(ax.text(col, row, f"{row}, {col}", ha="center", va="center",
                                   fontsize=grids.fontsize_for(notes.output_hw[1] * 1.6)))
    return artists


def write_lines(ax, lines: Sequence[str]) -> list:
    """Lines of text, top to bottom, in a fixed-width font; they do not move the layout."""
    ax.set_axis_off()
    count = max(len(lines), 1)
    return [ax.text(0.0, 1 - (i + 0.5) / count, line, transform=ax.transAxes, fontsize=9,
                    va="center", ha="left", family=MONO, in_layout=False)
            for i, line in enumerate(lines)]


# The animation.


def animation_frames(notes, positions, origins, captions, title: str, lines, dpi: int):
    """Yield each frame as an (h, w, 3) uint8 array; the static parts are drawn once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    widest = max(captions, key=len)
    figure, (ax_in, ax_out, ax_text) = sliding_axes(notes, [widest] + list(lines))
    canvas = FigureCanvasAgg(figure)
    draw_input(ax_in, notes)
    draw_output(ax_out, notes, f"output {notes.output_hw[0]}x{notes.output_hw[1]}")
    caption = write_lines(ax_text, [widest] + list(lines))[0]
    figure.suptitle(title, fontsize=11)
    figure.set_dpi(dpi)
    canvas.draw()
    figure.set_layout_engine("none")  # freeze the layout: frames must not jitter
    colour = grids.WINDOWS[0]
    for position, origin, text in zip(positions, origins, captions):
        artists = _done_cells(ax_out, notes, position)
        artists += windows(ax_in, notes, [origin], [colour])
        artists += mark_output(ax_out, notes, [position], [colour])
        caption.set_text(text)
        canvas.draw()
        yield np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
        for artist in artists:
            artist.remove()


def _done_cells(ax, notes, position) -> list:
    """Shade the output cells computed before ``position`` (row-major): at most two blocks."""
    (row, col), width = position, notes.output_hw[1]
    style = dict(facecolor="#f4c7c3", lw=0, zorder=1.5)
    blocks = []
    if row:
        blocks.append(grids.cell_rect(ax, 0, 0, row, width, **style))
    if col:
        blocks.append(grids.cell_rect(ax, row, 0, 1, col, **style))
    return blocks


def save_gif(path, frames: list, duration_ms: int) -> None:
    """Frames as one looping GIF with one shared palette (no dithering: flat colours stay flat)."""
    from PIL import Image

    sample = np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]], axis=0)
    palette = Image.fromarray(sample).quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    indexed = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [duration_ms] * (len(indexed) - 1) + [duration_ms * 3]
    atomic_write(path, lambda temporary: indexed[0].save(
        temporary, format="GIF", save_all=True, append_images=indexed[1:], duration=durations, loop=0))


# Channels and filters: one equation row per output channel.


def channel_colours(index: int, channels: int) -> tuple:
    """(light, dark) colours of input channel ``index``: red, green, blue for RGB."""
    dark = _RGB[index] if channels == 3 else 2 * index
    return _tab20(dark + 1), _tab20(dark)


def units_axes(ax, width: float, height: float):
    """One axes in data units (y down) showing ``width x height`` units, 0.4 inch each."""
    if ax is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(0.4 * width + 0.5, 0.4 * height + 0.9), layout="constrained")
        ax = figure.subplots()
    grids.frame(ax, -0.5, width + 0.3, -0.5, height)
    return ax.figure, ax


def equation_row(ax, notes, k, channels_shown, middle, cell, kernel_cell, bias) -> float:
    """``x[:, :, 0] * W[:, :, 0, k] + ... + b[k] = y[:, :, k]`` centred on ``middle``.

    Returns the row's width. ``None`` in ``channels_shown`` stands for the elided channels.
    """
    (h, w), (fh, fw), (oh, ow) = notes.input_hw, notes.kernel_hw, notes.output_hw
    x = 0.0
    for position, c in enumerate(channels_shown):
        if position:
            x = _symbol(ax, x, middle, "+")
        if c is None:
            x = _symbol(ax, x, middle, "...")
            continue
        light, dark = channel_colours(c, notes.channels)
        x = _labelled_grid(ax, x, middle, h, w, cell, light, f"x[:, :, {c}]\n{h}x{w}")
        x = _symbol(ax, x, middle, "*")
        x = _labelled_grid(ax, x, middle, fh, fw, kernel_cell, dark, f"W[:, :, {c}, {k}]\n{fh}x{fw}")
    if bias:
        x = _symbol(ax, x, middle, "+")
        ax.text(x + 0.1, middle, f"b[{k}]", fontsize=11, va="center", ha="left")
        x += 1.6
    x = _symbol(ax, x, middle, "=")
    output_colour = _tab20(8 + 2 * (k % 6) + 1)  # purple, brown, pink, grey, olive, cyan
    return _labelled_grid(ax, x, middle, oh, ow, cell, output_colour, f"y[:, :, {k}]\n{oh}x{ow}")


def _labelled_grid(ax, x, middle, rows, cols, scale, colour, label) -> float:
    """A grid whose left edge is at ``x``, centred on ``middle``; return its right edge."""
    top = middle - rows * scale / 2
    grids.grid(ax, top + 0.5, x + 0.5, rows, cols, colour, scale=scale)
    ax.text(x + cols * scale / 2, top + rows * scale + 0.15, label, ha="center", va="top", fontsize=8.5)
    return x + cols * scale


def _symbol(ax, x, middle, text) -> float:
    ax.text(x + 0.5, middle, text, ha="center", va="center", fontsize=14)
    return x + 1.0


def text_block(ax, x, y, lines, *, fontsize=9) -> None:
    for index, line in enumerate(lines):
        ax.text(x, y + 0.55 * index, line, fontsize=fontsize, va="top", family=MONO)


def row_width(notes, channels_shown, cell: float, kernel_cell: float, bias: bool) -> float:
    """The width :func:`equation_row` will take, in units."""
    (h, w), (fh, fw), (oh, ow) = notes.input_hw, notes.kernel_hw, notes.output_hw
    terms = sum(w * cell + 1.0 + fw * kernel_cell if c is not None else 1.0 for c in channels_shown)
    return terms + (len(channels_shown) - 1) + (2.6 if bias else 0) + 1.0 + ow * cell


# Real values: patch x kernel = products, per channel.


def pixel_panels(step, image, title: str, lines: Sequence[str], channel_names: Sequence[str], texts):
    """The window in its neighbourhood, then per channel: patch x kernel = products, summed.

    ``texts`` are the numbers as written: patch, kernel and products as (fh, fw, c) arrays of
    strings, then the (c,) channel sums.
    """
    from matplotlib.figure import Figure

    fh, fw, c = step.kernel.shape
    row_height = fh + 1.4
    width = max(3 * fw + 7.5, 0.16 * max(len(line) for line in lines) + 0.5)
    height = row_height * c + 0.6 + 0.55 * len(lines)
    panel_w, panel_h = 0.5 * (width + 2.6), 0.5 * (height + 0.5)
    figure = Figure(figsize=(panel_w + 4.2, max(panel_h, 3.8) + 0.7), layout="constrained")
    ax_image, ax = figure.subplots(1, 2, width_ratios=[3.6, panel_w])
    _neighbourhood(ax_image, image, step)
    longest = max(len(text) for array in texts[:3] for text in np.ravel(array))
    fontsize = 9.5 if longest <= 5 else 8.0 if longest <= 7 else 6.5
    for channel in range(c):
        top = channel * row_height + 1.0
        _pixel_row(ax, step, channel, top, channel_names[channel], texts, fontsize)
    text_block(ax, 0, row_height * c + 0.6, lines, fontsize=10)
    grids.frame(ax, -2.6, width, -0.5, height)
    figure.suptitle(title, fontsize=11)
    return figure


def _pixel_row(ax, step, channel, top, name, texts, fontsize) -> None:
    fh, fw, c = step.kernel.shape
    light, _ = channel_colours(channel, c) if c == 3 else (grids.INPUT, None)
    patch, kernel, products = (array[:, :, channel] for array in texts[:3])
    ax.text(-0.8, top + (fh - 1) / 2, name, ha="right", va="center", fontsize=10)
    grids.grid(ax, top, 0, fh, fw, light)
    for (a, b), inside in np.ndenumerate(step.inside):
        if not inside:  # a tap on the zero padding
            grids.hatched(ax, top + a, b, 1, 1)
    grids.cell_texts(ax, top, 0, patch, fontsize=fontsize)
    ax.text(fw + 0.5, top + (fh - 1) / 2, "x", ha="center", va="center", fontsize=14)
    grids.grid(ax, top, fw + 1.5, fh, fw, "white")
    grids.cell_texts(ax, top, fw + 1.5, kernel, fontsize=fontsize)
    ax.text(2 * fw + 2.0, top + (fh - 1) / 2, "=", ha="center", va="center", fontsize=14)
    signs = np.sign(step.products[:, :, channel])
    for (a, b), sign in np.ndenumerate(signs):
        colour = "#f6c6c2" if sign > 0 else "#c6daf2" if sign < 0 else "white"
        grids.cell_rect(ax, top + a, 2 * fw + 3 + b, 1, 1, facecolor=colour, lw=0)
    grids.grid(ax, top, 2 * fw + 3, fh, fw, "none")
    grids.cell_texts(ax, top, 2 * fw + 3, products, fontsize=fontsize)
    ax.text(3 * fw + 3.0, top + (fh - 1) / 2, f"sum = {texts[3][channel]}",
            ha="left", va="center", fontsize=10)
    if top == 1.0:
        for x, label in ((fw / 2, "input patch"), (1.5 * fw + 1.5, "kernel"), (2.5 * fw + 3, "product")):
            ax.text(x - 0.5, top - 0.8, label, ha="center", va="bottom", fontsize=10)


def _neighbourhood(ax, image, step) -> None:
    """The image around the window, the window's span outlined and its taps dotted."""
    rows, cols = step.rows, step.cols
    margin = max(6, 2 * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, image.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, image.shape[1])
    ax.imshow(image[r0:r1, c0:c1], cmap="gray" if image.ndim == 2 else None,
              extent=(c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5), interpolation="nearest")
    grids.cell_rect(ax, rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1,
                     fill=False, edgecolor="#d62728", lw=2.2)
    if rows[-1] - rows[0] >= len(rows) or cols[-1] - cols[0] >= len(cols):  # dilated: gaps between taps
        taps = np.array([(r, c) for r in rows for c in cols])
        ax.plot(taps[:, 1], taps[:, 0], "o", color="#d62728", markersize=3)
    ax.set_xlim(min(c0, cols[0]) - 0.5, max(c1, cols[-1] + 1) - 0.5)
    ax.set_ylim(max(r1, rows[-1] + 1) - 0.5, min(r0, rows[0]) - 0.5)
    ax.set_title(f"the window in the input\nrows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}",
                 fontsize=10)
    ax.tick_params(labelsize=8)


# Receptive fields.


def receptive_fields(records, fields, input_hw, title: str, ax=None):
    """The input grid and, for each record, the field of one unit, nested and labelled."""
    h, w = input_hw
    firsts = [first for first, _, _ in fields] + [(0, 0)]
    lasts = [(f[0] + r.size[0] - 1, f[1] + r.size[1] - 1) for (f, _, _), r in zip(fields, records)]
    lasts.append((h - 1, w - 1))
    top, left = min(p[0] for p in firsts) - 1, min(p[1] for p in firsts) - 1
    bottom, right = max(p[0] for p in lasts) + 1, max(p[1] for p in lasts) + 1
    if ax is None:
        from matplotlib.figure import Figure

        side = min(0.32, 5.5 / max(bottom - top, right - left))
        size = (max((right - left) * side + 1.0, 7.5), (bottom - top) * side + 1.2 + 0.25 * len(records))
        ax = Figure(figsize=size, layout="constrained").subplots()
    grids.hatched(ax, top, left, bottom - top + 1, right - left + 1)
    grids.grid(ax, 0, 0, h, w, grids.INPUT)
    handles = []
    for index, (record, (first, unit, label)) in enumerate(zip(records, fields)):
        colour = grids.WINDOWS[index % len(grids.WINDOWS)]
        inset = 0.04 * (len(records) - 1 - index)  # nested outlines that share an edge stay apart
        handles.append(grids.cell_rect(ax, first[0] + inset, first[1] + inset, record.size[0] - 2 * inset,
                                        record.size[1] - 2 * inset, fill=False, edgecolor=colour, lw=2.4,
                                        label=label))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8.5, frameon=False)
    grids.frame(ax, left - 0.5, right + 0.5, top - 0.5, bottom + 0.5)
    ax.set_title(title, fontsize=10.5)
    return ax.figure
