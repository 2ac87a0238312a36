"""Which algorithm computes a convolution: ``algorithm="auto"`` and the explicit choices.

Every algorithm gives the same result up to rounding (see each module for its error); they
differ in speed, by up to 50x, depending on the shape:

- ``"im2col"`` (:mod:`.im2col`): patch matrix + one matrix product. Any convolution. The
  fastest when there are many channels in and out: the product is then a large GEMM.
- ``"shift"`` (:mod:`.shift`): one product per kernel tap, added in place. groups=1.
- ``"depthwise"`` (:mod:`.depthwise`): shift and accumulate with a per-channel multiply;
  ``groups == c`` only.
- ``"fft"`` (:mod:`.fft`): transforms, for large kernels. strides 1, groups 1; it spreads
  a NaN or inf over its whole block, so ``auto`` takes it only for finite input.
- ``"winograd"`` (:mod:`.winograd`): F(2x2, 3x3) for 3x3 stride-1 layers, 2.25x fewer
  multiplications; needs Numba, and turns an infinite sum into NaN (finite input only).

``shift`` and ``depthwise`` run Numba-compiled loops when Numba is installed
(:mod:`.compiled`), their NumPy code otherwise; the rules below hold for both (the
compiled loops are faster on the same shapes, not on others).

``auto`` follows the cost model of :func:`auto_choice`, fitted to measurements against the
other algorithms on a 2-core machine (``convlayer bench`` prints what it picks per shape).
"""

from __future__ import annotations

import math

import numpy as np

from ..shapes import ConvGeometry
from . import depthwise, fft, im2col, shift, winograd

ALGORITHMS = {"im2col": im2col, "shift": shift, "depthwise": depthwise, "fft": fft, "winograd": winograd}
CHOICES = ("auto",) + tuple(ALGORITHMS)


def check_name(algorithm) -> str:
    """Return ``algorithm`` as one of :data:`CHOICES`, or raise ValueError."""
    if isinstance(algorithm, str) and algorithm.lower() in CHOICES:
        return algorithm.lower()
    names = ", ".join(repr(name) for name in CHOICES[:-1]) + f" or {CHOICES[-1]!r}"
    raise ValueError(f"algorithm must be {names}; got {algorithm!r}")


def unsupported(name: str, geom: ConvGeometry) -> "str | None":
    """Why algorithm ``name`` cannot compute ``geom`` (None when it can)."""
    return None if name == "im2col" else ALGORITHMS[name].unsupported(geom)


def resolve(algorithm, x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry) -> str:
    """The algorithm that computes this convolution: ``auto``'s pick, or the one asked for.

    Raises ValueError for an unknown name or one that cannot compute ``geom``.
    """
    name = check_name(algorithm)
    if name == "auto":
        return auto_choice(x, kernel, geom)[0]
    reason = unsupported(name, geom)
    if reason is not None:
        raise ValueError(f"algorithm={name!r} cannot compute this convolution: {reason}")
    return name


def correlate(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int,
              algorithm="auto") -> str:
    """Fill ``out`` as :func:`.im2col.correlate` does, with the algorithm chosen; return its name."""
    name = resolve(algorithm, x, kernel, geom)
    ALGORITHMS[name].correlate(x, kernel, geom, pad_mode, out, budget)
    return name


# The cost model, from measurements on the speed issue's 2-core machine (README, "Speed").
FFT_MIN_TAPS = 49  # below 7x7, direct summation won at every size measured
FFT_MAX_CHANNELS = 64  # c * k: FFT mixes channels with one tiny complex product per frequency
FFT_COST_PER_LOG = 6.0  # a channel's transforms, per pixel and log2(pixels), in direct multiply-adds
WINOGRAD_HEADROOM = 16  # |x| and |kernel| at most finfo.max / 16: the transforms add 4 inputs
FFT_HEADROOM = 16  # transform lengths round up to fast sizes (< 2x per axis: < 4x the pixels)
WINOGRAD_MIN_CHANNELS = 16  # in and out: below, the 16 small GEMMs lose to im2col's one (not measured finer)
SHIFT_MAX_CHANNELS = 4  # c: im2col copies runs of only c values per tap, GEMMs have c * taps rows
SHIFT_MIN_OUTPUTS = 2**18  # n * out_h * out_w * k: below, shift's per-tap overhead loses to one GEMM


def auto_choice(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry) -> tuple[str, str]:
    """``(name, why)``: the algorithm ``auto`` uses for this convolution, and the reason.

    The rules, in order:

    1. ``groups == c > 1``: depthwise (im2col would copy the input ``fh * fw`` times to
       feed ``c`` one-column products).
    2. strides 1, groups 1, at least :data:`FFT_MIN_TAPS` taps, ``c * k`` at most
       :data:`FFT_MAX_CHANNELS`, FFT's estimated work below the direct sum's, and x and the
       kernel finite and small enough that no transform overflows (:func:`fft_in_range`): FFT. Per output pixel, the direct sum costs ``fh * fw * c * k``
       multiply-adds and FFT about ``FFT_COST_PER_LOG * (c + k) * log2(padded pixels) +
       c * k`` (the transforms, then the product per frequency).
    3. a 3x3 kernel, strides 1, dilation 1, groups 1, at least :data:`WINOGRAD_MIN_CHANNELS`
       channels in and out, Numba and threadpoolctl installed, and x and the kernel finite
       and far enough from the dtype's largest value that no transform or sum overflows
       (:func:`prefers_winograd`): Winograd
       F(2x2, 3x3), 16 c k multiply-adds per 2x2 output tile where im2col needs 36 c k.
    4. strides 1, groups 1, ``c <= SHIFT_MAX_CHANNELS`` and at least
       :data:`SHIFT_MIN_OUTPUTS` output values: shift and accumulate.
    5. Otherwise im2col: many channels make its patch copy cheap next to one large GEMM.
    """
    taps, c, k = geom.fh * geom.fw, geom.c, geom.k
    if geom.groups == c > 1:
        return "depthwise", "groups == channels: a per-channel multiply per tap, no patch matrix"
    if prefers_fft(geom):
        why = (f"{geom.fh}x{geom.fw} kernel: FFT ~{_fft_work(geom):.0f} < direct {taps * c * k} "
               f"multiply-adds per pixel")
        if fft_in_range(x, kernel, geom, kernel_gradient=False):
            return "fft", why
        name, _ = _direct_choice(geom)
        return name, ("not FFT: the input is not finite or so large that its transforms could "
                      "overflow (FFT would spread NaN/inf over the image)")
    if _winograd_shape(geom):
        if _winograd_values(x, kernel, terms=9 * c):
            return "winograd", f"3x3, stride 1, {c} -> {k} channels: 16 c k multiply-adds per 2x2 tile, not 36 c k"
        return "im2col", ("not Winograd: the input is not finite or so large that its sums could "
                          "overflow (its transforms would turn inf, or an overflow, into NaN)")
    return _direct_choice(geom)


def prefers_winograd(geom: ConvGeometry, a: np.ndarray, b: np.ndarray, terms: int) -> bool:
    """Rule 3 of :func:`auto_choice` for the two factors ``a`` and ``b`` (x and the kernel,
    or x and grad_out for the kernel's gradient) of sums of ``terms`` products.

    Winograd's transforms add up to 4 values of each factor and their products' sums are
    combined again, so a sum that would merely be large (or overflow to inf) directly can
    come out NaN (inf - inf): ``a`` and ``b`` must be finite, each within
    ``finfo.max / WINOGRAD_HEADROOM``, and ``max|a| max|b| terms`` within
    ``finfo.max / WINOGRAD_HEADROOM**2`` of the result dtype (two cheap passes per array,
    max and min, no copy).
    """
    return _winograd_shape(geom) and _winograd_values(a, b, terms)


def _winograd_shape(geom: ConvGeometry) -> bool:
    return winograd.unsupported(geom) is None and min(geom.c, geom.k) >= WINOGRAD_MIN_CHANNELS


def _winograd_values(a: np.ndarray, b: np.ndarray, terms: int) -> bool:
    return _in_range(a, b, WINOGRAD_HEADROOM, terms * WINOGRAD_HEADROOM**2)


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
    return _in_range(a, b, pixels * FFT_HEADROOM, product * FFT_HEADROOM)


def _in_range(a: np.ndarray, b: np.ndarray, single: float, product: float) -> bool:
    """``max|a|`` and ``max|b|`` times ``single``, and ``max|a| max|b| product``, are within
    the largest value of the result dtype (False for NaN or inf)."""
    limit = float(np.finfo(np.result_type(a.dtype, b.dtype, np.float32)).max)
    size_a, size_b = magnitude(a), magnitude(b)
    return max(size_a, size_b) * single <= limit and size_a * size_b * product <= limit


def prefers_fft(geom: ConvGeometry) -> bool:
    """Rule 2 of :func:`auto_choice` without its finiteness check (used for the kernel's
    gradient too, which checks only what it needs instead of deciding every rule)."""
    fft_work = _fft_work(geom)
    return fft_work is not None and fft_work < geom.fh * geom.fw * geom.c * geom.k


def prefers_shift(geom: ConvGeometry) -> bool:
    """Rule 4 of :func:`auto_choice` (used for the kernel's gradient too)."""
    outputs = geom.n * geom.out_h * geom.out_w * geom.k
    return (geom.strides == (1, 1) and geom.groups == 1 and geom.c <= SHIFT_MAX_CHANNELS
            and outputs >= SHIFT_MIN_OUTPUTS)


def _direct_choice(geom: ConvGeometry) -> tuple[str, str]:
    if prefers_shift(geom):
        return "shift", f"{geom.c} input channel(s): one product per tap beats copying a thin patch matrix"
    return "im2col", "many channels, strides or a small output: one large GEMM"


def _fft_work(geom: ConvGeometry) -> "float | None":
    """FFT's estimated work per output pixel, or None when rule 2's shape tests fail."""
    taps, c, k = geom.fh * geom.fw, geom.c, geom.k
    if fft.unsupported(geom) is not None or taps < FFT_MIN_TAPS or c * k > FFT_MAX_CHANNELS:
        return None
    if geom.n * geom.out_h * geom.out_w == 0:
        return None
    pixels = (geom.h + sum(geom.pads[0])) * (geom.w + sum(geom.pads[1]))
    return FFT_COST_PER_LOG * (c + k) * math.log2(max(pixels, 2)) + c * k


def finite(array: np.ndarray) -> bool:
    """One cheap pass: does ``array`` hold only finite numbers (always true for integers)?

    A NaN or an infinity makes the sum NaN or infinite, and a sum needs no work memory
    (``np.isfinite(array).all()`` would make a boolean copy of the input). A sum that
    overflows says "not finite" too: then FFT is merely not used.
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
