"""1x1 convolutions without padding: matrix products over the channels, no patch matrix.

A 1x1 kernel's patch matrix is the input itself (every ``strides``-th pixel), so im2col's
slab, patch copy and col2im are all skipped: the forward pass is one product per chunk of
images, in the layout the arrays have (channels-last or NCHW), and the gradients are two
products (on NCHW planes as they lie at stride 1, :func:`plane_gradients`). :mod:`.im2col`
calls these first and goes on with its general blocks where they return False;
:mod:`.dispatch` leaves channels-first 1x1 calls to them, uncopied.
"""

from __future__ import annotations

import numpy as np

from ..shapes import ConvGeometry


def applies(geom: ConvGeometry) -> bool:
    """Whether ``geom`` is a 1x1 convolution without padding, groups=1: its patch matrix
    is the input itself (every ``strides``-th pixel), so no slab or patch copy is needed."""
    return geom.fh == geom.fw == 1 and geom.groups == 1 and geom.pads == ((0, 0), (0, 0))


def correlate(x, weights: np.ndarray, geom: ConvGeometry, out: np.ndarray, budget: int) -> bool:
    """Fill ``out`` with a 1x1 convolution (:func:`applies`) as matrix products on the
    arrays as they lie; return False, computing nothing, where they do not allow it.

    Channels-last, each image's pixels are the rows of a ``(pixels, c)`` matrix times the
    ``(c, k)`` weights; channels-first (both ``x`` and ``out`` views of NCHW arrays), each
    image is a ``(c, pixels)`` matrix and ``(k, c) @ (c, pixels)`` lands in the NCHW output
    as it is: no transposing copy either way, except for images small next to the kernel,
    which go side by side into one product (:func:`side_by_side`). Only strided pixels
    (strides > 1) or another dtype are copied, a chunk of images at a time within
    ``budget``. The sums are BLAS's, as in the general path. This is also the lean path for
    tiny calls (a 1x1 convolution of a 1x1 image in squeeze-excite blocks): no index maps,
    blocks or work buffer.
    """
    if not applies(geom):
        return False
    sh, sw = geom.strides
    pixels = geom.out_h * geom.out_w
    first = _is_channels_first(x) and _is_channels_first(out)
    if not first and not out.flags.c_contiguous:
        return False
    copied = (sh, sw) != (1, 1) or x.dtype != out.dtype or not (first or x.flags.c_contiguous)
    per_image = pixels * geom.c * out.itemsize if copied else 0
    beside = first and geom.n > 1 and side_by_side(geom)
    if beside:  # the images' columns and their product
        per_image = pixels * (geom.c + geom.k) * out.itemsize
    if per_image > budget:
        return False
    images = geom.n if not per_image else max(1, budget // per_image)
    if first:
        source, target, matrix = x.transpose(0, 3, 1, 2), out.transpose(0, 3, 1, 2), weights.T
    else:
        source, target, matrix = x, out, weights
    for n0 in range(0, geom.n, images):
        n1 = min(n0 + images, geom.n)
        if first:
            results = target[n0:n1].reshape(n1 - n0, geom.k, pixels)
            if beside:
                _beside(matrix, source[n0:n1, :, ::sh, ::sw], results)
                continue
            part = source[n0:n1, :, ::sh, ::sw].astype(out.dtype, copy=False).reshape(n1 - n0, geom.c, pixels)
            for image in range(n1 - n0):  # one 2-D product per image
                np.matmul(matrix, part[image], out=results[image])
            del part  # before the next chunk's copy exists
        else:
            part = source[n0:n1, ::sh, ::sw].astype(out.dtype, copy=False)
            np.matmul(part.reshape(-1, geom.c), matrix, out=target[n0:n1].reshape(-1, geom.k))
    return True


def side_by_side(geom: ConvGeometry) -> bool:
    """Whether a channels-first call's images go side by side into one product (:func:`_beside`):
    an image's planes in and out, ``pixels * (c + k)`` values, under half the kernel's ``c * k``.

    Image by image, each product reads the whole kernel again; side by side, the images'
    pixels are copied into one ``(c, images * pixels)`` matrix and the product copied back
    plane by plane. Same process, batch 8, channels-first: 7x7x2048 -> 512 4.25 -> 3.28 ms,
    7x7x512 -> 2048 4.46 -> 3.14, 7x7x960 -> 160 0.72 -> 0.64 (channels-last 2.78, 2.65,
    0.49); with planes as large as the kernel the copies cost more than they save
    (14x14x1024 -> 256 3.20 -> 3.46, 28x28x128 -> 512 3.42 -> 4.18).
    """
    pixels = geom.out_h * geom.out_w
    return 2 * pixels * (geom.c + geom.k) < geom.c * geom.k


def _beside(matrix: np.ndarray, planes: np.ndarray, results: np.ndarray) -> None:
    """``results`` (images, k, pixels) = ``matrix`` (k, c) @ each image's ``planes`` ((images,
    c, h, w), any dtype and strides) in one product: the images' pixels side by side."""
    images, k, pixels = results.shape
    columns = np.empty((planes.shape[1], images) + planes.shape[2:], results.dtype)
    np.copyto(columns, planes.transpose(1, 0, 2, 3), casting="unsafe")
    product = matrix @ columns.reshape(-1, images * pixels)
    np.copyto(results, product.reshape(k, images, pixels).transpose(1, 0, 2))


def _is_channels_first(array: np.ndarray) -> bool:
    """Whether an (n, h, w, c) view is the transpose of a C-contiguous (n, c, h, w) array."""
    return array.transpose(0, 3, 1, 2).flags.c_contiguous and not array.flags.c_contiguous


def gradients(x, weights, geom: ConvGeometry, grad_out, grad_x, grad_weights, budget: int) -> bool:
    """The gradients of a 1x1 convolution (:func:`applies`) as two matrix products, a chunk
    of images at a time: ``x^T @ grad_out`` over the pixels the windows read, summed in
    ``grad_weights`` ((c, k), zeros on entry), and (``weights``, (c, k), not None)
    ``grad_out @ weights^T`` is x's gradient at those pixels, in ``grad_x`` (zeros on entry). No slab, patch matrix
    or col2im. False, computing nothing, where one image's copies (its strided pixels,
    grad_out cast, the product) pass ``budget``.

    The kernel's product puts the larger of ``c`` and ``k`` on BLAS's rows (``(grad_out^T
    @ x)^T`` when ``k > c`` and the ``(c, k)`` result has no more values than the chunk has
    pixels), and at stride 1 x's gradient is written by the product itself into a
    C-contiguous ``grad_x``, not added from a temporary. 2 threads, 12544 pixels: 32 -> 16
    channels x's gradient 0.20 -> 0.07 ms; 16 -> 96 the kernel's 0.60 -> 0.37.
    ``grad_weights`` is zeros on entry too, and the first chunk's product writes it: adding
    into fresh zeros reads their pages before writing them, which right after a BLAS call
    (its threads awake on the other core) cost 1x7x7x512 -> 2048 13.9 ms against 1.8 for
    the whole backward pass.
    """
    if not applies(geom):
        return False
    sh, sw = geom.strides
    pixels = geom.out_h * geom.out_w
    per_image = pixels * (2 * geom.c + geom.k) * grad_weights.itemsize
    if per_image > budget:
        return False
    images = max(1, budget // per_image)
    for n0 in range(0, geom.n, images):
        n1 = min(n0 + images, geom.n)
        pixels_read = x[n0:n1, ::sh, ::sw].astype(grad_weights.dtype, copy=False).reshape(-1, geom.c)
        grad = grad_out[n0:n1].astype(grad_weights.dtype, copy=False).reshape(-1, geom.k)
        # the transposed product where its transpose is added cheaply, or is what grad_weights
        # holds in memory (filters first: a channels-first kernel's)
        turned = (geom.k > geom.c and geom.c * geom.k <= pixels_read.shape[0]) or (
            grad_weights.flags.f_contiguous and not grad_weights.flags.c_contiguous)
        if n0 == 0:  # zeros on entry: written by the product, not added (fresh pages read before written)
            np.matmul(*((grad.T, pixels_read) if turned else (pixels_read.T, grad)),
                      out=grad_weights.T if turned else grad_weights)
        else:
            grad_weights += (grad.T @ pixels_read).T if turned else pixels_read.T @ grad
        if weights is None:
            continue
        if (sh, sw) == (1, 1) and grad_x.flags.c_contiguous and grad_x.dtype == grad.dtype:
            np.matmul(grad, weights.T, out=grad_x[n0:n1].reshape(-1, geom.c))
        else:
            grad_x[n0:n1, ::sh, ::sw] += (grad @ weights.T).reshape(n1 - n0, geom.out_h, geom.out_w, geom.c)
    return True


def plane_gradients(x, weights, geom: ConvGeometry, grad_out, grad_x, grad_weights) -> bool:
    """:func:`gradients` of channels-first arrays as they lie (``x``, ``grad_out`` and
    ``grad_x`` views of C-contiguous NCHW arrays, one dtype): per image, with its planes as
    ``(c, pixels)`` and ``(k, pixels)`` matrices, ``grad_weights^T += grad_out @ x^T`` and
    x's gradient ``weights @ grad_out`` written into its planes. No copies where
    :mod:`.dispatch` would copy each chunk channels-last and back; ``grad_weights`` ((c,
    k), zeros) is best F-ordered (a channels-first kernel's, :func:`.im2col_backward.new_gradient`),
    which the products then write in order. With strides, each image's pixels the windows
    read are copied into a ``(c, pixels)`` matrix, and x's gradient is written into the
    planes at those pixels (``grad_x`` is zeros on entry). False, computing nothing, elsewhere.
    Whole channels-first backward against the copies, alternating processes: 1x112x112x32
    -> 16 2.8-3.0 -> 0.77 ms, 1x56x56x256 -> 64 7.0-7.1 -> 1.6, 1x56x56x64 -> 256 3.1 ->
    1.5-1.6, 8x56x56x24 -> 144 11.5-12.8 -> 4.2-4.4 (channels-last, networks bench: 0.61,
    1.42, 1.48 at batch 1); stride 2, 1x56x56x256 -> 512 4.5-5.2 -> 2.7-2.9 ms, 8x28x28x512 ->
    1024 24-28 -> 18-20 (channels-last 2.0-2.2 at batch 1).
    """
    arrays = (x, grad_out, grad_x)
    if not (applies(geom) and all(_is_channels_first(a) for a in arrays)
            and x.dtype == grad_out.dtype == grad_x.dtype == grad_weights.dtype):
        return False
    sh, sw = geom.strides
    pixels = geom.out_h * geom.out_w
    read = [a.transpose(0, 3, 1, 2)[:, :, ::sh, ::sw] for a in (x, grad_x)]  # the pixels the windows read
    grads = grad_out.transpose(0, 3, 1, 2).reshape(geom.n, geom.k, pixels)
    for image, (pixels_read, grad_planes) in enumerate(zip(*read)):
        pixels_read = pixels_read.reshape(geom.c, pixels)  # a copy where strided
        grad = grads[image]
        if image == 0:  # zeros on entry: written, not added (see gradients)
            np.matmul(grad, pixels_read.T, out=grad_weights.T)
        else:
            grad_weights.T[...] += grad @ pixels_read.T
        if (sh, sw) == (1, 1):
            np.matmul(weights, grad, out=grad_planes.reshape(geom.c, pixels))
        else:
            grad_planes[...] = (weights @ grad).reshape(grad_planes.shape)
    return True
