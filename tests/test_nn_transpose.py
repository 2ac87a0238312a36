"""nn.Conv2DTranspose: a thin shell over conv_transpose2d, with summary counts and training."""

import numpy as np
import pytest

import convlayer
from convlayer import nn


def test_forward_and_backward_are_the_functional_ops():
    rng = np.random.default_rng(0)
    layer = nn.Conv2DTranspose(4, 6, 3, strides=2, padding=1, output_padding=1, groups=2, seed=1)
    x = rng.standard_normal((2, 5, 5, 4))
    y = layer.forward(x)
    want = convlayer.conv_transpose2d(x, layer.params["kernel"], layer.params["bias"], strides=2, padding=1,
                                      output_padding=1, groups=2)
    np.testing.assert_array_equal(y, want)
    assert y.shape == (2, 10, 10, 6) and layer.params["kernel"].shape == (3, 3, 3, 4)
    grad = rng.standard_normal(y.shape)
    grad_x = layer.backward(grad)
    grads = convlayer.conv_transpose2d_backward(grad, x, layer.params["kernel"], strides=2, padding=1,
                                                output_padding=1, groups=2)
    np.testing.assert_array_equal(grad_x, grads.grad_x)
    np.testing.assert_array_equal(layer.grads["kernel"], grads.grad_kernel)
    np.testing.assert_array_equal(layer.grads["bias"], grads.grad_bias)


def test_summary_counts_and_shapes():
    model = nn.Sequential([nn.Conv2D(1, 8, 3, strides=2), nn.ReLU(),
                           nn.Conv2DTranspose(8, 4, 4, strides=2, padding=1), nn.ReLU(),
                           nn.Conv2DTranspose(4, 1, 3, padding="same", bias=False)], input_shape=(16, 16, 1), seed=0)
    text = model.summary(show=False)
    assert "Conv2DTranspose(8, 4, kernel_size=4, strides=2, padding=1)  (None, 16, 16, 4)" in text
    assert "Conv2DTranspose(4, 1, kernel_size=3, bias=False)" in text
    # (3*3*1 + 1) * 8, then 4*4*4*8 + 4, then 3*3*1*4
    assert model.num_params == 80 + 516 + 36
    assert f"Total params: {80 + 516 + 36:,}" in text
    assert model.forward(np.zeros((2, 16, 16, 1), np.float32)).shape == (2, 16, 16, 1)


def test_the_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    layer = nn.Conv2DTranspose(2, 3, (2, 3), strides=(2, 1), padding="valid", seed=3)
    layer.params = {name: p.astype(np.float64) for name, p in layer.params.items()}
    x, grad = rng.standard_normal((1, 3, 3, 2)), None
    grad = rng.standard_normal(layer.forward(x).shape)
    layer.backward(grad)
    kernel = layer.params["kernel"]
    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        for sign in (1, -1):
            kernel[index] += sign * 1e-6
            numeric[index] += sign * np.sum(grad * layer.forward(x)) / 2e-6
            kernel[index] -= sign * 1e-6
    np.testing.assert_allclose(layer.grads["kernel"], numeric, rtol=1e-6, atol=1e-8)


def test_a_small_decoder_learns_to_upsample():
    """An autoencoder-ish pair learns to reproduce a blurred 8x8 image: the loss falls."""
    rng = np.random.default_rng(4)
    images = convlayer.conv2d(rng.random((32, 8, 8, 1)), np.ones((3, 3, 1, 1)) / 9).astype(np.float32)
    model = nn.Sequential([nn.Conv2D(1, 4, 3, strides=2), nn.ReLU(), nn.Conv2DTranspose(4, 1, 4, strides=2, padding=1)],
                          input_shape=(8, 8, 1), seed=0)
    optimizer = nn.Adam(1e-2)
    losses = []
    for _ in range(60):
        out = model.forward(images, training=True)
        losses.append(float(np.mean((out - images) ** 2)))
        model.backward(2 * (out - images) / out.size)
        optimizer.step(model.parameters())
    assert losses[-1] < 0.3 * losses[0]


def test_bad_arguments_are_refused_when_built():
    with pytest.raises(ValueError, match="groups must divide"):
        nn.Conv2DTranspose(3, 4, 3, groups=2)
