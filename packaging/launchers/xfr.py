"""Entry point of the bundle's ``xfr`` executable (the command-line tools)."""

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
