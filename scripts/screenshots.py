"""Regenerate the screenshots in docs/ from a real run of the app on the demo case,
at 1280x720 (the smallest screen the window is made for).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py docs

(or under Xvfb with QT_QPA_PLATFORM=xcb).  Uses a temporary settings/data folder
(scripts/app_driver.py), so the examiner's own settings are untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    from app_driver import AppDriver

    from xfr_desktop.dialogs.settings_dialog import SettingsDialog

    driver = AppDriver(out, (1280, 720), "xfr-shots-")
    window, wait, shot = driver.window, driver.wait, driver.shot
    wait(lambda: window.model is not None)
    shot("01-start")
    window.open_demo()
    wait(lambda: window.compare.loaded is not None)
    wait(lambda: window.compare.candidates.rowCount() >= 2)
    controller = window.controller
    run = driver.run_methods

    run({"fggb": {}, "lime": {}, "xssab": {}, "gradcam": {}})
    window.compare.select_explanation(controller.jobs[0].explanation_id)
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
    shot("02-compare-accept-fggb")
    window.compare.kind_combo.setCurrentText("combined")
    shot("03-compare-accept-combined")
    window.compare.select("K2", "gallery")
    wait(lambda: window.compare.loaded.gallery_label == "K2")
    run({"fggb": {}})
    window.compare.kind_combo.setCurrentText("dissimilarity")
    shot("04-compare-reject-dissimilarity")
    window.compare.select("K1", "gallery")
    wait(lambda: window.compare.loaded.gallery_label == "K1")
    driver.settle(3)
    window.tabs.setCurrentWidget(window.grid)
    shot("05-all-methods")
    window.tabs.setCurrentWidget(window.layers)
    window.layers.start()
    wait(lambda: window.layers.result is not None)
    window.layers.slider.setValue(3)
    shot("06-layer-by-layer")
    controller.add_conclusion(
        "Features of Q1 and K1 were compared following ACE-V. (Demo text written by "
        "the examiner; the software never proposes an opinion.)"
    )
    window.tabs.setCurrentWidget(window.conclusion)
    shot("07-conclusion")
    window.tabs.setCurrentWidget(window.audit)
    window.verify_case()
    driver.settle(2)
    shot("08-audit-trail")
    dialog = SettingsDialog(window.settings, ["dlib-resnet-v1"], window)
    dialog.show()
    shot("09-settings", dialog)
    dialog.close()
    window.set_theme("dark")
    window.tabs.setCurrentWidget(window.compare_page)
    shot("10-dark-theme")
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
