"""Whether a transform-based algorithm's intermediates stay finite for given arrays.

Winograd and FFT add and subtract many inputs before they multiply, so a sum that would
only be large done directly can turn inf, or NaN (inf - inf), through a transform. These
checks, two cheap passes over an array and no copy, let :mod:`.choose` take those
algorithms only where their results are what direct summation gives.
"""

from __future__ import annotations

import math

import numpy as np

from ..shapes import ConvGeometry

WINOGRAD_HEADROOM = 16  # |x| and |kernel| at most finfo.max / 16: the transforms add 4 inputs
FFT_HEADROOM = 16  # transform lengths round up to fast sizes (< 2x per axis: < 4x the pixels)


def winograd_values(a: np.ndarray, b: np.ndarray, terms: int) -> bool:
    """Whether Winograd's transforms of ``a`` and ``b`` (sums of ``terms`` products) stay
    finite: both finite, each within ``finfo.max / WINOGRAD_HEADROOM``, their product
    times ``terms`` within ``finfo.max / WINOGRAD_HEADROOM**2``."""
    return in_range(a, b, WINOGRAD_HEADROOM, terms * WINOGRAD_HEADROOM**2)


def fft_in_range(a: np.ndarray, b: np.ndarray, geom: ConvGeometry, kernel_gradient: bool) -> bool:
    """Whether FFT's intermediates stay finite for the factors ``a`` and ``b``: x and the
    kernel (forward), or x and grad_out (the kernel's gradient).

    A transform over ``P`` padded pixels sums ``P`` values: ``|fft(a)| <= P max|a|``. The
    spectra's products are summed over the channels (forward: ``c`` channels of a kernel
    of ``fh * fw`` taps) or the images (kernel gradient: ``n`` images of grad_out, up to
    ``P`` pixels each), and the inverse transform sums ``P`` of those before it scales by
    ``1 / P``. Both factors must be finite and those sums, with :data:`FFT_HEADROOM`,
    within the dtype's range. A test on magnitudes, not on a sum of the values: alternating
    signs cancel in a sum (``finite`` passes ``[1e36, -1e36, ...]``) but not in a transform.
    """
    pixels = (geom.h + sum(geom.pads[0])) * (geom.w + sum(geom.pads[1]))
    if kernel_gradient:
        product = geom.n * pixels**3
    else:
        product = geom.c * geom.fh * geom.fw * pixels**2
    return in_range(a, b, pixels * FFT_HEADROOM, product * FFT_HEADROOM)


def in_range(a: np.ndarray, b: np.ndarray, single: float, product: float) -> bool:
    """``max|a|`` and ``max|b|`` times ``single``, and ``max|a| max|b| product``, are within
    the largest value of the result dtype (False for NaN or inf)."""
    limit = float(np.finfo(np.result_type(a.dtype, b.dtype, np.float32)).max)
    size_a, size_b = magnitude(a), magnitude(b)
    return max(size_a, size_b) * single <= limit and size_a * size_b * product <= limit


def finite(array: np.ndarray) -> bool:
    """One cheap pass: does ``array`` hold only finite numbers (always true for integers)?

    A NaN or an infinity makes the sum NaN or infinite, and a sum needs no work memory
    (``np.isfinite(array).all()`` would make a boolean copy of the input). A sum that
    overflows says "not finite" too: then only a faster route is not taken.
    """
    if array.dtype.kind != "f":
        return True
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow just says "not finite"
        return bool(np.isfinite(np.sum(array, dtype=np.result_type(array.dtype, np.float32))))


def magnitude(array: np.ndarray) -> float:
    """The largest ``|value|`` of ``array`` (two cheap passes, max and min, no copy); NaN
    when it holds a NaN, 0 when it is empty.

    A sum of finite values can cancel (``finite`` would pass ``[2e38, -2e38]``) while
    Winograd's input transform, which subtracts neighbours, overflows on them.
    """
    if array.size == 0:
        return 0.0
    high, low = float(array.max()), float(array.min())
    if high != high or low != low:  # NaN
        return math.nan
    return max(abs(high), abs(low))
