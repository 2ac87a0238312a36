"""Port a trained PyTorch model to convlayer: move its weights, check that the outputs agree.

The model is conv -> ReLU -> max pool -> conv -> flatten -> linear, trained by PyTorch for a
few steps on scikit-learn's 8x8 digits (shipped with the package: nothing is downloaded).
Its weights move into a ``convlayer.nn.Sequential`` with four changes, each a line below:

- images are channels-last, ``(n, h, w, c)``, where PyTorch's are ``(n, c, h, w)``;
- kernels are ``(Fh, Fw, C_in, C_out)``, where PyTorch's are ``(C_out, C_in, Fh, Fw)``;
- every padding is written out: convlayer's default is 'same', PyTorch's is none;
- ``nn.Flatten("channels_first")`` flattens in PyTorch's order (c, h, w), so the linear
  layer's weight moves as ``weight.T``; with convlayer's own order (h, w, c) its columns
  are permuted instead (``port(..., flatten="channels_last")`` does that).

Both frameworks compute in float32, summing in different orders, so the logits are not
bit-identical. They agree within the float32 error bound of the network, computed here
layer by layer (:func:`float32_bound`); the script asserts it.

Usage: python examples/port_from_pytorch.py   (needs torch and scikit-learn)
"""

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from convlayer import data, nn

U32 = 2.0**-24  # float32's unit roundoff


def train_pytorch_model(x, labels, steps=150, seed=0):
    """A small PyTorch CNN, trained with Adam for a few steps on NCHW images ``x``."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),  # 8x8 -> 8x8
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),  # -> 4x4
        torch.nn.Conv2d(8, 16, 3),  # PyTorch's default padding, none: -> 2x2
        torch.nn.Flatten(),  # (n, 16, 2, 2) -> (n, 64), channel by channel
        torch.nn.Linear(16 * 2 * 2, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(labels).long()
    order = np.random.default_rng(seed).permutation(np.arange(steps * 32) % len(x))
    for step in range(steps):
        batch = torch.from_numpy(order[step * 32 : (step + 1) * 32])
        loss = F.cross_entropy(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def kernel_from_pytorch(conv):
    """A Conv2d's weight ``(C_out, C_in, Fh, Fw)`` as convlayer's ``(Fh, Fw, C_in, C_out)``."""
    return np.ascontiguousarray(conv.weight.detach().numpy().transpose(2, 3, 1, 0))


def port(torch_model, flatten="channels_first"):
    """The same network as a convlayer ``nn.Sequential``, with the trained weights moved in."""
    conv1, _, _, conv2, _, linear = torch_model
    model = nn.Sequential([
        nn.Conv2D(1, 8, 3, padding=1),  # padding=1, PyTorch's: convlayer's default would be 'same'
        nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Conv2D(8, 16, 3, padding="valid"),  # PyTorch's default, no padding, said explicitly
        nn.Flatten(flatten),
        nn.Dense(16 * 2 * 2, 10),
    ], input_shape=(8, 8, 1))
    for layer, conv in [(model.layers[0], conv1), (model.layers[3], conv2)]:
        layer.params["kernel"] = kernel_from_pytorch(conv)
        layer.params["bias"] = conv.bias.detach().numpy().copy()
    weight = linear.weight.detach().numpy()  # (out, in), the inputs in PyTorch's (c, h, w) order
    if flatten == "channels_last":  # convlayer's own (h, w, c) order: permute the inputs
        weight = weight.reshape(10, 16, 2, 2).transpose(0, 2, 3, 1).reshape(10, 16 * 2 * 2)
    model.layers[5].params["weights"] = np.ascontiguousarray(weight.T)  # Dense is x @ weights
    model.layers[5].params["bias"] = linear.bias.detach().numpy().copy()
    return model


def float32_bound(torch_model, x):
    """The exact logits (float64) and how far a float32 forward pass may be from them.

    A layer that sums ``n`` terms (a convolution or linear layer, its bias included) adds at
    most ``n * u * (|W| |a| + |b|)`` to the error of each output, ``u = 2**-24``, and passes on
    its input's error multiplied by ``|W|``; ReLU and max pooling pass an error on, never
    enlarge it. Both frameworks' float32 logits are within this bound of the exact ones, so
    within twice the bound of each other. The weights are float32 numbers, exact in float64.
    """
    value = torch.from_numpy(x).double()
    error = torch.zeros_like(value)
    with torch.no_grad():
        for layer in torch_model:
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                weight = layer.weight.double()
                bias = layer.bias.double().reshape((-1,) + (1,) * (value.dim() - 2))  # per channel
                if isinstance(layer, torch.nn.Conv2d):
                    apply = lambda t, w: F.conv2d(t, w, None, layer.stride, layer.padding)  # noqa: E731
                else:
                    apply = F.linear
                terms = weight[0].numel() + 1  # products summed per output, and the bias
                error = apply(error, weight.abs()) + terms * U32 * (apply(value.abs(), weight.abs()) + bias.abs())
                value = apply(value, weight) + bias
            elif isinstance(layer, torch.nn.MaxPool2d):
                value, error = layer(value), layer(error)
            else:  # ReLU, Flatten
                value, error = layer(value), (error if isinstance(layer, torch.nn.ReLU) else layer(error))
    return value.numpy(), error.numpy()


def main():
    split = data.digits()  # (n, 8, 8, 1) float32 in [0, 1], channels-last
    nchw = lambda images: np.ascontiguousarray(np.moveaxis(images, -1, 1))  # noqa: E731
    torch_model = train_pytorch_model(nchw(split.x_train), split.y_train)
    model = port(torch_model)

    with torch.no_grad():
        expected = torch_model(torch.from_numpy(nchw(split.x_test))).numpy()
    logits = model.predict(split.x_test)  # channels-last in, the same (n, 10) out
    exact, bound = float32_bound(torch_model, nchw(split.x_test))
    assert np.all(np.abs(expected - exact) <= bound), "PyTorch's float32 logits are outside the bound"
    assert np.all(np.abs(logits - exact) <= bound), "convlayer's logits are outside the bound"

    difference = np.abs(logits - expected)
    print(f"PyTorch test accuracy {np.mean(expected.argmax(1) == split.y_test):.2%}, "
          f"convlayer {np.mean(logits.argmax(1) == split.y_test):.2%}")
    print(f"largest |convlayer - PyTorch| over {logits.size} logits: {difference.max():.2e} "
          f"(the largest ratio to the float32 bound on it: {np.max(difference / (2 * bound)):.3f})")

    again = port(torch_model, flatten="channels_last")  # convlayer's own Flatten, columns permuted
    assert np.all(np.abs(again.predict(split.x_test) - exact) <= bound)

    with tempfile.TemporaryDirectory() as folder:  # one file, architecture and weights: no porting code to load it
        path = model.save(Path(folder) / "ported.npz")
        assert np.array_equal(nn.Sequential.load(path).predict(split.x_test), logits)
    print("ported: the outputs agree within float32 rounding; saved, it loads by itself")


if __name__ == "__main__":
    main()
