"""Single-channel conv2d against scipy.signal.

``flip=True`` is the mathematical convolution (``convolve2d``), ``flip=False`` the
cross-correlation of deep learning (``correlate2d``). 2-D input, 2-D kernel, float64.
"""

import numpy as np
import pytest

signal = pytest.importorskip("scipy.signal")

import convlayer  # noqa: E402

TOL = dict(rtol=1e-10, atol=1e-10)


def _shapes(seed, odd=False, fits=True):
    rng = np.random.default_rng(seed)
    fh, fw = (int(v) for v in rng.integers(1, 8, size=2))
    if odd:
        fh, fw = fh | 1, fw | 1
    lo_h, lo_w = (fh, fw) if fits else (1, 1)
    h = int(rng.integers(lo_h, 25))
    w = int(rng.integers(lo_w, 25))
    return rng, rng.standard_normal((h, w)), rng.standard_normal((fh, fw))


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_correlate2d(mode, seed):
    _, x, kernel = _shapes(seed)
    y = convlayer.conv2d(x, kernel, padding=mode)
    np.testing.assert_allclose(y, signal.correlate2d(x, kernel, mode=mode), **TOL)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_convolve2d_is_flip(mode, seed):
    _, x, kernel = _shapes(seed)
    y = convlayer.conv2d(x, kernel, padding=mode, flip=True)
    np.testing.assert_allclose(y, signal.convolve2d(x, kernel, mode=mode), **TOL)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("flip", [False, True])
def test_same_with_odd_kernel(flip, seed):
    _, x, kernel = _shapes(seed, odd=True, fits=False)
    y = convlayer.conv2d(x, kernel, padding="same", flip=flip)
    scipy_op = signal.convolve2d if flip else signal.correlate2d
    assert y.shape == x.shape
    np.testing.assert_allclose(y, scipy_op(x, kernel, mode="same"), **TOL)


@pytest.mark.parametrize("seed", range(10))
def test_full_kernel_larger_than_image(seed):
    # 'full' always fits; scipy handles a kernel larger than the image in 'full' mode.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    kernel = rng.standard_normal((5, 6))
    np.testing.assert_allclose(convlayer.conv2d(x, kernel, padding="full"),
                               signal.correlate2d(x, kernel, mode="full"), **TOL)
    np.testing.assert_allclose(convlayer.conv2d(x, kernel, padding="full", flip=True),
                               signal.convolve2d(x, kernel, mode="full"), **TOL)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_strided_is_subsampled(mode, seed):
    # With 'valid' and 'full' the padding does not depend on the stride, so a strided
    # result is the stride-1 result sampled every s rows / columns from the first.
    rng, x, kernel = _shapes(100 + seed)
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    y = convlayer.conv2d(x, kernel, padding=mode, strides=(sh, sw), flip=True)
    np.testing.assert_allclose(y, signal.convolve2d(x, kernel, mode=mode)[::sh, ::sw], **TOL)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_dilation_is_a_kernel_with_holes(mode, seed):
    rng = np.random.default_rng(200 + seed)
    dh, dw = (int(v) for v in rng.integers(1, 4, size=2))
    kernel = rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    holes = np.zeros(((kernel.shape[0] - 1) * dh + 1, (kernel.shape[1] - 1) * dw + 1))
    holes[::dh, ::dw] = kernel
    x = rng.standard_normal((holes.shape[0] + int(rng.integers(0, 8)), holes.shape[1] + int(rng.integers(0, 8))))
    for flip, scipy_op in ((False, signal.correlate2d), (True, signal.convolve2d)):
        y = convlayer.conv2d(x, kernel, padding=mode, dilation=(dh, dw), flip=flip)
        np.testing.assert_allclose(y, scipy_op(x, holes, mode=mode), **TOL)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("pad_mode, boundary", [("symmetric", "symm"), ("wrap", "wrap"), ("circular", "wrap")])
def test_boundary_modes_match_scipy(pad_mode, boundary, seed):
    # scipy's 'symm' and 'wrap' boundaries are NumPy's 'symmetric' and 'wrap' pads
    # (kernel no larger than the image, so one reflection or wrap is enough).
    _, x, kernel = _shapes(300 + seed, odd=True)
    for mode in ("same", "full"):
        y = convlayer.conv2d(x, kernel, padding=mode, pad_mode=pad_mode, flip=True)
        np.testing.assert_allclose(y, signal.convolve2d(x, kernel, mode=mode, boundary=boundary), **TOL)


def test_integer_image_and_kernel():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(12, 9)).astype(np.uint8)
    kernel = rng.integers(-3, 4, size=(3, 3))
    y = convlayer.conv2d(x, kernel, padding="valid", flip=True)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, signal.convolve2d(x.astype(np.int64), kernel, mode="valid"), **TOL)
