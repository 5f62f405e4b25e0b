"""XFR Desktop core: everything that is not GUI (never imports Qt)."""

from core.version import __version__

__all__ = ["APP_NAME", "__version__"]

APP_NAME = "XFR Desktop"
