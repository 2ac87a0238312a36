"""Every algorithm behind ``conv2d(..., algorithm=...)`` against the plain-loop reference.

Tolerances. float64: rtol = atol = 1e-9, as everywhere. float32: the reference runs in
float64 on the same float32 values and the error is measured against the bound
``B = max(sum |x| |kernel|)`` over the output (the size of the largest sum of products).
Direct summation (im2col, shift, depthwise) of n products errs by about n * 6e-8 of its own
sum, so 1e-5 * B holds with room for n up to ~100. FFT's error is global: about the unit
roundoff times log2 of the transform size times B, whatever the pixel (measured below
1e-6 * B here); it gets 1e-5 * B too. A wrong tap or a shifted window is off by O(B).
"""

import contextlib
import importlib.util
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import threadpoolctl

import convlayer
from convlayer import _validate, reference
from convlayer.algorithms import choose, compiled, depthwise, dispatch, fft, im2col, layout, parallel, shift


class NumPyPath(str):
    """An algorithm name whose test runs the algorithm's NumPy code, not the compiled loops."""


class RowBlocks(str):
    """'im2col' through its row blocks on every thread (im2col.correlate_rows), whatever the size."""


# 'shift' and 'depthwise' run Numba's compiled loops (the test extra installs Numba); each
# also appears as a NumPyPath, which runs its NumPy code with the compiled loops off, and
# so does im2col (its backward pass adds patch gradients back in a compiled loop). Large
# im2col calls run in row blocks; RowBlocks sends the small test cases that way too.
ALGORITHMS = ["im2col", "shift", "depthwise", "fft", "winograd", NumPyPath("shift"), NumPyPath("depthwise"),
              RowBlocks("im2col"), NumPyPath("im2col")]
ALGORITHM_IDS = ["im2col", "shift", "depthwise", "fft", "winograd", "shift-numpy", "depthwise-numpy",
                 "im2col-rows", "im2col-numpy"]


@pytest.fixture(autouse=True)
def _compiled_or_numpy(request):
    """Switch the compiled loops off for a NumPyPath; row blocks at any size for RowBlocks."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    algorithm = params.get("algorithm")
    row_blocks = True if isinstance(algorithm, RowBlocks) else None
    with compiled.use_compiled(not isinstance(algorithm, NumPyPath)), im2col.use_row_blocks(row_blocks):
        yield


def test_the_compiled_loops_are_installed_for_the_tests():
    # Without Numba the "compiled" cases would silently test the NumPy code twice.
    assert compiled.enabled()


def test_every_algorithm_name_has_a_module_to_run_it():
    assert tuple(dispatch.ALGORITHMS) == choose.ALGORITHMS
    for module in dispatch.ALGORITHMS.values():
        assert callable(module.correlate) and callable(module.kernel_gradient)


PAD_MODES = ["constant", "reflect", "symmetric", "edge", "wrap"]
F32_TOL = 1e-5


def _random_case(rng, algorithm):
    """x, kernel and conv2d keywords that ``algorithm`` supports, small enough for the loops."""
    while True:
        c = int(rng.integers(1, 4))
        groups = c if algorithm == "depthwise" else 1
        if algorithm == "im2col" and c > 1 and rng.random() < 0.4:
            groups = c
        k = groups * int(rng.integers(1, 3)) if groups > 1 else int(rng.integers(1, 4))
        fh, fw = (int(v) for v in rng.integers(1, 6 if algorithm == "fft" else 4, size=2))
        strides = 1 if algorithm == "fft" else tuple(int(v) for v in rng.integers(1, 3, size=2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
        if algorithm == "winograd":  # 3x3, stride 1, no dilation: Winograd's one shape
            fh = fw = 3
            strides = dilation = 1
        padding = [
            "same", "same_lower", "valid", "full", int(rng.integers(0, 3)),
            ((int(rng.integers(0, 3)), int(rng.integers(0, 3))), (int(rng.integers(0, 3)), 0)),
        ][int(rng.integers(0, 6))]
        options = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                       pad_mode=PAD_MODES[int(rng.integers(0, 5))], flip=bool(rng.random() < 0.3))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), c)
        try:
            convlayer.shapes.conv2d_output_shape(shape, (fh, fw, c // groups, k), strides, padding,
                                                 dilation, groups=groups)
        except ValueError:  # the kernel does not fit: draw again
            continue
        x = rng.standard_normal(shape)
        return x, rng.standard_normal((fh, fw, c // groups, k)), options


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("seed", range(30))
def test_random_cases_match_the_reference_float64(algorithm, seed):
    rng = np.random.default_rng([seed, ALGORITHMS.index(algorithm)])
    x, kernel, options = _random_case(rng, algorithm)
    bias = rng.standard_normal(kernel.shape[-1]) if seed % 3 == 0 else None
    if seed % 4 == 1:  # PyTorch's layout
        x, kernel = x.transpose(0, 3, 1, 2), kernel.transpose(3, 2, 0, 1)
        options["data_format"] = "channels_first"
    expected = reference.conv2d(x, kernel, bias, **options)
    got = convlayer.conv2d(x, kernel, bias, algorithm=algorithm, **options)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def _float32_check(x, kernel, algorithm, **options):
    x, kernel = x.astype(np.float32), kernel.astype(np.float32)
    got = convlayer.conv2d(x, kernel, algorithm=algorithm, **options)
    expected = reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), **options)
    bound = reference.conv2d(np.abs(x.astype(np.float64)), np.abs(kernel.astype(np.float64)), **options)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=F32_TOL * bound.max())


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_float32_within_the_stated_tolerance(algorithm, pad_mode):
    rng = np.random.default_rng(7)
    groups = 4 if algorithm == "depthwise" else 1
    if algorithm == "winograd":  # its one shape, with channels enough for its sums to matter
        x = rng.standard_normal((2, 11, 13, 32)) + 3
        _float32_check(x, rng.standard_normal((3, 3, 32, 16)), algorithm, pad_mode=pad_mode)
        return
    x = rng.standard_normal((2, 11, 13, 4)) + 3  # an offset makes cancellation visible
    kernel = rng.standard_normal((5, 4, 4 // groups, 8))
    _float32_check(x, kernel, algorithm, groups=groups, pad_mode=pad_mode, dilation=(1, 2))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_kernel_gradient_float32_within_the_stated_tolerance(padding):
    # F(3x3, 2x2) sums products of transformed tiles over every tile: its error, too, is
    # measured against the size of the largest sum of products, sum |x| |grad_out| per tap.
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((3, 14, 13, 32)) + 3).astype(np.float32)  # an offset: cancellation shows
    kernel = rng.standard_normal((3, 3, 32, 16)).astype(np.float32)
    grad = (rng.standard_normal((3, 14, 13, 16)) - 2).astype(np.float32)
    if padding == "valid":
        grad = grad[:, 1:-1, 1:-1]
    got = convlayer.conv2d_backward(grad, x, kernel, padding=padding, algorithm="winograd").grad_kernel
    wide = [a.astype(np.float64) for a in (grad, x, kernel)]
    expected = reference.conv2d_backward(*wide, padding=padding).grad_kernel
    bound = reference.conv2d_backward(*[np.abs(a) for a in wide], padding=padding).grad_kernel
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=F32_TOL * bound.max())


def test_winograd_kernel_gradient_gives_the_same_bits_every_call():
    # Each thread sums a fixed set of blocks and the threads' sums are added in order: a
    # thread that happened to take more or other blocks would change the rounding.
    rng = np.random.default_rng(22)
    x, kernel = rng.random((4, 20, 20, 16), np.float32), rng.random((3, 3, 16, 16), np.float32)
    grad = rng.random((4, 20, 20, 16), np.float32)
    with convlayer.memory_budget(2**19):  # many blocks
        first, *others = [convlayer.conv2d_backward(grad, x, kernel, algorithm="winograd").grad_kernel
                          for _ in range(6)]
    for other in others:
        np.testing.assert_array_equal(other, first)


@pytest.mark.parametrize("algorithm", ["shift", "fft", "im2col"])
def test_single_channel_large_kernel_float32(algorithm):
    """The 31x31 benchmark shape, smaller: FFT's error stays far below the bound."""
    rng = np.random.default_rng(8)
    _float32_check(rng.random((40, 37)), rng.standard_normal((15, 15)), algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
def test_integer_images_and_mixed_dtypes(algorithm):
    rng = np.random.default_rng(9)
    groups = 3 if algorithm == "depthwise" else 1
    x = rng.integers(0, 256, (2, 9, 9, 3), dtype=np.uint8)
    kernel = rng.standard_normal((3, 3, 3 // groups, 3))
    bound = reference.conv2d(x.astype(np.float64), np.abs(kernel), groups=groups).max()  # pixels >= 0
    for kernel_dtype in (np.float32, np.float64):
        narrow = kernel.astype(kernel_dtype)
        got = convlayer.conv2d(x, narrow, algorithm=algorithm, groups=groups)
        assert got.dtype == kernel_dtype
        expected = reference.conv2d(x.astype(np.float64), narrow.astype(np.float64), groups=groups)
        atol = F32_TOL * bound if kernel_dtype == np.float32 else 1e-9 * bound  # as for float input
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
def test_empty_batches_and_images(algorithm):
    groups = 2 if algorithm == "depthwise" else 1
    kernel = np.ones((3, 3, 2 // groups, 4))
    empty = convlayer.conv2d(np.ones((0, 5, 5, 2)), kernel, algorithm=algorithm, groups=groups)
    assert empty.shape == (0, 5, 5, 4)
    y = convlayer.conv2d(np.ones((1, 0, 5, 2)), kernel, [1, 2, 3, 4], padding=2, algorithm=algorithm,
                         groups=groups)
    np.testing.assert_array_equal(y, np.broadcast_to([1.0, 2, 3, 4], (1, 2, 7, 4)))  # bias over padding


# ---------------------------------------------------------------------- memory budget


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_memory_budget_respected(algorithm, pad_mode, work_memory):
    rng = np.random.default_rng(12)
    groups = 8 if algorithm == "depthwise" else 1
    x = rng.random((2, 96, 96, 8), dtype=np.float32)
    size = 3 if algorithm == "winograd" else 9
    kernel = rng.random((size, size, 8 // groups, 8), dtype=np.float32)
    options = dict(algorithm=algorithm, groups=groups, pad_mode=pad_mode)
    convlayer.conv2d(x[:1, :20, :20], kernel, **options)  # imports (scipy.fft) and thread pool first
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, out = work_memory(lambda: convlayer.conv2d(x, kernel, **options))
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    bound = convlayer.conv2d(x, kernel, algorithm="im2col", groups=groups, pad_mode=pad_mode)
    np.testing.assert_allclose(out, bound, rtol=0, atol=F32_TOL * np.abs(bound).max())


# ------------------------------------------------------------------- choices and errors


@pytest.mark.parametrize(
    "algorithm, options, message",
    [
        ("shift", dict(groups=2),
         r"algorithm='shift' cannot compute this convolution: it needs groups=1 \(got groups=2"),
        ("depthwise", dict(groups=1),
         r"algorithm='depthwise' cannot .*groups == input channels \(got groups=1 with 4"),
        ("fft", dict(strides=2), r"algorithm='fft' cannot .*it needs strides 1 \(got strides=\(2, 2\)\)"),
        ("fft", dict(groups=2), r"algorithm='fft' cannot .*it needs groups=1 \(got groups=2\)"),
    ],
)
def test_unsupported_explicit_choices_raise(algorithm, options, message):
    groups = options.get("groups", 1)
    kernel = np.ones((3, 3, 4 // groups, 4))
    with pytest.raises(ValueError, match=message):
        convlayer.conv2d(np.ones((1, 8, 8, 4)), kernel, algorithm=algorithm, **options)


@pytest.mark.parametrize("bad", ["winograd4x4", None, 3])
def test_unknown_algorithm_raises(bad):
    message = r"algorithm must be 'auto', 'im2col', 'shift', 'depthwise', 'fft', 'winograd' or 'grouped'; got " + repr(bad)
    with pytest.raises(ValueError, match=message):
        convlayer.conv2d(np.ones((4, 4)), np.ones((3, 3)), algorithm=bad)


def test_algorithm_names_ignore_case():
    np.testing.assert_allclose(convlayer.conv2d(np.ones((4, 4)), np.ones((3, 3)), algorithm="FFT"),
                               convlayer.conv2d(np.ones((4, 4)), np.ones((3, 3))), atol=1e-12)


def test_fft_works_without_scipy():
    rng = np.random.default_rng(13)
    x, kernel = rng.standard_normal((2, 17, 19, 2)), rng.standard_normal((6, 5, 2, 3))
    with fft.use_scipy(False):
        got = convlayer.conv2d(x, kernel, algorithm="fft", pad_mode="wrap")
    np.testing.assert_allclose(got, reference.conv2d(x, kernel, pad_mode="wrap"), rtol=1e-9, atol=1e-9)


def test_next_fast_len():
    assert [fft.next_fast_len(n) for n in (1, 7, 17, 97, 129, 286)] == [1, 8, 18, 100, 135, 288]


def test_thread_pool_covers_every_item_and_raises_errors():
    seen = []
    parallel.run_parts(seen.extend, list(range(10)), threads=2)
    assert sorted(seen) == list(range(10))

    def fail(part):
        if 3 in part:
            raise RuntimeError("worker failed")

    with pytest.raises(RuntimeError, match="worker failed"):
        parallel.run_parts(fail, list(range(10)), threads=2)


# ------------------------------------------------------------------------ backward


@pytest.mark.parametrize("algorithm", ["auto"] + ALGORITHMS, ids=["auto"] + ALGORITHM_IDS)
@pytest.mark.parametrize("seed", range(15))
def test_backward_random_cases_match_the_reference(algorithm, seed):
    rng = np.random.default_rng([seed, 99, len(algorithm)])
    x, kernel, options = _random_case(rng, "im2col" if algorithm == "auto" else algorithm)
    if seed % 2:  # the routes that apply only to zero padding at stride 1
        options.update(pad_mode="constant", strides=1)
    grad = rng.standard_normal(reference.conv2d(x, kernel, **options).shape)
    expected = reference.conv2d_backward(grad, x, kernel, **options)
    got = convlayer.conv2d_backward(grad, x, kernel, algorithm=algorithm, **options)
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


def test_backward_input_gradient_keeps_non_finite_values_local():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 48, 48, 1))
    kernel = rng.standard_normal((15, 15, 1, 1))
    grad = rng.standard_normal((1, 48, 48, 1))
    grad[0, 20, 20, 0] = np.nan
    got = convlayer.conv2d_backward(grad, x, kernel).grad_x
    expected = convlayer.conv2d_backward(grad, x, kernel, algorithm="im2col").grad_x
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isfinite(got).sum() > 0


@pytest.mark.parametrize("algorithm", ["auto"] + ALGORITHMS, ids=["auto"] + ALGORITHM_IDS)
def test_backward_memory_budget_respected(algorithm, work_memory):
    rng = np.random.default_rng(15)
    groups = 8 if algorithm == "depthwise" else 1
    x = rng.random((2, 64, 64, 8), dtype=np.float32)
    size = 3 if algorithm == "winograd" else 5
    kernel = rng.random((size, size, 8 // groups, 8), dtype=np.float32)
    grad = rng.random((2, 64, 64, 8), dtype=np.float32)

    def call():
        return convlayer.conv2d_backward(grad, x, kernel, groups=groups, algorithm=algorithm)

    expected = convlayer.conv2d_backward(grad, x, kernel, groups=groups, algorithm="im2col")
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, got = work_memory(call)
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    # Two float32 results, each within gamma_n ~ n u of the sum of |terms| (Higham 3.1), which
    # is the value itself, all inputs being positive: n = taps * k / groups for grad_x, one
    # term per output pixel for the others. The largest value serves (FFT and Winograd spread
    # their error); twice for two results, 2 for headroom.
    terms = (size * size * 8 // groups, 2 * 64 * 64, 2 * 64 * 64)
    for value, want, n in zip(got, expected, terms):
        np.testing.assert_allclose(value, want, rtol=0, atol=2 * 2 * n * 2.0**-24 * np.abs(want).max())


# ------------------------------------------------------------------------ compiled loops


def test_use_compiled_switches_the_loops_off_and_restores_the_setting(monkeypatch):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((1, 9, 9, 2)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    calls = []
    original = shift.correlate_compiled
    monkeypatch.setattr(shift, "correlate_compiled", lambda *args: calls.append(1) or original(*args))
    with compiled.use_compiled(False):
        assert not compiled.enabled()
        convlayer.conv2d(x, kernel, algorithm="shift")
    assert calls == [] and compiled.enabled()
    convlayer.conv2d(x, kernel, algorithm="shift")
    assert calls == [1]


def test_switching_the_loops_on_without_numba_says_what_to_install(monkeypatch):
    with compiled.use_compiled(True):  # restores the setting after
        with monkeypatch.context() as without_numba:
            without_numba.setattr(importlib.util, "find_spec", lambda name: None)
            with pytest.raises(ImportError, match="pip install numba"):
                compiled.set_enabled(True)
            assert not compiled.enabled()
    assert compiled.enabled()


def test_compiled_loops_keep_an_infinite_weight_over_zero_padding_nan():
    # Plain arithmetic: inf * 0 (a padded zero) is NaN, as im2col computes it.
    x = np.ones((1, 5, 5, 2), np.float32)
    kernel = np.ones((3, 3, 2, 2), np.float32)
    kernel[0, 0, 1, 0] = np.inf
    depthwise_kernel = np.ones((3, 3, 1, 2), np.float32)
    depthwise_kernel[0, 0, 0, 1] = np.inf
    for k, groups in ((kernel, 1), (depthwise_kernel, 2)):
        with np.errstate(invalid="ignore"):
            expected = convlayer.conv2d(x, k, groups=groups, algorithm="im2col")
        got = convlayer.conv2d(x, k, groups=groups, algorithm="shift" if groups == 1 else "depthwise")
        np.testing.assert_array_equal(got, expected)
        assert np.isnan(got).any()


@pytest.mark.parametrize("algorithm", ["shift", "depthwise", "winograd", "auto"])
@pytest.mark.parametrize("dtype", [">f4", "<f2", ">i2"])
def test_inputs_numba_cannot_read_take_the_numpy_code(algorithm, dtype):
    rng = np.random.default_rng(18)
    x = (rng.standard_normal((1, 10, 10, 16)) * 10).astype(dtype)
    groups = 16 if algorithm == "depthwise" else 1
    kernel = rng.standard_normal((3, 3, 16 // groups, 16))
    got = convlayer.conv2d(x, kernel, groups=groups, algorithm=algorithm)
    grads = convlayer.conv2d_backward(np.ones_like(got), x, kernel, groups=groups, algorithm=algorithm)
    x_native = x.astype(x.dtype.newbyteorder("="))
    np.testing.assert_allclose(got, reference.conv2d(x_native, kernel, groups=groups), rtol=1e-9, atol=1e-9)
    expected = reference.conv2d_backward(np.ones_like(got), x_native, kernel, groups=groups)
    np.testing.assert_allclose(grads.grad_kernel, expected.grad_kernel, rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("algorithm", ["shift", "winograd", "auto"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_weight_reaches_only_the_input_pixels_it_read(bad, algorithm):
    rng = np.random.default_rng(19)
    x = rng.standard_normal((1, 9, 9, 2))
    kernel = rng.standard_normal((3, 3, 2, 2))
    kernel[0, 0, 1, 0] = bad  # top-left tap: 'same' padding puts it on zeros along two borders
    grad = rng.standard_normal((1, 9, 9, 2))
    with np.errstate(invalid="ignore"):
        expected = reference.conv2d_backward(grad, x, kernel, padding="same")
        got = convlayer.conv2d_backward(grad, x, kernel, padding="same", algorithm=algorithm)
    np.testing.assert_array_equal(np.isnan(got.grad_x), np.isnan(expected.grad_x))
    np.testing.assert_array_equal(np.isfinite(got.grad_x), np.isfinite(expected.grad_x))


def test_compiled_loops_step_aside_when_their_rows_pass_the_budget(monkeypatch):
    # Numba allocates outside tracemalloc's view, so the test checks the decision: a wide
    # image under a small budget does not fit the loops (compiled.fits) and goes to the
    # NumPy code, which splits rows (test_memory).
    calls = []
    for module in (shift, depthwise):
        for name in ("correlate_compiled", "kernel_gradient_compiled"):
            original = getattr(module, name)
            monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    rng = np.random.default_rng(20)
    x = rng.standard_normal((1, 3, 20000, 4)).astype(np.float32)
    for kernel, groups in ((rng.standard_normal((3, 3, 4, 4)), 1), (rng.standard_normal((3, 3, 1, 4)), 4)):
        algorithm = "shift" if groups == 1 else "depthwise"
        geom = _validate.conv_args(x, kernel, None, strides=1, padding="same", dilation=1, groups=groups,
                                   flip=False, pad_mode="constant", data_format="channels_last").geom
        assert not compiled.fits(geom, 4, 2**16) and compiled.fits(geom, 4, convlayer.get_memory_budget())
        expected = convlayer.conv2d(x, kernel, groups=groups, algorithm="im2col")
        with convlayer.memory_budget(2**16):
            got = convlayer.conv2d(x, kernel, groups=groups, algorithm=algorithm)
            convlayer.conv2d_backward(np.ones_like(got), x, kernel, groups=groups, algorithm=algorithm)
        bound = convlayer.conv2d(np.abs(x), np.abs(kernel), groups=groups, algorithm="im2col").max()
        np.testing.assert_allclose(got, expected, rtol=0, atol=F32_TOL * bound)
        assert calls == []
        convlayer.conv2d(x, kernel, groups=groups, algorithm=algorithm)  # the default budget: fits
        assert calls == ["correlate_compiled"]
        calls.clear()


def test_many_channel_depthwise_layers_take_the_compiled_loops_on_every_thread(monkeypatch):
    # The loops' memory counted a dense kernel (fh fw c k): EfficientNet's 7x7x1152 5x5
    # depthwise layer "needed" 133 MB a thread and went to the NumPy code with two threads,
    # 5-7x slower than the loops on one. A depthwise kernel is fh fw k.
    calls = []
    original = depthwise.correlate_compiled
    monkeypatch.setattr(depthwise, "correlate_compiled", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(parallel, "thread_count", lambda: 4)
    rng = np.random.default_rng(21)
    c = 1152
    x = rng.standard_normal((1, 7, 7, c)).astype(np.float32)
    kernel = rng.standard_normal((5, 5, 1, c)).astype(np.float32)
    got = convlayer.conv2d(x, kernel, groups=c)
    assert calls == [1]
    expected = reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), groups=c)
    bound = reference.conv2d(np.abs(x).astype(np.float64), np.abs(kernel).astype(np.float64), groups=c).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=F32_TOL * bound)


def test_an_errstate_callback_reaches_every_thread():
    # np.errstate(call=...) is per thread as well: a worker without the callback raised
    # NumPy's "no function found" where the caller's callback should have been called.
    calls = []
    x = np.full((2, 32, 32, 16), 3e37, np.float32)
    kernel = np.ones((3, 3, 16, 16), np.float32)
    with np.errstate(all="call", call=lambda kind, flag: calls.append(kind)):
        convlayer.conv2d_backward(x, x, kernel, algorithm="winograd")
    assert calls


def test_parallel_run_parts_raises_only_after_every_worker_stopped():
    # The workers write into buffers the caller lends them: raising while one still runs
    # would let the next call reuse those buffers under it.
    done = []

    def worker(part):
        if 0 in part:
            raise ValueError("the first share fails at once")
        time.sleep(0.2)
        done.extend(part)

    with pytest.raises(ValueError, match="at once"):
        parallel.run_parts(worker, [0, 1, 2, 3], 4)
    assert sorted(done) == [1, 2, 3]


def test_concurrent_calls_give_blas_its_threads_back():
    # The one-BLAS-thread limit is process-wide: overlapping calls from several threads
    # must not leave it set when the last of them is done.
    assert compiled.blocked_gemm_ready()
    controller = threadpoolctl.ThreadpoolController()
    before = [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers]
    rng = np.random.default_rng(23)
    x, kernel = rng.random((2, 16, 16, 16), np.float32), rng.random((3, 3, 16, 16), np.float32)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: convlayer.conv2d_backward(x, x, kernel, algorithm="winograd"), range(80)))
    assert [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers] == before


def test_a_pool_thread_that_ran_blocks_leaves_blas_to_the_others():
    # threadpoolctl (3.8 on) hears only one thread at a time on OpenBLAS's thread count: a
    # pool thread that limited BLAS for its blocks, and lives on, must not keep that turn
    assert compiled.blocked_gemm_ready()
    controller = threadpoolctl.ThreadpoolController()
    blas = controller.select(user_api="blas")
    before = [lib.num_threads for lib in blas.lib_controllers]
    rng = np.random.default_rng(24)
    x, kernel = rng.random((2, 16, 16, 16), np.float32), rng.random((3, 3, 16, 16), np.float32)
    with ThreadPoolExecutor(1) as pool:  # its thread lives until the end of the block
        pool.submit(convlayer.conv2d_backward, x, x, kernel, algorithm="winograd").result()
        limiter = blas.limit(limits=1)
        assert [lib.num_threads for lib in blas.lib_controllers] == [1] * len(before)
        limiter.restore_original_limits()
    assert [lib.num_threads for lib in blas.lib_controllers] == before


@pytest.mark.parametrize("algorithm", ["winograd", RowBlocks("im2col"), NumPyPath("shift"), NumPyPath("depthwise")],
                         ids=["winograd", "im2col-rows", "shift-numpy", "depthwise-numpy"])
def test_the_callers_errstate_holds_on_every_thread(algorithm):
    # NumPy keeps np.errstate per thread: blocks run on the pool's threads must see the
    # caller's, or an inf input warns from a worker where the caller said ignore. (The
    # compiled loops set no floating-point flags: only NumPy's operations can warn.)
    x = np.full((4, 12, 12, 16), np.inf, np.float32)
    groups = 16 if algorithm == "depthwise" else 1
    # inf - inf in NumPy's sums on every block: across channels, or across columns (depthwise)
    np.moveaxis(x, 3 if groups == 1 else 2, 0)[::2] = -np.inf
    kernel = np.ones((3, 3, 16 // groups, 16), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            got = convlayer.conv2d(x, kernel, groups=groups, algorithm=algorithm)
    assert np.isnan(got).all()


# ------------------------------------------------------------ channels-first (algorithms/layout.py)


def _channels_first(x, kernel):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


@pytest.mark.parametrize("route", ["compiled", "threads", "tiles"])
@pytest.mark.parametrize("shape", [(2, 19, 13, 70), (1, 8, 9, 33), (3, 4, 4, 4)], ids=["runs", "edges", "small"])
def test_write_back_fills_a_channels_first_view(shape, route):
    """layout.write_back: a chunk's NHWC values into the NHWC view of an NCHW array, by the
    compiled transposing copy (whole runs of 16 pixels and a last short one; on one thread
    and on two), or without the compiled loops in tiles of TILE_ROWS x TILE_CHANNELS (rows
    and channels that are not multiples of them included), or in one go for a small chunk
    or a contiguous target: the same as one assignment, bit for bit."""
    from convlayer.algorithms import compiled, layout

    rng = np.random.default_rng(36)
    values = rng.standard_normal(shape).astype(np.float32)
    planes = rng.standard_normal((shape[0], shape[3], shape[1], shape[2])).astype(np.float32)
    with pytest.MonkeyPatch.context() as patch, compiled.use_compiled(route != "tiles"):
        patch.setattr(layout, "TILE_MIN_ITEMS", 64)  # the small case stays below it
        patch.setattr(layout, "COPY_PARALLEL_ITEMS", 64 if route == "threads" else 2**40)
        layout.write_back(planes.transpose(0, 2, 3, 1), values)
    np.testing.assert_array_equal(planes.transpose(0, 2, 3, 1), values)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_contiguous_copies_a_channels_first_view_on_every_thread(threads):
    """layout.contiguous: the NHWC view of an NCHW array copied C-contiguous, from
    COPY_PARALLEL_ITEMS values each image's rows in one part a thread (row counts that do
    not split evenly): NumPy's copy, bit for bit; a C-contiguous array comes back as itself."""
    from convlayer.algorithms import layout, parallel

    planes = np.random.default_rng(38).standard_normal((3, 5, 7, 11)).astype(np.float32)
    view = planes.transpose(0, 2, 3, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layout, "COPY_PARALLEL_ITEMS", 64)
        patch.setattr(parallel, "thread_count", lambda: threads)
        got = layout.contiguous(view)
    assert got.flags.c_contiguous and got is not view
    np.testing.assert_array_equal(got, view)
    assert layout.contiguous(got) is got


@pytest.mark.parametrize("shape", [(3, 3, 70, 300), (1, 1, 33, 129), (2, 3, 4, 5)], ids=["tiles", "edges", "small"])
def test_filters_first_copies_a_kernel_tile_by_tile(shape):
    """layout.filters_first: (fh, fw, c, k) into PyTorch's (k, c, fh, fw), in tiles of
    KERNEL_TILE_FILTERS x KERNEL_TILE_CHANNELS (counts that are not multiples of them, and a
    flipped view, included), or in one go for a small kernel; layout.filters_last the same
    from PyTorch's order in memory: NumPy's transpose, bit for bit."""
    rng = np.random.default_rng(37)
    hwio = rng.standard_normal(shape).astype(np.float32)
    torch_order = np.ascontiguousarray(hwio.transpose(3, 2, 0, 1)).transpose(2, 3, 1, 0)  # filters outermost
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layout, "TILE_MIN_ITEMS", 64)  # the small case stays below it
        for view in (hwio, hwio[::-1, ::-1], torch_order, torch_order[::-1, ::-1]):
            got = layout.filters_first(view)
            assert got.flags.c_contiguous
            np.testing.assert_array_equal(got, view.transpose(3, 2, 0, 1))
            back = layout.filters_last(view)  # and layout.filters_last: (fh, fw, c, k) C-contiguous
            assert back.flags.c_contiguous
            np.testing.assert_array_equal(back, view)


@pytest.mark.parametrize("budget", [None, 2**16], ids=["whole", "chunks"])
@pytest.mark.parametrize("kernel_shape, options", [
    ((3, 3, 40, 300), dict()), ((3, 3, 40, 300), dict(flip=True)), ((3, 3, 24, 40), dict(strides=2)),
    ((1, 1, 70, 300), dict()), ((1, 1, 300, 70), dict(strides=2)), ((1, 1, 9, 5), dict()),
    ((3, 3, 32, 300), dict(size=24))])
def test_channels_first_kernel_gradient_as_channels_last_transposed(kernel_shape, options, budget):
    # a channels-first kernel's gradient is computed filters first (new_gradient: F-ordered
    # matrices, by every route: both gradients in one pass, the kernel's alone, the small
    # 1x1 path, chunks of images; im2col.channel_major's reordered patches for fewer pixels
    # than filters) or copied by filters_first's tiles: the channels-last gradient,
    # transposed by NumPy, and C-contiguous; the forward pass likewise
    rng = np.random.default_rng(38)
    size = options.pop("size", 5)  # 24: x's gradient as a correlation, the kernel's alone (like=kernel)
    x, kernel = rng.standard_normal((2, size, size + 1, kernel_shape[2])), rng.standard_normal(kernel_shape)
    grad_out = rng.standard_normal(convlayer.conv2d(x, kernel, **options).shape)
    with convlayer.memory_budget(budget) if budget else contextlib.nullcontext():
        last = convlayer.conv2d_backward(grad_out, x, kernel, **options)
        first = convlayer.conv2d_backward(*_channels_first(grad_out, kernel)[:1], *_channels_first(x, kernel),
                                          data_format="channels_first", **options)
        forward = convlayer.conv2d(*_channels_first(x, kernel), data_format="channels_first", **options)
    np.testing.assert_allclose(forward, convlayer.conv2d(x, kernel, **options).transpose(0, 3, 1, 2), rtol=1e-12,
                               atol=1e-12)  # the forward pass reorders its patches too (im2col.channel_major)
    assert first.grad_kernel.flags.c_contiguous
    np.testing.assert_allclose(first.grad_kernel, last.grad_kernel.transpose(3, 2, 0, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.grad_x, last.grad_x.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, dtype", [((2, 9, 7, 16), np.float32), ((3, 5, 24), np.float64),
                                          ((1, 3, 3, 700), np.float32), ((4, 11, 13, 3), np.float32)],
                         ids=["rows and a rest", "3-D", "wide", "odd"])
def test_add_per_channel_gives_the_broadcast_sums(shape, dtype):
    """layout.add_per_channel: a bias over rows of ADD_ROW items (16 channels: 64 pixels a
    row, 2 x 9 x 7 = 126 pixels: one whole row and a rest of 62), bit for bit the plain
    broadcast; a channels-first view (not contiguous) and wide layers take the broadcast."""
    from convlayer.algorithms import layout

    rng = np.random.default_rng(37)
    out = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    want = out + bias
    layout.add_per_channel(out, bias)
    np.testing.assert_array_equal(out, want)
    view = rng.standard_normal((2, shape[-1], 5, 6)).astype(dtype).transpose(0, 2, 3, 1)
    want = view + bias
    layout.add_per_channel(view, bias)
    np.testing.assert_array_equal(view, want)


BOUNDS = [(None, None), (0, None), (-0.5, 0.25), (1.0, -1.0), (None, np.inf), (np.nan, 1.0),
          (np.array([0.0, 1.0]), 2.0)]


@pytest.mark.parametrize("compiled_loops", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("bounds", BOUNDS, ids=["none", "relu", "clip", "min above max", "to inf", "nan bound",
                                                "bound per channel pair"])
@pytest.mark.parametrize("shape, dtype", [((2, 9, 7, 16), np.float32), ((3, 5, 2), np.float64),
                                          ((2, 300, 300, 24), np.float32), ((1, 3, 3, 700), np.float32)],
                         ids=["rows and a rest", "two channels", "two threads", "wide"])
def test_add_per_channel_with_bounds_is_numpys_sum_then_clip(shape, dtype, bounds, compiled_loops, monkeypatch):
    """layout.add_per_channel(out, bias, low, high): bit for bit ``np.clip(out + bias, low,
    high)``, NaN and infinities included (a NaN sum stays NaN, min above max gives max), by
    the compiled pass (4.3 million items: both threads) and by NumPy; a NaN bound or one of
    several values goes to NumPy's clip."""
    from convlayer.algorithms import compiled, layout

    monkeypatch.setattr(layout, "ADD_COMPILED_MIN", 1)  # the compiled pass for the small shapes too
    low, high = bounds
    if isinstance(low, np.ndarray):
        low = np.tile(low, shape[-1] // 2) if shape[-1] % 2 == 0 else low[:1]
    rng = np.random.default_rng(41)
    out = rng.standard_normal(shape).astype(dtype)
    out.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 1e30, -1e30]
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    with np.errstate(invalid="ignore"):
        want = out + bias if low is None and high is None else np.clip(out + bias, low, high)
    with compiled.use_compiled(compiled_loops):
        layout.add_per_channel(out, bias, low, high)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("algorithm", ["auto"] + ALGORITHMS, ids=["auto"] + ALGORITHM_IDS)
@pytest.mark.parametrize("budget", [None, 2**16, 2**12], ids=["whole", "chunks", "views"])
def test_channels_first_computed_channels_last_in_chunks(algorithm, budget):
    # layout.chunks: the whole batch at once, two-image chunks, or (one image's copies
    # past half the budget) the NHWC views as they are; forward and backward
    rng = np.random.default_rng(33)
    groups = 4 if algorithm == "depthwise" else 1
    size = 3 if algorithm == "winograd" else 2
    x = rng.standard_normal((5, 9, 8, 4))
    kernel = rng.standard_normal((size, size, 4 // groups, 4))
    if algorithm == "winograd":  # needs 16 channels in and out
        x, kernel = rng.standard_normal((5, 9, 8, 16)), rng.standard_normal((3, 3, 16, 16))
    options = dict(groups=groups, pad_mode="reflect" if algorithm != "fft" else "constant")
    expected = reference.conv2d(x, kernel, **options)
    grad = rng.standard_normal(expected.shape)
    expected_grads = reference.conv2d_backward(grad, x, kernel, **options)
    xf, kf = _channels_first(x, kernel)
    gradf = np.ascontiguousarray(grad.transpose(0, 3, 1, 2))
    with convlayer.memory_budget(budget or convlayer.get_memory_budget()):
        got = convlayer.conv2d(xf, kf, algorithm=algorithm, data_format="channels_first", **options)
        grads = convlayer.conv2d_backward(gradf, xf, kf, algorithm=algorithm, data_format="channels_first",
                                          **options)
    np.testing.assert_allclose(got, expected.transpose(0, 3, 1, 2), rtol=1e-9, atol=1e-9)
    wanted = (expected_grads.grad_x.transpose(0, 3, 1, 2), expected_grads.grad_kernel.transpose(3, 2, 0, 1),
              expected_grads.grad_bias)
    for name, value, want in zip(("grad_x", "grad_kernel", "grad_bias"), grads, wanted):
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-9, err_msg=name)


def test_layout_chunks_fit_the_budget():
    assert [tuple(c) for c in layout.chunks(5, 100, 400)] == [(0, 2, 200), (2, 4, 200), (4, 5, 200)]
    assert [tuple(c) for c in layout.chunks(3, 100, 10**6)] == [(0, 3, 10**6 - 300)]
    assert layout.chunks(3, 300, 400) is None  # one image's copies past half the budget


@pytest.mark.parametrize("algorithm", ["auto"] + ALGORITHMS, ids=["auto"] + ALGORITHM_IDS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_no_algorithm_writes_into_the_callers_kernel_or_input(algorithm, data_format):
    # _validate passes the caller's kernel on uncopied when its dtype is the result's: a write
    # into it would raise here (read-only), or change the copies' values
    rng = np.random.default_rng(37)
    groups = 4 if algorithm == "depthwise" else 1
    channels = 16 if algorithm == "winograd" else 4
    x, kernel = rng.standard_normal((2, 7, 6, channels)), rng.standard_normal((3, 3, channels // groups, channels))
    if data_format == "channels_first":
        x, kernel = _channels_first(x, kernel)
    originals = x.copy(), kernel.copy()
    x.flags.writeable = kernel.flags.writeable = False
    out = convlayer.conv2d(x, kernel, groups=groups, algorithm=algorithm, data_format=data_format)
    convlayer.conv2d_backward(np.ones_like(out), x, kernel, groups=groups, algorithm=algorithm, data_format=data_format)
    np.testing.assert_array_equal(x, originals[0])
    np.testing.assert_array_equal(kernel, originals[1])
