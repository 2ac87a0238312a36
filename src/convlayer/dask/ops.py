"""Elementwise ops and whole models on Dask arrays: :func:`relu`, :func:`predict`."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from .. import _validate
from .._args import as_int


def relu(x: da.Array) -> da.Array:
    """:func:`convlayer.relu` on a Dask array: ``max(x, 0)``, lazily, x's dtype and chunks.

    >>> import dask.array as da
    >>> relu(da.from_array([-1.5, 0.0, 2.0])).compute()
    array([0., 0., 2.])
    """
    _validate.as_real_array("x", np.zeros((), x.dtype))  # the dtype checks, on no data
    return da.maximum(x, x.dtype.type(0))


def predict(model, x: da.Array, batch_size: int = 256) -> da.Array:
    """A model's outputs for a Dask array of examples, batch by batch, lazily.

    Parameters
    ----------
    model : convlayer.nn.Sequential (or anything with ``forward(batch)``)
        Sent to each worker once; its ``forward`` runs on batches of ``batch_size``.
    x : dask.array.Array, shape (n, ...)
        The examples; each batch is one chunk of ``x`` rechunked along ``n`` only.
    batch_size : int

    Returns
    -------
    dask.array.Array, shape (n, ...)
        ``model.forward`` of each batch, concatenated; equal to ``model.predict(x.compute())``.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from convlayer.nn import Conv2D, Flatten, Dense, Sequential
    >>> model = Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 4 * 4, 3)], seed=0)
    >>> x = da.zeros((10, 4, 4, 1), chunks=5)
    >>> predict(model, x, batch_size=4).chunks
    ((4, 4, 2), (3,))
    """
    batch_size = as_int("batch_size", batch_size, minimum=1)
    batches = x.rechunk((batch_size,) + tuple(-1 for _ in x.shape[1:]))
    probe = model.forward(np.zeros((1,) + x.shape[1:], x.dtype))
    shared = dask.delayed(model, traverse=False)  # one task holds the model; batches refer to it
    parts = [
        da.from_delayed(dask.delayed(_forward)(shared, batch), (size,) + probe.shape[1:], probe.dtype)
        for batch, size in zip(batches.to_delayed().ravel(), batches.chunks[0])
    ]
    return da.concatenate(parts) if parts else da.from_array(model.forward(np.asarray(x)))


def _forward(model, batch: np.ndarray) -> np.ndarray:
    """One batch through the model (inference: no dropout)."""
    return model.forward(batch)
