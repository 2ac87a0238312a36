"""Compiled loops for the element-wise algorithms, when Numba is installed.

NumPy runs one loop per call: a depthwise or few-channel convolution written in NumPy
(:mod:`.shift`, :mod:`.depthwise`) makes a pass over the whole block for every kernel tap
and channel, and runs it on one core. The loops of :mod:`._loops` do the same arithmetic
one output row at a time, with the row's input and sums in the core's cache, on every core
(the thread pool of :mod:`.parallel`): on the benchmark suite's layers they are 3-10x faster
than the NumPy paths. ``shift``, ``depthwise`` and ``im2col`` use them when :func:`enabled`
is true, and their NumPy code otherwise: the results agree within rounding (the tests run
both); Winograd's transforms exist only as compiled loops.

This module holds the switch (:func:`enabled`, :func:`set_enabled`, :func:`use_compiled`),
the memory test (:func:`fits`) and the runners: :func:`run_loop` shares a loop's rows among
the threads, :func:`run_blocks` runs blocks around BLAS products with BLAS on one thread.
Each algorithm's wrapper around its loops lives beside its NumPy code.

Numba is a dependency of convlayer (so ``pip install convlayer`` gives these speeds), yet
the NumPy code stays for where it cannot be imported (no wheel for the platform, or a NumPy
newer than the installed Numba supports): :func:`enabled` is then false. Numba is imported
the first time a convolution asks :func:`enabled`, not at ``import convlayer``. Each loop
is compiled on first use for its argument types and the machine code is cached on disk
(``cache=True``: in ``__pycache__`` beside :mod:`._loops`, or ``NUMBA_CACHE_DIR``), so a
compile happens once per installation and dtype: :func:`compile_seconds` reports the time
it took in this process (each compiling call counted whole, its one run included).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from contextlib import contextmanager

import numpy as np

from ..shapes import ConvGeometry
from . import parallel

# Per thread, beside its ring of rows, the loops hold at most: the depthwise weight tiles of
# every tap, sized for L2 (256 KiB: whole rows of c = 32 at 3x3 ran 1.2x faster than with
# 64 KiB), and the depthwise kernel gradient's running products (1 MiB).
TILE_BYTES = 2**18
RUNS_BYTES = 4 * TILE_BYTES
LOOP_EXTRA = TILE_BYTES + RUNS_BYTES

_state: dict = {"enabled": None, "loops": None, "compile_seconds": 0.0, "threadpools": None}
_blas = {"holders": 0, "limiter": None}  # see _one_blas_thread
_blas_lock = threading.Lock()


def enabled() -> bool:
    """Whether the compiled loops are used: Numba can be imported and they are not switched off."""
    if _state["enabled"] is None:
        _state["enabled"] = _numba_imports()
    return _state["enabled"]


def _numba_imports() -> bool:
    """Whether Numba is installed and imports: an installed Numba that does not (it refuses
    a NumPy newer than it supports with an ImportError) leaves the NumPy paths, not an error."""
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        import numba  # noqa: F401
    except Exception:  # ImportError, or whatever a broken install raises on import
        return False
    return True


def usable(*arrays: np.ndarray) -> bool:
    """Whether the compiled loops are :func:`enabled` and can read these arrays.

    Numba reads native-byte-order booleans, integers and float32/64; a big-endian or
    float16 input (rare) takes the NumPy path, which converts it block by block, rather
    than a whole converted copy of the input.
    """
    return enabled() and all(a.dtype.isnative and a.dtype.kind in "biuf" and a.dtype != np.float16
                             for a in arrays)


def fits(geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether the compiled loops' work memory for ``geom`` stays within ``budget`` bytes.

    Each thread holds a ring of ``span_h`` padded input rows (``2 fh - 1`` for
    :func:`._depthwise_loops.depthwise_fixed`'s band of one output row, more as the budget allows), a row of sums and a
    scratch row of the output, a kernel's worth of sums (gradients: ``fh fw c/groups k``,
    for a depthwise layer ``fh fw k``) and :data:`LOOP_EXTRA`; the loops do not split
    rows, so for images wide enough to pass the budget the NumPy code (which does) runs
    instead.
    """
    ring = max((geom.fh - 1) * geom.dilation[0] + 1, 2 * geom.fh - 1)
    width = geom.out_w * geom.strides[1] + (geom.fw - 1) * geom.dilation[1] + geom.strides[1]
    kernel = geom.fh * geom.fw * (geom.c // max(geom.groups, 1)) * geom.k  # a depthwise kernel: fh fw k
    items = ring * width * geom.c + 3 * geom.out_w * geom.k + kernel
    return parallel.thread_count() * (items * itemsize + LOOP_EXTRA) <= budget


def set_enabled(flag: bool) -> None:
    """Switch the compiled loops on (when Numba is installed) or off (NumPy paths throughout)."""
    _state["enabled"] = None if flag else False
    if flag and not enabled():
        raise ImportError("the compiled loops need Numba, which is not installed or does not import here: "
                          "pip install numba (a dependency of convlayer)")


@contextmanager
def use_compiled(flag: bool):
    """``with use_compiled(False):`` runs the NumPy paths; the setting is restored after.

    The setting is process-wide (like the memory budget): other threads see it too.
    """
    before = _state["enabled"]
    set_enabled(flag)
    try:
        yield
    finally:
        _state["enabled"] = before


def compile_seconds() -> float:
    """Seconds this process spent compiling (or loading from the cache) the loops it used."""
    return _state["compile_seconds"]


def loop(name: str):
    """The compiled loop ``name``, from :mod:`._loops`, :mod:`._depthwise_loops`,
    :mod:`._gemm_loops`, :mod:`._pool_loops`, :mod:`._layout_loops` or :mod:`._activation_loops`
    (imported now)."""
    found = _by_name.get(name)
    if found is not None:
        return found
    if _state["loops"] is None:
        from . import _activation_loops, _depthwise_loops, _gemm_loops, _layout_loops, _loops, _pool_loops

        _state["loops"] = (_loops, _depthwise_loops, _gemm_loops, _pool_loops, _layout_loops, _activation_loops)
    for module in _state["loops"]:
        if hasattr(module, name):
            _by_name[name] = getattr(module, name)
            return _by_name[name]
    raise AttributeError(f"no compiled loop {name!r}")


_by_name: dict = {}  # loop's name -> the loop, as loop() found it


def run_loop(name, tasks: int, *args, sums=None, work: "int | None" = None, then=None) -> None:
    """Run loop ``name`` (or the compiled loop itself) over rows ``0 .. tasks - 1``, shared
    among the threads of :mod:`.parallel`.

    Each thread takes one contiguous run of rows (its row ring is reused from row to row)
    and, with ``sums`` (a zeroed array), adds into a zeroed array of its own, added into
    ``sums`` at the end. ``work``, the multiply-adds of the whole run where the caller
    knows them, keeps a small run on this thread (:func:`.parallel.threads_for`). ``then``,
    ``(loop, *arguments)``, is a second compiled loop that each thread runs over its own
    rows right after the first, ``loop(*arguments, first, last)``, while they are in its
    core's cache (an activation over a layer's output rows). A run that compiled a loop for
    new argument types (or loaded it from the cache) counts as compile time, whole.
    """
    body = loop(name) if isinstance(name, str) else name
    loops = (body,) if then is None else (body, then[0])

    def rows(first, last, total=()):  # one thread's run: the loop, then ``then`` over the same rows
        body(*args, *total, first, last)
        if then is not None:
            then[0](*then[1:], first, last)

    threads = max(1, min(parallel.thread_count() if work is None else parallel.threads_for(work), tasks))
    if threads == 1:  # no parts to make: a small call's whole cost is its overhead (no context manager)
        known, start = _overloads(loops), time.perf_counter()
        rows(0, tasks, () if sums is None else (sums,))
        if _overloads(loops) > known:
            _state["compile_seconds"] += time.perf_counter() - start
        return
    shares = [(t * tasks // threads, (t + 1) * tasks // threads) for t in range(threads)]
    totals = [()] * threads if sums is None else [(sums,)] + [(np.zeros_like(sums),) for _ in shares[1:]]

    def worker(part):
        for index in part:
            rows(*shares[index], totals[index])

    with _compile_clock(*loops):
        parallel.run_parts(worker, list(range(threads)), threads)
    for (total,) in totals[1:] if sums is not None else ():
        sums += total


def _overloads(loops) -> int:
    """How many argument types ``loops`` are compiled for (a dict each: len() is free, .signatures is not)."""
    return sum(len(each.overloads) for each in loops)


@contextmanager
def _compile_clock(*loops):
    """Count the block's time as compile time if it compiled one of ``loops`` for new
    argument types (or loaded them from the cache): the whole call, its one run included."""
    known, start = _overloads(loops), time.perf_counter()
    yield
    if _overloads(loops) > known:
        _state["compile_seconds"] += time.perf_counter() - start


def blocked_gemm_ready() -> bool:
    """Whether :func:`run_blocks` can run: Numba and threadpoolctl are installed."""
    if _state["threadpools"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _state["threadpools"] = False
        else:
            _state["threadpools"] = ThreadpoolController()
    return enabled() and _state["threadpools"] is not False


def run_blocks(block, tasks: int, per_block: int, threads: int, *loops, fixed: bool = False,
               shares: bool = False) -> None:
    """Call ``block(first, last, thread)`` for tasks ``first .. last - 1`` in blocks of
    ``per_block``, on ``threads`` threads (``thread``: 0 .. threads - 1, for its buffers),
    with BLAS held to one thread (threadpoolctl; restored after). Blocks go to whichever
    thread is free next, or with ``fixed``, block ``b`` to thread ``b % threads`` (for sums
    that must come out the same every time), or with ``shares``, thread ``t`` takes the
    tasks of :func:`share` in order (for state carried from block to block). ``loops``: the
    compiled loops whose compile time this counts. Needs :func:`blocked_gemm_ready`.
    """
    starts = iter(range(0, tasks, per_block))  # next() hands out blocks: one at a time (GIL)

    def worker(part):
        for thread in part:
            if shares:
                start, end = share(tasks, threads, thread)
                mine = range(start, end, per_block)
            else:
                end = tasks
                mine = range(thread * per_block, tasks, threads * per_block) if fixed else starts
            for first in mine:
                block(first, min(first + per_block, end), thread)

    blocked_gemm_ready()  # loads threadpoolctl's controller on a first call
    with _one_blas_thread(), _compile_clock(*loops):
        parallel.run_parts(worker, list(range(threads)), threads)


def share(tasks: int, threads: int, thread: int) -> tuple[int, int]:
    """The tasks ``start .. end - 1`` of thread ``thread`` under :func:`run_blocks`'s ``shares``."""
    return thread * tasks // threads, (thread + 1) * tasks // threads


@contextmanager
def _one_blas_thread():
    """BLAS on one thread while any caller is inside; its threads back when the last leaves.

    The limit is process-wide: calls from several threads that each saved and restored it
    would interleave, and the last to leave could "restore" one thread for good. So the
    first caller in sets it and the last one out restores it; meanwhile every BLAS product
    in the process, a concurrent caller's too, runs on one thread.
    """
    with _blas_lock:
        if _blas["holders"] == 0:
            _release_blas_control()
            _blas["limiter"] = _state["threadpools"].limit(limits=1, user_api="blas")
            _release_blas_control()
        _blas["holders"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["holders"] -= 1
            if _blas["holders"] == 0:
                _release_blas_control()
                _blas["limiter"].restore_original_limits()
                _blas["limiter"] = None
                _release_blas_control()


def _release_blas_control() -> None:
    """Let the next thread that sets OpenBLAS's thread count be heard.

    threadpoolctl (from 3.8) lets one thread at a time set a pthreads OpenBLAS's thread
    count: the first to set it, until it is cleared; the others' settings are dropped
    without a word. :func:`_one_blas_thread`'s first caller in and last caller out can be
    different threads (a thread pool's), and the restore of the last one out was dropped:
    BLAS stayed on one thread for the rest of the process. So the control is cleared
    around each setting (threadpoolctl's ``clear_controlling_thread(force=True)``).
    """
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)  # before 3.8: every thread is heard
    if clear is not None:
        clear(force=True)
