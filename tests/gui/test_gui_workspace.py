"""The examiner's workstation end to end, in real (offscreen) Qt with the real
model and real case files: demo case, intake by drop, explanations and overlays,
annotations with undo/redo, cancellation, reopening."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

pytest.importorskip("PySide6")

from core.case.store import Case
from xfr_desktop.main_window import MainWindow
from xfr_desktop.masking import attach_masking
from xfr_desktop.settings import Settings

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
WAIT_MS = 120_000


@pytest.fixture
def window(qtbot):
    window = MainWindow(device="cpu", settings=Settings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model is not None, timeout=WAIT_MS)
    window.compare.ask_annotation_details = False
    return window


def open_demo(qtbot, window: MainWindow) -> Case:
    """The demo case: the plain demo has sequential unmasking off, so its pairs'
    results show at once (the masking itself is tested in test_gui_masking)."""
    attach_masking(window)
    window.open_demo()
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    assert window.controller.case is not None
    assert not window.controller.case.examination().settings().sequential_unmasking
    return window.controller.case


def wait_for_pair(qtbot, window: MainWindow, gallery: str) -> None:
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.gallery_label == gallery
        ),
        timeout=WAIT_MS,
    )


def drag_probe_landmarks(qtbot, window: MainWindow, offset) -> None:
    """Move the probe's five landmarks by ``offset`` and wait for the new face."""
    moved = window.compare.loaded.faces[0].landmarks5 + np.array(offset)
    window.compare.edit_landmarks.setChecked(True)
    window.compare.viewers[0].landmarks_edited.emit(moved)
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.faces[0].source == "manual"
        ),
        timeout=WAIT_MS,
    )


def run_methods(qtbot, window: MainWindow, methods: list[str], **params) -> None:
    window.explain.set_checked(methods)
    before = len(window.controller.jobs)
    with qtbot.waitSignals(
        [window.controller.explanations_changed] * len(methods), timeout=WAIT_MS
    ):
        if params:
            window.controller.queue_explanations(
                window.compare.loaded.probe_label,
                window.compare.loaded.gallery_label,
                dict.fromkeys(methods, params),
                0,
            )
        else:
            window.explain.run_button.click()
    assert [j.state for j in window.controller.jobs[before:]] == ["done"] * len(methods)


@pytest.mark.slow
@pytest.mark.dlib
def test_demo_case_shows_an_accept_and_a_reject_explained(qtbot, window):
    case = open_demo(qtbot, window)
    assert window.pages.currentWidget() is window.workspace
    assert window.exhibits.tree.topLevelItemCount() == 2
    qtbot.waitUntil(lambda: window.compare.candidates.rowCount() >= 2, timeout=WAIT_MS)
    assert window.compare.candidates.labels()[0] == "K1"
    wait_for_pair(qtbot, window, "K1")
    assert "same person (accept)" in window.compare.score.text()
    assert "Likelihood ratio" in window.compare.score.text()  # shipped calibration

    run_methods(qtbot, window, ["fggb"])
    probe_view = window.compare.viewers[0]
    qtbot.waitUntil(lambda: probe_view.rendered_overlay_rgba() is not None)
    rgba = probe_view.rendered_overlay_rgba()
    assert rgba[..., 3].max() > 0  # the map is drawn on the evidence
    face = window.compare.loaded.faces[0]
    x = (face.bbox[0] + face.bbox[2]) / 2
    y = (face.bbox[1] + face.bbox[3]) / 2
    assert probe_view.value_at(x, y) is not None  # drawn under the face centre
    raw = window.compare.raw_value(0, x, y)  # the read-out gives the stored value
    evidence = window.compare.current_result().probe.evidence["similarity"]
    column, row = int(x) - evidence.origin[0], int(y) - evidence.origin[1]
    assert raw == pytest.approx(float(evidence.values[row, column]))
    window.compare._on_hover(0, x, y, None)
    assert f"{raw:.4g}" in window.compare.hover.text()
    window.compare.show_overlay.setChecked(False)
    assert not probe_view.overlay_visible
    window.compare.show_overlay.setChecked(True)
    assert probe_view.overlay_visible
    window.compare.kind_combo.setCurrentText("dissimilarity")
    assert probe_view.rendered_overlay_rgba() is not None
    assert window.grid.cells  # the all-methods grid shows it too

    window.compare.select("K2", "gallery")  # Grace Hopper: a different person
    wait_for_pair(qtbot, window, "K2")
    assert "different people (reject)" in window.compare.score.text()
    run_methods(qtbot, window, ["gradcam"])
    assert [r.method_id for r in window.compare.results.values()] == ["gradcam"]

    window.layers.params = {"samples": 24}
    with qtbot.waitSignal(window.layers.runner.result, timeout=WAIT_MS):
        window.layers.compute.click()
    taps = window.model.layer_taps()
    assert window.layers.slider.maximum() == len(taps) - 1
    window.layers.slider.setValue(0)
    assert taps[0].name in window.layers.layer_label.text()
    assert case.verify().intact


@pytest.mark.slow
@pytest.mark.dlib
def test_ddfv_runs_like_any_method_and_a_missing_reconstructor_is_named(
    qtbot, window, tmp_path
):
    case = open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    run_methods(qtbot, window, ["ddfv"], ig_steps=4)  # the shipped reconstructor
    result = window.compare.current_result()
    assert result.method_id == "ddfv"
    assert any("reconstructor" in note for note in result.notes)
    assert window.compare.viewers[0].rendered_overlay_rgba() is not None

    missing = tmp_path / "missing.pt"
    window.controller.queue_explanations(
        "Q1", "K1", {"ddfv": {"reconstructor": str(missing)}}, 0
    )
    qtbot.waitUntil(
        lambda: window.controller.jobs[-1].state == "failed", timeout=WAIT_MS
    )
    message = window.controller.jobs[-1].message
    assert "missing.pt" in message and "reconstructor file not found" in message
    assert case.verify().intact


@pytest.mark.slow
@pytest.mark.dlib
def test_drop_adds_images_and_names_the_bad_one(qtbot, window, tmp_path, astronaut_rgb):
    case = open_demo(qtbot, window)
    good = tmp_path / "mirrored.png"
    Image.fromarray(astronaut_rgb[:, ::-1]).save(good)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with qtbot.waitSignal(window.errors.reported, timeout=WAIT_MS) as reported:
        window.exhibits.handle_drop([str(good), str(bad)], "gallery")
    shown = reported.args[0]  # the examiner's file, not a fault: a warning naming it
    assert shown.level == "warning" and shown.title == "Some files were not added"
    assert f"{bad}: " in shown.message and "fault" not in shown.message
    marks = [e.mark for e in case.exhibits()]
    assert marks == ["Q1", "K1", "K2", "K3"]
    assert case.exhibit("K3").original_name == "mirrored.png"
    qtbot.waitUntil(
        lambda: (
            "K3"
            in [
                window.compare.gallery_combo.itemText(i)
                for i in range(window.compare.gallery_combo.count())
            ]
        ),
        timeout=WAIT_MS,
    )


@pytest.mark.slow
@pytest.mark.dlib
def test_annotation_undo_redo_goes_to_the_case_file(qtbot, window):
    case = open_demo(qtbot, window)
    viewer = window.compare.viewers[0]
    viewer.annotation_drawn.emit("rectangle", [[100.0, 40.0], [140.0, 90.0]])
    (stored,) = case.annotations(exhibit="Q1")
    assert stored.shape == "rectangle" and stored.points[1] == (140.0, 90.0)
    with Case.open(case.folder, read_only=True) as reader:  # really on disk
        assert len(reader.annotations(exhibit="Q1")) == 1
    assert [a["id"] for a in viewer.annotations()] == [stored.id]
    window.undo_action.trigger()
    assert case.annotations(exhibit="Q1") == []
    assert viewer.annotations() == []
    window.redo_action.trigger()
    (again,) = case.annotations(exhibit="Q1")
    assert again.points == stored.points
    window.compare.annotation_delete_requested.emit(again.id)
    assert case.annotations(exhibit="Q1") == []
    actions = [e.action for e in case.audit_log() if e.action.startswith("annot")]
    assert actions == [
        "annotation.add",
        "annotation.delete",
        "annotation.add",
        "annotation.delete",
    ]


@pytest.mark.slow
@pytest.mark.dlib
def test_cancelling_a_long_lime_run_leaves_the_ui_usable(qtbot, window):
    open_demo(qtbot, window)
    controller = window.controller
    controller.queue_explanations("Q1", "K1", {"lime": {"samples": 50_000}}, 0)
    qtbot.waitUntil(
        lambda: controller.jobs[-1].state == "running" and controller.jobs[-1].done > 0,
        timeout=WAIT_MS,
    )
    assert window.explain.cancel_button.isEnabled()
    window.explain.cancel_button.click()
    qtbot.waitUntil(lambda: controller.jobs[-1].state == "cancelled", timeout=WAIT_MS)
    assert controller.jobs[-1].done < 50_000
    run_methods(qtbot, window, ["xssab"])  # the queue runs again
    assert not window.explain.cancel_button.isEnabled()


@pytest.mark.slow
@pytest.mark.dlib
def test_close_and_reopen_keeps_everything(qtbot, window):
    case = open_demo(qtbot, window)
    folder = case.folder
    run_methods(qtbot, window, ["gradient"])
    window.compare.viewers[1].annotation_drawn.emit("point", [[200.0, 120.0]])
    window.controller.add_conclusion("Examiner's own words.")
    window.close_case()
    assert window.pages.currentWidget() is window.start_page
    assert window.compare.method_combo.count() == 0  # nothing of the closed case
    assert str(Path(folder).resolve()) in [
        str(Path(p).resolve()) for p in window.settings.recent_cases
    ]
    window.open_case(str(folder))
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare.method_combo.count() == 1, timeout=WAIT_MS)
    reopened = window.controller.case
    assert len(reopened.annotations(exhibit="K1")) == 1
    assert [c.text for c in reopened.conclusions()] == ["Examiner's own words."]
    assert window.conclusion.isEnabled()
    assert np.isfinite(window.compare.current_result().probe.combined_map).all()


@pytest.mark.dlib
def test_dark_theme_and_about(qtbot, window):
    from PySide6.QtWidgets import QApplication

    window.dark_action.trigger()
    assert QApplication.palette().window().color().lightness() < 100
    window.dark_action.trigger()
    assert QApplication.palette().window().color().lightness() > 150
    qtbot.waitUntil(lambda: window.model is not None)
    assert window.model.weights_sha256 in window.about_html()


@pytest.mark.slow
@pytest.mark.dlib
def test_the_demo_case_is_reused(qtbot, window):
    first = open_demo(qtbot, window)
    folder = first.folder
    window.close_case()
    window.open_demo()
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    assert window.controller.case.folder == folder


@pytest.mark.slow
@pytest.mark.dlib
def test_dragged_landmarks_realign_the_chip_and_are_recorded(qtbot, window):
    case = open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    before = window.compare.loaded.pair.probe.chip.copy()
    drag_probe_landmarks(qtbot, window, [3.0, 2.0])
    assert not np.array_equal(window.compare.loaded.pair.probe.chip, before)
    assert case.face("Q1").source == "manual"
    assert [e.action for e in case.audit_log()].count("faces.correct") == 1
    qtbot.waitUntil(lambda: window.compare.candidates.rowCount() >= 2, timeout=WAIT_MS)


@pytest.mark.slow
@pytest.mark.dlib
def test_export_and_verify_a_report_from_the_gui(qtbot, window, tmp_path):
    from core.report.api import Signer
    from core.report.signing import create_identity, export_certificate

    case = open_demo(qtbot, window)
    create_identity("Examiner Éowyn", tmp_path / "me.p12", "password-1")
    export_certificate(tmp_path / "me.p12", "password-1", tmp_path / "me.pem")
    report = tmp_path / "report.pdf"
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS) as exported:
        window.export_report(str(report), Signer(tmp_path / "me.p12", "password-1"))
    assert report.is_file() and exported.args[0].signed_by == ("Examiner Éowyn",)
    assert case.audit_log()[-1].action == "report.generate"
    with qtbot.waitSignal(window.report_verified, timeout=WAIT_MS) as verified:
        window.verify_report_file(str(report), [str(tmp_path / "me.pem")])
    check = verified.args[0]
    assert check.ok and check.case_checked and not check.evidence_problems
    for box in window.findChildren(QMessageBox):
        box.close()


@pytest.mark.slow
@pytest.mark.dlib
def test_check_faithfulness_shows_the_verdict_beside_each_map(qtbot, window):
    from core.case.workflow import stored_faithfulness
    from core.metrics.pair_faithfulness import (
        VERDICTS,
        FaithfulnessSettings,
        verdict_sentence,
    )

    case = open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    compare = window.compare
    # the smallest check: a 4 x 4 grid, two steps, the 30 random orders it needs
    compare.faithfulness_settings = FaithfulnessSettings(grid=4, step_cells=8)
    run_methods(qtbot, window, ["gradient_input"])  # has a dissimilarity map
    explanation_id = compare.method_combo.currentData()
    qtbot.waitUntil(lambda: explanation_id in compare.checks, timeout=WAIT_MS)
    assert compare.faithfulness[0].verdict.text() == "Faithfulness not checked yet."
    with qtbot.waitSignal(compare._checker.result, timeout=WAIT_MS):
        compare.check_faithfulness.click()
    check = stored_faithfulness(case, explanation_id)  # kept in the case
    assert check is not None and check.method_id == "gradient_input"
    assert [e.action for e in case.audit_log()][-1] == "explanation.faithfulness"
    for plot in compare.faithfulness:
        verdict = check.get(plot.side, "similarity")
        assert plot.verdict.text() == verdict_sentence(verdict)
        assert verdict.verdict in VERDICTS
        assert set(plot.curves) == {
            "this map",
            "random orders (mean)",
            "face-centre map",
        }
        assert len(plot.curves["this map"][1]) == 3  # 0, 8 and 16 cells removed
    compare.kind_combo.setCurrentText("dissimilarity")  # the other map's verdict
    assert compare.faithfulness[1].verdict.text() == verdict_sentence(
        check.get("gallery", "dissimilarity")
    )
    qtbot.waitUntil(lambda: bool(window.grid.verdicts), timeout=WAIT_MS)
    window.grid.kind.setCurrentText("dissimilarity")
    probe_verdict = check.get("probe", "dissimilarity")  # short, grounds on hover
    assert probe_verdict.verdict in window.grid.verdicts[0].text()
    assert window.grid.verdicts[0].toolTip() == verdict_sentence(probe_verdict)

    # shown again later: read from the case, not measured again
    checks_started = compare._checker.generation
    compare.select("K2", "gallery")
    wait_for_pair(qtbot, window, "K2")
    compare.select("K1", "gallery")
    wait_for_pair(qtbot, window, "K1")
    qtbot.waitUntil(
        lambda: (
            compare.faithfulness[0].verdict.text()
            == verdict_sentence(check.get("probe", "dissimilarity"))
        ),
        timeout=WAIT_MS,
    )
    assert compare._checker.generation == checks_started


@pytest.mark.slow
@pytest.mark.dlib
def test_correspondence_links_and_components_table_are_shown(qtbot, window):
    open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    compare = window.compare
    run_methods(qtbot, window, ["correspondence", "components"])
    shown = {}
    for index in range(compare.method_combo.count()):
        compare.method_combo.setCurrentIndex(index)
        result = compare.current_result()
        shown[result.method_id] = (  # shown in the "Method details" tab
            not compare.links_view.isHidden(),
            not compare.components_view.isHidden(),
            compare.components_view.toPlainText(),
            compare.links_view.pixmap().isNull(),
        )
    links_visible, table_visible, _, no_figure = shown["correspondence"]
    assert (links_visible, table_visible, no_figure) == (True, False, False)
    links_visible, table_visible, table, _ = shown["components"]
    assert (links_visible, table_visible) == (False, True)
    assert compare.tabs.isTabEnabled(compare.details_tab)
    assert "Nose" in table and "hidden in both" in table


@pytest.mark.slow
@pytest.mark.dlib
def test_a_sampled_map_shows_its_stability_and_uncertainty(qtbot, window):
    from core.explain.stability import stability_sentence

    open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    compare = window.compare
    run_methods(qtbot, window, ["smoothgrad"], samples=4, max_samples=8)
    result = compare.current_result()
    assert result.method_id == "smoothgrad"
    for maps in result.images:
        assert stability_sentence(result.details, maps.side) in (
            compare.stability_label.text()
        )
    compare.kind_combo.setCurrentText("uncertainty")
    shown = compare.viewers[0]._overlay_values
    assert shown is not None and np.nanmax(shown) > 0  # the standard error, warped
    assert np.nanmin(shown) >= 0
    assert "not a map of its own" in compare.faithfulness[0].verdict.text()
    run_methods(qtbot, window, ["gradcam"])  # deterministic: nothing to show
    assert compare.current_result().method_id == "gradcam"
    assert compare.stability_label.text() == ""
    assert compare.viewers[0]._overlay_values is None


def test_controls_are_not_offered_as_evidence_unless_asked_for(qtbot):
    from xfr_desktop.panels.explain_panel import ExplainPanel

    panel = ExplainPanel()
    qtbot.addWidget(panel)
    assert "prior" in panel.infos and panel.infos["prior"].control
    assert "prior" not in panel.offered_methods()
    assert "gradient" in panel.offered_methods()
    panel.set_checked(["prior", "gradient"])
    assert panel.checked_methods() == ["gradient"]  # a hidden control never runs
    panel.show_controls.setChecked(True)
    assert "prior" in panel.offered_methods()
    assert set(panel.checked_methods()) == {"prior", "gradient"}


@pytest.mark.slow
@pytest.mark.dlib
def test_report_dialog_offers_the_viewed_comparisons_and_marks_superseded_ones(
    qtbot, window, tmp_path
):
    from PySide6.QtCore import Qt

    from core.report.api import read_manifest
    from xfr_desktop.dialogs.report_dialog import comparison_items

    case = open_demo(qtbot, window)
    wait_for_pair(qtbot, window, "K1")
    old_k1 = window.compare.loaded.comparison
    drag_probe_landmarks(qtbot, window, [3.0, 2.0])
    new_k1 = window.compare.loaded.comparison

    def on_current_faces() -> set[int]:
        current = {f.id for f in case.faces()}
        return {
            c.id
            for c in case.comparisons()
            if c.probe_face_id in current and c.gallery_face_id in current
        }

    gallery = [f for f in case.faces() if f.mark.startswith("K")]
    # the corrected probe is ranked again against every gallery face
    qtbot.waitUntil(lambda: len(on_current_faces()) == len(gallery), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)
    on_current = on_current_faces()
    superseded = {c.id for c in case.comparisons()} - on_current
    assert old_k1.id in superseded and new_k1.id in on_current and len(on_current) >= 2
    assert {old_k1.id, new_k1.id} <= window.controller.viewed_comparisons
    # none viewed: every current comparison is checked, superseded ones never
    fallback = {i.comparison_id: i.checked for i in comparison_items(case, set())}
    assert {cid for cid, checked in fallback.items() if checked} == on_current

    window.ask_export_report()
    dialog = window.report_dialog
    assert dialog is not None and dialog.isVisible()
    rows = {
        dialog.comparisons.item(i).data(
            Qt.ItemDataRole.UserRole
        ): dialog.comparisons.item(i)
        for i in range(dialog.comparisons.count())
    }
    assert set(rows) == {c.id for c in case.comparisons()}
    checked = {
        cid for cid, row in rows.items() if row.checkState() == Qt.CheckState.Checked
    }
    assert checked == {new_k1.id}  # the one viewed on current faces only
    for cid in superseded:
        assert "SUPERSEDED" in rows[cid].text()
    assert re.fullmatch(r"Q1 × K1 — (accept|reject), LR \S+", rows[new_k1.id].text())
    assert "SUPERSEDED" not in rows[new_k1.id].text()
    assert not dialog.password.isEnabled()  # no identity: unsigned

    rows[old_k1.id].setCheckState(Qt.CheckState.Checked)  # for the record
    out = tmp_path / "chosen.pdf"
    dialog.path.setText(str(out))
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS) as exported:
        dialog.accept()
    assert exported.args[0].path == out
    entries = {e["id"]: e for e in read_manifest(out)["comparisons"]}
    assert set(entries) == {new_k1.id, old_k1.id}
    assert entries[old_k1.id]["superseded"] and not entries[new_k1.id]["superseded"]


@pytest.mark.slow
@pytest.mark.dlib
def test_a_locked_case_is_offered_read_only(qtbot, window, tmp_path, monkeypatch):
    """Open in another process/window: the window offers a read-only look."""
    from core.case.demo import create_demo_case

    asked = []

    def answer(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Open

    monkeypatch.setattr(QMessageBox, "question", answer)
    with create_demo_case(tmp_path / "locked", model=window.model) as elsewhere:
        window.open_case(str(elsewhere.folder))
        qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
        case = window.controller.case
        assert case.read_only and "open in another window" in asked[0]
        assert "(read-only)" in window.windowTitle()
        assert not window.conclusion.save_button.isEnabled()
        assert not window.exhibits.add_probe.isEnabled()
        assert not window.report_action.isEnabled()
        assert case.verify().intact
        window.close_case()


@pytest.mark.dlib
def test_entries_name_the_case_examiner_not_the_login(qtbot, window, tmp_path):
    from core.case.store import login_name

    window.controller.new_case(tmp_path / "new", "2026-7", "Dr. A. Examiner", "", "")
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    window.controller.add_conclusion("Own words.")
    entries = window.controller.case.audit_log()
    assert {e.user for e in entries} == {"Dr. A. Examiner"}
    assert {e.login for e in entries} == {login_name()}
    window.close_case()


@pytest.mark.slow
@pytest.mark.dlib
@pytest.mark.parametrize(
    ("error", "title", "words"),
    [
        (OSError(28, "No space left on device", "REPORT"), "Disk full", "disk full"),
        (PermissionError(13, "Permission denied", "REPORT"), "Cannot open file", ""),
    ],
    ids=["disk-full", "permission-denied"],
)
def test_a_failing_report_says_which_file_and_why_not_internal_error(
    qtbot, window, tmp_path, monkeypatch, error, title, words
):
    import xfr_desktop.main_window

    open_demo(qtbot, window)
    report = tmp_path / "report.pdf"
    error.filename = str(report)

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(xfr_desktop.main_window, "generate_report", fails)
    with qtbot.waitSignal(window.errors.reported, timeout=WAIT_MS) as reported:
        window.export_report(str(report))
    shown = reported.args[0]
    assert shown.title == title
    assert "fault" not in shown.message and "Internal" not in shown.title
    line = shown.message.splitlines()[-1]
    assert line.startswith(f"{report}: ") and words in line
    assert not report.exists()
    for box in window.findChildren(QMessageBox):
        box.close()
