"""Case archive: export/import round trip, and every way a hostile zip is refused.

Real files in tmp_path; the case is synthetic (sqlite3 + random evidence bytes), so
these tests do not depend on core.case.store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.case import archive
from core.case.archive import export_case, import_case
from core.errors import BadInputError

ROWS_COMMITTED = 5
ROWS_IN_WAL = 3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SyntheticCase:
    """A case folder with a WAL database still open, evidence, derived, junk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        (folder / "evidence").mkdir()
        (folder / "derived").mkdir()
        self.db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("CREATE TABLE exhibits (id INTEGER PRIMARY KEY, label TEXT)")
        self.db.execute("CREATE INDEX exhibits_label ON exhibits (label)")
        for number in range(ROWS_COMMITTED):
            self.db.execute("INSERT INTO exhibits (label) VALUES (?)", (f"e{number}",))
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # these are in the file
        # From here on, committed rows stay in case.sqlite-wal only.
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        for number in range(ROWS_IN_WAL):
            self.db.execute("INSERT INTO exhibits (label) VALUES (?)", (f"w{number}",))

        rng = np.random.default_rng(7)
        self.evidence: dict[str, bytes] = {}
        for size in (1000, 3 * 1024 * 1024 + 17):  # one spans several 1 MiB chunks
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            name = _sha(data)
            path = folder / "evidence" / name
            path.write_bytes(data)
            path.chmod(0o444)
            self.evidence[f"evidence/{name}"] = data
        buffer = io.BytesIO()
        np.savez_compressed(buffer, heat=rng.random((8, 8), dtype=np.float32))
        npz = buffer.getvalue()
        self.derived = {f"derived/{_sha(npz)}.npz": npz}
        (folder / "derived" / f"{_sha(npz)}.npz").write_bytes(npz)

        (folder / "case.lock").write_bytes(b"")
        (folder / "x.partial").write_bytes(b"half")
        (folder / "evidence" / ("0" * 64 + ".partial")).write_bytes(b"half")
        (folder / "derived" / "y.partial").write_bytes(b"half")

    @property
    def files(self) -> dict[str, bytes]:
        return {**self.evidence, **self.derived}

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def case(tmp_path):
    synthetic = SyntheticCase(tmp_path / "smith.xfrcase")
    yield synthetic
    synthetic.close()


@pytest.fixture
def exported(case, tmp_path) -> Path:
    zip_path = tmp_path / "smith.zip"
    export_case(case.folder, zip_path)
    return zip_path


def _members(zip_path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(zip_path) as source:
        return [(info, source.read(info)) for info in source.infolist()]


def _write_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """Build a zip exactly as given (duplicates and odd names included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names
        with zipfile.ZipFile(path, "w") as target:
            for name, data in members:
                target.writestr(name, data)
    return path


def _manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as source:
        return json.loads(source.read("manifest.json"))


def _rebuild(
    exported: Path,
    out: Path,
    *,
    replace: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
    add: list[tuple[str | zipfile.ZipInfo, bytes]] = (),
    manifest: dict | None = None,
) -> Path:
    """The exported archive with members changed, the manifest kept (or given)."""
    replace = replace or {}
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for info, data in _members(exported):
        if info.filename in drop:
            continue
        if info.filename == "manifest.json" and manifest is not None:
            data = json.dumps(manifest).encode()
        members.append((info, replace.get(info.filename, data)))
    members[-1:-1] = list(add)  # before the manifest
    return _write_zip(out, members)


def _assert_refused(zip_path: Path, target: Path, *fragments: str) -> str:
    """Import must fail naming the archive and ``fragments``, and leave nothing."""
    with pytest.raises(BadInputError) as caught:
        import_case(zip_path, target)
    message = str(caught.value)
    assert message.startswith(f"{zip_path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert not target.exists()
    assert not list(target.parent.glob("*.importing-*"))
    return message


# ---- round trip ---------------------------------------------------------------------
def test_snapshot_includes_rows_still_in_the_wal(case, tmp_path):
    wal = case.folder / "case.sqlite-wal"
    assert wal.stat().st_size > 0
    # The main file alone (what a naive copy would take) lacks the WAL rows.
    alone = tmp_path / "alone.sqlite"
    alone.write_bytes((case.folder / "case.sqlite").read_bytes())
    db = sqlite3.connect(alone)
    try:
        in_file = db.execute("SELECT count(*) FROM exhibits").fetchone()[0]
    finally:
        db.close()
    assert in_file == ROWS_COMMITTED

    zip_path = tmp_path / "smith.zip"
    export_case(case.folder, zip_path)
    with zipfile.ZipFile(zip_path) as source:
        names = source.namelist()
        snapshot = source.read("case.sqlite")
    assert not any(name.endswith(("-wal", "-shm")) for name in names)
    copy = tmp_path / "snapshot.sqlite"
    copy.write_bytes(snapshot)
    db = sqlite3.connect(copy)
    try:
        labels = [row[0] for row in db.execute("SELECT label FROM exhibits")]
    finally:
        db.close()
    assert labels == [f"e{n}" for n in range(ROWS_COMMITTED)] + [
        f"w{n}" for n in range(ROWS_IN_WAL)
    ]


def test_round_trip_restores_every_file_byte_for_byte(case, tmp_path):
    zip_path = tmp_path / "smith.zip"
    info = {"name": "Smith v. Jones", "number": "2024-17"}
    manifest = export_case(case.folder, zip_path, case_info=info)

    assert manifest["format"] == "xfr-case-archive"
    assert manifest["format_version"] == 1
    assert manifest["created"].endswith("+00:00")
    assert manifest["case"] == info
    assert set(manifest["files"]) == {"case.sqlite", *case.files}
    assert "skipped" not in manifest
    for name, data in case.files.items():
        assert manifest["files"][name] == {"sha256": _sha(data), "size": len(data)}
    assert _manifest(zip_path) == manifest
    assert not zip_path.with_name("smith.zip.partial").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".smith.zip")]

    with zipfile.ZipFile(zip_path) as source:
        names = source.namelist()
        kinds = {i.filename: i.compress_type for i in source.infolist()}
    assert names[-1] == "manifest.json"  # written last
    assert not any("lock" in name or "partial" in name for name in names)
    assert kinds["case.sqlite"] == zipfile.ZIP_DEFLATED
    assert all(kinds[name] == zipfile.ZIP_STORED for name in case.evidence)

    target = tmp_path / "restored.xfrcase"
    assert import_case(zip_path, target) == manifest
    restored = {
        f"{folder}/{path.name}": path.read_bytes()
        for folder in ("evidence", "derived")
        for path in (target / folder).iterdir()
    }
    assert restored == case.files
    for name in case.evidence:
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o444
    assert sorted(p.name for p in target.iterdir()) == [
        "case.sqlite",
        "derived",
        "evidence",
    ]  # no lock, no .partial, no -wal/-shm left by the integrity check
    db = sqlite3.connect(f"{(target / 'case.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        count = db.execute("SELECT count(*) FROM exhibits").fetchone()[0]
    finally:
        db.close()
    assert count == ROWS_COMMITTED + ROWS_IN_WAL
    assert not list(tmp_path.glob("*.importing-*"))


def test_export_leaves_out_links_and_stray_files(case, tmp_path):
    (case.folder / "evidence" / "notes.txt").write_bytes(b"stray")
    link = case.folder / "derived" / (_sha(b"x") + ".png")
    link.symlink_to(next(iter((case.folder / "evidence").iterdir())))
    zip_path = tmp_path / "smith.zip"
    manifest = export_case(case.folder, zip_path)
    assert manifest["skipped"] == ["evidence/notes.txt", f"derived/{link.name}"]
    with zipfile.ZipFile(zip_path) as source:
        names = set(source.namelist())
    assert names == {"case.sqlite", "manifest.json", *case.files}
    import_case(zip_path, tmp_path / "restored")  # still importable


# ---- export refusals ----------------------------------------------------------------
def test_export_never_overwrites_an_existing_file(case, tmp_path):
    zip_path = tmp_path / "smith.zip"
    zip_path.write_bytes(b"precious")
    with pytest.raises(BadInputError, match="already exists"):
        export_case(case.folder, zip_path)
    assert zip_path.read_bytes() == b"precious"
    assert not zip_path.with_name("smith.zip.partial").exists()


@pytest.mark.parametrize("inside", ["out.zip", "evidence/out.zip"])
def test_export_refuses_a_zip_inside_the_case(case, inside):
    zip_path = case.folder / inside
    with pytest.raises(BadInputError, match="inside the case folder"):
        export_case(case.folder, zip_path)
    assert not zip_path.exists()
    assert not zip_path.with_name("out.zip.partial").exists()


def test_export_refuses_a_zip_inside_the_case_through_a_link(case, tmp_path):
    link = tmp_path / "shortcut"
    link.symlink_to(case.folder / "derived", target_is_directory=True)
    with pytest.raises(BadInputError, match="inside the case folder"):
        export_case(case.folder, link / "out.zip")
    assert not (case.folder / "derived" / "out.zip").exists()


def test_export_refuses_a_folder_without_database(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"no case\.sqlite"):
        export_case(tmp_path / "empty", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_export_refuses_altered_evidence_and_leaves_no_partial(case, tmp_path):
    name = next(iter(case.evidence))
    path = case.folder / name
    path.chmod(0o644)
    path.write_bytes(b"tampered" + case.evidence[name][8:])
    zip_path = tmp_path / "smith.zip"
    with pytest.raises(BadInputError, match="no longer matches its name") as caught:
        export_case(case.folder, zip_path)
    assert name in str(caught.value)
    assert not zip_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smith.xfrcase"]


# ---- import refusals ----------------------------------------------------------------
def test_import_never_overwrites_an_existing_case(exported, case):
    before = sorted(p.name for p in case.folder.rglob("*"))
    with pytest.raises(BadInputError, match="a case already exists here") as caught:
        import_case(exported, case.folder)
    assert str(caught.value).startswith(str(case.folder))
    assert sorted(p.name for p in case.folder.rglob("*")) == before
    assert not list(case.folder.parent.glob("*.importing-*"))


def test_import_refuses_an_existing_empty_folder(exported, tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(BadInputError, match="already exists"):
        import_case(exported, target)
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil", "points outside the case"),
        ("evidence/../../evil", "points outside the case"),
        ("/etc/evil", "is an absolute path"),
        ("C:/evil", "is an absolute path"),
        ("evidence\\" + "a" * 64, "contains a backslash"),
        ("C:\\evil", "contains a backslash"),
        ("evidence/" + "A" * 64, "is not part of a case archive"),
        ("derived/" + "a" * 64 + ".exe", "is not part of a case archive"),
        ("notes.txt", "is not part of a case archive"),
        ("other/", "is an unexpected folder"),
    ],
)
def test_import_refuses_unsafe_or_unexpected_names(exported, tmp_path, name, problem):
    hostile = _rebuild(exported, tmp_path / "hostile.zip", add=[(name, b"evil")])
    _assert_refused(hostile, tmp_path / "restored", repr(name), problem)
    assert not (tmp_path / "evil").exists()
    assert not Path("/etc/evil").exists()


def test_import_refuses_a_symlink_member(exported, tmp_path):
    name = "evidence/" + _sha(b"/etc/passwd")
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    hostile = _rebuild(exported, tmp_path / "link.zip", add=[(info, b"/etc/passwd")])
    _assert_refused(hostile, tmp_path / "restored", repr(name), "symbolic link")


def test_import_refuses_a_member_not_in_the_manifest(exported, tmp_path):
    data = b"smuggled evidence"
    name = "evidence/" + _sha(data)
    hostile = _rebuild(exported, tmp_path / "extra.zip", add=[(name, data)])
    _assert_refused(hostile, tmp_path / "restored", repr(name), "not listed")


def test_import_refuses_a_duplicated_member(exported, case, tmp_path):
    name = next(iter(case.evidence))
    hostile = _rebuild(
        exported, tmp_path / "twice.zip", add=[(name, case.evidence[name])]
    )
    _assert_refused(hostile, tmp_path / "restored", repr(name), "appears twice")


def test_import_refuses_a_manifest_entry_missing_from_the_zip(exported, case, tmp_path):
    name = next(iter(case.derived))
    broken = _rebuild(exported, tmp_path / "missing.zip", drop=(name,))
    _assert_refused(broken, tmp_path / "restored", repr(name), "missing from")


def test_import_refuses_one_changed_byte_in_evidence(exported, case, tmp_path):
    name = max(case.evidence, key=lambda n: len(case.evidence[n]))
    data = bytearray(case.evidence[name])
    data[len(data) // 2] ^= 0x01  # the zip CRC is recomputed: only SHA-256 can tell
    forged = _rebuild(exported, tmp_path / "forged.zip", replace={name: bytes(data)})
    _assert_refused(
        forged, tmp_path / "restored", repr(name), "does not match manifest.json"
    )


def test_import_refuses_a_changed_byte_in_the_zip_itself(exported, case, tmp_path):
    name = next(iter(case.evidence))
    raw = bytearray(exported.read_bytes())
    offset = raw.find(case.evidence[name])  # evidence is stored uncompressed
    assert offset > 0
    raw[offset + 10] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    _assert_refused(damaged, tmp_path / "restored", repr(name), "is damaged")


def test_import_refuses_a_manifest_hash_that_is_not_the_evidence_name(
    exported, case, tmp_path
):
    name = next(iter(case.evidence))
    manifest = _manifest(exported)
    manifest["files"][name]["sha256"] = "0" * 64
    forged = _rebuild(exported, tmp_path / "forged.zip", manifest=manifest)
    _assert_refused(forged, tmp_path / "restored", repr(name), "differs from its name")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"format": "something-else"}, "not a case archive"),
        ({"format_version": 2}, "format version 2 is not supported"),
        ({"format_version": True}, "format version True is not supported"),
        ({"files": []}, "has no list of files"),
    ],
)
def test_import_refuses_an_unknown_manifest_format(
    exported, tmp_path, change, fragment
):
    manifest = {**_manifest(exported), **change}
    other = _rebuild(exported, tmp_path / "other.zip", manifest=manifest)
    _assert_refused(other, tmp_path / "restored", fragment)


def test_import_requires_a_manifest(exported, tmp_path):
    bare = _rebuild(exported, tmp_path / "bare.zip", drop=("manifest.json",))
    _assert_refused(bare, tmp_path / "restored", "no manifest.json inside")


@pytest.mark.parametrize("kind", ["truncated", "random", "empty"])
def test_import_refuses_a_file_that_is_not_a_zip(exported, tmp_path, kind):
    raw = exported.read_bytes()
    content = {
        "truncated": raw[: len(raw) // 2],
        "random": np.random.default_rng(3).bytes(4096),
        "empty": b"",
    }[kind]
    bad = tmp_path / f"{kind}.zip"
    bad.write_bytes(content)
    _assert_refused(bad, tmp_path / "restored", "not a readable case archive")


def test_import_refuses_an_archive_over_the_size_limit(exported, tmp_path):
    target = tmp_path / "restored"
    with pytest.raises(BadInputError, match="more than the limit of 1000") as caught:
        import_case(exported, target, max_bytes=1000)
    assert str(caught.value).startswith(str(exported))
    assert not target.exists()


def test_import_refuses_a_zip_bomb(exported, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "BOMB_MIN_BYTES", 1024 * 1024)
    zeros = bytes(4 * 1024 * 1024)  # deflates about 1000:1
    name = f"derived/{_sha(zeros)}.npz"
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    manifest = _manifest(exported)
    manifest["files"][name] = {"sha256": _sha(zeros), "size": len(zeros)}
    bomb = _rebuild(
        exported, tmp_path / "bomb.zip", add=[(info, zeros)], manifest=manifest
    )
    with zipfile.ZipFile(bomb) as source:
        assert source.getinfo(name).compress_size * 1000 < len(zeros)
    _assert_refused(bomb, tmp_path / "restored", repr(name), "zip bomb")


def _with_database(exported: Path, out: Path, database: bytes) -> Path:
    """The archive with another case.sqlite and a manifest that matches it, so
    only the database check itself can refuse it."""
    manifest = _manifest(exported)
    manifest["files"]["case.sqlite"] = {"sha256": _sha(database), "size": len(database)}
    return _rebuild(exported, out, replace={"case.sqlite": database}, manifest=manifest)


def test_import_refuses_a_damaged_database_with_matching_manifest(exported, tmp_path):
    with zipfile.ZipFile(exported) as source:
        database = bytearray(source.read("case.sqlite"))
    assert len(database) >= 2 * 4096
    database[4096 : 2 * 4096] = b"\xa5" * 4096  # the table's b-tree page
    damaged = _with_database(exported, tmp_path / "damaged.zip", bytes(database))
    _assert_refused(
        damaged, tmp_path / "restored", "'case.sqlite' is not a usable case database"
    )


def test_import_runs_the_database_integrity_check(exported, tmp_path):
    """A table row that no longer matches its index: readable, but not intact."""
    with zipfile.ZipFile(exported) as source:
        database = bytearray(source.read("case.sqlite"))
    table_page = database[4096 : 2 * 4096]  # page 2: the exhibits table
    assert table_page.count(b"w1") == 1
    database[4096 : 2 * 4096] = table_page.replace(b"w1", b"w9")
    damaged = _with_database(exported, tmp_path / "index.zip", bytes(database))
    _assert_refused(
        damaged,
        tmp_path / "restored",
        "'case.sqlite' is damaged (integrity check: ",
        "exhibits_label",
    )


def test_import_refuses_a_database_that_is_not_sqlite(exported, tmp_path):
    junk = b"not a database at all" * 100
    manifest = _manifest(exported)
    manifest["files"]["case.sqlite"] = {"sha256": _sha(junk), "size": len(junk)}
    damaged = _rebuild(
        exported,
        tmp_path / "junk.zip",
        replace={"case.sqlite": junk},
        manifest=manifest,
    )
    _assert_refused(
        damaged, tmp_path / "restored", "'case.sqlite'", "not a usable case database"
    )


def test_refused_import_removes_partly_extracted_files(exported, case, tmp_path):
    """A hash mismatch found after other files were written still leaves nothing."""
    last = max(case.files)  # extraction is in name order: this one comes last
    data = bytearray(case.files[last])
    data[0] ^= 0xFF
    forged = _rebuild(exported, tmp_path / "late.zip", replace={last: bytes(data)})
    _assert_refused(forged, tmp_path / "restored", repr(last))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["smith.xfrcase", "smith.zip", "late.zip"]
    )


def test_import_works_from_a_relative_path(exported, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = import_case(exported.name, "restored")
    assert (tmp_path / "restored" / "case.sqlite").is_file()
    assert set(manifest["files"]) <= {
        str(p.relative_to(tmp_path / "restored")).replace(os.sep, "/")
        for p in (tmp_path / "restored").rglob("*")
        if p.is_file()
    }
