"""`python -m chalicelib …`: the command line (chalicelib/cli.py)."""

import sys

from chalicelib.cli import main

if __name__ == "__main__":
    sys.exit(main())
