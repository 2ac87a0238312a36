"""examples/port_from_pytorch.py, the worked example of docs/porting.md, runs and its check can fail."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "port_from_pytorch.py"


@pytest.fixture(scope="module")
def example(script):
    return script(EXAMPLE)


@pytest.fixture(scope="module")
def trained(example):
    """A PyTorch model trained for a few steps and 64 test digits, NCHW."""
    from convlayer import data

    split = data.digits()
    nchw = np.ascontiguousarray(np.moveaxis(split.x_train, -1, 1))
    return example.train_pytorch_model(nchw, split.y_train, steps=20), split.x_test[:64]


def test_the_example_runs_and_reports_agreement():
    result = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ported: the outputs agree within float32 rounding" in result.stdout
    accuracies = re.findall(r"(\d+\.\d+)%", result.stdout.splitlines()[0])
    torch_accuracy, convlayer_accuracy = map(float, accuracies)
    assert torch_accuracy > 85 and convlayer_accuracy > 85


@pytest.mark.parametrize("flatten", ["channels_first", "channels_last"])
def test_the_port_is_within_the_float32_bound_of_pytorchs_float64_model(example, trained, flatten):
    import torch

    torch_model, x = trained
    exact, bound = example.float32_bound(torch_model, np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    with torch.no_grad():  # the oracle: PyTorch's own float64 forward pass
        float64 = torch_model.double()(torch.from_numpy(np.moveaxis(x, -1, 1).copy()).double()).numpy()
        torch_model.float()
    np.testing.assert_allclose(exact, float64, rtol=1e-12, atol=1e-12)
    assert np.all(bound > 0) and np.all(bound < 1e-3 * np.abs(exact).max())  # a bound, not a shrug
    logits = example.port(torch_model, flatten=flatten).predict(x)
    assert np.all(np.abs(logits - exact) <= bound)


def test_a_port_with_the_wrong_flatten_order_fails_the_check(example, trained):
    torch_model, x = trained
    model = example.port(torch_model, flatten="channels_last")
    model.layers[5].params["weights"] = np.ascontiguousarray(torch_model[5].weight.detach().numpy().T)  # unpermuted
    exact, bound = example.float32_bound(torch_model, np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    assert not np.all(np.abs(model.predict(x) - exact) <= bound)


def test_every_code_block_of_the_porting_page_runs():
    """docs/porting.md's Python blocks, in order, in one namespace: each asserts what it shows."""
    page = (EXAMPLE.parent.parent / "docs" / "porting.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) >= 5
    namespace = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/porting.md, block {number}", "exec"), namespace)
