"""The grouped algorithm (``algorithm="grouped"``, :mod:`convlayer.algorithms.grouped`) against
the plain-loop reference, on random grouped layers: 2-32 groups of 1-24 channels, kernels
1x1 to 5x5, strides 1-3, dilation, every padding form and pad mode, both layouts.

Tolerances. float64: rtol = atol = 1e-9, as everywhere. float32: each output is a sum of
``n = fh * fw * c/groups`` rounded products, which errs by at most ``gamma_n`` (about
``n * 2**-24``) times the sum of their magnitudes (Higham, Accuracy and Stability, 3.1): the
bound is that, doubled (for ``1 / (1 - n u)`` and the float64 reference's own rounding),
per output value, from the reference run on ``|x|`` and ``|kernel|``. A wrong tap, channel
or group moves a value by O(its sum of magnitudes) and fails.
"""

import numpy as np
import pytest

import convlayer
from convlayer import reference
from convlayer.algorithms import compiled, grouped

PAD_MODES = ["constant", "reflect", "symmetric", "edge", "wrap"]
U32 = 2.0**-24


def _random_layer(rng):
    """x, kernel and conv2d keywords of a random grouped layer whose kernel fits the input."""
    while True:
        groups, per_group = int(rng.integers(2, 33)), int(rng.integers(1, 25))
        if groups * per_group > 96:  # keeps the reference's loops quick
            continue
        c, k = groups * per_group, groups * int(rng.integers(1, 5))
        fh, fw = (int(v) for v in rng.integers(1, 6, size=2))
        strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
        padding = [
            "same", "same_lower", "valid", "full", int(rng.integers(0, 3)),
            ((int(rng.integers(0, 3)), int(rng.integers(0, 3))), (int(rng.integers(0, 3)), int(rng.integers(0, 3)))),
        ][int(rng.integers(0, 6))]
        options = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                       pad_mode=PAD_MODES[int(rng.integers(0, 5))], flip=bool(rng.random() < 0.3))
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 12)), int(rng.integers(1, 12)), c)
        try:
            convlayer.shapes.conv2d_output_shape(shape, (fh, fw, per_group, k), strides, padding, dilation,
                                                 groups=groups)
        except ValueError:  # the kernel does not fit (or a pad mode needs more input): draw again
            continue
        x = rng.standard_normal(shape)
        return x, rng.standard_normal((fh, fw, per_group, k)), options


def _conv(x, kernel, options, bias=None):
    """conv2d by 'grouped', or None where the validation refuses the pad mode for this input size."""
    try:
        return convlayer.conv2d(x, kernel, bias, algorithm="grouped", **options)
    except ValueError as error:
        if "pad_mode" in str(error):
            return None
        raise


@pytest.mark.parametrize("seed", range(40))
def test_random_grouped_layers_match_the_reference_float64(seed):
    rng = np.random.default_rng([seed, 16])
    x, kernel, options = _random_layer(rng)
    bias = rng.standard_normal(kernel.shape[-1]) if seed % 3 == 0 else None
    if seed % 4 == 1:  # PyTorch's layout: the loops write a strided output
        x, kernel = x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1)
        options["data_format"] = "channels_first"
    got = _conv(x, kernel, options, bias)
    if got is None:
        pytest.skip("the pad mode needs more input than this draw has")
    expected = reference.conv2d(x, kernel, bias, **options)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_random_grouped_layers_float32_within_the_error_bound(seed):
    rng = np.random.default_rng([seed, 32])
    x, kernel, options = _random_layer(rng)
    x = (x + 2).astype(np.float32)  # an offset makes cancellation visible
    kernel = kernel.astype(np.float32)
    got = _conv(x, kernel, options)
    if got is None:
        pytest.skip("the pad mode needs more input than this draw has")
    exact = reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), **options)
    magnitudes = reference.conv2d(np.abs(x.astype(np.float64)), np.abs(kernel.astype(np.float64)), **options)
    terms = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    assert got.dtype == np.float32
    assert np.all(np.abs(got - exact) <= 2 * terms * U32 * magnitudes)


def test_a_resnext_and_a_regnet_layer_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for c, groups, strides in [(128, 32, 1), (104, 13, 2)]:
        x = rng.standard_normal((2, 14, 14, c)).astype(np.float32)
        kernel = rng.standard_normal((3, 3, c // groups, c)).astype(np.float32)
        got = convlayer.conv2d(x, kernel, strides=strides, padding=1, groups=groups, algorithm="grouped")
        want = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                          torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()),
                                          stride=strides, padding=1, groups=groups).numpy().transpose(0, 2, 3, 1)
        magnitudes = convlayer.conv2d(np.abs(x), np.abs(kernel), strides=strides, padding=1, groups=groups,
                                      algorithm="im2col")
        np.testing.assert_array_less(np.abs(got - want), 4 * 9 * (c // groups) * U32 * magnitudes + 1e-30)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, ">f4", np.float16])
def test_other_real_dtypes_are_converted(dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 100, (2, 9, 10, 12)).astype(dtype)
    kernel = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    got = convlayer.conv2d(x, kernel, groups=3, algorithm="grouped")
    want = convlayer.conv2d(x.astype(np.float64), kernel.astype(np.float64), groups=3, algorithm="im2col")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_any_groups_value_above_one():
    # groups == c is depthwise's by default, but the loop computes it too
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 9, 6))
    for groups in (2, 3, 6):
        kernel = rng.standard_normal((3, 2, 6 // groups, 12))
        options = dict(groups=groups, strides=(2, 1), dilation=(1, 2), padding="same", pad_mode="reflect")
        np.testing.assert_allclose(convlayer.conv2d(x, kernel, algorithm="grouped", **options),
                                   reference.conv2d(x, kernel, **options), rtol=1e-9, atol=1e-9)


def test_groups_1_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"algorithm='grouped' cannot compute this convolution: it needs "
                                         r"groups > 1 \(got groups=1"):
        convlayer.conv2d(np.ones((1, 8, 8, 4)), np.ones((3, 3, 4, 4)), algorithm="grouped")


def test_empty_batches_and_images():
    kernel = np.ones((3, 3, 2, 4))
    assert convlayer.conv2d(np.ones((0, 8, 8, 4)), kernel, groups=2, algorithm="grouped").shape == (0, 8, 8, 4)
    got = convlayer.conv2d(np.ones((1, 0, 5, 4)), kernel, groups=2, padding="same", algorithm="grouped")
    assert got.shape == (1, 0, 5, 4)
    got = convlayer.conv2d(np.ones((1, 5, 5, 4)), np.ones((1, 1, 2, 4)), groups=2, algorithm="grouped")
    np.testing.assert_array_equal(got, np.full((1, 5, 5, 4), 2.0))


def test_without_the_compiled_loops_im2col_computes_it():
    rng = np.random.default_rng(6)
    x, kernel = rng.standard_normal((2, 10, 10, 8)), rng.standard_normal((3, 3, 2, 8))
    with compiled.use_compiled(False):
        got = convlayer.conv2d(x, kernel, groups=4, algorithm="grouped")
    np.testing.assert_allclose(got, reference.conv2d(x, kernel, groups=4), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_memory_budget_respected(pad_mode, work_memory):
    rng = np.random.default_rng(12)
    x = rng.random((2, 96, 96, 32), dtype=np.float32)
    kernel = rng.random((3, 3, 4, 32), dtype=np.float32)
    options = dict(algorithm="grouped", groups=8, pad_mode=pad_mode, strides=(1, 2))
    convlayer.conv2d(x[:1, :20, :20], kernel, **options)  # compile and thread pool first
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, out = work_memory(lambda: convlayer.conv2d(x, kernel, **options))
        assert grouped.runs_compiled(x, convlayer.shapes.conv_geometry(x.shape, kernel.shape, strides=(1, 2),
                                                                       groups=8), 4, budget)
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    want = reference.conv2d(x[:1, :12].astype(np.float64), kernel.astype(np.float64), groups=8, pad_mode=pad_mode,
                            strides=(1, 2), padding="valid")
    np.testing.assert_allclose(convlayer.conv2d(x[:1, :12], kernel, algorithm="grouped", groups=8,
                                                pad_mode=pad_mode, strides=(1, 2), padding="valid"),
                               want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    same = convlayer.conv2d(x, kernel, algorithm="im2col", groups=8, pad_mode=pad_mode, strides=(1, 2))
    np.testing.assert_allclose(out, same, rtol=0, atol=1e-5 * np.abs(same).max())


def test_a_budget_too_small_for_a_row_of_patches_takes_im2col():
    rng = np.random.default_rng(13)
    x, kernel = rng.standard_normal((1, 12, 40, 16)), rng.standard_normal((3, 3, 4, 16))
    with convlayer.memory_budget(4096):
        got = convlayer.conv2d(x, kernel, groups=4, algorithm="grouped")
    np.testing.assert_allclose(got, reference.conv2d(x, kernel, groups=4), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_backward_through_grouped_matches_the_reference(seed):
    rng = np.random.default_rng([seed, 17])
    x, kernel, options = _random_layer(rng)
    if seed % 2:  # x's gradient as a correlation of grad_out, which 'grouped' then computes
        options.update(pad_mode="constant", strides=1)
    if _conv(x, kernel, options) is None:
        pytest.skip("the pad mode needs more input than this draw has")
    grad = rng.standard_normal(reference.conv2d(x, kernel, **options).shape)
    expected = reference.conv2d_backward(grad, x, kernel, **options)
    got = convlayer.conv2d_backward(grad, x, kernel, algorithm="grouped", **options)
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


def test_the_same_bits_on_one_thread_and_on_several(monkeypatch):
    # each output value is one BLAS dot product whichever thread computes its block
    rng = np.random.default_rng(8)
    x, kernel = rng.standard_normal((3, 17, 15, 24)).astype(np.float32), rng.standard_normal((3, 3, 3, 24))
    several = convlayer.conv2d(x, kernel.astype(np.float32), groups=8, algorithm="grouped")
    from convlayer.algorithms import parallel
    monkeypatch.setattr(parallel, "thread_count", lambda: 1)
    one = convlayer.conv2d(x, kernel.astype(np.float32), groups=8, algorithm="grouped")
    np.testing.assert_array_equal(one, several)


@pytest.mark.parametrize("seed", range(12))
def test_kernel_gradient_matches_the_reference(seed):
    from convlayer import _validate
    from convlayer.algorithms import buffers

    rng = np.random.default_rng([seed, 18])
    x, kernel, options = _random_layer(rng)
    if _conv(x, kernel, options) is None:
        pytest.skip("the pad mode needs more input than this draw has")
    grad = rng.standard_normal(reference.conv2d(x, kernel, **options).shape)
    expected = reference.conv2d_backward(grad, x, kernel, **options).grad_kernel
    args = _validate.conv_args(x, kernel, None, **dict(dict(data_format="channels_last"), **options))
    if seed % 3 == 1:  # grad_out as a channels-first array seen channels-last, in float32
        grad = np.ascontiguousarray(grad.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1).astype(np.float32)
    got = grouped.kernel_gradient(args.x, args.geom, args.pad_mode, grad, np.float64, buffers.get_memory_budget())
    if options.get("flip"):  # the reference's gradient is of the flipped kernel
        got = got[::-1, ::-1]
    tolerance = 1e-5 if grad.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * max(1.0, np.abs(expected).max()))


def test_kernel_gradient_gives_the_same_bits_every_call():
    from convlayer.algorithms import buffers

    rng = np.random.default_rng(19)
    x = rng.standard_normal((4, 30, 30, 24)).astype(np.float32)
    geom = convlayer.shapes.conv_geometry(x.shape, (3, 3, 3, 24), groups=8)
    grad = rng.standard_normal((4, 30, 30, 24)).astype(np.float32)
    with convlayer.memory_budget(2**20):  # many blocks, on every thread
        first = grouped.kernel_gradient(x, geom, "constant", grad, np.float32, buffers.get_memory_budget())
        for _ in range(3):
            again = grouped.kernel_gradient(x, geom, "constant", grad, np.float32, buffers.get_memory_budget())
            np.testing.assert_array_equal(again, first)


# ------------------------------------------------------------------ the backward pass (strided layers)

def _strided_layer(rng):
    """x, kernel and keywords of a random grouped layer whose x gradient is no correlation of
    grad_out (strides 2-3 on at least one axis), so that its backward goes in one pass."""
    while True:
        x, kernel, options = _random_layer(rng)
        strides = [int(v) for v in rng.integers(1, 4, size=2)]
        strides[int(rng.integers(0, 2))] = int(rng.integers(2, 4))
        options["strides"] = tuple(strides)
        if _conv(x, kernel, options) is not None:
            return x, kernel, options


def _backward_in_one_pass(monkeypatch, grad, x, kernel, options):
    """conv2d_backward by grouped's pass; fails if im2col's ran instead."""
    from convlayer.algorithms import dispatch, im2col_backward

    def refused(*args, **kwargs):
        raise AssertionError("im2col's backward pass ran, not grouped's")

    monkeypatch.setattr(im2col_backward, "correlate_backward", refused)  # grouped's fallback
    monkeypatch.setattr(dispatch.ALGORITHMS["im2col"], "correlate_backward", refused)  # dispatch's route
    return convlayer.conv2d_backward(grad, x, kernel, **options)


@pytest.mark.parametrize("seed", range(40))
def test_strided_backward_matches_the_reference_float64(seed, monkeypatch):
    from convlayer.algorithms import parallel

    rng = np.random.default_rng([seed, 21])
    x, kernel, options = _strided_layer(rng)
    grad = rng.standard_normal(reference.conv2d(x, kernel, **options).shape)
    expected = reference.conv2d_backward(grad, x, kernel, **options)
    if seed % 4 == 1:  # PyTorch's layout
        x, kernel, grad = x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1), grad.transpose(0, 3, 1, 2)
        expected = expected._replace(grad_x=expected.grad_x.transpose(0, 3, 1, 2),
                                     grad_kernel=expected.grad_kernel.transpose(3, 2, 0, 1))
        options["data_format"] = "channels_first"
    # several threads (shares that split an image) and blocks of one output row, or whole images
    monkeypatch.setattr(parallel, "thread_count", lambda: 1 + seed % 3)
    if seed % 2:
        monkeypatch.setattr(grouped, "BLOCK_BYTES", 1)
    got = _backward_in_one_pass(monkeypatch, grad, x, kernel, dict(options, algorithm="grouped"))
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        assert value.dtype == np.float64 and value.shape == want.shape, name
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("seed", range(20))
def test_strided_backward_float32_within_the_error_bound(seed, monkeypatch):
    from convlayer.algorithms import parallel

    rng = np.random.default_rng([seed, 22])
    x, kernel, options = _strided_layer(rng)
    x, kernel = (x + 2).astype(np.float32), kernel.astype(np.float32)  # an offset makes cancellation visible
    grad = (rng.standard_normal(reference.conv2d(x, kernel, **options).shape) + 1).astype(np.float32)
    wide = [a.astype(np.float64) for a in (grad, x, kernel)]
    exact = reference.conv2d_backward(*wide, **options)
    magnitudes = reference.conv2d_backward(*(np.abs(a) for a in wide), **options)
    monkeypatch.setattr(parallel, "thread_count", lambda: 1 + seed % 3)
    if seed % 2:  # blocks of one output row: several a share
        monkeypatch.setattr(grouped, "BLOCK_BYTES", 1)
    depthwise = options["groups"] == x.shape[-1]  # auto takes depthwise's kernel gradient, and im2col's pass
    got = _backward_in_one_pass(monkeypatch, grad, x, kernel, dict(options, algorithm="grouped" if depthwise else "auto"))
    fh, fw, cg, k = kernel.shape
    # x's gradient sums fh fw k/groups products per padded pixel, and a pixel that padding
    # copies (reflect and kin) gathers a few padded pixels; the kernel's sums every output pixel
    terms = {"grad_x": 4 * fh * fw * (k // options["groups"]), "grad_kernel": grad[..., 0].size,
             "grad_bias": grad[..., 0].size}
    for name, value, want, size in zip(("grad_x", "grad_kernel", "grad_bias"), got, exact, magnitudes):
        assert value.dtype == np.float32, name
        bound = 2 * terms[name] * U32 * size
        assert np.all(np.abs(value - want) <= bound), (name, np.max(np.abs(value - want) - bound))


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_strided_backward_within_the_memory_budget(pad_mode, work_memory, monkeypatch):
    rng = np.random.default_rng(23)
    x = rng.random((2, 96, 96, 32), dtype=np.float32)
    kernel = rng.random((3, 3, 4, 32), dtype=np.float32)
    options = dict(groups=8, pad_mode=pad_mode, strides=2, padding=1)
    grad = rng.random((2, 48, 48, 32), dtype=np.float32)
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, got = work_memory(lambda: _backward_in_one_pass(monkeypatch, grad, x, kernel, options))
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    monkeypatch.undo()
    want = convlayer.conv2d_backward(grad, x, kernel, algorithm="im2col", **options)
    for value, same in zip(got, want):
        np.testing.assert_allclose(value, same, rtol=0, atol=2e-5 * np.abs(same).max())


def test_strided_backward_without_the_compiled_loops_takes_im2col():
    rng = np.random.default_rng(24)
    x, kernel = rng.standard_normal((2, 11, 10, 8)), rng.standard_normal((3, 3, 2, 8))
    options = dict(groups=4, strides=2, pad_mode="reflect")
    grad = rng.standard_normal(reference.conv2d(x, kernel, **options).shape)
    with compiled.use_compiled(False):
        got = convlayer.conv2d_backward(grad, x, kernel, algorithm="grouped", **options)
    for value, want in zip(got, reference.conv2d_backward(grad, x, kernel, **options)):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pad_mode, strides, images, threads", [("reflect", 2, 1, 5), ("wrap", 2, 2, 3),
                                                                ("symmetric", 3, 1, 2), ("constant", 2, 2, 4)])
def test_threads_add_into_disjoint_input_rows(pad_mode, strides, images, threads):
    # Threads run their shares at once: each may add into x's gradient only the input rows no
    # other share adds into (the rest it defers). Run each share alone and compare the rows.
    from convlayer.algorithms import _grouped_loops, slab

    rng = np.random.default_rng(25)
    shape = (images, 11, 9, 6)
    geom = convlayer.shapes.conv_geometry(shape, (3, 3, 2, 6), strides=strides, padding=2, groups=3)
    rows, cols, _ = slab.loop_maps(geom, pad_mode)
    tasks, steps = geom.n * geom.out_h, (3, 3, strides, strides, 1, 1, geom.out_h, geom.out_w)
    grad_patches = rng.standard_normal((3, tasks * geom.out_w, 9 * 2))
    total, written = np.zeros(shape), []
    for thread in range(threads):
        start, end = compiled.share(tasks, threads, thread)
        each, grad_x = grouped._thread_buffers(geom, pad_mode, 1, np.float64, True), np.zeros(shape)
        for first in range(start, end):  # blocks of one output row
            _grouped_loops.grouped_col2im_rows(grad_patches[:, first * geom.out_w : (first + 1) * geom.out_w], *steps,
                                               rows, cols, 2, 11, each["ring"], grad_x, each["deferred"],
                                               each["tags"], first, first + 1, start, end)
        written.append(np.any(grad_x != 0, axis=(2, 3)))
        _grouped_loops.fold_deferred(each["deferred"], each["tags"], rows, cols, grad_x)
        total += grad_x
    for one in range(threads):
        for other in range(one + 1, threads):
            assert not np.any(written[one] & written[other]), (one, other)
    want, each = np.zeros(shape), grouped._thread_buffers(geom, pad_mode, tasks, np.float64, True)
    _grouped_loops.grouped_col2im_rows(grad_patches, *steps, rows, cols, 2, 11, each["ring"], want, each["deferred"],
                                       each["tags"], 0, tasks, 0, tasks)
    np.testing.assert_allclose(total, want, rtol=1e-12, atol=1e-12)
