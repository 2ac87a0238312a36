"""The compiled loop of max pooling (:func:`convlayer.max_pool2d` and the passes that need its
maxima): each output row's windows in turn, the channels the vectorised innermost loop.

A window's taps that fall on padding are skipped (padding never wins, as in TensorFlow and
PyTorch); every window holds a real pixel (the geometry checks that). A NaN wins, as with
``numpy.maximum``: the largest of a window holding a NaN is NaN.
"""

from __future__ import annotations

import numba

from ._loops import OPTIONS


@numba.njit(**OPTIONS)
def max_rows(x, pool_h, pool_w, sh, sw, dh, dw, top, left, out, first, last):
    """out[img, i, j, ch] = the largest x[img, i sh - top + a dh, j sw - left + b dw, ch] over
    the taps (a, b) in the image, for output rows ``first .. last - 1`` of the ``n * out_h``."""
    _, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    for task in range(first, last):
        img, i = task // oh, task % oh
        target = out[img, i]
        r0 = i * sh - top
        a0, a1 = _taps_inside(r0, h, dh, pool_h)
        for j in range(ow):
            pixel = target[j]
            q0 = j * sw - left
            b0, b1 = _taps_inside(q0, w, dw, pool_w)
            started = False
            for a in range(a0, a1):
                row = x[img, r0 + a * dh]
                for b in range(b0, b1):
                    values = row[q0 + b * dw]
                    if not started:  # the window's first pixel in the image
                        for ch in range(c):
                            pixel[ch] = values[ch]
                        started = True
                        continue
                    for ch in range(c):
                        best, value = pixel[ch], values[ch]
                        pixel[ch] = value if value > best or value != value else best


@numba.njit(**OPTIONS)
def _taps_inside(start, size, dilation, taps):
    """``(first, stop)``: the taps ``t`` of ``taps`` whose ``start + t * dilation`` lies in
    ``0 .. size - 1`` (a pool far larger than the image walks the image, not the pool)."""
    first = max(0, -(start // dilation))  # the least t with start + t * dilation >= 0
    stop = min(taps, -((start - size) // dilation))  # beyond the greatest t below size
    return first, max(first, stop)
