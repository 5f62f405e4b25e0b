"""The analysis of one image (ACE-V's A): suitability, reasons, image factors,
the components that can and cannot be seen, notes.

The form only reads and fills an ``acev.Analysis``; recording it (and the order
of work: the questioned image first) is ``core.case.examination``'s.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.case.acev import FEATURE_LIST, IMAGE_FACTORS, SUITABILITY, Analysis
from xfr_desktop.widgets.flow_layout import FlowLayout

# A component's check box: ticked, seen; empty, not seen; half, not stated.
VISIBLE = Qt.CheckState.Checked
NOT_VISIBLE = Qt.CheckState.Unchecked
NOT_STATED = Qt.CheckState.PartiallyChecked
COMPONENTS_HINT = "Components seen: ✓ visible, empty: not visible, ■ not stated"


def _text_box(placeholder: str, lines: int = 2) -> QPlainTextEdit:
    box = QPlainTextEdit()
    box.setPlaceholderText(placeholder)
    box.setTabChangesFocus(True)
    box.setFixedHeight(box.fontMetrics().lineSpacing() * lines + 14)
    return box


class AnalysisForm(QGroupBox):
    """One face's analysis; ``record_requested``: the examiner pressed Record (the
    panel reads ``analysis()``, which refuses an incomplete record in one line)."""

    record_requested = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.suitability = QComboBox()
        for code, words in SUITABILITY.items():
            self.suitability.addItem(words, code)
        self.reasons = _text_box("Why (required unless suitable)")
        self.factors: dict[str, QCheckBox] = {}
        factors_box = QWidget()
        flow = FlowLayout(factors_box)
        for factor in IMAGE_FACTORS:
            check = QCheckBox(factor)
            self.factors[factor] = check
            flow.addWidget(check)
        self.components = QListWidget()
        self.components.setFixedHeight(
            self.components.fontMetrics().lineSpacing() * 6 + 12
        )
        for component in FEATURE_LIST:
            item = QListWidgetItem(component.name)
            item.setData(Qt.ItemDataRole.UserRole, component.key)
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemIsUserTristate
            )
            item.setCheckState(NOT_STATED)
            self.components.addItem(item)
        self.notes = _text_box("Notes", 1)
        self.state = QLabel("Not recorded yet.")
        self.state.setWordWrap(True)
        self.record_button = QPushButton("Record analysis")
        self.record_button.clicked.connect(self.record_requested)
        form = QFormLayout()
        form.addRow("Suitability", self.suitability)
        form.addRow("Reasons", self.reasons)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Image factors"))
        layout.addWidget(factors_box)
        hint = QLabel(COMPONENTS_HINT)
        hint.setWordWrap(True)
        hint.setToolTip("Click a component to change it")
        layout.addWidget(hint)
        layout.addWidget(self.components)
        layout.addWidget(self.notes)
        layout.addWidget(self.state)
        layout.addWidget(self.record_button)

    def component_items(self) -> list[QListWidgetItem]:
        return [self.components.item(i) for i in range(self.components.count())]

    def analysis(self) -> Analysis:
        """The record as filled in (``BadInputError`` when incomplete)."""
        visible, hidden = [], []
        for item in self.component_items():
            key = str(item.data(Qt.ItemDataRole.UserRole))
            if item.checkState() == VISIBLE:
                visible.append(key)
            elif item.checkState() == NOT_VISIBLE:
                hidden.append(key)
        return Analysis(
            suitability=str(self.suitability.currentData()),
            reasons=self.reasons.toPlainText().strip(),
            factors=tuple(f for f, check in self.factors.items() if check.isChecked()),
            visible=tuple(visible),
            not_visible=tuple(hidden),
            notes=self.notes.toPlainText().strip(),
        )

    def draft(self) -> tuple[Any, ...]:
        """Everything filled in, as it stands (complete or not): what an unsaved
        edit is kept as, and compared with."""
        return (
            self.suitability.currentIndex(),
            self.reasons.toPlainText(),
            tuple(check.isChecked() for check in self.factors.values()),
            tuple(item.checkState().value for item in self.component_items()),
            self.notes.toPlainText(),
        )

    def restore(self, draft: tuple[Any, ...], state: str) -> None:
        """Fill the form with a kept ``draft``."""
        suitability, reasons, factors, components, notes = draft
        self.suitability.setCurrentIndex(suitability)
        self.reasons.setPlainText(reasons)
        for check, on in zip(self.factors.values(), factors, strict=True):
            check.setChecked(on)
        for item, value in zip(self.component_items(), components, strict=True):
            item.setCheckState(Qt.CheckState(value))
        self.notes.setPlainText(notes)
        self.state.setText(state)

    def show_analysis(self, analysis: Analysis | None, state: str) -> None:
        """Fill the form with the stored record (empty when none)."""
        stored = analysis or Analysis("suitable")
        self.suitability.setCurrentIndex(
            max(0, list(SUITABILITY).index(stored.suitability))
        )
        self.reasons.setPlainText(stored.reasons)
        for factor, check in self.factors.items():
            check.setChecked(factor in stored.factors)
        for item in self.component_items():
            key = item.data(Qt.ItemDataRole.UserRole)
            item.setCheckState(
                VISIBLE
                if key in stored.visible
                else NOT_VISIBLE
                if key in stored.not_visible
                else NOT_STATED
            )
        self.notes.setPlainText(stored.notes)
        self.state.setText(state)

    def set_recordable(self, on: bool, why: str = "") -> None:
        """Off: the fields can still be read, nothing can be recorded (why)."""
        self.record_button.setEnabled(on)
        self.record_button.setToolTip("" if on else why)
        for widget in (self.suitability, self.reasons, self.components, self.notes):
            widget.setEnabled(on)
            widget.setToolTip("" if on else why)
        for check in self.factors.values():
            check.setEnabled(on)
