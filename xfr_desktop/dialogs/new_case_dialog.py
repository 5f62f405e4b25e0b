"""The new-case dialog: case number, examiner, title, agency and folder."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class NewCaseDialog(QDialog):
    """Case number, examiner, title, agency and the folder of a new case."""

    def __init__(self, examiner: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New case")
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
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for edit in (self.number, self.examiner, self.folder):
            edit.textChanged.connect(self._update_ok)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
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

    def values(self) -> tuple[str, str, str, str, str]:
        return (
            self.folder.text().strip(),
            self.number.text().strip(),
            self.examiner.text().strip(),
            self.title.text().strip(),
            self.agency.text().strip(),
        )
