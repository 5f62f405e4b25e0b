"""Verifying a case against its audit chain (see docs/integrity.md).

Everything is read in one read transaction, so a writer committing in another
process meanwhile is never taken for tampering: the chain, the schema, every
stored row against the digest its latest entry recorded, ``case.session`` and an
optional anchor; then every evidence and derived file against its hash, and every
processed exhibit re-created from its source and its recorded chain.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.case import state as bound
from core.case.audit import (
    GENESIS,
    anchor_problems,
    parse_details,
    read_session,
    session_checks,
    verify_chain,
)
from core.case.db import AuditedDb, LockedConnection, statements
from core.case.derivations import replay_plans, replay_problems
from core.case.layout import DERIVED, EVIDENCE, PARTIAL_SUFFIX, SHA256_HEX
from core.case.records import VerifyReport
from core.case.schema import BINDING_VERSION, MIGRATIONS, SCHEMA_VERSION
from core.progress import ProgressCallback
from core.resources import sha256_file


@dataclass(frozen=True)
class _StoredFile:
    """What ``verify`` needs of an exhibit row (read without trusting the rest)."""

    mark: str
    sha256: str
    original_name: str


def verify_case(
    audited: AuditedDb,
    open_warnings: Sequence[str] = (),
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
    folder = audited.folder
    problems: list[str] = []
    warnings: list[str] = list(open_warnings)
    session = read_session(folder)  # before the snapshot: see session_checks
    listed = _list_folder(folder / EVIDENCE)
    db = audited.connection
    with db.lock, audited.reading_raw():
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
            first_broken = verify_chain(audit_rows, head_row, problems)
            known_version = min(version, SCHEMA_VERSION)
            expected = bound.expected_schema(
                statements(script) for script in MIGRATIONS[:known_version]
            )
            schema_problems, schema_warnings = bound.schema_differences(
                bound.schema_objects(db.execute), expected
            )
            problems += schema_problems
            warnings += schema_warnings
            recorded = bound.replay(
                (r["seq"], r["action"], parse_details(r["details"])) for r in audit_rows
            )
            problems_rows, row_warnings = _state_checks(db, recorded, version)
            problems += problems_rows
            warnings += row_warnings
            # images, frames and videos: every evidence file of the case
            exhibits = [
                _StoredFile(str(r["mark"]), str(r["sha256"]), str(r["original_name"]))
                for table in ("exhibits", "videos")
                if table in bound.present_tables(db.execute)
                for r in db.execute(
                    f"SELECT mark, sha256, original_name FROM {table} ORDER BY id"
                )
            ]
            derived = [
                dict(r) for r in db.execute("SELECT * FROM derived ORDER BY sha256")
            ]
            plans = replay_plans(db.execute)
            info = db.execute("SELECT case_uuid FROM case_info WHERE id = 1").fetchone()
            # a missing row is named by the state checks
            case_uuid = "" if info is None else info["case_uuid"]
        finally:
            db.execute("COMMIT")
    head = (int(head_row["seq"]), str(head_row["hash"])) if head_row else (0, GENESIS)
    session_problems, session_warnings = session_checks(
        session, head, folder, writing=not audited.read_only
    )
    problems += session_problems
    warnings += session_warnings
    if anchor is not None:
        problems += anchor_problems(anchor, audit_rows, case_uuid)
    total = len(exhibits) + len(derived) + len(plans)
    for number, exhibit in enumerate(exhibits):
        if progress:
            progress(number, total, f"checking {exhibit.mark}")
        if not SHA256_HEX.fullmatch(exhibit.sha256):
            problems.append(
                f"exhibit {exhibit.mark}: its stored SHA-256 is not a SHA-256 "
                f"({exhibit.sha256[:80]!r})"
            )
            continue
        path = folder / EVIDENCE / exhibit.sha256
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
        path = folder / DERIVED / str(row["file_name"])
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
    replayed, replay_warnings = replay_problems(
        folder,
        plans,
        None
        if progress is None
        else lambda n, what: progress(len(exhibits) + len(derived) + n, total, what),
    )
    problems += replayed
    warnings += replay_warnings
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
        processed_exhibits=len(plans),
    )


def _state_checks(
    db: LockedConnection, recorded: bound.Replay, version: int
) -> tuple[list[str], list[str]]:
    """Every stored row against the digest the chain recorded for it."""
    problems: list[str] = []
    warnings: list[str] = []
    if recorded.first_bound_seq is None:
        if recorded.last_seq == 0:
            if any(bound.all_rows_state(db.execute).values()):
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
    marks = {r["id"]: r["mark"] for r in db.execute("SELECT id, mark FROM exhibits")}
    faces = {
        r["id"]: (marks.get(r["exhibit_id"], "?"), r["face_index"])
        for r in db.execute("SELECT id, exhibit_id, face_index FROM faces")
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
            return f"{row['method']} explanation of comparison {row['comparison_id']}"
        if table == "annotations":
            return f"annotation '{row['label']}'" if row["label"] else "annotation"
        if table == "conclusions":
            return "examiner's conclusion"
        if table == "videos":
            return f"video {row['mark']}"
        if table == "tracks":
            return f"face track T{row['number']} (run {row['run']}) of a video"
        if table == "frames":
            return f"provenance of video frame {marks.get(row['exhibit_id'], '?')}"
        if table == "derivations":
            return f"processing record of {marks.get(row['exhibit_id'], '?')}"
        if table == "gallery_searches":
            return f"record of gallery search S{row['id']} of {row['probe_label']}"
        if table == "gallery_leads":
            return (
                f"investigative-lead record of {marks.get(row['exhibit_id'], '?')} "
                f"(search S{row['search_id']}, rank {row['rank']})"
            )
        if table == "case_info":
            return f"case number {row['case_number']}, examiner {row['examiner']}"
        return ""

    problems += [
        problem.text() for problem in bound.compare(recorded, db.execute, label=label)
    ]
    return problems, warnings


def _list_folder(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []
