"""Kernel banks: the product step when output pixels do not all share one kernel.

A tiled, region-shared or locally-connected layer gathers exactly the patches of a
convolution (:mod:`.im2col` does that); only the product differs. Pixel ``(i, j)`` uses
kernel ``weights[rows[i], cols[j]]``, so a block's pixels get their kernels gathered into a
stack of per-pixel matrices and one batched matrix product (BLAS per pixel, no Python loop)
multiplies each pixel's patches, across the images of the block, by its own kernel.

*Banks* are the kernels themselves, a grid ``(b_h, b_w)`` of them; a :class:`BankIndex` says
which bank each output row and column takes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BankIndex(NamedTuple):
    """Which bank each output row and column uses: ``(out_h,)`` and ``(out_w,)`` integers."""

    rows: np.ndarray
    cols: np.ndarray


def weight_banks(kernel: np.ndarray) -> np.ndarray:
    """(b_h, b_w, fh, fw, c, k) kernels as (b_h, b_w, fh * fw * c, k) matrices (a view)."""
    b_h, b_w, fh, fw, c, k = kernel.shape
    return kernel.reshape(b_h, b_w, fh * fw * c, k)


def kernel_from_banks(grad_weights: np.ndarray, shape) -> np.ndarray:
    """Undo :func:`weight_banks`."""
    return grad_weights.reshape(shape)


def pixel_kernels(weights: np.ndarray, index: BankIndex, block) -> np.ndarray:
    """The kernel matrix of every pixel of a block, (rows * cols, length, k)."""
    rows, cols = index.rows[block.r0 : block.r1], index.cols[block.c0 : block.c1]
    picked = weights[rows[:, None], cols[None, :]]
    return picked.reshape(len(rows) * len(cols), weights.shape[2], weights.shape[3])


def product(patches: np.ndarray, weights: np.ndarray, index: BankIndex, block, target: np.ndarray, work) -> None:
    """Fill ``target`` (n, rows, cols, k) with each pixel's patches times its kernel.

    ``patches`` is the block's (pixels, length) matrix, pixels in (n, rows, cols) order.
    """
    nb, rb, cb, k = target.shape
    by_pixel = patches.reshape(nb, rb * cb, -1).transpose(1, 0, 2)  # (pixel, image, length)
    result = work[: rb * cb * nb * k].reshape(rb * cb, nb, k)
    np.matmul(by_pixel, pixel_kernels(weights, index, block), out=result)
    target[...] = result.reshape(rb, cb, nb, k).transpose(2, 0, 1, 3)


def gradients(patches, grad_target, weights, index: BankIndex, block, grad_weights, grad_patches) -> None:
    """Add the block's kernel gradients into ``grad_weights``; write its patch gradients.

    ``grad_target`` is the block of grad_out (n, rows, cols, k); ``grad_patches`` receives
    (pixels, length) in the patch matrix's order. Banks shared by several pixels of the
    block (tiled, regions) sum their pixels' gradients.
    """
    nb, rb, cb, k = grad_target.shape
    length = patches.shape[-1]
    by_pixel = patches.reshape(nb, rb * cb, length).transpose(1, 0, 2)  # (pixel, image, length)
    grads = np.ascontiguousarray(grad_target.transpose(1, 2, 0, 3)).reshape(rb * cb, nb, k)
    per_pixel_grad = np.matmul(by_pixel.transpose(0, 2, 1), grads)  # (pixel, length, k)
    rows, cols = index.rows[block.r0 : block.r1], index.cols[block.c0 : block.c1]
    np.add.at(grad_weights, (rows[:, None], cols[None, :]), per_pixel_grad.reshape(rb, cb, length, k))
    result = np.matmul(grads, pixel_kernels(weights, index, block).transpose(0, 2, 1))
    grad_patches.reshape(nb, rb * cb, length)[...] = result.transpose(1, 0, 2)


def extra_cost(geom, rows: int, cols: int, backward: bool) -> int:
    """Elements of the per-pixel kernel stacks (and backward's temporaries) for a block."""
    length = geom.fh * geom.fw * geom.c
    kernels = rows * cols * length * geom.k
    return 2 * kernels if backward else kernels
