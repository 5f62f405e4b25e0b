"""``xfr processing ops`` and ``xfr case process|processed`` on a real case on disk
(issue 21): a chain of two operations makes Q1.1, ``processed --check`` and
``case verify`` re-run it, the JSON carries the chain, and every refusal is one
line with exit 2 that leaves the case as it was."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.case.layout import EVIDENCE
from core.case.store import Case
from core.processing import infos, make_step
from tests.cli.in_process import one_line_error, xfr

CHAIN = ["--op", "crop:x=96,y=0,w=320,h=320", "--op", "levels:black=10,gamma=1.2"]


@pytest.fixture
def case(tmp_path, astronaut_rgb) -> Path:
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(photo)
    folder = tmp_path / "case"
    with Case.create(folder, "2026-0021", "A. Examiner") as opened:
        opened.add_exhibits([photo], "probe")
    return folder


def _marks(folder: Path) -> list[str]:
    with Case.open(folder, read_only=True) as opened:
        return [e.mark for e in opened.exhibits()]


# ---- processing ops ----------------------------------------------------------------
def test_ops_lists_every_operation_and_parameter_in_80_columns(capsys):
    code, out, err = xfr(capsys, "processing", "ops")
    assert code == 0 and err == ""
    assert max(len(line) for line in out.splitlines()) <= 80
    for info in infos():
        assert f"{info.op_id} - {info.display_name} ({info.category}, version " in out
        assert info.implementation.split()[0] in out
        for param in info.params:
            assert f"    {param.name}: {param.type.__name__}, default " in out
    assert "range 0.1..10" in out  # levels' gamma

    code, out, _ = xfr(capsys, "processing", "ops", "--json")
    listed = json.loads(out)["operations"]
    assert code == 0
    assert [o["op_id"] for o in listed] == [i.op_id for i in infos()]
    levels = next(o for o in listed if o["op_id"] == "levels")
    gamma = next(p for p in levels["params"] if p["name"] == "gamma")
    assert (gamma["type"], gamma["default"], gamma["minimum"]) == ("float", 1.0, 0.1)


# ---- case process / processed ------------------------------------------------------
def test_two_operations_make_q1_1_which_checks_and_verifies(case, capsys):
    code, out, err = xfr(capsys, "case", "process", case, "Q1", *CHAIN)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Q1.1: processed copy of Q1 (probe), 2 step(s)")
    assert "  1. Crop (v1): x=96, y=0, w=320, h=320" in lines
    assert any(line.startswith("  2. Levels and gamma (v1): black=10, white=255,")
               for line in lines)  # fmt: skip
    assert any(line.startswith("  faces: Q1.1") for line in lines)  # the astronaut
    assert "Q1 itself is unchanged" in " ".join(lines)
    assert _marks(case) == ["Q1", "Q1.1"]

    code, out, err = xfr(capsys, "case", "processed", case, "--check")
    assert code == 0, out + err
    assert "Q1.1: intact (re-run: the same pixels, bit for bit)" in out
    assert "lineage Q1 → Q1.1" in out and "by A. Examiner" in out

    code, out, err = xfr(capsys, "case", "verify", case)
    assert code == 0 and out.startswith("INTACT"), out + err


def test_json_output_carries_the_chain_and_the_hashes(case, capsys):
    code, out, _ = xfr(capsys, "case", "process", case, "Q1", *CHAIN, "--no-detect",
                       "--json")  # fmt: skip
    made = json.loads(out)
    assert code == 0
    expected = [
        make_step("crop", {"x": 96, "y": 0, "w": 320, "h": 320}).to_dict(),
        make_step("levels", {"black": 10, "gamma": 1.2}).to_dict(),
    ]
    assert made["exhibit"] == made["mark"] == "Q1.1"
    assert made["source"] == "Q1" and made["steps"] == expected
    assert made["faces"] is None  # --no-detect: not looked for
    assert made["lineage"] == ["Q1", "Q1.1"]
    with Case.open(case, read_only=True) as opened:
        q1 = opened.exhibit("Q1")
        q11 = opened.exhibit("Q1.1")
        pixels = np.asarray(Image.open(opened.evidence_path(q11)).convert("RGB"))
    assert made["source_sha256"] == q1.sha256 and made["file_sha256"] == q11.sha256
    from core.processing import pixels_sha256

    assert made["output_sha256"] == pixels_sha256(pixels) and pixels.shape[:2] == (
        320,
        320,
    )
    assert set(made["libraries"]) >= {"opencv", "numpy", "scikit-image"}

    # a processed exhibit processed again: Q1.1.1, listed under its original
    assert xfr(capsys, "case", "process", case, "Q1.1", "--op", "unsharp",
               "--no-detect")[0] == 0  # fmt: skip
    code, out, _ = xfr(capsys, "case", "processed", case, "Q1", "--json", "--check")
    listed = json.loads(out)
    assert code == 0 and listed["intact"] is True
    assert [d["mark"] for d in listed["processed"]] == ["Q1.1", "Q1.1.1"]
    assert listed["processed"][1]["lineage"] == ["Q1", "Q1.1", "Q1.1.1"]
    assert listed["processed"][0]["steps"] == expected
    assert [c["ok"] for c in listed["checks"]] == [True, True]
    code, out, _ = xfr(capsys, "case", "processed", case, "Q1.1.1")
    assert code == 0 and out.startswith("Q1.1.1: processed copy of Q1.1;")
    assert "Q1.1:" not in out


def test_no_processed_exhibits_is_said_not_refused(case, capsys):
    code, out, _ = xfr(capsys, "case", "processed", case, "--check")
    assert code == 0 and out.startswith("no processed exhibits in the case")
    code, out, _ = xfr(capsys, "case", "processed", case, "Q1")
    assert code == 0 and out.startswith("no processed exhibits of Q1")


def test_check_exits_1_when_the_stored_processed_image_was_replaced(case, capsys):
    assert xfr(capsys, "case", "process", case, "Q1", *CHAIN, "--no-detect")[0] == 0
    with Case.open(case, read_only=True) as opened:
        stored = opened.evidence_path(opened.exhibit("Q1.1"))
    os.chmod(stored, stat.S_IRUSR | stat.S_IWUSR)  # tampering: made writable first
    pixels = np.asarray(Image.open(stored).convert("RGB")).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(stored, format="PNG")
    code, out, _ = xfr(capsys, "case", "processed", case, "--check")
    assert code == 1
    assert any(line.startswith("problem: Q1.1: ") for line in out.splitlines())
    assert "intact" not in out
    assert xfr(capsys, "case", "verify", case)[0] == 1


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "give at least one --op"),
        (["--op", "bogus"], "unknown processing operation 'bogus'"),
        (["--op", "levels:gamma=99"], "parameter gamma: 99.0 is above 10"),
        (["--op", "levels:gama=1.2"], "has no parameter 'gama'"),
        (["--op", "levels:gamma"], "is not name=value"),
        (["--op", "crop:x=0,y=0,w=9999,h=9"], "reaches outside the 512x512 image"),
    ],
)
def test_bad_steps_are_one_line_and_change_nothing(case, capsys, argv, words):
    line = one_line_error(capsys, "case", "process", case, "Q1", *argv)
    assert words in line, line
    assert _marks(case) == ["Q1"]


def test_an_unknown_mark_is_one_line(case, capsys):
    line = one_line_error(capsys, "case", "process", case, "Q9", "--op", "levels")
    assert f"{case}: no exhibit 'Q9' in this case (exhibits: Q1)" in line
    line = one_line_error(capsys, "case", "processed", case, "K4")
    assert "no exhibit 'K4'" in line


def test_a_video_mark_is_one_line_saying_to_take_a_frame(case, capsys, tmp_path):
    from core.video.synthetic import write_cctv_clip

    clip = write_cctv_clip(tmp_path / "cctv.mp4", seconds=1.0, seed=0)
    assert xfr(capsys, "case", "add", case, clip.path, "--role", "probe")[0] == 0
    line = one_line_error(capsys, "case", "process", case, "V1", "--op", "levels")
    assert "V1 is a video" in line and "take a frame first" in line
    assert _marks(case) == ["Q1"]


def test_a_locked_case_is_one_line(case, capsys):
    with Case.open(case):  # another window has it open for writing
        line = one_line_error(capsys, "case", "process", case, "Q1", "--op", "levels")
    assert str(case) in line
    assert _marks(case) == ["Q1"]


def test_a_read_only_case_is_one_line(case, capsys, monkeypatch):
    real_open = Case.open.__func__  # type: ignore[attr-defined]

    def read_only_folder(cls, folder, *args, read_only=False, **kwargs):
        if not read_only:  # the lock file cannot be created
            raise OSError(errno.EROFS, "Read-only file system", str(folder))
        return real_open(cls, folder, *args, read_only=read_only, **kwargs)

    monkeypatch.setattr(Case, "open", classmethod(read_only_folder))
    line = one_line_error(capsys, "case", "process", case, "Q1", "--op", "levels")
    assert "the case is read-only" in line
    monkeypatch.undo()
    assert _marks(case) == ["Q1"]
    assert not list((case / EVIDENCE).glob("*.partial"))


# ---- the report's manifest -----------------------------------------------------------
def test_the_report_manifest_names_each_processed_exhibit(case, capsys, tmp_path):
    from core.report.api import read_manifest

    assert xfr(capsys, "case", "process", case, "Q1", *CHAIN, "--no-detect")[0] == 0
    out = tmp_path / "report.pdf"
    code, _, err = xfr(capsys, "report", case, "--out", out, "--no-faithfulness")
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest is not None
    [entry] = manifest["processed_exhibits"]
    with Case.open(case, read_only=True) as opened:
        record = opened.derivations.derivation("Q1.1")
        marks = {e["mark"]: e["sha256"] for e in manifest["exhibits"]}
        assert marks["Q1.1"] == opened.exhibit("Q1.1").sha256
    assert record is not None
    assert entry == {
        "mark": "Q1.1",
        "source": "Q1",
        "steps": list(record.steps),
        "inputs": list(record.inputs),
        "source_sha256": record.source_sha256,
        "source_pixels_sha256": record.source_pixels_sha256,
        "output_sha256": record.output_sha256,
        "software_version": record.software_version,
        "libraries": record.libraries,
    }
    assert [s["op"] for s in entry["steps"]] == ["crop", "levels"]


def test_a_record_edited_outside_xfr_is_listed_as_such(case, capsys):
    """Listing shows what is stored; a record that is not what the audit log
    recorded is said to be so (and --check fails on it), as the report refuses."""
    import sqlite3

    assert xfr(capsys, "case", "process", case, "Q1", *CHAIN, "--no-detect")[0] == 0
    db = sqlite3.connect(case / "case.sqlite")
    try:
        db.execute(
            "UPDATE derivations SET chain = replace(chain, '\"black\":10', "
            "'\"black\":12')"
        )
        db.commit()
    finally:
        db.close()
    code, out, _ = xfr(capsys, "case", "processed", case)
    assert code == 1 and "black=12" in out
    assert "warning: Q1.1: the record above is not what the audit log recorded" in out
    code, out, _ = xfr(capsys, "case", "processed", case, "--check")
    assert code == 1 and "problem: Q1.1: its processing record was changed" in out
    assert all(len(line) <= 80 for line in out.splitlines() if "SHA" in line)
