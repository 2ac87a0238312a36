"""Depthwise convolution (``groups == c``): shift and accumulate with a per-channel multiply.

Each input channel has its own ``multiplier = k / c`` filters and no channel mixes with
another, so there is no matrix product to make: im2col's patch matrix (``fh * fw`` copies of
the input) followed by ``c`` matrix products with one column each is almost all copying.
Here every kernel tap is one element-wise multiply of the tap's pixels (a contiguous run of
the flattened slab at stride 1, a strided view otherwise; see :mod:`.shift`) by the tap's
``c`` weights, added into the output block in place. The work is element-wise, which NumPy
runs on one core, so the blocks are shared among threads (:mod:`.parallel`).

Output channel ``g * multiplier + j`` is filter ``j`` of input channel ``g``, as for any
grouped convolution.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry, span
from . import compiled, im2col, parallel, shift
from .buffers import blocks, plan_blocks


def unsupported(geom: ConvGeometry) -> "str | None":
    """Why this algorithm cannot compute ``geom`` (None when it can)."""
    if geom.groups != geom.c:
        return f"it needs groups == input channels (got groups={geom.groups} with {geom.c} channels)"
    return None


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the depthwise cross-correlation.

    ``kernel`` is (fh, fw, 1, k) with ``k = c * multiplier``; other arguments as for
    :func:`.im2col.correlate`. Returns ``out``.
    """
    if out.size and geom.c and compiled.usable(x) and compiled.fits(geom, out.itemsize, budget):
        return compiled.depthwise(x, kernel, geom, pad_mode, out)
    multiplier = geom.k // max(geom.c, 1)
    weights = kernel[:, :, 0, :].reshape(geom.fh, geom.fw, geom.c, multiplier)
    if multiplier == 1:
        weights = weights[..., 0]  # (fh, fw, c): a plain multiply, channels innermost

        def product(pixels, a, b, target):
            np.multiply(pixels, weights[a, b], out=target)
    else:

        def product(pixels, a, b, target):
            by_channel = target.reshape(target.shape[:-1] + (geom.c, multiplier))
            np.multiply(pixels[..., None], weights[a, b], out=by_channel)

    return shift.accumulate(x, geom, pad_mode, out, budget, product, threads=parallel.thread_count())


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int) -> np.ndarray:
    """The kernel's gradient, (fh, fw, 1, k), of a depthwise correlation (any stride).

    Tap ``(a, b)``'s weight for channel ``g`` saw the tap's pixels of channel ``g``: its
    gradient is their product with grad_out summed over images and pixels, one ``einsum``
    per tap and block. Threads share the blocks and add up their partial sums at the end.
    """
    multiplier = geom.k // max(geom.c, 1)
    if grad_out.size == 0 or geom.c == 0:
        return np.zeros((geom.fh, geom.fw, 1, geom.k), dtype)
    if compiled.usable(x, grad_out) and compiled.fits(geom, dtype.itemsize, budget):
        return compiled.depthwise_kernel_gradient(x, geom, pad_mode, grad_out, dtype)
    row_map, col_map = im2col.index_maps(geom, pad_mode)
    threads = parallel.thread_count()
    cost = _gradient_cost(geom, dtype.itemsize, 1 if pad_mode == "constant" else 3)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, min(budget // threads, shift.BLOCK_BYTES))
    slab_items = _gradient_cost(geom, 1, 1)(size[0], size[1], size[2]) // 1
    partial_sums = []

    def worker(part):
        grad = np.zeros((geom.fh, geom.fw, geom.c, multiplier), dtype)
        work = np.empty(slab_items, dtype)
        for block in part:
            rows, cols = im2col.slab_indices(row_map, col_map, geom, block)
            slab, _ = im2col.gather_slab(x[block.n0 : block.n1], rows, cols, work, dtype)
            _add_block_gradient(slab, geom, block, grad_out, grad)
        partial_sums.append(grad)

    parallel.run(worker, list(blocks(geom.n, geom.out_h, geom.out_w, size)), threads)
    return sum(partial_sums[1:], partial_sums[0]).reshape(geom.fh, geom.fw, 1, geom.k)


def _gradient_cost(geom: ConvGeometry, itemsize: int, slabs: int):
    """Work bytes of a block for the kernel's gradient: slabs and grad_out's block (cast)."""
    span_h, span_w = span(geom.fh, geom.dilation[0]), span(geom.fw, geom.dilation[1])
    sh, sw = geom.strides

    def cost(images: int, rows: int, cols: int) -> int:
        grid = images * ((rows - 1) * sh + span_h) * ((cols - 1) * sw + span_w)
        return (slabs * grid * geom.c + images * rows * cols * geom.k) * itemsize

    return cost


def _add_block_gradient(slab, geom: ConvGeometry, block, grad_out, grad) -> None:
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    sh, sw = geom.strides
    target = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    target = target.astype(grad.dtype, copy=False).reshape(nb, rb, cb, geom.c, -1)
    for a, b, da, db in shift.tap_offsets(geom):
        pixels = slab[:, da : da + (rb - 1) * sh + 1 : sh, db : db + (cb - 1) * sw + 1 : sw]
        grad[a, b] += np.einsum("nijc,nijcm->cm", pixels, target)
