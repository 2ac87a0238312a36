"""What one task of a Dask convolution runs, on NumPy arrays: copy a strip, or gather a
block's padded pixels and correlate them.

A block's windows are the output pixels it owns, so a valid correlation of its gathered
pixels gives exactly those; it runs the algorithm layer
(:func:`convlayer.algorithms.dispatch.correlate`) as :func:`convlayer.conv2d` does after its
checks (which ran once, for the whole array, in :mod:`.graph`).
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from ..algorithms import buffers, dispatch


def strip_copy(chunk: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """A copy of the strip of a chunk that a block reads: a view would keep the whole chunk."""
    return chunk[:, rows, cols].copy()


def correlate_block(parts: list, window: tuple, shared: tuple) -> np.ndarray:
    """One output block: gather its padded pixels from the parts, then a valid correlation.

    ``parts`` are ``[array, lo, hi, c_lo, c_hi]``: input rows ``lo..hi`` and columns
    ``c_lo..c_hi`` (inclusive); ``window`` the padded rows and columns the block reads.
    """
    kernel, bias, row_source, col_source, geom, algorithm = shared
    block = _gather(parts, row_source[window[0]], col_source[window[1]])
    valid = _valid_geometry(geom, block.shape)
    out = np.empty((valid.n, valid.out_h, valid.out_w, valid.k), kernel.dtype)
    correlate_into(block, kernel, bias, valid, "constant", out, algorithm)
    return out


def _valid_geometry(geom: shapes.ConvGeometry, block_shape: tuple) -> shapes.ConvGeometry:
    """``geom`` for a gathered block: its own size, no padding, the windows that fit in it.

    A lone window gets stride 1, as :func:`convlayer._validate.conv_args` gives any call whose
    stride steps past its input: the same window, and the same choice of algorithm.
    """
    n, h, w, _ = block_shape
    spans = shapes.span(geom.fh, geom.dilation[0]), shapes.span(geom.fw, geom.dilation[1])
    out_h, out_w = (h - spans[0]) // geom.strides[0] + 1, (w - spans[1]) // geom.strides[1] + 1
    strides = tuple(s if out > 1 else 1 for s, out in zip(geom.strides, (out_h, out_w)))
    return geom._replace(n=n, h=h, w=w, pads=((0, 0), (0, 0)), strides=strides, out_h=out_h, out_w=out_w)


def correlate_into(x: np.ndarray, kernel: np.ndarray, bias, geom: shapes.ConvGeometry,
                   pad_mode: str, out: np.ndarray, algorithm: str) -> None:
    """Fill ``out`` (n, out_h, out_w, k) as :func:`convlayer.conv2d` does after its checks."""
    dispatch.correlate(x, kernel, geom, pad_mode, out, buffers.get_memory_budget(), algorithm)
    if bias is not None:
        out += bias


def _gather(parts: list, row_sources: np.ndarray, col_sources: np.ndarray) -> np.ndarray:
    """The block ``x[:, row_sources][:, :, col_sources]``, zero where a source is -1."""
    first = parts[0][0]
    shape = (first.shape[0], len(row_sources), len(col_sources), first.shape[3])
    if len(parts) == 1:  # a view of one chunk will do when the block is a range of it
        (to_r, from_r), (to_c, from_c) = _placements(parts[0], row_sources, col_sources)
        if _is_slice(to_r, shape[1]) and _is_slice(to_c, shape[2]):
            return first[:, from_r, from_c]
    zeros = (row_sources < 0).any() or (col_sources < 0).any()
    block = (np.zeros if zeros else np.empty)(shape, first.dtype)
    for array, r_lo, r_hi, c_lo, c_hi in parts:
        (to_r, from_r), (to_c, from_c) = _placements((array, r_lo, r_hi, c_lo, c_hi), row_sources, col_sources)
        if isinstance(to_r, slice) and isinstance(to_c, slice):
            block[:, to_r, to_c] = array[:, from_r, from_c]
        else:  # reflected or wrapped pixels: index arrays, rows against columns
            to_r, from_r = _indices(to_r, shape[1]), _indices(from_r, array.shape[1])
            to_c, from_c = _indices(to_c, shape[2]), _indices(from_c, array.shape[2])
            block[:, to_r[:, None], to_c[None, :]] = array[:, from_r[:, None], from_c[None, :]]
    return block


def _is_slice(selection, length: int) -> bool:
    return isinstance(selection, slice) and selection == slice(0, length)


def _indices(selection, length: int) -> np.ndarray:
    return np.arange(length)[selection]


def _placements(part, row_sources: np.ndarray, col_sources: np.ndarray) -> tuple:
    """:func:`_placement` of a part's rows and of its columns."""
    return _placement(row_sources, part[1], part[2]), _placement(col_sources, part[3], part[4])


def _placement(sources: np.ndarray, lo: int, hi: int) -> tuple:
    """Where the sources in ``lo..hi`` sit in the block, and which pixels of the part they are:
    two slices when both run in steps of one, else two index arrays."""
    inside = np.flatnonzero((sources >= lo) & (sources <= hi))
    taken = sources[inside] - lo
    if inside.size and (np.diff(inside) == 1).all() and (np.diff(taken) == 1).all():
        return slice(int(inside[0]), int(inside[-1]) + 1), slice(int(taken[0]), int(taken[-1]) + 1)
    return inside, taken
