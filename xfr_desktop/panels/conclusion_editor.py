"""The examiner's conclusion: written by the examiner, kept as revisions.

The software never proposes, pre-fills or rewrites a conclusion; this widget only
collects the examiner's own words.  Every save is a *new* revision
(``Case.add_conclusion``); earlier revisions stay in the case and can be read
here, but nothing in this widget deletes or overwrites one.

``save_requested(text)`` is emitted by "Save as new revision"; the owner stores it
and calls ``set_revisions`` with the case's conclusions (for one comparison, or all
of them), which the list shows **newest first**.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core import APP_NAME
from xfr_desktop.masking import BLIND_CONCLUSIONS_NOTE, Masking

HEADER_TEXT = (
    "<b>Your conclusion.</b> Write here, in your own words, the conclusion you "
    f"reached from your own comparison. {APP_NAME} never proposes a conclusion: its "
    "scores and maps only support your examination. Each save is kept as a new "
    "revision; earlier revisions are never deleted or overwritten."
)
FIRST_LINE_CHARS = 80
REVISION_ROLE = Qt.ItemDataRole.UserRole + 1  # the Conclusion object of an item


def first_line(text: str) -> str:
    """The first non-empty line, shortened for the list."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    if len(line) > FIRST_LINE_CHARS:
        line = line[: FIRST_LINE_CHARS - 1] + "…"
    return line


def _display_time(stamp: str) -> str:
    return str(stamp).replace("T", " ").removesuffix("Z") + " UTC"


class ConclusionEditor(QWidget):
    """Editor for a new revision, plus the read-only list of earlier ones."""

    save_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._revisions: list[Any] = []  # newest first
        self._saved_text = ""  # text of the newest revision ("" when none)
        self._read_only = False
        self.masking: Masking | None = None
        self._given: list[Any] = []  # every revision given; a blind session sees some
        self.blind_note = QLabel(BLIND_CONCLUSIONS_NOTE)
        self.blind_note.setWordWrap(True)
        self.blind_note.hide()

        self.header = QLabel(HEADER_TEXT)
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)

        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Your conclusion, in your own words…")
        self.editor.textChanged.connect(self._update_state)

        self.status_label = QLabel()
        self.save_button = QPushButton("Save as new revision")
        self.save_button.clicked.connect(self._on_save)

        self.revision_list = QListWidget()
        self.revision_list.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.revision_list.currentItemChanged.connect(self._on_revision_selected)

        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a revision to read it.")
        self.copy_button = QPushButton("Copy into editor")
        self.copy_button.setToolTip(
            "Put this revision's text into the editor, to start a new revision "
            "from it (the revision itself stays as it is)."
        )
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self._on_copy)

        save_row = QHBoxLayout()
        save_row.addWidget(self.status_label, 1)
        save_row.addWidget(self.save_button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.header)
        top_layout.addWidget(self.blind_note)
        top_layout.addWidget(self.editor, 1)
        top_layout.addLayout(save_row)

        history = QWidget()
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.addWidget(QLabel("Earlier revisions (newest first):"))
        lists = QHBoxLayout()
        lists.addWidget(self.revision_list, 1)
        preview_column = QVBoxLayout()
        preview_column.addWidget(self.preview, 1)
        preview_column.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignRight)
        lists.addLayout(preview_column, 2)
        history_layout.addLayout(lists, 1)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(history)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._update_state()

    # -- public API ------------------------------------------------------------------
    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        """Replace the editor's text (undoable with Ctrl+Z)."""
        cursor = self.editor.textCursor()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        self.editor.setTextCursor(cursor)

    def has_unsaved_changes(self) -> bool:
        return self.text() != self._saved_text

    def revisions(self) -> list[Any]:
        """The revisions shown, newest first."""
        return list(self._revisions)

    def set_revisions(self, conclusions: Iterable[Any]) -> None:
        """Show ``conclusions`` (``Conclusion`` objects or alike), newest first.

        When the editor holds no unsaved changes it shows the newest revision's text,
        so the examiner continues from it; unsaved edits are never replaced.
        """
        unsaved = self.has_unsaved_changes()
        self._given = list(conclusions)
        blind = self.masking is not None and self.masking.blind
        self.blind_note.setVisible(blind)
        shown = (
            self.masking.visible_conclusions(self._given)
            if self.masking is not None
            else self._given
        )
        self._revisions = sorted(
            shown, key=lambda c: (str(c.created), c.id), reverse=True
        )
        self._saved_text = self._revisions[0].text if self._revisions else ""
        self.revision_list.clear()
        self.preview.clear()
        for revision in self._revisions:
            item = QListWidgetItem(
                f"{_display_time(revision.created)} · {revision.author} · "
                f"{first_line(revision.text)}"
            )
            item.setData(REVISION_ROLE, revision)
            item.setToolTip(f"Revision {revision.id} by {revision.author}")
            self.revision_list.addItem(item)
        if not unsaved and self.text() != self._saved_text:
            self.set_text(self._saved_text)
        self._update_state()

    def select_revision(self, row: int) -> None:
        """Select the ``row``-th revision in the list (0 is the newest)."""
        self.revision_list.setCurrentRow(row)

    def set_masking(self, masking: Masking) -> None:
        """In a blind verification only the verifier's own revisions are listed
        (and continued from), with a line saying the others are hidden."""
        self.masking = masking
        masking.changed.connect(lambda: self.set_revisions(self._given))
        self.set_revisions(self._given)

    def set_read_only(self, read_only: bool) -> None:
        """For cases opened read-only: the editor and save button are disabled."""
        self.editor.setReadOnly(read_only)
        self._read_only = read_only
        self._update_state()

    # -- slots -----------------------------------------------------------------------
    def _update_state(self) -> None:
        text = self.text()
        read_only = self._read_only
        can_save = bool(text.strip()) and text != self._saved_text and not read_only
        self.save_button.setEnabled(can_save)
        self.copy_button.setEnabled(
            self.revision_list.currentItem() is not None and not read_only
        )
        if read_only:
            status = "The case is open read-only."
        elif text == self._saved_text:
            status = "Saved." if self._revisions else ""
        else:
            status = "Unsaved changes."
        self.status_label.setText(status)

    def _on_save(self) -> None:
        text = self.text()
        if text.strip() and text != self._saved_text:
            self.save_requested.emit(text)

    def _on_revision_selected(
        self, current: QListWidgetItem | None, _previous: QListWidgetItem | None
    ) -> None:
        revision = current.data(REVISION_ROLE) if current is not None else None
        self.preview.setPlainText(revision.text if revision is not None else "")
        self._update_state()

    def _on_copy(self) -> None:
        item = self.revision_list.currentItem()
        if item is not None:
            self.set_text(item.data(REVISION_ROLE).text)
