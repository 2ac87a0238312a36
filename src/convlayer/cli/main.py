"""Entry point of the ``convlayer`` command: parse arguments, run one command.

Bad input ends with one line on stderr and exit code 2, never a traceback. Each command's
module is imported only when that command runs, so ``convlayer shape`` stays quick and
needs nothing but NumPy.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__, _optional

COMMANDS = {
    "demo": "Run the tutorial's two-filter layer on a sample photo and draw what it sees.",
    "explain": "Draw what a layer does with your numbers: padding, strides, channels, real values.",
    "filter": "Run a convolutional layer over images and write what each filter sees.",
    "shape": "Print a layer's output shape, padding and parameter count, with the formulas.",
    "train": "Train a small CNN on scikit-learn's digits or your own images (--data DIR), draw what it learned.",
    "bench": "Time conv2d and its gradients against PyTorch, JAX and SciPy, or real networks' layers.",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not usage plus a line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="convlayer",
        description="2D convolutional layers on NumPy: exact, fast and explained.",
        epilog="examples:\n  convlayer demo\n"
               "  convlayer filter sample:coffee -k blur -k sharpen --per-channel --figure -o out/\n"
               "  convlayer shape --input 224x224x3 --kernel-size 7x7 --filters 64 --strides 2\n"
               "  convlayer train --epochs 30\n"
               "  convlayer explain --input 6x6 --kernel-size 3x3 --strides 2 -o stride.png\n"
               "  convlayer bench\n"
               "  convlayer bench --suite networks --models resnet50 --batch 8\n\n"
               "'convlayer COMMAND --help' explains each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"convlayer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"convlayer.cli.{name}")
        sub = commands.add_parser(
            name, help=summary, description=summary, epilog=module.EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: "list[str] | None" = None) -> int:
    """Run ``convlayer`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    When the reader of stdout goes away (``convlayer shape ... | head -1``), the command
    stops quietly with exit code 141, as a program killed by SIGPIPE does in a shell.
    """
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args) or 0
        sys.stdout.flush()  # inside the try: a closed pipe is found here, not at exit
        return code
    except BrokenPipeError:  # before OSError, which it is
        return _stdout_gone()
    except (ValueError, TypeError, OSError) as error:
        return _fail(f"convlayer {args.command}: error: {error}")
    except ImportError as error:  # not installed (what to install) or broken (what was found); as it is,
        # when convlayer._optional.require described it already
        return _fail(f"convlayer {args.command}: error: {_optional.describe(error)}")
    except KeyboardInterrupt:  # outputs are written whole or not at all: nothing to clean up
        print(f"convlayer {args.command}: interrupted", file=sys.stderr)
        return 130


def _stdout_gone() -> int:
    """stdout's reader has gone: point stdout at devnull so that Python's final flush of
    what is left in the buffer is silent, as the Python documentation's note on SIGPIPE
    does (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (captured in a test): nothing to flush
        pass
    return 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
