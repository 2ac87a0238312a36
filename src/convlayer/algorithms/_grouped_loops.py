"""Compiled loops of :mod:`.grouped`: the patch rows of a grouped convolution, laid out one
matrix per group (this module imports Numba, as :mod:`._loops` does, whose row helpers it
shares).

A *task* is one output row ``img * out_h + i``, as in :mod:`._loops`. The padded input
rows come from a ring of ``span_h`` slots, each filled once per image and row (at stride 1
each row serves ``fh`` output rows) and kept *group-major*, ``(groups, width, c/groups)``:
then tap row ``a`` of output pixel ``j`` in group ``gi`` is one contiguous run of
``fw * c/groups`` values (column dilation 1), copied in one loop long enough to vectorise.
"""

from __future__ import annotations

import numba
import numpy as np

from ._loops import OPTIONS, _ring_slot, fill_last


@numba.njit(**OPTIONS)
def grouped_patch_rows(x, rows, cols, left, fh, fw, sh, sw, dh, dw, oh, ow, patches, first, last):
    """patches[gi, (task - first) * ow + j, (a * fw + b) * cg + ch] = padded x at tap (a, b) of
    output pixel j, channel ``gi * cg + ch``, for the output rows ``first .. last - 1``.

    ``patches`` is (groups, rows * ow, fh * fw * cg); ``rows``, ``cols`` and ``left`` as for
    :func:`._depthwise_loops.depthwise` (-1 in an index map: a zero).
    """
    g, _, length = patches.shape
    cg = length // (fh * fw)
    c = x.shape[3]
    width = (ow - 1) * sw + (fw - 1) * dw + 1
    line = np.empty((width, c), patches.dtype)
    ring = np.empty(((fh - 1) * dh + 1, g, width, cg), patches.dtype)
    keys = np.full(ring.shape[0], -1)
    run = fw * cg
    for task in range(first, last):
        img, i = task // oh, task % oh
        base = (task - first) * ow
        for a in range(fh):
            slot, stale = _ring_slot(img, i * sh + a * dh, rows, keys)
            if stale:
                fill_last(x, img, rows[i * sh + a * dh], cols, left, line)
                _by_group(line, ring[slot])
            for gi in range(g):
                flat = ring[slot, gi].reshape(width * cg)
                for j in range(ow):
                    target = patches[gi, base + j, a * run : (a + 1) * run]
                    if dw == 1:  # the row's fw taps are fw * cg consecutive values
                        source = flat[j * sw * cg : j * sw * cg + run]
                        for t in range(run):
                            target[t] = source[t]
                    else:
                        for b in range(fw):
                            start = (j * sw + b * dw) * cg
                            source = flat[start : start + cg]
                            for ch in range(cg):
                                target[b * cg + ch] = source[ch]


@numba.njit(**OPTIONS)
def _by_group(line, slot):
    """slot[gi, p, ch] = line[p, gi * cg + ch]: a channels-last row made group-major."""
    g, width, cg = slot.shape
    for gi in range(g):
        target = slot[gi]
        for p in range(width):
            source = line[p, gi * cg : (gi + 1) * cg]
            into = target[p]
            for ch in range(cg):
                into[ch] = source[ch]


@numba.njit(**OPTIONS)
def grouped_grad_rows(grad_out, oh, target, first, last):
    """target[gi, (task - first) * ow + j, q] = grad_out[img, i, j, gi * kg + q] for the output
    rows (task ``img * oh + i``) ``first .. last - 1``: grad_out (any layout, any real dtype) as
    one contiguous matrix per group, in ``target``'s dtype."""
    g, _, kg = target.shape
    ow = grad_out.shape[2]
    for task in range(first, last):
        row = grad_out[task // oh, task % oh]
        base = (task - first) * ow
        for gi in range(g):
            into = target[gi, base : base + ow]
            for j in range(ow):
                source = row[j, gi * kg : (gi + 1) * kg]
                pixel = into[j]
                for q in range(kg):
                    pixel[q] = source[q]
