"""Softmax cross-entropy, computed stably from logits."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, classes)`` logits, shifted by the row maximum so that
    ``exp`` never overflows.

    >>> softmax(np.array([[0.0, 1000.0]]))
    array([[0., 1.]])
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``, and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (n, classes)
    labels : ndarray of int, shape (n,)

    Returns
    -------
    loss : float
        ``mean(logsumexp(logits) - logits[label])``, with the log-sum-exp shifted by the row
        maximum, so large logits neither overflow nor lose the loss to rounding.
    grad : ndarray, shape (n, classes)
        ``(softmax(logits) - onehot(labels)) / n``.

    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6) == round(float(np.log(4)), 6)
    True
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (n, classes) and labels (n,); got logits shape {logits.shape} "
                         f"and labels shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be in [0, {logits.shape[1]}); got values from {labels.min()} "
                         f"to {labels.max()}")
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    rows = np.arange(n)
    loss = float(np.mean(log_sum - shifted[rows, labels])) if n else 0.0
    grad = np.exp(shifted - log_sum[:, None])
    grad[rows, labels] -= 1.0
    return loss, grad / max(n, 1)
