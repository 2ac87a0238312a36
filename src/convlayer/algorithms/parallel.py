"""Both cores for the element-wise work: a small thread pool over independent blocks.

NumPy's element-wise loops (the tap products of :mod:`.shift` and :mod:`.depthwise`) run on
one core, but they release the GIL, so two Python threads working on different blocks of
the output run at the same time. Each worker owns its work buffer and writes its own blocks
of the output, so nothing is shared but read-only input. Matrix products are left to BLAS,
which has threads of its own: running Python threads beside it only makes them compete.

Measured on a shared 2-core machine: at a quiet moment the depthwise 8x112x112x32 layer takes
0.55-0.6 of its one-thread time with 2 threads; with other jobs on both cores, about the same
time as one thread (no gain, no loss).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Sequence

import numpy as np

_MAX_THREADS = 4  # element-wise work is memory-bound: more threads than this buy little

_state: dict = {"pool": None, "workers": 0}  # the pool and how many threads it has
_lock = threading.Lock()


def thread_count() -> int:
    """How many threads element-wise work uses: the CPUs this process may run on, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_THREADS))


# Multiply-adds below which element-wise work stays on one thread (a compiled loop does
# about 10^4 multiply-adds a microsecond on one core). Handing a part to the pool and waiting
# for it costs 60-80 us whenever the other core has gone idle (a halted core takes that long
# to wake; 5-20 us back to back), and inside a network that core is shared with OpenBLAS's
# threads, which keep spinning after each product. Measured through convlayer.onnx, fastest
# of four rotations, 2**20 against 2**22: mobilenet_v2 batch 1 14.3 -> 13.5 ms, batch 8 99.0
# -> 95.8; efficientnet_b0 26.4 -> 24.7 and 159.3 -> 159.3; resnet18 31.1 -> 31.7 and 202 ->
# 186. The speed suite's element-wise layers are all above it (8x112x112x32 depthwise: 2**24.8).
PARALLEL_MIN_WORK = 2**22


def threads_for(work: int) -> int:
    """:func:`thread_count`, or 1 for less than :data:`PARALLEL_MIN_WORK` multiply-adds."""
    return 1 if work < PARALLEL_MIN_WORK else thread_count()


def run_parts(worker: Callable[[Sequence], None], items: Sequence, threads: int) -> None:
    """Call ``worker(part)`` on ``threads`` interleaved parts of ``items``, in parallel.

    With one thread, or fewer than two items, everything runs here, in this thread.
    Exceptions raised by a worker are raised here, after every worker has stopped (the
    workers write into buffers the caller lends them, which must not be reused while a
    worker still runs); the workers run under the caller's ``np.errstate``, callback
    included (NumPy keeps it per thread).
    """
    threads = min(threads, len(items))
    if threads <= 1:
        worker(items)
        return
    pool = _pool(threads)
    settings, callback = np.geterr(), np.geterrcall()

    def with_settings(part):
        with np.errstate(call=callback, **settings):
            worker(part)

    futures = [pool.submit(with_settings, items[i::threads]) for i in range(1, threads)]
    try:
        worker(items[0::threads])  # this thread takes a share too
    finally:
        wait(futures)
    for future in futures:
        future.result()


def _pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool, created on first use (and again if more threads are needed)."""
    with _lock:  # two first callers at once would each make one
        if _state["workers"] < threads - 1:
            _state["pool"] = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="convlayer")
            _state["workers"] = threads - 1
        return _state["pool"]
