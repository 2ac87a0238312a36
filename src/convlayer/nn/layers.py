"""Layers: thin shells over the functional ops that remember what backward needs.

The convolution layers (shared, tiled, regions, unshared) are in :mod:`.conv`, the pooling
layers in :mod:`.pool`.

Every layer has ``forward(x, training=False)`` and ``backward(grad)``, which returns the
gradient for the input and stores parameter gradients in ``grads`` (same keys as
``params``). ``output_shape(input_shape)`` works on one example's shape (no batch axis),
for ``Sequential.summary``. Arithmetic lives in :mod:`convlayer.functional` and
:mod:`convlayer.pooling`; here there is only bookkeeping.

Layouts are channels-last: images ``(n, h, w, c)``, features ``(n, f)``.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._args import as_int
from . import init
from .init import as_generator
from .symbolic import Symbol


class Layer:
    """Base class: no parameters, identity shape.

    Calling a layer on a symbolic tensor (``layer(nn.Input((32, 32, 3)))``) connects it in a
    graph model (:class:`convlayer.nn.Model`); ``forward`` computes.
    """

    params: dict
    grads: dict
    takes_list = False  # True for layers that join several inputs (Add, Concat)

    def __init__(self):
        self.params, self.grads, self.buffers = {}, {}, {}

    def __call__(self, inputs):
        return Symbol.connect(self, inputs)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    @property
    def num_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def initialize(self, rng: np.random.Generator, followed_by_relu: bool) -> None:
        """Draw parameters again (layers without parameters have nothing to draw)."""

    def config(self) -> "dict | None":
        """The constructor's keyword arguments that rebuild this layer (weights apart).

        ``type(layer)(**layer.config())`` makes a layer of the same architecture; a saved model
        stores these (:meth:`convlayer.nn.Sequential.save`). Values are JSON-ready: numbers,
        strings, None and tuples (a layer argument, such as :class:`MaxUnpool2D`'s pool, is the
        layer itself; saving writes its index). Layers without constructor arguments return
        ``{}``; a layer class of your own returns None unless it defines ``config`` (its model
        then saves weights only).
        """
        return {} if type(self).__init__ in _NO_ARGUMENTS else None

    def _arguments(self) -> dict:
        """Constructor arguments that differ from their defaults, for repr."""
        return {}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" if not isinstance(k, int) else repr(v)
                          for k, v in self._arguments().items())
        return f"{type(self).__name__}({shown})"


class Dense(Layer):
    """A fully connected layer: ``x @ weights + bias`` on ``(n, in_features)``.

    ``init`` and ``seed`` as for :class:`Conv2D`; 'auto' is Glorot unless a ``Sequential``
    finds a ReLU after the layer.

    >>> Dense(64, 10, seed=0).forward(np.ones((5, 64), np.float32)).shape
    (5, 10)
    """

    def __init__(self, in_features, out_features, bias=True, *, init="auto", seed=None):
        super().__init__()
        self.in_features = as_int("in_features", in_features, minimum=1)
        self.out_features = as_int("out_features", out_features, minimum=1)
        self.bias, self.init, self._x = bool(bias), init, None
        self.initialize(as_generator(seed), followed_by_relu=init == "he")

    def initialize(self, rng, followed_by_relu=False) -> None:
        scheme = self.init if self.init != "auto" else ("he" if followed_by_relu else "glorot")
        shape = (self.in_features, self.out_features)
        self.params = {"weights": init.weights(rng, shape, scheme, fan_in=shape[0], fan_out=shape[1])}
        if self.bias:
            self.params["bias"] = np.zeros(self.out_features, np.float32)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x, training=False):
        self._x = x
        return F.dense(x, self.params["weights"], self.params.get("bias"))

    def backward(self, grad):
        grad_x, self.grads["weights"], grad_bias = F.dense_backward(grad, self._x, self.params["weights"])
        if self.bias:
            self.grads["bias"] = grad_bias
        return grad_x

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense({self.in_features}, {self.out_features}) needs inputs of shape "
                             f"({self.in_features},); got {tuple(input_shape)}")
        return (self.out_features,)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias,
                "init": self.init}

    def _arguments(self):
        return {0: self.in_features, 1: self.out_features, **({} if self.bias else {"bias": False})}


class ReLU(Layer):
    """``max(x, 0)``; the gradient is 0 where x <= 0."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x, training=False):
        self._x = x
        return F.relu(x)

    def backward(self, grad):
        return F.relu_backward(grad, self._x)


class Flatten(Layer):
    """``(n, h, w, c)`` to ``(n, h * w * c)``, in C order.

    ``data_format="channels_first"`` flattens in PyTorch's order, channel by channel
    (``(n, c * h * w)`` of the ``(n, c, h, w)`` transpose), so the weights of a PyTorch
    ``Linear`` after ``flatten`` port to :class:`Dense` as they are (``weight.T``), without a
    reshape trick.

    >>> x = np.arange(8).reshape(1, 2, 2, 2)                # (n, h, w, c)
    >>> Flatten().forward(x).tolist(), Flatten("channels_first").forward(x).tolist()
    ([[0, 1, 2, 3, 4, 5, 6, 7]], [[0, 2, 4, 6, 1, 3, 5, 7]])
    """

    def __init__(self, data_format="channels_last"):
        super().__init__()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; got {data_format!r}")
        self.data_format, self._shape = data_format, None

    def _ordered(self, x):
        return np.moveaxis(x, -1, 1) if self.data_format == "channels_first" and x.ndim > 2 else x

    def forward(self, x, training=False):
        self._shape = x.shape
        return np.ascontiguousarray(self._ordered(x)).reshape(x.shape[0], -1)

    def backward(self, grad):
        if self.data_format == "channels_first" and len(self._shape) > 2:
            n, *spatial, c = self._shape
            return np.moveaxis(grad.reshape((n, c, *spatial)), 1, -1)
        return grad.reshape(self._shape)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def config(self):
        return {"data_format": self.data_format}

    def _arguments(self):
        return {0: self.data_format} if self.data_format != "channels_last" else {}


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; at inference, the identity.

    The mask of the last training forward is kept in ``mask`` (backward uses it).
    """

    def __init__(self, rate=0.5, *, seed=None):
        super().__init__()
        if not 0 <= float(rate) < 1:
            raise ValueError(f"rate must be in [0, 1); got {rate!r}")
        self.rate, self.rng, self.mask = float(rate), as_generator(seed), None

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self.mask = None
            return x
        self.mask = F.dropout_mask(self.rng, x.shape, self.rate, np.result_type(x, np.float32))
        return x * self.mask

    def backward(self, grad):
        return grad if self.mask is None else grad * self.mask

    def config(self):
        return {"rate": self.rate}

    def _arguments(self):
        return {0: self.rate} if self.rate != 0.5 else {}


_NO_ARGUMENTS = (Layer.__init__, ReLU.__init__)  # constructors that take nothing
