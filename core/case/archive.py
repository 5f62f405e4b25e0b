"""Export a case folder to one zip file and import it back, checked byte for byte.

A case is handed on (to a colleague, a court, an archive) as one file.  The zip
carries a ``manifest.json`` with the SHA-256 and size of every member, so that the
receiving side can prove nothing was altered on the way; evidence files are
additionally named by their own SHA-256, which is checked too.

Export takes a consistent snapshot of the database with SQLite's backup API
(committed changes still in the ``-wal`` file are included, and no ``-wal``/``-shm``
file is needed), and writes the zip under a ``.partial`` name that is renamed only
when complete: a crash never leaves a half archive under the final name.

Import treats the zip as hostile until proven otherwise: every member name is
checked against the case layout *before* anything is written (no ``..``, absolute
paths, backslashes, links, unknown names, zip bombs), the files are extracted into
a temporary sibling folder while being hashed, the database must pass SQLite's
integrity check, and only then is the folder renamed to its final name.  An
existing case is never overwritten, and a refused archive leaves nothing behind.

The manifest also pins the database's *state* (format version 2): the audit
head (entry number and hash) and the state digest of the snapshot (see
core/case/state.py).  Import checks the database's schema against the exact
schema of its version (an extra trigger could rewrite every later change),
verifies the case as ``xfr case verify`` does, and refuses a database whose head
or state is not the one the manifest describes.  The manifest can be signed with
an examiner identity (``manifest.json.p7s``, see core/case/archive_signature.py);
a signature that does not verify refuses the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from core.case.layout import (
    DATABASE,
    DERIVED,
    EVIDENCE,
    LOCK,
    PARTIAL_SUFFIX,
    SHA256_HEX,
)
from core.errors import BadInputError
from core.io.atomic import fsync_dir, remove_quietly

if TYPE_CHECKING:
    from cryptography import x509

    from core.case.archive_signature import ManifestSigner, SignatureVerdict

FORMAT = "xfr-case-archive"
FORMAT_VERSION = 2  # 2: the manifest pins the audit head and state digest
READABLE_VERSIONS = (1, 2)

# Names inside the archive besides the case layout (core.case.layout).
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.p7s"  # detached CMS signature over manifest.json
DERIVED_EXTENSIONS = frozenset({"npz", "png", "json"})

DEFAULT_MAX_BYTES = 64 * 1024**3
"""Largest total uncompressed size an import accepts (the sum of all members)."""

CHUNK_BYTES = 1024 * 1024
"""Files are streamed in chunks of this size: evidence files may be very large."""

# A member is taken for a zip bomb when it is large *and* absurdly well compressed;
# real case data (images, float maps, a database) never compresses 1000:1.
BOMB_RATIO = 1000
BOMB_MIN_BYTES = 100 * 1000 * 1000

_MAX_MANIFEST_BYTES = 64 * 1024**2
_MAX_SIGNATURE_BYTES = 1024**2
_PROBLEMS_SHOWN = 3
_EVIDENCE_NAME = re.compile(rf"{EVIDENCE}/([0-9a-f]{{64}})")
_DERIVED_NAME = re.compile(
    rf"{DERIVED}/[0-9a-f]{{64}}\.(?:{'|'.join(sorted(DERIVED_EXTENSIONS))})"
)
_FOLDER_ENTRIES = frozenset({f"{EVIDENCE}/", f"{DERIVED}/"})
_ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


# ---- export -------------------------------------------------------------------------
def export_case(
    case_dir: str | Path,
    zip_path: str | Path,
    *,
    case_info: dict[str, Any] | None = None,
    signer: ManifestSigner | None = None,
) -> dict[str, Any]:
    """Write the case in ``case_dir`` to the new zip file ``zip_path``.

    The archive holds a snapshot of ``case.sqlite``, every evidence and derived
    file, and ``manifest.json`` (written after them) with the SHA-256 and size of
    each, and the audit head and state digest read from the snapshot.  With
    ``signer`` (`core.case.archive_signature.load_signer`), ``manifest.json.p7s``
    follows: a detached CMS signature over the manifest's exact bytes.
    ``case_info`` (JSON-serialisable) is stored in the manifest as ``"case"``, so a
    recipient can see what the archive is without importing it.  Files in
    ``evidence/`` or ``derived/`` that are not part of the case layout (links,
    folders, stray names) are left out and listed in the manifest as ``"skipped"``;
    temporary ``.partial`` files and ``case.lock`` are never archived.

    Returns the manifest.  Raises `BadInputError` when the archive already exists,
    would be written inside the case, or the case cannot be read; an evidence file
    whose content no longer matches its name (its SHA-256) stops the export, since
    the archive would carry altered evidence.
    """
    case = Path(case_dir)
    target = Path(zip_path)
    database = case / DATABASE
    if not database.is_file():
        raise BadInputError(f"not a case folder (no {DATABASE} inside)", case)
    if target.exists() or target.is_symlink():
        raise BadInputError(
            "already exists; an export never overwrites a file, choose another name",
            target,
        )
    if not target.parent.is_dir():
        raise BadInputError("the folder for the archive does not exist", target.parent)
    if _is_inside(target, case):
        raise BadInputError(
            "the archive cannot be written inside the case folder it archives; "
            "choose a folder outside the case",
            target,
        )
    if case_info is not None:
        try:
            json.dumps(case_info)
        except (TypeError, ValueError) as error:
            raise BadInputError(
                f"the case description cannot be stored in the manifest ({error})"
            ) from None

    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        out = open(partial, "xb")  # closed by the `with out:` below
    except FileExistsError:
        raise BadInputError(
            "an unfinished export is in the way (left by an interrupted export?); "
            "delete it or choose another name",
            partial,
        ) from None
    except OSError as error:
        raise BadInputError(
            f"cannot create the archive ({_describe(error)})", target
        ) from None

    snapshot: Path | None = None
    try:
        with out:
            with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
                snapshot = _snapshot_database(database, target)
                head, state = _snapshot_state(snapshot, database)
                files = {
                    DATABASE: _add_file(
                        archive, snapshot, DATABASE, zipfile.ZIP_DEFLATED, 0o644
                    )
                }
                members, skipped = _case_members(case)
                for name, path in members:
                    evidence = name.startswith(EVIDENCE + "/")
                    record = _add_file(
                        archive,
                        path,
                        name,
                        zipfile.ZIP_STORED if evidence else zipfile.ZIP_DEFLATED,
                        0o444 if evidence else 0o644,
                    )
                    if evidence and record["sha256"] != path.name:
                        raise BadInputError(
                            f"{name}: the content no longer matches its name (its "
                            f"SHA-256 is {record['sha256']}); the evidence file was "
                            "altered or damaged, so the case was not exported",
                            case,
                        )
                    files[name] = record
                manifest: dict[str, Any] = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "audit_head": {"seq": head[0], "hash": head[1]},
                    "state_digest": state,
                    "files": files,
                }
                if case_info is not None:
                    manifest["case"] = case_info
                if skipped:
                    manifest["skipped"] = skipped
                text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
                manifest_bytes = text.encode("utf-8")
                info = _zip_info(MANIFEST, 0o644)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, manifest_bytes)
                if signer is not None:
                    from core.case.archive_signature import sign_manifest

                    info = _zip_info(SIGNATURE, 0o644)
                    archive.writestr(info, sign_manifest(manifest_bytes, signer))
            out.flush()
            os.fsync(out.fileno())
        if target.exists() or target.is_symlink():  # appeared while we were writing
            raise BadInputError(
                "already exists; an export never overwrites a file, "
                "choose another name",
                target,
            )
        # not core.io.atomic: the zip is streamed into ``partial`` as it is built,
        # and an export must never replace a file that appeared meanwhile
        os.replace(partial, target)
        fsync_dir(target.parent)
    except OSError as error:
        remove_quietly(partial)
        raise BadInputError(
            f"the archive could not be written ({_describe(error)})", target
        ) from None
    except BaseException:
        remove_quietly(partial)
        raise
    finally:
        if snapshot is not None:
            _remove_snapshot(snapshot)
    return manifest


def _snapshot_database(database: Path, target: Path) -> Path:
    """Copy the live database, WAL content included, to a temporary file.

    The backup API reads one consistent state even while the case is open and being
    written by another process; copying the file instead could catch a half-written
    page or miss what is still in the ``-wal`` file.  The copy is made next to the
    archive (not in the system temp folder, which may be too small).
    """
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".sqlite{PARTIAL_SUFFIX}", dir=target.parent
    )
    os.close(handle)
    snapshot = Path(name)
    try:
        with (
            contextlib.closing(
                sqlite3.connect(
                    f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30
                )
            ) as source,
            contextlib.closing(sqlite3.connect(snapshot)) as copy,
        ):
            source.backup(copy)
    except sqlite3.Error as error:
        _remove_snapshot(snapshot)
        raise BadInputError(
            f"the case database cannot be read ({error})", database
        ) from None
    except BaseException:
        _remove_snapshot(snapshot)
        raise
    return snapshot


def _snapshot_state(snapshot: Path, database: Path) -> tuple[tuple[int, str], str]:
    """The audit head ``(seq, hash)`` and state digest of the snapshot.

    Read from the snapshot itself (not the live case), so that the manifest
    describes exactly the database in the archive.
    """
    from core.case import state as bound
    from core.case.store import GENESIS

    try:
        with contextlib.closing(
            sqlite3.connect(f"{snapshot.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            row = db.execute("SELECT seq, hash FROM audit_head").fetchone()
            entries = db.execute("SELECT seq, action, details FROM audit ORDER BY seq")
            recorded = bound.replay(
                (seq, action, _json_object(details)) for seq, action, details in entries
            )
    except sqlite3.Error as error:
        raise BadInputError(
            f"not an XFR case database, its audit log cannot be read ({error})",
            database,
        ) from None
    head = (0, GENESIS) if row is None else (int(row[0]), str(row[1]))
    return head, recorded.digest()


def _json_object(text: Any) -> dict[str, Any]:
    """An audit entry's details, as ``Case.verify`` reads them ({} when not JSON)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _case_members(case: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The evidence and derived files to archive, and the names left out.

    Only regular files whose names fit the case layout are archived: anything else
    could not be imported again.  ``.partial`` files are unfinished writes and are
    left out without mention.
    """
    members: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for folder, pattern in ((EVIDENCE, _EVIDENCE_NAME), (DERIVED, _DERIVED_NAME)):
        directory = case / folder
        if not directory.is_dir():
            continue
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            name = f"{folder}/{entry.name}"
            if entry.name.endswith(PARTIAL_SUFFIX) or entry.name == LOCK:
                continue
            if (
                entry.is_symlink()
                or not entry.is_file(follow_symlinks=False)
                or not pattern.fullmatch(name)
            ):
                skipped.append(name)
                continue
            members.append((name, Path(entry.path)))
    return members, skipped


def _add_file(
    archive: zipfile.ZipFile, source: Path, name: str, compression: int, mode: int
) -> dict[str, Any]:
    """Stream ``source`` into the archive as ``name``, hashing it on the way."""
    info = _zip_info(name, mode)
    info.compress_type = compression
    info.file_size = source.stat().st_size  # lets zipfile choose ZIP64 up front
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, archive.open(info, "w") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.create_system = 3  # Unix, so that the mode above is meaningful
    return info


def _is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder``, e.g. ``case/out.zip``.

    Compared by file identity rather than by name, so that links, ``..`` and
    case-insensitive file systems cannot hide that the folder is the case.
    """
    try:
        identity = folder.stat()
    except OSError:
        return False
    for parent in path.resolve().parents:
        try:
            if os.path.samestat(parent.stat(), identity):
                return True
        except OSError:
            continue
    return False


# ---- import -------------------------------------------------------------------------
class ArchiveVerificationError(BadInputError):
    """The archive is readable but fails verification (altered, or not what its
    manifest or signature says): the CLI exits 1 rather than 2."""


@dataclass(frozen=True)
class ImportResult:
    """What `import_case` checked: the manifest, and the verdict on it."""

    manifest: dict[str, Any]
    head: tuple[int, str]  # the audit head of the imported database
    state_digest: str
    signature: SignatureVerdict | None  # None: the archive is not signed
    notes: tuple[str, ...] = ()  # e.g. an older archive without a head
    warnings: tuple[str, ...] = ()  # from verifying the case

    @property
    def head_pinned(self) -> bool:
        """Whether the manifest named the head (format 2 on); it then matched."""
        return "audit_head" in self.manifest

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": {"seq": self.head[0], "hash": self.head[1]},
            "state_digest": self.state_digest,
            "head_pinned": self.head_pinned,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def lines(self) -> list[str]:
        """Two lines for the examiner: the database, and the signature."""
        where = f"audit entry {self.head[0]}, hash {self.head[1][:16]}…"
        first = (
            f"the database is the one the manifest describes ({where}, state "
            f"{self.state_digest[:16]}…)"
            if self.head_pinned
            else where
        )
        return [
            first + "".join(f"; {note}" for note in self.notes),
            "not signed" if self.signature is None else self.signature.text(),
        ]


def import_case(
    zip_path: str | Path,
    case_dir: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    trust: Sequence[x509.Certificate] = (),
) -> ImportResult:
    """Restore the archive ``zip_path`` into the new folder ``case_dir``.

    Nothing is written until every member name, size, the manifest and its
    signature (``manifest.json.p7s``, when there is one) have been checked; files
    are then extracted into a temporary sibling folder while being hashed,
    evidence is made read-only, the database must pass ``PRAGMA integrity_check``,
    have exactly the schema of its version, verify as a case (audit chain, every
    row against it, every file) and have the audit head and state digest the
    manifest names; the folder is renamed to ``case_dir`` last.  Any failure
    removes the temporary folder, so a refused archive leaves nothing behind.
    ``max_bytes`` caps the total uncompressed size.  With ``trust``
    (certificates), an archive not signed by one of them (or by a certificate a
    trusted CA issued) is refused.

    Raises `ArchiveVerificationError` when the archive fails verification and
    `BadInputError` for every other refusal (each naming the archive and, where
    there is one, the member at fault).
    """
    source = Path(zip_path)
    target = Path(case_dir)
    if target.exists() or target.is_symlink():
        raise BadInputError(_exists_message(target), target)
    if not target.parent.is_dir():
        raise BadInputError(
            "the folder to import the case into does not exist", target.parent
        )
    if not source.is_file():
        raise BadInputError("no such archive file", source)
    try:
        archive = zipfile.ZipFile(source)
    except _ZIP_READ_ERRORS as error:
        raise BadInputError(
            f"not a readable case archive: damaged or not a zip file ({error})",
            source,
        ) from None
    with archive:
        members = _checked_members(archive, source, max_bytes)
        manifest, manifest_bytes = _read_manifest(archive, members, source)
        files: dict[str, dict[str, Any]] = manifest["files"]
        _check_against_manifest(members, files, source)
        signature = _check_signature(archive, members, manifest_bytes, source, trust)
        total = sum(info.file_size for info in members.values())
        with contextlib.suppress(OSError):
            if shutil.disk_usage(target.parent).free < total:
                raise BadInputError(
                    f"not enough free disk space to import the case ({total} bytes "
                    "needed)",
                    target.parent,
                )

        staging = target.parent / f"{target.name}.importing-{secrets.token_hex(6)}"
        try:
            staging.mkdir()
        except OSError as error:
            raise BadInputError(
                f"cannot create the case folder ({_describe(error)})", target
            ) from None
        try:
            (staging / EVIDENCE).mkdir()
            (staging / DERIVED).mkdir()
            for name in sorted(files):
                _extract(archive, members[name], files[name], staging, source, target)
            _check_database(staging / DATABASE, source)
            head, state, warnings = _verify_staged(staging, manifest, source)
            for folder in (staging / EVIDENCE, staging / DERIVED, staging):
                fsync_dir(folder)
            if target.exists() or target.is_symlink():  # appeared meanwhile
                raise BadInputError(_exists_message(target), target)
            os.rename(staging, target)
        except OSError as error:
            _remove_tree(staging)
            raise BadInputError(
                f"the case could not be written ({_describe(error)})", target
            ) from None
        except BaseException:
            _remove_tree(staging)
            raise
    fsync_dir(target.parent)
    notes = []
    if manifest["format_version"] < 2:
        notes.append(
            "archive made by an older XFR: no audit head in its manifest, so the "
            "database was verified on its own"
        )
    return ImportResult(manifest, head, state, signature, tuple(notes), warnings)


def _exists_message(target: Path) -> str:
    if (target / DATABASE).exists():
        return "a case already exists here; choose another folder"
    return "already exists; a case is only imported into a new folder, choose another"


def _member_error(
    source: Path, name: str, problem: str, *, tampered: bool = False
) -> BadInputError:
    """An error naming the archive and the member (``repr``: names may be hostile).

    ``tampered``: the member is readable but fails verification.
    """
    kind = ArchiveVerificationError if tampered else BadInputError
    return kind(f"member {name!r} {problem}; nothing was imported", source)


def _checked_members(
    archive: zipfile.ZipFile, source: Path, max_bytes: int
) -> dict[str, zipfile.ZipInfo]:
    """Every file member by name, once each name has been found safe and expected.

    Runs before anything is written: a single bad name refuses the whole archive.
    """
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        name = info.filename
        mode = info.external_attr >> 16
        if "\\" in name:
            raise _member_error(source, name, "contains a backslash")
        if name.startswith("/") or re.match(r"[A-Za-z]:", name):
            raise _member_error(source, name, "is an absolute path")
        if ".." in name.split("/"):
            raise _member_error(source, name, "points outside the case ('..')")
        if stat.S_ISLNK(mode):
            raise _member_error(source, name, "is a symbolic link")
        if info.is_dir() or stat.S_ISDIR(mode):
            if name not in _FOLDER_ENTRIES:
                raise _member_error(source, name, "is an unexpected folder")
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise _member_error(source, name, "is not a regular file")
        if not (
            name in (MANIFEST, SIGNATURE, DATABASE)
            or _EVIDENCE_NAME.fullmatch(name)
            or _DERIVED_NAME.fullmatch(name)
        ):
            raise _member_error(source, name, "is not part of a case archive")
        if name in members:
            raise _member_error(source, name, "appears twice in the archive")
        if info.flag_bits & 0x1:
            raise _member_error(source, name, "is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _member_error(
                source, name, f"uses an unsupported compression ({info.compress_type})"
            )
        if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(
            info.compress_size, 1
        ):
            raise _member_error(
                source,
                name,
                f"would expand {info.compress_size} bytes to {info.file_size} "
                "(a zip bomb?)",
            )
        total += info.file_size
        members[name] = info
    if total > max_bytes:
        raise BadInputError(
            f"the archive would unpack to {total} bytes, more than the limit of "
            f"{max_bytes}; nothing was imported",
            source,
        )
    if MANIFEST not in members:
        raise BadInputError(
            f"no {MANIFEST} inside: not a case archive; nothing was imported", source
        )
    return members


def _read_manifest(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], source: Path
) -> tuple[dict[str, Any], bytes]:
    """Load and validate ``manifest.json`` (format, version, one entry per file,
    the audit head and state digest from version 2 on); also its exact bytes,
    which the signature covers."""
    info = members[MANIFEST]
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise _member_error(source, MANIFEST, "is implausibly large")
    try:
        with archive.open(info) as reader:
            raw = reader.read(_MAX_MANIFEST_BYTES + 1)
    except _ZIP_READ_ERRORS as error:
        raise _member_error(source, MANIFEST, f"is damaged ({error})") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as error:  # also UnicodeDecodeError, JSONDecodeError
        raise _member_error(source, MANIFEST, f"is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInputError(
            f"not a case archive ({MANIFEST} does not say format {FORMAT!r}); "
            "nothing was imported",
            source,
        )
    version = manifest.get("format_version")
    if not _is_int(version) or version not in READABLE_VERSIONS:
        newer = " (made by a newer XFR?)" if _is_int(version) and version > 0 else ""
        raise BadInputError(
            f"case archive format version {version!r} is not supported{newer} (this "
            f"version reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
            "nothing was imported",
            source,
        )
    if version >= 2:
        head = manifest.get("audit_head")
        if not (
            isinstance(head, dict)
            and _is_int(head.get("seq"))
            and head["seq"] >= 0
            and isinstance(head.get("hash"), str)
            and SHA256_HEX.fullmatch(head["hash"])
        ):
            raise _member_error(source, MANIFEST, "has no valid audit head")
        digest = manifest.get("state_digest")
        if not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
            raise _member_error(source, MANIFEST, "has no valid state digest")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise _member_error(source, MANIFEST, "has no list of files")
    for name, entry in files.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and SHA256_HEX.fullmatch(entry["sha256"])
            and _is_int(entry.get("size"))
            and entry["size"] >= 0
        ):
            raise _member_error(source, MANIFEST, f"has a malformed entry for {name!r}")
    if MANIFEST in files or SIGNATURE in files:
        raise _member_error(source, MANIFEST, "lists itself or its signature")
    if DATABASE not in files:
        raise BadInputError(
            f"the archive has no case database ({DATABASE}); nothing was imported",
            source,
        )
    return manifest, raw


def _check_against_manifest(
    members: dict[str, zipfile.ZipInfo],
    files: dict[str, dict[str, Any]],
    source: Path,
) -> None:
    """Zip and manifest must list exactly the same files, with the same sizes."""
    for name in sorted(members):
        if name not in (MANIFEST, SIGNATURE) and name not in files:
            raise _member_error(source, name, f"is not listed in {MANIFEST}")
    for name in sorted(files):
        if name not in members:
            raise _member_error(
                source, name, f"is listed in {MANIFEST} but missing from the archive"
            )
        entry = files[name]
        if members[name].file_size != entry["size"]:
            raise _member_error(
                source,
                name,
                f"has {members[name].file_size} bytes, but {MANIFEST} says "
                f"{entry['size']}",
            )
        match = _EVIDENCE_NAME.fullmatch(name)
        if match and entry["sha256"] != match.group(1):
            raise _member_error(
                source, name, f"has a SHA-256 in {MANIFEST} that differs from its name"
            )


def _extract(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    entry: dict[str, Any],
    staging: Path,
    source: Path,
    target: Path,
) -> None:
    """Stream one member to ``staging``, checking its size and SHA-256 on the way.

    Errors reading the archive name the archive; errors writing name the target.
    """
    name = info.filename
    destination = staging / name
    digest = hashlib.sha256()
    size = 0
    try:
        reader = archive.open(info)
    except _ZIP_READ_ERRORS as error:
        raise _member_error(source, name, f"is damaged ({error})") from None
    with reader, open(destination, "xb") as writer:
        while True:
            try:
                chunk = reader.read(CHUNK_BYTES)
            except _ZIP_READ_ERRORS as error:
                raise _member_error(source, name, f"is damaged ({error})") from None
            if not chunk:
                break
            size += len(chunk)
            if size > entry["size"]:
                raise _member_error(source, name, f"is larger than {MANIFEST} says")
            digest.update(chunk)
            try:
                writer.write(chunk)
            except OSError as error:
                raise BadInputError(
                    f"the case could not be written ({_describe(error)})", target
                ) from None
        writer.flush()
        os.fsync(writer.fileno())
    if size != entry["size"]:
        raise _member_error(source, name, f"is smaller than {MANIFEST} says")
    sha256 = digest.hexdigest()
    if sha256 != entry["sha256"]:
        raise _member_error(
            source,
            name,
            f"does not match {MANIFEST}: SHA-256 {sha256} instead of "
            f"{entry['sha256']} (altered or damaged)",
            tampered=True,
        )
    match = _EVIDENCE_NAME.fullmatch(name)
    if match:
        if sha256 != match.group(1):  # already implied; kept as the evidence rule
            raise _member_error(source, name, "does not match its name (SHA-256)")
        os.chmod(destination, 0o444)


def _check_signature(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    manifest: bytes,
    source: Path,
    trust: Sequence[x509.Certificate],
) -> SignatureVerdict | None:
    """The verdict on ``manifest.json.p7s``; None when the archive is unsigned.

    A signature that cannot be read or does not verify refuses the archive, and
    so does, when ``trust`` is given, a signer none of those certificates vouch
    for (or no signature at all): the examiner asked for a trusted signer.
    """
    from core.case.archive_signature import SignatureError, check_signature

    info = members.get(SIGNATURE)
    if info is None:
        if trust:
            raise ArchiveVerificationError(
                f"the archive is not signed (no {SIGNATURE}), but a signature by a "
                "trusted certificate was asked for (--trust); nothing was imported",
                source,
            )
        return None
    if info.file_size > _MAX_SIGNATURE_BYTES:
        raise _member_error(source, SIGNATURE, "is implausibly large", tampered=True)
    try:
        with archive.open(info) as reader:
            signature = reader.read(_MAX_SIGNATURE_BYTES + 1)
    except _ZIP_READ_ERRORS as error:
        raise _member_error(source, SIGNATURE, f"is damaged ({error})") from None
    try:
        verdict = check_signature(manifest, signature, trust)
    except SignatureError as error:
        raise _member_error(
            source, SIGNATURE, f"is not a valid signature: {error}", tampered=True
        ) from None
    if verdict.trusted is False:
        raise ArchiveVerificationError(
            f"the archive was signed by {verdict.signer_name} (certificate SHA-256 "
            f"{verdict.fingerprint_sha256}), for whom none of the --trust "
            "certificates vouch; nothing was imported",
            source,
        )
    return verdict


def _check_database(path: Path, source: Path) -> None:
    """Refuse a damaged or altered database now, before it is opened as a case.

    Checks SQLite's integrity, that it is an XFR case of a version this XFR reads,
    and that its schema is exactly the one that version's migrations create:
    nothing extra (a trigger could rewrite every later change, a view or index
    could hide rows) and nothing missing (the audit log's protection), each
    named.  Opened read-write (the folder is still private to this import) so
    that SQLite removes its ``-wal``/``-shm`` files again when the connection
    closes; ``trusted_schema = OFF`` keeps the schema's code from running.
    """
    from core.case import state as bound
    from core.case.db import statements
    from core.case.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("PRAGMA trusted_schema = OFF")
            rows = db.execute("PRAGMA integrity_check").fetchall()
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            actual = bound.schema_objects(db.execute)
    except sqlite3.Error as error:
        raise _member_error(
            source, DATABASE, f"is not a usable case database ({error})"
        ) from None
    if rows != [("ok",)]:
        found = "; ".join(str(row[0]) for row in rows[:3])
        raise _member_error(
            source, DATABASE, f"is damaged (integrity check: {found})", tampered=True
        )
    if application_id != APPLICATION_ID or version < 1:
        raise _member_error(source, DATABASE, "is not an XFR case database")
    if version > SCHEMA_VERSION:
        raise _member_error(
            source,
            DATABASE,
            f"was made by a newer XFR (schema version {version}, this version "
            f"reads up to {SCHEMA_VERSION}); update XFR Desktop to import it",
        )
    expected = bound.expected_schema(statements(s) for s in MIGRATIONS[:version])
    problems, _warnings = bound.schema_differences(actual, expected)
    if problems:
        raise _member_error(
            source,
            DATABASE,
            f"has an altered structure: {_first(problems)}",
            tampered=True,
        )


def _verify_staged(
    staging: Path, manifest: dict[str, Any], source: Path
) -> tuple[tuple[int, str], str, tuple[str, ...]]:
    """Verify the extracted case as ``xfr case verify`` does, and compare its audit
    head and state digest with the manifest's: ``(head, state digest, warnings)``.
    """
    from core.case.store import Case, login_name, write_session

    try:
        with Case.open(staging, read_only=True) as case:
            # archives carry no case.session (it belongs to a folder, not to the
            # data): the new case's starts at the head it was exported with
            write_session(staging, case.head(), open_=False, login=login_name())
            report = case.verify()
    except BadInputError as error:
        raise _member_error(
            source, DATABASE, f"cannot be opened as a case ({error.reason})"
        ) from None
    except sqlite3.Error as error:  # passed the checks above, yet unreadable
        raise _member_error(
            source, DATABASE, f"is not a usable case database ({error})"
        ) from None
    finally:
        _remove_companions(staging / DATABASE)
    if not report.intact:
        raise ArchiveVerificationError(
            f"the case in the archive does not verify: {_first(report.problems)}; "
            "nothing was imported",
            source,
        )
    head = report.head or (0, "")
    if "audit_head" in manifest:
        wanted = manifest["audit_head"]
        if (wanted["seq"], wanted["hash"]) != head:
            raise ArchiveVerificationError(
                "the archive's database is not the one its manifest describes: "
                f"the manifest names audit entry {wanted['seq']} (hash "
                f"{wanted['hash'][:16]}…), the database ends at entry {head[0]} "
                f"(hash {head[1][:16]}…); nothing was imported",
                source,
            )
        if manifest["state_digest"] != report.state_digest:
            raise ArchiveVerificationError(
                "the archive's database is not the one its manifest describes: "
                "the state its audit log records differs from the manifest's state "
                "digest; nothing was imported",
                source,
            )
    return head, report.state_digest, tuple(report.warnings)


def _first(problems: Sequence[str]) -> str:
    """The first few problems, and how many more there are."""
    shown = "; ".join(problems[:_PROBLEMS_SHOWN])
    more = len(problems) - _PROBLEMS_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def _remove_companions(database: Path) -> None:
    """Empty ``-wal``/``-shm`` files a read-only connection may leave behind."""
    for suffix in ("-wal", "-shm"):
        companion = database.with_name(database.name + suffix)
        if suffix == "-wal" and companion.exists() and companion.stat().st_size:
            continue  # it holds pages; a read-only reader writes none, so keep it
        remove_quietly(companion)


# ---- helpers ------------------------------------------------------------------------
def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(error: OSError) -> str:
    return error.strerror or str(error)


def _remove_snapshot(snapshot: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        remove_quietly(snapshot.with_name(snapshot.name + suffix))


def _remove_tree(path: Path) -> None:
    """Remove a folder with read-only files in it (Windows refuses to otherwise)."""
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, name), 0o644)
    shutil.rmtree(path, ignore_errors=True)
