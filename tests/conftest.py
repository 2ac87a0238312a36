"""Shared test helpers."""

import pytest

from convlayer import bench


def _work_memory(call):
    """Run ``call()``; return (peak bytes traced beyond the arrays it returns, its result).

    NumPy reports its allocations to tracemalloc, so this is the work memory the call used
    (:func:`convlayer.bench.work_memory`, which also gives back the kept work buffer first).
    ``call`` runs once untraced before, so lazy imports (SciPy's FFT) and thread pools are
    not counted.
    """
    call()
    return bench.work_memory(call)


@pytest.fixture
def work_memory():
    """``used, result = work_memory(call)``: see :func:`_work_memory`."""
    return _work_memory
