"""Named filters: the tutorial's values, their sums, and stacking into a layer kernel."""

import numpy as np
import pytest

from convlayer import conv2d, kernels


def test_tutorial_filters():
    np.testing.assert_array_equal(kernels.get("edge"), [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    np.testing.assert_allclose(kernels.get("blur", np.float64), np.full((3, 3), 1 / 9))


@pytest.mark.parametrize("name, total", [("edge", 0), ("blur", 1), ("gaussian", 1), ("sharpen", 1),
                                         ("sobel_x", 0), ("sobel_y", 0), ("emboss", 1), ("identity", 1)])
def test_filter_sums(name, total):
    """Sum 0: flat regions vanish (detectors); sum 1: flat regions keep their value."""
    assert kernels.get(name, np.float64).sum() == pytest.approx(total)


def test_sobel_x_responds_to_left_to_right_increase():
    ramp = np.tile(np.arange(6.0), (6, 1))
    assert (conv2d(ramp, kernels.get("sobel_x"), padding="valid") > 0).all()
    assert (conv2d(ramp, kernels.get("sobel_y"), padding="valid") == 0).all()


def test_get_returns_a_fresh_array():
    kernels.get("edge")[1, 1] = 0
    assert kernels.get("EDGE")[1, 1] == 8


def test_stack_matches_the_tutorials_np_repeat():
    layer = kernels.stack(["edge", "blur"], channels=3)
    assert layer.shape == (3, 3, 3, 2) and layer.dtype == np.float32
    by_hand = np.zeros((3, 3, 3, 2), np.float32)  # the tutorial: one 2-D filter per output, repeated
    by_hand[..., 0] = np.repeat(kernels.get("edge")[:, :, None], 3, axis=2)
    by_hand[..., 1] = np.repeat(kernels.get("blur")[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(layer, by_hand)


def test_stacked_edge_on_gray_rgb_is_three_times_the_2d_filter():
    gray = np.random.default_rng(0).random((7, 7))
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    layer = kernels.stack(["edge"], channels=3, dtype=np.float64)
    np.testing.assert_allclose(conv2d(rgb, layer)[..., 0], 3 * conv2d(gray, kernels.get("edge", np.float64)))


def test_depthwise_filters_each_channel_on_its_own_like_torch_groups():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((7, 8, 3))
    layer = kernels.depthwise(["sobel_x", "blur"], channels=3)  # (3, 3, 1, 6)
    assert layer.shape == (3, 3, 1, 6)
    ours = conv2d(x, layer, groups=3)
    weight = torch.from_numpy(layer.transpose(3, 2, 0, 1).astype(np.float64))
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(2, 0, 1))[None], weight, padding=1, groups=3)
    np.testing.assert_allclose(ours, theirs[0].numpy().transpose(1, 2, 0), rtol=1e-5, atol=1e-6)
    for channel in range(3):  # output j * 2 + i: filter i on channel j alone
        np.testing.assert_allclose(ours[..., 2 * channel + 1], conv2d(x[..., channel], kernels.get("blur")),
                                   rtol=1e-5, atol=1e-6)


def test_depthwise_refuses_bad_channels():
    with pytest.raises(ValueError, match="channels must be a positive integer; got 0"):
        kernels.depthwise("blur", channels=0)
