"""Label and note of a new annotation, asked for when it is drawn."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QWidget,
)

from core.case.store import FISWG_COMPONENTS


class AnnotationDialog(QDialog):
    """Label, note and optional FISWG component for a new annotation."""

    def __init__(self, shape: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"New {shape}")
        self.label = QLineEdit()
        self.note = QLineEdit()
        self.component = QComboBox()
        self.component.addItem("(none)", None)
        for name in FISWG_COMPONENTS:
            self.component.addItem(name, name)
        form = QFormLayout(self)
        form.addRow("Label", self.label)
        form.addRow("Note", self.note)
        form.addRow("FISWG component", self.component)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, Any]:
        return {
            "label": self.label.text().strip(),
            "note": self.note.text().strip(),
            "component": self.component.currentData(),
        }
