"""Batch normalisation, beside its gradient: per channel, the last axis.

Inference is an affine map per channel, ``x * scale + shift`` with ``scale = gamma /
sqrt(var + epsilon)`` and ``shift = beta - mean * scale``: the form that folds into the
convolution before it. Training normalises by the batch's own mean and (biased) variance
over every axis but the last, and returns what the gradient needs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _validate


def affine(mean, variance, gamma, beta, epsilon: float = 1e-5) -> "tuple[np.ndarray, np.ndarray]":
    """``(scale, shift)`` of inference batch normalisation, computed in float64.

    >>> affine([1.0], [3.0], [2.0], [0.5], epsilon=1.0)
    (array([1.]), array([-0.5]))
    """
    mean, variance, gamma, beta = (np.asarray(a, np.float64) for a in (mean, variance, gamma, beta))
    scale = gamma / np.sqrt(variance + epsilon)
    return scale, beta - mean * scale


def batch_norm(x, mean, variance, gamma, beta, *, epsilon: float = 1e-5) -> np.ndarray:
    """Inference batch normalisation over the last axis: ``(x - mean) / sqrt(var + eps) * gamma + beta``.

    Parameters
    ----------
    x : array_like, shape (..., c)
    mean, variance, gamma, beta : array_like, shape (c,)
    epsilon : float

    Returns
    -------
    ndarray of x's float dtype (``numpy.result_type(x, numpy.float32)``)

    >>> batch_norm(np.array([[1.0, 2.0]]), [1.0, 0.0], [1.0, 4.0], [1.0, 1.0], [0.0, 1.0], epsilon=0.0)
    array([[0., 2.]])
    """
    x = _validate.as_real_array("x", x)
    dtype = np.result_type(x, np.float32)
    scale, shift = affine(mean, variance, gamma, beta, epsilon)
    if scale.shape != (x.shape[-1],):
        raise ValueError(f"mean, variance, gamma and beta must have x's {x.shape[-1]} channels (its last axis); "
                         f"got shape {scale.shape} for x shape {x.shape}")
    out = x.astype(dtype, copy=True)
    out *= scale.astype(dtype)
    out += shift.astype(dtype)
    return out


class BatchStats(NamedTuple):
    """What a training forward pass computed and the gradient needs."""

    mean: np.ndarray  # (c,), the batch's mean
    variance: np.ndarray  # (c,), the batch's biased variance
    normalized: np.ndarray  # x's shape: (x - mean) / sqrt(variance + epsilon)
    inv_std: np.ndarray  # (c,)


def batch_norm_train(x, gamma, beta, *, epsilon: float = 1e-5) -> "tuple[np.ndarray, BatchStats]":
    """Training batch normalisation: normalise by the batch's statistics over all but the last axis.

    Returns ``(y, stats)``; ``stats.variance`` is biased (divided by the count), as the
    normalisation uses it (PyTorch keeps the unbiased one in its running variance).

    >>> y, stats = batch_norm_train(np.array([[1.0], [3.0]]), [1.0], [0.0], epsilon=0.0)
    >>> y.ravel().tolist(), stats.mean.tolist(), stats.variance.tolist()
    ([-1.0, 1.0], [2.0], [1.0])
    """
    x = _validate.as_real_array("x", x)
    dtype = np.result_type(x, np.float32)
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, dtype=np.float64)
    variance = np.square(x - mean).mean(axis=axes)
    inv_std = 1.0 / np.sqrt(variance + epsilon)
    normalized = ((x - mean) * inv_std).astype(dtype)
    y = normalized * np.asarray(gamma, dtype) + np.asarray(beta, dtype)
    return y, BatchStats(mean, variance, normalized, inv_std.astype(dtype))


def batch_norm_backward(grad_out, stats: BatchStats, gamma) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Gradients of :func:`batch_norm_train`: ``(grad_x, grad_gamma, grad_beta)``.

    With ``x_hat`` the normalised input and ``m`` the count per channel,
    ``grad_x = gamma * inv_std / m * (m * g - sum(g) - x_hat * sum(g * x_hat))``.

    >>> y, stats = batch_norm_train(np.array([[1.0], [3.0]]), [1.0], [0.0], epsilon=0.0)
    >>> [a.ravel().tolist() for a in batch_norm_backward(np.array([[1.0], [0.0]]), stats, [1.0])]
    [[0.0, 0.0], [-1.0], [1.0]]
    """
    grad = np.asarray(grad_out, stats.normalized.dtype)
    if grad.shape != stats.normalized.shape:
        raise ValueError(f"grad_out must have the output's shape {stats.normalized.shape}; got {grad.shape}")
    axes = tuple(range(grad.ndim - 1))
    count = grad.size // grad.shape[-1]
    grad_beta = grad.sum(axis=axes)
    grad_gamma = (grad * stats.normalized).sum(axis=axes)
    gamma = np.asarray(gamma, grad.dtype)
    grad_x = (gamma * stats.inv_std / count) * (count * grad - grad_beta - stats.normalized * grad_gamma)
    return grad_x.astype(grad.dtype), grad_gamma, grad_beta
