"""Optimisers: SGD with momentum and weight decay, and Adam.

An optimiser updates parameter arrays in place from their gradients. It is given the
layers' ``params`` and ``grads`` dictionaries through :meth:`step`, and keeps its own state
(velocities, moments) per parameter.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent: ``v = momentum * v + g + weight_decay * p; p -= lr * v``.

    The same update as ``torch.optim.SGD`` (weight decay added to the gradient, no
    dampening).
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        _check_positive("lr", lr)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self._velocity = {}

    def step(self, pairs) -> None:
        """Update every parameter of ``pairs``, an iterable of (key, param, grad)."""
        for key, param, grad in pairs:
            update = grad + self.weight_decay * param if self.weight_decay else grad
            if self.momentum:
                velocity = self._velocity.get(key)
                velocity = update.copy() if velocity is None else self.momentum * velocity + update
                self._velocity[key] = velocity
                update = velocity
            param -= (self.lr * update).astype(param.dtype)


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction, as ``torch.optim.Adam``
    (``weight_decay`` adds ``weight_decay * p`` to the gradient, L2 style)."""

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        _check_positive("lr", lr)
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), float(eps), float(weight_decay)
        self._moments, self._steps = {}, {}

    def step(self, pairs) -> None:
        beta1, beta2 = self.betas
        for key, param, grad in pairs:
            if self.weight_decay:
                grad = grad + self.weight_decay * param
            first, second = self._moments.get(key, (np.zeros_like(param), np.zeros_like(param)))
            first = beta1 * first + (1 - beta1) * grad
            second = beta2 * second + (1 - beta2) * grad * grad
            self._moments[key] = (first, second)
            steps = self._steps[key] = self._steps.get(key, 0) + 1
            corrected_first = first / (1 - beta1**steps)
            corrected_second = second / (1 - beta2**steps)
            param -= (self.lr * corrected_first / (np.sqrt(corrected_second) + self.eps)).astype(param.dtype)


def _check_positive(name: str, value) -> None:
    if not float(value) > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
