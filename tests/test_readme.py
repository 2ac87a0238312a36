"""The README's examples run and print what the README says they print, and its links resolve."""

import re
from pathlib import Path

from convlayer.cli.main import main

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_runs():
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", README, re.S).group(1)
    namespace = {}
    exec(compile(block, "README quick start", "exec"), namespace)
    assert namespace["maps"].shape == (32, 32, 2)
    assert namespace["edges"].shape == (64, 64)


def test_shape_transcript_is_current(capsys):
    transcript = re.search(r"```\n\$ (convlayer shape [^\n]*)\n(.*?)```", README, re.S)
    argv = transcript.group(1).split()[1:]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == transcript.group(2).strip()


def test_the_two_commands_come_first():
    section = README[README.index("## Two commands"):README.index("## Filter your own images")]
    assert "make demo    # creates .venv" in section
    assert "make test    # installs the test extra" in section


def test_links_to_files_in_the_repository_resolve():
    root = Path(__file__).parent.parent
    for page in (root / "README.md", root / "docs" / "performance.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
