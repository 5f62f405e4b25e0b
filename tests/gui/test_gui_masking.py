"""Sequential unmasking and blind verification in the window (issue 19 item 1).

With sequential unmasking on, no score, likelihood ratio, decision, rank or map of
a pair is anywhere in the window before the pair is unmasked; after the unmasking
(recorded through core, then ``examination_changed``) it appears without
reopening the pair.  In a blind session the first examiner's annotations,
conclusions and audited work are hidden.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QPlainTextEdit,
    QTableView,
    QTableWidget,
    QWidget,
)

from core.case.acev import Analysis
from core.case.examination import BLIND_HIDDEN, MASKED
from core.case.store import Comparison
from tests.gui.tiny_case import (
    WAIT_MS,
    TinyDistanceModel,
    add_exhibits,
    make_window,
    new_case,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.masking import BLIND_CONCLUSIONS_NOTE, attach_masking, hidden_message

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

SHOTS = Path("/work/shots19/mask")
SUITABLE = Analysis("suitable", visible=("eyes", "nose"))


def masked_pair_window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    """Q1 against K1 and K2 in a case with sequential unmasking on, Q1 / K1 shown."""
    use_one_fixed_face(monkeypatch)
    folder = new_case(tmp_path / "case", sequential_unmasking=True)
    window = make_window(qtbot, tiny_registry(TinyDistanceModel), folder)
    attach_masking(window)  # what MainWindow._connect does once wired (idempotent)
    for names, role in ((["q1"], "probe"), (["k1", "k2"], "gallery")):
        add_exhibits(qtbot, window, write_images(tmp_path, names), role)
    compare = window.compare
    compare.gallery_combo.setCurrentText("K1")
    compare.select("Q1", "probe")
    qtbot.waitUntil(
        lambda: compare.loaded is not None and compare.loaded.gallery_label == "K1",
        timeout=WAIT_MS,
    )
    busy = (window.controller._ranker, compare._loader, window._results_loader)
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in busy), timeout=WAIT_MS)
    qtbot.wait(20)
    return window


def shown_texts(window: QWidget) -> list[str]:
    """Every text a widget of the window shows (labels, buttons, boxes, tables)."""
    texts: list[str] = []
    for label in window.findChildren(QLabel):
        texts.append(label.text())
    for button in window.findChildren(QAbstractButton):
        texts.append(button.text())
    for combo in window.findChildren(QComboBox):
        texts += [combo.itemText(i) for i in range(combo.count())]
    for edit in window.findChildren(QPlainTextEdit):
        texts.append(edit.toPlainText())
    for table in window.findChildren(QTableWidget):
        for row in range(table.rowCount()):
            for column in range(table.columnCount()):
                item = table.item(row, column)
                if item is not None:
                    texts += [item.text(), item.toolTip()]
    for view in window.findChildren(QTableView):
        model = view.model()
        if model is None or isinstance(view, QTableWidget):
            continue
        for row in range(model.rowCount()):
            for column in range(model.columnCount()):
                index = model.index(row, column)
                for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                    value = model.data(index, role)
                    if value is not None:
                        texts.append(str(value))
    return texts


def result_digits(comparison: Comparison) -> list[str]:
    """The ways the window writes the pair's similarity and distance."""
    return [
        f"{value:{spec}}"
        for value in (comparison.similarity, comparison.distance)
        for spec in (".4f", ".3f", ".3g")
    ]


def shown_comparison(window: MainWindow) -> Comparison:
    assert window.compare.loaded is not None
    return window.compare.loaded.comparison


# the audit trail's times: "01:01:00.012" holds a score of 0.012 by chance only
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")


def leaked(window: MainWindow, comparison: Comparison) -> list[str]:
    digits = result_digits(comparison)
    return [
        t
        for t in shown_texts(window)
        if any(d in _TIMESTAMP.sub("", t) for d in digits)
    ]


def unmask_through_core(window: MainWindow, questioned: str, known: str) -> None:
    def record(examination) -> None:
        examination.record_analysis(questioned, SUITABLE)
        examination.record_evaluation(questioned, known, "moderate_same", "noses")
        examination.unmask(questioned, known)

    window.controller.change_examination(record)


def save_shot(window: MainWindow, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.resize(1280, 720)
    window.grab().save(str(SHOTS / name))


def test_a_masked_pair_shows_no_result_anywhere(qtbot, tmp_path, monkeypatch):
    window = masked_pair_window(qtbot, tmp_path, monkeypatch)
    compare = window.compare
    comparison = shown_comparison(window)
    hidden = hidden_message("Q1", "K1")
    assert window.controller.masked("Q1", "K1")
    assert leaked(window, comparison) == []
    assert hidden in compare.score.text()
    # the 1:N list: gallery faces in mark order, every result cell hidden
    assert compare.candidates.labels() == ["K1", "K2"]
    cells = {
        compare.candidates.item(row, column).text()
        for row in range(compare.candidates.rowCount())
        for column in range(compare.candidates.columnCount())
    }
    assert cells == {"K1", "K2", MASKED}
    assert "hidden" in compare.candidates_title.text()
    # no map: nothing to choose, the views say why, no check can be made
    assert compare.method_combo.count() == 0
    assert compare.current_result() is None
    assert all(viewer.message_text == hidden for viewer in compare.viewers)
    assert not compare.check_faithfulness.isEnabled()
    assert all(plot.verdict.text() == hidden for plot in compare.faithfulness)
    # running a method would show its maps
    assert not window.explain.run_button.isEnabled()
    assert window.explain.run_button.toolTip() == hidden
    assert not window.layers.compute.isEnabled()
    assert window.grid.empty.text() == hidden
    # the audit trail shows the stored results as hidden
    audit = " ".join(shown_texts(window.audit))
    assert MASKED in audit
    save_shot(window, "masked_pair.png")
    compare.tabs.setCurrentIndex(1)  # Candidates (1:N)
    save_shot(window, "masked_candidates.png")


def test_unmasking_shows_the_pair_without_reopening_it(qtbot, tmp_path, monkeypatch):
    window = masked_pair_window(qtbot, tmp_path, monkeypatch)
    compare = window.compare
    comparison = shown_comparison(window)
    unmask_through_core(window, "Q1", "K1")
    assert not window.controller.masked("Q1", "K1")
    assert f"{comparison.similarity:.4f}" in compare.score.text()
    assert leaked(window, comparison)  # the walk over the widgets does see results
    assert window.explain.run_button.isEnabled()
    assert window.layers.compute.isEnabled()
    assert compare.check_faithfulness.isEnabled()
    # K2 is still masked: the 1:N list still gives no ranks
    assert MASKED in compare.candidates.item(0, 0).text()
    assert window.controller.masked("Q1", "K2")
    save_shot(window, "unmasked_pair.png")
    # the audit shows this pair's results now, and still hides K2's
    audit = shown_texts(window.audit)
    assert any(f"{comparison.similarity}" in text for text in audit)
    assert any(MASKED in text for text in audit)


def test_another_pair_stays_masked_after_one_is_unmasked(qtbot, tmp_path, monkeypatch):
    window = masked_pair_window(qtbot, tmp_path, monkeypatch)
    unmask_through_core(window, "Q1", "K1")
    compare = window.compare
    compare.select("K2", "gallery")
    qtbot.waitUntil(lambda: compare.loaded.gallery_label == "K2", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window._results_loader.is_busy(), timeout=WAIT_MS)
    qtbot.wait(20)
    assert hidden_message("Q1", "K2") in compare.score.text()
    assert not window.explain.run_button.isEnabled()
    assert f"{shown_comparison(window).similarity:.4f}" not in compare.score.text()


def test_a_blind_session_hides_the_first_examiners_work(qtbot, tmp_path, monkeypatch):
    window = masked_pair_window(qtbot, tmp_path, monkeypatch)
    controller, case = window.controller, window.controller.case
    assert case is not None
    first = case.user
    controller.add_annotation(
        exhibit="Q1", shape="point", points=[[100.0, 100.0]], label="first's mark"
    )
    controller.add_conclusion("The first examiner's conclusion.")
    unmask_through_core(window, "Q1", "K1")
    assert [r.label for r in window.annotation_list.shown_rows()] == ["first's mark"]
    assert window.conclusion.revisions()
    # a second examiner opens a blind session
    case.user = "B. Verifier"
    assert case.user != first
    controller.blind = True
    controller.examination_changed.emit()
    assert window.annotation_list.shown_rows() == []
    assert "blind" in window.annotation_list.count_label.text()
    assert window.compare.viewers[0].annotations() == []
    assert window.conclusion.revisions() == []
    assert "first examiner's conclusion" not in window.conclusion.text()
    assert not window.conclusion.blind_note.isHidden()
    assert window.conclusion.blind_note.text() == BLIND_CONCLUSIONS_NOTE
    audit = " ".join(shown_texts(window.audit))
    assert BLIND_HIDDEN in audit
    assert "first's mark" not in audit
    assert "The first examiner's conclusion." not in audit
    # the verifier has not unmasked the pair: its results are hidden again
    assert hidden_message("Q1", "K1") in window.compare.score.text()
    # the verifier's own annotation is listed
    controller.add_annotation(
        exhibit="Q1", shape="point", points=[[90.0, 90.0]], label="verifier's mark"
    )
    assert [r.label for r in window.annotation_list.shown_rows()] == ["verifier's mark"]
