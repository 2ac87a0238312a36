"""``convlayer train``: train a small CNN on scikit-learn's digits, or on your own images, and
draw what it learned.

Without ``--data`` it trains on the digits that ship inside scikit-learn (1,797 images of 8x8
pixels), so nothing is downloaded. ``--data DIR`` trains on a folder of class folders
(:func:`convlayer.data.image_folder`) with a CNN given by ``--conv``/``--dense`` or a JSON file
(``--model``; :mod:`convlayer.cli._architecture` describes its format). The split is
stratified and fixed by ``--seed``, as are the weights and the shuffling, so a run can be
repeated exactly.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from .._files import atomic_write
from . import _architecture, _common

EXAMPLE = """examples:
  convlayer train
  convlayer train --epochs 10 --lr 0.001 --seed 3 -o runs/digits
  convlayer train --data pets/ --size 32x32 --epochs 40 --early-stopping 5 --lr-schedule cosine --checkpoint best.npz
  convlayer train --data pets/ --conv 16,32,64 --dense 128 --dropout 0.5 -o runs/pets
  convlayer train --data pets/ --model arch.json

--data DIR: one sub-folder of images per class (pets/cats/, pets/dogs/: the folder names are
the class names); each image is resized to --size and a --validation-split share of each
class is held out.

--model FILE: a JSON object, either {"conv": [16, 32], "dense": [64], "dropout": 0.25,
"kernel_size": 3, "batch_norm": false} (the options' small CNN; keys may be left out) or
{"layers": [{"class": "Conv2D", "config": {"in_channels": 3, "out_channels": 8,
"kernel_size": 3}}, {"class": "ReLU", "config": {}}, ...]} (any convlayer.nn layers, as a saved
model lists them; the last must output one value per class).

writes, in OUTDIR: filters.png (the learned first-layer filters), curves.png (loss and
accuracy per epoch), confusion.png (test or validation predictions by class) and weights.npz
(the whole model: nn.Sequential.load("weights.npz") rebuilds it); --overwrite replaces
existing files of those names. --checkpoint PATH also saves the model each time the
validation loss improves."""

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
    own = parser.add_argument_group("your own images")
    own.add_argument("--data", metavar="DIR", help="train on DIR's images, one sub-folder per class "
                                                   "(default: scikit-learn's 8x8 digits)")
    own.add_argument("--size", default="32x32", metavar="HxW", help="resize every image to HxW (default 32x32)")
    own.add_argument("--validation-split", type=float, default=0.2, metavar="SHARE",
                     help="share of each class held out for validation (default 0.2)")
    own.add_argument("--color", choices=("auto", "rgb", "gray"), default="auto",
                     help="channels: 'auto' is gray when every image is gray, else RGB (default auto)")
    own.add_argument("--crop", action="store_true", help="crop images to the aspect ratio of --size about "
                                                         "their centre instead of stretching them")
    model = parser.add_argument_group("model (a small CNN: per --conv entry a 3x3 convolution, ReLU and "
                                      "2x2 max pooling; then dropout and dense layers)")
    model.add_argument("--conv", metavar="LIST", help="filters of each convolution, e.g. 16,32 "
                                                      "(default with --data: 16,32)")
    model.add_argument("--dense", metavar="LIST", help="units of each hidden dense layer, e.g. 64, or '' for "
                                                       "none (default with --data: 64)")
    model.add_argument("--dropout", type=float, metavar="RATE", help="dropout before the dense layers "
                                                                     "(default 0.25)")
    model.add_argument("--model", metavar="FILE", help="the architecture as a JSON file (see below)")
    fitting = parser.add_argument_group("training")
    fitting.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                         help="stop when the validation loss has not improved for PATIENCE epochs, and keep "
                              "the best epoch's weights")
    fitting.add_argument("--lr-schedule", choices=("cosine", "step"),
                         help="scale the learning rate each epoch: cosine decay, or 0.1x at 1/2 and 0.01x at 3/4")
    fitting.add_argument("--checkpoint", metavar="PATH", help="save the model (weights and architecture) there "
                                                              "each time the validation loss improves")


def digits_model(seed: int):
    """conv 3x3 (16) -> ReLU -> max pool 2 -> conv 3x3 (32) -> ReLU -> dropout -> dense 10."""
    from .. import nn

    layers = [
        nn.Conv2D(1, 16, 3), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 32, 3), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.25, seed=seed), nn.Dense(4 * 4 * 32, 10),
    ]
    return nn.Sequential(layers, input_shape=(8, 8, 1), seed=seed)


def _check(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be a positive number; got {args.lr}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise ValueError(f"--early-stopping must be a positive integer; got {args.early_stopping}")
    if not 0 <= args.validation_split < 1:
        raise ValueError(f"--validation-split must be in [0, 1); got {args.validation_split}")
    if args.data is None:
        for option in ("size", "validation_split", "color", "crop"):
            if getattr(args, option) != _DATA_DEFAULTS[option]:
                raise ValueError(f"--{option.replace('_', '-')} is for --data DIR (the digits are 8x8 gray, "
                                 f"split 3:1 into training and test)")
    elif args.validation_split == 0 and (args.early_stopping or args.checkpoint):
        raise ValueError("--early-stopping and --checkpoint watch the validation loss: --validation-split "
                         "must be above 0")


_DATA_DEFAULTS = {"size": "32x32", "validation_split": 0.2, "color": "auto", "crop": False}


def run(args: argparse.Namespace) -> int:
    from .. import nn

    _check(args)
    spec = _architecture.from_args(args)  # reads --model: a bad file fails before anything is written
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out}: exists and is not a folder")
    if args.checkpoint is not None and Path(args.checkpoint).is_dir():
        raise ValueError(f"--checkpoint {args.checkpoint}: is a folder; give a file name such as best.npz")
    _common.check_replace("train", [out / name for name in OUTPUTS], args.overwrite)
    if args.data is None:
        x_train, y_train, x_test, y_test, classes, word = *_digits(args.seed), [str(d) for d in range(10)], "test"
        model = digits_model(args.seed) if spec is None else _architecture.build(spec, (8, 8, 1), 10, args.seed)
    else:
        x_train, y_train, x_test, y_test, classes = _folder(args)
        word = "validation"
        spec = spec if spec is not None else _architecture.DEFAULT
        model = _architecture.build(spec, x_train.shape[1:], len(classes), args.seed)
    out.mkdir(parents=True, exist_ok=True)
    model.summary()
    validation = (x_test, y_test) if len(x_test) else None
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=nn.Adam(args.lr), validation_data=validation, seed=args.seed, progress=True,
                        early_stopping=args.early_stopping, lr_schedule=args.lr_schedule,
                        checkpoint=args.checkpoint)
    matrix, accuracy = None, None
    if validation is not None:
        predicted = model.predict(x_test).argmax(axis=1)
        matrix = confusion_matrix(y_test, predicted, classes=len(classes))
        accuracy = float(np.trace(matrix) / matrix.sum())
        print(f"{word} accuracy: {accuracy:.4f} ({int(np.trace(matrix))} of {matrix.sum()})")
    _write_outputs(out, model, history, matrix, accuracy, classes, word)
    return 0


def _digits(seed: int) -> tuple:
    from .. import data

    split = data.digits(seed=seed)
    print(f"digits: {len(split.x_train)} training and {len(split.x_test)} test images of 8x8 pixels")
    return split


def _folder(args: argparse.Namespace) -> tuple:
    from .. import data

    size = _size(args.size)
    with warnings.catch_warnings(record=True):  # the skipped files are printed below, each once
        warnings.simplefilter("always")
        folder = data.image_folder(args.data, size, validation_split=args.validation_split, seed=args.seed,
                                   color=args.color, crop=args.crop)
    for line in folder.skipped:
        _common.warn("train", line)
    counts = np.bincount(np.concatenate([folder.y_train, folder.y_val]), minlength=len(folder.classes))
    shape = "x".join(map(str, folder.x_train.shape[1:]))
    per_class = ", ".join(f"{name} {count}" for name, count in zip(folder.classes, counts))
    print(f"{args.data}: {len(folder.classes)} classes ({per_class}); {len(folder.x_train)} training and "
          f"{len(folder.x_val)} validation images of {shape}")
    return folder.x_train, folder.y_train, folder.x_val, folder.y_val, folder.classes


def _size(text: str) -> tuple:
    parts = text.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"--size must be HxW (or S for SxS), positive integers such as 32x32; got {text!r}")
    return size


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs, (classes, classes)."""
    matrix = np.zeros((classes, classes), int)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def _write_outputs(out: Path, model, history: dict, matrix, accuracy, classes: list, word: str) -> None:
    from .. import nn
    from ..explain import plot

    figures = {}
    first = next((layer for layer in model.layers if isinstance(layer, nn.Conv2D)), None)
    if first is not None:
        kernel = first.params["kernel"]
        kernel = kernel[(0,) * (kernel.ndim - 4)]  # a layer with kernel banks: its first bank
        size = "x".join(map(str, kernel.shape[:2]))
        channel = "" if kernel.shape[2] == 1 else ", input channel 0"
        figures["filters.png"] = plot.filters_figure(
            kernel, title=f"learned first-layer filters ({size}{channel}, red +, blue -)")
    figures["curves.png"] = plot.curves_figure(history, held_out=word)
    if matrix is not None:
        figure = plot.confusion_figure(matrix, title=f"{word} set, accuracy {accuracy:.2%}")
        if classes != [str(c) for c in range(len(classes))]:
            axes = figure.axes[0]
            axes.set_xticklabels(classes, rotation=45, ha="right")
            axes.set_yticklabels(classes)
        figures["confusion.png"] = figure
    for name, figure in figures.items():
        atomic_write(out / name, lambda temporary, f=figure: f.savefig(temporary, format="png", dpi=110))
    model.save(out / "weights.npz")
    print(f"wrote {', '.join(figures)} and weights.npz in {out.resolve()}")
