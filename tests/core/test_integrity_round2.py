"""Second hostile review of case integrity v2 (issue 15).

1. False alarms in real use: the GUI driven offscreen through a whole examination,
   and every CLI command end to end, with ``verify`` after each step.
2. Bypasses of the binding: ways to change a bound fact that ``verify`` (and, where
   one exists, an anchor) then calls intact.
Each reproduced a finding of the review; they pass since it was fixed.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from case_tampering import copied_case, tamper, verify

from core.case.demo import create_demo_case
from core.case.store import Case, CaseError

ALARMS = ("not what the audit log", "altered outside", "removed outside", "damaged")


# ---- shared case --------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory, dlib_model) -> Path:
    folder = tmp_path_factory.mktemp("round2") / "case"
    case = create_demo_case(folder, model=dlib_model)
    try:
        case.add_conclusion("first words")
        assert case.verify().intact
    finally:
        case.close()
    return folder


@pytest.fixture
def folder(template, tmp_path) -> Path:
    return copied_case(template, tmp_path)


# ---- 2. bypasses ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_trigger_planted_while_the_case_is_open_is_not_laundered(folder):
    case = Case.open(folder)
    try:
        anchor = case.anchor()
        before = {c.id: c.decision for c in case.comparisons()}
        tamper(
            folder,
            "CREATE TRIGGER evil AFTER INSERT ON conclusions BEGIN "
            "UPDATE comparisons SET decision = 'accept'; END",
        )
        try:
            case.add_conclusion("moderate support")
        except CaseError:
            pass  # refusing is a correct answer
        tamper(folder, "DROP TRIGGER evil")  # the forger cleans up
        after = {c.id: c.decision for c in case.comparisons()}
    finally:
        case.close()
    assert "reject" in before.values()
    if after != before:  # the forgery took effect: verify must say so
        assert not verify(folder).intact
        assert not verify(folder, anchor).intact


@pytest.mark.slow
def test_a_rollback_stays_detected_after_the_case_is_opened(folder, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    with Case.open(folder) as case:
        case.add_conclusion("later words")
    shutil.copy2(old / "case.sqlite", folder / "case.sqlite")
    assert not verify(folder).intact  # detected as long as nobody opens it
    try:
        Case.open(folder).close()  # the examiner opens it (GUI, any CLI command)
    except CaseError:
        return  # refusing to open for writing is a correct answer
    assert not verify(folder).intact, "the rollback was forgotten by opening"


def test_an_emptied_log_with_a_lowered_version_is_not_laundered(folder):
    db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    triggers = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = 'audit'"
    ).fetchall()
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DELETE FROM audit")
    db.execute("DELETE FROM audit_head")
    db.execute("UPDATE comparisons SET decision = 'accept'")
    for _, sql in triggers:
        db.execute(sql)
    db.execute("PRAGMA user_version = 1")
    db.close()
    assert not verify(folder).intact  # named before anyone opens it
    try:
        Case.open(folder).close()
    except CaseError:
        return  # refused: correct
    assert not verify(folder).intact, "XFR's own upgrade completed the forgery"


# ---- 1. false alarms: the GUI through a whole examination ----------------------------
@pytest.fixture
def gui(qtbot, monkeypatch):
    """The main window, every error it shows recorded (no dialog blocks)."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QMessageBox

    from xfr_desktop.main_window import MainWindow
    from xfr_desktop.settings import Settings

    shown: list[str] = []
    for name in ("critical", "warning", "information", "question"):

        def record(parent, title, text, *args, _name=name, **kwargs):
            shown.append(f"{_name}: {title}: {text}")
            return QMessageBox.StandardButton.Ok

        monkeypatch.setattr(QMessageBox, name, record)
    window = MainWindow(device="cpu", settings=Settings())
    qtbot.addWidget(window)
    window.errors.show_dialogs = False
    window.errors.reported.connect(
        lambda report: shown.append(f"{report.title}: {report.message}")
    )
    window.show()
    qtbot.waitUntil(lambda: window.model is not None, timeout=120_000)
    window.compare.ask_annotation_details = False
    window.shown_errors = shown
    yield window
    window.close_case()


WAIT = 120_000


def idle(qtbot, window) -> None:
    """Every background task of the window finished."""
    runners = (
        *window.controller.runners,
        window._results_loader,
        window._reporter,
        window._verifier,
        window.layers.runner,
        window.channels.runner,
        window.channels.loader,
    )
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in runners), timeout=WAIT)


def check(qtbot, window, step: str) -> None:
    idle(qtbot, window)
    case = window.controller.case
    report = case.verify()
    assert report.intact, f"after {step}: {report.problems}"
    alarms = [s for s in window.shown_errors if any(a in s for a in ALARMS)]
    assert not alarms, f"after {step}: {alarms}"
    failed = [j.message for j in window.controller.jobs if j.state == "failed"]
    assert not failed, f"after {step}: {failed}"


@pytest.mark.dlib
@pytest.mark.slow
def test_a_whole_examination_in_the_gui_raises_no_false_alarm(
    qtbot, gui, tmp_path, astronaut_rgb, grace_hopper_path
):
    from PIL import Image
    from PySide6.QtCore import Qt

    from xfr_desktop.panels.channels_panel import CURRENT as CHANNELS_CURRENT

    window = gui
    window.open_demo()
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT)
    case = window.controller.case
    check(qtbot, window, "opening the demo")

    # intake: a probe and two gallery images (detection runs on intake)
    probe = tmp_path / "probe.png"
    Image.fromarray(astronaut_rgb[:, ::-1].copy()).save(probe)
    with qtbot.waitSignal(window.controller.intake_finished, timeout=WAIT):
        window.controller.add_files([str(probe)], "probe")
    check(qtbot, window, "adding a probe")
    gallery = tmp_path / "gallery.png"
    Image.fromarray(astronaut_rgb[20:, 10:].copy()).save(gallery)
    other = tmp_path / "other.jpg"
    Image.open(grace_hopper_path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    with qtbot.waitSignal(window.controller.intake_finished, timeout=WAIT):
        window.controller.add_files([str(gallery), str(other)], "gallery")
    check(qtbot, window, "adding gallery files")
    assert [e.mark for e in case.exhibits()][-3:] == ["Q2", "K3", "K4"]

    # landmark edit (drag) while the ranking of the new faces may still run
    window.compare.select("K1", "gallery")
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.gallery_label == "K1"
        ),
        timeout=WAIT,
    )
    moved = window.compare.loaded.faces[0].landmarks5 + np.array([2.0, 1.0])
    window.compare.edit_landmarks.setChecked(True)
    window.compare.viewers[0].landmarks_edited.emit(moved)
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.faces[0].source == "manual"
        ),
        timeout=WAIT,
    )
    moved = window.compare.loaded.faces[1].landmarks5 - np.array([1.0, 1.0])
    window.compare.viewers[1].landmarks_edited.emit(moved)  # the gallery side too
    window.compare.edit_landmarks.setChecked(False)
    check(qtbot, window, "editing landmarks")

    # several methods at once (a worker thread) while annotations are drawn, moved,
    # undone and redone on the GUI thread
    window.explain.set_checked(["gradient", "gradcam", "xssab"])
    window.explain.run_button.click()
    viewer = window.compare.viewers[0]
    viewer.annotation_drawn.emit("rectangle", [[100.0, 40.0], [140.0, 90.0]])
    viewer.annotation_drawn.emit("point", [[120.0, 60.0]])
    first, second = case.annotations(exhibit="Q1")
    window.compare.annotation_moved.emit(first.id, [[101.0, 41.0], [141.0, 91.0]])
    for _ in range(3):
        window.undo_action.trigger()
    for _ in range(2):
        window.redo_action.trigger()
    window.compare.annotation_delete_requested.emit(second.id)
    window.undo_action.trigger()  # the deletion undone: added again
    qtbot.waitUntil(
        lambda: (
            len(window.controller.jobs) == 3
            and all(
                j.state in ("done", "failed", "cached") for j in window.controller.jobs
            )
        ),
        timeout=WAIT,
    )
    check(qtbot, window, "explaining while annotating")

    # the same methods again: stored explanations are reused, not recomputed
    window.explain.run_button.click()
    try:
        qtbot.waitUntil(
            lambda: all(
                j.state in ("done", "failed", "cached") for j in window.controller.jobs
            ),
            timeout=20000,
        )
    except Exception:
        jobs = [(j.method, j.state, j.message) for j in window.controller.jobs]
        raise AssertionError(jobs) from None
    check(qtbot, window, "reusing stored explanations")

    # layer by layer, channels (reads the case's faces in a worker)
    window.layers.params = {"samples": 16}
    with qtbot.waitSignal(window.layers.runner.result, timeout=WAIT):
        window.layers.compute.click()
    window.channels.load_model(CHANNELS_CURRENT)
    qtbot.waitUntil(lambda: window.channels.layer.count() > 0, timeout=WAIT)
    window.channels.set_folder(None)
    window.channels.start()
    viewer.annotation_drawn.emit("point", [[90.0, 50.0]])  # meanwhile a write
    qtbot.waitUntil(lambda: window.channels.report is not None, timeout=WAIT)
    check(qtbot, window, "layer-by-layer and channels")

    # conclusions
    window.conclusion.set_text("Moderate support for the same source.")
    window.conclusion.save_button.click()
    window.controller.add_conclusion("Revised: strong support.")
    check(qtbot, window, "writing conclusions")

    # the report through its dialog
    window.ask_export_report()
    dialog = window.report_dialog
    out = tmp_path / "report.pdf"
    dialog.path.setText(str(out))
    for i in range(dialog.comparisons.count()):
        dialog.comparisons.item(i).setCheckState(Qt.CheckState.Checked)
    with qtbot.waitSignal(window.report_exported, timeout=WAIT):
        dialog.accept()
    check(qtbot, window, "exporting the report")
    with qtbot.waitSignal(window.report_verified, timeout=WAIT) as verified:
        window.verify_report_file(str(out))
    assert verified.args[0].case_checked and not verified.args[0].evidence_problems

    # verify from the Audit trail tab
    with qtbot.waitSignal(window._verifier.result, timeout=WAIT):
        window.audit.verify_button.click()
    assert "intact" in window.audit.verify_label.text().lower()
    check(qtbot, window, "verifying from the audit tab")

    # close, reopen, keep working
    folder = case.folder
    window.close_case()
    assert verify(folder).intact
    window.open_case(str(folder))
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT)
    window.compare.select("K4", "gallery")
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.gallery_label == "K4"
        ),
        timeout=WAIT,
    )
    window.compare.viewers[1].annotation_drawn.emit("point", [[50.0, 50.0]])
    window.undo_action.trigger()
    check(qtbot, window, "reopening and working on")
    assert not window.shown_errors, window.shown_errors


# ---- 1. false alarms: the CLI and maintenance ----------------------------------------
def test_importing_a_healthy_archive_gives_no_warning(folder, tmp_path, capsys):
    from core.cli import main as xfr

    archive = tmp_path / "case.zip"
    assert xfr(["case", "export", str(folder), str(archive)]) == 0
    capsys.readouterr()
    assert xfr(["case", "import", str(archive), str(tmp_path / "imported")]) == 0
    printed = capsys.readouterr()
    assert verify(tmp_path / "imported").intact
    assert "warning" not in (printed.out + printed.err).lower(), printed


def test_vacuum_and_analyze_by_an_sqlite_tool_are_no_tampering(folder):
    tamper(folder, "VACUUM", "ANALYZE")
    report = verify(folder)
    assert report.intact, report.problems
    with Case.open(folder) as case:  # still writable; the next change is bound
        case.add_conclusion("after maintenance")
        assert case.verify().intact


def test_every_write_path_is_refused_on_a_tampered_embedding(folder, dlib_model):
    """INSERT OR REPLACE deletes the row it replaces: the prior-row check must see
    it (recursive triggers), so a poisoned cached vector is never re-bound."""
    tamper(folder, "UPDATE embeddings SET vector = zeroblob(length(vector))")
    with Case.open(folder) as case:
        face = case.faces()[0]
        with pytest.raises(CaseError, match="altered outside"):
            case.store_embeddings(
                {face.id: np.ones(128, "f4")},
                dlib_model.model_id,
                dlib_model.weights_sha256,
            )
    assert not verify(folder).intact
