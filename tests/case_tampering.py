"""Helpers the case-integrity tests share: copy a case, edit it as an outside
SQLite tool would, and verify it read-only."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from core.case.store import Case, VerifyReport


def copied_case(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a closed template case, for one test to alter."""
    target = tmp_path / "case"
    shutil.copytree(template, target)
    return target


def tamper(folder: Path, *statements: str) -> None:
    """Edit case.sqlite directly, as any SQLite tool would (foreign keys off)."""
    db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def verify(folder: Path, anchor: dict[str, Any] | None = None) -> VerifyReport:
    with Case.open(folder, read_only=True) as case:
        return case.verify(anchor=anchor)
