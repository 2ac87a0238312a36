"""``BatchNorm2D``: batch normalisation over the channels (the last axis), trained with the
batch's statistics and run with the running ones."""

from __future__ import annotations

import numpy as np

from .. import normalization
from .._args import as_int
from .layers import Layer


class BatchNorm2D(Layer):
    """Batch normalisation of ``(n, h, w, c)`` (or ``(n, c)``) per channel, as PyTorch's
    ``BatchNorm2d``.

    Training (``forward(x, training=True)``) normalises by the batch's mean and biased
    variance over every axis but the channels and updates the running statistics:
    ``running = (1 - momentum) * running + momentum * batch`` (the unbiased variance, as
    PyTorch keeps). Inference normalises by the running statistics. ``params`` holds
    ``gamma`` and ``beta``; ``buffers`` the running mean and variance (saved with the weights).

    >>> layer = BatchNorm2D(3)
    >>> y = layer.forward(np.arange(24.0).reshape(2, 2, 2, 3), training=True)
    >>> np.round(y.mean(axis=(0, 1, 2)), 12).tolist(), np.round(layer.running_mean.astype(float), 6).tolist()
    ([0.0, 0.0, 0.0], [1.05, 1.15, 1.25])
    >>> layer.num_params == 2 * 3
    True
    """

    def __init__(self, channels, momentum=0.1, epsilon=1e-5):
        super().__init__()
        self.channels = as_int("channels", channels, minimum=1)
        if not 0 <= float(momentum) <= 1:
            raise ValueError(f"momentum must be in [0, 1]; got {momentum!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.params = {"gamma": np.ones(self.channels, np.float32), "beta": np.zeros(self.channels, np.float32)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.buffers = {"running_mean": np.zeros(self.channels, np.float32),
                        "running_var": np.ones(self.channels, np.float32)}
        self._stats = self._x = None

    @property
    def running_mean(self) -> np.ndarray:
        return self.buffers["running_mean"]

    @property
    def running_var(self) -> np.ndarray:
        return self.buffers["running_var"]

    def forward(self, x, training=False):
        self._check(x.shape[-1:], x.shape)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._stats, self._x = None, x
            return normalization.batch_norm(x, self.running_mean, self.running_var, gamma, beta,
                                            epsilon=self.epsilon)
        y, self._stats = normalization.batch_norm_train(x, gamma, beta, epsilon=self.epsilon)
        count = x.size // self.channels
        unbiased = self._stats.variance * (count / max(count - 1, 1))
        m = self.momentum
        self.running_mean[...] = (1 - m) * self.running_mean + m * self._stats.mean
        self.running_var[...] = (1 - m) * self.running_var + m * unbiased
        return y

    def backward(self, grad):
        gamma = self.params["gamma"]
        if self._stats is not None:
            grad_x, self.grads["gamma"], self.grads["beta"] = normalization.batch_norm_backward(grad, self._stats, gamma)
            return grad_x
        scale, _ = normalization.affine(self.running_mean, self.running_var, gamma, self.params["beta"], self.epsilon)
        dtype = np.result_type(grad, np.float32)
        normalized = normalization.batch_norm(self._x, self.running_mean, self.running_var, np.ones_like(gamma),
                                              np.zeros_like(gamma), epsilon=self.epsilon)
        axes = tuple(range(grad.ndim - 1))
        self.grads["gamma"], self.grads["beta"] = (grad * normalized).sum(axis=axes), grad.sum(axis=axes)
        return (grad * scale.astype(dtype)).astype(dtype)

    def output_shape(self, input_shape):
        self._check(tuple(input_shape)[-1:], input_shape)
        return tuple(input_shape)

    def _check(self, channels, shape):
        if channels != (self.channels,):
            raise ValueError(f"BatchNorm2D({self.channels}) needs {self.channels} channels on the last axis; got "
                             f"input shape {tuple(shape)}")

    def config(self):
        return {"channels": self.channels, "momentum": self.momentum, "epsilon": self.epsilon}

    def _arguments(self):
        shown = {0: self.channels}
        if self.momentum != 0.1:
            shown["momentum"] = self.momentum
        if self.epsilon != 1e-5:
            shown["epsilon"] = self.epsilon
        return shown
