"""``python -m core.cli``: the ``xfr`` command (tests run it in a subprocess)."""

from __future__ import annotations

import sys

from core.cli import main

sys.exit(main())
