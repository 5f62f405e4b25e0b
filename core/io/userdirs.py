"""The user's own folders for XFR Desktop (per operating system, via platformdirs).

One place for the application and author names, so every module finds the same
folders.  Computed on each call: ``core.selftest`` redirects them (through the
environment) for the duration of a self-test.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "xfr-desktop"
APP_AUTHOR = "XFR"


def user_data_dir() -> Path:
    """Data the examiner made and keeps (trained reconstructors)."""
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def user_cache_dir() -> Path:
    """Regenerable data, safe to delete (aligned chips, downloads)."""
    return Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))


def user_config_dir() -> Path:
    """Settings (the GUI keeps its own in ``QSettings``)."""
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR))
