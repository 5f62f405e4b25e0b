"""Progress reporting: the one callback type every long job takes.

A job calls ``progress(done, total, message)`` as it goes; the caller decides what
that shows (a terminal line in :mod:`core.cli.common`, a progress bar in the GUI,
nothing in a test).  Torch-free, so that any layer may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

ProgressCallback: TypeAlias = Callable[[int, int, str], None]
"""``(done, total, message)``: ``done`` of ``total`` steps, and what is being done."""

__all__ = ["ProgressCallback"]
