"""The sliding pools with dilation, ceil_mode, count_include_pad and indices, Lp pooling and
max unpooling, against PyTorch on several hundred random configurations each.

Two oracles, neither built from convlayer's code:
- ``torch.nn.functional`` itself (``max_pool2d`` with indices, ``avg_pool2d``,
  ``lp_pool2d``, ``max_unpool2d``) wherever torch accepts the configuration (symmetric
  padding of at most half the window, no dilation for the averages, no padding for Lp);
- a torch *unfold* oracle for every configuration: the geometry is written here again from
  SPEC.md (padding words, ``ceil_mode``'s rule), the input is padded with ``numpy.pad``
  (``-inf`` for max, zeros for sums) and with extra rows and columns where a ``ceil_mode``
  window hangs past the padding, ``torch.nn.functional.unfold`` cuts the (dilated) windows,
  and a mask of the real (or padded) pixels gives the divisors. Gradients come from torch
  autograd on that padded tensor, cropped back.
Layouts are transposed inside the tests: convlayer is channels-last, torch is NCHW.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from convlayer import (avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward, max_pool2d,  # noqa: E402
                       max_pool2d_backward, max_unpool2d, max_unpool2d_backward)

torch.set_num_threads(1)
U32 = 2.0**-24  # unit roundoff of float32

# ----------------------------------------------------------------------------- the geometry, from SPEC.md


def axis_geometry(size, pool, stride, dilation, padding, ceil_mode):
    """((before, after), out) along one axis, or None where SPEC refuses (a window that does
    not fit, or one without a real tap)."""
    span = (pool - 1) * dilation + 1
    if padding in ("same", "same_lower"):
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        pads = (total // 2, total - total // 2) if padding == "same" else (total - total // 2, total // 2)
    else:
        pads = {"valid": (0, 0), "full": (span - 1, span - 1)}.get(padding, padding)
        padded = size + sum(pads)
        if padded < span:
            return None
        if ceil_mode:
            out = -(-(padded - span) // stride) + 1
            if (out - 1) * stride >= size + pads[0]:  # the last window starts past the input
                out -= 1
        else:
            out = (padded - span) // stride + 1
    for i in range(out):  # dilation can skip every real pixel, even with 'same'

        if not any(0 <= i * stride - pads[0] + t * dilation < size for t in range(pool)):
            return None
    return pads, out


def random_config(rng):
    """A random sliding-pool problem (maybe one SPEC refuses)."""
    pool = tuple(int(p) for p in rng.integers(1, 5, size=2))
    dilation = (1, 1) if rng.random() < 0.4 else tuple(int(d) for d in rng.integers(1, 4, size=2))
    strides = None if rng.random() < 0.25 else tuple(int(s) for s in rng.integers(1, 4, size=2))
    kind = rng.integers(0, 6)
    if kind < 4:
        padding = ["valid", "same", "same_lower", "full"][kind]
    elif kind == 4:  # symmetric, often within torch's limit of half the window
        padding = tuple(int(rng.integers(0, p // 2 + 1)) for p in pool)
    else:
        padding = tuple(tuple(int(v) for v in rng.integers(0, p + 1, size=2)) for p in pool)
    n, c = int(rng.integers(0, 3)), int(rng.integers(1, 4))
    h, w = (int(rng.integers(1, 11)) for _ in range(2))
    return dict(shape=(n, h, w, c), pool=pool, strides=strides, padding=padding, dilation=dilation,
                ceil_mode=bool(rng.random() < 0.5), count_include_pad=bool(rng.random() < 0.5),
                p=[1.0, 2.0, 3.0, 1.5][int(rng.integers(0, 4))])


def per_axis_padding(padding):
    if isinstance(padding, str):
        return padding, padding
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return padding


def geometry(config):
    """((pads_h, out_h), (pads_w, out_w)) or None, for a config."""
    n, h, w, c = config["shape"]
    strides = config["strides"] or config["pool"]
    axes = [axis_geometry(size, p, s, d, form, config["ceil_mode"])
            for size, p, s, d, form in zip((h, w), config["pool"], strides, config["dilation"],
                                           per_axis_padding(config["padding"]))]
    return None if None in axes else axes


def valid_configs(count, seed):
    rng, found = np.random.default_rng(seed), []
    while len(found) < count:
        config = random_config(rng)
        if geometry(config) is not None:
            found.append(config)
    return found


CONFIGS = valid_configs(300, 17)


def forward_args(config):
    return dict(pool_size=config["pool"], strides=config["strides"], padding=config["padding"],
                dilation=config["dilation"], ceil_mode=config["ceil_mode"])


# ----------------------------------------------------------------------------- the unfold oracle


def padding_widths(x_shape, config):
    """np.pad widths of the NHWC input: the padding, plus rows and columns past it where a
    ceil_mode window hangs over; and the output size."""
    n, h, w, c = x_shape
    (pads_h, out_h), (pads_w, out_w) = geometry(config)
    strides = config["strides"] or config["pool"]
    spans = [(p - 1) * d + 1 for p, d in zip(config["pool"], config["dilation"])]
    extra = [max(0, (out - 1) * s + span - (size + sum(pads)))
             for out, s, span, size, pads in zip((out_h, out_w), strides, spans, (h, w), (pads_h, pads_w))]
    widths = ((0, 0), (pads_h[0], pads_h[1] + extra[0]), (pads_w[0], pads_w[1] + extra[1]), (0, 0))
    return widths, extra, (out_h, out_w)


def windows_of(nchw, config, out):
    """(n, c, taps, out_h, out_w): the taps of every window of a padded NCHW tensor."""
    cols = F.unfold(nchw, config["pool"], dilation=config["dilation"], stride=config["strides"] or config["pool"])
    n, c = nchw.shape[:2]
    strides = config["strides"] or config["pool"]
    full = [(size - ((p - 1) * d + 1)) // s + 1
            for size, p, d, s in zip(nchw.shape[2:], config["pool"], config["dilation"], strides)]
    taps = config["pool"][0] * config["pool"][1]
    return cols.reshape(n, c, taps, full[0], full[1])[:, :, :, :out[0], :out[1]]


def divisor(x_shape, config, widths, extra, out):
    """Each window's count of real pixels, or (count_include_pad) of pixels of the padded input."""
    n, h, w, c = x_shape
    if config["count_include_pad"]:
        inside = np.ones((1, 1, h + sum(widths[1]) - extra[0], w + sum(widths[2]) - extra[1]))
        mask = np.pad(inside, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    else:
        mask = np.pad(np.ones((1, 1, h, w)), ((0, 0), (0, 0), widths[1], widths[2]))
    return windows_of(torch.tensor(mask), config, out).sum(dim=2)


def tap_to_index(tap, config, widths, w):
    """Flat input index ``row * w + col`` of each window's winning tap (n, c, out_h, out_w)."""
    pw = config["pool"][1]
    (dh, dw), strides = config["dilation"], config["strides"] or config["pool"]
    i = np.arange(tap.shape[2])[:, None]
    j = np.arange(tap.shape[3])[None, :]
    rows = i * strides[0] - widths[1][0] + (tap // pw) * dh
    cols = j * strides[1] - widths[2][0] + (tap % pw) * dw
    return rows * w + cols


def oracle(x, config, kind):
    """(values NHWC, grad function, indices NHWC or None) of max, avg or lp pooling."""
    widths, extra, out = padding_widths(x.shape, config)
    fill = -np.inf if kind == "max" else 0.0
    leaf = torch.tensor(np.pad(x, widths, constant_values=fill).transpose(0, 3, 1, 2), requires_grad=True)
    windows = windows_of(leaf, config, out)
    indices = None
    if kind == "max":
        y, tap = windows.max(dim=2)
        indices = tap_to_index(tap.numpy(), config, widths, x.shape[2]).transpose(0, 2, 3, 1)
    elif kind == "avg":
        y = windows.sum(dim=2) / divisor(x.shape, config, widths, extra, out)
    else:
        y = (windows.abs() ** config["p"]).sum(dim=2) ** (1 / config["p"])
    h, w = x.shape[1:3]
    crop = (slice(None), slice(None), slice(widths[1][0], widths[1][0] + h), slice(widths[2][0], widths[2][0] + w))

    def grad(g):
        (gt,) = torch.autograd.grad(y, leaf, torch.tensor(g.transpose(0, 3, 1, 2)))
        return gt[crop].numpy().transpose(0, 2, 3, 1)

    return y.detach().numpy().transpose(0, 2, 3, 1), grad, indices


def distinct(shape, rng):
    """Float64 values with no ties (a permutation, scaled), so every arg-max is unique."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


# ----------------------------------------------------------------------------- against the unfold oracle


def ours(kind, x, config):
    args = forward_args(config)
    if kind == "max":
        return max_pool2d(x, **args, return_indices=True)
    if kind == "avg":
        return avg_pool2d(x, **args, count_include_pad=config["count_include_pad"]), None
    return lp_pool2d(x, config["p"], **args), None


def ours_backward(kind, g, x, config):
    args = forward_args(config)
    if kind == "max":
        return max_pool2d_backward(g, x, **args)
    if kind == "avg":
        return avg_pool2d_backward(g, x, **args, count_include_pad=config["count_include_pad"])
    return lp_pool2d_backward(g, x, config["p"], **args)


@pytest.mark.parametrize("kind", ["max", "avg", "lp"])
@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_values_indices_and_gradients_match_the_unfold_oracle(kind, seed):
    config = CONFIGS[seed]
    rng = np.random.default_rng(seed)
    x = distinct(config["shape"], rng) + 1 / 14  # no zeros: the Lp root has no slope at 0
    got, indices = ours(kind, x, config)
    want, grad, want_indices = oracle(x, config, kind)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if kind == "max":
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(indices, want_indices)
    g = rng.standard_normal(got.shape)
    back = ours_backward(kind, g, x, config)
    assert back.shape == x.shape and back.dtype == np.float64
    np.testing.assert_allclose(back, grad(g), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- against torch's own functions


def torch_padding(config):
    """torch's symmetric (pad_h, pad_w) for this config, or None where torch cannot say it."""
    n, h, w, c = config["shape"]
    (pads_h, _), (pads_w, _) = geometry(config)
    if pads_h[0] != pads_h[1] or pads_w[0] != pads_w[1]:
        return None
    if pads_h[0] > config["pool"][0] // 2 or pads_w[0] > config["pool"][1] // 2:
        return None  # torch: "pad should be smaller than or equal to half of kernel size"
    return pads_h[0], pads_w[0]


def nchw(x):
    return torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


TORCH_MAX = [c for c in CONFIGS if torch_padding(c) is not None]
TORCH_AVG = [c for c in TORCH_MAX if c["dilation"] == (1, 1)]


def test_enough_configurations_reach_torch_itself():
    assert len(TORCH_MAX) >= 100 and len(TORCH_AVG) >= 40
    assert sum(c["ceil_mode"] for c in TORCH_AVG) >= 15
    assert sum(c["count_include_pad"] and torch_padding(c) != (0, 0) for c in TORCH_AVG) >= 5


def unpool_window(pooled, size):
    """A (kernel, stride, padding) torch's max_unpool2d accepts with this output size: its
    values depend only on the indices, but it checks output_size against that window."""
    kernel, padding = [], []
    for small, big in zip(pooled, size):
        pad = max(0, -(-(small - big) // 2))  # stride 1: big = small - 1 - 2 pad + kernel
        kernel.append(big - small + 1 + 2 * pad)
        padding.append(pad)
    return tuple(kernel), 1, tuple(padding)


@pytest.mark.parametrize("seed", range(len(TORCH_MAX)))
def test_max_pool_and_unpool_match_torch(seed):
    config = TORCH_MAX[seed]
    rng = np.random.default_rng(seed)
    x = distinct(config["shape"], rng)
    t = nchw(x)
    strides = config["strides"] or config["pool"]
    y, index = F.max_pool2d(t, config["pool"], strides, torch_padding(config), config["dilation"],
                            ceil_mode=config["ceil_mode"], return_indices=True)
    got, indices = max_pool2d(x, **forward_args(config), return_indices=True)
    np.testing.assert_array_equal(got, nhwc(y))
    np.testing.assert_array_equal(indices, index.numpy().transpose(0, 2, 3, 1))
    g = rng.standard_normal(got.shape)
    (gt,) = torch.autograd.grad(y, t, torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(max_pool2d_backward(g, x, **forward_args(config)), nhwc(gt), rtol=1e-10, atol=0)
    # unpooling puts the values back; its gradient reads grad_out at the indices
    size = config["shape"][1:3]
    values = nchw(got)
    unpooled = F.max_unpool2d(values, index, *unpool_window(got.shape[1:3], size), output_size=size)
    np.testing.assert_array_equal(max_unpool2d(got, indices, size), nhwc(unpooled))
    g_up = rng.standard_normal(x.shape)
    (g_values,) = torch.autograd.grad(unpooled, values, torch.tensor(g_up.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(max_unpool2d_backward(g_up, got, indices, size), nhwc(g_values))


@pytest.mark.parametrize("seed", range(len(TORCH_AVG)))
def test_avg_pool_matches_torch(seed):
    config = TORCH_AVG[seed]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["shape"])
    t = nchw(x)
    y = F.avg_pool2d(t, config["pool"], config["strides"] or config["pool"], torch_padding(config),
                     ceil_mode=config["ceil_mode"], count_include_pad=config["count_include_pad"])
    options = dict(forward_args(config), count_include_pad=config["count_include_pad"])
    np.testing.assert_allclose(avg_pool2d(x, **options), nhwc(y), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape).transpose(0, 2, 3, 1)
    (gt,) = torch.autograd.grad(y, t, torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(avg_pool2d_backward(g, x, **options), nhwc(gt), rtol=1e-10, atol=1e-12)


TORCH_LP = [c for c in TORCH_AVG if torch_padding(c) == (0, 0)]


@pytest.mark.parametrize("seed", range(len(TORCH_LP)))
def test_lp_pool_matches_torch_on_absolute_values(seed):
    """torch sums x^p, SPEC |x|^p: they agree on |x|, and where no ceil_mode window hangs
    past the input (torch then scales a clipped window's mean by the whole window's area)."""
    config = TORCH_LP[seed]
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal(config["shape"])) + 0.1
    (_, out_h), (_, out_w) = geometry(config)
    floor = geometry(dict(config, ceil_mode=False))
    if (out_h, out_w) != (floor[0][1], floor[1][1]):
        config = dict(config, ceil_mode=False)
    t = nchw(x)
    y = F.lp_pool2d(t, config["p"], config["pool"], config["strides"] or config["pool"], ceil_mode=config["ceil_mode"])
    got = lp_pool2d(x, config["p"], **forward_args(config))
    np.testing.assert_allclose(got, nhwc(y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lp_pool2d(-x, config["p"], **forward_args(config)), got, rtol=0, atol=0)
    g = rng.standard_normal(got.shape)
    (gt,) = torch.autograd.grad(y, t, torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(lp_pool2d_backward(g, x, config["p"], **forward_args(config)), nhwc(gt),
                               rtol=1e-9, atol=1e-12)


def test_lp_pool_differs_from_torch_where_documented():
    x = np.array([[-2.0, 1.0], [1.0, 1.0]])[None, :, :, None]
    assert lp_pool2d(x, 3, 2)[0, 0, 0, 0] == pytest.approx(11 ** (1 / 3), rel=1e-15)
    assert np.isnan(F.lp_pool2d(torch.tensor(x.transpose(0, 3, 1, 2)), 3, 2).item())  # torch: (-8 + 3)^(1/3)
    assert lp_pool2d(x, 1, 2)[0, 0, 0, 0] == 5.0  # torch: -2 + 1 + 1 + 1 = 1
    ones = np.ones((1, 3, 3, 1))  # ceil_mode: the last window holds 2 of 4 pixels
    assert lp_pool2d(ones, 2, 2, ceil_mode=True)[0, 0, 1, 0] == pytest.approx(np.sqrt(2))
    assert F.lp_pool2d(torch.ones(1, 1, 3, 3), 2, 2, ceil_mode=True)[0, 0, 0, 1].item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------- SPEC's refusals, float32


@pytest.mark.parametrize("seed", range(200))
def test_refused_exactly_where_spec_has_no_window(seed):
    config = random_config(np.random.default_rng(10_000 + seed))
    x = np.zeros(config["shape"])
    if geometry(config) is None:
        with pytest.raises(ValueError, match="does not fit|padding only"):
            max_pool2d(x, **forward_args(config))
    else:
        (_, out_h), (_, out_w) = geometry(config)
        assert avg_pool2d(x, **forward_args(config)).shape[1:3] == (out_h, out_w)


@pytest.mark.parametrize("seed", range(0, len(CONFIGS), 3))
def test_float32_within_the_summation_bound(seed):
    """float32 sums of m taps (Higham 3.1: (m - 1) u of the sum of |terms|), then one rounded
    division: within (m + 1) u of the mean of |x| over the window. Lp pooling computes in
    float64 (m terms, a power each and a root: within (m + 4) 2^-53 relatively) and rounds
    once: within u + (m + 4) 2^-53 of the value. Max pooling is exact."""
    config = CONFIGS[seed]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["shape"]).astype(np.float32)
    wide = x.astype(np.float64)
    args = forward_args(config)
    m = config["pool"][0] * config["pool"][1]
    include = config["count_include_pad"]
    got = avg_pool2d(x, **args, count_include_pad=include)
    assert got.dtype == np.float32
    exact = avg_pool2d(wide, **args, count_include_pad=include)
    bound = (m + 1) * U32 * avg_pool2d(np.abs(wide), **args, count_include_pad=include)
    assert np.all(np.abs(got - exact) <= bound)
    p = config["p"]
    got, exact = lp_pool2d(x, p, **args), lp_pool2d(wide, p, **args)
    assert got.dtype == np.float32
    assert np.all(np.abs(got - exact) <= (U32 + (m + 4) * 2.0**-53) * exact)
    np.testing.assert_array_equal(max_pool2d(x, **args), max_pool2d(wide, **args).astype(np.float32))
