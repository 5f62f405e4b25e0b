"""Faces under the examiner's control in the window (issue 18 item 1): reject a
false detection, restore it, reset a corrected face, place a face the detector
missed through the face dialog, undo and redo each step, and the question asked
before a change leaves explained comparisons behind.

A tiny registered model and faces set directly in the case (no dlib), except for
the box prediction, which needs dlib's shape predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")

from core.case import workflow
from core.case.store import Case
from core.faces.detect import LANDMARK5_NAMES, Face
from tests.gui.tiny_case import WAIT_MS, make_window, tiny_model_class, tiny_registry
from xfr_desktop.dialogs.face_dialog import BOX, POINTS, FaceDialog
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels import exhibits_panel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
POINTS5 = np.array([[130, 80], [110, 80], [70, 80], [90, 80], [100, 120]], float)
TinyModel = tiny_model_class(
    "tiny-faces", "cosine", 0.5, name="Tiny faces model", weights=b"tiny faces weights"
)


def detected(shift: float = 0.0) -> Face:
    points = POINTS5 + shift
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    return Face((left, top, right, bottom), points, None, 1.0, "hog")


def make_case(folder: Path) -> Path:
    """Q1 (a face) against K1 (a face and a false detection K1#1) and K2 (none)."""
    rng = np.random.default_rng(18)
    files = []
    for name in ("q1", "k1", "k2"):
        path = folder / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (200, 240, 3), np.uint8)).save(path)
        files.append(path)
    with Case.create(
        folder / "case", "2026-0018", "A. Examiner", sequential_unmasking=False
    ) as case:
        case.add_exhibits([files[0]], "probe")
        case.add_exhibits(files[1:], "gallery")
        case.set_faces("Q1", [detected()], detector="hog")
        case.set_faces("K1", [detected(2.0), detected(40.0)], detector="hog")
    return folder / "case"


def ranked(window: MainWindow, gallery: list[str]) -> bool:
    case, model = window.controller.case, window.model
    if case is None or window.controller._ranker.is_busy():
        return False
    rows = workflow.candidate_rows(case, "Q1", model)
    return sorted(r.gallery_label for r in rows) == sorted(gallery)


@pytest.fixture
def window(qtbot, tmp_path):
    models = tiny_registry(TinyModel)
    window = make_window(qtbot, models, make_case(tmp_path), show_dialogs=False)
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1"]), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    return window


def combo_items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def action(menu, text: str):
    return next(a for a in menu.actions() if a.text() == text)


def current(case: Case, label: str):
    """The current record of ``label``, a rejected one included."""
    (record,) = [f for f in case.face_history(label) if not f.superseded]
    return record


def current_record(case: Case, label: str) -> int:
    return current(case, label).id


def last_face_step(case: Case):
    """The newest audit entry of a face step (rankings add their own entries)."""
    return [e for e in case.audit_log() if e.action.startswith("faces.")][-1]


# ---- reject, restore -------------------------------------------------------------
def test_reject_a_false_detection_then_restore_it(qtbot, window, monkeypatch):
    case, panel = window.controller.case, window.exhibits
    assert "K1#1" in combo_items(window.compare.gallery_combo)
    item = panel.item_for("K1#1", exhibits_panel.FACE)
    assert item is not None and "detected (hog)" in item.text(0)
    menu = panel.menu_for(item)
    assert [a.text() for a in menu.actions() if a.text()] == [
        exhibits_panel.CORRECT,
        exhibits_panel.REJECT,
        exhibits_panel.RESET,
        exhibits_panel.PLACE,
    ]
    assert not action(menu, exhibits_panel.RESET).isEnabled()  # the detected face
    monkeypatch.setattr(panel, "ask_reason", lambda label: "the mission patch")
    action(menu, exhibits_panel.REJECT).trigger()

    assert [f.label for f in case.rejected_faces()] == ["K1#1"]
    entry = last_face_step(case)
    assert entry.action == "faces.reject"
    assert entry.details["face"] == "K1#1"
    assert entry.details["reason"] == "the mission patch"
    assert "K1#1" not in combo_items(window.compare.gallery_combo)
    qtbot.waitUntil(lambda: ranked(window, ["K1"]), timeout=WAIT_MS)
    rejected = panel.item_for("K1#1", exhibits_panel.REJECTED)
    assert rejected.text(0) == "face K1#1: rejected\n(the mission patch)"
    assert window.controller.undo_stack.undoText() == "reject face K1#1"

    menu = panel.menu_for(rejected)
    assert [a.text() for a in menu.actions()] == [exhibits_panel.RESTORE]
    action(menu, exhibits_panel.RESTORE).trigger()
    assert case.rejected_faces() == []
    assert last_face_step(case).action == "faces.revert"
    assert "K1#1" in combo_items(window.compare.gallery_combo)
    stack = window.controller.undo_stack
    assert stack.undoText() == "restore face K1#1"
    stack.undo()  # undoing the restore rejects it again
    assert [f.label for f in case.rejected_faces()] == ["K1#1"]
    stack.redo()
    assert case.rejected_faces() == []
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1"]), timeout=WAIT_MS)


def test_undo_and_redo_a_rejection(qtbot, window):
    case, stack = window.controller.case, window.controller.undo_stack
    before = current_record(case, "K1#1")
    window.controller.reject_face("K1#1", "not a face")
    rejected = current_record(case, "K1#1")
    assert current(case, "K1#1").rejected
    stack.undo()
    assert not current(case, "K1#1").rejected
    # the record from before is current again (not a copy): its comparisons too
    assert current_record(case, "K1#1") == before != rejected
    assert "K1#1" in combo_items(window.compare.gallery_combo)
    stack.redo()
    assert [f.label for f in case.rejected_faces()] == ["K1#1"]
    assert "K1#1" not in combo_items(window.compare.gallery_combo)
    face_steps = [e.action for e in case.audit_log() if e.action.startswith("faces.")]
    assert face_steps[-3:] == [
        "faces.reject",
        "faces.revert",
        "faces.revert",
    ]
    qtbot.waitUntil(lambda: ranked(window, ["K1"]), timeout=WAIT_MS)


# ---- landmark drag, reset, undo --------------------------------------------------
def test_a_landmark_drag_is_undoable_and_reset_returns_detected(qtbot, window):
    case, stack = window.controller.case, window.controller.undo_stack
    detected_points = case.face("K1").landmarks5.copy()
    moved = detected_points + np.array([[3, 0], [0, 0], [0, 0], [0, 0], [0, 2]])
    window._on_landmarks_corrected("K1", moved)
    assert case.face("K1").source == "manual"
    np.testing.assert_allclose(case.face("K1").landmarks5, moved)
    assert stack.undoText() == "move the points of K1"
    stack.undo()
    np.testing.assert_allclose(case.face("K1").landmarks5, detected_points)
    assert case.face("K1").source == "hog"
    stack.redo()
    np.testing.assert_allclose(case.face("K1").landmarks5, moved)

    item = window.exhibits.item_for("K1", exhibits_panel.FACE)
    assert "placed by hand" in item.text(0)
    menu = window.exhibits.menu_for(item)
    assert action(menu, exhibits_panel.RESET).isEnabled()
    action(menu, exhibits_panel.RESET).trigger()
    np.testing.assert_allclose(case.face("K1").landmarks5, detected_points)
    assert last_face_step(case).details["why"] == "reset to detected"
    assert stack.undoText() == "reset face K1 to the detected one"
    stack.undo()
    np.testing.assert_allclose(case.face("K1").landmarks5, moved)
    stack.redo()
    assert case.face("K1").source == "hog"
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1"]), timeout=WAIT_MS)
    # the comparison view follows the stored face
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and {f.label: f.id for f in window.compare.loaded.faces}.get("K1")
            in (None, case.face("K1").id)
        ),
        timeout=WAIT_MS,
    )


def explain_once(window: MainWindow, probe: str, gallery: str) -> None:
    """Store one explanation of the pair (the cheapest method) without the queue."""
    workflow.explain(window.controller.case, probe, gallery, "gradient", window.model)


@pytest.mark.parametrize("answer", [False, True])
def test_a_drag_asks_before_it_replaces_explained_results(qtbot, window, answer):
    case = window.controller.case
    explain_once(window, "Q1", "K1")
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answer

    window._ask_face_change = ask  # type: ignore[method-assign]
    before = case.face("K1").landmarks5.copy()
    moved = before + np.array([[0, 0], [0, 0], [0, 0], [0, 0], [6, 0]])  # 6 px
    window._on_landmarks_corrected("K1", moved)
    assert asked == [
        "Moving the points of K1 replaces its comparison with Q1, which has 1 "
        "explanation. It stays in the case, marked as belonging to the earlier "
        "face. Move the points?"
    ]
    stored = case.face("K1").landmarks5
    np.testing.assert_allclose(stored, moved if answer else before)
    assert window.controller.undo_stack.count() == (1 if answer else 0)
    if answer:  # the old results stay, on the superseded face
        earlier = workflow.earlier_results(case, "Q1", "K1")
        assert len(earlier) == 1 and earlier[0].gallery.superseded
    else:  # nothing asked for a face without explanations
        window._on_landmarks_corrected("K1#1", case.face("K1#1").landmarks5 + 1)
        assert len(asked) == 1
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)


def test_reject_from_the_panel_asks_too(qtbot, window, monkeypatch):
    case = window.controller.case
    explain_once(window, "Q1", "K1#1")
    monkeypatch.setattr(window, "_ask_face_change", lambda question: False)
    window.exhibits.reject_requested.emit("K1#1", "not a face")
    assert case.rejected_faces() == []
    monkeypatch.setattr(window, "_ask_face_change", lambda question: True)
    window.exhibits.reject_requested.emit("K1#1", "not a face")
    assert [f.label for f in case.rejected_faces()] == ["K1#1"]
    qtbot.waitUntil(lambda: ranked(window, ["K1"]), timeout=WAIT_MS)


def test_reset_and_a_correction_in_the_dialog_ask_too(qtbot, window, monkeypatch):
    case = window.controller.case
    detected_points = case.face("K1").landmarks5.copy()
    window._on_landmarks_corrected("K1", detected_points + 2)
    explain_once(window, "Q1", "K1")
    asked: list[str] = []
    monkeypatch.setattr(window, "_ask_face_change", lambda q: asked.append(q) or False)
    window.exhibits.reset_requested.emit("K1")
    assert case.face("K1").source == "manual"
    assert asked[-1].startswith("Resetting K1 replaces its comparison with Q1")
    assert asked[-1].endswith("Reset it to the detected face?")

    dialog = window.correct_face("K1")
    qtbot.waitUntil(lambda: dialog.ready, timeout=WAIT_MS)
    assert dialog.windowTitle() == "Correct face K1" and dialog.ok_button.isEnabled()
    np.testing.assert_allclose(dialog.viewer.landmarks(), detected_points + 2)
    dialog.move_point(4, *(detected_points[4] + [0, 5]))
    qtbot.waitUntil(lambda: dialog.face().landmarks5[4][1] > 120, timeout=WAIT_MS)
    dialog.accept()
    assert asked[-1].endswith("Store the corrected face?")
    np.testing.assert_allclose(case.face("K1").landmarks5, detected_points + 2)
    assert window.controller.undo_stack.count() == 1  # only the first drag

    monkeypatch.setattr(window, "_ask_face_change", lambda q: True)
    window.exhibits.reset_requested.emit("K1")
    np.testing.assert_allclose(case.face("K1").landmarks5, detected_points)
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)


# ---- placing a face by hand ------------------------------------------------------
def open_dialog(qtbot, window: MainWindow, mark: str) -> FaceDialog:
    dialog = window.place_face(mark)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.ready, timeout=WAIT_MS)
    return dialog


def test_place_a_face_on_a_faceless_exhibit_by_its_five_points(qtbot, window):
    case, panel = window.controller.case, window.exhibits
    missing = panel.item_for("K2", exhibits_panel.NO_FACE)
    assert missing.text(0) == exhibits_panel.NO_FACE_TEXT
    assert missing.text(0) == "no face found:\nright-click →\nPlace a face…"
    menu = panel.menu_for(missing)
    assert [a.text() for a in menu.actions()] == [exhibits_panel.PLACE]
    dialog = open_dialog(qtbot, window, "K2")
    assert dialog.label == "K2" and dialog.windowTitle() == "Place face K2"
    assert dialog.mode == BOX
    dialog.set_mode(POINTS)
    assert dialog.viewer.tool == "point"
    for n, (x, y) in enumerate(POINTS5):
        assert LANDMARK5_NAMES[n] in dialog.instructions.text()
        assert not dialog.ok_button.isEnabled()
        dialog.viewer.annotation_drawn.emit("point", [[x, y]])  # a click
    assert dialog.ok_button.isEnabled()
    assert dialog.viewer.tool is None
    np.testing.assert_allclose(dialog.viewer.landmarks(), POINTS5)
    dialog.move_point(4, 100, 124)  # a drag before OK
    qtbot.waitUntil(lambda: dialog.face().landmarks5[4][1] == 124, timeout=WAIT_MS)
    dialog.accept()

    placed = case.face("K2")
    assert placed.source == "manual"
    np.testing.assert_allclose(placed.landmarks5[4], [100, 124])
    assert "K2" in combo_items(window.compare.gallery_combo)
    assert "placed by hand" in panel.item_for("K2", exhibits_panel.FACE).text(0)
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1", "K2"]), timeout=WAIT_MS)

    stack = window.controller.undo_stack
    assert stack.undoText() == "place face K2"
    stack.undo()  # a face placed by hand had no record before: undo rejects it
    assert [f.label for f in case.rejected_faces()] == ["K2"]
    assert (
        last_face_step(case).details["reason"]
        == "withdrawn: placing it by hand was undone"
    )
    assert "K2" not in combo_items(window.compare.gallery_combo)
    stack.redo()
    assert case.face("K2").source == "manual"
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1", "K2"]), timeout=WAIT_MS)


def test_cancel_stores_nothing_and_bad_points_are_refused(qtbot, window):
    case = window.controller.case
    entries = len(case.audit_log())
    dialog = open_dialog(qtbot, window, "K2")
    dialog.set_mode(POINTS)
    for _ in range(5):
        dialog.click_point(50, 50)  # the eyes coincide
    assert dialog.face() is None and dialog.points() == []
    assert "degenerate" in dialog.message.text()
    dialog.reject()
    assert len(case.audit_log()) == entries
    assert case.faces("K2") == []


class FakePredictor:
    """Five points inside the box, as dlib's shape predictor would give."""

    def face_in_box(self, rgb, box, with_68=False) -> Face:
        left, top, right, bottom = box
        unit = np.array(
            [[0.8, 0.35], [0.6, 0.35], [0.2, 0.35], [0.4, 0.35], [0.5, 0.7]]
        )
        points = unit * [right - left, bottom - top] + [left, top]
        return Face(tuple(box), points, None, None, "box")


def test_a_drawn_box_predicts_the_points_before_anything_is_stored(qtbot, window):
    case = window.controller.case
    dialog = FaceDialog(case, "K2", None, window, predictor=FakePredictor)
    qtbot.waitUntil(lambda: dialog.ready, timeout=WAIT_MS)
    dialog.show()
    assert dialog.viewer.tool == "rectangle"
    # the image gets at least 600x450 at the dialog's own size and on 1280x720
    assert dialog.viewer.width() >= 600 and dialog.viewer.height() >= 450
    assert dialog.width() <= 1280 and dialog.height() <= 720 - 40
    dialog.resize(1280, 720)
    assert dialog.viewer.width() >= 600 and dialog.viewer.height() >= 450
    dialog.viewer.annotation_drawn.emit("rectangle", [[40, 30], [200, 190]])
    qtbot.waitUntil(lambda: dialog.face() is not None, timeout=WAIT_MS)
    assert dialog.face().source == "box" and dialog.ok_button.isEnabled()
    assert case.faces("K2") == []  # nothing stored before OK
    dialog.shutdown()
    dialog.deleteLater()


@pytest.fixture
def astronaut_window(qtbot, tmp_path, astronaut_path, grace_hopper_path):
    """Grace Hopper (Q1) against the astronaut (K1, and her mission patch K1#1),
    detected by dlib as at intake."""
    with Case.create(
        tmp_path / "case", "2026-0018", "A. Examiner", sequential_unmasking=False
    ) as case:
        case.add_exhibits([grace_hopper_path], "probe")
        case.add_exhibits([astronaut_path], "gallery")
        workflow.detect_faces(case, "Q1")
        workflow.detect_faces(case, "K1")
    models = tiny_registry(TinyModel)
    window = make_window(qtbot, models, tmp_path / "case", show_dialogs=False)
    qtbot.waitUntil(lambda: ranked(window, ["K1", "K1#1"]), timeout=WAIT_MS)
    return window


@pytest.mark.dlib
def test_the_astronauts_patch_is_rejected_and_her_face_boxed(qtbot, astronaut_window):
    window = astronaut_window
    case, panel = window.controller.case, window.exhibits
    patch = case.face("K1#1")
    assert patch.bbox[1] > 300  # the mission patch, low on the image
    window.exhibits.reject_requested.emit("K1#1", "the mission patch")
    qtbot.waitUntil(lambda: ranked(window, ["K1"]), timeout=WAIT_MS)
    assert "K1#1" not in combo_items(window.compare.gallery_combo)
    assert panel.item_for("K1#1", exhibits_panel.REJECTED) is not None
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.gallery_label == "K1"
        ),
        timeout=WAIT_MS,
    )

    dialog = window.correct_face("K1")
    qtbot.waitUntil(lambda: dialog.ready, timeout=WAIT_MS)
    assert dialog.mode == POINTS and dialog.face() is not None
    dialog.set_mode(BOX)  # starts afresh: a box is drawn
    assert dialog.face() is None and not dialog.ok_button.isEnabled()
    assert dialog.viewer.tool == "rectangle"
    dialog.viewer.annotation_drawn.emit("rectangle", [[170, 70], [270, 170]])
    qtbot.waitUntil(lambda: dialog.face() is not None, timeout=WAIT_MS)
    predicted = dialog.face()
    assert predicted.source == "box" and predicted.landmarks68 is not None
    eyes = predicted.landmarks5[:4]
    assert (eyes[:, 1] < predicted.landmarks5[4, 1]).all()  # eyes above the nose
    dialog.accept()
    assert case.face("K1").source == "box"
    window.controller.undo_stack.undo()
    assert case.face("K1").source == "hog"
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)


# ---- read-only ---------------------------------------------------------------------
def test_face_actions_are_disabled_on_a_read_only_case(qtbot, window, tmp_path):
    folder = window.controller.case.folder
    window.controller.close_case()
    window.controller.open_case(folder, read_only=True)
    qtbot.waitUntil(
        lambda: window.controller.case is not None and window.controller.case.read_only,
        timeout=WAIT_MS,
    )
    panel = window.exhibits
    for label, kind in (
        ("K1", exhibits_panel.EXHIBIT),
        ("K1#1", exhibits_panel.FACE),
        ("K2", exhibits_panel.NO_FACE),
    ):
        menu = panel.menu_for(panel.item_for(label, kind))
        assert menu.actions()
        assert not any(a.isEnabled() for a in menu.actions() if a.text())
    assert window.place_face("K2") is None
    assert window.face_dialog is None


def test_maps_of_the_earlier_face_stay_reachable_and_say_so(qtbot, window):
    """After a correction the pair's old explanation is listed after the current
    ones, drawn under a note naming the earlier face, never taken for current."""
    case, compare = window.controller.case, window.compare
    window.compare.gallery_combo.setCurrentText("K1")
    compare.select("Q1", "probe")
    qtbot.waitUntil(lambda: compare.loaded.gallery_label == "K1", timeout=WAIT_MS)
    explain_once(window, "Q1", "K1")
    old = case.explanations()[-1]
    window._ask_face_change = lambda question: True  # type: ignore[method-assign]
    window._on_landmarks_corrected("K1", case.face("K1").landmarks5 + 3)
    qtbot.waitUntil(lambda: old.id in compare.earlier, timeout=WAIT_MS)
    texts = combo_items(compare.method_combo)
    assert texts[-1] == f"Vanilla saliency (gradient) (#{old.id}) · earlier face"
    assert compare.shown_earlier() is None  # the current pair has no map yet
    assert compare.earlier_note.isHidden()
    compare.select_explanation(old.id)
    assert compare.shown_earlier() is compare.earlier[old.id]
    assert not compare.earlier_note.isHidden()
    note = compare.earlier_note.text()
    assert "Earlier face" in note and "K1" in note and "not about the face" in note
    assert not compare.check_faithfulness.isEnabled()
    assert all(chip._overlay is None for chip in compare.chips)  # other alignment
    assert compare.viewers[0].overlay_peak is not None  # on the evidence: drawn
    compare.kind_combo.setCurrentText("uncertainty")  # stored on the old chip
    assert "earlier face" in compare.viewers[0].message_text
    assert compare.viewers[0].overlay_peak is None
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)


def test_a_step_after_an_undo_undoes_back_to_the_revived_record(qtbot, window):
    """After an undo the current record is an older row than the newest: the next
    step must still remember it as the record to go back to."""
    case, stack = window.controller.case, window.controller.undo_stack
    detected = case.face("K1").id
    window._ask_face_change = lambda question: True  # type: ignore[method-assign]
    window._on_landmarks_corrected("K1", case.face("K1").landmarks5 + 2)
    stack.undo()  # the detected record (an older row) is current again
    assert case.face("K1").id == detected
    window.controller.reject_face("K1", "test")
    stack.undo()
    assert case.face("K1").id == detected  # back to it, not "withdrawn"
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)
