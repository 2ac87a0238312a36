"""``convlayer bench``: runs, prints its table and writes JSON (no timing is asserted).

The peers are checked against convlayer on shapes where TensorFlow's 'same' rule puts an
odd zero at the bottom/right, so a peer given the wrong padding computes something else.
JAX, PyTorch and SciPy are in the test extra: a missing peer fails these tests, never skips.
"""

import json
import time

import numpy as np
import pytest

from convlayer import bench, conv2d, conv2d_backward, shapes
from convlayer.cli.main import main

# Each has an uneven 'same' pad on at least one axis: (top, bottom) or (left, right) = (k, k + 1).
PADDING_CASES = [
    bench.Case(2, 7, 6, 3, 4, 4),                      # even kernel: (1, 2) both ways
    bench.Case(1, 8, 9, 4, 6, 3, strides=2),            # (0, 1) down, (1, 1) across
    bench.Case(1, 7, 7, 2, 3, 4, strides=2),            # even kernel, stride 2: (1, 2)
    bench.Case(2, 9, 8, 6, 6, 3, strides=2, groups=3),  # groups, (0, 1) across
    bench.Case(1, 12, 12, 1, 1, 3),                     # one channel: SciPy computes it too
]


def test_bench_prints_a_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--only", "64x8x8", "--reps-time", "0.01", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "64x8x8x1->16 3x3" in out and "geometric mean of ratios" in out and "plain loops" in out
    assert "jax ms" in out and "conv/jax" in out and "convlayer ahead on" in out
    results = json.loads(path.read_text())
    (forward,), (backward,) = results["forward"], results["backward"]
    assert forward["algorithm"] in ("im2col", "shift") and forward["work_mib"] >= 0
    assert forward["ms"]["convlayer"] > 0 and backward["ms"]["convlayer"] > 0
    assert forward["jax_ratio"] > 0 and backward["jax_ms"] > 0 and results["forward_jax_shapes"] == 1
    assert results["environment"]["jax"] and results["reference"]["speedup"] > 1


def test_bench_without_peers_still_runs(monkeypatch, capsys):
    monkeypatch.setattr(bench.suite, "peers", lambda: {})
    results = bench.run_suite([bench.Case(2, 8, 8, 3, 4, 3)], reps_time=0.01, backward=False, echo=print)
    assert "ratio" not in results["forward"][0] and np.isnan(results["forward_geomean"])
    out = capsys.readouterr().out
    assert "2x8x8x3->4 3x3" in out and "jax: not installed" in out


@pytest.mark.parametrize("argv, message", [
    (["--only", "nothing-like-this"], "no shape of the suite contains 'nothing-like-this'"),
    (["--reps-time", "0"], "--reps-time must be positive; got 0.0"),
])
def test_bench_bad_arguments_are_one_line(argv, message, capsys):
    assert main(["bench"] + argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"convlayer bench: error: {message}"


def test_suite_has_the_issues_shapes():
    names = [case.name for case in bench.SUITE]
    assert len(names) == 10 and "8x112x112x32->32 3x3 g32" in names and "1x256x256x1->1 31x31" in names


def test_every_algorithm_adds_each_algorithms_ratio():
    results = bench.run_suite([bench.Case(2, 8, 8, 3, 3, 3, groups=3)], reps_time=0.01, backward=False,
                              echo=lambda line: None, every_algorithm=True)
    row = results["forward"][0]
    if "ratio" in row:  # with PyTorch: im2col, depthwise and grouped can compute it, shift and fft cannot
        assert sorted(row["algorithm_ratios"]) == ["depthwise", "grouped", "im2col"]
    assert {"algorithm=im2col", "algorithm=depthwise"} <= set(row["ms"])


def test_padding_cases_have_an_odd_zero():
    for case in PADDING_CASES[:4]:
        (top, bottom), (left, right) = bench.tf_pads(case)
        assert bottom == top + 1 or right == left + 1, case


def test_peers_pad_as_tensorflow_does():
    pads = shapes.resolve_padding((224, 224), (7, 7), strides=2, padding="same")
    assert pads == ((2, 3), (2, 3)) == bench.tf_pads(bench.SUITE[7])


def _as_nhwc(value) -> np.ndarray:
    """A peer's result in convlayer's layout: torch's NCHW tensor, SciPy's 2-D image, JAX's array."""
    if hasattr(value, "permute"):
        return value.permute(0, 2, 3, 1).numpy()
    value = np.asarray(value)
    return value[None, :, :, None] if value.ndim == 2 else value


U32 = 2.0**-24  # float32's unit roundoff


def _assert_close(got, want, bound, terms):
    """Two float32 results of the same sums of ``terms`` products, added in different orders.

    Each is within gamma_terms * bound ~ terms * U32 * bound of the exact sums, bound being the
    same operation on absolute values (Higham 3.1), so they differ by at most twice that. The
    largest bound serves everywhere, as SciPy may pick an FFT, whose error spreads over the
    image; the factor 2 on top covers gamma's 1 / (1 - terms * U32) and that FFT's log2(size).
    A wrong tap or a wrongly padded row is off by O(bound) and fails.
    """
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * 2 * terms * U32 * bound.max())


def _absolute(*arrays):
    return [np.abs(a).astype(np.float64) for a in arrays]


@pytest.mark.parametrize("case", PADDING_CASES, ids=lambda case: case.name)
def test_every_peer_computes_what_conv2d_computes(case):
    found = bench.peers()
    assert {"torch", "jax", "scipy"} <= set(found)  # the test extra installs them all
    x, kernel = bench.inputs(case, np.random.default_rng(1))
    want = conv2d(x, kernel, **case.options)
    bound = conv2d(*_absolute(x, kernel), **case.options)
    fh, fw, c_group, _ = kernel.shape
    calls = {}
    for peer in found.values():
        calls.update(peer.forward(case, x, kernel))
    assert {"torch_nchw", "torch_cl", "jax"} <= set(calls)
    assert ("scipy" in calls) == (case.c == 1)
    for name, call in calls.items():
        _assert_close(_as_nhwc(call()), want, bound, fh * fw * c_group)


@pytest.mark.parametrize("case", PADDING_CASES, ids=lambda case: case.name)
def test_every_peers_gradients_are_conv2d_backwards(case):
    rng = np.random.default_rng(2)
    x, kernel = bench.inputs(case, rng)
    grad = rng.standard_normal(conv2d(x, kernel, **case.options).shape, dtype=np.float32)
    want = conv2d_backward(grad, x, kernel, **case.options)
    bound = conv2d_backward(*_absolute(grad, x, kernel), **case.options)
    fh, fw, _, k = kernel.shape
    n, out_h, out_w, _ = grad.shape
    calls = {}
    for peer in bench.peers().values():
        calls.update(peer.backward(case, x, kernel, grad))
    assert {"torch_nchw", "torch_cl", "jax"} == set(calls)
    for name, call in calls.items():
        grad_x, grad_kernel = call()[:2]
        if name.startswith("torch"):  # torch's grad_x is of its padded input, its kernel OIHW
            (top, _), (left, _) = bench.tf_pads(case)
            grad_x = _as_nhwc(grad_x)[:, top:top + case.h, left:left + case.w]
            grad_kernel = grad_kernel.permute(2, 3, 1, 0).numpy()
        _assert_close(np.asarray(grad_x), want.grad_x, bound.grad_x, fh * fw * k // case.groups)
        _assert_close(np.asarray(grad_kernel), want.grad_kernel, bound.grad_kernel, n * out_h * out_w)


def test_the_loops_run_on_the_demo_shape_when_it_is_in_the_run():
    assert bench.loops_case(bench.SUITE) == bench.SUITE[0] == bench.Case(1, 512, 512, 3, 2, 3)
    small = [bench.SUITE[3], bench.SUITE[9]]
    assert bench.loops_case(small) == bench.SUITE[9]


def test_a_slow_contender_leaves_the_rotation_once_it_has_had_its_time(monkeypatch):
    monkeypatch.setattr(bench.timing, "SETTLE", 0.0)
    monkeypatch.setattr(bench.timing, "WARM_SECONDS", 0.0)  # one untimed call per run
    monkeypatch.setattr(bench.timing, "RUN_SECONDS", 0.0)  # runs of exactly RUN calls
    counts = {"fast": 0, "slow": 0}

    def call(name, seconds=0.0):
        counts[name] += 1
        time.sleep(seconds)

    bench.time_calls({"fast": lambda: call("fast"), "slow": lambda: call("slow", 0.02)}, reps_time=0.05)
    # warm-up, then two rounds of 1 + RUN calls for the slow one; the fast one never reaches 0.05 s
    assert counts == {"slow": 1 + bench.MIN_ROUNDS * (1 + bench.RUN),
                      "fast": 1 + bench.MAX_ROUNDS * (1 + bench.RUN)}


def test_a_run_lasts_at_least_run_seconds(monkeypatch):
    monkeypatch.setattr(bench.timing, "SETTLE", 0.0)
    monkeypatch.setattr(bench.timing, "WARM_SECONDS", 0.0)
    monkeypatch.setattr(bench.timing, "RUN_SECONDS", 0.1)
    monkeypatch.setattr(bench.timing, "MAX_ROUNDS", 1)
    monkeypatch.setattr(bench.timing, "MIN_ROUNDS", 1)
    calls = []
    bench.time_calls({"fast": lambda: calls.append(time.sleep(0.001))}, reps_time=0.0)
    # warm-up, one untimed call, then a run of calls of at least 1 ms each until 0.1 s have
    # passed: more than RUN of them (3 ms), at most 100
    assert 2 + bench.RUN < len(calls) <= 2 + 101


@pytest.mark.parametrize("numba, expected", [
    (True, "1667x conv2d's 1.528 ms (target: at least 1,000x on the demo shape)"),
    (False, "1667x conv2d's 1.528 ms (Numba does not import here: NumPy loops, not held to the 1,000x target)"),
])
def test_the_demo_target_is_stated_only_with_the_compiled_loops(numba, expected):
    """Without Numba the loops are NumPy's: no ratio is printed against a target they miss."""
    environment = {"numpy": "2", "cpus": 2, "env": {}} | ({"numba": "0.68"} if numba else {})
    results = {"environment": environment, "backward": False, "forward_geomean": 1.0, "compile_seconds": 1.0,
               "reference": dict(shape="1x512x512x3->2 3x3", demo=True, loops_ms=2547.0, convlayer_ms=1.528,
                                 speedup=1667.0)}
    line = [text for text in bench.suite._summary(results).splitlines() if "plain loops" in text][0]
    assert line.endswith(expected)
    results["reference"]["demo"] = False  # another shape: no target either way
    assert bench.suite._summary(results).splitlines()[-2 if numba else -1].endswith("1.528 ms")
