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
