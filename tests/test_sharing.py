"""The weight-sharing spectrum: tiled, region-shared and locally-connected layers.

Oracles: plain loops written here from the definitions, PyTorch's unfold (a
locally-connected layer is unfold plus one product per pixel), finite differences, and the
bridges between the kinds (regions (1, 1) is conv2d, regions (H', W') is unshared, ...).
"""

import numpy as np
import pytest
import torch

import convlayer
from convlayer import conv2d, locally_connected2d, nn, region_conv2d, shapes, tiled_conv2d
from convlayer import locally_connected2d_backward, region_conv2d_backward, tiled_conv2d_backward
from convlayer.sharing import bank_index

torch.set_num_threads(1)
OPS = {"unshared": (locally_connected2d, locally_connected2d_backward),
       "regions": (region_conv2d, region_conv2d_backward),
       "tiled": (tiled_conv2d, tiled_conv2d_backward)}
PADDINGS = ["valid", "same", "same_lower", "full", 1, (0, 2), ((2, 0), (1, 3))]


def loops(x, kernel, bias, strides, padding, sharing):
    """Written from the definitions, independent of convlayer's code paths."""
    n, h, w, c = x.shape
    b_h, b_w, fh, fw, _, k = kernel.shape
    (top, bottom), (left, right) = shapes.resolve_padding((h, w), (fh, fw), strides, padding)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    out_h, out_w = (padded.shape[1] - fh) // sh + 1, (padded.shape[2] - fw) // sw + 1

    def bank(i, size, count):
        if sharing == "unshared":
            return i
        if sharing == "tiled":
            return i % count
        bounds = np.cumsum([len(p) for p in np.array_split(np.arange(size), count)])
        return int(np.searchsorted(bounds, i, side="right"))

    out = np.zeros((n, out_h, out_w, k))
    for i in range(out_h):
        for j in range(out_w):
            a, b = bank(i, out_h, b_h), bank(j, out_w, b_w)
            window = padded[:, i * sh : i * sh + fh, j * sw : j * sw + fw, :]
            out[:, i, j] = np.einsum("nhwc,hwck->nk", window, kernel[a, b])
            if bias is not None:
                out[:, i, j] += bias[a, b]
    return out


def _case(seed, sharing, extra=7, batch=3):
    """A random case whose kernel fits; ``extra`` bounds how much the image exceeds it."""
    rng = np.random.default_rng(seed)
    fh, fw = (int(v) for v in rng.integers(1, 4, 2))
    strides = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = PADDINGS[int(rng.integers(len(PADDINGS)))]
    h, w = fh + int(rng.integers(0, extra)), fw + int(rng.integers(0, extra))
    c, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, batch)), h, w, c))
    out_h, out_w = shapes.conv2d_output_shape(x.shape, (fh, fw, c, k), strides, padding)[1:3]
    if sharing == "unshared":
        banks = (out_h, out_w)
    elif sharing == "regions":
        banks = (int(rng.integers(1, out_h + 1)), int(rng.integers(1, out_w + 1)))
    else:
        banks = tuple(int(v) for v in rng.integers(1, 4, 2))
    kernel = rng.standard_normal(banks + (fh, fw, c, k))
    bias = rng.standard_normal(banks + (k,)) if rng.integers(2) else None
    return x, kernel, bias, dict(strides=strides, padding=padding)


@pytest.mark.parametrize("sharing", list(OPS))
@pytest.mark.parametrize("seed", range(40))
def test_forward_equals_loops(sharing, seed):
    x, kernel, bias, kwargs = _case(seed, sharing)
    expected = loops(x, kernel, bias, kwargs["strides"], kwargs["padding"], sharing)
    np.testing.assert_allclose(OPS[sharing][0](x, kernel, bias, **kwargs), expected, rtol=1e-9, atol=1e-9)
    reference = convlayer.reference.banked_conv2d(x, kernel, bias, sharing=sharing, **kwargs)
    np.testing.assert_allclose(reference, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sharing", list(OPS))
@pytest.mark.parametrize("seed", range(12))
def test_chunked_forward_and_backward_equal_unchunked(sharing, seed):
    x, kernel, bias, kwargs = _case(seed + 100, sharing)
    forward, backward = OPS[sharing]
    whole = forward(x, kernel, bias, **kwargs)
    grad = np.random.default_rng(seed).standard_normal(whole.shape)
    grads = backward(grad, x, kernel, **kwargs)
    with convlayer.memory_budget(400):
        np.testing.assert_allclose(forward(x, kernel, bias, **kwargs), whole, rtol=1e-12, atol=1e-12)
        for small, big in zip(backward(grad, x, kernel, **kwargs), grads):
            np.testing.assert_allclose(small, big, rtol=1e-12, atol=1e-12)


def _numeric_grad(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = f()
        array[index] = saved - eps
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("sharing", list(OPS))
@pytest.mark.parametrize("seed", range(4))
def test_gradients_against_finite_differences(sharing, seed):
    x, kernel, _, kwargs = _case(seed + 200, sharing, extra=3, batch=2)  # small: every entry is perturbed
    forward, backward = OPS[sharing]
    out = forward(x, kernel, None, **kwargs)
    bias = np.random.default_rng(seed).standard_normal(kernel.shape[:2] + kernel.shape[-1:])
    g = np.random.default_rng(seed + 1).standard_normal(out.shape)
    grads = backward(g, x, kernel, **kwargs)
    loss = lambda: float(np.sum(g * forward(x, kernel, bias, **kwargs)))  # noqa: E731
    np.testing.assert_allclose(grads.grad_x, _numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads.grad_kernel, _numeric_grad(loss, kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads.grad_bias, _numeric_grad(loss, bias), rtol=1e-6, atol=1e-7)


def _torch_locally_connected(x, kernel, bias, strides, padding):
    """unfold, then one product per output pixel, in PyTorch."""
    n, h, w, c = x.shape
    out_h, out_w, fh, fw, _, k = kernel.shape
    (top, bottom), (left, right) = shapes.resolve_padding((h, w), (fh, fw), strides, padding)
    nchw = torch.nn.functional.pad(x.permute(0, 3, 1, 2), (left, right, top, bottom))
    patches = torch.nn.functional.unfold(nchw, (fh, fw), stride=strides)  # (n, c*fh*fw, out_h*out_w)
    weights = kernel.permute(0, 1, 4, 2, 3, 5).reshape(out_h * out_w, c * fh * fw, k)
    out = torch.einsum("npl,lpk->nlk", patches, weights).reshape(n, out_h, out_w, k)
    return out + bias


@pytest.mark.parametrize("seed", range(25))
def test_locally_connected_against_torch_unfold_and_autograd(seed):
    x, kernel, bias, kwargs = _case(seed + 300, "unshared")
    bias = np.random.default_rng(seed).standard_normal(kernel.shape[:2] + kernel.shape[-1:])
    tx, tk, tb = (torch.tensor(a, requires_grad=True) for a in (x, kernel, bias))
    strides = kwargs["strides"]
    expected = _torch_locally_connected(tx, tk, tb, strides, kwargs["padding"])
    out = locally_connected2d(x, kernel, bias, **kwargs)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-9, atol=1e-9)
    g = np.random.default_rng(seed + 7).standard_normal(out.shape)
    expected.backward(torch.tensor(g))
    grads = locally_connected2d_backward(g, x, kernel, **kwargs)
    for mine, theirs in zip(grads, (tx, tk, tb)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("padding, strides", [("same", 1), ("valid", 2), (((1, 0), (2, 1)), 1), ("full", (2, 1))])
def test_bridges_between_the_kinds(padding, strides):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 9, 3))
    shared, shared_bias = rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(4)
    one_bank, one_bias = shared[None, None], shared_bias[None, None]
    kw = dict(strides=strides, padding=padding)
    expected = conv2d(x, shared, shared_bias, **kw)
    np.testing.assert_allclose(region_conv2d(x, one_bank, one_bias, **kw), expected, atol=1e-12)
    np.testing.assert_allclose(tiled_conv2d(x, one_bank, one_bias, **kw), expected, atol=1e-12)
    out_h, out_w = expected.shape[1:3]
    unshared = rng.standard_normal((out_h, out_w, 3, 2, 3, 4))
    unshared_bias = rng.standard_normal((out_h, out_w, 4))
    lc = locally_connected2d(x, unshared, unshared_bias, **kw)
    np.testing.assert_allclose(region_conv2d(x, unshared, unshared_bias, **kw), lc, atol=1e-12)
    np.testing.assert_allclose(tiled_conv2d(x, unshared, unshared_bias, **kw), lc, atol=1e-12)
    grad = rng.standard_normal(lc.shape)
    for backward in (region_conv2d_backward, tiled_conv2d_backward):
        for mine, theirs in zip(backward(grad, x, unshared, **kw), locally_connected2d_backward(grad, x, unshared, **kw)):
            np.testing.assert_allclose(mine, theirs, atol=1e-12)
    conv_grads = convlayer.conv2d_backward(grad, x, shared, **kw)
    region_grads = region_conv2d_backward(grad, x, one_bank, **kw)
    np.testing.assert_allclose(region_grads.grad_kernel[0, 0], conv_grads.grad_kernel, atol=1e-12)
    np.testing.assert_allclose(region_grads.grad_x, conv_grads.grad_x, atol=1e-12)


def test_regions_follow_array_split_and_tiles_repeat():
    np.testing.assert_array_equal(bank_index(7, "regions", 3), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(bank_index(7, "tiled", 3), [0, 1, 2, 0, 1, 2, 0])
    x = np.ones((1, 7, 1))
    kernel = np.arange(3.0).reshape(1, 3, 1, 1, 1, 1)
    np.testing.assert_array_equal(region_conv2d(x, kernel)[0, :, 0], [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(tiled_conv2d(x, kernel)[0, :, 0], [0, 1, 2, 0, 1, 2, 0])


def test_dtype_and_unbatched_input():
    x = np.ones((5, 5, 2), np.uint8)
    kernel = np.ones((2, 2, 3, 3, 2, 1), np.float32)
    out = region_conv2d(x, kernel)
    assert out.shape == (5, 5, 1) and out.dtype == np.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: locally_connected2d(np.ones((6, 6, 1)), np.ones((3, 3, 3, 3, 1, 2))),
         r"kernel has an output grid of \(3, 3\) but the output is \(4, 4\) .*\(kernel shape \(3, 3, 3, 3, 1, 2\), x shape \(6, 6, 1\)\)"),
        (lambda: region_conv2d(np.ones((4, 4, 1)), np.ones((5, 1, 3, 3, 1, 2))),
         r"kernel has \(5, 1\) regions but the output is only \(4, 4\) pixels \(kernel shape"),
        (lambda: tiled_conv2d(np.ones((4, 4, 1)), np.ones((0, 2, 3, 3, 1, 2))),
         r"kernel's tiles \(T_h, T_w\) must be positive; got \(0, 2\) \(kernel shape \(0, 2, 3, 3, 1, 2\)"),
        (lambda: tiled_conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 2))),
         r"kernel must be \(B_h, B_w, Fh, Fw, C, K\).*got kernel shape \(3, 3, 1, 2\)"),
        (lambda: tiled_conv2d(np.ones((4, 4, 1)), np.ones((1, 1, 3, 3, 2, 2))),
         r"kernel has 2 input channels but x has 1"),
        (lambda: region_conv2d(np.ones((4, 4, 1)), np.ones((2, 2, 3, 3, 1, 2)), np.ones(2)),
         r"bias must be None, a scalar or have shape \(2, 2, 2\); got bias shape \(2,\)"),
        (lambda: locally_connected2d(np.ones(4), np.ones((1, 1, 1, 1, 1, 1))),
         r"x must be \(H, W, C\) or \(N, H, W, C\); got x shape \(4,\)"),
        (lambda: region_conv2d_backward(np.ones((4, 4, 3)), np.ones((4, 4, 1)), np.ones((1, 1, 3, 3, 1, 2))),
         r"grad_out must have the output's shape \(4, 4, 2\); got grad_out shape \(4, 4, 3\)"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


LAYERS = {
    "shared": lambda: nn.Conv2D(2, 3, 3, strides=2, seed=0),
    "tiled": lambda: nn.TiledConv2D(2, 3, 3, tiles=(2, 3), strides=2, seed=0),
    "regions": lambda: nn.RegionConv2D(2, 3, 3, regions=(2, 2), strides=2, seed=0),
    "unshared": lambda: nn.LocallyConnected2D(2, 3, (3, 2), input_size=(7, 6), strides=2, seed=0),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layers_gradients_against_finite_differences(kind):
    layer = LAYERS[kind]()
    rng = np.random.default_rng(1)
    for name in layer.params:
        layer.params[name] = rng.standard_normal(layer.params[name].shape)
    x = rng.standard_normal((2, 7, 6, 2))
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)
    grad_x = layer.backward(g)
    loss = lambda: float(np.sum(g * layer.forward(x)))  # noqa: E731
    np.testing.assert_allclose(grad_x, _numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    for name, param in layer.params.items():
        np.testing.assert_allclose(layer.grads[name], _numeric_grad(loss, param), rtol=1e-6, atol=1e-7)


def test_layer_parameter_counts_and_summary():
    kinds = {kind: make() for kind, make in LAYERS.items()}
    weights = 3 * 3 * 2 * 3
    assert kinds["shared"].num_params == weights + 3
    assert kinds["tiled"].num_params == (weights + 3) * 6
    assert kinds["regions"].num_params == (weights + 3) * 4
    assert kinds["unshared"].num_params == (3 * 2 * 2 * 3 + 3) * 3 * 3  # valid, stride 2: a 3 x 3 grid
    for layer in kinds.values():
        model = nn.Sequential([layer, nn.ReLU(), nn.Flatten()],
                                        input_shape=(7, 6, 2))
        total = sum(p.size for p in layer.params.values())
        assert layer.num_params == total
        assert model.summary(show=False).endswith(f"Total params: {total:,}")


def test_layer_errors():
    with pytest.raises(ValueError, match=r"sharing='unshared' needs input_size=\(H, W\)"):
        nn.Conv2D(1, 2, 3, sharing="unshared")
    with pytest.raises(ValueError, match=r"sharing='tiled' needs tiles=\(rows, cols\); got None"):
        nn.Conv2D(1, 2, 3, sharing="tiled")
    with pytest.raises(ValueError, match=r"takes no dilation or groups"):
        nn.Conv2D(2, 2, 3, groups=2, sharing="regions", banks=2)
    with pytest.raises(ValueError, match=r"built for inputs of size \(7, 6\); got input shape \(8, 8, 2\)"):
        LAYERS["unshared"]().output_shape((8, 8, 2))
