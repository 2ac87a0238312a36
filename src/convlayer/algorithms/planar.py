"""Few input channels (an image network's first layer): im2col's patch matrix built plane by plane.

With ``c`` of 1 to 4 (grey, RGB, RGBA), a pixel's patch row is ``fh * fw * c`` values in
runs of only ``fw * c`` (9 for a 3x3 RGB kernel), which a pixel-by-pixel fill copies a few
at a time. Here the matrix is laid out the other way round, ``(c, fh, fw)`` rows by pixel
columns: row ``(ch, a, b)`` is channel ``ch`` of the zero-padded image read at tap ``(a,
b)`` with the strides, one strided copy of a whole plane (NumPy's copy of one 6-D view for
all of them), and one product per image multiplies it, transposed, by the weights: BLAS
reads a transposed matrix as it is. A channels-first call reads its planes as they lie,
and a channels-first output is written by the product ``weights^T @ patches`` plane by
plane, so neither is copied channels-last first. The gradients (:func:`gradients`, for
kernels of up to 3x3) multiply the same patches by grad_out, and fold the patches'
gradient back onto the planes one tap at a time.

Measured, 2 threads, same process, against im2col's pixel-by-pixel paths, channels-last
| channels-first time ratio (PyTorch's better layout in brackets): 1x224x224x3 -> 32 3x3
stride 2 0.92 -> 0.63 ms | 1.51 -> 0.62 (0.16), batch 8 0.70-0.76 | 0.53; -> 64 3x3 stride
1 2.11 -> 1.68 | 6.18 -> 1.56 (0.76); 1 channel (224x224 -> 16 3x3) 0.43 | 0.32; 4
channels 0.80 | 0.53; 64x8x8x1 -> 16 0.58. Channels-last, wider kernel rows stay with
im2col (:data:`MAX_RUN`); channels-first, the 7x7 stride-2 stem 3.59 -> 2.12 ms.

Channels-first calls with more channels (an NCHW network's deeper layers) take the planes
too where im2col would make one patch matrix (:data:`VIEWS_MAX_PIXELS`), for one image or
images of at least as many output pixels as filters: the weight matrix is PyTorch's
``(k, c, fh, fw)`` kernel as it lies and each product lands in the NCHW output, where
im2col copied the input channels-last, the kernel (or the patches, see
:func:`.im2col.channel_major`) and the output back. Same process, alternating, channels-first
1x56x56x128 -> 128 3x3 stride 2 2.11-2.17 -> 1.76-1.80 ms, 1x28x28x128 -> 128 1.67-1.71 ->
1.44-1.46, 1x14x14x256 -> 256 1.66-1.69 -> 1.35-1.39, 1x7x7x512 -> 512 1.88 -> 1.52-1.58,
8x56x56x128 -> 128 stride 2 15.9-16.7 -> 13.1-13.3 (channels-last, the four at batch 1:
1.27-1.38, 1.19-1.22, 1.22-1.23, 1.50-1.54). Several images of fewer pixels than filters
(8x7x7x512 -> 512) took 1.4x longer this way (8.3-8.4 -> 11.5-11.8 ms): each image's
product reads the whole kernel again.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..shapes import ConvGeometry
from .buffers import CACHE_BLOCK_BYTES, work_buffer

# Input channels up to which the planes pay: from 6 to 16 channels channels-last took 0.71
# to 1.50x im2col's time (1x112x112x16 -> 64 3x3 stride 2 1.26, 1x224x224x8 -> 16 5x5
# 1.50), while channels-first still gained (0.50-0.81).
MAX_CHANNELS = 4
# Channels-last, the values a kernel row reads (fw * c) up to which the planes pay: im2col's
# fills copy runs of that many values, long enough from about 15 on. 5x5 RGB (15) stride 2
# at 224x224: 1.02 of im2col's time at batch 1, 1.30 at batch 8; the 7x7 stem (21) 0.72-1.09
# and 1.02-2.0 (its row blocks keep their patches in each core's cache); 3x3 RGB (9) 0.65-0.89,
# 4x4 RGB (12) 0.84, 3x3 RGBA (12) 0.80. Channels-first calls read their planes as they lie
# and take the planes whatever the kernel (7x7 stem 0.59 at batch 1, 0.93 at batch 8).
MAX_RUN = 12
# The gradients take this path for kernels of at most this many taps. Same process, 2
# threads, conv2d_backward against im2col's pass, channels-last | channels-first:
# 1x224x224x3 -> 32 3x3 stride 2 0.82-0.83 | 0.86-0.87, batch 8 0.84 | 0.86; the kernel's
# gradient alone (stride 1: x's is a correlation) 3x3 to 64 filters 0.64, 1 channel 0.67 |
# 0.72. The per-tap additions onto the planes outgrow the gain with the kernel: 5x5 1.00-1.02
# at stride 2, the 7x7 stride-2 stem 1.15-1.17.
GRADIENT_MAX_TAPS = 9
# Channels-first calls with more channels (an NCHW network's deeper layers) take the planes
# below this many output pixels, where im2col would make one patch matrix (its row blocks
# start at :data:`.im2col.ROWS_MIN`).
VIEWS_MAX_PIXELS = 2**13
# Images a chunk: as many as fit in this many bytes of planes and patches (at least one).
# The patches are read by the products right after the copy: all 8 images of 8x224x224x3
# -> 64 7x7 stride 2 at once (59 MB) took 1.48x im2col's time, one at a time 0.98-1.02.
CHUNK_BYTES = CACHE_BLOCK_BYTES


def applies(geom: ConvGeometry, pad_mode: str, views: bool = False) -> bool:
    """Whether :func:`correlate` computes this call: groups=1, zero padding, a kernel larger
    than 1x1 (a 1x1 layer's patch matrix is the input itself, :mod:`.pointwise`) and either
    at most :data:`MAX_CHANNELS` input channels with, unless x and the output are
    channels-first ``views``, at most :data:`MAX_RUN` values a kernel row; or channels-first
    ``views`` of fewer than :data:`VIEWS_MAX_PIXELS` output pixels, of one image or of images
    of at least as many output pixels as filters."""
    if geom.groups != 1 or geom.c == 0 or pad_mode != "constant" or geom.fh * geom.fw == 1:
        return False
    if geom.c <= MAX_CHANNELS:
        return views or geom.fw * geom.c <= MAX_RUN
    pixels = geom.out_h * geom.out_w
    return views and geom.n * pixels < VIEWS_MAX_PIXELS and (geom.n == 1 or pixels >= geom.k)


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, out: np.ndarray, budget: int) -> bool:
    """Fill ``out`` (n, out_h, out_w, k) with the correlation (:func:`applies`); return False,
    computing nothing, where one image's padded planes and patches pass ``budget``.

    ``x`` is (n, h, w, c), any layout and real dtype; ``kernel`` (fh, fw, c, k) in
    ``out.dtype``. Images go a chunk at a time within the budget, through the kept work
    buffer: padded planes, then the patches of every tap, then one product per image.
    """
    images = _images_a_chunk(geom, out.itemsize, budget)
    if images is None:
        return False
    length, pixels = geom.fh * geom.fw * geom.c, geom.out_h * geom.out_w
    # (k, (c, fh, fw)): PyTorch's kernel (channels-first) as it lies, others copied
    weights = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)).reshape(geom.k, length)
    first = out.transpose(0, 3, 1, 2)
    for n0, n1, _, patches in _chunks(x, geom, out.dtype, images):
        for image in range(n1 - n0):
            matrix = patches[image].reshape(length, pixels)
            if out[n0 + image].flags.c_contiguous:
                np.matmul(matrix.T, weights.T, out=out[n0 + image].reshape(pixels, geom.k))
            elif first[n0 + image].flags.c_contiguous:  # a channels-first output: plane by plane
                np.matmul(weights, matrix, out=first[n0 + image].reshape(geom.k, pixels))
            else:
                out[n0 + image] = (matrix.T @ weights.T).reshape(geom.out_h, geom.out_w, geom.k)
    return True


def gradients(x, weights, geom: ConvGeometry, pad_mode: str, grad_out, grad_x, grad_weights, budget: int) -> bool:
    """The gradients of a few-channel layer (:func:`applies`, at most :data:`GRADIENT_MAX_TAPS`
    taps) from the same plane-by-plane patches as :func:`correlate`; False, computing
    nothing, elsewhere or where one image's planes and patches pass ``budget``.

    Per image, ``patches @ grad_out`` is added into ``grad_weights`` ((fh * fw * c, k) in
    im2col's row order, see :func:`.im2col.weight_matrix`), and with ``weights`` (that
    matrix, not None) ``weights^T``'s product with grad_out takes the patches' place: each
    tap's rows are then added onto the zero-padded planes' gradient where that tap read them
    (one strided addition per tap for all channels), whose inside is x's gradient, written
    into ``grad_x`` (zeros on entry).
    """
    if not applies(geom, pad_mode) or geom.fh * geom.fw > GRADIENT_MAX_TAPS:
        return False
    dtype = grad_weights.dtype
    images = _images_a_chunk(geom, dtype.itemsize, budget)
    if images is None:
        return False
    (top, _), (left, _) = geom.pads
    length, pixels = geom.fh * geom.fw * geom.c, geom.out_h * geom.out_w
    planar_weights = None if weights is None else np.ascontiguousarray(_planar_rows(weights, geom))
    total = np.zeros((length, geom.k), dtype)
    for n0, n1, planes, patches in _chunks(x, geom, dtype, images):
        for image in range(n1 - n0):
            matrix = patches[image].reshape(length, pixels)
            grad = grad_out[n0 + image].astype(dtype, copy=False).reshape(pixels, geom.k)
            total += matrix @ grad
            if planar_weights is not None:  # the patches are used up: their gradient takes their place
                np.matmul(planar_weights, grad.T, out=matrix)
        if planar_weights is None:
            continue
        planes[...] = 0  # now the planes' gradient
        _fold(patches, planes, geom)
        grad_x[n0:n1] = planes[:, :, top : top + geom.h, left : left + geom.w].transpose(0, 2, 3, 1)
    grad_weights += _planar_rows(total, geom, back=True)
    return True


def fits(geom: ConvGeometry, itemsize: int, budget: int) -> bool:
    """Whether one image's padded planes and patches fit in ``budget`` bytes (otherwise
    :func:`correlate` computes nothing)."""
    return _per_image(geom) * itemsize <= budget


def _images_a_chunk(geom: ConvGeometry, itemsize: int, budget: int) -> "int | None":
    """Images whose padded planes and patches go at once: as many as :data:`CHUNK_BYTES`
    holds (at least one); None when one image's pass ``budget``."""
    if not fits(geom, itemsize, budget):
        return None
    return max(1, min(geom.n, min(budget, CHUNK_BYTES) // (_per_image(geom) * itemsize)))


def _per_image(geom: ConvGeometry) -> int:
    """Items of one image's padded planes and patches."""
    (top, bottom), (left, right) = geom.pads
    planes = geom.c * (geom.h + top + bottom) * (geom.w + left + right)
    return planes + geom.fh * geom.fw * geom.c * geom.out_h * geom.out_w


def _chunks(x, geom: ConvGeometry, dtype, images: int):
    """``(n0, n1, planes, patches)`` for each chunk of ``images`` images, in the kept work
    buffer: the zero-padded planes (n1 - n0, c, height, width) of images ``n0 .. n1 - 1``
    and their patches (n1 - n0, c, fh, fw, out_h, out_w), in ``dtype``."""
    (top, bottom), (left, right) = geom.pads
    height, width = geom.h + top + bottom, geom.w + left + right
    with work_buffer(images * _per_image(geom), dtype) as work:
        for n0 in range(0, geom.n, images):
            n1 = min(n0 + images, geom.n)
            planes = work[: (n1 - n0) * geom.c * height * width].reshape(n1 - n0, geom.c, height, width)
            _pad(planes, x[n0:n1].transpose(0, 3, 1, 2), top, left)
            shape = (n1 - n0, geom.c, geom.fh, geom.fw, geom.out_h, geom.out_w)
            patches = work[planes.size : planes.size + int(np.prod(shape))].reshape(shape)
            np.copyto(patches, _windows(planes, geom))
            yield n0, n1, planes, patches


def _planar_rows(matrix: np.ndarray, geom: ConvGeometry, back: bool = False) -> np.ndarray:
    """Rows of im2col's order ``(fh, fw, c)`` as this module's ``(c, fh, fw)`` (``back``: the
    other way round), of a (fh * fw * c, k) matrix."""
    if back:
        return matrix.reshape(geom.c, geom.fh, geom.fw, -1).transpose(1, 2, 0, 3).reshape(matrix.shape)
    return matrix.reshape(geom.fh, geom.fw, geom.c, -1).transpose(2, 0, 1, 3).reshape(matrix.shape)


def _fold(patches: np.ndarray, planes: np.ndarray, geom: ConvGeometry) -> None:
    """Add each tap's gradient rows, ``patches[:, :, a, b]`` (n, c, out_h, out_w), onto the
    padded planes' gradient where tap (a, b) read them: one strided addition per tap."""
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    rows, cols = (geom.out_h - 1) * sh + 1, (geom.out_w - 1) * sw + 1
    for a in range(geom.fh):
        for b in range(geom.fw):
            planes[:, :, a * dh : a * dh + rows : sh, b * dw : b * dw + cols : sw] += patches[:, :, a, b]


def _pad(planes: np.ndarray, source: np.ndarray, top: int, left: int) -> None:
    """``planes`` (n, c, height, width) = ``source`` (n, c, h, w) with zeros around it:
    only the border is zeroed, the image is copied once (converted to planes' dtype)."""
    h, w = source.shape[2:]
    planes[:, :, :top] = 0
    planes[:, :, top + h :] = 0
    planes[:, :, top : top + h, :left] = 0
    planes[:, :, top : top + h, left + w :] = 0
    planes[:, :, top : top + h, left : left + w] = source


def _windows(planes: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """The read-only view (n, c, fh, fw, out_h, out_w) of the padded planes: tap (a, b) of
    output pixel (i, j) is ``planes[..., i sh + a dh, j sw + b dw]``."""
    t0, t1, t2, t3 = planes.strides
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    shape = (planes.shape[0], geom.c, geom.fh, geom.fw, geom.out_h, geom.out_w)
    return as_strided(planes, shape, (t0, t1, t2 * dh, t3 * dw, t2 * sh, t3 * sw), writeable=False)
