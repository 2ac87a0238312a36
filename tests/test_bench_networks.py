"""``convlayer bench --suite networks``: the recorded layers, the totals, the CLI (no timing asserted).

PyTorch is the oracle for the layers' shapes and for what the timed PyTorch calls compute;
the recorder (``benchmarks/record_networks.py``) is tested on plain ``torch.nn.Conv2d``
modules, as torchvision is not installed here.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from convlayer import bench, conv2d, conv2d_backward, shapes
from convlayer.bench import networks
from convlayer.cli.main import main

RECORDER = Path(__file__).resolve().parents[1] / "benchmarks" / "record_networks.py"

# torchvision 0.28.0's models: how many Conv2d calls each makes at 224x224 (vgg16 cut to 4)
CALLS = {"resnet50": 53, "mobilenet_v2": 52, "mobilenet_v3_large": 62, "efficientnet_b0": 81,
         "squeezenet1_1": 26, "vgg16": 4, "regnet_y_400mf": 85, "shufflenet_v2_x1_0": 56,
         "resnext50_32x4d": 53, "convnext_tiny": 22}


@pytest.fixture(scope="module")
def recorder(script):
    return script(RECORDER)


def _torch_output_shape(layer: bench.Layer, n: int) -> tuple:
    """PyTorch's NCHW output shape for the layer, on the meta device (no arithmetic)."""
    x = torch.empty(n, layer.c, layer.h, layer.w, device="meta")
    weight = torch.empty(layer.k, layer.c // layer.groups, *layer.f, device="meta")
    out = torch.nn.functional.conv2d(x, weight, None, layer.strides, layer.padding, layer.dilation,
                                     layer.groups)
    return tuple(out.shape)


def test_recorded_layers_have_torchs_output_shapes():
    data = networks.recorded()
    assert len(data["layers"]) > 200
    for record in data["layers"]:
        layer = bench.Layer.from_record(record)
        n, k, out_h, out_w = _torch_output_shape(layer, 8)
        kernel_shape = layer.f + (layer.c // layer.groups, layer.k)
        got = shapes.conv2d_output_shape((8, layer.h, layer.w, layer.c), kernel_shape, **layer.options)
        assert got == (n, out_h, out_w, k), layer.name
        oihw = (layer.k, layer.c // layer.groups) + layer.f
        got = shapes.conv2d_output_shape((8, layer.c, layer.h, layer.w), oihw, **layer.options,
                                         data_format="channels_first")
        assert got == (n, k, out_h, out_w), layer.name


def test_recorded_models_count_their_calls_and_every_layer_is_used():
    data = networks.recorded()
    assert {model: sum(count for _, count in pairs) for model, pairs in data["models"].items()} == CALLS
    used = {index for pairs in data["models"].values() for index, _ in pairs}
    assert used == set(range(len(data["layers"])))
    keys = [json.dumps(record, sort_keys=True) for record in data["layers"]]
    assert len(set(keys)) == len(keys)  # each configuration once


def test_select_shares_layers_between_models_and_filters_by_name():
    data = networks.recorded()
    counts, layers = networks.select(data, ["mobilenet_v2", "efficientnet_b0"])
    distinct = {index for pairs in counts.values() for index, _ in pairs}
    assert sorted(layers) == sorted(distinct)
    assert len(distinct) < sum(len(pairs) for pairs in counts.values())  # they share layers
    counts, layers = networks.select(data, ["resnet50"], only=" 7x7")
    assert [layer.name for layer in layers.values()] == ["224x224x3->64 7x7 s2 p3"]
    assert len(counts["resnet50"]) == 23  # the counts stay whole: totals say how many were timed


def test_select_refuses_an_unknown_model_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'resnet'; the recorded models are resnet50, "
                                         r"mobilenet_v2, .*convnext_tiny$"):
        networks.select(networks.recorded(), ["resnet50", "resnet"])
    with pytest.raises(ValueError, match=r"no layer of vgg16 contains '1x1'"):
        networks.select(networks.recorded(), ["vgg16"], only="1x1")


def test_layer_from_record_names_and_options():
    layer = bench.Layer.from_record(dict(h=14, w=14, c=96, k=96, f=[5, 5], strides=[2, 2], padding=[2, 2],
                                         dilation=[1, 1], groups=96, bias=True))
    assert layer.name == "14x14x96->96 5x5 s2 p2 g96 bias"
    assert layer.options == dict(strides=(2, 2), padding=((2, 2), (2, 2)), dilation=(1, 1), groups=96)
    assert bench.Layer(9, 9, 4, 4, (3, 3), dilation=(2, 2)).name == "9x9x4->4 3x3 d2"


MS = {0: dict(convlayer_cl=2.0, convlayer_cf=3.0, torch_nchw=1.0, torch_cl=4.0),
      1: dict(convlayer_cl=1.0, convlayer_cf=1.0, torch_nchw=2.0, torch_cl=1.0),
      2: dict(convlayer_cl=10.0, convlayer_cf=10.0, torch_nchw=20.0, torch_cl=5.0)}


def test_model_totals_are_count_times_median_and_torch_keeps_its_better_layout():
    totals = networks.model_totals(MS, [(0, 3), (1, 2), (2, 1)])
    assert totals["convlayer_cl"] == 3 * 2 + 2 * 1 + 10 == 18
    assert totals["convlayer_cf"] == 3 * 3 + 2 * 1 + 10 == 21
    assert (totals["torch_nchw"], totals["torch_cl"]) == (3 + 4 + 20, 12 + 2 + 5) == (27, 19)
    assert totals["torch"] == 19 and totals["ratio"] == 18 / 19 and totals["cf_ratio"] == 21 / 19
    assert (totals["calls"], totals["of"]) == (6, 6)


def test_model_totals_of_layers_left_out_or_without_torch():
    assert networks.model_totals(MS, [(5, 2)]) == dict(calls=0, of=2)
    cl_only = {0: dict(convlayer_cl=2.0, convlayer_cf=3.0)}
    totals = networks.model_totals(cl_only, [(0, 2), (9, 1)])
    assert totals == dict(calls=2, of=3, convlayer_cl=4.0, convlayer_cf=6.0)


def test_layer_ratios_flag_strictly_above_the_limits():
    row = networks.layer_ratios(dict(convlayer_cl=2.0, convlayer_cf=2.4, torch_nchw=1.2, torch_cl=1.0))
    assert (row["ratio"], row["torch_ms"], row["cf_nchw"]) == (2.0, 1.0, 2.0) and row["flags"] == []
    row = networks.layer_ratios(dict(convlayer_cl=2.0, convlayer_cf=2.5, torch_nchw=1.0, torch_cl=0.9))
    assert row["flags"] == ["conv/torch>2", "cf/nchw>2", "cf/cl>1.2"]
    assert networks.layer_ratios(dict(convlayer_cl=1.0, convlayer_cf=1.0))["flags"] == []


def test_summarise_takes_geometric_means_over_layers():
    rows = [networks.layer_ratios(ms) for ms in MS.values()]  # ratios 2, 1, 2; cf/cl 1.5, 1, 1
    summary = networks.summarise(rows)
    assert summary["layers"] == 3
    assert math.isclose(summary["ratio"], 4 ** (1 / 3)) and math.isclose(summary["cf_cl"], 1.5 ** (1 / 3))
    assert math.isclose(summary["cf_nchw"], (3 * 0.5 * 0.5) ** (1 / 3))
    assert summary["flagged"] == {"cf/nchw>2": 1, "cf/cl>1.2": 1}


SMALL = [bench.Layer(9, 8, 6, 4, (3, 3), strides=(2, 2), padding=(1, 1), bias=True),
         bench.Layer(7, 7, 6, 6, (3, 3), padding=(2, 2), dilation=(2, 2), groups=6),
         bench.Layer(6, 6, 4, 6, (1, 3), padding=(0, 1), groups=2, bias=True)]


@pytest.mark.parametrize("layer", SMALL, ids=lambda layer: layer.name)
def test_torch_calls_compute_what_conv2d_computes(layer):
    rng = np.random.default_rng(3)
    x, kernel, bias = bench.layer_inputs(layer, 2, rng)
    x_cf, kernel_cf = networks._channels_first(x, kernel)
    want = conv2d(x, kernel, bias, **layer.options)
    got_cf = conv2d(x_cf, kernel_cf, bias, **layer.options, data_format="channels_first")
    np.testing.assert_allclose(got_cf.transpose(0, 2, 3, 1), want, rtol=1e-5, atol=1e-5)
    peer = bench.torch_peer()
    for name, call in peer.layer_forward(layer, x_cf, kernel_cf, bias).items():
        np.testing.assert_allclose(call().permute(0, 2, 3, 1).numpy(), want, rtol=1e-4, atol=1e-4, err_msg=name)
    grad = rng.standard_normal(want.shape, dtype=np.float32)
    grads = conv2d_backward(grad, x, kernel, **layer.options)
    grad_cf = np.ascontiguousarray(grad.transpose(0, 3, 1, 2))
    for name, call in peer.layer_backward(layer, x_cf, kernel_cf, grad_cf).items():
        grad_x, grad_kernel, grad_bias = call()
        np.testing.assert_allclose(grad_x.permute(0, 2, 3, 1).numpy(), grads.grad_x, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(grad_kernel.permute(2, 3, 1, 0).numpy(), grads.grad_kernel, rtol=1e-4,
                                   atol=1e-3)
        if layer.bias:
            np.testing.assert_allclose(grad_bias.numpy(), grads.grad_bias, rtol=1e-4, atol=1e-4)


@pytest.fixture
def tiny_networks(monkeypatch):
    """Two models sharing a layer, and timing without its pauses (the tests time nothing)."""
    records = [dict(h=8, w=8, c=4, k=4, f=[3, 3], strides=[1, 1], padding=[1, 1], dilation=[1, 1],
                    groups=1, bias=False),
               dict(h=8, w=8, c=4, k=8, f=[1, 1], strides=[2, 2], padding=[0, 0], dilation=[1, 1],
                    groups=1, bias=True),
               dict(h=4, w=4, c=8, k=8, f=[3, 3], strides=[1, 1], padding=[1, 1], dilation=[1, 1],
                    groups=8, bias=True)]
    data = dict(layers=records, models={"a": [[0, 2], [1, 1]], "b": [[0, 1], [2, 3]]})
    monkeypatch.setattr(networks, "recorded", lambda: data)
    for name, value in (("SETTLE", 0.0), ("WARM_SECONDS", 0.0), ("RUN_SECONDS", 0.0), ("RUN", 1)):
        monkeypatch.setattr(bench.timing, name, value)
    return data


def test_networks_suite_times_a_shared_layer_once_and_writes_json(tiny_networks, tmp_path, capsys):
    path = tmp_path / "networks.json"
    argv = ["bench", "--suite", "networks", "--batch", "1,2", "--reps-time", "0.001", "--json", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 distinct layers of 2 models" in out and "per model, backward, batch 2" in out
    assert "8x8x4->8 1x1 s2 bias" in out and "geometric mean over 3 layers" in out and "bwd b2" in out
    results = json.loads(path.read_text())
    assert [(s["part"], s["batch"]) for s in results["sections"]] == [
        ("forward", 1), ("forward", 2), ("backward", 1), ("backward", 2)]
    for section in results["sections"]:
        assert [row["layer"] for row in section["rows"]] == [0, 1, 2]
        assert set(section["rows"][0]["ms"]) == set(networks.CONTENDERS)
        a = section["totals"]["a"]
        ms = {row["layer"]: row["ms"] for row in section["rows"]}
        assert math.isclose(a["convlayer_cl"], 2 * ms[0]["convlayer_cl"] + ms[1]["convlayer_cl"])
        assert a["calls"] == a["of"] == 3 and section["totals"]["b"]["of"] == 4
    assert results["sections"][0]["rows"][2]["algorithm"] == "depthwise"
    assert results["compile_seconds"] >= 0


def test_networks_suite_only_and_models_narrow_the_layers(tiny_networks, capsys):
    results = bench.run_networks(["b"], (1,), only="g8", reps_time=0.001, backward=False, echo=print)
    (section,) = results["sections"]
    assert [row["shape"] for row in section["rows"]] == ["4x4x8->8 3x3 p1 g8 bias"]
    assert section["totals"]["b"]["calls"] == 3 and section["totals"]["b"]["of"] == 4
    assert "3/4" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--suite", "networks", "--models", "resnet50,alexnet"],
     "unknown model 'alexnet'; the recorded models are resnet50, mobilenet_v2, mobilenet_v3_large, "
     "efficientnet_b0, squeezenet1_1, vgg16, regnet_y_400mf, shufflenet_v2_x1_0, resnext50_32x4d, "
     "convnext_tiny"),
    (["--suite", "networks", "--models", " , "], "--models must name at least one model; got ' , '"),
    (["--suite", "networks", "--batch", "1,0"], "--batch must be positive integers separated by commas, "
                                               "like 1,8; got '1,0'"),
    (["--suite", "networks", "--batch", "one"], "--batch must be positive integers separated by commas, "
                                               "like 1,8; got 'one'"),
    (["--suite", "networks", "--models", "vgg16", "--only", "g32"], "no layer of vgg16 contains 'g32'"),
    (["--suite", "networks", "--reps-time", "0"], "--reps-time must be positive; got 0.0"),
    (["--suite", "networks", "--every-algorithm"], "--every-algorithm applies to --suite shapes only"),
    (["--models", "resnet50"], "--models and --batch apply to --suite networks only"),
    (["--batch", "8"], "--models and --batch apply to --suite networks only"),
])
def test_networks_bad_arguments_are_one_line(argv, message, capsys):
    assert main(["bench"] + argv) == 2
    assert capsys.readouterr().err.strip() == f"convlayer bench: error: {message}"


def test_recorder_records_each_conv2d_call(recorder):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding="same", groups=4, bias=False),
        torch.nn.Conv2d(8, 8, 3, padding="same", groups=4, bias=False),
        torch.nn.Conv2d(8, 16, (1, 5), padding="valid", dilation=(1, 2)),
    )
    calls = recorder.conv_calls(model, torch.zeros(1, 3, 17, 24))
    assert calls[0] == dict(h=17, w=24, c=3, k=8, f=[3, 3], strides=[2, 2], padding=[1, 1],
                            dilation=[1, 1], groups=1, bias=True)
    assert calls[1] == calls[2] and calls[1]["padding"] == [1, 1] and calls[1]["groups"] == 4
    assert calls[3]["padding"] == [0, 0] and calls[3]["dilation"] == [1, 2] and calls[3]["h"] == 9
    assert not any(module._forward_hooks for module in model)  # the hooks are removed
    data = recorder.collect({"m": calls, "again": calls[:1]})
    assert len(data["layers"]) == 3 and data["models"] == {"m": [[0, 1], [1, 2], [2, 1]], "again": [[0, 1]]}
    assert json.loads(recorder.to_text(data, "note"))["layers"] == data["layers"]
    with torch.no_grad():  # each record gives convlayer the output shape torch gave
        x = torch.zeros(1, 3, 17, 24)
        for module, record in zip([model[0], model[2], model[3], model[4]], calls):
            layer = bench.Layer.from_record(record)
            x = module(x)
            assert _torch_output_shape(layer, 1) == tuple(x.shape)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_recorder_refuses_what_the_json_cannot_say(recorder):
    reflect = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be 'zeros'; got 'reflect'"):
        recorder.conv_calls(reflect, torch.zeros(1, 2, 5, 5))
    even = torch.nn.Conv2d(2, 2, 4, padding="same")
    with pytest.raises(ValueError, match=r"'same' padding puts \[3, 3\] zeros around; not symmetric"):
        recorder.conv_calls(even, torch.zeros(1, 2, 5, 5))
