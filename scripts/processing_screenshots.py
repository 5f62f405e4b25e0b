"""Screenshots of the Processing tab (issue 21) at 1280x720 and 1600x1000: levels
and gamma then unsharp mask on the demo case's CCTV still Q1, side by side and in
the wipe view, then the exhibits list with the derived exhibit Q1.1 under Q1, and
a comparison of Q1.1's face with the note on what it is of.

    QT_QPA_PLATFORM=offscreen .venv/bin/python \
        scripts/processing_screenshots.py docs/processing

Uses a temporary settings/data folder (scripts/app_driver.py); needs dlib (the
demo case's faces).
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZES = ((1280, 720), (1600, 1000))
LEVELS = {"black": 18, "white": 225, "gamma": 1.3}
UNSHARP = {"radius": 2.0, "amount": 1.2, "threshold": 2}


def build_chain(panel) -> None:
    """Levels + unsharp on Q1, entered through the panel's widgets."""
    panel.set_source("Q1")
    for op_id, values in (("levels", LEVELS), ("unsharp", UNSHARP)):
        panel.choose_operation(op_id)
        panel.add_button.click()
        for name, value in values.items():
            panel.editors[name].setValue(value)


def main(out: Path) -> None:
    from app_driver import AppDriver

    driver = AppDriver(out, SIZES[0], "xfr-processing-shots-")
    window, wait, shot = driver.window, driver.wait, driver.shot
    wait(lambda: window.model is not None)
    window.open_demo()
    wait(lambda: window.controller.case is not None, 300)
    wait(lambda: window.compare.loaded is not None, 120)
    panel = window.processing
    window.tabs.setCurrentWidget(panel)
    build_chain(panel)
    for width, height in SIZES:
        window.resize(width, height)
        panel.steps_list.setCurrentRow(0)  # the levels form shown
        panel.set_wipe(False)
        wait(lambda: not panel.preview_pending() and panel.shown is not None, 120)
        driver.settle(1.5)
        shot(f"processing-side-by-side-{width}x{height}")
        panel.set_wipe(True)
        panel.wipe_slider.setValue(450)
        driver.settle(1)
        shot(f"processing-wipe-{width}x{height}")
    panel.set_wipe(False)
    panel.derive()
    wait(lambda: window.controller.case.derivations.derivation("Q1.1") is not None)
    wait(lambda: not window.controller.deriver.is_busy(), 300)
    driver.settle(3)  # thumbnails and face quality in their workers
    item = window.exhibits.item_for("Q1.1")
    if item is not None:
        window.exhibits.tree.setCurrentItem(item)
        window.exhibits.tree.scrollToItem(item)
    for width, height in SIZES:
        window.resize(width, height)
        driver.settle(2)
        shot(f"processing-exhibits-tree-q1.1-{width}x{height}")
    # a comparison with the processed exhibit's face says what it is of
    window.tabs.setCurrentWidget(window.compare_page)
    window.compare.select("Q1.1", "probe")
    wait(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.faces[0].label == "Q1.1"
        ),
        120,
    )
    for width, height in SIZES:
        window.resize(width, height)
        driver.settle(2)
        shot(f"processing-compare-q1.1-{width}x{height}")
    window.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]))
