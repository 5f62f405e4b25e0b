"""Screenshots of the ACE-V views (issue 19) on the ACE-V demo case, at 1280x720:
the Examination tab, a masked and an unmasked pair, the 1:N list while masked, the
Superimpose views, the audit trail as shown, a blind verification, and the
report's examination pages.

    python scripts/acev_screenshots.py docs/acev

The demo case is ``xfr case demo --acev`` (core.case.demo): Q1 / K1 analysed,
compared on the worksheet, evaluated, unmasked, revised, verified blind with one
disagreement resolved; Q1 / K2 still masked.  Runs offscreen when there is no
display; the images are scikit-image's astronaut and matplotlib's Grace Hopper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(out: Path) -> None:
    from app_driver import AppDriver

    from core.case.demo import create_demo_case
    from core.report.api import generate_report

    driver = AppDriver(out, (1280, 720), "xfr-acev-")
    window, wait, settle, shot = (
        driver.window, driver.wait, driver.settle, driver.shot
    )  # fmt: skip
    wait(lambda: window.model is not None)
    folder = driver.scratch / "acev-demo.xfrcase"
    create_demo_case(folder, model=window.model, acev=True).close()

    controller, compare = window.controller, window.compare

    def show_pair(known: str) -> None:
        compare.gallery_combo.setCurrentText(known)
        compare.select("Q1", "probe")
        wait(
            lambda: compare.loaded is not None and compare.loaded.gallery_label == known
        )
        settle(1.5)

    controller.open_case(folder)
    wait(lambda: controller.case is not None and compare.loaded is not None)
    show_pair("K1")
    panel = window.examination_panel
    window.tabs.setCurrentWidget(panel)
    shot("01-examination-analysis-and-worksheet")
    bar = panel.steps_area.verticalScrollBar()
    bar.setValue(bar.maximum())
    shot("02-examination-evaluation-unmasking-order")
    window.tabs.setCurrentWidget(window.compare_page)
    shot("03-comparison-unmasked")

    show_pair("K2")  # still masked in the demo
    shot("04-comparison-masked")
    compare.tabs.setCurrentIndex(1)  # Candidates (1:N)
    shot("05-candidates-masked")
    compare.tabs.setCurrentIndex(0)
    window.tabs.setCurrentWidget(panel)
    bar.setValue(bar.maximum())
    shot("06-examination-before-unmasking")

    show_pair("K1")
    superimpose = window.superimpose
    window.tabs.setCurrentWidget(superimpose)
    for index, name in enumerate(
        ("side-by-side", "superimposed", "wipe-vertical", "wipe-horizontal")
    ):
        superimpose.mode.setCurrentIndex(index)
        settle(1.5)
        shot(f"{7 + index:02d}-superimpose-{name}")
    window.tabs.setCurrentWidget(window.audit)
    shot("11-audit-trail-masked-results-hidden")

    controller.close_case()
    window.start_blind_verification(str(folder), "C. Third")
    wait(lambda: controller.case is not None and controller.blind)
    wait(lambda: compare.loaded is not None)
    show_pair("K1")
    window.tabs.setCurrentWidget(panel)
    bar.setValue(0)
    shot("12-blind-verification")
    controller.close_case()

    from core.case.store import Case

    pdf = driver.scratch / "acev-report.pdf"
    with Case.open(folder) as case:
        generate_report(case, pdf)
    pages = out / "13-report-page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "9", str(pdf), str(pages)],
        check=True,
    )
    print("wrote", out / "13-report-page-*.png")
    window.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/acev_screenshots.py OUT_FOLDER")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main(Path(sys.argv[1]))
