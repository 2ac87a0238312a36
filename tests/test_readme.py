"""Every snippet of the README runs as written, and prints what the README says it prints.

Each ``## `` section runs in a fresh folder of its own, its blocks in order (a later block
may use a file an earlier one wrote, as a reader would run them): every ```python block
with ``exec`` and every ``convlayer ...`` (or ``python -m convlayer ...``) line of the
```sh blocks through :func:`convlayer.cli.main.main`, which must succeed without a warning.
A block of output that starts with ``$ convlayer ...`` is a transcript: the command's
output must equal the lines below it. The Training section's snippet is left to the tests
of training (it trains for seconds and its numbers have their own check). A block the README marks ``<!-- illustrative -->`` on the line
above it is not run; there is none now, and :func:`test_illustrative_blocks_are_few`
keeps it so.
"""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

import convlayer
from convlayer.cli.main import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
NOT_RUN_HERE = ("## Training a CNN",)  # its snippet is run by the training tests
ILLUSTRATIVE = "<!-- illustrative -->"
# What an untagged block may be besides a transcript: text that is not a command.
NOT_COMMANDS = {"### Explaining a model": "#  layer", "## Errors": "ValueError: ", "## Layout of the code": "src/"}


def _blocks() -> list:
    """``(section, subsection, language, text, line)`` of every fenced block, in order."""
    found, section, subsection = [], "(top)", ""
    lines = README.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.startswith("## "):
            section, subsection = line, line
        elif line.startswith("### "):
            subsection = line
        elif line.startswith("```"):
            end = lines.index("```", number + 1)
            illustrative = number > 0 and lines[number - 1].strip() == ILLUSTRATIVE
            language = "illustrative" if illustrative else line[3:].strip()
            found.append((section, subsection, language, "\n".join(lines[number + 1:end]) + "\n", number + 1))
            number = end
        number += 1
    return found


BLOCKS = _blocks()
SECTIONS = list(dict.fromkeys(block[0] for block in BLOCKS if block[0] not in NOT_RUN_HERE))


def _commands(text: str) -> list:
    """The argv of each ``convlayer`` line of a shell block; other lines must be make or source."""
    commands = []
    for line in text.splitlines():
        command = line.split(" #")[0].strip()
        words = shlex.split(command)
        if words[:3] == ["python", "-m", "convlayer"]:
            words = words[2:]
        if words and words[0] == "convlayer":
            commands.append(words[1:])
        else:
            assert words and words[0] in ("make", "source"), f"the test does not know how to run {line!r}"
    return commands


def _run_command(argv: list, capsys) -> str:
    """Run one command line as the shell would; return its stdout."""
    capsys.readouterr()  # what an earlier block printed is not this command's
    try:
        code = main(argv)
    except SystemExit as stop:  # --help and --version exit through argparse
        code = stop.code
    captured = capsys.readouterr()
    assert code == 0, f"convlayer {shlex.join(argv)} exited {code}: {captured.err}"
    assert "warning" not in captured.err, f"convlayer {shlex.join(argv)}: {captured.err}"
    return captured.out


def _run_python(text: str, line: int) -> dict:
    namespace = {"__name__": "__readme__"}
    exec(compile(text, f"README.md, the block at line {line}", "exec"), namespace)
    return namespace


# What some blocks compute, checked beyond "it ran": the block that holds TEXT, its check
CHECKS = {
    "kernels.stack([\"edge\", \"blur\"], channels=3)": lambda ns: (
        ns["maps"].shape == (32, 32, 2) and ns["edges"].shape == (64, 64) and ns["blurred"].shape == (64, 64, 3)
        and ns["maps"].dtype == np.float32),
    "conv_transpose2d_backward": lambda ns: (ns["grads"].grad_x.shape == ns["y"].shape
                                             and ns["grads"].grad_kernel.shape == ns["kernel"].shape),
    "convlayer.onnx.load": lambda ns: (ns["logits"].shape == (4, 10) and np.allclose(
        ns["logits"], ns["small"].predict(ns["images"]), rtol=0, atol=1e-5 * np.abs(ns["logits"]).max())),
    "model.to_onnx": lambda ns: Path("model.onnx").is_file(),
    "LocallyConnected2D": lambda ns: ns["layer"].num_params == 10_240,
    "x @ w[0, 0] + b": lambda ns: ns["y"].shape == (2, 14, 14, 64),
    "read_images": lambda ns: Path("maps.zarr").is_dir() and ns["probs"].compute().shape == (3, 2),
    "memory_budget(": lambda ns: (ns["y"].shape == (4, 128, 128, 64)
                                  and np.all(ns["y"][:, 3:-3, 3:-3] == 7 * 7 * 3)),
}


def _check(text: str, namespace: dict, line: int) -> None:
    for marker, check in CHECKS.items():
        if marker in text:
            assert check(namespace), f"the block at line {line} computed something else"


@pytest.mark.parametrize("section", SECTIONS)
def test_every_block_of_the_section_runs(section, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    budget = convlayer.get_memory_budget()
    try:
        for _, subsection, language, text, line in (block for block in BLOCKS if block[0] == section):
            if language == "python":
                _check(text, _run_python(text, line), line)
            elif language == "sh":
                for argv in _commands(text):
                    _run_command(argv, capsys)
            elif language == "" and text.startswith("$ "):
                command, expected = text[2:].split("\n", 1)
                out = _run_command(shlex.split(command)[1:], capsys)
                assert out.strip() == expected.strip(), f"the transcript at line {line} is not current"
            elif language == "":
                assert text.startswith(NOT_COMMANDS.get(subsection, NOT_COMMANDS.get(section, "?"))), (
                    f"the untagged block at line {line} is neither a transcript nor known text: tag it")
            else:
                assert language == "illustrative", f"the block at line {line} is ```{language}"
    finally:
        convlayer.set_memory_budget(budget)


def test_the_blocks_are_the_ones_this_test_knows():
    languages = {language for _, _, language, _, _ in BLOCKS}
    assert languages <= {"python", "sh", "", "illustrative"}
    python = [block for block in BLOCKS if block[2] == "python" and block[0] not in NOT_RUN_HERE]
    commands = sum(len(_commands(block[3])) for block in BLOCKS if block[2] == "sh")
    assert len(python) >= 8 and commands >= 15  # the test finds the blocks it is meant to run
    for marker in CHECKS:  # and every check finds its block
        assert sum(marker in block[3] for block in python) == 1, marker


def test_illustrative_blocks_are_few():
    assert [block[4] for block in BLOCKS if block[2] == "illustrative"] == []


def test_the_errors_section_shows_the_error_conv2d_raises():
    shown = re.search(r"## Errors.*?```\nValueError: (.*?)\n```", README, re.S).group(1)
    with pytest.raises(ValueError) as caught:
        convlayer.conv2d(np.zeros((32, 32, 3)), np.zeros((3, 3, 4, 8)))
    assert str(caught.value) == shown


def test_the_two_commands_come_first():
    section = README[README.index("## Two commands"):README.index("## Filter your own images")]
    assert "make demo    # creates .venv" in section
    assert "make test    # installs the test extra" in section
    assert "source .venv/bin/activate" in section  # and how to get `convlayer` on PATH after it


def test_the_readme_says_what_porting_needs():
    text = " ".join(README.split())
    assert "The default padding is `'same'`" in text and "Keras and PyTorch default to no padding, `'valid'`" in text
    assert "the same numbers as PyTorch" not in text and "not bit for bit" in text
    assert "`fast`" not in text and "convlayer[fast]" not in text  # Numba is a dependency now


def test_links_to_files_in_the_repository_resolve():
    for page in (ROOT / "README.md", ROOT / "docs" / "performance.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
