"""Winograd F(2x2, 3x3): 3x3 stride-1 layers with 2.25x fewer multiplications.

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
(``convlayer[fast]``). The blocks live in the kept work buffer (:mod:`.buffers`), within the
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
Winograd only for finite input, as for FFT.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry
from . import compiled, im2col, parallel
from .buffers import work_buffer

def unsupported(geom: ConvGeometry) -> "str | None":
    """Why this algorithm cannot compute ``geom`` (None when it can)."""
    if (geom.fh, geom.fw) != (3, 3) or geom.strides != (1, 1) or geom.dilation != (1, 1):
        return (f"it needs a 3x3 kernel, strides 1 and dilation 1 (got {geom.fh}x{geom.fw}, "
                f"strides={geom.strides}, dilation={geom.dilation})")
    if geom.groups != 1:
        return f"it needs groups=1 (got groups={geom.groups})"
    if not compiled.blocked_gemm_ready():
        return ("its transforms are compiled loops run beside one-thread BLAS products: it needs "
                "Numba and threadpoolctl (pip install convlayer[fast])")
    return None


def kernel_transform(kernel: np.ndarray, dtype) -> np.ndarray:
    """U = G g G^T for every (c, k): (16, c, k), index ``4 i + j`` for row i, column j.

    G's rows are ``g0``, ``(g0 + g1 + g2) / 2``, ``(g0 - g1 + g2) / 2`` and ``g2``: a few
    element-wise passes over (c, k) planes (a BLAS product with 3-long sums took 5 ms on
    256 x 256 channels, these 0.5 ms).
    """
    fh, fw, c, k = kernel.shape
    u = _apply_g(_apply_g(kernel.astype(dtype, copy=False), axis=0), axis=1)  # (4, 4, c, k)
    return u.reshape(16, c, k)


def _apply_g(g: np.ndarray, axis: int) -> np.ndarray:
    """G (4 x 3) applied along ``axis`` (length 3 becomes 4)."""
    g0, g1, g2 = (np.take(g, i, axis=axis) for i in range(3))
    outer, middle = (g0 + g2) * 0.5, g1 * 0.5
    return np.stack([g0, outer + middle, outer - middle, g2], axis=axis)


# V and M of one thread's block of tile rows (the rest of a layer's V and M is never made):
# a block small enough to stay in the core's cache from input transform through the 16
# products to the output transform. Measured on the speed suite's three 3x3 layers, blocks
# of 1, 2, 4 and 8 MiB: 2 MiB best on all three (8 tile rows of each), 6-7 ms against
# 8.5-12.4 for one budget-sized block transformed on both cores and multiplied by BLAS's threads.
BLOCK_BYTES = 2 << 20


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the 3x3 cross-correlation; arguments as for
    :func:`.im2col.correlate` (3x3, strides 1, dilation 1, groups 1). Returns ``out``.

    Every thread takes blocks of tile rows (:data:`BLOCK_BYTES` of V and M) and runs the
    whole pipeline on each: input transform, 16 products on one BLAS thread, output
    transform (:func:`.compiled.run_blocks`).
    """
    if out.size == 0:
        return out
    if geom.c == 0:
        out[...] = 0
        return out
    itemsize = out.dtype.itemsize
    tiles_h, tiles_w = (geom.out_h + 1) // 2, (geom.out_w + 1) // 2
    tasks, threads = geom.n * tiles_h, parallel.thread_count()
    per_task = 16 * tiles_w * (geom.c + geom.k)  # items of V and M per tile row
    # each thread's rows in the transform loops: four input rows and their transform, 12 rows of sums
    rows_memory = 8 * (2 * tiles_w + 2) * geom.c + 12 * tiles_w * geom.k
    room = budget // threads - rows_memory * itemsize  # for one thread's V and M
    if per_task * itemsize > room or not compiled.usable(x):
        # One row of tiles passes the budget (im2col splits rows), or x is big-endian or
        # float16, which the compiled transforms cannot read: im2col converts it by blocks.
        return im2col.correlate(x, kernel, geom, pad_mode, out, budget)
    block = max(1, min(min(room, BLOCK_BYTES) // (per_task * itemsize), -(-tasks // threads)))
    blocks = -(-tasks // block)
    block = -(-tasks // (-(-blocks // threads) * threads))  # as many blocks for every thread
    rows = _index_map(geom.h, geom.pads[0], pad_mode, 2 * tiles_h + 2)
    cols = _index_map(geom.w, geom.pads[1], pad_mode, 2 * tiles_w + 2)
    u = kernel_transform(kernel, out.dtype)
    transform_input, transform_output = compiled.loop("winograd_input"), compiled.loop("winograd_output")
    with work_buffer(threads * block * per_task, out.dtype) as work:
        shares = work.reshape(threads, block * per_task)

        def run(first, last, thread):
            share = shares[thread]
            v = share[: 16 * block * tiles_w * geom.c].reshape(16, block * tiles_w, geom.c)
            m = share[v.size :].reshape(16, block * tiles_w, geom.k)
            count = (last - first) * tiles_w
            transform_input(x, rows, cols, geom.pads[1][0], tiles_h, tiles_w, v, first, 0, last - first)
            np.matmul(v[:, :count], u, out=m[:, :count])
            transform_output(m, tiles_h, tiles_w, out, first, 0, last - first)

        compiled.run_blocks(run, tasks, block, threads, transform_input, transform_output)
    return out


def _index_map(size: int, pads, pad_mode: str, length: int) -> np.ndarray:
    """:func:`.im2col.source_index`, extended with zeros (-1) to ``length`` positions.

    The last tile row or column may reach one position past the padded input when the
    output size is odd; what it reads there only reaches output pixels that are dropped.
    """
    index = im2col.source_index(size, pads, pad_mode)
    return np.concatenate([index, np.full(max(0, length - len(index)), -1, index.dtype)])

