"""The Examination tab (issue 19, items 1, 2, 4): ACE-V through the widgets -
analysis of the questioned face, then the known one, the feature worksheet, the
evaluation, and only then unmasking; blind verification sessions; the new-case
dialog's sequential-unmasking box; the tab at 1280 x 720."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt

from core.case.acev import FEATURE_LIST, Analysis, FeatureObservation, Worksheet
from core.case.examination import Examination
from core.case.records import StoredExplanation
from core.case.store import Case
from tests.gui.layout_checks import assert_min_size, assert_no_overlap
from tests.gui.tiny_case import (
    WAIT_MS,
    TinyDistanceModel,
    add_exhibits,
    make_window,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop import main_window
from xfr_desktop.dialogs.new_case_dialog import NewCaseDialog
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels.examination_panel import ExaminationPanel
from xfr_desktop.widgets.analysis_form import NOT_VISIBLE, VISIBLE
from xfr_desktop.widgets.worksheet_tree import MODEL, NOTES, model_effects

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

SHOTS = Path("/work/shots19/exam")
LEVEL = "moderate_same"
OTHER_LEVEL = "weak_different"


def _shot(qtbot, widget, name: str) -> None:
    """A 1280 x 720 screenshot for the report (where the folder can be made),
    after the layout settled."""
    qtbot.wait(50)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    widget.grab().save(str(SHOTS / name))


def _pair_window(qtbot, tmp_path, monkeypatch) -> tuple[MainWindow, ExaminationPanel]:
    """One probe, two gallery images, a pair loaded; the case masked explicitly
    (sequential unmasking on), whatever the shared helpers' default becomes."""
    use_one_fixed_face(monkeypatch)
    folder = tmp_path / "case"
    Case.create(folder, "2026-0019", "A. Examiner", sequential_unmasking=True).close()
    window = make_window(qtbot, tiny_registry(TinyDistanceModel), folder)
    for names, role in ((["q1"], "probe"), (["k1", "k2"], "gallery")):
        add_exhibits(qtbot, window, write_images(tmp_path, names), role)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    busy = (window.controller._ranker, window.compare._loader, window._results_loader)
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in busy), timeout=WAIT_MS)
    window.errors.show_dialogs = False  # a refusal is recorded, not shown
    window.resize(1280, 720)
    window.tabs.setCurrentWidget(window.examination_panel)
    panel = window.examination_panel
    qtbot.waitUntil(lambda: bool(panel.questioned and panel.known), timeout=WAIT_MS)
    return window, panel


def _exam(window: MainWindow) -> Examination:
    examination = window.controller.examination()
    assert examination is not None
    return examination


def _click(qtbot, button) -> None:
    assert button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _choose(combo, code: str) -> None:
    index = combo.findData(code)
    assert index >= 0, code
    combo.setCurrentIndex(index)


def _record_analyses_and_evaluation(qtbot, panel: ExaminationPanel, level: str):
    q_form = panel.questioned_form
    _choose(q_form.suitability, "limited")
    q_form.reasons.setPlainText("low resolution CCTV still")
    q_form.factors["resolution"].setChecked(True)
    items = {i.data(Qt.ItemDataRole.UserRole): i for i in q_form.component_items()}
    items["eyes"].setCheckState(VISIBLE)
    items["ears"].setCheckState(NOT_VISIBLE)
    _click(qtbot, q_form.record_button)
    _click(qtbot, panel.known_form.record_button)  # suitable, nothing else said
    _choose(panel.level, level)
    panel.reasoning.setPlainText("eyes and nose similar")
    _click(qtbot, panel.evaluate_button)


def test_acev_in_order_through_the_widgets(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    q, k = panel.questioned, panel.known
    exam = _exam(window)
    assert exam.settings().sequential_unmasking  # new cases are masked
    # nothing recorded: the known face, the worksheet, the evaluation and the
    # unmasking wait, and say why
    assert not panel.known_form.record_button.isEnabled()
    assert f"analysis of {q} first" in panel.known_form.record_button.toolTip()
    assert not panel.save_worksheet_button.isEnabled()
    assert not panel.evaluate_button.isEnabled()
    assert not panel.unmask_button.isEnabled()
    assert "analysis" in panel.unmask_button.toolTip()
    _shot(qtbot, window, "01-examination-empty.png")

    q_form = panel.questioned_form
    _choose(q_form.suitability, "limited")  # no reasons: refused in one line
    _click(qtbot, q_form.record_button)
    assert exam.analysis(q) is None
    assert "reasons" in window.errors.last_report.message
    _record_analyses_and_evaluation(qtbot, panel, LEVEL)
    analysis = exam.analysis(q)
    assert analysis == Analysis(
        "limited",
        "low resolution CCTV still",
        ("resolution",),
        ("eyes",),
        ("ears",),
    )
    assert exam.analysis(k) == Analysis("suitable")
    evaluation = exam.evaluation(q, k)
    assert evaluation is not None and evaluation.level == LEVEL
    assert evaluation.reasoning == "eyes and nose similar"
    assert "(LR 10 to 100)" in panel.level.currentText()
    assert panel.level_words.text() == panel.level.currentText()

    # the worksheet: a component, a characteristic, notes
    tree = panel.worksheet_tree
    _choose(tree.combos[("eyes", "")], "similar")
    _choose(tree.combos[("nose", "tip")], "different_explained")
    tree.items[("nose", "tip")].setText(NOTES, "lighting from above")
    panel.worksheet_notes.setPlainText("faces aligned on the eye line")
    _click(qtbot, panel.save_worksheet_button)
    assert exam.worksheet(q, k) == Worksheet(
        (
            FeatureObservation("eyes", "similar"),
            FeatureObservation(
                "nose", "different_explained", "tip", "lighting from above"
            ),
        ),
        "faces aligned on the eye line",
    )
    assert "revision 1" in panel.worksheet_state.text()

    # unmasking: open now, audited, and the evaluation says a revision is late
    assert exam.masked(q, k)
    assert tree.isColumnHidden(MODEL)  # hidden while masked
    panel.steps_area.ensureWidgetVisible(panel.unmask_button)
    _shot(qtbot, window, "02-examination-recorded.png")
    _click(qtbot, panel.unmask_button)
    assert not exam.masked(q, k)
    assert "after the model's results were shown" in panel.evaluation_state.text()
    assert not panel.unmask_button.isEnabled()
    actions = [e.action for e in window.controller.case.audit_log()]
    assert actions.count("acev.analysis") == 2
    assert actions.index("acev.evaluation") < actions.index("acev.unmasking")
    order = [
        panel.order.topLevelItem(i).text(2)
        for i in range(panel.order.topLevelItemCount())
    ]
    assert order == [
        f"analysis of {q}",
        f"analysis of {k}",
        f"evaluation: {evaluation.words}",
        "feature worksheet",
        "model's results unmasked",
    ]
    _shot(qtbot, window, "03-examination-unmasked.png")


def test_the_worksheet_round_trips_through_the_widget(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    q, k = panel.questioned, panel.known
    case = window.controller.case
    q_mark, k_mark = case.face(q).mark, case.face(k).mark
    scar = case.add_annotation(
        exhibit=k_mark, shape="point", points=[(50, 60)], label="scar"
    )
    mole = case.add_annotation(
        exhibit=q_mark, shape="point", points=[(40, 40)], label="mole"
    )
    stored = Worksheet(
        (
            *(
                FeatureObservation(c.key, "similar", notes=f"{c.name} looks alike")
                for c in FEATURE_LIST[:5]
            ),
            FeatureObservation(
                "facial_marks",
                "different",
                questioned_annotations=(mole.id,),
                known_annotations=(scar.id,),
            ),
            FeatureObservation("ears", "not_visible", "helix"),
        ),
        "whole-face notes",
    ).sorted()
    window.controller.change_examination(
        lambda exam: exam.record_analysis(q, Analysis("suitable"))
    )
    window.controller.change_examination(
        lambda exam: exam.record_worksheet(q, k, stored)
    )
    window.controller.annotations_changed.emit()
    assert panel.worksheet_tree.worksheet("whole-face notes") == stored
    q_pick, k_pick = panel.worksheet_tree.pickers["facial_marks"]
    assert q_pick.text() == f"#{mole.id}" and k_pick.text() == f"#{scar.id}"
    # saved again unchanged through the button: the same worksheet, revision 2
    _click(qtbot, panel.save_worksheet_button)
    assert _exam(window).worksheet(q, k) == stored
    assert "revision 2" in panel.worksheet_state.text()


def test_the_models_column_shows_only_after_unmasking(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    case = window.controller.case
    table = {
        "components": [
            {
                "name": "nose",
                "fiswg": "Nose",
                "probe": {"change": -0.02},
                "gallery": {"change": 0.01},
                "both": {"change": -0.05, "flips": True},
            }
        ]
    }
    # a stored components explanation of the pair, as the method writes its table
    stored = StoredExplanation(
        1,
        panel.comparison_id,
        "components",
        {},
        0,
        "",
        "",
        "",
        {"details": {"components": table}},
        "",
        "",
        "A. Examiner",
    )
    monkeypatch.setattr(
        case,
        "explanations",
        lambda comparison_id=None: (
            [stored] if comparison_id in (None, panel.comparison_id) else []
        ),
    )
    panel.refresh()
    tree = panel.worksheet_tree
    assert tree.isColumnHidden(MODEL)  # masked: not even the column
    _record_analyses_and_evaluation(qtbot, panel, LEVEL)
    assert tree.isColumnHidden(MODEL)
    _click(qtbot, panel.unmask_button)
    assert not tree.isColumnHidden(MODEL)
    assert tree.items[("nose", "")].text(MODEL) == (
        "probe -0.020, gallery +0.010, both -0.050 (decision flips)"
    )
    assert tree.items[("eyes", "")].text(MODEL) == ""
    assert "not evidence" in tree.headerItem().text(MODEL)


def test_model_effects_in_words():
    table = {
        "components": [
            {
                "name": "eyes",
                "probe": {"change": 0.1},
                "gallery": {"change": None},
                "both": {"change": 0.25, "flips": False},
            },
        ]
    }
    assert model_effects(table) == {"eyes": "probe +0.100, gallery -, both +0.250"}


def test_a_blind_session_hides_the_first_examiners_records(
    qtbot, tmp_path, monkeypatch
):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    q, k = panel.questioned, panel.known
    folder = window.controller.case.folder
    _record_analyses_and_evaluation(qtbot, panel, LEVEL)
    first_examiner = window.controller.case.user
    window.controller.close_case()
    assert panel.questioned == ""

    window.start_blind_verification(str(folder), "B. Verifier")
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    window.compare.select(q, "probe")
    window.compare.gallery_combo.setCurrentText(k)
    qtbot.waitUntil(lambda: (panel.questioned, panel.known) == (q, k), timeout=WAIT_MS)
    window.tabs.setCurrentWidget(panel)
    text = "Blind verification by B. Verifier: the first examiner's records are hidden"
    assert window.controller.blind and window.controller.user == "B. Verifier"
    assert text in window.windowTitle()
    assert window.blind_banner.isVisible() and window.blind_banner.text() == text
    assert "verification.blind_session" in [
        e.action for e in window.controller.case.audit_log()
    ]
    # none of the first examiner's work shows: empty forms, nothing in the order
    assert panel.questioned_form.state.text() == "Not recorded yet."
    assert panel.questioned_form.reasons.toPlainText() == ""
    assert panel.evaluation_state.text().startswith("Not recorded yet.")
    assert panel.order.topLevelItemCount() == 0
    assert not panel.verify_button.isEnabled()
    assert not panel.propositions_button.isEnabled()
    _shot(qtbot, window, "04-blind-verification.png")

    _record_analyses_and_evaluation(qtbot, panel, OTHER_LEVEL)
    exam = _exam(window)
    assert exam.evaluation(q, k).level == OTHER_LEVEL
    assert exam.records("evaluation", role="verifier")[0].author == "B. Verifier"
    _click(qtbot, panel.verify_button)
    verification = exam.verification(q, k)
    assert verification is not None and verification.outcome == "disagreement"
    assert verification.mode == "blind"
    assert "disagreement" in panel.verification_state.text()
    assert panel.resolution_box.isVisible()
    assert not panel.verify_button.isEnabled()  # once: the rest is a resolution
    _choose(panel.resolved_level, "weak_same")
    panel.resolution.setPlainText("discussed: the ear is hidden in Q")
    panel.steps_area.ensureWidgetVisible(panel.resolve_button)
    _shot(qtbot, window, "05-verification-disagreement.png")
    _click(qtbot, panel.resolve_button)
    resolved = exam.verification(q, k)
    assert resolved.resolution == "discussed: the ear is hidden in Q"
    assert resolved.resolved_level == "weak_same"
    assert not panel.resolution_box.isVisible()

    window.controller.close_case()  # the session ends with the case
    assert not window.controller.blind
    assert window.controller.user == window.settings.effective_user()
    assert not window.blind_banner.isVisible()
    del first_examiner

    # a second verifier, blind too, is not shown the first verification (it
    # names the first examiner's level)
    window.start_blind_verification(str(folder), "C. Verifier")
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    window.compare.select(q, "probe")
    window.compare.gallery_combo.setCurrentText(k)
    qtbot.waitUntil(lambda: (panel.questioned, panel.known) == (q, k), timeout=WAIT_MS)
    assert panel.verification_state.text().startswith("Not verified yet.")
    assert "Moderate" not in panel.verification_state.text()


def test_the_first_examiner_cannot_verify_blind(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    _record_analyses_and_evaluation(qtbot, panel, LEVEL)
    folder = window.controller.case.folder
    examiner = window.controller.case.user
    window.controller.close_case()
    window.errors.show_dialogs = False
    window.start_blind_verification(str(folder), examiner)
    qtbot.waitUntil(lambda: window.errors.last_report is not None, timeout=WAIT_MS)
    assert "second examiner" in window.errors.last_report.message
    qtbot.waitUntil(lambda: window.controller.case is None, timeout=WAIT_MS)
    assert not window.controller.blind and not window.blind_banner.isVisible()


def test_turning_unmasking_off_asks_why_and_is_recorded(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    monkeypatch.setattr(panel, "ask_unmasking_reason", lambda: None)
    _click(qtbot, panel.unmasking_off_button)  # cancelled: nothing changes
    assert _exam(window).settings().sequential_unmasking
    monkeypatch.setattr(panel, "ask_unmasking_reason", lambda: "a training case")
    _click(qtbot, panel.unmasking_off_button)
    exam = _exam(window)
    assert not exam.settings().sequential_unmasking
    assert exam.setting_changes()[-1].details["reason"] == "a training case"
    assert not exam.masked(panel.questioned, panel.known)
    assert not panel.unmasking_off_button.isEnabled()
    assert "off" in panel.unmask_button.toolTip()


def test_propositions_are_recorded_from_the_dialog(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    dialog = panel.edit_propositions()
    assert dialog is not None
    dialog.first.setText("Q1 shows the person in K1")
    dialog.request.setPlainText("Is the person in Q1 the person in K1?")
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    dialog.second.setText("Q1 shows another man of the population")
    dialog.population.setText("adult men")
    dialog.accept()
    stored = _exam(window).settings().propositions
    assert stored.first == "Q1 shows the person in K1"
    assert stored.population == "adult men"
    assert "Q1 shows the person in K1" in panel.propositions_label.text()
    assert panel.scale_label.text() == "Scale: ENFSI verbal scale"


def test_a_read_only_case_records_nothing(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    folder = window.controller.case.folder
    q, k = panel.questioned, panel.known
    window.controller.close_case()
    window.controller.open_case(folder, read_only=True)
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    window.compare.select(q, "probe")
    window.compare.gallery_combo.setCurrentText(k)
    qtbot.waitUntil(lambda: (panel.questioned, panel.known) == (q, k), timeout=WAIT_MS)
    for button in (
        panel.questioned_form.record_button,
        panel.evaluate_button,
        panel.save_worksheet_button,
        panel.unmask_button,
        panel.propositions_button,
        panel.unmasking_off_button,
    ):
        assert not button.isEnabled()
        assert "read-only" in button.toolTip()


def test_the_tab_fits_1280x720(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    assert window.tabs.tabText(0) == "Examination"
    assert window.tabs.widget(1) is window.compare_page
    qtbot.wait(50)
    assert_no_overlap(panel)
    assert_min_size([panel.worksheet_tree], 500, 300)
    assert_min_size([panel.steps_area], 340, 300)
    tab_bar = window.tabs.tabBar()
    assert tab_bar.tabRect(tab_bar.count() - 1).right() <= tab_bar.width()


@pytest.mark.parametrize("unmasking", [True, False])
def test_the_new_case_dialog_asks_for_sequential_unmasking(
    qtbot, tmp_path, monkeypatch, unmasking
):
    window = make_window(qtbot, tiny_registry(TinyDistanceModel), show_dialogs=False)
    folder = tmp_path / "new.xfrcase"

    class Filled(NewCaseDialog):
        def exec(self) -> int:
            assert self.unmasking()  # on unless turned off
            self.number.setText("2026-0099")
            self.examiner.setText("A. Examiner")
            self.folder.setText(str(folder))
            self.sequential_unmasking.setChecked(unmasking)
            return int(NewCaseDialog.DialogCode.Accepted)

    monkeypatch.setattr(main_window, "NewCaseDialog", Filled)
    window.new_case()
    qtbot.waitUntil(
        lambda: (
            window.controller.case is not None or window.errors.last_report is not None
        ),
        timeout=WAIT_MS,
    )
    assert window.errors.last_report is None, window.errors.last_report.message
    settings = _exam(window).settings()
    assert settings.recorded and settings.sequential_unmasking is unmasking
    assert window.tabs.tabText(0) == "Examination"


def test_a_rejected_face_of_the_pair_leaves_the_tab_without_it(
    qtbot, tmp_path, monkeypatch
):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    known = panel.known
    assert window.controller.reject_face(known, "not a face")
    qtbot.waitUntil(lambda: panel.known != known, timeout=WAIT_MS)
    assert panel.known == "" or window.controller.case.face(panel.known)


def test_saving_the_worksheet_keeps_a_characteristics_annotation_links(qtbot):
    """A characteristic's links (recorded on the command line) have no picker in
    the tree: saving the worksheet again must not drop them."""
    from core.case.acev import FeatureObservation, Worksheet
    from xfr_desktop.widgets.worksheet_tree import WorksheetTree

    tree = WorksheetTree()
    qtbot.addWidget(tree)
    sheet = Worksheet(
        (FeatureObservation("nose", "similar", "tip", questioned_annotations=(4,)),)
    )
    tree.show_worksheet(sheet)
    assert tree.worksheet() == sheet.sorted()
    assert tree.items[("nose", "")].isExpanded()
    tree.show_worksheet(None)  # another record: nothing of this one shows
    assert not tree.items[("nose", "")].isExpanded()


def test_no_level_is_preselected_from_another_pair_or_examiner(
    qtbot, tmp_path, monkeypatch
):
    """A level left over from the last pair (or the first examiner's, in a blind
    session) must not be one click away: nothing is chosen until the examiner
    chooses, and recording without a choice records nothing."""
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    q, k = panel.questioned, panel.known
    _record_analyses_and_evaluation(qtbot, panel, "strong_same")
    other = "K2" if k == "K1" else "K1"
    panel.set_pair(q, other, None)
    assert panel.level.currentData() is None
    _click(qtbot, panel.evaluate_button)
    assert _exam(window).evaluation(q, other) is None
    panel.set_pair(q, k, None)
    assert panel.level.currentData() == "strong_same"


def test_unsaved_edits_survive_a_refresh_and_a_change_of_pair(
    qtbot, tmp_path, monkeypatch
):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    q, k = panel.questioned, panel.known
    _record_analyses_and_evaluation(qtbot, panel, LEVEL)
    panel.reasoning.setPlainText("typed, not recorded")
    panel.worksheet_notes.setPlainText("notes not saved")
    panel.refresh()  # e.g. an annotation added in the Comparison tab
    assert panel.reasoning.toPlainText() == "typed, not recorded"
    assert "Unsaved changes" in panel.evaluation_state.text()
    other = "K2" if k == "K1" else "K1"
    panel.set_pair(q, other, None)
    assert panel.worksheet_notes.toPlainText() == ""
    panel.set_pair(q, k, None)
    assert panel.worksheet_notes.toPlainText() == "notes not saved"
    assert panel.reasoning.toPlainText() == "typed, not recorded"
    assert sorted(panel.unsaved()) == [
        f"evaluation of {q}/{k}",
        f"worksheet of {q}/{k}",
    ]
    _click(qtbot, panel.evaluate_button)  # recorded: no longer a draft
    assert _exam(window).evaluation(q, k).reasoning == "typed, not recorded"
    assert panel.unsaved() == [f"worksheet of {q}/{k}"]


def test_closing_with_unrecorded_edits_asks_first(qtbot, tmp_path, monkeypatch):
    window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    monkeypatch.setattr(MainWindow, "ask_before_closing", True)
    asked = []

    def answer(unsaved):
        asked.append(list(unsaved))
        return False  # keep working

    window.ask_discard_unsaved = answer
    panel.reasoning.setPlainText("typed, not recorded")
    window.close_case()
    assert window.controller.case is not None
    assert asked == [[f"evaluation of {panel.questioned}/{panel.known}"]]
    window.ask_discard_unsaved = lambda unsaved: True
    window.close_case()
    assert window.controller.case is None


def test_recorded_text_with_trailing_space_is_not_an_unsaved_draft(
    qtbot, tmp_path, monkeypatch
):
    """The case stores text trimmed: a trailing newline typed before Record is
    not an edit left unsaved."""
    _window, panel = _pair_window(qtbot, tmp_path, monkeypatch)
    _choose(panel.questioned_form.suitability, "limited")
    panel.questioned_form.reasons.setPlainText("low resolution CCTV still\n")
    _click(qtbot, panel.questioned_form.record_button)
    _choose(panel.level, LEVEL)
    panel.reasoning.setPlainText("eyes similar\t\n")
    _click(qtbot, panel.evaluate_button)
    panel.worksheet_notes.setPlainText("  notes  \n")
    _click(qtbot, panel.save_worksheet_button)
    assert panel.unsaved() == []
    assert "Unsaved" not in panel.evaluation_state.text()
