"""Every example in the help texts runs on a fresh install, and the old option spellings still work."""

import importlib
import shlex

import numpy as np
import pytest
from PIL import Image

from convlayer.cli.main import COMMANDS, build_parser, main


def _examples() -> list:
    """The ``convlayer ...`` lines of the main help and of every command's help, in order, once each."""
    texts = [build_parser().epilog] + [importlib.import_module(f"convlayer.cli.{name}").EXAMPLE for name in COMMANDS]
    found = []
    for text in texts:
        for line in text.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith("convlayer ") and command not in found:
                found.append(command)
    return found


EXAMPLES = _examples()
# The performance suite runs for minutes: its examples are parsed, not run.
SLOW = [example for example in EXAMPLES if example.startswith("convlayer bench")]


def _users_files(folder):
    """What the examples call the user's own files: photos/, pets/ (class folders), a scan, a kernel, a
    model architecture, a scene as TIFF and Zarr."""
    rng = np.random.default_rng(0)
    (folder / "photos").mkdir()
    for name in ("beach", "garden"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / "photos" / f"{name}.jpg")
    import tifffile

    tifffile.imwrite(folder / "scan.tif", rng.integers(0, 2**16, (20, 24)).astype(np.uint16))
    tifffile.imwrite(folder / "scene.tif", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    np.save(folder / "my_filter.npy", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32))
    for name in ("cats", "dogs"):  # pets/: one folder of images per class, for train --data
        (folder / "pets" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "pets" / name / f"{i}.png")
    (folder / "arch.json").write_text('{"conv": [4], "dense": [8]}')  # train --model: a small CNN
    try:  # model.onnx: a small network written by convlayer (needs the onnx extra)
        from convlayer import nn

        nn.Sequential([nn.Conv2D(3, 4, 3, strides=2), nn.ReLU(), nn.MaxPool2D(2)], input_shape=(32, 32, 3),
                      seed=0).to_onnx(folder / "model.onnx")
    except ImportError:
        pass
    zarr = pytest.importorskip("zarr")
    store = zarr.create_array(str(folder / "scene.zarr"), shape=(40, 48, 3), chunks=(20, 48, 3), dtype=np.uint8)
    store[:] = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def test_the_examples_were_found():
    commands = {example.split()[1] for example in EXAMPLES}
    assert commands == set(COMMANDS) and len(EXAMPLES) > 20
    assert "convlayer filter sample:coffee -k blur -k sharpen --per-channel --figure -o out/" in EXAMPLES


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e not in SLOW])
def test_every_help_example_runs(example, tmp_path, monkeypatch, capsys):
    if "--save-zarr" in example or "--chunks" in example or ".zarr" in example:
        pytest.importorskip("dask")
    if example.startswith("convlayer train"):  # every step of the command, on 64 of the 1,347 images
        pytest.importorskip("sklearn")
        from convlayer import data

        full = data.digits
        monkeypatch.setattr(data, "digits", lambda **kw: full(**kw)._replace(
            x_train=full(**kw).x_train[:64], y_train=full(**kw).y_train[:64]))
    if ".onnx" in example:
        pytest.importorskip("onnx")
    _users_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(shlex.split(example)[1:])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning" not in captured.err and "Traceback" not in captured.err, captured.err
    if not example.startswith("convlayer shape") and ".onnx" not in example:  # these print, and write nothing
        assert "wrote " in captured.out  # every command that writes says what it wrote


@pytest.mark.parametrize("example", SLOW)
def test_the_slow_examples_parse(example):
    build_parser().parse_args(shlex.split(example)[1:])


def test_shape_takes_the_contracts_kernel_spelling_without_a_warning(capsys):
    # SPEC.md writes `convlayer shape --input 224x224x3 --kernel 7x7 ...`: an alias of --kernel-size
    assert main(["shape", "--input", "224x224x3", "--kernel", "7x7", "--filters", "64", "--strides", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "output      112 x 112 x 64" in captured.out


@pytest.mark.parametrize("argv, old, new", [
    (["explain", "--input", "6x6", "--kernel", "3x3", "-o", "x.png"], "-k/--kernel 3x3 (a size)", "--kernel-size 3x3"),
    (["explain", "--input", "6x6", "-k", "3", "-o", "x.png"], "-k/--kernel 3 (a size)", "--kernel-size 3"),
])
def test_old_spellings_work_with_one_deprecation_line(argv, old, new, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    err = capsys.readouterr().err
    command = argv[0]
    assert err.splitlines() == [f"convlayer {command}: warning: {old} is deprecated, use {new} (the old spelling "
                                f"goes in convlayer 0.2)"]


def test_train_out_is_the_old_spelling_of_output(capsys):
    args = build_parser().parse_args(["train", "--out", "runs/x"])
    assert args.output == "runs/x"
    assert capsys.readouterr().err.splitlines() == [
        "convlayer train: warning: --out is deprecated, use -o/--output (the old spelling goes in convlayer 0.2)"]


def test_every_command_that_writes_takes_o_output_and_overwrite():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("demo", "explain", "filter", "train"):
        options = {o for action in commands[name]._actions for o in action.option_strings}
        assert {"-o", "--output", "--overwrite"} <= options, name


def test_replacing_without_overwrite_warns_for_one_release(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["explain", "--input", "5x5", "--kernel-size", "3", "-o", "a.png"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    assert main(argv) == 0
    assert capsys.readouterr().err.splitlines() == [
        "convlayer explain: warning: replacing a.png; from convlayer 0.2 an existing output is kept unless "
        "--overwrite is given"]
    assert main(argv + ["--overwrite"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", [["--strides", "0"], ["--animate", "--max-frames", "0"], ["--transpose", "--strides", "0"]])
def test_an_error_comes_without_the_replace_warning_before_it(tmp_path, monkeypatch, capsys, bad):
    """The existing output is kept, so "replacing" would be false: the warning comes only when the
    figure is about to be written, after every argument is checked."""
    monkeypatch.chdir(tmp_path)
    suffix = "gif" if "--animate" in bad else "png"
    (tmp_path / f"a.{suffix}").write_bytes(b"mine")
    assert main(["explain", "--input", "5x5", "--kernel-size", "3", "-o", f"a.{suffix}"] + bad) == 2
    err = capsys.readouterr().err
    assert "error" in err and "replacing" not in err
    assert (tmp_path / f"a.{suffix}").read_bytes() == b"mine"


def test_explain_says_when_a_named_filter_only_gives_its_size(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "--input", "6x6", "-k", "edge", "-o", "x.png"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "convlayer explain: note: -k edge is a 3x3 filter; without an IMAGE the drawing shows its geometry, "
        "not its values"]


def test_demo_and_explain_take_sample_photos(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "sample:chelsea", "-k", "blur", "--at", "10,20", "-o", "pixel.png"]) == 0
    assert main(["demo", "--photo", "sample:chelsea", "-o", "demo.png"]) == 0
    assert capsys.readouterr().out.count("wrote ") == 2
    assert main(["explain", "sample:moon", "-o", "x.png"]) == 2
    assert "sample:moon: no such sample photo; choose from sample:astronaut" in capsys.readouterr().err
