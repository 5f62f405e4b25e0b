"""The 1:N candidates of one probe as a small sortable table.

Columns: rank, gallery face, distance, cosine similarity, likelihood ratio (only
when the model is calibrated) and decision.  The rows come from
``core.case.workflow.candidate_rows`` (best first by the decision score); clicking a
header sorts by that column, numbers as numbers.  Choosing a row emits
``candidate_chosen(gallery label)``.  While the probe's pairs are masked
(sequential unmasking) ``set_masked`` lists the gallery faces with no result.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from core.case.examination import MASKED
from core.case.workflow import CandidateRow
from core.models.base import Threshold
from core.wording import ACCEPT_WORDS, REJECT_WORDS

COLUMNS = ("#", "Gallery", "Distance", "Cosine", "LR", "Decision")
RANK, GALLERY, DISTANCE, COSINE, LR, DECISION = range(len(COLUMNS))
SORT_KEY = Qt.ItemDataRole.UserRole + 1  # the number a numeric column sorts by
LABEL = Qt.ItemDataRole.UserRole  # the gallery face label of a row


class _SortItem(QTableWidgetItem):
    """A cell sorted by its ``SORT_KEY`` value (numbers), not by its text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_KEY), other.data(SORT_KEY)
        if mine is None or theirs is None:
            return bool(self.text() < other.text())
        return bool(mine < theirs)


def header_tips(threshold: Threshold) -> dict[int, str]:
    """What each column means, with the model's decision rule."""
    rule = threshold.rule_text()
    on_distance = threshold.metric == "euclidean"
    decides = f"The decision score of this model: {rule}."
    not_decides = (
        f"Shown for reference; this model decides on the other score ({rule})."
    )
    return {
        RANK: "Position by the decision score, 1 = the best candidate",
        GALLERY: "The gallery face compared with the probe",
        DISTANCE: "Euclidean distance between the two face embeddings (smaller = "
        f"more alike). {decides if on_distance else not_decides}",
        COSINE: "Cosine similarity of the two face embeddings (larger = more "
        f"alike). {not_decides if on_distance else decides}",
        LR: "Likelihood ratio from the model's calibration: how much more probable "
        "the score is if the faces are of the same person than if not",
        DECISION: f"The model's decision for the pair: {rule}",
    }


class CandidatesTable(QTableWidget):
    """Sortable 1:N table of one probe; a chosen row names its gallery face."""

    candidate_chosen = Signal(str)  # gallery face label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().hide()
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)  # one line a candidate; long cells carry a tooltip
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setSortingEnabled(True)
        self.decision_metric = "euclidean"
        self._chosen = ""  # the label last chosen: sorting moves rows, not choices
        self.currentCellChanged.connect(self._on_current)

    def set_rows(
        self,
        rows: Sequence[CandidateRow],
        threshold: Threshold | None,
        selected: str = "",
    ) -> None:
        """Show ``rows`` best first by the decision score; select ``selected``.
        ``threshold`` (the model's rule) words the header tips."""
        self.blockSignals(True)
        self.setSortingEnabled(False)
        if threshold is not None:
            self.decision_metric = threshold.metric
            for column, tip in header_tips(threshold).items():
                item = self.horizontalHeaderItem(column)
                if item is not None:
                    item.setToolTip(tip)
        self.setRowCount(len(rows))
        for row, candidate in enumerate(rows):
            words = ACCEPT_WORDS if candidate.decision == "accept" else REJECT_WORDS
            lr = candidate.likelihood_ratio
            cells = (
                (str(candidate.rank), candidate.rank),
                (candidate.gallery_label, None),
                (f"{candidate.distance:.4f}", candidate.distance),
                (f"{candidate.similarity:.4f}", candidate.similarity),
                ("" if lr is None else f"{lr:.3g}", -1.0 if lr is None else lr),
                (words, None),
            )
            for column, (text, key) in enumerate(cells):
                item = _SortItem(text)
                item.setData(LABEL, candidate.gallery_label)
                if key is not None:
                    item.setData(SORT_KEY, float(key))
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if column == LR and candidate.lr_words:
                    item.setToolTip(candidate.lr_words)
                elif column == DECISION:
                    item.setToolTip(f"{candidate.gallery_label}: {words}")
                self.setItem(row, column, item)
        self.setColumnHidden(LR, all(r.likelihood_ratio is None for r in rows))
        self.setSortingEnabled(True)
        self.sortItems(RANK, Qt.SortOrder.AscendingOrder)
        self.select_label(selected)
        self.blockSignals(False)
        self.updateGeometry()  # the size hint follows the columns

    def set_masked(
        self, labels: Sequence[str], selected: str = "", hidden: str = MASKED
    ) -> None:
        """Sequential unmasking: the gallery faces in the order given (mark order,
        never the model's), every score, LR, decision and rank cell ``hidden``;
        not sortable (an order by a hidden column would give the ranks away)."""
        self.blockSignals(True)
        self.setSortingEnabled(False)
        self.setRowCount(len(labels))
        for row, label in enumerate(labels):
            for column in range(len(COLUMNS)):
                item = _SortItem(label if column == GALLERY else hidden)
                item.setData(LABEL, label)
                if column != GALLERY:
                    item.setToolTip(f"{label}: the model's result is {hidden}")
                self.setItem(row, column, item)
        self.setColumnHidden(LR, False)
        self.select_label(selected)
        self.blockSignals(False)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        """Wide enough for every shown column, so that the splitter gives the
        table its columns instead of a horizontal scroll bar."""
        hint = super().sizeHint()
        header = self.horizontalHeader()
        columns = sum(
            header.sectionSize(c) for c in range(self.columnCount())
            if not self.isColumnHidden(c)
        )  # fmt: skip
        width = columns + self.verticalScrollBar().sizeHint().width()
        return QSize(max(hint.width(), width + 2 * self.frameWidth()), hint.height())

    def label_at(self, row: int) -> str:
        item = self.item(row, GALLERY)
        return "" if item is None else str(item.data(LABEL))

    def labels(self) -> list[str]:
        """Gallery labels in the order shown."""
        return [self.label_at(row) for row in range(self.rowCount())]

    def select_label(self, label: str) -> None:
        """Mark ``label``'s row as current (no signal when blocked)."""
        for row in range(self.rowCount()):
            if label and self.label_at(row) == label:
                self._chosen = label
                self.setCurrentCell(row, GALLERY)
                return
        self._chosen = ""
        self.clearSelection()

    def step(self, step: int) -> None:
        """Choose the next (``step`` = 1) or previous (-1) row, wrapping around."""
        count = self.rowCount()
        if count:
            row = (self.currentRow() + step) % count
            self.setCurrentCell(row, GALLERY)

    def _on_current(self, row: int, _column: int, _row: int, _: int) -> None:
        label = self.label_at(row) if row >= 0 else ""
        if label and label != self._chosen:
            self._chosen = label
            self.candidate_chosen.emit(label)
