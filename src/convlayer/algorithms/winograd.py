"""Winograd F(2x2, 3x3): 3x3 stride-1 layers with 2.25x fewer multiplications.

Each 2x2 tile of the output is computed from the 4x4 tile of padded input it reads (Lavin
and Gray, 2015): ``Y = A^T [(G g G^T) * (B^T d B)] A`` for every input channel's tile ``d``
and kernel ``g``, summed over channels. The 16 products per tile, summed over channels, are
16 matrix products ``V[xi] @ U[xi]`` of shape ``(tiles, c) @ (c, k)`` where im2col makes
one ``(4 * tiles, 9 c) @ (9 c, k)``: 16 c k multiply-adds per tile of 4 pixels instead of
36 c k. The transforms (``B^T d B`` of every tile, ``A^T M A`` of every product) are
additions only; they run in compiled loops (:mod:`._gemm_loops`, Numba) on both cores,
so this algorithm needs Numba. Work memory (``V``: 16 c numbers per tile, ``M``: 16 k) is
planned in blocks of tile rows within the budget, in the kept work buffer (:mod:`.buffers`);
an image so wide that one row of tiles passes the budget goes to im2col, which can split
rows, and so does a big-endian or float16 input.

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
    if not compiled.enabled():
        return "its transforms are compiled loops: it needs Numba (pip install numba)"
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


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the 3x3 cross-correlation; arguments as for
    :func:`.im2col.correlate` (3x3, strides 1, dilation 1, groups 1). Returns ``out``."""
    if out.size == 0:
        return out
    if geom.c == 0:
        out[...] = 0
        return out
    tiles_h, tiles_w = (geom.out_h + 1) // 2, (geom.out_w + 1) // 2
    rows = _index_map(geom.h, geom.pads[0], pad_mode, 2 * tiles_h + 2)
    cols = _index_map(geom.w, geom.pads[1], pad_mode, 2 * tiles_w + 2)
    per_task = 16 * tiles_w * (geom.c + geom.k)  # items of V and M per tile row
    # each transform thread's rows: four input rows and their transform, 12 rows of sums
    rows_memory = parallel.thread_count() * (8 * (2 * tiles_w + 2) * geom.c + 12 * tiles_w * geom.k)
    room = budget - rows_memory * out.dtype.itemsize  # for V and M
    if per_task * out.dtype.itemsize > room or not compiled.usable(x):
        # One row of tiles passes the budget (im2col splits rows), or x is big-endian or
        # float16, which the compiled transforms cannot read: im2col converts it by blocks.
        return im2col.correlate(x, kernel, geom, pad_mode, out, budget)
    u = kernel_transform(kernel, out.dtype)
    tasks = geom.n * tiles_h
    block = max(1, min(tasks, room // (per_task * out.dtype.itemsize)))
    with work_buffer(block * per_task, out.dtype) as work:
        for task0 in range(0, tasks, block):
            count = min(block, tasks - task0)
            v = work[: 16 * count * tiles_w * geom.c].reshape(16, count * tiles_w, geom.c)
            m = work[v.size : v.size + 16 * count * tiles_w * geom.k].reshape(16, count * tiles_w, geom.k)
            compiled.run("winograd_input", count, x, rows, cols, geom.pads[1][0], tiles_h, tiles_w, v, task0)
            np.matmul(v, u, out=m)
            compiled.run("winograd_output", count, m, tiles_h, tiles_w, out, task0)
    return out


def _index_map(size: int, pads, pad_mode: str, length: int) -> np.ndarray:
    """:func:`.im2col.source_index`, extended with zeros (-1) to ``length`` positions.

    The last tile row or column may reach one position past the padded input when the
    output size is odd; what it reads there only reaches output pixels that are dropped.
    """
    index = im2col.source_index(size, pads, pad_mode)
    return np.concatenate([index, np.full(max(0, length - len(index)), -1, index.dtype)])

