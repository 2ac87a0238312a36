"""im2col + GEMM: every receptive field becomes a row of a patch matrix, and one matrix
product with the kernel, reshaped to ``(fh * fw * c/groups, k)``, computes every output
channel of every pixel at once.

The work is done block by block (see :mod:`.buffers`), so memory beyond the input and the
output stays within the budget. For each block:

1. the *slab*: the padded input rows and columns the block reads, built from index maps
   (``np.pad`` of the indices ``0..h-1``, so every pad mode means exactly what NumPy means,
   with -1 marking zeros); when no padding is involved and the dtype already matches, the
   slab is a view of the input;
2. the *patches*: a strided view of the slab, ``(n, out_h, out_w, fh, fw, groups, c/groups)``,
   copied once into a contiguous patch matrix (skipped for 1x1 stride-1 kernels, whose
   patch matrix is the slab itself);
3. the *product*: a BLAS matrix product per group, written straight into the output when
   the layout allows.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..shapes import ConvGeometry, span
from .buffers import Block, blocks, plan_blocks


def correlate(
    x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int
) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the cross-correlation of x and kernel.

    ``x`` is (n, h, w, c) of any real dtype, ``kernel`` (fh, fw, c // groups, k) in
    ``out.dtype``; padding, strides and dilation come from ``geom``. Returns ``out``.
    """
    if out.size == 0:
        return out
    if kernel.shape[2] == 0:  # no input channels: every sum is empty
        out[...] = 0
        return out
    weights = _weight_matrix(kernel, geom.groups)
    row_map = _source_index(geom.h, geom.pads[0], pad_mode)
    col_map = _source_index(geom.w, geom.pads[1], pad_mode)
    cost = _block_cost(geom, out.dtype.itemsize)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    work = np.empty(cost(*size) // out.dtype.itemsize + 1, out.dtype)
    for block in blocks(geom.n, geom.out_h, geom.out_w, size):
        _correlate_block(x, weights, geom, row_map, col_map, block, work, out)
    return out


def _weight_matrix(kernel: np.ndarray, groups: int) -> np.ndarray:
    """Reshape (fh, fw, cg, k) into one (fh * fw * cg, k // groups) matrix per group."""
    fh, fw, cg, k = kernel.shape
    per_group = kernel.reshape(fh, fw, cg, groups, k // groups).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(per_group.reshape(groups, fh * fw * cg, k // groups))


def _source_index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    """For each padded position along an axis, the input index it copies (-1: a zero)."""
    indices = np.arange(size)
    if pad_mode == "constant":
        return np.pad(indices, pads, mode="constant", constant_values=-1)
    return np.pad(indices, pads, mode=pad_mode)


def _block_cost(geom: ConvGeometry, itemsize: int):
    """Work bytes of a block of (images, rows, cols) output pixels: slab, patches, product."""
    span_h, span_w = span(geom.fh, geom.dilation[0]), span(geom.fw, geom.dilation[1])
    sh, sw = geom.strides

    def cost(images: int, rows: int, cols: int) -> int:
        pixels = images * rows * cols
        slab = images * ((rows - 1) * sh + span_h) * ((cols - 1) * sw + span_w) * geom.c
        # The slab is counted twice: gathering a reflected or wrapped slab makes a temporary.
        return (2 * slab + pixels * (geom.fh * geom.fw * geom.c + geom.k)) * itemsize

    return cost


def _correlate_block(x, weights, geom, row_map, col_map, block: Block, work, out) -> None:
    """Compute one block of the output in place."""
    sh, sw = geom.strides
    rows = row_map[block.r0 * sh : (block.r1 - 1) * sh + span(geom.fh, geom.dilation[0])]
    cols = col_map[block.c0 * sw : (block.c1 - 1) * sw + span(geom.fw, geom.dilation[1])]
    slab, used = _slab(x[block.n0 : block.n1], rows, cols, work, out.dtype)
    patches = _patch_matrix(slab, geom, block, work[used:])
    target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    pixels = patches.shape[1]
    if geom.groups == 1 and target.flags.c_contiguous:
        np.matmul(patches[0], weights[0], out=target.reshape(pixels, geom.k))
        return
    product = work[used + patches.size : used + patches.size + pixels * geom.k]
    product = product.reshape(geom.groups, pixels, geom.k // geom.groups)
    np.matmul(patches, weights, out=product)
    nb, rb, cb = target.shape[:3]
    by_group = as_strided(
        target,
        (nb, rb, cb, geom.groups, geom.k // geom.groups),
        target.strides[:3] + (target.strides[3] * (geom.k // geom.groups), target.strides[3]),
    )
    by_group[...] = product.reshape(geom.groups, nb, rb, cb, -1).transpose(1, 2, 3, 0, 4)


def _slab(x, rows, cols, work, dtype) -> tuple[np.ndarray, int]:
    """The padded input ``x[:, rows][:, :, cols]`` (-1 indices are zeros) and work used.

    A view of ``x`` when no padding is involved and the dtype matches; otherwise built in
    the front of ``work``.
    """
    plain_rows, plain_cols = _as_range(rows), _as_range(cols)
    if plain_rows and plain_cols and x.dtype == dtype:
        return x[:, plain_rows, plain_cols], 0
    shape = (x.shape[0], len(rows), len(cols), x.shape[3])
    slab = work[: int(np.prod(shape))].reshape(shape)
    if plain_rows and plain_cols:
        slab[...] = x[:, plain_rows, plain_cols]
    elif rows.min() < 0 or cols.min() < 0:
        _fill_zero_padded(x, rows, cols, slab)
    else:
        slab[...] = x[:, rows[:, None], cols[None, :]]
    return slab, slab.size


def _as_range(indices: np.ndarray) -> "slice | None":
    """The slice equal to ``indices`` when they are consecutive and non-negative."""
    first, last = int(indices[0]), int(indices[-1])
    if first >= 0 and last - first == len(indices) - 1 and np.all(np.diff(indices) == 1):
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


def _patch_matrix(slab, geom: ConvGeometry, block: Block, work) -> np.ndarray:
    """The (groups, pixels, fh * fw * c/groups) patch matrix of a block."""
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    g, cg = geom.groups, geom.c // geom.groups
    pixels, length = nb * rb * cb, geom.fh * geom.fw * cg
    one_by_one = geom.fh == geom.fw == 1 and geom.strides == (1, 1) and g == 1
    if one_by_one and slab.flags.c_contiguous:
        return slab.reshape(1, pixels, length)  # a 1x1 convolution is a product over channels
    t0, t1, t2, t3 = slab.strides
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    windows = as_strided(
        slab,
        (nb, rb, cb, geom.fh, geom.fw, g, cg),
        (t0, t1 * sh, t2 * sw, t1 * dh, t2 * dw, t3 * cg, t3),
        writeable=False,
    )
    matrix = work[: g * pixels * length].reshape(g, nb, rb, cb, geom.fh, geom.fw, cg)
    np.copyto(matrix, windows.transpose(5, 0, 1, 2, 3, 4, 6))
    return matrix.reshape(g, pixels, length)
