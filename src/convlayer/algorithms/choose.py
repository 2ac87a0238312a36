"""Which algorithm computes a convolution and its gradients, and why: pure decisions.

:func:`forward` names the algorithm of a forward pass, :func:`backward` the routes of the
two gradients; both return names with their reasons and run nothing (:mod:`.dispatch`
runs what they decide). Every algorithm gives the same result up to rounding (see each
module for its error); they differ in speed, by up to 50x, depending on the shape:

- ``"im2col"`` (:mod:`.im2col`): patch matrix + one matrix product. Any convolution. The
  fastest when there are many channels in and out: the product is then a large GEMM.
- ``"shift"`` (:mod:`.shift`): one product per kernel tap, added in place. groups=1.
- ``"depthwise"`` (:mod:`.depthwise`): shift and accumulate with a per-channel multiply;
  ``groups == c`` only.
- ``"grouped"`` (:mod:`.grouped`): im2col in row blocks, one product batched over the
  groups; groups > 1 (im2col's code where its compiled loop cannot run).
- ``"fft"`` (:mod:`.fft`): transforms, for large kernels. strides 1, groups 1; it spreads
  a NaN or inf over its whole block, so ``auto`` takes it only for finite input.
- ``"winograd"`` (:mod:`.winograd`): F(2x2, 3x3) for 3x3 stride-1 layers, 2.25x fewer
  multiplications; needs Numba, and turns an infinite sum into NaN (finite input only).

im2col, shift and depthwise are *direct* summation (each output a plain sum of products);
FFT and Winograd go through transforms. ``shift`` and ``depthwise`` run Numba-compiled
loops when Numba is installed (:mod:`.compiled`), their NumPy code otherwise; the rules
below hold for both (the compiled loops are faster on the same shapes, not on others).

``auto`` follows the cost model of :func:`auto_choice`, fitted to measurements against the
other algorithms on a 2-core machine (``convlayer bench`` prints what it picks per shape).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..shapes import ConvGeometry
from . import buffers, compiled, grouped, parallel
from .backward import transposed_geometry
from .ranges import fft_in_range, finite, winograd_values

ALGORITHMS = ("im2col", "shift", "depthwise", "fft", "winograd", "grouped")
CHOICES = ("auto",) + ALGORITHMS

# The cost model, from measurements on a 2-core machine (README, "Speed").
FFT_MIN_TAPS = 49  # below 7x7, direct summation won at every size measured
FFT_MAX_CHANNELS = 64  # c * k: FFT mixes channels with one tiny complex product per frequency
FFT_COST_PER_LOG = 6.0  # a channel's transforms, per pixel and log2(pixels), in direct multiply-adds
# Winograd against im2col, one thread each (time ratio), on real networks' 3x3 layers: it won
# from 64 channels on images of 14x14 and more (1x64x56x56 0.71, 1x256x14x14 0.88, 8x128x27x27
# 0.68) and lost with fewer channels (1x16x55x55 -> 64 1.22, 1x32x27x27 -> 128 1.06, 8x48x13x13
# -> 192 1.06) or smaller images (1x64x13x13 -> 256 1.34, 1x512x7x7 1.41, 8x512x7x7 1.10): its
# 16 products are then small, and a 2x2 tile hangs over an odd edge.
WINOGRAD_MIN_CHANNELS = 64  # in and out
WINOGRAD_MIN_SIZE = 14  # output rows and columns
# With more than one thread, Winograd splits its 2x2 tiles among the threads (products of
# tiles x c rows each, on one BLAS thread) where im2col's one GEMM runs on BLAS's threads.
# Measured on 2 threads, Winograd / im2col time, back to back: 1.07-1.77 with 98 tiles a
# thread or fewer (1x28x28x64 1.19, 1x28x28x128 1.26, 1x28x28x256 1.30, 1x14x14x256 1.22);
# from 196 it depends on what ran before (8x14x14x256: 1.27 right after im2col's GEMM, whose
# BLAS threads keep spinning on the other core; 0.8 in `convlayer bench`, which pauses
# between calls), from 784 0.51-0.74 either way. On resnet18 through convlayer.onnx this
# rule took batch 1 from 34.1 to 28.6 ms (batch 8's layers have 196 tiles a thread or more).
WINOGRAD_MIN_TILES_PER_THREAD = 196
SHIFT_MAX_CHANNELS = 4  # c: im2col copies runs of only c values per tap, GEMMs have c * taps rows
SHIFT_MIN_OUTPUTS = 2**18  # n * out_h * out_w * k: below, shift's per-tap overhead loses to one GEMM
# Shift does every multiply-add as a row-long vector step (a load and a store each), where a
# GEMM keeps its sums in registers: it wins by not copying patches only while there are few
# sums per pixel. Measured, shift / im2col time, one thread, 3x3 on 1x512x512x3 by k (number
# of filters): k=1 0.22, 4 0.37, 8 0.71, 16 1.47, 32 2.0; 7x7 on 1x224x224x3: k=4 0.71,
# k=8 1.32; 1x3x224x224 -> 64 3x3 (VGG's first layer): 5x im2col's time.
SHIFT_MAX_FILTERS = 8  # k
SHIFT_MAX_PRODUCTS = 600  # fh * fw * c * k per output pixel (7x7x3x8 = 1176 lost, 7x7x3x4 = 588 won)
# Rows or columns of the dilated kernel beyond which shift's NumPy code (when the compiled loop
# does not fit the budget) loses: its blocks gather the whole span. 1x512x512x3, 3x3: dilation
# 16 (span 33) takes 0.32 of im2col's time, dilation 64 (span 129) 4.3 times it.
SHIFT_MAX_SPAN = 64
# Input channels a group up to which grouped layers (1 < groups < c) take 'grouped'. Measured
# on one thread against im2col (time ratio grouped/im2col, float32; float64 alike): 4 to 32
# channels a group 0.41-0.87 (3x3 and 5x5 kernels, 4x4 to 112x112 images, 1x1 kernels 0.74),
# the ResNeXt-50 and RegNetY-400MF layers 0.2-0.8; 64 channels 0.97-1.14, 128 to 512 1.15-1.6.
GROUPED_MAX_CHANNELS = 32


class Choice(NamedTuple):
    """An algorithm's name and the reason it was chosen."""

    name: str
    why: str


class BackwardPlan(NamedTuple):
    """The routes of ``conv2d_backward``'s two gradients.

    ``transposed`` is the geometry of x's gradient as a stride-1 correlation of grad_out
    (:func:`.backward.transposed_geometry`), computed by the forward algorithm ``input``;
    None when one backward pass computes both gradients (``input`` and ``kernel`` are then
    the same, im2col or grouped: their ``correlate_backward``). ``stuffed``: the correlation
    reads grad_out stuffed with zeros between its pixels (:func:`.backward.stuff`; a strided
    layer's).
    """

    input: Choice
    kernel: Choice
    transposed: "ConvGeometry | None"
    stuffed: bool = False


def check_name(algorithm) -> str:
    """Return ``algorithm`` as one of :data:`CHOICES`, or raise ValueError."""
    if isinstance(algorithm, str) and algorithm.lower() in CHOICES:
        return algorithm.lower()
    names = ", ".join(repr(name) for name in CHOICES[:-1]) + f" or {CHOICES[-1]!r}"
    raise ValueError(f"algorithm must be {names}; got {algorithm!r}")


def unsupported(name: str, geom: ConvGeometry) -> "str | None":
    """Why algorithm ``name`` cannot compute ``geom`` (None when it can)."""
    if name == "shift" and geom.groups != 1:
        return f"it needs groups=1 (got groups={geom.groups}; 'depthwise' takes groups == channels)"
    if name == "depthwise" and geom.groups != geom.c:
        return f"it needs groups == input channels (got groups={geom.groups} with {geom.c} channels)"
    if name == "grouped" and geom.groups == 1:
        return "it needs groups > 1 (got groups=1: 'im2col' computes that in row blocks of its own)"
    if name == "fft":
        return _fft_unsupported(geom)
    if name == "winograd":
        return _winograd_unsupported(geom)
    return None


def _fft_unsupported(geom: ConvGeometry) -> "str | None":
    if geom.strides != (1, 1):
        return f"it needs strides 1 (got strides={geom.strides}); a strided FFT computes every pixel anyway"
    if geom.groups != 1:
        return f"it needs groups=1 (got groups={geom.groups})"
    return None


def _winograd_unsupported(geom: ConvGeometry) -> "str | None":
    if (geom.fh, geom.fw) != (3, 3) or geom.strides != (1, 1) or geom.dilation != (1, 1):
        return (f"it needs a 3x3 kernel, strides 1 and dilation 1 (got {geom.fh}x{geom.fw}, "
                f"strides={geom.strides}, dilation={geom.dilation})")
    if geom.groups != 1:
        return f"it needs groups=1 (got groups={geom.groups})"
    if not compiled.blocked_gemm_ready():
        return ("its transforms are compiled loops run beside one-thread BLAS products: it needs "
                "Numba and threadpoolctl (dependencies of convlayer; here one does not import)")
    return None


def forward(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, algorithm="auto") -> Choice:
    """The algorithm that computes this convolution: ``auto``'s pick (:func:`auto_choice`),
    or the one asked for.

    Raises ValueError for an unknown name or one that cannot compute ``geom``.
    """
    name = check_name(algorithm)
    if name == "auto":
        return auto_choice(x, kernel, geom)
    reason = unsupported(name, geom)
    if reason is not None:
        raise ValueError(f"algorithm={name!r} cannot compute this convolution: {reason}")
    return Choice(name, "asked for")


def backward(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray,
             algorithm="auto") -> BackwardPlan:
    """The routes of the two gradients of ``sum(grad_out * correlate(x, kernel))``.

    *x's gradient* is, at stride 1 with zero padding no wider than the kernel, itself a
    correlation (of grad_out with the kernel rotated, channels swapped): any forward
    algorithm computes it, ``algorithm`` where it applies to that correlation and auto's
    choice otherwise. With strides, with padding that copies pixels ('reflect' and kin:
    their gradient folds back onto the border), with more padding than the kernel spans or
    with a weight that is not finite, one backward pass computes both gradients: grouped's
    where the kernel's gradient goes by grouped (it adds each row block's patch gradients
    back while they are in the core's cache), im2col's otherwise; ``auto`` takes that single
    pass for small layers too (fewer than :data:`SHIFT_MIN_OUTPUTS` output values) unless
    the kernel's gradient has a route of its own. *The kernel's gradient*: see :func:`_kernel_gradient_choice`.

    Raises ValueError as :func:`forward` does.
    """
    name = check_name(algorithm)
    if name != "auto":
        forward(x, kernel, geom, name)  # raises for an unsupported explicit choice
    kernel_choice = _kernel_gradient_choice(name, x, geom, grad_out)
    outputs = geom.n * geom.out_h * geom.out_w * geom.k
    small = name == "auto" and kernel_choice.name == "im2col" and outputs < SHIFT_MIN_OUTPUTS
    stuffed = _stuffed_depthwise(name, geom)
    geometry = transposed_geometry(geom, pad_mode, stuffed)
    one_pass = _one_pass_reason(name, small and not stuffed, geometry, kernel)
    # Strided grouped layers, one thread, time / PyTorch's convolution_backward (the better of
    # NCHW and channels-last), 3x3 pad 1 stride 2, batch 1 | 8: im2col's pass 1.8-7.1 | 2.5-11.2
    # with 1.9-15 | 14-113 MiB of work memory, grouped's 1.8-2.9 | 1.7-3.2 with 1.2-6.7 MiB
    # (ResNeXt's 256/512/1024 channels in 32 groups, RegNet's 48-440 in groups of 8; level only
    # on 1x1024x14x14, 32 channels a group and a 7x7 output). The stuffed correlation instead
    # (as for depthwise: grouped's forward pass over grad_out with zeros between its pixels,
    # then its kernel gradient) took 1.9-3.8x grouped's pass on the same layers.
    if one_pass is not None and kernel_choice.name == "grouped":
        both = Choice("grouped", f"{one_pass}; grouped's row blocks compute both gradients in one pass")
        return BackwardPlan(both, both, None)
    if one_pass is not None:
        both = Choice("im2col", one_pass)
        return BackwardPlan(both, both, None)
    if name != "auto" and unsupported(name, geometry) is not None:
        name = "auto"  # e.g. a depthwise layer with a channel multiplier: its transpose is not
    # the rotated kernel holds the kernel's values: the same magnitudes decide
    return BackwardPlan(forward(grad_out, kernel, geometry, name), kernel_choice, geometry,
                        stuffed and geom.strides != (1, 1))


def _stuffed_depthwise(name: str, geom: ConvGeometry) -> bool:
    """Whether x's gradient of a strided depthwise layer (one filter per channel) goes as a
    depthwise correlation of grad_out stuffed with zeros (:func:`.backward.stuff`).

    im2col's one pass would copy the input ``fh * fw`` times to feed ``c`` one-column
    products (one thread, 1x144x56x56 3x3 stride 2: 8.8x PyTorch's time); the stuffed
    correlation multiplies ``s_h * s_w`` times as many zeros as it has values, by the
    depthwise loop.
    """
    return name in ("auto", "depthwise") and geom.groups == geom.c == geom.k > 1


def _one_pass_reason(name: str, small: bool, geometry, kernel) -> "str | None":
    """Why im2col's backward pass computes both gradients (None: x's goes as a correlation)."""
    if name == "im2col":
        return "asked for: im2col's backward pass computes both gradients"
    if small:
        return "a small layer: one pass over one patch matrix, fewer calls and products"
    if geometry is None:
        return ("strides, padding that copies pixels or padding wider than the kernel: x's "
                "gradient is no correlation of grad_out")
    if not finite(kernel):
        # A NaN or inf weight times the zeros that pad grad_out would reach input pixels
        # that no window with that weight read: im2col's pass multiplies only what was read.
        return "a weight that is not finite: im2col's pass multiplies only what each window read"
    return None


def _kernel_gradient_choice(name: str, x, geom: ConvGeometry, grad_out) -> Choice:
    """Which algorithm computes the kernel's gradient.

    Tap ``(a, b)``'s gradient is the tap's input pixels times ``grad_out``, summed over
    pixels: per-tap products over the padded slab, no patch matrix (shift for groups=1 at
    stride 1, a per-channel reduction for depthwise), a correlation of x with grad_out by
    FFT for large kernels, Winograd F(3x3, 2x2) where the forward pass takes F(2x2, 3x3),
    grouped's row blocks where the forward pass would take them (:func:`prefers_grouped`),
    or im2col's ``patches^T @ grad_out``. auto: where the forward pass would take FFT, so
    does the kernel's gradient, when x and grad_out are finite and small enough for its
    transforms (:func:`fft_in_range`: it sums their products over the whole image); where
    it would take Winograd, so does the kernel's gradient when x and grad_out pass
    :func:`prefers_winograd` over the pixels' sums.
    """
    auto = name == "auto"
    if name in ("depthwise", "auto") and geom.groups == geom.c > 1:
        return Choice("depthwise", "groups == channels: a per-channel reduction per tap")
    if name == "grouped" or (auto and prefers_grouped(x, geom, _itemsize(x, grad_out))):
        return Choice("grouped", "patches^T @ grad_out per group, row block by row block")
    if name == "fft":
        return Choice("fft", "asked for: a correlation of x with grad_out by FFT")
    if auto and prefers_fft(geom) and fft_in_range(x, grad_out, geom, kernel_gradient=True):
        return Choice("fft", "a large kernel: a correlation of x with grad_out by FFT")
    if name == "shift" or (auto and prefers_shift(geom, _itemsize(x, grad_out))):
        if geom.strides == (1, 1):
            return Choice("shift", "one product per tap over the padded slab, no patch matrix")
        return Choice("im2col", "shift's kernel gradient needs strides 1: patches^T @ grad_out")
    pixels = geom.n * geom.out_h * geom.out_w
    if name == "winograd" or (auto and prefers_winograd(geom, x, grad_out, terms=pixels)):
        return Choice("winograd", "F(3x3, 2x2): 16 products per tile and channel pair where im2col makes 36")
    return Choice("im2col", "patches^T @ grad_out, one product per group")


def auto_choice(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry) -> Choice:
    """``(name, why)``: the algorithm ``auto`` uses for this convolution, and the reason.

    The rules, in order:

    1. ``groups == c > 1``: depthwise (im2col would copy the input ``fh * fw`` times to
       feed ``c`` one-column products).
    2. ``1 < groups < c`` with at most :data:`GROUPED_MAX_CHANNELS` channels a group, Numba
       and threadpoolctl installed, x readable by the compiled loops and a row block per
       thread within the memory budget (:func:`.grouped.runs_compiled`): grouped (its patches
       are filled in the core's cache in runs of ``fw * c/groups`` values, where im2col copies
       runs of ``c/groups`` tap by tap into one large patch matrix).
    3. strides 1, groups 1, at least :data:`FFT_MIN_TAPS` taps, ``c * k`` at most
       :data:`FFT_MAX_CHANNELS`, FFT's estimated work below the direct sum's, and x and the
       kernel finite and small enough that no transform overflows (:func:`fft_in_range`):
       FFT. Per output pixel, the direct sum costs ``fh * fw * c * k`` multiply-adds and FFT
       about ``FFT_COST_PER_LOG * (c + k) * log2(padded pixels) + c * k`` (the transforms,
       then the product per frequency).
    4. a 3x3 kernel, strides 1, dilation 1, groups 1, at least :data:`WINOGRAD_MIN_CHANNELS`
       channels in and out, an output of at least :data:`WINOGRAD_MIN_SIZE` rows and columns,
       with more than one thread at least :data:`WINOGRAD_MIN_TILES_PER_THREAD` 2x2 output
       tiles a thread, Numba and threadpoolctl installed, and x and the kernel finite and far
       enough from the dtype's largest value that no transform or sum overflows
       (:func:`prefers_winograd`):
       Winograd F(2x2, 3x3), 16 c k multiply-adds per 2x2 output tile where im2col needs 36 c k.
    5. strides 1, groups 1, ``c <= SHIFT_MAX_CHANNELS``, ``k <= SHIFT_MAX_FILTERS``, at most
       :data:`SHIFT_MAX_PRODUCTS` multiply-adds per pixel, at least :data:`SHIFT_MIN_OUTPUTS`
       output values, and either the compiled loop within the memory budget or a dilated
       kernel of at most :data:`SHIFT_MAX_SPAN` rows and columns: shift and accumulate.
    6. Otherwise im2col: many channels make its patch copy cheap next to one large GEMM.
    """
    taps, c, k = geom.fh * geom.fw, geom.c, geom.k
    if geom.groups == c > 1:
        return Choice("depthwise", "groups == channels: a per-channel multiply per tap, no patch matrix")
    if prefers_grouped(x, geom, _itemsize(x, kernel)):
        return Choice("grouped", f"{geom.groups} groups of {c // geom.groups} channels: patches filled row block "
                                 f"by row block, one product batched over the groups")
    if prefers_fft(geom):
        why = (f"{geom.fh}x{geom.fw} kernel: FFT ~{_fft_work(geom):.0f} < direct {taps * c * k} "
               f"multiply-adds per pixel")
        if fft_in_range(x, kernel, geom, kernel_gradient=False):
            return Choice("fft", why)
        name, _ = _direct_choice(geom, _itemsize(x, kernel))
        return Choice(name, "not FFT: the input is not finite or so large that its transforms could "
                            "overflow (FFT would spread NaN/inf over the image)")
    if _winograd_shape(geom):
        if winograd_values(x, kernel, terms=9 * c):
            return Choice("winograd", f"3x3, stride 1, {c} -> {k} channels: 16 c k multiply-adds per 2x2 tile, "
                                      f"not 36 c k")
        return Choice("im2col", "not Winograd: the input is not finite or so large that its sums could "
                                "overflow (its transforms would turn inf, or an overflow, into NaN)")
    return _direct_choice(geom, _itemsize(x, kernel))


def _itemsize(a: np.ndarray, b: np.ndarray) -> int:
    """Bytes an item of the result of a and b (:func:`numpy.result_type` with float32)."""
    return np.result_type(a.dtype, b.dtype, np.float32).itemsize


def prefers_winograd(geom: ConvGeometry, a: np.ndarray, b: np.ndarray, terms: int) -> bool:
    """Rule 4 of :func:`auto_choice` for the two factors ``a`` and ``b`` (x and the kernel,
    or x and grad_out for the kernel's gradient) of sums of ``terms`` products.

    Winograd's transforms add up to 4 values of each factor and their products' sums are
    combined again, so a sum that would merely be large (or overflow to inf) directly can
    come out NaN (inf - inf): ``a`` and ``b`` must be finite, each within
    ``finfo.max / ranges.WINOGRAD_HEADROOM``, and ``max|a| max|b| terms`` within
    ``finfo.max / WINOGRAD_HEADROOM**2`` of the result dtype (two cheap passes per array,
    max and min, no copy).
    """
    return _winograd_shape(geom) and winograd_values(a, b, terms)


def _winograd_shape(geom: ConvGeometry) -> bool:
    if (_winograd_unsupported(geom) is not None or min(geom.c, geom.k) < WINOGRAD_MIN_CHANNELS
            or min(geom.out_h, geom.out_w) < WINOGRAD_MIN_SIZE):
        return False
    threads = parallel.thread_count()  # asked only of 3x3 layers that pass the rest (a system call)
    tiles = geom.n * ((geom.out_h + 1) // 2) * ((geom.out_w + 1) // 2)
    return threads == 1 or tiles >= threads * WINOGRAD_MIN_TILES_PER_THREAD


def prefers_grouped(x: np.ndarray, geom: ConvGeometry, itemsize: int) -> bool:
    """Rule 2 of :func:`auto_choice`, for a result of ``itemsize`` bytes an item."""
    return (1 < geom.groups < geom.c and geom.c // geom.groups <= GROUPED_MAX_CHANNELS
            and grouped.runs_compiled(x, geom, itemsize, buffers.get_memory_budget()))


def prefers_fft(geom: ConvGeometry) -> bool:
    """Rule 3 of :func:`auto_choice` without its finiteness check (used for the kernel's
    gradient too, which checks only what it needs instead of deciding every rule)."""
    fft_work = _fft_work(geom)
    return fft_work is not None and fft_work < geom.fh * geom.fw * geom.c * geom.k


def prefers_shift(geom: ConvGeometry, itemsize: int) -> bool:
    """Rule 5 of :func:`auto_choice` (used for the kernel's gradient too), for a result of
    ``itemsize`` bytes an item."""
    outputs = geom.n * geom.out_h * geom.out_w * geom.k
    if not (geom.strides == (1, 1) and geom.groups == 1 and geom.c <= SHIFT_MAX_CHANNELS
            and geom.k <= SHIFT_MAX_FILTERS and geom.fh * geom.fw * geom.c * geom.k <= SHIFT_MAX_PRODUCTS
            and outputs >= SHIFT_MIN_OUTPUTS):
        return False
    if compiled.enabled() and compiled.fits(geom, itemsize, buffers.get_memory_budget()):
        return True
    spans = (geom.fh - 1) * geom.dilation[0] + 1, (geom.fw - 1) * geom.dilation[1] + 1
    return max(spans) <= SHIFT_MAX_SPAN


def _direct_choice(geom: ConvGeometry, itemsize: int) -> Choice:
    """The direct-summation algorithm for ``geom``: shift or im2col (rules 5 and 6)."""
    if prefers_shift(geom, itemsize):
        return Choice("shift", f"{geom.c} input channel(s): one product per tap beats copying a thin patch matrix")
    return Choice("im2col", "many channels, strides or a small output: one large GEMM")


def _fft_work(geom: ConvGeometry) -> "float | None":
    """FFT's estimated work per output pixel, or None when rule 3's shape tests fail."""
    taps, c, k = geom.fh * geom.fw, geom.c, geom.k
    if _fft_unsupported(geom) is not None or taps < FFT_MIN_TAPS or c * k > FFT_MAX_CHANNELS:
        return None
    if geom.n * geom.out_h * geom.out_w == 0:
        return None
    pixels = (geom.h + sum(geom.pads[0])) * (geom.w + sum(geom.pads[1]))
    return FFT_COST_PER_LOG * (c + k) * math.log2(max(pixels, 2)) + c * k


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, grad_out: np.ndarray, algorithm="auto") -> Choice:
    """The algorithm of the kernel's gradient alone (see :func:`_kernel_gradient_choice`):
    ``algorithm`` where it can compute ``geom``, auto's choice otherwise."""
    name = check_name(algorithm)
    if name != "auto" and unsupported(name, geom) is not None:
        name = "auto"
    return _kernel_gradient_choice(name, x, geom, grad_out)
