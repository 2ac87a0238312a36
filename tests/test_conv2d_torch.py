"""conv2d against PyTorch's ``torch.nn.functional.conv2d``.

The oracle is written from SPEC.md, not from convlayer: padding words become amounts
here (TensorFlow's SAME rule, JAX's SAME_LOWER, 'full', ints, pairs, explicit pairs),
the input is padded with ``numpy.pad`` in the requested mode, and an unpadded torch
convolution (which is cross-correlation) does the rest. Layouts are transposed inside
the tests: convlayer is channels-last (NHWC input, HWIO kernel), torch is NCHW / OIHW.

Tolerances. float64: rtol = atol = 1e-9. float32: the oracle runs in float64 on the
float32 values, and the error bound is ``1e-4 * max(sum |x| |k| + |b|)`` over the output.
Direct float32 summation of n <= 5 * 5 * 8 products errs by at most about
n * 6e-8 * sum |x| |k| ~ 1.2e-5 of that sum; FFT or Winograd algorithms spread their error
over the whole output, so the bound uses the largest such sum, with headroom. A wrong
tap, a shifted window or a lost bias is off by O(1) of that sum and still fails.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import convlayer  # noqa: E402

torch.set_num_threads(1)

PAD_MODES = ["constant", "reflect", "symmetric", "edge", "wrap", "zeros", "replicate", "circular"]
NUMPY_MODE = {
    "constant": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "edge": "edge",
    "wrap": "wrap",
    "zeros": "constant",
    "replicate": "edge",
    "circular": "wrap",
}
PADDING_WORDS = ["same", "same_lower", "valid", "full"]


# ----------------------------------------------------------------------------- oracle


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _pads(size, f, stride, dilation, padding, axis):
    """(before, after) padding on one axis, straight from SPEC.md."""
    span = (f - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return span - 1, span - 1
    if padding in ("same", "same_lower"):
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        small, big = total // 2, total - total // 2
        return (small, big) if padding == "same" else (big, small)
    if isinstance(padding, int):
        return padding, padding
    p = padding[axis]
    return (p, p) if isinstance(p, int) else tuple(p)


def torch_oracle(x, kernel, bias, *, strides=1, padding="same", dilation=1, groups=1,
                 flip=False, pad_mode="constant"):
    """Expected conv2d and the bound sum |x| |k| + |b|, in torch layout, float64.

    x is (N, C, H, W), kernel (K, C/groups, Fh, Fw); returns two (N, K, H', W') arrays.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    sh, sw = _pair(strides)
    dh, dw = _pair(dilation)
    fh, fw = kernel.shape[2:]
    top, bottom = _pads(x.shape[2], fh, sh, dh, padding, 0)
    left, right = _pads(x.shape[3], fw, sw, dw, padding, 1)
    x_padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=NUMPY_MODE[pad_mode])
    if flip:
        kernel = kernel[:, :, ::-1, ::-1]

    def run(a, k):
        return F.conv2d(  # copies: torch refuses negative numpy strides
            torch.from_numpy(np.array(a, order="C", copy=True)),
            torch.from_numpy(np.array(k, order="C", copy=True)),
            stride=(sh, sw),
            dilation=(dh, dw),
            groups=groups,
        ).numpy()

    expected = run(x_padded, kernel)
    bound = run(np.abs(x_padded), np.abs(kernel))
    if bias is not None:
        b = np.reshape(np.asarray(bias, dtype=np.float64), (-1, 1, 1))
        expected = expected + b
        bound = bound + np.abs(b)
    return expected, bound


def nhwc_oracle(x, kernel, bias, **kwargs):
    """torch_oracle for channels-last x (N, H, W, C) and kernel (Fh, Fw, C/groups, K)."""
    expected, bound = torch_oracle(
        np.asarray(x).transpose(0, 3, 1, 2), np.asarray(kernel).transpose(3, 2, 0, 1), bias, **kwargs
    )
    return expected.transpose(0, 2, 3, 1), bound.transpose(0, 2, 3, 1)


def assert_matches(y, expected, bound, dtype):
    assert isinstance(y, np.ndarray)
    assert y.dtype == dtype, f"dtype {y.dtype}, expected {dtype}"
    assert y.shape == expected.shape, f"shape {y.shape}, expected {expected.shape}"
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9)
    else:
        atol = 1e-4 * max(float(bound.max(initial=0.0)), 1e-3)
        np.testing.assert_allclose(y, expected, rtol=0, atol=atol)


# ----------------------------------------------------------------------- random cases


def _random_padding(rng, fh_eff, fw_eff):
    """A padding in one of SPEC's forms and the smallest H, W that fit the kernel."""
    form = rng.choice(["same", "same_lower", "valid", "full", "int", "pair", "explicit"])
    if form in PADDING_WORDS:
        padding = str(form)
        if padding == "valid":
            return padding, fh_eff, fw_eff
        return padding, 1, 1
    if form == "int":
        p = int(rng.integers(0, 4))
        padding = p
        pads = ((p, p), (p, p))
    elif form == "pair":
        ph, pw = (int(v) for v in rng.integers(0, 4, size=2))
        padding = (ph, pw)
        pads = ((ph, ph), (pw, pw))
    else:
        t, b, l, r = (int(v) for v in rng.integers(0, 4, size=4))
        padding = ((t, b), (l, r))
        pads = padding
    min_h = max(1, fh_eff - sum(pads[0]))
    min_w = max(1, fw_eff - sum(pads[1]))
    return padding, min_h, min_w


def _int_or_pair(rng, low, high):
    a, b = (int(v) for v in rng.integers(low, high + 1, size=2))
    return a if rng.random() < 0.4 else (a, b)


def random_case(seed):
    """One random valid configuration: (x, kernel, bias, kwargs, expected, bound, dtype)."""
    rng = np.random.default_rng(seed)
    rank = int(rng.choice([4, 4, 4, 4, 3, 2]))
    kind = rng.choice(["plain", "plain", "grouped", "depthwise"]) if rank == 4 else "plain"
    if kind == "depthwise":
        c = int(rng.integers(1, 5))
        groups = c
        k = c * int(rng.integers(1, 3))
    elif kind == "grouped":
        groups = int(rng.integers(2, 4))
        c = groups * int(rng.integers(1, 3))
        k = groups * int(rng.integers(1, 3))
    else:
        groups = 1
        c = 1 if rank == 2 else int(rng.integers(1, 5))
        k = 1 if rank < 4 else int(rng.integers(1, 5))

    fh, fw = (int(v) for v in rng.integers(1, 6, size=2))
    strides = _int_or_pair(rng, 1, 3)
    dilation = _int_or_pair(rng, 1, 2)
    dh, dw = _pair(dilation)
    padding, min_h, min_w = _random_padding(rng, (fh - 1) * dh + 1, (fw - 1) * dw + 1)
    h = int(rng.integers(min_h, max(min_h, 20) + 1))
    w = int(rng.integers(min_w, max(min_w, 20) + 1))
    n = int(rng.integers(1, 4))
    batched = rank == 4 and rng.random() < 0.8 or rank == 3 and rng.random() < 0.5
    if not batched:
        n = 1
    dtype = np.float32 if rng.random() < 0.3 else np.float64
    pad_mode = str(rng.choice(PAD_MODES))
    flip = bool(rng.random() < 0.2)

    x4 = rng.standard_normal((n, h, w, c)).astype(dtype)
    k4 = rng.standard_normal((fh, fw, c // groups, k)).astype(dtype)
    bias_kind = rng.choice(["none", "scalar", "vector"] if rank == 4 else ["none", "scalar"])
    if bias_kind == "none":
        bias = None
    elif bias_kind == "scalar":
        bias = float(rng.standard_normal())
    else:
        bias = rng.standard_normal(k).astype(dtype)

    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                  flip=flip, pad_mode=pad_mode)
    expected, bound = nhwc_oracle(x4, k4, bias, **kwargs)
    if rank == 2:
        x, kernel = x4[0, :, :, 0], k4[:, :, 0, 0]
        expected, bound = expected[0, :, :, 0], bound[0, :, :, 0]
    elif rank == 3:
        kernel = k4[..., 0]
        expected, bound = expected[..., 0], bound[..., 0]
        x = x4 if batched else x4[0]
        if not batched:
            expected, bound = expected[0], bound[0]
    else:
        x, kernel = (x4, k4) if batched else (x4[0], k4)
        if not batched:
            expected, bound = expected[0], bound[0]
    if groups == 1 and rng.random() < 0.5:
        kwargs.pop("groups")  # also exercise the defaults
    if pad_mode == "constant" and rng.random() < 0.5:
        kwargs.pop("pad_mode")
    if not flip and rng.random() < 0.5:
        kwargs.pop("flip")
    return x, kernel, bias, kwargs, expected, bound, dtype


@pytest.mark.parametrize("seed", range(400))
def test_random_configuration_matches_torch(seed):
    x, kernel, bias, kwargs, expected, bound, dtype = random_case(seed)
    y = convlayer.conv2d(x, kernel, bias, **kwargs)
    assert_matches(y, expected, bound, dtype)


# ------------------------------------------------------------------- channels_first


@pytest.mark.parametrize("seed", range(60))
def test_channels_first_matches_torch_layout(seed):
    rng = np.random.default_rng(1000 + seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    c = groups * int(rng.integers(1, 3))
    k = groups * int(rng.integers(1, 3))
    if rng.random() < 0.25:  # depthwise
        groups = c
        k = c * int(rng.integers(1, 3))
    fh, fw = (int(v) for v in rng.integers(1, 6, size=2))
    strides = _int_or_pair(rng, 1, 3)
    dilation = _int_or_pair(rng, 1, 2)
    dh, dw = _pair(dilation)
    padding, min_h, min_w = _random_padding(rng, (fh - 1) * dh + 1, (fw - 1) * dw + 1)
    h = int(rng.integers(min_h, max(min_h, 16) + 1))
    w = int(rng.integers(min_w, max(min_w, 16) + 1))
    n = int(rng.integers(1, 4))
    dtype = np.float32 if rng.random() < 0.3 else np.float64
    pad_mode = str(rng.choice(PAD_MODES))
    flip = bool(rng.random() < 0.25)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    kernel = rng.standard_normal((k, c // groups, fh, fw)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype) if rng.random() < 0.5 else None
    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                  flip=flip, pad_mode=pad_mode)

    y = convlayer.conv2d(x, kernel, bias, data_format="channels_first", **kwargs)

    expected, bound = torch_oracle(x, kernel, bias, **kwargs)
    assert_matches(y, expected, bound, dtype)


def test_channels_first_equals_channels_last_transposed():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 9, 11, 4))
    kernel = rng.standard_normal((3, 2, 2, 6))
    bias = rng.standard_normal(6)
    kwargs = dict(strides=(2, 1), padding="same", dilation=(1, 2), groups=2)
    last = convlayer.conv2d(x, kernel, bias, **kwargs)
    first = convlayer.conv2d(x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), bias,
                             data_format="channels_first", **kwargs)
    np.testing.assert_allclose(first, last.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ pad modes

PADDING_FORMS = ["same", "same_lower", "full", 2, (1, 3), ((0, 2), (3, 1))]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("padding", PADDING_FORMS, ids=str)
@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pad_mode_is_numpy_pad_then_valid(pad_mode, padding, seed):
    rng = np.random.default_rng([seed, PAD_MODES.index(pad_mode), PADDING_FORMS.index(padding)])
    h, w = (int(v) for v in rng.integers(3, 9, size=2))
    fh, fw = (int(v) for v in rng.integers(2, 5, size=2))
    strides = _int_or_pair(rng, 1, 2)
    x = rng.standard_normal((2, h, w, 3))
    kernel = rng.standard_normal((fh, fw, 3, 2))
    y = convlayer.conv2d(x, kernel, strides=strides, padding=padding, pad_mode=pad_mode)
    expected, bound = nhwc_oracle(x, kernel, None, strides=strides, padding=padding, pad_mode=pad_mode)
    assert_matches(y, expected, bound, np.float64)


@pytest.mark.parametrize("pad_mode", ["reflect", "symmetric", "edge", "wrap"])
@pytest.mark.parametrize("h, w", [(1, 1), (1, 4), (2, 3)])
def test_pad_mode_wider_than_the_image(pad_mode, h, w):
    # numpy.pad reflects or wraps repeatedly when the padding passes the image size.
    rng = np.random.default_rng([h, w])
    x = rng.standard_normal((1, h, w, 2))
    kernel = rng.standard_normal((5, 4, 2, 3))
    y = convlayer.conv2d(x, kernel, padding="full", pad_mode=pad_mode)
    expected, bound = nhwc_oracle(x, kernel, None, padding="full", pad_mode=pad_mode)
    assert_matches(y, expected, bound, np.float64)


@pytest.mark.parametrize("alias, name", [("zeros", "constant"), ("replicate", "edge"), ("circular", "wrap")])
def test_torch_pad_mode_aliases_equal_numpy_names(alias, name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 7, 3))
    kernel = rng.standard_normal((3, 4, 3, 2))
    a = convlayer.conv2d(x, kernel, padding="same", pad_mode=alias)
    b = convlayer.conv2d(x, kernel, padding="same", pad_mode=name)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- 'same' geometry


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("f", [1, 2, 3, 4, 5])
def test_same_output_size_is_ceil_size_over_stride(f, stride, dilation):
    rng = np.random.default_rng([f, stride, dilation])
    kernel = rng.standard_normal((f, f + 1 if f < 5 else f, 1, 2))
    for h in range(1, 13):
        w = 13 - h
        x = rng.standard_normal((1, h, w, 1))
        for padding in ("same", "same_lower"):
            y = convlayer.conv2d(x, kernel, strides=stride, padding=padding, dilation=dilation)
            assert y.shape == (1, -(-h // stride), -(-w // stride), 2)
            expected, bound = nhwc_oracle(x, kernel, None, strides=stride, padding=padding,
                                          dilation=dilation)
            assert_matches(y, expected, bound, np.float64)


# ------------------------------------------------- larger shapes (algorithm choice)

LARGE = [
    # n, h, w, c, fh, fw, k, strides, padding, dilation, groups
    (2, 32, 32, 16, 3, 3, 32, 1, "same", 1, 1),
    (1, 64, 64, 3, 11, 11, 4, 1, "same", 1, 1),
    (1, 48, 40, 4, 7, 5, 6, 1, "full", 1, 1),
    (2, 28, 28, 32, 3, 3, 32, 1, "same", 1, 32),
    (2, 20, 20, 16, 5, 5, 32, 2, "same", 1, 16),
    (2, 30, 34, 8, 1, 1, 16, 1, "valid", 1, 1),
    (2, 33, 31, 8, 1, 1, 8, 2, "same", 1, 1),
    (64, 8, 8, 3, 3, 3, 4, 2, "same", 1, 1),
    (1, 40, 40, 6, 5, 5, 6, 2, "same", 2, 3),
    (1, 37, 29, 8, 4, 4, 8, 1, "same", 1, 1),
    (1, 16, 16, 256, 3, 3, 8, 1, "valid", 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", LARGE, ids=lambda c: "x".join(map(str, c)))
def test_larger_shapes_match_torch(case, dtype):
    n, h, w, c, fh, fw, k, strides, padding, dilation, groups = case
    rng = np.random.default_rng(list(case[:7]))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    kernel = rng.standard_normal((fh, fw, c // groups, k)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype)
    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
    y = convlayer.conv2d(x, kernel, bias, **kwargs)
    expected, bound = nhwc_oracle(x, kernel, bias, **kwargs)
    assert_matches(y, expected, bound, dtype)


@pytest.mark.parametrize(
    "case, dtype",
    [((8, 128, 128, 16, 3, 3, 32), np.float32), ((1, 256, 256, 3, 15, 15, 8), np.float64)],
    ids=["batch-8x128x128x16-k3-f32", "256x256x3-k15-f64"],
)
def test_big_enough_to_chunk_or_pick_another_algorithm(case, dtype):
    n, h, w, c, fh, fw, k = case
    rng = np.random.default_rng(list(case))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    kernel = rng.standard_normal((fh, fw, c, k)).astype(dtype)
    y = convlayer.conv2d(x, kernel, padding="same")
    expected, bound = nhwc_oracle(x, kernel, None, padding="same")
    assert_matches(y, expected, bound, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_flipped_reflect_padded_matches_torch(dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 40, 36, 3)).astype(dtype)
    kernel = rng.standard_normal((9, 7, 3, 5)).astype(dtype)
    kwargs = dict(padding="same", flip=True, pad_mode="reflect")
    y = convlayer.conv2d(x, kernel, **kwargs)
    expected, bound = nhwc_oracle(x, kernel, None, **kwargs)
    assert_matches(y, expected, bound, dtype)


# ------------------------------------------------------------ memory layouts


def test_non_contiguous_input_views():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 20, 22, 8))
    x = base[::2, 1::2, ::-2, 1::3]  # strided, reversed, not contiguous
    kernel = np.asfortranarray(rng.standard_normal((3, 2, 3, 4)))
    assert not x.flags.c_contiguous and not kernel.flags.c_contiguous
    y = convlayer.conv2d(x, kernel, strides=(1, 2), padding="same")
    expected, bound = nhwc_oracle(x, kernel, None, strides=(1, 2), padding="same")
    assert_matches(y, expected, bound, np.float64)


def test_kernel_view_with_negative_strides():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 9, 10, 3))
    kernel = rng.standard_normal((3, 3, 3, 2))[::-1, :, :, ::-1]
    y = convlayer.conv2d(x, kernel, padding="valid")
    expected, bound = nhwc_oracle(x, kernel, None, padding="valid")
    assert_matches(y, expected, bound, np.float64)


def test_channels_first_non_contiguous():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 10, 12, 4)).transpose(0, 3, 1, 2)  # NCHW view of NHWC memory
    kernel = rng.standard_normal((3, 3, 4, 5)).transpose(3, 2, 0, 1)
    y = convlayer.conv2d(x, kernel, padding="same", strides=2, data_format="channels_first")
    expected, bound = torch_oracle(x, kernel, None, padding="same", strides=2)
    assert_matches(y, expected, bound, np.float64)
