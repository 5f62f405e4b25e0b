"""The new-case dialog: case number, examiner, title, agency, folder, and whether
the model's results are hidden until the examiner's own evaluation (sequential
unmasking: on by default, a bias control ENFSI and FISWG ask for).

A folder that already holds something is refused here, with the reason under the
form, so the examiner keeps what they typed and only picks another folder.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from xfr_desktop.errors import FolderExistsError, folder_is_taken
from xfr_desktop.theme import problem_style

SEQUENTIAL_UNMASKING = (
    "Sequential unmasking (hide the model's results until you have recorded your "
    "analysis and evaluation)"
)


class NewCaseDialog(QDialog):
    """Case number, examiner, title, agency and the folder of a new case."""

    def __init__(self, examiner: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New case")
        self.setMinimumWidth(560)  # room for a whole folder path and the reason
        self.number = QLineEdit()
        self.examiner = QLineEdit(examiner)
        self.title = QLineEdit()
        self.agency = QLineEdit()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a new folder, e.g. …/2026-0077.xfrcase")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Case number*", self.number)
        form.addRow("Examiner*", self.examiner)
        form.addRow("Title", self.title)
        form.addRow("Agency", self.agency)
        form.addRow("Case folder*", folder_row)
        self.sequential_unmasking = QCheckBox(SEQUENTIAL_UNMASKING)
        self.sequential_unmasking.setChecked(True)
        self.sequential_unmasking.setToolTip(
            "The score, likelihood ratio, decision, rank and explanations of a "
            "pair stay hidden until you have recorded your analysis and "
            "evaluation of it (Examination tab); then you unmask them."
        )
        form.addRow(self.sequential_unmasking)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for edit in (self.number, self.examiner, self.folder):
            edit.textChanged.connect(self._update_ok)
        self.problem = QLabel()  # why OK did not close the dialog
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.hide()
        self.folder.textChanged.connect(self.problem.hide)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self._update_ok()

    def _choose_folder(self) -> None:
        name = self.number.text().strip() or "case"
        path, _ = QFileDialog.getSaveFileName(
            self, "Folder for the new case", f"{name}.xfrcase"
        )
        if path:
            self.folder.setText(path)

    def _update_ok(self) -> None:
        ready = all(e.text().strip() for e in (self.number, self.examiner, self.folder))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)

    def accept(self) -> None:
        folder = self.folder.text().strip()
        if folder and folder_is_taken(folder):
            self.problem.setText(str(FolderExistsError(folder)))
            self.problem.setStyleSheet(problem_style(self.palette()))  # this theme's
            self.problem.show()
            return
        super().accept()

    def values(self) -> tuple[str, str, str, str, str]:
        """Folder, number, examiner, title, agency (``unmasking()``: the box)."""
        return (
            self.folder.text().strip(),
            self.number.text().strip(),
            self.examiner.text().strip(),
            self.title.text().strip(),
            self.agency.text().strip(),
        )

    def unmasking(self) -> bool:
        """Whether the new case hides the model's results (sequential unmasking)."""
        return self.sequential_unmasking.isChecked()
