"""max_pool2d, avg_pool2d and their gradients against independent oracles.

Oracles, none of them built from convlayer's code:
- a plain-loop pooling written here from the definition (TensorFlow semantics: padding is
  ignored by max and not counted by the average);
- PyTorch: padding amounts come from SPEC.md's rule (written here again), the input is padded
  with ``numpy.pad`` (``-inf`` for max, so padding never wins; zeros for the average, whose
  divisor is the same sum-pool run over a mask of ones), then torch pools with no padding;
  gradients come from torch autograd on that padded tensor, cropped back;
- hand-computed tiny cases and central finite differences.
Layouts are transposed inside the tests: convlayer is channels-last, torch is NCHW.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import convlayer  # noqa: E402
from convlayer import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward  # noqa: E402

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- oracles


def _pads(size, pool, stride, padding):
    """(before, after) on one axis for a padding word or explicit pair, from SPEC.md."""
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return pool - 1, pool - 1
    if padding in ("same", "same_lower"):
        out = -(-size // stride)
        total = max((out - 1) * stride + pool - size, 0)
        small, big = total // 2, total - total // 2
        return (small, big) if padding == "same" else (big, small)
    return padding


def _all_pads(h, w, pool, strides, padding):
    if isinstance(padding, str):
        return _pads(h, pool[0], strides[0], padding), _pads(w, pool[1], strides[1], padding)
    return padding  # ((top, bottom), (left, right)) in these tests


def loop_pool(x, pool, strides, pads, kind):
    """Pool an (n, h, w, c) array with four nested loops over the real pixels of each window."""
    n, h, w, c = x.shape
    (ph, pw), (sh, sw), ((top, bottom), (left, right)) = pool, strides, pads
    out_h = (h + top + bottom - ph) // sh + 1
    out_w = (w + left + right - pw) // sw + 1
    y = np.zeros((n, out_h, out_w, c), np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for ch in range(c):
                    window = [
                        float(x[b, r, s, ch])
                        for r in range(i * sh - top, i * sh - top + ph)
                        for s in range(j * sw - left, j * sw - left + pw)
                        if 0 <= r < h and 0 <= s < w
                    ]
                    y[b, i, j, ch] = np.max(window) if kind == "max" else sum(window) / len(window)
    return y


def _torch_pool(x, pool, strides, pads, kind):
    """Torch pooling of NHWC float64 x with TF semantics; return the output and a grad function."""
    fill = -np.inf if kind == "max" else 0.0
    padded = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    t = torch.tensor(padded.transpose(0, 3, 1, 2), requires_grad=True)
    if kind == "max":
        y = F.max_pool2d(t, pool, strides)
    else:
        ones = np.pad(np.ones(x.shape[1:3]), pads)[None, None]
        count = F.avg_pool2d(torch.tensor(ones), pool, strides, divisor_override=1)
        y = F.avg_pool2d(t, pool, strides, divisor_override=1) / count

    def grad(g):
        (gt,) = torch.autograd.grad(y, t, torch.tensor(g.transpose(0, 3, 1, 2)))
        gx = gt.numpy().transpose(0, 2, 3, 1)
        (top, _), (left, _) = pads
        return gx[:, top:top + x.shape[1], left:left + x.shape[2]]

    return y.detach().numpy().transpose(0, 2, 3, 1), grad


def _random_config(rng):
    """A random pooling problem in which every window holds a real pixel."""
    pool = tuple(int(p) for p in rng.integers(1, 5, size=2))
    strides = None if rng.random() < 0.3 else tuple(int(s) for s in rng.integers(1, 4, size=2))
    kind = rng.integers(0, 5)
    if kind < 4:
        padding = ["valid", "same", "same_lower", "full"][kind]
    else:  # explicit, each side smaller than the window
        padding = tuple(tuple(int(v) for v in rng.integers(0, p, size=2)) for p in pool)
    low = (1, 1) if padding in ("same", "same_lower", "full") else pool
    h, w = (int(rng.integers(lo, 10)) for lo in low)
    n, c = int(rng.integers(0, 3)), int(rng.integers(1, 4))
    return (n, h, w, c), pool, strides, padding


def _call_args(pool, strides, padding):
    return dict(pool_size=pool, strides=strides, padding=padding)


CONFIGS = [_random_config(np.random.default_rng(seed)) for seed in range(150)]


# ----------------------------------------------------------------------------- forward

OPS = [("max", max_pool2d, max_pool2d_backward), ("avg", avg_pool2d, avg_pool2d_backward)]


@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_forward_matches_torch_and_loops(seed):
    shape, pool, strides, padding = CONFIGS[seed]
    rng = np.random.default_rng(1000 + seed)
    x = rng.standard_normal(shape)
    s = pool if strides is None else strides
    pads = _all_pads(shape[1], shape[2], pool, s, padding)
    for kind, op, _ in OPS:
        got = op(x, pool, strides, padding)
        want, _ = _torch_pool(x, pool, s, pads, kind)
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        if shape[0] > 0:
            loops = loop_pool(x, pool, s, pads, kind)
            np.testing.assert_allclose(got, loops, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_unbatched_and_channels_first_match(seed):
    shape, pool, strides, padding = CONFIGS[seed]
    x = np.random.default_rng(1).standard_normal((2,) + shape[1:]).astype(np.float32)
    for op in (max_pool2d, avg_pool2d):
        batched = op(x, pool, strides, padding)
        np.testing.assert_array_equal(op(x[1], pool, strides, padding), batched[1])
        nchw = op(x.transpose(0, 3, 1, 2), pool, strides, padding, data_format="channels_first")
        np.testing.assert_array_equal(nchw, batched.transpose(0, 3, 1, 2))
        chw = op(x[0].transpose(2, 0, 1), pool, strides, padding, data_format="NCHW")
        np.testing.assert_array_equal(chw, batched[0].transpose(2, 0, 1))


def test_float32_matches_float64_oracle():
    x = np.random.default_rng(2).standard_normal((2, 11, 9, 3)).astype(np.float32)
    want, _ = _torch_pool(x.astype(np.float64), (3, 3), (2, 2), ((1, 1), (1, 1)), "avg")
    got = avg_pool2d(x, 3, 2, "same")
    assert got.dtype == np.float32
    # a float32 sum of at most 9 pixels, then a division: within gamma_10 ~ 10 u of the mean of
    # |x| (Higham 3.1); 2 for headroom. A pixel left out or a wrong count is off by O(|x|).
    bound = avg_pool2d(np.abs(x).astype(np.float64), 3, 2, "same")
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * 10 * 2.0**-24 * bound.max())
    assert max_pool2d(x, 3, 2, "same").dtype == np.float32


def test_same_average_divides_by_real_pixels_by_hand():
    x = np.arange(9.0).reshape(3, 3, 1)  # 0 1 2 / 3 4 5 / 6 7 8
    y = avg_pool2d(x, 3, strides=1, padding="same")[..., 0]
    assert y[0, 0] == (0 + 1 + 3 + 4) / 4  # corner: 4 real pixels
    assert y[0, 1] == (0 + 1 + 2 + 3 + 4 + 5) / 6  # edge: 6
    assert y[1, 1] == 4.0  # centre: all 9
    np.testing.assert_array_equal(avg_pool2d(np.ones((5, 4, 2)), 3, 1, "same"), np.ones((5, 4, 2)))


def test_same_stride_two_by_hand():
    # 5 x 5, pool 2, stride 2, 'same': out 3, total pad 1 -> (0, 1): the last window is 1 x 1 real.
    x = np.arange(25.0).reshape(5, 5, 1)
    avg = avg_pool2d(x, 2, padding="same")[..., 0]
    np.testing.assert_array_equal(avg[2], [(20 + 21) / 2, (22 + 23) / 2, 24.0])
    np.testing.assert_array_equal(max_pool2d(-x, 2, padding="same")[..., 0][2], [-20, -22, -24])
    lower = avg_pool2d(x, 2, padding="same_lower")[..., 0]  # pad (1, 0): first window is 1 x 1
    assert lower[0, 0] == 0.0 and lower[0, 1] == (1 + 2) / 2
    assert lower[1, 1] == (6 + 7 + 11 + 12) / 4


def test_max_ignores_padding_for_negative_and_integer_inputs():
    x = -np.arange(1, 10, dtype=np.int16).reshape(3, 3, 1)
    y = max_pool2d(x, 3, strides=1, padding="same")
    assert y.dtype == np.int16
    assert y[0, 0, 0] == -1 and y[2, 2, 0] == -5  # not 0: padding never wins
    u = np.array([[0, 200], [7, 9]], np.uint8)[..., None]
    full = max_pool2d(u, 2, strides=1, padding="full")[..., 0]
    np.testing.assert_array_equal(full, [[0, 200, 200], [7, 200, 200], [7, 9, 9]])
    b = np.array([[True, False], [False, False]])[..., None]
    assert max_pool2d(b, 2, strides=1, padding="same").dtype == bool


def test_avg_dtypes():
    assert avg_pool2d(np.ones((2, 2, 1), np.uint8), 2).dtype == np.float32
    assert avg_pool2d(np.ones((2, 2, 1), np.int64), 2).dtype == np.float64
    assert avg_pool2d(np.ones((2, 2, 1), np.float64), 2).dtype == np.float64
    assert avg_pool2d(np.ones((2, 2, 1), bool), 2).dtype == np.float32
    np.testing.assert_array_equal(avg_pool2d(np.full((2, 2, 1), 255, np.uint8), 2), [[[255.0]]])


def test_nan_propagates_in_max_and_average():
    x = np.zeros((4, 4, 1))
    x[0, 1, 0] = np.nan
    for op in (max_pool2d, avg_pool2d):
        y = op(x, 2)[..., 0]
        assert np.isnan(y[0, 0]) and not np.isnan(y[[0, 1, 1], [1, 0, 1]]).any()
    x[2, 2, 0] = -np.inf
    assert max_pool2d(x, 2)[1, 1, 0] == 0.0


def test_empty_batch_and_empty_image():
    assert max_pool2d(np.zeros((0, 7, 5, 3)), 2, padding="same").shape == (0, 4, 3, 3)
    assert avg_pool2d(np.zeros((0, 3, 6, 2)), 2).shape == (0, 1, 3, 2)
    assert avg_pool2d(np.zeros((0, 3, 6, 2)), 2, data_format="channels_first").shape == (0, 3, 3, 1)
    assert max_pool2d(np.zeros((0, 4)).reshape(0, 4, 1), 2, padding="same").shape == (0, 2, 1)
    for back in (max_pool2d_backward, avg_pool2d_backward):
        assert back(np.zeros((0, 1, 3, 2)), np.zeros((0, 3, 6, 2)), 2).shape == (0, 3, 6, 2)


def test_inputs_are_not_modified_and_lists_work():
    x = np.random.default_rng(3).standard_normal((6, 6, 2))
    copy = x.copy()
    g = np.ones((3, 3, 2))
    for op, back in ((max_pool2d, max_pool2d_backward), (avg_pool2d, avg_pool2d_backward)):
        op(x, 2, 2, "same")
        back(g, x, 2, 2, "same")
        np.testing.assert_array_equal(x, copy)
        np.testing.assert_array_equal(op(x.tolist(), 2), op(x, 2))


def test_default_strides_is_pool_size():
    x = np.random.default_rng(4).standard_normal((7, 8, 1))
    np.testing.assert_array_equal(max_pool2d(x, (2, 3)), max_pool2d(x, (2, 3), strides=(2, 3)))
    assert avg_pool2d(x, (2, 3), padding="same").shape == (4, 3, 1)


# ----------------------------------------------------------------------------- gradients


def _distinct(shape, rng):
    """Float64 values with no ties (a permutation, scaled), so every arg-max is unique."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_gradients_match_torch_autograd(seed):
    shape, pool, strides, padding = CONFIGS[seed]
    rng = np.random.default_rng(2000 + seed)
    x = _distinct(shape, rng)
    s = pool if strides is None else strides
    pads = _all_pads(shape[1], shape[2], pool, s, padding)
    for kind, op, back in OPS:
        g = rng.standard_normal(op(x, pool, strides, padding).shape)
        _, torch_grad = _torch_pool(x, pool, s, pads, kind)
        got = back(g, x, pool, strides, padding)
        assert got.shape == x.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, torch_grad(g), rtol=1e-9, atol=1e-12)


def numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "pool, strides, padding",
    [(2, None, "valid"), (3, 1, "same"), (3, 2, "same"), ((2, 3), (1, 2), "same_lower"),
     (2, 1, "full"), ((3, 2), 2, ((1, 2), (0, 1)))],
)
def test_gradients_match_finite_differences(pool, strides, padding):
    rng = np.random.default_rng(5)
    x = _distinct((2, 5, 6, 2), rng)  # gaps of 1/7 >> eps: no arg-max changes under a step
    for op, back in ((avg_pool2d, avg_pool2d_backward), (max_pool2d, max_pool2d_backward)):
        g = rng.standard_normal(op(x, pool, strides, padding).shape)
        num = numeric_grad(lambda v: np.sum(g * op(v, pool, strides, padding)), x)
        np.testing.assert_allclose(back(g, x, pool, strides, padding), num, rtol=1e-6, atol=1e-8)


def test_max_backward_ties_go_to_the_first_maximum():
    x = np.array([[1.0, 3.0], [3.0, 3.0]])[..., None]
    grad = max_pool2d_backward(np.full((1, 1, 1), 5.0), x, 2)[..., 0]
    np.testing.assert_array_equal(grad, [[0, 5], [0, 0]])
    nan = np.array([[1.0, np.nan], [np.nan, 3.0]])[..., None]
    grad = max_pool2d_backward(np.ones((1, 1, 1)), nan, 2)[..., 0]
    np.testing.assert_array_equal(grad, [[0, 1], [0, 0]])
    ints = np.array([[7, 7], [7, 7]], np.uint8)[..., None]
    out = max_pool2d_backward(np.ones((2, 2, 1), np.float32), ints, 2, 1, "same_lower")[..., 0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[4, 0], [0, 0]])  # (0, 0) is every window's first 7


def test_max_backward_overlapping_windows_accumulate():
    x = np.array([0.0, 9.0, 1.0, 2.0])[None, :, None]  # (1, 4, 1)
    grad = max_pool2d_backward(np.array([1.0, 10.0, 100.0])[None, :, None], x, (1, 2), strides=1)
    np.testing.assert_array_equal(grad[0, :, 0], [0, 11, 0, 100])


def test_avg_backward_spreads_over_real_pixels_only():
    grad = avg_pool2d_backward(np.ones((3, 3, 1)), np.zeros((3, 3, 1)), 3, 1, "same")[..., 0]
    corner = 1 / 4 + 2 / 6 + 1 / 9  # windows centred on (0,0) 4 real, (0,1) and (1,0) 6, (1,1) 9
    assert grad[0, 0] == pytest.approx(corner)
    np.testing.assert_allclose(grad.sum(), 9.0)  # each window hands out exactly its gradient


def test_backward_dtypes_and_layouts():
    x = np.random.default_rng(6).standard_normal((2, 3, 6, 4)).astype(np.float32)
    g = np.ones((2, 3, 3, 2), np.float32)
    for back in (max_pool2d_backward, avg_pool2d_backward):
        nchw = back(g, x, 2, data_format="channels_first")
        nhwc = back(g.transpose(0, 2, 3, 1), x.transpose(0, 2, 3, 1), 2)
        assert nchw.dtype == np.float32
        assert back(g.astype(np.float64), x, 2, data_format="nchw").dtype == np.float64
        np.testing.assert_array_equal(nchw, nhwc.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(pool_size=(2, 0)), ValueError, r"pool_size must be positive integers; got \(2, 0\)"),
        (dict(pool_size=1.5), TypeError, r"pool_size must be positive integers; got 1\.5"),
        (dict(pool_size=(2, 2, 2)), ValueError,
         r"pool_size must be an int or a pair \(vertical, horizontal\); got \(2, 2, 2\)"),
        (dict(pool_size=2, strides=(0, 1)), ValueError,
         r"strides must be positive integers; got \(0, 1\)"),
        (dict(pool_size=2, padding="smae"), ValueError, r"padding must be 'same', .*; got 'smae'"),
        (dict(pool_size=2, padding=-1), ValueError,
         r"padding must be .* of non-negative integers; got -1"),
        (dict(pool_size=2, data_format="nhcw"), ValueError,
         r"data_format must be 'channels_last' or 'channels_first'; got 'nhcw'"),
        (dict(pool_size=(5, 2)), ValueError,
         r"pool_size height 5 does not fit the padded input height 4 "
         r"\(x height 4 \+ padding 0 \+ 0\)"),
        (dict(pool_size=2, padding=((0, 0), (2, 0))), ValueError,
         r"padding 2 \+ 0 leaves a window of padding only along the width "
         r"\(x width 6, pool_size width 2, strides width 2\)"),
        (dict(pool_size=2, strides=1, padding=((0, 2), (0, 0))), ValueError,
         r"padding 0 \+ 2 leaves a window of padding only along the height"),
    ],
)
def test_errors(op, kwargs, error, match):
    with pytest.raises(error, match=match):
        op(np.zeros((4, 6, 1)), **kwargs)


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d, max_pool2d_backward, avg_pool2d_backward])
def test_array_errors(op):
    first = (np.zeros((2, 2, 1)),) if op.__name__.endswith("backward") else ()
    match = r"x must be \(H, W, C\) or \(N, H, W, C\); got x shape \(4, 4\)"
    with pytest.raises(ValueError, match=match):
        op(*first, np.zeros((4, 4)), 2)
    match = r"x must be \(C, H, W\) or \(N, C, H, W\); got x shape \(1, 1, 4, 4, 1\)"
    with pytest.raises(ValueError, match=match):
        op(*first, np.zeros((1, 1, 4, 4, 1)), 2, data_format="channels_first")
    with pytest.raises(TypeError, match=r"x must be real; got complex dtype complex128"):
        op(*first, np.zeros((4, 4, 1), complex), 2)
    match = r"x must have a numeric \(bool, integer or float\) dtype; got dtype <U1"
    with pytest.raises(TypeError, match=match):
        op(*first, np.full((4, 4, 1), "a"), 2)


def test_grad_out_errors():
    x = np.zeros((4, 6, 3))
    match = (
        r"grad_out must have the pooled output's shape \(2, 3, 3\) \(x shape \(4, 6, 3\), "
        r"pool_size \(2, 2\), strides \(2, 2\), padding 'valid'\); got grad_out shape \(2, 3\)"
    )
    for back in (max_pool2d_backward, avg_pool2d_backward):
        with pytest.raises(ValueError, match=match):
            back(np.zeros((2, 3)), x, 2)
        with pytest.raises(TypeError, match=r"grad_out must be real; got complex dtype"):
            back(np.zeros((2, 3, 3), complex), x, 2)


def test_exported_from_top_level():
    names = {"max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"}
    assert names <= set(convlayer.__all__)
    assert convlayer.max_pool2d is max_pool2d
