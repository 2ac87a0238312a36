"""BatchNorm2D, graph models (Add, Concat, Model) and Flatten(data_format) against PyTorch
and finite differences."""

import numpy as np
import pytest

from convlayer import nn

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to ``array``, in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + eps
        up = f()
        array[index] = keep - eps
        down = f()
        array[index] = keep
        grad[index] = (up - down) / (2 * eps)
    return grad


def test_batch_norm_training_equals_pytorch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 6, 3)) * 2 + 1
    g = rng.standard_normal(x.shape)
    layer = nn.BatchNorm2D(3, momentum=0.2)
    layer.params["gamma"][...] = [0.5, 1.5, 2.0]
    layer.params["beta"][...] = [0.1, -0.2, 0.3]
    layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    y = layer.forward(x, training=True)
    grad_x = layer.backward(g)

    ref = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    ref.weight.data[:] = torch.tensor([0.5, 1.5, 2.0])
    ref.bias.data[:] = torch.tensor([0.1, -0.2, 0.3])
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    ty = ref.train()(tx)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_x, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.grads["beta"], ref.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.running_mean, ref.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.running_var, ref.running_var.numpy(), rtol=1e-6)
    ref.eval()
    np.testing.assert_allclose(layer.forward(x), ref(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy()
                               .transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_equal_finite_differences(training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2, 2))
    g = rng.standard_normal(x.shape)
    layer = nn.BatchNorm2D(2)
    layer.params = {"gamma": np.array([0.7, 1.3]), "beta": np.array([0.2, -0.1])}
    layer.buffers = {"running_mean": np.array([0.1, -0.3]), "running_var": np.array([0.5, 2.0])}

    def loss():
        keep = {k: v.copy() for k, v in layer.buffers.items()}
        value = np.sum(g * layer.forward(x, training=training))
        layer.buffers = keep
        return value

    layer.forward(x, training=training)
    grad_x = layer.backward(g)
    np.testing.assert_allclose(grad_x, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name in ("gamma", "beta"):
        np.testing.assert_allclose(layer.grads[name], numeric_grad(loss, layer.params[name]), rtol=1e-6, atol=1e-8)


def residual_model(seed=0):
    x = nn.Input((6, 6, 2))
    a = nn.Conv2D(2, 4, 3, seed=seed)(x)
    b = nn.BatchNorm2D(4)(a)
    c = nn.ReLU()(b)
    d = nn.Conv2D(4, 4, 3, seed=seed + 1)(c)
    e = nn.Add()([d, a])
    f = nn.Concat()([e, x])
    out = nn.Dense(6 * 6 * 6, 3, seed=seed)(nn.Flatten()(nn.ReLU()(f)))
    return nn.Model(x, out)


def test_graph_model_forward_and_backward():
    model = residual_model()
    for layer in model.layers:
        layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 6, 2))
    g = rng.standard_normal((2, 3))
    conv1, norm, relu, conv2, add, concat, relu2, flatten, dense = model.layers
    a = conv1.forward(x)
    e = conv2.forward(relu.forward(norm.forward(a))) + a
    want = dense.forward(flatten.forward(np.maximum(np.concatenate([e, x], -1), 0)))
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-12)
    model.forward(x, training=True)
    grad_x = model.backward(g)
    np.testing.assert_allclose(grad_x, numeric_grad(lambda: np.sum(g * model.forward(x, training=True)), x),
                               rtol=1e-5, atol=1e-8)
    kernel = conv1.params["kernel"]
    np.testing.assert_allclose(conv1.grads["kernel"],
                               numeric_grad(lambda: np.sum(g * model.forward(x, training=True)), kernel),
                               rtol=1e-5, atol=1e-8)


def test_graph_model_trains_saves_and_summarises(tmp_path):
    model = residual_model()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6, 6, 2)).astype(np.float32)
    labels = (x[:, :3, :, 0].mean((1, 2)) > 0).astype(int)
    history = model.fit(x, labels, epochs=8, batch_size=8, optimizer=nn.Adam(1e-2), progress=False)
    assert history["loss"][-1] < history["loss"][0]
    text = model.summary(show=False)
    assert "4: Add()" in text and "3, 0" in text and "(None, 6, 6, 6)" in text
    assert f"Total params: {model.num_params:,}" in text
    model.save(tmp_path / "w.npz")
    other = residual_model(seed=5).load(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.forward(x), model.forward(x))
    np.testing.assert_array_equal(other.layers[1].running_var, model.layers[1].running_var)


def test_graph_model_errors():
    x = nn.Input((4, 4, 1))
    conv = nn.Conv2D(1, 1, 3)
    y = conv(x)
    with pytest.raises(ValueError, match=r"Conv2D\(1, 1, kernel_size=3\) is called twice"):
        nn.Model(x, conv(y))
    with pytest.raises(ValueError, match=r"Add needs inputs of one shape; got \[\(4, 4, 1\), \(4, 4, 2\)\]"):
        nn.Add()([x, nn.Conv2D(1, 2, 3)(x)])
    with pytest.raises(TypeError, match=r"Add\(\) takes a list of symbols; got Symbol"):
        nn.Add()(x)
    with pytest.raises(TypeError, match="must be called on nn.Input"):
        nn.ReLU()(np.zeros(3))
    with pytest.raises(ValueError, match="not the model's input"):
        nn.Model(x, nn.ReLU()(nn.Input((4, 4, 1))))
    with pytest.raises(ValueError, match=r"BatchNorm2D\(3\) needs 3 channels on the last axis; got input shape"):
        nn.BatchNorm2D(3)(x)


def test_flatten_channels_first_ports_a_pytorch_dense_layer_as_it_is():
    """The issue's port: conv -> pool -> flatten -> linear, weights copied without reordering."""
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5)).double()
    conv = nn.Conv2D(3, 4, 3, padding=1)
    conv.params = {"kernel": ref[0].weight.detach().numpy().transpose(2, 3, 1, 0), "bias": ref[0].bias.detach().numpy()}
    dense = nn.Dense(64, 5)
    dense.params = {"weights": ref[4].weight.detach().numpy().T, "bias": ref[4].bias.detach().numpy()}
    x = np.random.default_rng(4).standard_normal((2, 8, 8, 3))
    want = ref(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy()
    ported = nn.Sequential([conv, nn.ReLU(), nn.MaxPool2D(2), nn.Flatten("channels_first"), dense])
    np.testing.assert_allclose(ported.forward(x), want, rtol=1e-12)
    wrong = nn.Sequential([conv, nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), dense])
    assert np.abs(wrong.forward(x) - want).max() > 1e-3  # the silent error of a hand port
    g = np.random.default_rng(5).standard_normal((2, 5))
    ported.forward(x)
    np.testing.assert_allclose(ported.backward(g), numeric_grad(lambda: np.sum(g * ported.forward(x)), x),
                               rtol=1e-6, atol=1e-9)
    assert repr(nn.Flatten("channels_first")) == "Flatten('channels_first')"
    with pytest.raises(ValueError, match="data_format must be 'channels_last' or 'channels_first'; got 'nchw'"):
        nn.Flatten("nchw")
