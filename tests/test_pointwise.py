"""1x1 layers without padding (algorithms/pointwise.py): the arrays multiplied as they lie,
both layouts, against the float64 reference loops; the gradients as two products."""

import numpy as np
import pytest

import convlayer
from convlayer import reference, shapes
from convlayer.algorithms import pointwise


def _channels_first(x, kernel):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


@pytest.mark.parametrize("case", [
    dict(shape=(3, 2, 2, 24), strides=1, dtype=np.float64, budget=None),
    dict(shape=(5, 3, 6, 24), strides=(2, 3), dtype=np.uint8, budget=None),
    dict(shape=(5, 2, 2, 24), strides=1, dtype=np.float32, budget=2 * 4 * (24 + 30) * 8),  # float64 out
], ids=["stride1", "strided-uint8", "two-images-a-chunk"])
def test_channels_first_small_images_go_side_by_side(case, monkeypatch):
    # channels-first 1x1 layers whose images' planes are small next to the kernel (2x2
    # pixels, 24 -> 30 channels): all the chunk's images in one product, against the
    # float64 reference loops, the calls counted; within the budget, a chunk at a time
    rng = np.random.default_rng(33)
    x = (rng.random(case["shape"]) * 100).astype(case["dtype"])
    kernel = rng.standard_normal((1, 1, 24, 30))
    expected = reference.conv2d(x.astype(np.float64), kernel, strides=case["strides"], padding="valid")
    x, kernel = _channels_first(x, kernel)
    calls = []
    beside = pointwise._beside
    monkeypatch.setattr(pointwise, "_beside", lambda *a: calls.append(a[2].shape[0]) or beside(*a))
    with convlayer.memory_budget(case["budget"] or convlayer.get_memory_budget()):
        got = convlayer.conv2d(x, kernel, strides=case["strides"], padding="valid", data_format="channels_first")
    assert calls == ([2, 2, 1] if case["budget"] else [x.shape[0]])
    np.testing.assert_allclose(got, expected.transpose(0, 3, 1, 2), rtol=1e-9, atol=1e-9)
    assert not pointwise.side_by_side(shapes.conv_geometry((2, 3, 3, 24), (1, 1, 24, 30), padding="valid"))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", [
    dict(shape=(2, 9, 7, 5), k=3, strides=1, dtype=np.float64),
    dict(shape=(3, 9, 7, 5), k=4, strides=(2, 3), dtype=np.float64),
    dict(shape=(1, 1, 1, 120), k=32, strides=1, dtype=np.float64),
    dict(shape=(2, 6, 6, 4), k=2, strides=1, dtype=np.uint8),
    dict(shape=(2, 5, 8, 3), k=2, strides=2, dtype=np.int16),
], ids=["stride1", "strided", "squeeze-excite", "uint8", "int16-strided"])
def test_one_by_one_layers_multiply_the_arrays_as_they_lie(case, data_format, monkeypatch):
    # 1x1 without padding: pointwise.correlate, in either layout, with a bias
    rng = np.random.default_rng(31)
    x = (rng.random(case["shape"]) * 100).astype(case["dtype"])
    kernel = rng.standard_normal((1, 1, case["shape"][3], case["k"]))
    bias = rng.standard_normal(case["k"])
    expected = reference.conv2d(x.astype(np.float64), kernel, bias, strides=case["strides"], padding="valid")
    if data_format == "channels_first":
        x, kernel = _channels_first(x, kernel)
        expected = expected.transpose(0, 3, 1, 2)
    calls = []
    products = pointwise.correlate
    monkeypatch.setattr(pointwise, "correlate", lambda *a: calls.append(1) or products(*a))
    got = convlayer.conv2d(x, kernel, bias, strides=case["strides"], padding="valid", data_format=data_format)
    assert calls and got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_one_by_one_layers_copy_strided_pixels_a_chunk_of_images_at_a_time(data_format, work_memory):
    rng = np.random.default_rng(32)
    x = rng.standard_normal((6, 40, 40, 16))
    kernel = rng.standard_normal((1, 1, 16, 8))
    expected = reference.conv2d(x, kernel, strides=2, padding="valid")
    if data_format == "channels_first":
        x, kernel = _channels_first(x, kernel)
        expected = expected.transpose(0, 3, 1, 2)
    budget = 20 * 20 * 16 * 8 * 2  # two images' strided pixels
    with convlayer.memory_budget(budget):
        used, got = work_memory(lambda: convlayer.conv2d(x, kernel, strides=2, padding="valid",
                                                         data_format=data_format))
    assert used <= budget + 64 * 1024
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", [
    dict(shape=(2, 9, 7, 5), k=3, strides=1, dtype=np.float64),
    dict(shape=(3, 9, 7, 5), k=4, strides=(2, 3), dtype=np.float64),
    dict(shape=(1, 1, 1, 120), k=32, strides=1, dtype=np.float64),
    dict(shape=(2, 5, 8, 3), k=2, strides=2, dtype=np.int16),
    dict(shape=(4, 64, 64, 2), k=3, strides=1, dtype=np.float64),  # past SHIFT_MIN_OUTPUTS: two routes
], ids=["stride1", "strided", "squeeze-excite", "int16-strided", "large"])
def test_one_by_one_gradients_are_two_products(case, data_format, monkeypatch):
    rng = np.random.default_rng(34)
    x = (rng.random(case["shape"]) * 100).astype(case["dtype"])
    kernel = rng.standard_normal((1, 1, case["shape"][3], case["k"]))
    options = dict(strides=case["strides"], padding="valid")
    grad = rng.standard_normal(reference.conv2d(x.astype(np.float64), kernel, **options).shape)
    expected = reference.conv2d_backward(grad, x.astype(np.float64), kernel, **options)
    if data_format == "channels_first":
        x, kernel = _channels_first(x, kernel)
        grad = np.ascontiguousarray(grad.transpose(0, 3, 1, 2))
        expected = (expected.grad_x.transpose(0, 3, 1, 2), expected.grad_kernel.transpose(3, 2, 0, 1),
                    expected.grad_bias)
    calls = []  # the products of pointwise.gradients, or of plane_gradients (channels-first)
    for name in ("gradients", "plane_gradients"):
        products = getattr(pointwise, name)
        monkeypatch.setattr(pointwise, name, lambda *a, products=products: products(*a) and not calls.append(1))
    got = convlayer.conv2d_backward(grad, x, kernel, data_format=data_format, **options)
    assert calls
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("kernel_order", ["C", "F"], ids=["pytorch-kernel", "fortran-kernel"])
@pytest.mark.parametrize("size, strides", [((3, 40, 50), 1), ((2, 5, 6), 1), ((2, 9, 11), (2, 3))],
                         ids=["layer", "small", "strided"])
def test_channels_first_one_by_one_gradients_on_the_planes(size, strides, kernel_order, monkeypatch):
    # pointwise.plane_gradients: NCHW arrays as they lie, image by image (the first image's
    # product writes the kernel's gradient, the rest add), F-ordered gradient matrices for
    # PyTorch's kernel layout, C-ordered for another; a small layer too (dispatch's lean
    # path for small 1x1 layers), and strides (the pixels read copied, x's gradient written
    # at them, zeros between)
    rng = np.random.default_rng(37)
    x, kernel = rng.standard_normal(size + (6,)), rng.standard_normal((1, 1, 6, 90))
    grad = rng.standard_normal(reference.conv2d(x, kernel, strides=strides, padding="valid").shape)
    expected = reference.conv2d_backward(grad, x, kernel, strides=strides, padding="valid")
    first_x, first_kernel = _channels_first(x, kernel)
    first_kernel = np.asarray(first_kernel, order=kernel_order)
    calls = []
    planes = pointwise.plane_gradients
    monkeypatch.setattr(pointwise, "plane_gradients", lambda *a: planes(*a) and not calls.append(1))  # taken
    got = convlayer.conv2d_backward(np.ascontiguousarray(grad.transpose(0, 3, 1, 2)), first_x, first_kernel,
                                    strides=strides, padding="valid", data_format="channels_first")
    assert calls
    want = (expected.grad_x.transpose(0, 3, 1, 2), expected.grad_kernel.transpose(3, 2, 0, 1), expected.grad_bias)
    for name, value, wanted in zip(("grad_x", "grad_kernel", "grad_bias"), got, want):
        np.testing.assert_allclose(value, wanted, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("c, k", [(6, 9), (9, 6)], ids=["more filters", "more channels"])
def test_one_by_one_gradients_chunk_by_chunk(c, k):
    # pointwise.gradients two images at a time (the budget): x's gradient is written chunk by
    # chunk by the product itself (stride 1), the kernel's summed over the chunks, its product
    # turned round where k > c
    rng = np.random.default_rng(36)
    x, kernel = rng.standard_normal((5, 12, 10, c)), rng.standard_normal((1, 1, c, k))
    grad = rng.standard_normal((5, 12, 10, k))
    expected = reference.conv2d_backward(grad, x, kernel, padding="valid")
    with convlayer.memory_budget(2 * 12 * 10 * (2 * c + k) * 8):
        got = convlayer.conv2d_backward(grad, x, kernel, padding="valid", algorithm="im2col")
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("shape, lean", [((1, 1, 1, 120), True), ((2, 7, 7, 16), True), ((8, 128, 128, 2), False)])
def test_small_one_by_one_layers_skip_the_choice_both_ways(shape, lean, monkeypatch):
    """The lean path (dispatch._tiny_pointwise): below SHIFT_MIN_OUTPUTS every rule of auto
    gives a 1x1 layer to im2col's products, so the choice is not made at all; above, it is."""
    from convlayer.algorithms import choose

    rng = np.random.default_rng(35)
    x, kernel = rng.standard_normal(shape), rng.standard_normal((1, 1, shape[3], 3))
    grad = rng.standard_normal(shape[:3] + (3,))
    asked = []
    for name in ("forward", "backward"):
        decide = getattr(choose, name)
        monkeypatch.setattr(choose, name, lambda *a, decide=decide, **k: asked.append(1) or decide(*a, **k))
    got = convlayer.conv2d(x, kernel, padding="valid"), convlayer.conv2d_backward(grad, x, kernel, padding="valid")
    assert (not asked) == lean
    want = reference.conv2d(x, kernel, padding="valid"), reference.conv2d_backward(grad, x, kernel, padding="valid")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-12)
    for value, expected in zip(got[1], want[1]):
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12)
