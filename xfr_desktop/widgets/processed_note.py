"""The line that says a pair's face is on a processed exhibit (issue 21: a
processed image's faces, scores and maps say so wherever they are shown).

Every view of a pair - the comparison, all methods, layer by layer, superimpose -
shows the same sentences, from ``processed_pair_text``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QLabel, QWidget

from core.case import workflow
from core.case.store import Case
from core.wording import NON_GENERATIVE_STATEMENT


def processed_pair_text(case: Case | None, labels: Sequence[str]) -> str:
    """One sentence per exhibit of the pair's faces that is processed ("" when
    none is)."""
    if case is None:
        return ""
    notes = workflow.derived_notes(case, labels).values()
    return " ".join(note[:1].upper() + note[1:] + "." for note in notes)


class ProcessedNote(QLabel):
    """Hidden unless the pair shown has a face on a processed exhibit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.hide()

    def show_text(self, text: str) -> None:
        self.setText(text)
        self.setToolTip(NON_GENERATIVE_STATEMENT if text else "")
        self.setVisible(bool(text))
