"""How the suite times a call and measures its work memory.

Timing: after a warm-up call (for JAX, the compilation), rounds of a few consecutive calls
per contender, the order rotating from round to round; a contender leaves the rotation once
it has had about ``reps_time`` seconds (and at least two rounds), so a 300 ms call is not
repeated as often as a 1 ms one. The median call counts. Runs of consecutive calls, not
single calls interleaved: NumPy's OpenBLAS, PyTorch and XLA keep their idle threads
spinning for a while after each call, and a contender that starts while another library's
threads spin loses a core. So each run starts after ``SETTLE`` seconds of sleep, then
untimed calls for ``WARM_SECONDS`` (the contender's own threads and the CPUs wake up: right
after a pause the depthwise layer took 4 ms a call instead of 2), and lasts ``RUN`` calls or
``RUN_SECONDS``, whichever is longer (without the pause, PyTorch's 2-thread times came out
1.5-2x too slow on some shapes, one lost time slice per call). Compare the ratios, not the
milliseconds: a shared machine's speed drifts. PyTorch's two threads suffer most when other
work runs on the machine: its times were seen to snap to multiples of about 8 ms (a
scheduler slice).

Peak work memory is measured with :mod:`tracemalloc` in one more call (what conv2d
allocates beyond its output).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from typing import Callable

from ..algorithms.buffers import release_work_buffers

RUN = 3  # consecutive calls per contender and round, at least
RUN_SECONDS = 0.04  # and at least this long
SETTLE = 0.1  # seconds of sleep before each run: other libraries' idle threads stop spinning
WARM_SECONDS = 0.02  # then untimed calls for this long (at least one)
MIN_ROUNDS, MAX_ROUNDS = 2, 30


def time_calls(calls: "dict[str, Callable]", reps_time: float) -> dict[str, float]:
    """Median seconds per call of each callable (see the module's notes on timing)."""
    names = list(calls)
    samples: dict = {name: [] for name in names}
    for call in calls.values():
        call()  # warm-up: first-call costs (imports, thread pools, caches) are not counted
    for round_ in range(MAX_ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if round_ >= MIN_ROUNDS and sum(samples[name]) >= reps_time:
                continue  # it has had its time: a slow peer is not dragged along by a fast one
            samples[name].extend(_run(calls[name]))
        if round_ + 1 >= MIN_ROUNDS and min(sum(s) for s in samples.values()) >= reps_time:
            break
    return {name: statistics.median(values) for name, values in samples.items()}


def _run(call: Callable) -> list[float]:
    """One run of ``call``: settle, warm up, then ``RUN`` timed calls or ``RUN_SECONDS``."""
    time.sleep(SETTLE)
    warm_start = time.perf_counter()
    call()
    while time.perf_counter() - warm_start < WARM_SECONDS:
        call()
    seconds: list[float] = []
    run_start = 0.0
    while len(seconds) < RUN or time.perf_counter() - run_start < RUN_SECONDS:
        start = time.perf_counter()
        run_start = run_start or start
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def work_memory(call: Callable[[], object]) -> tuple[int, object]:
    """``(bytes, result)``: the peak that ``call()`` allocates beyond what it returns, and
    what it returns (tracemalloc; a tuple result counts all its arrays as returned).

    The work buffer that conv2d keeps between calls is given back first, so that the
    call's own allocation of it is counted. The tests measure with this too.
    """
    release_work_buffers()
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in (result if isinstance(result, tuple) else (result,)))
    return max(peak - returned, 0), result
