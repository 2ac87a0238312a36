"""The compiled transposing copy of :func:`.layout.write_back`: a chunk's channels-last
result into the caller's channels-first planes.

A task is a run of :data:`ROWS` pixels of one image: for each channel in turn, the run's
values of that channel (one from each of the pixels' rows, all in the core's cache after
the first channel) are stored as one contiguous run of the channel's plane: a 64-byte line
of float32. NumPy's copy of the same view, even in tiles, wrote a few values into each
plane at a time.
"""

from __future__ import annotations

import numba

from ._loops import OPTIONS

ROWS = 16  # pixels a task: one cache line of a float32 plane


@numba.njit(**OPTIONS)
def transpose_rows(values, planes, first, last):
    """``planes[img, ch, p] = values[img, p, ch]`` for the pixel runs ``first .. last - 1``
    (run ``t``: image ``t // runs``, pixels ``ROWS * (t % runs)`` on); ``values`` is (n,
    pixels, c), ``planes`` (n, c, pixels), both C-contiguous."""
    _, pixels, c = values.shape
    runs = (pixels + ROWS - 1) // ROWS
    for t in range(first, last):
        img, p0 = t // runs, ROWS * (t % runs)
        source, target = values[img], planes[img]
        if p0 + ROWS <= pixels:  # a whole run: the fixed-length loop vectorises
            for ch in range(c):
                run = target[ch, p0 : p0 + ROWS]
                for q in range(ROWS):
                    run[q] = source[p0 + q, ch]
        else:
            for ch in range(c):
                for p in range(p0, pixels):
                    target[ch, p] = source[p, ch]
