"""The compiled loops behind :mod:`.compiled` (this module imports Numba; nothing else does).

Every loop walks output rows ``first .. last - 1`` of the ``n * out_h`` (one thread's
share: the loops release the GIL, :mod:`.compiled` runs them on a thread pool) and, for
each kernel row ``a``, copies the padded input row that kernel row reads into a small
buffer of its own (``rows[i * sh + a * dh]`` and ``cols[p]`` are the index maps of
:func:`.slab.source_index`: the input index of each padded position, -1 for a zero), so
every pad mode works and the inner loops run over contiguous memory, converted to the
compute dtype on the way. Nothing bigger than a few rows is allocated.

- :func:`shift` (groups=1, few channels): the row buffer is planar and split by the
  column stride's phase, ``(c, sw, width)``, and the accumulator ``(k, out_w)``; tap
  ``(a, b)``, channel ``ch``, filter ``q`` adds ``w[a, b, ch, q]`` times a contiguous run
  of the row along the whole output row (one long vectorised loop), and the rows are
  transposed into the channels-last output at the end.
- :func:`shift_kernel_gradient`: the same walk, adding ``pixels * grad_out`` into the
  thread's own sums, which the caller adds up.
- the row fills, rings and copies every compiled loop shares (:func:`fill_last`,
  :func:`last_ring`, :func:`copy_run`, ...); the depthwise loops live in
  :mod:`._depthwise_loops`, im2col's and Winograd's in :mod:`._gemm_loops`, the activation
  passes in :mod:`._activation_loops`.

Inner loops index slices with ``range()`` variables, never ``start + j``: Numba must allow
for a negative index there, and the check per element stops vectorisation (6x slower,
measured). Sums are taken in the order of the taps, as plain arithmetic would, with fused
multiply-adds (``fastmath`` ``contract``), except in the kernel gradients' dot products
along a row (``_dot``), which may also reassociate. Neither flag lets the compiler assume
away NaN or infinity: they keep their meaning. A padded zero is multiplied like
any pixel, so an infinite weight over the padding gives NaN exactly as in im2col.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

OPTIONS = dict(cache=True, nogil=True)


def copy_run(target, source):
    """target[...] = source, for two arrays of one shape (``target`` C-contiguous)."""


@overload(copy_run)
def _copy_overload(target, source):
    if source.layout != "C" and source.ndim == 2:  # a row of pixels, maybe of a channels-first array
        def copy_rows(target, source):
            rows, cols = source.shape
            if source.strides[1] > source.strides[0]:  # channels a plane apart: read along each plane
                for col in range(cols):
                    for row in range(rows):
                        target[row, col] = source[row, col]
            else:
                for row in range(rows):
                    for col in range(cols):
                        target[row, col] = source[row, col]
        return copy_rows
    if source.layout != "C":  # a strided view: Numba's element-wise assignment
        def copy(target, source):
            target[...] = source
        return copy

    def flat_copy(target, source):  # one vectorised loop: 2x faster than ``target[...] = source``
        into, values = target.reshape(target.size), source.reshape(source.size)
        for t in range(into.shape[0]):
            into[t] = values[t]
    return flat_copy


def _row_of(out, img, i, scratch):
    """Output row ``(img, i)`` as one flat run, and whether it is the output itself.

    A C-contiguous ``out`` gives its own row (the sums go straight there); any other gives
    ``scratch`` (ow * k items), to be copied into ``out`` after.
    """


@overload(_row_of)
def _row_of_overload(out, img, i, scratch):
    if out.layout == "C":
        return lambda out, img, i, scratch: (out[img, i].reshape(out.shape[2] * out.shape[3]), True)
    return lambda out, img, i, scratch: (scratch, False)


@numba.njit(**OPTIONS)
def _fill_planar(x, img, r, cols, left, line):
    """line[ch, p % step, p // step] = x[img, r, cols[p], ch] (0 where row or column is padding).

    Split by phase (``step`` is the column stride), every tap reads a contiguous run:
    output column j of tap offset ``o`` reads position ``j * step + o``, which is
    ``line[ch, o % step, j + o // step]``. Positions ``left .. left + w - 1`` are the
    input's own columns in order (whatever the pad mode): only the border looks at ``cols``.
    """
    c, step, width = line.shape
    if r < 0:
        line[:] = 0
        return
    pixels = x[img, r]
    w = pixels.shape[0]
    for phase in range(step):
        # t_lo .. t_hi - 1: the input's own columns, a loop without branches (it vectorises)
        t_lo = min(width, max(0, (left - phase + step - 1) // step))
        t_hi = max(t_lo, min(width, (left + w - phase + step - 1) // step))
        for ch in range(c):  # channel by channel: 2x faster than pixel by pixel for c = 3
            target = line[ch, phase]
            source = pixels[t_lo * step + phase - left :, ch]
            for t in range(t_hi - t_lo):
                target[t_lo + t] = source[t * step]
            for t in range(width):
                if t_lo <= t < t_hi:
                    continue
                p = t * step + phase
                s = cols[p] if p < cols.shape[0] else -1
                target[t] = pixels[s, ch] if s >= 0 else 0


@numba.njit(**OPTIONS)
def fill_last(x, img, r, cols, left, line):
    """line[p, ch] = x[img, r, cols[p], ch] (0 where the row or the column is padding).

    Positions ``left .. left + w - 1`` are the input's own columns: one block copy.
    """
    width, c = line.shape
    flat = line.reshape(width * c)
    if r < 0:
        for t in range(width * c):
            flat[t] = 0
        return
    pixels = x[img, r]
    first, last = min(left, width), min(left + pixels.shape[0], width)
    copy_run(line[first:last], pixels[first - left : last - left])
    for p in range(width):  # the padding: element by element (a row assignment compiles for seconds)
        if first <= p < last:
            continue
        s = cols[p]
        target = line[p]
        if s >= 0:
            source = pixels[s]
            for ch in range(c):
                target[ch] = source[ch]
        else:
            for ch in range(c):
                target[ch] = 0


@numba.njit(**OPTIONS)
def _ring_slot(img, p, rows, keys):
    """The ring slot of padded row ``p`` of image ``img``, and whether it must be filled.

    A window of output rows reads ``span_h`` consecutive padded rows; a ring of that many
    slots (slot ``p % span_h``) fills each row once at stride 1 instead of once per kernel row.
    """
    slot = p % keys.shape[0]
    key = img * rows.shape[0] + p
    stale = keys[slot] != key
    keys[slot] = key
    return slot, stale


@numba.njit(**OPTIONS)
def _planar_slot(x, img, p, rows, cols, left, ring, keys):
    """The slot of ``ring`` that holds padded row ``p`` of image ``img``, planar (filled if stale).

    One helper per row layout: passing the fill function as an argument stops Numba from
    caching the loops on disk.
    """
    slot, stale = _ring_slot(img, p, rows, keys)
    if stale:
        _fill_planar(x, img, rows[p], cols, left, ring[slot])
    return slot


@numba.njit(**OPTIONS)
def _planar_ring(fh, fw, sw, dh, dw, ow, c, like):
    """An empty ring for :func:`_planar_slot` (``span_h`` rows of ``(c, sw, width)``) and its
    keys (-1: no row yet), in ``like``'s dtype."""
    ring = np.empty(((fh - 1) * dh + 1, c, sw, ow + ((fw - 1) * dw) // sw + 1), like.dtype)
    return ring, np.full(ring.shape[0], -1)


@numba.njit(**OPTIONS)
def last_ring(fh, fw, sw, dh, dw, ow, c, like):
    """An empty ring for :func:`last_slot` (``span_h`` rows of ``(width, c)``, as wide as
    the output row reads) and its keys (-1: no row yet), in ``like``'s dtype."""
    ring = np.empty(((fh - 1) * dh + 1, (ow - 1) * sw + (fw - 1) * dw + 1, c), like.dtype)
    return ring, np.full(ring.shape[0], -1)


@numba.njit(**OPTIONS)
def last_slot(x, img, p, rows, cols, left, ring, keys):
    """The slot of ``ring`` that holds padded row ``p`` of image ``img``, channels-last."""
    slot, stale = _ring_slot(img, p, rows, keys)
    if stale:
        fill_last(x, img, rows[p], cols, left, ring[slot])
    return slot


@numba.njit(fastmath={"contract"}, **OPTIONS)
def _axpy(acc, weight, src, start):
    """acc[j] += weight * src[start + j] for every j (fused multiply-adds where the CPU has them)."""
    run = src[start : start + acc.shape[0]]  # indices from range(): no negative-index checks
    for j in range(acc.shape[0]):
        acc[j] += weight * run[j]


@numba.njit(fastmath={"reassoc", "contract"}, **OPTIONS)
def _dot(a, src, start):
    """The sum over j of a[j] * src[start + j] (reassociated, to vectorise)."""
    run = src[start : start + a.shape[0]]
    total = a[0] * 0
    for j in range(a.shape[0]):
        total += a[j] * run[j]
    return total


@numba.njit(**OPTIONS)
def shift(x, rows, cols, left, w, sh, sw, dh, dw, out, first, last):
    """out[img, i, j, q] = sum over a, b, ch of w[a, b, ch, q] * padded x at the tap."""
    n, oh, ow, k = out.shape
    fh, fw, c, _ = w.shape
    ring, keys = _planar_ring(fh, fw, sw, dh, dw, ow, c, out)
    acc = np.empty((k, ow), out.dtype)
    scratch = np.empty(ow * k, out.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        acc[:] = 0
        for a in range(fh):
            line = ring[_planar_slot(x, img, i * sh + a * dh, rows, cols, left, ring, keys)]
            for b in range(fw):
                for ch in range(c):
                    for q in range(k):
                        o = b * dw
                        _axpy(acc[q], w[a, b, ch, q], line[ch, o % sw], o // sw)
        row, in_place = _row_of(out, img, i, scratch)
        for q in range(k):  # planes to channels-last, one filter at a time
            plane = acc[q]
            for j in range(ow):
                row[j * k + q] = plane[j]
        if not in_place:
            out[img, i] = row.reshape(ow, k)


@numba.njit(**OPTIONS)
def shift_kernel_gradient(x, rows, cols, left, grad_out, sh, sw, dh, dw, total, first, last):
    """total[a, b, ch, q] += the sum of padded x at tap (a, b) times grad_out[..., q], over the rows."""
    n, oh, ow, k = grad_out.shape
    fh, fw, c, _ = total.shape
    ring, keys = _planar_ring(fh, fw, sw, dh, dw, ow, c, total)
    grad = np.empty((k, ow), total.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        for j in range(ow):
            for q in range(k):
                grad[q, j] = grad_out[img, i, j, q]
        for a in range(fh):
            line = ring[_planar_slot(x, img, i * sh + a * dh, rows, cols, left, ring, keys)]
            for b in range(fw):
                for ch in range(c):
                    for q in range(k):
                        o = b * dw
                        total[a, b, ch, q] += _dot(grad[q], line[ch, o % sw], o // sw)


@numba.njit(**OPTIONS)
def column_sums(flat, width, total, first, last):
    """``total[t] += flat[r * width + t]`` for rows ``r = first .. last - 1`` of ``flat``,
    ``width`` items a row, into float64 sums (a bias gradient's channel sums over whole
    pixels: ``width`` is a multiple of the channel count). Four rows are added in float64
    before each load and store of the sums."""
    r = first
    while r + 4 <= last:
        a, b = flat[r * width : (r + 1) * width], flat[(r + 1) * width : (r + 2) * width]
        c, d = flat[(r + 2) * width : (r + 3) * width], flat[(r + 3) * width : (r + 4) * width]
        for t in range(width):
            total[t] += (np.float64(a[t]) + np.float64(b[t])) + (np.float64(c[t]) + np.float64(d[t]))
        r += 4
    for q in range(r, last):
        run = flat[q * width : (q + 1) * width]
        for t in range(width):
            total[t] += run[t]
