"""The Examination tab: the examiner's own ACE-V comparison of the pair shown.

In the order of the method (ENFSI BPM, FISWG): the case's request, propositions
and scale; the **analysis** of the questioned face, then of the known one; the
**worksheet** of the ASTM E3149 components; the **evaluation** on the declared
scale; only then **unmasking** the model's results (sequential unmasking); the
order of work as recorded; and the **verification** by a second examiner.

Every write is one ``controller.change_examination`` call (audited in core); what
may be done next, and what is hidden, is asked of ``core.case.examination``
(``Examination``): this panel only shows it and says why a step is not open yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.case.acev import (
    SUITABILITY,
    Analysis,
    ConclusionScale,
    Propositions,
    Verification,
    Worksheet,
)
from core.case.examination import Examination
from core.case.store import Case
from core.errors import BadInputError, printable
from xfr_desktop.case_controller import CaseController
from xfr_desktop.dialogs.propositions_dialog import PropositionsDialog
from xfr_desktop.widgets.analysis_form import AnalysisForm
from xfr_desktop.widgets.worksheet_tree import WorksheetTree, model_effects

READ_ONLY = "The case is open read-only: nothing can be recorded."
NO_PAIR = "Choose a questioned and a known face (Exhibits, or the Comparison tab)."
CHOOSE_LEVEL = "— choose a level —"
UNSAVED = "Unsaved changes (kept while the case is open): not recorded yet."
COMPONENTS_METHOD = "components"


def level_text(words: str, likelihood_ratio: str) -> str:
    """A scale level as the combo shows it: its words and the LR range."""
    return f"{words} (LR {likelihood_ratio})" if likelihood_ratio else words


def _text_box(placeholder: str, lines: int) -> QPlainTextEdit:
    box = QPlainTextEdit()
    box.setPlaceholderText(placeholder)
    box.setTabChangesFocus(True)
    box.setFixedHeight(box.fontMetrics().lineSpacing() * lines + 14)
    return box


class ExaminationPanel(QWidget):
    """ACE-V for the pair shown; ``refresh()`` re-reads everything from core."""

    def __init__(
        self, controller: CaseController, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.questioned = ""
        self.known = ""
        self.comparison_id: int | None = None
        # unsaved edits: form key -> what was typed; what each form was filled with
        self.drafts: dict[tuple[str, str], Any] = {}
        self._filled: dict[str, Any] = {}
        self._drafts_case: Case | None = None
        # -- the case: request, propositions, scale, unmasking
        self.pair_label = QLabel(NO_PAIR)
        self.pair_label.setWordWrap(True)
        self.propositions_label = QLabel()
        self.propositions_label.setWordWrap(True)
        self.propositions_label.setToolTip(
            "The request and two competing propositions, printed in the report"
        )
        self.propositions_button = QPushButton("Propositions…")
        self.propositions_button.clicked.connect(lambda: self.edit_propositions())
        self.scale_label = QLabel()
        self.unmasking_label = QLabel()
        self.unmasking_off_button = QPushButton("Turn off…")
        self.unmasking_off_button.clicked.connect(self.turn_unmasking_off)
        self.unmasking_label.setWordWrap(True)
        case_box = QGroupBox("Request and propositions (whole case)")
        case_layout = QVBoxLayout(case_box)
        for label, button in (
            (self.propositions_label, self.propositions_button),
            (self.unmasking_label, self.unmasking_off_button),
        ):
            row = QHBoxLayout()
            row.addWidget(label, 1)
            row.addWidget(button)
            case_layout.addLayout(row)
            if button is self.propositions_button:
                case_layout.addWidget(self.scale_label)
        # -- analysis
        self.questioned_form = AnalysisForm("1. Analysis of the questioned face")
        self.known_form = AnalysisForm("2. Analysis of the known face")
        self.questioned_form.record_requested.connect(
            lambda: self._record_analysis(self.questioned, self.questioned_form)
        )
        self.known_form.record_requested.connect(
            lambda: self._record_analysis(self.known, self.known_form)
        )
        # -- evaluation
        self.level = QComboBox()
        self.level.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.level.setMinimumContentsLength(24)
        # the chosen level in full with its LR range (the combo elides at 1280)
        self.level_words = QLabel()
        self.level_words.setWordWrap(True)
        self.level.currentIndexChanged.connect(
            lambda _index: self.level_words.setText(self.level.currentText())
        )
        self.reasoning = _text_box("Reasoning: how the observations lead to it", 3)
        self.evaluation_state = QLabel("Not recorded yet.")
        self.evaluation_state.setWordWrap(True)
        self.evaluate_button = QPushButton("Record evaluation")
        self.evaluate_button.clicked.connect(self.record_evaluation)
        evaluation_box = QGroupBox("4. Evaluation")
        evaluation_layout = QVBoxLayout(evaluation_box)
        evaluation_layout.addWidget(self.level)
        evaluation_layout.addWidget(self.level_words)
        evaluation_layout.addWidget(self.reasoning)
        evaluation_layout.addWidget(self.evaluation_state)
        evaluation_layout.addWidget(self.evaluate_button)
        # -- unmasking
        self.unmask_state = QLabel()
        self.unmask_state.setWordWrap(True)
        self.unmask_button = QPushButton("Unmask the model's results")
        self.unmask_button.clicked.connect(self.unmask)
        unmask_box = QGroupBox("5. The model's results")
        unmask_layout = QVBoxLayout(unmask_box)
        unmask_layout.addWidget(self.unmask_state)
        unmask_layout.addWidget(self.unmask_button)
        # -- verification
        self.verification_state = QLabel()
        self.verification_state.setWordWrap(True)
        self.verify_button = QPushButton(
            "Record verification (reveals the first evaluation)"
        )
        self.verify_button.clicked.connect(self.record_verification)
        self.resolution = _text_box("How the difference was resolved", 2)
        self.resolved_level = QComboBox()
        self.resolved_level.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.resolved_level.setMinimumContentsLength(24)
        self.resolve_button = QPushButton("Record the resolution")
        self.resolve_button.clicked.connect(self.record_resolution)
        self.resolution_box = QWidget()
        resolution_layout = QVBoxLayout(self.resolution_box)
        resolution_layout.setContentsMargins(0, 0, 0, 0)
        resolution_layout.addWidget(QLabel("Resolved level"))
        resolution_layout.addWidget(self.resolved_level)
        resolution_layout.addWidget(self.resolution)
        resolution_layout.addWidget(self.resolve_button)
        verification_box = QGroupBox("6. Verification")
        verification_layout = QVBoxLayout(verification_box)
        verification_layout.addWidget(self.verification_state)
        verification_layout.addWidget(self.verify_button)
        verification_layout.addWidget(self.resolution_box)
        # -- order of work
        self.order = QTreeWidget()
        self.order.setHeaderLabels(["Time", "Who", "What"])
        self.order.setRootIsDecorated(False)
        self.order.setMinimumHeight(120)
        order_box = QGroupBox("Order of work (as recorded)")
        QVBoxLayout(order_box).addWidget(self.order)
        # -- the worksheet (the right, wide column)
        self.worksheet_tree = WorksheetTree()
        self.worksheet_notes = _text_box("Notes on the comparison as a whole", 1)
        self.worksheet_state = QLabel("Not recorded yet.")
        self.worksheet_state.setWordWrap(True)
        self.save_worksheet_button = QPushButton("Save worksheet")
        self.save_worksheet_button.clicked.connect(self.save_worksheet)
        worksheet_box = QGroupBox("3. Comparison: feature worksheet (ASTM E3149)")
        worksheet_layout = QVBoxLayout(worksheet_box)
        worksheet_layout.addWidget(self.worksheet_tree, 1)
        worksheet_layout.addWidget(self.worksheet_notes)
        bottom = QHBoxLayout()
        bottom.addWidget(self.worksheet_state, 1)
        bottom.addWidget(self.save_worksheet_button)
        worksheet_layout.addLayout(bottom)

        steps = QWidget()
        steps_layout = QVBoxLayout(steps)
        for box in (
            case_box,
            self.questioned_form,
            self.known_form,
            evaluation_box,
            unmask_box,
            verification_box,
            order_box,
        ):
            steps_layout.addWidget(box)
        steps_layout.addStretch(1)
        self.steps_area = QScrollArea()
        self.steps_area.setWidget(steps)
        self.steps_area.setWidgetResizable(True)
        self.steps_area.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.steps_area.setMinimumWidth(360)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.steps_area)
        self.splitter.addWidget(worksheet_box)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([390, 640])
        layout = QVBoxLayout(self)
        layout.addWidget(self.pair_label)
        layout.addWidget(self.splitter, 1)
        self.refresh()

    # ---- what is shown --------------------------------------------------------------
    @property
    def case(self) -> Case | None:
        return self.controller.case

    def set_pair(self, questioned: str, known: str, comparison_id: int | None) -> None:
        """The pair the window shows (``""``: none)."""
        self._keep_drafts()
        self._filled = {}  # the forms still show the old pair: nothing to keep
        self.questioned, self.known = questioned, known
        self.comparison_id = comparison_id
        self.refresh()

    # ---- unsaved edits --------------------------------------------------------------
    # What the examiner typed and did not record survives a refresh (another tab
    # added an annotation, a record was made elsewhere) and a change of pair: it is
    # kept as a draft per form, shown again - marked unsaved - and never recorded
    # without the examiner's click.
    def _form_keys(self) -> dict[str, tuple[str, str]]:
        pair = f"{self.questioned}/{self.known}"
        return {
            "questioned": ("analysis", self.questioned),
            "known": ("analysis", self.known),
            "worksheet": ("worksheet", pair),
            "evaluation": ("evaluation", pair),
        }

    def _form_values(self) -> dict[str, tuple[Any, Any]]:
        """Per form: (what it means, as the case would store it; what is typed).
        Drafts are told apart by the first - a trailing newline is no edit - and
        restored from the second."""
        notes = self.worksheet_notes.toPlainText()
        sheet = self.worksheet_tree.worksheet(notes.strip())
        reasoning = self.reasoning.toPlainText()
        return {
            "questioned": _analysis_value(self.questioned_form),
            "known": _analysis_value(self.known_form),
            "worksheet": (
                json.dumps(
                    Worksheet.from_dict(sheet.to_dict()).to_dict(), sort_keys=True
                ),
                (json.dumps(sheet.to_dict()), notes),
            ),
            "evaluation": (
                (self.level.currentData(), printable(reasoning).strip()),
                (self.level.currentData(), reasoning),
            ),
        }

    def _keep_drafts(self) -> None:
        """Note every form whose content differs from what it was filled with."""
        if not self._filled:
            return
        keys = self._form_keys()
        for name, value in self._form_values().items():
            filled = self._filled.get(name)
            if filled is None or value[0] != filled[0]:
                self.drafts[keys[name]] = value
            else:
                self.drafts.pop(keys[name], None)

    def _restore_drafts(self) -> None:
        """After filling from the records: remember that, then put back any kept
        draft that still differs from it."""
        self._filled = self._form_values()
        keys = self._form_keys()
        for name, filled in self._filled.items():
            draft = self.drafts.get(keys[name])
            if draft is None or draft[0] == filled[0]:
                self.drafts.pop(keys[name], None)
                continue
            typed = draft[1]
            if name in ("questioned", "known"):
                form = self.questioned_form if name == "questioned" else self.known_form
                form.restore(typed, UNSAVED)
            elif name == "worksheet":
                sheet, notes = typed
                self.worksheet_tree.show_worksheet(
                    Worksheet.from_dict(json.loads(sheet))
                )
                self.worksheet_notes.setPlainText(notes)
                self.worksheet_state.setText(UNSAVED)
            else:
                level, reasoning = typed
                self.level.setCurrentIndex(max(0, self.level.findData(level)))
                self.reasoning.setPlainText(reasoning)
                self.evaluation_state.setText(UNSAVED)

    def unsaved(self) -> list[str]:
        """What is typed and not recorded (for a question before closing)."""
        self._keep_drafts()
        return [f"{kind} of {what}" for kind, what in self.drafts]

    def refresh(self) -> None:
        """Re-read the case's settings and this pair's records (unsaved edits are
        kept)."""
        self._keep_drafts()
        self._filled = {}
        if self.case is not self._drafts_case:  # another case: its labels differ
            self.drafts.clear()
            self._drafts_case = self.case
        examination = self.controller.examination()
        case = self.case
        if examination is None or case is None:
            self.questioned = self.known = ""
            self.comparison_id = None
        self._show_settings(examination)
        if case is not None and not self._pair_exists(case):
            self.questioned = self.known = ""  # a face of it was rejected
            self.comparison_id = None
        pair = bool(self.questioned and self.known) and examination is not None
        self.pair_label.setText(
            f"Pair {self.questioned} (questioned) / {self.known} (known)"
            + (self._blind_note() if self.controller.blind else "")
            if pair
            else NO_PAIR
        )
        if examination is None or not pair:
            self._show_nothing()
            return
        writable = case is not None and not case.read_only
        why = "" if writable else READ_ONLY
        q, k = self.questioned, self.known
        q_analysis = examination.analysis(q)
        k_analysis = examination.analysis(k)
        self.questioned_form.setTitle(f"1. Analysis of the questioned face {q}")
        self.known_form.setTitle(f"2. Analysis of the known face {k}")
        self.questioned_form.show_analysis(q_analysis, self._analysis_state(q_analysis))
        self.known_form.show_analysis(k_analysis, self._analysis_state(k_analysis))
        self.questioned_form.set_recordable(writable, why)
        first = f"Record the analysis of {q} first: the questioned image is analysed "
        first += "before the known one is looked at (ACE-V)."
        self.known_form.set_recordable(
            writable and q_analysis is not None, why or first
        )
        self._show_worksheet(examination, writable, q_analysis is not None)
        self._show_evaluation(examination, writable, q_analysis is not None)
        self._show_unmasking(examination, writable)
        self._show_verification(examination, writable)
        self._show_order(examination)
        self._restore_drafts()

    def _pair_exists(self, case: Case) -> bool:
        if not (self.questioned and self.known):
            return True
        try:
            case.face(self.questioned)
            case.face(self.known)
        except BadInputError:
            return False
        return True

    def _blind_note(self) -> str:
        return (
            f" — blind verification by {self.controller.user}: the first "
            "examiner's records are hidden"
        )

    def _analysis_state(self, analysis: Analysis | None) -> str:
        if analysis is None:
            return "Not recorded yet."
        return (
            f"Recorded: {SUITABILITY[analysis.suitability]}. Recording again "
            "keeps this one and adds a revision."
        )

    def _show_settings(self, examination: Examination | None) -> None:
        case = self.case
        writable = case is not None and not case.read_only
        if examination is None:
            self.propositions_label.setText("No case open.")
            self.scale_label.setText("")
            self.unmasking_label.setText("")
            for button in (self.propositions_button, self.unmasking_off_button):
                button.setEnabled(False)
            return
        settings = examination.settings()
        propositions = settings.propositions
        self.propositions_label.setText(
            f"First: {propositions.first}\nSecond: {propositions.second}"
            if propositions.complete
            else "Not recorded yet."
        )
        self.propositions_button.setEnabled(writable and not self.controller.blind)
        self.propositions_button.setToolTip(
            READ_ONLY
            if not writable
            else "Set by the first examiner"
            if self.controller.blind
            else "The request, two competing propositions, the relevant population"
        )
        self.scale_label.setText(f"Scale: {settings.scale.name}")
        self.scale_label.setToolTip(settings.scale.source)
        if settings.sequential_unmasking:
            self.unmasking_label.setText(
                "Sequential unmasking on: results hidden until you evaluate"
            )
            self.unmasking_label.setToolTip(
                "Sequential unmasking: the model's results of a pair stay hidden "
                "until you have recorded your analysis and evaluation of it."
            )
        else:
            self.unmasking_label.setText(
                "Sequential unmasking off: the model's results are shown"
            )
            self.unmasking_label.setToolTip(
                "Turned off for this case (the reason is in the audit trail and "
                "the report)."
            )
        self.unmasking_off_button.setEnabled(
            writable and settings.sequential_unmasking and not self.controller.blind
        )
        self.unmasking_off_button.setToolTip(
            READ_ONLY
            if not writable
            else "It is off for this case"
            if not settings.sequential_unmasking
            else "Not in a blind verification"
            if self.controller.blind
            else "Asks for the reason, which is recorded and printed in the report"
        )
        self._fill_levels(settings.scale)

    def _fill_levels(self, scale: ConclusionScale) -> None:
        for combo in (self.level, self.resolved_level):
            wanted = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            # nothing chosen until the examiner chooses: a level left over from
            # another pair (or another examiner) must not be one click away
            combo.addItem(CHOOSE_LEVEL, None)
            for level in scale.levels:
                combo.addItem(
                    level_text(level.words, level.likelihood_ratio), level.code
                )
            combo.setCurrentIndex(max(0, combo.findData(wanted)))
            combo.blockSignals(False)
        self.level_words.setText(self.level.currentText())

    def _show_nothing(self) -> None:
        for form in (self.questioned_form, self.known_form):
            form.show_analysis(None, NO_PAIR)
            form.set_recordable(False, NO_PAIR)
        self.worksheet_tree.show_worksheet(None)
        self.worksheet_tree.show_model_effects(None)
        self.worksheet_tree.set_editable(False, NO_PAIR)
        self.worksheet_notes.setPlainText("")
        self.worksheet_state.setText(NO_PAIR)
        for button in (
            self.save_worksheet_button,
            self.evaluate_button,
            self.unmask_button,
            self.verify_button,
            self.resolve_button,
        ):
            button.setEnabled(False)
            button.setToolTip(NO_PAIR)
        self.evaluation_state.setText(NO_PAIR)
        self.unmask_state.setText("")
        self.verification_state.setText("")
        self.resolution_box.hide()
        self.order.clear()

    def _show_worksheet(
        self, examination: Examination, writable: bool, analysed: bool
    ) -> None:
        q, k = self.questioned, self.known
        case = self.case
        assert case is not None
        shown = examination.visible_annotations(case.annotations())
        marks = {exhibit.id: exhibit.mark for exhibit in case.exhibits()}
        q_mark, k_mark = case.face(q).mark, case.face(k).mark

        def choices(mark: str) -> list[tuple[int, str]]:
            return [
                (a.id, a.label or a.component or a.shape)
                for a in shown
                if a.exhibit_id is not None and marks.get(a.exhibit_id) == mark
            ]

        self.worksheet_tree.set_annotation_choices(choices(q_mark), choices(k_mark))
        worksheet = examination.worksheet(q, k)
        self.worksheet_tree.show_worksheet(worksheet)
        self.worksheet_notes.setPlainText(worksheet.notes if worksheet else "")
        count = len(
            examination.records(
                "worksheet", questioned=q, known=k, role=examination.role
            )
        )
        self.worksheet_state.setText(
            f"Saved (revision {count}); saving again adds a revision."
            if worksheet
            else "Not saved yet."
        )
        why = (
            READ_ONLY
            if not writable
            else ("" if analysed else f"Record the analysis of {q} first (ACE-V).")
        )
        on = writable and analysed
        self.worksheet_tree.set_editable(on, why)
        if on:  # the pickers know whether there is anything to pick
            self.worksheet_tree.set_annotation_choices(choices(q_mark), choices(k_mark))
        self.save_worksheet_button.setEnabled(on)
        self.save_worksheet_button.setToolTip(why)
        self.worksheet_tree.show_model_effects(self._model_effects(examination))

    def _model_effects(self, examination: Examination) -> dict[str, str] | None:
        """The stored components explanation's effects, only once unmasked."""
        case = self.case
        if case is None or self.comparison_id is None:
            return None
        if examination.masked(self.questioned, self.known):
            return None
        found = [
            e
            for e in case.explanations(self.comparison_id)
            if e.method == COMPONENTS_METHOD
        ]
        if not found:
            return None
        details = found[-1].result.get("details", {}).get("components")
        return model_effects(details) if isinstance(details, dict) else None

    def _show_evaluation(
        self, examination: Examination, writable: bool, analysed: bool
    ) -> None:
        q, k = self.questioned, self.known
        evaluation = examination.evaluation(q, k)
        masked = examination.masked(q, k)
        unmasking = examination.settings().sequential_unmasking
        if evaluation is not None:
            self.level.setCurrentIndex(max(0, self.level.findData(evaluation.level)))
            self.reasoning.setPlainText(evaluation.reasoning)
        else:
            self.level.setCurrentIndex(0)  # "choose a level"
            self.reasoning.setPlainText("")
        lines = [
            f"Recorded: {evaluation.words}." if evaluation else "Not recorded yet."
        ]
        if unmasking and not masked:
            lines.append(
                "The model's results were shown: recording again is a revision, "
                "recorded after the model's results were shown (the first one "
                "stays and the report prints both)."
            )
        self.evaluation_state.setText(" ".join(lines))
        why = (
            READ_ONLY
            if not writable
            else ("" if analysed else f"Record the analysis of {q} first (ACE-V).")
        )
        self.evaluate_button.setEnabled(writable and analysed)
        self.evaluate_button.setToolTip(why)
        self.level.setEnabled(writable and analysed)
        self.reasoning.setEnabled(writable and analysed)

    def unmask_blocker(self, examination: Examination) -> str:
        """Why the pair cannot be unmasked now ("" : it can)."""
        q, k = self.questioned, self.known
        case = self.case
        if case is not None and case.read_only:
            return READ_ONLY
        if not examination.settings().sequential_unmasking:
            return "Sequential unmasking is off for this case: the results are shown."
        if not examination.masked(q, k):
            return "Already unmasked: the other tabs show the model's results."
        if examination.analysis(q) is None:
            return f"Record the analysis of {q} first."
        if examination.evaluation(q, k) is None:
            return (
                f"Record your evaluation of {q} / {k} first: the model's results "
                "are shown only after it (sequential unmasking)."
            )
        return ""

    def _show_unmasking(self, examination: Examination, writable: bool) -> None:
        masked = examination.masked(self.questioned, self.known)
        why = self.unmask_blocker(examination)
        self.unmask_button.setEnabled(not why)
        self.unmask_button.setToolTip(why)
        self.unmask_state.setText(
            "Hidden: the score, likelihood ratio, decision, rank and explanations "
            "of this pair are not shown yet."
            if masked
            else "Shown in the other tabs."
        )

    def _show_verification(self, examination: Examination, writable: bool) -> None:
        q, k = self.questioned, self.known
        blind = self.controller.blind
        verification = self._verification(examination, blind)
        scale = examination.settings().scale
        self.resolution_box.hide()
        if verification is None:
            verifiers = examination.verifiers()
            self.verification_state.setText(
                "Not verified yet."
                + (
                    " Record your own analysis and evaluation first; recording "
                    "the verification then compares them with the first "
                    "examiner's."
                    if blind
                    else " A second examiner verifies blind: File → Open for "
                    "blind verification…"
                )
                + (f" Verifiers so far: {', '.join(verifiers)}." if verifiers else "")
            )
        else:

            def words(code: str) -> str:
                try:
                    return scale.level(code).words
                except Exception:  # a level of another scale: its code
                    return code

            text = (
                f"{verification.mode.capitalize()} verification: "
                f"{verification.outcome}. First examiner: "
                f"{words(verification.examiner_level)}; verifier: "
                f"{words(verification.verifier_level)}."
            )
            if verification.outcome == "disagreement":
                text += (
                    f" Resolved: {words(verification.resolved_level)} "
                    f"({verification.resolution})."
                    if verification.resolution
                    else " Not resolved yet: either examiner records the "
                    "resolution below."
                )
                self.resolution_box.setVisible(not verification.resolution)
            self.verification_state.setText(text)
        evaluated = examination.evaluation(q, k) is not None
        can_verify = writable and blind and evaluated and verification is None
        self.verify_button.setVisible(blind)
        self.verify_button.setEnabled(can_verify)
        self.verify_button.setToolTip(
            READ_ONLY
            if not writable
            else ""
            if can_verify
            else "Recorded (a disagreement is resolved below)."
            if verification is not None
            else "Record your own evaluation of the pair first."
        )
        self.resolve_button.setEnabled(writable)
        self.resolve_button.setToolTip("" if writable else READ_ONLY)

    def _verification(
        self, examination: Examination, blind: bool
    ) -> Verification | None:
        """The pair's verification; in a blind session only this verifier's own
        (another verifier's names the first examiner's level)."""
        if not blind:
            return examination.verification(self.questioned, self.known)
        user = self.case.user if self.case is not None else ""
        mine = [
            record
            for record in examination.records(
                "verification", questioned=self.questioned, known=self.known
            )
            if record.author == user
        ]
        return mine[-1].verification() if mine else None

    def _show_order(self, examination: Examination) -> None:
        self.order.clear()
        for step in examination.seen_order(self.questioned, self.known):
            # "2026-12-01 19:39:05" (the whole UTC time in the tooltip)
            shown = step.time[:19].replace("T", " ")
            item = QTreeWidgetItem([shown, f"{step.author} ({step.role})", step.what])
            item.setToolTip(0, step.time)
            item.setToolTip(2, step.what)
            self.order.addTopLevelItem(item)
        for column in range(2):
            self.order.resizeColumnToContents(column)

    # ---- recording ------------------------------------------------------------------
    def _change(self, change: Callable[[Examination], Any]) -> Any:
        """One write through the controller (refused: one line, nothing changed)."""
        return self.controller.change_examination(change)

    def _record_analysis(self, face: str, form: AnalysisForm) -> None:
        if face:
            self._change(lambda exam: exam.record_analysis(face, form.analysis()))

    def save_worksheet(self) -> None:
        q, k = self.questioned, self.known
        notes = self.worksheet_notes.toPlainText().strip()
        self._change(
            lambda exam: exam.record_worksheet(
                q, k, self.worksheet_tree.worksheet(notes)
            )
        )

    def record_evaluation(self) -> None:
        q, k = self.questioned, self.known
        level = str(self.level.currentData() or "")
        if not level:
            self.controller.status.emit(
                f"Choose a level of the scale for {q} / {k} first; nothing was "
                "recorded."
            )
            return
        reasoning = self.reasoning.toPlainText().strip()
        self._change(lambda exam: exam.record_evaluation(q, k, level, reasoning))

    def unmask(self) -> None:
        q, k = self.questioned, self.known
        self._change(lambda exam: exam.unmask(q, k))

    def record_verification(self) -> None:
        q, k = self.questioned, self.known
        self._change(lambda exam: exam.record_verification(q, k))

    def record_resolution(self) -> None:
        q, k = self.questioned, self.known
        resolution = self.resolution.toPlainText().strip()
        level = str(self.resolved_level.currentData() or "")
        if not level:
            self.controller.status.emit(
                f"Choose the resolved level for {q} / {k} first; nothing was recorded."
            )
            return
        self._change(
            lambda exam: exam.record_verification(
                q, k, resolution=resolution, resolved_level=level
            )
        )

    # ---- case settings --------------------------------------------------------------
    def edit_propositions(self) -> PropositionsDialog | None:
        examination = self.controller.examination()
        if examination is None:
            return None
        dialog = PropositionsDialog(examination.settings().propositions, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_propositions(dialog.propositions()))
        self.propositions_dialog = dialog
        dialog.open()
        return dialog

    def set_propositions(self, propositions: Propositions) -> None:
        self._change(lambda exam: exam.set_propositions(propositions))

    def ask_unmasking_reason(self) -> str | None:
        """The reason for turning sequential unmasking off (None: cancelled);
        tests answer it instead."""
        reason, ok = QInputDialog.getMultiLineText(
            self,
            "Turn sequential unmasking off",
            "Why? The model's results of every pair are then shown before your "
            "evaluation; the reason is recorded and printed in the report.",
        )
        return reason if ok else None

    def turn_unmasking_off(self) -> None:
        reason = self.ask_unmasking_reason()
        if reason is None:
            return
        self._change(lambda exam: exam.set_sequential_unmasking(False, reason))


def _analysis_value(form: AnalysisForm) -> tuple[Any, Any]:
    """(the analysis as the case stores it, or the raw form when it is not yet
    complete; what is typed)."""
    typed = form.draft()
    try:
        meaning: Any = json.dumps(
            Analysis.from_dict(form.analysis().to_dict()).to_dict(), sort_keys=True
        )
    except BadInputError:
        meaning = typed
    return meaning, typed
