"""Which algorithm ``auto`` takes, and why: the rules of :mod:`convlayer.algorithms.choose`.

The rules are tested through the decision functions (``choose.forward``, ``choose.backward``)
on shapes built from the thresholds themselves, so retuning a threshold moves the shapes
with it; what auto's choice must never change, the result beyond the tolerance, is tested
on the calls themselves. F32_TOL is test_algorithms.py's: direct summation of up to ~100
float32 products errs by less than 1e-5 of the largest sum of |products|, FFT and Winograd
too on these sizes. Every test runs with one thread (``one_thread``), where the thresholds
were measured; the rule that depends on the thread count is tested with two.
"""

import tracemalloc

import numpy as np
import pytest

import convlayer
from convlayer import _validate
from convlayer.algorithms import choose, compiled, parallel, ranges

F32_TOL = 1e-5
DEFAULTS = dict(strides=1, padding="same", dilation=1, groups=1, flip=False, pad_mode="constant",
                data_format="channels_last")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setattr(parallel, "thread_count", lambda: 1)


def _args(x, kernel, **options):
    return _validate.conv_args(x, kernel, None, **dict(DEFAULTS, **options))


def _auto_pick(x, kernel, **options):
    args = _args(x, kernel, **options)
    return choose.forward(args.x, args.kernel, args.geom).name


def _ones(*shape):
    return np.ones(shape, np.float32)


def _fft_size(h, w):
    """The smallest odd kernel size whose 'same' correlation of a (1, h, w, 1) image rule 2
    sends to FFT by its shape (:func:`choose.prefers_fft`)."""
    for size in range(1, min(h, w), 2):
        if choose.prefers_fft(_args(_ones(1, h, w, 1), _ones(size, size, 1, 1)).geom):
            return size
    raise AssertionError(f"no kernel size takes FFT on {h}x{w}")


# ------------------------------------------------------------------------ the contract

# Small versions of the benchmark suite: whatever auto picks, the result stays within the tolerance.
AUTO_CASES = [
    ((1, 256, 512, 3), (3, 3, 3, 2), {}),
    ((1, 512, 512, 1), (3, 3, 1, 1), {}),
    ((1, 64, 64, 3), (3, 3, 3, 2), {}),
    ((1, 48, 48, 1), (15, 15, 1, 1), {}),
    ((2, 14, 14, 64), (3, 3, 64, 64), {}),
    ((2, 12, 12, 32), (1, 1, 32, 8), {"padding": "valid"}),
    ((2, 30, 30, 3), (7, 7, 3, 8), {"strides": 2}),
    ((2, 20, 20, 8), (3, 3, 1, 8), {"groups": 8}),
    ((2, 20, 20, 4), (3, 3, 1, 8), {"groups": 4, "strides": 2}),
    ((16, 8, 8, 1), (3, 3, 1, 16), {}),
]


@pytest.mark.parametrize("x_shape, kernel_shape, options", AUTO_CASES)
def test_auto_never_changes_a_result_beyond_the_tolerance(x_shape, kernel_shape, options):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(kernel_shape).astype(np.float32)
    auto = convlayer.conv2d(x, kernel, **options)
    im2col = convlayer.conv2d(x, kernel, algorithm="im2col", **options)
    bound = convlayer.conv2d(np.abs(x), np.abs(kernel), algorithm="im2col", **options)
    np.testing.assert_allclose(auto, im2col, rtol=0, atol=F32_TOL * bound.max())
    x64, kernel64 = x.astype(np.float64), kernel.astype(np.float64)
    np.testing.assert_allclose(convlayer.conv2d(x64, kernel64, **options),
                               convlayer.conv2d(x64, kernel64, algorithm="im2col", **options),
                               rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- the rules


def test_depthwise_takes_groups_equal_to_channels():
    assert _auto_pick(_ones(2, 20, 20, 8), _ones(3, 3, 1, 8), groups=8) == "depthwise"
    assert _auto_pick(_ones(2, 20, 20, 4), _ones(3, 3, 1, 8), groups=4, strides=2) == "depthwise"
    assert _auto_pick(_ones(2, 20, 20, 4), _ones(3, 3, 2, 8), groups=2) != "depthwise"


def test_grouped_takes_few_channels_a_group():
    most = choose.GROUPED_MAX_CHANNELS
    assert _auto_pick(_ones(2, 20, 20, 4), _ones(3, 3, 2, 8), groups=2) == "grouped"
    assert _auto_pick(_ones(1, 12, 12, 104), _ones(3, 3, 8, 104), groups=13, strides=2) == "grouped"
    assert _auto_pick(_ones(1, 6, 6, 2 * most), _ones(1, 1, most, 4), groups=2) == "grouped"
    assert _auto_pick(_ones(1, 6, 6, 2 * most + 2), _ones(1, 1, most + 1, 4), groups=2) == "im2col"
    assert _auto_pick(_ones(1, 6, 6, 8), _ones(3, 3, 8, 8)) != "grouped"  # groups=1


def test_grouped_steps_aside_when_its_loops_cannot_run():
    x, kernel = _ones(1, 12, 12, 16), _ones(3, 3, 4, 16)
    with compiled.use_compiled(False):
        assert _auto_pick(x, kernel, groups=4) == "im2col"
    assert _auto_pick(x.astype(np.float16), kernel, groups=4) == "im2col"  # Numba reads no float16
    with convlayer.memory_budget(1024):  # one output row's patches per thread pass it
        assert _auto_pick(x, kernel, groups=4) == "im2col"


def test_shift_takes_few_channels_and_many_output_values():
    # one image row, two filters: 2 * width output values
    channels, width = choose.SHIFT_MAX_CHANNELS, -(-choose.SHIFT_MIN_OUTPUTS // 2)
    kernel = _ones(3, 3, channels, 2)
    assert _auto_pick(_ones(1, 1, width, channels), kernel) == "shift"
    assert _auto_pick(_ones(1, 1, (choose.SHIFT_MIN_OUTPUTS - 1) // 2, channels), kernel) == "im2col"
    assert _auto_pick(_ones(1, 1, width, channels + 1), _ones(3, 3, channels + 1, 2)) == "im2col"
    assert _auto_pick(_ones(1, 1, 2 * width, channels), kernel, strides=(1, 2)) == "im2col"


def test_shift_leaves_many_filters_to_a_gemm():
    # VGG's first layer (3 -> 64), and 5x5 kernels on each side of SHIFT_MAX_PRODUCTS
    assert _auto_pick(_ones(1, 224, 224, 3), _ones(3, 3, 3, 64)) == "im2col"
    assert _auto_pick(_ones(1, 224, 224, 3), _ones(5, 5, 3, 8)) == "shift"  # 600 per pixel
    assert _auto_pick(_ones(1, 224, 224, 4), _ones(5, 5, 4, 8)) == "im2col"  # 800
    assert _auto_pick(_ones(1, 512, 512, 3), _ones(3, 3, 3, choose.SHIFT_MAX_FILTERS)) == "shift"
    assert _auto_pick(_ones(1, 512, 512, 3), _ones(3, 3, 3, choose.SHIFT_MAX_FILTERS + 1)) == "im2col"


def test_winograd_takes_3x3_stride_1_with_channels_enough_in_and_out():
    c = choose.WINOGRAD_MIN_CHANNELS
    assert _auto_pick(_ones(2, 14, 14, c), _ones(3, 3, c, c)) == "winograd"
    assert _auto_pick(_ones(2, 14, 14, c - 1), _ones(3, 3, c - 1, c)) != "winograd"
    assert _auto_pick(_ones(2, 14, 14, c), _ones(3, 3, c, c - 1)) != "winograd"
    assert _auto_pick(_ones(2, 14, 14, c), _ones(3, 3, c, c), strides=2) != "winograd"
    assert _auto_pick(_ones(2, 14, 14, c), _ones(3, 3, c, c), dilation=2) != "winograd"
    size = choose.WINOGRAD_MIN_SIZE
    assert _auto_pick(_ones(1, size, size, c), _ones(3, 3, c, c)) == "winograd"
    assert _auto_pick(_ones(1, size - 1, size + 9, c), _ones(3, 3, c, c)) != "winograd"  # ResNet's 7x7 layers


def test_winograd_needs_tiles_enough_for_every_thread(monkeypatch):
    # With two threads its 2x2 output tiles are split between them: a square output of side
    # 2s has s * s tiles
    c = choose.WINOGRAD_MIN_CHANNELS
    monkeypatch.setattr(parallel, "thread_count", lambda: 2)
    side = 2 * int(np.ceil(np.sqrt(2 * choose.WINOGRAD_MIN_TILES_PER_THREAD)))
    assert _auto_pick(_ones(1, side, side, c), _ones(3, 3, c, c)) == "winograd"
    assert _auto_pick(_ones(1, side - 4, side - 4, c), _ones(3, 3, c, c)) == "im2col"
    assert _auto_pick(_ones(8, side // 2, side // 2, c), _ones(3, 3, c, c)) == "winograd"
    assert _auto_pick(_ones(1, 14, 14, 4 * c), _ones(3, 3, 4 * c, 4 * c)) == "im2col"  # ResNet-18's layer3


def test_fft_takes_large_kernels_by_their_estimated_work():
    size = _fft_size(48, 48)
    assert size * size >= choose.FFT_MIN_TAPS
    assert _auto_pick(_ones(1, 48, 48, 1), _ones(size, size, 1, 1)) == "fft"
    assert _auto_pick(_ones(1, 48, 48, 1), _ones(size - 2, size - 2, 1, 1)) != "fft"
    many = int(np.sqrt(choose.FFT_MAX_CHANNELS)) + 1  # many * many channel pairs: too many
    assert _auto_pick(_ones(1, 48, 48, many), _ones(size, size, many, many)) != "fft"
    assert _auto_pick(_ones(1, 48, 48, 1), _ones(size, size, 1, 1), strides=2) != "fft"


def test_auto_choice_explains_itself():
    size = _fft_size(64, 64)
    args = _args(np.ones((1, 64, 64, 1)), np.ones((size, size, 1, 1)))
    name, why = choose.auto_choice(args.x, args.kernel, args.geom)
    assert name == "fft" and f"{size}x{size}" in why
    assert choose.forward(args.x, args.kernel, args.geom, "IM2COL") == ("im2col", "asked for")


def test_deciding_copies_nothing():
    x = _ones(1, 512, 512, 1)  # 1 MiB; a boolean mask would be 256 KiB
    size = _fft_size(512, 512)  # the rules that read values: finiteness and magnitudes
    args = _args(x, _ones(size, size, 1, 1))
    tracemalloc.start()
    try:
        choice = choose.forward(args.x, args.kernel, args.geom)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert choice.name == "fft"


# ------------------------------------------------------------- values that keep transforms away


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_stay_local_under_auto(bad):
    rng = np.random.default_rng(11)
    size = _fft_size(48, 48)
    half = size // 2
    x = rng.standard_normal((1, 48, 48, 1)).astype(np.float32)
    kernel = rng.standard_normal((size, size, 1, 1)).astype(np.float32)
    assert _auto_pick(x, kernel) == "fft"
    x[0, 30, 10, 0] = bad
    assert _auto_pick(x, kernel) != "fft"
    auto = convlayer.conv2d(x, kernel)
    direct = convlayer.conv2d(x, kernel, algorithm="im2col")
    reached = np.zeros((48, 48), bool)
    reached[30 - half : 30 + half + 1, 10 - half : 10 + half + 1] = True  # the outputs whose window holds the pixel
    assert not np.isfinite(auto[0, :, :, 0][reached]).any()
    assert np.isfinite(auto[0, :, :, 0][~reached]).all()
    finite = np.where(np.isfinite(x), x, 0)
    bound = convlayer.conv2d(np.abs(finite), np.abs(kernel), algorithm="im2col")[0, ~reached].max()
    np.testing.assert_allclose(auto[0, ~reached], direct[0, ~reached], rtol=0, atol=F32_TOL * bound)
    with np.errstate(invalid="ignore"):  # why auto checks: FFT spreads it over the image
        smeared = convlayer.conv2d(x, kernel, algorithm="fft")
    assert not np.isfinite(smeared[0, ~reached]).all()


def test_a_non_finite_kernel_keeps_auto_off_fft():
    size = _fft_size(48, 48)
    kernel = _ones(size, size, 1, 1)
    kernel[3, 3] = np.inf
    assert _auto_pick(_ones(1, 48, 48, 1), kernel) != "fft"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_keeps_auto_off_winograd(bad):
    rng = np.random.default_rng(17)
    c = choose.WINOGRAD_MIN_CHANNELS
    x = rng.standard_normal((1, 14, 14, c)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, c, c)).astype(np.float32)
    assert _auto_pick(x, kernel) == "winograd"
    x[0, 5, 6, 2] = bad
    assert _auto_pick(x, kernel) != "winograd"
    with np.errstate(invalid="ignore"):
        direct = convlayer.conv2d(x, kernel, algorithm="im2col")
        winograd = convlayer.conv2d(x, kernel, algorithm="winograd")
    np.testing.assert_array_equal(convlayer.conv2d(x, kernel), direct)  # inf stays inf, NaN NaN
    reached = np.zeros((14, 14), bool)
    reached[4:7, 5:8] = True  # the 3x3 outputs whose window holds the pixel
    assert not np.isfinite(direct[0][reached]).any() and np.isfinite(direct[0][~reached]).all()
    # Why auto checks: F(2x2, 3x3) keeps the pixel's reach, but its transforms subtract
    # infinities (inf - inf) and multiply them by transformed zeros: NaN where the sum is inf.
    np.testing.assert_array_equal(np.isfinite(winograd), np.isfinite(direct))
    if bad == np.inf:
        assert np.isnan(winograd).sum() > 0 == np.isnan(direct).sum()


def test_auto_keeps_winograd_away_from_values_its_transforms_would_overflow():
    # +2e38 two columns from -2e38: the sum cancels to 0 (finite), but Winograd's d1 - d3
    # overflows float32 (its 4x4 input tiles start at column -1, 1, 3, ...: 4 and 6 are the
    # second and fourth columns of one).
    c = choose.WINOGRAD_MIN_CHANNELS
    x = np.zeros((1, 14, 14, c), np.float32)
    x[0, 5, 4, 0], x[0, 5, 6, 0] = 2e38, -2e38
    kernel = np.full((3, 3, c, c), 1e-3, np.float32)
    assert ranges.finite(x) and _auto_pick(x, kernel) != "winograd"
    assert np.isfinite(convlayer.conv2d(x, kernel)).all()
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(convlayer.conv2d(x, kernel, algorithm="winograd")).all()
    assert _auto_pick(x / 1e30, kernel) == "winograd"


def test_auto_keeps_winograd_away_from_products_that_overflow():
    # Each factor is far below float32's largest value, but their products overflow: the
    # direct sums are inf, Winograd's output (and kernel gradient) transforms make inf - inf.
    c = choose.WINOGRAD_MIN_CHANNELS
    x = np.full((1, 14, 14, c), 1e20, np.float32)
    kernel = np.full((3, 3, c, c), 1e20, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert _auto_pick(x, kernel) != "winograd"
        got = convlayer.conv2d(x, kernel)
        assert np.isposinf(got).all()
        grad = np.full(got.shape, 1e20, np.float32)
        grads = convlayer.conv2d_backward(grad, x, kernel)
        assert np.isposinf(grads.grad_kernel).all()
        with_winograd = convlayer.conv2d_backward(grad, x, kernel, algorithm="winograd").grad_kernel
        assert np.isnan(with_winograd).any()
    assert _auto_pick(x / 1e17, kernel / 1e17) == "winograd"


# ---------------------------------------------------------------------------- backward


def _routes(x_shape, kernel_shape, algorithm="auto", grad_value=1.0, **options):
    options = dict(DEFAULTS, **options)
    x, kernel = _ones(*x_shape), _ones(*kernel_shape)
    grad = np.full(convlayer.conv2d(x, kernel, **options).shape, grad_value, np.float32)
    args, grad_nhwc = _validate.conv_grad_args(grad, x, kernel, **options)
    plan = choose.backward(args.x, args.kernel, args.geom, args.pad_mode, grad_nhwc, algorithm)
    return {"input": plan.input.name, "kernel": plan.kernel.name}


def test_backward_routes_follow_the_forward_rules():
    width = -(-choose.SHIFT_MIN_OUTPUTS // 4)  # two rows, two filters: 4 * width output values
    assert _routes((1, 2, width, 3), (3, 3, 3, 2)) == {"input": "shift", "kernel": "shift"}
    assert _routes((2, 16, 16, 8), (3, 3, 1, 8), groups=8) == {"input": "depthwise", "kernel": "depthwise"}
    # strided depthwise: x's gradient over grad_out stuffed with zeros, not im2col's one pass
    assert _routes((2, 16, 16, 8), (3, 3, 1, 8), groups=8, strides=2) == {"input": "depthwise", "kernel": "depthwise"}
    assert _routes((2, 16, 16, 8), (3, 3, 1, 8), groups=8, strides=2, pad_mode="reflect")["input"] == "im2col"
    assert _routes((2, 16, 16, 4), (3, 3, 1, 8), groups=4, strides=2)["input"] == "im2col"  # two filters each
    size = _fft_size(40, 40)
    assert _routes((1, 40, 40, 1), (size, size, 1, 1)) == {"input": "fft", "kernel": "fft"}
    # 3x3 with channels enough: Winograd both ways, unless grad_out (or x) is not finite
    c = choose.WINOGRAD_MIN_CHANNELS
    assert _routes((2, 14, 14, c), (3, 3, c, c)) == {"input": "winograd", "kernel": "winograd"}
    assert _routes((2, 14, 14, c), (3, 3, c, c), grad_value=np.inf)["kernel"] == "im2col"
    assert _routes((2, 14, 14, c - 1), (3, 3, c - 1, c - 1))["kernel"] == "im2col"


def test_backward_takes_one_im2col_pass_where_the_input_gradient_is_no_correlation():
    # a small layer: fewer output values than shift's threshold, and no kernel route of its own
    small = (choose.SHIFT_MIN_OUTPUTS - 1) // 4
    assert _routes((1, 2, small, 3), (3, 3, 3, 2)) == {"input": "im2col", "kernel": "im2col"}
    # strides, padding that copies pixels, padding wider than the kernel
    one_pass = {"input": "im2col", "kernel": "im2col"}
    assert _routes((1, 16, 16, 3), (3, 3, 3, 2), strides=2) == one_pass
    assert _routes((1, 16, 16, 3), (3, 3, 3, 2), pad_mode="reflect") == one_pass
    assert _routes((1, 16, 16, 3), (3, 3, 3, 2), padding=3) == one_pass
    # a depthwise layer with a channel multiplier: its transpose is grouped, not depthwise
    assert _routes((1, 16, 16, 4), (3, 3, 1, 8), "depthwise", groups=4) == {"input": "grouped",
                                                                            "kernel": "depthwise"}


def test_strided_grouped_layers_take_groupeds_one_pass():
    grouped_pass = {"input": "grouped", "kernel": "grouped"}
    assert _routes((2, 16, 16, 32), (3, 3, 4, 32), groups=8, strides=2) == grouped_pass
    assert _routes((1, 16, 16, 32), (3, 3, 4, 32), groups=8, pad_mode="reflect") == grouped_pass
    assert _routes((1, 16, 16, 32), (3, 3, 4, 32), "grouped", groups=8, strides=2) == grouped_pass
    assert _routes((1, 16, 16, 32), (3, 3, 4, 32), "im2col", groups=8, strides=2)["input"] == "im2col"
    # stride 1, zero padding: x's gradient is still a correlation of grad_out
    args = _args(_ones(1, 16, 16, 32), _ones(3, 3, 4, 32), groups=8)
    plan = choose.backward(args.x, args.kernel, args.geom, args.pad_mode, _ones(1, 16, 16, 32))
    assert plan.transposed is not None and (plan.input.name, plan.kernel.name) == ("grouped", "grouped")
    # more channels a group than grouped takes, or no compiled loops: im2col's pass
    most = choose.GROUPED_MAX_CHANNELS
    assert _routes((1, 8, 8, 4 * most), (3, 3, 2 * most, 8), groups=2, strides=2)["input"] == "im2col"
    with compiled.use_compiled(False):
        assert _routes((2, 16, 16, 32), (3, 3, 4, 32), groups=8, strides=2) == {"input": "im2col",
                                                                                "kernel": "im2col"}


def test_backward_checks_the_algorithm_asked_for():
    with pytest.raises(ValueError, match=r"algorithm='shift' cannot compute this convolution"):
        _routes((1, 8, 8, 4), (3, 3, 2, 4), "shift", groups=2)
