"""``python -m convlayer``: the ``convlayer`` command, for when its script is not on PATH.

Not imported by ``import convlayer``; the command line's modules load only here.
"""

import sys

from convlayer.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
