"""The compiled loops behind :mod:`.compiled` (this module imports Numba; nothing else does).

Every loop walks output rows ``first .. last - 1`` of the ``n * out_h`` (one thread's
share: the loops release the GIL, :mod:`.compiled` runs them on a thread pool) and, for
each kernel row ``a``, copies the padded input row that kernel row reads into a small
buffer of its own (``rows[i * sh + a * dh]`` and ``cols[p]`` are the index maps of
:func:`.im2col.source_index`: the input index of each padded position, -1 for a zero), so
every pad mode works and the inner loops run over contiguous memory, converted to the
compute dtype on the way. Nothing bigger than a few rows is allocated.

- :func:`direct` (groups=1, few channels): the row buffer is planar and split by the
  column stride's phase, ``(c, sw, width)``, and the accumulator ``(k, out_w)``; tap
  ``(a, b)``, channel ``ch``, filter ``q`` adds ``w[a, b, ch, q]`` times a contiguous run
  of the row along the whole output row (one long vectorised loop), and the rows are
  transposed into the channels-last output at the end.
- :func:`depthwise` (groups == c): channels-last, ``line[p, ch]``; the innermost loop runs
  over the channels, each with its own weight.
- :func:`direct_kernel_gradient`, :func:`depthwise_kernel_gradient`: the same walk, adding
  ``pixels * grad_out`` into the thread's own sums, which the caller adds up.

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

_OPTIONS = dict(cache=True, nogil=True)


@numba.njit(**_OPTIONS)
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
        for ch in range(c):  # channel by channel: 2x faster than pixel by pixel for c = 3
            target = line[ch, phase]
            for t in range(width):
                p = t * step + phase
                if left <= p < left + w:
                    target[t] = pixels[p - left, ch]
                else:
                    s = cols[p] if p < cols.shape[0] else -1
                    target[t] = pixels[s, ch] if s >= 0 else 0


@numba.njit(**_OPTIONS)
def _fill_last(x, img, r, cols, left, line):
    """line[p, ch] = x[img, r, cols[p], ch] (0 where the row or the column is padding).

    Positions ``left .. left + w - 1`` are the input's own columns: one block copy.
    """
    width, c = line.shape
    if r < 0:
        line[:] = 0
        return
    pixels = x[img, r]
    first, last = min(left, width), min(left + pixels.shape[0], width)
    line[first:last] = pixels[first - left : last - left]
    for p in range(width):
        if first <= p < last:
            continue
        s = cols[p]
        if s >= 0:
            line[p] = pixels[s]
        else:
            line[p] = 0


@numba.njit(**_OPTIONS)
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


@numba.njit(fastmath={"contract"}, **_OPTIONS)
def _axpy(acc, weight, src, start):
    """acc[j] += weight * src[start + j] for every j (fused multiply-adds where the CPU has them)."""
    run = src[start : start + acc.shape[0]]  # indices from range(): no negative-index checks
    for j in range(acc.shape[0]):
        acc[j] += weight * run[j]


@numba.njit(fastmath={"reassoc", "contract"}, **_OPTIONS)
def _dot(a, src, start):
    """The sum over j of a[j] * src[start + j] (reassociated, to vectorise)."""
    run = src[start : start + a.shape[0]]
    total = a[0] * 0
    for j in range(a.shape[0]):
        total += a[j] * run[j]
    return total


@numba.njit(fastmath={"contract"}, **_OPTIONS)
def _madd(acc, line, weights, start, step):
    """acc[j, q, ch] += line[start + j * step, ch] * weights[q, ch] for every j, q and ch."""
    ow, m, c = acc.shape
    if m == 1 and step == 1:  # one flat run: 1.4x faster than row by row (measured, c = 32)
        w = weights[0]
        flat, run = acc.reshape(ow * c), line[start : start + ow].reshape(ow * c)
        for j in range(ow):
            base = j * c
            for ch in range(c):
                flat[base + ch] += run[base + ch] * w[ch]
        return
    for j in range(acc.shape[0]):
        pixels = line[start + j * step]
        for q in range(acc.shape[1]):
            target, w = acc[j, q], weights[q]
            for ch in range(acc.shape[2]):
                target[ch] += pixels[ch] * w[ch]


@numba.njit(fastmath={"contract"}, **_OPTIONS)
def _gradient_madd(total, line, grad, start, step):
    """total[q, ch] += line[start + j * step, ch] * grad[j, q, ch], summed over j."""
    for j in range(grad.shape[0]):
        pixels = line[start + j * step]
        for q in range(grad.shape[1]):
            target, g = total[q], grad[j, q]
            for ch in range(grad.shape[2]):
                target[ch] += pixels[ch] * g[ch]


@numba.njit(**_OPTIONS)
def direct(x, rows, cols, left, w, sh, sw, dh, dw, out, first, last):
    """out[img, i, j, q] = sum over a, b, ch of w[a, b, ch, q] * padded x at the tap."""
    n, oh, ow, k = out.shape
    fh, fw, c, _ = w.shape
    width = ow + ((fw - 1) * dw) // sw + 1
    ring = np.empty(((fh - 1) * dh + 1, c, sw, width), out.dtype)
    keys = np.full(ring.shape[0], -1)
    acc = np.empty((k, ow), out.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        acc[:] = 0
        for a in range(fh):
            slot, stale = _ring_slot(img, i * sh + a * dh, rows, keys)
            if stale:
                _fill_planar(x, img, rows[i * sh + a * dh], cols, left, ring[slot])
            line = ring[slot]
            for b in range(fw):
                for ch in range(c):
                    for q in range(k):
                        o = b * dw
                        _axpy(acc[q], w[a, b, ch, q], line[ch, o % sw], o // sw)
        for j in range(ow):
            for q in range(k):
                out[img, i, j, q] = acc[q, j]


@numba.njit(**_OPTIONS)
def depthwise(x, rows, cols, left, w, sh, sw, dh, dw, out, first, last):
    """out[img, i, j, ch * m + q] = sum over a, b of w[a, b, q, ch] * padded x at the tap."""
    n, oh, ow, _ = out.shape
    fh, fw, m, c = w.shape
    width = (ow - 1) * sw + (fw - 1) * dw + 1
    ring = np.empty(((fh - 1) * dh + 1, width, c), out.dtype)
    keys = np.full(ring.shape[0], -1)
    acc = np.empty((ow, m, c), out.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        acc[:] = 0
        for a in range(fh):
            slot, stale = _ring_slot(img, i * sh + a * dh, rows, keys)
            if stale:
                _fill_last(x, img, rows[i * sh + a * dh], cols, left, ring[slot])
            line = ring[slot]
            for b in range(fw):
                _madd(acc, line, w[a, b], b * dw, sw)
        if m == 1:
            out[img, i] = acc.reshape(ow, c)
        else:
            for j in range(ow):
                for ch in range(c):
                    for q in range(m):
                        out[img, i, j, ch * m + q] = acc[j, q, ch]


@numba.njit(**_OPTIONS)
def direct_kernel_gradient(x, rows, cols, left, grad_out, sh, sw, dh, dw, total, first, last):
    """total[a, b, ch, q] += the sum of padded x at tap (a, b) times grad_out[..., q], over the rows."""
    n, oh, ow, k = grad_out.shape
    fh, fw, c, _ = total.shape
    width = ow + ((fw - 1) * dw) // sw + 1
    ring = np.empty(((fh - 1) * dh + 1, c, sw, width), total.dtype)
    keys = np.full(ring.shape[0], -1)
    grad = np.empty((k, ow), total.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        for j in range(ow):
            for q in range(k):
                grad[q, j] = grad_out[img, i, j, q]
        for a in range(fh):
            slot, stale = _ring_slot(img, i * sh + a * dh, rows, keys)
            if stale:
                _fill_planar(x, img, rows[i * sh + a * dh], cols, left, ring[slot])
            line = ring[slot]
            for b in range(fw):
                for ch in range(c):
                    for q in range(k):
                        o = b * dw
                        total[a, b, ch, q] += _dot(grad[q], line[ch, o % sw], o // sw)


@numba.njit(**_OPTIONS)
def depthwise_kernel_gradient(x, rows, cols, left, grad_out, sh, sw, dh, dw, total, first, last):
    """total[a, b, q, ch] += the sum of padded x[..., ch] times grad_out[..., ch * m + q], over the rows."""
    n, oh, ow, _ = grad_out.shape
    fh, fw, m, c = total.shape
    width = (ow - 1) * sw + (fw - 1) * dw + 1
    ring = np.empty(((fh - 1) * dh + 1, width, c), total.dtype)
    keys = np.full(ring.shape[0], -1)
    grad = np.empty((ow, m, c), total.dtype)
    for task in range(first, last):
        img, i = task // oh, task % oh
        for j in range(ow):
            for ch in range(c):
                for q in range(m):
                    grad[j, q, ch] = grad_out[img, i, j, ch * m + q]
        for a in range(fh):
            slot, stale = _ring_slot(img, i * sh + a * dh, rows, keys)
            if stale:
                _fill_last(x, img, rows[i * sh + a * dh], cols, left, ring[slot])
            line = ring[slot]
            for b in range(fw):
                _gradient_madd(total[a, b], line, grad, b * dw, sw)
