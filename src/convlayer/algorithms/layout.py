"""Channels-first arrays computed channels-last: one transposing copy in, one out.

``data_format="channels_first"`` hands the algorithms NHWC *views* of NCHW arrays: each
pixel's channels lie ``h * w`` items apart. The algorithms read and write such views
correctly, but slowly (a patch copy or an element-wise loop that strides across the whole
image for every channel, a matrix product written through a strided view): measured 2-15x
the channels-last time on the layers of real networks. NumPy transposes a whole image at
about half the speed of a plain copy, a small part of a convolution's time, so
:func:`chunks` plans chunks of images that are copied into C-contiguous NHWC buffers,
computed there, and copied back into the caller's layout, within the memory budget.
1x1 layers need none of this (:func:`.pointwise.correlate` multiplies NCHW images as they
lie).
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

# Of the budget, the share the channels-last copies of a chunk may take (the algorithm
# gets the rest for its own work).
SHARE = 0.5


class Chunk(NamedTuple):
    """Images ``n0 .. n1 - 1``, and the budget left to the algorithm beside their copies."""

    n0: int
    n1: int
    budget: int


def strided(*arrays: np.ndarray) -> bool:
    """Whether any of these (n, h, w, c) views is not C-contiguous (a channels-first array's
    view, or a slice)."""
    return any(not array.flags.c_contiguous for array in arrays)


def chunks(n: int, image_bytes: int, budget: int) -> "Iterator[Chunk] | None":
    """Chunks of images whose channels-last copies (``image_bytes`` an image: inputs and
    outputs together) take at most :data:`SHARE` of ``budget``; None when one image's do
    not fit (the algorithm then works on the views)."""
    room = int(budget * SHARE)
    if image_bytes > room:
        return None
    per_chunk = n if image_bytes == 0 else max(1, min(n, room // image_bytes))
    return (Chunk(n0, min(n0 + per_chunk, n), budget - per_chunk * image_bytes)
            for n0 in range(0, n, max(per_chunk, 1)))


def contiguous(view: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``view`` (itself when it already is)."""
    return np.ascontiguousarray(view)
