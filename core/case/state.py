"""Binding the case's stored rows to its audit chain (see docs/integrity.md).

Every audited change records, in its audit entry, the SHA-256 of each row it wrote
(or ``null`` for a row it deleted) under ``details["state"]``.  Because entries are
chained by SHA-256, the chain then pins the whole state of the case: ``replay``
reads the chain and gives, for every row, the digest the latest entry that wrote it
recorded; ``compare`` names every row that differs from that (changed), that no
entry wrote (planted) or that an entry wrote but is gone (deleted).

Which rows a transaction touched is recorded by *temporary* triggers (they live in
the connection's ``temp`` schema, never in the case file): every INSERT, UPDATE and
DELETE on a bound table adds the row's primary key to ``temp.xfr_touched``.  So no
code path can change a bound row without the change being bound, and a forgotten
call cannot leave a row out.

The schema itself is pinned: ``schema_differences`` compares the database's
``sqlite_master`` with the exact schema that this version's migrations produce, so
an extra trigger, view, index or column is named rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Every table whose rows an examiner relies on, with its primary key columns.  The
# audit log (``audit``, ``audit_head``) is the chain itself and is not listed.
BOUND_TABLES: dict[str, tuple[str, ...]] = {
    "case_info": ("id",),
    "exhibits": ("id",),
    "faces": ("id",),
    "embeddings": ("face_id", "model_sha256"),
    "comparisons": ("id",),
    "derived": ("sha256",),
    "explanations": ("id",),
    "annotations": ("id",),
    "conclusions": ("id",),
    "case_settings": ("key",),
    "acev": ("id",),
    "figures": ("id",),
    "videos": ("id",),
    "tracks": ("id",),
    "frames": ("exhibit_id",),
    "derivations": ("exhibit_id",),
    "gallery_searches": ("id",),
    "gallery_leads": ("exhibit_id",),
}
CHAIN_TABLES = ("audit", "audit_head")

STATE_KEY = "state"  # details[STATE_KEY] = {table: {row key: digest or None}}
LOGIN_KEY = "login"  # details[LOGIN_KEY] = the operating-system login name
RESERVED_KEYS = (STATE_KEY, LOGIN_KEY)

TOUCHED = "xfr_touched"


# ---- row identity and digests -------------------------------------------------------
def row_key(table: str, values: Iterable[Any]) -> str:
    """``"12"`` for one key column, ``"12/ab…"`` for two (stable across VACUUM)."""
    del table
    return "/".join(str(v) for v in values)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def row_digest(table: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of one row: table name and every column, as sorted-key JSON."""
    canonical = json.dumps(
        {"table": table, "row": {k: _plain(v) for k, v in row.items()}},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def describe_row(table: str, key: str) -> str:
    """``faces row 12`` - how problems name a row."""
    return f"{table} row {key}"


# ---- what a transaction touched -----------------------------------------------------
class PriorRows:
    """The rows a transaction overwrote or deleted, as they were before it.

    Filled by the ``xfr_prior_row`` SQL function that the temporary UPDATE and
    DELETE triggers call with the OLD row's columns: the exact values SQLite
    held (types included), so ``Case._change`` can refuse to bind a row that had
    been altered outside XFR - otherwise any later legitimate write of that row
    (``case_info.modified`` is updated by every change) would launder it.
    """

    def __init__(self, columns: Mapping[str, tuple[str, ...]]) -> None:
        self.columns = columns
        self.digests: dict[tuple[str, str], str] = {}

    def clear(self) -> None:
        self.digests.clear()

    def record(self, table: str, *values: Any) -> int:
        names = self.columns[table]
        row = dict(zip(names, values, strict=True))
        key = row_key(table, (row[c] for c in BOUND_TABLES[table]))
        self.digests.setdefault((table, key), row_digest(table, row))  # first wins
        return 0


def install_touch_triggers(db: sqlite3.Connection) -> PriorRows:
    """Temporary triggers that note every bound row a statement writes, and the
    digest of every row as it was before an UPDATE or DELETE changed it."""
    db.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {TOUCHED} "
        "(tbl TEXT NOT NULL, k1, k2, UNIQUE (tbl, k1, k2))"
    )
    # REPLACE deletes the row it replaces: let that fire the DELETE trigger too
    db.execute("PRAGMA recursive_triggers = ON")
    columns = {
        table: tuple(r[1] for r in db.execute(f"PRAGMA main.table_info({table})"))
        for table in BOUND_TABLES
    }
    prior = PriorRows(columns)
    db.create_function("xfr_prior_row", -1, prior.record)
    for table, keys in BOUND_TABLES.items():
        for event, refs in (
            ("INSERT", ("NEW",)),
            ("UPDATE", ("OLD", "NEW")),
            ("DELETE", ("OLD",)),
        ):
            body = " ".join(
                f"INSERT OR IGNORE INTO {TOUCHED} VALUES ('{table}', "
                + ", ".join(f"{ref}.{c}" for c in keys)
                + (", NULL" if len(keys) == 1 else "")
                + ");"
                for ref in refs
            )
            if "OLD" in refs:
                body += (
                    f" SELECT xfr_prior_row('{table}', "
                    + ", ".join(f"OLD.{c}" for c in columns[table])
                    + ");"
                )
            db.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS xfr_touch_{table}_{event.lower()} "
                f"AFTER {event} ON main.{table} BEGIN {body} END"
            )
    return prior


def clear_touched(execute: Callable[..., Any]) -> None:
    execute(f"DELETE FROM temp.{TOUCHED}")


def touched_rows(execute: Callable[..., Any]) -> list[tuple[str, list[Any]]]:
    """``(table, key values)`` of every bound row touched since ``clear_touched``."""
    touched = []
    for record in list(execute(f"SELECT tbl, k1, k2 FROM temp.{TOUCHED}")):
        table = record[0]
        values = [record[1]] if len(BOUND_TABLES[table]) == 1 else list(record[1:3])
        touched.append((table, values))
    return touched


def touched_state(
    execute: Callable[..., Any], touched: list[tuple[str, list[Any]]]
) -> dict[str, dict[str, str | None]]:
    """Digest of every ``touched`` row as it is now (None: it was deleted)."""
    state: dict[str, dict[str, str | None]] = {}
    for table, values in touched:
        where = " AND ".join(f"{c} = ?" for c in BOUND_TABLES[table])
        found = list(execute(f"SELECT * FROM main.{table} WHERE {where}", values))
        state.setdefault(table, {})[row_key(table, values)] = (
            row_digest(table, dict(found[0])) if found else None
        )
    return state


def present_tables(execute: Callable[..., Any]) -> dict[str, tuple[str, ...]]:
    """The bound tables this database has: a case of an older format, opened
    read-only (so not migrated), lacks the tables later formats added."""
    names = {
        row[0]
        for row in execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
    }
    return {t: keys for t, keys in BOUND_TABLES.items() if t in names}


def all_rows_state(execute: Callable[..., Any]) -> dict[str, dict[str, str | None]]:
    """Digest of every bound row (a baseline: the state as it is now)."""
    return {
        table: {
            row_key(table, (row[c] for c in columns)): row_digest(table, dict(row))
            for row in execute(f"SELECT * FROM main.{table}")
        }
        for table, columns in present_tables(execute).items()
    }


# ---- replaying the chain ------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    """The digest a row should have, and the audit entry that recorded it."""

    digest: str | None  # None: the entry deleted the row
    seq: int
    action: str


@dataclass
class Replay:
    """The state the chain records, entry by entry (see ``replay``)."""

    bindings: dict[tuple[str, str], Binding]
    first_bound_seq: int | None = None  # the first entry that carried a state
    unbound_after_first: tuple[int, ...] = ()  # entries after it that carry none
    last_seq: int = 0

    def add(self, seq: int, action: str, details: Mapping[str, Any]) -> None:
        self.last_seq = seq
        state = details.get(STATE_KEY) if isinstance(details, Mapping) else None
        if not isinstance(state, Mapping):
            if self.first_bound_seq is not None:
                self.unbound_after_first = (*self.unbound_after_first, seq)
            return
        if self.first_bound_seq is None:
            self.first_bound_seq = seq
        for table, rows in state.items():
            if not isinstance(rows, Mapping):
                continue
            for key, digest in rows.items():
                self.bindings[(str(table), str(key))] = Binding(
                    digest if isinstance(digest, str) else None, seq, action
                )

    def digest(self) -> str:
        """One SHA-256 over the state the chain records (rows that exist)."""
        return state_digest(
            (table, key, b.digest)
            for (table, key), b in self.bindings.items()
            if b.digest is not None
        )


def replay(entries: Iterable[tuple[int, str, Mapping[str, Any]]]) -> Replay:
    """The recorded state after ``(seq, action, details)`` entries, in order."""
    result = Replay({})
    for seq, action, details in entries:
        result.add(seq, action, details)
    return result


def state_digest(rows: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 of a state: the sorted ``(table, key, row digest)`` triples."""
    text = json.dumps(sorted(rows), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class RowProblem:
    table: str
    key: str
    kind: str  # "changed", "planted", "deleted"
    binding: Binding | None
    label: str = ""  # what an examiner calls the row (e.g. "exhibit K2")

    def text(self) -> str:
        what = describe_row(self.table, self.key)
        if self.label:
            what += f" ({self.label})"
        if self.kind == "planted":
            return f"{what} was written by no audited action (planted or edited in)"
        assert self.binding is not None
        entry = f"audit entry {self.binding.seq} ({self.binding.action})"
        if self.kind == "deleted":
            return f"{what} is gone, but {entry} wrote it and none deleted it"
        return f"{what} was changed after {entry} wrote it"


def compare(
    recorded: Replay, execute: Callable[..., Any], *, label: Callable[..., str]
) -> list[RowProblem]:
    """Every bound row that differs from what the chain recorded."""
    problems: list[RowProblem] = []
    seen: set[tuple[str, str]] = set()
    for table, columns in present_tables(execute).items():
        order = ", ".join(columns)  # not rowid: a table may be WITHOUT ROWID
        for row in execute(f"SELECT * FROM main.{table} ORDER BY {order}"):
            values = dict(row)
            key = row_key(table, (values[c] for c in columns))
            seen.add((table, key))
            binding = recorded.bindings.get((table, key))
            if binding is None or binding.digest is None:
                problems.append(
                    RowProblem(table, key, "planted", binding, label(table, values))
                )
            elif binding.digest != row_digest(table, values):
                problems.append(
                    RowProblem(table, key, "changed", binding, label(table, values))
                )
    for (table, key), binding in recorded.bindings.items():
        if binding.digest is not None and (table, key) not in seen:
            problems.append(RowProblem(table, key, "deleted", binding))
    return problems


# ---- the schema ---------------------------------------------------------------------
def schema_objects(execute: Callable[..., Any]) -> dict[tuple[str, str], str]:
    """``(type, name) -> sql`` of everything in the main schema."""
    return {
        (row[0], row[1]): row[2] or ""
        for row in execute(
            "SELECT type, name, sql FROM main.sqlite_master ORDER BY type, name"
        )
    }


def expected_schema(statements_by_version: Iterable[Iterable[str]]) -> dict:
    """The schema that running the migrations on an empty database produces."""
    db = sqlite3.connect(":memory:")
    try:
        for statements in statements_by_version:
            for statement in statements:
                db.execute(statement)
        return schema_objects(db.execute)
    finally:
        db.close()


def schema_differences(
    actual: Mapping[tuple[str, str], str], expected: Mapping[tuple[str, str], str]
) -> tuple[list[str], list[str]]:
    """(problems, warnings): every object added, removed or redefined, named."""
    problems, warnings = [], []
    for kind, name in sorted(set(actual) - set(expected)):
        if kind == "table" and name.startswith("sqlite_stat"):
            warnings.append(
                f"the database holds query-planner statistics ({name}, from "
                "ANALYZE); harmless, but not written by XFR"
            )
            continue
        problems.append(
            f"the database has an extra {kind} '{name}' that XFR never creates"
            + _sql_hint(actual[(kind, name)])
        )
    for kind, name in sorted(set(expected) - set(actual)):
        if kind == "trigger" and name.startswith("audit_no_"):
            problems.append(
                f"the audit log's append-only protection ({name}) was removed"
            )
            continue
        problems.append(f"the database lacks the {kind} '{name}' that XFR creates")
    for key in sorted(set(actual) & set(expected)):
        if actual[key] != expected[key]:  # exact: a moved newline can comment out
            changes = _column_changes(key, actual[key], expected[key])
            problems += changes or [
                f"the {key[0]} '{key[1]}' was redefined (its definition differs "
                "from the one XFR creates)" + _sql_hint(actual[key])
            ]
    return problems, warnings


def _column_changes(key: tuple[str, str], actual: str, expected: str) -> list[str]:
    """Columns added to or removed from a table, by name (empty: none, or the
    definitions cannot be compared that way)."""
    kind, table = key
    if kind != "table":
        return []
    columns = []
    for sql in (actual, expected):
        db = sqlite3.connect(":memory:")
        try:
            db.execute(sql)
            columns.append([r[1] for r in db.execute(f"PRAGMA table_info({table})")])
        except sqlite3.Error:
            return []
        finally:
            db.close()
    have, want = columns
    return [
        f"the table '{table}' has an extra column '{c}' that XFR never creates"
        for c in have
        if c not in want
    ] + [
        f"the table '{table}' lacks the column '{c}' that XFR creates"
        for c in want
        if c not in have
    ]


def _normal(sql: str) -> str:
    return " ".join(sql.split())


def _sql_hint(sql: str) -> str:
    text = _normal(sql)
    return f": {text[:160]}{'…' if len(text) > 160 else ''}" if text else ""
