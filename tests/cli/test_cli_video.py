"""``xfr case videos|tracks|frames`` and ``xfr case demo --cctv`` (issue 20 item 6
and "Done when"): a video added is listed; tracking is recorded and listed again
with --show; a track's best frames become exhibits with their provenance; --check
passes, and fails in one line per problem after a frame's evidence file is
replaced; damaged videos are refused in one line and change nothing else.

The tracking tests use a stand-in detector (one face at a fixed place on every
frame), so they need neither dlib nor a model; the demo test is real (slow)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.case.demo as demo
from core.case.layout import EVIDENCE
from core.case.store import Case
from core.cli import main
from core.faces.detect import Face, FaceDetector
from core.video.synthetic import SyntheticClip, write_cctv_clip
from tests.cli.in_process import one_line_error, xfr

# a face at a fixed place: the clip's pixels there change, the box does not
FIXED_BOX = (280.0, 110.0, 360.0, 200.0)
FIXED_POINTS = np.array(
    [[340.0, 150.0], [330.0, 150.0], [300.0, 150.0], [310.0, 150.0], [320.0, 175.0]]
)


class FixedDetector:
    """Finds one face at ``FIXED_BOX`` on every frame (what tracking needs)."""

    def detect(
        self, rgb: np.ndarray, method: str = "hog", with_68: bool = False
    ) -> list[Face]:
        return [Face(FIXED_BOX, FIXED_POINTS.copy(), None, 1.0, method)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> SyntheticClip:
    return write_cctv_clip(tmp_path_factory.mktemp("clip") / "cctv.mp4", seed=0)


@pytest.fixture
def fixed_detector(monkeypatch):
    monkeypatch.setattr(
        FaceDetector, "shared", classmethod(lambda cls: FixedDetector())
    )


@pytest.fixture
def case(tmp_path) -> Path:
    folder = tmp_path / "case"
    Case.create(folder, "2026-0020", "A. Examiner", sequential_unmasking=False).close()
    return folder


@pytest.fixture
def with_video(case, clip, capsys) -> Path:
    assert main(["case", "add", str(case), clip.path, "--role", "probe"]) == 0
    capsys.readouterr()
    return case


@pytest.fixture
def tracked(with_video, fixed_detector, capsys) -> Path:
    assert main(["case", "tracks", str(with_video), "V1", "--no-model"]) == 0
    capsys.readouterr()
    return with_video


def _state(folder: Path) -> tuple:
    """What a refused command must leave as it was: the exhibits, the videos and
    the audit trail but for its refusal entries."""
    with Case.open(folder, read_only=True) as opened:
        return (
            [e.to_dict() for e in opened.exhibits()],
            [v.to_dict() for v in opened.videos.videos()],
            [
                (e.seq, e.action, e.hash)
                for e in opened.audit_log()
                if e.action != "exhibits.refused"
            ],
        )


# ---- add and videos ----------------------------------------------------------------
def test_add_names_the_video_and_videos_lists_it(case, clip, capsys):
    code, out, err = xfr(capsys, "case", "add", case, clip.path, "--role", "probe")
    assert code == 0, err
    assert out.strip() == "added V1 cctv.mp4 (video, 40 frames, 4.0 s)"
    sha256 = hashlib.sha256(Path(clip.path).read_bytes()).hexdigest()
    code, out, err = xfr(capsys, "case", "videos", case)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"V1   probe    cctv.mp4  sha256 {sha256}"
    assert "4.000 s" in lines[1]
    assert lines[2].startswith(f"     stream 0: {clip.codec} 640x360, 40 frames")
    assert lines[3] == "     frames taken: none"
    assert lines[4] == "     not tracked yet (xfr case tracks CASE V1)"
    listed = json.loads(xfr(capsys, "case", "videos", case, "--json")[1])["videos"]
    assert [(v["mark"], v["sha256"], v["runs"]) for v in listed] == [("V1", sha256, [])]
    info = xfr(capsys, "case", "info", case)[1]
    assert f"  V1   probe    cctv.mp4  sha256 {sha256}  (video)" in info
    faces = xfr(capsys, "case", "faces", case)[1]
    assert "V1     video: its faces are in its tracks" in faces


def test_a_case_without_videos_says_so_and_keeps_its_output(case, capsys):
    assert xfr(capsys, "case", "videos", case)[1].startswith("no videos in the case")
    assert "videos" not in json.loads(xfr(capsys, "case", "info", case, "--json")[1])
    assert xfr(capsys, "case", "info", case)[1] == "case 2026-0020: \n"


# ---- tracks ------------------------------------------------------------------------
def test_tracks_are_recorded_and_listed_again_with_show(
    with_video, fixed_detector, capsys
):
    code, out, err = xfr(capsys, "case", "tracks", with_video, "V1", "--no-model")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == (
        "V1 tracking run 1: 1 track(s), every 2 frame(s), detector hog, model none"
    )
    assert lines[1].startswith("T1   frames 0-38 (0.000-3.800 s), 20 face(s); best")
    shown = xfr(capsys, "case", "tracks", with_video, "V1", "--show")
    assert shown[0] == 0 and shown[1] == out
    payload = json.loads(
        xfr(capsys, "case", "tracks", with_video, "V1", "--show", "--json")[1]
    )
    assert payload["run"] == 1 and payload["params"]["every"] == 2
    assert [t["track"] for t in payload["tracks"]] == ["T1"]
    assert payload["tracks"][0]["best"]["quality"]  # the summary in words
    # tracking again with other settings adds a run; --show --run shows the first
    assert (
        xfr(capsys, "case", "tracks", with_video, "V1", "--no-model", "--every", "4")[0]
        == 0
    )
    latest = json.loads(
        xfr(capsys, "case", "tracks", with_video, "V1", "--show", "--json")[1]
    )
    assert latest["run"] == 2 and latest["tracks"][0]["faces"] == 10
    first = xfr(capsys, "case", "tracks", with_video, "V1", "--show", "--run", "1")
    assert first[1] == out
    videos = xfr(capsys, "case", "videos", with_video)[1]
    assert "tracking run 1: 1 track(s), every 2 frame(s)" in videos
    assert "tracking run 2: 1 track(s), every 4 frame(s)" in videos


def test_show_only_reads_the_case(tracked, capsys):
    before = _state(tracked)
    assert xfr(capsys, "case", "tracks", tracked, "V1", "--show")[0] == 0
    assert xfr(capsys, "case", "frames", tracked, "--list")[0] == 0
    assert xfr(capsys, "case", "frames", tracked, "--check")[0] == 0
    assert xfr(capsys, "case", "videos", tracked)[0] == 0
    assert _state(tracked) == before


# ---- frames ------------------------------------------------------------------------
def test_best_frames_become_exhibits_with_their_provenance(tracked, capsys):
    code, out, err = xfr(
        capsys, "case", "frames", tracked, "V1", "--track", "T1", "--best", "2"
    )
    assert code == 0, err
    with Case.open(tracked, read_only=True) as opened:
        frames = [opened.videos.frame(mark) for mark in ("Q1", "Q2")]
        assert [e.mark for e in opened.exhibits()] == ["Q1", "Q2"]
        assert [f.mark for f in opened.faces()] == ["Q1", "Q2"]
    assert all(f is not None and f.video == "V1" and f.track == "T1" for f in frames)
    lines = out.strip().splitlines()
    assert len(lines) == 4  # each frame's provenance, then its score and why
    for frame, line, why in zip(frames, lines[::2], lines[1::2], strict=True):
        assert line.startswith(f"{frame.mark:<4} {frame.describe()}, track T1 run 1")
        assert line.endswith(f"frame sha256 {frame.frame_sha256}")
        assert f"ranked {frame.selection['rank']} of 20" in line
        assert why.startswith("     score ") and "sharpness" in why
    assert abs(frames[0].frame_number - frames[1].frame_number) >= 5
    listed = xfr(capsys, "case", "frames", tracked, "--list")[1].splitlines()
    assert listed == lines[::2]
    payload = json.loads(xfr(capsys, "case", "frames", tracked, "--list", "--json")[1])
    assert [f["frame_sha256"] for f in payload["frames"]] == [
        f.frame_sha256 for f in frames
    ]
    code, out, err = xfr(capsys, "case", "frames", tracked, "V1", "--check")
    assert code == 0, err
    assert out.splitlines() == [
        "Q1   intact (decoded again: same pixels)",
        "Q2   intact (decoded again: same pixels)",
    ]
    videos = xfr(capsys, "case", "videos", tracked)[1]
    numbers = [f.frame_number for f in frames]
    assert f"frames taken: Q1 (frame {numbers[0]}), Q2 (frame {numbers[1]})" in videos


def test_the_examiner_names_frames(tracked, capsys):
    code, out, err = xfr(
        capsys, "case", "frames", tracked, "V1", "--track", "T1", "--frame", "10"
    )
    assert code == 0, err
    assert out.startswith("Q1   frame 10 of V1 (1.000 s, stream 0), track T1 run 1, ")
    assert "chosen by the examiner (ranked " in out


def test_check_fails_in_one_line_after_a_frame_file_is_replaced(tracked, capsys):
    assert (
        xfr(capsys, "case", "frames", tracked, "V1", "--track", "T1", "--best", "1")[0]
        == 0
    )
    with Case.open(tracked, read_only=True) as opened:
        evidence = tracked / EVIDENCE / opened.exhibit("Q1").sha256
    os.chmod(evidence, stat.S_IRUSR | stat.S_IWUSR)  # tampering: made writable first
    Image.new("RGB", (640, 360), (90, 90, 90)).save(evidence, format="PNG")
    code, out, err = xfr(capsys, "case", "frames", tracked, "--check")
    assert code == 1, (out, err)
    problems = [line for line in out.splitlines() if line.startswith("problem: Q1: ")]
    assert problems and len(problems) == len(out.strip().splitlines())
    payload = json.loads(xfr(capsys, "case", "frames", tracked, "--check", "--json")[1])
    assert payload["intact"] is False and payload["frames"][0]["mark"] == "Q1"


# ---- refusals ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["tracks", "CASE", "V9", "--show"], "no video 'V9' in this case (videos: V1)"),
        (["frames", "CASE", "V9", "--list"], "no video 'V9'"),
        (
            ["tracks", "CASE", "V1", "--run", "1", "--no-model"],
            "--run goes with --show",
        ),
        (["tracks", "CASE", "V1", "--no-model", "--every", "0"], "--every must be 1"),
        (["frames", "CASE", "V1"], "give one of --track T"),
        (["frames", "CASE", "--track", "T1", "--best", "1"], "needs the video's mark"),
        (["frames", "CASE", "V1", "--track", "T1"], "either --best K or --frame N"),
        (["frames", "CASE", "--check", "--best", "2"], "--best and --frame go with"),
        (["frames", "CASE", "V1", "--track", "T1", "--frame", "x"], "--frame needs a"),
        (["frames", "CASE", "V1", "--track", "T1", "--best", "0"], "--best must be 1"),
        (["tracks", "CASE", "V1", "--every", "x", "--no-model"], "--every needs a"),
    ],
)
def test_bad_requests_are_one_line(with_video, capsys, argv, words):
    argv = [str(with_video) if a == "CASE" else a for a in argv]
    line = one_line_error(capsys, "case", *argv)
    assert words in line


def test_untracked_video_and_missing_tracks_are_one_line(
    with_video, fixed_detector, capsys
):
    case = str(with_video)
    line = one_line_error(capsys, "case", "tracks", case, "V1", "--show")
    assert line == (
        f"xfr: error: {case}: video V1 has not been tracked yet (run "
        "`xfr case tracks CASE V1`)"
    )
    line = one_line_error(
        capsys, "case", "frames", case, "V1", "--track", "T1", "--best", "1"
    )
    assert "V1 has not been tracked yet" in line and line.startswith(
        f"xfr: error: {case}: "
    )
    assert xfr(capsys, "case", "tracks", case, "V1", "--no-model")[0] == 0
    before = _state(with_video)
    line = one_line_error(
        capsys, "case", "frames", case, "V1", "--track", "T9", "--best", "1"
    )
    assert "no track 'T9' in video V1's run 1 (tracks: T1)" in line
    line = one_line_error(
        capsys, "case", "frames", case, "V1", "--track", "T1", "--frame", "3"
    )
    assert "has no face on frame 3" in line  # every 2nd frame was sampled
    line = one_line_error(capsys, "case", "tracks", case, "V1", "--show", "--run", "4")
    assert "video V1 has no tracking run 4 (runs: 1)" in line
    assert _state(with_video) == before


def _damaged(folder: Path, clip: SyntheticClip) -> dict[str, Path]:
    good = Path(clip.path).read_bytes()
    files = {
        "truncated": folder / "truncated.mp4",
        "text": folder / "notes.mp4",
        "corrupt": folder / "corrupt.mp4",
    }
    files["truncated"].write_bytes(good[: len(good) // 2])
    files["text"].write_text("not a video, only a note\n", encoding="utf-8")
    files["corrupt"].write_bytes(good[:2000] + bytes(len(good) - 4000) + good[-2000:])
    return files


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "damaged or truncated video file"),
        ("text", "not a video file"),
        ("corrupt", "stream 0: damaged or truncated video data"),
    ],
)
def test_a_damaged_video_is_refused_in_one_line_and_changes_nothing(
    with_video, clip, tmp_path, capsys, kind, reason
):
    bad = _damaged(tmp_path, clip)[kind]
    before = _state(with_video)
    code, out, err = xfr(capsys, "case", "add", with_video, bad, "--role", "probe")
    assert code == 2 and "Traceback" not in err, (out, err)
    assert out.strip().splitlines() == [out.strip()]
    assert out.startswith(f"rejected: {bad}: {reason}")
    assert _state(with_video) == before
    with Case.open(with_video, read_only=True) as opened:
        assert opened.audit_log()[-1].action == "exhibits.refused"
        assert opened.verify().intact


def test_a_stored_video_that_no_longer_decodes_is_one_line(tracked, capsys):
    """The case's copy damaged (tampering): tracking names the video, in one line."""
    with Case.open(tracked, read_only=True) as opened:
        stored = tracked / EVIDENCE / opened.videos.video("V1").sha256
    os.chmod(stored, stat.S_IRUSR | stat.S_IWUSR)
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2])
    line = one_line_error(capsys, "case", "tracks", tracked, "V1", "--no-model")
    assert line.startswith(
        f"xfr: error: {tracked}: video V1 (cctv.mp4) cannot be read from the case: "
        "damaged or truncated video"
    )
    assert line.endswith("(run `xfr case verify`)")


# ---- the demo ------------------------------------------------------------------------
def test_demo_cctv_asks_core_for_the_video_demo(tmp_path, capsys, monkeypatch):
    from core.errors import BadInputError

    with pytest.raises(BadInputError, match="choose one"):
        demo.create_demo_case(tmp_path / "both", acev=True, cctv=True)
    assert not (tmp_path / "both").exists()
    seen = {}

    def fake(folder, *, model=None, **options):
        seen.update(options)
        return Case.create(folder, "DEMO-0001", "Demo examiner")

    monkeypatch.setattr(demo, "create_demo_case", fake)
    assert (
        xfr(capsys, "case", "demo", tmp_path / "demo", "--cctv", "--no-compare")[0] == 0
    )
    assert seen == {"cctv": True}


@pytest.mark.slow
def test_demo_cctv_builds_tracks_frames_and_verifies(
    tmp_path, capsys, dlib_model, monkeypatch
):
    import core.cli.case as cli_case

    monkeypatch.setattr(cli_case, "load_model_from_args", lambda args: dlib_model)
    folder = tmp_path / "demo"
    code, _out, err = xfr(capsys, "case", "demo", folder, "--cctv")
    assert code == 0, err
    with Case.open(folder, read_only=True) as opened:
        assert opened.verify().intact
        assert [v.mark for v in opened.videos.videos()] == ["V1"]
        frames = opened.videos.frames("V1")
        assert [f.mark for f in frames] == ["Q1", "Q2"]
        assert frames[0].frame_number == 28  # the astronaut largest and sharpest
        assert {f.track for f in frames} == {frames[0].track}
        assert opened.snapshot_info()["counts"]["comparisons"] > 0
        assert not opened.examination().settings().sequential_unmasking
    code, _out, err = xfr(capsys, "case", "frames", folder, "--check")
    assert code == 0, err


def test_a_frame_of_an_animation_is_taken_listed_and_checked(
    case, tmp_path, fixed_detector, capsys
):
    from tests.core.test_video_frames import write_pages

    pages = tmp_path / "pages.tiff"
    write_pages(pages)
    code, out, _err = xfr(capsys, "case", "add", case, pages, "--role", "probe")
    assert code == 0 and "3 frames" in out
    code, out, err = xfr(capsys, "case", "frames", case, "Q1", "--frame", "1")
    assert code == 0, err
    assert out.startswith("Q2   frame 1 of Q1 (an animation or multi-page image")
    assert "1 face(s) found" in out
    code, out, _err = xfr(capsys, "case", "frames", case, "Q1", "--list", "--json")
    (listed,) = json.loads(out)["frames"]
    assert listed["mark"] == "Q2" and listed["source"] == "image"
    code, out, _err = xfr(capsys, "case", "frames", case, "--check")
    assert code == 0 and "Q2" in out and "intact" in out
    assert "is the frame Q1 is analysed on" in one_line_error(
        capsys, "case", "frames", case, "Q1", "--frame", "0"
    )
    assert "no frame 9" in one_line_error(
        capsys, "case", "frames", case, "Q1", "--frame", "9"
    )
