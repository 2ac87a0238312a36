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
    ow = grad_out.shape[2]
    for task in range(first, last):
        base = (task - first) * ow
        _by_group(grad_out[task // oh, task % oh], target[:, base : base + ow])


@numba.njit(**OPTIONS)
def grouped_col2im_rows(grad_patches, fh, fw, sh, sw, dh, dw, oh, ow, rows, cols, top, h, ring, grad_x,
                        deferred, tags, first, last, share_start, share_end):
    """Add the patch gradients of output rows ``first .. last - 1`` (laid out as
    :func:`grouped_patch_rows` lays patches) onto the padded input rows they were read from,
    and each finished padded row onto x's gradient (through the index maps ``rows`` and
    ``cols``: several padded pixels may add onto one input pixel).

    ``ring`` ((fh - 1) * dh + 1, groups, width, cg), group-major like the forward's ring,
    holds the padded rows still open: slot ``y % span_h`` for row ``y``. It carries from one
    block to the next of this thread's share ``share_start .. share_end - 1`` (tasks in
    order; zeroed at its start). Row ``y`` is finished after output row ``i`` when no later
    output row reads it (``y < (i + 1) * sh``, or ``i`` is the image's last row). Rows that
    another thread may also add into x's gradient go to ``deferred`` instead, with
    ``(img, y)`` in ``tags`` (``tags[0, 0]`` counts them, from row 1), for the caller to fold
    after the threads: the rows still open at the share's end, and the padding rows that copy
    an input row of an image this share holds only in part (another thread folds that row).
    """
    g, _, length = grad_patches.shape
    cg = length // (fh * fw)
    span_h, width = ring.shape[0], ring.shape[2]
    run = fw * cg
    for task in range(first, last):
        img, i = task // oh, task % oh
        if task == share_start:
            _zero(ring.reshape(ring.size))
        base = (task - first) * ow
        for a in range(fh):
            for gi in range(g):
                flat = ring[(i * sh + a * dh) % span_h, gi].reshape(width * cg)
                for j in range(ow):
                    source = grad_patches[gi, base + j, a * run : (a + 1) * run]
                    if dw == 1:  # the row's fw taps are fw * cg consecutive values
                        into = flat[j * sw * cg : j * sw * cg + run]
                        for t in range(run):
                            into[t] += source[t]
                    else:
                        for b in range(fw):
                            start = (j * sw + b * dw) * cg
                            into = flat[start : start + cg]
                            for ch in range(cg):
                                into[ch] += source[b * cg + ch]
        split = img * oh < share_start or (img + 1) * oh > share_end
        finished = i * sh + span_h if i == oh - 1 else min((i + 1) * sh, i * sh + span_h)
        open_end = i * sh + span_h if task == share_end - 1 and i < oh - 1 else finished
        for y in range(i * sh, open_end):
            slot = ring[y % span_h]
            flat = slot.reshape(slot.size)
            border = y < top or y >= top + h
            if rows[y] >= 0 and (y >= finished or (split and border)):
                count = tags[0, 0] + 1
                tags[0, 0] = count
                tags[count, 0], tags[count, 1] = img, y
                into = deferred[count - 1].reshape(slot.size)
                for t in range(flat.shape[0]):
                    into[t] = flat[t]
            elif rows[y] >= 0:
                _fold_row(slot, cols, grad_x[img, rows[y]])
            _zero(flat)


@numba.njit(**OPTIONS)
def _zero(flat):
    """flat[:] = 0, as a loop (an array assignment in Numba compiles for seconds)."""
    for t in range(flat.shape[0]):
        flat[t] = 0


@numba.njit(**OPTIONS)
def _fold_row(slot, cols, target):
    """target[cols[p], gi * cg + ch] += slot[gi, p, ch] (cols[p] < 0: a zero, dropped)."""
    g, width, cg = slot.shape
    for p in range(width):
        s = cols[p]
        if s < 0:
            continue
        into = target[s]
        for gi in range(g):
            source = slot[gi, p]
            part = into[gi * cg : (gi + 1) * cg]
            for ch in range(cg):
                part[ch] += source[ch]


@numba.njit(**OPTIONS)
def fold_deferred(deferred, tags, rows, cols, grad_x):
    """Add the rows :func:`grouped_col2im_rows` deferred onto x's gradient, in order."""
    for t in range(tags[0, 0]):
        img, y = tags[t + 1, 0], tags[t + 1, 1]
        _fold_row(deferred[t], cols, grad_x[img, rows[y]])
