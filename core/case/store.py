"""A case on disk: SQLite database, write-protected evidence, hash-chained audit log.

Layout of a case folder (copy, back up or move it as one unit)::

    case.sqlite         the database (WAL, foreign keys on, schema in schema.py)
    evidence/<sha256>   evidence originals, byte for byte, read-only
    derived/<sha256>.*  regenerable data (explanation maps), named by their hash
    case.lock           held while a process has the case open for writing

Every state change runs in one ``BEGIN IMMEDIATE`` transaction together with its
audit entry; each entry carries the SHA-256 of the previous one, so ``verify`` can
name the first entry that was edited, removed or inserted.  Files are written to a
``.partial`` name, synced and renamed before the transaction that references them
commits: a crash leaves either the whole change or none of it (plus at most an
unreferenced file, reported by ``verify`` and reused by a later intake).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.case import state as bound
from core.case.layout import (
    DATABASE,
    DERIVED,
    EVIDENCE,
    LOCK,
    PARTIAL_SUFFIX,
    SESSION,
    SHA256_HEX,
)
from core.case.schema import APPLICATION_ID, BINDING_VERSION, MIGRATIONS, SCHEMA_VERSION
from core.errors import (
    BadInputError,
    Cancelled,
    describe_os_error,
    describe_sqlite_error,
    printable,
)
from core.faces.detect import Face, face_from_landmarks
from core.imageio import MAX_PIXELS, load_image
from core.resources import sha256_file

GENESIS = "0" * 64
ROLE_PREFIX = {"probe": "Q", "gallery": "K"}  # questioned / known (forensic marks)
SHAPES = ("point", "rectangle", "ellipse", "polygon", "freehand")
# FISWG facial components (Facial Image Comparison Feature List, component level).
FISWG_COMPONENTS = (
    "skin",
    "face/head outline",
    "face/head composition",
    "hair",
    "forehead",
    "eyebrows",
    "eyes",
    "cheeks",
    "nose",
    "ears",
    "mouth",
    "chin/jawline",
    "neck",
    "facial hair",
    "facial lines",
    "scars",
    "facial marks",
    "alterations",
)

ProgressCallback = Callable[[int, int, str], None]


class CaseError(BadInputError):
    """The case cannot be opened or changed (locked, damaged, newer format)."""


class CaseLockedError(CaseError):
    """Another window or process has the case open for writing."""


def now() -> str:
    """UTC time stamp, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def login_name() -> str:
    """The operating-system login, recorded beside the examiner's name."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still record something
        return "unknown"


# ---- plain records ---------------------------------------------------------------
@dataclass(frozen=True)
class CaseInfo:
    case_uuid: str
    case_number: str
    title: str
    agency: str
    examiner: str
    created: str
    modified: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Exhibit:
    id: int
    mark: str
    role: str
    sha256: str
    original_name: str
    size: int
    format: str
    width: int
    height: int
    exif_orientation: int
    exif: Mapping[str, Any]
    note: str
    intake_time: str
    intake_user: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "exif": dict(self.exif)}


@dataclass(frozen=True)
class CaseFace:
    id: int
    exhibit_id: int
    mark: str
    face_index: int
    bbox: tuple[float, float, float, float]
    landmarks5: np.ndarray = field(repr=False)
    landmarks68: np.ndarray | None = field(repr=False)
    score: float | None
    source: str
    created: str
    created_by: str
    superseded: bool = False  # replaced by a later detection or correction

    @property
    def label(self) -> str:
        """``Q1`` for an exhibit's first face, ``Q1#2`` for its second."""
        return self.mark if self.face_index == 0 else f"{self.mark}#{self.face_index}"

    def to_face(self) -> Face:
        return Face(
            bbox=self.bbox,
            landmarks5=self.landmarks5,
            landmarks68=self.landmarks68,
            score=self.score,
            source=self.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "mark": self.mark,
            "face_index": self.face_index,
            **self.to_face().to_dict(),
            "created": self.created,
            "created_by": self.created_by,
            "superseded": self.superseded,
        }


@dataclass(frozen=True)
class Comparison:
    id: int
    probe_face_id: int
    gallery_face_id: int
    model_id: str
    model_sha256: str
    similarity: float
    distance: float
    threshold: Mapping[str, Any]
    decision: str
    created: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "threshold": dict(self.threshold)}


@dataclass(frozen=True)
class StoredExplanation:
    id: int
    comparison_id: int
    method: str
    params: Mapping[str, Any]
    seed: int
    model_sha256: str
    software_version: str
    cache_key: str
    result: Mapping[str, Any]  # ExplanationResult.to_dict()
    maps_sha256: str
    created: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "params": dict(self.params), "result": self.result}


@dataclass(frozen=True)
class Annotation:
    id: int
    exhibit_id: int | None
    explanation_id: int | None
    shape: str
    points: tuple[tuple[float, float], ...]
    label: str
    note: str
    component: str | None
    author: str
    created: str
    modified: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class Conclusion:
    id: int
    comparison_id: int | None
    text: str
    author: str
    created: str


@dataclass(frozen=True)
class AuditEntry:
    """One entry; ``details`` is what the action recorded, without the row digests
    (``rows``) and the login name (``login``) that every entry also carries."""

    seq: int
    time: str
    user: str
    action: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str
    login: str = ""
    rows: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "details": dict(self.details),
            "rows": {t: dict(r) for t, r in self.rows.items()},
        }


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass(frozen=True)
class IntakeResult:
    added: tuple[Exhibit, ...]
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found; ``problems`` empty means intact."""

    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    audit_entries: int
    evidence_files: int
    derived_files: int
    first_broken_entry: int | None = None
    head: tuple[int, str] | None = None  # (seq, hash) of the last entry read
    state_digest: str = ""  # of the state the chain records at ``head``

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "intact": self.intact}


# ---- hashing ---------------------------------------------------------------------
def entry_hash(
    seq: int, time: str, user: str, action: str, details: str, prev_hash: str
) -> str:
    """SHA-256 of one audit entry, chained through ``prev_hash``."""
    canonical = json.dumps(
        [seq, time, user, action, details, prev_hash], ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


# ---- lock ------------------------------------------------------------------------
class _WriteLock:
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
class _Rows:
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


class _LockedConnection:
    """The case's SQLite connection, usable from the GUI thread and its workers.

    Every statement runs under one re-entrant lock and returns its rows at once;
    ``Case._change`` holds the same lock for a whole transaction, so another thread
    never sees (or interleaves with) a transaction half done.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.lock = threading.RLock()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Rows:
        with self.lock:
            return _Rows(self.connection.execute(sql, parameters))

    def executemany(self, sql: str, rows: Any) -> None:
        with self.lock:
            self.connection.executemany(sql, rows)

    def close(self) -> None:
        with self.lock:
            self.connection.close()


# ---- the case --------------------------------------------------------------------
class Case:
    """An open case: use ``Case.create`` or ``Case.open``, then ``close`` it."""

    def __init__(
        self, folder: Path, db: sqlite3.Connection, lock: _WriteLock | None, user: str
    ) -> None:
        self.folder = folder
        self.user = user
        self.login = printable(login_name())
        self._db = _LockedConnection(db)
        self._lock = lock
        self.schema_problems: tuple[str, ...] = ()  # found at open (read-only)
        self.open_warnings: tuple[str, ...] = ()
        self._recorded: bound.Replay | None = None  # checked replay, extended lazily
        self._recorded_hash = GENESIS
        self._columns: dict[str, tuple[str, ...]] = {}
        self._raw_reader: int | None = None  # thread reading without checks
        self._prior: bound.PriorRows | None = None  # rows as before a change
        self._schema_at_open: dict | None = None  # as checked when opened

    # -- opening -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | Path,
        case_number: str,
        examiner: str,
        *,
        title: str = "",
        agency: str = "",
        user: str | None = None,
    ) -> Case:
        """A new, empty case in ``folder`` (which must not exist or be empty)."""
        folder = Path(folder)
        case_number, examiner = printable(case_number), printable(examiner)
        if not case_number.strip():
            raise BadInputError("a case needs a case number")
        if not examiner.strip():
            raise BadInputError("a case needs an examiner's name")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise CaseError(
                "already exists and is not an empty folder; a new case never "
                "overwrites anything",
                folder,
            )
        existed = folder.exists()
        case = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / EVIDENCE).mkdir(exist_ok=True)
            (folder / DERIVED).mkdir(exist_ok=True)
            case = cls._connect(
                folder,
                printable(user or examiner.strip()),
                writable=True,
                creating=True,
            )
            stamp = now()
            info = {
                "case_uuid": str(uuid.uuid4()),
                "case_number": case_number.strip(),
                "title": printable(title).strip(),
                "agency": printable(agency).strip(),
                "examiner": examiner.strip(),
            }
            with case._change("case.create", info) as db:
                db.execute(
                    "INSERT INTO case_info (id, case_uuid, case_number, title, "
                    "agency, examiner, created, modified) "
                    "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                    (*info.values(), stamp, stamp),
                )
        except BaseException:
            # a case that could not be made is not left half made (the folder was
            # empty or absent: nothing of anyone else's is removed)
            if case is not None:
                case.close()
            _remove_new_case(folder, remove_folder=not existed)
            raise
        return case

    @classmethod
    def open(
        cls, folder: str | Path, *, user: str | None = None, read_only: bool = False
    ) -> Case:
        """Open an existing case; for writing unless ``read_only``.

        Audit entries name ``user``, by default the case's examiner (the login name
        is recorded beside it in every entry).
        """
        folder = Path(folder)
        if not (folder / DATABASE).is_file():
            raise CaseError(f"not a case folder (no {DATABASE} inside)", folder)
        if not read_only and not os.access(folder, os.W_OK):
            raise CaseError(
                "the case is read-only (its folder is on a read-only disk or share, "
                "or you may not write there); open it read-only to look at or verify "
                "it",
                folder,
            )
        return cls._connect(folder, user, writable=not read_only)

    @classmethod
    def _connect(
        cls, folder: Path, user: str | None, *, writable: bool, creating: bool = False
    ) -> Case:
        lock = _WriteLock(folder / LOCK) if writable else None
        path = folder / DATABASE
        warnings: list[str] = []
        try:
            if writable:
                db = sqlite3.connect(
                    path, isolation_level=None, timeout=10, check_same_thread=False
                )
            else:
                db = _connect_read_only(path, warnings)
            db.row_factory = sqlite3.Row
            # text that is not UTF-8 (edited in outside XFR) must be readable, to
            # be named by verify rather than crash it; valid text reads as ever
            db.text_factory = _decode_text
            try:
                version = cls._prepare(db, path, writable=writable, creating=creating)
                schema_problems = cls._check_schema(db, path, version, writable)
                prior = bound.install_touch_triggers(db) if writable else None
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as error:
            if lock:
                lock.release()
            name = getattr(error, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not name:
                raise CaseError(
                    f"the case database is damaged or not an XFR case ({error})", path
                ) from None
            if name.startswith("SQLITE_IOERR") and _nearly_full(folder):
                raise CaseError(
                    "disk full: the case database cannot be opened for writing "
                    f"({error}); free some space",
                    path,
                ) from None
            raise CaseError(describe_sqlite_error(error), path) from None
        except BaseException:
            if lock:
                lock.release()
            raise
        case = cls(folder, db, lock, user or "")
        case._prior = prior
        if writable:
            case._schema_at_open = bound.schema_objects(db.execute)
        case.schema_problems = tuple(schema_problems)
        case.open_warnings = tuple(warnings)
        try:
            if not case.user and not creating:
                with case._db.lock, case._reading_raw():  # judged by verify
                    try:
                        case.user = case.info().examiner
                    except CaseError:  # no case record: verify names that
                        case.user = case.login
            if writable and not creating:
                case._refuse_a_rolled_back_case()
                case._remove_partial_files()
                if version < BINDING_VERSION:
                    case._upgrade(version)
                case._write_session(open_=True)
        except BaseException:
            case.close()
            raise
        return case

    @staticmethod
    def _check_schema(
        db: sqlite3.Connection, path: Path, version: int, writable: bool
    ) -> list[str]:
        """Compare the schema with the one this version writes; refuse to write
        into a database with objects XFR never created (a trigger could rewrite
        every later change)."""
        if version == 0:
            return []
        expected = bound.expected_schema(
            _statements(script) for script in MIGRATIONS[:version]
        )
        problems, _ = bound.schema_differences(
            bound.schema_objects(db.execute), expected
        )
        if problems and writable:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise CaseError(
                f"the case database's structure was altered: {problems[0]}{more}; "
                "it is not opened for writing (open it read-only and run "
                "`xfr case verify`)",
                path,
            )
        return problems

    def _refuse_an_altered_schema(self) -> None:
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

    def _refuse_a_rolled_back_case(self) -> None:
        """Before ``case.session`` is rewritten: a database older than the last
        committed change it records (a lost write-ahead log, an older copy put
        back) is not opened for writing, so the evidence of it is kept."""
        problems, _ = self._session_checks(self._read_session(), self.head())
        if problems:
            raise CaseError(
                f"{problems[0]}; the case is not opened for writing (open it "
                "read-only, run `xfr case verify`, and restore it from a backup or "
                "an export)",
                self.folder,
            )

    def _upgrade(self, version: int) -> None:
        """A case from before row binding: record the state as found, once.

        Refused when the log already binds rows: the format number was lowered
        outside XFR, and binding everything as found would launder any change.
        """
        recorded = self.recorded_state()
        forged = (self.folder / SESSION).exists() or (
            recorded.last_seq == 0
            and any(bound.all_rows_state(self._db.execute).values())
        )
        if recorded.first_bound_seq is not None or forged:
            raise CaseError(
                f"the case says it is format {version}, but its audit log records "
                "row digests (format 2 and later): the format number was altered "
                "outside XFR; it is not opened for writing (run `xfr case verify`)",
                self.folder,
            )
        with self._change(
            "case.upgrade",
            {
                "from_schema": version,
                "to_schema": SCHEMA_VERSION,
                "note": "stored rows bound to the audit log as found; earlier "
                "entries did not record row digests",
            },
            bind_all=True,
        ):
            pass

    @staticmethod
    def _prepare(
        db: sqlite3.Connection, path: Path, *, writable: bool, creating: bool
    ) -> int:
        """Check the file, migrate it when writable; the version it was at."""
        db.execute("PRAGMA foreign_keys = ON")
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
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
                if bound.STATE_KEY in _details(text):
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
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return version

    def close(self) -> None:
        """Close; a writable case first moves every committed change from the
        write-ahead log into ``case.sqlite``, so the folder alone holds them."""
        if self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write_session(open_=False)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def _write_session(self, *, open_: bool) -> None:
        """``case.session``: the last committed audit head, for ``verify`` to tell
        a lost write-ahead log or an older copy of the database put back."""
        write_session(self.folder, self.head(), open_=open_, login=self.login)

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def user(self) -> str:
        """The examiner audit entries name (text that can always be stored)."""
        return self._user

    @user.setter
    def user(self, name: str) -> None:
        self._user = printable(name)

    @property
    def read_only(self) -> bool:
        return self._lock is None

    # -- transactions and the audit log ----------------------------------------------
    @contextlib.contextmanager
    def _change(
        self, action: str, details: Mapping[str, Any], *, bind_all: bool = False
    ) -> Iterator[_LockedConnection]:
        """One transaction: the change made in the body plus its audit entry.

        The entry records the digest of every row the transaction wrote (noted by
        the temporary triggers of core.case.state), or of every row (``bind_all``).
        """
        if self.read_only:
            raise CaseError("the case is open read-only", self.folder)
        db = self._db
        with db.lock, self._reading_raw():
            recorded = None if bind_all else self._checked_recorded_state()
            db.execute("BEGIN IMMEDIATE")
            try:
                self._refuse_an_altered_schema()  # nobody can add one until COMMIT
                bound.clear_touched(db.execute)
                if self._prior is not None:
                    self._prior.clear()
                yield db
                db.execute("UPDATE case_info SET modified = ? WHERE id = 1", (now(),))
                touched = bound.touched_rows(db.execute)
                if recorded is not None:
                    self._refuse_to_launder(recorded, touched)
                rows = (
                    bound.all_rows_state(db.execute)
                    if bind_all
                    else bound.touched_state(db.execute, touched)
                )
                self._append_audit(action, details, rows)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        self._write_session(open_=True)

    def _refuse_to_launder(
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
    def _reading_raw(self) -> Iterator[None]:
        """Within a change or a verification (connection lock held), reads are not
        checked against the chain: the rows are not bound yet, or being judged."""
        previous, self._raw_reader = self._raw_reader, threading.get_ident()
        try:
            yield
        finally:
            self._raw_reader = previous

    def _checked(
        self,
        table: str,
        rows: Sequence[Any],
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
        recorded = self._checked_recorded_state()
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
            recorded = self._checked_recorded_state()
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

    def _append_audit(
        self,
        action: str,
        details: Mapping[str, Any],
        rows: Mapping[str, Mapping[str, str | None]],
    ) -> None:
        clash = set(details) & set(bound.RESERVED_KEYS)
        if clash:
            raise ValueError(f"audit details may not use the keys {sorted(clash)}")
        head = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        seq, prev = (head["seq"] + 1, head["hash"]) if head else (1, GENESIS)
        recorded = {
            **_printable_values(details),
            bound.LOGIN_KEY: self.login,
            bound.STATE_KEY: rows,
        }
        stamp, text = now(), _canonical(recorded)
        digest = entry_hash(seq, stamp, self.user, action, text, prev)
        self._db.execute(
            "INSERT INTO audit (seq, time, user, action, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, stamp, self.user, action, text, prev, digest),
        )
        self._db.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, digest),
        )

    def log(self, action: str, details: Mapping[str, Any]) -> None:
        """Record an action that changes nothing else (export, report, view)."""
        with self._change(action, details):
            pass

    def audit_log(self) -> list[AuditEntry]:
        return [
            _audit_entry(r)
            for r in self._db.execute("SELECT * FROM audit ORDER BY seq")
        ]

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest audit entry (``(0, GENESIS)`` when none)."""
        row = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        return (0, GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))

    def entries_after(self, seq: int) -> list[AuditEntry]:
        return [
            _audit_entry(r)
            for r in self._db.execute(
                "SELECT * FROM audit WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    def recorded_state(self, up_to: int | None = None) -> bound.Replay:
        """The state the audit chain records after entry ``up_to`` (default: all)."""
        rows = self._db.execute(
            "SELECT seq, action, details FROM audit WHERE seq <= ? ORDER BY seq",
            (up_to if up_to is not None else 1 << 62,),
        )
        return bound.replay(
            (r["seq"], r["action"], _details(r["details"])) for r in rows
        )

    def _checked_recorded_state(self) -> bound.Replay:
        """The recorded state, each new entry's hash and link checked as it is read.

        Used before a stored fact is relied on (cached embeddings): extended
        incrementally, so it costs one hash per new entry.
        """
        with self._db.lock:
            if self._recorded is None:
                self._recorded, self._recorded_hash = bound.Replay({}), GENESIS
            replayed = self._recorded
            for row in self._db.execute(
                "SELECT * FROM audit WHERE seq > ? ORDER BY seq", (replayed.last_seq,)
            ):
                if (
                    row["seq"] != replayed.last_seq + 1
                    or row["prev_hash"] != self._recorded_hash
                    or row["hash"] != _row_hash(row)
                ):
                    self._recorded = None
                    raise CaseError(
                        f"the audit log is damaged at entry {row['seq']}; nothing "
                        "stored in the case is used until `xfr case verify` passes",
                        self.folder,
                    )
                replayed.add(row["seq"], row["action"], _details(row["details"]))
                self._recorded_hash = row["hash"]
            return replayed

    # -- case metadata -----------------------------------------------------------------
    def info(self) -> CaseInfo:
        row = self._db.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
        if row is not None:
            self._checked("case_info", [row])
        if row is None:
            raise CaseError("the case has no case record", self.folder)
        return CaseInfo(*(row[k] for k in CaseInfo.__dataclass_fields__))

    def update_info(self, **changes: str) -> CaseInfo:
        allowed = {"case_number", "title", "agency", "examiner"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadInputError(f"cannot change case field(s) {sorted(unknown)}")
        changes = {key: printable(value) for key, value in changes.items()}
        before = self.info().to_dict()
        with self._change(
            "case.update",
            {k: {"from": before[k], "to": v} for k, v in changes.items()},
        ) as db:
            for key, value in changes.items():
                db.execute(f"UPDATE case_info SET {key} = ? WHERE id = 1", (value,))
        return self.info()

    # -- evidence intake -------------------------------------------------------------
    def add_exhibits(
        self,
        files: Sequence[str | Path],
        role: str,
        *,
        note: str = "",
        max_pixels: int = MAX_PIXELS,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> IntakeResult:
        """Copy, check and store evidence files; one transaction for all of them.

        Each file is read once: copied into the case while being hashed, and its
        size, format, dimensions and EXIF summary are then read from that copy,
        so the record always describes the stored bytes.  A file that changes
        while it is copied, cannot be read as an image, or is already in the case
        is rejected with a reason (the refusal is audited) and never stored; the
        others become exhibits with the next free marks (Q… probes, K… gallery).
        """
        if role not in ROLE_PREFIX:
            raise BadInputError(f"role must be probe or gallery, not {role!r}")
        if self.read_only:
            raise CaseError("the case is open read-only", self.folder)
        known = {
            r["sha256"]: r["mark"]
            for r in self._db.execute("SELECT sha256, mark FROM exhibits")
        }
        staged: list[tuple[Path, Path, dict[str, Any]]] = []  # source, copy, record
        rejected: list[Rejection] = []
        total = len(files)
        try:
            for number, name in enumerate(files):
                if cancel is not None and cancel():
                    raise Cancelled("intake cancelled; nothing was added")
                path = Path(name)
                if progress:
                    progress(number, total, f"checking {printable(path.name)}")
                try:
                    copy, record = self._stage_evidence(path, max_pixels)
                except BadInputError as error:
                    rejected.append(Rejection(printable(str(path)), error.reason))
                    continue
                if record["sha256"] in known:
                    _remove_partial(copy)
                    rejected.append(
                        Rejection(
                            printable(str(path)),
                            f"already in the case as {known[record['sha256']]} "
                            "(same SHA-256)",
                        )
                    )
                    continue
                known[record["sha256"]] = f"this intake ({printable(path.name)})"
                staged.append((path, copy, record))
            stored: list[tuple[Path, dict[str, Any]]] = []
            new_files: list[Path] = []  # named by this intake: removed if it fails
            for path, copy, record in staged:
                target = self.folder / EVIDENCE / record["sha256"]
                existed = target.exists()
                try:
                    self._commit_evidence(copy, record["sha256"], path)
                except BadInputError as error:
                    rejected.append(Rejection(printable(str(path)), error.reason))
                    continue
                if not existed:
                    new_files.append(target)
                stored.append((path, record))
        finally:
            for _path, copy, _record in staged:
                _remove_partial(copy)
        added: list[Exhibit] = []
        refused = [r.__dict__ for r in rejected]
        if stored:
            marks = self._next_marks(role, len(stored))
            stamp = now()
            with (
                self._removing_on_failure(new_files),
                self._change(
                    "exhibits.add",
                    {
                        "exhibits": [
                            {"mark": mark, "role": role}
                            | {k: r[k] for k in ("sha256", "original_name", "size")}
                            | {"source_path": printable(str(p))}
                            for mark, (p, r) in zip(marks, stored, strict=True)
                        ],
                        "rejected": refused,
                    },
                ) as db,
            ):
                for mark, (_path, record) in zip(marks, stored, strict=True):
                    db.execute(
                        "INSERT INTO exhibits (mark, role, sha256, original_name, "
                        "size, format, width, height, exif_orientation, exif, note, "
                        "intake_time, intake_user) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            mark,
                            role,
                            record["sha256"],
                            record["original_name"],
                            record["size"],
                            record["format"],
                            record["width"],
                            record["height"],
                            record["exif_orientation"],
                            json.dumps(record["exif"], default=_plain),
                            note,
                            stamp,
                            self.user,
                        ),
                    )
            added = [self.exhibit(mark) for mark in marks]
        elif rejected:
            self.log("exhibits.refused", {"role": role, "rejected": refused})
        if progress:
            progress(total, total, "intake done")
        return IntakeResult(tuple(added), tuple(rejected))

    @contextlib.contextmanager
    def _removing_on_failure(self, files: Sequence[Path]) -> Iterator[None]:
        """Evidence files whose exhibits were not committed are not left behind."""
        try:
            yield
        except BaseException:
            for path in files:
                _remove_partial(path)
            raise

    def _stage_evidence(self, source: Path, max_pixels: int) -> tuple[Path, dict]:
        """Copy ``source`` into the evidence folder under a ``.partial`` name,
        hashing while copying, and describe the copy (never the source again)."""
        try:
            before = os.stat(source)
        except OSError as error:
            reason = (
                "file not found"
                if error.errno == errno.ENOENT
                else (f"cannot read file ({error.strerror})")
            )
            raise BadInputError(reason, source) from None
        if stat.S_ISDIR(before.st_mode):
            raise BadInputError("not a file (a folder)", source)
        if not stat.S_ISREG(before.st_mode):
            raise BadInputError("not a regular file (a device, pipe or socket)", source)
        partial = self.folder / EVIDENCE / f"{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
        digest, size = hashlib.sha256(), 0
        try:
            try:
                reader = open(source, "rb")
            except OSError as error:
                raise BadInputError(
                    f"cannot read file ({error.strerror})", source
                ) from None
            with reader, open(partial, "xb") as writer:
                while chunk := _read_chunk(reader):
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
                after = os.fstat(reader.fileno())
        except BadInputError:
            _remove_partial(partial)
            raise
        except OSError as error:
            _remove_partial(partial)
            raise BadInputError(
                f"cannot store a copy in the case ({error.strerror})", source
            ) from None
        changed = (after.st_size, after.st_mtime_ns) != (
            before.st_size,
            before.st_mtime_ns,
        )
        if changed or size != after.st_size:
            _remove_partial(partial)
            raise BadInputError(
                "the file changed while it was being added (it is still being "
                "written or copied?); nothing was stored, add it again when it is "
                "complete",
                source,
            )
        try:
            image = load_image(partial, max_pixels=max_pixels)
            exif = _exif_summary(partial)
        except BadInputError as error:
            _remove_partial(partial)
            raise BadInputError(error.reason, source) from None
        if image.sha256 != digest.hexdigest():  # our own copy changed: never expected
            _remove_partial(partial)
            raise BadInputError("the stored copy does not match what was read", source)
        record = {
            "sha256": image.sha256,
            "original_name": printable(source.name),
            "size": size,
            "format": image.format,
            "width": image.size[0],
            "height": image.size[1],
            "exif_orientation": image.exif_orientation,
            "exif": exif,
        }
        del image
        return partial, record

    def _commit_evidence(self, partial: Path, sha256: str, source: Path) -> Path:
        """Give a staged copy its final name ``evidence/<sha256>``, read-only."""
        target = self.folder / EVIDENCE / sha256
        try:
            if target.exists() and sha256_file(target) == sha256:
                return target  # left by an intake that crashed before its commit
            os.chmod(partial, 0o444)
            if target.exists():  # a damaged leftover: keep it aside, never delete
                os.replace(target, target.with_name(f"{sha256}.damaged-{uuid.uuid4()}"))
            os.replace(partial, target)
            _fsync_dir(target.parent)
        except OSError as error:
            raise BadInputError(
                f"cannot store a copy in the case ({error.strerror})", source
            ) from None
        return target

    def _next_marks(self, role: str, count: int) -> list[str]:
        prefix = ROLE_PREFIX[role]
        numbers = [
            int(r["mark"][1:])
            for r in self._db.execute(
                "SELECT mark FROM exhibits WHERE role = ?", (role,)
            )
        ]
        start = max(numbers, default=0) + 1
        return [f"{prefix}{n}" for n in range(start, start + count)]

    def _remove_partial_files(self) -> None:
        for folder in (EVIDENCE, DERIVED):
            for leftover in (self.folder / folder).glob("*" + PARTIAL_SUFFIX):
                with contextlib.suppress(OSError):
                    os.chmod(leftover, 0o644)
                    leftover.unlink()

    # -- exhibits ------------------------------------------------------------------
    def exhibits(self, role: str | None = None) -> list[Exhibit]:
        query = "SELECT * FROM exhibits"
        rows = (
            self._db.execute(query + " WHERE role = ? ORDER BY id", (role,))
            if role
            else self._db.execute(query + " ORDER BY id")
        )
        return [_exhibit(row) for row in self._checked("exhibits", rows)]

    def exhibit(self, mark: str) -> Exhibit:
        row = self._db.execute(
            "SELECT * FROM exhibits WHERE mark = ?", (mark.upper(),)
        ).fetchone()
        if row is not None:
            self._checked("exhibits", [row])
        if row is None:
            marks = ", ".join(e.mark for e in self.exhibits()) or "none yet"
            raise BadInputError(f"no exhibit {mark!r} in this case (exhibits: {marks})")
        return _exhibit(row)

    def evidence_path(self, exhibit: Exhibit) -> Path:
        return self.folder / EVIDENCE / exhibit.sha256

    # -- faces ---------------------------------------------------------------------
    def set_faces(
        self, mark: str, faces: Sequence[Face], *, detector: str = ""
    ) -> list[CaseFace]:
        """Record detected faces of an exhibit (earlier ones stay, superseded)."""
        exhibit = self.exhibit(mark)
        stamp = now()
        with self._change(
            "faces.detect",
            {
                "exhibit": exhibit.mark,
                "detector": detector,
                "faces": [face.to_dict() for face in faces],
            },
        ) as db:
            db.execute(
                "UPDATE faces SET superseded = 1 WHERE exhibit_id = ?", (exhibit.id,)
            )
            for index, face in enumerate(faces):
                self._insert_face(db, exhibit.id, index, face, stamp)
        return self.faces(exhibit.mark)

    def correct_face(
        self, label: str, landmarks5: Sequence[Sequence[float]]
    ) -> CaseFace:
        """Replace one face's five landmarks by the examiner's (manual placement)."""
        points = np.asarray(landmarks5, dtype=float)
        if points.shape != (5, 2) or not np.isfinite(points).all():
            raise BadInputError("manual landmarks need five finite (x, y) points")
        previous = self.face(label) if self._has_face(label) else None
        mark, index = _split_label(label)
        exhibit = self.exhibit(mark)
        indexes = [f.face_index for f in self.faces(mark)]
        count = len(indexes)
        if previous is None and index > max(indexes, default=-1) + 1:
            following = max(indexes, default=-1) + 1
            next_label = mark if following == 0 else f"{mark}#{following}"
            raise BadInputError(
                f"no face {label!r} to correct ({mark} has {count} face"
                f"{'' if count == 1 else 's'}); to place a new face use {next_label}"
            )
        face = face_from_landmarks(points, (exhibit.height, exhibit.width))
        stamp = now()
        with self._change(
            "faces.correct",
            {
                "face": f"{mark}#{index}" if index else mark,
                "from": previous.to_face().to_dict() if previous else None,
                "to": face.to_dict(),
            },
        ) as db:
            db.execute(
                "UPDATE faces SET superseded = 1 WHERE exhibit_id = ? AND "
                "face_index = ?",
                (exhibit.id, index),
            )
            self._insert_face(db, exhibit.id, index, face, stamp)
        return self.face(label)

    def _insert_face(
        self, db: _LockedConnection, exhibit_id: int, index: int, face: Face, stamp
    ) -> None:
        db.execute(
            "INSERT INTO faces (exhibit_id, face_index, bbox, landmarks5, "
            "landmarks68, score, source, created, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                exhibit_id,
                index,
                json.dumps([float(v) for v in face.bbox]),
                json.dumps(np.asarray(face.landmarks5, float).tolist()),
                None
                if face.landmarks68 is None
                else json.dumps(np.asarray(face.landmarks68, float).tolist()),
                face.score,
                face.source,
                stamp,
                self.user,
            ),
        )

    def faces(self, mark: str | None = None) -> list[CaseFace]:
        """Current (not superseded) faces, of one exhibit or of all."""
        query = (
            "SELECT faces.*, exhibits.mark FROM faces JOIN exhibits "
            "ON exhibits.id = faces.exhibit_id WHERE superseded = 0"
        )
        if mark is not None:
            exhibit = self.exhibit(mark)
            rows = self._db.execute(
                query + " AND exhibit_id = ? ORDER BY face_index", (exhibit.id,)
            )
        else:
            rows = self._db.execute(query + " ORDER BY exhibit_id, face_index")
        return [_face(row) for row in self._checked("faces", rows)]

    def _has_face(self, label: str) -> bool:
        mark, index = _split_label(label)
        return any(f.face_index == index for f in self.faces(mark))

    def face(self, label: str) -> CaseFace:
        """A face by label: ``Q1`` (first face of Q1) or ``Q1#2``."""
        mark, index = _split_label(label)
        faces = self.faces(mark)
        for face in faces:
            if face.face_index == index:
                return face
        if not faces:
            raise BadInputError(
                f"exhibit {mark} has no face yet (no face was found; place the five "
                "landmarks by hand)"
            )
        labels = ", ".join(f.label for f in faces)
        raise BadInputError(f"no face {label!r} (faces of {mark}: {labels})")

    def face_by_id(self, face_id: int) -> CaseFace:
        row = self._db.execute(
            "SELECT faces.*, exhibits.mark FROM faces JOIN exhibits "
            "ON exhibits.id = faces.exhibit_id WHERE faces.id = ?",
            (face_id,),
        ).fetchone()
        if row is None:
            raise BadInputError(f"no face with id {face_id}")
        return _face(self._checked("faces", [row])[0])

    # -- embeddings cache (derived; for 1:N ranking) -----------------------------------
    def cached_embeddings(
        self, face_ids: Sequence[int], model_sha256: str
    ) -> dict[int, np.ndarray]:
        """Stored embeddings, each checked against the digest its audit entry
        recorded (also in a case open read-only): an altered cache stops the
        comparison instead of deciding it."""

        def altered(row: Any) -> str:
            label = self.face_by_id(row["face_id"]).label
            return (
                f"the stored embedding of face {label} is not the one the audit log "
                "recorded (the case database was altered outside XFR); nothing is "
                "compared until `xfr case verify` passes"
            )

        out = {}
        for start in range(0, len(face_ids), 500):  # SQLite's parameter limit
            part = list(face_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT * FROM embeddings WHERE model_sha256 = ? "
                f"AND face_id IN ({marks})",
                (model_sha256, *part),
            )
            for row in self._checked(
                "embeddings", rows, even_read_only=True, altered=altered
            ):
                out[row["face_id"]] = np.frombuffer(row["vector"], "<f4").copy()
        return out

    def store_embeddings(
        self, vectors: Mapping[int, np.ndarray], model_id: str, model_sha256: str
    ) -> None:
        if not vectors:
            return
        with self._change(
            "embeddings.store",
            {
                "model": model_id,
                "model_sha256": model_sha256,
                "faces": sorted(vectors),
            },
        ) as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (face_id, model_sha256, vector) "
                "VALUES (?, ?, ?)",
                [
                    (face_id, model_sha256, np.asarray(v, "<f4").tobytes())
                    for face_id, v in vectors.items()
                ],
            )

    # -- comparisons ---------------------------------------------------------------
    def record_comparisons(
        self,
        probe_face_id: int,
        scores: Sequence[tuple[int, float, float, str]],
        *,
        model_id: str,
        model_sha256: str,
        threshold: Mapping[str, Any],
    ) -> list[Comparison]:
        """Store one probe's comparisons, ``(gallery face id, cosine, distance,
        decision)`` each, in one transaction with one audit entry.

        A comparison already stored (same pair, model and threshold) is reused.
        """
        threshold_text = json.dumps(dict(threshold), sort_keys=True)

        def stored() -> dict[int, Comparison]:
            rows = self._db.execute(
                "SELECT * FROM comparisons WHERE probe_face_id = ? AND "
                "model_sha256 = ? AND threshold = ?",
                (probe_face_id, model_sha256, threshold_text),
            )
            return {
                row["gallery_face_id"]: _comparison(row)
                for row in self._checked("comparisons", rows)
            }

        existing = stored()
        new = [s for s in scores if s[0] not in existing]
        if new:
            labels = {f.id: f.label for f in self.faces()}
            probe = self.face_by_id(probe_face_id)
            stamp = now()
            with self._change(
                "comparisons.record",
                {
                    "probe": probe.label,
                    "model": model_id,
                    "model_sha256": model_sha256,
                    "threshold": dict(threshold),
                    "results": [
                        {
                            "gallery": labels.get(face_id, face_id),
                            "similarity": similarity,
                            "distance": distance,
                            "decision": decision,
                        }
                        for face_id, similarity, distance, decision in new
                    ],
                },
            ) as db:
                db.executemany(
                    "INSERT INTO comparisons (probe_face_id, gallery_face_id, "
                    "model_id, model_sha256, similarity, distance, threshold, "
                    "decision, created, created_by) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            probe_face_id,
                            face_id,
                            model_id,
                            model_sha256,
                            float(similarity),
                            float(distance),
                            threshold_text,
                            decision,
                            stamp,
                            self.user,
                        )
                        for face_id, similarity, distance, decision in new
                    ],
                )
            existing = stored()
        return [existing[face_id] for face_id, *_ in scores]

    def comparison(self, comparison_id: int) -> Comparison:
        row = self._db.execute(
            "SELECT * FROM comparisons WHERE id = ?", (comparison_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no comparison with id {comparison_id}")
        return _comparison(self._checked("comparisons", [row])[0])

    def comparisons(self) -> list[Comparison]:
        rows = self._db.execute("SELECT * FROM comparisons ORDER BY id")
        return [_comparison(r) for r in self._checked("comparisons", rows)]

    # -- derived files ----------------------------------------------------------------
    def store_derived(self, data: bytes, kind: str, suffix: str) -> str:
        """Write regenerable data under its SHA-256 (call inside ``_change``)."""
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest}.{suffix}"
        target = self.folder / DERIVED / name
        if not target.exists():
            partial = target.with_name(name + PARTIAL_SUFFIX)
            with open(partial, "wb") as writer:
                writer.write(data)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(partial, target)
            _fsync_dir(target.parent)
        self._db.execute(
            "INSERT OR IGNORE INTO derived (sha256, kind, file_name, size, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (digest, kind, name, len(data), now()),
        )
        return digest

    def derived_path(self, sha256: str) -> Path:
        row = self._db.execute(
            "SELECT * FROM derived WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            raise CaseError(f"no derived file {sha256[:12]}…", self.folder)
        self._checked("derived", [row])
        return self.folder / DERIVED / row["file_name"]

    # -- explanations --------------------------------------------------------------
    def store_explanation(
        self, comparison_id: int, result_dict: Mapping[str, Any], maps_npz: bytes
    ) -> StoredExplanation:
        existing = self.find_explanation(result_dict["cache_key"])
        if existing is not None:
            return existing
        comparison = self.comparison(comparison_id)
        with self._change(
            "explanation.store",
            {
                "comparison": comparison.id,
                "method": result_dict["method"],
                "params": result_dict["params"],
                "seed": result_dict["seed"],
                "cache_key": result_dict["cache_key"],
                "model_sha256": result_dict["model"]["weights_sha256"],
                "software_version": result_dict["software_version"],
            },
        ) as db:
            maps_sha256 = self.store_derived(maps_npz, "explanation-maps", "npz")
            db.execute(
                "INSERT INTO explanations (comparison_id, method, params, seed, "
                "model_sha256, software_version, cache_key, result, maps_sha256, "
                "created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    comparison.id,
                    result_dict["method"],
                    json.dumps(result_dict["params"], sort_keys=True),
                    int(result_dict["seed"]),
                    result_dict["model"]["weights_sha256"],
                    result_dict["software_version"],
                    result_dict["cache_key"],
                    json.dumps(result_dict, default=_plain),
                    maps_sha256,
                    now(),
                    self.user,
                ),
            )
        found = self.find_explanation(result_dict["cache_key"])
        assert found is not None
        return found

    def find_explanation(self, cache_key: str) -> StoredExplanation | None:
        row = self._db.execute(
            "SELECT * FROM explanations WHERE cache_key = ?", (cache_key,)
        ).fetchone()
        if row is None:
            return None
        return _explanation(self._checked("explanations", [row])[0])

    def explanation(self, explanation_id: int) -> StoredExplanation:
        row = self._db.execute(
            "SELECT * FROM explanations WHERE id = ?", (explanation_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no explanation with id {explanation_id}")
        return _explanation(self._checked("explanations", [row])[0])

    def explanations(self, comparison_id: int | None = None) -> list[StoredExplanation]:
        if comparison_id is None:
            rows = self._db.execute("SELECT * FROM explanations ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM explanations WHERE comparison_id = ? ORDER BY id",
                (comparison_id,),
            )
        return [_explanation(r) for r in self._checked("explanations", rows)]

    # -- faithfulness of explanations ----------------------------------------------
    def store_faithfulness(
        self, explanation_id: int, key: str, record: Mapping[str, Any]
    ) -> None:
        """Keep a faithfulness check of a stored explanation (a derived JSON file,
        named with its hash in the audit entry that binds it to the explanation)."""
        explanation = self.explanation(explanation_id)
        if any(k == key for k, _ in self.faithfulness_records(explanation_id)):
            return
        data = json.dumps(record, sort_keys=True, default=_plain).encode()
        verdicts = {
            f"{side} {kind}": figures["verdict"]
            for side, kinds in record["faithfulness"].items()
            for kind, figures in kinds.items()
        }
        with self._change(
            "explanation.faithfulness",
            {
                "explanation": explanation.id,
                "method": explanation.method,
                "key": key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "verdicts": verdicts,
            },
        ):
            self.store_derived(data, "faithfulness", "json")

    def faithfulness_records(
        self, explanation_id: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(key, record)`` of every faithfulness check of an explanation, oldest
        first; each file is checked against the hash its audit entry holds."""
        out = []
        for entry in self.audit_log():
            details = entry.details
            if entry.action != "explanation.faithfulness":
                continue
            if details.get("explanation") != explanation_id:
                continue
            path = self.derived_path(str(details["sha256"]))
            try:
                data = path.read_bytes()
            except OSError as error:
                raise CaseError(
                    f"cannot read a faithfulness record ({describe_os_error(error)})",
                    path,
                ) from None
            if hashlib.sha256(data).hexdigest() != details["sha256"]:
                raise CaseError(
                    "faithfulness record does not match the hash in the audit "
                    f"trail (entry {entry.seq}): the case was altered",
                    path,
                )
            out.append((str(details["key"]), json.loads(data)))
        return out

    # -- annotations ---------------------------------------------------------------
    def add_annotation(
        self,
        *,
        shape: str,
        points: Sequence[Sequence[float]],
        exhibit: str | None = None,
        explanation_id: int | None = None,
        label: str = "",
        note: str = "",
        component: str | None = None,
    ) -> Annotation:
        """An annotation on an exhibit (by mark) or on a stored explanation."""
        if (exhibit is None) == (explanation_id is None):
            raise BadInputError("annotate either an exhibit or an explanation")
        label, note = printable(label), printable(note)
        checked = _check_annotation(shape, points, component)
        exhibit_id = self.exhibit(exhibit).id if exhibit is not None else None
        if explanation_id is not None:
            self.explanation(explanation_id)
        stamp = now()
        target = exhibit.upper() if exhibit else f"explanation {explanation_id}"
        with self._change(
            "annotation.add",
            {
                "on": target,
                "shape": shape,
                "points": checked,
                "label": label,
                "note": note,
                "component": component,
            },
        ) as db:
            cursor = db.execute(
                "INSERT INTO annotations (exhibit_id, explanation_id, shape, points, "
                "label, note, component, author, created, modified) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    exhibit_id,
                    explanation_id,
                    shape,
                    json.dumps(checked),
                    label,
                    note,
                    component,
                    self.user,
                    stamp,
                    stamp,
                ),
            )
            annotation_id = int(cursor.lastrowid)
        return self.annotation(annotation_id)

    def update_annotation(self, annotation_id: int, **changes: Any) -> Annotation:
        allowed = {"points", "label", "note", "component"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadInputError(f"cannot change annotation field(s) {sorted(unknown)}")
        for text in ("label", "note"):
            if isinstance(changes.get(text), str):
                changes[text] = printable(changes[text])
        before = self.annotation(annotation_id)
        if "points" in changes:
            changes["points"] = _check_annotation(
                before.shape, changes["points"], changes.get("component")
            )
        elif "component" in changes:
            _check_annotation(before.shape, before.points, changes["component"])
        with self._change(
            "annotation.update",
            {
                "id": annotation_id,
                "from": {k: before.to_dict()[k] for k in changes},
                "to": changes,
            },
        ) as db:
            for key, value in changes.items():
                db.execute(
                    f"UPDATE annotations SET {key} = ?, modified = ? WHERE id = ?",
                    (
                        json.dumps(value) if key == "points" else value,
                        now(),
                        annotation_id,
                    ),
                )
        return self.annotation(annotation_id)

    def delete_annotation(self, annotation_id: int) -> None:
        """Remove an annotation; its full content stays in the audit log."""
        before = self.annotation(annotation_id)
        with self._change("annotation.delete", before.to_dict()) as db:
            db.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))

    def annotation(self, annotation_id: int) -> Annotation:
        row = self._db.execute(
            "SELECT * FROM annotations WHERE id = ?", (annotation_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no annotation with id {annotation_id}")
        return _annotation(self._checked("annotations", [row])[0])

    def annotations(
        self, exhibit: str | None = None, explanation_id: int | None = None
    ) -> list[Annotation]:
        if exhibit is not None:
            rows = self._db.execute(
                "SELECT * FROM annotations WHERE exhibit_id = ? ORDER BY id",
                (self.exhibit(exhibit).id,),
            )
        elif explanation_id is not None:
            rows = self._db.execute(
                "SELECT * FROM annotations WHERE explanation_id = ? ORDER BY id",
                (explanation_id,),
            )
        else:
            rows = self._db.execute("SELECT * FROM annotations ORDER BY id")
        return [_annotation(r) for r in self._checked("annotations", rows)]

    # -- examiner conclusions ------------------------------------------------------
    def add_conclusion(self, text: str, comparison_id: int | None = None) -> Conclusion:
        """The examiner's own words; each edit is a new revision, none is lost."""
        text = printable(text)
        if not text.strip():
            raise BadInputError("a conclusion needs text")
        if comparison_id is not None:
            self.comparison(comparison_id)
        with self._change(
            "conclusion.add", {"comparison": comparison_id, "text": text}
        ) as db:
            cursor = db.execute(
                "INSERT INTO conclusions (comparison_id, text, author, created) "
                "VALUES (?, ?, ?, ?)",
                (comparison_id, text, self.user, now()),
            )
            conclusion_id = int(cursor.lastrowid)
        return next(c for c in self.conclusions() if c.id == conclusion_id)

    def conclusions(self) -> list[Conclusion]:
        return [
            Conclusion(
                r["id"], r["comparison_id"], r["text"], r["author"], r["created"]
            )
            for r in self._checked(
                "conclusions", self._db.execute("SELECT * FROM conclusions ORDER BY id")
            )
        ]

    # -- verification --------------------------------------------------------------
    def verify(
        self,
        progress: ProgressCallback | None = None,
        *,
        anchor: Mapping[str, Any] | None = None,
    ) -> VerifyReport:
        """Check the case against its audit chain (see docs/integrity.md).

        The database is read in one read transaction, so a writer committing in
        another process meanwhile is never taken for tampering: the audit chain,
        the schema, every stored row against the digest its latest audit entry
        recorded, and then every evidence and derived file against its hash.
        ``anchor`` (from ``anchor()``, kept elsewhere) also detects a rolled-back
        or rewritten log.
        """
        problems: list[str] = []
        warnings: list[str] = list(self.open_warnings)
        session = self._read_session()  # before the snapshot: see _session_checks
        listed = _list_folder(self.folder / EVIDENCE)
        db = self._db
        with db.lock, self._reading_raw():
            db.execute("BEGIN")  # deferred: the first read fixes the snapshot
            try:
                check = db.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    problems.append(f"database integrity check failed: {check}")
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                audit_rows = [
                    dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")
                ]
                head_row = db.execute("SELECT seq, hash FROM audit_head").fetchone()
                first_broken = self._verify_chain(audit_rows, head_row, problems)
                known_version = min(version, SCHEMA_VERSION)
                expected = bound.expected_schema(
                    _statements(script) for script in MIGRATIONS[:known_version]
                )
                schema_problems, schema_warnings = bound.schema_differences(
                    bound.schema_objects(db.execute), expected
                )
                problems += schema_problems
                warnings += schema_warnings
                recorded = bound.replay(
                    (r["seq"], r["action"], _details(r["details"])) for r in audit_rows
                )
                problems_rows, row_warnings = self._state_checks(recorded, version)
                problems += problems_rows
                warnings += row_warnings
                exhibits = [
                    _StoredFile(
                        str(r["mark"]), str(r["sha256"]), str(r["original_name"])
                    )
                    for r in db.execute(
                        "SELECT mark, sha256, original_name FROM exhibits ORDER BY id"
                    )
                ]
                derived = [
                    dict(r) for r in db.execute("SELECT * FROM derived ORDER BY sha256")
                ]
                try:
                    case_uuid = self.info().case_uuid
                except CaseError:
                    case_uuid = ""  # the missing row is named by the state checks
            finally:
                db.execute("COMMIT")
        head = (
            (int(head_row["seq"]), str(head_row["hash"])) if head_row else (0, GENESIS)
        )
        session_problems, session_warnings = self._session_checks(session, head)
        problems += session_problems
        warnings += session_warnings
        if anchor is not None:
            problems += anchor_problems(anchor, audit_rows, case_uuid)
        total = len(exhibits) + len(derived)
        for number, exhibit in enumerate(exhibits):
            if progress:
                progress(number, total, f"checking {exhibit.mark}")
            if not SHA256_HEX.fullmatch(exhibit.sha256):
                problems.append(
                    f"exhibit {exhibit.mark}: its stored SHA-256 is not a SHA-256 "
                    f"({exhibit.sha256[:80]!r})"
                )
                continue
            path = self.folder / EVIDENCE / exhibit.sha256
            try:
                if not path.is_file():
                    problems.append(
                        f"evidence file of {exhibit.mark} ({exhibit.original_name}) "
                        f"is missing: {path}"
                    )
                elif sha256_file(path) != exhibit.sha256:
                    problems.append(
                        f"evidence file of {exhibit.mark} ({exhibit.original_name}) "
                        "was altered: its SHA-256 no longer matches the intake hash "
                        f"({path})"
                    )
                elif os.stat(path).st_mode & 0o222:
                    warnings.append(
                        f"evidence file of {exhibit.mark} is not write-protected"
                    )
            except OSError as error:
                problems.append(
                    f"evidence file of {exhibit.mark} cannot be read "
                    f"({error.strerror}): {path}"
                )
        for number, row in enumerate(derived, start=len(exhibits)):
            if progress:
                progress(number, total, "checking derived data")
            path = self.folder / DERIVED / str(row["file_name"])
            if Path(str(row["file_name"])).name != row["file_name"]:
                problems.append(
                    f"derived file name {str(row['file_name'])[:80]!r} points outside "
                    "the derived folder"
                )
                continue
            try:
                if not path.is_file():
                    problems.append(f"derived file {row['file_name']} is missing")
                elif sha256_file(path) != row["sha256"]:
                    problems.append(
                        f"derived file {row['file_name']} was altered (it can be "
                        "regenerated, but the stored copy is not what was computed)"
                    )
            except OSError as error:
                problems.append(
                    f"derived file {row['file_name']} cannot be read ({error.strerror})"
                )
        referenced = {e.sha256 for e in exhibits}
        for name in listed:
            if name not in referenced and not name.endswith(PARTIAL_SUFFIX):
                warnings.append(
                    f"file {name} in the evidence folder belongs to no exhibit "
                    "(left by an interrupted intake?)"
                )
        if progress:
            progress(total, total, "verified")
        return VerifyReport(
            tuple(problems),
            tuple(warnings),
            len(audit_rows),
            len(exhibits),
            len(derived),
            first_broken,
            head=head,
            state_digest=recorded.digest(),
        )

    def _state_checks(
        self, recorded: bound.Replay, version: int
    ) -> tuple[list[str], list[str]]:
        """Every stored row against the digest the chain recorded for it."""
        problems: list[str] = []
        warnings: list[str] = []
        if recorded.first_bound_seq is None:
            if recorded.last_seq == 0:
                if any(bound.all_rows_state(self._db.execute).values()):
                    problems.append(
                        "the audit log is empty, but the case holds stored rows: "
                        "the log was removed outside XFR"
                    )
                return problems, warnings
            if version >= BINDING_VERSION:
                problems.append(
                    "no audit entry records the stored rows, although this case's "
                    "format requires every entry to (the log was rewritten?)"
                )
            else:
                warnings.append(
                    "the case was written by an XFR version that did not bind the "
                    "stored rows to the audit log: only the log and the files are "
                    "checked (opening it for writing binds them as found)"
                )
            return problems, warnings
        if version < BINDING_VERSION:
            problems.append(
                f"the case says it is format {version}, but audit entry "
                f"{recorded.first_bound_seq} records row digests, which only format "
                f"{BINDING_VERSION} and later write: the format number was lowered "
                "outside XFR"
            )
        if recorded.first_bound_seq > 1:
            warnings.append(
                f"audit entries 1-{recorded.first_bound_seq - 1} were written by an "
                "XFR version that did not bind the stored rows; the rows are checked "
                f"from entry {recorded.first_bound_seq} on (the state as found then)"
            )
        if recorded.unbound_after_first:
            listed = ", ".join(map(str, recorded.unbound_after_first[:10]))
            problems.append(
                f"audit entries {listed} do not record the rows they wrote, which "
                "every entry of this format does (entries were rewritten?)"
            )
        marks = {
            r["id"]: r["mark"]
            for r in self._db.execute("SELECT id, mark FROM exhibits")
        }
        faces = {
            r["id"]: (marks.get(r["exhibit_id"], "?"), r["face_index"])
            for r in self._db.execute("SELECT id, exhibit_id, face_index FROM faces")
        }

        def face_label(face_id: Any) -> str:
            mark, index = faces.get(face_id, ("?", 0))
            return mark if not index else f"{mark}#{index}"

        def label(table: str, row: Mapping[str, Any]) -> str:
            if table == "exhibits":
                return f"exhibit {row['mark']}"
            if table == "faces":
                return f"a face of {face_label(row['id'])}"
            if table == "embeddings":
                return f"cached embedding of {face_label(row['face_id'])}"
            if table == "comparisons":
                return (
                    f"comparison {face_label(row['probe_face_id'])} × "
                    f"{face_label(row['gallery_face_id'])}, now '{row['decision']}'"
                )
            if table == "explanations":
                return (
                    f"{row['method']} explanation of comparison {row['comparison_id']}"
                )
            if table == "annotations":
                return f"annotation '{row['label']}'" if row["label"] else "annotation"
            if table == "conclusions":
                return "examiner's conclusion"
            if table == "case_info":
                return f"case number {row['case_number']}, examiner {row['examiner']}"
            return ""

        problems += [
            problem.text()
            for problem in bound.compare(recorded, self._db.execute, label=label)
        ]
        return problems, warnings

    def _verify_chain(
        self, rows: Sequence[Mapping[str, Any]], head: Any, problems: list[str]
    ) -> int | None:
        prev, expected_seq, first_broken = GENESIS, 1, None
        for row in rows:
            seq = row["seq"]
            reason = None
            if seq != expected_seq:
                reason = f"entries {expected_seq}..{seq - 1} are missing"
            elif row["prev_hash"] != prev:
                reason = "its link to the previous entry is broken"
            elif row["hash"] != _row_hash(row):
                reason = "its content was changed after it was written"
            if reason and first_broken is None:
                first_broken = seq
                problems.append(
                    f"audit log entry {seq} ({row['action']}, {row['time']}): {reason}"
                )
            prev, expected_seq = row["hash"], seq + 1
        if head is None or head["seq"] != expected_seq - 1 or head["hash"] != prev:
            if first_broken is None:
                first_broken = expected_seq
            recorded = "none" if head is None else head["seq"]
            problems.append(
                f"audit log: the recorded last entry ({recorded}) does not match the "
                f"log's last entry ({expected_seq - 1}); entries were removed from "
                "or added to its end"
            )
        return first_broken

    def _read_session(self) -> dict[str, Any] | None:
        """``case.session`` as written, ``None`` when absent, or what is wrong."""
        try:
            text = _read_small_file(self.folder / SESSION)
        except FileNotFoundError:
            return None
        except OSError as error:
            return {"unusable": error.strerror or str(error)}
        value = _details(text)
        return value or {"unusable": "not the record XFR writes"}

    def _session_checks(
        self, session: Mapping[str, Any] | None, head: tuple[int, str]
    ) -> tuple[list[str], list[str]]:
        """``case.session`` (read before the snapshot) against the log's head.

        It is written after each commit, so in honest use it never records more
        than the snapshot read after it holds.
        """
        if session is None:
            if head[0] == 0:
                return [], []
            return [], [
                f"{SESSION} is missing (XFR writes it after every change): an older "
                f"copy of {DATABASE} put back would go unnoticed; only an anchor "
                "(`xfr case anchor`) can tell"
            ]
        if "unusable" in session:
            return [
                f"{SESSION} cannot be used ({session['unusable']}); it is how a lost "
                f"write-ahead log or an older {DATABASE} put back is detected"
            ], []
        seq, digest = session.get("seq"), session.get("hash")
        if not isinstance(seq, int) or not isinstance(digest, str):
            return [f"{SESSION} is damaged (it should record the last entry)"], []
        if seq > head[0]:
            return [
                f"{SESSION} records audit entry {seq} as committed (at "
                f"{session.get('time')}), but the database ends at entry {head[0]}: "
                "committed changes are missing (a lost write-ahead log "
                f"{DATABASE}-wal, or an older copy of {DATABASE} put back)"
            ], []
        problems, warnings = [], []
        if seq == head[0] and digest != head[1]:
            problems.append(
                f"{SESSION} records a different hash for audit entry {seq} than the "
                "log holds: the log was rewritten"
            )
        wal = self.folder / (DATABASE + "-wal")
        if (
            session.get("open")
            and not self._lock
            and not wal.exists()
            and not _lock_is_held(self.folder / LOCK)
        ):
            warnings.append(
                f"the case was not closed cleanly and has no write-ahead log "
                f"({DATABASE}-wal): if the folder was copied while the case was "
                "open, changes after the last checkpoint may be missing"
            )
        return problems, warnings

    def anchor(self) -> dict[str, Any]:
        """A small record of the audit head, to keep outside the case folder.

        ``verify(anchor=...)`` then detects a rollback (the case replaced by an
        older copy) and a consistently rewritten log.
        """
        from core import __version__

        with self._db.lock:
            self._db.execute("BEGIN")
            try:
                seq, digest = self.head()
                info = self.info()
                state = self.recorded_state(seq).digest()
            finally:
                self._db.execute("COMMIT")
        return {
            "format": ANCHOR_FORMAT,
            "version": 1,
            "case_uuid": info.case_uuid,
            "case_number": info.case_number,
            "seq": seq,
            "hash": digest,
            "state_digest": state,
            "time": now(),
            "software_version": __version__,
        }

    # -- for other core modules ----------------------------------------------------
    def snapshot_info(self) -> dict[str, Any]:
        """Case info plus counts (for listings, archives and reports)."""
        counts = {
            table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("exhibits", "faces", "comparisons", "explanations", "audit")
        }
        return {**self.info().to_dict(), "counts": counts}


# ---- anchors ---------------------------------------------------------------------
ANCHOR_FORMAT = "xfr-case-anchor"


@dataclass(frozen=True)
class _StoredFile:
    """What ``verify`` needs of an exhibit row (read without trusting the rest)."""

    mark: str
    sha256: str
    original_name: str


def anchor_problems(
    anchor: Mapping[str, Any], audit_rows: Sequence[Mapping[str, Any]], case_uuid: str
) -> list[str]:
    """What an anchor (``Case.anchor()``, or a report's) says is wrong with a log.

    ``audit_rows`` are the log's entries, oldest first.  A missing entry means the
    log was rolled back (or truncated); a different hash means it was rewritten;
    a different state digest means the rows it recorded were.
    """
    made = f"(anchor made {anchor.get('time', 'at an unknown time')})"
    if anchor.get("case_uuid") != case_uuid:
        return [
            f"the anchor belongs to case {anchor.get('case_number')} "
            f"({anchor.get('case_uuid')}), not to this case ({case_uuid})"
        ]
    seq, digest = anchor.get("seq"), anchor.get("hash")
    if not isinstance(seq, int) or not isinstance(digest, str):
        return ["the anchor is damaged (no audit entry number and hash)"]
    last = audit_rows[-1]["seq"] if audit_rows else 0
    if seq == 0:
        return []
    if seq > last:
        return [
            f"the case was rolled back: the anchor records audit entry {seq} "
            f"{made}, but the case's log ends at entry {last}"
        ]
    by_seq = {row["seq"]: row for row in audit_rows}
    row = by_seq.get(seq)
    if row is None or row["hash"] != digest:
        return [
            f"the audit log was rewritten: entry {seq} is not the one the anchor "
            f"recorded {made}"
        ]
    wanted = anchor.get("state_digest")
    if isinstance(wanted, str) and wanted:
        recorded = bound.replay(
            (r["seq"], r["action"], _details(r["details"]))
            for r in audit_rows
            if r["seq"] <= seq
        )
        if recorded.digest() != wanted:
            return [
                f"the state the log records up to entry {seq} is not the one the "
                f"anchor recorded {made}"
            ]
    return []


def read_anchor(path: str | Path) -> dict[str, Any]:
    """An anchor file written by ``xfr case anchor``; one clear error otherwise."""
    path = Path(path)
    try:
        value = json.loads(_read_small_file(path))
    except OSError as error:
        raise BadInputError(
            f"cannot read the anchor ({error.strerror})", path
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadInputError("not an XFR case anchor (not JSON)", path) from None
    if not isinstance(value, dict) or value.get("format") != ANCHOR_FORMAT:
        raise BadInputError("not an XFR case anchor", path)
    if not isinstance(value.get("case_uuid"), str) or not isinstance(
        value.get("seq"), int
    ):
        raise BadInputError(
            "the anchor is damaged (no case identifier or entry number)", path
        )
    return value


def write_session(
    folder: Path, head: tuple[int, str], *, open_: bool, login: str
) -> None:
    """Write ``case.session`` (atomically; best effort: the database holds the
    truth, and a missing or stale record only weakens rollback detection)."""
    record = {
        "open": open_,
        "seq": head[0],
        "hash": head[1],
        "time": now(),
        "login": login,
        "pid": os.getpid(),
    }
    target = folder / SESSION
    partial = target.with_name(SESSION + PARTIAL_SUFFIX)
    try:
        with open(partial, "w", encoding="utf-8") as writer:
            json.dump(record, writer)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(partial, target)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()


_SMALL_FILE_BYTES = 1 << 20


def _read_small_file(path: Path) -> str:
    """A small regular file as text; never blocks on a pipe or reads a device."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a link, not a file", str(path)) from None
        raise
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > _SMALL_FILE_BYTES:
            raise OSError(errno.EFBIG, "too large", str(path))
        data = handle.read(_SMALL_FILE_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise OSError(errno.EINVAL, "not UTF-8 text", str(path)) from None


def _remove_new_case(folder: Path, *, remove_folder: bool) -> None:
    """Undo a ``Case.create`` that failed: only what it made itself."""
    names = (DATABASE, DATABASE + "-wal", DATABASE + "-shm", SESSION, LOCK)
    for name in names:
        with contextlib.suppress(OSError):
            (folder / name).unlink()
    for sub in (EVIDENCE, DERIVED):
        with contextlib.suppress(OSError):
            (folder / sub).rmdir()  # empty: a new case holds no file yet
    if remove_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()


# ---- helpers ---------------------------------------------------------------------
_CHUNK_BYTES = 1 << 20


def _read_chunk(reader: Any) -> bytes:
    """One chunk of an evidence file being copied (a seam for the race test)."""
    return reader.read(_CHUNK_BYTES)


def _remove_partial(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)
    with contextlib.suppress(OSError):
        path.unlink()


def _printable_values(value: Any) -> Any:
    """Audit details with every text made storable (file names whose bytes are
    not UTF-8 arrive with surrogate escapes, which SQLite and JSON cannot take)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Path):
        return printable(str(value))
    if isinstance(value, Mapping):
        return {printable(str(k)): _printable_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable_values(v) for v in value]
    return value


def _nearly_full(folder: Path) -> bool:
    """Too little space left for SQLite's write-ahead log and index files."""
    try:
        return shutil.disk_usage(folder).free < 4 << 20
    except OSError:
        return False


def _list_folder(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []


def _lock_is_held(path: Path) -> bool:
    """Whether another process holds the case's write lock (POSIX; else False)."""
    if sys.platform == "win32":
        return False
    import fcntl

    try:
        with open(path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _connect_read_only(path: Path, warnings: list[str]) -> sqlite3.Connection:
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
        cannot_write = not os.access(path.parent, os.W_OK) or _nearly_full(path.parent)
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


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _details(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _row_hash(row: Mapping[str, Any]) -> str:
    return entry_hash(
        row["seq"],
        row["time"],
        row["user"],
        row["action"],
        row["details"],
        row["prev_hash"],
    )


def _audit_entry(row: Mapping[str, Any]) -> AuditEntry:
    details = _details(row["details"])
    rows = details.pop(bound.STATE_KEY, None)
    login = details.pop(bound.LOGIN_KEY, "")
    return AuditEntry(
        row["seq"],
        row["time"],
        row["user"],
        row["action"],
        details,
        row["prev_hash"],
        row["hash"],
        login=str(login),
        rows=rows if isinstance(rows, dict) else {},
    )


def _statements(script: str) -> list[str]:
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


def _fsync_dir(folder: Path) -> None:
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _split_label(label: str) -> tuple[str, int]:
    mark, _, index = label.strip().upper().partition("#")
    if index and not index.isdigit():
        raise BadInputError(f"face label {label!r} should look like Q1 or Q1#2")
    return mark, int(index or 0)


def _check_annotation(
    shape: str, points: Sequence[Sequence[float]], component: str | None
) -> list[list[float]]:
    if shape not in SHAPES:
        raise BadInputError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise BadInputError("annotation points must be finite (x, y) pairs")
    needed = {"point": 1, "rectangle": 2, "ellipse": 2, "polygon": 3, "freehand": 2}
    if len(array) < needed[shape] or (shape == "point" and len(array) != 1):
        raise BadInputError(
            f"a {shape} needs {'exactly' if shape == 'point' else 'at least'} "
            f"{needed[shape]} point(s), got {len(array)}"
        )
    if component is not None and component not in FISWG_COMPONENTS:
        raise BadInputError(
            f"unknown FISWG component {component!r} (one of: "
            f"{', '.join(FISWG_COMPONENTS)})"
        )
    return array.tolist()


def _exif_summary(path: Path) -> dict[str, Any]:
    """The EXIF fields an examiner asks about first (camera, time, software, GPS)."""
    from PIL import Image

    tags = {
        271: "make",
        272: "model",
        305: "software",
        306: "date_time",
        274: "orientation",
    }
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            summary: dict[str, Any] = {
                name: _exif_value(exif.get(tag)) for tag, name in tags.items()
            }
            sub = exif.get_ifd(0x8769)
            summary["date_time_original"] = _exif_value(sub.get(36867))
            summary["gps_present"] = bool(exif.get_ifd(0x8825))
    except Exception:  # unreadable EXIF must not stop intake of a readable image
        return {"unreadable": True}
    return {k: v for k, v in summary.items() if v not in (None, "", False)}


def _exif_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")
    if isinstance(value, (int, float)):
        return value
    return str(value).strip("\x00 ")


def _malformed_as_case_error(table: str):
    """A stored row that cannot be read (edited outside XFR) is a CaseError."""

    def decorate(build):
        def wrapper(row):
            try:
                return build(row)
            except (ValueError, TypeError, KeyError, IndexError) as error:
                raise CaseError(
                    f"a stored {table} row cannot be read ({type(error).__name__}: "
                    f"{error}); the database was altered outside XFR - run "
                    "`xfr case verify`"
                ) from None

        return wrapper

    return decorate


@_malformed_as_case_error("exhibits")
def _exhibit(row: sqlite3.Row) -> Exhibit:
    values = dict(row)
    values["exif"] = json.loads(values["exif"])
    return Exhibit(**values)


@_malformed_as_case_error("faces")
def _face(row: sqlite3.Row) -> CaseFace:
    return CaseFace(
        id=row["id"],
        exhibit_id=row["exhibit_id"],
        mark=row["mark"],
        face_index=row["face_index"],
        bbox=tuple(json.loads(row["bbox"])),
        landmarks5=np.asarray(json.loads(row["landmarks5"]), float),
        landmarks68=None
        if row["landmarks68"] is None
        else np.asarray(json.loads(row["landmarks68"]), float),
        score=row["score"],
        source=row["source"],
        created=row["created"],
        created_by=row["created_by"],
        superseded=bool(row["superseded"]),
    )


@_malformed_as_case_error("comparisons")
def _comparison(row: sqlite3.Row) -> Comparison:
    values = dict(row)
    values["threshold"] = json.loads(values["threshold"])
    return Comparison(**values)


@_malformed_as_case_error("explanations")
def _explanation(row: sqlite3.Row) -> StoredExplanation:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    values["result"] = json.loads(values["result"])
    return StoredExplanation(**values)


@_malformed_as_case_error("annotations")
def _annotation(row: sqlite3.Row) -> Annotation:
    values = dict(row)
    values["points"] = tuple(tuple(p) for p in json.loads(values["points"]))
    return Annotation(**values)
