"""Weight initialisation, seeded: He for layers followed by ReLU, Glorot otherwise.

A layer's ``seed`` is an int, None or a ``numpy.random.Generator`` (:func:`as_generator`).
"""

from __future__ import annotations

import numpy as np


def as_generator(seed) -> np.random.Generator:
    """The generator a layer draws from: ``seed`` itself if it is one, else a new one seeded by it.

    >>> rng = np.random.default_rng(0)
    >>> as_generator(rng) is rng, type(as_generator(0)).__name__
    (True, 'Generator')
    """
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def weights(rng: np.random.Generator, shape: tuple, scheme: str, *, fan_in: int, fan_out: int) -> np.ndarray:
    """New float32 weights of ``shape``.

    'he': normal with standard deviation ``sqrt(2 / fan_in)`` (He et al., 2015), which keeps
    the variance of ReLU activations from layer to layer; 'glorot': uniform on
    ``[-a, a]`` with ``a = sqrt(6 / (fan_in + fan_out))`` (Glorot and Bengio, 2010).

    >>> w = weights(np.random.default_rng(0), (3, 3, 1, 8), "he", fan_in=9, fan_out=72)
    >>> w.shape, w.dtype
    ((3, 3, 1, 8), dtype('float32'))
    """
    if scheme == "he":
        values = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    elif scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, size=shape)
    else:
        raise ValueError(f"init must be 'auto', 'he' or 'glorot'; got {scheme!r}")
    return values.astype(np.float32)
