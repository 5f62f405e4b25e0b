"""The report is written: where it is, what it is, and what to do with it now.

A status-bar message vanishes after a few seconds; a report that goes to court
deserves a dialog that stays until it is closed.  It shows the path (selectable, to
copy into a letter), the report id, pages, who signed it and the file's SHA-256
(the one the audit trail records), and offers to open the report, verify it now
(the same verification as File → Verify a report…, trusting the signer's own
certificate when the identity folder has it) or show it in its folder.

Opening goes through ``opener`` (``QDesktopServices.openUrl`` by default), so a
test checks the URL that would be opened without opening anything.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.report.api import ReportCheck, ReportOutcome

UrlOpener = Callable[[QUrl], Any]


def outcome_html(outcome: ReportOutcome) -> str:
    """The facts of a written report, as the dialog lists them."""
    signed = ", ".join(outcome.signed_by) or "not signed"
    rows = [
        ("Report file", str(outcome.path)),
        ("Report id", outcome.report_id),
        ("Pages", str(outcome.pages)),
        ("Signed by", signed),
        ("SHA-256 of the file", outcome.sha256),
    ]
    return "<table>" + "".join(
        f"<tr><td><b>{html.escape(k)}</b>&nbsp;</td><td>{html.escape(v)}</td></tr>"
        for k, v in rows
    ) + "</table>"  # fmt: skip


def check_summary(check: ReportCheck) -> str:
    """One paragraph on a verification, as the dialog shows it under the facts."""
    lines = ["All checks hold." if check.ok else "Not all checks hold."]
    return "\n".join([*lines, *check.findings()])


class ExportDoneDialog(QDialog):
    """Shown once a report is written; stays until the examiner closes it."""

    verify_requested = Signal(object)  # Path of the report

    def __init__(
        self,
        outcome: ReportOutcome,
        opener: UrlOpener | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Report written")
        self.outcome = outcome
        self.opener: UrlOpener = opener or QDesktopServices.openUrl
        heading = QLabel(
            "The report was written and recorded in the case's audit trail."
        )
        heading.setWordWrap(True)
        self.facts = QLabel(outcome_html(outcome))
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verification = QLabel()  # filled by show_check
        self.verification.setWordWrap(True)
        self.verification.setTextFormat(Qt.TextFormat.PlainText)
        self.verification.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.verification.hide()
        self.buttons = QDialogButtonBox()
        self.open_button = self._button("Open report", self.open_report)
        self.verify_button = self._button("Verify now", self.verify_now)
        self.folder_button = self._button("Show in folder", self.show_in_folder)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.accept)
        self.close_button = close
        layout = QVBoxLayout(self)
        # never smaller than its content: a result or a problem line shown later
        # must push the dialog open, not be drawn over the fields
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addWidget(heading)
        layout.addWidget(self.facts)
        layout.addWidget(self.verification)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.resize(640, 300)

    def _button(self, text: str, slot: Callable[[], object]) -> QPushButton:
        button = self.buttons.addButton(text, QDialogButtonBox.ButtonRole.ActionRole)
        button.clicked.connect(slot)
        return button

    @property
    def path(self) -> Path:
        return Path(self.outcome.path)

    def report_url(self) -> QUrl:
        return QUrl.fromLocalFile(str(self.path.resolve()))

    def folder_url(self) -> QUrl:
        return QUrl.fromLocalFile(str(self.path.resolve().parent))

    def open_report(self) -> None:
        self.opener(self.report_url())

    def show_in_folder(self) -> None:
        # No portable "select the file" call exists: the folder is opened.
        self.opener(self.folder_url())

    def verify_now(self) -> None:
        self.verify_button.setEnabled(False)
        self.verification.setText("Verifying the report…")
        self.verification.show()
        self.verify_requested.emit(self.path)

    def show_check(self, check: ReportCheck, note: str = "") -> None:
        """The verification's result, under the facts (``note``: what it trusted)."""
        self.verify_button.setEnabled(True)
        summary = check_summary(check)
        self.verification.setText(f"{summary}\n{note}" if note else summary)
        self.verification.show()

    def verify_failed(self, message: str) -> None:
        self.verify_button.setEnabled(True)
        self.verification.setText(f"The report could not be verified: {message}")
        self.verification.show()
