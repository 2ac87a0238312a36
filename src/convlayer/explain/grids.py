"""Drawing primitives for :mod:`convlayer.explain`: grids of cells on a matplotlib Axes.

Cell ``(row, col)`` of a grid is the unit square centred on ``(left + col, top + row)``
in data coordinates, with the y axis pointing down (as in an image). Matplotlib is
imported inside the functions, when something is drawn.
"""

from __future__ import annotations

INPUT = "#d6e6f5"  # real input pixels
OUTPUT = "#ececec"  # output pixels not highlighted
LINE = "#8c8c8c"  # grid lines
HATCH = "#b0b0b0"  # zero padding
WINDOWS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MAX_LINES = 48  # more cells than this per side: no grid lines (they would be a grey blur)
MAX_TEXT = 16  # more cells than this per side: no numbers in the cells


def cell_rect(ax, top, left, rows, cols, **style):
    """A rectangle covering ``rows x cols`` cells whose top-left cell is ``(top, left)``."""
    from matplotlib.patches import Rectangle

    patch = Rectangle((left - 0.5, top - 0.5), cols, rows, **style)
    ax.add_patch(patch)
    return patch


def grid(ax, top, left, rows, cols, colour, *, edge="#505050", lines=True, scale=1.0):
    """A block of cells filled with ``colour``, with grid lines and a dark outline.

    ``scale`` draws each cell ``scale`` data units wide (the block starts at the same corner).
    """
    from matplotlib.patches import Rectangle

    x0, y0 = left - 0.5, top - 0.5
    ax.add_patch(Rectangle((x0, y0), cols * scale, rows * scale, facecolor=colour, edgecolor="none"))
    if lines and max(rows, cols) <= MAX_LINES:
        ax.vlines([x0 + c * scale for c in range(1, cols)], y0, y0 + rows * scale, colors=LINE, lw=0.6)
        ax.hlines([y0 + r * scale for r in range(1, rows)], x0, x0 + cols * scale, colors=LINE, lw=0.6)
    ax.add_patch(Rectangle((x0, y0), cols * scale, rows * scale, fill=False, edgecolor=edge, lw=1.2))


def hatched(ax, top, left, rows, cols):
    """Zero padding: a hatched block (drawn under the input)."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left - 0.5, top - 0.5), cols, rows, facecolor="white",
                           edgecolor=HATCH, hatch="///", lw=0))


def window(ax, top, left, taps, dilation, colour, *, inset=0.0, fill=0.35):
    """A kernel's footprint: its taps filled, its span outlined; return the artists.

    ``taps`` is ``(fh, fw)``; tap ``(a, b)`` covers cell ``(top + a * d_h, left + b * d_w)``.
    The outline is dashed when the kernel is dilated (the cells between taps are skipped).
    """
    (fh, fw), (dh, dw) = taps, dilation
    artists = [cell_rect(ax, top + a * dh, left + b * dw, 1, 1, facecolor=colour, alpha=fill, lw=0)
               for a in range(fh) for b in range(fw)]
    span_h, span_w = (fh - 1) * dh + 1, (fw - 1) * dw + 1
    dashed = (dh, dw) != (1, 1)
    artists.append(cell_rect(ax, top + inset, left + inset, span_h - 2 * inset, span_w - 2 * inset,
                             fill=False, edgecolor=colour, lw=2.6, linestyle="--" if dashed else "-"))
    return artists


def cell_texts(ax, top, left, values, *, fontsize=8, colour="black", style="normal"):
    """Write each entry of a 2-D list or array of strings in its cell."""
    for r, row in enumerate(values):
        for c, text in enumerate(row):
            if text:
                ax.text(left + c, top + r, text, ha="center", va="center", fontsize=fontsize,
                        color=colour, fontstyle=style)


def frame(ax, xmin, xmax, ymin, ymax, margin: float = 0.06) -> None:
    """Show this box of data coordinates (and a thin margin for outlines), y down, square cells."""
    ax.set_xlim(xmin - margin, xmax + margin)
    ax.set_ylim(ymax + margin, ymin - margin)
    ax.set_aspect("equal")
    ax.set_axis_off()


def fontsize_for(cells: int, largest: float = 9.0, smallest: float = 5.0) -> float:
    """A font size that shrinks as a grid gets more cells per side."""
    return max(smallest, min(largest, 90.0 / max(cells, 1)))
