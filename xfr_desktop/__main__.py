import sys

from xfr_desktop.app import main

sys.exit(main())
