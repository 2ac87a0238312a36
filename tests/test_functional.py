"""conv2d's fast path against the plain-loop reference, np.pad, and closed forms."""

import numpy as np
import pytest

import convlayer
from convlayer import conv2d, reference, relu

PADDINGS = ["same", "same_lower", "valid", "full", 0, 2, (1, 0), ((0, 2), (3, 1))]
MODES = ["constant", "reflect", "symmetric", "edge", "wrap"]
TOL = dict(rtol=1e-10, atol=1e-10)


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


@pytest.mark.parametrize("groups", [1, 3])
def test_ones_on_ones_valid_is_window_size_plus_bias(groups):
    out = conv2d(np.ones((2, 7, 8, 3)), np.ones((3, 4, 3 // groups, 6)), 0.5, padding="valid", groups=groups)
    assert out.shape == (2, 5, 5, 6)
    np.testing.assert_array_equal(out, 3 * 4 * (3 // groups) + 0.5)


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
        (np.float64, np.float64, np.float64),
        (np.float16, np.float32, np.float32),
        (np.int32, np.int64, np.float64),
        (np.int8, np.int16, np.float32),
        (np.int64, np.float32, np.float64),
        (np.uint8, np.float64, np.float64),
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


def test_unbatched_equals_batch_of_one():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7, 3))
    kernel = rng.standard_normal((3, 2, 3, 5))
    bias = rng.standard_normal(5)
    a = conv2d(x, kernel, bias, strides=(2, 1), padding="same")
    b = conv2d(x[None], kernel, bias, strides=(2, 1), padding="same")
    np.testing.assert_allclose(a, b[0], **TOL)


def test_default_padding_is_same_and_no_flip():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 5, 5, 1))
    kernel = rng.standard_normal((3, 3, 1, 1))
    expected = reference.conv2d(x, kernel, padding=((1, 1), (1, 1)), flip=False)
    np.testing.assert_allclose(conv2d(x, kernel), expected, **TOL)


def test_integer_inputs_do_not_overflow():
    x = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    kernel = np.full((3, 3, 3, 1), 200, dtype=np.uint8)
    y = conv2d(x, kernel, padding="valid")
    np.testing.assert_allclose(y, np.full((1, 2, 2, 1), 255 * 200 * 27.0), **TOL)


def test_uint8_photo_with_negative_float32_kernel():
    x = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    kernel = np.array([[1, -1], [-1, 1]], dtype=np.float32)
    y = conv2d(x, kernel, padding="valid")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.array([[-510.0]], dtype=np.float32))


@pytest.mark.parametrize("bias", [0.25, np.float32(0.25), np.array([0.25, -1.0], dtype=np.float64)],
                         ids=["python-float", "float32-scalar", "float64-vector"])
def test_bias_does_not_change_the_result_dtype(bias):
    # SPEC: result dtype is numpy.result_type(x, kernel, numpy.float32); bias is not in it.
    x = np.ones((1, 4, 4, 1), dtype=np.float32)
    kernel = np.ones((3, 3, 1, 2), dtype=np.float32)
    y = conv2d(x, kernel, bias, padding="valid")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 9 + np.broadcast_to(np.asarray(bias, np.float64), (1, 2, 2, 2)), rtol=1e-6)


CALLS = [
    dict(padding="same"),
    dict(padding="same", strides=2, pad_mode="reflect", flip=True),
    dict(padding=((1, 2), (0, 3)), dilation=2, pad_mode="wrap"),
    dict(padding="valid", groups=2),
    dict(padding="full", groups=4, pad_mode="symmetric"),
]


def _call_inputs(seed, kwargs):
    """x, kernel and bias for one of CALLS."""
    rng = np.random.default_rng(seed)
    groups = kwargs.get("groups", 1)
    return rng.standard_normal((2, 7, 8, 4)), rng.standard_normal((3, 3, 4 // groups, 4)), rng.standard_normal(4)


@pytest.mark.parametrize("kwargs", CALLS, ids=str)
def test_inputs_are_not_modified(kwargs):
    x, kernel, bias = _call_inputs(8, kwargs)
    copies = x.copy(), kernel.copy(), bias.copy()
    conv2d(x, kernel, bias, **kwargs)
    for before, after in zip(copies, (x, kernel, bias)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("kwargs", CALLS, ids=str)
def test_read_only_inputs_are_accepted(kwargs):
    x, kernel, bias = _call_inputs(9, kwargs)
    expected = conv2d(x.copy(), kernel.copy(), bias.copy(), **kwargs)
    for a in (x, kernel, bias):
        a.flags.writeable = False
    np.testing.assert_allclose(conv2d(x, kernel, bias, **kwargs), expected, **TOL)
    y_cf = conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), bias,
                  data_format="channels_first", **kwargs)
    np.testing.assert_allclose(y_cf, expected.transpose(0, 3, 1, 2), **TOL)


def test_channels_first_inputs_are_not_modified():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 4, 7, 8))
    kernel = rng.standard_normal((6, 2, 3, 3))
    copies = x.copy(), kernel.copy()
    conv2d(x, kernel, groups=2, flip=True, pad_mode="edge", data_format="channels_first")
    np.testing.assert_array_equal(copies[0], x)
    np.testing.assert_array_equal(copies[1], kernel)


def test_numpy_integer_scalars_as_geometry():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 9, 9, 2))
    kernel = rng.standard_normal((3, 3, 1, 2))
    a = conv2d(x, kernel, strides=np.int64(2), padding=np.int64(1), dilation=np.int32(1), groups=np.int64(2))
    b = conv2d(x, kernel, strides=2, padding=1, dilation=1, groups=2)
    np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize(
    "kwargs, out_hw",
    [(dict(padding="same"), (5, 6)), (dict(padding="same", strides=2), (3, 3)),
     (dict(padding="valid"), (3, 4)), (dict(padding="full"), (7, 8))],
    ids=str,
)
def test_empty_batch_for_every_padding_kernel_rank_and_layout(kwargs, out_hw):
    x = np.zeros((0, 5, 6, 3), dtype=np.float32)
    kernel = np.ones((3, 3, 3, 4), dtype=np.float32)
    y = conv2d(x, kernel, np.ones(4, np.float32), **kwargs)
    assert y.shape == (0, *out_hw, 4)
    assert y.dtype == np.float32
    assert conv2d(x, kernel[..., 0], **kwargs).shape == (0, *out_hw)
    y_cf = conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), data_format="channels_first", **kwargs)
    assert y_cf.shape == (0, 4, *out_hw)


def test_ones_on_ones_uint8_large_kernel():
    x = np.ones((1, 20, 20, 3), dtype=np.uint8)
    kernel = np.ones((11, 11, 3, 2), dtype=np.uint8)
    y = conv2d(x, kernel, -1.0, padding="valid")
    np.testing.assert_allclose(y, np.full((1, 10, 10, 2), 11 * 11 * 3 - 1.0), **TOL)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("f, dilation", [(1, 1), (3, 1), (5, 1), (3, 2), (5, 2)])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_identity_kernel_of_any_size_and_dilation_returns_input(f, dilation, flip, pad_mode):
    x = np.random.default_rng(13).standard_normal((2, 7, 6, 3))
    kernel = np.zeros((f, f, 3, 3))
    kernel[f // 2, f // 2] = np.eye(3)
    y = conv2d(x, kernel, padding="same", dilation=dilation, flip=flip, pad_mode=pad_mode)
    np.testing.assert_allclose(y, x, **TOL)


@pytest.mark.parametrize(
    "h, c, f, k",
    [(9, 1, 3, 1), (16, 16, 3, 16), (40, 3, 7, 2), (64, 3, 11, 4), (128, 3, 15, 4)],
    ids=str,
)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_stay_in_their_receptive_field(h, c, f, k, bad):
    # NumPy arithmetic: an output is non-finite exactly when its window covers the bad pixel.
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, h, h, c))
    r, col = h // 2 - 1, h // 2 + 1
    x[0, r, col, c - 1] = bad
    kernel = rng.uniform(0.5, 1.5, size=(f, f, c, k))  # positive taps: inf stays inf
    y = conv2d(x, kernel, padding="same")
    half = f // 2
    mask = np.zeros((h, h), dtype=bool)
    mask[r - half:r + half + 1, col - half:col + half + 1] = True
    for channel in range(k):
        np.testing.assert_array_equal(~np.isfinite(y[0, :, :, channel]), mask)
    if bad == np.inf:
        assert np.all(y[0][mask] == np.inf)
    else:
        assert np.all(np.isnan(y[0][mask]))
