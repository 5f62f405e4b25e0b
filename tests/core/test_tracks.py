"""Face tracks, best frames and the CCTV-like synthetic clip (issue 20 items 2, 4).

Fast tests drive ``track_faces`` with a stub detector that returns the clip's known
face boxes (with jitter, dropped frames, false detections, two faces that meet and
turn back), so the linking itself is tested; the stub finds which frame it was
given from the frame's pixels.  Slow tests run dlib's detector and ResNet on the
clip.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.errors import BadInputError, Cancelled
from core.faces.detect import Face
from core.video.best_frames import (
    DEFAULT_WEIGHTS,
    RankingWeights,
    best_frames,
    rank_frames,
)
from core.video.decode import iter_frames
from core.video.synthetic import SyntheticClip, write_cctv_clip
from core.video.tracks import (
    MAX_GAP,
    Track,
    TrackedFace,
    TrackingResult,
    track_faces,
)

# Each photo's five landmarks as fractions of its face box (dlib's on the photo).
_LANDMARK_SHARES = {
    1: ((0.879, 0.308), (0.692, 0.319), (0.220, 0.275), (0.407, 0.297), (0.538, 0.648)),
    2: ((0.759, 0.257), (0.594, 0.273), (0.139, 0.310), (0.310, 0.294), (0.492, 0.604)),
}
Box = tuple[float, float, float, float]
# frame number -> [(person, box)]: what the stub detector "finds"
Plan = dict[int, list[tuple[int, Box]]]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    return write_cctv_clip(tmp_path_factory.mktemp("cctv") / "cctv.mp4")


@pytest.fixture(scope="module")
def frame_numbers(clip: SyntheticClip) -> dict[str, int]:
    """Decoded frame SHA-256 -> frame number, so a stub knows its frame."""
    return {ref.frame_sha256: ref.frame_number for _, ref in iter_frames(clip.path)}


def truth_plan(clip: SyntheticClip) -> Plan:
    plan: Plan = {}
    for person in clip.people:
        for number, box in person.boxes.items():
            plan.setdefault(number, []).append((person.number, box))
    return plan


def face_of(person: int, box: Box) -> Face:
    left, top, right, bottom = box
    side = right - left
    points = np.array(
        [
            (left + x * side, top + y * (bottom - top))
            for x, y in _LANDMARK_SHARES[person]
        ]
    )
    return Face(bbox=box, landmarks5=points, score=1.0, source=f"stub person {person}")


def person_of(face: TrackedFace | Face) -> int:
    return int(face.source.rsplit(" ", 1)[1])


def stub_detector(
    plan: Plan, frame_numbers: dict[str, int], calls: list[int] | None = None
) -> Callable[[np.ndarray], list[Face]]:
    def detect(rgb: np.ndarray) -> list[Face]:
        number = frame_numbers[hashlib.sha256(rgb.tobytes()).hexdigest()]
        if calls is not None:
            calls.append(number)
        return [face_of(person, box) for person, box in plan.get(number, [])]

    return detect


def stub_embed(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """One fixed direction per person (as a face model would, roughly)."""
    vectors = {1: np.array([1.0, 0.1, 0.0, 0.0]), 2: np.array([0.0, 0.1, 1.0, 0.0])}
    return np.stack([3.0 * vectors[person_of(face)] for face in faces])


def jittered(plan: Plan, pixels: float, seed: int = 1) -> Plan:
    rng = np.random.default_rng(seed)
    return {
        number: [
            (
                person,
                tuple(
                    float(v) for v in np.asarray(box) + rng.uniform(-pixels, pixels, 4)
                ),
            )
            for person, box in faces
        ]
        for number, faces in plan.items()
    }


def without(plan: Plan, person: int, frames: set[int]) -> Plan:
    return {
        number: [(p, box) for p, box in faces if not (p == person and number in frames)]
        for number, faces in plan.items()
    }


def identities(track: Track) -> set[int]:
    return {person_of(face) for face in track.faces}


# ---- the synthetic clip ----------------------------------------------------------
def test_clip_truth_is_known_and_the_file_small(clip: SyntheticClip) -> None:
    walker, passer = clip.people
    assert clip.frame_count == 40 and clip.size == (640, 360)
    assert clip.codec in ("h264", "mpeg4")  # mpeg4 where the wheel lacks libx264
    assert walker.largest_frame == walker.sharpest_frame == 28
    assert walker.blur_px[28] == 0 and all(walker.blur_px[n] > 1 for n in range(28))
    sides = [walker.boxes[n][2] - walker.boxes[n][0] for n in range(29)]
    assert sides == sorted(sides) and sides[-1] > 2.5 * sides[0]  # she walks closer
    assert passer.sharpest_frame == 16 and passer.blur_px[16] == 0
    assert walker.visible_frames == tuple(range(32))  # then she steps out of view
    assert passer.visible_frames == tuple(range(40))
    assert Path(clip.path).stat().st_size < 500_000
    # the landmarks drawn are the photo's, moved with the face box
    for person in clip.people:
        assert set(person.landmarks5) == set(person.boxes)
        for number, box in person.boxes.items():
            expected = face_of(person.number, box).landmarks5
            assert np.allclose(person.landmarks5[number], expected, atol=0.6)
    json.dumps(clip.to_dict())


def test_clip_is_deterministic_for_a_seed(tmp_path: Path, clip: SyntheticClip) -> None:
    def hashes(path: str) -> list[str]:
        return [ref.frame_sha256 for _, ref in iter_frames(path)]

    again = write_cctv_clip(tmp_path / "again.mp4", seed=0)
    other = write_cctv_clip(tmp_path / "other.mp4", seed=1)
    assert hashes(again.path) == hashes(clip.path)
    assert again.to_dict() | {"path": ""} == clip.to_dict() | {"path": ""}
    assert hashes(other.path)[0] != hashes(clip.path)[0]


@pytest.mark.parametrize(
    ("codec", "name"), [("mjpeg", "cctv.avi"), ("mpeg4", "cctv.mkv")]
)
def test_clip_in_other_codecs(tmp_path: Path, codec: str, name: str) -> None:
    written = write_cctv_clip(tmp_path / name, codec=codec, seconds=1.0)  # type: ignore[arg-type]
    frames = list(iter_frames(written.path))
    assert written.codec == codec and len(frames) == written.frame_count == 10


def test_clip_refuses_an_unknown_codec(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown codec 'vp9'"):
        write_cctv_clip(tmp_path / "x.mp4", codec="vp9")  # type: ignore[arg-type]


# ---- linking, with the stub detector ---------------------------------------------
def test_one_track_per_person_through_jitter_and_gaps(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    # the passer missed on up to MAX_GAP samples in a row, at three places
    dropped = {5, 6, 12, 20, 21}
    plan = without(jittered(truth_plan(clip), 3.0), 2, dropped)
    result = track_faces(clip.path, detect=stub_detector(plan, frame_numbers))
    assert [identities(t) for t in result.tracks] == [{1}, {2}]
    walker, passer = result.tracks
    assert walker.frame_numbers == clip.person(1).visible_frames
    assert passer.frame_numbers == tuple(
        n for n in clip.person(2).visible_frames if n not in dropped
    )
    assert not walker.short and not passer.short
    assert (walker.first_frame, walker.last_frame) == (0, 31)
    assert walker.first_seconds == 0.0 and walker.last_seconds == pytest.approx(3.1)
    assert result.frames_decoded == result.frames_sampled == 40


def test_a_gap_longer_than_max_gap_starts_a_new_track(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    gap = set(range(10, 10 + MAX_GAP + 1))
    plan = without(truth_plan(clip), 2, gap)
    result = track_faces(clip.path, detect=stub_detector(plan, frame_numbers))
    passer = [t for t in result.tracks if identities(t) == {2}]
    assert [(t.first_frame, t.last_frame) for t in passer] == [(0, 9), (13, 39)]
    # with max_gap one larger it is one track again
    longer = track_faces(
        clip.path, detect=stub_detector(plan, frame_numbers), max_gap=MAX_GAP + 1
    )
    assert len([t for t in longer.tracks if identities(t) == {2}]) == 1


def test_short_tracks_are_flagged_not_dropped(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    plan = truth_plan(clip)
    plan[7] = [*plan[7], (1, (560.0, 10.0, 620.0, 70.0))]  # a false detection
    result = track_faces(
        clip.path, detect=stub_detector(plan, frame_numbers), min_length=3
    )
    assert [(t.frame_numbers, t.short) for t in result.tracks if len(t.faces) < 3] == [
        ((7,), True)
    ]
    assert [t.number for t in result.tracks] == [1, 2, 3]
    # numbered by first appearance: the false detection, first seen at frame 7, last
    assert result.tracks[2].frame_numbers == (7,)
    assert sum(not t.short for t in result.tracks) == 2


def test_faces_that_meet_and_turn_back_keep_their_identity_by_embedding(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    # two faces walk toward each other, meet at frame 10 and each turns back: by
    # boxes alone that looks like two faces passing through each other
    plan: Plan = {}
    for number in range(21):
        offset = 20.0 * (10 - abs(number - 10))
        plan[number] = [
            (1, (100.0 + offset, 120.0, 200.0 + offset, 220.0)),
            (2, (500.0 - offset, 125.0, 600.0 - offset, 225.0)),
        ]
    detect = stub_detector(plan, frame_numbers)
    with_embeddings = track_faces(clip.path, detect=detect, embed=stub_embed)
    assert [identities(t) for t in with_embeddings.tracks] == [{1}, {2}]
    assert all(len(t.faces) == 21 for t in with_embeddings.tracks)
    assert with_embeddings.parameters.uses_embeddings
    # the same boxes without embeddings swap identities: the test above is not empty
    boxes_only = track_faces(clip.path, detect=detect)
    assert any(len(identities(t)) == 2 for t in boxes_only.tracks)


def test_every_nth_frame_is_sampled(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    calls: list[int] = []
    result = track_faces(
        clip.path, detect=stub_detector(truth_plan(clip), frame_numbers, calls), every=3
    )
    assert calls == list(range(0, 40, 3))
    assert (result.frames_decoded, result.frames_sampled, result.every) == (40, 14, 3)
    assert all(n % 3 == 0 for t in result.tracks for n in t.frame_numbers)
    assert [identities(t) for t in result.tracks if not t.short] == [{1}, {2}]
    with pytest.raises(BadInputError, match="every must be 1 or more"):
        track_faces(clip.path, detect=stub_detector({}, frame_numbers), every=0)


def test_cancel_stops_tracking(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    seen: list[tuple[int, int, str]] = []
    with pytest.raises(Cancelled, match=r"finding face tracks in cctv\.mp4 cancelled"):
        track_faces(
            clip.path,
            detect=stub_detector(truth_plan(clip), frame_numbers),
            progress=lambda done, total, words: seen.append((done, total, words)),
            cancel=lambda: len(seen) >= 5,
        )
    assert seen[0] == (1, 40, "finding faces in frame 0") and len(seen) == 5


def test_a_bad_video_gives_decodes_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(BadInputError) as raised:
        track_faces(fake, detect=lambda rgb: [])
    assert str(raised.value).count("\n") == 0
    assert "clip.mp4" in str(raised.value) and "not a video file" in str(raised.value)


def test_quality_is_measured_for_every_face_and_records_round_trip(
    clip: SyntheticClip, frame_numbers: dict[str, int]
) -> None:
    result = track_faces(
        clip.path,
        detect=stub_detector(truth_plan(clip), frame_numbers),
        embed=stub_embed,
    )
    face = result.tracks[0].faces[0]
    assert face.quality is not None and face.quality["rating"] in (
        "good",
        "limited",
        "poor",
    )
    assert face.quality_value("inter_eye_distance") == pytest.approx(
        0.47 * (clip.person(1).boxes[0][2] - clip.person(1).boxes[0][0]), rel=0.1
    )
    assert face.embedding is not None
    record = json.loads(json.dumps(result.to_dict()))
    assert "embedding" not in record["tracks"][0]["faces"][0]
    assert record["algorithm_version"] == result.algorithm_version
    assert (
        record["video_sha256"]
        == hashlib.sha256(Path(clip.path).read_bytes()).hexdigest()
    )
    assert TrackingResult.from_dict(record).to_dict() == record
    for track_record, track in zip(record["tracks"], result.tracks, strict=True):
        back = Track.from_dict(track_record)
        assert back.to_dict() == track.to_dict()
        assert back.faces[0].frame == track.faces[0].frame
    assert isinstance(result, TrackingResult)


# ---- best frames -------------------------------------------------------------------
@pytest.fixture(scope="module")
def true_tracks(clip: SyntheticClip, frame_numbers: dict[str, int]) -> TrackingResult:
    return track_faces(clip.path, detect=stub_detector(truth_plan(clip), frame_numbers))


def test_the_best_frame_is_the_known_largest_and_sharpest(
    clip: SyntheticClip, true_tracks: TrackingResult
) -> None:
    walker, passer = true_tracks.tracks
    assert abs(rank_frames(walker)[0].frame_number - clip.person(1).largest_frame) <= 1
    assert abs(rank_frames(passer)[0].frame_number - clip.person(2).sharpest_frame) <= 1


def test_ranking_terms_move_the_right_way(
    clip: SyntheticClip, true_tracks: TrackingResult
) -> None:
    walker, passer = true_tracks.tracks
    by_frame = {r.frame_number: r for r in rank_frames(passer)}
    sharp, blurred = by_frame[16], by_frame[39]  # blur 0 px and 15 px, same size
    assert clip.person(2).blur_px[39] == 15
    assert sharp.terms["sharpness"] > blurred.terms["sharpness"] + 0.1
    assert sharp.rank < blurred.rank and sharp.score > blurred.score
    walking = {r.frame_number: r for r in rank_frames(walker)}
    assert (
        walking[28].terms["size"] > walking[14].terms["size"] > walking[0].terms["size"]
    )
    assert all(0.0 <= v <= 1.0 for r in walking.values() for v in r.terms.values())
    # the weights used are recorded with every ranked frame
    size_only = RankingWeights(sharpness=0.0, pose=0.0, exposure=0.0, truncation=0.0)
    assert rank_frames(passer, weights=size_only)[0].weights == size_only
    assert sharp.to_dict()["weights"] == DEFAULT_WEIGHTS.to_dict()
    json.dumps(sharp.to_dict())


def test_a_frame_whose_pose_cannot_be_measured_never_ranks_first(
    true_tracks: TrackingResult,
) -> None:
    """Pose is missing exactly when the landmarks fit no face: counting the
    missing penalty as 0 would rank the least trustworthy frame first."""
    walker = true_tracks.tracks[0]
    best = rank_frames(walker)[0]
    measures = dict(best.face.quality["measures"])
    for name in ("yaw", "pitch", "truncation"):
        measures[name] = {**measures[name], "value": None}
    unmeasured = replace(best.face, quality={**best.face.quality, "measures": measures})
    faces = tuple(unmeasured if f is best.face else f for f in walker.faces)
    again = {r.frame_number: r for r in rank_frames(replace(walker, faces=faces))}
    hidden = again[best.frame_number]
    assert hidden.terms["pose"] == 1.0 and hidden.terms["truncation"] == 1.0
    assert set(hidden.missing) >= {"yaw", "pitch", "truncation"}
    assert hidden.rank > 1 and hidden.score < best.score


def test_best_frames_keep_apart(true_tracks: TrackingResult) -> None:
    passer = true_tracks.tracks[1]
    ranked = [r.frame_number for r in rank_frames(passer)]
    chosen = [r.frame_number for r in best_frames(passer, 3, min_separation=5)]
    assert len(chosen) == 3 and chosen[0] == ranked[0]
    assert all(abs(a - b) >= 5 for a in chosen for b in chosen if a != b)
    assert [r.frame_number for r in best_frames(passer, 3, min_separation=1)] == ranked[
        :3
    ]
    assert len(best_frames(passer, 100, min_separation=10)) <= 4  # 40 frames, 10 apart
    with pytest.raises(ValueError, match="k must be 1 or more"):
        best_frames(passer, 0)


# ---- with dlib ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.dlib
def test_dlib_tracks_the_clip_and_finds_the_best_frames(
    clip: SyntheticClip, dlib_model: object
) -> None:
    from core.faces.align import chip_for_model
    from core.faces.detect import FaceDetector
    from core.models import FaceModel

    assert isinstance(dlib_model, FaceModel)
    model = dlib_model

    def embed(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        chips = [chip_for_model(rgb, face, model.preprocessing).chip for face in faces]
        return model.embed_chips(np.stack(chips))

    result = track_faces(clip.path, detect=FaceDetector.shared().detect, embed=embed)
    long_tracks = [t for t in result.tracks if not t.short]
    assert len(long_tracks) == 2
    for track, person in zip(long_tracks, clip.people, strict=True):
        # every face of the track lies on the person's drawn face box
        for face in track.faces:
            truth = person.boxes.get(face.frame_number)
            if truth is not None:
                assert _iou(face.bbox, truth) > 0.4
                # dlib's landmarks land on the drawn ones (within a tenth of the box)
                error = np.abs(
                    face.to_face().landmarks5 - person.landmarks5[face.frame_number]
                )
                assert error.max() < 0.1 * (truth[2] - truth[0])
        assert len(track.faces) >= 0.6 * len(person.visible_frames)
    walker, passer = long_tracks
    assert (
        abs(best_frames(walker, 1)[0].frame_number - clip.person(1).largest_frame) <= 1
    )
    assert (
        abs(best_frames(passer, 1)[0].frame_number - clip.person(2).sharpest_frame) <= 1
    )


def _iou(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return width * height / (union - width * height)
