"""The pooling layers of convlayer.nn: gradients against finite differences, values against
the functional ops, repr, summary rows and counts, receptive fields, and unpooling pairs."""

import numpy as np
import pytest

import convlayer
from convlayer import nn


def distinct(rng, shape):
    """Random values, all distinct and at least 1 / size apart, so max pooling has no ties."""
    size = int(np.prod(shape))
    return (rng.permutation(size) - size / 2).reshape(shape) / size * 4


def check_layer(layer, x, rng, eps=1e-6):
    """backward(g) against central finite differences of sum(g * forward(x))."""
    g = rng.standard_normal(layer.forward(x).shape)
    grad = np.array(layer.backward(g), copy=True)
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = (np.sum(g * layer.forward(x + step)) - np.sum(g * layer.forward(x - step))) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)

LAYERS = [
    lambda: nn.MaxPool2D(3, strides=2, padding=1, dilation=2, ceil_mode=True),
    lambda: nn.AvgPool2D(3, strides=2, padding=1, ceil_mode=True, count_include_pad=True),
    lambda: nn.AvgPool2D(2, strides=1, dilation=(2, 1)),
    lambda: nn.LPPool2D(2, 2, ceil_mode=True),
    lambda: nn.LPPool2D(3, (2, 3), strides=1, padding="same"),
    lambda: nn.AdaptiveAvgPool2D((3, 2)),
    lambda: nn.AdaptiveMaxPool2D(4),
    lambda: nn.GlobalAvgPool2D(),
    lambda: nn.GlobalMaxPool2D(keepdims=True),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda make: repr(make()))
def test_pool_layer_gradients_and_values(make):
    rng = np.random.default_rng(3)
    layer = make()
    x = distinct(rng, (2, 7, 5, 3)) + 0.01  # no zeros: the Lp root has no slope at 0
    check_layer(layer, x, rng)
    assert layer.params == {} and layer.grads == {} and layer.num_params == 0
    assert layer.output_shape(x.shape[1:]) == layer.forward(x).shape[1:]


def test_layers_call_the_functional_ops():
    x = np.random.default_rng(0).standard_normal((2, 9, 8, 3))
    np.testing.assert_array_equal(nn.MaxPool2D(3, 2, dilation=2, ceil_mode=True).forward(x),
                                  convlayer.max_pool2d(x, 3, 2, dilation=2, ceil_mode=True))
    np.testing.assert_array_equal(nn.AvgPool2D(3, 2, 1, count_include_pad=True).forward(x),
                                  convlayer.avg_pool2d(x, 3, 2, 1, count_include_pad=True))
    np.testing.assert_array_equal(nn.LPPool2D(2, 3).forward(x), convlayer.lp_pool2d(x, 2, 3))
    np.testing.assert_array_equal(nn.AdaptiveAvgPool2D(5).forward(x), convlayer.adaptive_avg_pool2d(x, 5))
    np.testing.assert_array_equal(nn.GlobalMaxPool2D().forward(x), convlayer.global_max_pool2d(x))


def test_reprs_show_what_differs_from_the_defaults():
    assert repr(nn.MaxPool2D()) == "MaxPool2D()"
    assert repr(nn.MaxPool2D(3, dilation=2)) == "MaxPool2D(pool_size=3, dilation=2)"
    assert repr(nn.AvgPool2D(count_include_pad=True)) == "AvgPool2D(count_include_pad=True)"
    assert repr(nn.LPPool2D(2)) == "LPPool2D(2.0)"
    assert repr(nn.AdaptiveMaxPool2D((7, 7))) == "AdaptiveMaxPool2D((7, 7))"
    assert repr(nn.GlobalAvgPool2D()) == "GlobalAvgPool2D()"
    assert repr(nn.GlobalAvgPool2D(keepdims=True)) == "GlobalAvgPool2D(keepdims=True)"
    pool = nn.MaxPool2D()
    assert repr(nn.MaxUnpool2D(pool)) == "MaxUnpool2D(MaxPool2D())"


def test_summary_rows_and_counts():
    pool = nn.MaxPool2D(2)
    model = nn.Sequential([
        nn.Conv2D(3, 4, 3), nn.ReLU(), pool, nn.LPPool2D(2, 3, strides=1, padding="same"),
        nn.MaxUnpool2D(pool), nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=True),
        nn.AdaptiveMaxPool2D((3, 2)), nn.AdaptiveAvgPool2D(2), nn.GlobalAvgPool2D(), nn.Dense(4, 5),
    ], input_shape=(9, 9, 3), seed=0)
    text = model.summary(show=False)
    rows = {line.split("  ")[0]: line for line in text.splitlines() if ":" in line}
    assert "(None, 4, 4, 4)" in rows["2: MaxPool2D()"]
    assert "(None, 9, 9, 4)" in rows["4: MaxUnpool2D(MaxPool2D())"]  # the pooled input's size back
    assert "(None, 5, 5, 4)" in rows["5: AvgPool2D(pool_size=3, strides=2, padding=1, ceil_mode=True, count_include_pad=True)"]
    assert "(None, 4)" in rows["8: GlobalAvgPool2D()"]
    assert text.rstrip().endswith(f"Total params: {(3 * 3 * 3 + 1) * 4 + (4 + 1) * 5:,}")
    assert all(row.rstrip().endswith(" 0") for name, row in rows.items() if "Pool" in name)
    y = model.forward(np.random.default_rng(1).standard_normal((2, 9, 9, 3)))
    assert y.shape == (2, 5)
    assert model.backward(np.ones_like(y)).shape == (2, 9, 9, 3)


def test_unpool_layer_pairs_with_its_pool():
    rng = np.random.default_rng(2)
    pool = nn.MaxPool2D(2, ceil_mode=True)
    unpool = nn.MaxUnpool2D(pool)
    x = distinct(rng, (2, 5, 5, 2))
    y = unpool.forward(pool.forward(x))
    assert y.shape == x.shape
    values, indices = convlayer.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(pool.indices, indices)
    np.testing.assert_array_equal(y, convlayer.max_unpool2d(values, indices, (5, 5)))
    check_layer(unpool, values, rng)  # the indices are fixed by the pool's last forward
    with pytest.raises(ValueError, match=r"MaxUnpool2D's forward needs MaxPool2D\(\) to have run first"):
        nn.MaxUnpool2D(nn.MaxPool2D()).forward(values)
    with pytest.raises(TypeError, match=r"pool must be the MaxPool2D layer whose maxima are put back; got AvgPool2D\(\)"):
        nn.MaxUnpool2D(nn.AvgPool2D())
    with pytest.raises(ValueError, match=r"p must be a finite number > 0, such as 1 or 2; got -1"):
        nn.LPPool2D(-1)


def test_receptive_field_of_dilated_pools_and_the_end_at_global_pools():
    model = nn.Sequential([nn.Conv2D(1, 2, 3, padding="valid"), nn.MaxPool2D(2, strides=1, dilation=2),
                           nn.GlobalAvgPool2D(), nn.Dense(2, 3)])
    fields = model.receptive_field((12, 12, 1))
    assert [(r.size, r.jump) for r in fields] == [((3, 3), (1, 1)), ((5, 5), (1, 1))]  # 3 + (3 - 1) * 1
