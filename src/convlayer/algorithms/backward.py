"""The two gradients of ``conv2d_backward``, each through the fastest route that applies.

*Input gradient.* Output pixel ``(i, j)`` read input pixel ``(i + a * dh - top, ...)``
through tap ``(a, b)``, so x's gradient at ``(y, x)`` collects ``grad_out`` at
``(y + top - a * dh, ...)`` times tap ``(a, b)``. At stride 1 that is itself a
cross-correlation: of ``grad_out``, padded by ``span - 1 - top`` before and
``span - 1 - bottom`` after, with the kernel rotated by 180 degrees and its input and output
channels swapped (per group). So it goes through :func:`.choose.correlate`, and every
forward algorithm (and ``auto``'s choice) serves the backward pass too. With strides, with
padding that copies pixels ('reflect' and kin: their gradient folds back onto the border)
or with more padding than the kernel spans, im2col's backward pass computes it instead;
``auto`` takes that single pass for small layers too (fewer than ``SHIFT_MIN_OUTPUTS``
output values) unless the kernel's gradient has a route of its own (depthwise, FFT,
Winograd).

*Kernel gradient.* Tap ``(a, b)``'s gradient is the tap's input pixels times ``grad_out``,
summed over pixels: per-tap products over the padded slab, no patch matrix (shift for
groups=1 at stride 1, a per-channel reduction for depthwise), a correlation of x with
grad_out by FFT for large kernels, Winograd F(3x3, 2x2) where the forward pass takes
F(2x2, 3x3), or im2col's ``patches^T @ grad_out``.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry, span
from . import choose, depthwise, fft, im2col, shift, winograd


def correlate_backward(x, kernel, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, budget: int,
                       algorithm="auto") -> tuple[np.ndarray, dict]:
    """Add x's gradient into ``grad_x`` (zeros); return the kernel's (fh, fw, c // groups, k).

    Arguments as for :func:`.im2col.correlate_backward`. ``algorithm`` names the route for
    both gradients where it applies ('im2col' is im2col's backward pass throughout).
    Also returns ``{"input": name, "kernel": name}``, the routes taken.
    """
    name = choose.check_name(algorithm)
    if name != "auto":
        choose.resolve(name, x, kernel, geom)  # raises for an unsupported explicit choice
    kernel_route = _kernel_route(name, x, kernel, geom, grad_out)
    outputs = geom.n * geom.out_h * geom.out_w * geom.k
    # A small layer is quickest in one pass over one patch matrix: fewer calls, fewer products.
    small = name == "auto" and kernel_route == "im2col" and outputs < choose.SHIFT_MIN_OUTPUTS
    # A NaN or inf weight times the zeros that pad grad_out would reach input pixels that
    # no window with that weight read: im2col's pass multiplies only what was read.
    if name == "im2col" or small or _transposed_pads(geom, pad_mode) is None or not choose.finite(kernel):
        routes = {"input": "im2col", "kernel": "im2col"}
        return im2col.correlate_backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget), routes
    routes = {"input": _input_gradient(kernel, geom, pad_mode, grad_out, grad_x, budget, name),
              "kernel": kernel_route}
    if kernel_route == "shift":
        grad_kernel = shift.kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget)
    elif kernel_route == "fft":
        grad_kernel = fft.kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget)
    elif kernel_route == "depthwise":
        grad_kernel = depthwise.kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget)
    elif kernel_route == "winograd":
        grad_kernel = winograd.kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget)
    else:
        grad_kernel = im2col.correlate_backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget,
                                                input_grad=False)
    return grad_kernel, routes


def _kernel_route(name: str, x, kernel, geom: ConvGeometry, grad_out) -> str:
    """Which algorithm computes the kernel's gradient.

    auto: where the forward pass would take FFT, so does the kernel's gradient (when x
    and grad_out are finite and small enough for its transforms, :func:`.choose.fft_in_range`:
    it sums their products over the whole image); where it would
    take Winograd, so does the kernel's gradient, F(3x3, 2x2), when x and grad_out are
    finite and far enough from the dtype's largest value that no transform or sum over the
    pixels overflows (:func:`.choose.prefers_winograd`).
    """
    if name in ("depthwise", "auto") and geom.groups == geom.c > 1:
        return "depthwise"
    if name == "fft":
        return "fft"
    if name == "auto" and choose.prefers_fft(geom) and choose.fft_in_range(x, grad_out, geom, kernel_gradient=True):
        return "fft"
    if name == "shift" or (name == "auto" and choose.prefers_shift(geom)):
        return "shift" if geom.strides == (1, 1) else "im2col"
    pixels = geom.n * geom.out_h * geom.out_w
    if name == "winograd" or (name == "auto" and choose.prefers_winograd(geom, x, grad_out, terms=pixels)):
        return "winograd"
    return "im2col"


def _input_gradient(kernel, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, budget: int,
                    name: str) -> str:
    """x's gradient as a stride-1 correlation of grad_out; returns the algorithm that ran."""
    pads = _transposed_pads(geom, pad_mode)
    transposed = geom._replace(
        n=geom.n, h=geom.out_h, w=geom.out_w, c=geom.k, k=geom.c, pads=pads, out_h=geom.h,
        out_w=geom.w, kernel_rank=4, batched=True, channels_first=False,
    )
    weights = transposed_kernel(kernel, geom.groups)
    if name != "auto" and choose.unsupported(name, transposed) is not None:
        name = "auto"  # e.g. a depthwise layer with a channel multiplier: its transpose is not
    if grad_out.size == 0:
        return name  # grad_x stays zero
    return choose.correlate(grad_out, weights, transposed, "constant", grad_x, budget, name)


def _transposed_pads(geom: ConvGeometry, pad_mode: str):
    """grad_out's padding for the input gradient as a correlation; None when it is not one."""
    if geom.strides != (1, 1):
        return None
    if pad_mode != "constant" and any(geom.pads[0] + geom.pads[1]):
        return None
    span_h, span_w = span(geom.fh, geom.dilation[0]), span(geom.fw, geom.dilation[1])
    (top, bottom), (left, right) = geom.pads
    pads = ((span_h - 1 - top, span_h - 1 - bottom), (span_w - 1 - left, span_w - 1 - right))
    if min(pads[0] + pads[1]) < 0:
        return None
    return pads


def transposed_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """(fh, fw, c // groups, k) to the input gradient's kernel, (fh, fw, k // groups, c).

    Rotated by 180 degrees, input and output channels swapped within each group.
    """
    fh, fw, cg, k = kernel.shape
    per_group = kernel[::-1, ::-1].reshape(fh, fw, cg, groups, k // groups)
    return np.ascontiguousarray(per_group.transpose(0, 1, 4, 3, 2).reshape(fh, fw, k // groups, groups * cg))


def bias_gradient(grad_out: np.ndarray, dtype, budget: int) -> np.ndarray:
    """grad_out (n, out_h, out_w, k) summed over images and pixels: (k,) in ``dtype``.

    ``np.sum(grad_out, axis=(0, 1, 2))`` over channels-last memory runs an inner loop of k
    items per pixel (3.7 ms for 512 x 512 x 2); here a contiguous grad_out is summed by
    ``ones @ block`` in float64 (BLAS, 0.3 ms), block by block so that the float64 copy
    and the ones stay within ``budget`` bytes. One channel, and other layouts
    (channels-first views), keep NumPy's sum, which runs along contiguous memory there.
    """
    k = grad_out.shape[-1]
    if k == 1 or not grad_out.flags.c_contiguous or grad_out.size == 0:  # sums along memory
        return np.sum(grad_out, axis=(0, 1, 2), dtype=dtype)
    rows = grad_out.reshape(-1, k)
    # float64: the block's copy and its ones, within the budget and 1 MiB (malloc reuses
    # such blocks, where a fresh mapping of several MB costs page faults: 7.4 ms against 3.3)
    step = max(1, min(2**20, budget) // (8 * (k + 1)))
    total = np.zeros(k)
    ones = np.ones(min(step, rows.shape[0]))
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step].astype(np.float64)  # one dtype: BLAS, not NumPy's loop
        total += ones[: block.shape[0]] @ block
        del block  # before the next block's copy exists
    return total.astype(dtype)
