"""The compiled activation passes behind :mod:`.layout`: a bias added and an activation
applied over a layer's output in one pass (:func:`bias_activation`), the same with each
output row's channel sums written as it goes (:func:`activation_sums`), and a residual Add
clamped in the same pass (:func:`add_clamp`).

The activations are ONNX's Sigmoid, Swish, HardSigmoid and HardSwish (float32, with their
own exp: :func:`_gate_exp`) and Clip (any float dtype: a Relu's or Clip's bounds). A loop
made per activation is a closure over the activation's number, which an overload turns into
its formula as the loop compiles (:func:`_activate`): one formula in each loop, and a cell
that pickles the same in every process, so Numba's disk cache finds it again.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba.extending import overload

from ._loops import OPTIONS


# exp for a sigmoid's denominator, float32 (Cephes' expf): e^x = 2^k e^r with k = round(x /
# ln 2), |r| <= ln 2 / 2, r taken off in two parts (ln 2 = LN2_HIGH + LN2_LOW, the first exact
# in few bits) and e^r a degree-7 polynomial, 2^k built from its bits. Within 1 ulp of the
# correctly rounded e^x (NumPy's float32 exp: 2), checked on 4 million points. Written out
# because Numba calls libm's expf one value at a time (3 ns a value); this vectorises.
#
# x is first clamped to [_GATE_LOW, _GATE_HIGH], where 2^k and e^x are normal numbers: no
# subnormal scaling and no check per value but one (above _GATE_HIGH, or NaN: inf). What
# 1 / (1 + e^x) needs: below -86, 1 + e^x is 1 (e^-86 is 2^-124); above 88, 1 / (1 + e^x) is
# below 2^-126 (a sigmoid of t < -88 is 0 for float32's normal numbers, as is t times it,
# and -inf / inf is NaN: swish(-inf)). One thread, in cache, against the exp with exact
# subnormal results and checks for each edge: Swish 0.71 -> 0.54 ns a value, Sigmoid 0.69
# -> 0.49; the same results for every x in [-86, 88] (ulp for ulp: the scaling is exact).
_LOG2E, _LN2_HIGH, _LN2_LOW = np.float32(1.4426950408889634), np.float32(0.693359375), np.float32(-2.12194440e-4)
_GATE_LOW, _GATE_HIGH = np.float32(-86.0), np.float32(88.0)
_ROUNDER = np.float32(12582912.0)  # 1.5 * 2**23: adding and taking it off rounds to an integer
_P0, _P1, _P2 = np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3)
_P3, _P4, _P5 = np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1)


@numba.njit(fastmath={"contract"}, inline="always", **OPTIONS)
def _gate_exp(x):
    """e^x for a float32 ``x`` in [-86, 88] (below: e^-86; above 88, or NaN: inf)."""
    clamped = x if x < _GATE_HIGH else _GATE_HIGH  # (a NaN goes through as _GATE_HIGH, then inf)
    clamped = clamped if clamped > _GATE_LOW else _GATE_LOW
    k = (clamped * _LOG2E + _ROUNDER) - _ROUNDER
    r = (clamped - k * _LN2_HIGH) - k * _LN2_LOW
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + np.float32(1)
    value = p * np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)
    return value if x <= _GATE_HIGH else np.float32(np.inf)


@numba.njit(fastmath={"contract"}, inline="always", **OPTIONS)
def _sigmoid(t, alpha, beta):
    value = np.float32(1) / (np.float32(1) + _gate_exp(-t))
    return value if t == t else t  # NaN stays NaN


@numba.njit(fastmath={"contract"}, inline="always", **OPTIONS)
def _swish(t, alpha, beta):
    return t / (np.float32(1) + _gate_exp(-alpha * t))  # NaN / inf is NaN


@numba.njit(fastmath={"contract"}, inline="always", **OPTIONS)
def _hard_sigmoid(t, alpha, beta):
    return _unit(alpha * t + beta)


@numba.njit(fastmath={"contract"}, inline="always", **OPTIONS)
def _hard_swish(t, alpha, beta):
    return t * _unit(t / np.float32(6) + np.float32(0.5))


@numba.njit(inline="always", **OPTIONS)
def _clip(t, low, high):
    """``t`` clamped to ``[low, high]`` as by NumPy's ``clip`` (low, then high: a minimum
    above the maximum gives the maximum); a NaN stays NaN (both comparisons are false for
    it). Any float dtype: a conv2d bias with a Relu or Clip, float32 or float64."""
    t = low if t < low else t
    return high if t > high else t


@numba.njit(inline="always", **OPTIONS)
def _unit(value):
    """``value`` clamped to [0, 1]; a NaN stays NaN (both comparisons are false for it)."""
    value = np.float32(0) if value < np.float32(0) else value
    return np.float32(1) if value > np.float32(1) else value


# The activations bias_activation compiles, each ``formula(t, alpha, beta)``: ONNX's Sigmoid,
# Swish with alpha, HardSigmoid with alpha and beta, HardSwish (of a float32 t), and Clip
# with its bounds as alpha and beta (of any float t).
ACTIVATIONS = {"Sigmoid": _sigmoid, "Swish": _swish, "HardSigmoid": _hard_sigmoid, "HardSwish": _hard_swish,
               "Clip": _clip}  # numbered in this order (_activate)


def _activate(which, t, alpha, beta):
    """Activation number ``which`` (a constant: the closures' cell) of :data:`ACTIVATIONS` at ``t``."""


@overload(_activate)
def _activate_overload(which, t, alpha, beta):
    if not isinstance(which, numba.types.IntegerLiteral):  # Numba asks again with the constant's value
        return None
    formula = tuple(ACTIVATIONS.values())[which.literal_value]  # chosen as the loop compiles: one formula in it
    return lambda which, t, alpha, beta: formula(t, alpha, beta)


@functools.lru_cache(maxsize=None)
def bias_activation(name: str):
    """The loop that writes ``formula(pixel + bias, alpha, beta)`` over pixels ``first ..
    last - 1`` of ``flat`` (``k`` channels a pixel, channels-last), ``formula`` the activation
    ``name`` of :data:`ACTIVATIONS`; ``tile`` is the bias repeated for a whole number of
    pixels, so the inner loop is as long as the tile whatever ``k`` is. Compiled once per
    activation and cached on disk. Divisions give what NumPy's do (``-inf / inf`` is NaN),
    without a check per value.

    The closure holds the activation's number, not its function: Numba keys a closure's
    cache entry by its cells pickled, and a compiled function pickles differently in every
    process, so a closure over one was compiled afresh by every new process (0.2-0.26 s
    for each activation on its first call) and added an entry to the cache's index each
    time (940 KB after a day of test runs)."""
    which = tuple(ACTIVATIONS).index(name)

    @numba.njit(fastmath={"contract"}, error_model="numpy", **OPTIONS)
    def add_bias_activate(flat, tile, k, alpha, beta, first, last):
        for start in range(first * k, last * k, tile.shape[0]):
            run = flat[start : min(start + tile.shape[0], last * k)]
            for j in range(run.shape[0]):
                run[j] = _activate(which, run[j] + tile[j], alpha, beta)

    return add_bias_activate


@functools.lru_cache(maxsize=None)
def activation_sums(name: str):
    """:func:`bias_activation` that also sums each task's values channel by channel: tasks
    ``first .. last - 1`` of ``per_task`` items each (whole pixels of ``k = bias.size``
    channels; ``bias`` holds one pixel's), ``sums[task, ch]`` (float32) becomes the sum of
    the task's activated values of channel ``ch``, written over what it held. A
    squeeze-excite block's channel means, summed while each row of the layer before it is
    in the core's cache (:mod:`convlayer.onnx.fused`)."""
    which = tuple(ACTIVATIONS).index(name)

    @numba.njit(fastmath={"contract"}, error_model="numpy", **OPTIONS)
    def activate_and_sum(flat, bias, per_task, alpha, beta, sums, first, last):
        k = bias.shape[0]
        for task in range(first, last):
            total = sums[task]
            for ch in range(k):
                total[ch] = 0
            for start in range(task * per_task, (task + 1) * per_task, k):
                pixel = flat[start : start + k]
                for ch in range(k):
                    value = _activate(which, pixel[ch] + bias[ch], alpha, beta)
                    pixel[ch] = value
                    total[ch] += value

    return activate_and_sum


@numba.njit(**OPTIONS)
def add_clamp(a, b, low, high, first, last):
    """``a[t] = clip(a[t] + b[t], low, high)`` for items ``first .. last - 1`` of two flat
    arrays (:func:`_clip`: a NaN stays NaN): a residual Add and the Relu after it in one pass.
    In place into ``a`` (with a third, output array that is ``a``, the compiler's check for
    overlap fails and the loop runs unvectorised: 2.3x slower)."""
    into, other = a[first:last], b[first:last]
    for t in range(into.shape[0]):
        into[t] = _clip(into[t] + other[t], low, high)
