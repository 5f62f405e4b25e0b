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
import hashlib
import json
import os
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from core.case.layout import DATABASE, DERIVED, EVIDENCE, LOCK, PARTIAL_SUFFIX
from core.case.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from core.errors import BadInputError, Cancelled
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


def default_user() -> str:
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
    seq: int
    time: str
    user: str
    action: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "details": dict(self.details)}


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
        self._db = _LockedConnection(db)
        self._lock = lock

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
        folder.mkdir(parents=True, exist_ok=True)
        (folder / EVIDENCE).mkdir(exist_ok=True)
        (folder / DERIVED).mkdir(exist_ok=True)
        case = cls._connect(folder, user or examiner, writable=True, creating=True)
        stamp = now()
        info = {
            "case_uuid": str(uuid.uuid4()),
            "case_number": case_number.strip(),
            "title": title.strip(),
            "agency": agency.strip(),
            "examiner": examiner.strip(),
        }
        with case._change("case.create", info) as db:
            db.execute(
                "INSERT INTO case_info (id, case_uuid, case_number, title, agency, "
                "examiner, created, modified) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (*info.values(), stamp, stamp),
            )
        return case

    @classmethod
    def open(
        cls, folder: str | Path, *, user: str | None = None, read_only: bool = False
    ) -> Case:
        """Open an existing case; for writing unless ``read_only``."""
        folder = Path(folder)
        if not (folder / DATABASE).is_file():
            raise CaseError(f"not a case folder (no {DATABASE} inside)", folder)
        return cls._connect(folder, user or default_user(), writable=not read_only)

    @classmethod
    def _connect(
        cls, folder: Path, user: str, *, writable: bool, creating: bool = False
    ) -> Case:
        lock = _WriteLock(folder / LOCK) if writable else None
        path = folder / DATABASE
        try:
            if writable:
                db = sqlite3.connect(
                    path, isolation_level=None, timeout=10, check_same_thread=False
                )
            else:
                db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    timeout=10,
                    check_same_thread=False,
                )
                db.isolation_level = None
            db.row_factory = sqlite3.Row
            try:
                cls._prepare(db, path, writable=writable, creating=creating)
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as error:
            if lock:
                lock.release()
            raise CaseError(
                f"the case database is damaged or not an XFR case ({error})", path
            ) from None
        except BaseException:
            if lock:
                lock.release()
            raise
        case = cls(folder, db, lock, user)
        if writable:
            case._remove_partial_files()
        return case

    @staticmethod
    def _prepare(
        db: sqlite3.Connection, path: Path, *, writable: bool, creating: bool
    ) -> None:
        db.execute("PRAGMA foreign_keys = ON")
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if not creating:
            if application_id != APPLICATION_ID:
                raise CaseError("not an XFR case database", path)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise CaseError(f"the case database is damaged ({check})", path)
        if version > SCHEMA_VERSION:
            raise CaseError(
                f"the case was written by a newer XFR version (schema {version}, "
                f"this version reads up to {SCHEMA_VERSION}); update XFR Desktop",
                path,
            )
        if not writable:
            return
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

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def read_only(self) -> bool:
        return self._lock is None

    # -- transactions and the audit log ----------------------------------------------
    @contextlib.contextmanager
    def _change(
        self, action: str, details: Mapping[str, Any]
    ) -> Iterator[_LockedConnection]:
        """One transaction: the change made in the body plus its audit entry."""
        if self.read_only:
            raise CaseError("the case is open read-only", self.folder)
        db = self._db
        with db.lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                self._append_audit(action, details)
                db.execute("UPDATE case_info SET modified = ? WHERE id = 1", (now(),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _append_audit(self, action: str, details: Mapping[str, Any]) -> None:
        head = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        seq, prev = (head["seq"] + 1, head["hash"]) if head else (1, GENESIS)
        stamp, text = now(), _canonical(details)
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
            AuditEntry(
                r["seq"],
                r["time"],
                r["user"],
                r["action"],
                json.loads(r["details"]),
                r["prev_hash"],
                r["hash"],
            )
            for r in self._db.execute("SELECT * FROM audit ORDER BY seq")
        ]

    # -- case metadata -----------------------------------------------------------------
    def info(self) -> CaseInfo:
        row = self._db.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
        if row is None:
            raise CaseError("the case has no case record", self.folder)
        return CaseInfo(*(row[k] for k in CaseInfo.__dataclass_fields__))

    def update_info(self, **changes: str) -> CaseInfo:
        allowed = {"case_number", "title", "agency", "examiner"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadInputError(f"cannot change case field(s) {sorted(unknown)}")
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
        """Hash, check and store evidence files; one transaction for all of them.

        Files that cannot be read as images, or that are already in the case, are
        rejected with a reason and never stored; the others become exhibits with the
        next free marks (Q… for probes, K… for gallery images).
        """
        if role not in ROLE_PREFIX:
            raise BadInputError(f"role must be probe or gallery, not {role!r}")
        known = {
            r["sha256"]: r["mark"]
            for r in self._db.execute("SELECT sha256, mark FROM exhibits")
        }
        accepted: list[tuple[Path, Any, dict[str, Any]]] = []
        rejected: list[Rejection] = []
        total = len(files)
        for number, name in enumerate(files):
            if cancel is not None and cancel():
                raise Cancelled("intake cancelled; nothing was added")
            path = Path(name)
            if progress:
                progress(number, total, f"checking {path.name}")
            try:
                image = load_image(path, max_pixels=max_pixels)
            except BadInputError as error:
                rejected.append(Rejection(str(path), error.reason))
                continue
            if image.sha256 in known:
                rejected.append(
                    Rejection(
                        str(path),
                        f"already in the case as {known[image.sha256]} (same SHA-256)",
                    )
                )
                continue
            known[image.sha256] = f"this intake ({path.name})"
            # keep what the record needs, not the pixels: a large intake stays small
            facts = SimpleNamespace(
                sha256=image.sha256,
                format=image.format,
                size=image.size,
                exif_orientation=image.exif_orientation,
            )
            del image
            accepted.append((path, facts, _exif_summary(path)))
        stored: list[tuple[Path, Any, dict[str, Any]]] = []
        for path, image, exif in accepted:
            try:
                self._store_evidence(path, image.sha256)
            except BadInputError as error:
                rejected.append(Rejection(str(path), error.reason))
                continue
            stored.append((path, image, exif))
        added: list[Exhibit] = []
        if stored:
            marks = self._next_marks(role, len(stored))
            records = [
                {
                    "mark": mark,
                    "role": role,
                    "sha256": image.sha256,
                    "original_name": path.name,
                    "size": path.stat().st_size,
                    "format": image.format,
                    "width": image.size[0],
                    "height": image.size[1],
                    "exif_orientation": image.exif_orientation,
                    "exif": exif,
                    "note": note,
                }
                for mark, (path, image, exif) in zip(marks, stored, strict=True)
            ]
            stamp = now()
            with self._change(
                "exhibits.add",
                {
                    "exhibits": [
                        {k: r[k] for k in ("mark", "role", "sha256", "original_name")}
                        | {"source_path": str(p)}
                        for r, (p, _, _) in zip(records, stored, strict=True)
                    ],
                    "rejected": [r.__dict__ for r in rejected],
                },
            ) as db:
                for record in records:
                    db.execute(
                        "INSERT INTO exhibits (mark, role, sha256, original_name, "
                        "size, format, width, height, exif_orientation, exif, note, "
                        "intake_time, intake_user) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            *(record[k] for k in list(record)[:9]),
                            json.dumps(record["exif"], default=_plain),
                            record["note"],
                            stamp,
                            self.user,
                        ),
                    )
            added = [self.exhibit(record["mark"]) for record in records]
        if progress:
            progress(total, total, "intake done")
        return IntakeResult(tuple(added), tuple(rejected))

    def _store_evidence(self, source: Path, sha256: str) -> Path:
        """Copy ``source`` to ``evidence/<sha256>`` (read-only), checking the hash."""
        target = self.folder / EVIDENCE / sha256
        if target.exists() and sha256_file(target) == sha256:
            return target  # left by an intake that crashed before its commit
        partial = target.with_name(sha256 + PARTIAL_SUFFIX)
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as reader, open(partial, "wb") as writer:
                while chunk := reader.read(1 << 20):
                    digest.update(chunk)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            if digest.hexdigest() != sha256:
                raise BadInputError(
                    "the file changed while it was being added; try again", source
                )
            os.chmod(partial, 0o444)
            if target.exists():  # a damaged leftover: keep it aside, never delete
                os.replace(target, target.with_name(f"{sha256}.damaged-{uuid.uuid4()}"))
            os.replace(partial, target)
            _fsync_dir(target.parent)
        except OSError as error:
            raise BadInputError(
                f"cannot store a copy in the case ({error.strerror})", source
            ) from None
        finally:
            if partial.exists():
                with contextlib.suppress(OSError):
                    os.chmod(partial, 0o644)
                    partial.unlink()
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
        return [_exhibit(row) for row in rows]

    def exhibit(self, mark: str) -> Exhibit:
        row = self._db.execute(
            "SELECT * FROM exhibits WHERE mark = ?", (mark.upper(),)
        ).fetchone()
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
        return [_face(row) for row in rows]

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
        return _face(row)

    # -- embeddings cache (derived; for 1:N ranking) -----------------------------------
    def cached_embeddings(
        self, face_ids: Sequence[int], model_sha256: str
    ) -> dict[int, np.ndarray]:
        out = {}
        for start in range(0, len(face_ids), 500):  # SQLite's parameter limit
            part = list(face_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(
                f"SELECT face_id, vector FROM embeddings WHERE model_sha256 = ? "
                f"AND face_id IN ({marks})",
                (model_sha256, *part),
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
            return {row["gallery_face_id"]: _comparison(row) for row in rows}

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
        return _comparison(row)

    def comparisons(self) -> list[Comparison]:
        return [
            _comparison(r)
            for r in self._db.execute("SELECT * FROM comparisons ORDER BY id")
        ]

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
            "SELECT file_name FROM derived WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            raise CaseError(f"no derived file {sha256[:12]}…", self.folder)
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
        return None if row is None else _explanation(row)

    def explanation(self, explanation_id: int) -> StoredExplanation:
        row = self._db.execute(
            "SELECT * FROM explanations WHERE id = ?", (explanation_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no explanation with id {explanation_id}")
        return _explanation(row)

    def explanations(self, comparison_id: int | None = None) -> list[StoredExplanation]:
        if comparison_id is None:
            rows = self._db.execute("SELECT * FROM explanations ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM explanations WHERE comparison_id = ? ORDER BY id",
                (comparison_id,),
            )
        return [_explanation(r) for r in rows]

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
        return _annotation(row)

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
        return [_annotation(r) for r in rows]

    # -- examiner conclusions ------------------------------------------------------
    def add_conclusion(self, text: str, comparison_id: int | None = None) -> Conclusion:
        """The examiner's own words; each edit is a new revision, none is lost."""
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
            for r in self._db.execute("SELECT * FROM conclusions ORDER BY id")
        ]

    # -- verification --------------------------------------------------------------
    def verify(self, progress: ProgressCallback | None = None) -> VerifyReport:
        """Recompute the audit chain and every stored file's hash."""
        problems: list[str] = []
        warnings: list[str] = []
        check = self._db.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            problems.append(f"database integrity check failed: {check}")
        first_broken, entries = self._verify_chain(problems)
        triggers = {
            r[0]
            for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
        for trigger in ("audit_no_update", "audit_no_delete"):
            if trigger not in triggers:
                problems.append(
                    f"the audit log's append-only protection ({trigger}) was removed"
                )
        exhibits = self.exhibits()
        derived = list(self._db.execute("SELECT * FROM derived ORDER BY sha256"))
        total = len(exhibits) + len(derived)
        for number, exhibit in enumerate(exhibits):
            if progress:
                progress(number, total, f"checking {exhibit.mark}")
            path = self.evidence_path(exhibit)
            if not path.is_file():
                problems.append(
                    f"evidence file of {exhibit.mark} ({exhibit.original_name}) is "
                    f"missing: {path}"
                )
            elif sha256_file(path) != exhibit.sha256:
                problems.append(
                    f"evidence file of {exhibit.mark} ({exhibit.original_name}) was "
                    f"altered: its SHA-256 no longer matches the intake hash ({path})"
                )
            elif os.access(path, os.W_OK) and os.stat(path).st_mode & 0o222:
                warnings.append(
                    f"evidence file of {exhibit.mark} is not write-protected"
                )
        for number, row in enumerate(derived, start=len(exhibits)):
            if progress:
                progress(number, total, "checking derived data")
            path = self.folder / DERIVED / row["file_name"]
            if not path.is_file():
                problems.append(f"derived file {row['file_name']} is missing")
            elif sha256_file(path) != row["sha256"]:
                problems.append(
                    f"derived file {row['file_name']} was altered (it can be "
                    "regenerated, but the stored copy is not what was computed)"
                )
        referenced = {e.sha256 for e in exhibits}
        for path in sorted((self.folder / EVIDENCE).iterdir()):
            if path.name not in referenced:
                warnings.append(
                    f"file {path.name} in the evidence folder belongs to no exhibit "
                    "(left by an interrupted intake?)"
                )
        if progress:
            progress(total, total, "verified")
        return VerifyReport(
            tuple(problems),
            tuple(warnings),
            entries,
            len(exhibits),
            len(derived),
            first_broken,
        )

    def _verify_chain(self, problems: list[str]) -> tuple[int | None, int]:
        prev, expected_seq, first_broken, count = GENESIS, 1, None, 0
        for row in self._db.execute("SELECT * FROM audit ORDER BY seq"):
            count += 1
            seq = row["seq"]
            reason = None
            if seq != expected_seq:
                reason = f"entries {expected_seq}..{seq - 1} are missing"
            elif row["prev_hash"] != prev:
                reason = "its link to the previous entry is broken"
            elif row["hash"] != entry_hash(
                seq,
                row["time"],
                row["user"],
                row["action"],
                row["details"],
                row["prev_hash"],
            ):
                reason = "its content was changed after it was written"
            if reason and first_broken is None:
                first_broken = seq
                problems.append(
                    f"audit log entry {seq} ({row['action']}, {row['time']}): {reason}"
                )
            prev, expected_seq = row["hash"], seq + 1
        head = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        if head is None or head["seq"] != expected_seq - 1 or head["hash"] != prev:
            if first_broken is None:
                first_broken = expected_seq
            recorded = "none" if head is None else head["seq"]
            problems.append(
                f"audit log: the recorded last entry ({recorded}) does not match the "
                f"log's last entry ({expected_seq - 1}); entries were removed from "
                "or added to its end"
            )
        return first_broken, count

    # -- for other core modules ----------------------------------------------------
    def snapshot_info(self) -> dict[str, Any]:
        """Case info plus counts (for listings, archives and reports)."""
        counts = {
            table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("exhibits", "faces", "comparisons", "explanations", "audit")
        }
        return {**self.info().to_dict(), "counts": counts}


# ---- helpers ---------------------------------------------------------------------
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


def _exhibit(row: sqlite3.Row) -> Exhibit:
    values = dict(row)
    values["exif"] = json.loads(values["exif"])
    return Exhibit(**values)


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


def _comparison(row: sqlite3.Row) -> Comparison:
    values = dict(row)
    values["threshold"] = json.loads(values["threshold"])
    return Comparison(**values)


def _explanation(row: sqlite3.Row) -> StoredExplanation:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    values["result"] = json.loads(values["result"])
    return StoredExplanation(**values)


def _annotation(row: sqlite3.Row) -> Annotation:
    values = dict(row)
    values["points"] = tuple(tuple(p) for p in json.loads(values["points"]))
    return Annotation(**values)
