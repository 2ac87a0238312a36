"""The work-memory budget and the chunk plan that keeps a convolution inside it.

A convolution's output and input are the user's; everything else it allocates (the padded
slab of input rows, the patch matrix, the product before it is written out) is *work
memory*. Work memory is bounded by a budget, 256 MiB unless set otherwise, whatever the
input size: the output is computed in blocks of images, output rows and, for very wide
images, output columns, each block's work memory within the budget.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, NamedTuple

from .._args import as_int

DEFAULT_BUDGET = 256 * 2**20  # bytes

_state = {"budget": DEFAULT_BUDGET}  # process-wide, like NumPy's print options


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
