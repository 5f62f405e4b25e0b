"""Export report: where to write it, who signs it, which comparisons go in.

The checklist starts with the comparisons the examiner looked at in this session
(accepted and rejected alike), or every current one when none was opened.
Comparisons computed on a face that was corrected since are listed, marked and
unchecked: the report prints one only under a SUPERSEDED banner.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.calibration import strength_of_evidence
from core.case.store import Case


@dataclass(frozen=True)
class ComparisonItem:
    comparison_id: int
    text: str
    superseded: bool
    checked: bool


@dataclass(frozen=True)
class ReportChoice:
    path: str
    identity: str  # "" for an unsigned report
    password: str
    comparison_ids: tuple[int, ...]


def comparison_items(case: Case, viewed: Collection[int]) -> list[ComparisonItem]:
    """Every comparison of the case as the checklist shows it, current ones first."""
    rows = []
    for comparison in case.comparisons():
        probe = case.face_by_id(comparison.probe_face_id)
        gallery = case.face_by_id(comparison.gallery_face_id)
        strength = strength_of_evidence(
            comparison.similarity, comparison.model_id, comparison.model_sha256
        )
        lr = "no LR" if strength is None else f"LR {strength[0]:.3g}"
        superseded = probe.superseded or gallery.superseded
        text = f"{probe.label} × {gallery.label} — {comparison.decision}, {lr}"
        if superseded:
            text += "  (SUPERSEDED: a face was corrected since)"
        rows.append((comparison.id, text, superseded))
    current = [cid for cid, _, old in rows if not old]
    chosen = {cid for cid in current if cid in viewed} or set(current)
    items = [
        ComparisonItem(cid, text, old, cid in chosen and not old)
        for cid, text, old in rows
    ]
    return sorted(items, key=lambda item: item.superseded)


class ReportDialog(QDialog):
    def __init__(
        self,
        case: Case,
        viewed: Collection[int],
        default_path: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.path = QLineEdit(default_path)
        self.identity = QLineEdit()
        self.identity.setPlaceholderText("none: the report is not signed")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("never stored")
        form = QFormLayout()
        form.addRow("Report file*", self._with_button(self.path, self._choose_path))
        form.addRow(
            "Sign with identity", self._with_button(self.identity, self._choose_id)
        )
        form.addRow("Identity password", self.password)
        self.comparisons = QListWidget()
        items = comparison_items(case, viewed)
        for item in items:
            row = QListWidgetItem(item.text)
            row.setData(Qt.ItemDataRole.UserRole, item.comparison_id)
            row.setFlags(row.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            state = Qt.CheckState.Checked if item.checked else Qt.CheckState.Unchecked
            row.setCheckState(state)
            if item.superseded:
                row.setForeground(Qt.GlobalColor.darkRed)
                row.setToolTip(
                    "Computed on a face that was corrected since; if checked, the "
                    "report prints it under a SUPERSEDED banner, not as a result."
                )
            self.comparisons.addItem(row)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.path.textChanged.connect(self._update)
        self.identity.textChanged.connect(self._update)
        self.comparisons.itemChanged.connect(self._update)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        opened = any(i.checked and i.comparison_id in viewed for i in items)
        layout.addWidget(
            QLabel(
                "Comparisons in the report (with their explanations); checked: "
                + (
                    "the ones you opened in this session:"
                    if opened
                    else "every current one (you opened none in this session):"
                )
            )
        )
        layout.addWidget(self.comparisons, 1)
        layout.addWidget(self.buttons)
        self.resize(560, 420)
        self._update()

    @staticmethod
    def _with_button(edit: QLineEdit, choose) -> QHBoxLayout:
        button = QPushButton("Choose…")
        button.clicked.connect(choose)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return row

    def _choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export report", self.path.text(), "PDF (*.pdf)"
        )
        if path:
            self.path.setText(path)

    def _choose_id(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Sign with your identity", "", "Identity (*.p12 *.pfx)"
        )
        if path:
            self.identity.setText(path)

    def checked_ids(self) -> tuple[int, ...]:
        rows = (self.comparisons.item(i) for i in range(self.comparisons.count()))
        return tuple(
            row.data(Qt.ItemDataRole.UserRole)
            for row in rows
            if row.checkState() == Qt.CheckState.Checked
        )

    def _update(self) -> None:
        self.password.setEnabled(bool(self.identity.text().strip()))
        # no comparison checked would mean "the default choice": ask for one instead
        ready = bool(self.path.text().strip()) and (
            self.comparisons.count() == 0 or bool(self.checked_ids())
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)

    def choice(self) -> ReportChoice:
        identity = self.identity.text().strip()
        return ReportChoice(
            path=str(Path(self.path.text().strip())),
            identity=identity,
            password=self.password.text() if identity else "",
            comparison_ids=self.checked_ids(),
        )
