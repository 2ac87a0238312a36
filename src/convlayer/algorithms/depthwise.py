"""Depthwise convolution (``groups == c``): shift and accumulate with a per-channel multiply.

Each input channel has its own ``multiplier = k / c`` filters and no channel mixes with
another, so there is no matrix product to make: im2col's patch matrix (``fh * fw`` copies of
the input) followed by ``c`` matrix products with one column each is almost all copying.
Here every kernel tap is one element-wise multiply of the tap's pixels (a contiguous run of
the flattened slab at stride 1, a strided view otherwise; see :mod:`.shift`) by the tap's
``c`` weights, added into the output block in place. The work is element-wise, which NumPy
runs on one core, so the blocks are shared among threads (:mod:`.parallel`). With Numba,
the compiled loops :func:`._depthwise_loops.depthwise_fixed` (one per kernel size) and
:func:`._depthwise_loops.depthwise` do the same sums row by row on every thread (:func:`correlate_compiled`).

Output channel ``g * multiplier + j`` is filter ``j`` of input channel ``g``, as for any
grouped convolution.
"""

from __future__ import annotations

import math

import numpy as np

from ..shapes import ConvGeometry
from . import buffers, compiled, layout, parallel, shift, slab
from .buffers import CACHE_BLOCK_BYTES, blocks, plan_blocks


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the depthwise cross-correlation.

    ``kernel`` is (fh, fw, 1, k) with ``k = c * multiplier``; other arguments as for
    :func:`.im2col.correlate`. Returns ``out``.
    """
    if out.size and geom.c and compiled.usable(x) and compiled.fits(geom, out.itemsize, budget):
        return correlate_compiled(x, kernel, geom, pad_mode, out, budget)
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


def reads_views(x, kernel, geom: ConvGeometry, out: np.ndarray) -> bool:
    """Whether auto's depthwise loop computes this call on the caller's views as they lie
    (a channels-first x and output): one filter per channel, no row dilation, the compiled
    loops usable. Its band fill gathers each padded row's channels from their planes, and
    each output row goes back to the planes channel by channel, where copying the whole
    input and output channels-last first cost as much as the layer."""
    return (geom.groups == geom.c == geom.k > 1 and geom.dilation[0] == 1 and compiled.usable(x)
            and compiled.fits(geom, out.itemsize, buffers.get_memory_budget()))


def correlate_compiled(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int) -> np.ndarray:
    """:func:`correlate` by the compiled loops, row by row on every thread: with one filter per
    channel and no row dilation, the loop compiled for the layer's kernel size
    (:func:`._depthwise_loops.depthwise_fixed`: about a second per kernel size and column
    stride, once per installation, whatever the channel count); otherwise
    :func:`._depthwise_loops.depthwise`."""
    if _fixed(geom):
        unbounded = out.dtype.type(-np.inf), out.dtype.type(np.inf)
        _run_fixed(x, kernel, geom, pad_mode, out, budget, layout.no_bias(geom.k, out.dtype), *unbounded)
        return out
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    multiplier = geom.k // geom.c
    by_tap = kernel[:, :, 0, :].reshape(geom.fh, geom.fw, geom.c, multiplier).transpose(0, 1, 3, 2)
    weights = np.ascontiguousarray(by_tap, out.dtype)  # (fh, fw, multiplier, c): channels innermost
    compiled.run_loop("depthwise", geom.n * geom.out_h, x, rows, cols, left, weights, *geom.strides,
                      *geom.dilation, compiled.TILE_BYTES, out)
    return out


def correlate_biased(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int, bias, low,
                     high, activation=None) -> bool:
    """Fill ``out`` with the correlation plus ``bias`` (``(k,)`` or None), clamped to
    ``[low, high]`` (None: unbounded) as :func:`numpy.clip` does, by the register-summing
    loop (:func:`._depthwise_loops.depthwise_fixed`), which adds and clamps each sum before
    storing it; return False, doing nothing, where that loop does not apply (several filters
    per channel, row dilation, fewer than :data:`FIXED_MIN_CHANNELS` channels, no compiled
    loops, a dtype they do not read, a NaN bound). The sums are those of ``out += bias``
    after the loop: without a bias the loop adds -0.0, which changes no value.

    With ``activation``, ``(name, alpha, beta)`` of :func:`.layout.add_bias_activation` (and
    ``sums``: each row's channel sums written into it), each thread then writes it over the
    rows it has just computed (:func:`.layout.activation_rows`; False where that does not
    apply: an out that is not float32 and C-contiguous). efficientnet_b0's depthwise layers
    with a bias and a Swish, the loop then one pass over the whole output against the
    activation per thread, in one process, twice each: 1x112x112x32 3x3 0.80-0.81 ->
    0.60-0.62 ms, 1x56x56x144 3x3 0.87-0.88 -> 0.66-0.67, 1x28x28x240 5x5 0.61-0.63 ->
    0.42-0.47, 8x56x56x144 3x3 3.18-3.20 -> 2.83-2.88, 1x14x14x672 5x5 (one thread)
    0.40-0.41 -> 0.39.

    The bias in the loop saves a pass over the output. conv2d with a bias, 3x3, against
    the loop and then the addition, alternating processes: 1x14x14x384 123 -> 100 us,
    1x56x56x144 530 -> 385 us, 8x56x56x144 2.1 -> 1.26 ms, 8x28x28x192 1.07 -> 0.70 ms.
    """
    dtype = out.dtype
    if not (_fixed(geom) and geom.n * geom.out_h and compiled.usable(x, out)
            and compiled.fits(geom, out.itemsize, budget)):
        return False
    bounds = layout.bound(low, dtype, -np.inf), layout.bound(high, dtype, np.inf)
    then = None if activation is None else layout.activation_rows(out, *activation)
    if None in bounds or (activation is not None and then is None):
        return False
    add = layout.no_bias(geom.k, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    _run_fixed(x, kernel, geom, pad_mode, out, budget, add, *bounds, then)
    return True


def _fixed(geom: ConvGeometry) -> bool:
    """Whether the register-summing loop computes this layer (given the compiled loops)."""
    return geom.k == geom.c >= FIXED_MIN_CHANNELS and geom.dilation[0] == 1


def _run_fixed(x, kernel, geom: ConvGeometry, pad_mode: str, out, budget: int, bias, low, high, then=None) -> None:
    """The register-summing loop, with ``bias`` ((k,), out's dtype) and bounds (scalars of it),
    then ``then`` over each thread's rows (:func:`.compiled.run_loop`)."""
    weights = np.ascontiguousarray(kernel[:, :, 0, :], out.dtype)  # (fh, fw, c): channels innermost
    body = compiled.loop("depthwise_fixed")(geom.fh, geom.fw, geom.strides[1], geom.dilation[1], pixel_block(geom))
    compiled.run_loop(body, geom.n * geom.out_h, x, *slab.loop_maps(geom, pad_mode), weights, bias, low, high,
                      geom.strides[0], _band_rows(geom, out.itemsize, budget, BAND_BYTES), out,
                      work=_work(geom) + (0 if then is None else out.size * layout.ACTIVATION_WORK), then=then)


# Output rows per band of :func:`._depthwise_loops.depthwise_fixed` (its padded input rows are filled
# once per band; fewer where a band's rows would pass the budget).
BAND_ROWS = 16
# The forward loop's band stops at about this many bytes of padded rows, so the windows
# each output row reads stay in the core's cache. Against 16-row bands, same process, on
# the 78 depthwise layers of the recorded networks (batch 1 and 8): totals 55.3 -> 54.0 ms
# on one thread, 40.8 -> 39.6 on two; the wide strided layers gain most (1x112x112x96 3x3
# s2, a 1.4 MiB band of 33 rows at 16: 0.57 -> 0.46 ms on one thread, 0.66 -> 0.48 on two;
# 8x56x56x144 s2 0.86 and 0.84 of the time); layers whose 16 rows fit are unchanged.
BAND_BYTES = 2**19
# Fewer channels than this take the flat-run loop (:func:`._depthwise_loops.depthwise`): a
# pixel's few channels are too short a vector loop for the register-summing one. One thread,
# register-summing / flat-run time: c=8 1.04-1.10 (1x112x112, 8x112x112, 3x3); c=16 0.51-0.71
# (3x3 and 5x5, strides 1 and 2, 7x7), and from 24 on (0.40-0.65).
FIXED_MIN_CHANNELS = 16


# Neighbouring output pixels that :func:`._depthwise_loops.depthwise_fixed` sums together, each
# weight loaded once for all of them. One thread, time against one pixel at a time, on every
# depthwise layer of the recorded networks (batch 1 and 8): 3x3 at stride 1, 4 pixels 0.66-0.94
# (2 pixels 0.74-0.96); 5x5 (any stride) and 3x3 at stride 2, 2 pixels 0.65-0.77 at stride 1
# and 0.83-1.06 at stride 2 (4 pixels: 1.4-3.4, the strided windows share fewer loads and
# the unrolled sums outgrow the registers). With more than PIXEL_PAIR_MAX_TAPS taps (7x7)
# the compiler no longer vectorises the blocked loop: 2.3-4.2x slower.
PIXEL_QUAD_MAX_TAPS = 9  # and column stride 1
PIXEL_PAIR_MAX_TAPS = 25


def pixel_block(geom: ConvGeometry) -> int:
    """Output pixels summed together by the register-summing loop: 4, 2 or 1."""
    taps = geom.fh * geom.fw
    if taps <= PIXEL_QUAD_MAX_TAPS and geom.strides[1] == 1:
        return 4
    return 2 if taps <= PIXEL_PAIR_MAX_TAPS else 1


def _work(geom: ConvGeometry) -> int:
    """The multiply-adds of a depthwise layer (or of its kernel's gradient)."""
    return geom.n * geom.out_h * geom.out_w * geom.k * geom.fh * geom.fw


def _band_rows(geom: ConvGeometry, itemsize: int, budget: int, band_bytes: int = 0) -> int:
    """Output rows per band: :data:`BAND_ROWS`, fewer where the band's padded rows would
    pass ``band_bytes`` (if given), and as many as the budget holds beside what
    :func:`.compiled.fits` counts (which is one band of one row)."""
    width = (geom.out_w - 1) * geom.strides[1] + (geom.fw - 1) * geom.dilation[1] + 1
    row_bytes = max(width * geom.c * itemsize, 1)
    spare = budget // parallel.thread_count() - compiled.LOOP_EXTRA - 2 * geom.fh * row_bytes
    rows = min(BAND_ROWS, 1 + spare // (geom.strides[0] * row_bytes))
    if band_bytes:
        rows = min(rows, 1 + (band_bytes // row_bytes - geom.fh) // geom.strides[0])
    return int(max(1, rows))


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
        return kernel_gradient_compiled(x, geom, pad_mode, grad_out, dtype, budget)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    threads = parallel.thread_count()
    cost = _gradient_cost(geom, dtype.itemsize, slab.gathered_slabs(pad_mode))
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, min(budget // threads, CACHE_BLOCK_BYTES))
    work_items = _gradient_cost(geom, 1, 1)(*size)  # a slab and a block of grad_out
    partial_sums = []

    def worker(part):
        grad = np.zeros((geom.fh, geom.fw, geom.c, multiplier), dtype)
        work = np.empty(work_items, dtype)
        for block in part:
            rows, cols = slab.indices(row_map, col_map, geom, block)
            padded, _ = slab.gather(x[block.n0 : block.n1], rows, cols, work, dtype)
            _add_block_gradient(padded, geom, block, grad_out, grad)
        partial_sums.append(grad)

    parallel.run_parts(worker, list(blocks(geom.n, geom.out_h, geom.out_w, size)), threads)
    return sum(partial_sums[1:], partial_sums[0]).reshape(geom.fh, geom.fw, 1, geom.k)


def kernel_gradient_compiled(x, geom: ConvGeometry, pad_mode: str, grad_out, dtype, budget: int) -> np.ndarray:
    """:func:`kernel_gradient` by the compiled loops: :func:`._depthwise_loops.depthwise_gradient_rows`
    (one filter per channel, no row dilation) or :func:`._depthwise_loops.depthwise_kernel_gradient`."""
    rows, cols, left = slab.loop_maps(geom, pad_mode)
    multiplier = geom.k // geom.c
    grad = np.zeros((geom.fh, geom.fw, multiplier, geom.c), dtype)
    if multiplier == 1 and geom.dilation[0] == 1:
        compiled.run_loop("depthwise_gradient_rows", geom.n * geom.out_h, x, rows, cols, left, grad_out,
                          *geom.strides, geom.dilation[1], _band_rows(geom, dtype.itemsize, budget),
                          sums=grad[:, :, 0], work=_work(geom))
        return grad.reshape(geom.fh, geom.fw, 1, geom.k)
    compiled.run_loop("depthwise_kernel_gradient", geom.n * geom.out_h, x, rows, cols, left, grad_out,
                      *geom.strides, *geom.dilation, compiled.RUNS_BYTES, sums=grad)
    return grad.transpose(0, 1, 3, 2).reshape(geom.fh, geom.fw, 1, geom.k)


def _gradient_cost(geom: ConvGeometry, itemsize: int, slabs: int):
    """Work bytes of a block for the kernel's gradient: slabs and grad_out's block (cast)."""

    def cost(images: int, rows: int, cols: int) -> int:
        slab_items = math.prod(slab.shape(geom, images, rows, cols))
        return (slabs * slab_items + images * rows * cols * geom.k) * itemsize

    return cost


def _add_block_gradient(padded, geom: ConvGeometry, block, grad_out, grad) -> None:
    nb, rb, cb = block.n1 - block.n0, block.r1 - block.r0, block.c1 - block.c0
    sh, sw = geom.strides
    target = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
    target = target.astype(grad.dtype, copy=False).reshape(nb, rb, cb, geom.c, -1)
    for a, b, da, db in shift.tap_offsets(geom):
        pixels = padded[:, da : da + (rb - 1) * sh + 1 : sh, db : db + (cb - 1) * sw + 1 : sw]
        grad[a, b] += np.einsum("nijc,nijcm->cm", pixels, target)
