"""The GUI's one error path: every failure is shown the same way.

Known input problems (``core.errors.BadInputError``) already name the file and the
reason; anything else is reported as an internal error with the traceback under
"Show Details".  Dialogs are non-modal (``open()``), so background work and tests
never block on them; the last report is kept for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core.errors import BadInputError


@dataclass(frozen=True)
class ErrorReport:
    title: str
    message: str
    details: str


class ErrorReporter(QObject):
    reported = Signal(object)  # ErrorReport

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._parent = parent
        self.last_report: ErrorReport | None = None
        self.last_dialog: QMessageBox | None = None

    def report(
        self, error: BaseException, details: str = "", context: str = ""
    ) -> None:
        if isinstance(error, BadInputError):
            title, message = "Cannot use this input", str(error)
        else:
            title = "Internal error"
            message = f"{type(error).__name__}: {error}"
        if context:
            message = f"{context}\n\n{message}"
        report = ErrorReport(title, message, details)
        self.last_report = report
        self.reported.emit(report)
        dialog = QMessageBox(
            QMessageBox.Icon.Warning, title, message, parent=self._parent
        )
        if details:
            dialog.setDetailedText(details)
        self.last_dialog = dialog
        dialog.open()
