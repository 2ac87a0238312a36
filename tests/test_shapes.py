"""convlayer.shapes against closed-form formulas written independently here, and against the
shapes conv2d returns."""

import math

import numpy as np
import pytest

import convlayer
from convlayer import shapes

GRID = [
    (size, kernel, stride, dilation)
    for size in range(1, 14)
    for kernel in (1, 2, 3, 4, 5)
    for stride in (1, 2, 3)
    for dilation in (1, 2)
]


@pytest.mark.parametrize("size, kernel, stride, dilation", GRID)
def test_output_size_matches_the_ceil_formulas(size, kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    assert shapes.output_size(size, kernel, stride, "same", dilation) == math.ceil(size / stride)
    assert shapes.output_size(size, kernel, stride, "same_lower", dilation) == math.ceil(size / stride)
    if size >= span:
        expected = math.ceil((size - span + 1) / stride)
        assert shapes.output_size(size, kernel, stride, "valid", dilation) == expected
    full = math.floor((size + 2 * (span - 1) - span) / stride) + 1
    assert shapes.output_size(size, kernel, stride, "full", dilation) == full
    for p in range(3):
        if size + 2 * p >= span:
            assert shapes.output_size(size, kernel, stride, p, dilation) == (size + 2 * p - span) // stride + 1


@pytest.mark.parametrize("size, kernel, stride, dilation", GRID)
def test_same_padding_follows_tensorflow(size, kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + span - size, 0)
    before, after = shapes.pad_amounts(size, kernel, stride, "same", dilation)
    assert (before, after) == (total // 2, total - total // 2)
    assert shapes.pad_amounts(size, kernel, stride, "same_lower", dilation) == (after, before)
    # the padded input holds exactly the windows the output needs
    assert size + before + after >= (out - 1) * stride + span


def test_readme_worked_example():
    assert shapes.output_size(224, 7, stride=2, padding="same") == 112
    assert shapes.pad_amounts(224, 7, stride=2, padding="same") == (2, 3)
    assert shapes.pad_amounts(6, 3, stride=2, padding="same") == (0, 1)


def test_explicit_padding_uses_pytorch_formula():
    assert shapes.pad_amounts(10, 3, padding=2) == (2, 2)
    assert shapes.pad_amounts(10, 3, padding=(1, 4)) == (1, 4)
    assert shapes.output_size(10, 3, stride=2, padding=(1, 4)) == (10 + 5 - 3) // 2 + 1


def test_full_padding():
    assert shapes.pad_amounts(5, 3, padding="full") == (2, 2)
    assert shapes.pad_amounts(5, 3, padding="full", dilation=2) == (4, 4)
    assert shapes.output_size(5, 3, padding="full") == 7


def test_empty_input_has_empty_output_unless_padding_fits_kernel():
    assert shapes.output_size(0, 3, padding="same") == 0
    assert shapes.output_size(0, 3, stride=2, padding="same_lower") == 0
    assert shapes.output_size(0, 3, padding=(2, 2)) == 2
    assert shapes.output_size(0, 3, padding="full") == 2
    for padding in ("valid", (1, 1)):  # the padding alone does not fit the kernel
        with pytest.raises(ValueError, match=r"kernel size 3 does not fit the padded input size"):
            shapes.output_size(0, 3, padding=padding)


@pytest.mark.parametrize(
    "input_shape, kernel_shape, kwargs, expected",
    [
        ((224, 224, 3), (7, 7, 3, 64), dict(strides=2), (112, 112, 64)),
        ((8, 224, 224, 3), (7, 7, 3, 64), dict(strides=2, padding="valid"), (8, 109, 109, 64)),
        ((32, 32, 3), (3, 3, 3), dict(padding="valid"), (30, 30)),
        ((4, 32, 32, 3), (3, 3, 3), dict(), (4, 32, 32)),
        ((10, 12), (3, 3), dict(strides=(2, 3)), (5, 4)),
        ((10, 12, 4), (3, 3, 2, 6), dict(groups=2, dilation=2, padding="valid"), (6, 8, 6)),
        ((2, 4, 10, 12), (6, 2, 3, 3), dict(groups=2, data_format="channels_first"), (2, 6, 10, 12)),
        ((4, 10, 12), (4, 3, 3), dict(padding="valid", data_format="channels_first"), (8, 10)),
        ((10, 12, 3), (3, 3, 3, 2), dict(padding=((0, 1), (2, 3))), (9, 15, 2)),
    ],
)
def test_conv2d_output_shape(input_shape, kernel_shape, kwargs, expected):
    assert shapes.conv2d_output_shape(input_shape, kernel_shape, **kwargs) == expected


def test_num_params_shared_and_grouped():
    assert shapes.num_params(3, 3, 2) == (3 * 3 * 3 + 1) * 2
    assert shapes.num_params((7, 5), 3, 64) == (7 * 5 * 3 + 1) * 64
    assert shapes.num_params(3, 3, 2, bias=False) == 3 * 3 * 3 * 2
    assert shapes.num_params(3, 32, 64, groups=4) == (3 * 3 * 8 + 1) * 64
    assert shapes.num_params(1, 256, 64) == 257 * 64


def test_num_params_other_sharing_kinds():
    weights = 3 * 3 * 3 * 2
    assert shapes.num_params(3, 3, 2, sharing="unshared", output_size=(4, 5)) == (weights + 2) * 20
    assert shapes.num_params(3, 3, 2, bias=False, sharing="unshared", output_size=(4, 5)) == weights * 20
    assert shapes.num_params(3, 3, 2, sharing="regions", regions=(2, 3)) == (weights + 2) * 6
    assert shapes.num_params(3, 3, 2, sharing="tiled", tiles=2) == (weights + 2) * 4


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: shapes.output_size(5, 3, padding="smae"), ValueError, r"padding must be 'same'.*got 'smae'"),
        (lambda: shapes.output_size(5, 3, stride=0), ValueError, r"stride must be positive integers; got 0"),
        (lambda: shapes.output_size(5, 3, dilation=-1), ValueError, r"dilation must be positive"),
        (lambda: shapes.output_size(5, 0), ValueError, r"kernel must be positive integers; got 0"),
        (lambda: shapes.output_size(5, 3, stride=1.5), TypeError, r"stride must be positive integers; got 1.5"),
        (lambda: shapes.output_size(3, 5, padding="valid"), ValueError,
         r"kernel size 5 does not fit the padded input size 3 \(x size 3 \+ padding 0 \+ 0\)"),
        (lambda: shapes.pad_amounts(5, 3, padding=-1), ValueError, r"padding must be non-negative integers; got -1"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 4, 8)), ValueError,
         r"kernel has 4 input channels but x has 3 \(kernel shape \(3, 3, 4, 8\), x shape \(8, 8, 3\)\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 4), (3, 3, 2, 6), groups=3), ValueError,
         r"groups must divide both the input channels and the output channels; got groups=3"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3, 2), strides=(2, 0)), ValueError,
         r"strides must be positive integers; got \(2, 0\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3, 2), strides=(1, 2, 3)), ValueError,
         r"strides must be an int or a pair \(vertical, horizontal\); got \(1, 2, 3\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3, 2), padding=((1, 2), 3)), ValueError,
         r"padding must be .*; got \(\(1, 2\), 3\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3, 2), data_format="NCWH"), ValueError,
         r"data_format must be 'channels_last' or 'channels_first'; got 'NCWH'"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3)), ValueError,
         r"a 2-D kernel \(Fh, Fw\) takes a 2-D x \(H, W\); got x shape \(8, 8, 3\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3, 2, 1)), ValueError,
         r"kernel must have 2, 3 or 4 dimensions.*got kernel shape \(3, 3, 3, 2, 1\)"),
        (lambda: shapes.conv2d_output_shape((8, 3), (3, 3, 3)), ValueError,
         r"x must be \(H, W, C\) or \(N, H, W, C\) for a 3-D kernel; got x shape \(8, 3\)"),
        (lambda: shapes.conv2d_output_shape((8, 8, 3), (0, 3, 3, 2)), ValueError,
         r"kernel height and width must be positive; got kernel shape \(0, 3, 3, 2\)"),
        (lambda: shapes.conv2d_output_shape((4, 8, 3), (5, 3, 3, 2), padding="valid"), ValueError,
         r"kernel height 5 does not fit the padded input height 4"),
        (lambda: shapes.num_params(3, 3, 2, sharing="tied"), ValueError,
         r"sharing must be one of 'shared', 'tiled', 'regions', 'unshared'; got 'tied'"),
        (lambda: shapes.num_params(3, 3, 2, sharing="unshared"), ValueError,
         r"sharing='unshared' needs output_size=\(rows, cols\); got None"),
        (lambda: shapes.num_params(3, 3, 2, groups=2), ValueError,
         r"groups must divide both in_channels and out_channels; got groups=2, in_channels=3"),
    ],
)
def test_errors_name_argument_value_and_expectation(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_type_errors_are_also_value_errors():
    """A float stride is a wrong type and a wrong value: code catching either sees it."""
    with pytest.raises(ValueError):
        shapes.output_size(5, 3, stride=2.0)
    with pytest.raises(TypeError):
        shapes.conv2d_output_shape((8, 8, 3), (3, 3, 3), padding=1.5)


def test_defaults_and_keywords():
    assert shapes.output_size(10, 3) == 10
    assert shapes.pad_amounts(10, 3) == (1, 1)
    assert shapes.output_size(10, 3, padding="valid", dilation=2) == 6
    assert shapes.pad_amounts(10, 3, padding="full", dilation=2) == (4, 4)
    assert shapes.pad_amounts(5, 2, stride=1, padding="same") == (0, 1)
    assert shapes.pad_amounts(6, 1, stride=3, padding="same") == (0, 0)


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


# ----------------------------------------------------------------------------- pooling geometry


@pytest.mark.parametrize("size, pool, stride, pads, ceil, out", [
    (5, 2, 2, (0, 0), False, 2), (5, 2, 2, (0, 0), True, 3),  # ceil adds the 1-pixel window
    (6, 2, 3, (0, 0), True, 2),  # ceil((6 - 2) / 3) + 1 = 3, but the third starts at 6: dropped
    (4, 2, 2, (1, 1), True, 3),  # the third starts at 3, inside the input
    (4, 3, 2, (1, 1), True, 3), (1, 1, 5, (0, 0), True, 1),
])
def test_ceil_mode_lengths(size, pool, stride, pads, ceil, out):
    geom = shapes.pool_geometry((size, size, 1), pool, stride, (pads, pads), ceil_mode=ceil)
    assert (geom.out_h, geom.out_w) == (out, out)


def test_ceil_mode_is_pytorchs_formula_on_a_grid():
    for size in range(1, 12):
        for pool in range(1, 5):
            for stride in range(1, 4):
                for dilation in (1, 2):
                    for pad in range(0, pool // 2 + 1):  # torch: at most half the window
                        span = (pool - 1) * dilation + 1
                        if size + 2 * pad < span:
                            continue
                        out = math.ceil((size + 2 * pad - span) / stride) + 1
                        out -= (out - 1) * stride >= size + pad
                        call = lambda: shapes.pool_geometry(  # noqa: E731
                            (size, 1, 1), (pool, 1), (stride, 1), ((pad, pad), (0, 0)), dilation=(dilation, 1),
                            ceil_mode=True)
                        if not all(any(0 <= i * stride - pad + t * dilation < size for t in range(pool))
                                   for i in range(out)):  # PyTorch gives -inf there; SPEC refuses
                            with pytest.raises(ValueError, match="padding only"):
                                call()
                        else:
                            assert call().out_h == out, (size, pool, stride, dilation, pad)


def test_window_taps_count_real_and_padded_taps():
    assert shapes.window_taps(5, 3, 2, 1, (1, 1), 3) == [2, 3, 2]
    assert shapes.window_taps(5, 3, 2, 1, (1, 1), 3, include_pad=True) == [3, 3, 3]
    assert shapes.window_taps(4, 2, 2, 1, (0, 0), 3, include_pad=True) == [2, 2, 0]
    assert shapes.window_taps(5, 2, 1, 3, (0, 0), 2) == [2, 2]  # taps 0 and 3 apart
    assert shapes.window_taps(2, 2, 1, 3, (1, 1), 1) == [0]  # -1 and 2: both miss the image
    assert shapes.window_taps(3, 2**40, 1, 1, (2**39, 2**39), 1) == [3]


def test_adaptive_bins_are_pytorchs():
    for size in range(1, 15):
        for out in range(1, 10):
            bins = shapes.adaptive_bins(size, out)
            assert bins == tuple((math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out))
            assert bins[0][0] == 0 and bins[-1][1] == size and all(a < b for a, b in bins)


def test_adaptive_and_global_geometry():
    geom = shapes.adaptive_geometry((2, 3, 10, 7), (4, None), "channels_first")
    assert geom.output_shape == (2, 3, 4, 7) and geom.cols == tuple((j, j + 1) for j in range(7))
    assert shapes.global_geometry((5, 4, 3)).output_shape == (1, 1, 3)
    with pytest.raises(ValueError, match=r"output_size must be an int or a pair \(vertical, horizontal\); got \(1, 2, 3\)"):
        shapes.adaptive_geometry((5, 4, 3), (1, 2, 3))
