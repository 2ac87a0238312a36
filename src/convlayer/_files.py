"""Writing files whole or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def atomic_write(path: "str | os.PathLike", write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the result to ``path``.

    The temporary file sits in the destination folder, so the rename is atomic: an
    interrupted or failed write leaves no half-written file and never touches an existing
    ``path``. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    # The name is known before the file exists, so a Ctrl-C at any moment after it is
    # created finds the name to remove (mkstemp returned it only after creating the file:
    # an interrupt in between left a temporary file behind).
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:  # another writer's file (a 2^-64 chance): not ours to remove
            temporary = None
            raise
        except FileNotFoundError:  # name the folder the caller gave, not the temporary file
            temporary = None
            raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist") from None
        os.close(descriptor)
        write(str(temporary))
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return path


def umask() -> int:
    """The process umask, which new files and folders lose from 0o666 and 0o777."""
    mask = os.umask(0)  # reading it means setting it: set it back at once
    os.umask(mask)
    return mask
