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

The backward pass (:func:`correlate_backward`) walks the same blocks with the same slab and
patch matrix. The kernel's gradient is ``patches^T @ grad_out`` per group, summed over the
blocks; the patch matrix's gradient, ``grad_out @ weights^T``, is added back onto the slab
("col2im", one strided addition per kernel tap) and the slab's gradient is added onto the
input pixels each padded pixel was copied from (the same index maps read backwards).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..shapes import ConvGeometry, span
from . import banks as banked
from . import compiled, parallel
from .buffers import Block, blocks, plan_blocks, work_buffer


def correlate(
    x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int,
    banks: "banked.BankIndex | None" = None,
) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the cross-correlation of x and kernel.

    ``x`` is (n, h, w, c) of any real dtype, ``kernel`` (fh, fw, c // groups, k) in
    ``out.dtype``; padding, strides and dilation come from ``geom``. With ``banks``, the
    kernel is a bank (b_h, b_w, fh, fw, c, k) and pixel (i, j) uses bank
    ``(banks.rows[i], banks.cols[j])`` (see :mod:`.banks`). Returns ``out``.
    """
    if out.size == 0:
        return out
    if geom.c == 0:  # no input channels: every sum is empty
        out[...] = 0
        return out
    weights = _weight_matrix(kernel, geom.groups) if banks is None else banked.weight_banks(kernel)
    if banks is None and _row_blocks(x, geom, out.itemsize, budget):
        return compiled.im2col_rows(x, weights[0], geom, pad_mode, out, budget)
    row_map, col_map = index_maps(geom, pad_mode)
    # A reflected, symmetric, edge or wrapped slab is gathered by fancy indexing, whose
    # temporaries come to about two more slabs (measured with tracemalloc).
    slabs = 2 if pad_mode == "constant" else 4
    cost = _block_cost(geom, out.dtype.itemsize, slabs=slabs, banks=banks is not None)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    items = _block_cost(geom, out.dtype.itemsize)(*size) // out.dtype.itemsize + 1
    with work_buffer(items, out.dtype) as work:
        for block in blocks(geom.n, geom.out_h, geom.out_w, size):
            _correlate_block(x, weights, geom, row_map, col_map, block, work, out, banks)
    return out


def _row_blocks(x, geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether :func:`.compiled.im2col_rows` computes this call: groups=1, a patch matrix to
    make (not 1x1 at stride 1), at least :data:`.compiled.ROWS_MIN` patch rows, Numba and
    threadpoolctl installed, and a block of one output row per thread within the budget."""
    one_by_one = geom.fh == geom.fw == 1 and geom.strides == (1, 1)
    one_row = geom.out_w * (geom.fh * geom.fw * geom.c + geom.k) * itemsize
    return (geom.groups == 1 and not one_by_one and geom.n * geom.out_h * geom.out_w >= compiled.ROWS_MIN
            and compiled.usable(x) and compiled.blocked_gemm_ready()
            and compiled.fits(geom, itemsize, budget - parallel.thread_count() * one_row))


def _weight_matrix(kernel: np.ndarray, groups: int) -> np.ndarray:
    """Reshape (fh, fw, cg, k) into one (fh * fw * cg, k // groups) matrix per group."""
    fh, fw, cg, k = kernel.shape
    per_group = kernel.reshape(fh, fw, cg, groups, k // groups).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(per_group.reshape(groups, fh * fw * cg, k // groups))


def index_maps(geom: ConvGeometry, pad_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The row and the column :func:`source_index` maps of a convolution's padded input."""
    return source_index(geom.h, geom.pads[0], pad_mode), source_index(geom.w, geom.pads[1], pad_mode)


def source_index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    """For each padded position along an axis, the input index it copies (-1: a zero).

    Read-only. Maps of up to :data:`CACHED_INDEX` positions are cached: ``np.pad`` costs
    about 25 us, a fifth of a small layer's call; longer ones are made each time (a cache
    of them would keep megabytes per image width).
    """
    pads = (int(pads[0]), int(pads[1]))
    if size + sum(pads) <= CACHED_INDEX:
        return _cached_index(size, pads, pad_mode)
    return _index(size, pads, pad_mode)


CACHED_INDEX = 4096


@functools.lru_cache(maxsize=256)
def _cached_index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    return _index(size, pads, pad_mode)


def _index(size: int, pads: tuple[int, int], pad_mode: str) -> np.ndarray:
    indices = np.arange(size)
    if pad_mode == "constant":
        indices = np.pad(indices, pads, mode="constant", constant_values=-1)
    else:
        indices = np.pad(indices, pads, mode=pad_mode)
    indices.flags.writeable = False
    return indices


def _block_cost(geom: ConvGeometry, itemsize: int, slabs: int = 2, banks: bool = False,
                backward: bool = False):
    """Work bytes of a block of (images, rows, cols) output pixels: slabs, patches, product.

    The forward pass counts the slab twice: gathering a reflected or wrapped slab makes a
    temporary. The backward pass adds the slab's gradient and its own temporaries.
    """
    span_h, span_w = span(geom.fh, geom.dilation[0]), span(geom.fw, geom.dilation[1])
    sh, sw = geom.strides

    def cost(images: int, rows: int, cols: int) -> int:
        pixels = images * rows * cols
        slab = images * ((rows - 1) * sh + span_h) * ((cols - 1) * sw + span_w) * geom.c
        per_pixel_kernels = banked.extra_cost(geom, rows, cols, backward) if banks else 0
        return (slabs * slab + pixels * (geom.fh * geom.fw * geom.c + geom.k) + per_pixel_kernels) * itemsize

    return cost


def _correlate_block(x, weights, geom, row_map, col_map, block: Block, work, out, banks) -> None:
    """Compute one block of the output in place."""
    rows, cols = slab_indices(row_map, col_map, geom, block)
    slab, used = gather_slab(x[block.n0 : block.n1], rows, cols, work, out.dtype)
    patches = _patch_matrix(slab, geom, block, work[used:])
    target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    pixels = patches.shape[1]
    if banks is not None:
        banked.product(patches[0], weights, banks, block, target, work[used + patches.size :])
        return
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


def slab_indices(row_map, col_map, geom: ConvGeometry, block: Block):
    """The input rows and columns (index-map entries) that a block's windows read."""
    sh, sw = geom.strides
    rows = row_map[block.r0 * sh : (block.r1 - 1) * sh + span(geom.fh, geom.dilation[0])]
    cols = col_map[block.c0 * sw : (block.c1 - 1) * sw + span(geom.fw, geom.dilation[1])]
    return rows, cols


def gather_slab(x, rows, cols, work, dtype) -> tuple[np.ndarray, int]:
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


def correlate_backward(
    x: np.ndarray,
    kernel: np.ndarray,
    geom: ConvGeometry,
    pad_mode: str,
    grad_out: np.ndarray,
    grad_x: np.ndarray,
    budget: int,
    banks: "banked.BankIndex | None" = None,
    input_grad: bool = True,
) -> np.ndarray:
    """Gradients of ``sum(grad_out * correlate(x, kernel))``: add x's into ``grad_x``.

    ``grad_out`` is (n, out_h, out_w, k) of any real dtype, ``grad_x`` (n, h, w, c) in the
    result dtype (zeros, or gradient to add to). Returns the kernel's gradient, shaped like
    the kernel ((fh, fw, c // groups, k), or the banks' shape with ``banks``). With
    ``input_grad=False`` only the kernel's gradient is computed (``grad_x`` is untouched).
    """
    dtype = grad_x.dtype
    if banks is None:
        weights = _weight_matrix(kernel, geom.groups)
        grad_weights = np.zeros((geom.groups,) + weights.shape[1:], dtype)
    else:
        weights = banked.weight_banks(kernel)
        grad_weights = np.zeros(weights.shape, dtype)
    if grad_out.size == 0 or x.size == 0:  # no output, or every window holds only zeros
        return _kernel_gradient(grad_weights, kernel.shape, banks)
    row_map, col_map = index_maps(geom, pad_mode)
    # Work holds a slab and its gradient. Gathering a reflected or wrapped slab (fancy
    # indexing) and np.add.at onto the border each make up to about three slabs of
    # temporaries (values and broadcast indices), one after the other: plan for five.
    cost = _block_cost(geom, dtype.itemsize, 5, banks=banks is not None, backward=True)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    with work_buffer(_block_cost(geom, dtype.itemsize, 2)(*size) // dtype.itemsize + 1, dtype) as work:
        for block in blocks(geom.n, geom.out_h, geom.out_w, size):
            rows, cols = slab_indices(row_map, col_map, geom, block)
            slab, used = gather_slab(x[block.n0 : block.n1], rows, cols, work, dtype)
            patches = _patch_matrix(slab, geom, block, work[used:])
            # The patch matrix is used up: its gradient takes its place (never x's memory).
            grad_patches = work[used : used + patches.size].reshape(patches.shape)
            if banks is None:
                grad_block = _grad_matrix(grad_out, geom, block, work[used + patches.size :])
                grad_weights += np.matmul(patches.transpose(0, 2, 1), grad_block)
                if not input_grad:
                    continue
                np.matmul(grad_block, weights.transpose(0, 2, 1), out=grad_patches)
            else:
                grad_target = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
                banked.gradients(patches[0], grad_target.astype(dtype, copy=False), weights, banks, block,
                                 grad_weights, grad_patches[0])
            start = used + patches.size + block_pixels(block) * geom.k
            grad_slab = work[start : start + slab.size].reshape(slab.shape)
            _col2im(grad_patches, geom, block, grad_slab)
            _fold_padding(grad_slab, rows, cols, geom, block, grad_x[block.n0 : block.n1])
    return _kernel_gradient(grad_weights, kernel.shape, banks)


def block_pixels(block: Block) -> int:
    return (block.n1 - block.n0) * (block.r1 - block.r0) * (block.c1 - block.c0)


def _kernel_gradient(grad_weights, shape, banks) -> np.ndarray:
    if banks is None:
        return _kernel_from_matrix(grad_weights, shape)
    return banked.kernel_from_banks(grad_weights, shape)


def _kernel_from_matrix(grad_weights: np.ndarray, shape) -> np.ndarray:
    """Undo :func:`_weight_matrix`: (groups, fh * fw * cg, k // groups) to (fh, fw, cg, k)."""
    fh, fw, cg, k = shape
    groups = grad_weights.shape[0]
    per_group = grad_weights.reshape(groups, fh, fw, cg, k // groups)
    return per_group.transpose(1, 2, 3, 0, 4).reshape(fh, fw, cg, k)


def _grad_matrix(grad_out, geom: ConvGeometry, block: Block, work) -> np.ndarray:
    """A block of grad_out as one contiguous (pixels, k // groups) matrix per group."""
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    g, kg = geom.groups, geom.k // geom.groups
    source = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    matrix = work[: nb * rb * cb * geom.k].reshape(g, nb, rb, cb, kg)
    np.copyto(matrix, source.reshape(nb, rb, cb, g, kg).transpose(3, 0, 1, 2, 4))
    return matrix.reshape(g, nb * rb * cb, kg)


def _col2im(grad_patches, geom: ConvGeometry, block: Block, grad_slab) -> None:
    """Fill grad_slab with the sum of every patch's gradient at the pixels it was read from.

    One strided addition per kernel tap: tap (a, b) of every window reads the slab pixels
    ``(a * dh + i * sh, b * dw + j * sw)``.
    """
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    g, cg = geom.groups, geom.c // geom.groups
    if g == 1 and compiled.enabled() and compiled.usable(grad_slab):
        # NumPy adds a tap at a time over runs of c values (3 on a stem layer: 137 of the
        # 7x7 stride-2 stem's 180 ms backward pass); the compiled loop adds fw * c at a time.
        compiled.run("col2im", nb * grad_slab.shape[1], grad_patches[0], geom.fh, geom.fw, sh, sw, dh, dw,
                     rb, cb, grad_slab)
        return
    taps = grad_patches.reshape(g, nb, rb, cb, geom.fh, geom.fw, cg)
    grad_slab[...] = 0
    by_group = grad_slab.reshape(nb, grad_slab.shape[1], grad_slab.shape[2], g, cg)
    for a in range(geom.fh):
        for b in range(geom.fw):
            rows = slice(a * dh, a * dh + (rb - 1) * sh + 1, sh)
            cols = slice(b * dw, b * dw + (cb - 1) * sw + 1, sw)
            by_group[:, rows, cols] += taps[:, :, :, :, a, b].transpose(1, 2, 3, 0, 4)


def _fold_padding(grad_slab, rows, cols, geom: ConvGeometry, block: Block, grad_x) -> None:
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
