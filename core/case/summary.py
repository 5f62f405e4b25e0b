"""A case folder in one line, for lists of cases (the GUI's recent cases).

Read read-only: no lock is taken and no session is recorded, so listing a case never
changes it or keeps another window from opening it.  A case closed cleanly has no
``-wal`` file; a read-only sqlite connection would create ``-wal`` and ``-shm``
beside it, so such a case is read as an immutable file instead (nothing written).
The summary is a label: opening the case checks its record against the audit chain.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from core.case.records import CaseError, case_info_from_row
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
    database = path / "case.sqlite"
    if database.is_file() and not database.with_name("case.sqlite-wal").exists():
        info = _immutable_info(database)
        if info is not None:
            return CaseSummary(str(folder), info)
    try:
        with Case.open(path, read_only=True) as case:
            return CaseSummary(str(folder), case.info())
    except Exception as error:
        message = plain_message(error)
        if message is None:
            raise
        reason = error.reason if isinstance(error, BadInputError) else ""
        return CaseSummary(str(folder), None, reason or message)


def _immutable_info(database: Path) -> CaseInfo | None:
    """The case record read without writing anything beside the file; None when
    the file is not a readable case (``Case.open`` then says why)."""
    uri = f"{database.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
        if row is None:
            return None
        return case_info_from_row(row)
    except (sqlite3.Error, CaseError):
        return None
    finally:
        connection.close()
