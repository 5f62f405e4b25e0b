"""The case database: the write lock, the connection, migrations, and the
transactions and reads that check every row against the audit chain.

``AuditedDb.change`` runs every state change in one ``BEGIN IMMEDIATE``
transaction together with its audit entry; ``AuditedDb.checked`` refuses a row
that is not what the chain recorded, so a fact altered outside XFR is never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.case import state as bound
from core.case.audit import AuditLog, parse_details, write_session
from core.case.layout import DATABASE
from core.case.records import CaseError, CaseLockedError, now
from core.case.schema import APPLICATION_ID, BINDING_VERSION, MIGRATIONS, SCHEMA_VERSION
from core.errors import describe_sqlite_error


# ---- lock ------------------------------------------------------------------------
class WriteLock:
    """An OS lock on ``case.lock``: released by the OS when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a+b")
        try:
            if sys.platform == "win32":
                import msvcrt

                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise CaseLockedError(
                "the case is open in another window or process; close it there "
                "first (or open this one read-only)",
                path.parent,
            ) from None

    def release(self) -> None:
        if self._file.closed:
            return
        if sys.platform == "win32":
            import msvcrt

            with contextlib.suppress(OSError):
                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_UNLCK, 1)
        self._file.close()  # closing drops the flock


# ---- thread safety ---------------------------------------------------------------
class Rows:
    """A finished query: all rows fetched while the connection lock was held."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.rows = cursor.fetchall()
        self.lastrowid = cursor.lastrowid

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class LockedConnection:
    """The case's SQLite connection, usable from the GUI thread and its workers.

    Every statement runs under one re-entrant lock and returns its rows at once;
    ``AuditedDb.change`` holds the same lock for a whole transaction, so another thread
    never sees (or interleaves with) a transaction half done.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.lock = threading.RLock()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Rows:
        with self.lock:
            return Rows(self.connection.execute(sql, parameters))

    def executemany(self, sql: str, rows: Any) -> None:
        with self.lock:
            self.connection.executemany(sql, rows)

    def close(self) -> None:
        with self.lock:
            self.connection.close()


# ---- opening ---------------------------------------------------------------------
@dataclass(frozen=True)
class OpenedDatabase:
    """A checked (and, writable, migrated) connection and what opening found."""

    connection: sqlite3.Connection
    version: int  # the schema version the file was at before migrating
    schema_problems: tuple[str, ...]  # differences from the expected schema
    prior: bound.PriorRows | None  # rows as before a change (writable only)
    warnings: tuple[str, ...]


def open_database(folder: Path, *, writable: bool, creating: bool) -> OpenedDatabase:
    """Connect to ``case.sqlite``, check it and (writable) migrate it; every
    SQLite failure becomes one ``CaseError`` naming the file."""
    path = folder / DATABASE
    warnings: list[str] = []
    try:
        if writable:
            db = sqlite3.connect(
                path, isolation_level=None, timeout=10, check_same_thread=False
            )
        else:
            db = connect_read_only(path, warnings)
        db.row_factory = sqlite3.Row
        # text that is not UTF-8 (edited in outside XFR) must be readable, to
        # be named by verify rather than crash it; valid text reads as ever
        db.text_factory = decode_text
        try:
            version = prepare(db, path, writable=writable, creating=creating)
            # a writable case was migrated: its schema is now this version's
            current = db.execute("PRAGMA user_version").fetchone()[0]
            schema_problems = check_schema(db, path, current, writable)
            prior = bound.install_touch_triggers(db) if writable else None
        except BaseException:
            db.close()
            raise
    except sqlite3.DatabaseError as error:
        name = getattr(error, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not name:
            raise CaseError(
                f"the case database is damaged or not an XFR case ({error})", path
            ) from None
        if name.startswith("SQLITE_IOERR") and nearly_full(folder):
            raise CaseError(
                "disk full: the case database cannot be opened for writing "
                f"({error}); free some space",
                path,
            ) from None
        raise CaseError(describe_sqlite_error(error), path) from None
    return OpenedDatabase(db, version, tuple(schema_problems), prior, tuple(warnings))


def check_schema(
    db: sqlite3.Connection, path: Path, version: int, writable: bool
) -> list[str]:
    """Compare the schema with the one this version writes; refuse to write
    into a database with objects XFR never created (a trigger could rewrite
    every later change)."""
    if version == 0:
        return []
    expected = bound.expected_schema(
        statements(script) for script in MIGRATIONS[:version]
    )
    problems, _ = bound.schema_differences(bound.schema_objects(db.execute), expected)
    if problems and writable:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CaseError(
            f"the case database's structure was altered: {problems[0]}{more}; "
            "it is not opened for writing (open it read-only and run "
            "`xfr case verify`)",
            path,
        )
    return problems


def prepare(
    db: sqlite3.Connection, path: Path, *, writable: bool, creating: bool
) -> int:
    """Check the file, migrate it when writable; the version it was at."""
    db.execute("PRAGMA foreign_keys = ON")
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if not creating:
        if application_id != APPLICATION_ID:
            raise CaseError("not an XFR case database", path)
        # a case opened for writing gets the full check: quick_check skips
        # index contents, and a damaged index can hide rows from a query
        pragma = "integrity_check" if writable else "quick_check"
        check = db.execute(f"PRAGMA {pragma}").fetchone()[0]
        if check != "ok":
            raise CaseError(f"the case database is damaged ({check})", path)
    if version > SCHEMA_VERSION:
        raise CaseError(
            f"the case was written by a newer XFR version (schema {version}, "
            f"this version reads up to {SCHEMA_VERSION}); update XFR Desktop",
            path,
        )
    if not writable:
        return version
    if not creating and version < BINDING_VERSION:
        # a log that binds rows is format 2 or later: the number was lowered
        # outside XFR, and migrating would bind every altered row as found
        for (text,) in db.execute("SELECT details FROM audit"):
            if bound.STATE_KEY in parse_details(text):
                raise CaseError(
                    f"the case says it is format {version}, but its audit log "
                    "records row digests (format 2 and later): the format "
                    "number was altered outside XFR; it is not opened for "
                    "writing (run `xfr case verify`)",
                    path,
                )
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")  # a committed change survives a crash
    if creating:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for number in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(MIGRATIONS[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return version


# ---- audited transactions and checked reads --------------------------------------
class AuditedDb:
    """An open case's database with its audit log and (writable) its write lock."""

    def __init__(
        self,
        folder: Path,
        db: LockedConnection,
        audit: AuditLog,
        write_lock: WriteLock | None,
    ) -> None:
        self.folder = folder
        self._db = db
        self.audit = audit
        self.write_lock = write_lock
        self._columns: dict[str, tuple[str, ...]] = {}
        self._raw_reader: int | None = None  # thread reading without checks
        self._prior: bound.PriorRows | None = None  # rows as before a change
        # the schema as checked when opened
        self._schema_at_open: dict[tuple[str, str], str] | None = None

    @property
    def connection(self) -> LockedConnection:
        return self._db

    @property
    def read_only(self) -> bool:
        return self.write_lock is None

    def watch_writes(self, prior: bound.PriorRows | None) -> None:
        """Start checking changes: the rows' prior digests and the schema as now."""
        self._prior = prior
        self._schema_at_open = bound.schema_objects(self._db.execute)

    def release_lock(self) -> None:
        if self.write_lock is not None:
            self.write_lock.release()
            self.write_lock = None

    def refuse_an_altered_schema(self) -> None:
        """The schema as checked at open may have been changed since (a trigger
        added by another program): checked again inside every write transaction,
        before the change runs, since such a trigger would run inside it."""
        actual = bound.schema_objects(self._db.execute)
        if actual == self._schema_at_open:
            return
        self._schema_at_open = None
        raise CaseError(
            "the case database's structure was changed by another program while "
            "the case was open; nothing was written (close it and run `xfr case "
            "verify`)",
            self.folder,
        )

    @contextlib.contextmanager
    def change(
        self,
        action: str,
        details: Mapping[str, Any],
        *,
        user: str,
        login: str,
        bind_all: bool = False,
    ) -> Iterator[LockedConnection]:
        """One transaction: the change made in the body plus its audit entry.

        The entry records the digest of every row the transaction wrote (noted by
        the temporary triggers of core.case.state), or of every row (``bind_all``).
        """
        if self.read_only:
            raise CaseError("the case is open read-only", self.folder)
        db = self._db
        with db.lock, self.reading_raw():
            recorded = None if bind_all else self.audit.checked_recorded_state()
            db.execute("BEGIN IMMEDIATE")
            try:
                self.refuse_an_altered_schema()  # nobody can add one until COMMIT
                bound.clear_touched(db.execute)
                if self._prior is not None:
                    self._prior.clear()
                yield db
                db.execute("UPDATE case_info SET modified = ? WHERE id = 1", (now(),))
                touched = bound.touched_rows(db.execute)
                if recorded is not None:
                    self.refuse_to_launder(recorded, touched)
                rows = (
                    bound.all_rows_state(db.execute)
                    if bind_all
                    else bound.touched_state(db.execute, touched)
                )
                self.audit.append(action, details, rows, user=user, login=login)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        write_session(self.folder, self.audit.head(), open_=True, login=login)

    def refuse_to_launder(
        self, recorded: bound.Replay, touched: Sequence[tuple[str, list[Any]]]
    ) -> None:
        """A row this change overwrote or deleted must have been what the chain
        recorded, and a row it inserted must not be one the chain says exists
        (deleted outside XFR, its key reused); binding it anew would otherwise
        hide an outside alteration."""
        if self._prior is None or recorded.first_bound_seq is None:
            return  # a case from before row binding: nothing to compare with
        for table, values in touched:
            key = bound.row_key(table, values)
            if (table, key) in self._prior.digests:
                continue  # updated or deleted: checked below
            binding = recorded.bindings.get((table, key))
            if binding is not None and binding.digest is not None:
                raise CaseError(
                    f"{bound.describe_row(table, key)} was written by audit entry "
                    f"{binding.seq} ({binding.action}) and then removed outside XFR; "
                    "its key is not reused and nothing was written - run `xfr case "
                    "verify`",
                    self.folder,
                )
        for (table, key), digest in self._prior.digests.items():
            binding = recorded.bindings.get((table, key))
            if binding is None or binding.digest != digest:
                raise CaseError(
                    f"{bound.describe_row(table, key)} is not what the audit log "
                    "recorded (the case database was altered outside XFR), so it is "
                    "not changed; nothing was written - run `xfr case verify`",
                    self.folder,
                )

    @contextlib.contextmanager
    def reading_raw(self) -> Iterator[None]:
        """Within a change or a verification (connection lock held), reads are not
        checked against the chain: the rows are not bound yet, or being judged."""
        previous, self._raw_reader = self._raw_reader, threading.get_ident()
        try:
            yield
        finally:
            self._raw_reader = previous

    def checked(
        self,
        table: str,
        rows: Iterable[Any],
        *,
        even_read_only: bool = False,
        altered: Callable[[Any], str] | None = None,
    ) -> list[Any]:
        """``rows`` of ``table``, each checked against the digest its latest audit
        entry recorded: a fact altered outside XFR is never used to decide
        anything.  A case open read-only is shown as it is (``verify`` judges),
        unless ``even_read_only``; ``altered(row)`` words the refusal."""
        rows = list(rows)
        skip = self.read_only and not even_read_only
        if not rows or skip or self._raw_reader == threading.get_ident():
            return rows
        recorded = self.audit.checked_recorded_state()
        if table not in self._columns:
            self._columns[table] = tuple(
                r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")
            )
        columns, keys = self._columns[table], bound.BOUND_TABLES[table]
        for row in rows:
            values = {c: row[c] for c in columns}
            key = bound.row_key(table, (values[c] for c in keys))
            binding = recorded.bindings.get((table, key))
            if binding is not None and binding.digest == bound.row_digest(
                table, values
            ):
                continue
            key_values = [values[c] for c in keys]
            if not self._still_altered(table, key, key_values, columns):
                continue  # another thread changed it (audited) after it was read
            raise CaseError(
                altered(row)
                if altered is not None
                else f"{bound.describe_row(table, key)} is not what the audit log "
                "recorded (the case database was altered outside XFR); nothing "
                "stored in the case is used until `xfr case verify` passes",
                self.folder,
            )
        return rows

    def _still_altered(
        self,
        table: str,
        key: str,
        key_values: Sequence[Any],
        columns: Sequence[str],
    ) -> bool:
        """Re-read one row and the chain under the connection lock: a row read
        just before another thread's change differs from the newer binding
        without being tampered with."""
        with self._db.lock:
            recorded = self.audit.checked_recorded_state()
            binding = recorded.bindings.get((table, key))
            keys = bound.BOUND_TABLES[table]
            where = " AND ".join(f"{c} = ?" for c in keys)
            row = self._db.execute(
                f"SELECT * FROM {table} WHERE {where}", list(key_values)
            ).fetchone()
            if row is None:
                return binding is None or binding.digest is not None
            current = {c: row[c] for c in columns}
            return binding is None or binding.digest != bound.row_digest(table, current)


# ---- helpers ---------------------------------------------------------------------
def nearly_full(folder: Path) -> bool:
    """Too little space left for SQLite's write-ahead log and index files."""
    try:
        return shutil.disk_usage(folder).free < 4 << 20
    except OSError:
        return False


def connect_read_only(path: Path, warnings: list[str]) -> sqlite3.Connection:
    """A read-only connection, also on read-only media.

    SQLite reads a WAL database through its ``-shm`` file, which it must be able to
    create; in a read-only folder that fails, and the database is then opened as
    immutable.  That is exact when no ``-wal`` file holds committed changes, which
    a case closed by XFR never leaves (``close`` checkpoints); otherwise say so.
    """
    uri = path.resolve().as_uri()
    db = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=10, check_same_thread=False
    )
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as error:
        db.close()
        name = getattr(error, "sqlite_errorname", "") or ""
        cannot_write = not os.access(path.parent, os.W_OK) or nearly_full(path.parent)
        if not (
            name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY"))
            or (name.startswith("SQLITE_IOERR") and cannot_write)
        ):
            raise  # busy, damaged, ...: not a matter of a read-only disk
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            warnings.append(
                f"the case is on a read-only or full disk and its write-ahead log "
                f"({wal.name}"
                f", {wal.stat().st_size} bytes) cannot be read there: changes "
                "committed after the last checkpoint are not shown (copy the case "
                "to a writable disk to see them)"
            )
        db = sqlite3.connect(
            f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
    db.isolation_level = None
    return db


def decode_text(data: bytes) -> str:
    """Text as stored, undecodable bytes kept as surrogate escapes."""
    return data.decode("utf-8", "surrogateescape")


def statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their bodies)."""
    statements, current = [], []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
