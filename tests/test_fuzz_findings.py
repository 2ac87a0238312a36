"""The defects a differential fuzzer found (issue 14), each as the reproducer it reported and
as the general rule behind it. The CLI's and the image readers' findings are in
test_filter.py and test_cli.py."""

import numpy as np
import pytest

import convlayer
from convlayer import reference
from convlayer.algorithms import ranges, spread

MiB = 2**20


def _checkerboard(size, value, dtype):
    signs = np.where((np.arange(size)[:, None] + np.arange(size)) % 2, -1.0, 1.0)
    return (signs * value).astype(dtype)


# 1. auto kept FFT away from non-finite input with a sum, and alternating signs cancel.

def test_auto_does_not_take_fft_where_its_transforms_overflow():
    x = _checkerboard(64, 1e36, np.float32)
    kernel = np.full((15, 15), 1e-2, np.float32)
    got = convlayer.conv2d(x, kernel)
    expected = convlayer.conv2d(x.astype(np.float64), kernel.astype(np.float64), algorithm="im2col")
    assert np.isfinite(got).all()
    bound = convlayer.conv2d(np.abs(x).astype(np.float64), np.abs(kernel).astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=0, atol=2 * 225 * 2.0**-24 * bound.max())


def test_the_kernel_gradient_does_not_take_fft_where_its_transforms_overflow():
    s = _checkerboard(56, 1.0, np.float64)
    kernel = np.full((15, 15), 0.5)
    got = convlayer.conv2d_backward(s, s * 1e302, kernel)
    want = convlayer.conv2d_backward(s, s * 1e302, kernel, algorithm="im2col")
    assert np.isfinite(got.grad_kernel).all() and np.isfinite(got.grad_x).all()
    np.testing.assert_allclose(got.grad_kernel, want.grad_kernel, rtol=1e-9)


@pytest.mark.parametrize("value, dtype", [(1e36, np.float32), (1e300, np.float64), (3e37, np.float32)])
def test_fft_in_range_is_a_test_of_magnitudes_not_of_a_sum(value, dtype):
    x = _checkerboard(48, value, dtype)[None, :, :, None]
    kernel = np.full((9, 9, 1, 1), 0.1, dtype)
    geom = convlayer._validate.conv_args(x, kernel, None, strides=1, padding="same", dilation=1, groups=1,
                                         flip=False, pad_mode="constant", data_format="channels_last").geom
    assert ranges.finite(x)  # the old test: the sum cancels
    assert not ranges.fft_in_range(x, kernel, geom, kernel_gradient=False)
    assert ranges.fft_in_range(x / value, kernel, geom, kernel_gradient=False)


# 2. work memory followed the dilated span, not the taps.

@pytest.mark.parametrize("dilation", [3000, 10000, 10**20])
def test_a_huge_dilation_reads_only_its_taps(dilation, work_memory):
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((16, 16, 3)), rng.standard_normal((3, 3, 3, 2))
    with convlayer.memory_budget(256 * MiB):
        used, got = work_memory(lambda: convlayer.conv2d(x, kernel, dilation=dilation))
    assert used < MiB
    # 'same' centres the kernel: only its middle tap reaches the image, the others read zeros
    np.testing.assert_allclose(got, np.einsum("hwc,ck->hwk", x, kernel[1, 1]), rtol=1e-12, atol=1e-12)
    grads = convlayer.conv2d_backward(np.ones_like(got), x, kernel, dilation=dilation)
    np.testing.assert_allclose(grads.grad_x, np.broadcast_to(kernel[1, 1].sum(axis=1), x.shape), rtol=1e-12)
    want_kernel = np.zeros_like(kernel)
    want_kernel[1, 1] = x.sum(axis=(0, 1))[:, None]
    np.testing.assert_allclose(grads.grad_kernel, want_kernel, rtol=1e-12, atol=1e-12)


SPARSE_CASES = [
    dict(dilation=40, padding="same"),
    dict(dilation=(30, 2), strides=2, padding="same"),
    dict(dilation=60, padding=((70, 60), (40, 40))),
    dict(strides=(40, 1), padding="full", dilation=(25, 1)),
    dict(strides=33, padding=((0, 0), (90, 90))),
]


@pytest.mark.parametrize("options", SPARSE_CASES)
@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "symmetric", "edge", "wrap"])
def test_gathered_windows_equal_the_plain_loops(options, pad_mode):
    rng = np.random.default_rng(3)
    x, kernel = rng.standard_normal((2, 13, 11, 3)), rng.standard_normal((3, 2, 3, 2))
    grad_out = rng.standard_normal(convlayer.conv2d(x, kernel, **options).shape)
    args = convlayer._validate.conv_args(x, kernel, None, groups=1, flip=False, pad_mode=pad_mode,
                                         data_format="channels_last", **dict(dict(strides=1, dilation=1), **options))
    assert spread.wanted(args.geom, 8, convlayer.get_memory_budget())  # the case takes the gathered path
    got = convlayer.conv2d(x, kernel, pad_mode=pad_mode, **options)
    np.testing.assert_allclose(got, reference.conv2d(x, kernel, pad_mode=pad_mode, **options), rtol=1e-10, atol=1e-10)
    grads = convlayer.conv2d_backward(grad_out, x, kernel, pad_mode=pad_mode, **options)
    want = reference.conv2d_backward(grad_out, x, kernel, pad_mode=pad_mode, **options)
    np.testing.assert_allclose(grads.grad_x, want.grad_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads.grad_kernel, want.grad_kernel, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "symmetric", "edge", "wrap"])
@pytest.mark.parametrize("size", [1, 2, 5])
def test_gathered_sources_follow_numpy_pad(pad_mode, size):
    before, after, stride, dilation, taps, out = 23, 17, 3, 4, 3, 8
    padded = np.pad(np.arange(size), (before, after), mode=pad_mode, **(
        {"constant_values": -1} if pad_mode == "constant" else {}))
    expected = [padded[i * stride + a * dilation] for a in range(taps) for i in range(2, out)]
    got = spread.sources(size, before, stride, dilation, taps, 2, out, pad_mode)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("options", [dict(dilation=150, padding="full"), dict(dilation=100, padding=700),
                                     dict(dilation=150, padding="full", pad_mode="reflect")])
def test_a_window_wider_than_the_budget_is_gathered(options, work_memory):
    rng = np.random.default_rng(7)
    x, kernel = rng.standard_normal((16, 16, 3)), rng.standard_normal((3, 3, 3, 4))
    with convlayer.memory_budget(MiB):
        used, got = work_memory(lambda: convlayer.conv2d(x, kernel, **options))
    assert used <= MiB + 64 * 1024
    np.testing.assert_allclose(got, reference.conv2d(x, kernel, **options), rtol=1e-10, atol=1e-10)


def test_a_small_budget_bounds_the_gathered_chunks(work_memory):
    rng = np.random.default_rng(4)
    x, kernel = rng.standard_normal((2, 64, 64, 4)), rng.standard_normal((3, 3, 4, 4))
    expected = convlayer.conv2d(x, kernel, dilation=500)
    with convlayer.memory_budget(MiB // 4):
        used, got = work_memory(lambda: convlayer.conv2d(x, kernel, dilation=500))
    assert used <= MiB // 4 + 64 * 1024
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# 3. strides of 10^20 overflowed a memory offset.

@pytest.mark.parametrize("strides", [10**20, 2**63, (1, 2**64)])
def test_huge_strides_with_one_output_are_fine(strides):
    x = np.arange(16 * 16 * 3, dtype=np.float64).reshape(16, 16, 3)
    got = convlayer.conv2d(x, np.ones((3, 3, 3, 1)), strides=strides, padding="valid")
    want = reference.conv2d(x, np.ones((3, 3, 3, 1)), strides=1, padding="valid")[:1, :1]
    if strides == (1, 2**64):
        want = reference.conv2d(x, np.ones((3, 3, 3, 1)), padding="valid")[:, :1]
    np.testing.assert_allclose(got, want)
    grads = convlayer.conv2d_backward(np.ones_like(got), x, np.ones((3, 3, 3, 1)), strides=strides,
                                      padding="valid")
    assert grads.grad_x.sum() == 27 * got.size


# 5. pooling an empty image with padding gave values.

@pytest.mark.parametrize("pool", [convlayer.max_pool2d, convlayer.avg_pool2d])
@pytest.mark.parametrize("padding", [1, "full", ((1, 1), (0, 0))])
@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_pooling_an_empty_image_with_padding_is_refused(pool, padding, dtype):
    with pytest.raises(ValueError, match="leaves a window of padding only"):
        pool(np.zeros((0, 0, 1), dtype), 2, padding=padding)
    assert pool(np.zeros((0, 0, 1), dtype), 2, padding="same").shape == (0, 0, 1)


@pytest.mark.parametrize("pool", [convlayer.max_pool2d, convlayer.avg_pool2d])
def test_a_pool_far_larger_than_the_image_loops_over_the_image(pool):
    x = np.arange(12.0).reshape(3, 4, 1)
    got = pool(x, 2**40, strides=1, padding="same")
    assert got.shape == (3, 4, 1)
    # every window covers the whole image
    np.testing.assert_allclose(got, np.full((3, 4, 1), x.max() if pool is convlayer.max_pool2d else x.mean()))


# 6. messages that did not name the argument.

@pytest.mark.parametrize("options, match", [
    (dict(padding=10**20), r"padding .*with dilation \(1, 1\) gives an output .*larger than any array"),
    (dict(padding="full", dilation=2**62), r"padding 'full' with dilation \(4611686018427387904, 4611686018427387904\) gives"),
    (dict(flip=np.array([1, 0])), r"flip must be True or False; got \(1, 0\)"),
    (dict(flip="yes"), r"flip must be True or False; got 'yes'"),
    (dict(dilation=10**20, padding="valid"), r"kernel height 200000000000000000001 does not fit"),
])
def test_errors_name_the_argument(options, match):
    with pytest.raises(ValueError, match=match):
        convlayer.conv2d(np.ones((16, 16, 3)), np.ones((3, 3, 3, 1)), **options)


def test_flip_takes_numpy_booleans_and_zero_or_one():
    x, kernel = np.arange(25.0).reshape(5, 5), np.arange(9.0).reshape(3, 3)
    flipped = convlayer.conv2d(x, kernel[::-1, ::-1])
    for flag in (True, np.True_, 1):
        np.testing.assert_array_equal(convlayer.conv2d(x, kernel, flip=flag), flipped)


# 8. a Dask chunk of padding alone.

@pytest.mark.parametrize("shape, chunks, padding", [((2, 2, 1), 1, 1), ((4, 4, 1), 2, 2), ((3, 5, 2), 1, (3, 1))])
@pytest.mark.parametrize("pad_mode", ["constant", "edge"])
def test_dask_blocks_of_padding_alone(shape, chunks, padding, pad_mode):
    da = pytest.importorskip("dask.array")
    x = np.random.default_rng(5).standard_normal(shape)
    kernel = np.ones((1, 1, shape[2], 1))
    got = convlayer.conv2d(da.from_array(x, chunks=chunks), kernel, padding=padding, pad_mode=pad_mode)
    np.testing.assert_allclose(got.compute(), convlayer.conv2d(x, kernel, padding=padding, pad_mode=pad_mode),
                               rtol=1e-12)


@pytest.mark.parametrize("options", SPARSE_CASES + [dict(dilation=10**20)])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "edge", "wrap"])
def test_dask_gathers_sparse_windows_too(options, pad_mode):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(6)
    x, kernel = rng.standard_normal((2, 13, 11, 3)), rng.standard_normal((3, 2, 3, 2))
    lazy = convlayer.conv2d(da.from_array(x, chunks=(1, 5, 4, 3)), kernel, [0.5, -1.0], pad_mode=pad_mode, **options)
    np.testing.assert_allclose(lazy.compute(), convlayer.conv2d(x, kernel, [0.5, -1.0], pad_mode=pad_mode, **options),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel_shape, dilation", [((2, 1, 3, 2), 2**62), ((2, 1, 3, 2), (2**62, 1)),
                                                    ((1, 1, 3, 2), 10**30)])
def test_a_dilation_along_a_one_tap_axis_changes_nothing(kernel_shape, dilation):
    rng = np.random.default_rng(8)
    x, kernel = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal(kernel_shape)
    got = convlayer.conv2d(x, kernel, dilation=dilation)
    # 'same' centres the window: two taps 2^62 apart both land 2^61 rows away, in the zeros
    want = np.zeros(got.shape) if kernel_shape[0] == 2 else convlayer.conv2d(x, kernel)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_kernel_name_with_a_control_character_is_shown_escaped(tmp_path, capsys):
    from PIL import Image

    from convlayer.cli.main import main

    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    assert main(["filter", str(tmp_path / "tiny.png"), "-k", "edge\r", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\r" not in err and "'edge\\r'" in err
