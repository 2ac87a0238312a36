"""Writing files whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: "str | os.PathLike", write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the result to ``path``.

    The temporary file sits in the destination folder, so the rename is atomic: an
    interrupted or failed write leaves no half-written file and never touches an existing
    ``path``. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, _new_file_mode())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
