"""The case's audit trail, read-only: filter, sort, and ask for verification.

``AuditTrailView`` shows ``Case.audit_log()`` entries (or any objects with the
attributes ``seq, time, user, action, details``) in a table:

====  ==============  ======  ============================================
 #    Time (UTC)      User    Action / Details ("key: value; ..." - the full
                              JSON is in the details cell's tooltip)
====  ==============  ======  ============================================

A text filter matches the action, the user or anything in the details
(case-insensitive); the action combo narrows to one action.  Nothing can be edited:
the model has no editable flags and the view no edit triggers.  The "Verify case"
button only emits ``verify_requested``; whoever owns the case runs the check (in the
background) and calls ``show_verify_result``.

With a ``Masking`` set (``set_masking``) the entries are shown as the examination
redacts them: a masked pair's results read "hidden until unmasked" and, in a blind
session, the first examiner's work is hidden; the stored chain is never changed.
"""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from xfr_desktop.masking import Masking

COLUMNS = ("#", "Time (UTC)", "User", "Action", "Details")
SEQ_COLUMN, TIME_COLUMN, USER_COLUMN, ACTION_COLUMN, DETAILS_COLUMN = range(5)

SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # numbers for "#", text for the rest
DETAILS_JSON_ROLE = Qt.ItemDataRole.UserRole + 2  # the details as full JSON text

MAX_VALUE_CHARS = 60  # longer values are shortened in the table (never in tooltips)
ALL_ACTIONS = "All actions"

# Explicit pairs that read well in the light and the dark theme.
OK_STYLE = "QLabel { background: #e3f4e4; color: #14532d; padding: 4px; }"
BAD_STYLE = "QLabel { background: #fde2e2; color: #7f1d1d; padding: 4px; }"

Index = QModelIndex | QPersistentModelIndex


def details_json(details: Mapping[str, Any]) -> str:
    """The details as indented JSON (keys sorted, non-ASCII kept)."""
    return json.dumps(
        details, indent=2, sort_keys=True, ensure_ascii=False, default=str
    )


def _short(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "none"
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(text.split())  # one line
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def compact_details(details: Mapping[str, Any]) -> str:
    """``"key: value; key: value"`` on one line, long values shortened."""
    return "; ".join(f"{key}: {_short(value)}" for key, value in details.items())


TOOLTIP_WIDTH = 80  # characters per tooltip line
TOOLTIP_LINES = 30  # longer details: the rest is in the JSON (copy / export)


def _flat(details: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(key.path, value text)`` for every leaf of nested details."""
    if isinstance(details, Mapping) and details:
        for key, value in details.items():
            yield from _flat(value, f"{prefix}.{key}" if prefix else str(key))
    elif (
        isinstance(details, list | tuple)
        and details
        and not all(isinstance(v, int | float | str) for v in details)
    ):
        for number, value in enumerate(details, 1):
            yield from _flat(value, f"{prefix}[{number}]")
    else:
        text = (
            details
            if isinstance(details, str)
            else json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
        )
        yield prefix, text


def readable_details(details: Mapping[str, Any]) -> str:
    """The details as wrapped ``key: value`` lines for a tooltip (rich text).

    Raw JSON ran off the screen: nested values become ``key.sub`` / ``key[n]``
    lines, long values (hashes, paths) are broken every ``TOOLTIP_WIDTH``
    characters, and past ``TOOLTIP_LINES`` lines the tooltip says how many are
    left out (the entry's full JSON stays in the table's details role)."""
    lines: list[str] = []
    for key, value in _flat(details):
        text = f"{key}: {value}" if key else value
        lines += textwrap.wrap(
            " ".join(text.split()), TOOLTIP_WIDTH, break_long_words=True,
            subsequent_indent="    ",
        ) or [text]  # fmt: skip
    if len(lines) > TOOLTIP_LINES:
        left = len(lines) - TOOLTIP_LINES
        lines = [*lines[:TOOLTIP_LINES], f"… {left} more lines"]
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"


def display_time(stamp: str) -> str:
    """``2024-05-01T09:30:00.123Z`` -> ``2024-05-01 09:30:00.123``."""
    return stamp.replace("T", " ").removesuffix("Z")


_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_SORT = int(SORT_ROLE)
_JSON = int(DETAILS_JSON_ROLE)


def _who(entry: Any) -> str:
    """The examiner an entry names, with the login name when it differs."""
    login = str(getattr(entry, "login", "") or "")
    user = str(entry.user)
    return f"{user} [{login}]" if login and login != user else user


class _Row(NamedTuple):
    """One entry, formatted once."""

    cells: tuple[str, str, str, str, str]  # the table's text, column by column
    seq: int
    full: str  # details as JSON
    tooltip: str  # details as wrapped key: value lines
    search: str  # action, user and JSON, case-folded

    @classmethod
    def of(cls, entry: Any) -> _Row:
        details = dict(entry.details or {})
        full = details_json(details)
        cells = (
            str(entry.seq),
            display_time(str(entry.time)),
            _who(entry),
            str(entry.action),
            compact_details(details),
        )
        search = f"{entry.action}\n{entry.user}\n{full}".casefold()
        return cls(cells, int(entry.seq), full, readable_details(details), search)


class AuditTableModel(QAbstractTableModel):
    """Audit entries as rows; read-only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._entries: list[Any] = []
        self._rows: list[_Row] = []

    def set_entries(self, entries: Iterable[Any]) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self._rows = [_Row.of(entry) for entry in self._entries]
        self.endResetModel()

    def entry(self, row: int) -> Any:
        return self._entries[row]

    def actions(self) -> list[str]:
        """The distinct actions, sorted."""
        return sorted({str(entry.action) for entry in self._entries})

    def search_text(self, row: int) -> str:
        """Action, user and details JSON of ``row``, case-folded, for filtering."""
        return self._rows[row].search

    # -- QAbstractTableModel ---------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(COLUMNS)
        ):
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called very often (sorting a long log): precomputed rows, int roles.
        row = index.row()
        if not index.isValid() or not 0 <= row < len(self._rows):
            return None
        cells = self._rows[row]
        column = index.column()
        role = int(role)
        if role == _DISPLAY:
            return cells.cells[column]
        if role == _SORT:
            return cells.seq if column == SEQ_COLUMN else cells.cells[column]
        if role == _TOOLTIP:
            if column == DETAILS_COLUMN:
                return cells.tooltip
            if column == TIME_COLUMN:
                return str(self._entries[row].time)
            return None
        if role == _JSON:
            return cells.full
        if role == _ALIGN and column == SEQ_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class AuditFilterProxyModel(QSortFilterProxyModel):
    """Keeps the rows that match the text filter and the chosen action."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._action: str | None = None
        self.setSortRole(SORT_ROLE)

    def _change_filter(self, apply: Any) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9
            self.beginFilterChange()
            apply()
            self.endFilterChange()
        else:
            apply()
            self.invalidateFilter()

    def set_text(self, text: str) -> None:
        """Match ``text`` (case-insensitive) in action, user or details."""
        folded = text.strip().casefold()

        def apply() -> None:
            self._text = folded

        self._change_filter(apply)

    def set_action(self, action: str | None) -> None:
        """Only ``action`` (None: every action)."""

        def apply() -> None:
            self._action = action

        self._change_filter(apply)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AuditTableModel):
            return True
        if self._action is not None and model.entry(source_row).action != self._action:
            return False
        return not self._text or self._text in model.search_text(source_row)


class AuditTrailView(QWidget):
    """The audit trail of a case, with filters and a "Verify case" button."""

    verify_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = AuditTableModel(self)
        self.proxy = AuditFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by action, user or details…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_changed)

        self.action_combo = QComboBox()
        self.action_combo.addItem(ALL_ACTIONS, None)
        self.action_combo.currentIndexChanged.connect(self._on_action_changed)

        self.count_label = QLabel()
        self.verify_button = QPushButton("Verify case")
        self.verify_button.setToolTip(
            "Recompute the audit chain and the hash of every stored file."
        )
        self.verify_button.clicked.connect(self.verify_requested)

        self.verify_label = QLabel()
        self.verify_label.setWordWrap(True)
        self.verify_label.setTextFormat(Qt.TextFormat.PlainText)
        self.verify_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.verify_label.hide()

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(SEQ_COLUMN, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().hide()
        # Sized once per set_entries, not on every repaint (ResizeToContents would
        # measure every row of a long log each time).
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        controls = QHBoxLayout()
        controls.addWidget(self.filter_edit, 1)
        controls.addWidget(self.action_combo)
        controls.addWidget(self.count_label)
        controls.addStretch()
        controls.addWidget(self.verify_button)

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.verify_label)
        layout.addWidget(self.table, 1)
        self.masking: Masking | None = None
        self._entries: list[Any] = []  # as given; shown redacted
        self._update_count()

    def set_masking(self, masking: Masking) -> None:
        """Show the entries as ``masking`` redacts them, again when it changes."""
        self.masking = masking
        masking.changed.connect(lambda: self.set_entries(self._entries))
        self.set_entries(self._entries)

    # -- content ---------------------------------------------------------------------
    def set_entries(self, entries: Iterable[Any]) -> None:
        """Replace the rows; the filters and the chosen action are kept if possible."""
        chosen = self.action_combo.currentData()
        self._entries = list(entries)
        shown = (
            self._entries
            if self.masking is None
            else self.masking.redact(self._entries)
        )
        self.model.set_entries(shown)
        self.action_combo.blockSignals(True)
        try:
            self.action_combo.clear()
            self.action_combo.addItem(ALL_ACTIONS, None)
            for action in self.model.actions():
                self.action_combo.addItem(action, action)
            index = self.action_combo.findData(chosen) if chosen is not None else 0
            self.action_combo.setCurrentIndex(max(0, index))
        finally:
            self.action_combo.blockSignals(False)
        self.proxy.set_action(self.action_combo.currentData())
        for column in (SEQ_COLUMN, TIME_COLUMN, USER_COLUMN, ACTION_COLUMN):
            self.table.resizeColumnToContents(column)
        self._update_count()

    def visible_row_count(self) -> int:
        """Rows left after filtering."""
        return self.proxy.rowCount()

    def show_verify_result(
        self, intact: bool, problems: list[str], warnings: list[str]
    ) -> None:
        """Show the outcome of ``Case.verify`` in a green or red line."""
        if intact:
            lines = [
                "✔ Case verified: the audit chain and every stored file are intact."
            ]
        else:
            count = len(problems)
            lines = [
                f"✘ Case NOT intact: {count} problem{'s' if count != 1 else ''} found."
            ]
            lines += [f"• {problem}" for problem in problems]
        if warnings:
            count = len(warnings)
            lines.append(f"{count} warning{'s' if count != 1 else ''}:")
            lines += [f"• {warning}" for warning in warnings]
        self.verify_label.setText("\n".join(lines))
        self.verify_label.setStyleSheet(OK_STYLE if intact else BAD_STYLE)
        self.verify_label.setProperty("intact", intact)
        self.verify_label.show()

    def clear_verify_result(self) -> None:
        self.verify_label.clear()
        self.verify_label.hide()

    # -- slots -----------------------------------------------------------------------
    def _on_filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _on_action_changed(self, _index: int) -> None:
        self.proxy.set_action(self.action_combo.currentData())
        self._update_count()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        self.count_label.setText(
            f"{total} entries" if shown == total else f"{shown} of {total} entries"
        )
