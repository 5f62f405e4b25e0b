"""The request and the two competing propositions of a case (ENFSI BPM; the
ENFSI Guideline for Evaluative Reporting): what was asked, the first and the
second proposition, and the relevant population the second one draws from."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from core.case.acev import Propositions

FIRST_EXAMPLE = "e.g. the person in Q1 is the person in K1"
SECOND_EXAMPLE = "e.g. the person in Q1 is another person of the population"


class PropositionsDialog(QDialog):
    """Edits a ``Propositions``; both propositions are needed for OK."""

    def __init__(self, current: Propositions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Request and propositions")
        self.setMinimumWidth(560)
        self.request = QPlainTextEdit(current.request)
        self.request.setPlaceholderText("What the requester asked")
        self.request.setTabChangesFocus(True)
        self.request.setFixedHeight(self.request.fontMetrics().lineSpacing() * 3 + 14)
        self.first = QLineEdit(current.first)
        self.first.setPlaceholderText(FIRST_EXAMPLE)
        self.second = QLineEdit(current.second)
        self.second.setPlaceholderText(SECOND_EXAMPLE)
        self.population = QLineEdit(current.population)
        self.population.setPlaceholderText("e.g. adult men of the region")
        form = QFormLayout()
        form.addRow("Request", self.request)
        form.addRow("First proposition*", self.first)
        form.addRow("Second proposition*", self.second)
        form.addRow("Relevant population", self.population)
        note = QLabel(
            "The evaluation weighs the observations under both propositions; the "
            "report prints them with the conclusion."
        )
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for edit in (self.first, self.second):
            edit.textChanged.connect(self._update_ok)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self._update_ok()

    def _update_ok(self) -> None:
        ready = bool(self.first.text().strip() and self.second.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)

    def propositions(self) -> Propositions:
        return Propositions(
            self.request.toPlainText().strip(),
            self.first.text().strip(),
            self.second.text().strip(),
            self.population.text().strip(),
        )
