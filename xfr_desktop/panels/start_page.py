"""The start screen: recent cases, New case, Open case, Open demo case.

A recent case is listed by what it says about itself (case number, title,
examiner), read read-only when the page is filled; one that can no longer be
opened is greyed with the reason, so the examiner sees why before clicking.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core import APP_NAME
from core.case.summary import CaseSummary, summarise_case

INTRO = (
    "Open a case to compare a questioned face (probe, marked Q1, Q2…) with known "
    "faces (gallery, K1, K2…). Every step is recorded in the case's audit trail; the "
    "evidence files are stored unaltered. New here? Open the demo case."
)


class StartPage(QWidget):
    new_requested = Signal()
    open_requested = Signal(str)  # a case folder ("" = ask)
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel(f"<h1>{APP_NAME}</h1>")
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        intro.setMaximumWidth(640)
        self.new_button = QPushButton("New case…")
        self.open_button = QPushButton("Open case…")
        self.demo_button = QPushButton("Open demo case")
        self.new_button.clicked.connect(self.new_requested)
        self.open_button.clicked.connect(lambda: self.open_requested.emit(""))
        self.demo_button.clicked.connect(self.demo_requested)
        buttons = QHBoxLayout()
        for button in (self.new_button, self.open_button, self.demo_button):
            button.setMinimumHeight(36)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.recent = QListWidget()
        self.recent.setMaximumWidth(640)
        self.recent.itemActivated.connect(
            lambda item: self.open_requested.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 24, 40, 24)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addSpacing(16)
        layout.addWidget(QLabel("<b>Recent cases</b> (double-click to open)"))
        layout.addWidget(self.recent, 1)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            try:
                summary = summarise_case(path)
            except Exception as error:  # a fault reading one case: list the rest
                summary = CaseSummary(
                    str(path), None, f"cannot be read (internal error: {error!r})"
                )
            self.recent.addItem(recent_case_item(summary))
        if not paths:
            item = QListWidgetItem("No recent cases yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)


def recent_case_item(summary: CaseSummary) -> QListWidgetItem:
    """ "number — title, examiner (folder)", or the folder greyed with the reason."""
    folder = Path(summary.folder)
    info = summary.info
    if info is None:
        item = QListWidgetItem(
            f"{folder.name}    —    cannot be opened: {summary.problem}"
        )
        item.setFlags(Qt.ItemFlag.NoItemFlags)  # greyed, and no double-click
        item.setToolTip(f"{summary.folder}\n{summary.problem}")
    else:
        about = ", ".join(part for part in (info.title, info.examiner) if part)
        item = QListWidgetItem(f"{info.case_number} — {about}    ({folder.name})")
        item.setToolTip(
            "\n".join(
                line
                for line in (
                    summary.folder,
                    f"Agency: {info.agency}" if info.agency else "",
                    f"Last changed: {info.modified}",
                )
                if line
            )
        )
    item.setData(Qt.ItemDataRole.UserRole, summary.folder)
    return item
