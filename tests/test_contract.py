"""SPEC.md checked from the outside: shapes, dtypes, inputs, empties, closed forms,
convlayer.shapes, and errors.

Error messages are matched loosely: SPEC fixes that a message names the argument and the
value received, not its wording.
"""

import math

import numpy as np
import pytest

import convlayer
from convlayer import shapes

TOL = dict(rtol=1e-10, atol=1e-10)


def _naming(*words):
    """A regex that matches when every word appears somewhere in the message."""
    return "(?s)" + "".join(f"(?=.*{w})" for w in words)


def _correlate(x, kernel, pads=((0, 0), (0, 0)), strides=(1, 1)):
    """Plain-loop cross-correlation of (N, H, W, C) with (Fh, Fw, C, K), for small cases."""
    x = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), *pads, (0, 0)))
    kernel = np.asarray(kernel, dtype=np.float64)
    fh, fw = kernel.shape[:2]
    out_h = (x.shape[1] - fh) // strides[0] + 1
    out_w = (x.shape[2] - fw) // strides[1] + 1
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * strides[0]:i * strides[0] + fh, j * strides[1]:j * strides[1] + fw, :]
            y[:, i, j, :] = np.einsum("nhwc,hwck->nk", patch, kernel)
    return y


# ------------------------------------------------------------ kernel rank and shapes


@pytest.mark.parametrize("padding, out", [("same", (10, 7)), ("valid", (8, 4)), ("full", (12, 10))])
def test_rank2_kernel_on_2d_image(padding, out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 7))
    kernel = rng.standard_normal((3, 4))
    y = convlayer.conv2d(x, kernel, padding=padding)
    assert y.shape == out
    same_as_rank4 = convlayer.conv2d(x[None, :, :, None], kernel[:, :, None, None], padding=padding)
    np.testing.assert_allclose(y, same_as_rank4[0, :, :, 0], **TOL)


def test_rank3_kernel_on_image_gives_2d():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 8, 3))
    kernel = rng.standard_normal((3, 3, 3))
    y = convlayer.conv2d(x, kernel, padding="valid")
    assert y.shape == (7, 6)
    np.testing.assert_allclose(y, _correlate(x[None], kernel[..., None])[0, :, :, 0], **TOL)


def test_rank3_kernel_on_batch_gives_3d():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 9, 8, 3))
    kernel = rng.standard_normal((3, 3, 3))
    y = convlayer.conv2d(x, kernel, 0.5, strides=2, padding="same")
    assert y.shape == (4, 5, 4)
    expected = _correlate(x, kernel[..., None], pads=((1, 1), (0, 1)), strides=(2, 2))[..., 0] + 0.5
    np.testing.assert_allclose(y, expected, **TOL)


@pytest.mark.parametrize("batched", [False, True])
def test_rank4_kernel_output_shapes(batched):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 224, 224, 3) if batched else (224, 224, 3)).astype(np.float32)
    kernel = rng.standard_normal((7, 7, 3, 4)).astype(np.float32)
    y = convlayer.conv2d(x, kernel, strides=2, padding="same")
    assert y.shape == ((2, 112, 112, 4) if batched else (112, 112, 4))


def test_unbatched_equals_batch_of_one():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7, 3))
    kernel = rng.standard_normal((3, 2, 3, 5))
    bias = rng.standard_normal(5)
    a = convlayer.conv2d(x, kernel, bias, strides=(2, 1), padding="same")
    b = convlayer.conv2d(x[None], kernel, bias, strides=(2, 1), padding="same")
    np.testing.assert_allclose(a, b[0], **TOL)


def test_small_case_against_loops():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 6, 3))
    kernel = rng.standard_normal((2, 3, 3, 4))
    bias = rng.standard_normal(4)
    y = convlayer.conv2d(x, kernel, bias, strides=(1, 2), padding=((1, 0), (2, 1)))
    expected = _correlate(x, kernel, pads=((1, 0), (2, 1)), strides=(1, 2)) + bias
    np.testing.assert_allclose(y, expected, **TOL)


def test_default_padding_is_same_and_no_flip():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 5, 5, 1))
    kernel = rng.standard_normal((3, 3, 1, 1))
    y = convlayer.conv2d(x, kernel)
    np.testing.assert_allclose(y, _correlate(x, kernel, pads=((1, 1), (1, 1))), **TOL)


# -------------------------------------------------------------------------- dtype


@pytest.mark.parametrize(
    "x_dtype, k_dtype",
    [
        (np.uint8, np.float32),
        (np.int32, np.int64),
        (np.uint8, np.uint8),
        (np.int8, np.int16),
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.float32, np.float64),
        (np.float16, np.float16),
        (np.float16, np.float32),
        (np.int64, np.float32),
        (np.uint8, np.float64),
    ],
    ids=str,
)
def test_result_dtype_rule(x_dtype, k_dtype):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 100, size=(2, 5, 6, 2)).astype(x_dtype)
    kernel = rng.integers(-3, 4, size=(3, 3, 2, 3)).astype(k_dtype)
    y = convlayer.conv2d(x, kernel, padding="same")
    allowed = {np.result_type(x, kernel, np.float32)}
    if x.dtype.kind in "ui" and kernel.dtype.kind in "ui":
        # The formula gives float32 for small integers (uint8 with uint8); SPEC's gloss
        # "integers with integers give float64" reads otherwise, so accept both there.
        allowed.add(np.dtype(np.float64))
    assert y.dtype in allowed
    expected = _correlate(x, kernel, pads=((1, 1), (1, 1)))
    if y.dtype == np.float32:
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-3)
    else:
        np.testing.assert_allclose(y, expected, **TOL)


def test_integer_inputs_do_not_overflow():
    x = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    kernel = np.full((3, 3, 3, 1), 200, dtype=np.uint8)
    y = convlayer.conv2d(x, kernel, padding="valid")
    np.testing.assert_allclose(y, np.full((1, 2, 2, 1), 255 * 200 * 27.0), **TOL)


def test_uint8_photo_with_negative_float32_kernel():
    x = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    kernel = np.array([[1, -1], [-1, 1]], dtype=np.float32)
    y = convlayer.conv2d(x, kernel, padding="valid")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.array([[-510.0]], dtype=np.float32))


@pytest.mark.parametrize("bias", [0.25, np.float32(0.25), np.array([0.25, -1.0], dtype=np.float64)],
                         ids=["python-float", "float32-scalar", "float64-vector"])
def test_bias_does_not_change_the_result_dtype(bias):
    # SPEC: result dtype is numpy.result_type(x, kernel, numpy.float32); bias is not in it.
    x = np.ones((1, 4, 4, 1), dtype=np.float32)
    kernel = np.ones((3, 3, 1, 2), dtype=np.float32)
    y = convlayer.conv2d(x, kernel, bias, padding="valid")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 9 + np.broadcast_to(np.asarray(bias, np.float64), (1, 2, 2, 2)), rtol=1e-6)


# ---------------------------------------------------------------------- inputs


CALLS = [
    dict(padding="same"),
    dict(padding="same", strides=2, pad_mode="reflect", flip=True),
    dict(padding=((1, 2), (0, 3)), dilation=2, pad_mode="wrap"),
    dict(padding="valid", groups=2),
    dict(padding="full", groups=4, pad_mode="symmetric"),
]


@pytest.mark.parametrize("kwargs", CALLS, ids=str)
def test_inputs_are_not_modified(kwargs):
    rng = np.random.default_rng(8)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 7, 8, 4))
    kernel = rng.standard_normal((3, 3, 4 // groups, 4))
    bias = rng.standard_normal(4)
    copies = x.copy(), kernel.copy(), bias.copy()
    convlayer.conv2d(x, kernel, bias, **kwargs)
    for before, after in zip(copies, (x, kernel, bias)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("kwargs", CALLS, ids=str)
def test_read_only_inputs_are_accepted(kwargs):
    rng = np.random.default_rng(9)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 7, 8, 4))
    kernel = rng.standard_normal((3, 3, 4 // groups, 4))
    bias = rng.standard_normal(4)
    expected = convlayer.conv2d(x.copy(), kernel.copy(), bias.copy(), **kwargs)
    for a in (x, kernel, bias):
        a.flags.writeable = False
    y = convlayer.conv2d(x, kernel, bias, **kwargs)
    np.testing.assert_allclose(y, expected, **TOL)
    y_cf = convlayer.conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), bias,
                            data_format="channels_first", **kwargs)
    np.testing.assert_allclose(y_cf, expected.transpose(0, 3, 1, 2), **TOL)


def test_channels_first_inputs_are_not_modified():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 4, 7, 8))
    kernel = rng.standard_normal((6, 2, 3, 3))
    copies = x.copy(), kernel.copy()
    convlayer.conv2d(x, kernel, groups=2, flip=True, pad_mode="edge", data_format="channels_first")
    np.testing.assert_array_equal(copies[0], x)
    np.testing.assert_array_equal(copies[1], kernel)


def test_lists_are_accepted():
    x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    kernel = [[1, 0], [0, -1]]
    y = convlayer.conv2d(x, kernel, padding="valid")
    np.testing.assert_allclose(y, [[-4.0, -4.0], [-4.0, -4.0]], **TOL)
    y4 = convlayer.conv2d(np.array(x)[None, :, :, None], np.array(kernel)[:, :, None, None].tolist(),
                          [1.0], padding="valid")
    np.testing.assert_allclose(y4[0, :, :, 0], [[-3.0, -3.0], [-3.0, -3.0]], **TOL)


def test_memmap_is_accepted(tmp_path):
    rng = np.random.default_rng(11)
    data = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    path = tmp_path / "x.dat"
    writer = np.memmap(path, dtype=np.float32, mode="w+", shape=data.shape)
    writer[:] = data
    writer.flush()
    del writer
    x = np.memmap(path, dtype=np.float32, mode="r", shape=data.shape)  # read-only
    kernel = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    y = convlayer.conv2d(x, kernel, padding="same", pad_mode="reflect")
    expected = convlayer.conv2d(data, kernel, padding="same", pad_mode="reflect")
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(x), data)


def test_numpy_integer_scalars_as_geometry():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 9, 9, 2))
    kernel = rng.standard_normal((3, 3, 1, 2))
    a = convlayer.conv2d(x, kernel, strides=np.int64(2), padding=np.int64(1), dilation=np.int32(1),
                         groups=np.int64(2))
    b = convlayer.conv2d(x, kernel, strides=2, padding=1, dilation=1, groups=2)
    np.testing.assert_allclose(a, b, **TOL)


# ----------------------------------------------------------------------- empties


@pytest.mark.parametrize(
    "kwargs, out_hw",
    [(dict(padding="same"), (5, 6)), (dict(padding="same", strides=2), (3, 3)),
     (dict(padding="valid"), (3, 4)), (dict(padding="full"), (7, 8))],
    ids=str,
)
def test_empty_batch(kwargs, out_hw):
    x = np.zeros((0, 5, 6, 3), dtype=np.float32)
    kernel = np.ones((3, 3, 3, 4), dtype=np.float32)
    y = convlayer.conv2d(x, kernel, np.ones(4, np.float32), **kwargs)
    assert y.shape == (0, *out_hw, 4)
    assert y.dtype == np.float32
    y3 = convlayer.conv2d(x, kernel[..., 0], **kwargs)
    assert y3.shape == (0, *out_hw)
    y_cf = convlayer.conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1),
                            data_format="channels_first", **kwargs)
    assert y_cf.shape == (0, 4, *out_hw)


def test_zero_height_with_explicit_padding_gives_bias():
    x = np.zeros((2, 0, 5, 3))
    kernel = np.ones((3, 3, 3, 4))
    bias = np.array([1.0, -2.0, 0.5, 3.0])
    y = convlayer.conv2d(x, kernel, bias, padding=((2, 1), (1, 1)))
    assert y.shape == (2, 1, 5, 4)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (2, 1, 5, 4)))


def test_zero_width_with_full_padding_gives_bias():
    x = np.zeros((1, 4, 0, 2), dtype=np.float32)
    kernel = np.ones((2, 3, 2, 3), dtype=np.float32)
    y = convlayer.conv2d(x, kernel, 7.0, padding="full")
    assert y.shape == (1, 5, 2, 3)  # width: 0 + 2 * 2 - 3 + 1
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.full((1, 5, 2, 3), 7.0))


def test_zero_size_2d_image_with_padding():
    y = convlayer.conv2d(np.zeros((0, 4)), np.ones((2, 2)), 0.5, padding=((1, 1), (1, 0)))
    assert y.shape == (1, 4)
    np.testing.assert_array_equal(y, np.full((1, 4), 0.5))


def test_zero_height_with_same_padding_is_empty_or_refused():
    # SPEC is explicit only when the padding alone fits the kernel; 'same' on a zero
    # height asks for ceil(0 / s) = 0 rows (TensorFlow returns them), so either an empty
    # result of that shape or a ValueError is acceptable.
    x = np.zeros((1, 0, 5, 3))
    kernel = np.ones((3, 3, 3, 2))
    try:
        y = convlayer.conv2d(x, kernel, padding="same")
    except ValueError:
        return
    assert y.shape == (1, 0, 5, 2)


@pytest.mark.parametrize("padding", ["valid", 1, ((1, 1), (0, 0))], ids=str)
def test_zero_height_when_padding_does_not_fit_is_refused(padding):
    # The padded height (0, 2, 2) is less than the kernel's 3: the same ValueError a
    # height of 1 gets (TensorFlow: "computed output size would be negative").
    with pytest.raises(ValueError, match="kernel"):
        convlayer.conv2d(np.zeros((1, 1, 5, 3)), np.ones((3, 3, 3, 2)), padding="valid")
    with pytest.raises(ValueError, match="kernel"):
        convlayer.conv2d(np.zeros((1, 0, 5, 3)), np.ones((3, 3, 3, 2)), padding=padding)


# ------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("groups", [1, 3])
def test_ones_on_ones_valid(groups):
    c, k = 3, 6
    x = np.ones((2, 6, 5, c))
    kernel = np.ones((3, 2, c // groups, k))
    bias = np.arange(k, dtype=np.float64)
    y = convlayer.conv2d(x, kernel, bias, padding="valid", groups=groups)
    assert y.shape == (2, 4, 4, k)
    np.testing.assert_allclose(y, np.broadcast_to(3 * 2 * (c // groups) + bias, y.shape), **TOL)


def test_ones_on_ones_uint8_large_kernel():
    x = np.ones((1, 20, 20, 3), dtype=np.uint8)
    kernel = np.ones((11, 11, 3, 2), dtype=np.uint8)
    y = convlayer.conv2d(x, kernel, -1.0, padding="valid")
    np.testing.assert_allclose(y, np.full((1, 10, 10, 2), 11 * 11 * 3 - 1.0), **TOL)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("f, dilation", [(1, 1), (3, 1), (5, 1), (3, 2), (5, 2)])
def test_identity_kernel_returns_input(f, dilation, flip):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 7, 6, 3))
    kernel = np.zeros((f, f, 3, 3))
    kernel[f // 2, f // 2] = np.eye(3)
    for pad_mode in ("constant", "reflect"):
        y = convlayer.conv2d(x, kernel, padding="same", dilation=dilation, flip=flip, pad_mode=pad_mode)
        np.testing.assert_allclose(y, x, **TOL)


def test_identity_2d_kernel_returns_image():
    x = np.arange(35, dtype=np.float64).reshape(5, 7)
    np.testing.assert_allclose(convlayer.conv2d(x, [[0, 0, 0], [0, 1, 0], [0, 0, 0]]), x, **TOL)


@pytest.mark.parametrize("padding, tap", [("same", (0, 0)), ("same_lower", (1, 1))])
def test_even_kernel_odd_zero_side(padding, tap):
    # A 2x2 'same' pads one zero: after (bottom/right) for 'same', before for 'same_lower'.
    # So the identity tap sits at kernel[0, 0] for 'same' and kernel[1, 1] for 'same_lower'.
    x = np.arange(20, dtype=np.float64).reshape(4, 5)
    kernel = np.zeros((2, 2))
    kernel[tap] = 1
    np.testing.assert_allclose(convlayer.conv2d(x, kernel, padding=padding), x, **TOL)


def test_flip_on_a_delta():
    # Correlating a delta gives the kernel rotated by 180 degrees; convolving gives the kernel.
    x = np.zeros((5, 5))
    x[2, 2] = 1
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    y = convlayer.conv2d(x, kernel, padding="same")
    np.testing.assert_allclose(y[1:4, 1:4], kernel[::-1, ::-1], **TOL)
    y = convlayer.conv2d(x, kernel, padding="same", flip=True)
    np.testing.assert_allclose(y[1:4, 1:4], kernel, **TOL)


def test_bias_per_channel():
    x = np.zeros((1, 3, 4, 2))
    kernel = np.ones((3, 3, 2, 3))
    bias = np.array([1.0, 2.0, 3.0])
    y = convlayer.conv2d(x, kernel, bias)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (1, 3, 4, 3)))
    y = convlayer.conv2d(x, kernel, -1.5)
    np.testing.assert_array_equal(y, np.full((1, 3, 4, 3), -1.5))


# ------------------------------------------------------------------- NaN and inf


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
    y = convlayer.conv2d(x, kernel, padding="same")
    half = f // 2
    mask = np.zeros((h, h), dtype=bool)
    mask[r - half:r + half + 1, col - half:col + half + 1] = True
    for channel in range(k):
        np.testing.assert_array_equal(~np.isfinite(y[0, :, :, channel]), mask)
    if bad == np.inf:
        assert np.all(y[0][mask] == np.inf)
    else:
        assert np.all(np.isnan(y[0][mask]))


# ------------------------------------------------------------------ convlayer.shapes


def test_shapes_resnet_stem():
    assert shapes.output_size(224, 7, 2, "same") == 112
    assert shapes.pad_amounts(224, 7, 2, "same") == (2, 3)
    assert shapes.pad_amounts(224, 7, 2, "same_lower") == (3, 2)
    assert shapes.output_size(224, 7, 2, "valid") == 109
    assert shapes.pad_amounts(224, 7, 2, "valid") == (0, 0)
    assert shapes.output_size(224, 7, 1, "full") == 230
    assert shapes.pad_amounts(224, 7, 1, "full") == (6, 6)
    assert shapes.output_size(224, 7, 2, 3) == 112
    assert shapes.pad_amounts(224, 7, 2, 3) == (3, 3)


def test_shapes_defaults_and_keywords():
    assert shapes.output_size(10, 3) == 10
    assert shapes.pad_amounts(10, 3) == (1, 1)
    assert shapes.output_size(10, 3, padding="valid", dilation=2) == 6
    assert shapes.pad_amounts(10, 3, padding="full", dilation=2) == (4, 4)
    assert shapes.pad_amounts(5, 2, stride=1, padding="same") == (0, 1)
    assert shapes.pad_amounts(6, 1, stride=3, padding="same") == (0, 0)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_shapes_rules_across_a_grid(kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    for size in range(1, 30):
        out = shapes.output_size(size, kernel, stride, "same", dilation)
        assert out == math.ceil(size / stride)
        before, after = shapes.pad_amounts(size, kernel, stride, "same", dilation)
        total = max((out - 1) * stride + span - size, 0)
        assert (before, after) == (total // 2, total - total // 2)
        assert shapes.pad_amounts(size, kernel, stride, "same_lower", dilation) == (after, before)
        assert shapes.output_size(size, kernel, stride, "same_lower", dilation) == out
        full = shapes.output_size(size, kernel, stride, "full", dilation)
        assert full == (size + 2 * (span - 1) - span) // stride + 1
        if size >= span:
            assert shapes.output_size(size, kernel, stride, "valid", dilation) == math.ceil((size - span + 1) / stride)
        for p in range(3):
            if size + 2 * p >= span:
                assert shapes.output_size(size, kernel, stride, p, dilation) == (size + 2 * p - span) // stride + 1


def test_conv2d_output_shape_table():
    assert shapes.conv2d_output_shape((224, 224, 3), (7, 7, 3, 64), 2, "same") == (112, 112, 64)
    assert shapes.conv2d_output_shape((8, 224, 224, 3), (7, 7, 3, 64), 2, "same") == (8, 112, 112, 64)
    assert shapes.conv2d_output_shape((10, 12), (3, 3), 1, "valid") == (8, 10)
    assert shapes.conv2d_output_shape((10, 12, 3), (3, 3, 3), 1, "valid") == (8, 10)
    assert shapes.conv2d_output_shape((5, 10, 12, 3), (3, 3, 3), padding="valid") == (5, 8, 10)
    assert shapes.conv2d_output_shape((10, 12, 3), (3, 5, 3, 4), (2, 1), ((1, 0), (2, 2)), 1) == (5, 12, 4)
    assert shapes.conv2d_output_shape((10, 12, 3), (3, 3, 3, 4), padding="valid", dilation=(2, 1)) == (6, 10, 4)


@pytest.mark.parametrize("seed", range(30))
def test_conv2d_output_shape_agrees_with_conv2d(seed):
    rng = np.random.default_rng(seed)
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    h, w = (int(v) for v in rng.integers(7, 13, size=2))  # every padding below fits
    strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = int(rng.integers(1, 3))
    padding = ["same", "same_lower", "full", 1, (0, 2), ((1, 0), (0, 3))][seed % 6]
    x_shape = [(h, w), (h, w, 2), (3, h, w, 2), (h, w, 2)][seed % 4]
    k_shape = [(fh, fw), (fh, fw, 2), (fh, fw, 2), (fh, fw, 2, 5)][seed % 4]
    y = convlayer.conv2d(np.ones(x_shape), np.ones(k_shape), strides=strides, padding=padding, dilation=dilation)
    assert shapes.conv2d_output_shape(x_shape, k_shape, strides, padding, dilation) == y.shape


def test_num_params():
    assert shapes.num_params(3, 3, 64) == (3 * 3 * 3 + 1) * 64 == 1792
    assert shapes.num_params(3, 3, 64, bias=False) == 3 * 3 * 3 * 64
    assert shapes.num_params((3, 5), 3, 64) == (3 * 5 * 3 + 1) * 64
    assert shapes.num_params(3, 64, 64, groups=64) == (3 * 3 * 1 + 1) * 64
    assert shapes.num_params(3, 64, 128, groups=2) == (3 * 3 * 32 + 1) * 128
    assert shapes.num_params(3, 64, 64, groups=64, bias=False) == 9 * 64
    assert shapes.num_params(7, 3, 64) == 9472  # ResNet stem, with bias


def test_num_params_sharing_kinds():
    weights = 3 * 3 * 3 * 64
    unshared = shapes.num_params(3, 3, 64, sharing="unshared", output_size=(10, 12))
    assert unshared == weights * 120 + 64 * 120
    assert shapes.num_params(3, 3, 64, bias=False, sharing="unshared", output_size=(10, 12)) == weights * 120
    # SPEC names the region kind without fixing its word; accept either spelling.
    counts = []
    for word in ("regions", "region"):
        try:
            counts.append(shapes.num_params(3, 3, 64, sharing=word, regions=(2, 3)))
        except ValueError:
            pass
    assert counts and all(count == (weights + 64) * 6 for count in counts)
    assert shapes.num_params(3, 3, 64, sharing="shared") == weights + 64


# ------------------------------------------------------------------------ errors


def test_channel_mismatch():
    with pytest.raises(ValueError, match=_naming("kernel", "4", "3")):
        convlayer.conv2d(np.zeros((32, 32, 3)), np.zeros((3, 3, 4, 8)))


def test_channel_mismatch_rank3_kernel_and_channels_first():
    with pytest.raises(ValueError, match="kernel"):
        convlayer.conv2d(np.zeros((2, 8, 8, 3)), np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="kernel"):
        convlayer.conv2d(np.zeros((2, 3, 8, 8)), np.zeros((8, 4, 3, 3)), data_format="channels_first")


def test_grouped_channel_mismatch():
    # groups=2 on 4 channels needs kernel (Fh, Fw, 2, K), not (Fh, Fw, 4, K).
    with pytest.raises(ValueError):
        convlayer.conv2d(np.zeros((1, 6, 6, 4)), np.zeros((3, 3, 4, 4)), groups=2)


@pytest.mark.parametrize("padding", ["smae", "SAME_LOWER_", "", "causal"])
def test_bad_padding_word(padding):
    with pytest.raises(ValueError, match=_naming("padding", padding)):
        convlayer.conv2d(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), padding=padding)


@pytest.mark.parametrize("padding", [-1, (1, -2), ((0, 1), (-1, 0))], ids=str)
def test_negative_padding(padding):
    with pytest.raises(ValueError, match="padding"):
        convlayer.conv2d(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), padding=padding)


@pytest.mark.parametrize("padding", [(1, 2, 3), ((1, 2, 3), (0, 0)), 1.5, None], ids=str)
def test_malformed_padding(padding):
    with pytest.raises((ValueError, TypeError), match="padding"):
        convlayer.conv2d(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), padding=padding)


@pytest.mark.parametrize("strides", [0, -1, (2, 0), (0, 1), (-2, 1)], ids=str)
def test_non_positive_strides(strides):
    with pytest.raises(ValueError, match="strides"):
        convlayer.conv2d(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), strides=strides)


@pytest.mark.parametrize("dilation", [0, -1, (1, 0), (0, 2)], ids=str)
def test_non_positive_dilation(dilation):
    with pytest.raises(ValueError, match="dilation"):
        convlayer.conv2d(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), dilation=dilation)


@pytest.mark.parametrize(
    "c, k, groups",
    [(3, 4, 2), (4, 6, 4), (4, 4, 3), (4, 4, 0), (4, 4, -2)],
    ids=str,
)
def test_groups_that_do_not_divide(c, k, groups):
    c_in = max(c // groups, 1) if groups > 0 else c
    with pytest.raises(ValueError, match="groups"):
        convlayer.conv2d(np.zeros((1, 6, 6, c)), np.zeros((3, 3, c_in, k)), groups=groups)


@pytest.mark.parametrize(
    "x_shape, k_shape, kwargs",
    [
        ((3, 3, 1), (5, 5, 1, 1), dict(padding="valid")),
        ((4, 4, 1), (3, 3, 1, 1), dict(padding="valid", dilation=2)),
        ((1, 8, 2, 1), (3, 3, 1, 1), dict(padding="valid")),
        ((3, 3), (5, 5), dict(padding=((0, 1), (0, 1)))),
        ((2, 1, 6, 6), (1, 1, 7, 7), dict(padding="valid", data_format="channels_first")),
    ],
    ids=str,
)
def test_kernel_that_does_not_fit(x_shape, k_shape, kwargs):
    with pytest.raises(ValueError, match="kernel"):
        convlayer.conv2d(np.zeros(x_shape), np.zeros(k_shape), **kwargs)


@pytest.mark.parametrize("bias", [np.zeros(5), np.zeros(3), np.zeros((2, 2)), np.zeros((4, 1))], ids=str)
def test_bias_of_the_wrong_shape(bias):
    with pytest.raises(ValueError, match="bias"):
        convlayer.conv2d(np.zeros((1, 6, 6, 2)), np.zeros((3, 3, 2, 4)), bias)


@pytest.mark.parametrize(
    "x_shape, k_shape",
    [((6,), (3, 3)), ((1, 1, 6, 6, 1), (3, 3, 1, 1)), ((6, 6, 1), (3,)), ((6, 6, 1), (3, 3, 1, 1, 1))],
    ids=str,
)
def test_bad_ranks(x_shape, k_shape):
    with pytest.raises(ValueError):
        convlayer.conv2d(np.zeros(x_shape), np.zeros(k_shape))


def test_bad_pad_mode_and_data_format():
    x, kernel = np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1))
    with pytest.raises(ValueError, match=_naming("pad_mode", "mirror")):
        convlayer.conv2d(x, kernel, pad_mode="mirror")
    with pytest.raises(ValueError, match=_naming("data_format", "bogus")):
        convlayer.conv2d(x, kernel, data_format="bogus")


@pytest.mark.parametrize(
    "x, kernel, name",
    [
        (np.array([["a", "b"], ["c", "d"]]), np.ones((1, 1)), "x"),
        (np.ones((2, 2)), np.array([["a"]]), "kernel"),
        (np.array([[1, 2], [3, 4]], dtype=object), np.ones((1, 1)), "x"),
        (np.ones((2, 2)), np.ones((1, 1), dtype=object), "kernel"),
        (np.ones((2, 2), dtype=np.complex128), np.ones((1, 1)), "x"),
        (np.ones((2, 2)), np.ones((1, 1), dtype=np.complex64), "kernel"),
        ([["a", "b"], ["c", "d"]], np.ones((1, 1)), "x"),
    ],
    ids=["str-x", "str-kernel", "object-x", "object-kernel", "complex-x", "complex-kernel", "str-list-x"],
)
def test_non_numeric_and_complex_dtypes(x, kernel, name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        convlayer.conv2d(x, kernel, padding="valid")


@pytest.mark.parametrize("bias", [np.ones(2, dtype=np.complex128), np.array(["a", "b"]), 1j], ids=str)
def test_non_numeric_bias(bias):
    with pytest.raises(TypeError, match="bias"):
        convlayer.conv2d(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 2)), bias, padding="valid")


def test_nan_is_not_an_error():
    y = convlayer.conv2d(np.full((3, 3), np.nan), np.ones((2, 2)), padding="valid")
    assert np.all(np.isnan(y))


def test_shapes_errors():
    with pytest.raises(ValueError, match="padding"):
        shapes.output_size(10, 3, 1, "smae")
    with pytest.raises(ValueError, match="kernel"):
        shapes.output_size(3, 5, 1, "valid")
    with pytest.raises(ValueError, match="stride"):
        shapes.output_size(10, 3, 0, "same")
    with pytest.raises(ValueError, match="dilation"):
        shapes.pad_amounts(10, 3, 1, "same", 0)


@pytest.mark.parametrize("size, padding", [(0, "valid"), (0, 1), (1, "valid")], ids=str)
def test_shapes_zero_size_when_kernel_does_not_fit(size, padding):
    # Padded size 0 or 2 (or 1) is less than the kernel's 3, as for conv2d.
    with pytest.raises(ValueError, match="kernel"):
        shapes.output_size(size, 3, 1, padding)
