"""Shift and accumulate: one product per kernel tap, summed in place; no patch matrix.

A convolution is a sum over kernel taps: tap ``(a, b)`` multiplies the input pixels
``(i * sh + a * dh, j * sw + b * dw)`` of every output pixel ``(i, j)`` by the kernel's
``(c, k)`` matrix at that tap. im2col copies each tap's pixels into a patch matrix first;
here each tap's pixels are read where they lie, in the padded slab of the block
(:mod:`.slab`, so every pad mode works), and the tap's product is added into
the output block. Work memory is one slab and two output blocks, whatever the kernel size.

With stride 1 the tap's pixels are one *contiguous* run of the flattened slab. Seen as
``(images * rows * width, c)``, the slab shifted by ``a * dh * width + b * dw`` rows holds
tap ``(a, b)`` of the output pixels laid out on the slab's own (wider) grid: the product is
one contiguous matrix product (or multiply) per tap, and the extra columns, which straddle
two slab rows, are computed and dropped. Strided layers read 4-D strided views instead.

The product per tap is the caller's: a matrix product for an ordinary layer
(:func:`correlate`), a per-channel multiply for a depthwise one (:mod:`.depthwise`).
Few-channel layers are where this wins: their im2col patch matrix is mostly copying, and a
GEMM with 1-3 columns per tap is a memory-bound loop either way.

With Numba, the compiled loop :func:`._loops.shift` does the same sums row by row on every
thread (:func:`correlate_compiled`, :func:`kernel_gradient_compiled`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..shapes import ConvGeometry
from . import compiled, parallel, slab
from .buffers import CACHE_BLOCK_BYTES, Block, blocks, plan_blocks

# product(tap_pixels, a, b, out): write tap (a, b)'s contribution for tap_pixels into out.
Product = Callable[[np.ndarray, int, int, np.ndarray], None]


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the cross-correlation, one product per tap.

    Arguments as for :func:`.im2col.correlate` (groups must be 1). Returns ``out``.
    """
    if out.size == 0 or geom.c == 0:
        return accumulate(x, geom, pad_mode, out, budget, None)
    if compiled.usable(x) and compiled.fits(geom, out.itemsize, budget):
        return correlate_compiled(x, kernel, geom, pad_mode, out)
    if geom.c == 1:  # one input channel: k multiplies per tap, no BLAS, both cores
        return accumulate(x, geom, pad_mode, out, budget, _planar_product(kernel[:, :, 0, :]),
                          threads=parallel.thread_count(), planar=True)
    return accumulate(x, geom, pad_mode, out, budget, _matmul_product(kernel), threads=1)


def correlate_compiled(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray) -> np.ndarray:
    """:func:`correlate` by the compiled loop :func:`._loops.shift`, row by row on every thread."""
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    weights = np.ascontiguousarray(kernel, out.dtype)
    compiled.run_loop("shift", geom.n * geom.out_h, x, rows, cols, left, weights, *geom.strides, *geom.dilation,
                      out)
    return out


def _matmul_product(kernel: np.ndarray) -> Product:
    def product(pixels, a, b, target):
        np.matmul(pixels, kernel[a, b], out=target)
    return product


def _planar_product(weights: np.ndarray) -> Product:
    """Single-channel pixels times each of the k weights of the tap, into (k, ...) planes.

    Channels-last, the product would broadcast over rows of k values: a slow inner loop
    for small k. Planes keep every loop long and contiguous.
    """
    def product(pixels, a, b, target):
        tap = weights[a, b].reshape((-1,) + (1,) * pixels.ndim)
        np.multiply(pixels, tap, out=target)
    return product


def accumulate(x: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int,
               product: Product, threads: int = 1, planar: bool = False) -> np.ndarray:
    """Fill ``out`` with the sum over kernel taps of ``product``, block by block.

    ``product(pixels, a, b, target)`` receives the tap's input pixels, ``(m, c)`` (stride 1)
    or ``(images, rows, cols, c)``, and a contiguous ``target`` of the same leading shape
    with ``k`` channels. ``planar`` (for ``c == 1``): pixels come without their channel axis
    and the target has the channel axis first, ``(k, m)`` or ``(k, images, rows, cols)``.
    Blocks are shared among ``threads`` threads, each with its own work buffer of at most
    ``budget / threads`` bytes.
    """
    if out.size == 0:
        return out
    if geom.c == 0:  # no input channels: every sum is empty
        out[...] = 0
        return out
    row_map, col_map = slab.index_maps(geom, pad_mode)
    cost = _block_cost(geom, out.dtype.itemsize, slab.gathered_slabs(pad_mode))
    threads = max(1, threads)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, min(budget // threads, CACHE_BLOCK_BYTES))
    work_items = _block_cost(geom, out.dtype.itemsize, 1)(*size) // out.dtype.itemsize + 1
    compute = _flat_block if geom.strides == (1, 1) else _strided_block

    def worker(part):
        work = np.empty(work_items, out.dtype)
        # inf times the zeros of padding or of BLAS's unused lanes is NaN only where the
        # result is not read: no warning (each thread has its own error state).
        with np.errstate(invalid="ignore"):
            for block in part:
                rows, cols = slab.indices(row_map, col_map, geom, block)
                compute(x, geom, rows, cols, block, work, out, product, planar)

    parallel.run_parts(worker, list(blocks(geom.n, geom.out_h, geom.out_w, size)), threads)
    return out


def _block_cost(geom: ConvGeometry, itemsize: int, slabs: int):
    """Work bytes of a block of (images, rows, cols): slabs and two accumulators.

    At stride 1 the accumulators cover the slab's whole grid, not only the block's pixels.
    """
    flat = geom.strides == (1, 1)

    def cost(images: int, rows: int, cols: int) -> int:
        _, height, width, _ = slab.shape(geom, images, rows, cols)
        grid = images * height * width
        accumulators = 2 * geom.k * (grid if flat else images * rows * cols)
        return (slabs * grid * geom.c + accumulators) * itemsize

    return cost


def tap_offsets(geom: ConvGeometry):
    """Every kernel tap ``(a, b)`` with its offset ``(a * dh, b * dw)`` in the slab."""
    dh, dw = geom.dilation
    return [(a, b, a * dh, b * dw) for a in range(geom.fh) for b in range(geom.fw)]


def _flat_block(x, geom: ConvGeometry, rows, cols, block: Block, work, out, product: Product,
                planar: bool) -> None:
    """Stride 1: one contiguous product per tap over the flattened slab."""
    padded, used = slab.gather_contiguous(x[block.n0 : block.n1], rows, cols, work, out.dtype)
    nb, height, width, c = padded.shape
    flat = padded.reshape(-1) if planar else padded.reshape(-1, c)
    last = (geom.fh - 1) * geom.dilation[0] * width + (geom.fw - 1) * geom.dilation[1]
    m = flat.shape[0] - last  # grid positions whose every tap lies inside the slab
    grid, k = nb * height * width, geom.k
    total = work[used : used + grid * k].reshape((k, grid) if planar else (grid, k))
    term = work[used + total.size : used + total.size + m * k].reshape((k, m) if planar else (m, k))
    head = total[:, :m] if planar else total[:m]  # the positions computed
    for index, (a, b, da, db) in enumerate(tap_offsets(geom)):
        start = da * width + db
        product(flat[start : start + m], a, b, head if index == 0 else term)
        if index:
            head += term
    rb, cb = block.r1 - block.r0, block.c1 - block.c0
    target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    if planar:
        target[...] = total.reshape(k, nb, height, width)[:, :, :rb, :cb].transpose(1, 2, 3, 0)
    else:
        target[...] = total.reshape(nb, height, width, k)[:, :rb, :cb]


def _strided_block(x, geom: ConvGeometry, rows, cols, block: Block, work, out, product: Product,
                   planar: bool) -> None:
    """Any stride: one product per tap over a strided 4-D view of the slab."""
    padded, used = slab.gather(x[block.n0 : block.n1], rows, cols, work, out.dtype)
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    sh, sw = geom.strides
    shape = (geom.k, nb, rb, cb) if planar else (nb, rb, cb, geom.k)
    total = work[used : used + nb * rb * cb * geom.k].reshape(shape)
    term = work[used + total.size : used + 2 * total.size].reshape(shape)
    for index, (a, b, da, db) in enumerate(tap_offsets(geom)):
        pixels = padded[:, da : da + (rb - 1) * sh + 1 : sh, db : db + (cb - 1) * sw + 1 : sw]
        product(pixels[..., 0] if planar else pixels, a, b, total if index == 0 else term)
        if index:
            total += term
    target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    target[...] = total.transpose(1, 2, 3, 0) if planar else total


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int) -> np.ndarray:
    """The kernel's gradient, (fh, fw, c, k), of a stride-1, groups=1 correlation.

    Tap ``(a, b)`` of the kernel saw the slab's shifted run of pixels (as in the forward
    pass): its gradient is that run, transposed, times grad_out laid out on the slab's grid
    (zeros in the extra columns), one ``(c, m) @ (m, k)`` product per tap and block.
    """
    grad = np.zeros((geom.fh, geom.fw, geom.c, geom.k), dtype)
    if grad_out.size == 0 or geom.c == 0:
        return grad
    if compiled.usable(x, grad_out) and compiled.fits(geom, dtype.itemsize, budget):
        return kernel_gradient_compiled(x, geom, pad_mode, grad_out, dtype)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    cost = _block_cost(geom, dtype.itemsize, slab.gathered_slabs(pad_mode))
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    work = np.empty(_block_cost(geom, dtype.itemsize, 1)(*size) // dtype.itemsize + 1, dtype)
    for block in blocks(geom.n, geom.out_h, geom.out_w, size):
        rows, cols = slab.indices(row_map, col_map, geom, block)
        padded, used = slab.gather_contiguous(x[block.n0 : block.n1], rows, cols, work, dtype)
        nb, height, width, c = padded.shape
        flat = padded.reshape(-1, c)
        spread = _on_grid(grad_out, block, work[used : used + nb * height * width * geom.k], padded.shape)
        m = flat.shape[0] - (geom.fh - 1) * geom.dilation[0] * width - (geom.fw - 1) * geom.dilation[1]
        for a, b, da, db in tap_offsets(geom):
            start = da * width + db
            grad[a, b] += flat[start : start + m].T @ spread[:m]
    return grad


def kernel_gradient_compiled(x, geom: ConvGeometry, pad_mode: str, grad_out, dtype) -> np.ndarray:
    """:func:`kernel_gradient` by the compiled loop :func:`._loops.shift_kernel_gradient`."""
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    grad = np.zeros((geom.fh, geom.fw, geom.c, geom.k), dtype)
    compiled.run_loop("shift_kernel_gradient", geom.n * geom.out_h, x, rows, cols, left, grad_out, *geom.strides,
                      *geom.dilation, sums=grad)
    return grad


def _on_grid(grad_out, block: Block, work, slab_shape) -> np.ndarray:
    """The block of grad_out on the slab's (images, height, width) grid, zeros elsewhere, flat."""
    nb, height, width, _ = slab_shape
    rb, cb = block.r1 - block.r0, block.c1 - block.c0
    k = grad_out.shape[3]
    grid = work.reshape(nb, height, width, k)
    grid[:, rb:] = 0
    grid[:, :rb, cb:] = 0
    grid[:, :rb, :cb] = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    return grid.reshape(-1, k)
