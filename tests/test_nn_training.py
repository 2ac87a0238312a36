"""``fit``'s progress report, early stopping, learning-rate schedules and checkpoints (issue 20,
items 6 and 11).

Oracles: the history ``fit`` returns (the printed lines must show its numbers), weights copied
at each epoch's end by a wrapped ``evaluate`` (what early stopping must restore and a checkpoint
must hold), and the learning rate each optimiser step sees against the schedules' formulas
computed here.
"""

import io
import math
import re
import sys

import numpy as np
import pytest

from convlayer import nn


def problem(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
    labels = (x[:, :2].sum(axis=(1, 2, 3)) > 0).astype(int)
    return x, labels


def model(seed=0):
    return nn.Sequential([nn.Conv2D(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(64, 2)],
                         input_shape=(4, 4, 1), seed=seed)


def weights(m):
    return {key: array.copy() for key, array in m._stored().items()}


def scripted(m, losses):
    """Make ``m.evaluate`` return ``losses`` in turn, and keep the weights it saw each time."""
    seen, script = [], iter(losses)

    def evaluate(x, labels, batch_size=256):
        seen.append(weights(m))
        return next(script), 0.5

    m.evaluate = evaluate
    return seen


LINE = re.compile(r"^epoch (\d+)/(\d+): loss (\d+\.\d{4}), accuracy (\d\.\d{4}), val_loss (\d+\.\d{4}), "
                  r"val_accuracy (\d\.\d{4}), \d+\.\d s$")


def test_not_a_terminal_gives_one_plain_line_per_epoch(capsys):
    x, labels = problem()
    m = model()
    history = m.fit(x, labels, epochs=6, batch_size=4, validation_data=problem(16, seed=1), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    text = captured.err
    assert "\r" not in text and "\x1b" not in text  # no redraws, no cursor moves
    lines = text.splitlines()
    assert len(lines) == 6 and len(text) < 6 * 120  # the issue saw 142 KB; here under 1 KB per epoch
    for epoch, line in enumerate(lines):
        match = LINE.match(line)
        assert match, line
        assert (int(match.group(1)), int(match.group(2))) == (epoch + 1, 6)
        for group, key in zip(range(3, 7), ("loss", "accuracy", "val_loss", "val_accuracy")):
            assert match.group(group) == f"{history[key][epoch]:.4f}"


def test_no_progress_prints_nothing(capsys):
    x, labels = problem()
    model().fit(x, labels, epochs=2, validation_data=(x, labels), progress=False)
    assert capsys.readouterr() == ("", "")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_bar_ends_with_the_validation_metrics(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    x, labels = problem()
    history = model().fit(x, labels, epochs=2, batch_size=8, validation_data=problem(16, seed=1))
    text = terminal.getvalue()
    assert "\r" in text  # a tqdm bar
    for epoch in range(2):
        final = [part for part in text.split("\r") if part.startswith(f"epoch {epoch + 1}/2")][-1]
        assert "6/6" in final
        assert f"val_loss={history['val_loss'][epoch]:.4f}" in final
        assert f"val_acc={history['val_accuracy'][epoch]:.3f}" in final
        assert f"loss={history['loss'][epoch]:.4f}" in final


def test_on_a_terminal_without_tqdm_the_plain_lines(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    x, labels = problem()
    model().fit(x, labels, epochs=2, validation_data=(x, labels))
    lines = terminal.getvalue().splitlines()
    assert len(lines) == 2 and all(LINE.match(line) for line in lines)


def test_early_stopping_stops_and_restores_the_best_epoch(capsys):
    x, labels = problem()
    m = model()
    seen = scripted(m, [1.0, 0.5, 0.6, 0.7, 0.2, 0.1])
    history = m.fit(x, labels, epochs=6, validation_data=(x, labels), early_stopping=2)
    assert history["val_loss"] == [1.0, 0.5, 0.6, 0.7]  # stopped after two epochs without a better 0.5
    assert len(history["loss"]) == 4
    for key, array in weights(m).items():
        np.testing.assert_array_equal(array, seen[1][key])  # epoch 2's weights
    assert not all(np.array_equal(seen[3][key], seen[1][key]) for key in seen[1])
    assert "early stopping: val_loss has not improved for 2 epochs; the weights of epoch 2" in capsys.readouterr().err


def test_early_stopping_keeps_the_best_weights_without_stopping():
    x, labels = problem()
    m = model()
    seen = scripted(m, [1.0, 0.5, 0.6])
    m.fit(x, labels, epochs=3, validation_data=(x, labels), early_stopping=5, progress=False)
    for key, array in weights(m).items():
        np.testing.assert_array_equal(array, seen[1][key])


def test_early_stopping_needs_validation_data():
    x, labels = problem()
    with pytest.raises(ValueError, match="early_stopping .* needs validation_data"):
        model().fit(x, labels, early_stopping=3)
    with pytest.raises(ValueError, match="early_stopping"):
        model().fit(x, labels, validation_data=(x, labels), early_stopping=0)


class Recording(nn.SGD):
    """SGD that notes the learning rate of every step."""

    def __init__(self, lr):
        super().__init__(lr)
        self.seen = []

    def step(self, pairs):
        self.seen.append(self.lr)
        super().step(pairs)


@pytest.mark.parametrize("schedule, factor", [
    ("cosine", lambda e, n: (1 + math.cos(math.pi * e / n)) / 2),
    ("step", lambda e, n: [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01][e]),
    (lambda e: 0.5**e, lambda e, n: 0.5**e),
], ids=["cosine", "step", "callable"])
def test_learning_rate_schedules(schedule, factor):
    x, labels = problem(n=16)
    optimizer = Recording(0.1)
    history = model().fit(x, labels, epochs=8, batch_size=8, optimizer=optimizer, lr_schedule=schedule,
                          progress=False)
    expected = [0.1 * factor(e, 8) for e in range(8)]
    assert optimizer.seen == pytest.approx([lr for lr in expected for _ in range(2)], rel=1e-12)
    assert history["lr"] == pytest.approx(expected, rel=1e-12)
    assert optimizer.lr == 0.1  # put back


def test_bad_schedules_are_refused():
    x, labels = problem(n=8)
    with pytest.raises(ValueError, match="lr_schedule must be 'cosine', 'step'.*got 'linear'"):
        model().fit(x, labels, lr_schedule="linear")
    with pytest.raises(ValueError, match=r"lr_schedule\(0\) must return a finite factor >= 0; got -1.0"):
        model().fit(x, labels, lr_schedule=lambda e: -1, progress=False)


def test_checkpoint_holds_the_best_epoch_and_loads_alone(tmp_path):
    x, labels = problem()
    m = model()
    seen = scripted(m, [1.0, 0.5, 0.6, 0.4, 0.45])
    path = tmp_path / "best.npz"
    m.fit(x, labels, epochs=5, validation_data=(x, labels), checkpoint=path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]  # written atomically, nothing left over
    loaded = nn.Sequential.load(path)
    for key, array in weights(loaded).items():
        np.testing.assert_array_equal(array, seen[3][key])  # epoch 4: the lowest validation loss
    best = model()
    best.load(path)
    np.testing.assert_array_equal(loaded.predict(x), best.predict(x))


def test_checkpoint_without_validation_is_the_last_epoch(tmp_path):
    x, labels = problem()
    m = model()
    m.fit(x, labels, epochs=2, checkpoint=tmp_path / "last.npz", progress=False)
    np.testing.assert_array_equal(nn.Sequential.load(tmp_path / "last.npz").predict(x), m.predict(x))


def test_fit_checks_its_arguments():
    x, labels = problem(n=8)
    with pytest.raises(ValueError, match="8 examples and 7 labels"):
        model().fit(x, labels[:7])
    with pytest.raises(ValueError, match="epochs"):
        model().fit(x, labels, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        model().fit(x, labels, batch_size=0)
