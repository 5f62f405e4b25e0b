"""The examiner's annotations as a list: see them all, edit, delete, find one.

``AnnotationList`` shows ``workflow.AnnotationRow`` rows (every annotation of the
case, or only those of the pair shown); it asks nothing of the case itself.  Edit
opens the annotation dialog prefilled and emits ``edit_requested`` with the
changed fields; Delete (button or key) emits ``delete_requested``; the window
sends both through the case's undo stack, so a delete can be undone and the audit
keeps both.  Choosing a row emits ``annotation_chosen`` so the comparison view
can show it.  In a blind verification (``set_masking``) only the verifier's own
annotations are listed.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.case.workflow import AnnotationRow
from xfr_desktop.dialogs.annotation_dialog import AnnotationDialog
from xfr_desktop.masking import Masking

HEADERS = ("On", "Shape", "FISWG", "Label", "Note", "Author", "Time (UTC)")
ON, SHAPE, COMPONENT, LABEL, NOTE, AUTHOR, TIME = range(len(HEADERS))
EDIT_TIP = "Change the label, note or FISWG component (or double-click the row)."
DELETE_TIP = (
    "Delete the annotation (Delete key). Undo brings it back; the audit trail "
    "keeps both steps."
)
BLIND_NOTE = "others hidden (blind verification)"


def shown_time(stamp: str) -> str:
    """The stored UTC stamp to the minute: 2026-12-01T16:42:31.123Z gives
    2026-12-01 16:42."""
    return stamp[:16].replace("T", " ") if len(stamp) >= 16 else stamp


class AnnotationList(QWidget):
    """Every annotation of the case (or of the pair shown), with edit and delete."""

    annotation_chosen = Signal(str, int)  # exhibit mark ("" on an explanation), id
    edit_requested = Signal(int, dict)  # id, changed fields (label, note, component)
    delete_requested = Signal(int)  # id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AnnotationRow] = []
        self._pair_marks: tuple[str, ...] = ()
        self._pair_comparison: int | None = None
        self._read_only = False
        self.edit_dialog: AnnotationDialog | None = None  # the one open, if any
        self.masking: Masking | None = None

        self.only_pair = QCheckBox("Only this pair")
        self.only_pair.setToolTip(
            "Show only the annotations on the two exhibits compared now."
        )
        self.only_pair.toggled.connect(self._fill)
        self.count_label = QLabel()
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # no empty strip in a wide column
        widths = {ON: 40, SHAPE: 70, COMPONENT: 80, LABEL: 100, NOTE: 160, AUTHOR: 80}
        for column, width in widths.items():
            self.table.setColumnWidth(column, width)
        header.setMinimumSectionSize(36)
        component = self.table.horizontalHeaderItem(COMPONENT)
        if component is not None:
            component.setToolTip("FISWG facial component")
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.edit_current())
        self.table.installEventFilter(self)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)

        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(self.edit_current)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_current)

        top = QHBoxLayout()
        top.addWidget(self.only_pair)
        top.addStretch(1)
        top.addWidget(self.count_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    # ---- what is shown --------------------------------------------------------------
    def set_rows(self, rows: Sequence[AnnotationRow]) -> None:
        """All annotations of the case (the list filters them itself)."""
        self._rows = list(rows)
        self._fill()

    def set_pair(self, marks: Sequence[str], comparison_id: int | None) -> None:
        """The pair shown: its two exhibit marks and its comparison (for
        annotations on its explanations)."""
        self._pair_marks = tuple(marks)
        self._pair_comparison = comparison_id
        if self.only_pair.isChecked():
            self._fill()

    def set_masking(self, masking: Masking) -> None:
        """List only what ``masking`` lets this session see (blind mode)."""
        self.masking = masking
        masking.changed.connect(self._fill)
        self._fill()

    def visible_rows(self) -> list[AnnotationRow]:
        """The case's annotations this session may see (blind: its own)."""
        if self.masking is None:
            return list(self._rows)
        return self.masking.visible_annotations(self._rows)

    def set_read_only(self, read_only: bool) -> None:
        """For cases opened read-only: annotations can be seen, not changed."""
        self._read_only = read_only
        self._update_buttons()

    def shown_rows(self) -> list[AnnotationRow]:
        visible = self.visible_rows()
        if not self.only_pair.isChecked():
            return visible
        return [
            row
            for row in visible
            if (row.exhibit and row.exhibit in self._pair_marks)
            or (
                row.comparison_id is not None
                and row.comparison_id == self._pair_comparison
            )
        ]

    def current_row(self) -> AnnotationRow | None:
        selected = self.table.selectionModel().selectedRows()
        if not selected:
            return None
        item = self.table.item(selected[0].row(), ON)
        annotation_id = item.data(Qt.ItemDataRole.UserRole) if item else None
        return next(
            (r for r in self.visible_rows() if r.annotation_id == annotation_id), None
        )

    def select_annotation(self, annotation_id: int | None) -> None:
        """Select a row (from the viewer's selection); emits nothing."""
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            for index in range(self.table.rowCount()):
                item = self.table.item(index, ON)
                if item is not None and (
                    item.data(Qt.ItemDataRole.UserRole) == annotation_id
                ):
                    self.table.selectRow(index)
                    break
        finally:
            self.table.blockSignals(False)
        self._update_buttons()

    def _fill(self) -> None:
        kept = self.current_row()
        rows = self.shown_rows()
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(rows))
            for index, row in enumerate(rows):
                cells = (
                    row.target,
                    row.shape,
                    row.component or "",
                    row.label,
                    row.note,
                    row.author,
                    shown_time(row.modified),
                )
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(self._tooltip(row))
                    if column == ON:
                        item.setData(Qt.ItemDataRole.UserRole, row.annotation_id)
                    self.table.setItem(index, column, item)
        finally:
            self.table.blockSignals(False)
        visible = self.visible_rows()
        hidden = len(visible) - len(rows)
        blind = len(visible) < len(self._rows) or (
            self.masking is not None and self.masking.blind
        )
        self.count_label.setText(
            f"{len(rows)} annotation(s)"
            + (f", {hidden} on other exhibits" * bool(hidden))
            + (f"; {BLIND_NOTE}" * blind)
        )
        if kept is not None:
            self.select_annotation(kept.annotation_id)
        self._update_buttons()

    @staticmethod
    def _tooltip(row: AnnotationRow) -> str:
        lines = [f"{row.shape} on {row.target}"]
        if row.label:
            lines.append(f"Label: {row.label}")
        if row.component:
            lines.append(f"FISWG component: {row.component}")
        if row.note:
            lines.append(f"Note: {row.note}")
        lines.append(f"By {row.author}, created {shown_time(row.created)} UTC")
        if row.modified != row.created:
            lines.append(f"Changed {shown_time(row.modified)} UTC")
        return "\n".join(lines)

    def _update_buttons(self) -> None:
        chosen = self.current_row() is not None
        for button, tip in (
            (self.edit_button, EDIT_TIP),
            (self.delete_button, DELETE_TIP),
        ):
            button.setEnabled(chosen and not self._read_only)
            button.setToolTip("The case is open read-only." if self._read_only else tip)

    # ---- actions --------------------------------------------------------------------
    def _on_selection(self) -> None:
        self._update_buttons()
        row = self.current_row()
        if row is not None:
            self.annotation_chosen.emit(row.exhibit, row.annotation_id)

    def edit_current(self) -> AnnotationDialog | None:
        """Open the annotation dialog prefilled (non-modal); OK emits
        ``edit_requested`` with the fields that changed."""
        row = self.current_row()
        if row is None or self._read_only:
            return None
        before = {"label": row.label, "note": row.note, "component": row.component}
        dialog = AnnotationDialog(
            row.shape, self, values=before, title=f"Edit {row.name}"
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        annotation_id = row.annotation_id

        def save() -> None:
            changes = {k: v for k, v in dialog.values().items() if before[k] != v}
            if changes:
                self.edit_requested.emit(annotation_id, changes)

        dialog.accepted.connect(save)
        dialog.finished.connect(lambda _result: self._forget_dialog(dialog))
        self.edit_dialog = dialog
        dialog.open()
        return dialog

    def _forget_dialog(self, dialog: AnnotationDialog) -> None:
        if self.edit_dialog is dialog:
            self.edit_dialog = None

    def delete_current(self) -> None:
        row = self.current_row()
        if row is not None and not self._read_only:
            self.delete_requested.emit(row.annotation_id)

    def context_menu(self) -> QMenu:
        """Edit… and Delete for the row chosen (disabled in a read-only case)."""
        menu = QMenu(self)
        writable = self.current_row() is not None and not self._read_only
        for text, slot in (
            ("Edit…", self.edit_current),
            ("Delete", self.delete_current),
        ):
            action = menu.addAction(text)
            action.setEnabled(writable)
            action.triggered.connect(slot)
        return menu

    def _context_menu(self, position: QPoint) -> None:
        if self.table.indexAt(position).isValid():
            self.context_menu().popup(self.table.viewport().mapToGlobal(position))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.table
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and event.modifiers() == Qt.KeyboardModifier.NoModifier
        ):
            self.delete_current()
            return True
        return super().eventFilter(watched, event)
