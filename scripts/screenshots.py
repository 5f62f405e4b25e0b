"""Regenerate the screenshots in docs/ from a real run of the app on the demo case.

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshots.py docs

Uses a temporary settings/data folder, so the examiner's own settings are untouched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(out: Path) -> None:
    scratch = tempfile.mkdtemp(prefix="xfr-shots-")
    os.environ["XDG_CONFIG_HOME"] = f"{scratch}/config"
    os.environ["XDG_DATA_HOME"] = f"{scratch}/data"
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from xfr_desktop.dialogs.settings_dialog import SettingsDialog
    from xfr_desktop.main_window import MainWindow
    from xfr_desktop.settings import Settings

    app = QApplication([sys.argv[0]])
    window = MainWindow(device="cpu", settings=Settings(user_name="J. Doe"))
    window.resize(1600, 980)
    window.show()

    def wait(condition, seconds: float = 300) -> None:
        end = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.02)

    def settle(seconds: float = 1.0) -> None:
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end)

    def shot(name: str, widget=None) -> None:
        settle(0.8)
        (widget or window).grab().save(str(out / name))
        print("wrote", out / name)

    out.mkdir(parents=True, exist_ok=True)
    wait(lambda: window.model is not None)
    shot("01-start.png")
    window.open_demo()
    wait(lambda: window.compare.loaded is not None)
    wait(lambda: window.compare.candidates.rowCount() >= 2)
    controller = window.controller

    def run(methods: dict) -> None:
        loaded = window.compare.loaded
        count = len(controller.jobs) + len(methods)
        controller.queue_explanations(
            loaded.probe_label, loaded.gallery_label, methods, 0
        )
        wait(
            lambda: (
                len(controller.jobs) == count
                and all(
                    j.state in ("done", "cached", "failed") for j in controller.jobs
                )
            )
        )
        settle(2)

    run({"fggb": {}, "lime": {}, "xssab": {}, "gradcam": {}})
    window.compare.show_explanation(controller.jobs[0].explanation_id)
    window.compare.viewers[0].annotation_drawn.disconnect()  # no dialog here
    window.compare.ask_annotation_details = False
    window.controller.add_annotation(
        exhibit="Q1",
        shape="ellipse",
        points=[[96.0, 40.0], [128.0, 62.0]],
        label="eyes: compared",
        note="comparable despite blur",
        component="eyes",
    )
    shot("02-compare-accept-fggb.png")
    window.compare.kind_combo.setCurrentText("combined")
    shot("03-compare-accept-combined.png")
    window.compare.select("K2", "gallery")
    wait(lambda: window.compare.loaded.gallery_label == "K2")
    run({"fggb": {}})
    window.compare.kind_combo.setCurrentText("dissimilarity")
    shot("04-compare-reject-dissimilarity.png")
    window.compare.select("K1", "gallery")
    wait(lambda: window.compare.loaded.gallery_label == "K1")
    settle(3)
    window.tabs.setCurrentWidget(window.grid)
    shot("05-all-methods.png")
    window.tabs.setCurrentWidget(window.layers)
    window.layers.start()
    wait(lambda: window.layers.result is not None)
    window.layers.slider.setValue(3)
    shot("06-layer-by-layer.png")
    controller.add_conclusion(
        "Features of Q1 and K1 were compared following ACE-V. (Demo text written by "
        "the examiner; the software never proposes an opinion.)"
    )
    window.tabs.setCurrentWidget(window.conclusion)
    shot("07-conclusion.png")
    window.tabs.setCurrentWidget(window.audit)
    window.verify_case()
    settle(2)
    shot("08-audit-trail.png")
    dialog = SettingsDialog(window.settings, ["dlib-resnet-v1"], window)
    dialog.show()
    shot("09-settings.png", dialog)
    dialog.close()
    window.set_theme("dark")
    window.tabs.setCurrentIndex(0)
    shot("10-dark-theme.png")
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
