"""The padded slab: the rows and columns of padded input that a block of output reads.

Every algorithm computes the output block by block (see :mod:`.buffers`) and reads, for a
block, only the *slab* of padded input its windows cover. The slab is built from index
maps: ``np.pad`` of the indices ``0..h-1`` (and ``0..w-1``), so every pad mode means
exactly what NumPy means, with -1 marking a zero. When no padding is involved and the
dtype already matches, the slab is a view of the input.

The gradient flows back the same way: :func:`fold_gradient` adds a slab's gradient onto
the input pixels each padded pixel was copied from (the index maps read backwards).
"""

from __future__ import annotations

import functools

import numpy as np

from ..shapes import ConvGeometry, span
from .buffers import Block

# Index maps of up to this many padded positions are cached: np.pad costs about 25 us, a
# fifth of a small layer's call; longer maps are made each time (a cache of them would
# keep megabytes per image width).
CACHED_INDEX = 4096

# Gathering a reflected, symmetric, edge or wrapped slab (fancy indexing) makes temporaries
# of about two more slabs: the indices broadcast to the slab's shape, then the values
# (measured with tracemalloc).
GATHER_TEMPORARIES = 2

# np.add.at onto the border (fold_gradient, for those pad modes) makes up to about three
# slabs of temporaries: the values and their broadcast indices.
FOLD_TEMPORARIES = 3


def shape(geom: ConvGeometry, images: int, rows: int, cols: int) -> tuple[int, int, int, int]:
    """The (images, height, width, c) slab that a block of images x rows x cols output pixels reads."""
    height = (rows - 1) * geom.strides[0] + span(geom.fh, geom.dilation[0])
    width = (cols - 1) * geom.strides[1] + span(geom.fw, geom.dilation[1])
    return images, height, width, geom.c


def gathered_slabs(pad_mode: str) -> int:
    """Slabs of memory that gathering one slab takes: itself and, for a pad mode that copies
    pixels, the temporaries of fancy indexing (:data:`GATHER_TEMPORARIES`)."""
    return 1 if pad_mode == "constant" else 1 + GATHER_TEMPORARIES


def index_maps(geom: ConvGeometry, pad_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The row and the column :func:`source_index` maps of a convolution's padded input."""
    return source_index(geom.h, geom.pads[0], pad_mode), source_index(geom.w, geom.pads[1], pad_mode)


def loop_maps(geom: ConvGeometry, pad_mode: str) -> tuple[np.ndarray, np.ndarray, int]:
    """What the compiled loops read padding from: the row and column index maps, and the
    padding before the first column."""
    return (*index_maps(geom, pad_mode), geom.pads[1][0])


def source_index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    """For each padded position along an axis, the input index it copies (-1: a zero).

    Read-only; maps of up to :data:`CACHED_INDEX` positions are cached.
    """
    pads = (int(pads[0]), int(pads[1]))
    if size + sum(pads) <= CACHED_INDEX:
        return _cached_index(size, pads, pad_mode)
    return _index(size, pads, pad_mode)


@functools.lru_cache(maxsize=256)
def _cached_index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    return _index(size, pads, pad_mode)


def _index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    positions = np.arange(size)
    if pad_mode == "constant":
        index = np.pad(positions, pads, mode="constant", constant_values=-1)
    else:
        index = np.pad(positions, pads, mode=pad_mode)
    index.flags.writeable = False
    return index


def indices(row_map, col_map, geom: ConvGeometry, block: Block):
    """The input rows and columns (index-map entries) that a block's windows read."""
    _, height, width, _ = shape(geom, 1, block.r1 - block.r0, block.c1 - block.c0)
    row0, col0 = block.r0 * geom.strides[0], block.c0 * geom.strides[1]
    return row_map[row0 : row0 + height], col_map[col0 : col0 + width]


def gather(x, rows, cols, work, dtype) -> tuple[np.ndarray, int]:
    """The padded input ``x[:, rows][:, :, cols]`` (-1 indices are zeros) and work used.

    A view of ``x`` when no padding is involved and the dtype matches; otherwise built in
    the front of ``work``.
    """
    plain_rows, plain_cols = _as_range(rows), _as_range(cols)
    if plain_rows and plain_cols and x.dtype == dtype:
        return x[:, plain_rows, plain_cols], 0
    slab_shape = (x.shape[0], len(rows), len(cols), x.shape[3])
    slab = work[: int(np.prod(slab_shape))].reshape(slab_shape)
    if plain_rows and plain_cols:
        slab[...] = x[:, plain_rows, plain_cols]
    elif rows.min() < 0 or cols.min() < 0:
        _fill_zero_padded(x, rows, cols, slab)
    else:
        slab[...] = x[:, rows[:, None], cols[None, :]]
    return slab, slab.size


def gather_contiguous(x, rows, cols, work, dtype) -> tuple[np.ndarray, int]:
    """:func:`gather`, copied into ``work`` when it is a non-contiguous view."""
    slab, used = gather(x, rows, cols, work, dtype)
    if not slab.flags.c_contiguous:
        copy = work[: slab.size].reshape(slab.shape)
        copy[...] = slab
        slab, used = copy, slab.size
    return slab, used


def _as_range(index: np.ndarray) -> "slice | None":
    """The slice equal to ``index`` when its entries are consecutive and non-negative."""
    first, last = int(index[0]), int(index[-1])
    if first >= 0 and last - first == len(index) - 1 and np.all(np.diff(index) == 1):
        return slice(first, last + 1)
    return None


def _fill_zero_padded(x, rows, cols, slab) -> None:
    """Zero padding: real pixels form one rectangle (indices >= 0), zeros around it."""
    real_rows, real_cols = np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0)
    if len(real_rows) == 0 or len(real_cols) == 0:
        slab[...] = 0
        return
    top, bottom = real_rows[0], real_rows[-1] + 1
    left, right = real_cols[0], real_cols[-1] + 1
    slab[:, :top] = 0
    slab[:, bottom:] = 0
    slab[:, top:bottom, :left] = 0
    slab[:, top:bottom, right:] = 0
    source = x[:, rows[top] : rows[bottom - 1] + 1, cols[left] : cols[right - 1] + 1]
    slab[:, top:bottom, left:right] = source


def fold_gradient(grad_slab, rows, cols, geom: ConvGeometry, block: Block, grad_x) -> None:
    """Add the slab's gradient onto the input pixels its pixels copy (grad_x: the block's images).

    The slab's interior copies one rectangle of x one to one: a sliced addition. Padding
    pixels that copy x too (reflect, symmetric, edge, wrap) may copy one pixel many times,
    so they go through ``np.add.at``; zero padding (index -1) receives nothing.
    """
    sh, sw = geom.strides
    inner_r, x_rows, outer_r = _axis_parts(rows, block.r0 * sh, geom.pads[0][0], geom.h)
    inner_c, x_cols, outer_c = _axis_parts(cols, block.c0 * sw, geom.pads[1][0], geom.w)
    grad_x[:, x_rows, x_cols] += grad_slab[:, inner_r, inner_c]
    if outer_r.size:  # padded rows, against every column that copies a pixel
        every_c = np.flatnonzero(cols >= 0)
        values = grad_slab[:, outer_r][:, :, every_c]
        np.add.at(grad_x, (slice(None), rows[outer_r, None], cols[None, every_c]), values)
    if outer_c.size:  # padded columns, against the interior rows
        values = grad_slab[:, inner_r][:, :, outer_c]
        np.add.at(grad_x, (slice(None), rows[inner_r, None], cols[None, outer_c]), values)


def _axis_parts(index: np.ndarray, start: int, before: int, size: int):
    """Split one slab axis (index-map entries from padded position ``start``) in three.

    Returns the slice of positions that copy the input one to one, the input slice they
    copy, and the other positions that copy an input pixel (padding, by reflection etc.).
    """
    first = min(max(before - start, 0), len(index))
    last = max(min(before + size - start, len(index)), first)
    positions = np.arange(len(index))
    outer = positions[(index >= 0) & ((positions < first) | (positions >= last))]
    shift = start - before
    return slice(first, last), slice(first + shift, last + shift), outer
