"""Shared test helpers."""

import tracemalloc

import pytest

from convlayer.algorithms.buffers import release_work_buffers


def _work_memory(call):
    """Run ``call()``; return (peak bytes traced beyond the arrays it returns, its result).

    NumPy reports its allocations to tracemalloc, so this is the work memory the call used.
    A tuple result (a gradient triple) counts all its arrays as returned. ``call`` runs once
    untraced first, so lazy imports (SciPy's FFT) and thread pools are not counted.
    """
    call()
    release_work_buffers()  # what the call keeps for the next one counts as its work memory
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = result if isinstance(result, tuple) else (result,)
    return peak - sum(a.nbytes for a in returned), result


@pytest.fixture
def work_memory():
    """``used, result = work_memory(call)``: see :func:`_work_memory`."""
    return _work_memory
