"""Compiled loops for the element-wise algorithms, when Numba is installed.

NumPy runs one loop per call: a depthwise or few-channel convolution written in NumPy
(:mod:`.shift`, :mod:`.depthwise`) makes a pass over the whole block for every kernel tap
and channel, and runs it on one core. The loops of :mod:`._loops` do the same arithmetic
one output row at a time, with the row's input and sums in the core's cache, on every core
(the thread pool of :mod:`.parallel`): on the speed issue's shapes they are 3-10x faster than the NumPy
paths. ``shift`` and ``depthwise`` use them when :func:`enabled` is true, and their NumPy
code otherwise: the results agree within rounding (the tests run both).

Numba is optional (``pip install convlayer[fast]``); it is imported the first time a loop
runs, not at ``import convlayer``. Each loop is compiled on first use for its argument
types and the machine code is cached on disk (``cache=True``: in ``__pycache__`` beside
:mod:`._loops`, or ``NUMBA_CACHE_DIR``), so a compile happens once per installation and
dtype: :func:`compile_seconds` reports the time it took in this process (each compiling
call counted whole, its one run included).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from contextlib import contextmanager

import numpy as np

from ..shapes import ConvGeometry
from . import im2col, parallel

_state: dict = {"enabled": None, "loops": None, "compile_seconds": 0.0}


def enabled() -> bool:
    """Whether the compiled loops are used: Numba can be imported and they are not switched off."""
    if _state["enabled"] is None:
        _state["enabled"] = importlib.util.find_spec("numba") is not None
    return _state["enabled"]


def usable(*arrays: np.ndarray) -> bool:
    """Whether the compiled loops are :func:`enabled` and can read these arrays.

    Numba reads native-byte-order booleans, integers and float32/64; a big-endian or
    float16 input (rare) takes the NumPy path, which converts it block by block, rather
    than a whole converted copy of the input.
    """
    return enabled() and all(a.dtype.isnative and a.dtype.kind in "biuf" and a.dtype != np.float16
                             for a in arrays)


# Per thread, beyond the rows below: the depthwise weight tiles (256 KiB at most) and the
# depthwise kernel gradient's running products (1 MiB at most), in :mod:`._loops`.
LOOP_EXTRA = 5 * 2**18


def fits(geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether the compiled loops' work memory for ``geom`` stays within ``budget`` bytes.

    Each thread holds a ring of ``span_h`` padded input rows (``2 fh - 1`` for
    :func:`._loops.depthwise_fixed`, which keeps most rows twice), a row of sums and a
    scratch row of the output, a kernel's worth of sums (gradients) and :data:`LOOP_EXTRA`;
    the loops do not split rows, so for images wide enough to pass the budget the NumPy
    code (which does) runs instead.
    """
    ring = max((geom.fh - 1) * geom.dilation[0] + 1, 2 * geom.fh - 1)
    width = geom.out_w * geom.strides[1] + (geom.fw - 1) * geom.dilation[1] + geom.strides[1]
    items = ring * width * geom.c + 3 * geom.out_w * geom.k + geom.fh * geom.fw * geom.c * geom.k
    return parallel.thread_count() * (items * itemsize + LOOP_EXTRA) <= budget


def set_enabled(flag: bool) -> None:
    """Switch the compiled loops on (when Numba is installed) or off (NumPy paths throughout)."""
    _state["enabled"] = None if flag else False
    if flag and not enabled():
        raise ImportError("the compiled loops need Numba: pip install numba (or convlayer[fast])")


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
    """The compiled loop ``name``, from :mod:`._loops` or :mod:`._gemm_loops` (imported now)."""
    if _state["loops"] is None:
        from . import _loops, _gemm_loops

        _state["loops"] = (_loops, _gemm_loops)
    for module in _state["loops"]:
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"no compiled loop {name!r}")


def run(name, tasks: int, *args, sums=None) -> None:
    """Run loop ``name`` (or the compiled loop itself) over rows ``0 .. tasks - 1``, shared
    among the threads of :mod:`.parallel`.

    Each thread takes one contiguous run of rows (its row ring is reused from row to row)
    and, with ``sums`` (a zeroed array), adds into a zeroed array of its own, added into
    ``sums`` at the end. A run that compiled the loop for new argument types (or loaded it
    from the cache) counts as compile time, whole.
    """
    body = loop(name) if isinstance(name, str) else name
    threads = max(1, min(parallel.thread_count(), tasks))
    shares = [(t * tasks // threads, (t + 1) * tasks // threads) for t in range(threads)]
    totals = [()] * threads if sums is None else [(sums,)] + [(np.zeros_like(sums),) for _ in shares[1:]]

    def worker(part):
        for index in part:
            body(*args, *totals[index], *shares[index])

    with _compile_clock(body):
        parallel.run(worker, list(range(threads)), threads)
    for (total,) in totals[1:] if sums is not None else ():
        sums += total


@contextmanager
def _compile_clock(*loops):
    """Count the block's time as compile time if it compiled one of ``loops`` for new
    argument types (or loaded them from the cache): the whole call, its one run included."""
    known = sum(len(each.signatures) for each in loops)
    start = time.perf_counter()
    yield
    if sum(len(each.signatures) for each in loops) > known:
        _state["compile_seconds"] += time.perf_counter() - start


def _maps(geom: ConvGeometry, pad_mode: str):
    """The row and column index maps, and the padding before the first column."""
    return (*im2col.index_maps(geom, pad_mode), geom.pads[1][0])


def direct(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` with the groups=1 correlation; arguments as for :func:`.shift.correlate`."""
    rows, cols, left = _maps(geom, pad_mode)
    weights = np.ascontiguousarray(kernel, out.dtype)
    run("direct", geom.n * geom.out_h, x, rows, cols, left, weights, *geom.strides, *geom.dilation, out)
    return out


def depthwise(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` with the depthwise correlation; arguments as for :func:`.depthwise.correlate`."""
    rows, cols, left = _maps(geom, pad_mode)
    multiplier = geom.k // geom.c
    by_tap = kernel[:, :, 0, :].reshape(geom.fh, geom.fw, geom.c, multiplier).transpose(0, 1, 3, 2)
    weights = np.ascontiguousarray(by_tap, out.dtype)  # (fh, fw, multiplier, c): channels innermost
    if multiplier == 1 and geom.dilation[0] == 1 and geom.c % FIXED_CHANNELS == 0:
        body = loop("depthwise_fixed")(geom.fh, geom.fw, geom.c)
        run(body, geom.n * geom.out_h, x, rows, cols, left, weights[:, :, 0], *geom.strides, geom.dilation[1], out)
        return out
    run("depthwise", geom.n * geom.out_h, x, rows, cols, left, weights, *geom.strides, *geom.dilation, out)
    return out


# Depthwise layers whose channel count is a multiple of this get a loop compiled for their
# kernel size and channel count (:func:`._loops.depthwise_fixed`, about a second each, once
# per installation): the layers of real networks, not every odd count a caller might try.
FIXED_CHANNELS = 8


def direct_kernel_gradient(x, geom: ConvGeometry, pad_mode: str, grad_out, dtype) -> np.ndarray:
    """The groups=1 kernel gradient, (fh, fw, c, k), as :func:`.shift.kernel_gradient` computes it."""
    rows, cols, left = _maps(geom, pad_mode)
    grad = np.zeros((geom.fh, geom.fw, geom.c, geom.k), dtype)
    run("direct_kernel_gradient", geom.n * geom.out_h, x, rows, cols, left, grad_out, *geom.strides,
         *geom.dilation, sums=grad)
    return grad


def depthwise_kernel_gradient(x, geom: ConvGeometry, pad_mode: str, grad_out, dtype) -> np.ndarray:
    """The depthwise kernel gradient, (fh, fw, 1, k), as :func:`.depthwise.kernel_gradient` does."""
    rows, cols, left = _maps(geom, pad_mode)
    multiplier = geom.k // geom.c
    grad = np.zeros((geom.fh, geom.fw, multiplier, geom.c), dtype)
    run("depthwise_kernel_gradient", geom.n * geom.out_h, x, rows, cols, left, grad_out, *geom.strides,
         *geom.dilation, sums=grad)
    return grad.transpose(0, 1, 3, 2).reshape(geom.fh, geom.fw, 1, geom.k)


# im2col in row blocks on every core (:func:`im2col_rows`): patch rows per block, and the
# fewest patch rows for which im2col takes them. Measured, blocks against one product:
# 4096 rows (64x8x8x1, 3x3) 0.22 against 0.13 ms; 16384 rows (4x64x64x3) 0.35 against 0.58.
ROWS_PER_BLOCK = 2048
ROWS_MIN = 2**13


def blocked_gemm_ready() -> bool:
    """Whether :func:`im2col_rows` can run: Numba and threadpoolctl are installed."""
    if _state.get("threadpools") is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _state["threadpools"] = False
        else:
            _state["threadpools"] = ThreadpoolController()
    return enabled() and _state["threadpools"] is not False


def im2col_rows(x, weights: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
                budget: int) -> np.ndarray:
    """Fill ``out`` with the groups=1 correlation, im2col block by block on every thread.

    Each thread fills a block of about :data:`ROWS_PER_BLOCK` patch rows (whole output
    rows, :func:`._loops.patch_rows`) and multiplies it by ``weights`` ((fh fw c, k)) into
    the output's rows, taking blocks from a shared counter. BLAS runs on one thread
    meanwhile (threadpoolctl, as scikit-learn does around its own threads) and is given
    back its threads after: OpenBLAS threads the tall, narrow product of a stem layer
    poorly (123 GFLOP/s on 2 cores against 94 on one), and a block stays in the core's
    cache between its fill and its product. Measured on the 7x7 stride-2 stem: 13.4-15.5
    ms against 20-22 for one patch matrix and one product (same process).
    """
    rows, cols, left = _maps(geom, pad_mode)
    threads = parallel.thread_count()
    length, k = weights.shape
    per_row = geom.out_w * (length + k) * out.itemsize  # a block's patches and product
    per_block = max(1, min(ROWS_PER_BLOCK // max(geom.out_w, 1), budget // (threads * per_row)))
    tasks = geom.n * geom.out_h
    flat_out = out.reshape(tasks * geom.out_w, k) if out.flags.c_contiguous else None
    fill = loop("patch_rows")
    buffers = [(np.empty((per_block * geom.out_w, length), out.dtype),
                np.empty((per_block * geom.out_w, k), out.dtype)) for _ in range(threads)]

    def block(first, last, thread):
        patches, product = buffers[thread]
        count = (last - first) * geom.out_w
        fill(x, rows, cols, left, geom.fh, geom.fw, *geom.strides, *geom.dilation, geom.out_h,
             geom.out_w, patches, first, last)
        if flat_out is not None:
            np.matmul(patches[:count], weights, out=flat_out[first * geom.out_w : last * geom.out_w])
            return
        np.matmul(patches[:count], weights, out=product[:count])
        for task in range(first, last):  # a strided output (channels-first): row by row
            row = product[(task - first) * geom.out_w : (task - first + 1) * geom.out_w]
            out[task // geom.out_h, task % geom.out_h] = row

    run_blocks(block, tasks, per_block, threads, fill)
    return out


def run_blocks(block, tasks: int, per_block: int, threads: int, *loops, fixed: bool = False) -> None:
    """Call ``block(first, last, thread)`` for tasks ``first .. last - 1`` in blocks of
    ``per_block``, on ``threads`` threads (``thread``: 0 .. threads - 1, for its buffers),
    with BLAS held to one thread (threadpoolctl; restored after). Blocks go to whichever
    thread is free next, or with ``fixed``, block ``b`` to thread ``b % threads`` (for sums
    that must come out the same every time). ``loops``: the compiled loops whose compile
    time this counts. Needs :func:`blocked_gemm_ready`.
    """
    starts = iter(range(0, tasks, per_block))  # next() hands out blocks: one at a time (GIL)

    def worker(part):
        for thread in part:
            mine = range(thread * per_block, tasks, threads * per_block) if fixed else starts
            for first in mine:
                block(first, min(first + per_block, tasks), thread)

    blocked_gemm_ready()  # loads threadpoolctl's controller on a first call
    with _one_blas_thread(), _compile_clock(*loops):
        parallel.run(worker, list(range(threads)), threads)


_blas = {"holders": 0, "limiter": None}
_blas_lock = threading.Lock()


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
            _blas["limiter"] = _state["threadpools"].limit(limits=1, user_api="blas")
        _blas["holders"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["holders"] -= 1
            if _blas["holders"] == 0:
                _blas["limiter"].restore_original_limits()
                _blas["limiter"] = None
