"""im2col + GEMM: every receptive field becomes a row of a patch matrix, and one matrix
product with the kernel, reshaped to ``(fh * fw * c/groups, k)``, computes every output
channel of every pixel at once.

The work is done block by block (see :mod:`.buffers`), so memory beyond the input and the
output stays within the budget. For each block:

1. the *slab*: the padded input rows and columns the block reads (:mod:`.slab`);
2. the *patches*: a strided view of the slab, ``(n, out_h, out_w, fh, fw, groups, c/groups)``,
   copied once into a contiguous patch matrix (skipped for 1x1 stride-1 kernels, whose
   patch matrix is the slab itself; 1x1 kernels without padding skip the slab too, see
   :mod:`.pointwise`);
3. the *product*: a BLAS matrix product per group, written straight into the output when
   the layout allows.

With Numba, large groups=1 layers run in *row blocks* instead (:func:`correlate_rows`):
each thread fills a few output rows' patches with a compiled loop and multiplies them at
once, while they are in its core's cache.

The gradients are in :mod:`.im2col_backward`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..shapes import ConvGeometry
from . import banks as banked
from . import compiled, parallel, planar, pointwise, slab
from .buffers import Block, blocks, plan_blocks, work_buffer

# Row blocks (:func:`correlate_rows`): patch rows per block, and the fewest patch rows of a
# layer for which im2col takes them. Measured, row blocks against one patch matrix and one
# product: 4096 rows (64x8x8x1, 3x3) 0.22 against 0.13 ms; 16384 rows (4x64x64x3) 0.35
# against 0.58 ms.
ROWS_PER_BLOCK = 2048
ROWS_MIN = 2**13

# The work buffer holds a slab and (backward) the slab's gradient; the forward pass plans
# for the same two slabs, one of them headroom.
WORK_SLABS = 2

_state: dict = {"row_blocks": None}  # None: by size (ROWS_MIN); True or False: forced


@contextmanager
def use_row_blocks(flag: "bool | None"):
    """``with use_row_blocks(True):`` computes groups=1 layers in row blocks whenever those
    can run (Numba and threadpoolctl installed, within the budget), whatever their size;
    ``False`` never; ``None`` by size. The setting is process-wide and restored after."""
    before = _state["row_blocks"]
    _state["row_blocks"] = flag
    try:
        yield
    finally:
        _state["row_blocks"] = before


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
    if banks is None and channel_major(kernel, geom) and takes_one_fill(x, geom, out, budget):
        matrix = kernel.transpose(3, 2, 0, 1).reshape(geom.k, -1).T  # the kernel's own memory, rows (channel, tap)
        return correlate_filled(x, matrix, geom, pad_mode, out, channel_major=True)
    if (banks is None and planar.applies(geom, pad_mode, views=not (x.flags.c_contiguous and out.flags.c_contiguous))
            and planar.correlate(x, kernel, geom, out, budget)):
        return out
    weights = weight_matrix(kernel, geom.groups) if banks is None else banked.weight_banks(kernel)
    if banks is None and pointwise.correlate(x, weights[0], geom, out, budget):
        return out
    if banks is None and takes_row_blocks(x, geom, out.itemsize, budget):
        return correlate_rows(x, weights[0], geom, pad_mode, out, budget)
    if banks is None and takes_one_fill(x, geom, out, budget):
        return correlate_filled(x, weights[0], geom, pad_mode, out)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    slabs = WORK_SLABS - 1 + slab.gathered_slabs(pad_mode)
    cost = block_cost(geom, out.dtype.itemsize, slabs=slabs, banks=banks is not None)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    items = block_cost(geom, out.dtype.itemsize)(*size) // out.dtype.itemsize + 1
    with work_buffer(items, out.dtype) as work:
        for block in blocks(geom.n, geom.out_h, geom.out_w, size):
            _correlate_block(x, weights, geom, row_map, col_map, block, work, out, banks)
    return out


def takes_row_blocks(x, geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether :func:`correlate_rows` computes this call: groups=1, a patch matrix to make
    (not 1x1 at stride 1), at least :data:`ROWS_MIN` patch rows (or :func:`use_row_blocks`),
    Numba and threadpoolctl installed, and a block of one output row per thread within the
    budget."""
    one_by_one = geom.fh == geom.fw == 1 and geom.strides == (1, 1)
    one_row = geom.out_w * (geom.fh * geom.fw * geom.c + geom.k) * itemsize
    forced = _state["row_blocks"]
    large = geom.n * geom.out_h * geom.out_w >= ROWS_MIN if forced is None else forced
    return (geom.groups == 1 and not one_by_one and large
            and compiled.usable(x) and compiled.blocked_gemm_ready()
            and compiled.fits(geom, itemsize, budget - parallel.thread_count() * one_row))


def correlate_rows(x, weights: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
                   budget: int) -> np.ndarray:
    """Fill ``out`` with the groups=1 correlation, im2col block by block on every thread.

    Each thread fills a block of about :data:`ROWS_PER_BLOCK` patch rows (whole output
    rows, :func:`._gemm_loops.patch_rows`) and multiplies it by ``weights`` ((fh fw c, k))
    into the output's rows, taking blocks from a shared counter. BLAS runs on one thread
    meanwhile (:func:`.compiled.run_blocks`): OpenBLAS threads the tall, narrow product of
    a stem layer poorly (123 GFLOP/s on 2 cores against 94 on one), and a block stays in
    the core's cache between its fill and its product. Measured on the 7x7 stride-2 stem:
    13.4-15.5 ms against 20-22 for one patch matrix and one product (same process).
    """
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    threads = parallel.thread_count()
    length, k = weights.shape
    per_row = geom.out_w * (length + k) * out.itemsize  # a block's patches and product
    per_block = max(1, min(ROWS_PER_BLOCK // max(geom.out_w, 1), budget // (threads * per_row)))
    tasks = geom.n * geom.out_h
    flat_out = out.reshape(tasks * geom.out_w, k) if out.flags.c_contiguous else None
    fill = compiled.loop("patch_rows")
    buffers = [(np.empty((per_block * geom.out_w, length), out.dtype),
                np.empty((per_block * geom.out_w, k), out.dtype)) for _ in range(threads)]

    def block(first, last, thread):
        patches, product = buffers[thread]
        count = (last - first) * geom.out_w
        fill(x, rows, cols, left, geom.fh, geom.fw, *geom.strides, *geom.dilation, geom.out_h,
             geom.out_w, patches, first, last)
        if flat_out is not None:
            np.matmul(patches[:count], weights, out=flat_out[first * geom.out_w : last * geom.out_w])
            return
        np.matmul(patches[:count], weights, out=product[:count])
        for task in range(first, last):  # a strided output (channels-first): row by row
            row = product[(task - first) * geom.out_w : (task - first + 1) * geom.out_w]
            out[task // geom.out_h, task % geom.out_h] = row

    compiled.run_blocks(block, tasks, per_block, threads, fill)
    return out


def takes_one_fill(x, geom: ConvGeometry, out: np.ndarray, budget: int) -> bool:
    """Whether :func:`correlate_filled` computes this call: groups=1, the compiled loops
    usable, a C-contiguous ``out``, and the whole patch matrix within half the budget."""
    patches = geom.n * geom.out_h * geom.out_w * geom.fh * geom.fw * geom.c * out.itemsize
    return (geom.groups == 1 and out.flags.c_contiguous and compiled.usable(x) and 2 * patches <= budget
            and compiled.fits(geom, out.itemsize, budget - patches))


def correlate_filled(x, weights: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
                     channel_major: bool = False) -> np.ndarray:
    """Fill ``out`` (C-contiguous) with the groups=1 correlation: the whole patch matrix,
    filled by the compiled loop (:func:`._gemm_loops.patch_rows`) on this thread, then one
    product on BLAS's threads.

    For the layers below :data:`ROWS_MIN` patch rows, against NumPy's copy of the windows
    (:func:`patch_matrix`), 2 threads, alternating in one process (medians): resnet18's 3x3
    layers 1x56x56x64 -> 128 at stride 2 0.90 -> 0.80 ms, 1x28x28x128 1.36 -> 1.29,
    1x14x14x256 1.40 -> 1.33, 1x7x7x512 1.65 -> 1.57. Filling on both threads was slower
    (1x56x56x64 -> 128: 0.69 against 0.61 ms on one): the hand-off costs more than half the fill.
    With ``channel_major``, ``weights`` has its rows in (channel, tap) order and each patch
    row is reordered to match (:func:`channel_major`).
    """
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    tasks = geom.n * geom.out_h
    pixels, length = tasks * geom.out_w, weights.shape[0]
    with work_buffer(pixels * length, out.dtype) as work:  # kept memory: no page faults a call
        patches = work.reshape(pixels, length)
        compiled.run_loop("patch_rows", tasks, x, rows, cols, left, geom.fh, geom.fw, *geom.strides,
                          *geom.dilation, geom.out_h, geom.out_w, patches, work=0)
        if channel_major:
            patches = swap_taps_and_channels(patches[None], geom.fh * geom.fw, geom.c)[0]
        np.matmul(patches, weights, out=out.reshape(pixels, geom.k))
    return out


def weight_matrix(kernel: np.ndarray, groups: int) -> np.ndarray:
    """Reshape (fh, fw, cg, k) into one (fh * fw * cg, k // groups) matrix per group.

    A kernel that lies filters first in memory (PyTorch's (k, c, fh, fw), seen through
    ``data_format="channels_first"``) is copied filter by filter, ``(k, fh, fw, cg)``, and
    its matrix is that copy's transpose, which BLAS reads as it is: transposing a large
    kernel whole (2048 x 512) took 5 ms a call, more than the layer's product.
    """
    fh, fw, cg, k = kernel.shape
    if groups == 1 and lies_filters_first(kernel):
        by_filter = np.ascontiguousarray(kernel.transpose(3, 0, 1, 2)).reshape(k, fh * fw * cg)
        return by_filter.T[None]
    per_group = kernel.reshape(fh, fw, cg, groups, k // groups).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(per_group.reshape(groups, fh * fw * cg, k // groups))


def channel_major(kernel: np.ndarray, geom: ConvGeometry) -> bool:
    """Whether the patches are reordered rather than the kernel: a kernel that lies
    PyTorch's way, ``(k, c, fh, fw)`` C-contiguous (``data_format="channels_first"``), is
    read in place as the ``(k, c * fh * fw)`` matrix it is, each patch row's (tap, channel)
    values are reordered (channel, tap) to match (:func:`swap_taps_and_channels`; in the
    backward pass its gradient row back, and the kernel's gradient comes out in PyTorch's
    layout). That moves ``pixels * fh * fw * c`` values where :func:`weight_matrix` (and the
    gradient's copy back) move ``k * fh * fw * c``: taken for fewer output pixels than
    filters (deep layers on small images), more than one tap and more channels than
    :mod:`.planar` takes. Channels-first 7x7x512 -> 512 3x3, one process: backward 8.3-8.4
    -> 3.9-4.6 ms (channels-last 3.5-3.7), forward 3.1-3.2 -> 2.7 (channels-last 1.6-1.7)."""
    return (geom.groups == 1 and geom.fh * geom.fw > 1 and geom.c > planar.MAX_CHANNELS
            and geom.n * geom.out_h * geom.out_w < geom.k and kernel.transpose(3, 2, 0, 1).flags.c_contiguous)


def swap_taps_and_channels(matrices: np.ndarray, first: int, second: int) -> np.ndarray:
    """(groups, rows, first * second) matrices with each row's values reordered from
    (first, second) to (second, first): a new C-contiguous array."""
    groups, rows, _ = matrices.shape
    swapped = matrices.reshape(groups, rows, first, second).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(swapped).reshape(groups, rows, first * second)


def lies_filters_first(kernel: np.ndarray) -> bool:
    """Whether a (fh, fw, cg, k) kernel lies filters first in memory (PyTorch's (k, c, fh, fw)
    seen through ``data_format="channels_first"``)."""
    return kernel.strides[3] > max(kernel.strides[:3])


def block_cost(geom: ConvGeometry, itemsize: int, slabs: int = WORK_SLABS, banks: bool = False,
                backward: bool = False):
    """Work bytes of a block of (images, rows, cols) output pixels: ``slabs`` slabs, the
    patches and the product (and, with ``banks``, the per-pixel kernels)."""

    def cost(images: int, rows: int, cols: int) -> int:
        pixels = images * rows * cols
        slab_items = math.prod(slab.shape(geom, images, rows, cols))
        per_pixel_kernels = banked.extra_cost(geom, rows, cols, backward) if banks else 0
        return (slabs * slab_items + pixels * (geom.fh * geom.fw * geom.c + geom.k) + per_pixel_kernels) * itemsize

    return cost


def _correlate_block(x, weights, geom, row_map, col_map, block: Block, work, out, banks) -> None:
    """Compute one block of the output in place."""
    rows, cols = slab.indices(row_map, col_map, geom, block)
    padded, used = slab.gather(x[block.n0 : block.n1], rows, cols, work, out.dtype)
    patches = patch_matrix(padded, geom, block, work[used:])
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


def patch_matrix(padded, geom: ConvGeometry, block: Block, work) -> np.ndarray:
    """The (groups, pixels, fh * fw * c/groups) patch matrix of a block."""
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    g, cg = geom.groups, geom.c // geom.groups
    pixels, length = nb * rb * cb, geom.fh * geom.fw * cg
    one_by_one = geom.fh == geom.fw == 1 and geom.strides == (1, 1) and g == 1
    if one_by_one and padded.flags.c_contiguous:
        return padded.reshape(1, pixels, length)  # a 1x1 convolution is a product over channels
    t0, t1, t2, t3 = padded.strides
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    windows = as_strided(
        padded,
        (nb, rb, cb, geom.fh, geom.fw, g, cg),
        (t0, t1 * sh, t2 * sw, t1 * dh, t2 * dw, t3 * cg, t3),
        writeable=False,
    )
    matrix = work[: g * pixels * length].reshape(g, nb, rb, cb, geom.fh, geom.fw, cg)
    np.copyto(matrix, windows.transpose(5, 0, 1, 2, 3, 4, 6))
    return matrix.reshape(g, pixels, length)
