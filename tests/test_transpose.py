"""conv_transpose2d and its gradient against PyTorch, the adjoint identity, the reference loops
and TensorFlow's rules written from the definition.

Oracles. (1) ``torch.nn.functional.conv_transpose2d`` and its autograd for explicit padding,
output_padding, groups and dilation. (2) For TensorFlow's padding words and output_shape,
which torch has not: torch with no padding gives every row any input pixel reaches
(``(h - 1) * s + span`` of them); the padding SPEC.md's conv2d rule resolves on the output
size crops ``top`` of them and the output keeps ``out_h`` rows from there, zeros past the end.
(3) The adjoint: ``<conv2d(x), y> == <x, conv_transpose2d(y)>``, and equality with
``conv2d_backward(y, x, kernel).grad_x`` (the SPEC's definition). (4) The plain loops of
``convlayer.reference``, checked here by hand.

Tolerances. float64: 1e-10 of the largest sum of |terms|. float32: a sum of n products,
in any order and any blocking, errs by at most gamma_n = n u / (1 - n u) times the sum of
the |terms| (Higham, Accuracy and Stability, 3.1), u = 2**-24; the bound is per value: the
same op in float64 on |x|, |kernel| (and |bias|, one more term). Each output value of the
transposed op sums at most fh * fw * c / groups products; x's gradient (a conv2d of grad_out)
fh * fw * k / groups; a tap's gradient one per input pixel, n * h * w. The factor 2 covers
1 / (1 - n u) and the float64 oracle's own rounding. The small channel counts keep every
route on direct summation (Winograd needs 16 channels, FFT 49 taps).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import convlayer  # noqa: E402
from convlayer import conv_transpose2d, conv_transpose2d_backward, reference, shapes  # noqa: E402

torch.set_num_threads(1)
U32 = 2.0**-24
WORDS = ["same", "same_lower", "valid", "full"]


def _span(f, d):
    return (f - 1) * d + 1


def _random_explicit(seed):
    """A random PyTorch-expressible case: (x NCHW, kernel (c, k/g, fh, fw), bias, options)."""
    rng = np.random.default_rng(seed)
    while True:
        g = int(rng.choice([1, 1, 2, 3]))
        c, k = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        fh, fw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        dh, dw = (int(v) for v in rng.integers(1, 3, 2))
        ph, pw = (int(v) for v in rng.integers(0, 3, 2))
        oph, opw = int(rng.integers(0, max(sh, dh))), int(rng.integers(0, max(sw, dw)))
        if (h - 1) * sh - 2 * ph + _span(fh, dh) + oph > 0 and (w - 1) * sw - 2 * pw + _span(fw, dw) + opw > 0:
            break
    options = dict(strides=(sh, sw), padding=(ph, pw), output_padding=(oph, opw), groups=g, dilation=(dh, dw))
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((c, k // g, fh, fw)), rng.standard_normal(k),
            options)


def _torch(x, kernel, bias, options, grad=None):
    """torch's result and, with ``grad``, its gradients, as NumPy arrays (NCHW, its kernel layout)."""
    xt, kt = torch.tensor(x, requires_grad=True), torch.tensor(kernel, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    y = F.conv_transpose2d(xt, kt, bt, stride=options["strides"], padding=options["padding"],
                           output_padding=options["output_padding"], groups=options["groups"],
                           dilation=options["dilation"])
    if grad is None:
        return y.detach().numpy()
    (y * torch.tensor(grad)).sum().backward()
    return xt.grad.numpy(), kt.grad.numpy(), bt.grad.numpy()


def _nhwc(a):
    return a.transpose(0, 2, 3, 1)


def _hwoi(kernel):
    """PyTorch's (c, k/g, fh, fw) as the channels-last (fh, fw, k/g, c)."""
    return kernel.transpose(2, 3, 1, 0)


def _close(got, want, scale, rtol=1e-10):
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * max(scale, 1.0))


# ----------------------------------------------------------------------------- against PyTorch


@pytest.mark.parametrize("seed", range(300))
def test_forward_matches_torch_in_both_layouts(seed):
    x, kernel, bias, options = _random_explicit(seed)
    want = _torch(x, kernel, bias, options)
    scale = _torch(np.abs(x), np.abs(kernel), np.abs(bias), options).max()
    # 'shift' and 'depthwise' take the zero-stuffed correlation with strides, where they apply
    for algorithm in ("auto", "im2col", "shift", "depthwise"):
        first = conv_transpose2d(x, kernel, bias, data_format="channels_first", algorithm=algorithm, **options)
        _close(first, want, scale)
        last = conv_transpose2d(_nhwc(x), _hwoi(kernel), bias, algorithm=algorithm, **options)
        _close(last, _nhwc(want), scale)


@pytest.mark.parametrize("seed", range(300))
def test_backward_matches_torch_autograd_in_both_layouts(seed):
    x, kernel, bias, options = _random_explicit(1000 + seed)
    grad = np.random.default_rng(seed).standard_normal(_torch(x, kernel, bias, options).shape)
    want_x, want_kernel, want_bias = _torch(x, kernel, bias, options, grad)
    scale = np.abs(grad).sum() * max(np.abs(x).max(), np.abs(kernel).max())
    first = conv_transpose2d_backward(grad, x, kernel, data_format="channels_first", **options)
    last = conv_transpose2d_backward(_nhwc(grad), _nhwc(x), _hwoi(kernel), **options)
    for got, want in ((first.grad_x, want_x), (first.grad_kernel, want_kernel), (first.grad_bias, want_bias),
                      (last.grad_x, _nhwc(want_x)), (last.grad_kernel, _hwoi(want_kernel)),
                      (last.grad_bias, want_bias)):
        assert got.shape == want.shape
        _close(got, want, scale)


# ----------------------------------------------------------------------------- TensorFlow's rules


def _tf_pads(word, size, span, stride):
    """conv2d's padding for a word on a forward input of ``size`` (SPEC.md, Conventions)."""
    if word == "valid":
        return 0, 0
    if word == "full":
        return span - 1, span - 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2) if word == "same" else (total - total // 2, total // 2)


def _cropped_oracle(x, kernel, options, tops, sizes):
    """torch with no padding, cropped by ``tops`` and cut (or zero-extended) to ``sizes``."""
    bare = dict(options, padding=0, output_padding=0)
    full = _torch(x, kernel, None, bare)
    rows, cols = tops[0] + sizes[0], tops[1] + sizes[1]
    room = np.zeros(full.shape[:2] + (max(rows, full.shape[2]), max(cols, full.shape[3])))
    room[:, :, : full.shape[2], : full.shape[3]] = full
    return room[:, :, tops[0] : rows, tops[1] : cols]


def _random_word_case(seed):
    rng = np.random.default_rng(5000 + seed)
    g = int(rng.choice([1, 2]))
    c, k = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    h, w = (int(v) for v in rng.integers(1, 6, 2))
    fh, fw = (int(v) for v in rng.integers(1, 5, 2))
    options = dict(strides=tuple(int(v) for v in rng.integers(1, 4, 2)), groups=g,
                   dilation=tuple(int(v) for v in rng.integers(1, 3, 2)))
    x = rng.standard_normal((int(rng.integers(1, 3)), c, h, w))
    return rng, x, rng.standard_normal((c, k // g, fh, fw)), options


@pytest.mark.parametrize("seed", range(200))
@pytest.mark.parametrize("word", WORDS)
def test_padding_words_follow_tensorflow_from_the_definition(seed, word):
    rng, x, kernel, options = _random_word_case(seed)
    spans = [_span(f, d) for f, d in zip(kernel.shape[2:], options["dilation"])]
    sizes = []
    for size, span, stride in zip(x.shape[2:], spans, options["strides"]):
        sizes.append({"same": size * stride, "same_lower": size * stride,
                      "valid": size * stride + max(span - stride, 0),
                      "full": (size - 1) * stride - span + 2}[word])
    if min(sizes) < 0:
        with pytest.raises(ValueError, match="crops more than the kernel spreads"):
            conv_transpose2d(x, kernel, padding=word, data_format="channels_first", **options)
        return
    tops = [_tf_pads(word, size, span, stride)[0] for size, span, stride in zip(sizes, spans, options["strides"])]
    got = conv_transpose2d(x, kernel, padding=word, data_format="channels_first", **options)
    want = _cropped_oracle(x, kernel, options, tops, sizes)
    assert got.shape == want.shape
    _close(got, want, np.abs(x).sum() * np.abs(kernel).max())


def _size_range(word, size, span, stride):
    """The forward input sizes conv2d maps to ``size``, found by trying each (SPEC.md's sizes)."""
    def conv_out(length):
        top, bottom = _tf_pads(word, length, span, stride)
        if word in ("same", "same_lower"):
            return -(-length // stride)
        padded = length + top + bottom
        return (padded - span) // stride + 1 if padded >= span else -1
    return [length for length in range(0, size * stride + span + stride) if conv_out(length) == size]


@pytest.mark.parametrize("seed", range(200))
def test_output_shape_is_the_adjoint_of_conv2d_on_that_shape(seed):
    rng, x, kernel, options = _random_word_case(seed)
    word = WORDS[seed % 4]
    spans = [_span(f, d) for f, d in zip(kernel.shape[2:], options["dilation"])]
    ranges = [_size_range(word, size, span, stride)
              for size, span, stride in zip(x.shape[2:], spans, options["strides"])]
    if not all(ranges):
        return  # no size maps back ('full' with a kernel wider than the result)
    target = tuple(int(rng.choice(r)) for r in ranges)
    got = conv_transpose2d(x, kernel, padding=word, output_shape=target, data_format="channels_first", **options)
    forward_x = rng.standard_normal(x.shape[:1] + (kernel.shape[1] * options["groups"],) + target)
    definition = convlayer.conv2d_backward(x, forward_x, kernel, padding=word, data_format="channels_first",
                                           **options).grad_x
    scale = np.abs(x).sum() * np.abs(kernel).max()
    _close(got, definition, scale)
    forward_y = convlayer.conv2d(forward_x, kernel, padding=word, data_format="channels_first", **options)
    _close(np.sum(forward_y * x), np.sum(forward_x * got), scale * np.abs(forward_x).max(initial=0))
    tops = [_tf_pads(word, size, span, stride)[0] for size, span, stride in zip(target, spans, options["strides"])]
    _close(got, _cropped_oracle(x, kernel, options, tops, target), scale)


@pytest.mark.parametrize("seed", range(100))
def test_output_padding_with_a_word_is_keras_symmetric_padding(seed):
    rng, x, kernel, options = _random_word_case(seed)
    word = WORDS[seed % 4]
    spans = [_span(f, d) for f, d in zip(kernel.shape[2:], options["dilation"])]
    extra = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(options["strides"], options["dilation"]))
    pads = tuple({"valid": 0, "full": span - 1}.get(word, span // 2) for span in spans)
    sizes = [(size - 1) * s - 2 * p + span + e
             for size, s, p, span, e in zip(x.shape[2:], options["strides"], pads, spans, extra)]
    if min(sizes) <= 0:
        return
    got = conv_transpose2d(x, kernel, padding=word, output_padding=extra, data_format="channels_first", **options)
    want = _torch(x, kernel, None, dict(options, padding=pads, output_padding=extra))
    _close(got, want, np.abs(x).sum() * np.abs(kernel).max())


def test_the_decoder_layers_sizes():
    """'same' doubles; PyTorch's padding 1 + output_padding 1 and Keras's 'same' + output_padding 1 agree."""
    y = np.ones((1, 8, 8, 4))
    assert conv_transpose2d(y, np.ones((3, 3, 2, 4)), strides=2).shape == (1, 16, 16, 2)
    torch_like = conv_transpose2d(y, np.ones((3, 3, 2, 4)), strides=2, padding=1, output_padding=1)
    keras_like = conv_transpose2d(y, np.ones((3, 3, 2, 4)), strides=2, padding="same", output_padding=1)
    np.testing.assert_array_equal(torch_like, keras_like)
    assert conv_transpose2d(y, np.ones((3, 3, 2, 4)), strides=2, padding="same", output_padding=0).shape == (
        1, 15, 15, 2)  # as in Keras: 0 is not None


# ----------------------------------------------------------------------------- ONNX's node-test settings


def _onnx_input(images=1, channels=1):
    return np.arange(images * channels * 9, dtype=np.float32).reshape(images, channels, 3, 3)


@pytest.mark.parametrize("options, shape", [
    (dict(padding=0), (1, 2, 5, 5)),
    (dict(padding=0, strides=(3, 2), output_shape=(10, 8)), (1, 2, 10, 8)),
    (dict(padding=0, strides=(3, 2), output_shape=(1, 2, 10, 8)), (1, 2, 10, 8)),
    (dict(padding=0, strides=(3, 2), output_padding=1), (1, 2, 10, 8)),
    (dict(padding=0, strides=(3, 2), output_padding=(1, 1), output_shape=(10, 8)), (1, 2, 10, 8)),
    (dict(padding=((1, 1), (2, 2)), strides=(3, 2)), (1, 2, 7, 3)),
    (dict(padding=0, dilation=2), (1, 2, 7, 7)),
    (dict(padding="same", strides=2), (1, 2, 6, 6)),
])
def test_onnx_node_test_settings(options, shape):
    """ONNX's ConvTranspose node tests' attributes, here as keywords: sizes, and values from
    the cropped oracle (ONNX's rule for output_shape and SAME_UPPER is conv2d's)."""
    x, kernel = _onnx_input(), np.ones((1, 2, 3, 3), np.float32)
    got = conv_transpose2d(x, kernel, data_format="channels_first", **options)
    assert got.shape == shape and got.dtype == np.float32
    strides = options.get("strides", 1)
    torch_options = dict(strides=strides, groups=1, dilation=options.get("dilation", 1))
    spans = [_span(3, options.get("dilation", 1))] * 2
    padding = options["padding"]
    tops = [_tf_pads("same", size, span, 2)[0] for size, span in zip(shape[2:], spans)] if padding == "same" \
        else [padding[0][0], padding[1][0]] if isinstance(padding, tuple) else [0, 0]
    np.testing.assert_array_equal(got, _cropped_oracle(x.astype(np.float64), kernel.astype(np.float64),
                                                        torch_options, tops, shape[2:]))


def test_onnx_output_shape_case_by_hand():
    """ONNX's output_shape case: 3x3 in, strides (3, 2), ones: the last row and column stay zero."""
    got = conv_transpose2d(_onnx_input(), np.ones((1, 2, 3, 3)), strides=(3, 2), padding=0,
                           output_shape=(10, 8), data_format="channels_first")
    assert np.all(got[..., 9, :] == 0) and np.all(got[..., :, 7] == 0)
    np.testing.assert_array_equal(got[0, 0, 0], [0, 0, 1, 1, 3, 2, 2, 0])   # row 0 of x: 0 1 2, stamps 2 apart
    np.testing.assert_array_equal(got[0, 1, 4], [3, 3, 7, 4, 9, 5, 5, 0])   # row 1 of x: 3 4 5


@pytest.mark.parametrize("images", [1, 3])
def test_onnx_groups_settings(images):
    rng = np.random.default_rng(images)
    x, kernel = _onnx_input(images, 2), rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    got = conv_transpose2d(x, kernel, padding=0, groups=2, data_format="channels_first")
    want = _torch(x.astype(np.float64), kernel.astype(np.float64), None,
                  dict(strides=1, padding=0, output_padding=0, groups=2, dilation=1))
    assert got.shape == (images, 6, 5, 5)
    bound = 2 * 10 * U32 * _torch(np.abs(x.astype(np.float64)), np.abs(kernel.astype(np.float64)), None,
                                  dict(strides=1, padding=0, output_padding=0, groups=2, dilation=1))
    assert np.all(np.abs(got - want) <= bound)


# ----------------------------------------------------------------------------- reference loops


def test_reference_by_hand():
    """One pixel stamps the kernel; two pixels 2 apart with a 3-tap kernel overlap in one place."""
    stamp = reference.conv_transpose2d(np.array([[[2.0]]]), np.arange(4.0).reshape(2, 2, 1, 1), padding="valid")
    np.testing.assert_array_equal(stamp[..., 0], [[0, 2], [4, 6]])
    overlap = reference.conv_transpose2d(np.array([[[1.0], [10.0]]]), np.ones((1, 3, 1, 1)), strides=(1, 2),
                                         padding="valid")
    np.testing.assert_array_equal(overlap[..., 0], [[1, 1, 11, 10, 10]])
    cropped = reference.conv_transpose2d(np.array([[[1.0], [10.0]]]), np.ones((1, 3, 1, 1)), strides=(1, 2),
                                         padding=((0, 0), (1, 1)))
    np.testing.assert_array_equal(cropped[..., 0], [[1, 11, 10]])


@pytest.mark.parametrize("seed", range(100))
def test_fast_matches_the_reference_loops(seed):
    x, kernel, bias, options = _random_explicit(9000 + seed)
    x, kernel = _nhwc(x), _hwoi(kernel)
    want = reference.conv_transpose2d(x, kernel, bias, **options)
    scale = reference.conv_transpose2d(np.abs(x), np.abs(kernel), np.abs(bias), **options).max()
    _close(conv_transpose2d(x, kernel, bias, **options), want, scale)
    grad = np.random.default_rng(seed).standard_normal(want.shape)
    got, expected = (conv_transpose2d_backward(grad, x, kernel, **options),
                     reference.conv_transpose2d_backward(grad, x, kernel, **options))
    for a, b in zip(got, expected):
        _close(a, b, np.abs(grad).sum() * max(np.abs(x).max(), np.abs(kernel).max()))


# ----------------------------------------------------------------------------- float32


def _f32_case(seed):
    x, kernel, bias, options = _random_explicit(20000 + seed)
    return (_nhwc(x).astype(np.float32), _hwoi(kernel).astype(np.float32), bias.astype(np.float32), options)


@pytest.mark.parametrize("seed", range(100))
def test_float32_forward_within_the_sum_of_products_bound(seed):
    x, kernel, bias, options = _f32_case(seed)
    fh, fw, _, c = kernel.shape
    n = fh * fw * c // options["groups"] + 1  # the products and the bias
    wide = [a.astype(np.float64) for a in (x, kernel, bias)]
    exact = conv_transpose2d(*wide, **options)
    bound = 2 * n * U32 * conv_transpose2d(*[np.abs(a) for a in wide], **options)
    got = conv_transpose2d(x, kernel, bias, **options)
    assert got.dtype == np.float32
    assert np.all(np.abs(got - exact) <= bound)


@pytest.mark.parametrize("seed", range(100))
def test_float32_gradients_within_the_sum_of_products_bound(seed):
    x, kernel, _, options = _f32_case(seed)
    grad = np.random.default_rng(seed).standard_normal(conv_transpose2d(x, kernel, **options).shape)
    grad = grad.astype(np.float32)
    fh, fw, kg, _ = kernel.shape
    terms = (fh * fw * kg, x.shape[0] * x.shape[1] * x.shape[2], grad.size // grad.shape[-1])
    wide = [a.astype(np.float64) for a in (grad, x, kernel)]
    exact = conv_transpose2d_backward(*wide, **options)
    sizes = conv_transpose2d_backward(*[np.abs(a) for a in wide], **options)
    got = conv_transpose2d_backward(grad, x, kernel, **options)
    for value, want, size, n in zip(got, exact, sizes, terms):
        assert value.dtype == np.float32
        assert np.all(np.abs(value - want) <= 2 * n * U32 * size)


# ----------------------------------------------------------------------------- dtypes, empties, memory


def test_dtypes_follow_conv2d_and_inputs_are_not_modified():
    x = np.arange(2 * 3 * 3 * 2, dtype=np.uint8).reshape(2, 3, 3, 2)
    kernel = np.ones((2, 2, 3, 2), np.float32)
    before = x.copy()
    assert conv_transpose2d(x, kernel, strides=2).dtype == np.float32
    assert conv_transpose2d(x, kernel.astype(np.int64), strides=2).dtype == np.float64
    assert conv_transpose2d(x.tolist(), kernel, strides=2).shape == (2, 6, 6, 3)  # lists work
    np.testing.assert_array_equal(x, before)


def test_empty_batches_and_images_give_the_bias():
    kernel = np.ones((3, 3, 2, 4))
    assert conv_transpose2d(np.ones((0, 4, 4, 4)), kernel, strides=2).shape == (0, 8, 8, 2)
    empty = conv_transpose2d(np.ones((1, 0, 4, 4)), kernel, [1.0, 2.0], strides=2, padding="valid")
    assert empty.shape == (1, 1, 9, 2)
    np.testing.assert_array_equal(empty[..., 1], 2.0)
    grads = conv_transpose2d_backward(np.ones((0, 8, 8, 2)), np.ones((0, 4, 4, 4)), kernel, strides=2)
    assert grads.grad_x.shape == (0, 4, 4, 4) and not grads.grad_kernel.any() and not grads.grad_bias.any()


def test_a_non_finite_weight_reaches_only_the_pixels_its_stamps_cover():
    """0 * inf is NaN where a stamp lands (as in torch), never where only padding would have
    met the weight (a correlation of zero-padded x at stride 1 would put it there)."""
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5))
    x[0, 0, 2, 2] = 0.0
    kernel = np.ones((1, 1, 3, 3))
    kernel[0, 0, 0, 0] = np.inf
    options = dict(strides=1, padding=1, output_padding=0, groups=1, dilation=1)
    with np.errstate(invalid="ignore"):
        got = conv_transpose2d(x, kernel, padding=1, data_format="channels_first")
    want = _torch(x, kernel, None, options)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert not np.isfinite(got[0, 0, :4, :4]).any() and np.isfinite(got[0, 0, 4]).all()


@pytest.mark.parametrize("strides, groups", [(1, 1), (2, 1), (2, 16)])  # correlation, col2im, stuffed
def test_memory_budget_respected(strides, groups, work_memory):
    rng = np.random.default_rng(3)
    x = rng.random((2, 32, 32, 16), dtype=np.float32)
    kernel = rng.random((4, 4, 16 // groups if groups > 1 else 8, 16), dtype=np.float32)
    options = dict(strides=strides, padding=1, groups=groups)
    want = conv_transpose2d(x, kernel, algorithm="im2col", **options)
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, got = work_memory(lambda: conv_transpose2d(x, kernel, **options))
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * 2 * 4 * 4 * 16 * U32 * np.abs(want).max())


@pytest.mark.parametrize("strides, groups", [(1, 1), (2, 1), (2, 16)])
def test_backward_memory_budget_respected(strides, groups, work_memory):
    """The gradients within the budget: one patch matrix for both (groups=1), or each apart."""
    rng = np.random.default_rng(4)
    x = rng.random((2, 32, 32, 16), dtype=np.float32)
    kernel = rng.random((4, 4, 1 if groups > 1 else 8, 16), dtype=np.float32)
    options = dict(strides=strides, padding=1, groups=groups)
    grad = rng.random(conv_transpose2d(x, kernel, **options).shape, dtype=np.float32)
    want = conv_transpose2d_backward(grad, x, kernel, algorithm="im2col", **options)
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, got = work_memory(lambda: conv_transpose2d_backward(grad, x, kernel, **options))
    assert used <= 1.1 * budget + 64 * 1024, f"{used / budget:.2f} x the budget"
    terms = (4 * 4 * 16, 2 * 32 * 32, grad.size // 16)  # all positive: the bound is the value's size
    for value, expected, n in zip(got, want, terms):
        np.testing.assert_allclose(value, expected, rtol=0, atol=2 * 2 * n * U32 * np.abs(expected).max())


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, message", [
    (lambda: conv_transpose2d(np.ones((4, 4, 3)), np.ones((3, 3, 2, 4))),
     r"kernel has 4 input channels but x has 3 \(kernel shape \(3, 3, 2, 4\), x shape \(4, 4, 3\)\)"),
    (lambda: conv_transpose2d(np.ones((4, 4, 3)), np.ones((3, 3, 3))),
     r"kernel must be \(Fh, Fw, K/groups, C\); got kernel shape \(3, 3, 3\)"),
    (lambda: conv_transpose2d(np.ones((4, 4)), np.ones((3, 3, 1, 1))),
     r"x must be \(H, W, C\) or \(N, H, W, C\); got x shape \(4, 4\)"),
    (lambda: conv_transpose2d(np.ones((4, 4, 3)), np.ones((3, 3, 1, 3)), groups=2),
     r"groups must divide the input channels; got groups=2 with 3 input channels"),
    (lambda: conv_transpose2d(np.ones((4, 4, 3)), np.ones((3, 3, 1, 3)), strides=2, output_padding=2),
     r"output_padding must be smaller than the stride or the dilation; got output_padding 2 with stride 2 "
     r"and dilation 1 \(height\)"),
    (lambda: conv_transpose2d(np.ones((3, 3, 1)), np.ones((3, 3, 2, 1)), strides=(3, 2), output_shape=(11, 8)),
     r"output_shape height 11 is not one conv2d maps back to x height 3 \(kernel span 3, stride 3, padding "
     r"'same'\): it takes 7 to 9"),
    (lambda: conv_transpose2d(np.ones((3, 3, 1)), np.ones((3, 3, 2, 1)), strides=2, padding=0,
                              output_padding=1, output_shape=(7, 8)),
     r"output_shape height 7 disagrees with output_padding 1, which gives 8"),
    (lambda: conv_transpose2d(np.ones((3, 3, 1)), np.ones((3, 3, 2, 1)), output_shape=(3, 3, 3)),
     r"output_shape must be \(H', W'\) or the result's shape \(\"H'\", \"W'\", 2\); got \(3, 3, 3\)"),
    (lambda: conv_transpose2d(np.ones((1, 1, 1)), np.ones((5, 5, 1, 1)), padding="full"),
     r"padding 'full' crops more than the kernel spreads: height 1"),
    (lambda: conv_transpose2d(np.ones((2, 2, 1)), np.ones((3, 3, 1, 1)), padding=3),
     r"padding \(3, 3\) crops more than the kernel spreads"),
    (lambda: conv_transpose2d(np.ones((2, 2, 1)), np.ones((3, 3, 2, 1)), [1, 2, 3]),
     r"bias must be None, a scalar or have shape \(K,\) = \(2,\)"),
    (lambda: conv_transpose2d_backward(np.ones((3, 3, 2)), np.ones((2, 2, 1)), np.ones((3, 3, 2, 1))),
     r"grad_out must have conv_transpose2d's output shape \(2, 2, 2\) for x shape \(2, 2, 1\) and kernel "
     r"shape \(3, 3, 2, 1\); got grad_out shape \(3, 3, 2\)"),
    (lambda: conv_transpose2d(np.ones((2, 2, 1)), np.ones((3, 3, 2, 1)), strides=0),
     r"strides must be positive integers; got 0"),
])
def test_errors_name_the_argument_what_came_and_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_complex_input_is_a_type_error():
    with pytest.raises(TypeError, match="x must be real"):
        conv_transpose2d(np.ones((2, 2, 1), complex), np.ones((3, 3, 1, 1)))


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", range(1, 7))
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_default_sizes_map_back_through_conv2d(size, kernel, stride, dilation):
    for word in ("same", "same_lower", "valid"):
        out = shapes.conv_transpose2d_output_shape((size, size, 1), (kernel, kernel, 1, 1), stride, word,
                                                   dilation=dilation)[0]
        assert shapes.output_size(out, kernel, stride, word, dilation) == size


def test_output_shape_helper_matches_the_op():
    assert shapes.conv_transpose2d_output_shape((8, 16, 16, 256), (4, 4, 128, 256), 2, 1) == (8, 32, 32, 128)
    assert shapes.conv_transpose2d_output_shape((1, 64, 64, 64), (64, 32, 3, 3), 2, 1, output_padding=1,
                                                data_format="channels_first") == (1, 32, 128, 128)


# ----------------------------------------------------------------------------- the route


def _forward_geometry(x_shape, kernel_shape, **options):
    return shapes.transpose_geometry(x_shape, kernel_shape, **options).forward()


def test_the_route_is_a_correlation_at_stride_1_and_col2im_with_strides():
    from convlayer.algorithms import choose_transpose as choose

    kernel = np.ones((3, 3, 8, 8))
    y = np.ones((1, 8, 8, 8))
    plain = choose.input_gradient(y, kernel, _forward_geometry(y.shape, kernel.shape, padding=1))
    assert plain.transposed is not None and plain.transposed.strides == (1, 1)
    strided = choose.input_gradient(y, kernel, _forward_geometry(y.shape, kernel.shape, strides=2, padding=1))
    assert strided.transposed is None and strided.route.name == "im2col" and "col2im" in strided.route.why
    depthwise = choose.input_gradient(y, np.ones((3, 3, 1, 8)),
                                      _forward_geometry(y.shape, (3, 3, 1, 8), strides=2, padding=1, groups=8))
    assert depthwise.stuffed and depthwise.route.name == "depthwise" and depthwise.transposed.strides == (1, 1)
    tight = choose.input_gradient(y, np.ones((3, 3, 1, 8)),
                                  _forward_geometry(y.shape, (3, 3, 1, 8), strides=2, padding=1, groups=8),
                                  budget=1000)  # one image's stuffed copy (15 * 15 * 8 * 4 bytes) does not fit
    assert not tight.stuffed and tight.route.name == "im2col"
    asked = choose.input_gradient(y, kernel, _forward_geometry(y.shape, kernel.shape, padding=1), "im2col")
    assert asked.transposed is None
    bad = kernel.copy()
    bad[0, 0, 0, 0] = np.nan
    assert choose.input_gradient(y, bad, _forward_geometry(y.shape, kernel.shape, padding=1)).transposed is None
    # an algorithm that cannot compute the correlation is replaced by auto's choice
    assert choose.input_gradient(y, kernel, _forward_geometry(y.shape, kernel.shape, padding=1),
                                 "depthwise").route.name != "depthwise"


@pytest.mark.parametrize("algorithm", ["shift", "depthwise", "fft", "winograd"])
def test_every_algorithm_name_gives_the_same_result(algorithm):
    rng = np.random.default_rng(7)
    groups = 4 if algorithm == "depthwise" else 1
    y, kernel = rng.standard_normal((2, 9, 9, 4)), rng.standard_normal((3, 3, 4 // groups, 4))
    for strides in (1, 2):
        want = conv_transpose2d(y, kernel, strides=strides, padding=1, groups=groups, algorithm="im2col")
        got = conv_transpose2d(y, kernel, strides=strides, padding=1, groups=groups, algorithm=algorithm)
        _close(got, want, np.abs(y).sum() * np.abs(kernel).max())
        grad = rng.standard_normal(want.shape)
        for a, b in zip(conv_transpose2d_backward(grad, y, kernel, strides=strides, padding=1, groups=groups,
                                                  algorithm=algorithm),
                        conv_transpose2d_backward(grad, y, kernel, strides=strides, padding=1, groups=groups)):
            _close(a, b, np.abs(grad).sum() * max(np.abs(y).max(), np.abs(kernel).max()))


@pytest.mark.parametrize("name", ["strides", "dilation", "padding", "output_padding", "output_shape", "groups"])
@pytest.mark.parametrize("huge", [2**63, 10**20])
def test_a_huge_argument_computes_or_raises_an_error_naming_it(name, huge):
    x, kernel = np.ones((1, 3, 3, 2), np.float32), np.ones((2, 2, 2, 2), np.float32)
    value = (7, huge) if name == "output_shape" else (1, huge)
    options = {name: value, **({"strides": 2} if name == "output_padding" else {})}
    try:
        result = conv_transpose2d(x, kernel, **options)
    except (ValueError, TypeError) as error:
        assert name.split("_")[0] in str(error), str(error)
    else:
        assert result.shape[0] == 1 and np.isfinite(result).all()
