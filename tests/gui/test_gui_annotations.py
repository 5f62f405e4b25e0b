"""The examiner's annotations: the list beside the methods (edit, delete, find),
a delete that says what went and offers Undo, and undo/redo from anywhere in the
window.  A tiny model and synthetic images (no dlib): the face finder is replaced
by one fixed face per exhibit."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QComboBox, QWidget

from core.case.store import Case
from core.models import ModelRegistry
from tests.gui.tiny_case import (
    WAIT_MS,
    make_window,
    one_fixed_face,
    tiny_model_class,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.widgets.annotation_list import LABEL, NOTE, ON, AnnotationList

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
TinyModel = tiny_model_class(
    "tiny-annotations",
    "euclidean",
    0.6,
    name="Tiny annotations model",
    weights=b"tiny annotation weights",
)
SCAR = {
    "exhibit": "K1",
    "shape": "rectangle",
    "points": [[60.0, 50.0], [90.0, 80.0]],
    "label": "left ear scar",
    "note": "Healed scar above the left ear, about 2 cm, seen in both images "
    "under the same light.",
    "component": "ears",
}
MOLE = {
    "exhibit": "Q1",
    "shape": "point",
    "points": [[100.0, 100.0]],
    "label": "mole",
    "note": "",
    "component": None,
}
ON_K2 = {"exhibit": "K2", "shape": "point", "points": [[50.0, 50.0]], "label": "k2"}


@pytest.fixture
def models(monkeypatch) -> ModelRegistry:
    use_one_fixed_face(monkeypatch)
    return tiny_registry(TinyModel)


@pytest.fixture
def case_folder(tmp_path) -> Path:
    """Q1 against K1 and K2, one fixed face each."""
    folder = tmp_path / "case"
    with Case.create(
        folder, "2026-0018", "A. Examiner", sequential_unmasking=False
    ) as case:
        files = write_images(tmp_path, ["q1", "k1", "k2"], seed=7)
        case.add_exhibits(files[:1], "probe")
        case.add_exhibits(files[1:], "gallery")
        for mark in ("Q1", "K1", "K2"):
            one_fixed_face(case, mark)
    return folder


@pytest.fixture
def window(qtbot, models, case_folder) -> MainWindow:
    window = make_window(qtbot, models, case_folder)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller._ranker.is_busy(), timeout=WAIT_MS)
    window.side_tabs.setCurrentWidget(window.annotation_list)
    return window


def add(window: MainWindow, **fields) -> int:
    window.controller.add_annotation(**fields)
    return window.controller.case.annotations()[-1].id


def select_row(listed: AnnotationList, annotation_id: int) -> None:
    for row in range(listed.table.rowCount()):
        if listed.table.item(row, ON).data(Qt.ItemDataRole.UserRole) == annotation_id:
            listed.table.selectRow(row)
            return
    raise AssertionError(f"annotation {annotation_id} is not listed")


def audit_actions(case: Case) -> list[str]:
    return [e.action for e in case.audit_log() if e.action.startswith("annotation")]


def test_the_list_shows_every_annotation_and_can_keep_to_the_pair(qtbot, window):
    listed = window.annotation_list
    assert window.side_tabs.tabText(1) == "Annotations"
    add(window, **SCAR)
    add(window, **MOLE)
    add(window, **ON_K2)
    assert listed.table.rowCount() == 3
    first = [listed.table.item(0, c).text() for c in range(listed.table.columnCount())]
    assert first[:5] == ["K1", "rectangle", "ears", "left ear scar", SCAR["note"]]
    assert first[5] == window.controller.case.annotations()[0].author
    assert first[6].startswith("20") and len(first[6]) == 16  # "YYYY-MM-DD HH:MM"
    assert SCAR["note"] in listed.table.item(0, NOTE).toolTip()  # full in tooltip
    assert window.compare.loaded.gallery_label.startswith("K1")
    listed.only_pair.setChecked(True)  # Q1 x K1: the K2 one is left out
    assert [
        listed.table.item(r, LABEL).text() for r in range(listed.table.rowCount())
    ] == ["left ear scar", "mole"]
    assert "1 on other exhibits" in listed.count_label.text()
    listed.only_pair.setChecked(False)
    assert listed.table.rowCount() == 3
    select_row(listed, window.controller.case.annotations()[0].id)


def test_choosing_a_row_shows_it_in_the_comparison(qtbot, window):
    listed = window.annotation_list
    scar, other = add(window, **SCAR), add(window, **ON_K2)
    with qtbot.waitSignal(listed.annotation_chosen) as chosen:
        select_row(listed, scar)
    assert chosen.args == ["K1", scar]
    assert window.compare.viewers[1].selected_annotation == scar
    select_row(listed, other)  # on K2: the pair Q1 x K2 is opened and it shown
    qtbot.waitUntil(
        lambda: window.compare.loaded.gallery_label.startswith("K2"), timeout=WAIT_MS
    )
    assert window.compare.viewers[1].selected_annotation == other


def test_a_selection_in_the_viewer_selects_the_row(qtbot, window):
    listed = window.annotation_list
    add(window, **SCAR)
    mole = add(window, **MOLE)
    window.compare.viewers[0].annotation_selected.emit(mole)
    row = listed.current_row()
    assert row is not None and row.annotation_id == mole
    window.compare.viewers[0].annotation_selected.emit(None)
    assert listed.current_row() is None
    assert not listed.delete_button.isEnabled()


def test_the_rows_context_menu_edits_and_deletes(qtbot, window):
    case, listed = window.controller.case, window.annotation_list
    scar = add(window, **SCAR)
    select_row(listed, scar)
    menu = listed.context_menu()
    actions = {a.text(): a for a in menu.actions()}
    assert set(actions) == {"Edit…", "Delete"}
    assert all(a.isEnabled() for a in actions.values())
    actions["Delete"].trigger()
    assert case.annotations() == []
    assert window.undo_hint.isVisible()
    menu.deleteLater()


def test_edit_through_the_dialog_changes_the_stored_row_and_is_undoable(qtbot, window):
    case, listed = window.controller.case, window.annotation_list
    scar = add(window, **SCAR)
    select_row(listed, scar)
    dialog = listed.edit_current()
    assert dialog is not None and dialog.isVisible()
    assert dialog.label.text() == "left ear scar"
    assert dialog.component.currentData() == "ears"
    assert dialog.note.text() == SCAR["note"]
    dialog.label.setText("right ear scar")
    dialog.component.setCurrentIndex(dialog.component.findData("scars"))
    dialog.accept()
    stored = case.annotation(scar)
    assert (stored.label, stored.component) == ("right ear scar", "scars")
    assert stored.note == SCAR["note"]  # unchanged fields stay
    assert listed.table.item(0, LABEL).text() == "right ear scar"
    update = [e for e in case.audit_log() if e.action == "annotation.update"]
    assert len(update) == 1 and update[0].details["to"] == {
        "label": "right ear scar",
        "component": "scars",
    }
    assert window.undo_action.text() == ("&Undo edit annotation 'left ear scar' on K1")
    window.undo_action.trigger()
    assert case.annotation(scar).label == "left ear scar"
    assert audit_actions(case) == [
        "annotation.add",
        "annotation.update",
        "annotation.update",
    ]


def test_a_double_click_opens_the_editor(qtbot, window):
    listed = window.annotation_list
    scar = add(window, **SCAR)
    select_row(listed, scar)
    rect = listed.table.visualItemRect(listed.table.item(0, LABEL))
    viewport, left = listed.table.viewport(), Qt.MouseButton.LeftButton
    qtbot.mouseClick(viewport, left, pos=rect.center())  # a real double-click
    qtbot.mouseDClick(viewport, left, pos=rect.center())  # starts with a press
    assert listed.edit_dialog is not None and listed.edit_dialog.isVisible()
    assert listed.edit_dialog.windowTitle() == "Edit 'left ear scar' on K1"
    listed.edit_dialog.reject()
    assert window.controller.case.annotation(scar).label == "left ear scar"
    assert audit_actions(window.controller.case) == ["annotation.add"]


def test_delete_from_the_list_says_so_and_its_undo_button_restores(qtbot, window):
    case, listed = window.controller.case, window.annotation_list
    scar = add(window, **SCAR)
    select_row(listed, scar)
    listed.table.setFocus()
    qtbot.keyClick(listed.table, Qt.Key.Key_Delete)
    assert case.annotations() == []
    assert listed.table.rowCount() == 0
    hint = window.undo_hint
    assert hint.isVisible()
    assert hint.text.text() == "Annotation 'left ear scar' on K1 deleted."
    assert hint.undo_button.text() == "Undo (Ctrl+Z)"
    assert window.undo_action.text() == (
        "&Undo delete annotation 'left ear scar' on K1"
    )
    hint.undo_button.click()
    (back,) = case.annotations()  # a new row (new id), the same fields
    assert (back.label, back.note, back.component, back.shape) == (
        SCAR["label"],
        SCAR["note"],
        SCAR["component"],
        SCAR["shape"],
    )
    assert [list(p) for p in back.points] == SCAR["points"]
    assert not hint.isVisible()
    assert window.redo_action.text() == (
        "&Redo delete annotation 'left ear scar' on K1"
    )
    assert audit_actions(case) == [
        "annotation.add",
        "annotation.delete",
        "annotation.add",
    ]


def test_delete_from_the_viewer_shows_the_hint(qtbot, window):
    case = window.controller.case
    scar = add(window, **SCAR)
    viewer = window.compare.viewers[1]
    viewer.select_annotation(scar)
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert case.annotations() == []
    assert window.undo_hint.isVisible()
    assert "'left ear scar' on K1 deleted" in window.undo_hint.text.text()
    window.undo_hint.timer.timeout.emit()  # a few seconds later it goes
    assert not window.undo_hint.isVisible()


def test_the_hint_never_undoes_a_later_step(qtbot, window):
    case = window.controller.case
    scar = add(window, **SCAR)
    window.controller.delete_annotation(scar)
    assert window.undo_hint.isVisible()
    add(window, **MOLE)  # something else happened since: the hint goes
    assert not window.undo_hint.isVisible()
    window.undo_hint._undo()
    assert [a.label for a in case.annotations()] == ["mole"]


def _focus_targets(window: MainWindow) -> dict[str, QWidget]:
    return {
        "exhibits tree": window.exhibits.tree,
        "methods list": window.explain.methods,
        "audit view": window.audit.table,
        "annotation list": window.annotation_list.table,
        "combo box": window.compare.probe_combo,
        "audit filter combo": window.audit.action_combo,
    }


def _editable_combo(window: MainWindow) -> QWidget:
    """An editable combo box takes Ctrl+Z for its text unless the window wins."""
    combo = QComboBox(window.compare)
    combo.setEditable(True)
    combo.addItems(["0.5", "1.0"])
    combo.show()
    return combo


@pytest.mark.parametrize(
    "target",
    [
        "exhibits tree",
        "methods list",
        "audit view",
        "annotation list",
        "combo box",
        "audit filter combo",
        "editable combo box",
    ],
)
def test_undo_and_redo_reach_the_case_from_anywhere(qtbot, window, target):
    case = window.controller.case
    if target == "editable combo box":
        widget = _editable_combo(window)
    else:
        widget = _focus_targets(window)[target]
    scar = add(window, **SCAR)
    window.controller.delete_annotation(scar)
    if target.startswith("audit"):
        window.tabs.setCurrentWidget(window.audit)
    elif target == "methods list":
        window.side_tabs.setCurrentWidget(window.explain)
    qtbot.waitExposed(window)
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus)
    qtbot.keyClick(widget, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [a.label for a in case.annotations()] == ["left ear scar"]
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(widget, Qt.Key.Key_Z, ctrl_shift)
    assert case.annotations() == []
    qtbot.keyClick(widget, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(widget, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert case.annotations() == []  # Ctrl+Y redoes as well


def test_text_the_examiner_types_keeps_its_own_undo(qtbot, window):
    undone: list[bool] = []

    class Step(QUndoCommand):
        def redo(self) -> None:
            pass

        def undo(self) -> None:
            undone.append(True)

    window.controller.undo_stack.push(Step("a step"))
    window.tabs.setCurrentWidget(window.conclusion)
    editor = window.conclusion.editor
    qtbot.waitExposed(window)
    window.activateWindow()
    editor.setFocus()
    qtbot.waitUntil(editor.hasFocus)
    qtbot.keyClicks(editor, "abc")
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert undone == []  # the typing was undone, not the case's step
    assert editor.toPlainText() != "abc"


def test_a_read_only_case_offers_no_edit_or_delete(qtbot, models, case_folder):
    with Case.open(case_folder) as case:
        case.add_annotation(**SCAR)
    window = make_window(qtbot, models)
    window.controller.open_case(case_folder, read_only=True)
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    listed = window.annotation_list
    qtbot.waitUntil(lambda: listed.table.rowCount() == 1, timeout=WAIT_MS)
    (scar,) = window.controller.case.annotations()
    select_row(listed, scar.id)
    assert not listed.edit_button.isEnabled()
    assert not listed.delete_button.isEnabled()
    assert listed.delete_button.toolTip() == "The case is open read-only."
    assert listed.edit_current() is None
    assert not any(a.isEnabled() for a in listed.context_menu().actions())
    qtbot.keyClick(listed.table, Qt.Key.Key_Delete)
    window.controller.delete_annotation(scar.id)  # from the viewer's Delete key
    assert window.controller.case.annotations() == [scar]
    assert window.controller.undo_stack.count() == 0
    assert not window.undo_hint.isVisible()


def test_undo_follows_an_annotation_through_every_re_add(qtbot, window):
    """Commands made from the id an annotation has after an undo re-added it
    still find it when it is re-added again (the review's chain: add, delete,
    undo, edit, delete, then undo everything)."""
    case, controller = window.controller.case, window.controller
    stack = controller.undo_stack

    def scar() -> int:
        return next(a.id for a in case.annotations() if a.label.startswith("scar"))

    controller.add_annotation(
        shape="point", points=[[10, 10]], exhibit="K1", label="scar"
    )
    controller.add_annotation(
        shape="point", points=[[20, 20]], exhibit="K1", label="mole"
    )
    controller.delete_annotation(scar())
    stack.undo()  # scar re-added under a new id
    controller.add_annotation(
        shape="point", points=[[30, 30]], exhibit="K1", label="tattoo"
    )
    controller.edit_annotation(scar(), label="scar, left")
    controller.delete_annotation(scar())
    while stack.canUndo():
        stack.undo()
    assert case.annotations() == []
    assert window.errors.last_report is None
    while stack.canRedo():
        stack.redo()
    assert sorted(a.label for a in case.annotations()) == ["mole", "tattoo"]
    assert window.errors.last_report is None


def test_undo_is_not_fooled_when_sqlite_reuses_a_deleted_id(qtbot, window):
    """SQLite gives a deleted row's id to the next one: an undone delete of B
    may come back under A's old id. Commands follow annotations, not ids."""
    case, controller = window.controller.case, window.controller
    stack = controller.undo_stack
    for annotation in case.annotations():  # start from an empty table
        controller.delete_annotation(annotation.id)
    stack.clear()

    def ids() -> dict[str, int]:
        return {a.label: a.id for a in case.annotations()}

    controller.add_annotation(shape="point", points=[[10, 10]], exhibit="K1", label="A")
    controller.add_annotation(shape="point", points=[[20, 20]], exhibit="K1", label="B")
    controller.delete_annotation(ids()["A"])
    controller.delete_annotation(ids()["B"])
    stack.undo()  # B back, under a reused id
    controller.edit_annotation(ids()["B"], label="B edited")
    stack.undo()  # the edit
    stack.undo()  # A back
    stack.redo()  # A deleted again
    stack.redo()  # B edited again
    assert sorted(ids()) == ["B edited"]
    assert window.errors.last_report is None
