"""Pooling layers: thin shells over :mod:`convlayer.pooling`, channels-last ``(n, h, w, c)``.

None has parameters (``summary`` counts 0). Each keeps what its backward needs: the input,
and for a :class:`MaxPool2D` paired with a :class:`MaxUnpool2D`, the arg-max indices.
"""

from __future__ import annotations

import numpy as np

from .. import pooling
from .._validate import as_norm_order
from .layers import Layer


class _Pool(Layer):
    """Shared shell of the sliding-window pools: ``pool_size``, ``strides`` and ``padding``
    positional, the other options keyword-only and shown in repr when not their defaults."""

    _forward = _backward = None
    _defaults: dict = {}

    def __init__(self, pool_size=2, strides=None, padding="valid", **options):
        super().__init__()
        self.pool_size, self.strides, self.padding = pool_size, strides, padding
        self.options = {**self._defaults, **options}
        self._x = self.input_shape = None

    def _call(self, function, *arrays):
        return function(*arrays, self.pool_size, self.strides, self.padding, **self.options)

    def forward(self, x, training=False):
        self._x, self.input_shape = x, tuple(x.shape[1:])
        return self._call(type(self)._forward, x)

    def backward(self, grad):
        return self._call(type(self)._backward, grad, self._x)

    def output_shape(self, input_shape):
        self.input_shape = tuple(input_shape)
        probe = np.zeros((1,) + tuple(input_shape), np.float32)  # pooling is cheap on one example
        return self._call(type(self)._forward, probe).shape[1:]

    def config(self):
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding, **self.options}

    def _arguments(self):
        shown = {"pool_size": self.pool_size} if self.pool_size != 2 else {}
        if self.strides is not None:
            shown["strides"] = self.strides
        if self.padding != "valid":
            shown["padding"] = self.padding
        return {**shown, **{k: v for k, v in self.options.items() if v != self._defaults[k]}}


class MaxPool2D(_Pool):
    """Max pooling (padding never wins). Default 2x2, stride 2.

    ``dilation`` and ``ceil_mode`` as in :func:`convlayer.max_pool2d`. A :class:`MaxUnpool2D`
    built on this layer makes it keep the arg-max indices of its last forward in ``indices``.

    >>> MaxPool2D(3, strides=2, ceil_mode=True)
    MaxPool2D(pool_size=3, strides=2, ceil_mode=True)
    """

    _forward, _backward = pooling.max_pool2d, pooling.max_pool2d_backward
    _defaults = {"dilation": 1, "ceil_mode": False}

    def __init__(self, pool_size=2, strides=None, padding="valid", *, dilation=1, ceil_mode=False):
        super().__init__(pool_size, strides, padding, dilation=dilation, ceil_mode=ceil_mode)
        self.keep_indices, self.indices = False, None

    def forward(self, x, training=False):
        if not self.keep_indices:
            return super().forward(x, training)
        self._x, self.input_shape = x, tuple(x.shape[1:])
        y, self.indices = pooling.max_pool2d(x, self.pool_size, self.strides, self.padding, **self.options,
                                             return_indices=True)
        return y


class AvgPool2D(_Pool):
    """Average pooling over the real pixels of each window (or, with ``count_include_pad``,
    over its taps in the padded input). Default 2x2, stride 2.

    >>> AvgPool2D(3, 1, 1, count_include_pad=True).output_shape((8, 8, 4))
    (8, 8, 4)
    """

    _forward, _backward = pooling.avg_pool2d, pooling.avg_pool2d_backward
    _defaults = {"dilation": 1, "ceil_mode": False, "count_include_pad": False}

    def __init__(self, pool_size=2, strides=None, padding="valid", *, dilation=1, ceil_mode=False,
                 count_include_pad=False):
        super().__init__(pool_size, strides, padding, dilation=dilation, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class LPPool2D(_Pool):
    """Power-average pooling, ``(sum |x|^p)^(1/p)`` over each window (:func:`convlayer.lp_pool2d`).

    >>> LPPool2D(2, 3, strides=1)
    LPPool2D(2.0, pool_size=3, strides=1)
    """

    _defaults = {"dilation": 1, "ceil_mode": False}

    def __init__(self, p, pool_size=2, strides=None, padding="valid", *, dilation=1, ceil_mode=False):
        super().__init__(pool_size, strides, padding, dilation=dilation, ceil_mode=ceil_mode)
        self.p = as_norm_order(p)

    _forward, _backward = pooling.lp_pool2d, pooling.lp_pool2d_backward

    def _call(self, function, *arrays):
        return function(*arrays, self.p, self.pool_size, self.strides, self.padding, **self.options)

    def config(self):
        return {"p": self.p, **super().config()}

    def _arguments(self):
        return {0: self.p, **super()._arguments()}


class _Binned(Layer):
    """Shared shell of the adaptive and global pools: one argument, the input kept."""

    _forward = _backward = None

    def __init__(self, argument):
        super().__init__()
        self.argument, self._x = argument, None

    def forward(self, x, training=False):
        self._x = x
        return type(self)._forward(x, self.argument)

    def backward(self, grad):
        return type(self)._backward(grad, self._x, self.argument)

    def output_shape(self, input_shape):
        probe = np.zeros((1,) + tuple(input_shape), np.float32)
        return type(self)._forward(probe, self.argument).shape[1:]


class _Adaptive(_Binned):
    def config(self):
        return {"argument": self.argument}

    def _arguments(self):
        return {0: self.argument}


class AdaptiveAvgPool2D(_Adaptive):
    """Average pooling to a fixed ``output_size`` (PyTorch's bins), whatever the input size.

    >>> AdaptiveAvgPool2D((7, 7)).output_shape((32, 24, 16))
    (7, 7, 16)
    """

    _forward, _backward = pooling.adaptive_avg_pool2d, pooling.adaptive_avg_pool2d_backward


class AdaptiveMaxPool2D(_Adaptive):
    """Max pooling to a fixed ``output_size`` (PyTorch's bins)."""

    _forward, _backward = pooling.adaptive_max_pool2d, pooling.adaptive_max_pool2d_backward


class _Global(_Binned):
    def __init__(self, keepdims=False):
        super().__init__(keepdims)

    def config(self):
        return {"keepdims": self.argument}

    def _arguments(self):
        return {"keepdims": True} if self.argument else {}


class GlobalAvgPool2D(_Global):
    """The mean of each channel over the image: ``(n, h, w, c)`` to ``(n, c)`` (``(n, 1, 1, c)``
    with ``keepdims``); ready for a :class:`Dense` layer without a Flatten.

    >>> GlobalAvgPool2D().output_shape((7, 7, 512))
    (512,)
    """

    _forward, _backward = pooling.global_avg_pool2d, pooling.global_avg_pool2d_backward


class GlobalMaxPool2D(_Global):
    """The maximum of each channel over the image (the gradient goes to its first maximum)."""

    _forward, _backward = pooling.global_max_pool2d, pooling.global_max_pool2d_backward


class MaxUnpool2D(Layer):
    """Undo a :class:`MaxPool2D`: each value goes back where that layer found it, zeros
    elsewhere, at the size of that layer's last input (SegNet's decoder).

    The pooling layer given keeps its indices from then on. ``forward`` needs that layer's
    forward first; ``output_shape`` its ``output_shape`` (as ``Sequential.summary`` does).

    >>> pool = MaxPool2D(2)
    >>> unpool = MaxUnpool2D(pool)
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> unpool.forward(pool.forward(x))[0, :2, :2, 0]
    array([[0., 0.],
           [0., 5.]])
    """

    def __init__(self, pool: MaxPool2D):
        super().__init__()
        if not isinstance(pool, MaxPool2D):
            raise TypeError(f"pool must be the MaxPool2D layer whose maxima are put back; got {pool!r}")
        self.pool, self._x = pool, None
        pool.keep_indices = True

    def _size(self, what: str) -> tuple:
        if self.pool.input_shape is None:
            raise ValueError(f"MaxUnpool2D's {what} needs {self.pool!r} to have run first: it gives the size "
                             f"and indices")
        return self.pool.input_shape[:2]

    def forward(self, x, training=False):
        self._x = x
        return pooling.max_unpool2d(x, self.pool.indices, self._size("forward"))

    def backward(self, grad):
        return pooling.max_unpool2d_backward(grad, self._x, self.pool.indices, self._size("backward"))

    def output_shape(self, input_shape):
        return tuple(self._size("output_shape")) + (input_shape[-1],)

    def config(self):
        return {"pool": self.pool}

    def _arguments(self):
        return {0: self.pool}
