"""_files.atomic_write: a file is written whole or not at all, and never leaves a temporary behind."""

import os

import pytest

from convlayer._files import atomic_write, umask


def test_the_result_appears_whole_with_the_umasks_permissions(tmp_path):
    target = atomic_write(tmp_path / "out.txt", lambda name: open(name, "w").write("done"))
    assert target.read_text() == "done"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_an_interrupted_or_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    (tmp_path / "out.txt").write_text("old")
    seen = []

    def write(name):
        seen.append(name)
        open(name, "w").write("half")
        raise error

    with pytest.raises(error):
        atomic_write(tmp_path / "out.txt", write)
    assert (tmp_path / "out.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert os.path.basename(seen[0]).startswith(".out.txt.")


def test_an_interrupt_while_the_temporary_is_created_removes_it(tmp_path, monkeypatch):
    # the window that mkstemp left open: the file exists, its name was not yet returned
    real_open = os.open

    def open_then_interrupt(path, flags, mode=0o777):
        real_open(path, flags, mode)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.txt", lambda name: None)
    assert list(tmp_path.iterdir()) == []
