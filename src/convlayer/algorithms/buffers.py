"""The work-memory budget and the chunk plan that keeps a convolution inside it.

A convolution's output and input are the user's; everything else it allocates (the padded
slab of input rows, the patch matrix, the product before it is written out) is *work
memory*. Work memory is bounded by a budget, 256 MiB unless set otherwise, whatever the
input size: the output is computed in blocks of images, output rows and, for very wide
images, output columns, each block's work memory within the budget.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, NamedTuple

import numpy as np

from .._args import as_int

DEFAULT_BUDGET = 256 * 2**20  # bytes

# Buffers below this size are left to malloc, which reuses freed memory of that size anyway
# (glibc maps only larger blocks fresh from the OS, from 32 MiB at the most).
KEEP_FROM = 4 * 2**20

# A block that one core works through many times over (shift's taps sweeping a slab and its
# sums; Winograd's transform, 16 products and inverse transform) is kept near this size, to
# stay in the core's cache: measured best at 2 MiB per thread for both (shift: 0.25 MiB
# blocks take 3x as long, 4 MiB 1.3x; Winograd on the speed suite's three 3x3 layers, blocks
# of 1, 2, 4 and 8 MiB: 2 MiB best on all three).
CACHE_BLOCK_BYTES = 2**21

_state = {"budget": DEFAULT_BUDGET}  # process-wide, like NumPy's print options
_held: dict = {"buffer": None, "busy": False}  # one kept buffer per process
_lock = threading.Lock()


def get_memory_budget() -> int:
    """The work-memory budget in bytes (default 256 MiB)."""
    return _state["budget"]


def set_memory_budget(nbytes: int) -> int:
    """Set the work-memory budget in bytes; return the previous one.

    The budget bounds the temporary buffers of a convolution (padded slab, patch matrix,
    product), not its input or output. A block of one output pixel is always allowed, so a
    tiny budget slows a call down but never fails it.

    >>> old = set_memory_budget(64 * 2**20)
    >>> _ = set_memory_budget(old)
    """
    nbytes = as_int("nbytes", nbytes, minimum=1)
    previous, _state["budget"] = _state["budget"], nbytes
    _drop_kept_above(nbytes)
    return previous


@contextlib.contextmanager
def memory_budget(nbytes: int) -> Iterator[int]:
    """Use ``nbytes`` as the work-memory budget inside a ``with`` block.

    >>> with memory_budget(16 * 2**20):
    ...     get_memory_budget()
    16777216
    """
    previous = set_memory_budget(nbytes)
    try:
        yield nbytes
    finally:
        _state["budget"] = previous
        _drop_kept_above(previous)


@contextlib.contextmanager
def work_buffer(items: int, dtype) -> Iterator[np.ndarray]:
    """A 1-D work array of ``items`` elements of ``dtype``, reused from call to call.

    The process keeps the bytes of its last large buffer (at least :data:`KEEP_FROM`, at
    most the budget) and lends them to the next call that fits, so a convolution called in
    a loop does not pay the OS's page faults every time: measured on the 8x56x56x64 layer,
    the patch copy takes half the time into kept memory. While the buffer is lent out
    (a nested call, another thread), callers get fresh arrays: at most one budget's worth
    is ever kept. The contents are undefined.
    """
    dtype = np.dtype(dtype)
    nbytes = items * dtype.itemsize
    with _lock:
        lend = KEEP_FROM <= nbytes <= _state["budget"] and not _held["busy"]
        if lend:
            kept = _held["buffer"]
            if kept is None or kept.nbytes < nbytes or kept.nbytes > _state["budget"]:
                _held["buffer"] = None  # let the old bytes go before taking new ones
                _held["buffer"] = kept = np.empty(nbytes, np.uint8)
            _held["busy"] = True
    if not lend:
        yield np.empty(items, dtype)
        return
    try:
        yield kept[:nbytes].view(dtype)
    finally:
        _held["busy"] = False


def _drop_kept_above(nbytes: int) -> None:
    """Give back a kept buffer larger than a new budget (unless it is lent out right now)."""
    with _lock:
        kept = _held["buffer"]
        if kept is not None and kept.nbytes > nbytes and not _held["busy"]:
            _held["buffer"] = None


def release_work_buffers() -> None:
    """Give back the work memory kept between calls (see :func:`work_buffer`)."""
    with _lock:
        _held["buffer"] = None


def kept_bytes() -> int:
    """Bytes of work memory kept between calls (0 when none is kept)."""
    with _lock:
        kept = _held["buffer"]
        return 0 if kept is None else kept.nbytes


class Block(NamedTuple):
    """A block of the output: images ``n0:n1``, rows ``r0:r1``, columns ``c0:c1``."""

    n0: int
    n1: int
    r0: int
    r1: int
    c0: int
    c1: int


def plan_blocks(
    n: int, out_h: int, out_w: int, cost: Callable[[int, int, int], int], budget: int
) -> tuple[int, int, int]:
    """Largest block (images, rows, columns) whose work memory ``cost`` fits ``budget``.

    Whole images are preferred, then whole rows; a block is never smaller than one pixel.
    ``cost(images, rows, cols)`` must grow with each argument.
    """
    if cost(1, out_h, out_w) <= budget:
        per_image = max(cost(1, out_h, out_w), 1)
        return max(1, min(n, budget // per_image)), out_h, out_w
    if cost(1, 1, out_w) <= budget:
        return 1, _largest(lambda rows: cost(1, rows, out_w), out_h, budget), out_w
    return 1, 1, _largest(lambda cols: cost(1, 1, cols), out_w, budget)


def _largest(cost: Callable[[int], int], upper: int, budget: int) -> int:
    """Largest m in [1, upper] with cost(m) <= budget (1 if none), by bisection."""
    low, high = 1, upper
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def blocks(n: int, out_h: int, out_w: int, size: tuple[int, int, int]) -> Iterator[Block]:
    """Cover the output ``(n, out_h, out_w)`` with blocks of at most ``size``."""
    nb, rb, cb = size
    for n0 in range(0, n, nb):
        for r0 in range(0, out_h, rb):
            for c0 in range(0, out_w, cb):
                yield Block(n0, min(n0 + nb, n), r0, min(r0 + rb, out_h), c0, min(c0 + cb, out_w))
