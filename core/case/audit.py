"""The case's audit log: a hash chain of entries, its head, and records of it.

Each entry carries the SHA-256 of the previous one (``entry_hash``), so
``verify_chain`` names the first entry that was edited, removed or inserted.
``case.session`` (rewritten after every commit) and anchors (kept outside the
case) record the head, so a log rolled back or rewritten as a whole is told too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.case import state as bound
from core.case.layout import DATABASE, LOCK, SESSION
from core.case.records import AuditEntry, CaseError, json_default, now
from core.errors import BadInputError, printable
from core.io.atomic import write_atomic

if TYPE_CHECKING:  # db.py builds on this module; only the type is needed here
    from core.case.db import LockedConnection

GENESIS = "0" * 64


# ---- hashing ---------------------------------------------------------------------
def entry_hash(
    seq: int, time: str, user: str, action: str, details: str, prev_hash: str
) -> str:
    """SHA-256 of one audit entry, chained through ``prev_hash``."""
    canonical = json.dumps(
        [seq, time, user, action, details, prev_hash], ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def canonical(details: Mapping[str, Any]) -> str:
    """The text an entry's details are stored (and hashed) as."""
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=json_default)


# ---- the log ---------------------------------------------------------------------
class AuditLog:
    """The audit table of one open case (through its locked connection)."""

    def __init__(self, db: LockedConnection, folder: Path) -> None:
        self._db = db
        self.folder = folder
        self._recorded: bound.Replay | None = None  # checked replay, extended lazily
        self._recorded_hash = GENESIS

    def append(
        self,
        action: str,
        details: Mapping[str, Any],
        rows: Mapping[str, Mapping[str, str | None]],
        *,
        user: str,
        login: str,
    ) -> None:
        """Insert the next entry and move the head (inside the change's transaction)."""
        clash = set(details) & set(bound.RESERVED_KEYS)
        if clash:
            raise ValueError(f"audit details may not use the keys {sorted(clash)}")
        head = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        seq, prev = (head["seq"] + 1, head["hash"]) if head else (1, GENESIS)
        recorded = {
            **printable_values(details),
            bound.LOGIN_KEY: login,
            bound.STATE_KEY: rows,
        }
        stamp, text = now(), canonical(recorded)
        digest = entry_hash(seq, stamp, user, action, text, prev)
        self._db.execute(
            "INSERT INTO audit (seq, time, user, action, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, stamp, user, action, text, prev, digest),
        )
        self._db.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, digest),
        )

    def entries(self) -> list[AuditEntry]:
        return [
            audit_entry_from_row(r)
            for r in self._db.execute("SELECT * FROM audit ORDER BY seq")
        ]

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest audit entry (``(0, GENESIS)`` when none)."""
        row = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
        return (0, GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))

    def entries_after(self, seq: int) -> list[AuditEntry]:
        return [
            audit_entry_from_row(r)
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
            (r["seq"], r["action"], parse_details(r["details"])) for r in rows
        )

    def checked_recorded_state(self) -> bound.Replay:
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
                    or row["hash"] != row_hash(row)
                ):
                    self._recorded = None
                    raise CaseError(
                        f"the audit log is damaged at entry {row['seq']}; nothing "
                        "stored in the case is used until `xfr case verify` passes",
                        self.folder,
                    )
                replayed.add(row["seq"], row["action"], parse_details(row["details"]))
                self._recorded_hash = row["hash"]
            return replayed


def verify_chain(
    rows: Sequence[Mapping[str, Any]], head: Any, problems: list[str]
) -> int | None:
    """Check every link of the chain; the first broken entry (problems named)."""
    prev, expected_seq, first_broken = GENESIS, 1, None
    for row in rows:
        seq = row["seq"]
        reason = None
        if seq != expected_seq:
            reason = f"entries {expected_seq}..{seq - 1} are missing"
        elif row["prev_hash"] != prev:
            reason = "its link to the previous entry is broken"
        elif row["hash"] != row_hash(row):
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


# ---- case.session ---------------------------------------------------------------
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
    with contextlib.suppress(OSError):
        # not synced into its folder, as before: rewritten after every change
        write_atomic(
            folder / SESSION, json.dumps(record).encode("utf-8"), sync_folder=False
        )


SMALL_FILE_BYTES = 1 << 20


def read_small_file(path: Path) -> str:
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
        if info.st_size > SMALL_FILE_BYTES:
            raise OSError(errno.EFBIG, "too large", str(path))
        data = handle.read(SMALL_FILE_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise OSError(errno.EINVAL, "not UTF-8 text", str(path)) from None


def read_session(folder: Path) -> dict[str, Any] | None:
    """``case.session`` as written, ``None`` when absent, or what is wrong."""
    try:
        text = read_small_file(folder / SESSION)
    except FileNotFoundError:
        return None
    except OSError as error:
        return {"unusable": error.strerror or str(error)}
    value = parse_details(text)
    return value or {"unusable": "not the record XFR writes"}


def session_checks(
    session: Mapping[str, Any] | None,
    head: tuple[int, str],
    folder: Path,
    *,
    writing: bool,
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
    wal = folder / (DATABASE + "-wal")
    if (
        session.get("open")
        and not writing
        and not wal.exists()
        and not _lock_is_held(folder / LOCK)
    ):
        warnings.append(
            f"the case was not closed cleanly and has no write-ahead log "
            f"({DATABASE}-wal): if the folder was copied while the case was "
            "open, changes after the last checkpoint may be missing"
        )
    return problems, warnings


# ---- anchors ---------------------------------------------------------------------
ANCHOR_FORMAT = "xfr-case-anchor"


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
            (r["seq"], r["action"], parse_details(r["details"]))
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
        value = json.loads(read_small_file(path))
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


# ---- helpers ---------------------------------------------------------------------
def printable_values(value: Any) -> Any:
    """Audit details with every text made storable (file names whose bytes are
    not UTF-8 arrive with surrogate escapes, which SQLite and JSON cannot take)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Path):
        return printable(str(value))
    if isinstance(value, Mapping):
        return {printable(str(k)): printable_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_values(v) for v in value]
    return value


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


def parse_details(text: str) -> dict[str, Any]:
    """An entry's details as recorded (``{}`` for text that is not a JSON object)."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash an audit row should carry, recomputed from its fields."""
    return entry_hash(
        row["seq"],
        row["time"],
        row["user"],
        row["action"],
        row["details"],
        row["prev_hash"],
    )


def audit_entry_from_row(row: Mapping[str, Any]) -> AuditEntry:
    details = parse_details(row["details"])
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
