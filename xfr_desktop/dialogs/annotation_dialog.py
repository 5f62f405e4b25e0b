"""Label, note and FISWG component of an annotation: asked for when one is drawn,
and prefilled when the examiner edits one from the annotation list."""

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
    """Label, note and optional FISWG component for a new annotation, or for an
    existing one (``values``: its current label, note and component)."""

    def __init__(
        self,
        shape: str,
        parent: QWidget | None = None,
        values: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title or f"New {shape}")
        self.label = QLineEdit()
        self.note = QLineEdit()
        self.component = QComboBox()
        self.component.addItem("(none)", None)
        for name in FISWG_COMPONENTS:
            self.component.addItem(name, name)
        if values is not None:
            self.label.setText(str(values.get("label") or ""))
            self.note.setText(str(values.get("note") or ""))
            index = self.component.findData(values.get("component"))
            self.component.setCurrentIndex(max(index, 0))
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
