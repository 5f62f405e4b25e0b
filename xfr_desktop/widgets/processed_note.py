"""The line that says a pair's face is on a processed exhibit (issue 21: a
processed image's faces, scores and maps say so wherever they are shown), or on
an exhibit pulled in from a 1:N gallery search - an investigative lead (issue 22).

Every view of a pair - the comparison, all methods, layer by layer, superimpose -
shows the same sentences, from ``processed_pair_text``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QLabel, QWidget

from core.case import workflow
from core.case.store import Case
from core.wording import GALLERY_SEARCH_LEAD, NON_GENERATIVE_STATEMENT


def processed_pair_text(case: Case | None, labels: Sequence[str]) -> str:
    """One sentence per exhibit of the pair's faces that is processed, and one per
    exhibit that came from a gallery search ("" when none is).  A lead's sentence
    leaves out the search's score: the pair shown may be masked."""
    if case is None:
        return ""
    notes = [
        *workflow.derived_notes(case, labels).values(),
        *workflow.lead_notes(case, labels, examination=None).values(),
    ]
    return " ".join(note[:1].upper() + note[1:] + "." for note in notes)


def _tip(text: str) -> str:
    """The statement behind each kind of sentence shown."""
    tips = [
        statement
        for marker, statement in (
            (" is a processed copy of ", NON_GENERATIVE_STATEMENT),
            (" is an investigative lead", GALLERY_SEARCH_LEAD),
        )
        if marker in text
    ]
    return "\n\n".join(tips)


class ProcessedNote(QLabel):
    """Hidden unless the pair shown has a face on a processed exhibit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.hide()

    def show_text(self, text: str) -> None:
        self.setText(text)
        self.setToolTip(_tip(text))
        self.setVisible(bool(text))
