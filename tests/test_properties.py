"""SPEC.md's invariants as Hypothesis properties: random shapes, dtypes, arguments and values.

Oracles, none of them the code under test:
- ``reference.conv2d``, the plain loops (it shares only the argument checks);
- ``_tap_loops`` below: the definition itself with Python ints, one tap at a time, with each
  padded pixel's source found by a closed form of ``np.pad`` (checked against ``np.pad``), so
  it needs no padded array and takes dilations and strides of any size;
- output sizes and padding amounts written here again from SPEC.md (``_spec_axis``);
- PyTorch autograd for gradients (padding by the same index maps, so every pad mode);
- plain-loop pooling with TensorFlow's semantics; the in-memory call for Dask arrays.

Tolerances come from the rounding-error bound of a sum of ``terms`` products (Higham 3.1):
``|got - exact| <= gamma_terms * B`` with ``B = conv2d(|x|, |kernel|) + |bias|``, computed
by the reference. Direct summation (im2col, shift, depthwise) meets it per value, in any
order; FFT and Winograd spread their error over a block, so they (and ``auto``, which may
pick them) are held to the largest ``B`` instead, with room for the transforms' log factor.
A wrong tap, a shifted window or a lost bias is off by O(B) and fails either bound.

Profiles (tests/conftest.py): "ci" (default) is derandomized and small; HYPOTHESIS_PROFILE=fuzz
(``make fuzz``) draws many more random examples.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
import torch
import torch.nn.functional as F

import convlayer
from convlayer import reference, shapes
from convlayer.algorithms import choose

torch.set_num_threads(1)

PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")
WORDS = ("same", "same_lower", "valid", "full")
ALGORITHMS = ("auto", "im2col", "shift", "depthwise", "fft", "winograd")
X_DTYPES = (np.float64, np.float32, np.uint8, np.int16, np.int64, np.bool_)
KERNEL_DTYPES = (np.float64, np.float32, np.int8, np.int64)
HUGE = (2**62, 2**63 - 1, 2**63, 2**64, 10**20, 10**30)


# ----------------------------------------------------------------------------- oracles


def _spec_axis(size, f, stride, dilation, form):
    """``((before, after), out)`` on one axis from SPEC.md, or None where the kernel does not fit."""
    span = (f - 1) * dilation + 1
    if form in ("same", "same_lower"):
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        small, big = total // 2, total - total // 2
        return ((small, big) if form == "same" else (big, small)), out
    pads = {"valid": (0, 0), "full": (span - 1, span - 1)}.get(form, form)
    if size + pads[0] + pads[1] < span:
        return None
    return pads, (size + pads[0] + pads[1] - span) // stride + 1


def _axis_forms(padding):
    """The padding of each axis: a word or (before, after)."""
    if isinstance(padding, str):
        return padding, padding
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def _source(i, n, mode):
    """The input index that ``np.pad(..., mode)`` copies to position ``i`` (0 = first real); None: a zero."""
    if mode == "constant":
        return i if 0 <= i < n else None
    if mode == "edge":
        return min(max(i, 0), n - 1)
    if mode == "wrap":
        return i % n
    if mode == "reflect":
        j = i % (2 * n - 2) if n > 1 else 0
        return j if j < n else 2 * n - 2 - j
    j = i % (2 * n)  # symmetric
    return j if j < n else 2 * n - 1 - j


def _tap_loops(x, kernel, strides, dilation, pads, pad_mode):
    """conv2d of (n, h, w, c) by (fh, fw, c, k), groups 1, from the definition, in float64."""
    (sh, sw), (dh, dw), ((top, _), (left, _)) = strides, dilation, pads
    out_h = _spec_axis(x.shape[1], kernel.shape[0], sh, dh, pads[0])[1]
    out_w = _spec_axis(x.shape[2], kernel.shape[1], sw, dw, pads[1])[1]
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(out_h):
        for a in range(kernel.shape[0]):
            r = _source(i * sh + a * dh - top, x.shape[1], pad_mode)
            for j in range(out_w):
                for b in range(kernel.shape[1]):
                    q = _source(j * sw + b * dw - left, x.shape[2], pad_mode)
                    if r is not None and q is not None:
                        y[:, i, j] += x[:, r, q].astype(np.float64) @ kernel[a, b].astype(np.float64)
    return y


@given(n=st.integers(1, 7), before=st.integers(0, 30), after=st.integers(0, 30), mode=st.sampled_from(PAD_MODES))
def test_the_oracles_padding_is_numpys(n, before, after, mode):
    extra = {"constant_values": -1} if mode == "constant" else {}
    expected = np.pad(np.arange(n), (before, after), mode=mode, **extra)
    got = [_source(i - before, n, mode) for i in range(n + before + after)]
    assert [-1 if g is None else g for g in got] == expected.tolist()


def _unit(dtype):
    return float(np.finfo(dtype).eps) / 2


def _assert_within(got, exact, bound, terms, dtype, spread):
    """``|got - exact| <= 2 terms u B`` per value, or ``16 (terms + 16) u max(B)`` when spread."""
    if spread:
        tol = 16 * (terms + 16) * _unit(dtype) * float(np.max(bound, initial=0))
    else:
        tol = 2 * terms * _unit(dtype) * bound
    error = np.abs(np.asarray(got, np.float64) - exact)
    excess = error - tol
    if excess.size and excess.max() > 0:
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        raise AssertionError(f"at {worst}: got {got[worst]!r}, exact {exact[worst]!r}, error "
                             f"{error[worst]:.3g} > bound {np.broadcast_to(tol, error.shape)[worst]:.3g}")


# ----------------------------------------------------------------------------- cases

paddings = st.one_of(
    st.sampled_from(WORDS), st.integers(0, 4), st.tuples(st.integers(0, 4), st.integers(0, 4)),
    st.tuples(st.tuples(st.integers(0, 4), st.integers(0, 4)), st.tuples(st.integers(0, 4), st.integers(0, 4))),
)
pairs_1_3 = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


def _values(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def conv_cases(draw, algorithm="auto", size=12, kernel=5, dtypes=True, rank=None):
    """x, kernel, bias and conv2d keywords in the user's form, plus the case's integers."""
    rank = rank or draw(st.sampled_from((4, 4, 4, 3, 2)))
    groups = draw(st.integers(1, 6)) if rank == 4 else 1
    c = groups * draw(st.integers(1, 6 // groups)) if rank == 4 else draw(st.integers(1, 6)) if rank == 3 else 1
    k = groups * draw(st.integers(1, 6 // groups)) if rank == 4 else 1
    fh, fw = draw(st.integers(1, kernel)), draw(st.integers(1, kernel))
    strides, dilation = draw(pairs_1_3), draw(pairs_1_3)
    if draw(st.booleans()):  # shape the case to what `algorithm` computes
        if algorithm == "depthwise" and rank == 4:
            groups, k = c, c * draw(st.integers(1, max(1, 6 // c)))
        if algorithm in ("shift", "fft", "winograd"):
            groups = 1
        if algorithm in ("fft", "winograd"):
            strides = 1
        if algorithm == "winograd":
            fh = fw = 3
            dilation = 1
    pad_mode = draw(st.sampled_from(PAD_MODES))
    least = 0 if pad_mode == "constant" else 1  # np.pad cannot reflect an empty axis
    h, w = draw(st.integers(least, size)), draw(st.integers(least, size))
    batched = rank > 2 and draw(st.booleans())
    n = draw(st.integers(0, 3)) if batched else 1
    channels_first = rank > 2 and draw(st.booleans())
    x_dtype, k_dtype = (draw(st.sampled_from(X_DTYPES)), draw(st.sampled_from(KERNEL_DTYPES))) if dtypes else (
        np.float64, np.float64)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, hwio = _values(rng, (n, h, w, c), x_dtype), _values(rng, (fh, fw, c // groups, k), k_dtype)
    bias = draw(st.sampled_from([None, "scalar", "vector"]))
    bias = None if bias is None else float(rng.standard_normal()) if bias == "scalar" else rng.standard_normal(k)
    options = dict(strides=strides, padding=draw(paddings), dilation=dilation, groups=groups,
                   flip=draw(st.booleans()), pad_mode=pad_mode,
                   data_format="channels_first" if channels_first else "channels_last")
    x_user = x.transpose(0, 3, 1, 2) if channels_first else x
    x_user = x_user if batched else x_user[0]
    if rank == 2:
        x_user, kernel_user = x[0, :, :, 0], hwio[:, :, 0, 0]
    elif rank == 3:
        kernel_user = hwio[..., 0].transpose(2, 0, 1) if channels_first else hwio[..., 0]
    else:
        kernel_user = hwio.transpose(3, 2, 0, 1) if channels_first else hwio
    geometry = dict(n=n, h=h, w=w, c=c, k=k, fh=fh, fw=fw, groups=groups, rank=rank, batched=batched)
    note(f"x {x_user.shape} {x_user.dtype}, kernel {kernel_user.shape} {kernel_user.dtype}, "
         f"bias {bias!r}, {options}")
    return x_user, kernel_user, bias, options, geometry


def _spec_shape(options, g):
    """The result's shape from SPEC.md, or None where the kernel does not fit."""
    forms = _axis_forms(options["padding"])
    (sh, sw), (dh, dw) = _pair(options["strides"]), _pair(options["dilation"])
    rows, cols = _spec_axis(g["h"], g["fh"], sh, dh, forms[0]), _spec_axis(g["w"], g["fw"], sw, dw, forms[1])
    if rows is None or cols is None:
        return None
    spatial = (rows[1], cols[1])
    if g["rank"] == 2:
        return spatial
    image = spatial if g["rank"] == 3 else (
        (g["k"],) + spatial if options["data_format"] == "channels_first" else spatial + (g["k"],))
    return ((g["n"],) if g["batched"] else ()) + image


def _exact_and_bound(x, kernel, bias, options):
    """The reference in float64, and the same on |x|, |kernel|, |bias| (the error bound's B)."""
    wide = [np.asarray(a, np.float64) for a in (x, kernel)]
    exact = reference.conv2d(*wide, bias, **options)
    bound = reference.conv2d(*[np.abs(a) for a in wide], None if bias is None else np.abs(bias), **options)
    return exact, bound


def _terms(g, bias):
    """How many rounded terms each output value sums: the taps of one group, and the bias."""
    return g["fh"] * g["fw"] * g["c"] // g["groups"] + (bias is not None)


# ----------------------------------------------------------------------------- 1. algorithms vs loops


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(data=st.data())
def test_every_algorithm_matches_the_reference(algorithm, data):
    x, kernel, bias, options, g = data.draw(conv_cases(algorithm))
    shape = _spec_shape(options, g)
    call = lambda: convlayer.conv2d(x, kernel, bias, algorithm=algorithm, **options)  # noqa: E731
    if shape is None:  # the kernel does not fit the padded input
        event("the kernel does not fit")
        with pytest.raises(ValueError, match="kernel"):
            call()
        return
    try:
        got = call()
    except ValueError as error:  # allowed only for an explicit choice that cannot compute the case
        geom = shapes.conv_geometry(np.shape(x), np.shape(kernel), options["strides"], options["padding"],
                                    options["dilation"], groups=options["groups"],
                                    data_format=options["data_format"])
        if algorithm == "auto" or not choose.unsupported(algorithm, geom) or "algorithm" not in str(error):
            raise
        event("the algorithm cannot compute it")
        return
    event("compared a result" if got.size else "compared an empty result")
    dtype = np.result_type(x, kernel, np.float32)
    assert got.dtype == dtype and got.shape == shape
    exact, bound = _exact_and_bound(x, kernel, bias, options)
    _assert_within(got, exact, bound, _terms(g, bias), dtype, spread=algorithm in ("auto", "fft", "winograd"))


# ----------------------------------------------------------------------------- 2. gradients vs autograd


def _torch_grads(x, kernel, grad, options, pads):
    """Autograd of sum(grad * conv2d) for NCHW x and OIHW kernel, padded by index maps."""
    xt, kt = torch.tensor(x, requires_grad=True), torch.tensor(kernel, requires_grad=True)
    bt = torch.zeros(kernel.shape[0], dtype=torch.float64, requires_grad=True)
    maps = []
    for size, (before, after) in zip(x.shape[2:], pads):
        sources = [_source(i - before, size, options["pad_mode"]) for i in range(before + size + after)]
        maps.append(torch.tensor([size if s is None else s for s in sources], dtype=torch.long))
    extended = F.pad(xt, (0, 1, 0, 1))  # index h (or w) is a zero
    padded = extended[:, :, maps[0]][:, :, :, maps[1]]
    weights = torch.flip(kt, (2, 3)) if options["flip"] else kt
    out = F.conv2d(padded, weights, bt, stride=_pair(options["strides"]), dilation=_pair(options["dilation"]),
                   groups=options["groups"])
    (out * torch.tensor(grad)).sum().backward()
    return xt.grad.numpy(), kt.grad.numpy(), bt.grad.numpy()


@given(data=st.data())
def test_conv2d_backward_matches_torch_autograd(data):
    x, kernel, _, options, g = data.draw(conv_cases(dtypes=False, size=8, kernel=4, rank=4))
    shape = _spec_shape(options, g)
    assume(shape is not None)
    first = options["data_format"] == "channels_first"
    nchw = x if first else np.moveaxis(x, -1, -3)
    oihw = kernel if first else kernel.transpose(3, 2, 0, 1)
    nchw = nchw if g["batched"] else nchw[None]
    seed = data.draw(st.integers(0, 2**32 - 1), label="grad_out seed")
    grad = np.random.default_rng(seed).standard_normal(shape)
    grad_nkhw = grad if first else np.moveaxis(grad, -1, -3)
    grad_nkhw = grad_nkhw if g["batched"] else grad_nkhw[None]
    got = convlayer.conv2d_backward(grad, x, kernel, **options)
    if grad.size == 0:
        expected_x, expected_k, expected_b = np.zeros(nchw.shape), np.zeros(oihw.shape), np.zeros(g["k"])
    else:
        forms = _axis_forms(options["padding"])
        (sh, sw), (dh, dw) = _pair(options["strides"]), _pair(options["dilation"])
        pads = (_spec_axis(g["h"], g["fh"], sh, dh, forms[0])[0], _spec_axis(g["w"], g["fw"], sw, dw, forms[1])[0])
        expected_x, expected_k, expected_b = _torch_grads(nchw, oihw, grad_nkhw, options, pads)
    expected_x = expected_x if first else np.moveaxis(expected_x, -3, -1)
    expected_x = expected_x if g["batched"] else expected_x[0]
    expected_k = expected_k if first else expected_k.transpose(2, 3, 1, 0)
    for name, a, e in zip(("grad_x", "grad_kernel", "grad_bias"), got, (expected_x, expected_k, expected_b)):
        assert a.shape == e.shape, name
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-9 * (1 + np.max(np.abs(e), initial=0)), err_msg=name)


# ----------------------------------------------------------------------------- 3. near the dtype's limits


def _shifted_sums(x, kernel, padding, pad_mode):
    """Stride-1, dilation-1 conv2d of (n, h, w, c) by (fh, fw, c, k) in float64: np.pad, then one
    matrix product per tap, added up (no loops over pixels, so images of 64x64 stay quick)."""
    (fh, fw), forms = kernel.shape[:2], _axis_forms(padding)
    (pads_h, out_h), (pads_w, out_w) = (_spec_axis(size, f, 1, 1, form)
                                        for size, f, form in zip(x.shape[1:3], (fh, fw), forms))
    padded = np.pad(x.astype(np.float64), ((0, 0), pads_h, pads_w, (0, 0)), mode=pad_mode)
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for a in range(fh):
        for b in range(fw):
            y += padded[:, a : a + out_h, b : b + out_w] @ kernel[a, b].astype(np.float64)
    return y


@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 2), h=st.integers(1, 64),
       w=st.integers(1, 64), c=st.integers(1, 4), k=st.integers(1, 4),
       fh=st.sampled_from([1, 3, 7, 9, 13]), fw=st.sampled_from([1, 3, 7, 9, 13]),
       padding=st.sampled_from(["same", "full", "valid"]), pad_mode=st.sampled_from(PAD_MODES),
       decades=st.floats(2, 3.5), seed=st.integers(0, 2**32 - 1))
def test_auto_stays_finite_near_the_largest_values(dtype, n, h, w, c, k, fh, fw, padding, pad_mode, decades, seed):
    """Alternating signs of about finfo.max / 10**decades, sum |kernel| <= 1: every exact output
    value is within finfo.max / 10**decades, but sums over a whole image (a transform) overflow."""
    assume(padding != "valid" or (h >= fh and w >= fw))
    rng = np.random.default_rng(seed)
    signs = (-1.0) ** np.add.outer(np.arange(h), np.arange(w))[None, :, :, None]
    x = (signs * rng.uniform(0.5, 1, (n, h, w, c)) * (float(np.finfo(dtype).max) / 10**decades)).astype(dtype)
    kernel = (rng.uniform(-1, 1, (fh, fw, c, k)) / (fh * fw * c)).astype(dtype)
    options = dict(padding=padding, pad_mode=pad_mode)
    exact = _shifted_sums(x, kernel, padding, pad_mode)
    bound = _shifted_sums(np.abs(x), np.abs(kernel), padding, pad_mode)
    assert np.max(bound, initial=0) <= float(np.finfo(dtype).max) / 10**decades  # well inside the range
    auto = convlayer.conv2d(x, kernel, **options)
    im2col = convlayer.conv2d(x, kernel, algorithm="im2col", **options)
    assert np.isfinite(auto).all(), "auto returned NaN/inf where the exact result is finite"
    _assert_within(im2col, exact, bound, fh * fw * c, dtype, spread=False)
    _assert_within(auto, exact, bound, fh * fw * c, dtype, spread=True)


# ----------------------------------------------------------------------------- 4. NaN and inf stay local


@pytest.mark.parametrize("algorithm", ["auto", "im2col"])
@given(data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_a_nan_or_inf_affects_only_the_windows_that_read_it(algorithm, data, bad):
    x, kernel, bias, options, g = data.draw(conv_cases(dtypes=False, size=16, kernel=9, rank=4))
    assume(_spec_shape(options, g) is not None and x.size > 0)
    where = data.draw(st.tuples(*[st.integers(0, s - 1) for s in x.shape]))
    x_bad = x.copy()
    x_bad[where] = bad
    exact = reference.conv2d(x_bad, kernel, bias, **options)
    got = convlayer.conv2d(x_bad, kernel, bias, algorithm=algorithm, **options)
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(exact), err_msg=kind.__name__)
    finite = np.isfinite(exact)
    _, bound = _exact_and_bound(x, kernel, bias, options)
    _assert_within(np.where(finite, got, 0), np.where(finite, exact, 0), bound, _terms(g, bias), np.float64,
                   spread=True)


# ----------------------------------------------------------------------------- 5. argument errors

X, K = np.zeros((8, 8, 3)), np.zeros((3, 3, 3, 2))
non_integers = st.one_of(
    st.floats().filter(lambda v: not float(v).is_integer()),
    st.sampled_from(["2", "1x1", None, b"1", 2 + 0j, np.float64(1.5), [1.0, 2.0], (1, 2.5), np.array([[1, 2]])]),
)
bad_positive = st.one_of(
    st.integers(max_value=0), st.tuples(st.integers(max_value=0), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(max_value=0)),
    st.lists(st.integers(1, 3), max_size=5).filter(lambda v: len(v) != 2).map(tuple), non_integers,
)
BAD = {
    "strides": bad_positive,
    "dilation": bad_positive,
    "padding": st.one_of(
        st.integers(max_value=-1), st.text().filter(lambda t: t.strip().lower() not in WORDS),
        st.tuples(st.integers(max_value=-1), st.integers(0, 3)),
        st.lists(st.integers(0, 3), min_size=3, max_size=5).map(tuple),
        st.tuples(st.tuples(st.integers(0, 2), st.integers(max_value=-1)),
                  st.tuples(st.integers(0, 2), st.integers(0, 2))),
        non_integers, st.sampled_from([((1, 2), (3,)), ((1, 2, 3), (0, 0)), (None, 1)]),
    ),
    "groups": st.one_of(st.integers(max_value=0), st.integers(min_value=3), st.sampled_from(HUGE), non_integers),
    "pad_mode": st.one_of(
        st.text().filter(lambda t: t.lower() not in PAD_MODES + ("zeros", "replicate", "circular")),
        st.sampled_from([None, 0, b"reflect"])),
    "data_format": st.one_of(
        st.text().filter(lambda t: t.lower() not in ("channels_last", "channels_first", "nhwc", "nchw")),
        st.sampled_from([None, 1])),
    "flip": st.sampled_from([np.array([1, 0]), np.ones((2, 2)), np.array([True, False])]),
    "kernel": st.one_of(
        st.lists(st.integers(1, 3), min_size=5, max_size=6), st.lists(st.integers(1, 3), min_size=1, max_size=1),
        st.tuples(st.integers(0, 3), st.just(0), st.just(3), st.just(2)),  # no width
        st.tuples(st.just(0), st.integers(1, 3), st.just(3), st.just(2)),  # no height
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 2, 4, 6]), st.integers(1, 3)),
    ).map(tuple),
}


def _assert_names(error, name):
    assert isinstance(error, (ValueError, TypeError)), type(error)
    assert not isinstance(error, (OverflowError, IndexError, MemoryError)), type(error)
    assert name in str(error), f"the message does not name {name}: {error}"


@pytest.mark.parametrize("name", list(BAD))
@given(data=st.data())
def test_an_invalid_argument_raises_an_error_naming_it(name, data):
    value = data.draw(BAD[name], label=name)
    x, kernel, kwargs = X, K, {}
    if name == "kernel":
        kernel = np.zeros(value)
    else:
        kwargs[name] = value
    with pytest.raises((ValueError, TypeError)) as caught:
        convlayer.conv2d(x, kernel, **kwargs)
    _assert_names(caught.value, name)


@given(name=st.sampled_from(["strides", "dilation", "padding", "groups"]), huge=st.sampled_from(HUGE),
       where=st.sampled_from(["both", "vertical", "horizontal"]), padding=st.sampled_from(WORDS + (1,)),
       pad_mode=st.sampled_from(PAD_MODES), fh=st.integers(1, 3), fw=st.integers(1, 3))
def test_a_huge_value_computes_or_raises_an_error_naming_it(name, huge, where, padding, pad_mode, fh, fw):
    """10**20 or 2**63: either the right result (strides, dilation) or a ValueError naming it."""
    value = huge if where == "both" else (huge, 1) if where == "vertical" else (1, huge)
    if name == "groups":
        value = huge
    options = dict(strides=1, dilation=1, padding=padding, pad_mode=pad_mode)
    options[name] = value
    rng = np.random.default_rng(fh * 10 + fw)
    x, kernel = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((fh, fw, 3, 2))
    try:
        got = convlayer.conv2d(x, kernel, **options)
    except (ValueError, TypeError) as error:
        _assert_names(error, name)
        event(f"{name}: an error")
        return
    event(f"{name}: a result")
    assert name in ("strides", "dilation"), f"{name}={value!r} gave a result of shape {got.shape}"
    strides, dilation = _pair(options["strides"]), _pair(options["dilation"])
    forms = _axis_forms(options["padding"])
    pads = tuple(_spec_axis(8, f, s, d, form)[0] for f, s, d, form in zip((fh, fw), strides, dilation, forms))
    exact = _tap_loops(x, kernel, strides, dilation, pads, pad_mode)
    bound = _tap_loops(np.abs(x), np.abs(kernel), strides, dilation, pads, pad_mode)
    assert got.shape == exact.shape
    _assert_within(got, exact, bound, fh * fw * 3, np.float64, spread=True)


# ----------------------------------------------------------------------------- 6. work memory


@given(dilation=st.one_of(st.integers(100, 1500), st.tuples(st.integers(1, 1500), st.integers(100, 1500))),
       padding=st.sampled_from(["same", "same_lower"]), pad_mode=st.sampled_from(PAD_MODES),
       h=st.integers(1, 16), w=st.integers(1, 16), fh=st.integers(1, 3), fw=st.integers(2, 3),
       k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_large_dilation_stays_within_the_work_memory_budget(work_memory, dilation, padding, pad_mode, h, w,
                                                            fh, fw, k, seed):
    rng = np.random.default_rng(seed)
    x, kernel = rng.random((1, h, w, 3), np.float32), rng.standard_normal((fh, fw, 3, k)).astype(np.float32)
    (dh, dw), forms = _pair(dilation), _axis_forms(padding)
    axes = (_spec_axis(h, fh, 1, dh, forms[0]), _spec_axis(w, fw, 1, dw, forms[1]))
    assume(None not in axes)
    budget = 2**20
    with convlayer.memory_budget(budget):
        used, got = work_memory(lambda: convlayer.conv2d(x, kernel, padding=padding, dilation=dilation,
                                                         pad_mode=pad_mode))
    assert used <= budget + 64 * 1024, f"{used / 2**20:.1f} MiB of work memory, budget 1 MiB"
    pads = (axes[0][0], axes[1][0])
    exact = _tap_loops(x, kernel, (1, 1), (dh, dw), pads, pad_mode)
    bound = _tap_loops(np.abs(x), np.abs(kernel), (1, 1), (dh, dw), pads, pad_mode)
    _assert_within(got, exact, bound, fh * fw * 3, np.float32, spread=True)


# ----------------------------------------------------------------------------- 7. pooling


def _pool_loops(x, pool, strides, forms, kind):
    """(n, h, w, c) pooled with TensorFlow's semantics, or None where a window holds no real pixel."""
    n, h, w, c = x.shape
    axes = [_spec_axis(size, p, s, 1, form) for size, p, s, form in zip((h, w), pool, strides, forms)]
    if None in axes:
        return None
    ((top, _), out_h), ((left, _), out_w) = axes
    y = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        rows = [r for r in range(i * strides[0] - top, i * strides[0] - top + pool[0]) if 0 <= r < h]
        for j in range(out_w):
            cols = [q for q in range(j * strides[1] - left, j * strides[1] - left + pool[1]) if 0 <= q < w]
            if not rows or not cols:
                return None
            window = x[:, rows][:, :, cols].astype(np.float64)
            y[:, i, j] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return y


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(n=st.integers(0, 2), h=st.integers(0, 8), w=st.integers(0, 8), c=st.integers(1, 3),
       pool=pairs_1_3.map(_pair), strides=st.one_of(st.none(), pairs_1_3), padding=paddings,
       channels_first=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_pooling_matches_plain_loops(kind, n, h, w, c, pool, strides, padding, channels_first, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    step = pool if strides is None else _pair(strides)
    expected = _pool_loops(x, pool, step, _axis_forms(padding), kind)
    pooling = convlayer.max_pool2d if kind == "max" else convlayer.avg_pool2d
    x_user = x.transpose(0, 3, 1, 2) if channels_first else x
    call = lambda: pooling(x_user, pool, strides, padding,  # noqa: E731
                           data_format="channels_first" if channels_first else "channels_last")
    if expected is None:  # the pool does not fit, or a window holds padding only
        with pytest.raises(ValueError):
            call()
        return
    got = call()
    got = got.transpose(0, 2, 3, 1) if channels_first else got
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- 8. the command line


def _cli(argv):
    from convlayer.cli.main import main

    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


no_digits = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=8)
BAD_OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["--strides", "--dilation"]), st.one_of(
        no_digits, st.sampled_from(["0", "-1", "1.5", "2x0", "0x1", "1x2x3", "2,,1", "1e3"]))),
    st.tuples(st.just("--padding"), st.one_of(
        no_digits.filter(lambda t: t.strip().lower() not in WORDS),
        st.sampled_from(["-1", "1,2,3", "1.5", "1,-2", "x1"]))),
    st.tuples(st.just("-k"), st.text(max_size=12).filter(lambda t: t.lower() not in convlayer.kernels.names())),
    st.tuples(st.just("--pad-mode"), st.text(max_size=8).filter(lambda t: t.lower() not in PAD_MODES)),
)


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("cli") / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)).save(path)
    return path


def _assert_one_line(captured):
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err


@given(option=BAD_OPTIONS, tag=st.uuids())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_cli_answers_bad_options_with_one_line(tiny_png, capsys, option, tag):
    flag, value = option
    argv = ["filter", str(tiny_png), f"{flag}={value}", "-o", str(tiny_png.parent / tag.hex)]
    if flag != "-k":
        argv += ["-k", "edge"]
    code = _cli(argv)
    captured = capsys.readouterr()
    assert code not in (0, None)
    _assert_one_line(captured)


@given(flag=st.sampled_from(["--strides", "--dilation", "--padding"]), huge=st.sampled_from(HUGE),
       form=st.sampled_from(["{}", "{}x1", "1x{}"]), tag=st.uuids())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_cli_never_prints_a_traceback_for_huge_numbers(tiny_png, capsys, flag, huge, form, tag):
    value = form.format(huge).replace("x", ",") if flag == "--padding" else form.format(huge)
    code = _cli(["filter", str(tiny_png), "-k", "edge", f"{flag}={value}", "-o", str(tiny_png.parent / tag.hex)])
    captured = capsys.readouterr()
    if code not in (0, None):
        _assert_one_line(captured)


# ----------------------------------------------------------------------------- Dask: chunks of any size


@given(data=st.data(), chunk_h=st.integers(1, 4), chunk_w=st.integers(1, 4))
def test_dask_arrays_give_the_in_memory_values(data, chunk_h, chunk_w):
    import dask.array as da  # the test extra installs Dask; `import convlayer` does not import it
    x, kernel, bias, options, g = data.draw(conv_cases(dtypes=False, size=8, kernel=2, rank=4))
    assume(_spec_shape(options, g) is not None)
    expected = convlayer.conv2d(x, kernel, bias, **options)
    first = options["data_format"] == "channels_first"
    chunks = (-1, chunk_h, chunk_w) if first else (chunk_h, chunk_w, -1)
    chunks = (1,) + chunks if g["batched"] else chunks
    lazy = convlayer.conv2d(da.from_array(x, chunks=chunks), kernel, bias, **options)
    got = lazy.compute(scheduler="synchronous")
    assert got.shape == expected.shape == lazy.shape
    _, bound = _exact_and_bound(x, kernel, bias, options)
    _assert_within(got, expected, 2 * bound, _terms(g, bias), np.float64, spread=True)
