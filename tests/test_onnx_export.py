"""to_onnx round trips: a convlayer model written as ONNX gives, in onnxruntime and in
convlayer.onnx, the model's own outputs within conftest's float32 bound (exact_forward)."""

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import convlayer.onnx  # noqa: E402
from convlayer import nn  # noqa: E402


def onnxruntime_run(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def randomize(model, seed=0):
    """Random batch-norm parameters and variances (means 0, so the |.| bound dominates)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm2D):
            c = layer.channels
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, c)
            layer.params["beta"][...] = rng.normal(0, 0.2, c)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2, c)
    return model


def sequential(flatten):
    return nn.Sequential([
        nn.Conv2D(3, 8, 3, strides=2), nn.BatchNorm2D(8), nn.ReLU(),   # 'same', stride 2: pads (0, 1)
        nn.MaxPool2D(3, strides=2, padding="same"),
        nn.Conv2D(8, 8, 3, padding="valid", dilation=2, groups=2), nn.ReLU(),
        nn.AvgPool2D(2, padding="same"), nn.Dropout(0.3), flatten, nn.Dense(2 * 2 * 8, 5),
    ], input_shape=(29, 31, 3), seed=0)


def graph_model():
    x = nn.Input((12, 10, 4))
    a = nn.ReLU()(nn.BatchNorm2D(6)(nn.Conv2D(4, 6, 3, seed=1)(x)))
    b = nn.Add()([a, nn.Conv2D(6, 6, 1, seed=2)(a)])
    down = nn.Conv2D(6, 8, 3, strides=2, seed=3)(b)
    up = nn.Conv2DTranspose(8, 6, 3, strides=2, seed=4)(down)
    up2 = nn.Conv2DTranspose(8, 2, 4, strides=2, padding=1, seed=5)(down)
    joined = nn.Concat()([b, up, up2, x])
    return nn.Model(x, nn.Conv2D(18, 3, 3, padding=((0, 2), (1, 0)), seed=6)(joined))


def classifier():
    x = nn.Input((9, 9, 2))
    y = nn.GlobalAvgPool2D()(nn.ReLU()(nn.Conv2D(2, 8, 3, seed=7)(x)))
    return nn.Model(x, nn.Dense(8, 4, seed=8)(y))


@pytest.mark.parametrize("make", [lambda: sequential(nn.Flatten()), lambda: sequential(nn.Flatten("channels_first")),
                                  graph_model], ids=["sequential", "sequential-channels-first", "graph"])
def test_round_trip_through_onnxruntime(make, tmp_path, exact_forward):
    model = randomize(make())
    path = model.to_onnx(tmp_path / "model.onnx")
    x = np.random.default_rng(1).standard_normal((3,) + model.input_shape).astype(np.float32)
    expected = exact_forward(model, x)
    expected.check(model.forward(x), "convlayer")
    expected.check(onnxruntime_run(path, x), "onnxruntime")
    expected.check(convlayer.onnx.load(path)(x), "convlayer.onnx")


def test_global_pool_round_trip(tmp_path):
    model = classifier()
    path = model.to_onnx(tmp_path / "model.onnx")
    x = np.random.default_rng(2).standard_normal((2, 9, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(onnxruntime_run(path, x), model.forward(x), rtol=1e-5, atol=1e-6)


def test_layers_without_an_onnx_form_are_refused(tmp_path):
    model = nn.Sequential([nn.Conv2D(1, 2, 3, sharing="tiled", banks=2)], input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match=r"Conv2D\(1, 2, kernel_size=3, sharing='tiled', banks=\(2, 2\)\) cannot be "
                                         r"written to ONNX: only shared weights"):
        model.to_onnx(tmp_path / "m.onnx")
    model = nn.Sequential([nn.LocallyConnected2D(1, 2, 3, input_size=(5, 5))], input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match=r"LocallyConnected2D\(.*\) cannot be written to ONNX; layers that can"):
        model.to_onnx(tmp_path / "m.onnx")
    model = nn.Sequential([nn.AdaptiveAvgPool2D(2)], input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2D\(.*\) cannot be written to ONNX; layers that can: Add"):
        model.to_onnx(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="to_onnx needs input_shape"):
        nn.Sequential([nn.ReLU()]).to_onnx(tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_the_readme_graph_example_runs(tmp_path, monkeypatch):
    """The README's example runs and its file runs in onnxruntime (a smoke test: the bound is checked above)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"### Writing the graph by hand, and back to ONNX\n.*?```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README graph example", "exec"), namespace)
    x = np.random.default_rng(3).standard_normal((2, 32, 32, 16)).astype(np.float32)
    np.testing.assert_allclose(onnxruntime_run(tmp_path / "model.onnx", x), namespace["model"].forward(x),
                               rtol=1e-4, atol=1e-5)
