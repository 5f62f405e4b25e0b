"""Processed (derived) exhibits in a case (issue 21 item 2): the original is never
touched, the record holds everything needed to re-create the pixels bit for bit,
and ``verify`` re-runs every chain and names any change to the image, the record
or the source.  Synthetic and shipped images, no dlib: fast."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from case_tampering import add_tracked_video
from PIL import Image

from core.case import workflow
from core.case.derivations import (
    TOLERANCE_LEVELS,
    Derivation,
    check_derivation,
    png_bytes,
)
from core.case.examination import _mark_order
from core.case.schema import SCHEMA_VERSION
from core.case.store import Case, CaseError
from core.errors import BadInputError
from core.imageio import load_image
from core.processing import (
    library_versions,
    make_step,
    parse_step,
    pixels_sha256,
    run_chain,
)

CHAIN = ("crop:x=100,y=20,w=220,h=240", "levels:black=12,white=235,gamma=1.15")


def steps(*texts: str):
    return [parse_step(t) for t in texts or CHAIN]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def case_with_q1(tmp_path, astronaut_rgb) -> Case:
    jpeg = tmp_path / "cctv still.jpg"
    Image.fromarray(astronaut_rgb).save(jpeg, quality=85)
    case = Case.create(tmp_path / "case", "2026-21", "A. Examiner")
    case.add_exhibits([jpeg], "probe")
    yield case
    case.close()


@pytest.fixture
def derived(case_with_q1) -> Case:
    """Q1 and Q1.1 (crop + levels), closed and reopened for each test's use."""
    case_with_q1.derivations.derive("Q1", steps())
    return case_with_q1


def tamper(folder: Path, sql: str, *params) -> None:
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


# ---- deriving --------------------------------------------------------------------
def test_a_derived_exhibit_records_its_chain_and_leaves_the_original_untouched(
    case_with_q1,
):
    case = case_with_q1
    original = case.exhibit("Q1")
    path = case.evidence_path(original)
    before = sha256_of(path)
    added = case.derivations.derive("Q1", steps())
    assert added.mark == "Q1.1" and added.role == "probe" and added.format == "PNG"
    assert (added.width, added.height) == (220, 240)
    assert "derived from Q1" in added.note
    assert sha256_of(path) == before == original.sha256
    assert case.exhibit("Q1") == original

    record = case.derivations.derivation("Q1.1")
    assert record is not None and record.source == "Q1"
    assert record.source_sha256 == original.sha256
    assert record.source_pixels_sha256 == pixels_sha256(load_image(path).rgb)
    assert [s["op"] for s in record.steps] == ["crop", "levels"]
    assert record.steps[1]["params"]["gamma"] == 1.15
    assert record.libraries == library_versions()
    # the stored image holds the recorded pixels, and the chain re-creates them
    stored = load_image(case.evidence_path(added)).rgb
    assert pixels_sha256(stored) == record.output_sha256
    again, _ = run_chain(load_image(path).rgb, steps())
    assert np.array_equal(again, stored)
    assert sha256_of(case.evidence_path(added)) == added.sha256
    assert not os.stat(case.evidence_path(added)).st_mode & 0o222

    entry = case.audit_log()[-1]
    assert entry.action == "exhibits.derive"
    assert entry.details["mark"] == "Q1.1" and entry.details["source"] == "Q1"
    assert [s["op"] for s in entry.details["chain"]["steps"]] == ["crop", "levels"]
    assert entry.details["output_sha256"] == record.output_sha256
    assert case.verify().intact


def test_processed_exhibits_descend_and_say_what_they_are(derived):
    case = derived
    case.derivations.derive("Q1.1", steps("unsharp:radius=2,amount=0.8"))
    case.derivations.derive("Q1", steps("levels:gamma=0.8"))
    marks = [e.mark for e in case.exhibits()]
    assert marks == ["Q1", "Q1.1", "Q1.1.1", "Q1.2"]
    assert [d.mark for d in case.derivations.lineage("Q1.1.1")] == ["Q1.1", "Q1.1.1"]
    assert case.derivations.original("Q1.1.1") == "Q1"
    assert [d.mark for d in case.derivations.derivations("Q1")] == ["Q1.1", "Q1.2"]
    assert case.derivations.derivation("Q1") is None
    note = workflow.derived_note(case, "Q1.1.1#0")
    assert note is not None
    assert "Q1.1.1 is a processed copy of Q1" in note
    assert "crop, levels and gamma, unsharp mask" in note
    assert workflow.derived_note(case, "Q1") is None
    # new originals keep their own numbering
    assert case._next_marks("probe", 1) == ["Q2"]
    assert sorted(["Q10", "Q1.2", "Q2", "Q1", "Q1.1.1", "Q1.1"], key=_mark_order) == [
        "Q1",
        "Q1.1",
        "Q1.1.1",
        "Q1.2",
        "Q2",
        "Q10",
    ]
    assert all(c.ok for c in case.derivations.check_all())
    assert case.verify().intact


def test_step_lines_say_each_step_with_its_parameters_in_order(derived):
    lines = derived.derivations.derivation("Q1.1").step_lines()
    assert lines[0] == "1. Crop (v1): x=100, y=20, w=220, h=240"
    assert lines[1].startswith(
        "2. Levels and gamma (v1): black=12, white=235, gamma=1.15"
    )


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ((), "no step"),
        (("crop:x=500,y=0,w=100,h=100",), "outside the 512x512 image"),
        (("levels:black=200,white=100",), r"white \(100\) must be above black"),
    ],
)
def test_a_chain_that_cannot_run_changes_nothing(case_with_q1, chain, message):
    case = case_with_q1
    head, files = case.head(), sorted(os.listdir(case.folder / "evidence"))
    with pytest.raises(BadInputError, match=message):
        case.derivations.derive("Q1", [parse_step(t) for t in chain])
    assert case.head() == head
    assert sorted(os.listdir(case.folder / "evidence")) == files
    assert [e.mark for e in case.exhibits()] == ["Q1"]


def test_the_same_pixels_twice_are_refused(derived):
    with pytest.raises(BadInputError, match=r"pixels of Q1\.1, already in the case"):
        derived.derivations.derive("Q1", steps())


def test_processing_that_changes_no_pixel_is_refused(case_with_q1):
    with pytest.raises(BadInputError, match="leaves the pixels of Q1 as they are"):
        case_with_q1.derivations.derive("Q1", steps("levels"))


def test_checking_an_unknown_exhibit_names_it(case_with_q1):
    with pytest.raises(BadInputError, match="no exhibit 'ZZ'"):
        case_with_q1.derivations.check("ZZ")


def test_bad_operations_and_parameters_are_one_line():
    with pytest.raises(BadInputError, match="unknown processing operation 'sharpen'"):
        parse_step("sharpen:amount=2")
    with pytest.raises(BadInputError, match="operation levels, parameter gamma"):
        parse_step("levels:gamma=lots")
    with pytest.raises(BadInputError, match="has no parameter 'radius'"):
        make_step("levels", {"radius": 2})
    with pytest.raises(BadInputError, match="is not name=value"):
        parse_step("levels:2")


def test_a_read_only_case_and_an_altered_source_are_refused(derived, tmp_path):
    folder = derived.folder
    derived.close()
    with Case.open(folder, read_only=True) as case, pytest.raises(CaseError):
        case.derivations.derive("Q1", steps("levels:gamma=2"))
    with Case.open(folder) as case:
        path = case.evidence_path(case.exhibit("Q1"))
        os.chmod(path, 0o644)
        path.write_bytes(path.read_bytes() + b"\0")
        with pytest.raises(BadInputError, match="evidence file of Q1 was altered"):
            case.derivations.derive("Q1", steps("levels:gamma=2"))


# ---- verify re-runs every chain ----------------------------------------------------
def _reopened_problems(folder: Path) -> list[str]:
    with Case.open(folder, read_only=True) as case:
        return list(case.verify().problems)


def test_verify_names_an_edited_chain(derived):
    folder = derived.folder
    derived.close()
    tamper(
        folder,
        "UPDATE derivations SET chain = replace(chain, '\"gamma\":1.15', "
        "'\"gamma\":1.5')",
    )
    problems = _reopened_problems(folder)
    assert any("processing record of Q1.1" in p for p in problems), problems
    assert any(
        "processed exhibit Q1.1: re-running the recorded processing" in p
        for p in problems
    ), problems


def test_verify_names_a_replaced_processed_image(derived, astronaut_rgb):
    folder = derived.folder
    path = derived.evidence_path(derived.exhibit("Q1.1"))
    derived.close()
    os.chmod(path, 0o644)
    other = astronaut_rgb[20:260, 100:320].copy()
    other[0, 0] ^= 1  # one pixel: enough
    path.write_bytes(png_bytes(other))
    problems = _reopened_problems(folder)
    assert any("evidence file of Q1.1" in p and "altered" in p for p in problems)
    assert any(
        "stored image of Q1.1 does not hold the pixels" in p for p in problems
    ), problems


def test_verify_names_an_edited_output_hash_and_an_unknown_version(derived):
    folder = derived.folder
    derived.close()
    copy = folder.parent / "copy"
    shutil.copytree(folder, copy)
    tamper(copy, "UPDATE derivations SET output_sha256 = ?", "0" * 64)
    assert any("does not hold the pixels" in p for p in _reopened_problems(copy))
    tamper(
        folder,
        "UPDATE derivations SET chain = replace(chain, '\"version\":1', "
        "'\"version\":7')",
    )
    problems = _reopened_problems(folder)
    assert any("recorded with version 7 of operation" in p for p in problems), problems


def test_verify_names_an_altered_source(derived):
    folder = derived.folder
    path = derived.evidence_path(derived.exhibit("Q1"))
    derived.close()
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-200])
    problems = _reopened_problems(folder)
    assert any(
        "processed exhibit Q1.1:" in p and "evidence file of Q1 was altered" in p
        for p in problems
    ), problems


def test_a_deleted_source_is_named_and_the_copy_stays_marked_processed(derived):
    folder = derived.folder
    derived.close()
    tamper(folder, "PRAGMA foreign_keys = OFF")
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM exhibits WHERE mark = 'Q1'")
        db.commit()
    finally:
        db.close()
    problems = _reopened_problems(folder)
    assert any(
        "processed exhibit Q1.1: the exhibit it was made from" in p for p in problems
    ), problems
    with Case.open(folder, read_only=True) as case:
        note = workflow.derived_note(case, "Q1.1")
        assert note is not None and "processed copy of an exhibit no longer" in note
        assert not case.derivations.check("Q1.1").ok


def test_check_tells_a_cross_platform_difference_from_an_alteration(derived, tmp_path):
    """The same record re-run elsewhere: a difference within the stated tolerance
    under other library versions is a warning; with the recorded versions, or
    beyond the tolerance, it is a problem."""
    case = derived
    record = case.derivations.derivation("Q1.1")
    source = case.exhibit("Q1")
    stored = load_image(case.evidence_path(case.exhibit("Q1.1"))).rgb
    near = stored.copy()
    near[:2, :2] = np.clip(near[:2, :2].astype(int) + TOLERANCE_LEVELS, 0, 255)
    far = stored.copy()
    far[:40] = 255 - far[:40]

    def run(image: np.ndarray, libraries: dict[str, str]):
        path = tmp_path / f"{pixels_sha256(image)[:8]}.png"
        path.write_bytes(png_bytes(image))
        faked = Derivation(
            **{
                **record.__dict__,
                "output_sha256": pixels_sha256(image),
                "libraries": libraries,
            }
        )
        return check_derivation(
            faked,
            source_path=case.evidence_path(source),
            source_file_sha256=source.sha256,
            stored_path=path,
            stored_file_sha256=sha256_of(path),
            read_frames=None,
        )

    elsewhere = {**library_versions(), "opencv": "0.0.0"}
    warned = run(near, elsewhere)
    assert (
        warned.ok
        and warned.warnings
        and "cross-platform tolerance" in str(warned.warnings)
    )
    assert not run(near, library_versions()).ok
    beyond = run(far, elsewhere)
    assert not beyond.ok and "opencv 0.0.0" in beyond.problems[0]


# ---- a video frame's neighbours, an older case -------------------------------------
def test_frames_averaged_from_the_video_are_recorded_and_re_read(tmp_path):
    with Case.create(tmp_path / "video", "2026-21", "A. Examiner") as case:
        (frame,) = add_tracked_video(case, tmp_path)
        number = case.videos.frame(frame.mark).frame_number
        chain = steps("frame_average:before=2,after=2", "levels:gamma=1.3")
        added = case.derivations.derive(frame.mark, chain)
        assert added.mark == f"{frame.mark}.1"
        record = case.derivations.derivation(added.mark)
        used = record.inputs[0]["frames"]
        assert used and all(
            u["frame_number"] == number + u["offset"] and len(u["frame_sha256"]) == 64
            for u in used
        )
        assert len(used) + len(record.inputs[0]["missing_offsets"]) == 4
        assert case.derivations.check(added.mark).ok
        assert case.verify().intact
        video = case.videos.video_path(case.videos.video("V1"))
        folder = case.folder
    os.chmod(video, 0o644)
    data = bytearray(video.read_bytes())
    data[-10] ^= 0xFF
    video.write_bytes(bytes(data))
    problems = _reopened_problems(folder)
    assert any(
        f"processed exhibit {added.mark}:" in p and "video" in p for p in problems
    ), problems


def test_frame_averaging_an_image_that_is_no_frame_is_refused(case_with_q1):
    with pytest.raises(BadInputError, match="frame exhibit taken from a video"):
        case_with_q1.derivations.derive("Q1", steps("frame_average"))


@pytest.fixture
def schema_4_case(tmp_path, astronaut_path) -> Path:
    """A case as the version before processing wrote it (schema 4)."""
    assert SCHEMA_VERSION == 6
    with Case.create(tmp_path / "old", "2026-4", "A. Examiner") as case:
        case.add_exhibits([astronaut_path], "probe")
        folder = case.folder
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        db.execute("DROP TABLE gallery_leads")  # schema 6
        db.execute("DROP TABLE gallery_searches")
        db.execute("DROP TABLE derivations")
        db.execute("PRAGMA user_version = 4")
        db.commit()
    finally:
        db.close()
    return folder


def test_a_schema_4_case_reads_read_only_and_migrates_for_writing(schema_4_case):
    with Case.open(schema_4_case, read_only=True) as case:
        assert case.derivations.derivations() == []
        assert case.derivations.derivation("Q1") is None
        assert case.verify().intact
    with Case.open(schema_4_case) as case:
        entry = case.audit_log()[-1]
        assert entry.action == "case.migrate"
        assert (entry.details["from_schema"], entry.details["to_schema"]) == (4, 6)
        assert "processed" in entry.details["note"]
        assert "videos" not in entry.details["note"]  # it had them already
        case.derivations.derive("Q1", steps("levels:gamma=2"))
        assert case.verify().intact
    db = sqlite3.connect(schema_4_case / "case.sqlite")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6
    finally:
        db.close()


def test_the_recorded_chain_is_canonical_json(derived):
    db = sqlite3.connect(derived.folder / "case.sqlite")
    try:
        (chain,) = db.execute("SELECT chain FROM derivations").fetchone()
    finally:
        db.close()
    data = json.loads(chain)
    assert data["format"] == 1
    assert chain == json.dumps(data, sort_keys=True, separators=(",", ":"))
