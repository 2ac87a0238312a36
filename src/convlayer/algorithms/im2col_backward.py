"""im2col's gradients: the backward pass walks the forward pass's blocks (:mod:`.im2col`)
with the same slab and patch matrix.

The kernel's gradient is ``patches^T @ grad_out`` per group, summed over the
blocks; the patch matrix's gradient, ``grad_out @ weights^T``, is added back onto the slab
("col2im", one strided addition per kernel tap) and the slab's gradient is added onto the
input pixels each padded pixel was copied from (:func:`.slab.fold_gradient`).
"""

from __future__ import annotations

import math

import numpy as np

from ..shapes import ConvGeometry
from . import banks as banked
from . import compiled, im2col, planar, pointwise, slab
from .buffers import Block, blocks, plan_blocks, work_buffer


def correlate_backward(
    x: np.ndarray,
    kernel: np.ndarray,
    geom: ConvGeometry,
    pad_mode: str,
    grad_out: np.ndarray,
    grad_x: np.ndarray,
    budget: int,
    banks: "banked.BankIndex | None" = None,
) -> np.ndarray:
    """Gradients of ``sum(grad_out * correlate(x, kernel))``: x's into ``grad_x``.

    ``grad_out`` is (n, out_h, out_w, k) of any real dtype, ``grad_x`` (n, h, w, c) in the
    result dtype, zeros on entry (a 1x1 layer's product writes it). Returns the kernel's gradient, shaped like
    the kernel ((fh, fw, c // groups, k), or the banks' shape with ``banks``).
    """
    if banks is None and im2col.channel_major(kernel, geom):  # the kernel's own memory, (k, c * fh * fw), as its matrix
        matrix = kernel.transpose(3, 2, 0, 1).reshape(geom.k, -1).T[None]
        return _backward_pass(x, matrix, kernel.shape, geom, pad_mode, grad_out, grad_x, grad_x.dtype, budget, None,
                              channel_major=True)
    if banks is None:
        weights = im2col.weight_matrix(kernel, geom.groups)
    else:
        weights = banked.weight_banks(kernel)
    return _backward_pass(x, weights, kernel.shape, geom, pad_mode, grad_out, grad_x, grad_x.dtype, budget, banks)


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int, like: "np.ndarray | None" = None) -> np.ndarray:
    """The kernel's gradient alone, (fh, fw, c // groups, k): ``patches^T @ grad_out`` per group,
    laid out in memory as the kernel ``like`` is, where given (see :func:`new_gradient`)."""
    shape = (geom.fh, geom.fw, geom.c // geom.groups, geom.k)
    first = like is not None and im2col.lies_filters_first(like)
    return _backward_pass(x, None, shape, geom, pad_mode, grad_out, None, np.dtype(dtype), budget, None, first)


def _backward_pass(x, weights, shape, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, dtype, budget: int,
                   banks, filters_first: bool = False, channel_major: bool = False) -> np.ndarray:
    """:func:`correlate_backward`, with the kernel as its weight matrices (``None``: the
    kernel's gradient only, ``grad_x`` untouched, and ``filters_first`` says how to lay it
    out; ``channel_major``: the matrix's rows in (channel, tap) order, see
    :func:`.im2col.channel_major`); returns the kernel's gradient, ``shape``."""
    if banks is None:
        if weights is not None:
            filters_first = _filters_first(weights[0])
        grad_weights = new_gradient(filters_first, geom, dtype)
    else:
        grad_weights = np.zeros(weights.shape, dtype)
    if grad_out.size == 0 or x.size == 0:  # no output, or every window holds only zeros
        return _unpack_gradient(grad_weights, shape, banks, channel_major)
    plain = banks is None and not channel_major  # (channel_major: more than one tap, more than planar's channels)
    if plain and pointwise.gradients(x, None if weights is None else weights[0], geom, grad_out, grad_x,
                                     grad_weights[0], budget):
        return _unpack_gradient(grad_weights, shape, banks)
    if plain and planar.gradients(x, None if weights is None else weights[0], geom, pad_mode, grad_out, grad_x,
                                  grad_weights[0], budget):
        return _unpack_gradient(grad_weights, shape, banks)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    # Work holds a slab and its gradient, then the temporaries of gathering the slab and of
    # folding its gradient back, one after the other.
    temporaries = max(slab.GATHER_TEMPORARIES, slab.FOLD_TEMPORARIES)
    cost = im2col.block_cost(geom, dtype.itemsize, im2col.WORK_SLABS + temporaries, banks=banks is not None, backward=True)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    with work_buffer(im2col.block_cost(geom, dtype.itemsize)(*size) // dtype.itemsize + 1, dtype) as work:
        for index, block in enumerate(blocks(geom.n, geom.out_h, geom.out_w, size)):
            rows, cols = slab.indices(row_map, col_map, geom, block)
            padded, used = slab.gather(x[block.n0 : block.n1], rows, cols, work, dtype)
            patches = im2col.patch_matrix(padded, geom, block, work[used:])
            # The patch matrix is used up: its gradient takes its place (never x's memory).
            grad_patches = work[used : used + patches.size].reshape(patches.shape)
            if channel_major:
                patches = im2col.swap_taps_and_channels(patches, geom.fh * geom.fw, geom.c)
            if banks is None:
                grad_block = _grad_matrix(grad_out, geom, block, work[used + patches.size :])
                # grad_weights is fresh zeros: the first block's product writes it, not added
                # (see pointwise.gradients)
                _add_product(patches.transpose(0, 2, 1), grad_block, grad_weights, first=index == 0)
                if weights is None:
                    continue
                if channel_major:
                    product = np.matmul(grad_block, weights.transpose(0, 2, 1))
                    grad_patches[...] = im2col.swap_taps_and_channels(product, geom.c, geom.fh * geom.fw)
                else:
                    np.matmul(grad_block, weights.transpose(0, 2, 1), out=grad_patches)
            else:
                grad_target = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
                banked.gradients(patches[0], grad_target.astype(dtype, copy=False), weights, banks, block,
                                 grad_weights, grad_patches[0])
            start = used + patches.size + _pixels(block) * geom.k
            grad_slab = work[start : start + padded.size].reshape(padded.shape)
            _col2im(grad_patches, geom, block, grad_slab)
            slab.fold_gradient(grad_slab, rows, cols, geom, block, grad_x[block.n0 : block.n1])
    return _unpack_gradient(grad_weights, shape, banks, channel_major)


def new_gradient(filters_first: bool, geom: ConvGeometry, dtype) -> np.ndarray:
    """Zeros for the kernel's gradient matrices, ``(groups, fh * fw * cg, k // groups)``,
    laid out as the weight matrices are: with ``filters_first`` (and one group), each
    matrix F-ordered, its transpose C-contiguous, as a kernel that lies filters first in
    memory gives them (PyTorch's ``(k, c, fh, fw)`` through ``data_format="channels_first"``,
    :func:`.im2col.weight_matrix`). The products then write the transpose, ``(k, fh * fw *
    cg)``, and the gradient goes back to the caller's layout without a transposing copy of
    the whole kernel (a 1x1 layer's without any copy). Whole channels-first backward pass
    against the copy in tiles (:func:`.layout.filters_first`), alternating processes:
    7x7x2048 -> 512 1x1 2.6-2.7 -> 1.8 ms (channels-last 1.6), 14x14x1024 -> 2048 1x1 s2
    6.1-6.9 -> 3.2-3.4, 7x7x512 -> 512 3x3 10.7-11.7 -> 9.4-9.8."""
    rows, cols = geom.fh * geom.fw * geom.c // geom.groups, geom.k // geom.groups
    if filters_first and geom.groups == 1:
        return np.zeros((1, cols, rows), dtype).transpose(0, 2, 1)
    return np.zeros((geom.groups, rows, cols), dtype)


def _filters_first(matrix: np.ndarray) -> bool:
    """Whether a 2-D matrix is F-ordered (and not also C-ordered)."""
    return matrix.flags.f_contiguous and not matrix.flags.c_contiguous


def _add_product(a, b, out, first: bool) -> None:
    """``out = a @ b`` (``first``) or ``out += a @ b``, stacks of matrices; where ``out``'s
    matrices are F-ordered (:func:`new_gradient`), as ``(b^T @ a^T)^T``, so BLAS writes
    ``out``'s memory in order."""
    if _filters_first(out[0]):
        a, b, out = b.transpose(0, 2, 1), a.transpose(0, 2, 1), out.transpose(0, 2, 1)
    if first:
        np.matmul(a, b, out=out)
    else:
        out += np.matmul(a, b)


def _pixels(block: Block) -> int:
    return (block.n1 - block.n0) * (block.r1 - block.r0) * (block.c1 - block.c0)


def _unpack_gradient(grad_weights, shape, banks, channel_major: bool = False) -> np.ndarray:
    """The kernel's gradient, ``shape``, from the gradient of its weight matrices (rows in
    (channel, tap) order with ``channel_major``: a view of PyTorch's layout in memory)."""
    if channel_major:
        fh, fw, c, k = shape
        return grad_weights[0].reshape(c, fh, fw, k).transpose(1, 2, 0, 3)
    if banks is None:
        return _kernel_from_matrix(grad_weights, shape)
    return banked.kernel_from_banks(grad_weights, shape)


def _kernel_from_matrix(grad_weights: np.ndarray, shape) -> np.ndarray:
    """Undo :func:`im2col.weight_matrix`: (groups, fh * fw * cg, k // groups) to (fh, fw, cg, k)."""
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
        compiled.run_loop("col2im", nb * grad_slab.shape[1], grad_patches[0], geom.fh, geom.fw, sh, sw, dh, dw,
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


def input_gradient(kernel: np.ndarray, geom: ConvGeometry, grad_out: np.ndarray, grad_x: np.ndarray,
                   budget: int) -> None:
    """x's gradient alone, added into ``grad_x`` (n, h, w, c): the transposed convolution.

    The backward pass without x: per block, ``grad_out @ weights^T`` (one GEMM per group)
    gives each window's patch gradient, added back onto the slab it was read from (col2im)
    and folded onto ``grad_x``. No patch matrix of x is built, and the kernel's gradient is
    not computed. Zero padding only.
    """
    if grad_out.size == 0 or grad_x.size == 0:
        return
    weights_t = im2col.weight_matrix(kernel, geom.groups).transpose(0, 2, 1)
    dtype = grad_x.dtype
    row_map, col_map = slab.index_maps(geom, "constant")
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, im2col.block_cost(geom, dtype.itemsize), budget)
    with work_buffer(im2col.block_cost(geom, dtype.itemsize)(*size) // dtype.itemsize + 1, dtype) as work:
        for index, block in enumerate(blocks(geom.n, geom.out_h, geom.out_w, size)):
            grad_block = _grad_matrix(grad_out, geom, block, work)
            used = grad_block.size
            taps = geom.fh * geom.fw * geom.c // geom.groups
            grad_patches = work[used : used + grad_block.shape[0] * grad_block.shape[1] * taps]
            grad_patches = grad_patches.reshape(grad_block.shape[0], grad_block.shape[1], taps)
            np.matmul(grad_block, weights_t, out=grad_patches)
            used += grad_patches.size
            slab_shape = slab.shape(geom, block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0)
            grad_slab = work[used : used + math.prod(slab_shape)].reshape(slab_shape)
            _col2im(grad_patches, geom, block, grad_slab)
            rows, cols = slab.indices(row_map, col_map, geom, block)
            slab.fold_gradient(grad_slab, rows, cols, geom, block, grad_x[block.n0 : block.n1])


def shares_patches(x: np.ndarray, geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether :func:`correlate_with_kernel_gradient` computes ``geom`` as :func:`correlate`
    would: groups=1 through one patch matrix per block (not a 1x1 layer's product of the
    input as it lies, not the compiled row blocks of large layers)."""
    return geom.groups == 1 and not pointwise.applies(geom) and not im2col.takes_row_blocks(x, geom, itemsize, budget)


def correlate_with_kernel_gradient(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, out: np.ndarray,
                                   grad_out: np.ndarray, budget: int) -> np.ndarray:
    """Fill ``out`` with the correlation of x and kernel, and return the kernel's gradient of
    ``sum(grad_out * correlate(x, kernel))``, (fh, fw, c, k), both from one patch matrix per
    block: ``patches @ weights`` and ``patches^T @ grad_out``. groups=1, zero padding.

    The transposed convolution's backward pass is exactly this pair (its x's gradient is the
    forward correlation of its grad_out, its kernel's gradient that correlation's kernel
    gradient with its x as grad_out), so the patches of its grad_out are built once.
    """
    assert geom.groups == 1, "one weight matrix"
    dtype = out.dtype
    weights = im2col.weight_matrix(kernel, 1)[0]
    grad_weights = np.zeros(weights.shape, dtype)
    row_map, col_map = slab.index_maps(geom, "constant")

    def cost(images: int, rows: int, cols: int) -> int:  # im2col's block and the grad_out block beside it
        return im2col.block_cost(geom, dtype.itemsize)(images, rows, cols) + images * rows * cols * geom.k * dtype.itemsize

    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    with work_buffer(cost(*size) // dtype.itemsize + 1, dtype) as work:
        for index, block in enumerate(blocks(geom.n, geom.out_h, geom.out_w, size)):
            rows, cols = slab.indices(row_map, col_map, geom, block)
            padded, used = slab.gather(x[block.n0 : block.n1], rows, cols, work, dtype)
            patches = im2col.patch_matrix(padded, geom, block, work[used:])[0]
            used += patches.size
            target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
            product = work[used : used + patches.shape[0] * geom.k].reshape(patches.shape[0], geom.k)
            np.matmul(patches, weights, out=product)
            target[...] = product.reshape(target.shape)
            grad_block = _grad_matrix(grad_out, geom, block, work[used:])[0]  # the product is written out
            if index == 0:  # fresh zeros: written, not added (see _backward_pass)
                np.matmul(patches.T, grad_block, out=grad_weights)
            else:
                grad_weights += patches.T @ grad_block
    return grad_weights.reshape(geom.fh, geom.fw, geom.c, geom.k)
