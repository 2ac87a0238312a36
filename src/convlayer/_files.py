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
        os.chmod(temporary, 0o666 & ~umask())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def umask() -> int:
    """The process umask, which new files and folders lose from 0o666 and 0o777."""
    mask = os.umask(0)  # reading it means setting it: set it back at once
    os.umask(mask)
    return mask
