"""``Sequential.fit``'s loop: mini-batches, progress, early stopping, schedules, checkpoints.

Progress goes to standard error: a tqdm bar per epoch on a terminal, one plain line per epoch
otherwise (a log file gets lines, not a bar's redraws) or when tqdm is not installed.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .._args import as_int
from .optim import Adam

SCHEDULES = ("cosine", "step")


def schedule_factor(schedule, epoch: int, epochs: int) -> float:
    """The learning-rate factor of ``epoch`` (from 0) of ``epochs`` under ``schedule``.

    >>> [round(schedule_factor("cosine", e, 4), 3) for e in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> [schedule_factor("step", e, 8) for e in range(8)]
    [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """
    if schedule is None:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return 1.0 if epoch < epochs / 2 else 0.1 if epoch < 3 * epochs / 4 else 0.01
    factor = float(schedule(epoch))
    if not (math.isfinite(factor) and factor >= 0):
        raise ValueError(f"lr_schedule({epoch}) must return a finite factor >= 0; got {factor!r}")
    return factor


def _check(x, labels, epochs, batch_size, validation_data, early_stopping, lr_schedule) -> None:
    as_int("epochs", epochs, minimum=1)
    as_int("batch_size", batch_size, minimum=1)
    if len(x) != len(labels):
        raise ValueError(f"x and labels must have one example each; got {len(x)} examples and {len(labels)} labels")
    if early_stopping is not None:
        as_int("early_stopping", early_stopping, minimum=1)
        if validation_data is None:
            raise ValueError("early_stopping watches the validation loss, so it needs validation_data=(x, labels); "
                             "got None")
    if lr_schedule is not None and lr_schedule not in SCHEDULES and not callable(lr_schedule):
        raise ValueError(f"lr_schedule must be 'cosine', 'step', a function epoch -> factor or None; "
                         f"got {lr_schedule!r}")


def fit(model, x, labels, *, epochs, batch_size, optimizer, validation_data, seed, progress, early_stopping,
        lr_schedule, checkpoint) -> dict:
    """See :meth:`convlayer.nn.Sequential.fit`."""
    _check(x, labels, epochs, batch_size, validation_data, early_stopping, lr_schedule)
    optimizer = optimizer if optimizer is not None else Adam()
    base_lr, rng = optimizer.lr, np.random.default_rng(seed)
    history = {"loss": [], "accuracy": []}
    best_loss, best_weights, waited = math.inf, None, 0
    try:
        for epoch in range(epochs):
            started = time.perf_counter()
            if lr_schedule is not None:
                optimizer.lr = base_lr * schedule_factor(lr_schedule, epoch, epochs)
                history.setdefault("lr", []).append(optimizer.lr)
            reporter = _Reporter(progress, epoch, epochs, -(-len(x) // batch_size))
            order = rng.permutation(len(x))
            totals = np.zeros(3)  # loss * count, correct, count
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                loss, accuracy = model.train_step(x[batch], labels[batch], optimizer)
                totals += (loss * len(batch), accuracy * len(batch), len(batch))
                reporter.batch(loss=totals[0] / totals[2], accuracy=totals[1] / totals[2])
            history["loss"].append(float(totals[0] / totals[2]))
            history["accuracy"].append(float(totals[1] / totals[2]))
            improved = validation_data is None
            if validation_data is not None:
                val_loss, val_accuracy = model.evaluate(*validation_data)
                history.setdefault("val_loss", []).append(val_loss)
                history.setdefault("val_accuracy", []).append(val_accuracy)
                improved, waited = val_loss < best_loss, 0 if val_loss < best_loss else waited + 1
                if improved:
                    best_loss = val_loss
                    if early_stopping is not None:
                        best_weights = {key: array.copy() for key, array in model._stored().items()}
            if checkpoint is not None and improved:
                model.save(checkpoint)
            reporter.end({k: v[-1] for k, v in history.items()}, time.perf_counter() - started)
            if early_stopping is not None and waited >= early_stopping:
                reporter.note(f"early stopping: val_loss has not improved for {waited} epochs; "
                              f"the weights of epoch {epoch + 1 - waited} (val_loss {best_loss:.4f}) are kept")
                break
    finally:
        optimizer.lr = base_lr
    if best_weights is not None:
        for key, array in model._stored().items():
            array[...] = best_weights[key]
    return history


class _Reporter:
    """One epoch's progress: a tqdm bar on a terminal, else one line at the epoch's end."""

    def __init__(self, enabled: bool, epoch: int, epochs: int, batches: int):
        self.enabled, self.title = enabled, f"epoch {epoch + 1}/{epochs}"
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm comes with the images extra; without it, the plain lines
                return
            self.bar = tqdm(total=batches, desc=self.title, unit="batch", leave=True, file=sys.stderr)

    def batch(self, loss: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.3f}", refresh=False)

    def end(self, last: dict, seconds: float) -> None:
        if self.bar is not None:
            shown = {"loss": f"{last['loss']:.4f}", "acc": f"{last['accuracy']:.3f}"}
            if "val_loss" in last:
                shown.update(val_loss=f"{last['val_loss']:.4f}", val_acc=f"{last['val_accuracy']:.3f}")
            self.bar.set_postfix(shown)
            self.bar.close()
        elif self.enabled:
            parts = [f"{name} {last[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy")
                     if name in last]
            if "lr" in last:
                parts.append(f"lr {last['lr']:.3g}")
            print(f"{self.title}: {', '.join(parts)}, {seconds:.1f} s", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)
