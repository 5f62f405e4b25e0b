"""Drive the real XFR Desktop window from a script: a scratch settings/data folder,
waiting for the app, screenshots, explanation jobs (scripts/screenshots.py and
scripts/walkthrough.py)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class AppDriver:
    """The app, its window and the folder its screenshots go to.

    The examiner's own settings are never touched: settings and user data live
    in a temporary folder (``scratch``) for the run.
    """

    def __init__(self, out: Path, size: tuple[int, int], prefix: str) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix=prefix))
        os.environ["XDG_CONFIG_HOME"] = str(self.scratch / "config")
        os.environ["XDG_DATA_HOME"] = str(self.scratch / "data")
        from PySide6.QtWidgets import QApplication

        from xfr_desktop.main_window import MainWindow
        from xfr_desktop.settings import Settings

        self.app = QApplication([sys.argv[0]])
        MainWindow.ask_before_closing = False  # a script closes without a question
        self.window = MainWindow(device="cpu", settings=Settings(user_name="J. Doe"))
        self.window.resize(*size)
        self.window.show()
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def wait(self, condition: Callable[[], bool], seconds: float = 600) -> None:
        """Process events until ``condition()`` holds (TimeoutError after
        ``seconds``)."""
        from PySide6.QtCore import QEventLoop

        end = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.02)

    def settle(self, seconds: float = 0.8) -> None:
        end = time.monotonic() + seconds
        self.wait(lambda: time.monotonic() > end)

    def shot(self, name: str, widget: Any = None) -> None:
        """``out/<name>.png`` of the window (or ``widget``), after repaints settle."""
        self.settle()
        path = self.out / f"{name}.png"
        (widget or self.window).grab().save(str(path))
        print("wrote", path)

    def run_methods(self, methods: Mapping[str, Mapping[str, Any]]) -> None:
        """Queue explanation methods for the pair shown and wait for them all."""
        controller = self.window.controller
        loaded = self.window.compare.loaded
        count = len(controller.jobs) + len(methods)
        controller.queue_explanations(
            loaded.probe_label, loaded.gallery_label, dict(methods), 0
        )
        self.wait(
            lambda: (
                len(controller.jobs) == count
                and all(
                    j.state in ("done", "cached", "failed") for j in controller.jobs
                )
            )
        )
        self.settle(2)
