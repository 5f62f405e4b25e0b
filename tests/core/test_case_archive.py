"""Case archive: export/import round trip, and every way a hostile zip is refused.

Real files in tmp_path and a real case (core.case.store), kept open while it is
exported so that its latest changes are still in the write-ahead log.  Altered
archives are built from a real export: the database is changed with sqlite3 and
the manifest made consistent again, so that only the check under test can tell.
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
from cryptography.hazmat.primitives import hashes
from PIL import Image

from core.case import archive
from core.case import state as bound
from core.case.archive import ArchiveVerificationError, export_case, import_case
from core.case.archive_signature import load_signer
from core.case.store import Case, entry_hash
from core.errors import BadInputError
from core.report.signing import create_identity, load_certificate

PASSWORD = "correct horse"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _noise_png(path: Path, size: int, seed: int) -> Path:
    """A PNG of random pixels: incompressible, so its size is about 3 * size²."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


class RealCase:
    """A case open for writing: exhibits, an annotation, a conclusion, a derived
    file, and the junk an interrupted session leaves (``.partial`` files)."""

    def __init__(self, folder: Path, small: Path, large: Path) -> None:
        self.folder = folder
        self.case = Case.create(folder, "2026-0017", "J. Doe", title="Smith")
        intake = self.case.add_exhibits([small], "probe")
        assert not intake.rejected
        assert not self.case.add_exhibits([large], "gallery").rejected
        self.case.add_annotation(
            shape="point", points=[[3, 4]], exhibit="Q1", label="mole"
        )
        self.case.add_conclusion("no identification possible")
        buffer = io.BytesIO()
        rng = np.random.default_rng(7)
        np.savez_compressed(buffer, heat=rng.random((8, 8), dtype=np.float32))
        with self.case._change("test.derived", {}):
            digest = self.case.store_derived(buffer.getvalue(), "heatmap", "npz")
        self.evidence = {
            f"evidence/{path.name}": path.read_bytes()
            for path in (folder / "evidence").iterdir()
        }
        self.derived = {f"derived/{digest}.npz": buffer.getvalue()}
        (folder / "x.partial").write_bytes(b"half")
        (folder / "evidence" / ("0" * 64 + ".partial")).write_bytes(b"half")
        (folder / "derived" / "y.partial").write_bytes(b"half")

    @property
    def files(self) -> dict[str, bytes]:
        return {**self.evidence, **self.derived}

    def close(self) -> None:
        self.case.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    return (
        _noise_png(folder / "small.png", 24, 1),
        _noise_png(folder / "large.png", 1100, 2),  # spans several 1 MiB chunks
    )


@pytest.fixture
def case(tmp_path, images):
    real = RealCase(tmp_path / "smith.xfrcase", *images)
    yield real
    real.close()


@pytest.fixture
def exported(case, tmp_path) -> Path:
    zip_path = tmp_path / "smith.zip"
    export_case(case.folder, zip_path)
    return zip_path


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("identity") / "jane.p12"
    create_identity("Jane Examiner", path, PASSWORD)
    return path


@pytest.fixture
def signed(case, tmp_path, identity) -> Path:
    zip_path = tmp_path / "signed.zip"
    export_case(case.folder, zip_path, signer=load_signer(identity, PASSWORD))
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
def _audit_seqs(path: Path) -> list[int]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT seq FROM audit ORDER BY seq")]
    except sqlite3.OperationalError:  # the table itself is still in the WAL
        return []
    finally:
        db.close()


def test_snapshot_includes_rows_still_in_the_wal(case, tmp_path):
    wal = case.folder / "case.sqlite-wal"
    assert wal.stat().st_size > 0
    head = case.case.head()
    # The main file alone (what a naive copy would take) lacks the WAL rows.
    alone = tmp_path / "alone.sqlite"
    alone.write_bytes((case.folder / "case.sqlite").read_bytes())
    assert head[0] not in _audit_seqs(alone)

    zip_path = tmp_path / "smith.zip"
    manifest = export_case(case.folder, zip_path)
    with zipfile.ZipFile(zip_path) as source:
        names = source.namelist()
        snapshot = source.read("case.sqlite")
    assert not any(name.endswith(("-wal", "-shm")) for name in names)
    copy = tmp_path / "snapshot.sqlite"
    copy.write_bytes(snapshot)
    assert _audit_seqs(copy) == list(range(1, head[0] + 1))
    assert manifest["audit_head"] == {"seq": head[0], "hash": head[1]}


def test_round_trip_restores_every_file_byte_for_byte(case, tmp_path):
    zip_path = tmp_path / "smith.zip"
    info = {"name": "Smith v. Jones", "number": "2024-17"}
    manifest = export_case(case.folder, zip_path, case_info=info)

    assert manifest["format"] == "xfr-case-archive"
    assert manifest["format_version"] == 2
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
    assert names[-1] == "manifest.json"  # written last (unsigned)
    assert not any("lock" in name or "partial" in name for name in names)
    assert kinds["case.sqlite"] == zipfile.ZIP_DEFLATED
    assert all(kinds[name] == zipfile.ZIP_STORED for name in case.evidence)

    target = tmp_path / "restored.xfrcase"
    result = import_case(zip_path, target)
    assert result.manifest == manifest
    assert result.signature is None and result.notes == ()
    restored = {
        f"{folder}/{path.name}": path.read_bytes()
        for folder in ("evidence", "derived")
        for path in (target / folder).iterdir()
    }
    assert restored == case.files
    for name in case.evidence:
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o444
    assert sorted(p.name for p in target.iterdir()) == [
        "case.session",  # the exported head: a later rollback is detected
        "case.sqlite",
        "derived",
        "evidence",
    ]  # no lock, no .partial, no -wal/-shm left by the checks
    session = json.loads((target / "case.session").read_text())
    assert (session["seq"], session["hash"], session["open"]) == (
        manifest["audit_head"]["seq"],
        manifest["audit_head"]["hash"],
        False,
    )
    assert _audit_seqs(target / "case.sqlite") == list(
        range(1, case.case.head()[0] + 1)
    )
    assert not list(tmp_path.glob("*.importing-*"))


def test_round_trip_keeps_the_audit_head_and_state_digest(case, tmp_path):
    manifest = export_case(case.folder, tmp_path / "smith.zip")
    anchor = case.case.anchor()  # nothing was written since the export
    assert manifest["audit_head"] == {"seq": anchor["seq"], "hash": anchor["hash"]}
    assert manifest["state_digest"] == anchor["state_digest"]

    target = tmp_path / "restored.xfrcase"
    result = import_case(tmp_path / "smith.zip", target)
    assert result.head == (anchor["seq"], anchor["hash"])
    assert result.state_digest == anchor["state_digest"]
    assert result.head_pinned
    assert result.lines()[0].startswith(
        f"the database is the one the manifest describes (audit entry {anchor['seq']}"
    )
    assert result.lines()[1] == "not signed"
    with Case.open(target, read_only=True) as restored:
        report = restored.verify()
        assert report.intact, report.problems
        assert report.head == result.head
        assert report.state_digest == anchor["state_digest"]
        assert [c.text for c in restored.conclusions()] == [
            "no identification possible"
        ]


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


def test_export_refuses_a_database_without_an_audit_log(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    sqlite3.connect(folder / "case.sqlite").close()
    with pytest.raises(BadInputError, match="not an XFR case database") as caught:
        export_case(folder, tmp_path / "out.zip")
    assert str(caught.value).startswith(str(folder / "case.sqlite"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


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
        ({"format_version": 3}, "format version 3 is not supported (made by a newer"),
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


def _database(zip_path: Path) -> bytes:
    with zipfile.ZipFile(zip_path) as source:
        return source.read("case.sqlite")


def _page_of(database: bytes, table: str, tmp_path: Path) -> slice:
    """Where the root page of ``table`` lies in the database file."""
    copy = tmp_path / "probe.sqlite"
    copy.write_bytes(database)
    db = sqlite3.connect(copy)
    try:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
    finally:
        db.close()
    copy.unlink()
    return slice((root - 1) * page_size, root * page_size)


def test_import_refuses_a_damaged_database_with_matching_manifest(exported, tmp_path):
    database = bytearray(_database(exported))
    page = _page_of(bytes(database), "exhibits", tmp_path)
    database[page] = b"\xa5" * (page.stop - page.start)  # the table's b-tree page
    damaged = _with_database(exported, tmp_path / "damaged.zip", bytes(database))
    _assert_refused(damaged, tmp_path / "restored", "'case.sqlite' is ", "damaged")


def test_import_runs_the_database_integrity_check(exported, tmp_path):
    """A table row that no longer matches its index: readable, but not intact."""
    database = bytearray(_database(exported))
    page = _page_of(bytes(database), "exhibits", tmp_path)
    table_page = database[page]
    assert table_page.count(b"K1") == 1  # the mark, indexed (UNIQUE)
    database[page] = table_page.replace(b"K1", b"K9")
    damaged = _with_database(exported, tmp_path / "index.zip", bytes(database))
    message = _assert_refused(
        damaged,
        tmp_path / "restored",
        "'case.sqlite' is damaged (integrity check: ",
        "sqlite_autoindex_exhibits",
    )
    assert "Traceback" not in message


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
    manifest = import_case(exported.name, "restored").manifest
    assert (tmp_path / "restored" / "case.sqlite").is_file()
    assert set(manifest["files"]) <= {
        str(p.relative_to(tmp_path / "restored")).replace(os.sep, "/")
        for p in (tmp_path / "restored").rglob("*")
        if p.is_file()
    }


# ---- the database against the manifest, the schema and its own audit log ------------
def _altered(exported: Path, out: Path, script: str) -> Path:
    """The archive with ``script`` run on its database, the manifest's file list
    made to match (its audit head and state digest are left as they were)."""
    path = out.with_suffix(".sqlite")
    path.write_bytes(_database(exported))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(script)
    finally:
        db.close()
    return _with_database(exported, out, path.read_bytes())


@pytest.mark.parametrize(
    ("script", "fragments"),
    [
        (
            "CREATE TRIGGER keep_it_quiet AFTER INSERT ON conclusions BEGIN "
            "UPDATE conclusions SET text = 'identification' WHERE id = NEW.id; END;",
            ("extra trigger 'keep_it_quiet'", "UPDATE conclusions"),
        ),
        (
            "CREATE VIEW shown_annotations AS SELECT * FROM annotations WHERE 0;",
            ("extra view 'shown_annotations'",),
        ),
        (
            "ALTER TABLE conclusions ADD COLUMN withdrawn INTEGER;",
            ("table 'conclusions' has an extra column 'withdrawn'",),
        ),
        (
            "CREATE INDEX by_label ON annotations (label);",
            ("extra index 'by_label'",),
        ),
        (
            "DROP TRIGGER audit_no_update;",
            ("append-only protection (audit_no_update) was removed",),
        ),
    ],
    ids=["trigger", "view", "column", "index", "audit-trigger-dropped"],
)
def test_import_refuses_an_altered_schema_naming_the_object(
    exported, tmp_path, script, fragments
):
    altered = _altered(exported, tmp_path / "altered.zip", script)
    with pytest.raises(ArchiveVerificationError):
        import_case(altered, tmp_path / "other")
    _assert_refused(
        altered, tmp_path / "restored", "'case.sqlite' has an altered structure: ",
        *fragments,
    )  # fmt: skip


def test_import_refuses_a_database_from_a_newer_xfr(exported, tmp_path):
    newer = _altered(exported, tmp_path / "newer.zip", "PRAGMA user_version = 99;")
    _assert_refused(
        newer, tmp_path / "restored", "made by a newer XFR (schema version 99"
    )


def test_import_refuses_a_database_that_is_not_an_xfr_case(exported, tmp_path):
    other = _altered(exported, tmp_path / "other.zip", "PRAGMA application_id = 7;")
    _assert_refused(other, tmp_path / "restored", "is not an XFR case database")


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        (
            "UPDATE conclusions SET text = 'identification';",
            "conclusions row 1 (examiner's conclusion) was changed after audit entry",
        ),
        ("DELETE FROM annotations;", "annotations row 1 is gone"),
    ],
    ids=["changed", "deleted"],
)
def test_import_refuses_a_changed_row_naming_it(exported, tmp_path, script, fragment):
    altered = _altered(exported, tmp_path / "row.zip", script)
    _assert_refused(
        altered, tmp_path / "restored", "the case in the archive does not verify: ",
        fragment,
    )  # fmt: skip


def _rewrite_chain(database: Path) -> None:
    """Change the conclusion and rewrite the audit log consistently: the entry
    that wrote it records the new row's digest, and every hash from there on is
    recomputed; the append-only triggers are dropped and put back."""
    db = sqlite3.connect(database, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        triggers = [
            row["sql"]
            for row in db.execute(
                "SELECT sql FROM sqlite_master WHERE name LIKE 'audit_no_%'"
            )
        ]
        assert len(triggers) == 2
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        db.execute("UPDATE conclusions SET text = 'identification' WHERE id = 1")
        row = dict(db.execute("SELECT * FROM conclusions WHERE id = 1").fetchone())
        entries = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]
        (writer,) = [
            e
            for e in entries
            if "1" in json.loads(e["details"]).get("state", {}).get("conclusions", {})
        ]
        details = json.loads(writer["details"])
        details["state"]["conclusions"]["1"] = bound.row_digest("conclusions", row)
        writer["details"] = json.dumps(details, sort_keys=True, ensure_ascii=False)
        prev = None
        for entry in entries:
            if entry["seq"] < writer["seq"]:
                continue
            if prev is not None:
                entry["prev_hash"] = prev
            entry["hash"] = entry_hash(
                entry["seq"], entry["time"], entry["user"], entry["action"],
                entry["details"], entry["prev_hash"],
            )  # fmt: skip
            db.execute(
                "UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (entry["details"], entry["prev_hash"], entry["hash"], entry["seq"]),
            )
            prev = entry["hash"]
        db.execute("UPDATE audit_head SET hash = ?", (prev,))
        for sql in triggers:
            db.execute(sql)
    finally:
        db.close()


def _as_case(folder: Path, database: bytes, files: dict[str, bytes]) -> Path:
    """A case folder made of ``database`` and the case's files."""
    for name in ("evidence", "derived"):
        (folder / name).mkdir(parents=True)
    (folder / "case.sqlite").write_bytes(database)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_import_refuses_a_consistently_rewritten_chain_under_the_old_manifest(
    exported, case, tmp_path
):
    path = tmp_path / "rewritten.sqlite"
    path.write_bytes(_database(exported))
    _rewrite_chain(path)
    # The rewrite is consistent: the case on its own verifies.
    alone = _as_case(tmp_path / "alone", path.read_bytes(), case.files)
    with Case.open(alone, read_only=True) as rewritten:
        report = rewritten.verify()
        assert report.intact, report.problems
        assert rewritten.conclusions()[0].text == "identification"

    forged = _with_database(exported, tmp_path / "rewritten.zip", path.read_bytes())
    _assert_refused(
        forged, tmp_path / "restored",
        "the archive's database is not the one its manifest describes",
        f"entry {_manifest(exported)['audit_head']['seq']}",
    )  # fmt: skip


def test_import_refuses_a_state_digest_that_differs_from_the_manifest(
    exported, tmp_path
):
    manifest = {**_manifest(exported), "state_digest": "0" * 64}
    forged = _rebuild(exported, tmp_path / "state.zip", manifest=manifest)
    _assert_refused(
        forged, tmp_path / "restored", "not the one its manifest describes",
        "state digest",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"audit_head": None}, "has no valid audit head"),
        ({"audit_head": {"seq": "3", "hash": "0" * 64}}, "has no valid audit head"),
        ({"audit_head": {"seq": 3, "hash": "XYZ"}}, "has no valid audit head"),
        ({"state_digest": 12}, "has no valid state digest"),
    ],
)
def test_import_refuses_a_malformed_head_in_the_manifest(
    exported, tmp_path, change, fragment
):
    manifest = {**_manifest(exported), **change}
    forged = _rebuild(exported, tmp_path / "head.zip", manifest=manifest)
    _assert_refused(forged, tmp_path / "restored", fragment)


def test_a_version_1_archive_still_imports_with_a_note(exported, tmp_path):
    manifest = _manifest(exported)
    del manifest["audit_head"], manifest["state_digest"]
    manifest["format_version"] = 1
    old = _rebuild(exported, tmp_path / "old.zip", manifest=manifest)
    result = import_case(old, tmp_path / "restored")
    assert not result.head_pinned
    assert result.notes == (
        "archive made by an older XFR: no audit head in its manifest, so the "
        "database was verified on its own",
    )
    assert "no audit head in its manifest" in result.lines()[0]
    assert result.head[0] == _manifest(exported)["audit_head"]["seq"]


def test_a_version_1_archive_is_still_verified(exported, tmp_path):
    manifest = _manifest(exported)
    del manifest["audit_head"], manifest["state_digest"]
    manifest["format_version"] = 1
    old = _rebuild(exported, tmp_path / "old.zip", manifest=manifest)
    altered = _altered(old, tmp_path / "old-altered.zip", "DELETE FROM annotations;")
    _assert_refused(altered, tmp_path / "restored", "annotations row 1 is gone")


# ---- signed manifests ---------------------------------------------------------------
@pytest.mark.slow
def test_signed_export_imports_naming_the_signer(signed, identity, tmp_path):
    with zipfile.ZipFile(signed) as source:
        names = source.namelist()
        manifest_bytes = source.read("manifest.json")
        signature = source.read("manifest.json.p7s")
    assert names[-2:] == ["manifest.json", "manifest.json.p7s"]
    assert signature[:1] == b"\x30"  # DER
    assert "manifest.json.p7s" not in json.loads(manifest_bytes)["files"]

    result = import_case(signed, tmp_path / "restored")
    certificate = load_certificate(identity, PASSWORD)
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    assert result.signature is not None
    assert result.signature.signer_name == "Jane Examiner"
    assert result.signature.fingerprint_sha256 == fingerprint
    assert result.signature.trusted is None
    assert result.lines()[1].startswith(
        f"signed by Jane Examiner (certificate SHA-256 {fingerprint}): "
        "signature valid, signer not checked"
    )

    trusted = import_case(signed, tmp_path / "trusted", trust=[certificate])
    assert trusted.signature.trusted is True
    assert trusted.lines()[1].endswith("signature valid, signer trusted")


@pytest.mark.slow
def test_signed_archive_from_an_untrusted_signer_is_refused_with_trust(
    signed, tmp_path
):
    other = tmp_path / "other.p12"
    create_identity("Someone Else", other, PASSWORD)
    target = tmp_path / "restored"
    with pytest.raises(ArchiveVerificationError) as caught:
        import_case(signed, target, trust=[load_certificate(other, PASSWORD)])
    message = str(caught.value)
    assert message.startswith(f"{signed}: the archive was signed by Jane Examiner")
    assert "none of the --trust certificates vouch" in message
    assert not target.exists() and not list(tmp_path.glob("*.importing-*"))


@pytest.mark.slow
def test_an_unsigned_archive_is_refused_when_a_signer_is_required(
    exported, identity, tmp_path
):
    with pytest.raises(ArchiveVerificationError, match="the archive is not signed"):
        import_case(
            exported,
            tmp_path / "restored",
            trust=[load_certificate(identity, PASSWORD)],
        )
    assert not (tmp_path / "restored").exists()


@pytest.mark.slow
def test_a_tampered_manifest_under_a_valid_signature_is_refused(signed, tmp_path):
    with zipfile.ZipFile(signed) as source:
        text = source.read("manifest.json").decode()
    # One character of the manifest; the signature stays the signer's.
    forged_text = text.replace('"format_version": 2', '"format_version":  2')
    assert forged_text != text
    members = [
        (info, forged_text.encode() if info.filename == "manifest.json" else data)
        for info, data in _members(signed)
    ]
    forged = _write_zip(tmp_path / "forged.zip", members)
    _assert_refused(
        forged, tmp_path / "restored", "'manifest.json.p7s' is not a valid signature",
        "the manifest was changed after it was signed",
    )  # fmt: skip


def test_a_rewritten_case_with_a_consistent_manifest_fails_its_signature(
    signed, case, tmp_path
):
    """A consistent rewrite of chain and manifest can only be caught by the
    signature (without one, nothing outside the archive tells the difference)."""
    path = tmp_path / "rewritten.sqlite"
    path.write_bytes(_database(signed))
    _rewrite_chain(path)
    database = path.read_bytes()
    alone = _as_case(tmp_path / "alone", database, case.files)
    with Case.open(alone, read_only=True) as rewritten:
        report = rewritten.verify()
    assert report.intact, report.problems
    head, state = report.head, report.state_digest
    manifest = _manifest(signed)
    manifest["files"]["case.sqlite"] = {"sha256": _sha(database), "size": len(database)}
    manifest["audit_head"] = {"seq": head[0], "hash": head[1]}
    manifest["state_digest"] = state
    forged = _rebuild(
        signed, tmp_path / "forged.zip", replace={"case.sqlite": database},
        manifest=manifest,
    )  # fmt: skip
    _assert_refused(forged, tmp_path / "restored", "is not a valid signature")
    # The same archive without the signature imports: the limit of an unsigned one.
    unsigned = _rebuild(forged, tmp_path / "unsigned.zip", drop=("manifest.json.p7s",))
    assert import_case(unsigned, tmp_path / "imported").head == head


@pytest.mark.slow
@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a signature", b"\x30\x82\xff\xff" + bytes(64), "other-signer"],
    ids=["empty", "text", "truncated-der", "signature-of-other-bytes"],
)
def test_a_garbage_signature_is_refused(signed, identity, tmp_path, garbage):
    if garbage == "other-signer":
        from core.case.archive_signature import sign_manifest

        garbage = sign_manifest(b"{}", load_signer(identity, PASSWORD))
    forged = _rebuild(
        signed, tmp_path / "garbage.zip", replace={"manifest.json.p7s": garbage}
    )
    message = _assert_refused(
        forged, tmp_path / "restored", "'manifest.json.p7s' is not a valid signature"
    )
    assert "\n" not in message


def test_signing_with_a_wrong_password_writes_nothing(case, identity, tmp_path):
    with pytest.raises(BadInputError, match="wrong password"):
        load_signer(identity, "wrong password")
    assert not (tmp_path / "smith.zip").exists()
