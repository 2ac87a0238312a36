"""algorithms.planar, the few-channel patch matrix built plane by plane: the paths the
public tests do not reach on their own (several chunks of images, forward and backward, an
output that is neither channels-last nor channels-first), against the float64 reference loops."""

import numpy as np
import pytest

import convlayer
from convlayer import reference, shapes
from convlayer.algorithms import planar


@pytest.mark.parametrize("out_kind", ["channels-last", "channels-first", "strided"])
def test_chunks_of_images_into_every_output_layout(out_kind, monkeypatch):
    # CHUNK_BYTES of one image's planes and patches: 5 images go one chunk at a time
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 9, 11, 3))
    kernel = rng.standard_normal((3, 2, 3, 4))
    options = dict(strides=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2))
    geom = shapes.conv_geometry(x.shape, kernel.shape, **options)
    monkeypatch.setattr(planar, "CHUNK_BYTES", 8 * (3 * (9 + 3) * (11 + 1) + 6 * 3 * geom.out_h * geom.out_w))
    shape = (5, geom.out_h, geom.out_w, 4)
    out = {"channels-last": np.empty(shape),
           "channels-first": np.empty((5, 4, geom.out_h, geom.out_w)).transpose(0, 2, 3, 1),
           "strided": np.empty(shape[:3] + (8,))[..., ::2]}[out_kind]
    assert planar.applies(geom, "constant")
    assert planar.correlate(x, kernel, geom, out, 2**28)
    np.testing.assert_allclose(out, reference.conv2d(x, kernel, **options), rtol=1e-12, atol=1e-12)


def test_refuses_a_budget_below_one_image():
    x, kernel = np.ones((1, 8, 8, 2)), np.ones((3, 3, 2, 1))
    geom = shapes.conv_geometry(x.shape, kernel.shape, padding=1)
    out = np.full((1, 8, 8, 1), 7.0)
    assert not planar.correlate(x, kernel, geom, out, 8 * (2 * 10 * 10 + 18 * 64) - 1)
    assert (out == 7).all()  # nothing computed
    assert not planar.applies(geom, "reflect") and not planar.applies(geom._replace(c=5), "constant")
    stem = shapes.conv_geometry((1, 224, 224, 3), (7, 7, 3, 64), strides=2, padding=3)
    assert not planar.applies(stem, "constant") and planar.applies(stem, "constant", views=True)  # MAX_RUN


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_gradients_chunk_by_chunk(data_format, monkeypatch):
    # planar.gradients, one image a chunk (CHUNK_BYTES): the kernel's gradient summed over
    # the chunks, x's written chunk by chunk; stride 2 (both gradients in one pass) with
    # padding on every side, and the calls counted so the test knows it took this path
    rng = np.random.default_rng(9)
    x, kernel = rng.standard_normal((3, 11, 9, 2)), rng.standard_normal((3, 3, 2, 5))
    options = dict(strides=2, padding=((1, 2), (2, 1)))
    geom = shapes.conv_geometry(x.shape, kernel.shape, **options)
    grad = rng.standard_normal((3, geom.out_h, geom.out_w, 5))
    expected = reference.conv2d_backward(grad, x, kernel, **options)
    monkeypatch.setattr(planar, "CHUNK_BYTES", 1)
    calls = []
    gradients = planar.gradients
    monkeypatch.setattr(planar, "gradients", lambda *a: calls.append(1) or gradients(*a))
    if data_format == "channels_first":
        x, kernel = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        grad = np.ascontiguousarray(grad.transpose(0, 3, 1, 2))
    got = convlayer.conv2d_backward(grad, x, kernel, data_format=data_format, **options)
    want_x, want_kernel = expected.grad_x, expected.grad_kernel
    if data_format == "channels_first":
        want_x, want_kernel = want_x.transpose(0, 3, 1, 2), want_kernel.transpose(3, 2, 0, 1)
    assert calls
    np.testing.assert_allclose(got.grad_x, want_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.grad_kernel, want_kernel, rtol=1e-12, atol=1e-12)
