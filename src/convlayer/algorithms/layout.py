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

import functools
from typing import Iterator, NamedTuple

import numpy as np

from . import compiled, parallel

# Of the budget, the share the channels-last copies of a chunk may take (the algorithm
# gets the rest for its own work).
SHARE = 0.5

# write_back's tiles: output rows and channels per copy. Writing a chunk's NHWC result into
# NCHW planes in one NumPy assignment streams into every channel's plane at once; planes a
# multiple of 4 KiB apart (224 x 224 floats) then collide in the cache: 1x224x224x64 took
# 21.5 ms, 10.9 for 1x112x112x128, against 4.1 and 2.0 in tiles of 8 rows x 32 channels
# (8 x 16 rows or channels: 4.1-4.2; 32 x 16: 6.9). Small results are written in one go.
TILE_ROWS = 8
TILE_CHANNELS = 32
TILE_MIN_ITEMS = 2**16
# The compiled copy into channels-first planes (write_back) beat these tiles on every chunk
# measured, one thread: 1x112x112x96 1.24 -> 0.57 ms, 1x56x56x128 0.54 -> 0.22, 8x28x28x128
# 1.05 -> 0.40, 8x56x56x64 2.13 -> 0.82, 1x224x224x64 4.23 -> 1.86, 1x14x14x512 0.10 ->
# 0.02 (8x56x56x144 1.86 -> 1.83). Two threads from this many values (1x224x224x64 1.86 ->
# 1.15, 8x56x56x144 -> 1.16, 1x112x112x96 -> 0.50); below, the hand-off cost more than half
# (1x56x56x128 0.22 -> 0.24, 1x14x14x512 0.02 -> 0.16). contiguous's copies as well (see there).
COPY_PARALLEL_ITEMS = 2**20


# filters_first's and filters_last's tiles: filters and channels per copy. A channels-first kernel's gradient,
# (fh, fw, c, k) copied into PyTorch's (k, c, fh, fw) in one NumPy assignment, reads each
# filter's taps a whole (c, k) plane apart: 3x3x512x512 took 16.8 ms (a resnet50 layer's
# whole channels-last backward pass is 3.5), 3.1 in tiles of 128 filters x 32 channels
# (64 x 64: 3.6, 32 x 32: 4.0, 128 x 128: 9.3); 1x1x1024x2048 15.3 -> 2.5, 3x3x256x256
# 2.5 -> 0.75. Small kernels are copied in one go.
KERNEL_TILE_FILTERS = 128
KERNEL_TILE_CHANNELS = 32


def filters_first(hwio: np.ndarray) -> np.ndarray:
    """A C-contiguous ``(k, c, fh, fw)`` copy of a ``(fh, fw, c, k)`` kernel (any strides),
    tile by tile (:data:`KERNEL_TILE_FILTERS` x :data:`KERNEL_TILE_CHANNELS`)."""
    fh, fw, c, k = hwio.shape
    wanted = hwio.transpose(3, 2, 0, 1)
    if hwio.size < TILE_MIN_ITEMS or hwio.strides[3] >= max(hwio.strides[:3]):
        # small, or the filters already outermost in memory (a gradient computed filters
        # first: no copy at all, or each filter's taps and channels swapped within its own
        # run, 1.2 ms for 3x3x512x512 against 2.2 in tiles)
        return np.ascontiguousarray(wanted)
    out = np.empty((k, c, fh * fw), hwio.dtype)
    _reverse_axes(hwio.reshape(fh * fw, c, k), out)
    return out.reshape(k, c, fh, fw)


def filters_last(hwio: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a ``(fh, fw, c, k)`` kernel (itself when it is one), tile by
    tile where its filters lie outermost in memory (PyTorch's layout, or a gradient
    computed that way: one NumPy copy read each tap a whole filter apart, 17 ms for
    3x3x512x512)."""
    fh, fw, c, k = hwio.shape
    if hwio.size < TILE_MIN_ITEMS or hwio.flags.c_contiguous or hwio.strides[3] < max(hwio.strides[:3]):
        return np.ascontiguousarray(hwio)
    out = np.empty((fh * fw, c, k), hwio.dtype)
    _reverse_axes(hwio.transpose(3, 2, 0, 1).reshape(k, c, fh * fw), out)
    return out.reshape(fh, fw, c, k)


def _reverse_axes(source: np.ndarray, target: np.ndarray) -> None:
    """``target[i, j, l] = source[l, j, i]`` for 3-D arrays, in tiles of
    :data:`KERNEL_TILE_FILTERS` along the outer axes and :data:`KERNEL_TILE_CHANNELS` along
    the middle one (a kernel's taps, the short axis, take one tile)."""
    first, middle, last = source.shape
    outer, inner = KERNEL_TILE_FILTERS, KERNEL_TILE_CHANNELS
    for i0 in range(0, first, outer):
        for j0 in range(0, middle, inner):
            for l0 in range(0, last, outer):
                part = source[i0 : i0 + outer, j0 : j0 + inner, l0 : l0 + outer]
                target[l0 : l0 + outer, j0 : j0 + inner, i0 : i0 + outer] = part.transpose(2, 1, 0)


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
    """A C-contiguous copy of ``view`` (itself when it already is): from
    :data:`COPY_PARALLEL_ITEMS` values, each image's rows in one part a thread (NumPy's copy
    lets go of the GIL). Channels-first views, one thread against two: 1x112x112x96
    0.77 -> 0.58 ms, 8x56x56x144 2.6 -> 1.5, 8x56x56x64 0.88 -> 0.63, 1x224x224x64 2.2 -> 1.3;
    below, 1x112x112x64 0.33 -> 0.38, 8x28x28x128 0.29 -> 0.37."""
    threads = parallel.thread_count()
    if view.flags.c_contiguous or view.size < COPY_PARALLEL_ITEMS or threads < 2 or view.ndim < 2:
        return np.ascontiguousarray(view)
    copy = np.empty(view.shape, view.dtype)
    rows = view.shape[1]
    parts = [(image, part * rows // threads, (part + 1) * rows // threads)
             for image in range(view.shape[0]) for part in range(threads)]

    def worker(mine):
        for image, r0, r1 in mine:
            copy[image, r0:r1] = view[image, r0:r1]

    parallel.run_parts(worker, parts, threads)
    return copy


def write_back(target: np.ndarray, values: np.ndarray) -> None:
    """``target[...] = values``: a C-contiguous (n, h, w, c) chunk into the caller's (n, h,
    w, c) view. A channels-first array's view (C-contiguous NCHW planes) of ``values``' dtype
    is written by the compiled transposing copy (:func:`._layout_loops.transpose_rows`), two
    threads from :data:`COPY_PARALLEL_ITEMS`; other strided views tile by tile
    (:data:`TILE_ROWS` x :data:`TILE_CHANNELS`)."""
    if target.flags.c_contiguous or values.size < TILE_MIN_ITEMS:
        target[...] = values
        return
    n, h, w, c = values.shape
    planes = target.transpose(0, 3, 1, 2)
    if planes.flags.c_contiguous and planes.dtype == values.dtype and compiled.usable(values):
        from ._layout_loops import ROWS  # imports Numba: here, not at import convlayer

        runs = n * -(-(h * w) // ROWS)
        work = 0 if values.size < COPY_PARALLEL_ITEMS else parallel.PARALLEL_MIN_WORK
        compiled.run_loop("transpose_rows", runs, values.reshape(n, h * w, c), planes.reshape(n, c, h * w),
                          work=work)
        return
    for image in range(n):
        for r0 in range(0, h, TILE_ROWS):
            for c0 in range(0, c, TILE_CHANNELS):
                target[image, r0 : r0 + TILE_ROWS, :, c0 : c0 + TILE_CHANNELS] = \
                    values[image, r0 : r0 + TILE_ROWS, :, c0 : c0 + TILE_CHANNELS]


# add_per_channel's rows: values broadcast to at least this many items, so the addition's
# inner loop is long. Measured, one thread, float32 (8, 112, 112, 16) += bias: 0.53 ms as one
# broadcast over rows of 16 channels, 0.30 over rows of 1024 items; (8, 56, 56, 24) 0.14 ->
# 0.11; from a few hundred channels alike (8x7x7x1280: 0.07 either way).
ADD_ROW = 1024
# Items from which add_per_channel takes the compiled pass: below, its fixed cost (about
# 8 us: the repeated bias, the bounds, the call) is more than NumPy's whole addition
# (8x1x1x672, a squeeze-excite layer at batch 8: 11 against 2.6 us; 1x7x7x960 even).
ADD_COMPILED_MIN = 2**16


def add_per_channel(out: np.ndarray, values: np.ndarray, low=None, high=None) -> None:
    """``out += values`` for values of shape ``(k,)`` along out's last axis (a bias), then,
    with ``low`` or ``high``, ``out`` clamped to them as by :func:`numpy.clip` (a Relu or a
    Clip after the bias). The sums are those of ``out += values``.

    A C-contiguous out of at least :data:`ADD_COMPILED_MIN` items that the compiled loops
    read, with values of its dtype, takes one pass (:func:`._activation_loops.bias_activation`'s Clip, on
    every core for a large out): one thread, float32, against the NumPy passes (the loop
    alone), 1x112x112x16 32 -> 18 us, 1x56x56x144 75 -> 44, 1x14x14x384 17 -> 6, 8x56x56x24
    108 -> 61, each with a clamp included. Otherwise NumPy adds ``values`` repeated to
    :data:`ADD_ROW` items, pixel after pixel, where ``k`` is small (then clips).
    """
    k = out.shape[-1] if out.ndim else 0
    if (np.ndim(values) == 1 and 0 < k and out.size >= ADD_COMPILED_MIN and out.flags.c_contiguous
            and getattr(values, "dtype", None) == out.dtype and out.dtype.kind == "f" and compiled.usable(out)):
        bounds = bound(low, out.dtype, -np.inf), bound(high, out.dtype, np.inf)
        if None not in bounds:
            tile = bias_tile(values, k)
            clip = compiled.loop("bias_activation")("Clip")
            compiled.run_loop(clip, out.size // k, out.reshape(-1), tile, k, *bounds, work=out.size)
            return
    _add_rows(out, values, k)
    clamp(out, low, high)


def add_clamped(target: np.ndarray, other: np.ndarray, low=None, high=None) -> bool:
    """``target += other``, then clamped to ``[low, high]`` (None: unbounded) as by
    :func:`numpy.clip`, in one compiled pass (:func:`._activation_loops.add_clamp`; two threads from
    :data:`.parallel.PARALLEL_MIN_WORK` items); False, doing nothing, where that does not
    apply: arrays of different shapes or dtypes, not float, not C-contiguous, a NaN bound,
    or no compiled loops. The sums are those of ``target += other``.

    One thread, a residual Add and its Relu against NumPy's two passes (in place, same
    process): 1x56x56x64 0.097 -> 0.075 ms, 1x28x28x128 0.037 -> 0.021, 8x56x56x64 0.84
    -> 0.51, 8x28x28x128 0.45 -> 0.29, 8x14x14x256 0.21 -> 0.16 (on two threads each took
    longer: 0.38, 0.24, 0.65, 0.49, 0.38, the handoff)."""
    if not (target.shape == other.shape and target.dtype == other.dtype and target.dtype.kind == "f"
            and target.flags.c_contiguous and other.flags.c_contiguous and compiled.usable(target)):
        return False
    bounds = bound(low, target.dtype, -np.inf), bound(high, target.dtype, np.inf)
    if None in bounds:
        return False
    compiled.run_loop("add_clamp", target.size, target.reshape(-1), other.reshape(-1), *bounds, work=target.size)
    return True


def bias_tile(values: np.ndarray, k: int) -> np.ndarray:
    """``values`` (a bias of ``k`` channels) repeated for a whole number of pixels, about
    :data:`ADD_ROW` items: the compiled bias loops' inner run, as long as the tile whatever
    ``k`` is (:func:`._activation_loops.bias_activation`)."""
    return np.tile(values, max(1, ADD_ROW // k))


def clamp(out: np.ndarray, low=None, high=None) -> None:
    """``out`` clamped to ``[low, high]`` in place (None: no bound), as :func:`numpy.clip`
    defines it, ``minimum(maximum(out, low), high)`` (a NaN stays NaN), without its
    wrapper's cost: 4-5 us a call, half a squeeze-excite layer's 1x1 convolution."""
    if low is not None:
        np.maximum(out, low, out=out)
    if high is not None:
        np.minimum(out, high, out=out)


def add_bias_activation(out: np.ndarray, values, name: str, alpha: float = 1.0, beta: float = 0.0,
                        sums=None) -> bool:
    """``out`` becomes activation ``name`` (a key of :data:`._activation_loops.ACTIVATIONS`: Sigmoid,
    Swish, HardSigmoid, HardSwish, with ONNX's ``alpha`` and ``beta``) of ``out + values``
    (``values``, a bias along the last axis, or None), in one compiled pass
    (:func:`._activation_loops.bias_activation`, on every core for a large out); return False, doing
    nothing, where that does not apply: an out that is not float32 and C-contiguous, or no
    compiled loops. The caller then takes NumPy's passes.

    The loops' exp is their own (``_activation_loops._gate_exp``, within 1 ulp; NumPy's is within 2), so
    results differ from NumPy's passes in the last bits. One thread, Swish with a bias on
    1x112x112x96, against NumPy's passes over cache-sized chunks: 1.68 -> 0.75 ns a value.
    Unlike a plain addition's (:func:`add_per_channel`), this pass wins at every size, NumPy's
    four passes each costing a call: Swish with a bias, one thread, right after a product on
    BLAS's threads, NumPy's passes -> the compiled pass: 1x1x1x1152 53 -> 25 us, 1x7x7x1152
    103 -> 96, 1x14x14x672 250 -> 153 (without the product before: 16 -> 7, 80 -> 55, 193 -> 114).

    ``sums``, for a 4-D out, a float32 ``(n * out_h, k)`` array: each output row's sums of
    its activated values, channel by channel, are written into it (:func:`activation_rows`).
    """
    k = out.shape[-1] if (values is not None or sums is not None) and out.ndim else 1
    if not (activation_ready(out.dtype) and out.flags.c_contiguous and out.size and k):
        return False
    if values is not None and np.shape(values) != (k,):
        return False
    if sums is not None:
        then = activation_rows(out, name, alpha, beta, sums, values)
        if then is None:
            return False
        compiled.run_loop(then[0], out.shape[0] * out.shape[1], *then[1:], work=out.size * ACTIVATION_WORK)
        return True
    loop, *arguments = activation_step(out, values, name, alpha, beta, k)
    compiled.run_loop(loop, out.size // k, *arguments, work=out.size * ACTIVATION_WORK)
    return True


def activation_ready(dtype) -> bool:
    """Whether the compiled activation pass takes an output of ``dtype``: float32, with the
    compiled loops (their exp is float32's)."""
    return dtype == np.float32 and compiled.enabled()


def activation_step(out: np.ndarray, bias, name: str, alpha: float, beta: float, per_task: int):
    """``(loop, *arguments)``: the compiled loop that writes activation ``name`` of ``out +
    bias`` over tasks ``first .. last - 1`` of ``out`` (C-contiguous float32, channels last),
    ``per_task`` items a task (a multiple of its channel count), called as ``loop(*arguments,
    first, last)``: :func:`add_bias_activation`'s pass, or a :func:`.compiled.run_loop`
    ``then`` step (:func:`activation_rows`). None where it does not apply."""
    if not (activation_ready(out.dtype) and out.flags.c_contiguous and out.size):
        return None
    k = out.shape[-1] if out.ndim else 1
    tile = _NO_BIAS if bias is None else bias_tile(np.asarray(bias, np.float32), k)
    return (compiled.loop("bias_activation")(name), out.reshape(-1), tile, per_task, np.float32(alpha),
            np.float32(beta))


def activation_rows(out: np.ndarray, name: str, alpha: float, beta: float, sums=None, bias=None):
    """The ``then`` step of :func:`.compiled.run_loop` that writes activation ``name`` over
    the rows of ``out``, a C-contiguous float32 (n, out_h, out_w, k) whose tasks are its
    output rows (image, row), each thread's rows done right after the loop that wrote them,
    while they are in its core's cache (:func:`activation_step`). None where it does not apply.

    With ``sums``, a float32 C-contiguous ``(n * out_h, k)`` array, the step also writes
    each row's channel sums of the activated values into it (:func:`._activation_loops.activation_sums`):
    the means of a squeeze-excite block that follows, without another pass over ``out``;
    ``bias`` (k values or None) is then added first, as by :func:`add_bias_activation`."""
    if out.ndim != 4:
        return None
    per_row = out.shape[2] * out.shape[3]
    if sums is None:
        return activation_step(out, bias, name, alpha, beta, per_row)
    k, rows = out.shape[3], out.shape[0] * out.shape[1]
    if not (activation_ready(out.dtype) and out.flags.c_contiguous and out.size and sums.dtype == np.float32
            and sums.shape == (rows, k) and sums.flags.c_contiguous):
        return None
    add = no_bias(k, np.dtype(np.float32)) if bias is None else np.asarray(bias, np.float32)
    return (compiled.loop("activation_sums")(name), out.reshape(-1), add, per_row, np.float32(alpha),
            np.float32(beta), sums)


@functools.lru_cache(maxsize=64)
def no_bias(k: int, dtype) -> np.ndarray:
    """k times -0.0, read-only: a compiled loop's bias when there is none (the sum's exact
    identity: x + -0.0 is x, whatever its sign)."""
    zeros = np.full(k, -0.0, dtype)
    zeros.flags.writeable = False
    return zeros


_NO_BIAS = np.full(ADD_ROW, -0.0, np.float32)  # x + -0.0 is x, whatever its sign
_NO_BIAS.flags.writeable = False


# add_bias_activation's work per value, in multiply-adds as parallel.threads_for counts them
# (an exp and a division: a few times a multiply-add's time).
ACTIVATION_WORK = 4


def bound(limit, dtype: np.dtype, default: float):
    """A clamp bound as a scalar of ``dtype`` (``default`` for None), or None for a NaN or
    for more than one value (left to :func:`numpy.clip`)."""
    if limit is None:
        return dtype.type(default)
    value = np.asarray(limit, dtype)
    return None if value.size != 1 or np.isnan(value).any() else value.reshape(())[()]


def _add_rows(out: np.ndarray, values: np.ndarray, k: int) -> None:
    """``out += values`` by NumPy, over rows of :data:`ADD_ROW` items where ``k`` is small
    and there are several such rows (a squeeze-excite layer's 1x1 output is one broadcast)."""
    if np.ndim(values) != 1 or not out.flags.c_contiguous or not 0 < k < ADD_ROW // 2 or out.size <= ADD_ROW:
        out += values
        return
    repeats = ADD_ROW // k
    flat = out.reshape(-1)
    whole = flat.size // (repeats * k) * repeats * k
    rows = flat[:whole].reshape(-1, repeats * k)
    rows += np.tile(values, repeats)
    rest = flat[whole:].reshape(-1, k)
    rest += values
