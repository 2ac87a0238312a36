"""``convlayer train``: train a small CNN on scikit-learn's digits and draw what it learned.

The data set ships inside scikit-learn (1,797 images of 8x8 pixels), so nothing is
downloaded. The split is stratified and fixed by ``--seed``, as are the weights and the
shuffling, so a run can be repeated exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .._files import atomic_write
from . import _common

EXAMPLE = """examples:
  convlayer train
  convlayer train --epochs 10 --lr 0.001 --seed 3 -o runs/digits

writes, in OUTDIR: filters.png (the learned first-layer filters), curves.png (loss and
accuracy per epoch), confusion.png (test predictions by class) and weights.npz
(load it with Sequential.load); --overwrite replaces existing files of those names."""

OUTPUTS = ("filters.png", "curves.png", "confusion.png", "weights.npz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (default 0.002)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per update (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="split, weights and shuffling (default 0)")
    parser.add_argument("-o", "--output", default="convlayer-train", metavar="OUTDIR",
                        help="folder for the figures and weights (default convlayer-train)")
    _common.add_deprecated(parser, "--out", "-o/--output", "output")
    _common.add_overwrite(parser)


def digits_model(seed: int):
    """conv 3x3 (16) -> ReLU -> max pool 2 -> conv 3x3 (32) -> ReLU -> dropout -> dense 10."""
    from .. import nn

    layers = [
        nn.Conv2D(1, 16, 3), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 32, 3), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.25, seed=seed), nn.Dense(4 * 4 * 32, 10),
    ]
    return nn.Sequential(layers, input_shape=(8, 8, 1), seed=seed)


def run(args: argparse.Namespace) -> int:
    from .. import data, nn

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be a positive number; got {args.lr}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out}: exists and is not a folder")
    _common.check_replace("train", [out / name for name in OUTPUTS], args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    split = data.digits(seed=args.seed)
    model = digits_model(args.seed)
    print(f"digits: {len(split.x_train)} training and {len(split.x_test)} test images of 8x8 pixels")
    model.summary()
    history = model.fit(split.x_train, split.y_train, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=nn.Adam(args.lr), validation_data=(split.x_test, split.y_test),
                        seed=args.seed, progress=sys.stderr.isatty())
    _report(history)
    predicted = model.predict(split.x_test).argmax(axis=1)
    matrix = confusion_matrix(split.y_test, predicted, classes=10)
    accuracy = float(np.trace(matrix) / matrix.sum())
    print(f"test accuracy: {accuracy:.4f} ({int(np.trace(matrix))} of {matrix.sum()})")
    _write_outputs(out, model, history, matrix, accuracy)
    return 0


def _report(history: dict) -> None:
    """One line per epoch when no progress bar was shown (not a terminal)."""
    if sys.stderr.isatty():
        return
    for epoch, values in enumerate(zip(history["loss"], history["accuracy"], history["val_accuracy"]), 1):
        loss, accuracy, test_accuracy = values
        print(f"epoch {epoch}: loss {loss:.4f}, training accuracy {accuracy:.4f}, test accuracy {test_accuracy:.4f}")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs, (classes, classes)."""
    matrix = np.zeros((classes, classes), int)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def _write_outputs(out: Path, model, history: dict, matrix: np.ndarray, accuracy: float) -> None:
    from ..explain import plot

    kernel = model.layers[0].params["kernel"]
    figures = {
        "filters.png": plot.filters_figure(kernel, title="learned first-layer filters (3x3, red +, blue -)"),
        "curves.png": plot.curves_figure(history),
        "confusion.png": plot.confusion_figure(matrix, title=f"test set, accuracy {accuracy:.2%}"),
    }
    for name, figure in figures.items():
        atomic_write(out / name, lambda temporary, f=figure: f.savefig(temporary, format="png", dpi=110))
    model.save(out / "weights.npz")
    print(f"wrote {', '.join(figures)} and weights.npz in {out.resolve()}")
