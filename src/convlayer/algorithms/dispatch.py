"""Runs what :mod:`.choose` decides: one table from algorithm name to module.

Every module of :data:`ALGORITHMS` exposes the same two functions:

- ``correlate(x, kernel, geom, pad_mode, out, budget)`` fills ``out`` (n, out_h, out_w, k)
  with the cross-correlation of x (n, h, w, c) and kernel (fh, fw, c // groups, k);
- ``kernel_gradient(x, geom, pad_mode, grad_out, dtype, budget)`` returns the kernel's
  gradient, (fh, fw, c // groups, k), of ``sum(grad_out * correlate(x, kernel))``.

x's gradient goes through a module's ``correlate`` (as a correlation of grad_out, see
:mod:`.backward`) or, where :func:`.choose.backward` says so, through the backward pass of
im2col or grouped (``correlate_backward``), which computes both gradients in one. Windows
that read a small part of a huge padded input are gathered first (:mod:`.spread`) and each chunk is run the same way; channels-first
arrays are copied channels-last a chunk of images at a time (:mod:`.layout`), except for 1x1
layers, which im2col multiplies in either layout.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..shapes import ConvGeometry
from . import (backward, choose, choose_transpose, depthwise, fft, grouped, im2col, im2col_backward, layout,
               planar, pointwise, shift, spread, winograd)

# name -> what computes it: a module (or, for im2col, whose gradients are a module of their
# own, a namespace) with correlate, correlate_backward and kernel_gradient.
_IM2COL = SimpleNamespace(correlate=im2col.correlate, correlate_backward=im2col_backward.correlate_backward,
                          kernel_gradient=im2col_backward.kernel_gradient)
ALGORITHMS = {"im2col": _IM2COL, "shift": shift, "depthwise": depthwise, "fft": fft, "winograd": winograd,
              "grouped": grouped}


def correlate(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int,
              algorithm="auto", bias=None, low=None, high=None, activation=None) -> None:
    """Fill ``out`` with the cross-correlation, by the algorithm :func:`.choose.forward` names,
    plus ``bias`` ((k,) or None) and clamped to ``[low, high]`` (None: unbounded; a conv2d
    bias, an ONNX Conv's Relu or Clip), or with ``activation`` (``(name, alpha, beta)`` of
    :func:`.layout.add_bias_activation`, for an ``out`` that pass takes: an ONNX Conv's
    Sigmoid, Swish, HardSigmoid or HardSwish) applied after the bias; with a fourth item,
    ``sums``, that pass also writes each output row's channel sums into it.

    Arguments as for the modules' ``correlate``; ``algorithm`` is ``"auto"`` or a name of
    :data:`.choose.ALGORITHMS` (ValueError for an unknown one or one that cannot compute it).
    The depthwise loop adds and clamps each sum as it stores it, and each of its threads
    applies the activation to its rows (:func:`.depthwise.correlate_biased`); every other
    route adds the bias and clamps, or activates, in one pass after (:func:`.layout.add_per_channel`,
    :func:`.layout.add_bias_activation`).
    """
    epilogue = None if bias is None and low is None and high is None and activation is None else (
        bias, low, high, activation)
    if _routed(x, kernel, geom, pad_mode, out, budget, algorithm, epilogue) or epilogue is None:
        return
    if activation is not None:
        if not layout.add_bias_activation(out, bias, *activation):
            raise ValueError(f"activation {activation[0]!r} needs a C-contiguous float32 output and the compiled "
                             f"loops; got {out.dtype} (see layout.activation_ready)")
    elif bias is not None:
        layout.add_per_channel(out, bias, low, high)
    else:
        layout.clamp(out, low, high)


def _routed(x, kernel, geom: ConvGeometry, pad_mode: str, out: np.ndarray, budget: int, algorithm,
            epilogue=None) -> bool:
    """Fill ``out`` by :func:`correlate`'s route; return whether that route also added and
    clamped (or activated) ``epilogue``, ``(bias, low, high, activation)`` or None (:func:`_run`)."""
    if _tiny_pointwise(geom, algorithm) and pointwise.correlate(x, im2col.weight_matrix(kernel, 1)[0], geom, out,
                                                               budget):
        return False
    if spread.wanted(geom, out.itemsize, budget):
        _correlate_gathered(x, kernel, geom, pad_mode, out, budget, algorithm)
        return False
    if not layout.strided(x, out) or pointwise.applies(geom):
        return _correlate(x, kernel, geom, pad_mode, out, budget, algorithm, epilogue)
    name = choose.forward(x, kernel, geom, algorithm).name  # decided once, on the whole input
    plan = None
    if not _reads_views(name, x, kernel, geom, pad_mode, out, budget):
        image = geom.h * geom.w * geom.c * x.itemsize + geom.out_h * geom.out_w * geom.k * out.itemsize
        plan = layout.chunks(geom.n, image, budget)
    if plan is None:
        return _run(name, x, kernel, geom, pad_mode, out, budget, epilogue)
    for n0, n1, left in plan:
        target = np.empty((n1 - n0,) + out.shape[1:], out.dtype)
        ALGORITHMS[name].correlate(layout.contiguous(x[n0:n1]), kernel, geom._replace(n=n1 - n0), pad_mode,
                                   target, left)
        layout.write_back(out[n0:n1], target)
    return False


def _run(name: str, x, kernel, geom: ConvGeometry, pad_mode: str, out, budget: int, epilogue=None) -> bool:
    """Algorithm ``name``'s ``correlate``; return whether it also applied ``epilogue`` (see
    :func:`_routed`): the depthwise loop adds the bias and clamps each sum as it stores it,
    and activates its rows (:func:`.depthwise.correlate_biased`), where that loop applies."""
    if epilogue is not None and name == "depthwise" and depthwise.correlate_biased(x, kernel, geom, pad_mode, out,
                                                                                   budget, *epilogue):
        return True
    ALGORITHMS[name].correlate(x, kernel, geom, pad_mode, out, budget)
    return False


def _tiny_pointwise(geom: ConvGeometry, algorithm) -> bool:
    """The lean path of small 1x1 layers (the 1x1 images of squeeze-excite blocks): a
    stride-1 1x1 layer without padding with fewer outputs than :data:`.choose.SHIFT_MIN_OUTPUTS`,
    which every rule of :func:`.choose.auto_choice` gives to im2col, whose 1x1 layers are
    :func:`.pointwise.correlate`'s products; so the choice, the gather test and im2col's own
    steps are skipped (1x1x1x120 -> 32: 19.6 to 12.4 us a call; PyTorch 5-6 us). Its
    gradients, x's (a 1x1 layer from k channels to c) and the kernel's, are pointwise's two
    products by the same rules (conv2d_backward: 53 to 34 us), on channels-first planes as
    they lie where those allow (:func:`.pointwise.plane_gradients`: 1x28x28x144 -> 40 0.30-0.32
    -> 0.21 ms, 1x14x14x1024 -> 256 1.42-1.45 -> 0.98, where the other products read
    transposing copies and added x's gradient through the strided view)."""
    pixels = geom.n * geom.out_h * geom.out_w
    return (algorithm in ("auto", "im2col") and geom.strides == (1, 1) and geom.c > 0
            and 0 < pixels * max(geom.c, geom.k) < choose.SHIFT_MIN_OUTPUTS and pointwise.applies(geom))


def _reads_views(name: str, x, kernel, geom: ConvGeometry, pad_mode: str, out, budget: int) -> bool:
    """Whether algorithm ``name`` computes a channels-first call on its views as well as on
    channels-last copies: the depthwise loop (it gathers each row's channels from their
    planes), im2col's patches built from the planes where one image's fit the budget
    (:mod:`.planar`: the product written plane by plane) and its row blocks (a compiled
    fill reads the patches, each output row goes back to the planes by itself; copying a
    stem's 64-channel output back to NCHW took 2-3x the layer)."""
    if name == "depthwise":
        return depthwise.reads_views(x, kernel, geom, out)
    planes = planar.applies(geom, pad_mode, views=True) and planar.fits(geom, out.itemsize, budget)
    return name == "im2col" and (planes or im2col.takes_row_blocks(x, geom, out.itemsize, budget))


def correlate_backward(x, kernel, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, budget: int,
                       algorithm="auto") -> np.ndarray:
    """Add x's gradient into ``grad_x`` (zeros); return the kernel's, (fh, fw, c // groups, k).

    The routes are :func:`.choose.backward`'s; ``grad_out`` is (n, out_h, out_w, k) of any
    real dtype, ``grad_x`` (n, h, w, c) in the result dtype.
    """
    tiny = _tiny_pointwise(geom, algorithm)  # both routes would be pointwise's products: one call
    strided = geom.n and layout.strided(x, grad_out, grad_x)
    if tiny or (strided and algorithm in ("auto", "im2col") and pointwise.applies(geom)):
        # a 1x1 layer: its products on NCHW planes as they lie, or (a small layer) on the arrays
        grad_weights = im2col_backward.new_gradient(im2col.lies_filters_first(kernel), geom, grad_x.dtype)[0]
        weights = im2col.weight_matrix(kernel, 1)[0]
        if (pointwise.plane_gradients(x, weights, geom, grad_out, grad_x, grad_weights)
                or tiny and pointwise.gradients(x, weights, geom, grad_out, grad_x, grad_weights, budget)):
            return grad_weights.reshape(1, 1, geom.c, geom.k)
    if spread.wanted(geom, 2 * grad_x.itemsize, budget):  # the chunk and its gradient
        return _backward_gathered(x, kernel, geom, pad_mode, grad_out, grad_x, budget, algorithm)
    plan = None
    if strided:
        image = geom.h * geom.w * geom.c * (x.itemsize + grad_x.itemsize)
        plan = layout.chunks(geom.n, image + geom.out_h * geom.out_w * geom.k * grad_out.itemsize, budget)
    if plan is None:
        return _backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget, algorithm)
    grad_kernel = None
    for n0, n1, left in plan:
        grad_part = np.zeros((n1 - n0,) + grad_x.shape[1:], grad_x.dtype)
        grad_kernel = _summed(grad_kernel, _backward(layout.contiguous(x[n0:n1]), kernel, geom._replace(n=n1 - n0),
                                                     pad_mode, layout.contiguous(grad_out[n0:n1]), grad_part, left,
                                                     algorithm))
        layout.write_back(grad_x[n0:n1], grad_part)  # zeros on entry: written, not added
    return np.zeros(kernel.shape, grad_x.dtype) if grad_kernel is None else grad_kernel


def _summed(total, part: np.ndarray) -> np.ndarray:
    """``total + part``, in place into ``total``; ``part`` itself when ``total`` is None. A
    chunk's gradient starts the sum rather than being added into fresh zeros: that reads
    their pages before writing them, which right after a BLAS call made a whole 1x1 backward
    pass 13.9 ms instead of 1.8 (see :func:`.pointwise.gradients`)."""
    if total is None:
        return part
    total += part
    return total


def input_gradient(kernel, geom: ConvGeometry, grad_out, grad_x, budget: int, algorithm="auto") -> None:
    """Fill ``grad_x`` (zeros on entry) with x's gradient alone: the transposed convolution
    of ``grad_out`` (n, out_h, out_w, k), by the route :func:`.choose_transpose.input_gradient` names.

    A strided ``grad_x`` (a channels-first result) is computed channels-last a chunk of
    images at a time and copied in: a transposing copy costs about half a transposing
    addition, and col2im's addition onto the strided view costs three times that."""
    plan = choose_transpose.input_gradient(grad_out, kernel, geom, algorithm, grad_x.itemsize, budget)
    if plan.stuffed:
        _stuffed_correlation(grad_out, kernel, plan.transposed, plan.route.name, geom.strides, grad_x, budget)
        return
    if plan.transposed is not None:
        correlate(grad_out, backward.transposed_kernel(kernel, geom.groups), plan.transposed, "constant", grad_x,
                  budget, plan.route.name)
        return
    chunks = None
    if geom.n and layout.strided(grad_out, grad_x):
        image = geom.h * geom.w * geom.c * grad_x.itemsize + geom.out_h * geom.out_w * geom.k * grad_out.itemsize
        chunks = layout.chunks(geom.n, image, budget)
    if chunks is None:
        im2col_backward.input_gradient(kernel, geom, grad_out, grad_x, budget)
        return
    for n0, n1, left in chunks:
        grad_part = np.zeros((n1 - n0,) + grad_x.shape[1:], grad_x.dtype)
        im2col_backward.input_gradient(kernel, geom._replace(n=n1 - n0), layout.contiguous(grad_out[n0:n1]),
                                       grad_part, left)
        layout.write_back(grad_x[n0:n1], grad_part)


def _stuffed_correlation(grad_out, kernel, geometry: ConvGeometry, name: str, strides, grad_x, budget: int) -> None:
    """Fill grad_x with the stride-1 correlation ``geometry`` of grad_out stuffed with zeros
    (:func:`.backward.stuff`) by algorithm ``name``, a chunk of images at a time (the stuffed
    copies within :data:`.choose_transpose.STUFFED_SHARE` of the budget): x's gradient of a
    strided convolution, and the strided transposed convolution."""
    image = geometry.h * geometry.w * geometry.c * grad_x.itemsize
    per_chunk = max(1, min(geometry.n, int(budget * choose_transpose.STUFFED_SHARE) // max(image, 1)))
    rotated = backward.transposed_kernel(kernel, geometry.groups)
    for n0 in range(0, geometry.n, per_chunk):
        n1 = min(n0 + per_chunk, geometry.n)
        stuffed = backward.stuff(grad_out[n0:n1], strides, grad_x.dtype)
        correlate(stuffed, rotated, geometry._replace(n=n1 - n0), "constant", grad_x[n0:n1],
                  max(budget - stuffed.nbytes, 1), name)
        del stuffed  # before the next chunk's exists


def correlate_with_kernel_gradient(x, kernel, geom: ConvGeometry, out, grad_out, budget: int,
                                   algorithm="auto") -> np.ndarray:
    """Fill ``out`` with the correlation of x and kernel (zero padding) and return the kernel's
    gradient of ``sum(grad_out * correlate(x, kernel))``: the transposed convolution's
    backward pass. ``algorithm`` is used where it applies, auto's choice elsewhere; where
    both are im2col's patch matrices (:func:`.im2col_backward.shares_patches`, C-contiguous arrays),
    one serves both (1x64x64x64 -> 32, 3x3, stride 2: 3.8 to 3.4 ms on one core)."""
    name = choose.check_name(algorithm)
    if name != "auto" and choose.unsupported(name, geom) is not None:
        name = "auto"  # as the forward pass: the algorithm where it applies
    both = (choose.forward(x, kernel, geom, name).name, choose.kernel_gradient(x, geom, grad_out, name).name)
    plain = not layout.strided(x, out, grad_out) and not spread.wanted(geom, out.itemsize, budget)
    if (both == ("im2col", "im2col") and plain and geom.n * geom.out_h * geom.out_w
            and im2col_backward.shares_patches(x, geom, out.itemsize, budget)):
        return im2col_backward.correlate_with_kernel_gradient(x, kernel, geom, out, grad_out, budget)
    correlate(x, kernel, geom, "constant", out, budget, name)
    return kernel_gradient(x, geom, grad_out, out.dtype, budget, name)


def kernel_gradient(x, geom: ConvGeometry, grad_out, dtype, budget: int, algorithm="auto") -> np.ndarray:
    """The kernel's gradient alone, (fh, fw, c // groups, k), of ``sum(grad_out * correlate(x, kernel))``
    with zero padding, by :func:`.choose.kernel_gradient`'s algorithm."""
    module = ALGORITHMS[choose.kernel_gradient(x, geom, grad_out, algorithm).name]
    chunks = None
    if geom.n and layout.strided(x, grad_out):
        image = geom.h * geom.w * geom.c * x.itemsize + geom.out_h * geom.out_w * geom.k * grad_out.itemsize
        chunks = layout.chunks(geom.n, image, budget)
    if chunks is None:
        return module.kernel_gradient(x, geom, "constant", grad_out, dtype, budget)
    total = None
    for n0, n1, left in chunks:
        total = _summed(total, module.kernel_gradient(layout.contiguous(x[n0:n1]), geom._replace(n=n1 - n0),
                                                      "constant", layout.contiguous(grad_out[n0:n1]), dtype, left))
    return np.zeros((geom.fh, geom.fw, geom.c // geom.groups, geom.k), dtype) if total is None else total


def _correlate(x, kernel, geom: ConvGeometry, pad_mode: str, out, budget: int, algorithm, epilogue=None) -> bool:
    return _run(choose.forward(x, kernel, geom, algorithm).name, x, kernel, geom, pad_mode, out, budget, epilogue)


def _backward(x, kernel, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, budget: int, algorithm) -> np.ndarray:
    plan = choose.backward(x, kernel, geom, pad_mode, grad_out, algorithm)
    if plan.transposed is None:
        return ALGORITHMS[plan.input.name].correlate_backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget)
    stuffed_image = plan.transposed.h * plan.transposed.w * geom.k * grad_x.itemsize
    if plan.stuffed and stuffed_image > budget * choose_transpose.STUFFED_SHARE:
        return im2col_backward.correlate_backward(x, kernel, geom, pad_mode, grad_out, grad_x, budget)
    if grad_out.size and plan.stuffed:  # the rotated kernel is freed before the kernel's gradient runs
        _stuffed_correlation(grad_out, kernel, plan.transposed, plan.input.name, geom.strides, grad_x, budget)
    elif grad_out.size:
        ALGORITHMS[plan.input.name].correlate(grad_out, backward.transposed_kernel(kernel, geom.groups),
                                              plan.transposed, "constant", grad_x, budget)
    if plan.kernel.name == "im2col":  # in the kernel's memory order (a channels-first kernel's: no copy back)
        return im2col_backward.kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget, like=kernel)
    return ALGORITHMS[plan.kernel.name].kernel_gradient(x, geom, pad_mode, grad_out, grad_x.dtype, budget)


def _correlate_gathered(x, kernel, geom: ConvGeometry, pad_mode: str, out, budget: int, algorithm) -> None:
    """:func:`correlate`, chunk by chunk on gathered input."""
    name = _checked(algorithm, x, kernel, geom)
    plan = spread.Plan(geom, pad_mode, out.itemsize, budget)
    for n0, n1, r0, r1, rows, sub, mode in plan.chunks():
        gathered = spread.gather(x[n0:n1], rows, plan.cols, sub)
        _correlate(gathered, kernel, sub, mode, out[n0:n1, r0:r1], budget - plan.work, _still(name, sub))


def _backward_gathered(x, kernel, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, budget: int,
                       algorithm) -> np.ndarray:
    """:func:`correlate_backward`, chunk by chunk on gathered input."""
    name = _checked(algorithm, x, kernel, geom)
    plan = spread.Plan(geom, pad_mode, 2 * grad_x.dtype.itemsize, budget)  # the chunk and its gradient
    grad_kernel = np.zeros(kernel.shape, grad_x.dtype)
    for n0, n1, r0, r1, rows, sub, mode in plan.chunks():
        gathered = spread.gather(x[n0:n1], rows, plan.cols, sub)
        grad_gathered = np.zeros(gathered.shape, grad_x.dtype)
        grad_kernel += _backward(gathered, kernel, sub, mode, grad_out[n0:n1, r0:r1], grad_gathered,
                                 budget - plan.work, _still(name, sub))
        spread.fold_gradient(grad_x[n0:n1], rows, plan.cols, grad_gathered)
    return grad_kernel


def _checked(algorithm, x, kernel, geom: ConvGeometry) -> str:
    """``algorithm``'s name; ValueError for an unknown one or one that cannot compute ``geom``."""
    name = choose.check_name(algorithm)
    return name if name == "auto" else choose.forward(x, kernel, geom, name).name


def _still(name: str, sub: ConvGeometry) -> str:
    """The algorithm asked for, where it can compute the gathered form; else auto's choice."""
    return name if name == "auto" or choose.unsupported(name, sub) is None else "auto"
