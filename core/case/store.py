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

``Case`` is the facade; its parts are ``records`` (the plain records), ``db``
(lock, connection, migrations, audited transactions, checked reads), ``audit``
(the hash chain, ``case.session``, anchors), ``intake`` (evidence files) and
``integrity`` (``verify``).  The names other modules use are importable from here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.case import state as bound
from core.case.audit import (
    ANCHOR_FORMAT,
    GENESIS,
    AuditLog,
    anchor_problems,
    entry_hash,
    read_anchor,
    read_session,
    session_checks,
    write_session,
)
from core.case.db import AuditedDb, LockedConnection, WriteLock, open_database
from core.case.derivations import CaseDerivations
from core.case.examination import Examination, initial_settings, write_settings
from core.case.gallery_searches import CaseGallerySearches
from core.case.intake import (
    commit_evidence,
    remove_partial,
    remove_partial_files,
    removing_on_failure,
    stage_evidence,
    stage_video,
)
from core.case.integrity import verify_case
from core.case.layout import DATABASE, DERIVED, EVIDENCE, LOCK, SESSION
from core.case.records import (
    FISWG_COMPONENTS,
    HAND_SOURCES,
    REJECTED_SOURCE,
    ROLE_PREFIX,
    SHAPES,
    VIDEO_PREFIX,
    Annotation,
    AuditEntry,
    CaseError,
    CaseFace,
    CaseInfo,
    CaseLockedError,
    Comparison,
    Conclusion,
    Exhibit,
    IntakeResult,
    Rejection,
    StoredExplanation,
    VerifyReport,
    annotation_from_row,
    case_info_from_row,
    check_annotation,
    comparison_from_row,
    exhibit_from_row,
    explanation_from_row,
    face_from_row,
    face_label,
    json_default,
    login_name,
    now,
    split_label,
)
from core.case.schema import BINDING_VERSION, SCHEMA_VERSION
from core.case.videos import CaseVideos
from core.errors import BadInputError, Cancelled, describe_os_error, printable
from core.faces.detect import Face, face_from_landmarks
from core.imageio import MAX_PIXELS
from core.io.atomic import write_atomic
from core.progress import ProgressCallback
from core.video.decode import is_video_file

__all__ = [
    "ANCHOR_FORMAT",
    "FISWG_COMPONENTS",
    "GENESIS",
    "ROLE_PREFIX",
    "SHAPES",
    "Annotation",
    "AuditEntry",
    "Case",
    "CaseError",
    "CaseFace",
    "CaseInfo",
    "CaseLockedError",
    "Comparison",
    "Conclusion",
    "Exhibit",
    "IntakeResult",
    "ProgressCallback",
    "Rejection",
    "StoredExplanation",
    "VerifyReport",
    "anchor_problems",
    "entry_hash",
    "login_name",
    "now",
    "read_anchor",
    "write_session",
]


# ---- the case --------------------------------------------------------------------
class _StoredMeanwhile(Exception):
    """record_comparisons lost a race: another writer stored one of its pairs."""


class Case:
    """An open case: use ``Case.create`` or ``Case.open``, then ``close`` it."""

    def __init__(
        self, folder: Path, db: sqlite3.Connection, lock: WriteLock | None, user: str
    ) -> None:
        self.folder = folder
        self.user = user
        self.login = printable(login_name())
        self._db = LockedConnection(db)
        self._audit = AuditLog(self._db, folder)
        self._audited = AuditedDb(folder, self._db, self._audit, lock)
        self.schema_problems: tuple[str, ...] = ()  # found at open (read-only)
        self.open_warnings: tuple[str, ...] = ()
        self._closed = False

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
        sequential_unmasking: bool = True,
    ) -> Case:
        """A new, empty case in ``folder`` (which must not exist or be empty).

        ``sequential_unmasking`` (on by default): the model's results for a pair
        stay hidden until the examiner has recorded an analysis and an evaluation
        (core.case.examination)."""
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
            settings = initial_settings(sequential_unmasking=sequential_unmasking)
            with case._change(
                "case.create", {**info, "examination_settings": settings}
            ) as db:
                db.execute(
                    "INSERT INTO case_info (id, case_uuid, case_number, title, "
                    "agency, examiner, created, modified) "
                    "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                    (*info.values(), stamp, stamp),
                )
                write_settings(db, settings)
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
        lock = WriteLock(folder / LOCK) if writable else None
        try:
            opened = open_database(folder, writable=writable, creating=creating)
        except BaseException:
            if lock:
                lock.release()
            raise
        case = cls(folder, opened.connection, lock, user or "")
        if writable:
            case._audited.watch_writes(opened.prior)
        case.schema_problems = opened.schema_problems
        case.open_warnings = opened.warnings
        version = opened.version
        try:
            if not case.user and not creating:
                with case._db.lock, case._audited.reading_raw():  # judged by verify
                    try:
                        case.user = case.info().examiner
                    except CaseError:  # no case record: verify names that
                        case.user = case.login
            if writable and not creating:
                case._refuse_a_rolled_back_case()
                remove_partial_files(case.folder)
                if version < BINDING_VERSION:
                    case._upgrade(version)
                elif version < SCHEMA_VERSION:
                    case._migrate(version)
                case._write_session(open_=True)
        except BaseException:
            case.close()
            raise
        return case

    def _refuse_a_rolled_back_case(self) -> None:
        """Before ``case.session`` is rewritten: a database older than the last
        committed change it records (a lost write-ahead log, an older copy put
        back) is not opened for writing, so the evidence of it is kept."""
        problems, _ = session_checks(
            read_session(self.folder),
            self.head(),
            self.folder,
            writing=not self.read_only,
        )
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
                "entries did not record row digests; sequential unmasking is off "
                "(the model's results could be seen before)",
                "examination_settings": initial_settings(sequential_unmasking=False),
            },
            bind_all=True,
        ) as db:
            write_settings(db, initial_settings(sequential_unmasking=False))

    def _migrate(self, version: int) -> None:
        """A case of an older schema was given the newer tables: record it.

        A schema-2 case gains the ACE-V tables, with the examination settings such
        a case had (no sequential unmasking - its results could be seen - and the
        default scale); an older case gains the video tables (schema 4), the table
        of processed exhibits (schema 5) and any case the gallery search tables
        (schema 6).
        """
        added = []
        details: dict[str, Any] = {"from_schema": version, "to_schema": SCHEMA_VERSION}
        settings = initial_settings(sequential_unmasking=False)
        if version < 3:
            added.append(
                "tables for the examiner's ACE-V records, the examination settings "
                "and saved figures added; sequential unmasking is off (the model's "
                "results could be seen before)"
            )
            details["examination_settings"] = settings
        if version < 4:
            added.append("tables for videos, their face tracks and frames added")
        if version < 5:
            added.append("a table for processed (derived) exhibits added")
        added.append(
            "tables for searches against reference galleries and the candidates "
            "pulled in from them (investigative leads) added"
        )
        details["note"] = "; ".join(added) + "; no stored row changed"
        with self._change("case.migrate", details) as db:
            if version < 3:
                write_settings(db, settings)

    def close(self) -> None:
        """Close; a writable case first moves every committed change from the
        write-ahead log into ``case.sqlite``, so the folder alone holds them."""
        self._closed = True  # a task still holding it says so (not "read-only")
        if not self.read_only:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write_session(open_=False)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._audited.release_lock()

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
        return self._audited.read_only

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (a closed case also reads as read-only)."""
        return self._closed

    def examination(
        self, *, blind: bool = False, verifier: bool = False
    ) -> Examination:
        """The examiner's ACE-V records (``blind``: a verifier's blind session;
        ``verifier``: an open verification)."""
        return Examination(self, blind=blind, verifier=verifier)

    @property
    def videos(self) -> CaseVideos:
        """The case's video exhibits, their face tracks and the frames taken."""
        return CaseVideos(self)

    @property
    def derivations(self) -> CaseDerivations:
        """The case's processed exhibits and how each was made (Q1 -> Q1.1)."""
        return CaseDerivations(self)

    @property
    def gallery_searches(self) -> CaseGallerySearches:
        """The case's searches against reference galleries and the candidates
        pulled in from them (investigative leads)."""
        return CaseGallerySearches(self)

    # -- transactions and the audit log ----------------------------------------------
    def _change(
        self, action: str, details: Mapping[str, Any], *, bind_all: bool = False
    ) -> contextlib.AbstractContextManager[LockedConnection]:
        """One transaction: the change made in the body plus its audit entry
        (``AuditedDb.change``), naming this case's examiner and login."""
        return self._audited.change(
            action, details, user=self.user, login=self.login, bind_all=bind_all
        )

    def log(self, action: str, details: Mapping[str, Any]) -> None:
        """Record an action that changes nothing else (export, report, view)."""
        with self._change(action, details):
            pass

    def audit_log(self) -> list[AuditEntry]:
        return self._audit.entries()

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest audit entry (``(0, GENESIS)`` when none)."""
        return self._audit.head()

    def entries_after(self, seq: int) -> list[AuditEntry]:
        return self._audit.entries_after(seq)

    def recorded_state(self, up_to: int | None = None) -> bound.Replay:
        """The state the audit chain records after entry ``up_to`` (default: all)."""
        return self._audit.recorded_state(up_to)

    # -- case metadata -----------------------------------------------------------------
    def info(self) -> CaseInfo:
        row = self._db.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
        if row is not None:
            self._audited.checked("case_info", [row])
        if row is None:
            raise CaseError("the case has no case record", self.folder)
        return case_info_from_row(row)

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
            for table in ("exhibits", "videos")
            if table in bound.present_tables(self._db.execute)
            for r in self._db.execute(f"SELECT sha256, mark FROM {table}")
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
                    copy, record = (
                        stage_video(self.folder, path, max_pixels, cancel)
                        if is_video_file(path)
                        else stage_evidence(self.folder, path, max_pixels)
                    )
                except BadInputError as error:
                    rejected.append(Rejection(printable(str(path)), error.reason))
                    continue
                if record["sha256"] in known:
                    remove_partial(copy)
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
            warnings: list[str] = []
            new_files: list[Path] = []  # named by this intake: removed if it fails
            for path, copy, record in staged:
                target = self.folder / EVIDENCE / record["sha256"]
                existed = target.exists()
                try:
                    commit_evidence(self.folder, copy, record["sha256"], path)
                except BadInputError as error:
                    rejected.append(Rejection(printable(str(path)), error.reason))
                    continue
                if not existed:
                    new_files.append(target)
                stored.append((path, record))
                if record.get("warning"):
                    warnings.append(record["warning"])
        finally:
            for _path, copy, _record in staged:
                remove_partial(copy)
        added: list[Exhibit] = []
        refused = [r.__dict__ for r in rejected]
        videos = [(p, r) for p, r in stored if r.get("kind") == "video"]
        stored = [(p, r) for p, r in stored if r.get("kind") != "video"]
        video_marks = self._next_marks("video", len(videos))
        if videos:
            stamp = now()
            with (
                removing_on_failure(
                    [f for f in new_files if f.name in {r["sha256"] for _, r in videos}]
                ),
                self._change(
                    "videos.add",
                    {
                        "videos": [
                            {"mark": mark, "role": role}
                            | {k: r[k] for k in ("sha256", "original_name", "size")}
                            | {"source_path": printable(str(p))}
                            for mark, (p, r) in zip(video_marks, videos, strict=True)
                        ],
                        "rejected": [] if stored else refused,
                    },
                ) as db,
            ):
                for mark, (_path, record) in zip(video_marks, videos, strict=True):
                    db.execute(
                        "INSERT INTO videos (mark, role, sha256, original_name, size, "
                        "container, info, note, intake_time, intake_user) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            mark,
                            role,
                            record["sha256"],
                            record["original_name"],
                            record["size"],
                            record["container"],
                            json.dumps(record["info"], default=json_default),
                            note,
                            stamp,
                            self.user,
                        ),
                    )
            new_files = [
                f for f in new_files if f.name not in {r["sha256"] for _, r in videos}
            ]
        if stored:
            marks = self._next_marks(role, len(stored))
            stamp = now()
            with (
                removing_on_failure(new_files),
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
                            json.dumps(record["exif"], default=json_default),
                            note,
                            stamp,
                            self.user,
                        ),
                    )
            added = [self.exhibit(mark) for mark in marks]
        elif rejected and not videos:
            self.log("exhibits.refused", {"role": role, "rejected": refused})
        if progress:
            progress(total, total, "intake done")
        return IntakeResult(
            tuple(added),
            tuple(rejected),
            tuple(warnings),
            tuple(self.videos.video(mark) for mark in video_marks),
        )

    def _next_marks(self, role: str, count: int) -> list[str]:
        """The next free marks: Q… / K… for images (frames too), V… for videos."""
        if role == "video":
            prefix, rows = VIDEO_PREFIX, self._db.execute("SELECT mark FROM videos")
        else:
            prefix = ROLE_PREFIX[role]
            rows = self._db.execute("SELECT mark FROM exhibits WHERE role = ?", (role,))
        # a processed exhibit (Q1.1) takes no number of its own
        numbers = [int(r["mark"][1:]) for r in rows if r["mark"][1:].isdigit()]
        start = max(numbers, default=0) + 1
        return [f"{prefix}{n}" for n in range(start, start + count)]

    # -- exhibits ------------------------------------------------------------------
    def exhibits(self, role: str | None = None) -> list[Exhibit]:
        query = "SELECT * FROM exhibits"
        rows = (
            self._db.execute(query + " WHERE role = ? ORDER BY id", (role,))
            if role
            else self._db.execute(query + " ORDER BY id")
        )
        return [
            exhibit_from_row(row) for row in self._audited.checked("exhibits", rows)
        ]

    def exhibit(self, mark: str) -> Exhibit:
        row = self._db.execute(
            "SELECT * FROM exhibits WHERE mark = ?", (mark.upper(),)
        ).fetchone()
        if row is not None:
            self._audited.checked("exhibits", [row])
        if row is None:
            marks = ", ".join(e.mark for e in self.exhibits()) or "none yet"
            raise BadInputError(f"no exhibit {mark!r} in this case (exhibits: {marks})")
        return exhibit_from_row(row)

    def evidence_path(self, exhibit: Exhibit) -> Path:
        return self.folder / EVIDENCE / exhibit.sha256

    # -- faces ---------------------------------------------------------------------
    def set_faces(
        self, mark: str, faces: Sequence[Face], *, detector: str = ""
    ) -> list[CaseFace]:
        """Record detected faces of an exhibit (earlier ones stay, superseded).

        A new face on the spot of one the examiner had rejected (its box overlaps
        by half or more) is rejected again at once, with the same reason, so a
        re-detection never brings a false detection back into 1:N unnoticed.
        """
        exhibit = self.exhibit(mark)
        # false detections the examiner rejected (not placements withdrawn by an
        # undo): a new face on one of their spots is rejected again
        rejected: list[tuple[tuple[float, float, float, float], str]] = []
        rejections = self._rejections()
        for old in self.rejected_faces(exhibit.mark):
            entry = _rejection_entry(old, rejections)
            if (
                entry is None
                or (entry.details.get("from") or {}).get("source") in HAND_SOURCES
            ):
                continue
            why = str(entry.details.get("reason") or "not a face")
            rejected.append((old.bbox, why.removesuffix(FOUND_AGAIN)))
        stamp = now()
        with self._change(
            "faces.detect",
            {
                "exhibit": exhibit.mark,
                "detector": detector,
                "faces": [face.to_dict() for face in faces],
                "stamp": stamp,  # the rows' time: where this exhibit's history restarts
            },
        ) as db:
            db.execute(
                "UPDATE faces SET superseded = 1 WHERE exhibit_id = ?", (exhibit.id,)
            )
            for index, face in enumerate(faces):
                self._insert_face(db, exhibit.id, index, face, stamp)
        for found in self.faces(exhibit.mark):
            reason = next(
                (r for box, r in rejected if box_overlap(box, found.bbox) >= 0.5), None
            )
            if reason is not None:
                self.reject_face(found.label, reason + FOUND_AGAIN)
        return self.faces(exhibit.mark)

    def rejection_reasons(self) -> dict[str, str]:
        """face label -> the reason given for its current rejection (audit trail)."""
        reasons = {}
        rejections = self._rejections()
        for face in self.rejected_faces():
            entry = _rejection_entry(face, rejections)
            reasons[face.label] = (
                "not a face" if entry is None else str(entry.details.get("reason"))
            )
        return reasons

    def _rejections(self) -> list[AuditEntry]:
        """The ``faces.reject`` entries, oldest first (read once per question)."""
        return [e for e in self.audit_log() if e.action == "faces.reject"]

    def correct_face(
        self, label: str, landmarks5: Sequence[Sequence[float]]
    ) -> CaseFace:
        """Replace one face's five landmarks by the examiner's (manual placement)."""
        points = np.asarray(landmarks5, dtype=float)
        if points.shape != (5, 2) or not np.isfinite(points).all():
            raise BadInputError("manual landmarks need five finite (x, y) points")
        exhibit = self.exhibit(split_label(label)[0])
        return self.place_face(
            label, face_from_landmarks(points, (exhibit.height, exhibit.width))
        )

    def place_face(self, label: str, face: Face) -> CaseFace:
        """Make ``face`` (the examiner's points, or landmarks found in a box they
        drew) the current record of ``label``: a face being corrected, or the next
        free label of the exhibit for a face the detector missed."""
        mark, index = split_label(label)
        exhibit = self.exhibit(mark)
        rows = self._current_face_rows(exhibit.id)
        previous = rows.get(index)
        if previous is not None and previous.rejected:
            raise BadInputError(
                f"face {label} was rejected as not a face; restore it before "
                "correcting it, or place a new face"
            )
        if previous is None and index > self._next_face_index(rows):
            following = self._next_face_index(rows)
            next_label = mark if following == 0 else f"{mark}#{following}"
            count = len(rows)
            raise BadInputError(
                f"no face {label!r} to correct ({mark} has {count} face"
                f"{'' if count == 1 else 's'}); to place a new face use {next_label}"
            )
        details = {
            "face": face_label(mark, index),
            "from": previous.to_face().to_dict() if previous else None,
            "to": face.to_dict(),
        }
        self._replace_face(exhibit.id, index, face, "faces.correct", details)
        return self.face(label)

    def next_face_label(self, mark: str) -> str:
        """The label a new, hand-placed face of exhibit ``mark`` gets."""
        exhibit = self.exhibit(mark)
        index = self._next_face_index(self._current_face_rows(exhibit.id))
        return face_label(exhibit.mark, index)

    def reject_face(self, label: str, reason: str = "") -> CaseFace:
        """Reject a false detection: left out of comparisons, 1:N and statistics
        from now on (earlier comparisons stay, on their superseded face), and
        restorable with ``restore_face``."""
        face = self.face(label)
        details = {
            "face": face.label,
            "from_record": face.id,  # what restore_face makes current again
            "from": face.to_face().to_dict(),
            "reason": printable(reason.strip()) or "not a face",
        }
        rejected = dataclasses.replace(face.to_face(), source=REJECTED_SOURCE)
        self._replace_face(
            face.exhibit_id, face.face_index, rejected, "faces.reject", details
        )
        return self._current_face_rows(face.exhibit_id)[face.face_index]

    def rejected_faces(self, mark: str | None = None) -> list[CaseFace]:
        """Faces the examiner rejected (current rejection records), for restoring."""
        return [f for f in self._face_rows(mark, current=True) if f.rejected]

    def face_history(self, label: str) -> list[CaseFace]:
        """Every record ``label`` has had since its exhibit was last detected,
        oldest first (detection, corrections, rejections, placements by hand).

        A new detection restarts the history: the same label may then be another
        face, so records from before it are never made current again."""
        mark, index = split_label(label)
        since = self._last_detection_stamp(mark)
        history = [
            f
            for f in self._face_rows(mark)
            if f.face_index == index and (since is None or f.created >= since)
        ]
        if not history:
            raise BadInputError(f"no face {label!r} has been recorded")
        return history

    def _last_detection_stamp(self, mark: str) -> str | None:
        """The rows' stamp of the exhibit's latest detection (None: never
        detected, so every record counts)."""
        for entry in reversed(self.audit_log()):
            if entry.action == "faces.detect" and entry.details.get("exhibit") == mark:
                stamp = entry.details.get("stamp")
                if isinstance(stamp, str):
                    return stamp
                # a case from before 0.6: its rows were stamped just before the
                # entry; with none found, nothing before the entry counts
                if not entry.details.get("faces"):
                    return entry.time
                before = [
                    f.created for f in self._face_rows(mark) if f.created <= entry.time
                ]
                return max(before, default=entry.time)
        return None

    def revert_face(self, label: str, face_id: int, why: str = "undo") -> CaseFace:
        """Make an earlier record of ``label`` current again (undo and redo,
        restore after a rejection, reset to the detected face).

        The record itself becomes current again, not a copy: comparisons and
        explanations made on it are current again too, so an undo loses none."""
        history = self.face_history(label)
        earlier = next((f for f in history if f.id == face_id), None)
        if earlier is None:
            raise BadInputError(
                f"face record {face_id} is not a record of {label} since its "
                "exhibit was last detected"
            )
        current = self._current_face_rows(earlier.exhibit_id).get(earlier.face_index)
        if current is not None and current.id == earlier.id:
            return current  # already current: nothing to record
        details = {
            "face": earlier.label,
            "why": why,
            "from_record": None if current is None else current.id,
            "to_record": earlier.id,
            "from": None if current is None else current.to_face().to_dict(),
            "to": earlier.to_face().to_dict(),
        }
        with self._change("faces.revert", details) as db:
            db.execute(
                "UPDATE faces SET superseded = 1 WHERE exhibit_id = ? AND "
                "face_index = ? AND superseded = 0",
                (earlier.exhibit_id, earlier.face_index),
            )
            db.execute("UPDATE faces SET superseded = 0 WHERE id = ?", (earlier.id,))
        return self._current_face_rows(earlier.exhibit_id)[earlier.face_index]

    def restore_face(self, label: str) -> CaseFace:
        """Undo a rejection: the record the face had before it was rejected."""
        mark, index = split_label(label)
        current = self._current_face_rows(self.exhibit(mark).id).get(index)
        if current is None or not current.rejected:
            raise BadInputError(f"face {label} is not rejected; nothing to restore")
        entry = _rejection_entry(current, self._rejections())
        before = None if entry is None else entry.details.get("from_record")
        if not isinstance(before, int):  # an entry without it: the record before
            earlier = [
                f
                for f in self.face_history(label)
                if not f.rejected and f.created < current.created
            ]
            before = earlier[-1].id if earlier else None
        if before is None:
            raise BadInputError(f"face {label} has no record from before its rejection")
        return self.revert_face(label, before, why="restore")

    def detected_face(self, label: str) -> CaseFace | None:
        """The latest detector record of ``label``, if the detector ever found it."""
        detected = [f for f in self.face_history(label) if f.detected]
        return detected[-1] if detected else None

    def reset_face(self, label: str) -> CaseFace:
        """Return a corrected face to the one the detector found (that record
        itself, so its comparisons and explanations are current again)."""
        current = self.face(label)
        detected = self.detected_face(label)
        if detected is None:
            raise BadInputError(
                f"face {label} was placed by hand; there is no detected face to "
                "return to (reject it instead if it is wrong)"
            )
        if detected.id == current.id:
            raise BadInputError(f"face {label} is already the detected face")
        return self.revert_face(label, detected.id, why="reset to detected")

    def _replace_face(
        self,
        exhibit_id: int,
        index: int,
        face: Face,
        action: str,
        details: Mapping[str, Any],
    ) -> None:
        stamp = now()
        # rows are unique per (exhibit, face, time stamp): two steps of one face in
        # the same millisecond (an immediate undo) must not collide; the entry
        # records the stamp, which names the row it wrote
        while self._db.execute(
            "SELECT 1 FROM faces WHERE exhibit_id = ? AND face_index = ? AND "
            "created = ?",
            (exhibit_id, index, stamp),
        ).fetchone():
            time.sleep(0.001)
            stamp = now()
        with self._change(action, {**details, "stamp": stamp}) as db:
            db.execute(
                "UPDATE faces SET superseded = 1 WHERE exhibit_id = ? AND "
                "face_index = ?",
                (exhibit_id, index),
            )
            self._insert_face(db, exhibit_id, index, face, stamp)

    def _face_rows(self, mark: str | None, *, current: bool = False) -> list[CaseFace]:
        """Checked face records (of one exhibit or all), rejected ones included."""
        query = (
            "SELECT faces.*, exhibits.mark FROM faces JOIN exhibits "
            "ON exhibits.id = faces.exhibit_id WHERE 1"
        )
        if current:
            query += " AND superseded = 0"
        if mark is not None:
            exhibit = self.exhibit(mark)
            rows = self._db.execute(
                query + " AND exhibit_id = ? ORDER BY face_index, faces.id",
                (exhibit.id,),
            )
        else:
            query += " ORDER BY exhibit_id, face_index, faces.id"
            rows = self._db.execute(query)
        return [face_from_row(row) for row in self._audited.checked("faces", rows)]

    def _current_face_rows(self, exhibit_id: int) -> dict[int, CaseFace]:
        """face index -> current record (rejected ones included) of one exhibit."""
        rows = self._db.execute(
            "SELECT faces.*, exhibits.mark FROM faces JOIN exhibits "
            "ON exhibits.id = faces.exhibit_id WHERE superseded = 0 AND "
            "exhibit_id = ? ORDER BY face_index",
            (exhibit_id,),
        )
        checked = self._audited.checked("faces", rows)
        return {face.face_index: face for face in map(face_from_row, checked)}

    @staticmethod
    def _next_face_index(rows: Mapping[int, CaseFace]) -> int:
        return max(rows, default=-1) + 1

    def _insert_face(
        self, db: LockedConnection, exhibit_id: int, index: int, face: Face, stamp: str
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
        """Current faces (not superseded, not rejected), of one exhibit or of all."""
        return [f for f in self._face_rows(mark, current=True) if not f.rejected]

    def face(self, label: str) -> CaseFace:
        """A face by label: ``Q1`` (first face of Q1) or ``Q1#2``."""
        mark, index = split_label(label)
        faces = self.faces(mark)
        for face in faces:
            if face.face_index == index:
                return face
        for face in self.rejected_faces(mark):
            if face.face_index == index:
                raise BadInputError(
                    f"face {face.label} was rejected as not a face (by "
                    f"{face.created_by}, {face.created}); restore it to use it"
                )
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
        return face_from_row(self._audited.checked("faces", [row])[0])

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
            for row in self._audited.checked(
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
                row["gallery_face_id"]: comparison_from_row(row)
                for row in self._audited.checked("comparisons", rows)
            }

        # Another thread (a second ranking of this probe) may store some of these
        # pairs between the read and the write: the write re-reads under the lock
        # and, when it lost that race, rolls back (no audit entry) and starts again.
        for _attempt in range(5):
            existing = stored()
            new = [s for s in scores if s[0] not in existing]
            if not new:
                break
            try:
                self._insert_comparisons(
                    probe_face_id, new, model_id, model_sha256, threshold,
                    threshold_text,
                )  # fmt: skip
                break
            except _StoredMeanwhile:
                continue
        existing = stored()
        return [existing[face_id] for face_id, *_ in scores]

    def _insert_comparisons(
        self,
        probe_face_id: int,
        new: Sequence[tuple[int, float, float, str]],
        model_id: str,
        model_sha256: str,
        threshold: Mapping[str, Any],
        threshold_text: str,
    ) -> None:
        """Insert ``new`` with one audit entry; raise _StoredMeanwhile (rolled back,
        no entry) when another writer stored one of these pairs since the read."""
        labels = {f.id: f.label for f in self.faces()}
        probe = self.face_by_id(probe_face_id)
        stamp = now()
        with self._change(
            "comparisons.record",
            {
                "probe": probe.label,
                "probe_face_id": probe.id,
                "model": model_id,
                "model_sha256": model_sha256,
                "threshold": dict(threshold),
                "results": [
                    {
                        "gallery": labels.get(face_id, face_id),
                        "gallery_face_id": face_id,
                        "similarity": similarity,
                        "distance": distance,
                        "decision": decision,
                    }
                    for face_id, similarity, distance, decision in new
                ],
            },
        ) as db:
            present = {
                row[0]
                for row in db.execute(
                    "SELECT gallery_face_id FROM comparisons WHERE "
                    "probe_face_id = ? AND model_sha256 = ? AND threshold = ?",
                    (probe_face_id, model_sha256, threshold_text),
                )
            }
            if present & {face_id for face_id, *_ in new}:
                raise _StoredMeanwhile
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

    def comparison(self, comparison_id: int) -> Comparison:
        row = self._db.execute(
            "SELECT * FROM comparisons WHERE id = ?", (comparison_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no comparison with id {comparison_id}")
        return comparison_from_row(self._audited.checked("comparisons", [row])[0])

    def comparisons(self) -> list[Comparison]:
        rows = self._db.execute("SELECT * FROM comparisons ORDER BY id")
        return [
            comparison_from_row(r) for r in self._audited.checked("comparisons", rows)
        ]

    # -- derived files ----------------------------------------------------------------
    def store_derived(self, data: bytes, kind: str, suffix: str) -> str:
        """Write regenerable data under its SHA-256 (call inside ``_change``)."""
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest}.{suffix}"
        target = self.folder / DERIVED / name
        if not target.exists():
            write_atomic(target, data)
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
        self._audited.checked("derived", [row])
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
                    json.dumps(result_dict, default=json_default),
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
        return explanation_from_row(self._audited.checked("explanations", [row])[0])

    def explanation(self, explanation_id: int) -> StoredExplanation:
        row = self._db.execute(
            "SELECT * FROM explanations WHERE id = ?", (explanation_id,)
        ).fetchone()
        if row is None:
            raise BadInputError(f"no explanation with id {explanation_id}")
        return explanation_from_row(self._audited.checked("explanations", [row])[0])

    def explanations(self, comparison_id: int | None = None) -> list[StoredExplanation]:
        if comparison_id is None:
            rows = self._db.execute("SELECT * FROM explanations ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM explanations WHERE comparison_id = ? ORDER BY id",
                (comparison_id,),
            )
        return [
            explanation_from_row(r) for r in self._audited.checked("explanations", rows)
        ]

    # -- faithfulness of explanations ----------------------------------------------
    def store_faithfulness(
        self, explanation_id: int, key: str, record: Mapping[str, Any]
    ) -> None:
        """Keep a faithfulness check of a stored explanation (a derived JSON file,
        named with its hash in the audit entry that binds it to the explanation)."""
        explanation = self.explanation(explanation_id)
        if any(k == key for k, _ in self.faithfulness_records(explanation_id)):
            return
        data = json.dumps(record, sort_keys=True, default=json_default).encode()
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
        checked = check_annotation(shape, points, component)
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
            annotation_id = cursor.lastrowid
            assert annotation_id is not None  # sqlite3 sets it for every INSERT
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
            changes["points"] = check_annotation(
                before.shape, changes["points"], changes.get("component")
            )
        elif "component" in changes:
            check_annotation(before.shape, before.points, changes["component"])
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
        return annotation_from_row(self._audited.checked("annotations", [row])[0])

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
        return [
            annotation_from_row(r) for r in self._audited.checked("annotations", rows)
        ]

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
            conclusion_id = cursor.lastrowid
            assert conclusion_id is not None  # sqlite3 sets it for every INSERT
        return next(c for c in self.conclusions() if c.id == conclusion_id)

    def conclusions(self) -> list[Conclusion]:
        return [
            Conclusion(
                r["id"], r["comparison_id"], r["text"], r["author"], r["created"]
            )
            for r in self._audited.checked(
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
        """Check the case against its audit chain, in one read snapshot
        (``core.case.integrity.verify_case`` says what is checked)."""
        return verify_case(self._audited, self.open_warnings, progress, anchor=anchor)

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


def _rejection_entry(
    rejected: CaseFace, rejections: Sequence[AuditEntry]
) -> AuditEntry | None:
    """The ``faces.reject`` entry that wrote this rejection row: the one with its
    stamp (an undo can make an older rejection current again, so the label's
    newest entry may be another one's)."""
    fallback = None
    for entry in rejections:
        if entry.details.get("face") != rejected.label:
            continue
        stamp = entry.details.get("stamp")
        if stamp == rejected.created:
            return entry
        if stamp is None and fallback is None and entry.time >= rejected.created:
            fallback = entry  # written before entries carried the stamp
    return fallback


# Added to the reason of a false detection rejected again after a new detection.
FOUND_AGAIN = " (rejected before it was found again)"


def box_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    common = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - common
    return common / union if union > 0 else 0.0


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
