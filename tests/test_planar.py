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


@pytest.mark.parametrize("case", ["one image, fewer pixels than filters", "images of more pixels than filters",
                                  "a kernel view", "float32 with a bias"])
def test_channels_first_many_channels_read_their_planes(case, monkeypatch):
    # channels-first calls with more channels than MAX_CHANNELS go plane by plane (one
    # image, or images of at least as many output pixels as filters): the kernel read as
    # it lies, each product written into the NCHW output; counted, and against the float64
    # reference loops. Several images of fewer pixels than filters keep im2col's route.
    rng = np.random.default_rng(10)
    n, c, k, size, options = {
        "one image, fewer pixels than filters": (1, 12, 40, 5, dict(padding=1)),
        "images of more pixels than filters": (3, 6, 5, 9, dict(strides=2, padding=((1, 2), (0, 1)), dilation=(1, 2))),
        "a kernel view": (1, 7, 9, 8, dict(strides=(1, 2), padding="same")),
        "float32 with a bias": (2, 16, 8, 6, dict(padding=1)),
    }[case]
    x, kernel = rng.standard_normal((n, c, size, size + 1)), rng.standard_normal((k, c, 3, 3))
    bias = rng.standard_normal(k) if case == "float32 with a bias" else None
    if case == "a kernel view":  # (k, c, fh, fw) that does not lie as PyTorch's: copied
        kernel = np.ascontiguousarray(kernel.transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)
    calls = []  # the calls planar computed
    correlate = planar.correlate
    monkeypatch.setattr(planar, "correlate", lambda *a: correlate(*a) and not calls.append(1))
    nhwc, hwck = x.transpose(0, 2, 3, 1), kernel.transpose(2, 3, 1, 0)
    want = reference.conv2d(nhwc, hwck, bias, **options).transpose(0, 3, 1, 2)
    if case == "float32 with a bias":
        got = convlayer.conv2d(x.astype(np.float32), kernel.astype(np.float32), bias.astype(np.float32),
                               data_format="channels_first", **options)
        bound = 3 * 9 * c * 2.0**-24 * reference.conv2d(abs(nhwc), abs(hwck), abs(bias), **options)
        assert (abs(got - want) <= bound.transpose(0, 3, 1, 2)).all()
    else:
        got = convlayer.conv2d(x, kernel, data_format="channels_first", **options)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert calls
    calls.clear()
    few = rng.standard_normal((3, c, 5, 5))  # 25 pixels an image, fewer than 40 filters: not planes
    many = rng.standard_normal((40, c, 3, 3))
    got = convlayer.conv2d(few, many, data_format="channels_first", padding=1)
    want = reference.conv2d(few.transpose(0, 2, 3, 1), many.transpose(2, 3, 1, 0), padding=1)
    np.testing.assert_allclose(got, want.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    assert not calls


def test_channels_first_planes_past_the_budget_are_copied_channels_last(monkeypatch):
    # one image's planes and patches (8 x 12 x 12 + 72 x 100 values) pass the budget while
    # its channels-last copies fit: dispatch copies it channels-last (planar not called)
    rng = np.random.default_rng(11)
    x, kernel = rng.standard_normal((2, 8, 10, 10)), rng.standard_normal((12, 8, 3, 3))
    calls = []
    correlate = planar.correlate
    monkeypatch.setattr(planar, "correlate", lambda *a: calls.append(1) or correlate(*a))
    with convlayer.memory_budget(8 * (8 * 12 * 12 + 72 * 100) - 8):
        got = convlayer.conv2d(x, kernel, padding=1, data_format="channels_first")
    want = reference.conv2d(x.transpose(0, 2, 3, 1), kernel.transpose(2, 3, 1, 0), padding=1)
    np.testing.assert_allclose(got, want.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    assert not calls
