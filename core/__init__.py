"""XFR Desktop core: everything that is not GUI (never imports Qt)."""

import os as _os

# Before torch can be imported (OpenMP reads it once, when the library loads): a
# thread waiting at a barrier sleeps instead of spinning, so a core taken by another
# job or program is not fought over (core/compute.py; measured in
# benchmarks/contention.py).  A wait policy or spin count the user set is kept.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from core.version import __version__

__all__ = ["APP_NAME", "__version__"]

APP_NAME = "XFR Desktop"
