"""conv2d_backward and relu_backward against PyTorch autograd, finite differences, the
plain-loop reference and closed forms.

The PyTorch oracle is written from SPEC.md, not from convlayer: padding words become amounts
here, the input is padded by ``torch.nn.functional.pad`` ('constant', 'reflect',
'replicate', 'circular'; 'symmetric', which torch lacks, by indexing with ``np.pad`` of the
indices), the flip is ``torch.flip``, and an unpadded ``F.conv2d`` does the rest, so autograd
differentiates through the padding too. Cases are drawn in torch's layout (NCHW input, OIHW
kernel) and converted to the form under test (channels last or first, batched or not,
kernel ranks 2, 3 and 4). Tolerance in float64: rtol = atol = 1e-9.
"""


import numpy as np
import pytest

import convlayer
from convlayer import Conv2DGrads, conv2d, conv2d_backward, reference, relu, relu_backward

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - torch is a test extra
    torch = None
else:
    torch.set_num_threads(1)

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

MODES = ["constant", "reflect", "symmetric", "edge", "wrap", "zeros", "replicate", "circular"]
NUMPY_MODE = {"zeros": "constant", "replicate": "edge", "circular": "wrap"}
TORCH_MODE = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
PADDINGS = ["same", "same_lower", "valid", "full", 0, 2, (1, 0), ((0, 2), (3, 1)), ((1, 0), (0, 2))]


# ----------------------------------------------------------------------------- cases


def _pads(size, f, stride, dilation, padding, axis):
    """(before, after) padding on one axis, straight from SPEC.md."""
    span = (f - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return span - 1, span - 1
    if padding in ("same", "same_lower"):
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
        small, big = total // 2, total - total // 2
        return (small, big) if padding == "same" else (big, small)
    if isinstance(padding, int):
        return padding, padding
    p = padding[axis]
    return (p, p) if isinstance(p, int) else tuple(p)


def _case(seed, rank=4):
    """A random convolution in torch's layout: arrays, keywords and the padding amounts.

    Images are at least 4 pixels and as tall as the dilated kernel, so every padding here
    is smaller than the image (torch's 'reflect' requires it).
    """
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 1, 2, 3])) if rank == 4 else 1
    c = groups * int(rng.integers(1, 3)) if rank > 2 else 1
    k = groups * int(rng.integers(1, 3)) if rank == 4 else 1
    if rank == 4 and rng.random() < 0.15:  # depthwise
        c = k = groups
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = PADDINGS[int(rng.integers(len(PADDINGS)))]
    h = max(4, (fh - 1) * dilation[0] + 1 + int(rng.integers(0, 6)))
    w = max(4, (fw - 1) * dilation[1] + 1 + int(rng.integers(0, 6)))
    batched = bool(rng.integers(2)) if rank > 2 else False
    n = int(rng.integers(1, 4)) if batched else 1
    pads = (_pads(h, fh, strides[0], dilation[0], padding, 0),
            _pads(w, fw, strides[1], dilation[1], padding, 1))
    out_h = (h + sum(pads[0]) - (fh - 1) * dilation[0] - 1) // strides[0] + 1
    out_w = (w + sum(pads[1]) - (fw - 1) * dilation[1] - 1) // strides[1] + 1
    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                  flip=bool(rng.integers(2)), pad_mode=MODES[int(rng.integers(len(MODES)))])
    return dict(
        x=rng.standard_normal((n, c, h, w)),
        kernel=rng.standard_normal((k, c // groups, fh, fw)),
        grad=rng.standard_normal((n, k, out_h, out_w)),
        kwargs=kwargs, pads=pads, rank=rank,
        channels_first=bool(rng.integers(2)), batched=batched,
    )


def _call_form(case, x, kernel, grad):
    """Convert torch-layout arrays into the form the case calls convlayer with."""
    first, rank = case["channels_first"], case["rank"]
    if rank == 2:
        return x[0, 0], kernel[0, 0], grad[0, 0]
    x = x if first else x.transpose(0, 2, 3, 1)
    if rank == 3:
        kernel, grad = (kernel[0] if first else kernel[0].transpose(1, 2, 0)), grad[:, 0]
    elif not first:
        kernel, grad = kernel.transpose(2, 3, 1, 0), grad.transpose(0, 2, 3, 1)
    if not case["batched"]:
        x, grad = x[0], grad[0]
    return x, kernel, grad


def _call(case):
    """(x, kernel, grad_out, keyword arguments) as passed to convlayer."""
    x, kernel, grad = _call_form(case, case["x"], case["kernel"], case["grad"])
    data_format = "channels_first" if case["channels_first"] else "channels_last"
    return x, kernel, grad, dict(case["kwargs"], data_format=data_format)


def torch_grads(case):
    """PyTorch autograd's gradients of sum(grad * conv2d(...)) for x, kernel and bias."""
    kwargs = case["kwargs"]
    x = torch.tensor(case["x"], requires_grad=True)
    kernel = torch.tensor(case["kernel"], requires_grad=True)
    bias = torch.zeros(case["kernel"].shape[0], dtype=torch.float64, requires_grad=True)
    (top, bottom), (left, right) = case["pads"]
    mode = NUMPY_MODE.get(kwargs["pad_mode"], kwargs["pad_mode"])
    if mode == "symmetric":  # torch has no such mode: gather with np.pad's index maps
        rows = np.pad(np.arange(x.shape[2]), (top, bottom), mode="symmetric")
        cols = np.pad(np.arange(x.shape[3]), (left, right), mode="symmetric")
        padded = x[:, :, torch.tensor(rows)][:, :, :, torch.tensor(cols)]
    else:
        padded = F.pad(x, (left, right, top, bottom), mode=TORCH_MODE[mode])
    weights = torch.flip(kernel, (2, 3)) if kwargs["flip"] else kernel
    out = F.conv2d(padded, weights, bias, stride=kwargs["strides"], dilation=kwargs["dilation"],
                   groups=kwargs["groups"])
    (out * torch.tensor(case["grad"])).sum().backward()
    grad_x, grad_kernel, _ = _call_form(case, x.grad.numpy(), kernel.grad.numpy(), case["grad"])
    return grad_x, grad_kernel, bias.grad.numpy()


def _assert_grads_equal(actual, expected, tol=1e-9):
    for name, a, e in zip(Conv2DGrads._fields, actual, expected):
        assert a.shape == e.shape, f"{name}: shape {a.shape}, expected {e.shape}"
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol, err_msg=name)


# ----------------------------------------------------------------------------- oracles


@needs_torch
@pytest.mark.parametrize("seed", range(300))
def test_matches_torch_autograd(seed):
    case = _case(seed)
    x, kernel, grad, kwargs = _call(case)
    _assert_grads_equal(conv2d_backward(grad, x, kernel, **kwargs), torch_grads(case))


@needs_torch
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("seed", range(40))
def test_single_filter_kernels_match_torch(seed, rank):
    case = _case(1000 + seed, rank=rank)
    x, kernel, grad, kwargs = _call(case)
    grads = conv2d_backward(grad, x, kernel, **kwargs)
    assert grads.grad_bias.shape == (1,)
    _assert_grads_equal(grads, torch_grads(case))


@pytest.mark.parametrize("seed", range(120))
def test_fast_path_equals_reference(seed):
    case = _case(2000 + seed, rank=(4, 4, 4, 3, 2)[seed % 5])
    x, kernel, grad, kwargs = _call(case)
    expected = reference.conv2d_backward(grad, x, kernel, **kwargs)
    _assert_grads_equal(conv2d_backward(grad, x, kernel, **kwargs), expected, tol=1e-12)


def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar function f at array (float64)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        step = np.zeros_like(array)
        step[index] = eps
        grad[index] = (f(array + step) - f(array - step)) / (2 * eps)
    return grad


FINITE_DIFFERENCE_CASES = [
    ((2, 5, 6, 2), (3, 3, 2, 3), dict()),
    ((1, 6, 5, 2), (2, 3, 2, 2), dict(strides=2, padding="same")),
    ((1, 6, 6, 2), (2, 2, 2, 2), dict(strides=(2, 3), padding="same_lower", dilation=(1, 2))),
    ((1, 5, 5, 4), (3, 3, 2, 4), dict(groups=2, padding="full")),
    ((1, 5, 5, 3), (3, 2, 1, 3), dict(groups=3, flip=True, padding=((0, 2), (1, 1)))),
    ((1, 4, 5, 2), (3, 3, 2, 2), dict(padding=((2, 1), (0, 3)), pad_mode="reflect")),
    ((1, 4, 5, 2), (3, 3, 2, 2), dict(padding=((2, 1), (0, 3)), pad_mode="symmetric")),
    ((1, 4, 5, 2), (3, 3, 2, 2), dict(padding=((2, 1), (0, 3)), pad_mode="edge", strides=2)),
    ((1, 4, 5, 2), (3, 3, 2, 2), dict(padding=((4, 1), (0, 6)), pad_mode="wrap", dilation=2)),
    ((2, 4, 5, 2), (2, 3, 2, 1), dict(pad_mode="reflect", flip=True)),
    ((6, 5), (3, 2), dict(padding="full", pad_mode="symmetric")),
    ((2, 5, 4, 3), (3, 3, 3), dict(strides=2, pad_mode="edge")),
    ((2, 2, 5, 4), (4, 1, 3, 3), dict(groups=2, data_format="channels_first", pad_mode="wrap")),
]


@pytest.mark.parametrize("x_shape, kernel_shape, kwargs", FINITE_DIFFERENCE_CASES)
def test_finite_differences(x_shape, kernel_shape, kwargs):
    rng = np.random.default_rng(len(x_shape) * 100 + sum(kernel_shape))
    x, kernel = rng.standard_normal(x_shape), rng.standard_normal(kernel_shape)
    k = kernel_shape[0 if kwargs.get("data_format") else -1] if len(kernel_shape) == 4 else 1
    bias = rng.standard_normal(k)
    g = rng.standard_normal(conv2d(x, kernel, **kwargs).shape)
    grads = conv2d_backward(g, x, kernel, **kwargs)
    b = bias if len(kernel_shape) == 4 else bias[0]
    num_x = numeric_grad(lambda v: np.sum(g * conv2d(v, kernel, b, **kwargs)), x)
    num_kernel = numeric_grad(lambda v: np.sum(g * conv2d(x, v, b, **kwargs)), kernel)
    num_bias = numeric_grad(lambda v: np.sum(g * conv2d(x, kernel, v if v.size > 1 else v[0], **kwargs)), bias)
    np.testing.assert_allclose(grads.grad_x, num_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads.grad_kernel, num_kernel, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads.grad_bias, num_bias, rtol=1e-6, atol=1e-8)


def test_reflect_padding_by_hand():
    # x = 1 2 3, kernel (1, 1), one reflected pixel on the left: padded 2 1 2 3, out 3 3 5.
    # Padded gradient 1 2 2 1; padded pixel 0 copies x[1], so grad_x = 2, 1 + 2, 1.
    x, kernel = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 1.0]])
    for backward in (conv2d_backward, reference.conv2d_backward):
        grads = backward(np.ones((1, 3)), x, kernel, padding=((0, 0), (1, 0)), pad_mode="reflect")
        np.testing.assert_array_equal(grads.grad_x, [[2.0, 3.0, 1.0]])
        np.testing.assert_array_equal(grads.grad_kernel, [[2 + 1 + 2, 1 + 2 + 3]])
        np.testing.assert_array_equal(grads.grad_bias, [3.0])


def test_ones_on_ones_valid():
    """Each kernel tap sees 5 * 5 pixels of ones; pixel (i, j) lies in as many windows as fit."""
    grads = conv2d_backward(np.ones((2, 5, 5, 4)), np.ones((2, 7, 7, 3)), np.ones((3, 3, 3, 4)),
                            padding="valid")
    np.testing.assert_array_equal(grads.grad_kernel, 2 * 5 * 5)
    np.testing.assert_array_equal(grads.grad_bias, 2 * 5 * 5)
    per_axis = np.array([1, 2, 3, 3, 3, 2, 1])
    np.testing.assert_array_equal(grads.grad_x[1, :, :, 0], 4 * np.outer(per_axis, per_axis))


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("budget", [1, 700, 5000])
def test_chunked_equals_unchunked(seed, budget):
    """Tiny budgets force blocks of single columns, rows and images: borders must add up."""
    case = _case(3000 + seed)
    x, kernel, grad, kwargs = _call(case)
    whole = conv2d_backward(grad, x, kernel, **kwargs)
    with convlayer.memory_budget(budget):
        _assert_grads_equal(conv2d_backward(grad, x, kernel, **kwargs), whole, tol=1e-12)


def test_channels_first_is_transposed_channels_last():
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((2, 9, 8, 4)), rng.standard_normal((3, 2, 2, 6))
    kwargs = dict(strides=2, groups=2, pad_mode="reflect", padding=((2, 1), (0, 1)))
    g = rng.standard_normal(conv2d(x, kernel, **kwargs).shape)
    last = conv2d_backward(g, x, kernel, **kwargs)
    first = conv2d_backward(g.transpose(0, 3, 1, 2), x.transpose(0, 3, 1, 2),
                            kernel.transpose(3, 2, 0, 1), data_format="channels_first", **kwargs)
    np.testing.assert_allclose(first.grad_x, last.grad_x.transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_allclose(first.grad_kernel, last.grad_kernel.transpose(3, 2, 0, 1), atol=1e-12)
    np.testing.assert_allclose(first.grad_bias, last.grad_bias, atol=1e-12)
    assert first.grad_x.flags.c_contiguous and first.grad_kernel.flags.c_contiguous


def test_flip_is_the_rotated_kernels_gradient_rotated():
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((6, 7, 3)), rng.standard_normal((2, 3, 3, 4))
    g = rng.standard_normal(conv2d(x, kernel, dilation=2).shape)
    flipped = conv2d_backward(g, x, kernel, flip=True, dilation=2)
    rotated = conv2d_backward(g, x, kernel[::-1, ::-1], dilation=2)
    np.testing.assert_allclose(flipped.grad_kernel, rotated.grad_kernel[::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(flipped.grad_x, rotated.grad_x, atol=1e-12)


def test_kernel_ranks_are_slices_of_rank_four():
    rng = np.random.default_rng(4)
    image, filters = rng.standard_normal((6, 5, 3)), rng.standard_normal((3, 3, 3, 1))
    g = rng.standard_normal((3, 3))
    four = conv2d_backward(g[..., None], image, filters, strides=2, pad_mode="symmetric")
    three = conv2d_backward(g, image, filters[..., 0], strides=2, pad_mode="symmetric")
    _assert_grads_equal(three, (four.grad_x, four.grad_kernel[..., 0], four.grad_bias), tol=1e-12)
    two = conv2d_backward(g, image[..., 0], filters[:, :, 0, 0], strides=2, pad_mode="symmetric")
    one_channel = conv2d_backward(g, image[..., :1], filters[:, :, :1, 0], strides=2, pad_mode="symmetric")
    _assert_grads_equal(two, (one_channel.grad_x[..., 0], one_channel.grad_kernel[..., 0],
                              one_channel.grad_bias), tol=1e-12)


@pytest.mark.parametrize(
    "x_dtype, k_dtype, g_dtype, expected",
    [
        (np.float32, np.float32, np.float32, np.float32),
        (np.float32, np.float32, np.float64, np.float32),
        (np.float64, np.float32, np.float32, np.float64),
        (np.uint8, np.float32, np.float64, np.float32),
        (np.int64, np.int64, np.int64, np.float64),
        (np.bool_, np.float32, np.float32, np.float32),
    ],
)
def test_result_dtype(x_dtype, k_dtype, g_dtype, expected):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2 if x_dtype is np.bool_ else 255, (2, 7, 6, 3)).astype(x_dtype)
    kernel = rng.integers(-3, 4, (3, 3, 3, 2)).astype(k_dtype)
    g = rng.integers(-3, 4, (2, 4, 3, 2)).astype(g_dtype)
    kwargs = dict(strides=2, pad_mode="edge")
    grads = conv2d_backward(g, x, kernel, **kwargs)
    for array in grads:
        assert array.dtype == np.dtype(expected)
    exact = conv2d_backward(g.astype(np.float64), x.astype(np.float64), kernel.astype(np.float64), **kwargs)
    _assert_grads_equal(grads, exact, tol=0)  # small integers: every sum is exact


def test_uint8_photo_gradient_is_float():
    x = np.full((1, 20, 20, 3), 255, np.uint8)
    grads = conv2d_backward(np.ones((1, 18, 18, 2), np.float32), x, np.ones((3, 3, 3, 2), np.float32),
                            padding="valid")
    assert grads.grad_x.dtype == np.float32 and grads.grad_x.shape == x.shape
    np.testing.assert_array_equal(grads.grad_kernel, 255 * 18 * 18)
    assert grads.grad_x.max() == 2 * 9


def test_inputs_are_not_modified_and_may_be_read_only():
    rng = np.random.default_rng(6)
    x, kernel, g = rng.standard_normal((1, 5, 5, 2)), rng.standard_normal((1, 1, 2, 2)), np.ones((1, 5, 5, 2))
    copies = [a.copy() for a in (x, kernel, g)]
    for a in (x, kernel, g):
        a.flags.writeable = False
    for budget in (1, 2**20):  # 1x1 kernel: the patch matrix is a view of x
        with convlayer.memory_budget(budget):
            grads = conv2d_backward(g, x, kernel, flip=True)
        for original, copy in zip((x, kernel, g), copies):
            np.testing.assert_array_equal(original, copy)
        np.testing.assert_allclose(grads.grad_kernel, np.einsum("nhwc,nhwk->ck", x, g)[None, None])


def test_lists_are_accepted():
    grads = conv2d_backward([[1.0, 1.0]], [[1.0, 2.0, 3.0]], [[1.0, 1.0]], padding="valid")
    assert type(grads.grad_x) is np.ndarray
    np.testing.assert_array_equal(grads.grad_x, [[1.0, 2.0, 1.0]])


def test_empty_inputs_give_zero_gradients():
    grads = conv2d_backward(np.zeros((0, 5, 5, 4)), np.zeros((0, 5, 5, 3)), np.ones((3, 3, 3, 4)))
    assert grads.grad_x.shape == (0, 5, 5, 3)
    np.testing.assert_array_equal(grads.grad_kernel, np.zeros((3, 3, 3, 4)))
    np.testing.assert_array_equal(grads.grad_bias, np.zeros(4))
    # zero height, but the padding alone fits the kernel: the output was the bias
    grads = conv2d_backward(np.ones((2, 4, 2)), np.zeros((0, 4, 1)), np.ones((3, 3, 1, 2)),
                            padding=((2, 2), (1, 1)))
    assert grads.grad_x.shape == (0, 4, 1)
    np.testing.assert_array_equal(grads.grad_kernel, 0)
    np.testing.assert_array_equal(grads.grad_bias, [8.0, 8.0])
    grads = conv2d_backward(np.ones((4, 4, 2)), np.zeros((4, 4, 0)), np.ones((3, 3, 0, 2)))
    assert grads.grad_x.shape == (4, 4, 0) and grads.grad_kernel.shape == (3, 3, 0, 2)
    assert conv2d_backward(np.ones((4, 4, 0)), np.ones((4, 4, 2)), np.ones((3, 3, 2, 0))).grad_bias.shape == (0,)


def test_nan_in_grad_out_reaches_only_its_window():
    g = np.zeros((9, 9))
    g[4, 4] = np.nan
    grads = conv2d_backward(g, np.ones((9, 9)), np.ones((3, 3)))
    assert np.isnan(grads.grad_x).sum() == 9
    assert np.isnan(grads.grad_kernel).all() and np.isnan(grads.grad_bias).all()


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(strides=2, padding=3, pad_mode="reflect"), dict(dilation=2),
     dict(padding=((40, 9), (30, 2)), pad_mode="symmetric", strides=3)],
)
def test_small_budget_bounds_work_memory(kwargs, work_memory):
    rng = np.random.default_rng(0)
    x = rng.random((2, 160, 160, 3), dtype=np.float32)
    kernel = rng.random((5, 5, 3, 8), dtype=np.float32)
    g = rng.random(conv2d(x, kernel, **kwargs).shape, dtype=np.float32)
    unchunked_patches = g.size // 8 * 5 * 5 * 3 * 4
    budget = 512 * 1024
    with convlayer.memory_budget(budget):
        used, grads = work_memory(lambda: conv2d_backward(g, x, kernel, **kwargs))
    assert used <= budget + 64 * 1024, f"{used / 2**20:.2f} MiB of work memory"
    assert used < unchunked_patches / 4
    _assert_grads_equal(grads, conv2d_backward(g, x, kernel, **kwargs), tol=1e-3)


# ----------------------------------------------------------------------------- errors


X, K = np.zeros((8, 8, 3)), np.zeros((3, 3, 3, 2))


@pytest.mark.parametrize(
    "grad_out, kwargs, error, match",
    [
        (np.zeros((8, 8)), dict(), ValueError,
         r"^grad_out must have conv2d's output shape \(8, 8, 2\) for x shape \(8, 8, 3\) and kernel "
         r"shape \(3, 3, 3, 2\); got grad_out shape \(8, 8\)$"),
        (np.zeros((8, 8, 2)), dict(strides=2), ValueError,
         r"output shape \(4, 4, 2\) .* got grad_out shape \(8, 8, 2\)$"),
        (np.zeros((8, 8, 2)), dict(data_format="channels_first"), ValueError,
         r"kernel has 3 input channels but x has 8"),
        (np.zeros((8, 8, 2), complex), dict(), TypeError, r"^grad_out must be real; got complex"),
        (np.full((8, 8, 2), "a"), dict(), TypeError, r"^grad_out must have a numeric"),
        (np.zeros((8, 8, 2)), dict(padding="smae"), ValueError, r"^padding must be .*; got 'smae'$"),
        (np.zeros((8, 8, 2)), dict(pad_mode="mirror"), ValueError, r"^pad_mode must be"),
    ],
)
def test_errors_name_the_argument(grad_out, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv2d_backward(grad_out, X, K, **kwargs)
    with pytest.raises(error, match=match):
        reference.conv2d_backward(grad_out, X, K, **kwargs)


def test_kernel_errors_are_conv2ds():
    with pytest.raises(ValueError, match=r"^kernel has 4 input channels but x has 3 \(kernel shape"):
        conv2d_backward(np.zeros((8, 8, 2)), X, np.zeros((3, 3, 4, 2)))


# ----------------------------------------------------------------------------- relu


def test_relu_backward_passes_gradient_where_x_is_positive():
    x = np.array([[-2.0, 0.0, 3.0], [np.nan, -0.0, 1e-300]])
    g = np.array([[5.0, 6.0, 7.0], [8.0, 9.0, np.nan]])
    np.testing.assert_array_equal(relu_backward(g, x), [[0.0, 0.0, 7.0], [0.0, 0.0, np.nan]])


def test_relu_backward_finite_differences():
    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    num = numeric_grad(lambda v: np.sum(g * relu(v)), x)
    np.testing.assert_allclose(relu_backward(g, x), num, rtol=1e-6, atol=1e-8)


@needs_torch
def test_relu_backward_matches_torch():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 6, 6, 3)).round(1)  # some exact zeros
    g = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    (torch.relu(xt) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(relu_backward(g, x), xt.grad.numpy())


@pytest.mark.parametrize(
    "x_dtype, g_dtype, expected",
    [(np.float32, np.float32, np.float32), (np.float32, np.float64, np.float32),
     (np.float64, np.float32, np.float64), (np.uint8, np.float32, np.float32),
     (np.int64, np.int64, np.float64)],
)
def test_relu_backward_dtype(x_dtype, g_dtype, expected):
    out = relu_backward(np.ones(4, g_dtype), np.array([0, 1, 2, 0]).astype(x_dtype))
    assert out.dtype == np.dtype(expected)
    np.testing.assert_array_equal(out, [0, 1, 1, 0])


def test_relu_backward_errors():
    with pytest.raises(ValueError, match=r"^grad_out must have x's shape \(2, 3\) \(relu's output\); "
                                         r"got grad_out shape \(3, 2\)$"):
        relu_backward(np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"^grad_out must be real"):
        relu_backward(np.zeros(2, complex), np.zeros(2))
    with pytest.raises(TypeError, match=r"^x must have a numeric"):
        relu_backward(np.zeros(2), np.array(["a", "b"]))


@pytest.mark.parametrize("compiled_loops", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("k", [3, 63, 64, 200])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_is_the_sum_within_a_run_of_roundings(k, dtype, compiled_loops):
    """grad_bias sums grad_out over images and pixels. NumPy: runs of BIAS_RUN rows in the
    dtype, a float64 total (from BIAS_ROWS_MIN_CHANNELS channels), float64 BLAS sums below;
    against the float64 sum, within BIAS_RUN + 2 roundings of sum |grad_out| (a sequential
    float32 sum of all 3 * 37 * 41 rows would be allowed 4,551). Compiled: float64 sums
    throughout (whole rows of BIAS_ROW items and a rest of pixels), so within one rounding
    to the dtype and 4,551 float64 ones."""
    from convlayer.algorithms import backward, compiled

    rng = np.random.default_rng(k)
    grad = (rng.standard_normal((3, 37, 41, k)) + 3).astype(dtype)  # same signs: no cancellation
    x, kernel = np.ones((3, 37, 41, 2), dtype), np.ones((1, 1, 2, k), dtype)
    with compiled.use_compiled(compiled_loops):
        got = conv2d_backward(grad, x, kernel, padding=0).grad_bias
    wide = grad.astype(np.float64).reshape(-1, k)
    roundings = 1 + wide.shape[0] * 2.0**-53 / np.finfo(dtype).eps if compiled_loops else backward.BIAS_RUN + 2
    bound = roundings * np.finfo(dtype).eps / 2 * np.abs(wide).sum(0)
    assert got.dtype == dtype
    np.testing.assert_array_less(np.abs(got - wide.sum(0)), bound)


@pytest.mark.parametrize("shape", [(3, 37, 41, 3), (3, 37, 41, 64), (3, 37, 41, 200), (2, 300, 300, 24)],
                         ids=["3 channels", "64", "200", "two threads"])
def test_compiled_bias_gradient_is_the_float64_sum_rounded_once(shape):
    """The compiled bias gradient sums in float64: for values whose float64 sum is exact
    (multiples of 2**-20 below 2**16, at most 2**29 in all) it is that sum rounded once to
    float32. Half the values are +-2**16, the rest 1 + 2**-20 or 2**-20: a float32 partial
    sum that holds a large one drops the small ones' last bits (the loop with its four rows
    added in float32 fails three of these four shapes). The last shape shares its rows
    between two threads."""
    from convlayer.algorithms import backward

    rng = np.random.default_rng(shape[-1])
    big = rng.choice([2.0**16, -(2.0**16)], size=shape)
    small = rng.choice([1 + 2.0**-20, 2.0**-20], size=shape)
    grad = np.where(rng.random(shape) < 0.5, big, small).astype(np.float32)
    exact = grad.astype(np.float64).reshape(-1, shape[-1]).sum(0)
    np.testing.assert_array_equal(backward.bias_gradient(grad, np.float32, 2**28), exact.astype(np.float32))
