"""The depthwise loops (algorithms/depthwise.py, _loops.depthwise_fixed and its kernel
gradient): bands of rows, kernel sizes, threads, and strided layers' input gradient through
stuffed grad_out, against the float64 reference loops."""

import numpy as np
import pytest

import convlayer
from convlayer import _validate, reference
from convlayer.algorithms import backward, depthwise, parallel


@pytest.mark.parametrize("band_rows", [1, 3])
def test_depthwise_bands_of_few_rows_give_the_same_sums(band_rows, monkeypatch):
    # depthwise.BAND_ROWS: the padded rows two bands share are filled once per band
    monkeypatch.setattr(depthwise, "BAND_ROWS", band_rows)
    rng = np.random.default_rng(21)
    c = depthwise.FIXED_MIN_CHANNELS  # the register-summing loop, which fills bands
    x, kernel = rng.standard_normal((2, 13, 7, c)), rng.standard_normal((3, 5, 1, c))
    for options in (dict(strides=(2, 1)), dict(strides=(1, 3), pad_mode="symmetric"), dict(padding=((4, 0), (1, 3)))):
        got = convlayer.conv2d(x, kernel, groups=c, algorithm="depthwise", **options)
        np.testing.assert_allclose(got, reference.conv2d(x, kernel, groups=c, **options), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape, kernel, stride, want", [((1, 112, 112, 96), 3, 2, 5), ((1, 56, 56, 144), 3, 1, 13),
                                                          ((1, 112, 112, 32), 3, 1, 16), ((1, 20, 20, 4096), 5, 1, 1)])
def test_forward_bands_stop_at_band_bytes(shape, kernel, stride, want):
    # the band's padded rows, (rows - 1) * stride + fh of them, stay within BAND_BYTES (one
    # more output row would pass it), at most BAND_ROWS, and at least one row however wide
    from convlayer import shapes

    geom = shapes.conv_geometry(shape, (kernel, kernel, 1, shape[3]), strides=stride, padding="same", groups=shape[3])
    row_bytes = ((geom.out_w - 1) * stride + kernel) * shape[3] * 4
    rows = depthwise._band_rows(geom, 4, 2**28, depthwise.BAND_BYTES)
    assert rows == want
    assert rows == 1 or ((rows - 1) * stride + kernel) * row_bytes <= depthwise.BAND_BYTES
    assert rows == depthwise.BAND_ROWS or (rows * stride + kernel) * row_bytes > depthwise.BAND_BYTES
    assert depthwise._band_rows(geom, 4, 2**28) == depthwise.BAND_ROWS  # the kernel gradient's bands


@pytest.mark.parametrize("case", [
    dict(shape=(2, 9, 11, 8), kernel=(3, 3), dtype=np.float64),
    dict(shape=(2, 9, 11, 24), kernel=(3, 3), dtype=np.float64),
    dict(shape=(2, 10, 9, 12), kernel=(5, 3), dtype=np.float32, strides=(2, 1), dilation=(1, 2), pad_mode="reflect"),
    dict(shape=(2, 10, 9, 40), kernel=(5, 3), dtype=np.float32, strides=(2, 1), dilation=(1, 2), pad_mode="reflect"),
    dict(shape=(1, 7, 6, 8), kernel=(1, 1), dtype=np.float64, strides=(1, 2), padding="valid"),
    dict(shape=(3, 8, 8, 8), kernel=(2, 3), dtype=np.float64, strides=3, pad_mode="wrap", data_format="channels_first"),
    dict(shape=(2, 9, 7, 21), kernel=(7, 7), dtype=np.float32, strides=2),
    dict(shape=(1, 6, 5, 3), kernel=(5, 5), dtype=np.float64, padding=((3, 1), (0, 2)), pad_mode="edge"),
    dict(shape=(3, 41, 9, 32), kernel=(3, 3), dtype=np.float64, strides=2),  # bands of 16 rows, 3 images
    dict(shape=(2, 37, 6, 25), kernel=(5, 5), dtype=np.float64, pad_mode="reflect"),
    dict(shape=(2, 9, 7, 48), kernel=(7, 7), dtype=np.float32, strides=2, data_format="channels_first"),
], ids=["3x3-8", "3x3-24", "5x3-strided-dilated-reflect-12", "5x3-strided-dilated-reflect-40", "1x1-valid",
        "2x3-stride3-wrap-channels-first", "7x7-21-channels", "5x5-3-channels-edge", "bands-stride-2",
        "bands-5x5-reflect", "7x7-48-channels-first"])
def test_depthwise_loops_compiled_for_their_kernel_size(case):
    # Below depthwise.FIXED_MIN_CHANNELS the flat-run loop, from it on the register-summing one
    # compiled per kernel size and column stride: channel counts that fill whole vector
    # registers (16, 24, 32, 40, 48) and the remainder loop's (21, 25).
    case = dict(case)
    shape, (fh, fw), dtype = case.pop("shape"), case.pop("kernel"), case.pop("dtype")
    rng = np.random.default_rng(20)
    x, kernel = rng.standard_normal(shape).astype(dtype), rng.standard_normal((fh, fw, 1, shape[3])).astype(dtype)
    if case.get("data_format") == "channels_first":  # (n, c, h, w) and (k, c / groups, fh, fw)
        x, kernel = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    options = dict(groups=shape[3], **case)
    got = convlayer.conv2d(x, kernel, algorithm="depthwise", **options)
    expected = reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), **options)
    if dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    else:
        # each output sums fh * fw float32 products: within gamma_n ~ n u of the sum of their
        # magnitudes (Higham 3.1), twice for headroom
        bound = reference.conv2d(np.abs(x).astype(np.float64), np.abs(kernel).astype(np.float64), **options)
        assert (np.abs(got - expected) <= 2 * fh * fw * 2.0**-24 * bound).all()


@pytest.mark.parametrize("kernel, strides, dilation", [((3, 3), 1, 1), ((1, 3), 1, (1, 2)), ((3, 3), 2, 1),
                                                       ((5, 5), 1, 1), ((5, 3), (1, 2), 1), ((7, 7), 1, 1)])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_pixel_blocks_leave_every_remainder_of_a_row_right(kernel, strides, dilation, data_format):
    # depthwise_fixed sums depthwise.pixel_block(geom) pixels (4, 2 or 1) at once and the rest
    # of each row one by one: output widths 5 to 8 leave every remainder of 4 and of 2
    c = depthwise.FIXED_MIN_CHANNELS + 3
    rng = np.random.default_rng(22)
    for width in range(5, 9):
        columns = (width - 1) * (strides if isinstance(strides, int) else strides[1]) + 1
        x, weights = rng.standard_normal((2, 6, columns, c)), rng.standard_normal(kernel + (1, c))
        if data_format == "channels_first":
            x, weights = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(weights.transpose(3, 2, 0, 1))
        options = dict(groups=c, strides=strides, dilation=dilation, data_format=data_format)
        got = convlayer.conv2d(x, weights, algorithm="depthwise", **options)
        assert got.shape[-1 if data_format == "channels_first" else -2] == width
        np.testing.assert_allclose(got, reference.conv2d(x, weights, **options), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kernel, strides", [((3, 3), 1), ((3, 3), 2), ((5, 5), 1), ((7, 7), 1)])
@pytest.mark.parametrize("low, high", [(None, None), (0.0, None), (0.0, 6.0), (None, -0.5), (-1.0, 1.0)])
def test_bias_and_clamp_added_in_the_loop_as_by_numpy(kernel, strides, low, high):
    # depthwise_fixed adds the bias and clamps each sum as it stores it, in the blocks of
    # pixels and the rest of a row (widths 5 to 8): as np.clip(reference + bias), NaN kept
    c = depthwise.FIXED_MIN_CHANNELS + 5
    rng = np.random.default_rng(23)
    for width in range(5, 9):
        x = rng.standard_normal((2, 6, (width - 1) * strides + 1, c)) * 3
        x[1, 2, 1, :4] = np.nan
        weights, bias = rng.standard_normal(kernel + (1, c)), rng.standard_normal(c)
        options = dict(groups=c, strides=strides)
        args = _validate.conv_args(x, weights, bias, flip=False, pad_mode="constant", data_format="channels_last",
                                   dilation=1, padding="same", **options)
        got = convlayer.functional.conv2d_checked(args, low, high)  # as convlayer.onnx runs a Conv and its Clip
        expected = np.clip(reference.conv2d(x, weights, **options) + bias, low, high)
        assert np.isnan(got).sum() == np.isnan(expected).sum() > 0
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
        first = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # read as views: the same loop
        got = convlayer.conv2d(first, weights.transpose(3, 2, 0, 1), bias, data_format="channels_first", **options)
        np.testing.assert_allclose(got, (reference.conv2d(x, weights, **options) + bias).transpose(0, 3, 1, 2),
                                   rtol=1e-9, atol=1e-9)


def test_no_bias_leaves_a_negative_zero_sum_negative():
    # without a bias the loop adds -0.0, the sum's identity: a sum of -0.0 products stays -0.0
    c = depthwise.FIXED_MIN_CHANNELS
    got = convlayer.conv2d(np.zeros((1, 5, 9, c)), -np.ones((3, 3, 1, c)), groups=c, algorithm="depthwise")
    assert (got == 0).all() and np.signbit(got).all()


@pytest.mark.parametrize("budget", [None, 2**14], ids=["whole", "image-chunks"])
@pytest.mark.parametrize("options", [
    dict(strides=2), dict(strides=(3, 2), padding="valid"), dict(strides=2, dilation=(2, 1)),
    dict(strides=(2, 3), padding=((2, 0), (1, 2))), dict(strides=4, padding="same_lower"),
], ids=["s2-same", "s3x2-valid", "s2-dilated", "explicit", "s4-same-lower"])
def test_strided_depthwise_input_gradient_through_stuffed_grad_out(options, budget, monkeypatch):
    # choose._stuffed_depthwise: a depthwise correlation of grad_out with zeros between its pixels
    rng = np.random.default_rng(35)
    x, kernel = rng.standard_normal((3, 13, 11, 6)), rng.standard_normal((3, 3, 1, 6))
    grad = rng.standard_normal(reference.conv2d(x, kernel, groups=6, **options).shape)
    expected = reference.conv2d_backward(grad, x, kernel, groups=6, **options)
    stuffed = []
    stuff = backward.stuff
    monkeypatch.setattr(backward, "stuff", lambda *a: stuffed.append(1) or stuff(*a))
    with convlayer.memory_budget(budget or convlayer.get_memory_budget()):
        got = convlayer.conv2d_backward(grad, x, kernel, groups=6, **options)
    assert len(stuffed) == (1 if budget is None else 3)  # all images at once, or one by one
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


def test_small_element_wise_work_stays_on_one_thread():
    assert parallel.threads_for(parallel.PARALLEL_MIN_WORK - 1) == 1
    assert parallel.threads_for(parallel.PARALLEL_MIN_WORK) == parallel.thread_count()


@pytest.mark.parametrize("options", [dict(), dict(strides=2, pad_mode="reflect")], ids=["same", "stride2-reflect"])
def test_depthwise_loops_share_rows_among_threads(options, monkeypatch):
    # every layer here is below PARALLEL_MIN_WORK: lower it so that each thread takes its rows
    monkeypatch.setattr(parallel, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(parallel, "thread_count", lambda: 3)
    rng = np.random.default_rng(36)
    x, kernel = rng.standard_normal((2, 11, 9, 24)), rng.standard_normal((3, 3, 1, 24))
    expected = reference.conv2d(x, kernel, groups=24, **options)
    np.testing.assert_allclose(convlayer.conv2d(x, kernel, groups=24, **options), expected, rtol=1e-9, atol=1e-9)
    grad = rng.standard_normal(expected.shape)
    want = reference.conv2d_backward(grad, x, kernel, groups=24, **options)
    for value, wanted in zip(convlayer.conv2d_backward(grad, x, kernel, groups=24, **options), want):
        np.testing.assert_allclose(value, wanted, rtol=1e-9, atol=1e-9)
