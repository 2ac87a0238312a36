"""The compiled depthwise loops (groups == c), on the row fills and rings of :mod:`._loops`.

Rows and index maps as in :mod:`._loops`: every loop walks output rows ``first .. last - 1``
of the ``n * out_h`` (one thread's share), reading padded input rows through the index maps.

- :func:`depthwise_fixed` (multiplier 1, row dilation 1: every depthwise layer of the real
  networks measured), compiled per kernel size: the padded input rows of a band of output
  rows are filled once, the taps unroll and the channels are the vectorised innermost loop,
  so each output pixel sums all its taps in registers and is stored once, with a bias
  added and clamped on the way (a conv2d bias, an ONNX Conv's Relu or Clip);
  :func:`depthwise_gradient_rows` is its kernel gradient (compiled once for every kernel size).
- :func:`depthwise` (any multiplier, row dilation): channels-last, ``line[p, ch]``. With
  multiplier 1 and column stride 1 a row is one flat run: item ``t = j * c + ch`` of the
  output row adds ``tile[t] * line_flat[t + b * dw * c]``, the tap's weights repeated along
  the row (:func:`_weight_tiles`), three taps a pass, written straight into ``out`` when it
  is C-contiguous (an innermost loop of only ``c`` items, 32, mostly misses the vector
  loop: on 8x112x112x32, 3x3, one thread, 3.65 ms with the flat runs against 5.5 over the
  channels). Otherwise the innermost loop runs over the channels, each with its own weight,
  into a row accumulator. The weight tiles and the kernel gradient's running products stay
  within :data:`.compiled.TILE_BYTES` and :data:`.compiled.RUNS_BYTES`, which the callers
  pass in. :func:`depthwise_kernel_gradient` is its kernel gradient.

Sums follow the taps' order with fused multiply-adds (``fastmath`` ``contract``), as in
:mod:`._loops`; a padded zero is multiplied like any pixel.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from ._loops import OPTIONS, _row_of, copy_run, fill_last, last_ring, last_slot


@numba.njit(fastmath={"contract"}, **OPTIONS)
def _madd3(target, w0, s0, w1, s1, w2, s2):
    """target[t] += w0[t] * s0[t], then w1 * s1, then w2 * s2: three taps in one pass."""
    for t in range(target.shape[0]):
        target[t] = ((target[t] + w0[t] * s0[t]) + w1[t] * s1[t]) + w2[t] * s2[t]


@numba.njit(fastmath={"contract"}, **OPTIONS)
def _madd1(target, w0, s0):
    """target[t] += w0[t] * s0[t]."""
    for t in range(target.shape[0]):
        target[t] += w0[t] * s0[t]


@numba.njit(**OPTIONS)
def _weight_tiles(w, ow, tile_bytes):
    """Each tap's weights repeated for a block of output pixels: ``(fh * fw, pixels * c)``,
    ``tile_bytes`` at most (but one pixel's weights for every tap).

    Flat, the stride-1 multiplier-1 sums are ``row[t] += tile[t] * line[start + t]``, one
    long loop whatever ``c`` is.
    """
    fh, fw, _, c = w.shape
    pixels = max(1, min(ow, tile_bytes // (fh * fw * c * w.itemsize)))
    tiles = np.empty((fh * fw, pixels * c), w.dtype)
    for tap in range(fh * fw):
        weights, tile = w[tap // fw, tap % fw, 0], tiles[tap]
        for p in range(pixels):  # element by element: a slice assignment compiles for seconds
            for ch in range(c):
                tile[p * c + ch] = weights[ch]
    return tiles


@numba.njit(**OPTIONS)
def _tap_run(ring, slots, tap, fw, dw, start, size):
    """The ``size`` flat items of tap ``tap``'s padded row read by output items ``start ..``."""
    line = ring[slots[tap // fw]]
    flat = line.reshape(line.size)
    first = start + (tap % fw) * dw * line.shape[1]
    return flat[first : first + size]


@numba.njit(**OPTIONS)
def _sum_taps(row, ring, slots, tiles, fw, dw):
    """row[j * c + ch] = the sum over taps of the weight times line[j + b * dw, ch] (m = 1, stride 1).

    Block by block of the tiles' width, three taps a pass (the sum stays in tap order).
    """
    taps, size = tiles.shape
    for start in range(0, row.shape[0], size):
        block = row[start : start + size]
        n = block.shape[0]
        block[:] = 0
        for tap in range(0, taps - 2, 3):
            _madd3(block, tiles[tap, :n], _tap_run(ring, slots, tap, fw, dw, start, n),
                   tiles[tap + 1, :n], _tap_run(ring, slots, tap + 1, fw, dw, start, n),
                   tiles[tap + 2, :n], _tap_run(ring, slots, tap + 2, fw, dw, start, n))
        for tap in range(taps - taps % 3, taps):
            _madd1(block, tiles[tap, :n], _tap_run(ring, slots, tap, fw, dw, start, n))


@numba.njit(fastmath={"contract"}, **OPTIONS)
def _madd(acc, line, weights, start, step):
    """acc[j, q, ch] += line[start + j * step, ch] * weights[q, ch] for every j, q and ch."""
    for j in range(acc.shape[0]):
        pixels = line[start + j * step]
        for q in range(acc.shape[1]):
            target, w = acc[j, q], weights[q]
            for ch in range(acc.shape[2]):
                target[ch] += pixels[ch] * w[ch]


@numba.njit(fastmath={"contract"}, **OPTIONS)
def _gradient_madd(total, line, grad, start, step):
    """total[q, ch] += line[start + j * step, ch] * grad[j, q, ch], summed over j."""
    for j in range(grad.shape[0]):
        pixels = line[start + j * step]
        for q in range(grad.shape[1]):
            target, g = total[q], grad[j, q]
            for ch in range(grad.shape[2]):
                target[ch] += pixels[ch] * g[ch]


@numba.njit(**OPTIONS)
def depthwise(x, rows, cols, left, w, sh, sw, dh, dw, tile_bytes, out, first, last):
    """out[img, i, j, ch * m + q] = sum over a, b of w[a, b, q, ch] * padded x at the tap;
    the weight tiles take ``tile_bytes`` at most."""
    n, oh, ow, k = out.shape
    fh, fw, m, c = w.shape
    ring, keys = last_ring(fh, fw, sw, dh, dw, ow, c, out)
    slots = np.empty(fh, np.int64)
    flat = m == 1 and sw == 1
    tiles = _weight_tiles(w, ow, tile_bytes) if flat else np.empty((0, 0), w.dtype)
    acc = np.empty((ow, m, c), out.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        for a in range(fh):
            slots[a] = last_slot(x, img, i * sh + a * dh, rows, cols, left, ring, keys)
        if flat:
            row, in_place = _row_of(out, img, i, acc.reshape(ow * k))
            _sum_taps(row, ring, slots, tiles, fw, dw)
            if not in_place:  # a channels-first output: each channel's run of the row
                _store_planes(acc.reshape(ow, k), out[img, i])
            continue
        acc[:] = 0
        for a in range(fh):
            for b in range(fw):
                _madd(acc, ring[slots[a]], w[a, b], b * dw, sw)
        for j in range(ow):
            for ch in range(c):
                for q in range(m):
                    out[img, i, j, ch * m + q] = acc[j, q, ch]


@functools.lru_cache(maxsize=None)
def depthwise_fixed(fh: int, fw: int, sw: int, dw: int, pixels: int = 1):
    """:func:`depthwise` for multiplier 1 and row dilation 1, compiled for one kernel size,
    column stride, column dilation and pixel block (Numba takes the closure's numbers as
    constants, and caches each on disk): the few of real networks (3x3, 5x5, 7x7 at stride
    1 or 2) each compile once per installation, whatever their channel counts. With the
    column offsets as constants the loop ran 1.2-1.4x faster than with them at run time
    (one thread, 8x112x112x32 3x3: 2.4 against 3.2 ms; 1x96x56x56 7x7: 1.1 against 1.5).

    With the kernel size known, the taps unroll and the loop over the channels is the
    innermost one, which the compiler vectorises (the channel count only decides how many
    whole vectors and how long a remainder): the channels of ``pixels`` (1, 2 or 4)
    neighbouring output pixels are summed over all taps in registers and stored once, in
    the order of the taps, each weight loaded once for all of them. The padded input rows
    of a band of ``band`` output rows are filled once into a buffer of their own (the rows
    two bands share, ``fh - sh``, once per band), so the rows a window reads are
    consecutive in memory. Measured against a ring that kept each row twice (one thread,
    1x144x56x56 3x3): 0.35 -> 0.30 ms. :func:`.depthwise.pixel_block` picks ``pixels``.
    """

    @numba.njit(fastmath={"contract"}, **OPTIONS)
    def depthwise_rows(x, rows, cols, left, w, bias, low, high, sh, band_rows, out, first, last):
        """out[img, i, j, ch] = sum over a, b of w[a, b, ch] * padded x[img, i sh + a, j sw + b dw, ch],
        plus bias[ch], clamped to [low, high] (:func:`_clamped`)."""
        _, oh, ow, c = out.shape
        width = (ow - 1) * sw + (fw - 1) * dw + 1
        band = np.empty(((band_rows - 1) * sh + fh, width, c), out.dtype)
        scratch = np.empty(ow * c, out.dtype)
        blocked = ow - ow % pixels
        task = first
        while task < last:
            img, i0, i1 = _next_band(x, rows, cols, left, band, task, last, oh, sh, band_rows)
            for i in range(i0, i1):
                window = band[(i - i0) * sh : (i - i0) * sh + fh]
                flat, in_place = _row_of(out, img, i, scratch)
                row = flat.reshape(ow, c)
                for j in range(0, blocked, pixels):  # constant branches: only 1, 2 or 4 sums compile
                    block = row[j : j + pixels]
                    for ch in range(c):
                        first_weight, add = w[0, 0, ch], bias[ch]
                        t0 = first_weight * window[0, j * sw, ch]
                        if pixels > 1:
                            t1 = first_weight * window[0, (j + 1) * sw, ch]
                        if pixels > 2:
                            t2 = first_weight * window[0, (j + 2) * sw, ch]
                            t3 = first_weight * window[0, (j + 3) * sw, ch]
                        for a in range(fh):
                            for b in range(fw):
                                if a + b > 0:
                                    weight = w[a, b, ch]
                                    t0 += weight * window[a, j * sw + b * dw, ch]
                                    if pixels > 1:
                                        t1 += weight * window[a, (j + 1) * sw + b * dw, ch]
                                    if pixels > 2:
                                        t2 += weight * window[a, (j + 2) * sw + b * dw, ch]
                                        t3 += weight * window[a, (j + 3) * sw + b * dw, ch]
                        block[0, ch] = _clamped(t0 + add, low, high)
                        if pixels > 1:
                            block[1, ch] = _clamped(t1 + add, low, high)
                        if pixels > 2:
                            block[2, ch] = _clamped(t2 + add, low, high)
                            block[3, ch] = _clamped(t3 + add, low, high)
                for j in range(blocked, ow):  # the last ow % pixels pixels, one at a time
                    target = row[j]
                    for ch in range(c):
                        total = w[0, 0, ch] * window[0, j * sw, ch]
                        for a in range(fh):
                            for b in range(fw):
                                if a + b > 0:
                                    total += w[a, b, ch] * window[a, j * sw + b * dw, ch]
                        target[ch] = _clamped(total + bias[ch], low, high)
                if not in_place:  # a channels-first output: each channel's run of the row
                    _store_planes(row, out[img, i])
            task += i1 - i0

    return depthwise_rows


@numba.njit(**OPTIONS)
def _clamped(value, low, high):
    """``value`` clamped to ``[low, high]`` as by :func:`numpy.clip`: a NaN stays NaN (both
    comparisons are false for it). The loops' bias and bounds when there are none, -0.0
    (the sum's exact identity: -0.0 + -0.0 stays -0.0) and -inf, inf, change no bit."""
    if value < low:
        value = low
    if value > high:
        value = high
    return value


@numba.njit(**OPTIONS)
def _store_planes(row, target):
    """target[j, ch] = row[j, ch], channel by channel: ``target`` is a channels-first output's
    row, whose channels lie a plane apart and whose pixels are consecutive."""
    ow, c = row.shape
    for ch in range(c):
        for j in range(ow):
            target[j, ch] = row[j, ch]


@numba.njit(**OPTIONS)
def _next_band(x, rows, cols, left, band, task, last, oh, sh, band_rows):
    """``(img, i0, i1)``: the band of output rows ``i0 .. i1 - 1`` of image ``img`` that starts
    at task ``task`` (at most ``band_rows``, within the image and before ``last``), its padded
    input rows filled into ``band`` from its first row on (:func:`fill_last`)."""
    img, i0 = task // oh, task % oh
    i1 = min(oh, i0 + band_rows, i0 + last - task)
    fh = band.shape[0] - (band_rows - 1) * sh
    for p in range(i0 * sh, (i1 - 1) * sh + fh):
        fill_last(x, img, rows[p], cols, left, band[p - i0 * sh])
    return img, i0, i1


@numba.njit(fastmath={"contract"}, **OPTIONS)
def depthwise_gradient_rows(x, rows, cols, left, grad_out, sh, sw, dw, band_rows, total, first, last):
    """total[a, b, ch] += the sum over pixels of padded x at tap (a, b) times grad_out[..., ch]:
    :func:`depthwise_kernel_gradient` for multiplier 1 and row dilation 1, ``total`` (fh, fw, c).

    For each block of four neighbouring output pixels, their grad_out times each tap's
    pixels is added into the tap's sums (the four products summed first, then added: one
    load and store of the sums per four products), the channels innermost (vectorised).
    The sums, ``fh * fw * c`` values, stay in the core's first-level cache; the padded input
    rows are filled a band at a time as in :func:`depthwise_fixed`. One thread, against one
    pixel at a time: 8x56x56x144 3x3 0.96, 8x112x112x32 3x3 0.82, 8x14x14x672 5x5 0.68,
    8x56x56x96 7x7 0.78 (the loop reads x and grad_out once each: it is mostly waiting on
    memory). So, unlike the forward loop, it is compiled once for every kernel size: against
    a copy compiled per kernel size (the sizes as constants), one thread, 0.94-1.06 of the
    time on 8x56x56x144 3x3, 8x14x14x672 5x5, 8x28x28x240 5x5 s2, 1x112x112x96 3x3 s2 and
    8x56x56x96 7x7 (1.15 on 8x112x112x32 3x3), and each further kernel size no longer
    compiles for about a second on a fresh install.
    """
    _, oh, ow, c = grad_out.shape
    fh, fw = total.shape[0], total.shape[1]
    width = (ow - 1) * sw + (fw - 1) * dw + 1
    band = np.empty(((band_rows - 1) * sh + fh, width, c), total.dtype)
    blocked = ow - ow % 4
    task = first
    while task < last:
        img, i0, i1 = _next_band(x, rows, cols, left, band, task, last, oh, sh, band_rows)
        for i in range(i0, i1):
            window = band[(i - i0) * sh : (i - i0) * sh + fh]
            row = grad_out[img, i]
            for j in range(0, blocked, 4):
                g0, g1, g2, g3 = row[j], row[j + 1], row[j + 2], row[j + 3]
                for a in range(fh):
                    for b in range(fw):
                        sums, p0 = total[a, b], window[a, j * sw + b * dw]
                        p1, p2 = window[a, (j + 1) * sw + b * dw], window[a, (j + 2) * sw + b * dw]
                        p3 = window[a, (j + 3) * sw + b * dw]
                        for ch in range(c):
                            sums[ch] += ((p0[ch] * g0[ch] + p1[ch] * g1[ch]) + p2[ch] * g2[ch]) + p3[ch] * g3[ch]
            for j in range(blocked, ow):  # the last ow % 4 pixels, one at a time
                g = row[j]
                for a in range(fh):
                    for b in range(fw):
                        sums, pixels = total[a, b], window[a, j * sw + b * dw]
                        for ch in range(c):
                            sums[ch] += pixels[ch] * g[ch]
        task += i1 - i0


@numba.njit(**OPTIONS)
def depthwise_kernel_gradient(x, rows, cols, left, grad_out, sh, sw, dh, dw, runs_bytes, total, first, last):
    """total[a, b, q, ch] += the sum of padded x[..., ch] times grad_out[..., ch * m + q], over the rows;
    the running products take ``runs_bytes`` at most (or are not kept)."""
    n, oh, ow, _ = grad_out.shape
    fh, fw, m, c = total.shape
    ring, keys = last_ring(fh, fw, sw, dh, dw, ow, c, total)
    grad = np.empty((ow, m, c), total.dtype)
    # m = 1, stride 1: per tap, products summed along the rows in one flat run (items
    # j * c + ch), added up over j at the end; the channel loop alone is too short to vectorise.
    flat = m == 1 and sw == 1 and fh * fw * ow * c * total.itemsize <= runs_bytes
    runs = np.zeros((fh, fw, ow * c if flat else 0), total.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        if m == 1:  # the row as it is: one copy loop (a view would do, but not for every layout)
            copy_run(grad.reshape(ow, c), grad_out[img, i])
        else:
            for j in range(ow):
                for ch in range(c):
                    for q in range(m):
                        grad[j, q, ch] = grad_out[img, i, j, ch * m + q]
        for a in range(fh):
            line = ring[last_slot(x, img, i * sh + a * dh, rows, cols, left, ring, keys)]
            for b in range(fw):
                if flat:
                    pixels = line.reshape(line.size)[b * dw * c : b * dw * c + ow * c]
                    _madd1(runs[a, b], grad.reshape(ow * c), pixels)
                else:
                    _gradient_madd(total[a, b], line, grad, b * dw, sw)
    if flat:
        for a in range(fh):
            for b in range(fw):
                for j in range(ow):
                    _add_to(total[a, b, 0], runs[a, b, j * c : (j + 1) * c])


@numba.njit(**OPTIONS)
def _add_to(target, values):
    """target[t] += values[t] for every t."""
    for t in range(target.shape[0]):
        target[t] += values[t]
