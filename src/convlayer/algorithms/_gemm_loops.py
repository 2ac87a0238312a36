"""Compiled loops around matrix products: im2col's patch rows (:func:`patch_rows`, for
:func:`.im2col.correlate`'s row blocks) and the transforms of :mod:`.winograd` (F(2x2, 3x3)).
This module imports Numba, as :mod:`._loops` does, whose row helpers it shares.

Winograd: a *task* is one row of output tiles of one image: tile row ``ti`` covers output rows
``2 ti, 2 ti + 1`` and reads padded input rows ``2 ti .. 2 ti + 3``. ``V`` and ``M`` hold
a block of tasks from ``task0`` on; each loop takes the block's tasks ``first .. last - 1``
(one thread's share, as in :mod:`._loops`), task ``task0 + t`` holding tiles
``t * tiles_w .. (t + 1) * tiles_w - 1``. Every inner loop runs over a whole row of tiles'
channels (``width * c`` or ``tiles_w * k`` items), long enough to vectorise.

Input: ``V[4 i + j] = (B^T d B)[i, j]`` for the 4x4 input tile ``d`` of every channel,
``B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]``: first along the
rows (four flat loops over the padded rows), then along the columns, tile by tile.
Output: ``Y = A^T M A`` with ``A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]``, the same way round.
"""

from __future__ import annotations

import numba
import numpy as np

from ._loops import OPTIONS, copy_run, fill_last, last_ring, last_slot


@numba.njit(**OPTIONS)
def _add(target, a, b):
    for t in range(target.shape[0]):
        target[t] = a[t] + b[t]


@numba.njit(**OPTIONS)
def _sub(target, a, b):
    for t in range(target.shape[0]):
        target[t] = a[t] - b[t]


@numba.njit(**OPTIONS)
def _add3(target, a, b, c):
    for t in range(target.shape[0]):
        target[t] = a[t] + b[t] + c[t]


@numba.njit(**OPTIONS)
def _sub3(target, a, b, c):
    for t in range(target.shape[0]):
        target[t] = a[t] - b[t] - c[t]


@numba.njit(**OPTIONS)
def winograd_input(x, rows, cols, left, tiles_h, tiles_w, V, task0, first, last):
    """V[:, tile, :] = B^T d B of the input tiles of the block's tasks ``first .. last - 1``.

    ``rows`` and ``cols`` are index maps at least ``2 * tiles + 2`` long (-1: a zero).
    """
    c = V.shape[2]
    width = 2 * tiles_w + 2
    d = np.empty((4, width, c), V.dtype)  # the four padded input rows of a tile row
    bd = np.empty((4, width, c), V.dtype)  # B^T d, along the rows
    for t in range(first, last):
        img, ti = (task0 + t) // tiles_h, (task0 + t) % tiles_h
        for r in range(4):
            fill_last(x, img, rows[2 * ti + r], cols, left, d[r])
        flat_d, flat_t = d.reshape(4, width * c), bd.reshape(4, width * c)
        _sub(flat_t[0], flat_d[0], flat_d[2])
        _add(flat_t[1], flat_d[1], flat_d[2])
        _sub(flat_t[2], flat_d[2], flat_d[1])
        _sub(flat_t[3], flat_d[1], flat_d[3])
        base = t * tiles_w
        for i in range(4):
            for tj in range(tiles_w):
                p = 2 * tj
                tile = base + tj
                _sub(V[4 * i, tile], bd[i, p], bd[i, p + 2])
                _add(V[4 * i + 1, tile], bd[i, p + 1], bd[i, p + 2])
                _sub(V[4 * i + 2, tile], bd[i, p + 2], bd[i, p + 1])
                _sub(V[4 * i + 3, tile], bd[i, p + 1], bd[i, p + 3])


@numba.njit(**OPTIONS)
def winograd_output(M, tiles_h, tiles_w, out, task0, first, last):
    """out's 2x2 output tiles A^T M A of the block's tasks ``first .. last - 1``."""
    _, oh, ow, k = out.shape
    size = tiles_w * k
    s = np.empty((2, 4, size), M.dtype)  # A^T M, along the rows
    y = np.empty((2, 2, size), M.dtype)
    for t in range(first, last):
        img, ti = (task0 + t) // tiles_h, (task0 + t) % tiles_h
        base = t * tiles_w
        for j in range(4):  # M[4 i + j] of this tile row, flat: i = 0 .. 3
            m0, m1 = M[j, base : base + tiles_w].reshape(size), M[4 + j, base : base + tiles_w].reshape(size)
            m2, m3 = M[8 + j, base : base + tiles_w].reshape(size), M[12 + j, base : base + tiles_w].reshape(size)
            _add3(s[0, j], m0, m1, m2)
            _sub3(s[1, j], m1, m2, m3)
        for a in range(2):
            _add3(y[a, 0], s[a, 0], s[a, 1], s[a, 2])
            _sub3(y[a, 1], s[a, 1], s[a, 2], s[a, 3])
            row = 2 * ti + a
            if row >= oh:
                continue
            target = out[img, row]
            for tj in range(tiles_w):
                for b in range(2):
                    col = 2 * tj + b
                    if col < ow:
                        source = y[a, b, tj * k : (tj + 1) * k]
                        pixel = target[col]
                        for q in range(k):
                            pixel[q] = source[q]


@numba.njit(**OPTIONS)
def patch_rows(x, rows, cols, left, fh, fw, sh, sw, dh, dw, oh, ow, patches, first, last):
    """im2col's patch matrix of output rows ``first .. last - 1`` (task ``img * out_h + i``).

    ``patches`` is (rows * ow, fh * fw * c): item ``(a * fw + b) * c + ch`` of pixel j is
    padded x at tap (a, b); padded input rows come from a ring as in :func:`._depthwise_loops.depthwise`.
    """
    c = x.shape[3]
    ring, keys = last_ring(fh, fw, sw, dh, dw, ow, c, patches)
    width = ring.shape[1]
    for task in range(first, last):
        img, i = task // oh, task % oh
        base = (task - first) * ow
        for a in range(fh):
            flat = ring[last_slot(x, img, i * sh + a * dh, rows, cols, left, ring, keys)].reshape(width * c)
            for j in range(ow):
                target = patches[base + j, a * fw * c : (a + 1) * fw * c]
                if dw == 1:  # the row's fw taps are fw * c consecutive values
                    source = flat[j * sw * c : (j * sw + fw) * c]
                    for t in range(fw * c):
                        target[t] = source[t]
                else:
                    for b in range(fw):
                        source = flat[(j * sw + b * dw) * c : (j * sw + b * dw + 1) * c]
                        for ch in range(c):
                            target[b * c + ch] = source[ch]


@numba.njit(**OPTIONS)
def col2im(grad_patches, fh, fw, sh, sw, dh, dw, rb, cb, grad_slab, first, last):
    """grad_slab[img, y] = the sum of the patch gradients read from slab row ``y``, for the
    slab rows (task ``img * rows + y``) ``first .. last - 1``.

    ``grad_patches`` is (nb * rb * cb, fh * fw * c), as :func:`patch_rows` lays patches
    out; ``grad_slab`` (nb, rows, width, c), C-contiguous. Each thread writes its own slab
    rows, gathering from every window that read them (tap row ``a`` of output row ``i``
    reads slab row ``i * sh + a * dh``): no two threads add into one row.
    """
    _, rows, width, c = grad_slab.shape
    for task in range(first, last):
        img, y = task // rows, task % rows
        target = grad_slab[img, y].reshape(width * c)
        target[:] = 0
        for a in range(fh):
            offset = y - a * dh
            if offset < 0 or offset % sh != 0 or offset // sh >= rb:
                continue
            base = (img * rb + offset // sh) * cb
            for j in range(cb):
                source = grad_patches[base + j, a * fw * c : (a + 1) * fw * c]
                if dw == 1:  # the row's fw taps are fw * c consecutive values
                    into = target[j * sw * c : (j * sw + fw) * c]
                    for t in range(fw * c):
                        into[t] += source[t]
                else:
                    for b in range(fw):
                        into = target[(j * sw + b * dw) * c : (j * sw + b * dw + 1) * c]
                        for ch in range(c):
                            into[ch] += source[b * c + ch]


@numba.njit(**OPTIONS)
def winograd_grad(grad_out, tiles_h, tiles_w, E, task0, first, last):
    """E[:, tile, :] = A e A^T of the 2x2 grad_out tiles ``e`` of the block's tasks ``first .. last - 1``.

    For the kernel's gradient, F(3x3, 2x2): ``A`` (4 x 2) is ``A^T``'s transpose, so along
    each axis ``(e0, e1)`` becomes ``(e0, e0 + e1, e0 - e1, -e1)``; a tile past the last
    output row or column reads zeros there.
    """
    _, oh, ow, k = grad_out.shape
    width = 2 * tiles_w * k
    g = np.zeros((2, 2 * tiles_w, k), E.dtype)  # the tile row's two grad_out rows, zero-padded
    s = np.empty((4, width), E.dtype)  # A e, along the rows
    for t in range(first, last):
        img, ti = (task0 + t) // tiles_h, (task0 + t) % tiles_h
        for r in range(2):
            if 2 * ti + r < oh:
                copy_run(g[r, :ow], grad_out[img, 2 * ti + r])
            else:
                g[r] = 0
        flat = g.reshape(2, width)
        copy_run(s[0], flat[0])
        _add(s[1], flat[0], flat[1])
        _sub(s[2], flat[0], flat[1])
        for q in range(width):
            s[3, q] = -flat[1, q]
        base = t * tiles_w
        for i in range(4):
            row = s[i].reshape(2 * tiles_w, k)
            for tj in range(tiles_w):
                tile = base + tj
                copy_run(E[4 * i, tile], row[2 * tj])
                _add(E[4 * i + 1, tile], row[2 * tj], row[2 * tj + 1])
                _sub(E[4 * i + 2, tile], row[2 * tj], row[2 * tj + 1])
                into, source = E[4 * i + 3, tile], row[2 * tj + 1]
                for q in range(k):
                    into[q] = -source[q]


@numba.njit(**OPTIONS)
def winograd_kernel(kernel, U, first, last):
    """U[4 i + j, ch] = (G g G^T)[i, j] of the 3x3 kernel ``g = kernel[:, :, ch]``, for the
    input channels ``first .. last - 1``; ``G``'s rows: ``g0``, ``(g0 + g1 + g2) / 2``,
    ``(g0 - g1 + g2) / 2``, ``g2``. Written in place, no temporaries (a vector loop over k)."""
    k = U.shape[2]
    t = np.empty((4, 3, k), U.dtype)  # G g, along the kernel's rows
    for ch in range(first, last):
        for b in range(3):
            g0, g1, g2, rows = kernel[0, b, ch], kernel[1, b, ch], kernel[2, b, ch], t[:, b]
            for q in range(k):
                outer, middle = (g0[q] + g2[q]) * 0.5, g1[q] * 0.5
                rows[0, q], rows[1, q], rows[2, q], rows[3, q] = g0[q], outer + middle, outer - middle, g2[q]
        for i in range(4):
            u0, u1, u2, u3 = U[4 * i, ch], U[4 * i + 1, ch], U[4 * i + 2, ch], U[4 * i + 3, ch]
            g0, g1, g2 = t[i, 0], t[i, 1], t[i, 2]
            for q in range(k):
                outer, middle = (g0[q] + g2[q]) * 0.5, g1[q] * 0.5
                u0[q], u1[q], u2[q], u3[q] = g0[q], outer + middle, outer - middle, g2[q]


@numba.njit(**OPTIONS)
def winograd_kernel_gradient(M, grad, first, last):
    """grad[:, :, ch] = G^T M G (3x3) of the summed products ``M[:, ch]`` (4x4), for the input
    channels ``first .. last - 1``: along each axis ``(m0, m1, m2, m3)`` becomes
    ``(m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3)``, the kernel transform's adjoint."""
    k = M.shape[2]
    t = np.empty((3, 4, k), M.dtype)  # G^T M, along the rows
    for ch in range(first, last):
        for j in range(4):
            m0, m1, m2, m3 = M[j, ch], M[4 + j, ch], M[8 + j, ch], M[12 + j, ch]
            for q in range(k):
                outer, middle = (m1[q] + m2[q]) * 0.5, (m1[q] - m2[q]) * 0.5
                t[0, j, q], t[1, j, q], t[2, j, q] = m0[q] + outer, middle, outer + m3[q]
        for a in range(3):
            m0, m1, m2, m3 = t[a, 0], t[a, 1], t[a, 2], t[a, 3]
            g0, g1, g2 = grad[a, 0, ch], grad[a, 1, ch], grad[a, 2, ch]
            for q in range(k):
                outer, middle = (m1[q] + m2[q]) * 0.5, (m1[q] - m2[q]) * 0.5
                g0[q], g1[q], g2[q] = m0[q] + outer, middle, outer + m3[q]
