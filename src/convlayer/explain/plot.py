"""Figures of what a layer sees. Matplotlib is imported here, when a figure is drawn.

Functions take arrays (and an optional list of Axes), return the matplotlib Figure and never
call ``show()``. Figures are built with ``matplotlib.figure.Figure``, not pyplot, so they
work without a display and never change the user's backend.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _figure(panels: int, axes):
    """A row of ``panels`` axes, or the caller's."""
    if axes is not None:
        return axes[0].figure, list(axes)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * panels, 4.6), layout="constrained")
    return figure, list(figure.subplots(1, panels))


def _show_image(ax, image: np.ndarray, title: str) -> None:
    shown = image if image.dtype == np.uint8 else np.clip(image, 0, 1)
    ax.imshow(shown, cmap="gray" if image.ndim == 2 else None)
    ax.set_title(title)
    ax.set_axis_off()


def robust_max(values: np.ndarray, percentile: float = 99.5) -> float:
    """The value below which ``percentile`` % of the finite values lie (0 if none).

    Feature maps are dominated by a few strong responses (edges); scaling the colours to
    this instead of the maximum keeps the rest visible.
    """
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, percentile)) if finite.size else 0.0


def _show_map(ax, values: np.ndarray, title: str, cmap: str) -> None:
    """A feature map with its own colour scale and a colour bar in output units.

    The scale stops at the 99.5th percentile (brighter pixels saturate), and is
    symmetric around 0 when the map has both signs.
    """
    top = robust_max(np.abs(values))
    signed = values.min() < 0 < values.max()
    low, high = (-top, top) if signed else (min(values.min(), 0), top)
    picture = ax.imshow(values, cmap="RdBu_r" if signed else cmap, vmin=low, vmax=high or None)
    ax.figure.colorbar(picture, ax=ax, shrink=0.75, extend="max" if not signed else "both")
    ax.set_title(title)
    ax.set_axis_off()


def layer_figure(
    image: np.ndarray,
    maps: np.ndarray,
    titles: Sequence[str],
    *,
    extra: "tuple[np.ndarray, str] | None" = None,
    suptitle: str = "",
    axes=None,
):
    """Input image, each output channel of a layer, and optionally one more panel.

    Parameters
    ----------
    image : ndarray, shape (h, w) or (h, w, 3)
        The input as shown (uint8, or floats in [0, 1]).
    maps : ndarray, shape (out_h, out_w, k)
        The layer's output; each channel gets its own colour scale and bar.
    titles : sequence of str
        One per output channel.
    extra : (ndarray, str), optional
        A further map in [0, 1] (e.g. an equalised edge map) and its title.
    axes : sequence of Axes, optional
        ``2 + k`` (or ``1 + k``) axes to draw into.

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = 1 + maps.shape[-1] + (extra is not None)
    figure, axes = _figure(panels, axes)
    _show_image(axes[0], image, "input")
    for channel, title in enumerate(titles):
        _show_map(axes[1 + channel], maps[..., channel], title, cmap="magma")
    if extra is not None:
        _show_map(axes[-1], extra[0], extra[1], cmap="gray")
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def images_figure(pictures: Sequence[np.ndarray], titles: Sequence[str], *, suptitle: str = "", axes=None):
    """Images side by side in their own colours, e.g. a photo and its blurred copy.

    Parameters
    ----------
    pictures : sequence of ndarray, shape (h, w), (h, w, 1) or (h, w, 3)
        Any dtype; shown as :func:`for_display` makes them (integers over their type's range).
    titles : sequence of str
        One per picture.
    axes : sequence of Axes, optional
        One per picture.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if axes is None:  # panels shaped like the pictures, not square: no bands of white
        from matplotlib.figure import Figure

        h, w = pictures[0].shape[:2]
        figure = Figure(figsize=(4.2 * len(pictures), 4.2 * h / max(w, 1) + 0.9), layout="constrained")
        axes = list(np.atleast_1d(figure.subplots(1, len(pictures))))
    figure = axes[0].figure
    for ax, picture, title in zip(axes, pictures, titles):
        _show_image(ax, for_display(picture), title)
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def for_display(pixels: np.ndarray) -> np.ndarray:
    """An image as imshow wants it: uint8 as is, other dtypes scaled to [0, 1].

    Integer images are divided by their type's range (65535 for 16-bit), floats by their
    maximum; one channel becomes (h, w) so it is drawn in gray.
    """
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype.kind in "ui":
        return pixels / np.iinfo(pixels.dtype).max
    top = float(np.nanmax(pixels)) if pixels.size else 0.0
    return pixels / top if top > 0 else pixels


def equalised(edge: np.ndarray) -> np.ndarray:
    """An edge map made readable: scaled to [0, 1] by its 99.5th percentile, then CLAHE.

    CLAHE (``skimage.exposure.equalize_adapthist``) equalises contrast tile by tile, so
    faint edges show next to strong ones. Negative responses count as no edge.
    """
    from skimage import exposure

    positive = np.nan_to_num(np.maximum(edge, 0))
    top = robust_max(positive)
    scaled = np.clip(positive / top, 0, 1) if top > 0 else positive
    return exposure.equalize_adapthist(scaled)


def filters_figure(kernel: np.ndarray, *, title: str = "first-layer filters", axes=None):
    """Each filter of a (fh, fw, c, k) kernel as a small image (channel 0), one panel each.

    Every filter has its own symmetric colour scale (red positive, blue negative), so the
    pattern it detects is visible whatever its size.
    """
    count = kernel.shape[-1]
    columns = min(count, 8)
    rows = -(-count // columns)
    if axes is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(1.3 * columns, 1.45 * rows + 0.5), layout="constrained")
        axes = list(np.ravel(figure.subplots(rows, columns, squeeze=False)))
    figure = axes[0].figure
    for index, ax in enumerate(axes):
        ax.set_axis_off()
        if index < count:
            weights = kernel[:, :, 0, index]
            top = float(np.abs(weights).max()) or 1.0
            ax.imshow(weights, cmap="RdBu_r", vmin=-top, vmax=top)
            ax.set_title(str(index), fontsize=8)
    figure.suptitle(title)
    return figure


def curves_figure(history: dict, *, axes=None, held_out: str = "validation"):
    """Loss and accuracy per epoch, training and held-out (``history['val_*']``, labelled
    ``held_out``: "validation", or "test" where the held-out set is a test set), side by side."""
    if axes is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(10, 4), layout="constrained")
        axes = figure.subplots(1, 2)
    figure = axes[0].figure
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric], marker="o", markersize=3, label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", markersize=3, label=held_out)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    return figure


def confusion_figure(matrix: np.ndarray, *, title: str = "confusion matrix", ax=None):
    """A confusion matrix (true class by row, predicted by column) with counts written in."""
    if ax is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(5.6, 5), layout="constrained")
        ax = figure.subplots()
    figure = ax.figure
    picture = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(picture, ax=ax, shrink=0.8)
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            dark = count > matrix.max() / 2
            ax.text(column, row, str(count), ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ticks = np.arange(matrix.shape[0])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return figure
