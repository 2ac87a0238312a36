"""algorithms.planar, the few-channel patch matrix built plane by plane: the paths the
public tests do not reach on their own (several chunks of images, an output that is neither
channels-last nor channels-first), against the float64 reference loops."""

import numpy as np
import pytest

from convlayer import reference, shapes
from convlayer.algorithms import planar


@pytest.mark.parametrize("out_kind", ["channels-last", "channels-first", "strided"])
def test_chunks_of_images_into_every_output_layout(out_kind, monkeypatch):
    # CHUNK_BYTES of one image's planes and patches: 5 images go one chunk at a time
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 9, 11, 3))
    kernel = rng.standard_normal((3, 2, 3, 4))
    options = dict(strides=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2))
    geom = shapes.conv_geometry(x.shape, kernel.shape, **options)
    monkeypatch.setattr(planar, "CHUNK_BYTES", 8 * (3 * (9 + 3) * (11 + 1) + 6 * 3 * geom.out_h * geom.out_w))
    shape = (5, geom.out_h, geom.out_w, 4)
    out = {"channels-last": np.empty(shape),
           "channels-first": np.empty((5, 4, geom.out_h, geom.out_w)).transpose(0, 2, 3, 1),
           "strided": np.empty(shape[:3] + (8,))[..., ::2]}[out_kind]
    assert planar.applies(geom, "constant")
    assert planar.correlate(x, kernel, geom, out, 2**28)
    np.testing.assert_allclose(out, reference.conv2d(x, kernel, **options), rtol=1e-12, atol=1e-12)


def test_refuses_a_budget_below_one_image():
    x, kernel = np.ones((1, 8, 8, 2)), np.ones((3, 3, 2, 1))
    geom = shapes.conv_geometry(x.shape, kernel.shape, padding=1)
    out = np.full((1, 8, 8, 1), 7.0)
    assert not planar.correlate(x, kernel, geom, out, 8 * (2 * 10 * 10 + 18 * 64) - 1)
    assert (out == 7).all()  # nothing computed
    assert not planar.applies(geom, "reflect") and not planar.applies(geom._replace(c=5), "constant")
