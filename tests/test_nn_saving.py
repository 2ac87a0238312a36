"""Saved models load whole: ``Sequential.load(path)`` rebuilds the architecture from the file.

Issue 20, item 7. Every layer class of ``convlayer.nn`` is saved in a model, loaded by the
class alone and must predict bit for bit what the saved model predicted (the same weights and
the same ops on the same input give the same floats), with the same layers (repr) and
parameters. ``model.load(path)`` on an instance keeps reading weights into that model.
"""

import json

import numpy as np
import pytest

from convlayer import nn


def distinct(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _models():
    """name -> (model builder, input shape): together they hold every layer class of convlayer.nn."""
    pool = nn.MaxPool2D(2)
    return {
        "conv-options": (lambda: nn.Sequential([
            nn.Conv2D(3, 8, (3, 1), strides=(2, 1), padding=((1, 0), (0, 2)), bias=False, init="glorot"),
            nn.ReLU(), nn.Conv2D(8, 8, 3, dilation=2, groups=4, padding="same_lower"), nn.ReLU(),
            nn.Flatten(), nn.Dropout(0.3, seed=1), nn.Dense(5 * 8 * 8, 4, bias=False),
        ], input_shape=(9, 8, 3), seed=0), (9, 8, 3)),
        "sharing": (lambda: nn.Sequential([
            nn.Conv2D(2, 4, 3, sharing="tiled", banks=(2, 3)), nn.ReLU(),
            nn.Conv2D(4, 4, 3, sharing="regions", banks=2, padding="valid"), nn.ReLU(),
            nn.Conv2D(4, 3, 2, sharing="unshared", input_size=(6, 6), strides=2),
            nn.TiledConv2D(3, 3, 3, tiles=2), nn.RegionConv2D(3, 3, 1, regions=(1, 3)),
            nn.LocallyConnected2D(3, 2, 3, input_size=(3, 3), padding="same"),
            nn.Flatten("channels_first"), nn.Dense(18, 3),
        ], input_shape=(8, 8, 2), seed=0), (8, 8, 2)),
        "transposed-pools-norm": (lambda: nn.Sequential([
            nn.Conv2DTranspose(2, 4, 3, strides=2, padding=1, output_padding=1), nn.BatchNorm2D(4, momentum=0.2),
            nn.ReLU(), pool, nn.MaxUnpool2D(pool), nn.AvgPool2D(3, 1, "same", count_include_pad=True),
            nn.LPPool2D(2, 2, ceil_mode=True), nn.MaxPool2D(2, 1, dilation=1, ceil_mode=True),
            nn.AdaptiveAvgPool2D((3, 2)), nn.AdaptiveMaxPool2D(2), nn.GlobalAvgPool2D(keepdims=True),
            nn.GlobalMaxPool2D(), nn.Dense(4, 2),
        ], input_shape=(6, 5, 2), seed=0), (6, 5, 2)),
    }


def _train_a_little(model, shape):
    """Move the weights and batch-norm statistics off their initial values."""
    x = distinct((16, *shape), seed=3)
    labels = np.arange(16) % model.forward(x[:1]).shape[-1]
    model.fit(x, labels, epochs=2, batch_size=8, progress=False)


@pytest.mark.parametrize("name", sorted(_models()))
def test_every_layer_kind_round_trips_through_the_class(tmp_path, name):
    build, shape = _models()[name]
    model = build()
    _train_a_little(model, shape)
    x = distinct((5, *shape), seed=7)
    expected = model.predict(x)
    path = model.save(tmp_path / "model.npz")
    loaded = nn.Sequential.load(path)
    assert type(loaded) is nn.Sequential and loaded is not model
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.input_shape == model.input_shape
    for ours, theirs in zip(loaded.layers, model.layers):
        assert repr(ours.config()) == repr(theirs.config())
        for key, array in {**theirs.params, **theirs.buffers}.items():
            np.testing.assert_array_equal({**ours.params, **ours.buffers}[key], array)
    np.testing.assert_array_equal(loaded.predict(x), expected)
    assert loaded.summary(show=False) == model.summary(show=False)


def test_every_layer_class_is_covered():
    covered = {type(layer) for build, _ in _models().values() for layer in build().layers}
    covered |= {nn.Add, nn.Concat}  # the graph test's
    classes = {getattr(nn, name) for name in nn.__all__ if isinstance(getattr(nn, name), type)
               and issubclass(getattr(nn, name), nn.Layer) and getattr(nn, name) is not nn.Layer}
    assert classes - covered == set()


def test_unpool_keeps_its_pool_after_loading(tmp_path):
    build, shape = _models()["transposed-pools-norm"]
    loaded = nn.Sequential.load(build().save(tmp_path / "m.npz"))
    assert loaded.layers[4].pool is loaded.layers[3] and loaded.layers[3].keep_indices


def residual(seed=0):
    x = nn.Input((6, 6, 3))
    y = nn.ReLU()(nn.BatchNorm2D(4)(nn.Conv2D(3, 4, 3)(x)))
    z = nn.Conv2D(3, 4, 1, bias=False)(x)
    joined = nn.Concat()([nn.Add()([y, z]), x])
    out = nn.Dense(7, 2)(nn.GlobalAvgPool2D()(joined))
    return nn.Model(x, out, seed=seed)


def test_graph_model_round_trips(tmp_path):
    model = residual()
    _train_a_little(model, (6, 6, 3))
    x = distinct((4, 6, 6, 3), seed=2)
    path = model.save(tmp_path / "graph.npz")
    for loader in (nn.Model.load, nn.Sequential.load):
        loaded = loader(path)
        assert type(loaded) is nn.Model
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert loaded.summary(show=False) == model.summary(show=False)


def test_model_load_refuses_a_sequential_file(tmp_path):
    path = nn.Sequential([nn.Flatten(), nn.Dense(4, 2)], input_shape=(2, 2, 1)).save(tmp_path / "s.npz")
    with pytest.raises(TypeError, match="holds a Sequential, not a Model"):
        nn.Model.load(path)


def test_instance_load_still_reads_weights_into_that_model(tmp_path):
    build, shape = _models()["conv-options"]
    model, other = build(), build()
    for layer in other.layers:
        layer.initialize(np.random.default_rng(9), followed_by_relu=True)
    x = distinct((3, *shape))
    assert not np.array_equal(other.predict(x), model.predict(x))
    path = model.save(tmp_path / "w.npz")
    assert other.load(path) is other
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    assert other.load_weights(path) is other
    assert nn.Sequential.from_file(path).summary(show=False) == model.summary(show=False)


def test_a_weights_only_file_says_to_build_the_model_first(tmp_path):
    """A file from before issue 20 holds the '{index}.{Layer}.{name}' arrays and nothing else."""
    model = nn.Sequential([nn.Flatten(), nn.Dense(4, 2)], input_shape=(2, 2, 1), seed=0)
    old = tmp_path / "old.npz"
    np.savez(old, **model._stored())
    with pytest.raises(ValueError) as info:
        nn.Sequential.load(old)
    assert "holds weights only" in str(info.value) and f"model.load('{old}')" in str(info.value)
    fresh = nn.Sequential([nn.Flatten(), nn.Dense(4, 2)], input_shape=(2, 2, 1), seed=1)
    x = distinct((2, 2, 2, 1))
    np.testing.assert_array_equal(fresh.load(old).predict(x), model.predict(x))


class Scale(nn.Layer):
    """A layer of the user's own, with a constructor argument."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x, training=False):
        return x * self.factor


class DescribedScale(Scale):
    def config(self):
        return {"factor": self.factor}


def test_a_layer_of_your_own(tmp_path):
    plain = nn.Sequential([Scale(2.0), nn.Flatten(), nn.Dense(4, 2)], seed=0)
    path = plain.save(tmp_path / "plain.npz")  # saves, weights only
    with pytest.raises(ValueError, match="holds weights only"):
        nn.Sequential.load(path)
    described = nn.Sequential([DescribedScale(3.0), nn.Flatten(), nn.Dense(4, 2)], seed=0)
    loaded = nn.Sequential.load(described.save(tmp_path / "described.npz"))
    assert type(loaded.layers[0]) is DescribedScale and loaded.layers[0].factor == 3.0
    x = distinct((2, 2, 2, 1))
    np.testing.assert_array_equal(loaded.predict(x), described.predict(x))


def test_an_unknown_layer_class_is_named(tmp_path):
    path = nn.Sequential([nn.Flatten(), nn.Dense(4, 2)], seed=0).save(tmp_path / "m.npz")
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    description = json.loads(str(arrays["__architecture__"]))
    description["layers"][0]["class"] = "mymodule.Mystery"
    arrays["__architecture__"] = np.array(json.dumps(description))
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ValueError, match="'mymodule.Mystery' is not known: import the module"):
        nn.Sequential.load(tmp_path / "edited.npz")


def test_the_file_holds_no_pickle(tmp_path):
    path = residual().save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as stored:  # would raise on an object array
        assert all(stored[key].dtype != object for key in stored.files)
        assert json.loads(str(stored["__architecture__"]))["format"] == "convlayer.nn/1"


def test_load_documents_both_ways():
    import inspect

    assert str(inspect.signature(nn.Sequential.load)) == "(path)"
    assert "On the class" in nn.Sequential.load.__doc__ and "On a model" in nn.Sequential.load.__doc__
    model = nn.Sequential([nn.Dense(2, 2)])
    assert model.load.__func__ is nn.Sequential.load_weights  # an instance gets load_weights itself
