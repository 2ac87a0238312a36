"""convlayer.onnx on real CNNs: torchvision's classifiers and a small U-Net, exported by
torch.onnx.export in the test (random weights: nothing is downloaded), run by convlayer and
compared with PyTorch in float64.

Three checks, none from one CPU's float32 result:

- every node, in float32, is within its componentwise float32 error bound of the same node
  in float64 (conftest's ``onnx_check``: 2 * n * 2**-24 times the node on |inputs| and
  |weights|, n the terms each output sums);
- the whole graph run by convlayer in float64 equals PyTorch's float64 model to 1e-9 of
  the largest output (both round at 2**-53; a wrong tap, a misplaced pad or a channel-order
  mix-up moves outputs by a sizeable part of their values);
- the float32 outputs of convlayer equal PyTorch's float64 ones to 1e-3 of the largest
  (the per-node bounds, carried through the depth of these networks, stay far below it).
"""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import convlayer.onnx  # noqa: E402

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # the exporter's

MODELS = ["resnet18", "mobilenet_v2", "squeezenet1_1", "efficientnet_b0", "shufflenet_v2_x1_0", "densenet121"]


def randomize_norms(model, seed=0):
    """Batch norms with random statistics and affine parameters, so folding them matters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.1)
    return model


def export(model, shape, **options) -> bytes:
    """The ONNX bytes of ``model`` (TorchScript exporter, opset 17, batch axis dynamic).

    Without constant folding the exporter keeps each BatchNormalization (convlayer folds it,
    in float64), where folding would round the folded weights to float32 in the file.
    """
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(shape), buffer, dynamo=False, opset_version=options.pop("opset", 17),
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                      do_constant_folding=False, **options)
    return buffer.getvalue()


def check_against_torch(model, loaded, x, onnx_check, label, per_node=True):
    """convlayer's outputs against PyTorch's float64 model (see the module's docstring)."""
    with torch.no_grad():
        exact = model.double()(torch.from_numpy(x).double()).numpy()
    model.float()
    scale = np.abs(exact).max()
    if per_node:
        wide = onnx_check(loaded, x)[loaded.output_names[0]]
        np.testing.assert_allclose(wide, exact, rtol=0, atol=1e-9 * scale, err_msg=label)
    got = loaded(x)
    assert got.shape == exact.shape and got.dtype == np.float32, label
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-3 * scale, err_msg=label)


@pytest.fixture(scope="module")
def exported(torchvision):
    """name -> (torch model in eval mode, its ONNX bytes), each made once."""
    made = {}

    def get(name):
        if name not in made:
            torch.manual_seed(0)
            model = randomize_norms(getattr(torchvision.models, name)(weights=None)).eval()
            made[name] = model, export(model, (1, 3, 224, 224))
        return made[name]
    return get


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_models_equal_pytorch(name, exported, onnx_check):
    model, data = exported(name)
    loaded = convlayer.onnx.load(data)
    for batch in (1, 8):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        check_against_torch(model, loaded, x, onnx_check, f"{name} batch {batch}", per_node=batch == 1)


class UNet(torch.nn.Module):
    """A small U-Net: two levels down, up by ConvTranspose and by Resize, skips joined by Concat."""

    def __init__(self):
        super().__init__()
        nn = torch.nn

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.down1, self.down2, self.bottom = block(3, 8), block(8, 16), block(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec2 = block(32, 16)
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = block(16 + 8, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(torch.nn.functional.max_pool2d(d1, 2))
        b = self.bottom(torch.nn.functional.max_pool2d(d2, 2, ceil_mode=True))
        u2 = self.dec2(torch.cat([self.up2(b), d2], 1))
        wide = torch.nn.functional.interpolate(u2, scale_factor=2, mode="bilinear", align_corners=False)
        near = torch.nn.functional.interpolate(u2, scale_factor=2, mode="nearest")
        u1 = self.dec1(torch.cat([self.up1(u2) + wide[:, :8], near[:, 8:], d1], 1))
        return self.head(u1)


class Zoo(torch.nn.Module):
    """The rest of the operator set in one graph: pads, pools, activations, arithmetic,
    groups, dilation, reshapes and a softmax head."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.grouped = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
        self.strided = nn.Conv2d(8, 8, 3, stride=2)
        self.norm = nn.BatchNorm2d(8)
        self.linear = nn.Linear(8, 5)

    def forward(self, x):
        f = torch.nn.functional
        y = f.pad(x, (1, 2, 0, 1), mode="reflect")
        y = f.leaky_relu(self.grouped(y), 0.1)
        y = f.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=True, ceil_mode=True)
        y = f.hardswish(self.strided(f.pad(y, (0, 1, 0, 1))))
        y = self.norm(y + 0.5) * f.hardsigmoid(y) - y / 3
        y = f.relu6(y) + f.adaptive_max_pool2d(y, 1) + y.mean((2, 3), keepdim=True)
        y = f.avg_pool2d(y, 2)
        z = y.permute(0, 2, 3, 1).flatten(1, 2)  # (n, h * w, c)
        z = torch.matmul(z, self.linear.weight.t()) + self.linear.bias
        return torch.softmax(z.mean(1), dim=-1).unsqueeze(1).squeeze(1)


@pytest.mark.parametrize("make, shape", [(UNet, (3, 32, 32)), (Zoo, (4, 19, 23))], ids=["unet", "zoo"])
def test_written_models_equal_pytorch(make, shape, onnx_check):
    torch.manual_seed(0)
    model = randomize_norms(make()).eval()
    loaded = convlayer.onnx.load(export(model, (1,) + shape))
    for batch in (1, 8):
        x = np.random.default_rng(batch).standard_normal((batch,) + shape).astype(np.float32)
        check_against_torch(model, loaded, x, onnx_check, f"{make.__name__} batch {batch}")
