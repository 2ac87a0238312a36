"""Grouped convolution (``1 < groups < c``, a few channels a group, as in ResNeXt and
RegNet): the patches of a block of output rows, one matrix per group, and one matrix
product batched over the groups.

im2col makes the same products, but over one patch matrix of the whole block, copied by
NumPy tap by tap in runs of ``c/groups`` values, ``fh * fw`` times the input: on the
ResNeXt-50 and RegNetY-400MF 3x3 layers 2.2-17x PyTorch's time on one thread (5.3-7.8 over
each set, batch 1 and 8), with up to 150 MiB of work memory. Here (2.1-5.1x, 3.0-3.3 over
each set, 1-3.4 MiB) each thread fills the
patches of a few output rows (:func:`._grouped_loops.grouped_patch_rows`, about
:data:`BLOCK_BYTES` of them), ``(groups, pixels, fh * fw * c/groups)``, while they are in
its core's cache, and multiplies them by the ``(groups, fh * fw * c/groups, k/groups)``
weights in one ``np.matmul``, whose ``(groups, pixels, k/groups)`` result is written
straight into the channels-last output rows (a strided view: pixel ``p``, group ``gi`` is
``out[p, gi * k/groups :]``). BLAS runs on one thread meanwhile (:func:`.compiled.run_blocks`).
Work memory is a block's patches (and, for a strided output, its product) per thread.
The rest of the gap to PyTorch is the patch copy (about as long as the products on the
RegNet layers, twice as long at 4 channels a group) and BLAS's narrow products (``k/groups``
columns: 40-60 GFLOP/s on one core at 4-8 columns, against about 100 at 32).

Without Numba or threadpoolctl, for inputs the loops cannot read, or when one output row's
patches per thread pass the budget, im2col computes it (the same products, so the same
result up to the order of BLAS's sums). The kernel's gradient (:func:`kernel_gradient`)
walks the same row blocks: ``patches^T @ grad_out`` per group. So does the backward pass of
strided layers and pad modes that copy pixels (:func:`correlate_backward`), where x's
gradient is no correlation of grad_out: per block the patches' gradient,
``grad_out @ weights^T`` batched over the groups, is added back onto a ring of the padded
rows still open and each finished row onto x's gradient (the col2im of
:func:`._grouped_loops.grouped_col2im_rows`), the kernel's gradient beside it. Each thread
takes one contiguous share of the output rows; the few rows two shares both add into are
deferred and added after, in a fixed order.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry
from . import compiled, im2col, im2col_backward, parallel, slab

# Patch bytes per block and thread: a group's product of 256-512 rows ran at 50-60 GFLOP/s
# on one core (float32, 9 x 8 -> 8 channels), 2048 rows at 30 (its patches past the L2 cache).
BLOCK_BYTES = 2**21


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the grouped cross-correlation.

    Arguments as for :func:`.im2col.correlate`. Returns ``out``.
    """
    if out.size == 0 or geom.c == 0 or not runs_compiled(x, geom, out.itemsize, budget):
        return im2col.correlate(x, kernel, geom, pad_mode, out, budget)
    threads = parallel.thread_count()
    per_block = max(1, min(BLOCK_BYTES, budget // threads) // _row_bytes(geom, out.itemsize))
    per_block = min(per_block, geom.n * geom.out_h)
    block, fill = _rows_block(x, kernel, geom, pad_mode, out, per_block, threads)
    compiled.run_blocks(block, geom.n * geom.out_h, per_block, threads, *fill)
    return out


def _rows_block(x, kernel, geom: ConvGeometry, pad_mode: str, out, per_block: int, threads: int):
    """``block(first, last, thread)`` for :func:`.compiled.run_blocks`: patches (groups, pixels,
    taps cg) times weights (groups, taps cg, kg), written into the output; and its loops."""
    from . import _grouped_loops  # imports Numba: only when a loop runs

    g, kg, pixels = geom.groups, geom.k // geom.groups, per_block * geom.out_w
    weights = _weight_matrices(kernel, g, out.dtype)
    flat_out = out.reshape(-1, geom.k) if out.flags.c_contiguous else None
    length = weights.shape[1]
    buffers = [(np.empty(g * pixels * length, out.dtype),
                np.empty((0 if flat_out is not None else pixels, geom.k), out.dtype)) for _ in range(threads)]
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    fill = _grouped_loops.grouped_patch_rows

    def block(first, last, thread):
        count = (last - first) * geom.out_w
        patches = buffers[thread][0][: g * count * length].reshape(g, count, length)  # contiguous: BLAS
        product = buffers[thread][1]
        fill(x, rows, cols, left, geom.fh, geom.fw, *geom.strides, *geom.dilation, geom.out_h, geom.out_w,
             patches, first, last)
        target = flat_out[first * geom.out_w : last * geom.out_w] if flat_out is not None else product[:count]
        np.matmul(patches, weights, out=target.reshape(count, g, kg).transpose(1, 0, 2))
        if flat_out is None:  # a strided output (channels-first): row by row
            for task in range(first, last):
                at = (task - first) * geom.out_w
                out[task // geom.out_h, task % geom.out_h] = product[at : at + geom.out_w]

    return block, (fill,)


def runs_compiled(x, geom: ConvGeometry, itemsize: int, budget: int, extra: int = 0) -> bool:
    """Whether :func:`correlate` runs its compiled loop: Numba and threadpoolctl installed, x
    readable by the loops, and one output row's patches, product and row ring per thread
    (and ``extra`` bytes per thread) within ``budget``."""
    if not (compiled.usable(x) and compiled.blocked_gemm_ready()):
        return False
    return parallel.thread_count() * (_row_bytes(geom, itemsize) + extra) <= budget


def _row_bytes(geom: ConvGeometry, itemsize: int) -> int:
    """Work bytes per output row and thread: its patches and product, and a share of the
    ring of padded input rows (span_h + 1 rows, counted whole)."""
    span_h = (geom.fh - 1) * geom.dilation[0] + 2
    width = (geom.out_w - 1) * geom.strides[1] + (geom.fw - 1) * geom.dilation[1] + 1
    items = geom.out_w * (geom.fh * geom.fw * geom.c + geom.k) + span_h * width * geom.c
    return items * itemsize


def _weight_matrices(kernel: np.ndarray, groups: int, dtype) -> np.ndarray:
    """(fh, fw, cg, k) as one (fh * fw * cg, k // groups) matrix per group, in ``dtype``."""
    fh, fw, cg, k = kernel.shape
    per_group = kernel.reshape(fh, fw, cg, groups, k // groups).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(per_group.reshape(groups, fh * fw * cg, k // groups), dtype)


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int) -> np.ndarray:
    """The kernel's gradient, (fh, fw, c // groups, k): ``patches^T @ grad_out`` per group,
    row block by row block as :func:`correlate` fills them; im2col's where the compiled
    loops cannot run."""
    return _gradients(x, None, geom, pad_mode, grad_out, None, np.dtype(dtype), budget)


def correlate_backward(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str,
                       grad_out: np.ndarray, grad_x: np.ndarray, budget: int) -> np.ndarray:
    """Add x's gradient into ``grad_x``; return the kernel's, (fh, fw, c // groups, k).

    Arguments as for :func:`.im2col_backward.correlate_backward`, in one pass over :func:`correlate`'s
    row blocks: per block the kernel's gradient as in :func:`kernel_gradient`, then the
    patches' gradient, ``grad_out @ weights^T`` batched over the groups (into the patches'
    buffer), added back onto the padded rows they were read from and those onto x's gradient
    (:func:`._grouped_loops.grouped_col2im_rows`). For strided layers and pad modes that copy
    pixels, where x's gradient is no correlation of grad_out; im2col's pass where the
    compiled loops cannot run.
    """
    weights = _weight_matrices(kernel, geom.groups, grad_x.dtype).transpose(0, 2, 1)
    return _gradients(x, np.ascontiguousarray(weights), geom, pad_mode, grad_out, grad_x, grad_x.dtype, budget,
                      kernel)


def _gradients(x, weights_t, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, dtype, budget: int,
               kernel=None) -> np.ndarray:
    """The kernel's gradient and (``weights_t``, the (groups, kg, fh fw cg) weights, not None)
    x's, added into ``grad_x``. Each thread takes one contiguous share of the output rows
    (:func:`.compiled.share`: the padded rows it leaves open carry from block to block) and
    adds into its own sums: the same bits on every call."""
    g, kg, length = geom.groups, geom.k // geom.groups, geom.fh * geom.fw * geom.c // geom.groups
    extra = 2 * g * length * kg * dtype.itemsize  # a thread's sums and its block's product
    if weights_t is not None:
        extra += _open_rows(geom, pad_mode) * _ring_width(geom) * geom.c * dtype.itemsize
    arrays = (grad_out,) if grad_x is None else (grad_out, grad_x)
    if (grad_out.size == 0 or geom.c == 0 or not compiled.usable(*arrays)
            or not runs_compiled(x, geom, dtype.itemsize, budget, extra=extra)):
        if grad_x is None:
            return im2col_backward.kernel_gradient(x, geom, pad_mode, grad_out, dtype, budget)
        return im2col_backward.correlate_backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget)
    threads = parallel.thread_count()
    per_block = max(1, min(BLOCK_BYTES, budget // threads - extra) // _row_bytes(geom, dtype.itemsize))
    buffers = [_thread_buffers(geom, pad_mode, per_block, dtype, weights_t is not None) for _ in range(threads)]
    block, loops = _gradient_block(x, weights_t, geom, pad_mode, grad_out, grad_x, buffers, threads)
    compiled.run_blocks(block, geom.n * geom.out_h, per_block, threads, *loops, shares=True)
    if grad_x is not None:
        from . import _grouped_loops

        rows, cols, _ = slab.loop_maps(geom, pad_mode)
        for each in buffers:  # in thread order: the same bits every call
            _grouped_loops.fold_deferred(each["deferred"], each["tags"], rows, cols, grad_x)
    total = sum((each["sums"] for each in buffers[1:]), buffers[0]["sums"])
    per_group = total.reshape(g, geom.fh, geom.fw, geom.c // g, kg)
    return per_group.transpose(1, 2, 3, 0, 4).reshape(geom.fh, geom.fw, geom.c // g, geom.k)


def _thread_buffers(geom: ConvGeometry, pad_mode: str, per_block: int, dtype, input_gradient: bool) -> dict:
    """One thread's buffers: a block's patches (then their gradient) and grad_out, its sums
    and their product, and for x's gradient its ring of open rows and the deferred ones."""
    g, kg, length = geom.groups, geom.k // geom.groups, geom.fh * geom.fw * geom.c // geom.groups
    pixels = per_block * geom.out_w
    each = dict(patches=np.empty(g * pixels * length, dtype), grad=np.empty(g * pixels * kg, dtype),
                sums=np.zeros((g, length, kg), dtype), product=np.empty((g, length, kg), dtype))
    if input_gradient:
        span_h = (geom.fh - 1) * geom.dilation[0] + 1
        deferred, shape = _open_rows(geom, pad_mode) - span_h, (g, _ring_width(geom), geom.c // g)
        each.update(ring=np.zeros((span_h,) + shape, dtype), deferred=np.empty((deferred,) + shape, dtype),
                    tags=np.zeros((deferred + 1, 2), np.int64))
    return each


def _gradient_block(x, weights_t, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, buffers, threads: int):
    """``block(first, last, thread)`` for :func:`.compiled.run_blocks`, and its loops."""
    from . import _grouped_loops

    g, kg, length = geom.groups, geom.k // geom.groups, geom.fh * geom.fw * geom.c // geom.groups
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    fill, gather = _grouped_loops.grouped_patch_rows, _grouped_loops.grouped_grad_rows
    col2im, tasks = _grouped_loops.grouped_col2im_rows, geom.n * geom.out_h
    steps = (geom.fh, geom.fw, *geom.strides, *geom.dilation, geom.out_h, geom.out_w)

    def block(first, last, thread):
        count, each = (last - first) * geom.out_w, buffers[thread]
        patches = each["patches"][: g * count * length].reshape(g, count, length)
        grad = each["grad"][: g * count * kg].reshape(g, count, kg)
        fill(x, rows, cols, left, *steps, patches, first, last)
        gather(grad_out, geom.out_h, grad, first, last)
        np.matmul(patches.transpose(0, 2, 1), grad, out=each["product"])
        each["sums"] += each["product"]
        if weights_t is None:
            return
        np.matmul(grad, weights_t, out=patches)  # the patches are used up: their gradient takes their place
        col2im(patches, *steps, rows, cols, geom.pads[0][0], geom.h, each["ring"], grad_x, each["deferred"],
               each["tags"], first, last, *compiled.share(tasks, threads, thread))

    return block, (fill, gather) if weights_t is None else (fill, gather, col2im)


def _ring_width(geom: ConvGeometry) -> int:
    """Padded columns that the windows read: a row of the ring of open rows."""
    return (geom.out_w - 1) * geom.strides[1] + (geom.fw - 1) * geom.dilation[1] + 1


def _open_rows(geom: ConvGeometry, pad_mode: str) -> int:
    """Padded rows a thread holds for x's gradient: its ring (``span_h``) and the rows it
    defers, at most ``span_h - 1`` left open at its share's end and, for pad modes that copy
    pixels, the padding rows of the two images it may share with other threads."""
    span_h = (geom.fh - 1) * geom.dilation[0] + 1
    border = 0 if pad_mode == "constant" else sum(geom.pads[0])
    return 2 * span_h - 1 + 2 * border
