"""The plain-loop poolings of convlayer.reference: checked by hand, then used as an oracle
for the fast ops on random configurations (every keyword, both layouts, integer inputs)."""

import numpy as np
import pytest

import convlayer
from convlayer import reference


def test_reference_pools_by_hand():
    x = np.arange(25.0).reshape(5, 5, 1)
    np.testing.assert_array_equal(reference.max_pool2d(x, 2, ceil_mode=True)[..., 0],
                                  [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    assert reference.avg_pool2d(x, 2, ceil_mode=True)[0, 2, 0] == (4 + 9) / 2
    ones = np.ones((4, 4, 1))
    got = reference.avg_pool2d(ones, 3, 2, 1, ceil_mode=True, count_include_pad=True)[0, :, 0]
    np.testing.assert_allclose(got, [4 / 9, 6 / 9, 2 / 6])
    assert reference.max_pool2d(x, 2, 1, dilation=2, return_indices=True)[1][0, 0, 0] == 12
    assert reference.lp_pool2d(np.array([[3.0, -4.0]])[..., None], 1, (1, 2))[0, 0, 0] == 7.0
    nan = np.array([[1.0, np.nan], [np.nan, 3.0]])[..., None]
    assert reference.max_pool2d(nan, 2, return_indices=True)[1][0, 0, 0] == 1
    np.testing.assert_array_equal(reference.adaptive_max_pool2d(np.arange(5).reshape(1, 5, 1), (1, 3))[..., 0],
                                  [[1, 3, 4]])
    assert reference.global_max_pool2d(x, keepdims=True).shape == (1, 1, 1)
    np.testing.assert_array_equal(reference.max_unpool2d(np.array([[[7]]]), np.array([[[3]]]), 2)[..., 0],
                                  [[0, 0], [0, 7]])


def random_window_config(rng):
    pool = tuple(int(p) for p in rng.integers(1, 4, size=2))
    padding = [
        "valid", "same", "same_lower", "full",
        tuple(tuple(int(v) for v in rng.integers(0, p + 1, size=2)) for p in pool),
    ][int(rng.integers(0, 5))]
    return dict(pool_size=pool, strides=None if rng.random() < 0.3 else tuple(int(s) for s in rng.integers(1, 4, size=2)),
                padding=padding, dilation=tuple(int(d) for d in rng.integers(1, 3, size=2)),
                ceil_mode=bool(rng.random() < 0.5))


def random_input(rng, channels_first):
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 3)))
    x = rng.integers(-5, 6, size=shape) if rng.random() < 0.3 else rng.standard_normal(shape)
    return x.transpose(0, 3, 1, 2) if channels_first else x


@pytest.mark.parametrize("seed", range(120))
def test_window_pools_equal_the_loops(seed):
    rng = np.random.default_rng(seed)
    options = random_window_config(rng)
    channels_first = bool(seed % 2)
    x = random_input(rng, channels_first)
    options["data_format"] = "channels_first" if channels_first else "channels_last"
    try:
        want = reference.max_pool2d(x, **options, return_indices=True)
    except ValueError:
        with pytest.raises(ValueError):
            convlayer.max_pool2d(x, **options)
        return
    got = convlayer.max_pool2d(x, **options, return_indices=True)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == want[0].dtype
    for include in (False, True):
        np.testing.assert_allclose(convlayer.avg_pool2d(x, **options, count_include_pad=include),
                                   reference.avg_pool2d(x, **options, count_include_pad=include), rtol=1e-12, atol=1e-12)
    p = [1, 2, 3.5][seed % 3]
    np.testing.assert_allclose(convlayer.lp_pool2d(x, p, **options), reference.lp_pool2d(x, p, **options),
                               rtol=1e-12, atol=1e-12)
    size = x.shape[2:] if channels_first else x.shape[1:3]
    fmt = options["data_format"]
    np.testing.assert_array_equal(convlayer.max_unpool2d(*got, size, data_format=fmt),
                                  reference.max_unpool2d(*want, size, data_format=fmt))


@pytest.mark.parametrize("seed", range(80))
def test_adaptive_and_global_pools_equal_the_loops(seed):
    rng = np.random.default_rng(500 + seed)
    channels_first = bool(seed % 2)
    x = random_input(rng, channels_first)
    fmt = "channels_first" if channels_first else "channels_last"
    output_size = tuple(int(o) for o in rng.integers(1, 9, size=2))
    np.testing.assert_allclose(convlayer.adaptive_avg_pool2d(x, output_size, data_format=fmt),
                               reference.adaptive_avg_pool2d(x, output_size, data_format=fmt), rtol=1e-12, atol=1e-12)
    got = convlayer.adaptive_max_pool2d(x, output_size, True, data_format=fmt)
    want = reference.adaptive_max_pool2d(x, output_size, True, data_format=fmt)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    keepdims = bool(seed % 3)
    np.testing.assert_allclose(convlayer.global_avg_pool2d(x, keepdims, data_format=fmt),
                               reference.global_avg_pool2d(x, keepdims, data_format=fmt), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(convlayer.global_max_pool2d(x, keepdims, data_format=fmt),
                                  reference.global_max_pool2d(x, keepdims, data_format=fmt))
