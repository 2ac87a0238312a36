"""The work-memory budget really bounds what conv2d allocates beyond its output.

NumPy reports its allocations to tracemalloc, so the traced peak during a call, minus the
result it returns, is the work memory the call used (the
`work_memory` fixture in conftest.py).
"""

import numpy as np
import pytest

import convlayer
from convlayer.algorithms import buffers, im2col

MiB = 2**20


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(strides=2, padding="valid"), dict(padding=3, pad_mode="reflect"), dict(dilation=2)],
)
def test_small_budget_bounds_work_memory(kwargs, work_memory):
    rng = np.random.default_rng(0)
    x = rng.random((4, 128, 128, 3), dtype=np.float32)
    kernel = rng.random((7, 7, 3, 16), dtype=np.float32)
    unchunked_patches = 4 * 128 * 128 * 7 * 7 * 3 * 4  # 38.5 MB at stride 1
    budget = 2 * MiB
    with convlayer.memory_budget(budget):
        used, out = work_memory(lambda: convlayer.conv2d(x, kernel, **kwargs))
    assert used <= budget + 64 * 1024, f"{used / MiB:.1f} MiB of work memory"
    assert used < unchunked_patches / 10
    # Two float32 sums of 7 * 7 * 3 = 147 products in different orders (other blocks, maybe
    # another algorithm): each within gamma_147 ~ 147 u of the exact sum of |terms| (Higham
    # 3.1), which is the value itself, x and kernel being positive; auto may pick FFT, whose
    # error spreads over the image, so the largest value serves everywhere. 2 for headroom.
    expected = convlayer.conv2d(x, kernel, **kwargs)
    np.testing.assert_allclose(out, expected, rtol=0, atol=2 * 2 * 147 * 2.0**-24 * expected.max())


def test_without_a_small_budget_the_same_call_uses_more(work_memory):
    """The check above can fail: the default budget lets such a call use far more memory."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 128, 128, 8), dtype=np.float32)
    kernel = rng.random((7, 7, 8, 16), dtype=np.float32)
    # im2col with one patch matrix: the algorithm whose patch matrix the budget is there to
    # bound (auto may pick FFT for this kernel, im2col's row blocks need little anyway, and
    # 8 channels are more than algorithms.planar takes)
    with im2col.use_row_blocks(False):
        used, _ = work_memory(lambda: convlayer.conv2d(x, kernel, algorithm="im2col"))
    assert used > 20 * MiB


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_few_channel_patches_stay_within_the_budget(data_format, work_memory):
    """algorithms.planar: one image's padded planes and patches (1.9 MiB here) at a time,
    within a budget that holds one image; with less, im2col's other paths."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 128, 128) if data_format == "channels_first" else (4, 128, 128, 3), dtype=np.float32)
    kernel = rng.random((16, 3, 3, 3) if data_format == "channels_first" else (3, 3, 3, 16), dtype=np.float32)
    budget = 5 * MiB // 2
    with convlayer.memory_budget(budget):
        used, out = work_memory(lambda: convlayer.conv2d(x, kernel, data_format=data_format, algorithm="im2col"))
    assert 1.8 * MiB < used <= budget + 64 * 1024, f"{used / MiB:.1f} MiB of work memory"
    with convlayer.memory_budget(MiB):
        expected = convlayer.conv2d(x, kernel, data_format=data_format, algorithm="im2col")
    # two float32 sums of 27 positive products in different orders, each within gamma_27 of
    # the sum of |terms| (the value itself), 2 for headroom
    np.testing.assert_allclose(out, expected, rtol=0, atol=2 * 2 * 27 * 2.0**-24 * expected.max())


def test_issue_example_stays_within_the_default_budget(work_memory):
    """16 images of 512x512x3 through 64 7x7 filters: a 2.4 GB patch matrix if unchunked."""
    x = np.random.default_rng(1).random((16, 512, 512, 3), dtype=np.float32)
    kernel = np.random.default_rng(2).random((7, 7, 3, 64), dtype=np.float32)
    assert 16 * 512 * 512 * 7 * 7 * 3 * 4 > 2.4e9
    used, out = work_memory(lambda: convlayer.conv2d(x, kernel))
    assert out.shape == (16, 512, 512, 64)
    assert used <= convlayer.get_memory_budget() + MiB
    # spot-check one pixel of the last image against a direct sum
    window = np.pad(x[15], ((3, 3), (3, 3), (0, 0)))[100:107, 200:207]
    np.testing.assert_allclose(out[15, 100, 200], np.einsum("hwc,hwck->k", window, kernel), rtol=1e-4)


def test_uint8_input_is_converted_block_by_block(work_memory):
    """A uint8 photo is not converted to float32 whole (that would be 4x its size)."""
    x = np.random.default_rng(3).integers(0, 256, (2, 512, 512, 3), dtype=np.uint8)
    kernel = np.ones((3, 3, 3, 1), np.float32)
    with convlayer.memory_budget(MiB):
        used, _ = work_memory(lambda: convlayer.conv2d(x, kernel))
    assert used <= MiB + 64 * 1024


def test_budget_setting():
    old = convlayer.set_memory_budget(12345)
    try:
        assert convlayer.get_memory_budget() == 12345
        with convlayer.memory_budget(99):
            assert convlayer.get_memory_budget() == 99
        assert convlayer.get_memory_budget() == 12345
    finally:
        convlayer.set_memory_budget(old)
    assert convlayer.get_memory_budget() == old == 256 * MiB
    with pytest.raises(ValueError, match=r"nbytes must be positive integers; got 0"):
        convlayer.set_memory_budget(0)


@pytest.mark.parametrize("pad_mode, padding, strides", [("reflect", 5, 2), ("symmetric", 20, 1), ("wrap", 3, 3)])
def test_gathered_padding_stays_near_the_budget(pad_mode, padding, strides, work_memory):
    """Small kernels and strides make the padded slab, not the patches, the largest buffer."""
    rng = np.random.default_rng(4)
    x = rng.random((4, 200, 200, 3), dtype=np.float32)
    kernel = rng.random((3, 3, 3, 4), dtype=np.float32)
    budget = 512 * 1024
    with convlayer.memory_budget(budget):
        used, _ = work_memory(lambda: convlayer.conv2d(x, kernel, padding=padding, pad_mode=pad_mode,
                                                        strides=strides))
    assert used <= 1.1 * budget, f"{used / budget:.2f} x the budget"


def test_the_kept_work_buffer_is_reused_bounded_and_released():
    buffers.release_work_buffers()
    with convlayer.memory_budget(64 * 2**20):
        with buffers.work_buffer(2**21, np.float32) as first:
            with buffers.work_buffer(2**21, np.float32) as nested:  # lent out: a fresh array
                assert not np.shares_memory(first, nested)
        with buffers.work_buffer(2**20, np.float64) as again:  # same bytes, another dtype
            assert np.shares_memory(first, again) and again.dtype == np.float64
        with buffers.work_buffer(2**25, np.float32) as above_budget:  # 128 MiB > 64 MiB
            assert not np.shares_memory(first, above_budget)
        with buffers.work_buffer(100, np.float32) as small:  # left to malloc
            assert not np.shares_memory(first, small)
    with convlayer.memory_budget(4 * 2**20):  # a lower budget drops the larger kept bytes
        with buffers.work_buffer(2**20, np.float32) as within:
            assert not np.shares_memory(first, within)
    assert buffers.kept_bytes() > 0
    buffers.release_work_buffers()
    assert buffers.kept_bytes() == 0
