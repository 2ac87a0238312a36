"""What every command shares: one vocabulary, one overwrite policy, one way to say what was written.

The same idea has the same option in every command: ``-o/--output`` for where to write,
``--kernel-size FhxFw`` for a kernel's size and ``-k/--kernel NAME`` for a named filter,
``--bias B [B ...]`` one value per filter, ``--overwrite`` to replace an existing output.
Old spellings (``train --out``, ``explain --kernel 3x3``) keep working for one release,
with a deprecation line on stderr; ``shape --kernel 7x7`` is the contract's spelling and
stays, an alias of ``--kernel-size``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NEXT_RELEASE = "0.2"  # when the old spellings, and replacing without --overwrite, stop


def warn(command: str, message: str) -> None:
    """One line on stderr: ``convlayer COMMAND: warning: MESSAGE``."""
    print(f"convlayer {command}: warning: {message}", file=sys.stderr)


def deprecated_spelling(command: str, old: str, new: str) -> None:
    warn(command, f"{old} is deprecated, use {new} (the old spelling goes in convlayer {NEXT_RELEASE})")


class _Deprecated(argparse.Action):
    """An old option spelling: stores into the new option's place and says so on stderr."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated_spelling(parser.prog.split()[-1], option_string, self.new)
        setattr(namespace, self.dest, values)


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str) -> None:
    """Accept ``old`` as a hidden alias of the option ``new`` (stored in ``dest``) for one release."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (without it an existing output is still "
                             f"replaced, with a warning, until convlayer {NEXT_RELEASE}, which keeps it)")


def check_replace(command: str, targets: "list[Path]", overwrite: bool) -> None:
    """The overwrite policy for commands that so far replaced their outputs silently.

    ``--overwrite`` replaces; without it an existing output is replaced this release with a
    warning line, and refused from the next one, as ``convlayer filter`` refuses it now.
    """
    if overwrite:
        return
    for target in targets:
        if target.exists():
            warn(command, f"replacing {target}; from convlayer {NEXT_RELEASE} an existing output is kept "
                          f"unless --overwrite is given")


def check_output_file(output: Path) -> Path:
    """``-o FILE`` as the user gave it, refused in their words before any work starts: a folder
    that does not exist, or a folder where a file is meant (not the temporary name that
    :func:`convlayer._files.atomic_write` would have failed on)."""
    if not output.parent.is_dir():
        raise ValueError(f"-o {output}: the folder {output.parent} does not exist")
    if output.is_dir():
        raise ValueError(f"-o {output}: is a folder; give a file name")
    return output
