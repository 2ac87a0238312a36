"""convlayer.nn against independent oracles: finite differences, PyTorch, hand counts.

- Every layer's ``backward`` (input gradient and each entry of ``grads``) equals central
  finite differences in float64 of ``sum(g * layer.forward(x))``.
- ``Sequential.backward`` equals PyTorch autograd on the same model built in torch with the
  same weights (layouts transposed here: NHWC/HWIO to NCHW/OIHW; TF 'same' padding written out
  as explicit, possibly asymmetric, amounts from SPEC.md's formula).
- The loss and the optimisers equal ``torch.nn.functional.cross_entropy``,
  ``torch.optim.SGD`` and ``torch.optim.Adam``.
- ``summary()`` counts equal ``(Fh*Fw*C/groups + 1) * K`` and ``(in + 1) * out`` by hand.
- Initialisation is seeded; He and Glorot have the spread their formulas give.
- A short run on digits learns (>= 95 % test accuracy); save/load round-trips.
"""

import math

import numpy as np
import pytest

from convlayer import data, nn

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - torch is a test extra
    torch = None
else:
    torch.set_num_threads(1)

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

TIGHT = dict(rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- helpers


def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to ``array``, in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)  # a view: perturbing it perturbs what f reads
    assert np.shares_memory(flat, array)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def random_params(layer, rng):
    """Replace every parameter by random float64 values (biases too, so they matter)."""
    for name, param in list(layer.params.items()):
        layer.params[name] = rng.standard_normal(param.shape)


def check_layer(layer, x, rng, training=False):
    """Compare backward (input and parameter gradients) with finite differences."""
    random_params(layer, rng)
    y = layer.forward(x, training=training)
    g = rng.standard_normal(y.shape)
    grad_x = np.array(layer.backward(g), copy=True)
    grads = {name: np.array(value, copy=True) for name, value in layer.grads.items()}
    assert set(grads) == set(layer.params)

    def loss():
        return float(np.sum(g * layer.forward(x, training=training)))

    assert grad_x.shape == x.shape
    np.testing.assert_allclose(grad_x, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    for name, param in layer.params.items():
        assert grads[name].shape == param.shape, name
        np.testing.assert_allclose(grads[name], numeric_grad(loss, param), rtol=1e-6, atol=1e-7,
                                   err_msg=name)


def same_pads(size, kernel, stride, dilation=1):
    """TensorFlow 'same' padding (before, after) from SPEC.md: the odd one goes after."""
    span = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


# ----------------------------------------------------------------------------- layers vs finite differences


CONV_CASES = [
    dict(c=3, k=4, kernel_size=3),
    dict(c=3, k=4, kernel_size=3, strides=2),                      # asymmetric 'same'
    dict(c=2, k=3, kernel_size=(2, 3), strides=(2, 1), padding="valid"),
    dict(c=2, k=3, kernel_size=3, dilation=2),
    dict(c=2, k=2, kernel_size=2, dilation=(1, 2), strides=(1, 2), padding="same"),
    dict(c=4, k=6, kernel_size=3, groups=2),
    dict(c=4, k=4, kernel_size=(1, 3), groups=4, padding="valid"),   # depthwise
    dict(c=3, k=2, kernel_size=3, padding=((1, 0), (0, 2))),
    dict(c=3, k=2, kernel_size=2, padding=1, bias=False),
    dict(c=2, k=2, kernel_size=3, padding="full", strides=3),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_conv2d_layer_gradients(case):
    rng = np.random.default_rng(0)
    case = dict(case)
    c, k = case.pop("c"), case.pop("k")
    layer = nn.Conv2D(c, k, seed=0, **case)
    assert set(layer.params) == ({"kernel", "bias"} if case.get("bias", True) else {"kernel"})
    x = rng.standard_normal((2, 7, 6, c))
    check_layer(layer, x, rng)


@pytest.mark.parametrize("bias", [True, False])
def test_dense_layer_gradients(bias):
    rng = np.random.default_rng(1)
    layer = nn.Dense(5, 4, bias=bias, seed=0)
    check_layer(layer, rng.standard_normal((3, 5)), rng)


def test_relu_layer_gradients():
    rng = np.random.default_rng(2)
    magnitude = rng.uniform(0.1, 1.0, (2, 4, 3, 2))  # away from the kink at 0
    x = np.where(rng.random(magnitude.shape) < 0.5, -magnitude, magnitude)
    layer = nn.ReLU()
    check_layer(layer, x, rng)
    assert layer.params == {} and layer.grads == {}
    np.testing.assert_array_equal(layer.forward(x), np.maximum(x, 0))


def distinct(rng, shape):
    """Random values, all distinct and at least 1 / size apart, so max pooling has no ties."""
    size = int(np.prod(shape))
    return (rng.permutation(size) - size / 2).reshape(shape) / size * 4


POOL_CASES = [
    dict(),
    dict(pool_size=3, strides=2, padding="same"),
    dict(pool_size=(2, 3), strides=1),
    dict(pool_size=2, strides=(1, 2), padding="same"),
    dict(pool_size=3, strides=3, padding="same"),
]


@pytest.mark.parametrize("layer_type", [nn.MaxPool2D, nn.AvgPool2D])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_pool_layer_gradients(layer_type, case):
    rng = np.random.default_rng(3)
    layer = layer_type(**case)
    check_layer(layer, distinct(rng, (2, 7, 5, 3)), rng)
    assert layer.params == {} and layer.grads == {}


def test_max_pool_layer_values():
    """2x2 max pooling picks each window's maximum (a closed form on a tiny image)."""
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(nn.MaxPool2D().forward(x)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(nn.AvgPool2D().forward(x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_flatten_layer_gradients():
    rng = np.random.default_rng(4)
    layer = nn.Flatten()
    x = rng.standard_normal((2, 3, 4, 5))
    check_layer(layer, x, rng)
    y = layer.forward(x)
    assert y.shape == (2, 60)
    assert y[1, 5 * 4 + 5 + 2] == x[1, 1, 1, 2]  # C order over (h, w, c)


def test_dropout_gradients_with_fixed_mask():
    rng = np.random.default_rng(5)
    rate = 0.4
    layer = nn.Dropout(rate, seed=0)
    x = rng.standard_normal((3, 4, 5))
    y = layer.forward(x, training=True)
    mask = np.array(layer.mask, copy=True)
    assert mask.shape == x.shape
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - rate)} and 0 < np.mean(mask == 0) < 1
    np.testing.assert_allclose(y, x * mask, rtol=1e-15)
    g = rng.standard_normal(x.shape)
    grad_x = layer.backward(g)
    num = numeric_grad(lambda: float(np.sum(g * x * mask)), x)
    np.testing.assert_allclose(grad_x, num, rtol=1e-6, atol=1e-7)
    assert layer.params == {} and layer.grads == {}


def test_dropout_is_identity_at_inference_and_drops_about_rate():
    layer = nn.Dropout(0.25, seed=1)
    x = np.ones((200, 100))
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x * 2), x * 2)
    dropped = np.mean(layer.forward(x, training=True) == 0)
    assert abs(dropped - 0.25) < 0.01
    # inverted dropout keeps the expectation
    assert abs(layer.forward(x, training=True).mean() - 1) < 0.02


def test_dropout_rejects_bad_rate():
    for rate in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="rate"):
            nn.Dropout(rate)


# ----------------------------------------------------------------------------- Sequential vs PyTorch


def _torch_conv(x_nhwc, kernel_hwio, bias, stride, pads, groups=1, dilation=1):
    """A convolution in torch from NHWC input and HWIO kernel, explicit (maybe asymmetric) pads."""
    x = x_nhwc.permute(0, 3, 1, 2)
    (top, bottom), (left, right) = pads
    x = TF.pad(x, (left, right, top, bottom))
    y = TF.conv2d(x, kernel_hwio.permute(3, 2, 0, 1), bias, stride=stride, groups=groups, dilation=dilation)
    return y.permute(0, 2, 3, 1)


@needs_torch
def test_sequential_backward_matches_torch_autograd():
    rng = np.random.default_rng(6)
    n, h, w = 3, 11, 10
    model = nn.Sequential([
        nn.Conv2D(3, 4, 3, strides=2, padding="same"),   # 11x10 -> 6x5, pads (1,1), (0,1)
        nn.ReLU(),
        nn.MaxPool2D(2),                                  # -> 3x2
        nn.Conv2D(4, 6, 2, groups=2),                     # 'same', pads (0,1), (0,1)
        nn.ReLU(),
        nn.Flatten(),                                     # 3*2*6 = 36
        nn.Dense(36, 5),
    ], seed=0)
    for layer in model.layers:
        random_params(layer, rng)
    x = rng.standard_normal((n, h, w, 3))
    labels = np.array([0, 3, 4])

    logits = model.forward(x, training=True)
    loss, grad = nn.softmax_cross_entropy(logits, labels)
    grad_x = model.backward(grad)

    t = {f"{i}.{name}": torch.tensor(p, requires_grad=True)
         for i, layer in enumerate(model.layers) for name, p in layer.params.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = _torch_conv(tx, t["0.kernel"], t["0.bias"], 2, (same_pads(h, 3, 2), same_pads(w, 3, 2)))
    y = torch.relu(y)
    y = TF.max_pool2d(y.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    y = _torch_conv(y, t["3.kernel"], t["3.bias"], 1, (same_pads(3, 2, 1), same_pads(2, 2, 1)), groups=2)
    y = torch.relu(y).reshape(n, -1)  # NHWC, C order, as Flatten
    t_logits = y @ t["6.weights"] + t["6.bias"]
    t_loss = TF.cross_entropy(t_logits, torch.tensor(labels))
    t_loss.backward()

    np.testing.assert_allclose(logits, t_logits.detach().numpy(), **TIGHT)
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), **TIGHT)
    assert np.abs(tx.grad.numpy()).max() > 0
    for key, tensor in t.items():
        index, name = key.split(".")
        np.testing.assert_allclose(model.layers[int(index)].grads[name], tensor.grad.numpy(), **TIGHT,
                                   err_msg=key)


@needs_torch
def test_sequential_with_avg_pool_and_dense_relu_matches_torch():
    rng = np.random.default_rng(7)
    model = nn.Sequential([
        nn.Conv2D(2, 3, (3, 2), dilation=(1, 2), padding="valid"),  # 9x8 -> 7x6
        nn.AvgPool2D(3, strides=2, padding="same"),                  # -> 4x3, TF: real pixels only
        nn.Flatten(), nn.Dense(36, 7), nn.ReLU(), nn.Dense(7, 4, bias=False),
    ])
    for layer in model.layers:
        random_params(layer, rng)
    x = rng.standard_normal((2, 9, 8, 2))
    g = rng.standard_normal((2, 4))
    out = model.forward(x)
    grad_x = model.backward(g)

    t = {f"{i}.{name}": torch.tensor(p, requires_grad=True)
         for i, layer in enumerate(model.layers) for name, p in layer.params.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = _torch_conv(tx, t["0.kernel"], t["0.bias"], 1, ((0, 0), (0, 0)), dilation=(1, 2))
    # TF 'same' average pooling: sum over real pixels / number of real pixels
    pads = same_pads(7, 3, 2), same_pads(6, 3, 2)
    y = y.permute(0, 3, 1, 2)
    padded = TF.pad(y, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    ones = TF.pad(torch.ones_like(y[:1, :1]), (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    y = TF.avg_pool2d(padded, 3, 2) / TF.avg_pool2d(ones, 3, 2)
    y = y.permute(0, 2, 3, 1).reshape(2, -1)
    y = torch.relu(y @ t["3.weights"] + t["3.bias"]) @ t["5.weights"]
    (y * torch.tensor(g)).sum().backward()

    np.testing.assert_allclose(out, y.detach().numpy(), **TIGHT)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), **TIGHT)
    for key, tensor in t.items():
        index, name = key.split(".")
        np.testing.assert_allclose(model.layers[int(index)].grads[name], tensor.grad.numpy(), **TIGHT,
                                   err_msg=key)


# ----------------------------------------------------------------------------- loss


@needs_torch
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_softmax_cross_entropy_matches_torch(scale):
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((6, 5)) * scale
    labels = rng.integers(0, 5, 6)
    loss, grad = nn.softmax_cross_entropy(logits, labels)
    t = torch.tensor(logits, requires_grad=True)
    t_loss = TF.cross_entropy(t, torch.tensor(labels), reduction="mean")
    t_loss.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(t_loss.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-9, atol=1e-15)


def test_softmax_cross_entropy_huge_logits_closed_form():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    loss, grad = nn.softmax_cross_entropy(logits, np.array([1, 2]))
    # row 0: logsumexp = 1e4 (exactly, in float64), minus logit 0; row 1: log 3
    assert loss == pytest.approx((1e4 + math.log(3)) / 2, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-15)
    np.testing.assert_allclose(nn.softmax(logits), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)


def test_softmax_cross_entropy_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))


# ----------------------------------------------------------------------------- optimisers


OPTIMISERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
]


@needs_torch
@pytest.mark.parametrize("name, options", OPTIMISERS, ids=lambda v: str(v))
def test_optimiser_trajectory_matches_torch(name, options):
    rng = np.random.default_rng(9)
    shapes = {"a": (3, 4), "b": (4,)}
    params = {key: rng.standard_normal(shape) for key, shape in shapes.items()}
    originals = dict(params)
    t_params = {key: torch.tensor(p.copy(), requires_grad=True) for key, p in params.items()}
    ours = getattr(nn, name)(**options)
    theirs = getattr(torch.optim, name)(list(t_params.values()), **options)
    for _ in range(6):
        grads = {key: rng.standard_normal(shape) for key, shape in shapes.items()}
        ours.step([(key, params[key], grads[key]) for key in shapes])
        for key, tensor in t_params.items():
            tensor.grad = torch.tensor(grads[key])
        theirs.step()
        for key in shapes:
            assert params[key] is originals[key]  # updated in place
            np.testing.assert_allclose(params[key], t_params[key].detach().numpy(), rtol=1e-12,
                                       atol=1e-14, err_msg=key)


def test_optimisers_update_float32_params_in_place():
    param = np.ones(3, np.float32)
    nn.SGD(lr=0.5).step([("p", param, np.ones(3, np.float32))])
    np.testing.assert_array_equal(param, [0.5, 0.5, 0.5])
    assert param.dtype == np.float32
    nn.Adam(lr=0.1).step([("p", param, np.ones(3, np.float32))])
    np.testing.assert_allclose(param, 0.4, rtol=1e-6)  # first Adam step moves by lr
    assert param.dtype == np.float32


@pytest.mark.parametrize("optimiser", [nn.SGD, nn.Adam])
@pytest.mark.parametrize("lr", [0, -1.0])
def test_optimisers_reject_non_positive_lr(optimiser, lr):
    with pytest.raises(ValueError, match="lr"):
        optimiser(lr=lr)


# ----------------------------------------------------------------------------- summary and repr


def summary_model():
    return nn.Sequential([
        nn.Conv2D(3, 8, 3, strides=2),
        nn.ReLU(),
        nn.Conv2D(8, 12, (3, 1), padding="valid", groups=4),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(7 * 8 * 12, 10),
        nn.Dropout(0.3),
        nn.Dense(10, 4, bias=False),
    ], input_shape=(32, 32, 3), seed=0)


def test_summary_counts_shapes_and_total(capsys):
    model = summary_model()
    expected = [  # (output shape, parameters) by hand
        ((None, 16, 16, 8), (3 * 3 * 3 + 1) * 8),           # 'same', stride 2: ceil(32 / 2)
        ((None, 16, 16, 8), 0),
        ((None, 14, 16, 12), (3 * 1 * 8 // 4 + 1) * 12),     # valid 3x1, groups 4
        ((None, 7, 8, 12), 0),
        ((None, 672), 0),
        ((None, 10), (672 + 1) * 10),
        ((None, 10), 0),
        ((None, 4), 10 * 4),
    ]
    total = sum(count for _, count in expected)
    assert total == 224 + 84 + 6730 + 40
    assert model.num_params == total
    for layer, (_, count) in zip(model.layers, expected):
        assert layer.num_params == count, layer
        assert sum(p.size for p in layer.params.values()) == count, layer

    text = model.summary(show=False)
    assert capsys.readouterr().out == ""
    lines = text.splitlines()
    for index, (layer, (shape, count)) in enumerate(zip(model.layers, expected)):
        [row] = [line for line in lines if line.startswith(f"{index}: ")]
        assert repr(layer) in row
        assert str(shape) in row
        assert row.split()[-1] == f"{count:,}"
    assert lines[-1] == f"Total params: {total:,}"
    assert sum(line.startswith(("Layer", "0:", "1:", "2:", "3:", "4:", "5:", "6:", "7:")) for line in lines) == 9

    assert model.summary() == text
    assert capsys.readouterr().out == text + "\n"
    # input_shape may be given to summary instead
    other = nn.Sequential(model.layers)
    assert other.summary((32, 32, 3), show=False) == text
    with pytest.raises(ValueError, match="input_shape"):
        other.summary(show=False)


def test_a_dense_of_the_wrong_size_fails_at_construction_naming_the_layer():
    """Issue 20, item 9: the misfit shows when the model is built, not first at summary or forward."""
    layers = [nn.Conv2D(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(10, 2)]
    with pytest.raises(ValueError) as info:
        nn.Sequential(layers, input_shape=(3, 3, 1))
    message = str(info.value)
    assert message.startswith("layers[3], Dense(10, 2), receives examples of shape (36,)")
    assert "needs inputs of shape (10,)" in message
    model = nn.Sequential(layers)  # without input_shape nothing is known yet
    with pytest.raises(ValueError, match=r"\(36,\)"):
        model.summary((3, 3, 1), show=False)
    nn.Sequential([nn.Flatten(), nn.Dense(9, 2)], input_shape=(3, 3, 1))  # the right size passes


@pytest.mark.parametrize("layers, input_shape, expected", [
    ([nn.Conv2D(1, 4, 3), nn.Flatten(), nn.Dense(256, 2)], (8, 8, 1), "(n, 8, 8, 1)"),
    ([nn.Conv2D(1, 4, 3), nn.Flatten(), nn.Dense(256, 2)], None, "(n, h, w, c)"),
    ([nn.MaxPool2D(2), nn.Flatten(), nn.Dense(16, 2)], None, "(n, h, w, c)"),
], ids=["input_shape", "conv-first", "pool-first"])
def test_one_image_without_a_batch_axis_names_x_and_suggests_x_none(layers, input_shape, expected):
    """Issue 20, item 9: the error was about a Dense layer's weights."""
    model = nn.Sequential(layers, input_shape=input_shape, seed=0)
    image = np.zeros((8, 8, 1), np.float32)
    for call in (model.predict, model.forward):
        with pytest.raises(ValueError) as info:
            call(image)
        assert str(info.value) == (f"x must be a batch of shape {expected}; got shape (8, 8, 1); for one "
                                   f"example, x[None] makes a batch of one")
    assert model.predict(image[None]).shape == (1, 2)


def test_features_without_a_batch_axis_for_a_dense_first_model():
    model = nn.Sequential([nn.Dense(5, 3)], seed=0)
    with pytest.raises(ValueError, match=r"^x must be a batch of shape \(n, 5\); got shape \(5,\); for one"):
        model.predict(np.zeros(5, np.float32))
    assert model.predict(np.zeros((2, 5), np.float32)).shape == (2, 3)


def test_repr_shows_the_arguments_that_differ_from_defaults():
    assert repr(nn.Conv2D(3, 8, kernel_size=3, strides=2)) == "Conv2D(3, 8, kernel_size=3, strides=2)"
    assert repr(nn.Conv2D(3, 8, 3)) == "Conv2D(3, 8, kernel_size=3)"
    assert repr(nn.Conv2D(4, 8, (3, 1), padding="valid", dilation=2, groups=2, bias=False)) == (
        "Conv2D(4, 8, kernel_size=(3, 1), padding='valid', dilation=2, groups=2, bias=False)")
    assert repr(nn.Dense(64, 10)) == "Dense(64, 10)"
    assert repr(nn.Dense(64, 10, bias=False)) == "Dense(64, 10, bias=False)"
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Flatten()) == "Flatten()"


@pytest.mark.parametrize("layer, expected", [
    (nn.MaxPool2D(), "MaxPool2D()"),
    (nn.AvgPool2D(), "AvgPool2D()"),
    (nn.Dropout(), "Dropout()"),
], ids=["MaxPool2D", "AvgPool2D", "Dropout"])
def test_repr_of_defaults_shows_no_arguments(layer, expected):
    """STYLE.md: '__repr__ shows only the arguments that differ from their defaults'."""
    assert repr(layer) == expected


@pytest.mark.parametrize("layer", [
    nn.MaxPool2D(3), nn.MaxPool2D(3, strides=1, padding="same"), nn.AvgPool2D((2, 3), strides=(1, 2)),
    nn.Dropout(0.25), nn.Conv2D(2, 4, 3, padding=((1, 0), (0, 2)), strides=(2, 1)),
], ids=repr)
def test_repr_rebuilds_the_layer(layer):
    rebuilt = eval(repr(layer), {**vars(nn)})
    assert type(rebuilt) is type(layer) and repr(rebuilt) == repr(layer)
    x = distinct(np.random.default_rng(10), (1, 7, 6, getattr(layer, "in_channels", 2)))
    if layer.params:
        rebuilt.params = {name: p.copy() for name, p in layer.params.items()}
    np.testing.assert_array_equal(rebuilt.forward(x), layer.forward(x))


# ----------------------------------------------------------------------------- initialisation


def _params(model):
    return [p.copy() for _, p, _ in model.parameters()]


def _kurtosis(values):
    values = values.ravel() - values.mean()
    return float(np.mean(values**4) / np.mean(values**2) ** 2)


def test_seeded_layers_are_reproducible():
    for build in (lambda s: nn.Conv2D(3, 8, 3, seed=s), lambda s: nn.Dense(20, 5, seed=s)):
        first, again, other = build(0), build(0), build(1)
        for name in first.params:
            np.testing.assert_array_equal(first.params[name], again.params[name])
            assert first.params[name].dtype == np.float32
        weights = "kernel" if "kernel" in first.params else "weights"
        assert not np.array_equal(first.params[weights], other.params[weights])
        np.testing.assert_array_equal(first.params["bias"], 0)
    gen_a, gen_b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(nn.Dense(20, 5, seed=gen_a).params["weights"],
                                  nn.Dense(20, 5, seed=gen_b).params["weights"])


def test_seeded_sequential_is_reproducible():
    def build(seed):
        return nn.Sequential([nn.Conv2D(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(64, 3)], seed=seed)

    a, b, c = _params(build(0)), _params(build(0)), _params(build(1))
    assert len(a) == 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[2], c[2])
    generated = _params(build(np.random.default_rng(0)))
    for x, y in zip(a, generated):
        np.testing.assert_array_equal(x, y)


def test_sequential_without_seed_keeps_the_layers_weights():
    conv, dense = nn.Conv2D(1, 4, 3, seed=3), nn.Dense(64, 3, seed=4)
    kernel, weights = conv.params["kernel"].copy(), dense.params["weights"].copy()
    nn.Sequential([conv, nn.ReLU(), nn.Flatten(), dense])
    np.testing.assert_array_equal(conv.params["kernel"], kernel)
    np.testing.assert_array_equal(dense.params["weights"], weights)


@pytest.mark.parametrize("build, fan_in", [
    (lambda: nn.Conv2D(64, 64, 3, init="he", seed=0), 3 * 3 * 64),
    (lambda: nn.Conv2D(64, 64, 3, groups=4, init="he", seed=0), 3 * 3 * 16),
    (lambda: nn.Conv2D(32, 64, 3, seed=0), 3 * 3 * 32),          # standalone 'auto' is He
    (lambda: nn.Dense(1000, 300, init="he", seed=0), 1000),
], ids=["conv", "conv-groups", "conv-auto", "dense"])
def test_he_standard_deviation(build, fan_in):
    layer = build()
    w = layer.params["kernel" if "kernel" in layer.params else "weights"].astype(np.float64)
    assert w.size >= 9000
    assert np.std(w) == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    assert abs(np.mean(w)) < 0.05 * math.sqrt(2 / fan_in)
    assert _kurtosis(w) == pytest.approx(3.0, abs=0.25)  # normal


@pytest.mark.parametrize("build, fan_in, fan_out", [
    (lambda: nn.Dense(400, 300, init="glorot", seed=0), 400, 300),
    (lambda: nn.Dense(400, 300, seed=0), 400, 300),                # standalone 'auto' is Glorot
    (lambda: nn.Conv2D(32, 48, 3, init="glorot", seed=0), 9 * 32, 9 * 48),
], ids=["dense", "dense-auto", "conv"])
def test_glorot_bound(build, fan_in, fan_out):
    layer = build()
    w = layer.params["kernel" if "kernel" in layer.params else "weights"].astype(np.float64)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound
    assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.03)  # uniform on [-a, a]
    assert _kurtosis(w) == pytest.approx(1.8, abs=0.1)


def test_sequential_seed_picks_he_before_relu_and_glorot_otherwise():
    model = nn.Sequential([
        nn.Conv2D(16, 32, 3), nn.ReLU(),               # He, fan_in 144
        nn.Conv2D(32, 32, 3),                          # no ReLU after: Glorot
        nn.Flatten(), nn.Dense(1024, 256), nn.ReLU(),  # He, fan_in 1024
        nn.Dense(256, 10),                             # last: Glorot
        nn.Conv2D(8, 8, 3, init="glorot"), nn.ReLU(),  # explicit Glorot stays Glorot
    ], seed=0)
    he = [(model.layers[0].params["kernel"], 144), (model.layers[4].params["weights"], 1024)]
    glorot = [(model.layers[2].params["kernel"], 9 * 32, 9 * 32), (model.layers[6].params["weights"], 256, 10),
              (model.layers[7].params["kernel"], 72, 72)]
    for w, fan_in in he:
        w = w.astype(np.float64)
        assert np.std(w) == pytest.approx(math.sqrt(2 / fan_in), rel=0.04)
        assert _kurtosis(w) > 2.6
    for w, fan_in, fan_out in glorot:
        w = w.astype(np.float64)
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.1)
    # He's spread: a normal exceeds the Glorot bound of the same shape
    glorot_bound = math.sqrt(6 / (144 + 9 * 32))
    assert np.abs(model.layers[0].params["kernel"]).max() > 1.5 * glorot_bound
    for layer in model.layers:
        if "bias" in layer.params:
            np.testing.assert_array_equal(layer.params["bias"], 0)


# ----------------------------------------------------------------------------- training, save and load


def small_model(seed, filters=8):
    return nn.Sequential([
        nn.Conv2D(1, filters, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
        nn.Dropout(0.1, seed=seed), nn.Dense(4 * 4 * filters, 10),
    ], input_shape=(8, 8, 1), seed=seed)


@pytest.fixture(scope="module")
def trained():
    split = data.digits(seed=0)
    model = small_model(0)
    history = model.fit(split.x_train, split.y_train, epochs=8, batch_size=32, optimizer=nn.Adam(1e-2),
                        validation_data=(split.x_test, split.y_test), seed=0, progress=False)
    return split, model, history


def test_digits_split():
    split = data.digits(seed=0)
    assert split.x_train.shape == (1347, 8, 8, 1) and split.x_test.shape == (450, 8, 8, 1)
    assert split.x_train.dtype == np.float32 and 0 <= split.x_train.min() and split.x_train.max() <= 1
    # stratified: every class in about the same share in both parts
    train_share = np.bincount(split.y_train, minlength=10) / len(split.y_train)
    test_share = np.bincount(split.y_test, minlength=10) / len(split.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.005)
    again = data.digits(seed=0)
    np.testing.assert_array_equal(split.y_test, again.y_test)


def test_short_training_run_reaches_95_percent(trained, exact_forward):
    split, model, history = trained
    logits = model.predict(split.x_test)
    accuracy = float(np.mean(logits.argmax(axis=1) == split.y_test))
    assert accuracy >= 0.95
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 8 for values in history.values())
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    loss, evaluated = model.evaluate(split.x_test, split.y_test)
    assert evaluated == pytest.approx(accuracy) == pytest.approx(history["val_accuracy"][-1])
    assert loss == pytest.approx(nn.softmax_cross_entropy(logits, split.y_test)[0], rel=1e-6)
    # Inference has dropout off, and every batch size is within float32 rounding of the exact
    # (float64) forward pass; the bits may differ between batch sizes (Sequential.predict).
    exact = exact_forward(model, split.x_test)
    for batch_size in (256, 7):
        exact.check(model.predict(split.x_test, batch_size), f"batch_size={batch_size}")


def test_save_then_load_gives_identical_predictions(trained, tmp_path):
    split, model, _ = trained
    path = model.save(tmp_path / "digits.npz")
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["digits.npz"]
    fresh = small_model(1)
    before = fresh.predict(split.x_test)
    assert not np.array_equal(before, model.predict(split.x_test))
    assert fresh.load(tmp_path / "digits.npz") is fresh
    np.testing.assert_array_equal(fresh.predict(split.x_test), model.predict(split.x_test))
    for (_, ours, _), (_, theirs, _) in zip(fresh.parameters(), model.parameters()):
        np.testing.assert_array_equal(ours, theirs)
    with np.load(tmp_path / "digits.npz") as stored:
        assert sorted(stored.files) == ["0.Conv2D.bias", "0.Conv2D.kernel", "5.Dense.bias", "5.Dense.weights",
                                        "__architecture__"]


def test_save_writes_exactly_the_name_given(trained, tmp_path):
    _, model, _ = trained
    model.save(tmp_path / "weights.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
    small_model(2).load(tmp_path / "weights.bin")


def test_load_refuses_a_different_architecture(trained, tmp_path):
    _, model, _ = trained
    model.save(tmp_path / "w.npz")
    wider = small_model(0, filters=16)
    kept = _params(wider)
    with pytest.raises(ValueError, match=r"0\.Conv2D\.kernel") as info:
        wider.load(tmp_path / "w.npz")
    assert "(3, 3, 1, 8)" in str(info.value) and "(3, 3, 1, 16)" in str(info.value)
    for before, (_, after, _) in zip(kept, wider.parameters()):
        np.testing.assert_array_equal(before, after)  # nothing half-loaded

    other = nn.Sequential([nn.Flatten(), nn.Dense(64, 10)], input_shape=(8, 8, 1), seed=0)
    with pytest.raises(ValueError, match=r"1\.Dense\.weights") as info:
        other.load(tmp_path / "w.npz")
    assert "0.Conv2D.kernel" in str(info.value)
