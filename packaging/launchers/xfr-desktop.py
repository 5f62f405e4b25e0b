"""Entry point of the bundle's ``xfr-desktop`` executable (the GUI)."""

import sys

from xfr_desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
