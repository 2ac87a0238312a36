"""FFT convolution for large kernels: work per pixel independent of the kernel's size.

By the convolution theorem, ``ifft(fft(x) * conj(fft(kernel)))`` is the *circular*
cross-correlation of x and the kernel. Computed over a padded slab of ``rows + span_h - 1``
by ``cols + span_w - 1`` pixels with transforms at least that long, the first ``rows x cols``
values never wrap around: they are exactly the block's output (overlap-save). The output is
computed in such blocks (:mod:`.buffers`), so memory stays within the budget however large
the image; with the default budget a whole image (or several) is one block.

Channels meet in the frequency domain: per frequency, the ``(c,)`` spectrum of the input
times the ``(c, k)`` spectrum of the kernel, one small matrix product. A dilated kernel is
transformed with its holes filled by zeros.

Accuracy. The error of an FFT convolution is spread over the whole block: it is about the
unit roundoff times ``log2(size)`` times the largest ``sum |x| |kernel|`` of the block, not
of each output pixel (float32: measured below 2e-6 of it; the tests allow 1e-4). A NaN or
an infinity anywhere in the block makes every output of the block NaN, where direct
summation keeps it in the pixels whose windows hold it; ``algorithm="auto"`` therefore never
picks FFT for input that is not finite.

SciPy's ``scipy.fft`` is used when it can be imported (it takes ``workers`` for both cores
and finds fast transform sizes), NumPy's ``numpy.fft`` otherwise; either is imported only
when this runs, so ``import convlayer`` stays NumPy-only.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from ..shapes import ConvGeometry, span
from . import parallel, slab
from .buffers import blocks, plan_blocks

_state = {"scipy": True}  # False: numpy.fft even where SciPy is installed


@contextmanager
def use_scipy(flag: bool):
    """``with use_scipy(False):`` transforms with ``numpy.fft`` even where SciPy is installed;
    the setting is process-wide and restored after."""
    before = _state["scipy"]
    _state["scipy"] = flag
    try:
        yield
    finally:
        _state["scipy"] = before


def correlate(x: np.ndarray, kernel: np.ndarray, geom: ConvGeometry, pad_mode: str, out: np.ndarray,
              budget: int) -> np.ndarray:
    """Fill ``out`` (n, out_h, out_w, k) with the cross-correlation, block by block via FFT.

    Arguments as for :func:`.im2col.correlate` (strides 1, groups 1). Returns ``out``.
    """
    if out.size == 0:
        return out
    if geom.c == 0:
        out[...] = 0
        return out
    backend, fast_len = _backend()
    dilated = _dilated(kernel, geom.dilation)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    cost = _block_cost(geom, out.dtype.itemsize, slab.gathered_slabs(pad_mode), fast_len)
    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    work = np.empty(math.prod(slab.shape(geom, *size)), out.dtype)
    spectra: dict = {}  # the kernel's spectrum per transform size (edge blocks differ)
    for block in blocks(geom.n, geom.out_h, geom.out_w, size):
        rows, cols = slab.indices(row_map, col_map, geom, block)
        padded, _ = slab.gather(x[block.n0 : block.n1], rows, cols, work, out.dtype)
        lengths = (fast_len(padded.shape[1]), fast_len(padded.shape[2]))
        if lengths not in spectra:
            spectra.clear()  # keep one at a time: the budget counts one
            spectra[lengths] = _kernel_spectrum(dilated, lengths, backend)
        target = out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
        _correlate_block(padded, spectra[lengths], lengths, backend, target)
    return out


def _correlate_block(padded, kernel_spectrum, lengths, backend, target) -> None:
    """Overlap-save: the first rows x cols values of the circular correlation are the output."""
    kwargs = _workers(backend)
    spectrum = backend.rfft2(padded, s=lengths, axes=(1, 2), **kwargs)  # (nb, l1, l2 // 2 + 1, c)
    if spectrum.shape[-1] == 1:
        product = spectrum * kernel_spectrum[:, :, 0, :]
    else:
        product = np.matmul(spectrum[..., None, :], kernel_spectrum)[..., 0, :]
    del spectrum
    values = backend.irfft2(product, s=lengths, axes=(1, 2), **kwargs)
    target[...] = values[:, : target.shape[1], : target.shape[2]]


def _kernel_spectrum(kernel, lengths, backend) -> np.ndarray:
    """The conjugate spectrum of the (span_h, span_w, c, k) kernel, (l1, l2 // 2 + 1, c, k)."""
    return np.conj(backend.rfft2(kernel, s=lengths, axes=(0, 1)))


def _dilated(kernel: np.ndarray, dilation) -> np.ndarray:
    """The kernel with ``dilation - 1`` zeros between taps."""
    if dilation == (1, 1):
        return kernel
    fh, fw, c, k = kernel.shape
    dilated = np.zeros((span(fh, dilation[0]), span(fw, dilation[1]), c, k), kernel.dtype)
    dilated[:: dilation[0], :: dilation[1]] = kernel
    return dilated


def _block_cost(geom: ConvGeometry, itemsize: int, slabs: int, fast_len):
    """Work bytes of a block: the slab, its padded copy and spectrum, the product, the result.

    Spectra are complex (two items per value). The kernel's spectrum is counted with each
    block, and the transforms' own temporaries as one more spectrum of each kind.
    """
    c, k = geom.c, geom.k

    def cost(images: int, rows: int, cols: int) -> int:
        _, height, width, _ = slab.shape(geom, images, rows, cols)
        l1, l2 = fast_len(height), fast_len(width)
        half = l1 * (l2 // 2 + 1)
        real = slabs * images * height * width * c + images * l1 * l2 * (c + k)
        spectra = 2 * 2 * half * (images * (c + k) + c * k)
        return (real + spectra) * itemsize

    return cost


def _backend():
    """``(module with rfft2/irfft2, fast length function)``: SciPy's if importable (and not
    switched off by :func:`use_scipy`)."""
    if not _state["scipy"]:
        return np.fft, next_fast_len
    try:
        import scipy.fft as backend
    except ImportError:
        return np.fft, next_fast_len
    return backend, backend.next_fast_len


def _workers(backend) -> dict:
    return {"workers": parallel.thread_count()} if backend is not np.fft else {}


def next_fast_len(size: int) -> int:
    """The smallest ``2^a 3^b 5^c >= size``: lengths pocketfft transforms quickly."""
    best = 1 << max(size - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < size:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def kernel_gradient(x: np.ndarray, geom: ConvGeometry, pad_mode: str, grad_out: np.ndarray, dtype,
                    budget: int) -> np.ndarray:
    """The kernel's gradient, (fh, fw, c, k), of a stride-1, groups=1 correlation, via FFT.

    Tap ``(u, v)`` of the (dilated) kernel saw the padded input shifted by ``(u, v)``: its
    gradient, ``sum x[i + u, j + v] * grad_out[i, j]``, is the correlation of the block's
    slab with the block's grad_out, of which only the first ``span_h x span_w`` values are
    needed, and those never wrap around (overlap-save again). Blocks add up.
    """
    span_h, span_w = span(geom.fh, geom.dilation[0]), span(geom.fw, geom.dilation[1])
    grad = np.zeros((span_h, span_w, geom.c, geom.k), dtype)
    if grad_out.size == 0 or geom.c == 0:
        return grad[:: geom.dilation[0], :: geom.dilation[1]].copy()
    backend, fast_len = _backend()
    kwargs = _workers(backend)
    row_map, col_map = slab.index_maps(geom, pad_mode)
    forward_cost = _block_cost(geom, dtype.itemsize, slab.gathered_slabs(pad_mode), fast_len)

    def cost(images: int, rows: int, cols: int) -> int:
        summed = _sum_cost(geom, (images, rows, cols), fast_len, dtype.itemsize)
        return forward_cost(images, rows, cols) + summed

    size = plan_blocks(geom.n, geom.out_h, geom.out_w, cost, budget)
    work = np.empty(math.prod(slab.shape(geom, *size)), dtype)
    for block in blocks(geom.n, geom.out_h, geom.out_w, size):
        rows, cols = slab.indices(row_map, col_map, geom, block)
        padded, _ = slab.gather(x[block.n0 : block.n1], rows, cols, work, dtype)
        lengths = (fast_len(padded.shape[1]), fast_len(padded.shape[2]))
        target = grad_out[block.n0 : block.n1, block.r0 : block.r1, block.c0 : block.c1]
        slab_spectrum = backend.rfft2(padded, s=lengths, axes=(1, 2), **kwargs)
        grad_spectrum = backend.rfft2(target.astype(dtype, copy=False), s=lengths, axes=(1, 2), **kwargs)
        np.conj(grad_spectrum, out=grad_spectrum)
        summed = np.einsum("nuvc,nuvk->uvck", slab_spectrum, grad_spectrum)
        del slab_spectrum, grad_spectrum
        grad += backend.irfft2(summed, s=lengths, axes=(0, 1), **kwargs)[:span_h, :span_w]
    return grad[:: geom.dilation[0], :: geom.dilation[1]].copy()


def _sum_cost(geom: ConvGeometry, block, fast_len, itemsize: int) -> int:
    """The (l1, l2, c, k) sum over a block's images, complex and then real."""
    _, height, width, _ = slab.shape(geom, *block)
    l1, l2 = fast_len(height), fast_len(width)
    return 3 * l1 * (l2 // 2 + 1) * geom.c * geom.k * 2 * itemsize
