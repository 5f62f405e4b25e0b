"""A new examiner's whole case at 1280x720, one screenshot per step (issue 18).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/walkthrough.py docs/walkthrough

Drives the real window with the real default model (dlib's ResNet on the CPU):
a new case; intake of two CCTV-like probes and three gallery images (one with a
false detection, one the detector misses); the false detection rejected and the
missed face placed by hand; 1:N for both probes; explanation methods; the All
methods grid and layer by layer; an annotation, deleted and undone; the
conclusion; a signing identity made in the app; the signed export with a wrong
password first; the completion dialog's verification; the dark theme; and the
report's comparison page as PNG (``pdftoppm``).  The images are scikit-image's
astronaut and matplotlib's Grace Hopper (shipped with the installed packages),
degraded here; a temporary settings/data folder keeps the examiner's own
settings untouched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

PASSWORD = "walkthrough-password"


def cctv_like(rgb: np.ndarray, box: tuple[int, int, int, int], scale: float):
    """A small, grey, blocky still of the face region: what CCTV exports look like."""
    from PIL import Image

    left, top, right, bottom = box
    crop = Image.fromarray(rgb[top:bottom, left:right]).convert("L").convert("RGB")
    small = crop.resize(
        (max(8, round(crop.width * scale)), max(8, round(crop.height * scale)))
    )
    return small.resize((crop.width, crop.height), Image.Resampling.NEAREST)


def make_images(folder: Path) -> dict[str, Path]:
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    astronaut = data.astronaut()
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = np.asarray(Image.open(handle).convert("RGB"))
    files = {
        "q1": folder / "cctv-camera3-0142.jpg",
        "q2": folder / "cctv-camera5-0917.jpg",
        "k1": folder / "astronaut.png",
        "k2": folder / "grace_hopper.jpg",
        "k3": folder / "astronaut-scanned-sideways.png",
    }
    cctv_like(astronaut, (80, 0, 380, 300), 0.3).save(files["q1"], quality=35)
    cctv_like(hopper, (100, 0, 460, 380), 0.3).save(files["q2"], quality=35)
    Image.fromarray(astronaut).save(files["k1"])
    Image.fromarray(hopper).save(files["k2"], quality=92)
    Image.fromarray(np.rot90(astronaut).copy()).save(files["k3"])
    return files


def main(out: Path) -> None:
    from app_driver import AppDriver

    from core.faces.detect import FaceDetector
    from xfr_desktop.dialogs.face_dialog import POINTS

    driver = AppDriver(out, (1280, 720), "xfr-walk-")
    window, wait, settle, shot = (
        driver.window, driver.wait, driver.settle, driver.shot
    )  # fmt: skip
    scratch = driver.scratch

    files = make_images(scratch)
    wait(lambda: window.model is not None)
    shot("01-start")

    # -- a new case, and the intake ---------------------------------------------
    controller = window.controller
    # this walk-through shows the model's side of the workspace; the ACE-V order
    # (masked results, the Examination tab) is scripts/acev_screenshots.py
    controller.new_case(
        scratch / "case-2026-0318.xfrcase", "2026-0318", "J. Doe",
        "Burglary, Main Street 12", "Regional Forensic Lab",
        sequential_unmasking=False,
    )  # fmt: skip
    wait(lambda: controller.case is not None)
    controller.add_files([str(files["q1"]), str(files["q2"])], "probe")
    wait(lambda: len(controller.case.exhibits("probe")) == 2)
    controller.add_files([str(files[k]) for k in ("k1", "k2", "k3")], "gallery")
    wait(lambda: len(controller.case.exhibits("gallery")) == 3)
    wait(lambda: window.compare.loaded is not None)
    shot("02-intake")

    # -- the wrong detection fixed by hand ----------------------------------------
    case = controller.case
    patch = next(f for f in case.faces("K1") if f.face_index == 1)
    menu = window.exhibits.menu_for(window.exhibits.item_for(patch.label))
    menu.resize(menu.sizeHint())
    shot("03-false-detection-menu", menu)
    controller.reject_face(patch.label, "the mission patch on the suit, not a face")
    wait(lambda: not any(f.label == patch.label for f in case.faces()))
    shot("04-false-detection-rejected")
    # K3 (the scan turned sideways) has no face: place its five points by hand,
    # from the detector's points on the upright copy, turned the same way
    upright = FaceDetector.shared().detect(np.asarray(_rgb(files["k1"])))[0]
    width = _rgb(files["k1"]).shape[1]
    turned = [(y, width - 1 - x) for x, y in upright.landmarks5]
    dialog = window.place_face("K3")
    wait(lambda: dialog.ready)
    dialog.set_mode(POINTS)
    for x, y in turned:
        dialog.viewer.annotation_drawn.emit("point", [[float(x), float(y)]])
    dialog.resize(1280, 720)
    shot("05-missed-face-placed-by-hand", dialog)
    dialog.accept()
    wait(lambda: any(f.mark == "K3" for f in case.faces()))

    # -- 1:N for both probes ---------------------------------------------------------
    def ranked(probe: str) -> bool:
        from core.case import workflow

        rows = workflow.candidate_rows(case, probe, window.model)
        return len(rows) == len(workflow.role_faces(case, "gallery"))

    wait(lambda: ranked("Q1") and ranked("Q2"))
    tabs = window.compare.tabs
    tabs.setCurrentIndex(
        next(i for i in range(tabs.count()) if tabs.tabText(i).startswith("Candidates"))
    )
    window.compare.select("Q1", "probe")
    wait(lambda: window.compare.loaded.probe_label == "Q1")
    settle(1.5)
    shot("06-candidates-Q1")
    window.compare.select("Q2", "probe")
    wait(lambda: window.compare.loaded.probe_label == "Q2")
    settle(1.5)
    shot("07-candidates-Q2")
    tabs.setCurrentIndex(0)  # the score

    # -- explanation methods ---------------------------------------------------------
    window.compare.gallery_combo.setCurrentText("K1")
    window.compare.select("Q1", "probe")
    wait(
        lambda: (
            window.compare.loaded.probe_label == "Q1"
            and window.compare.loaded.gallery_label == "K1"
        )
    )

    run = driver.run_methods
    run({"fggb": {}, "gradcam": {}, "xssab": {}, "lime": {}})
    window.compare.select_explanation(controller.jobs[0].explanation_id)
    window.compare.kind_combo.setCurrentText("similarity")
    shot("08-map-similarity")
    window.compare.kind_combo.setCurrentText("combined")
    shot("09-map-combined")
    window.tabs.setCurrentWidget(window.grid)
    shot("10-all-methods")
    window.tabs.setCurrentWidget(window.layers)
    window.layers.start()
    wait(lambda: window.layers.result is not None)
    shot("11-layer-by-layer")
    window.tabs.setCurrentWidget(window.compare_page)

    # -- annotations ------------------------------------------------------------------
    controller.add_annotation(
        exhibit="Q1", shape="ellipse", points=[[150.0, 110.0], [205.0, 140.0]],
        label="left eye region", note="comparable despite the blocking",
        component="eyes",
    )  # fmt: skip
    window.side_tabs.setCurrentWidget(window.annotation_list)
    wait(lambda: bool(case.annotations()))
    shot("12-annotation-list")
    controller.delete_annotation(case.annotations()[0].id)
    shot("13-annotation-deleted-undo-hint")
    controller.undo_stack.undo()
    wait(lambda: bool(case.annotations()))
    window.side_tabs.setCurrentIndex(0)

    # -- conclusion -------------------------------------------------------------------
    controller.add_conclusion(
        "Q1 and K1 were compared following ACE-V. The features compared are listed "
        "in the annotations. (Walk-through text written by the examiner; the "
        "software never proposes an opinion.)"
    )
    window.tabs.setCurrentWidget(window.conclusion)
    shot("14-conclusion")

    # -- a signing identity and the signed export --------------------------------------
    identity_dialog = window.new_identity()
    identity_dialog.name.setText("J. Doe")
    identity_dialog.organisation.setText("Regional Forensic Lab")
    identity_dialog.email.setText("j.doe@example.org")
    identity_dialog.password.setText(PASSWORD)
    identity_dialog.repeat.setText(PASSWORD)
    made: list = []
    identity_dialog.identity_ready.connect(made.append)
    identity_dialog.ok_button.click()
    wait(lambda: bool(made))
    shot("15-signing-identity-made", identity_dialog)
    identity_dialog.close()
    window.ask_export_report()
    report = window.report_dialog
    report.path.setText(str(scratch / "report-2026-0318.pdf"))
    report.password.setText("not the password")
    report.buttons.button(report.buttons.StandardButton.Ok).click()
    wait(lambda: bool(report.problem.text()))
    shot("16-export-wrong-password", report)
    report.password.setText(PASSWORD)
    report.buttons.button(report.buttons.StandardButton.Ok).click()
    wait(lambda: window.report_done_dialog is not None, 900)
    done = window.report_done_dialog
    done.verify_button.click()
    settle(4)
    shot("17-export-done-verified", done)
    pdf = done.outcome.path
    done.close()
    window.tabs.setCurrentWidget(window.audit)
    shot("18-audit-trail")
    window.set_theme("dark")
    window.tabs.setCurrentWidget(window.compare_page)
    shot("19-dark-theme")
    window.set_theme("light")
    pages = out / "20-report-page"  # the cover, evidence, first comparison, method
    command = ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "4", str(pdf)]
    subprocess.run([*command, str(pages)], check=True)
    print("wrote", out / "20-report-page-*.png")
    window.close()


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/walkthrough"))
