"""``convlayer bench``: runs, prints its table and writes JSON (no timing is asserted)."""

import json

import numpy as np
import pytest

from convlayer import bench
from convlayer.cli.main import main


def test_bench_prints_a_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--only", "64x8x8", "--reps-time", "0.01", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "64x8x8x1->16 3x3" in out and "geometric mean of ratios" in out and "plain loops" in out
    results = json.loads(path.read_text())
    (forward,), (backward,) = results["forward"], results["backward"]
    assert forward["algorithm"] in ("im2col", "shift") and forward["work_mib"] >= 0
    assert forward["ms"]["convlayer"] > 0 and backward["ms"]["convlayer"] > 0
    assert results["reference"]["speedup"] > 1


def test_bench_without_peers_still_runs(monkeypatch, capsys):
    monkeypatch.setattr(bench, "peers", lambda: {})
    results = bench.run_suite([bench.Case(2, 8, 8, 3, 4, 3)], reps_time=0.01, backward=False, echo=print)
    assert "ratio" not in results["forward"][0] and np.isnan(results["forward_geomean"])
    assert "2x8x8x3->4 3x3" in capsys.readouterr().out


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
    if "ratio" in row:  # with PyTorch: im2col and depthwise can compute it, shift and fft cannot
        assert sorted(row["algorithm_ratios"]) == ["depthwise", "im2col"]
    assert {"algorithm=im2col", "algorithm=depthwise"} <= set(row["ms"])
