"""conv2d's fast path against the plain-loop reference, np.pad, and closed forms."""

import numpy as np
import pytest

import convlayer
from convlayer import conv2d, reference, relu

PADDINGS = ["same", "same_lower", "valid", "full", 0, 2, (1, 0), ((0, 2), (3, 1))]
MODES = ["constant", "reflect", "symmetric", "edge", "wrap"]


def _random_case(seed):
    """A random convolution whose kernel fits: (x, kernel, bias, keyword arguments)."""
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = PADDINGS[int(rng.integers(len(PADDINGS)))]
    span_h, span_w = (fh - 1) * dilation[0] + 1, (fw - 1) * dilation[1] + 1
    h, w = span_h + int(rng.integers(0, 8)), span_w + int(rng.integers(0, 8))
    x = rng.standard_normal((int(rng.integers(1, 4)), h, w, c))
    kernel = rng.standard_normal((fh, fw, c // groups, k))
    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                  pad_mode=MODES[int(rng.integers(len(MODES)))], flip=bool(rng.integers(2)))
    return x, kernel, rng.standard_normal(k), kwargs


@pytest.mark.parametrize("seed", range(150))
def test_fast_path_equals_reference(seed):
    x, kernel, bias, kwargs = _random_case(seed)
    expected = reference.conv2d(x, kernel, bias, **kwargs)
    np.testing.assert_allclose(conv2d(x, kernel, bias, **kwargs), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("budget", [1, 700, 5000])
def test_chunked_equals_unchunked(seed, budget):
    """Tiny budgets force blocks of single columns, rows and images: borders must agree.

    Not bit for bit: BLAS may sum a product in another order for another matrix height.
    """
    x, kernel, bias, kwargs = _random_case(seed)
    whole = conv2d(x, kernel, bias, **kwargs)
    with convlayer.memory_budget(budget):
        np.testing.assert_allclose(conv2d(x, kernel, bias, **kwargs), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES + ["zeros", "replicate", "circular"])
@pytest.mark.parametrize("padding", [((1, 2), (3, 0)), ((4, 4), (5, 6)), ((0, 0), (1, 1))])
def test_pad_mode_is_np_pad_then_valid(mode, padding):
    rng = np.random.default_rng(3)
    x, kernel = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 3, 2, 3))
    numpy_mode = {"zeros": "constant", "replicate": "edge", "circular": "wrap"}.get(mode, mode)
    padded = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)), mode=numpy_mode)
    expected = conv2d(padded, kernel, padding="valid")
    np.testing.assert_allclose(conv2d(x, kernel, padding=padding, pad_mode=mode), expected, atol=1e-12)


def test_pad_mode_names_are_case_insensitive():
    x = np.random.default_rng(0).random((5, 5))
    np.testing.assert_array_equal(conv2d(x, np.ones((3, 3)), pad_mode="Reflect"),
                                  conv2d(x, np.ones((3, 3)), pad_mode="reflect"))


def test_flip_is_correlation_with_rotated_kernel():
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((6, 7, 3)), rng.standard_normal((2, 3, 3, 4))
    np.testing.assert_allclose(conv2d(x, kernel, flip=True, dilation=2),
                               conv2d(x, kernel[::-1, ::-1], dilation=2), atol=1e-12)


def test_channels_first_is_transposed_channels_last():
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((2, 9, 8, 4)), rng.standard_normal((3, 2, 2, 6))
    last = conv2d(x, kernel, strides=2, groups=2)
    first = conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), strides=2, groups=2,
                   data_format="channels_first")
    np.testing.assert_allclose(first, last.transpose(0, 3, 1, 2), atol=1e-12)
    single = conv2d(x[0].transpose(2, 0, 1), kernel.transpose(3, 2, 0, 1), strides=2, groups=2,
                    data_format="NCHW")
    np.testing.assert_allclose(single, last[0].transpose(2, 0, 1), atol=1e-12)
    one_filter = conv2d(x.transpose(0, 3, 1, 2), kernel[:, :, :, 0].repeat(2, axis=2).transpose(2, 0, 1),
                        data_format="channels_first")
    np.testing.assert_allclose(one_filter, conv2d(x, kernel[:, :, :, 0].repeat(2, axis=2)), atol=1e-12)


def test_kernel_ranks():
    rng = np.random.default_rng(4)
    image = rng.standard_normal((6, 5, 3))
    filters = rng.standard_normal((3, 3, 3, 2))
    both = conv2d(image, filters, [1.0, 2.0])
    one = conv2d(image, filters[..., 0], 1.0)  # the tutorial's single 3-D filter
    assert one.shape == (6, 5)
    np.testing.assert_allclose(one, both[..., 0], atol=1e-12)
    batch = conv2d(image[None].repeat(2, axis=0), filters[..., 1], np.array([2.0]))
    np.testing.assert_allclose(batch, np.stack([both[..., 1]] * 2), atol=1e-12)
    plain = conv2d(image[..., 0], filters[:, :, 0, 0])
    np.testing.assert_allclose(plain, conv2d(image[..., :1], filters[:, :, :1, :1])[..., 0], atol=1e-12)


def test_ones_on_ones_valid_is_window_size_plus_bias():
    out = conv2d(np.ones((2, 7, 8, 3)), np.ones((3, 4, 3, 5)), 0.5, padding="valid")
    assert out.shape == (2, 5, 5, 5)
    np.testing.assert_array_equal(out, 3 * 4 * 3 + 0.5)


def test_identity_kernel_returns_input_for_every_channel():
    x = np.random.default_rng(5).standard_normal((2, 6, 7, 3)).astype(np.float32)
    kernel = np.zeros((3, 3, 3, 3), np.float32)
    kernel[1, 1] = np.eye(3)
    np.testing.assert_array_equal(conv2d(x, kernel), x)


@pytest.mark.parametrize(
    "x_dtype, k_dtype, expected",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float32, np.float64),
        (np.float32, np.float64, np.float64),
        (np.uint8, np.float32, np.float32),
        (np.float16, np.float16, np.float32),
        (np.int64, np.int64, np.float64),
        (np.uint8, np.uint8, np.float32),
        (np.int32, np.float32, np.float64),
        (np.bool_, np.float32, np.float32),
    ],
)
def test_result_dtype(x_dtype, k_dtype, expected):
    x = (np.arange(30) % 7).reshape(5, 6).astype(x_dtype)
    kernel = np.ones((3, 3), k_dtype)
    out = conv2d(x, kernel, 1)
    assert out.dtype == np.dtype(expected) == np.result_type(x, kernel, np.float32)
    np.testing.assert_array_equal(out, reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), 1))


def test_uint8_photo_does_not_wrap():
    x = np.full((4, 4, 3), 255, np.uint8)
    out = conv2d(x, np.ones((3, 3, 3), np.float32), padding="valid")
    np.testing.assert_array_equal(out, 255 * 27)


def test_inputs_are_not_modified_and_may_be_read_only():
    rng = np.random.default_rng(6)
    x, kernel, bias = rng.standard_normal((1, 5, 5, 2)), rng.standard_normal((3, 3, 2, 2)), np.ones(2)
    copies = [a.copy() for a in (x, kernel, bias)]
    for a in (x, kernel, bias):
        a.flags.writeable = False
    out = conv2d(x, kernel, bias, flip=True)
    out += 1  # the result owns its memory
    for original, copy in zip((x, kernel, bias), copies):
        np.testing.assert_array_equal(original, copy)


def test_lists_and_memory_maps(tmp_path):
    x = np.random.default_rng(7).random((6, 6, 2))
    stored = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=x.shape)
    stored[...] = x
    stored.flush()
    kernel = np.ones((3, 3, 2))
    expected = conv2d(x, kernel)
    np.testing.assert_allclose(conv2d(np.load(tmp_path / "x.npy", mmap_mode="r"), kernel), expected)
    result = conv2d(x.tolist(), kernel.tolist())
    assert type(result) is np.ndarray
    np.testing.assert_allclose(result, expected)


def test_empty_batch_and_empty_images():
    assert conv2d(np.zeros((0, 5, 5, 3)), np.ones((3, 3, 3, 4))).shape == (0, 5, 5, 4)
    assert conv2d(np.zeros((2, 0, 5, 3)), np.ones((3, 3, 3, 4))).shape == (2, 0, 5, 4)
    with pytest.raises(ValueError, match="kernel height 3 does not fit the padded input height 0"):
        conv2d(np.zeros((2, 0, 5, 3)), np.ones((3, 3, 3, 4)), padding="valid")
    # zero height, but the padding alone fits the kernel: the output is the bias
    out = conv2d(np.zeros((0, 4, 1)), np.ones((3, 3, 1, 2)), [1.0, 2.0], padding=((2, 2), (1, 1)))
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out, np.broadcast_to([1.0, 2.0], (2, 4, 2)))
    full = conv2d(np.zeros((0, 0)), np.ones((3, 3)), 5.0, padding="full")
    np.testing.assert_array_equal(full, np.full((2, 2), 5.0))
    assert conv2d(np.zeros((4, 4, 0)), np.ones((3, 3, 0, 2)), [1.0, 2.0])[0, 0].tolist() == [1.0, 2.0]
    assert conv2d(np.zeros((4, 4, 2)), np.ones((3, 3, 2, 0))).shape == (4, 4, 0)


def test_nan_stays_local():
    x = np.zeros((9, 9))
    x[4, 4] = np.nan
    out = conv2d(x, np.ones((3, 3)))
    assert np.isnan(out[3:6, 3:6]).all()
    assert np.isfinite(out).sum() == 81 - 9


def test_bias_forms():
    x, kernel = np.ones((4, 4, 1)), np.ones((1, 1, 1, 3))
    np.testing.assert_array_equal(conv2d(x, kernel, 2.0), 3.0)
    np.testing.assert_array_equal(conv2d(x, kernel, np.array(2.0)), 3.0)
    np.testing.assert_array_equal(conv2d(x, kernel, [0, 1, 2])[0, 0], [1, 2, 3])


def test_one_by_one_is_a_matrix_product_over_channels():
    rng = np.random.default_rng(8)
    x, kernel = rng.standard_normal((2, 5, 6, 7)), rng.standard_normal((1, 1, 7, 3))
    np.testing.assert_allclose(conv2d(x, kernel), x @ kernel[0, 0], atol=1e-12)


def test_relu():
    out = relu(np.array([[-2.0, 0.5], [np.nan, -0.0]], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 0.5], [np.nan, 0.0]])
