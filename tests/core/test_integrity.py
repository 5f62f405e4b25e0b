"""Case integrity v2: every stored fact is bound to the audit chain (issue 15).

Each test alters a real case file the way a hostile party (or an accident) would,
directly in SQLite or on disk, and checks that ``verify`` names what was done, and
that nothing altered is ever used to decide a comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from case_tampering import add_tracked_video, copied_case, verify
from PIL import Image

from core.case import state as bound
from core.case import workflow
from core.case.acev import Analysis
from core.case.audit import canonical
from core.case.db import statements
from core.case.demo import create_demo_case
from core.case.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from core.case.store import GENESIS, Case, CaseError
from core.case.store import entry_hash as chain_hash
from core.gallery.build import build_gallery
from core.processing import parse_step
from core.report.figures import png_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory, dlib_model, astronaut_rgb) -> Path:
    """A closed case with a row in every bound table (and a superseded face)."""
    folder = tmp_path_factory.mktemp("template") / "case"
    case = create_demo_case(folder, model=dlib_model)
    try:
        stored = workflow.explain(case, "Q1", "K1", "gradient", dlib_model).stored
        k2 = case.face("K2")
        case.correct_face("K2", k2.landmarks5 + 0.5)  # supersedes the detected face
        workflow.rank_gallery(case, "Q1", dlib_model)
        case.add_annotation(shape="point", points=[[5, 5]], exhibit="Q1", label="m")
        case.add_annotation(
            shape="rectangle",
            points=[[1, 1], [4, 4]],
            explanation_id=stored.id,
            label="eye",
        )
        case.add_conclusion("moderate support", comparison_id=stored.comparison_id)
        exam = case.examination()  # schema 3: ACE-V records and a figure
        exam.record_analysis("Q1", Analysis("suitable", visible=("nose",)))
        exam.save_figure(
            png_bytes(np.zeros((4, 4, 3), np.uint8)),
            view="wipe",
            questioned="Q1",
            known="K1",
            params={"position": 0.5},
            caption="eye line",
        )
        # schema 4: a video (V1), its tracking run (T1) and a frame taken from it
        add_tracked_video(case, folder.parent, best=1)
        # schema 5: a processed exhibit (Q1 -> Q1.1)
        case.derivations.derive("Q1", [parse_step("levels:gamma=1.2")])
        # schema 6: a search of Q1 against a reference gallery, its rank 1 pulled in
        people = folder.parent / "people" / "collins"
        people.mkdir(parents=True)
        brighter = np.clip(astronaut_rgb.astype(int) + 30, 0, 255).astype(np.uint8)
        Image.fromarray(brighter).save(people / "brighter.png")
        gallery = folder.parent / "people.xfrgallery"
        build_gallery(people.parent, dlib_model, gallery)
        workflow.search_gallery(
            case, "Q1", gallery, 1, dlib_model, examination=case.examination()
        )
        workflow.pull_candidate(case, "S1", 1, detect=False)
        assert case.verify().intact
    finally:
        case.close()
    return folder


@pytest.fixture
def folder(template, tmp_path) -> Path:
    return copied_case(template, tmp_path)


def raw(folder: Path) -> sqlite3.Connection:
    db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def first_row(db: sqlite3.Connection, table: str) -> dict:
    return dict(db.execute(f"SELECT * FROM {table} ORDER BY rowid LIMIT 1").fetchone())


def key_of(table: str, row: dict) -> str:
    return bound.row_key(table, (row[c] for c in bound.BOUND_TABLES[table]))


def altered(value):
    """A different value of the same kind, for an UPDATE that changes a column."""
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    if isinstance(value, float):
        return value + 0.25
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "0"
    return value + " "


def update_one_column(db: sqlite3.Connection, table: str) -> str:
    """Change one non-key column of the first row (skipping CHECK-bound ones)."""
    row = first_row(db, table)
    where = " AND ".join(f"{c} = ?" for c in bound.BOUND_TABLES[table])
    keys = [row[c] for c in bound.BOUND_TABLES[table]]
    for column, value in row.items():
        if column in bound.BOUND_TABLES[table]:
            continue
        try:
            db.execute(
                f"UPDATE {table} SET {column} = ? WHERE {where}",
                (altered(value), *keys),
            )
        except sqlite3.IntegrityError:
            continue
        return key_of(table, row)
    raise AssertionError(f"no column of {table} could be changed")


def insert_copy(db: sqlite3.Connection, table: str) -> str:
    """Plant a copy of the first row under a new key (unique columns varied)."""
    row = first_row(db, table)
    for column, value in row.items():
        # frames are keyed by their exhibit's id: a planted one needs its own
        key = column in bound.BOUND_TABLES[table] and isinstance(value, int)
        if column in ("id", "face_id", "number") or key:
            row[column] = 10_000 + int(value)
        elif isinstance(value, str) and column not in (
            "role",
            "decision",
            "shape",
            "component",
            "source",
            "stage",
        ):
            row[column] = value + "-planted"
    columns = ", ".join(row)
    db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    return key_of(table, row)


def delete_one(db: sqlite3.Connection, table: str) -> str:
    row = first_row(db, table)
    where = " AND ".join(f"{c} = ?" for c in bound.BOUND_TABLES[table])
    db.execute(
        f"DELETE FROM {table} WHERE {where}",
        [row[c] for c in bound.BOUND_TABLES[table]],
    )
    return key_of(table, row)


KINDS = {"update": update_one_column, "insert": insert_copy, "delete": delete_one}
CASES = [
    (table, kind)
    for table in bound.BOUND_TABLES
    for kind in KINDS
    if not (table == "case_info" and kind == "insert")  # CHECK (id = 1): one row
]


# ---- every table, every kind of row tampering ----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("table", "kind"), CASES)
def test_every_row_tampering_is_named(folder, table, kind):
    db = raw(folder)
    key = KINDS[kind](db, table)
    db.close()
    report = verify(folder)
    assert not report.intact
    named = [p for p in report.problems if bound.describe_row(table, key) in p]
    assert named, report.problems
    expected = {
        "update": "changed",
        "insert": "written by no audited",
        "delete": "gone",
    }
    assert expected[kind] in named[0]


def test_the_template_has_a_row_in_every_bound_table(folder):
    db = raw(folder)
    try:
        empty = [
            table
            for table in bound.BOUND_TABLES
            if db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
        ]
    finally:
        db.close()
    assert empty == []  # else that table's tampering tests would test nothing


# ---- a video's evidence file ------------------------------------------------------
def video_file(folder: Path) -> Path:
    db = raw(folder)
    try:
        sha256 = db.execute("SELECT sha256 FROM videos WHERE mark = 'V1'").fetchone()
    finally:
        db.close()
    return folder / "evidence" / sha256[0]


def test_an_altered_video_file_is_named(folder):
    path = video_file(folder)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
    report = verify(folder)
    assert not report.intact
    assert any(
        p.startswith("evidence file of V1 (cctv.mp4) was altered")
        for p in report.problems
    ), report.problems


def test_a_missing_video_file_is_named(folder):
    path = video_file(folder)
    os.chmod(path, 0o644)
    path.unlink()
    report = verify(folder)
    assert any(
        p.startswith("evidence file of V1 (cctv.mp4) is missing")
        for p in report.problems
    ), report.problems


def test_a_writable_video_file_is_a_warning(folder):
    os.chmod(video_file(folder), 0o644)
    report = verify(folder)
    assert report.intact  # the bytes are the intake's: a warning, not a problem
    assert "evidence file of V1 is not write-protected" in report.warnings


def test_a_flipped_decision_is_named_with_its_pair(folder):
    db = raw(folder)
    row = db.execute(
        "SELECT id FROM comparisons WHERE decision = 'reject' LIMIT 1"
    ).fetchone()
    db.execute("UPDATE comparisons SET decision = 'accept' WHERE id = ?", (row[0],))
    db.close()
    (problem,) = verify(folder).problems
    assert f"comparisons row {row[0]}" in problem and "now 'accept'" in problem
    assert "×" in problem and "comparisons.record" in problem


def test_an_altered_fact_is_never_used_by_a_writable_case(folder):
    db = raw(folder)
    db.execute("UPDATE conclusions SET text = 'identification'")
    db.close()
    with Case.open(folder) as case:
        with pytest.raises(CaseError, match="conclusions row 1 is not what"):
            case.conclusions()
        # the examiner can still see it read-only, and verify names it
    with Case.open(folder, read_only=True) as case:
        assert case.conclusions()[0].text == "identification"
        assert not case.verify().intact


def test_a_poisoned_embedding_cache_cannot_change_a_decision(folder, dlib_model):
    with Case.open(folder) as case:
        probe, impostor = case.face("Q1"), case.face("K2")
        before = workflow.compare(case, "Q1", "K2", dlib_model)
        assert before.decision == "reject"
    db = raw(folder)
    vector = db.execute(
        "SELECT vector FROM embeddings WHERE face_id = ?", (probe.id,)
    ).fetchone()[0]
    db.execute(
        "UPDATE embeddings SET vector = ? WHERE face_id = ?", (vector, impostor.id)
    )
    db.execute("DELETE FROM comparisons")  # force a fresh comparison from the cache
    db.close()
    assert any("embeddings row" in p for p in verify(folder).problems)
    with Case.open(folder) as case:
        with pytest.raises(CaseError, match=r"embedding of face K2 is not the one"):
            workflow.compare(case, "Q1", "K2", dlib_model)
        with pytest.raises(CaseError):
            workflow.rank_gallery(case, "Q1", dlib_model)


def test_a_planted_exhibit_with_its_file_is_named(folder, astronaut_rgb):
    import hashlib
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(astronaut_rgb[:200, :200]).save(buffer, "PNG")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    (folder / "evidence" / digest).write_bytes(data)
    db = raw(folder)
    db.execute(
        "INSERT INTO exhibits (mark, role, sha256, original_name, size, format, width,"
        " height, intake_time, intake_user) VALUES ('K9', 'gallery', ?, 'x.png', ?, "
        "'PNG', 200, 200, '2026-01-01T00:00:00Z', 'mallory')",
        (digest, len(data)),
    )
    db.close()
    (problem,) = verify(folder).problems
    assert "exhibits row" in problem and "exhibit K9" in problem
    assert "no audited action" in problem


def test_case_number_and_examiner_are_bound(folder):
    db = raw(folder)
    db.execute("UPDATE case_info SET examiner = 'Someone Else'")
    db.close()
    (problem,) = verify(folder).problems
    assert "case_info row 1" in problem and "Someone Else" in problem


# ---- the schema ----------------------------------------------------------------------
SCHEMA_CHANGES = {
    "trigger": (
        "CREATE TRIGGER rewrite AFTER INSERT ON conclusions BEGIN "
        "UPDATE conclusions SET text = 'identification' WHERE id = NEW.id; END",
        "trigger 'rewrite'",
    ),
    "view": ("CREATE VIEW hidden AS SELECT * FROM annotations", "view 'hidden'"),
    "column": (
        "ALTER TABLE annotations ADD COLUMN hidden INTEGER DEFAULT 1",
        "extra column 'hidden'",
    ),
    "index": ("CREATE INDEX extra ON faces(source)", "index 'extra'"),
    "dropped trigger": ("DROP TRIGGER audit_no_delete", "append-only protection"),
}


@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_schema_changes_are_refused_for_writing_and_named(folder, change):
    statement, named = SCHEMA_CHANGES[change]
    db = raw(folder)
    db.execute(statement)
    db.close()
    with pytest.raises(CaseError, match="structure was altered") as refused:
        Case.open(folder)
    assert named in str(refused.value)
    report = verify(folder)
    assert not report.intact
    assert any(named in p for p in report.problems), report.problems


def test_expected_schema_is_exactly_what_a_new_case_has(tmp_path):
    with Case.create(tmp_path / "c", "1", "E") as case:
        actual = bound.schema_objects(case._db.execute)
    expected = bound.expected_schema(statements(m) for m in MIGRATIONS)
    assert actual == expected
    assert bound.schema_differences(actual, expected) == ([], [])


# ---- the chain as a whole: rewrite, rollback, lost WAL -------------------------------
def rewrite_chain(folder: Path, statement: str) -> None:
    """What a careful forger does: change a row, then rewrite the whole chain so
    that every digest and every hash is consistent again (and the session file)."""
    db = raw(folder)
    triggers = [
        r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type='trigger'")
    ]
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute(statement)
    now_state = bound.all_rows_state(db.execute)
    entries = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]
    latest: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        entry["parsed"] = json.loads(entry["details"])
        for table, rows in entry["parsed"].get("state", {}).items():
            for key in rows:
                latest[(table, key)] = index
    for (table, key), index in latest.items():
        entries[index]["parsed"]["state"][table][key] = now_state[table].get(key)
    prev = GENESIS
    for entry in entries:
        text = canonical(entry["parsed"])
        digest = chain_hash(
            entry["seq"], entry["time"], entry["user"], entry["action"], text, prev
        )
        db.execute(
            "UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (text, prev, digest, entry["seq"]),
        )
        prev = digest
    db.execute("UPDATE audit_head SET hash = ?", (prev,))
    for sql in triggers:
        db.execute(sql)
    db.close()
    session = json.loads((folder / "case.session").read_text())
    session["hash"] = prev
    (folder / "case.session").write_text(json.dumps(session))


def test_a_consistent_rewrite_passes_verify_but_not_its_anchor(folder, tmp_path):
    with Case.open(folder, read_only=True) as case:
        anchor = case.anchor()
    rewrite_chain(folder, "UPDATE conclusions SET text = 'identification'")
    assert verify(folder).intact  # the limit of a self-contained file: documented
    report = verify(folder, anchor=anchor)
    assert not report.intact
    assert any("rewritten" in p for p in report.problems), report.problems


def test_a_rewrite_that_leaves_the_session_file_is_named(folder):
    before = (folder / "case.session").read_text()
    rewrite_chain(folder, "UPDATE conclusions SET text = 'identification'")
    (folder / "case.session").write_text(before)
    report = verify(folder)
    assert any("log was rewritten" in p for p in report.problems), report.problems


def test_rollback_to_an_older_copy_is_detected(folder, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    with Case.open(folder) as case:
        case.add_conclusion("later words")
        anchor = case.anchor()
    shutil.copy2(old / "case.sqlite", folder / "case.sqlite")
    report = verify(folder)
    assert any("committed changes are missing" in p for p in report.problems)
    shutil.copy2(old / "case.session", folder / "case.session")  # a careful forger
    assert verify(folder).intact  # self-consistent older state ...
    report = verify(folder, anchor=anchor)  # ... but the anchor remembers
    assert any("rolled back" in p for p in report.problems), report.problems


def test_an_anchor_of_another_case_is_named(folder, tmp_path):
    with Case.create(tmp_path / "other", "OTHER-1", "E") as other:
        anchor = other.anchor()
    (problem,) = verify(folder, anchor=anchor).problems
    assert "not to this case" in problem


def test_a_case_copied_while_open_without_its_wal_is_named(folder, tmp_path):
    copy = tmp_path / "copy"
    with Case.open(folder) as case:
        case.add_conclusion("written while a backup ran")
        assert (folder / "case.sqlite-wal").stat().st_size > 0
        copy.mkdir()
        for name in ("case.sqlite", "case.session"):
            shutil.copy2(folder / name, copy / name)
        shutil.copytree(folder / "evidence", copy / "evidence")
        shutil.copytree(folder / "derived", copy / "derived")
    report = verify(copy)
    assert not report.intact
    assert any("committed changes are missing" in p for p in report.problems)


def test_closing_checkpoints_so_the_database_file_alone_holds_everything(folder):
    with Case.open(folder) as case:
        case.add_conclusion("one more")
        entries = len(case.audit_log())
    assert not (folder / "case.sqlite-wal").exists()
    db = sqlite3.connect(f"{(folder / 'case.sqlite').as_uri()}?immutable=1", uri=True)
    assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == entries
    db.close()
    assert json.loads((folder / "case.session").read_text())["open"] is False


# ---- consistent reads ----------------------------------------------------------------
WRITER = """
import sys, time
from core.case.store import Case
case = Case.open(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
n = 0
print("ready", flush=True)
while time.monotonic() < deadline:
    case.add_conclusion(f"draft {n}")
    case.log("report.view", {"n": n})
    n += 1
case.close()
print(n)
"""


@pytest.mark.slow
def test_verify_never_reports_tampering_while_another_process_writes(folder):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        false_alarms, heads = [], set()
        with Case.open(folder, read_only=True) as case:
            for _ in range(200):
                report = case.verify()
                heads.add(report.head[0])
                if not report.intact:
                    false_alarms.append(report.problems)
        assert false_alarms == []
        assert len(heads) > 20  # the writer really committed during the verifies
    finally:
        writer.terminate()
        writer.wait(30)
        writer.stdout.close()


# ---- intake --------------------------------------------------------------------------
def test_a_file_that_changes_during_intake_is_rejected_by_name(
    folder, astronaut_path, tmp_path, monkeypatch
):
    from core.case import intake

    source = tmp_path / "flipping.png"
    shutil.copy2(astronaut_path, source)
    real = intake._read_chunk
    calls = {"n": 0}

    def read_then_flip(reader):
        chunk = real(reader)
        calls["n"] += 1
        if calls["n"] == 1:  # another program rewrites the file mid-copy
            data = bytearray(source.read_bytes())
            data[-100] ^= 0xFF
            source.write_bytes(bytes(data))
            os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
        return chunk

    monkeypatch.setattr(intake, "_read_chunk", read_then_flip)
    with Case.open(folder) as case:
        before = [e.mark for e in case.exhibits()]
        result = case.add_exhibits([source], "gallery")
        assert not result.added
        (rejection,) = result.rejected
        assert rejection.path == str(source) and "changed while" in rejection.reason
        assert [e.mark for e in case.exhibits()] == before
        assert case.audit_log()[-1].action == "exhibits.refused"
        assert case.verify().intact
    assert not list((folder / "evidence").glob("*.partial"))


def test_intake_describes_the_stored_bytes(tmp_path, grace_hopper_path):
    from PIL import Image

    from core.resources import sha256_file

    with Case.create(tmp_path / "c", "1", "E") as case:
        (exhibit,) = case.add_exhibits([grace_hopper_path], "gallery").added
        stored = case.evidence_path(exhibit)
        assert exhibit.size == stored.stat().st_size
        assert sha256_file(stored) == exhibit.sha256
        with Image.open(stored) as image:
            assert (exhibit.format, exhibit.width, exhibit.height) == (
                image.format,
                *image.size,
            )
        assert not list(stored.parent.glob("*.partial"))


def test_an_odd_file_name_is_stored_escaped_and_verifies(tmp_path, astronaut_path):
    name = os.fsdecode(b"cam\xff\xfe still.png")
    source = tmp_path / name
    shutil.copy2(astronaut_path, source)
    with Case.create(tmp_path / "c", "1", "E") as case:
        (exhibit,) = case.add_exhibits([source], "probe").added
        assert exhibit.original_name == "cam\\xff\\xfe still.png"
        assert exhibit.size == source.stat().st_size
        assert case.verify().intact


# ---- who did it ----------------------------------------------------------------------
def test_entries_name_the_examiner_and_record_the_login(folder):
    from core.case.store import login_name

    with Case.open(folder) as case:  # no --user: the case's examiner
        case.add_conclusion("by default the examiner")
        entry = case.audit_log()[-1]
        assert entry.user == case.info().examiner == "Demo examiner"
        assert entry.login == login_name()
    with Case.open(folder, user="B. Reviewer") as case:
        case.add_conclusion("by the reviewer")
        assert case.audit_log()[-1].user == "B. Reviewer"


def test_details_cannot_smuggle_a_state_record(folder):
    with Case.open(folder) as case, pytest.raises(ValueError, match="state"):
        case.log("report.view", {"state": {}})


# ---- cases written before row binding ------------------------------------------------
def make_version_1_case(folder: Path) -> None:
    """A case as XFR 0.1 wrote it: schema 1, entries without row digests."""
    folder.mkdir()
    (folder / "evidence").mkdir()
    (folder / "derived").mkdir()
    db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for statement in statements(MIGRATIONS[0]):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    stamp = "2026-01-01T00:00:00.000Z"
    db.execute(
        "INSERT INTO case_info VALUES "
        "(1, 'u-1', 'OLD-1', '', '', 'Old Examiner', ?, ?)",
        (stamp, stamp),
    )
    details = canonical({"case_number": "OLD-1", "examiner": "Old Examiner"})
    digest = chain_hash(1, stamp, "Old Examiner", "case.create", details, GENESIS)
    db.execute(
        "INSERT INTO audit VALUES (1, ?, 'Old Examiner', 'case.create', ?, ?, ?)",
        (stamp, details, GENESIS, digest),
    )
    db.execute("INSERT INTO audit_head VALUES (1, 1, ?)", (digest,))
    db.close()


def test_a_version_1_case_is_upgraded_once_and_then_bound(tmp_path):
    folder = tmp_path / "old"
    make_version_1_case(folder)
    report = verify(folder)
    assert report.intact and any("did not bind" in w for w in report.warnings)
    with Case.open(folder) as case:
        (upgrade,) = [e for e in case.audit_log() if e.action == "case.upgrade"]
        assert upgrade.user == "Old Examiner" and "case_info" in upgrade.rows
        case.add_conclusion("after the upgrade")
    report = verify(folder)
    assert report.intact, report.problems
    assert any("entries 1-1" in w for w in report.warnings)
    db = raw(folder)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute("UPDATE conclusions SET text = 'changed'")
    db.close()
    assert not verify(folder).intact


# ---- read-only media -----------------------------------------------------------------
def _can_bind_mount() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


@pytest.mark.skipif(not _can_bind_mount(), reason="needs root for a bind mount")
def test_a_case_on_read_only_media_can_be_read_and_verified(folder, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(folder), str(mount)], check=False)
    if done.returncode != 0:
        pytest.skip("this machine does not allow bind mounts")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        with pytest.raises(CaseError, match="read-only"):
            Case.open(mount)
        with Case.open(mount, read_only=True) as case:
            report = case.verify()
            assert report.intact, report.problems
            assert case.info().case_number == "DEMO-0001"
            assert len(case.audit_log()) == report.audit_entries
            assert np.isfinite(case.comparisons()[0].similarity)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ---- laundering: a later legitimate write must not re-bind an altered row -----------
def test_an_altered_case_record_is_not_laundered_by_the_next_change(folder):
    db = raw(folder)
    db.execute("UPDATE case_info SET examiner = 'Someone Else'")
    db.close()
    with Case.open(folder, user="Examiner") as case:
        before = len(case.audit_log())
        # every change updates case_info.modified: that must not re-bind the row
        with pytest.raises(CaseError, match="case_info row 1 is not what"):
            case.log("report.view", {"what": "anything"})
        assert len(case.audit_log()) == before  # nothing was written
    assert any("case_info row 1" in p for p in verify(folder).problems)


def test_a_planted_face_is_not_laundered_by_a_new_detection(folder):
    db = raw(folder)
    insert_copy(db, "faces")
    db.close()
    with Case.open(folder) as case:
        exhibit = case.exhibits()[0].mark
        with pytest.raises(CaseError, match=r"faces row .* is not what"):
            case.set_faces(exhibit, [])  # supersedes every face of the exhibit
    assert not verify(folder).intact


# ---- reports pin the state they describe ---------------------------------------------
@pytest.mark.slow
def test_a_report_pins_its_state_against_a_rewritten_chain(folder, tmp_path):
    from core.report.api import generate_report, read_manifest, verify_report
    from core.report.build import ReportRequest

    report = tmp_path / "r.pdf"
    with Case.open(folder) as case:
        outcome = generate_report(case, report, ReportRequest())
        manifest = read_manifest(report)
        # the state before the report's own report.generate entry
        assert manifest["audit_head"]["seq"] == case.head()[0] - 1
        check = verify_report(report, case=case)
        assert check.evidence_problems == () and check.changes_since == ()
        case.add_conclusion("written after the report")
        later = verify_report(report, case=case).changes_since
        assert len(later) == 1 and "conclusion.add" in later[0]
    rewrite_chain(folder, "UPDATE conclusions SET text = 'identification'")
    assert verify(folder).intact  # self-consistent ...
    with Case.open(folder, read_only=True) as case:
        problems = verify_report(report, case=case).evidence_problems
    assert any("rewritten" in p for p in problems), (
        problems
    )  # ... but not to the report
    assert outcome.report_id == manifest["report_id"]
