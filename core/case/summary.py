"""A case folder in one line, for lists of cases (the GUI's recent cases).

Read read-only: no lock is taken and no session is recorded, so listing a case never
changes it or keeps another window from opening it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.case.store import Case, CaseInfo
from core.errors import BadInputError, plain_message


@dataclass(frozen=True)
class CaseSummary:
    """A case folder with what it says about itself, or why it cannot be read.

    ``info`` is None exactly when ``problem`` says why (e.g. "moved or deleted").
    """

    folder: str
    info: CaseInfo | None
    problem: str = ""


def summarise_case(folder: str | os.PathLike[str]) -> CaseSummary:
    """Number, title and examiner of the case in ``folder``, or the one-line reason
    it cannot be opened; a fault in XFR is still raised."""
    path = Path(folder)
    if not path.exists():
        return CaseSummary(str(folder), None, "moved or deleted")
    try:
        with Case.open(path, read_only=True) as case:
            return CaseSummary(str(folder), case.info())
    except Exception as error:
        message = plain_message(error)
        if message is None:
            raise
        reason = error.reason if isinstance(error, BadInputError) else ""
        return CaseSummary(str(folder), None, reason or message)
