"""Adaptive and global pooling against PyTorch (``adaptive_avg_pool2d``,
``adaptive_max_pool2d`` with indices, ``mean``/``amax`` over the plane) on random
configurations, gradients against autograd, float32 within its summation bound, and errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import convlayer  # noqa: E402
from convlayer import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,  # noqa: E402
                       adaptive_max_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward,
                       global_max_pool2d, global_max_pool2d_backward)

torch.set_num_threads(1)
U32 = 2.0**-24


def random_config(rng):
    n, c = int(rng.integers(0, 3)), int(rng.integers(1, 4))
    h, w = (int(rng.integers(1, 13)) for _ in range(2))
    out = tuple(int(o) for o in rng.integers(1, 9, size=2))
    form = rng.integers(0, 4)
    output_size = out[0] if form == 0 else (out[0], None) if form == 1 else out
    return (n, h, w, c), output_size, bool(rng.random() < 0.5)


CONFIGS = [random_config(np.random.default_rng(seed)) for seed in range(300)]


def distinct(shape, rng):
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


def to_user(x, channels_first):
    return x.transpose(0, 3, 1, 2) if channels_first else x


@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_adaptive_pools_match_torch(seed):
    shape, output_size, channels_first = CONFIGS[seed]
    rng = np.random.default_rng(seed)
    x = distinct(shape, rng)
    fmt = "channels_first" if channels_first else "channels_last"
    t = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    for op, back, reference in ((adaptive_avg_pool2d, adaptive_avg_pool2d_backward, F.adaptive_avg_pool2d),
                                (adaptive_max_pool2d, adaptive_max_pool2d_backward, F.adaptive_max_pool2d)):
        y = reference(t, output_size)
        want = y.detach().numpy()
        got = op(to_user(x, channels_first), output_size, data_format=fmt)
        got_nchw = got if channels_first else got.transpose(0, 3, 1, 2)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got_nchw, want, rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(want.shape)
        (gt,) = torch.autograd.grad(y, t, torch.tensor(g))
        grad = back(g if channels_first else g.transpose(0, 2, 3, 1), to_user(x, channels_first), output_size,
                    data_format=fmt)
        grad_nchw = grad if channels_first else grad.transpose(0, 3, 1, 2)
        np.testing.assert_allclose(grad_nchw, gt.numpy(), rtol=1e-10, atol=1e-12)
    _, index = F.adaptive_max_pool2d(t, output_size, return_indices=True)
    _, indices = adaptive_max_pool2d(to_user(x, channels_first), output_size, return_indices=True, data_format=fmt)
    np.testing.assert_array_equal(indices if channels_first else indices.transpose(0, 3, 1, 2), index.numpy())


@pytest.mark.parametrize("seed", range(100))
def test_global_pools_match_torch(seed):
    shape, _, channels_first = CONFIGS[seed]
    rng = np.random.default_rng(seed)
    x = distinct(shape, rng)
    fmt = "channels_first" if channels_first else "channels_last"
    keepdims = bool(seed % 2)
    t = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    for op, back, reference in ((global_avg_pool2d, global_avg_pool2d_backward, torch.mean),
                                (global_max_pool2d, global_max_pool2d_backward, torch.amax)):
        y = reference(t, dim=(2, 3), keepdim=keepdims)
        want = y.detach().numpy()
        if keepdims and not channels_first:
            want = want.transpose(0, 2, 3, 1)
        got = op(to_user(x, channels_first), keepdims, data_format=fmt)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(want.shape)
        g_torch = g.transpose(0, 3, 1, 2) if keepdims and not channels_first else g
        (gt,) = torch.autograd.grad(y, t, torch.tensor(np.ascontiguousarray(g_torch)))
        grad = back(g, to_user(x, channels_first), keepdims, data_format=fmt)
        np.testing.assert_allclose(grad, to_user(gt.numpy().transpose(0, 2, 3, 1), channels_first),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(0, len(CONFIGS), 5))
def test_float32_within_the_summation_bound(seed):
    """Rows then columns: float32 sums of bh and then bw terms (Higham 3.1) and one rounded
    division, within (bh + bw) u of the bin's mean of |x|. Maxima are exact."""
    shape, output_size, _ = CONFIGS[seed]
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    geom = convlayer.shapes.adaptive_geometry(shape, output_size)
    bh = max(stop - start for start, stop in geom.rows)
    bw = max(stop - start for start, stop in geom.cols)
    got = adaptive_avg_pool2d(x, output_size)
    assert got.dtype == np.float32
    exact = adaptive_avg_pool2d(x.astype(np.float64), output_size)
    assert np.all(np.abs(got - exact) <= (bh + bw) * U32 * adaptive_avg_pool2d(np.abs(x).astype(np.float64), output_size))
    glob, glob_exact = global_avg_pool2d(x), global_avg_pool2d(x.astype(np.float64))
    assert np.all(np.abs(glob - glob_exact) <= (shape[1] + shape[2]) * U32 * global_avg_pool2d(np.abs(x).astype(np.float64)))
    np.testing.assert_array_equal(adaptive_max_pool2d(x, output_size), adaptive_max_pool2d(x.astype(np.float64), output_size))


def test_bins_by_hand():
    x = np.arange(5.0).reshape(1, 5, 1)  # bins of 5 into 3: [0, 2), [1, 4), [3, 5)
    np.testing.assert_array_equal(adaptive_avg_pool2d(x, (1, 3))[..., 0], [[0.5, 2.0, 3.5]])
    np.testing.assert_array_equal(adaptive_max_pool2d(x, (1, 3))[..., 0], [[1, 3, 4]])
    up = adaptive_avg_pool2d(np.array([[0.0, 2.0]])[..., None], (1, 3))  # bins [0,1), [0,2), [1,2)
    np.testing.assert_array_equal(up[..., 0], [[0.0, 1.0, 2.0]])
    grad = adaptive_avg_pool2d_backward(np.ones((1, 3, 1)), x, (1, 3))[..., 0]
    np.testing.assert_allclose(grad, [[0.5, 0.5 + 1 / 3, 1 / 3, 1 / 3 + 0.5, 0.5]])
    assert adaptive_avg_pool2d(np.zeros((2, 6, 4, 3)), (2, None)).shape == (2, 2, 4, 3)


def test_ties_and_nan_go_to_the_first():
    x = np.array([[1.0, 3.0], [3.0, 3.0]])[..., None]
    _, index = adaptive_max_pool2d(x, 1, return_indices=True)
    assert index[0, 0, 0] == 1
    np.testing.assert_array_equal(global_max_pool2d_backward(np.array([2.0]), x)[..., 0], [[0, 2], [0, 0]])
    nan = np.array([[1.0, 2.0], [np.nan, np.nan]])[..., None]
    assert np.isnan(global_max_pool2d(nan)[0]) and np.isnan(adaptive_max_pool2d(nan, 1)[0, 0, 0])
    assert adaptive_max_pool2d(nan, 1, return_indices=True)[1][0, 0, 0] == 2
    ints = np.array([[7, 7], [7, 7]], np.uint8)[..., None]
    assert global_max_pool2d(ints).dtype == np.uint8 and global_avg_pool2d(ints).dtype == np.float32


def test_shapes_unbatched_keepdims_and_empty_batch():
    x = np.zeros((5, 4, 3))
    assert global_avg_pool2d(x).shape == (3,)
    assert global_max_pool2d(x, keepdims=True).shape == (1, 1, 3)
    assert global_avg_pool2d(np.zeros((2, 3, 5, 4)), True, data_format="channels_first").shape == (2, 3, 1, 1)
    assert global_avg_pool2d(np.zeros((0, 5, 4, 3))).shape == (0, 3)
    assert adaptive_max_pool2d(np.zeros((0, 5, 4, 3)), 2).shape == (0, 2, 2, 3)
    assert global_max_pool2d_backward(np.zeros((0, 3)), np.zeros((0, 5, 4, 3))).shape == (0, 5, 4, 3)


def test_large_outputs_are_computed_in_chunks_within_the_budget():
    x = np.random.default_rng(0).standard_normal((5, 6, 7, 2))
    whole = adaptive_avg_pool2d(x, (9, 11)), adaptive_max_pool2d(x, (9, 11), return_indices=True)[1]
    old = convlayer.set_memory_budget(1)  # one image at a time
    try:
        np.testing.assert_array_equal(adaptive_avg_pool2d(x, (9, 11)), whole[0])
        np.testing.assert_array_equal(adaptive_max_pool2d(x, (9, 11), return_indices=True)[1], whole[1])
    finally:
        convlayer.set_memory_budget(old)


@pytest.mark.parametrize("call, error, match", [
    (lambda: global_avg_pool2d(np.zeros((0, 4, 1))), ValueError,
     r"x must have images of at least one pixel: an empty bin has no maximum or mean; got x shape \(0, 4, 1\)"),
    (lambda: adaptive_max_pool2d(np.zeros((4, 4, 1)), (0, 2)), ValueError,
     r"output_size must be positive integers; got \(0, 2\)"),
    (lambda: adaptive_avg_pool2d(np.zeros((4, 4, 1)), 1.5), TypeError, r"output_size must be positive integers; got 1\.5"),
    (lambda: adaptive_avg_pool2d(np.zeros((4, 4)), 2), ValueError, r"x must be \(H, W, C\) or \(N, H, W, C\)"),
    (lambda: global_max_pool2d(np.zeros((4, 4, 1)), keepdims="yes"), TypeError, r"keepdims must be True or False; got 'yes'"),
    (lambda: adaptive_max_pool2d(np.zeros((4, 4, 1)), 2, return_indices=2), TypeError,
     r"return_indices must be True or False; got 2"),
    (lambda: global_avg_pool2d_backward(np.zeros((1, 1, 3)), np.zeros((4, 4, 3))), ValueError,
     r"grad_out must have the pooled output's shape \(3,\) \(x shape \(4, 4, 3\), keepdims False\); "
     r"got grad_out shape \(1, 1, 3\)"),
    (lambda: adaptive_avg_pool2d_backward(np.zeros((2, 2, 3)), np.zeros((4, 4, 3)), 3), ValueError,
     r"grad_out must have the pooled output's shape \(3, 3, 3\) \(x shape \(4, 4, 3\), output_size \(3, 3\)\)"),
    (lambda: global_avg_pool2d(np.zeros((4, 4, 1), complex)), TypeError, r"x must be real; got complex dtype"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_exported_from_top_level():
    names = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "global_avg_pool2d", "global_max_pool2d"}
    assert names | {f"{name}_backward" for name in names} <= set(convlayer.__all__)
