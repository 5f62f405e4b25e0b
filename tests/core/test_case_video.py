"""Video exhibits in a case (issue 20 item 1 and Tests): intake stores the file
byte-identical or refuses it in one line and changes nothing; frames taken from a
video carry provenance that decodes back to the same pixels; a read-only, an older
(schema 3) and an archived case keep all of it.  Synthetic clips, no dlib: fast."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import av
import numpy as np
import pytest
from case_tampering import BoxDetector, add_tracked_video, short_clip
from PIL import Image

from core.case import workflow
from core.case.archive import export_case, import_case
from core.case.schema import SCHEMA_VERSION
from core.case.store import Case, CaseError
from core.errors import BadInputError
from core.video.decode import extract_frame

CREATED = "2026-11-30T14:05:00.000000Z"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def new_case(folder: Path, name: str = "case") -> Case:
    return Case.create(folder / name, "2026-20", "A. Examiner")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(tmp_path_factory.mktemp("clip"), created=CREATED)


@pytest.fixture(scope="module")
def framed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed case: V1 tracked (T1) and its two best frames Q1, Q2."""
    folder = tmp_path_factory.mktemp("framed")
    with new_case(folder) as case:
        add_tracked_video(case, folder, best=2, created=CREATED)
        return case.folder


@pytest.fixture
def framed_copy(framed: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(framed, target)
    return target


def evidence_files(case: Case) -> list[str]:
    return sorted(os.listdir(case.folder / "evidence"))


# ---- intake ------------------------------------------------------------------------
def test_a_video_is_stored_byte_identical_and_read_only(tmp_path, clip):
    with new_case(tmp_path) as case:
        result = case.add_exhibits([clip], "probe")
        assert result.added == () and result.rejected == ()
        (video,) = result.videos
        assert (video.mark, video.role, video.original_name) == (
            "V1",
            "probe",
            clip.name,
        )
        stored = case.videos.video_path(video)
        assert stored.name == video.sha256 == sha256_of(clip)
        assert stored.read_bytes() == clip.read_bytes()
        assert video.size == clip.stat().st_size
        assert not os.stat(stored).st_mode & 0o222  # read-only
        assert video.info["creation_time"] == CREATED
        assert case.audit_log()[-1].action == "videos.add"
        assert case.verify().intact


def unsupported_codec(folder: Path) -> Path:
    """An AVI whose stream's FourCC names a codec no decoder knows."""
    path = folder / "mpeg4.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for number in range(5):
            rgb = np.full((64, 64, 3), 40 * number, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    assert data.count(b"FMP4") == 2  # the stream header's and the format's FourCC
    unknown = folder / "unknown.avi"
    unknown.write_bytes(data.replace(b"FMP4", b"ZZZZ"))
    return unknown


def bad_videos(folder: Path, clip: Path) -> dict[str, tuple[Path, str]]:
    """Each damaged or false video, with what its refusal must say."""
    data = clip.read_bytes()
    middle = len(data) // 3
    corrupt = data[:middle] + bytes(range(256)) * 8 + data[middle + 2048 :]
    png = folder / "still.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(png)
    made = {
        "corrupt.mp4": (corrupt, "damaged or truncated video"),
        "truncated.mp4": (data[: len(data) // 2], "damaged or truncated video"),
        "empty.mp4": (b"", "file is empty (0 bytes)"),
        "notes.mp4": (b"hello, this is not a video\n" * 20, "not a video file"),
        "still.mp4": (png.read_bytes(), "add a still image as an image exhibit"),
    }
    found = {}
    for name, (content, expected) in made.items():
        (folder / name).write_bytes(content)
        found[name] = (folder / name, expected)
    found["unknown.avi"] = (unsupported_codec(folder), "codec is not supported")
    return found


@pytest.mark.parametrize(
    "name",
    [
        "corrupt.mp4",
        "truncated.mp4",
        "empty.mp4",
        "notes.mp4",
        "still.mp4",
        "unknown.avi",
    ],
)
def test_a_bad_video_is_refused_in_one_line_and_changes_nothing(tmp_path, clip, name):
    path, expected = bad_videos(tmp_path, clip)[name]
    with new_case(tmp_path) as case:
        before = case.audit_log()
        result = case.add_exhibits([path], "probe")
        assert result.added == () and result.videos == ()
        (rejection,) = result.rejected
        assert rejection.path == str(path)
        assert expected in rejection.reason, rejection.reason
        assert "\n" not in rejection.reason and "Traceback" not in rejection.reason
        assert case.exhibits() == [] and case.videos.videos() == []
        assert evidence_files(case) == []  # nothing stored, no partial left
        new = case.audit_log()[len(before) :]
        assert [e.action for e in new] == ["exhibits.refused"]
        assert new[0].details["rejected"] == [
            {"path": str(path), "reason": rejection.reason}
        ]
        assert case.verify().intact


def test_an_image_and_a_video_in_one_intake(tmp_path, clip, astronaut_path):
    with new_case(tmp_path) as case:
        result = case.add_exhibits([astronaut_path, clip], "probe")
        assert [e.mark for e in result.added] == ["Q1"]
        assert [v.mark for v in result.videos] == ["V1"]
        assert result.rejected == ()
        assert sorted(evidence_files(case)) == sorted(
            [sha256_of(astronaut_path), sha256_of(clip)]
        )
        assert case.verify().intact


def test_a_duplicate_video_is_refused(tmp_path, clip):
    with new_case(tmp_path) as case:
        case.add_exhibits([clip], "probe")
        again = case.add_exhibits([clip], "gallery")
        assert again.videos == ()
        (rejection,) = again.rejected
        assert rejection.reason == "already in the case as V1 (same SHA-256)"
        assert [v.mark for v in case.videos.videos()] == ["V1"]


# ---- frames ------------------------------------------------------------------------
def test_frames_become_exhibits_with_their_provenance(framed):
    with Case.open(framed, read_only=True) as case:
        video = case.videos.video("V1")
        frames = case.videos.frames()
        assert [f.mark for f in frames] == ["Q1", "Q2"]
        for frame in frames:
            exhibit = case.exhibit(frame.mark)
            assert exhibit.role == "probe" and exhibit.format == "PNG"
            assert frame.video == "V1" and frame.video_sha256 == video.sha256
            assert (frame.track, frame.track_run) == ("T1", 1)
            assert frame.selection["chosen_by"] == "ranked"
            assert frame.wall_clock is not None  # the clip carries creation_time
            assert case.faces(frame.mark), "the track's face is the frame's face"
            assert case.videos.frame(frame.mark) == frame
        assert frames[0].describe() == (
            f"frame {frames[0].frame_number} of V1 ({frames[0].seconds:.3f} s, "
            "stream 0)"
        )


def test_a_frame_decodes_again_by_number_and_by_pts(framed):
    with Case.open(framed, read_only=True) as case:
        path = case.videos.video_path(case.videos.video("V1"))
        for frame in case.videos.frames():
            _rgb, by_number = extract_frame(path, frame_number=frame.frame_number)
            rgb, by_pts = extract_frame(path, pts=frame.pts)
            assert by_number.frame_sha256 == by_pts.frame_sha256 == frame.frame_sha256
            stored = np.asarray(
                Image.open(case.evidence_path(case.exhibit(frame.mark)))
            )
            assert np.array_equal(stored, rgb)  # the PNG holds the decoded pixels
            check = case.videos.check_frame(frame.mark)
            assert check.intact and check.problems == ()
            assert check.extracted_sha256 == check.stored_sha256 == frame.frame_sha256


def test_check_frame_catches_a_replaced_png(framed_copy):
    with Case.open(framed_copy, read_only=True) as case:
        path = case.evidence_path(case.exhibit("Q1"))
    os.chmod(path, 0o644)
    rgb = np.asarray(Image.open(path)).copy()
    rgb[0, 0] ^= 1  # one pixel
    Image.fromarray(rgb).save(path, format="PNG")
    with Case.open(framed_copy, read_only=True) as case:
        check = case.videos.check_frame("Q1")
        assert not check.intact
        assert check.problems == (
            "the stored image of Q1 was altered: its SHA-256 no longer matches the "
            "one recorded at intake (run `xfr case verify`)",
            "the stored image of Q1 does not hold the recorded pixels",
        )
        assert any(p.startswith("evidence file of Q1") for p in case.verify().problems)
        assert case.videos.check_frame("Q2").intact


def test_a_read_only_case_reads_videos_and_refuses_changes(framed_copy, clip):
    with Case.open(framed_copy, read_only=True) as case:
        assert [v.mark for v in case.videos.videos()] == ["V1"]
        assert [t.label for t in case.videos.tracks("V1")] == ["T1"]
        assert [f.mark for f in case.videos.frames("V1")] == ["Q1", "Q2"]
        assert workflow.check_frames(case)[0].intact
        before = case.head()
        with pytest.raises(CaseError, match="read-only"):
            workflow.track_video(case, "V1", detector=BoxDetector((1, 1, 50, 50)))
        with pytest.raises(CaseError, match="read-only"):
            workflow.add_track_frames(case, "V1", "T1", frames=[3])
        with pytest.raises(CaseError, match="read-only"):
            case.add_exhibits([clip], "gallery")
        assert case.head() == before


# ---- an older case -----------------------------------------------------------------
@pytest.fixture
def schema_3_case(tmp_path, astronaut_path) -> Path:
    """A case as the version before videos wrote it (schema 3): the schema-4
    tables (and the later ones) dropped and the version set back, as
    test_examination does for 2."""
    with Case.create(tmp_path / "old", "2026-3", "A. Examiner") as case:
        case.add_exhibits([astronaut_path], "probe")
        folder = case.folder
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        for table in (
            "gallery_leads",
            "gallery_searches",
            "derivations",
            "frames",
            "tracks",
            "videos",
        ):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version = 3")
        db.commit()
        schema = {r[0] for r in db.execute("SELECT sql FROM sqlite_master")}
    finally:
        db.close()
    assert not any("videos" in str(sql) for sql in schema)
    return folder


def test_a_schema_3_case_reads_read_only_with_no_videos(schema_3_case):
    with Case.open(schema_3_case, read_only=True) as case:
        assert case.videos.videos() == [] and case.videos.frames() == []
        assert case.videos.frame("Q1") is None
        assert case.verify().intact


def test_a_schema_3_case_migrates_when_opened_for_writing(schema_3_case, clip):
    with Case.open(schema_3_case, read_only=True) as case:
        settings = case.examination().settings()
    with Case.open(schema_3_case) as case:
        entry = case.audit_log()[-1]
        assert entry.action == "case.migrate"
        assert (entry.details["from_schema"], entry.details["to_schema"]) == (
            3,
            SCHEMA_VERSION,
        )
        assert "videos" in entry.details["note"]
        assert case.examination().settings() == settings  # kept as they were
        assert case.add_exhibits([clip], "probe").videos[0].mark == "V1"
        assert case.verify().intact
    db = sqlite3.connect(schema_3_case / "case.sqlite")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


# ---- the archive -------------------------------------------------------------------
def test_a_case_with_video_and_frames_round_trips_through_the_archive(framed, tmp_path):
    archive = tmp_path / "case.zip"
    manifest = export_case(framed, archive)
    with Case.open(framed, read_only=True) as case:
        video = case.videos.video("V1")
        frames = case.videos.frames()
        tracks = case.videos.tracks("V1")
    assert f"evidence/{video.sha256}" in manifest["files"]
    result = import_case(archive, tmp_path / "imported")
    assert result.warnings == ()
    with Case.open(tmp_path / "imported", read_only=True) as copy:
        assert copy.verify().intact
        assert copy.videos.video("V1") == video
        assert copy.videos.frames() == frames
        assert copy.videos.tracks("V1") == tracks
        stored = copy.videos.video_path(copy.videos.video("V1"))
        assert sha256_of(stored) == video.sha256
        assert not os.stat(stored).st_mode & 0o222
        assert all(copy.videos.check_frame(f.mark).intact for f in frames)


def test_check_frame_names_an_altered_video_even_where_the_frame_decodes(
    framed_copy,
):
    """Damage away from the frames taken decodes them unchanged: the check must
    still fail, on the video file's own hash."""
    with Case.open(framed_copy, read_only=True) as case:
        video = case.videos.videos()[0]
        path = case.videos.video_path(video)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # near the end of the file, away from the frames' pixels
    path.write_bytes(bytes(data))
    with Case.open(framed_copy, read_only=True) as case:
        for frame in case.videos.frames():
            check = case.videos.check_frame(frame.mark)
            assert not check.intact
            assert check.problems[0].startswith(
                f"the evidence file of {video.mark} was altered"
            )


def test_no_frame_is_taken_from_an_altered_video(framed_copy):
    """extract_frame hashes what it reads: a copy altered away from the frame
    decodes it unchanged, and is still refused by its hash."""
    with Case.open(framed_copy, read_only=True) as case:
        video = case.videos.videos()[0]
        path = case.videos.video_path(video)
        track = workflow.stored_track(case.videos.track("V1", "T1"))
        taken = set(workflow.taken_frames(case, "V1"))
    number = next(n for n in track.frame_numbers if n not in taken)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with Case.open(framed_copy) as case:
        before = len(case.exhibits())
        with pytest.raises(BadInputError, match="no longer matches its intake hash"):
            workflow.add_track_frames(case, "V1", "T1", frames=[number])
        assert len(case.exhibits()) == before
