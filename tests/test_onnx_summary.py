"""model.summary() and ``convlayer explain MODEL.onnx``: numbers checked by hand."""

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convlayer.onnx  # noqa: E402
from convlayer.cli.main import main  # noqa: E402
from convlayer.onnx.summary import rows  # noqa: E402


def tensorflow_like():
    """Conv 3x3 stride 2 'SAME' on 8x8 (pads 0 before, 1 after), a 2x2 max pool, a dense head."""
    w = np.ones((4, 3, 3, 3), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2],
                              kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "d"], ["y"], name="dense", transB=1)]
    graph = helper.make_graph(nodes, "tf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(4, np.float32), "b"),
                               numpy_helper.from_array(np.ones((5, 16), np.float32), "d")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rows_by_hand():
    conv, pool, flatten, dense = rows(convlayer.onnx.load(tensorflow_like()))
    assert conv.output_shape == (1, 4, 4, 4) and conv.kernel == (3, 3) and conv.strides == (2, 2)
    assert conv.pads == (0, 1, 0, 1) and conv.asymmetric  # total max((4-1)*2 + 3 - 8, 0) = 1, after
    assert conv.rule == "auto_pad SAME_UPPER: TensorFlow 'same', the odd zero after"
    assert conv.params == (3 * 3 * 3 + 1) * 4 and conv.formula == "(3*3*3/1 + 1)*4"
    assert conv.macs == 4 * 4 * 4 * (3 * 3 * 3)
    assert conv.field == (3, 3) and conv.jump == (2, 2)
    assert pool.field == (3 + 1 * 2, 5) and pool.jump == (4, 4) and not pool.asymmetric
    assert flatten.field is None
    assert dense.params == 16 * 5 and dense.macs == 16 * 5 and dense.formula == "(16 + 0)*5"


def test_summary_text_and_cli(tmp_path, capsys):
    path = tmp_path / "tf.onnx"
    onnx.save(tensorflow_like(), str(path))
    text = convlayer.onnx.load(path).summary(show=False)
    assert "0,1,0,1 !" in text and "Total params: 192   multiply-adds per example: 1,808" in text
    assert "! asymmetric padding, which PyTorch's Conv2d(padding=...) cannot write" in text
    assert main(["explain", str(path)]) == 0
    assert capsys.readouterr().out.strip() == text
    assert main(["explain", str(path), "--input", "1x3x16x16"]) == 2
    assert "input 'x' must have shape (1, 3, 8, 8); got (1, 3, 16, 16)" in capsys.readouterr().err
    assert main(["explain", str(path), "--input", "3x16"]) == 2
    assert "--input must be the model's input shape, e.g. 1x3x224x224" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # the TorchScript exporter's
def test_resnet18_receptive_field_parameters_and_multiply_adds(torchvision):
    import torch

    buffer = io.BytesIO()
    torch.onnx.export(torchvision.models.resnet18(weights=None).eval(), torch.zeros(1, 3, 224, 224), buffer,
                      dynamo=False, opset_version=17)
    found = rows(convlayer.onnx.load(buffer.getvalue()))
    convs = [r for r in found if r.op == "Conv"]
    assert len(convs) == 20 and max(r.field[0] for r in convs) == 435  # resnet18's known field
    assert sum(r.params for r in found) == 11_689_512 - 4_800  # BN's 2 * 4,800 become 4,800 biases
    assert sum(r.macs for r in found) == 1_814_073_344  # torchvision's 1.81 GFLOPS


def test_bench_a_model_file(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "tf.onnx"
    onnx.save(tensorflow_like(), str(path))
    assert main(["bench", str(path), "--batch", "1", "--reps-time", "0.01", "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "tf.onnx: milliseconds per call (fastest)" in out and "batch 1  convlayer" in out
    assert "onnxruntime" in out and "reference" in out and (tmp_path / "t.json").is_file()
    assert main(["bench", str(tmp_path / "missing.onnx")]) == 2
    assert "MODEL.onnx must be an ONNX file; no file" in capsys.readouterr().err
