"""The report states where each video exhibit and each frame exhibit came from
(issue 20 item 1): the video's facts and tracking runs once, and per frame what
anyone needs to decode it again and compare hashes.  Tiny model, no dlib: fast."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from case_tampering import add_tracked_video, short_clip
from PIL import Image

from core import wording
from core.case import workflow
from core.case.store import Case
from core.faces.detect import Face
from core.report.api import generate_report
from core.report.content import ReportRequest, gather_content
from core.report.layout import Styles
from core.report.sections import exhibits
from tests.gui.tiny_case import tiny_model_class

CREATED = "2026-11-30T14:05:00.000000Z"
TinyModel = tiny_model_class("tiny-report-video", "cosine", 0.5)
SHOTS = Path("/work/shots20/repv")


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(done.stdout.decode().split())


def make_case(folder: Path) -> Case:
    """V1 tracked (T1), its two best frames Q1 and Q2, and a known image K1."""
    case = Case.create(
        folder / "case", "2026-20", "A. Examiner", sequential_unmasking=False
    )
    add_tracked_video(case, folder, best=2, created=CREATED)
    grey = folder / "k1.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(grey)
    case.add_exhibits([grey], "gallery")
    points = np.array([[130, 80], [70, 80], [100, 110], [80, 140], [120, 140]], float)
    case.set_faces(
        "K1",
        [Face((40.0, 40.0, 160.0, 160.0), points, None, 1.0, "hog")],
        detector="hog",
    )
    return case


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, str, dict]:
    folder = tmp_path_factory.mktemp("report-video")
    with make_case(folder) as case:
        workflow.compare(case, "Q1", "K1", TinyModel())
        facts = {
            "video": case.videos.video("V1"),
            "frames": case.videos.frames(),
            "exhibits": {e.mark: e for e in case.exhibits()},
            "params": case.videos.tracks("V1")[0].params,
        }
        out = folder / "report.pdf"
        generate_report(case, out, ReportRequest(model=TinyModel()))
    # pages to look at, where the screenshot folder exists (the lead's)
    if shutil.which("pdftoppm") and SHOTS.parent.is_dir():
        SHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-r", "60", "-png", str(out), str(SHOTS / "report")],
            check=True,
        )
    return out, pdf_text(out), facts


def test_the_video_exhibit_is_described_once(reported):
    _out, text, facts = reported
    video = facts["video"]
    assert text.count(video.sha256) >= 1
    for fact in (
        wording.VIDEO_EXHIBITS_HEADING,
        "cctv.mp4",
        f"{video.size:,} bytes",
        "container mov,mp4,m4a,3gp,3g2,mj2",
        "stream 0: h264, 320×180, 8 frames, 8 frames/s",
        "duration 1.000 s",
        f"creation time {CREATED} ({wording.CREATION_TIME_CLAIM})",
        f"decoded with {video.info['decoder']}",
    ):
        assert fact in text, fact
    params = facts["params"]
    assert text.count("Tracking run 1 of V1 (tracks T1)") == 1  # once per video
    assert "every 1 frame sampled (8 of 8 decoded), detector hog" in text
    assert "no face model (tracks linked by box overlap only)" in text
    assert f"tracker {params['algorithm_version']}" in text


def test_each_frame_exhibit_carries_its_provenance(reported):
    _out, text, facts = reported
    assert [f.mark for f in facts["frames"]] == ["Q1", "Q2"]
    for frame in facts["frames"]:
        stored = facts["exhibits"][frame.mark].sha256
        for fact in (
            f"frame {frame.frame_number} of V1 (counted from 0 in presentation "
            "order), stream 0",
            f"pts {frame.pts}, time base {frame.time_base} s: {frame.seconds:.3f} s",
            frame.frame_sha256,
            stored,
            f"{frame.track} of tracking run 1",
            f"ranked {frame.selection['rank']} of {frame.selection['of']} faces",
            # the sentence on how to check it, in one piece
            " ".join(
                wording.frame_recheck_sentence(frame.mark, "V1", frame.frame_number)
                .replace("<i>", "")
                .replace("</i>", "")
                .split()
            ),
        ):
            assert fact in text, fact
        assert stored != frame.frame_sha256  # the PNG file's hash, not the pixels'
    wall = facts["frames"][1].wall_clock
    assert wall and f"{wall} ({wording.WALL_CLOCK_CAVEAT})" in text


def test_the_section_sits_under_evidence_received_before_the_analysis(reported):
    _out, text, _facts = reported
    assert (
        text.index("Evidence received")
        < text.index(wording.VIDEO_EXHIBITS_HEADING)
        < text.index(wording.FRAME_PROVENANCE_HEADING)
        < text.index("Analysis and suitability of each image")
    )


def test_the_per_image_analysis_names_the_frame_beside_its_quality(reported):
    _out, text, facts = reported
    frame = facts["frames"][0]
    assert wording.frame_quality_note(frame.mark, frame.describe()) in text


def test_a_case_without_video_prints_no_video_section(tmp_path, astronaut_rgb):
    path = tmp_path / "a.png"
    Image.fromarray(astronaut_rgb).save(path)
    with Case.create(tmp_path / "case", "1", "A", sequential_unmasking=False) as case:
        case.add_exhibits([path], "probe")
        content = gather_content(case, ReportRequest())
    assert content.videos == ()
    assert exhibits.lay_out_videos(content, Styles(content.texts)) == []


def test_examiner_chosen_and_untracked_frames_say_so():
    assert wording.frame_selection_words({"chosen_by": "examiner"}) == (
        "chosen by the examiner"
    )
    picked = {"chosen_by": "examiner", "rank": 3, "of": 9, "ranking": {}}
    assert wording.frame_selection_words(picked) == (
        "chosen by the examiner (ranked 3 of 9 faces of the track by the best-frame "
        "ranking)"
    )
    assert wording.frame_selection_words({}) == "not recorded"
    ranked = {"chosen_by": "ranked", "rank": 2, "of": 9, "ranking": {"score": 0.5}}
    assert wording.frame_selection_words(ranked) == (
        "ranked 2 of 9 faces of the track by the best-frame ranking, score 0.500"
    )


def test_a_video_without_frames_is_listed(tmp_path):
    with Case.create(tmp_path / "case", "1", "A", sequential_unmasking=False) as case:
        case.add_exhibits([short_clip(tmp_path)], "probe")
        content = gather_content(case, ReportRequest())
    assert content.exhibits == () and len(content.videos) == 1
    story = exhibits.lay_out(content, Styles(content.texts))
    text = " ".join(getattr(f, "text", "") for f in story)
    assert "No image exhibits were added to this case." in text
    assert wording.VIDEO_EXHIBITS_HEADING in text
    assert wording.FRAME_PROVENANCE_HEADING not in text  # no frames taken yet


def test_the_ranking_score_is_printed_as_the_sum_it_is():
    """A reader can add the printed terms up to the printed score."""
    import re

    from core.report.sections.exhibits import _terms

    selection = {
        "chosen_by": "ranked",
        "rank": 1,
        "min_separation": 5,
        "ranking": {
            "score": 1.4455,
            "terms": {"size": 0.91, "sharpness": 0.608, "pose": 0.145,
                      "exposure": 0.0, "truncation": 0.0},
            "weights": {"size": 1.0, "sharpness": 1.0, "pose": 0.5,
                        "exposure": 0.5, "truncation": 1.0},
            "missing": ["truncation"],
        },
    }  # fmt: skip
    text = _terms(selection)
    total = 0.0
    for sign, weight, value in re.findall(r"([+−]?) ?([\d.]+) × \w+ ([\d.]+)", text):
        total += (-1 if sign == "−" else 1) * float(weight) * float(value)
    assert total == pytest.approx(1.4455, abs=1e-3) and "= 1.446" in text
    assert "counted at their worst: truncation" in text
    assert "at least 5 frames apart" in text
