"""The algebra of ``conv2d_backward``: x's gradient as a correlation, and the bias's gradient.

Output pixel ``(i, j)`` read input pixel ``(i + a * dh - top, ...)`` through tap ``(a, b)``,
so x's gradient at ``(y, x)`` collects ``grad_out`` at ``(y + top - a * dh, ...)`` times tap
``(a, b)``. At stride 1 that is itself a cross-correlation: of ``grad_out``, padded by
``span - 1 - top`` before and ``span - 1 - bottom`` after (:func:`transposed_geometry`),
with the kernel rotated by 180 degrees and its input and output channels swapped per group
(:func:`transposed_kernel`). So every forward algorithm serves the backward pass too;
:func:`.choose.backward` decides where it applies and :mod:`.dispatch` runs it.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry, span
from . import compiled

# The bias gradient's float64 blocks, copy and ones, stay within this (and the budget):
# malloc reuses blocks of this size, where a fresh mapping of several MB costs page faults
# (7.4 ms against 3.3 on 512 x 512 x 2).
BIAS_BLOCK_BYTES = 2**20
# bias_gradient: column sums of runs of BIAS_RUN rows, from BIAS_ROWS_MIN_CHANNELS channels
# (one thread, against float64 blocks summed by BLAS: 8x56x56x256 1.46 ms against 3.49,
# 8x28x28x128 0.25 against 0.42; 8x56x56x32 0.66 against 0.40, so not below 64).
BIAS_RUN = 256
BIAS_ROWS_MIN_CHANNELS = 64
# _compiled_sums' rows: whole pixels of about this many items.
BIAS_ROW = 1024


def transposed_geometry(geom: ConvGeometry, pad_mode: str, stuffed: bool = False) -> "ConvGeometry | None":
    """The geometry of x's gradient as a stride-1 correlation of grad_out (n, out_h, out_w, k)
    into (n, h, w, c); None when it is not one: padding that copies pixels, padding wider
    than the kernel spans, or (unless ``stuffed``) strides.

    With strides ``s``, x's gradient is the same correlation of grad_out *stuffed*: its
    pixels ``s`` apart with zeros between (:func:`stuff`), ``(out - 1) * s + 1`` per axis,
    padded ``span - 1 - top`` before and what makes the result ``h`` long after. At stride
    1 that is ``span - 1 - bottom``; with strides, rows the last window never reached need
    none (a negative count is refused as for wide padding).
    """
    if geom.strides != (1, 1) and not stuffed:
        return None
    if pad_mode != "constant" and any(geom.pads[0] + geom.pads[1]):
        return None
    pads, sizes = [], []
    for size, out, stride, taps, dilation, (before, _) in zip(
            (geom.h, geom.w), (geom.out_h, geom.out_w), geom.strides, (geom.fh, geom.fw), geom.dilation, geom.pads):
        length = (out - 1) * stride + 1
        low = span(taps, dilation) - 1 - before
        pads.append((low, size - length - low + span(taps, dilation) - 1))
        sizes.append(length)
    if min(pads[0] + pads[1]) < 0 or min(geom.out_h, geom.out_w) < 1:
        return None
    return geom._replace(
        n=geom.n, h=sizes[0], w=sizes[1], c=geom.k, k=geom.c, strides=(1, 1), pads=tuple(pads), out_h=geom.h,
        out_w=geom.w, kernel_rank=4, batched=True, channels_first=False,
    )


def stuff(grad_out: np.ndarray, strides: tuple[int, int], dtype) -> np.ndarray:
    """grad_out (n, out_h, out_w, k) with ``strides - 1`` zeros between its pixels, in ``dtype``."""
    (sh, sw), (n, out_h, out_w, k) = strides, grad_out.shape
    stuffed = np.zeros((n, (out_h - 1) * sh + 1, (out_w - 1) * sw + 1, k), dtype)
    stuffed[:, ::sh, ::sw] = grad_out
    return stuffed


def transposed_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """(fh, fw, c // groups, k) to the input gradient's kernel, (fh, fw, k // groups, c).

    Rotated by 180 degrees, input and output channels swapped within each group.
    """
    fh, fw, cg, k = kernel.shape
    per_group = kernel[::-1, ::-1].reshape(fh, fw, cg, groups, k // groups)
    return np.ascontiguousarray(per_group.transpose(0, 1, 4, 3, 2).reshape(fh, fw, k // groups, groups * cg))


def bias_gradient(grad_out: np.ndarray, dtype, budget: int) -> np.ndarray:
    """grad_out (n, out_h, out_w, k) summed over images and pixels: (k,) in ``dtype``.

    A contiguous float grad_out is a ``(pixels, k)`` matrix summed down its columns by a
    compiled loop into float64 sums, one pass on every core (:func:`_compiled_sums`).
    Without it (no Numba, integer grad_out) the sums take two levels: runs of
    :data:`BIAS_RUN` rows in grad_out's dtype, each run's sum added into a float64 total,
    so the error is that of a run (``BIAS_RUN`` roundings of each channel's
    sum of ``|grad_out|``), not one that grows with the image. With many channels
    (``k >= BIAS_ROWS_MIN_CHANNELS``) the runs are NumPy's column sums over k contiguous
    values; with few, whose column sums run an inner loop of only k items (3.7 ms for
    512 x 512 x 2), each block becomes float64 and ``ones @ block`` (BLAS) sums it, block
    by block within ``budget``. Other layouts (channels-first views) keep NumPy's sum,
    which runs along contiguous memory there.
    """
    k = grad_out.shape[-1]
    if k == 1 or not grad_out.flags.c_contiguous or grad_out.size == 0:  # sums along memory
        return np.sum(grad_out, axis=(0, 1, 2), dtype=dtype)
    rows = grad_out.reshape(-1, k)
    if rows.shape[0] <= BIAS_RUN:  # a few pixels (a 1x1 image): one float64 sum, no blocks
        return np.sum(rows, axis=0, dtype=np.float64).astype(dtype)
    if rows.dtype.kind == "f" and compiled.usable(rows):
        return _compiled_sums(rows).astype(dtype)
    total = np.zeros(k)
    if k >= BIAS_ROWS_MIN_CHANNELS and rows.dtype in (np.float32, np.float64):
        run = np.empty(k, rows.dtype)
        for start in range(0, rows.shape[0], BIAS_RUN):
            np.add.reduce(rows[start : start + BIAS_RUN], axis=0, out=run)
            total += run
        return total.astype(dtype)
    step = max(1, min(BIAS_BLOCK_BYTES, budget) // (8 * (k + 1)))  # float64 rows of the copy and the ones
    ones = np.ones(min(step, rows.shape[0]))
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step].astype(np.float64)  # one dtype: BLAS, not NumPy's loop
        total += ones[: block.shape[0]] @ block
        del block  # before the next block's copy exists
    return total.astype(dtype)


def _compiled_sums(rows: np.ndarray) -> np.ndarray:
    """The float64 column sums of a C-contiguous float ``(pixels, k)`` matrix.

    :func:`._loops.column_sums` adds rows of whole pixels, ``BIAS_ROW // k`` of them, into
    as many float64 sums (a long vectorised loop however few the channels), which are then
    folded into the ``k`` channels; the last few pixels are summed here. Each sum's error
    is that of float64 (about ``pixels * 2**-53`` of the sum of ``|grad_out|``), far below
    the float32 result's rounding. One thread, float32, against the two-level NumPy sums:
    1x112x112x32 0.18-0.24 -> 0.04 ms, 8x112x112x16 0.75 -> 0.30, 8x56x56x144 1.1 -> 0.57
    and 8x112x112x96 3.5 -> 1.4 (reading memory: 25 GB/s), 1x14x14x384 alike; 8x7x7x1280
    0.08 -> 0.10 (one pixel a row of sums).
    """
    pixels, k = rows.shape
    per_row = max(1, BIAS_ROW // k)
    whole = pixels // per_row
    total = np.zeros(per_row * k)
    compiled.run_loop("column_sums", whole, rows.reshape(-1), per_row * k, sums=total, work=rows.size)
    return total.reshape(per_row, k).sum(axis=0) + rows[whole * per_row :].sum(axis=0, dtype=np.float64)

