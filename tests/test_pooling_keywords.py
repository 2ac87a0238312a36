"""The pooling keywords PyTorch and ONNX models need, by hand: ceil_mode, dilation,
count_include_pad, return_indices, max_unpool2d and lp_pool2d; finite differences for their
gradients; and their error messages."""

import numpy as np
import pytest

import convlayer
from convlayer import (avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward, max_pool2d,
                       max_pool2d_backward, max_unpool2d, max_unpool2d_backward)


def test_ceil_mode_by_hand():
    x = np.arange(25.0).reshape(5, 5, 1)
    assert max_pool2d(x, 2).shape == (2, 2, 1)
    y = max_pool2d(x, 2, ceil_mode=True)[..., 0]  # a third row and column of 2x1, 1x2, 1x1 windows
    np.testing.assert_array_equal(y, [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    avg = avg_pool2d(x, 2, ceil_mode=True)[..., 0]
    assert avg[2, 2] == 24.0 and avg[0, 2] == (4 + 9) / 2  # divided by the real pixels
    # a last window must start inside the input or its top/left padding: 4 + 1 + 1 padded,
    # pool 2, stride 2 -> ceil(4 / 2) + 1 = 3 windows starting at -1, 1, 3: all kept
    assert max_pool2d(np.zeros((4, 4, 1)), 2, padding=1, ceil_mode=True).shape == (3, 3, 1)
    # 6 pixels, pool 2, stride 3: ceil((6 - 2) / 3) + 1 = 3, but the third starts at 6: dropped
    assert max_pool2d(np.zeros((6, 6, 1)), 2, strides=3, ceil_mode=True).shape == (2, 2, 1)
    assert max_pool2d(np.zeros((7, 7, 1)), 2, strides=3, ceil_mode=True).shape == (3, 3, 1)


def test_ceil_mode_changes_nothing_with_same_padding():
    x = np.random.default_rng(0).standard_normal((2, 7, 9, 2))
    for pool, strides in ((2, 2), (3, 2), (3, 3), ((2, 3), (3, 1))):
        np.testing.assert_array_equal(avg_pool2d(x, pool, strides, "same", ceil_mode=True),
                                      avg_pool2d(x, pool, strides, "same"))


def test_count_include_pad_by_hand():
    x = np.arange(1.0, 10.0).reshape(3, 3, 1)
    y = avg_pool2d(x, 3, strides=1, padding=1, count_include_pad=True)[..., 0]
    assert y[0, 0] == (1 + 2 + 4 + 5) / 9 and y[1, 1] == 5.0
    assert avg_pool2d(x, 3, strides=1, padding=1)[0, 0, 0] == (1 + 2 + 4 + 5) / 4
    # 'same' words count their padding too (ONNX auto_pad with count_include_pad=1)
    assert avg_pool2d(x, 3, 1, "same", count_include_pad=True)[0, 0, 0] == (1 + 2 + 4 + 5) / 9
    # ceil_mode: the part of a window past the padded input is not counted (PyTorch)
    ones = np.ones((4, 4, 1))
    got = avg_pool2d(ones, 3, strides=2, padding=1, ceil_mode=True, count_include_pad=True)[..., 0]
    np.testing.assert_allclose(got[0], [4 / 9, 6 / 9, 2 / 6])  # last window: 3 x 2 taps in the padded input, 2 real


def test_dilation_by_hand():
    x = np.arange(25.0).reshape(5, 5, 1)
    y, index = max_pool2d(x, 2, strides=1, dilation=2, return_indices=True)  # taps 0 and 2 apart
    assert y.shape == (3, 3, 1) and y[0, 0, 0] == 12 and index[0, 0, 0] == 12
    avg = avg_pool2d(x, 2, strides=1, dilation=(2, 1))[..., 0]  # rows 0 and 2, columns 0 and 1
    assert avg[0, 0] == (0 + 1 + 10 + 11) / 4
    # 'same' with dilation: the window spans 3, so one zero on each side; taps only
    same = avg_pool2d(x, 2, strides=1, padding="same", dilation=2)[..., 0]
    assert same.shape == (5, 5) and same[0, 0] == 6.0 and same[4, 4] == 18.0  # taps -1 and 1, 3 and 5
    assert same[1, 1] == (0 + 2 + 10 + 12) / 4
    assert lp_pool2d(np.ones((3, 3, 1)), 2, 2, dilation=2)[0, 0, 0] == 2.0


def test_indices_point_at_the_first_maximum_and_first_nan():
    x = np.array([[1.0, 3.0], [3.0, 3.0]])[..., None]
    assert max_pool2d(x, 2, return_indices=True)[1][0, 0, 0] == 1  # as PyTorch
    nan = np.array([[1.0, np.nan], [np.nan, 3.0]])[..., None]
    values, index = max_pool2d(nan, 2, return_indices=True)
    assert np.isnan(values[0, 0, 0]) and index[0, 0, 0] == 1  # PyTorch: 2, its last NaN
    np.testing.assert_array_equal(max_pool2d_backward(np.ones((1, 1, 1)), nan, 2)[..., 0], [[0, 1], [0, 0]])
    low = np.full((2, 2, 1), -np.inf)
    assert max_pool2d(low, 2, return_indices=True)[1][0, 0, 0] == 0  # the first real pixel
    ints = np.full((2, 2, 1), -128, np.int8)
    assert max_pool2d(ints, 2, padding=1, strides=1, return_indices=True)[1][0, 0, 0] == 0
    # indices are per image plane, in the user's layout
    x = np.random.default_rng(1).permutation(2 * 3 * 4 * 4).reshape(2, 3, 4, 4).astype(float)
    _, first = max_pool2d(x, 2, return_indices=True, data_format="channels_first")
    _, last = max_pool2d(x.transpose(0, 2, 3, 1), 2, return_indices=True)
    np.testing.assert_array_equal(first, last.transpose(0, 3, 1, 2))
    assert first.max() < 16 and first.dtype == np.int64


def test_unpool_puts_values_back():
    x = np.array([[1, 5, 2], [7, 2, 0], [3, 3, 9]], np.int16)[..., None]
    values, index = max_pool2d(x, 2, strides=1, return_indices=True)
    back = max_unpool2d(values, index, (3, 3))
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back[..., 0], [[0, 5, 0], [7, 0, 0], [0, 0, 9]])
    np.testing.assert_array_equal(max_unpool2d(values, index, 3), back)
    np.testing.assert_array_equal(max_unpool2d(values, index, (3, 3, 1)), back)  # a whole shape
    nchw = max_unpool2d(values.transpose(2, 0, 1), index.transpose(2, 0, 1), (3, 3), data_format="channels_first")
    np.testing.assert_array_equal(nchw, back.transpose(2, 0, 1))
    g = np.arange(9.0).reshape(3, 3, 1)
    np.testing.assert_array_equal(max_unpool2d_backward(g, values, index, (3, 3))[..., 0], [[3, 1], [3, 8]])


def numeric_grad(f, x, eps=1e-5):  # rounding, not truncation, dominates below
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("options", [
    dict(pool_size=2, ceil_mode=True),
    dict(pool_size=3, strides=2, padding=1, ceil_mode=True, count_include_pad=True),
    dict(pool_size=2, strides=1, dilation=2, padding="same"),
    dict(pool_size=(2, 3), strides=(2, 1), dilation=(1, 2), padding=((1, 0), (2, 1)), ceil_mode=True),
])
def test_gradients_match_finite_differences(options):
    rng = np.random.default_rng(5)
    x = rng.permutation(2 * 5 * 6 * 2).reshape(2, 5, 6, 2) / 7.0 + 0.05  # distinct, none zero
    include = options.pop("count_include_pad", False)
    ops = [(lambda v: avg_pool2d(v, **options, count_include_pad=include),
            lambda g, v: avg_pool2d_backward(g, v, **options, count_include_pad=include)),
           (lambda v: max_pool2d(v, **options), lambda g, v: max_pool2d_backward(g, v, **options))]
    for p in (1, 2, 3.5):
        ops.append((lambda v, p=p: lp_pool2d(v - 2, p, **options),
                    lambda g, v, p=p: lp_pool2d_backward(g, v - 2, p, **options)))
    for forward, backward in ops:
        g = rng.standard_normal(forward(x).shape)
        num = numeric_grad(lambda v: np.sum(g * forward(v)), x)
        np.testing.assert_allclose(backward(g, x), num, rtol=1e-6, atol=1e-8)


def test_lp_pool_by_hand_and_its_gradient_at_zero():
    x = np.array([[3.0, -4.0], [0.0, 0.0]])[..., None]
    assert lp_pool2d(x, 2, 2)[0, 0, 0] == 5.0
    assert lp_pool2d(x, 1, 2)[0, 0, 0] == 7.0
    assert lp_pool2d(x, 50, 2)[0, 0, 0] == pytest.approx(4.0)  # toward max |x|
    assert lp_pool2d(np.ones((2, 2, 1), np.uint8), 2, 2).dtype == np.float32
    assert lp_pool2d(np.full((1, 1, 1), -128, np.int8), 1, 1)[0, 0, 0] == 128.0  # no int8 wrap
    np.testing.assert_array_equal(lp_pool2d_backward(np.ones((1, 1, 1)), np.zeros((2, 2, 1)), 2, 2), 0)
    # padding adds nothing
    np.testing.assert_allclose(lp_pool2d(x, 2, 3, strides=1, padding=1)[0, 0, 0], 5.0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: max_pool2d(np.zeros((4, 4, 1)), 2, dilation=0), ValueError, r"dilation must be positive integers; got 0"),
    (lambda: avg_pool2d(np.zeros((4, 4, 1)), 2, dilation=(1, 1.5)), TypeError,
     r"dilation must be positive integers; got \(1, 1\.5\)"),
    (lambda: max_pool2d(np.zeros((4, 4, 1)), 2, ceil_mode="yes"), TypeError, r"ceil_mode must be True or False; got 'yes'"),
    (lambda: max_pool2d(np.zeros((4, 4, 1)), 2, return_indices=None), TypeError,
     r"return_indices must be True or False; got None"),
    (lambda: avg_pool2d(np.zeros((4, 4, 1)), 2, count_include_pad=2), TypeError,
     r"count_include_pad must be True or False; got 2"),
    (lambda: max_pool2d(np.zeros((4, 4, 1)), 3, dilation=2), ValueError,
     r"pool_size height 3 \(dilated: 5\) does not fit the padded input height 4 \(x height 4 \+ padding 0 \+ 0\)"),
    (lambda: max_pool2d(np.zeros((2, 2, 1)), 2, padding="same", dilation=3), ValueError,
     r"padding 1 \+ 1 leaves a window of padding only along the height \(x height 2, pool_size height 2, "
     r"strides height 2, dilation height 3\)"),
    (lambda: max_pool2d_backward(np.zeros((3, 3, 1)), np.zeros((4, 4, 1)), 2, strides=1, dilation=2), ValueError,
     r"grad_out must have the pooled output's shape \(2, 2, 1\) .*dilation \(2, 2\)\); got grad_out shape"),
    (lambda: lp_pool2d(np.zeros((4, 4, 1)), 0, 2), ValueError, r"p must be a finite number > 0, such as 1 or 2; got 0"),
    (lambda: lp_pool2d(np.zeros((4, 4, 1)), np.inf, 2), ValueError, r"p must be a finite number > 0.*; got inf"),
    (lambda: lp_pool2d(np.zeros((4, 4, 1)), "2", 2), TypeError, r"p must be a finite number > 0.*; got '2'"),
    (lambda: lp_pool2d(np.zeros((4, 4, 1)), True, 2), TypeError, r"p must be a finite number > 0.*; got True"),
    (lambda: max_unpool2d(np.zeros((2, 2, 1)), np.zeros((2, 2, 1)), (4, 4)), TypeError,
     r"indices must be integers, as max_pool2d returns them; got dtype float64"),
    (lambda: max_unpool2d(np.zeros((2, 2, 1)), np.zeros((2, 1, 1), int), (4, 4)), ValueError,
     r"indices must have x's shape \(2, 2, 1\); got indices shape \(2, 1, 1\)"),
    (lambda: max_unpool2d(np.zeros((2, 2, 1)), np.full((2, 2, 1), 16), (4, 4)), ValueError,
     r"indices must lie in \[0, 16\) for output_size \(4, 4\); got indices from 16 to 16"),
    (lambda: max_unpool2d(np.zeros((2, 2, 1)), np.zeros((2, 2, 1), int), (4, 4, 2)), ValueError,
     r"output_size must keep x's batch and channel sizes \(x shape \(2, 2, 1\)\); got output_size \(4, 4, 2\)"),
    (lambda: max_unpool2d(np.zeros((2, 2, 1)), np.zeros((2, 2, 1), int), 0), ValueError,
     r"output_size must be positive integers; got 0"),
    (lambda: max_unpool2d_backward(np.zeros((3, 3, 1)), np.zeros((2, 2, 1)), np.zeros((2, 2, 1), int), (4, 4)),
     ValueError, r"grad_out must have the unpooled shape \(4, 4, 1\) \(x shape \(2, 2, 1\), output_size \(4, 4\)\); "
     r"got grad_out shape \(3, 3, 1\)"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_exported_from_top_level():
    names = {"lp_pool2d", "lp_pool2d_backward", "max_unpool2d", "max_unpool2d_backward"}
    assert names <= set(convlayer.__all__)
    assert convlayer.pooling.max_pool2d is max_pool2d


def test_work_buffers_are_made_a_chunk_of_images_at_a_time():
    """A budget of one byte makes every pool work one image at a time: the same results."""
    rng = np.random.default_rng(7)
    x = rng.permutation(4 * 7 * 6 * 3).reshape(4, 7, 6, 3) / 7.0 - 5.0
    options = dict(pool_size=3, strides=2, padding=1, dilation=(1, 2), ceil_mode=True)
    g = rng.standard_normal(max_pool2d(x, **options).shape)
    calls = [lambda: max_pool2d(x, **options, return_indices=True),
             lambda: max_pool2d_backward(g, x, **options),
             lambda: avg_pool2d_backward(g, x, **options, count_include_pad=True),
             lambda: lp_pool2d(x, 3, **options), lambda: lp_pool2d_backward(g, x, 3, **options)]
    whole = [call() for call in calls]
    old = convlayer.set_memory_budget(1)
    try:
        chunked = [call() for call in calls]
    finally:
        convlayer.set_memory_budget(old)
    for a, b in zip(whole, chunked):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(u, v)


def test_work_memory_stays_near_the_output_size(work_memory):
    x = np.random.default_rng(8).standard_normal((8, 64, 64, 16)).astype(np.float32)
    output_bytes = max_pool2d(x, 4).nbytes  # a sixteenth of x's
    used, _ = work_memory(lambda: max_pool2d_backward(np.ones((8, 16, 16, 16), np.float32), x, 4))
    assert used <= 5 * output_bytes  # maxima, bools and a share per output value; no copy of x
    old = convlayer.set_memory_budget(output_bytes // 2)
    try:
        used, _ = work_memory(lambda: lp_pool2d(x, 2, 4))
    finally:
        convlayer.set_memory_budget(old)
    assert used <= output_bytes  # float64 sums and powers: 16 bytes a value, an eighth of the batch at a time


def test_one_image_equals_a_batch_of_one_in_either_layout():
    x = np.random.default_rng(9).standard_normal((2, 7, 6, 3))
    options = dict(pool_size=(3, 2), strides=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True)
    for fmt, batch in (("channels_last", x), ("channels_first", x.transpose(0, 3, 1, 2))):
        values, index = max_pool2d(batch, **options, return_indices=True, data_format=fmt)
        one = max_pool2d(batch[1], **options, return_indices=True, data_format=fmt)
        np.testing.assert_array_equal(one[0], values[1])
        np.testing.assert_array_equal(one[1], index[1])
        size = (7, 6)
        np.testing.assert_array_equal(max_unpool2d(one[0], one[1], size, data_format=fmt),
                                      max_unpool2d(values, index, size, data_format=fmt)[1])
        np.testing.assert_array_equal(lp_pool2d(batch[1], 3, **options, data_format=fmt),
                                      lp_pool2d(batch, 3, **options, data_format=fmt)[1])
        g = np.ones_like(values)
        np.testing.assert_array_equal(lp_pool2d_backward(g[1], batch[1], 3, **options, data_format=fmt),
                                      lp_pool2d_backward(g, batch, 3, **options, data_format=fmt)[1])
        np.testing.assert_array_equal(avg_pool2d_backward(g[1], batch[1], **options, data_format=fmt),
                                      avg_pool2d_backward(g, batch, **options, data_format=fmt)[1])
