"""Winograd F(2x2, 3x3): 3x3 stride-1 layers with 2.25x fewer multiplications, and
F(3x3, 2x2) for their kernel gradient (:func:`kernel_gradient`).

Each 2x2 tile of the output is computed from the 4x4 tile of padded input it reads (Lavin
and Gray, 2015): ``Y = A^T [(G g G^T) * (B^T d B)] A`` for every input channel's tile ``d``
and kernel ``g``, summed over channels. The 16 products per tile, summed over channels, are
16 matrix products ``V[xi] @ U[xi]`` of shape ``(tiles, c) @ (c, k)`` where im2col makes
one ``(4 * tiles, 9 c) @ (9 c, k)``: 16 c k multiply-adds per tile of 4 pixels instead of
36 c k. The transforms (``B^T d B`` of every tile, ``A^T M A`` of every product) are
additions only; they run in compiled loops (:mod:`._gemm_loops`, Numba). Each thread takes
a block of tile rows at a time through the whole pipeline, input transform, the 16 products
on one BLAS thread (threadpoolctl), output transform, so the block's ``V`` (16 c numbers per
tile) and ``M`` (16 k) stay in its core's cache: this algorithm needs Numba and threadpoolctl
(dependencies of convlayer). The blocks live in the kept work buffer (:mod:`.buffers`), within the
budget; an image so wide that one row of tiles per thread passes the budget goes to im2col,
which can split rows, and so does a big-endian or float16 input.

Accuracy. The kernel transform multiplies by 1/2 and the input transform adds four pixels
with signs, so an output is a sum of products each off by a few units of roundoff of
``sum |x| |kernel|`` over its tile (larger tiles such as F(4x4, 3x3) grow the error by
10-100x, which is why they are not used here): float32 measured below 1e-6 of that bound
on the speed suite's layers, the tests allow 1e-5. A NaN stays within the outputs whose
windows hold it (F(2x2, 3x3)'s transforms leave out exactly the pixels a window does not
read), but an infinity becomes NaN where direct summation gives inf: the transforms
subtract it from itself and multiply it by transformed zeros. ``algorithm="auto"`` takes
Winograd only for finite input, as for FFT. The kernel gradient's F(3x3, 2x2) reads the
same input tiles and 2x2 tiles of grad_out; its error, measured against
``sum |x| |grad_out|`` per tap, is 4e-7 in float32 on the tests' layer (im2col's 5e-7).
A NaN in x or grad_out reaches all 9 taps of its channel pair there (the 4x4 tile's
transform mixes them), where direct summation may leave a tap that never read it finite;
``auto`` takes this route only for finite x and grad_out.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry
from . import compiled, im2col, parallel, shift, slab
from .buffers import CACHE_BLOCK_BYTES, work_buffer

# Each thread takes blocks of tile rows of about CACHE_BLOCK_BYTES of V and M (the rest of a
# layer's V and M is never made), through input transform, the 16 products and output
# transform while they stay in its core's cache: 6-7 ms on the speed suite's 3x3 layers
# against 8.5-12.4 for one budget-sized block transformed on both cores and multiplied by
# BLAS's threads.
BLOCK_BYTES = CACHE_BLOCK_BYTES

# The kernel gradient's blocks: at least this many tiles (its products are (c, tiles) @
# (tiles, k), each added into the thread's sums; short blocks spend their time adding).
# Measured, 256-2048 tiles within 10% of each other on the suite's 3x3 layers, 2 MiB
# blocks (49 tiles on 8x14x14x256) slowest.
GRADIENT_TILES = 512


def kernel_transform(kernel: np.ndarray, out: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (c, k) into ``out``, (16, c, k), index ``4 i + j`` for row i, column j.

    A compiled loop over the input channels on every thread, writing ``out`` in place: on
    256 x 256 channels, NumPy's element-wise passes take 0.7 ms and make 4 MiB of
    temporaries a call, and a BLAS product with 3-long sums takes 5 ms. Small kernels stay
    on this thread (``work``: U's items): 64 x 64 channels take 15 us, where handing half
    to a second thread cost 0.16-0.29 ms a call.
    """
    c, k = kernel.shape[2], kernel.shape[3]
    compiled.run_loop("winograd_kernel", c, _readable(kernel), out, work=16 * c * k)
    return out


def _readable(array: np.ndarray) -> np.ndarray:
    """``array`` as the compiled loops can read it (a big-endian or float16 kernel: float64)."""
    return array if compiled.usable(array) else array.astype(np.float64)


class _Tiles:
    """The 2x2 output tiles of ``geom`` in blocks of tile rows (a *task*: one tile row of one
    image), shared by :func:`correlate` and :func:`kernel_gradient`.

    Each thread's share of the work buffer holds its block's ``V`` (16, tiles, c), the
    transformed input tiles, and a second (16, tiles, k) array: the products (forward) or
    the transformed grad_out tiles (kernel gradient).
    """

    def __init__(self, geom: ConvGeometry, pad_mode: str):
        self.geom, self.pad_mode = geom, pad_mode
        self.h, self.w = (geom.out_h + 1) // 2, (geom.out_w + 1) // 2
        self.tasks, self.threads = geom.n * self.h, parallel.thread_count()
        self.per_task = 16 * self.w * (geom.c + geom.k)  # items of V and the second array per tile row
        # each thread's rows in the transform loops: four input rows and their transform,
        # 12 rows of sums (or two grad_out rows and their transform)
        self.rows_memory = 8 * (2 * self.w + 2) * geom.c + 12 * self.w * geom.k

    def plan(self, itemsize: int, budget: int, fixed: int, per_thread: int, wanted: int) -> "int | None":
        """Tile rows per block, or None when one per thread passes the budget: ``fixed``
        items are needed once, ``per_thread`` by each thread beside its block and loops,
        ``wanted`` is the block's size in bytes to aim for. As many blocks for every thread."""
        room = (budget - fixed * itemsize) // self.threads - (self.rows_memory + per_thread) * itemsize
        per_task = self.per_task * itemsize
        if per_task > room:
            return None
        blocks = -(-self.tasks // max(1, min(room, wanted) // per_task))
        return -(-self.tasks // (-(-blocks // self.threads) * self.threads))

    def block_runner(self, x, block: int, shares: np.ndarray, body):
        """``run_block(first, last, thread)`` for :func:`.compiled.run_blocks`, and the input
        transform's loop: ``run_block`` transforms the block's input tiles into V, then calls
        ``body(v, other, count, first, last, thread)`` with the second array and the
        block's tile count."""
        geom, transform_input = self.geom, compiled.loop("winograd_input")
        rows = _index_map(geom.h, geom.pads[0], self.pad_mode, 2 * self.h + 2)
        cols = _index_map(geom.w, geom.pads[1], self.pad_mode, 2 * self.w + 2)

        def run_block(first, last, thread):
            share = shares[thread]
            v = share[: 16 * block * self.w * geom.c].reshape(16, block * self.w, geom.c)
            other = share[v.size :].reshape(16, block * self.w, geom.k)
            transform_input(x, rows, cols, geom.pads[1][0], self.h, self.w, v, first, 0, last - first)
            body(v, other, (last - first) * self.w, first, last, thread)

        return run_block, transform_input


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the 3x3 cross-correlation; arguments as for
    :func:`.im2col.correlate` (3x3, strides 1, dilation 1, groups 1). Returns ``out``.

    Every thread takes blocks of tile rows (:data:`BLOCK_BYTES` of V and M) and runs the
    whole pipeline on each: input transform, 16 products on one BLAS thread, output
    transform (:func:`.compiled.run_blocks`). U, V and M live in the kept work buffer:
    fresh arrays of megabytes each call cost page faults (measured with fresh arrays, the
    8x14x14x256 layer takes 7 ms called alone, 15 when its calls alternate with the kernel
    gradient's).
    """
    if out.size == 0:
        return out
    if geom.c == 0:
        out[...] = 0
        return out
    tiles, u_items = _Tiles(geom, pad_mode), 16 * geom.c * geom.k
    block = tiles.plan(out.dtype.itemsize, budget, u_items, 0, BLOCK_BYTES)
    if block is None or not compiled.usable(x):
        # One row of tiles passes the budget (im2col splits rows), or x is big-endian or
        # float16, which the compiled transforms cannot read: im2col converts it by blocks.
        return im2col.correlate(x, kernel, geom, pad_mode, out, budget)
    transform_output = compiled.loop("winograd_output")
    with work_buffer(u_items + tiles.threads * block * tiles.per_task, out.dtype) as work:
        u = kernel_transform(kernel, work[:u_items].reshape(16, geom.c, geom.k))

        def products(v, m, count, first, last, thread):
            np.matmul(v[:, :count], u, out=m[:, :count])
            transform_output(m, tiles.h, tiles.w, out, first, 0, last - first)

        shares = work[u_items:].reshape(tiles.threads, block * tiles.per_task)
        run_block, transform_input = tiles.block_runner(x, block, shares, products)
        compiled.run_blocks(run_block, tiles.tasks, block, tiles.threads, transform_input, transform_output)
    return out


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int) -> np.ndarray:
    """The kernel's gradient, (3, 3, c, k), by Winograd F(3x3, 2x2); as :func:`.shift.kernel_gradient`.

    Tap ``(a, b)``'s gradient sums ``padded x[r + a, q + b] * grad_out[r, q]`` over pixels:
    a correlation of x with grad_out, computed 2x2 grad_out tiles at a time from the same
    4x4 input tiles as the forward pass. Per tile, ``(B^T d B) * (A e A^T)`` (16 products
    per channel pair, where im2col's ``patches^T @ grad_out`` makes 36), summed over tiles
    as 16 products ``V[xi]^T @ E[xi]`` of shape ``(c, tiles) @ (tiles, k)``, and
    ``G^T M G`` turns the 4x4 sums into the 3x3 gradient. Threads take fixed blocks (block
    ``t``, ``t + threads``, ...) into sums of their own, added in thread order: the same
    input gives the same bits on every call.
    """
    dtype, tiles = np.dtype(dtype), _Tiles(geom, pad_mode)
    grad = np.zeros((3, 3, geom.c, geom.k), dtype)
    if tiles.tasks * tiles.w == 0 or geom.c == 0 or geom.k == 0:
        return grad
    threads, items = tiles.threads, 16 * geom.c * geom.k  # each thread: its sums and one product
    wanted = max(BLOCK_BYTES, GRADIENT_TILES * 16 * (geom.c + geom.k) * dtype.itemsize)
    block = tiles.plan(dtype.itemsize, budget, 0, 2 * items, wanted)
    if block is None or not compiled.usable(x, grad_out):
        # as in correlate: shift's kernel gradient splits rows and converts any dtype
        return shift.kernel_gradient(x, geom, pad_mode, grad_out, dtype, budget)
    transform_grad = compiled.loop("winograd_grad")
    with work_buffer(threads * (2 * items + block * tiles.per_task), dtype) as work:
        sums = work[: threads * 2 * items].reshape(threads, 2, 16, geom.c, geom.k)

        def products(v, e, count, first, last, thread):
            transform_grad(grad_out, tiles.h, tiles.w, e, first, 0, last - first)
            total, product = sums[thread]
            if first == thread * block:  # the thread's first block (fixed): its sums start there
                np.matmul(v[:, :count].transpose(0, 2, 1), e[:, :count], out=total)
                return
            np.matmul(v[:, :count].transpose(0, 2, 1), e[:, :count], out=product)
            total += product

        shares = work[sums.size :].reshape(threads, block * tiles.per_task)
        run_block, transform_input = tiles.block_runner(x, block, shares, products)
        compiled.run_blocks(run_block, tiles.tasks, block, threads, transform_input, transform_grad, fixed=True)
        m = sums[0, 0]
        for thread in range(1, min(threads, -(-tiles.tasks // block))):  # the threads that had a block
            m += sums[thread, 0]
        compiled.run_loop("winograd_kernel_gradient", geom.c, m, grad, work=16 * geom.c * geom.k)
    return grad


def _index_map(size: int, pads, pad_mode: str, length: int) -> np.ndarray:
    """:func:`.slab.source_index`, extended with zeros (-1) to ``length`` positions.

    The last tile row or column may reach one position past the padded input when the
    output size is odd; what it reads there only reaches output pixels that are dropped.
    """
    index = slab.source_index(size, pads, pad_mode)
    extended = np.concatenate([index, np.full(max(0, length - len(index)), -1, index.dtype)])
    extended.flags.writeable = False  # read-only as every map the loops read: one compiled signature
    return extended

