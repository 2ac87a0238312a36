"""Which route computes a transposed convolution, x's gradient alone: pure decisions.

The transposed convolution is the input gradient of a forward convolution (see
:mod:`convlayer.transposed`). :func:`input_gradient` names its route and says why, as
:mod:`.choose` does for conv2d's passes (whose rules it reuses); :func:`.dispatch.input_gradient`
runs it. The kernel's gradient alone is :func:`.choose.kernel_gradient`'s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..shapes import ConvGeometry, span
from .backward import transposed_geometry
from .choose import Choice, check_name, forward, unsupported
from .ranges import finite

# Of the budget, the share the zero-stuffed grad_out of a chunk of images may take.
STUFFED_SHARE = 0.5


class InputGradientPlan(NamedTuple):
    """How x's gradient alone (the transposed convolution) is computed.

    ``transposed`` is its geometry as a stride-1 correlation, computed by the forward
    algorithm ``route``: of grad_out itself (strides 1) or, with ``stuffed``, of grad_out
    with ``s - 1`` zeros stuffed between its pixels. None when ``route`` is im2col's col2im
    (one GEMM per block, its patch gradients added back onto the input).
    """

    route: Choice
    transposed: "ConvGeometry | None"
    stuffed: bool = False


def stuffed_geometry(geom: ConvGeometry) -> ConvGeometry:
    """``geom`` at stride 1, with an output at every position of the stuffed grad_out
    (``(out_h - 1) * s_h + 1`` rows): the same padding, the same input."""
    (sh, sw) = geom.strides
    return geom._replace(strides=(1, 1), out_h=(geom.out_h - 1) * sh + 1, out_w=(geom.out_w - 1) * sw + 1)


def input_gradient(grad_out: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, algorithm="auto",
                   itemsize: int = 4, budget: "int | None" = None) -> InputGradientPlan:
    """The route of x's gradient alone: the forward pass of a transposed convolution.

    At stride 1 with padding no wider than the kernel it is a correlation of grad_out with
    the rotated, channel-swapped kernel (:func:`.backward.transposed_geometry`): any forward
    algorithm computes it, ``algorithm`` where it applies and auto's choice
    (:func:`.choose.auto_choice`: Winograd, FFT, depthwise, shift or im2col by shape)
    otherwise.

    With strides it is col2im: ``grad_out @ weights^T`` (one GEMM, no product with a
    stuffed zero) added back onto the pixels each window read, block by block within the
    budget. The other route correlates grad_out stuffed with ``s - 1`` zeros between its
    pixels, ``s_h * s_w`` times the multiply-adds. It is taken for a depthwise transposed
    convolution (``groups`` equal to its input channels), whose col2im products would have
    one column each (measured 21x PyTorch's time on 4x32x32x64, 4x4, stride 2), and where
    an algorithm other than im2col is asked for and applies; in both cases only when one
    image's stuffed grad_out takes at most :data:`STUFFED_SHARE` of ``budget`` (``itemsize``
    bytes a value) and the last window ends on the padded input's last row and column.

    Where a weight is not finite, or 'im2col' is asked for, it is col2im, which multiplies
    only what each window read (a correlation would multiply the weight by padding zeros).
    """
    name = check_name(algorithm)
    if name == "im2col":
        return InputGradientPlan(Choice("im2col", "asked for: col2im of one GEMM"), None)
    if not finite(kernel):
        return InputGradientPlan(Choice("im2col", "a weight that is not finite: col2im multiplies only what "
                                                  "each window read"), None)
    if geom.strides == (1, 1):
        return _correlation_plan(grad_out, kernel, transposed_geometry(geom, "constant"), name, False)
    depthwise = geom.groups == geom.k > 1
    stuffed = stuffed_geometry(geom)
    image = stuffed.out_h * stuffed.out_w * geom.k * itemsize
    fits = budget is None or image <= budget * STUFFED_SHARE
    # the last window ends on the padded input's last row and column: the correlation gives all of x
    whole = all((size + sum(pads) - span(f, d)) % s == 0 for size, pads, f, d, s in
                zip((geom.h, geom.w), geom.pads, (geom.fh, geom.fw), geom.dilation, geom.strides))
    if (depthwise or name != "auto") and fits and whole:
        return _correlation_plan(grad_out, kernel, transposed_geometry(stuffed, "constant"), name, True)
    return InputGradientPlan(Choice("im2col", "strides: col2im of one GEMM, no product with a stuffed zero"), None)


def _correlation_plan(grad_out, kernel, geometry, name: str, stuffed: bool) -> InputGradientPlan:
    """x's gradient as a correlation by ``name`` (auto's choice where it does not apply);
    col2im when the padding is wider than the kernel (no correlation: ``geometry`` None)."""
    if geometry is None:
        return InputGradientPlan(Choice("im2col", "padding wider than the kernel: col2im of one GEMM"), None)
    if name != "auto" and unsupported(name, geometry) is not None:
        name = "auto"
    return InputGradientPlan(forward(grad_out, kernel, geometry, name), geometry, stuffed)
