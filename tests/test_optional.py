"""A missing optional package is one line naming the extra that brings it, not a bare
ModuleNotFoundError; and Numba and threadpoolctl are ordinary dependencies."""

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from convlayer import _optional
from convlayer.cli.main import main

ROOT = Path(__file__).parent.parent


def test_require_names_what_needed_the_package_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError) as caught:
        _optional.require("sklearn.datasets", "data.digits()")
    assert isinstance(caught.value, ModuleNotFoundError)  # callers catching either still do
    assert str(caught.value) == "data.digits() needs the package 'sklearn': pip install 'convlayer[train]'"
    assert caught.value.__suppress_context__  # the traceback ends on this line, not on 'No module named'


def test_the_command_line_prints_a_described_error_as_it_is(monkeypatch, capsys):
    def needs_sklearn(args):
        _optional.require("sklearn", "convlayer shape (a test)")

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setattr("convlayer.cli.shape.run", needs_sklearn)
    assert main(["shape", "--input", "4x4", "--kernel-size", "3"]) == 2
    assert capsys.readouterr().err == ("convlayer shape: error: convlayer shape (a test) needs the package "
                                      "'sklearn': pip install 'convlayer[train]'\n")


def test_every_optional_module_names_an_extra_that_exists():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (extra, _) in _optional.EXTRAS.items():
        assert extra in extras, f"{module}'s hint names convlayer[{extra}], which pyproject.toml lacks"


def test_numba_and_threadpoolctl_are_dependencies_and_fast_still_installs():
    """What `pip install convlayer` installs gives the README's speed: the compiled loops."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {requirement.split(">")[0].split("=")[0].split(";")[0].strip() for requirement in project["dependencies"]}
    assert {"numpy", "numba", "threadpoolctl"} <= names
    assert "fast" in project["optional-dependencies"]  # pip install 'convlayer[fast]' keeps working


def test_make_demo_installs_what_the_walkthrough_needs():
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile[makefile.index("\ndemo:"):].split("\n\n")[0]
    assert "-e '.[images,train]'" in demo
    assert "source $(VENV)/bin/activate" in demo and "convlayer --help" in demo  # the next command


def test_without_numba_the_numpy_paths_compute_the_same(monkeypatch):
    import numpy as np

    import convlayer
    from convlayer.algorithms import compiled

    x = np.random.default_rng(0).random((2, 9, 9, 4), dtype=np.float32)
    kernel = np.random.default_rng(1).random((3, 3, 1, 4), dtype=np.float32)
    with_loops = convlayer.conv2d(x, kernel, groups=4)
    monkeypatch.setitem(compiled._state, "enabled", None)
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "numba" else found(name, *a))
    monkeypatch.setitem(sys.modules, "numba", None)  # installed (found) but `import numba` fails
    assert not compiled.enabled()
    without_loops = convlayer.conv2d(x, kernel, groups=4)
    expected = convlayer.reference.conv2d(x.astype(np.float64), kernel.astype(np.float64), groups=4)
    bound = 2 * 9 * 2.0**-24 * expected  # 9 products of non-negative numbers, each rounded in float32
    for got in (with_loops, without_loops):
        assert np.all(np.abs(got - expected) <= bound)
