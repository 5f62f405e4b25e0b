"""Case file: intake, integrity, tamper evidence, crash safety, cache, annotations."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.case import workflow
from core.case.schema import SCHEMA_VERSION
from core.case.store import Case, CaseError, CaseLockedError
from core.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def case(tmp_path):
    with Case.create(tmp_path / "case", "2026-0042", "A. Examiner", user="tester") as c:
        yield c


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> dict[str, Path]:
    """The same kinds of files an examiner receives."""
    folder = tmp_path_factory.mktemp("intake")
    files = {}
    files["png"] = folder / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(files["png"])
    files["jpeg"] = Path(grace_hopper_path)
    files["bmp"] = folder / "astronaut.bmp"
    Image.fromarray(astronaut_rgb[::2, ::2]).save(files["bmp"])
    files["webp"] = folder / "astronaut.webp"
    Image.fromarray(astronaut_rgb[:300]).save(files["webp"], quality=80)
    grey16 = (astronaut_rgb[..., 0].astype(np.uint16) * 257)[:, :400]
    files["tiff16"] = folder / "astronaut16.tif"
    Image.fromarray(grey16).save(files["tiff16"])
    # EXIF orientation 6 (rotate 90° clockwise for display): stored 512x300
    rotated = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[271] = "TestCam"
    Image.fromarray(astronaut_rgb[:300]).save(rotated, exif=exif.tobytes())
    files["rotated"] = rotated
    return files


def audit_count(case: Case) -> int:
    return len(case.audit_log())


def folder_state(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "case.lock"
    }


# ---- creating and opening -----------------------------------------------------------
def test_new_case_is_sqlite_with_wal_foreign_keys_and_schema(case):
    info = case.info()
    assert info.case_number == "2026-0042" and info.examiner == "A. Examiner"
    db = sqlite3.connect(case.folder / "case.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    assert case._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    (entry,) = case.audit_log()
    assert entry.action == "case.create" and entry.user == "tester"
    assert entry.details["case_number"] == "2026-0042"


def test_new_case_never_overwrites(tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(CaseError, match="not an empty folder"):
        Case.create(folder, "1", "X")
    assert (folder / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_second_process_cannot_open_for_writing(case):
    code = (
        "import sys; from core.case.store import Case\n"
        "try:\n    Case.open(sys.argv[1])\n"
        "except Exception as e:\n    print(type(e).__name__, e); sys.exit(3)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(case.folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert child.returncode == 3, child.stderr
    assert "CaseLockedError" in child.stdout
    assert "open in another window or process" in child.stdout
    # reading is still possible while the examiner works on it
    with Case.open(case.folder, read_only=True) as reader:
        assert reader.info().case_number == "2026-0042"
        with pytest.raises(CaseError, match="read-only"):
            reader.add_conclusion("no")


def test_lock_is_released_on_close(tmp_path):
    folder = tmp_path / "c"
    Case.create(folder, "1", "X").close()
    with Case.open(folder):
        with pytest.raises(CaseLockedError):
            Case.open(folder)
    Case.open(folder).close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a database" * 100), "damaged or not"),
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "damaged"),
        (lambda p: p.write_bytes(b""), "not an XFR case"),
    ],
)
def test_damaged_database_is_a_clear_error(tmp_path, damage, message):
    folder = tmp_path / "c"
    Case.create(folder, "1", "X").close()
    for companion in ("case.sqlite-wal", "case.sqlite-shm"):
        (folder / companion).unlink(missing_ok=True)
    damage(folder / "case.sqlite")
    with pytest.raises(CaseError, match=message) as caught:
        Case.open(folder)
    assert "case.sqlite" in str(caught.value)
    # the lock was released: the next attempt fails for the same reason, not "open"
    with pytest.raises(CaseError, match=message):
        Case.open(folder)


def test_case_from_a_newer_version_is_refused(tmp_path):
    folder = tmp_path / "c"
    Case.create(folder, "1", "X").close()
    db = sqlite3.connect(folder / "case.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(CaseError, match="newer XFR version"):
        Case.open(folder)


def test_not_a_case_folder(tmp_path):
    with pytest.raises(CaseError, match="not a case folder"):
        Case.open(tmp_path)


# ---- intake -------------------------------------------------------------------------
def test_intake_of_every_format_keeps_originals_byte_identical(case, image_files):
    result = case.add_exhibits(list(image_files.values()), "gallery", note="seized")
    assert not result.rejected
    assert [e.mark for e in result.added] == [f"K{i}" for i in range(1, 7)]
    for exhibit, source in zip(result.added, image_files.values(), strict=True):
        stored = case.evidence_path(exhibit)
        assert stored.read_bytes() == source.read_bytes()
        assert not os.stat(stored).st_mode & 0o222  # write-protected
        assert exhibit.original_name == source.name and exhibit.note == "seized"
        assert exhibit.size == source.stat().st_size
    rotated = case.exhibit("K6")
    assert (rotated.width, rotated.height) == (300, 512)  # orientation honoured
    assert rotated.exif_orientation == 6 and rotated.exif["make"] == "TestCam"
    assert case.exhibit("K5").format == "TIFF"
    (entry,) = [e for e in case.audit_log() if e.action == "exhibits.add"]
    assert [x["mark"] for x in entry.details["exhibits"]] == [
        f"K{i}" for i in range(1, 7)
    ]
    assert case.verify().intact


def test_marks_continue_per_role(case, image_files):
    case.add_exhibits([image_files["png"]], "probe")
    case.add_exhibits([image_files["jpeg"], image_files["bmp"]], "gallery")
    case.add_exhibits([image_files["webp"]], "probe")
    assert [e.mark for e in case.exhibits()] == ["Q1", "K1", "K2", "Q2"]


def test_duplicate_is_detected_by_hash(case, image_files, tmp_path):
    copy = tmp_path / "renamed copy.png"
    copy.write_bytes(image_files["png"].read_bytes())
    case.add_exhibits([image_files["png"]], "probe")
    result = case.add_exhibits([copy, image_files["jpeg"], copy], "gallery")
    assert [e.mark for e in result.added] == ["K1"]
    assert [r.reason for r in result.rejected] == [
        "already in the case as Q1 (same SHA-256)",
        "already in the case as Q1 (same SHA-256)",
    ]


def bad_files(folder: Path, image_files) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    png = image_files["png"].read_bytes()
    jpeg = image_files["jpeg"].read_bytes()
    cases = {
        "empty.jpg": b"",
        "random.jpg": rng.bytes(5000),
        "text.png": b"hello, this is not an image\n" * 20,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 3],
        "header_only.png": png[:64],
        "flipped_bytes.png": png[:100]
        + bytes(b ^ 0xFF for b in png[100:400])
        + png[400:],
    }
    # a PNG header claiming 30000 x 30000 pixels: refused before decoding
    bomb = io.BytesIO()
    Image.new("L", (30000, 30000)).save(bomb, format="PNG")
    cases["bomb.png"] = bomb.getvalue()
    paths = {}
    for name, data in cases.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    paths["missing.jpg"] = folder / "missing.jpg"
    paths["a_folder"] = folder
    return paths


@pytest.mark.slow
def test_bad_files_are_rejected_and_the_case_is_unchanged(case, image_files, tmp_path):
    case.add_exhibits([image_files["png"]], "probe")
    before, entries = folder_state(case.folder), audit_count(case)
    (tmp_path / "bad").mkdir()
    bad = bad_files(tmp_path / "bad", image_files)
    result = case.add_exhibits(list(bad.values()), "gallery")
    assert not result.added
    reasons = {Path(r.path).name: r.reason for r in result.rejected}
    assert set(reasons) == {p.name for p in bad.values()}
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.png"]
    assert (
        "truncated" in reasons["truncated.jpg"] or "damaged" in reasons["truncated.jpg"]
    )
    assert "megapixels" in reasons["bomb.png"]
    assert "not found" in reasons["missing.jpg"]
    assert "not a file" in reasons["bad"]
    after = folder_state(case.folder)
    for name in before:  # evidence and derived files untouched, none added
        if name.startswith(("evidence", "derived")):
            assert after[name] == before[name]
    assert {n for n in after if n.startswith("evidence")} == {
        n for n in before if n.startswith("evidence")
    }
    assert [e.mark for e in case.exhibits()] == ["Q1"]
    # the refusal itself is audited: what was offered and why it was refused
    assert audit_count(case) == entries + 1
    refusal = case.audit_log()[-1]
    assert refusal.action == "exhibits.refused"
    assert {Path(r["path"]).name for r in refusal.details["rejected"]} == set(reasons)
    assert case.verify().intact


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_images_never_corrupt_the_case(case, image_files, tmp_path, seed):
    """Random byte damage in real files: stored intact or rejected cleanly."""
    rng = np.random.default_rng(seed)
    case.add_exhibits([image_files["jpeg"]], "gallery")
    sources = [image_files[k] for k in ("png", "webp", "bmp", "tiff16", "rotated")]
    damaged = []
    for number, source in enumerate(sources):
        data = bytearray(source.read_bytes())
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            data = data[: int(rng.integers(1, len(data)))]
        path = tmp_path / f"fuzz{number}{source.suffix}"
        path.write_bytes(bytes(data))
        damaged.append(path)
    result = case.add_exhibits(damaged, "probe")
    assert len(result.added) + len(result.rejected) == len(damaged)
    for rejection in result.rejected:
        assert rejection.reason and "Traceback" not in rejection.reason
    for exhibit in result.added:  # what was accepted was stored byte for byte
        source = tmp_path / exhibit.original_name
        assert case.evidence_path(exhibit).read_bytes() == source.read_bytes()
    report = case.verify()
    assert report.intact and not report.warnings


# ---- tamper evidence ----------------------------------------------------------------
@pytest.fixture
def busy_case(case, image_files):
    case.add_exhibits([image_files["png"]], "probe")
    case.add_exhibits([image_files["jpeg"], image_files["bmp"]], "gallery")
    case.add_annotation(shape="point", points=[[5, 5]], exhibit="Q1", label="a")
    case.add_conclusion("first words")
    case.add_conclusion("second words")
    assert case.verify().intact
    return case


def raw_db(case: Case) -> sqlite3.Connection:
    return sqlite3.connect(case.folder / "case.sqlite", isolation_level=None)


def test_one_changed_byte_in_an_original_is_named(busy_case):
    exhibit = busy_case.exhibit("K2")
    stored = busy_case.evidence_path(exhibit)
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    report = busy_case.verify()
    assert not report.intact
    (problem,) = report.problems
    assert "K2" in problem and "altered" in problem and exhibit.original_name in problem


def test_missing_original_is_named(busy_case):
    stored = busy_case.evidence_path(busy_case.exhibit("Q1"))
    stored.unlink()
    (problem,) = busy_case.verify().problems
    assert "Q1" in problem and "missing" in problem


def test_audit_log_refuses_updates_and_deletes(busy_case):
    db = raw_db(busy_case)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET user = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    db.close()


@pytest.mark.parametrize(
    ("statement", "first_broken", "reason"),
    [
        (
            'UPDATE audit SET details = \'{"text": "other"}\' WHERE seq = 5',
            5,
            "changed",
        ),
        ("UPDATE audit SET user = 'mallory' WHERE seq = 2", 2, "changed"),
        ("DELETE FROM audit WHERE seq = 3", 4, "missing"),
        ("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)", 6, "end"),
    ],
)
def test_edited_or_deleted_audit_entry_is_named(
    busy_case, statement, first_broken, reason
):
    db = raw_db(busy_case)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute(statement)
    db.close()
    report = busy_case.verify()
    assert not report.intact
    assert report.first_broken_entry == first_broken
    chain_problems = [p for p in report.problems if "audit log" in p and "entry" in p]
    assert chain_problems and reason in chain_problems[0]
    assert any("append-only protection" in p for p in report.problems)


def test_forged_entry_with_recomputed_hash_breaks_the_next_link(busy_case):
    from core.case.store import entry_hash

    db = raw_db(busy_case)
    db.execute("DROP TRIGGER audit_no_update")
    row = db.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
    details = '{"forged": true}'
    forged = entry_hash(3, row[1], row[2], row[3], details, row[5])
    db.execute(
        "UPDATE audit SET details = ?, hash = ? WHERE seq = 3", (details, forged)
    )
    db.close()
    report = busy_case.verify()
    assert report.first_broken_entry == 4  # entry 4 still points at the old hash


# ---- crash safety -------------------------------------------------------------------
INTAKE_CHILD = """
import sys
from pathlib import Path
from core.case.store import Case
case = Case.open(sys.argv[1])
print("open", flush=True)
case.add_exhibits(sorted(Path(sys.argv[2]).iterdir()), "gallery")
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def many_images(tmp_path_factory, astronaut_rgb) -> Path:
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    for number in range(24):
        noisy = np.clip(
            astronaut_rgb.astype(int) + rng.integers(-20, 21, astronaut_rgb.shape),
            0,
            255,
        ).astype(np.uint8)
        Image.fromarray(np.tile(noisy, (2, 2, 1))).save(folder / f"img{number:02}.png")
    return folder


def kill_when(child: subprocess.Popen, evidence: Path, files: int) -> None:
    """SIGKILL the child once ``files`` evidence copies exist (0: right away)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if files == 0 or len(list(evidence.iterdir())) >= files:
            break
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)


# 0: while the files are checked; 1 and 12: while copying; 24: around the commit
@pytest.mark.slow
@pytest.mark.parametrize("copied", [0, 1, 12, 24])
def test_kill_9_during_intake_leaves_a_case_that_opens_and_verifies(
    tmp_path, many_images, copied
):
    folder = tmp_path / "c"
    Case.create(folder, "1", "X").close()
    with subprocess.Popen(
        [sys.executable, "-c", INTAKE_CHILD, str(folder), str(many_images)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout.readline().strip() == "open"
        kill_when(child, folder / "evidence", copied)
    with Case.open(folder) as case:  # the lock died with the process
        report = case.verify()
        assert report.intact, report.problems
        assert len(case.exhibits()) in (0, 24)  # all of the intake or none of it
        assert not list((folder / "evidence").glob("*.partial"))
        if not case.exhibits():  # interrupted: files left by it are re-used
            result = case.add_exhibits(sorted(many_images.iterdir()), "gallery")
            assert len(result.added) == 24
        assert case.verify().intact and not case.verify().warnings


# ---- faces, comparisons, explanations, cache ----------------------------------------
@pytest.mark.slow
def test_demo_case_has_a_probe_that_matches_one_portrait(demo):
    assert [e.mark for e in demo.exhibits()] == ["Q1", "K1", "K2"]
    probe = demo.exhibit("Q1")
    assert probe.format == "JPEG" and probe.width == 256
    ranking = {demo.face_by_id(c.gallery_face_id).label: c for c in demo.comparisons()}
    assert ranking["K1"].decision == "accept"  # the astronaut herself
    assert ranking["K2"].decision == "reject"  # Grace Hopper
    assert demo.verify().intact


def test_ranking_uses_cached_embeddings(demo, dlib_model):
    before = audit_count(demo)
    first = workflow.rank_gallery(demo, "Q1", dlib_model)
    assert audit_count(demo) == before  # nothing new: same comparisons, cached vectors
    assert [c.rank for c in first] == list(range(1, len(first) + 1))
    similarities = [c.comparison.similarity for c in first]
    assert similarities == sorted(similarities, reverse=True)


def test_rank_scores_matches_a_loop():
    rng = np.random.default_rng(0)
    probe, gallery = rng.normal(size=128), rng.normal(size=(50, 128))
    order, similarities, distances = workflow.rank_scores(probe, gallery)
    for index in range(50):
        expected = (
            gallery[index]
            @ probe
            / np.linalg.norm(gallery[index])
            / np.linalg.norm(probe)
        )
        assert similarities[index] == pytest.approx(expected)
        assert distances[index] == pytest.approx(np.linalg.norm(gallery[index] - probe))
    assert list(order) == list(np.argsort(-similarities))


def test_explanation_is_stored_and_reused(demo, dlib_model):
    first = workflow.explain(demo, "Q1", "K1", "gradcam", dlib_model)
    entries = audit_count(demo)
    again = workflow.explain(demo, "Q1", "K1", "gradcam", dlib_model)
    assert not first.from_cache and again.from_cache
    assert again.stored.id == first.stored.id
    assert audit_count(demo) == entries  # a cache hit changes nothing
    for fresh, stored in zip(first.result.images, again.result.images, strict=True):
        np.testing.assert_array_equal(fresh.combined_map, stored.combined_map)
        np.testing.assert_array_equal(
            fresh.evidence["combined"].full(), stored.evidence["combined"].full()
        )
    assert again.result.to_dict() == first.result.to_dict()
    other_seed = workflow.explain(demo, "Q1", "K1", "gradcam", dlib_model, seed=1)
    assert not other_seed.from_cache


def test_manual_landmarks_supersede_and_change_the_cache_key(demo, dlib_model):
    face = demo.face("K2")
    moved = face.landmarks5 + np.array([2.0, 1.0])
    corrected = demo.correct_face("K2", moved)
    assert corrected.source == "manual" and corrected.created_by
    assert demo.face("K2").id == corrected.id  # the correction is the current face
    (entry,) = [e for e in demo.audit_log() if e.action == "faces.correct"]
    assert entry.details["from"]["landmarks5"] == np.round(face.landmarks5, 3).tolist()
    result = workflow.explain(demo, "Q1", "K2", "gradcam", dlib_model)
    assert not result.from_cache


def test_stored_maps_are_checked_before_reuse(demo, dlib_model):
    done = workflow.explain(demo, "Q1", "K1", "xssab", dlib_model)
    path = demo.derived_path(done.stored.maps_sha256)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BadInputError, match="do not match their hash"):
        workflow.explain(demo, "Q1", "K1", "xssab", dlib_model)
    assert any("derived file" in p for p in demo.verify().problems)


# ---- annotations and conclusions ----------------------------------------------------
def test_annotations_add_update_delete_with_audit(busy_case):
    added = busy_case.add_annotation(
        shape="polygon",
        points=[[1, 1], [10, 1], [5, 8]],
        exhibit="K1",
        label="ear",
        note="helix shape",
        component="ears",
    )
    updated = busy_case.update_annotation(
        added.id, note="antihelix", points=[[2, 2], [9, 2], [5, 7]]
    )
    assert updated.note == "antihelix" and updated.points[0] == (2.0, 2.0)
    busy_case.delete_annotation(added.id)
    assert added.id not in [a.id for a in busy_case.annotations()]
    actions = [e for e in busy_case.audit_log() if e.action.startswith("annotation")]
    assert [e.action for e in actions][-3:] == [
        "annotation.add",
        "annotation.update",
        "annotation.delete",
    ]
    assert actions[-1].details["note"] == "antihelix"  # deleted content is kept
    assert actions[-2].details["from"]["note"] == "helix shape"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": "star", "points": [[1, 1]]}, "shape must be"),
        ({"shape": "point", "points": [[1, 1], [2, 2]]}, "exactly 1"),
        ({"shape": "polygon", "points": [[1, 1], [2, 2]]}, "at least 3"),
        ({"shape": "rectangle", "points": [[1, float("nan")], [2, 2]]}, "finite"),
        ({"shape": "point", "points": [[1, 1]], "component": "tail"}, "FISWG"),
    ],
)
def test_bad_annotations_are_refused(busy_case, kwargs, message):
    entries = audit_count(busy_case)
    with pytest.raises(BadInputError, match=message):
        busy_case.add_annotation(exhibit="Q1", **kwargs)
    assert audit_count(busy_case) == entries


def test_conclusions_are_revisions_never_overwritten(busy_case):
    texts = [c.text for c in busy_case.conclusions()]
    assert texts == ["first words", "second words"]
    with pytest.raises(BadInputError):
        busy_case.add_conclusion("   ")


def test_everything_reads_back_after_reopening(busy_case):
    folder = busy_case.folder
    before = [e.to_dict() for e in busy_case.audit_log()]
    busy_case.close()
    with Case.open(folder, read_only=True) as again:
        assert [e.to_dict() for e in again.audit_log()] == before
        assert again.verify().intact
        info = again.snapshot_info()
        assert json.loads(json.dumps(info)) == info  # plain data
        counts = info["counts"]
        assert counts["exhibits"] == 3 and counts["audit"] == len(before)


@pytest.mark.dlib
def test_image_without_a_face_gets_manual_landmarks(case, tmp_path, astronaut_rgb):
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 240, 3), 180, np.uint8)).save(wall)
    case.add_exhibits([wall], "probe")
    assert workflow.detect_faces(case, "Q1") == []
    with pytest.raises(BadInputError, match="no face yet"):
        case.face("Q1")
    points = [[150, 80], [130, 80], [70, 80], [90, 80], [110, 130]]
    face = case.correct_face("Q1", points)
    assert (
        face.source == "manual" and face.label == "Q1" and face.created_by == "tester"
    )
    np.testing.assert_array_equal(face.landmarks5, points)
    (entry,) = [e for e in case.audit_log() if e.action == "faces.correct"]
    assert entry.details["from"] is None and entry.details["to"]["source"] == "manual"
    with pytest.raises(BadInputError, match="five finite"):
        case.correct_face("Q1", points[:4])


@pytest.mark.slow
def test_a_case_is_shared_safely_between_threads(case):
    """The GUI reads while a worker writes: no interleaved transactions."""
    import threading

    errors: list[BaseException] = []

    def write() -> None:
        try:
            for number in range(40):
                case.add_conclusion(f"revision {number}")
        except BaseException as error:  # reported below, in the test thread
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while writer.is_alive():
        entries = case.audit_log()
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        seen = max(seen, len(entries))
    writer.join()
    assert not errors
    assert len(case.conclusions()) == 40 and case.verify().intact


def test_a_ranking_that_loses_a_race_for_the_same_pairs_stores_them_once(
    case, image_files, monkeypatch
):
    """Two rankings of one probe at once (two GUI jobs): the second writer finds
    the pairs stored between its read and its write, rolls back and reuses them."""
    from core.faces.detect import Face

    case.add_exhibits([image_files["png"]], "probe")
    case.add_exhibits([image_files["jpeg"]], "gallery")
    points = np.array([[100.0, 120.0], [140.0, 120.0], [120.0, 150.0], [105, 170]])
    face = Face(
        bbox=(50.0, 60.0, 250.0, 300.0), landmarks5=np.vstack([points, [120, 140]])
    )
    (probe,) = case.set_faces("Q1", [face])
    (gallery,) = case.set_faces("K1", [face])
    scores = [(gallery.id, 0.9, 0.3, "accept")]
    settings = {"model_id": "m", "model_sha256": "ab" * 32, "threshold": {"v": 0.6}}

    real_insert = Case._insert_comparisons
    raced = []

    def insert_after_a_rival(self, *args, **kwargs):
        if not raced:  # the rival's transaction commits first
            raced.append(True)
            real_insert(self, *args, **kwargs)
        return real_insert(self, *args, **kwargs)

    monkeypatch.setattr(Case, "_insert_comparisons", insert_after_a_rival)
    (comparison,) = case.record_comparisons(probe.id, scores, **settings)

    assert raced and comparison.decision == "accept"
    assert len(case.comparisons()) == 1
    entries = [e for e in case.audit_log() if e.action == "comparisons.record"]
    assert len(entries) == 1  # the loser's transaction left no entry
    assert case.verify().intact


@pytest.mark.slow
def test_after_a_software_update_an_explanation_is_computed_again_and_the_old_kept(
    tmp_path, monkeypatch, dlib_model, astronaut_path, grace_hopper_path
):
    """The software version is in the cache key on purpose: maps shown as current
    are made by the software that makes the report; the old result stays in the
    case (never lost) and the case verifies."""
    import core
    from core.case import workflow

    with Case.create(tmp_path / "case", "2026-0017", "A. Examiner") as case:
        workflow.add_and_detect(case, [astronaut_path], "probe")
        workflow.add_and_detect(case, [grace_hopper_path], "gallery")
        monkeypatch.setattr(core, "__version__", "0.3.0")
        first = workflow.explain(case, "Q1", "K1", "gradient", dlib_model)
        monkeypatch.setattr(core, "__version__", "0.4.0")
        again = workflow.explain(case, "Q1", "K1", "gradient", dlib_model)
        assert not first.from_cache and not again.from_cache
        assert again.stored.id != first.stored.id
        versions = {s.id: workflow.load_result(case, s).software_version
                    for s in case.explanations(first.stored.comparison_id)}  # fmt: skip
        assert versions == {first.stored.id: "0.3.0", again.stored.id: "0.4.0"}
        assert case.verify().intact


def test_the_faithfulness_key_names_the_software_version():
    from types import SimpleNamespace

    from core.case.workflow import faithfulness_key
    from core.metrics.pair_faithfulness import FaithfulnessSettings

    result = SimpleNamespace(cache_key="0" * 64)
    settings = FaithfulnessSettings()
    assert faithfulness_key(result, [], settings, "0.3.0") != faithfulness_key(
        result, [], settings, "0.4.0"
    )


def test_an_animation_is_added_with_a_caution_naming_its_frames(tmp_path):
    """A GIF with the face on frame 2 used to be analysed on frame 1 silently."""
    from PIL import Image

    frames = [Image.new("RGB", (64, 64), (i * 80, 0, 0)) for i in range(3)]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    still = tmp_path / "still.png"
    frames[0].save(still)
    with Case.create(tmp_path / "case", "2026-0020", "A. Examiner") as case:
        result = case.add_exhibits([gif, still], "probe")
    assert [e.original_name for e in result.added] == ["clip.gif", "still.png"]
    (warning,) = result.warnings
    assert warning.startswith("clip.gif: the file holds 3 frames")
    assert "only the first frame was analysed" in warning
