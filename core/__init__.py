"""XFR Desktop core: everything that is not GUI (never imports Qt)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xfr-desktop")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

APP_NAME = "XFR Desktop"
