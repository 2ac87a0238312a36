"""Data sets that ship inside installed packages (nothing is downloaded)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """Images (n, h, w, c) float32 and integer labels (n,), for training and testing."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels, ten classes.

    Pixel values 0..16 are scaled to [0, 1] and given a channel axis, (n, 8, 8, 1). The
    split is stratified (every digit in the same proportion in both parts) and fixed by
    ``seed``.

    >>> split = digits()
    >>> split.x_train.shape, split.x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    parts = train_test_split(images, bunch.target, test_size=test_size, stratify=bunch.target,
                             random_state=seed)
    x_train, x_test, y_train, y_test = parts
    return Split(x_train, y_train, x_test, y_test)
