"""The plain-loop reference against values computed by hand."""

import numpy as np
import pytest

from convlayer import reference


def test_two_by_two_ones_sum_each_window():
    x = np.arange(9.0).reshape(3, 3)  # 0 1 2 / 3 4 5 / 6 7 8
    out = reference.conv2d(x, np.ones((2, 2)), padding="valid")
    np.testing.assert_array_equal(out, [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]])


def test_cross_correlation_does_not_flip_and_flip_does():
    x = np.array([[1.0, 2.0, 3.0]])
    kernel = np.array([[1.0, 10.0]])
    # correlation: 1*1 + 2*10, 2*1 + 3*10 ; convolution: 1*10 + 2*1, 2*10 + 3*1
    np.testing.assert_array_equal(reference.conv2d(x, kernel, padding="valid"), [[21.0, 32.0]])
    np.testing.assert_array_equal(reference.conv2d(x, kernel, padding="valid", flip=True), [[12.0, 23.0]])


def test_same_padding_puts_the_odd_zero_bottom_right():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    kernel = np.array([[1.0, 1.0]])  # even kernel: one zero of padding, after the row
    np.testing.assert_array_equal(reference.conv2d(x, kernel, padding="same"), [[3.0, 5.0, 7.0, 4.0]])
    np.testing.assert_array_equal(reference.conv2d(x, kernel, padding="same_lower"), [[1.0, 3.0, 5.0, 7.0]])


def test_strided_same_with_asymmetric_padding():
    # width 6, kernel 3, stride 2: out 3, total padding max(2*2 + 3 - 6, 0) = 1, all on the right
    x = np.arange(1.0, 7.0)[None, :]  # 1..6
    out = reference.conv2d(x, np.ones((1, 3)), strides=2, padding="same")
    np.testing.assert_array_equal(out, [[1 + 2 + 3, 3 + 4 + 5, 5 + 6 + 0]])


def test_dilation_skips_pixels():
    x = np.arange(1.0, 6.0)[None, :]  # 1 2 3 4 5
    out = reference.conv2d(x, np.array([[1.0, 1.0]]), dilation=2, padding="valid")
    np.testing.assert_array_equal(out, [[1 + 3, 2 + 4, 3 + 5]])


def test_multi_channel_filter_sums_channels_and_adds_bias():
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 2.0), np.full((2, 2), 3.0)], axis=-1)
    kernel = np.stack([np.ones((2, 2)), 10 * np.ones((2, 2)), 100 * np.ones((2, 2))], axis=-1)
    out = reference.conv2d(x, kernel, 0.5, padding="valid")  # (2, 2, 3) filter -> 2-D map
    assert out.shape == (1, 1)
    assert out[0, 0] == 4 * (1 + 20 + 300) + 0.5


def test_groups_keep_channels_apart():
    x = np.zeros((1, 1, 2))
    x[..., 0], x[..., 1] = 1.0, 5.0
    kernel = np.array([2.0, 3.0]).reshape(1, 1, 1, 2)  # groups=2: one input channel each
    np.testing.assert_array_equal(reference.conv2d(x, kernel, groups=2).ravel(), [2.0, 15.0])


def test_reflect_padding_copies_mirrored_pixels():
    x = np.array([[1.0, 2.0, 3.0]])
    out = reference.conv2d(x, np.ones((1, 3)), padding=((0, 0), (1, 1)), pad_mode="reflect")
    np.testing.assert_array_equal(out, [[2 + 1 + 2, 1 + 2 + 3, 2 + 3 + 2]])


def test_uint8_pixels_do_not_wrap_around():
    """The tutorial summed uint8 values, so 200 + 200 wrapped to 144."""
    x = np.full((2, 2), 200, dtype=np.uint8)
    out = reference.conv2d(x, np.ones((2, 2), dtype=np.uint8), padding="valid")
    assert out.dtype == np.float32 and out[0, 0] == 800.0  # result_type(uint8, uint8, float32)


@pytest.mark.parametrize(
    "padding, inside",
    [("same", np.s_[:, :]), ("valid", np.s_[1:-1, 1:-1]), ("full", np.s_[:, :]), (1, np.s_[:, :])],
)
def test_identity_kernel_returns_the_input(padding, inside):
    x = np.random.default_rng(0).random((5, 6))
    kernel = np.zeros((3, 3))
    kernel[1, 1] = 1.0
    out = reference.conv2d(x, kernel, padding=padding)
    if padding == "full":  # two zeros on each side: the input sits one pixel in
        out = out[1:-1, 1:-1]
    np.testing.assert_array_equal(out, x[inside])
