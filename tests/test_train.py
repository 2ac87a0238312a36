"""``convlayer train`` end to end, in a subprocess: exit codes, printed output, figures, weights.

The printed test accuracy is checked against an independent recomputation: the written
weights loaded into ``digits_model(seed)`` and evaluated on the same fixed split.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from convlayer import data, nn
from convlayer.cli.train import digits_model

FILES = {"filters.png", "curves.png", "confusion.png", "weights.npz"}


def convlayer(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "convlayer.cli.main", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"  # does not exist yet: train makes it
    result = convlayer("train", "--epochs", "2", "--seed", "0", "-o", str(out), "--lr-schedule", "step",
                       "--checkpoint", str(out.parent / "best.npz"))
    return result, out


def test_train_exits_0_and_prints_summary_and_accuracy(run):
    result, _ = run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert re.search(r"^Layer\s+Output shape\s+Param #$", out, re.M)
    assert re.search(r"^0: Conv2D\(1, 16, kernel_size=3\)\s+\(None, 8, 8, 16\)\s+160$", out, re.M)
    assert re.search(r"^7: Dense\(512, 10\)\s+\(None, 10\)\s+5,130$", out, re.M)
    total = (9 + 1) * 16 + (9 * 16 + 1) * 32 + (512 + 1) * 10
    assert f"Total params: {total:,}" in out
    assert re.search(r"^test accuracy: \d\.\d{4} \(\d+ of 450\)$", out, re.M)


def test_train_reports_one_line_per_epoch_with_validation_metrics_on_stderr(run):
    """Issue 20, item 6: not a terminal, so plain lines, not a progress bar's redraws."""
    result, _ = run
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "\r" not in result.stderr
    for epoch, line in enumerate(lines, 1):
        assert re.match(rf"^epoch {epoch}/2: loss \d\.\d{{4}}, accuracy \d\.\d{{4}}, val_loss \d\.\d{{4}}, "
                        rf"val_accuracy \d\.\d{{4}}, lr {('0.002', '0.0002')[epoch - 1]}, \d+\.\d s$", line), line


def test_train_writes_exactly_its_files(run):
    result, out = run
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == FILES  # no temporary files left behind


@pytest.mark.parametrize("name", sorted(FILES - {"weights.npz"}))
def test_figures_decode_and_are_not_blank(run, name):
    from PIL import Image

    _, out = run
    with Image.open(out / name) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert min(pixels.shape) >= 100
    assert pixels.std() > 10


def test_weights_load_into_digits_model_and_give_the_printed_accuracy(run):
    result, out = run
    model = digits_model(0)
    model.load(out / "weights.npz")
    split = data.digits(seed=0)
    whole = nn.Sequential.load(out / "weights.npz")  # the file rebuilds the model by itself too
    np.testing.assert_array_equal(whole.predict(split.x_test), model.predict(split.x_test))
    best = nn.Sequential.load(out.parent / "best.npz")  # the checkpoint: the epoch of lowest validation loss
    val_loss = [float(v) for v in re.findall(r"val_loss (\d\.\d{4})", result.stderr)]
    assert len(val_loss) == 2
    assert best.evaluate(split.x_test, split.y_test)[0] == pytest.approx(min(val_loss), abs=6e-5)
    correct = int(np.sum(model.predict(split.x_test).argmax(axis=1) == split.y_test))
    match = re.search(r"^test accuracy: (\d\.\d{4}) \((\d+) of 450\)$", result.stdout, re.M)
    assert int(match.group(2)) == correct
    assert float(match.group(1)) == pytest.approx(correct / 450, abs=5e-5)
    assert correct / 450 > 0.5  # two epochs learn something (10 % is chance)
    filters = model.layers[0].params["kernel"]
    assert filters.shape == (3, 3, 1, 16) and filters.std() > 0


@pytest.mark.parametrize("args, word", [
    (["--epochs", "0"], "--epochs"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "two"], "--epochs"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, word):
    out = tmp_path / "out"
    result = convlayer("train", *args, "-o", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], result.stderr
    assert not out.exists()  # nothing written


def test_train_help():
    result = convlayer("train", "--help")
    assert result.returncode == 0
    for option in ("--epochs", "--lr", "--seed", "-o OUTDIR, --output OUTDIR", "--overwrite"):
        assert option in result.stdout


@pytest.mark.parametrize("held_out", ["test", "validation"])
def test_curves_name_the_held_out_set_as_it_is(held_out):
    """The digits' held-out set is a test set; a --data folder's is a validation split."""
    from convlayer.explain import plot

    history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.9], "val_loss": [1.1, 0.6], "val_accuracy": [0.4, 0.8]}
    figure = plot.curves_figure(history, held_out=held_out)
    for axes in figure.axes:
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["training", held_out]
