"""``Sequential``: layers in a row, with training, evaluation, a summary and saved weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import _validate, shapes
from .._files import atomic_write
from . import receptive, saving
from .conv import Conv2D, Conv2DTranspose
from .init import as_generator
from .layers import Dense, Layer, ReLU
from .losses import softmax_cross_entropy
from .pool import MaxUnpool2D, _Binned, _Pool
from .receptive import ReceptiveField  # noqa: F401 (its old home; receptive_field returns these)


class Sequential:
    """A model that applies its layers one after the other.

    Parameters
    ----------
    layers : list of Layer
    input_shape : tuple, optional
        One example's shape, e.g. ``(8, 8, 1)``; needed by :meth:`summary` unless given there.
    seed : int or numpy.random.Generator, optional
        Draw every layer's weights again from this seed, with He initialisation for layers
        followed by a ReLU and Glorot for the others ('auto' layers). Without it, layers
        keep the weights they were built with.

    Raises
    ------
    ValueError
        With ``input_shape``, when a layer does not fit the shape the layers before it give
        (a ``Dense`` of the wrong size, say): the message names the layer's index, the layer,
        the shape it receives and the one it expects.

    Examples
    --------
    >>> from convlayer.nn import Conv2D, Dense, Flatten, ReLU
    >>> model = Sequential([Conv2D(1, 4, 3), ReLU(), Flatten(), Dense(4 * 8 * 8, 10)],
    ...                    input_shape=(8, 8, 1), seed=0)
    >>> model.forward(np.zeros((2, 8, 8, 1), np.float32)).shape
    (2, 10)
    """

    def __init__(self, layers, *, input_shape=None, seed=None):
        self.layers = list(layers)
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{index}] must be a convlayer.nn layer; got {layer!r}")
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self._check_shapes()
        if seed is not None:
            rng = as_generator(seed)
            for index, layer in enumerate(self.layers):
                following = self.layers[index + 1] if index + 1 < len(self.layers) else None
                layer.initialize(rng, followed_by_relu=isinstance(following, ReLU))

    def _check_shapes(self) -> None:
        """Run one example's shape through every layer, so a misfit fails here and names its layer."""
        shape = self.input_shape
        if shape is None:
            return
        for index, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except ValueError as error:
                source = "input_shape" if index == 0 else f"layers[0:{index}] from input_shape {self.input_shape}"
                raise ValueError(f"layers[{index}], {layer!r}, receives examples of shape {shape} ({source}) "
                                 f"and does not fit them: {error}") from None

    def _check_batch(self, x) -> None:
        """``x`` must have a batch axis: one image alone is the commonest slip."""
        if self.input_shape is not None:
            rank, expected = len(self.input_shape) + 1, "(n, " + ", ".join(map(str, self.input_shape)) + ")"
        elif self.layers and isinstance(self.layers[0], Dense):
            rank, expected = 2, f"(n, {self.layers[0].in_features})"
        elif self.layers and isinstance(self.layers[0], (Conv2D, Conv2DTranspose, _Pool, _Binned, MaxUnpool2D)):
            rank, expected = 4, "(n, h, w, c)"
        else:
            return
        if np.ndim(x) != rank:
            hint = "; for one example, x[None] makes a batch of one" if np.ndim(x) == rank - 1 else ""
            raise ValueError(f"x must be a batch of shape {expected}; got shape {np.shape(x)}{hint}")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The model's output for the batch ``x`` (``training`` turns dropout and batch statistics on).

        Raises
        ------
        ValueError
            If ``x`` has no batch axis (one image of shape ``(h, w, c)``; use ``x[None]``).
        """
        self._check_batch(x)
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Back-propagate ``grad`` (the loss gradient of the output); return the input's.

        Each layer keeps its parameter gradients in ``grads``.
        """
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self):
        """(key, parameter, gradient) for every parameter, as optimisers take them."""
        for index, layer in enumerate(self.layers):
            for name, param in layer.params.items():
                yield (index, name), param, layer.grads[name]

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's outputs (logits for a classifier) for ``x``, batch by batch.

        A Dask array gives a lazy Dask array, its batches computed in parallel by Dask's
        scheduler or cluster (see :func:`convlayer.dask.predict`).

        As in PyTorch, results are not promised bit-identical across batch sizes: another batch
        size can take another block plan or algorithm, whose float32 sums round differently.
        What is promised is that each result is within float32 rounding of the exact (float64)
        forward pass.
        """
        if _validate.is_dask_array(x):
            from .. import dask as _dask

            return _dask.predict(self, x, batch_size)
        outputs = [self.forward(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
        return np.concatenate(outputs) if outputs else self.forward(x)

    def evaluate(self, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> tuple[float, float]:
        """Mean softmax cross-entropy and accuracy on ``(x, labels)``."""
        logits = self.predict(x, batch_size)
        loss, _ = softmax_cross_entropy(logits, labels)
        return loss, float(np.mean(logits.argmax(axis=1) == labels))

    def train_step(self, x: np.ndarray, labels: np.ndarray, optimizer) -> tuple[float, float]:
        """One update on one batch; returns the batch's loss and accuracy before the update."""
        logits = self.forward(x, training=True)
        loss, grad = softmax_cross_entropy(logits, labels)
        self.backward(grad)
        optimizer.step(self.parameters())
        return loss, float(np.mean(logits.argmax(axis=1) == labels))

    def fit(self, x, labels, *, epochs=10, batch_size=32, optimizer=None, validation_data=None,
            seed=0, progress=True, early_stopping=None, lr_schedule=None, checkpoint=None) -> dict:
        """Train with softmax cross-entropy on shuffled mini-batches.

        Parameters
        ----------
        x : ndarray, shape (n, ...)
        labels : ndarray of int, shape (n,)
        epochs, batch_size : int
        optimizer : SGD or Adam, optional
            Default ``Adam()`` (learning rate 1e-3).
        validation_data : (x, labels), optional
            Evaluated after every epoch.
        seed : int
            For the shuffling order.
        progress : bool
            Report progress on standard error: on a terminal, a tqdm bar per epoch with the
            running loss and accuracy, and the validation loss and accuracy at the epoch's
            end; otherwise (a log file, a pipe) one plain line per epoch, such as
            ``epoch 3/10: loss 0.1234, accuracy 0.9650, val_loss 0.1100, val_accuracy 0.9711, 0.4 s``.
        early_stopping : int, optional
            Patience: stop when the validation loss has not improved for this many epochs.
            The model ends with the weights of its best epoch (lowest validation loss),
            whether it stopped early or not. Needs ``validation_data``.
        lr_schedule : {'cosine', 'step'} or callable, optional
            Multiply the optimiser's learning rate by a factor each epoch: 'cosine' is
            ``(1 + cos(pi * epoch / epochs)) / 2``, 'step' is 1, then 0.1 from half the
            epochs and 0.01 from three quarters; a callable takes the epoch (from 0) and
            returns the factor. The optimiser's own rate is put back at the end.
        checkpoint : str or path, optional
            Save the model there (:meth:`save`: weights and architecture, written atomically,
            so ``Sequential.load(checkpoint)`` rebuilds it) each time the validation loss
            improves, or after every epoch without ``validation_data``.

        Returns
        -------
        dict
            Per-epoch lists: 'loss', 'accuracy' (training, averaged over the epoch's
            batches) and, with validation data, 'val_loss' and 'val_accuracy'; with a
            schedule, 'lr'. After early stopping the lists end at the last epoch run.
        """
        from .training import fit

        return fit(self, x, labels, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                   validation_data=validation_data, seed=seed, progress=progress, early_stopping=early_stopping,
                   lr_schedule=lr_schedule, checkpoint=checkpoint)

    def summary(self, input_shape=None, *, show: bool = True) -> str:
        """A Keras-like table: each layer, its output shape and parameter count, and a total.

        Counts come from :func:`convlayer.shapes.num_params`. ``input_shape`` is one
        example's shape (default: the model's ``input_shape``).
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("summary needs input_shape, one example's shape such as (8, 8, 1); got None")
        rows = [("Layer", "Output shape", "Param #")]
        for index, layer in enumerate(self.layers):
            shape = layer.output_shape(shape)
            rows.append((f"{index}: {layer!r}", str((None,) + tuple(shape)), f"{_count(layer):,}"))
        widths = [max(len(row[col]) for row in rows) for col in range(3)]
        line = "=" * (sum(widths) + 4)
        text = [line, _row(rows[0], widths), line] + [_row(r, widths) for r in rows[1:]]
        text += [line, f"Total params: {sum(_count(layer) for layer in self.layers):,}"]
        result = "\n".join(text)
        if show:
            print(result)
        return result

    def receptive_field(self, input_shape=None) -> "list[ReceptiveField]":
        """Where each layer's units look in the input: field size, jump and start per axis.

        One record per layer, up to the first ``Flatten`` or ``Dense`` (whose units see the
        whole input, so the list ends there; a global or adaptive pool, whose bins have no one
        size and jump, ends it too). ``Conv2D``, ``MaxPool2D``, ``AvgPool2D`` and ``LPPool2D``
        (dilation included) change the field; ``ReLU`` and ``Dropout`` keep it.

        Parameters
        ----------
        input_shape : tuple, optional
            One example's shape, e.g. ``(28, 28, 1)`` (default: the model's). Needed when a
            layer pads with 'same' or 'same_lower', whose zeros depend on the size.

        Returns
        -------
        list of ReceptiveField
            ``(index, layer, size, jump, start, output_shape)``, pairs ``(vertical, horizontal)``
            in input pixels: unit ``i`` of the layer's output sees input pixels ``start + i * jump``
            to ``start + i * jump + size - 1`` (its centre is ``start + i * jump + (size - 1) / 2``).
            ``start`` is negative when the field reaches into padding. ``output_shape`` is None
            without an input shape.

        Notes
        -----
        With ``k_eff = (k - 1) * dilation + 1`` and ``pad_before`` from
        :func:`convlayer.shapes.resolve_padding` (TensorFlow's rule for 'same': the odd zero
        goes after, so ``pad_before`` is the smaller half)::

            size_out  = size_in + (k_eff - 1) * jump_in
            jump_out  = jump_in * stride
            start_out = start_in - pad_before * jump_in

        starting from ``size = jump = 1``, ``start = 0`` for the input itself. This is the
        first-pixel form of the usual recurrence ``centre_out = centre_in + ((k_eff - 1) / 2 -
        pad_before) * jump_in``.

        Examples
        --------
        >>> from convlayer.nn import Conv2D, ReLU
        >>> model = Sequential([Conv2D(1, 4, 3, strides=2), ReLU(), Conv2D(4, 4, 3)])
        >>> [(r.size, r.jump, r.start) for r in model.receptive_field((8, 8, 1))]
        [((3, 3), (2, 2), (0, 0)), ((3, 3), (2, 2), (0, 0)), ((7, 7), (2, 2), (-2, -2))]
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        return receptive.receptive_field(self.layers, shape)

    def save(self, path) -> Path:
        """Write the model to an ``.npz`` file (atomically): its architecture and every parameter.

        Parameters and buffers (such as a batch norm's running statistics) are keyed
        ``'{index}.{Layer}.{name}'``; the architecture is a JSON string under
        ``'__architecture__'`` (see :mod:`convlayer.nn.saving`; no pickle). ``Sequential.load(path)``
        rebuilds the whole model from it. A model with a layer class of your own that has no
        ``config`` method is saved with weights only.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from convlayer.nn import Conv2D, Dense, Flatten, ReLU
        >>> model = Sequential([Conv2D(1, 4, 3), ReLU(), Flatten(), Dense(4 * 8 * 8, 10)],
        ...                    input_shape=(8, 8, 1), seed=0)
        >>> path = model.save(pathlib.Path(tempfile.mkdtemp()) / "model.npz")
        >>> again = Sequential.load(path)         # on the class: the whole model
        >>> x = np.ones((2, 8, 8, 1), np.float32)
        >>> bool(np.array_equal(again.predict(x), model.predict(x)))
        True
        """
        arrays = self._stored()
        text = saving.architecture(self)
        if text is not None:
            arrays[saving.ARCHITECTURE_KEY] = np.array(text)
        return atomic_write(path, lambda temporary: _savez(temporary, arrays))

    @classmethod
    def from_file(cls, path) -> "Sequential":
        """The whole model saved in ``path`` by :meth:`save`: architecture and weights.

        ``Sequential.load(path)`` calls this. The result is a :class:`Sequential` or a graph
        :class:`~convlayer.nn.Model`, as saved, and predicts exactly what the saved model did.

        Raises
        ------
        ValueError
            If the file holds weights only (saved before convlayer stored architectures):
            build the model as it was and call ``model.load(path)``.
        """
        with np.load(path, allow_pickle=False) as stored:
            if saving.ARCHITECTURE_KEY not in stored.files:
                raise ValueError(f"{path} holds weights only, no architecture (saved by an older convlayer, or "
                                 f"a model with a layer of your own without config()): build the model as it "
                                 f"was and call model.load({str(path)!r}) on it")
            text = str(stored[saving.ARCHITECTURE_KEY])
        name, shape, layers, inputs = saving.read(text, path)
        model = saving.model_class(Sequential, name, path)._rebuild(layers, shape, inputs)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}; load it with "
                            f"nn.{type(model).__name__}.load(path)")
        return model.load_weights(path)

    @classmethod
    def _rebuild(cls, layers: list, input_shape, inputs) -> "Sequential":
        """The model of ``layers`` as a saved architecture lists them (``inputs``: None here)."""
        return cls(layers, input_shape=input_shape)

    load = saving.ClassOrInstance("from_file", "load_weights", """Load a model saved by :meth:`save`.

        On the class, ``Sequential.load(path)`` (or ``Model.load(path)``) returns the whole
        model, architecture and weights (:meth:`from_file`). On a model,
        ``model.load(path)`` reads the file's weights into that model and returns it
        (:meth:`load_weights`; a file saved by an older convlayer holds weights only and
        needs this).

        Parameters
        ----------
        path : str or path
            A file written by :meth:`save`.

        Returns
        -------
        Sequential
            The loaded model (on a model: that model).
        """)

    def to_onnx(self, path, *, input_shape=None, opset: int = 17) -> Path:
        """Write the model as an ONNX file that onnxruntime (or :func:`convlayer.onnx.load`)
        runs with the same outputs: input ``(n, h, w, c)`` named 'input', output 'output'.

        Needs the ``onnx`` package (``pip install 'convlayer[onnx]'``). See
        :func:`convlayer.onnx.export.to_onnx` for the layers it writes.
        """
        from ..onnx.export import to_onnx

        return to_onnx(self, path, input_shape=input_shape, opset=opset)

    def _stored(self) -> dict:
        """Every parameter and buffer by its key in a saved file."""
        return {_key(index, layer, name): array for index, layer in enumerate(self.layers)
                for name, array in {**layer.params, **getattr(layer, "buffers", {})}.items()}

    def load_weights(self, path) -> "Sequential":
        """Read parameters saved by :meth:`save` into this model (names and shapes must match);
        return the model. ``model.load(path)`` calls this."""
        with np.load(path, allow_pickle=False) as stored:
            saved = {key: stored[key] for key in stored.files if key != saving.ARCHITECTURE_KEY}
        expected = self._stored()
        if set(saved) != set(expected):
            missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
            raise ValueError(f"{path} does not fit this model: missing {missing}, unexpected {extra}")
        for key, param in expected.items():
            if saved[key].shape != param.shape:
                raise ValueError(f"{path} does not fit this model: {key} has shape {saved[key].shape}, "
                                 f"the model's has {param.shape}")
        for key, param in expected.items():
            param[...] = saved[key]
        return self


def _count(layer: Layer) -> int:
    if isinstance(layer, Dense):  # a dense layer is a 1x1 convolution over features
        return shapes.num_params(1, layer.in_features, layer.out_features, bias=layer.bias)
    return layer.num_params


def _row(cells, widths) -> str:
    return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}"


def _key(index: int, layer: Layer, name: str) -> str:
    return f"{index}.{type(layer).__name__}.{name}"


def _savez(temporary: str, arrays: dict) -> None:
    with open(temporary, "wb") as handle:  # a file object: np.savez must not append '.npz'
        np.savez(handle, **arrays)
