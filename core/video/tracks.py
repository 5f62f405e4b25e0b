"""Face tracks in a video: faces found on sampled frames, linked frame to frame.

``track_faces`` decodes the video once, in order (``core.video.decode.iter_frames``),
runs the detector on every ``every``-th frame, embeds that frame's faces in one
batch (when an ``embed`` function is given), measures each face's quality
(``core.quality.assess``) and links the faces into tracks.

Linking is one optimal assignment per sampled frame (the Hungarian method,
``scipy.optimize.linear_sum_assignment``) between the open tracks and the frame's
faces, on the cost ``1 - score`` where

* without embeddings, ``score = IoU``;
* with embeddings, ``score = (IoU + max(cosine, 0)) / 2``;

IoU is the larger of the face box's overlap with the track's last box and with
that box moved on at the track's constant velocity (its last two faces, per
sample), so a face moving quickly or missed for a sample or two is still found.
A pair is allowed only through a gate: IoU >= ``min_iou`` OR cosine similarity
>= ``min_similarity``.  A track that finds no face on ``max_gap`` + 1 samples in a
row is closed; a face no track takes starts a new one.  Tracks with fewer than
``min_length`` faces are kept and flagged ``short`` (a passer-by, or a false
detection), never dropped: the examiner decides.

Why this and not norfair or filterpy: a CCTV clip holds a few faces, sampled
frames are far apart (a Kalman filter's motion model has little to work with
between them, and its tuning would need justifying in court), and identity is
best kept by the face embedding, which those libraries do not use.  An optimal
assignment on IoU and embedding similarity, with a constant-velocity guess across
gaps, is small enough to be read and checked in full.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError, Cancelled
from core.faces.detect import Face
from core.progress import ProgressCallback
from core.quality import FaceInput, assess
from core.quality.pixels import VIDEO_FRAME_NO_GRID
from core.video.decode import iter_frames, probe_video, upright
from core.video.provenance import FrameRef, StreamInfo, VideoInfo

ALGORITHM_VERSION = "xfr-tracks-1"  # changes whenever linking could give other tracks

DetectFunction = Callable[[np.ndarray], list[Face]]
# (frame RGB, its faces) -> (number of faces, dimensions), the model's raw output
EmbedFunction = Callable[[np.ndarray, list[Face]], np.ndarray]

# Gates and limits (defaults of `TrackingParameters`).  A face moving at walking
# pace overlaps its box on the next frame at 10 fps by far more than 0.3.
MIN_IOU = 0.3
# Cosine similarity of unit embeddings: dlib's ResNet calls two faces the same
# person below Euclidean distance 0.6, i.e. above cosine 0.82; 0.7 lets a face
# rejoin its track after a gap or a fast move.  Another model: pass its own.
MIN_SIMILARITY = 0.7
MAX_GAP = 2  # samples a track may miss and still continue
MIN_LENGTH = 3  # faces below which a track is flagged short
_EMBEDDINGS_KEPT = 5  # a track's appearance: the mean of its last five embeddings
_BLOCKED = 1e6  # the cost of a pair the gate forbids


@dataclass(frozen=True)
class TrackingParameters:
    """What decides the tracks; recorded with them."""

    every: int = 1
    min_iou: float = MIN_IOU
    min_similarity: float = MIN_SIMILARITY
    max_gap: int = MAX_GAP
    min_length: int = MIN_LENGTH
    uses_embeddings: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TrackingParameters:
        return cls(**record)


@dataclass(frozen=True)
class TrackedFace:
    """One face on one decoded frame, with its quality on that frame."""

    frame: FrameRef
    bbox: tuple[float, float, float, float]  # left, top, right, bottom
    landmarks5: tuple[tuple[float, float], ...]
    landmarks68: tuple[tuple[float, float], ...] | None
    score: float | None
    source: str
    quality: dict[str, Any] | None  # FaceQuality.to_dict(); None: not measured
    quality_note: str = ""  # why quality was not measured
    # the model's raw embedding: kept out of to_dict (the case stores embeddings
    # on their own, with the model that made them)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def frame_number(self) -> int:
        return self.frame.frame_number

    def to_face(self) -> Face:
        return Face(
            bbox=self.bbox,
            landmarks5=np.asarray(self.landmarks5, float).reshape(-1, 2),
            landmarks68=None
            if self.landmarks68 is None
            else np.asarray(self.landmarks68, float),
            score=self.score,
            source=self.source,
        )

    def quality_value(self, measure: str) -> float | None:
        """One measure's figure, None when not available or not measured."""
        if self.quality is None:
            return None
        value = self.quality.get("measures", {}).get(measure, {}).get("value")
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame.to_dict(),
            **self.to_face().to_dict(),
            "quality": self.quality,
            "quality_note": self.quality_note,
        }

    @classmethod
    def from_dict(
        cls, record: dict[str, Any], embedding: np.ndarray | None = None
    ) -> TrackedFace:
        landmarks68 = record.get("landmarks68")
        return cls(
            frame=frame_ref_from_dict(record["frame"]),
            bbox=_box(record["bbox"]),
            landmarks5=_points(record["landmarks5"]),
            landmarks68=None if landmarks68 is None else _points(landmarks68),
            score=None if record.get("score") is None else float(record["score"]),
            source=str(record.get("source", "")),
            quality=record.get("quality"),
            quality_note=str(record.get("quality_note", "")),
            embedding=embedding,
        )


@dataclass(frozen=True)
class Track:
    """One person's faces, frame after frame (as far as the linking can tell)."""

    number: int  # 1, 2, ... in order of first appearance
    faces: tuple[TrackedFace, ...]
    short: bool  # fewer faces than the tracking's min_length

    @property
    def first_frame(self) -> int:
        return self.faces[0].frame_number

    @property
    def last_frame(self) -> int:
        return self.faces[-1].frame_number

    @property
    def first_seconds(self) -> float | None:
        return self.faces[0].frame.seconds

    @property
    def last_seconds(self) -> float | None:
        return self.faces[-1].frame.seconds

    @property
    def frame_numbers(self) -> tuple[int, ...]:
        return tuple(face.frame_number for face in self.faces)

    def face_at(self, frame_number: int) -> TrackedFace:
        for face in self.faces:
            if face.frame_number == frame_number:
                return face
        raise KeyError(frame_number)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_seconds": self.first_seconds,
            "last_seconds": self.last_seconds,
            "short": self.short,
            "faces": [face.to_dict() for face in self.faces],
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Track:
        return cls(
            number=int(record["number"]),
            faces=tuple(TrackedFace.from_dict(face) for face in record["faces"]),
            short=bool(record["short"]),
        )


@dataclass(frozen=True)
class TrackingResult:
    """Every track of one video stream, and how they were made."""

    video_sha256: str
    stream_index: int
    every: int
    parameters: TrackingParameters
    decoder: str
    frames_decoded: int
    frames_sampled: int
    tracks: tuple[Track, ...]
    algorithm_version: str = ALGORITHM_VERSION

    def track(self, number: int) -> Track:
        for track in self.tracks:
            if track.number == number:
                return track
        raise KeyError(number)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TrackingResult:
        return cls(
            video_sha256=str(record["video_sha256"]),
            stream_index=int(record["stream_index"]),
            every=int(record["every"]),
            parameters=TrackingParameters.from_dict(record["parameters"]),
            decoder=str(record["decoder"]),
            frames_decoded=int(record["frames_decoded"]),
            frames_sampled=int(record["frames_sampled"]),
            tracks=tuple(Track.from_dict(track) for track in record["tracks"]),
            algorithm_version=str(record["algorithm_version"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_sha256": self.video_sha256,
            "stream_index": self.stream_index,
            "every": self.every,
            "parameters": self.parameters.to_dict(),
            "decoder": self.decoder,
            "frames_decoded": self.frames_decoded,
            "frames_sampled": self.frames_sampled,
            "algorithm_version": self.algorithm_version,
            "tracks": [track.to_dict() for track in self.tracks],
        }


def track_faces(
    video_path: str | Path,
    *,
    detect: DetectFunction,
    embed: EmbedFunction | None = None,
    every: int = 1,
    stream_index: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    min_iou: float = MIN_IOU,
    min_similarity: float = MIN_SIMILARITY,
    max_gap: int = MAX_GAP,
    min_length: int = MIN_LENGTH,
) -> TrackingResult:
    """Find faces on every ``every``-th frame and link them into tracks.

    ``stream_index`` None: the file's first video stream.  ``progress`` hears of
    every decoded frame; ``cancel`` (checked between frames) stops with
    ``Cancelled``.  A video that cannot be read raises decode's one-line
    ``BadInputError``.
    """
    if every < 1:
        raise BadInputError(f"every must be 1 or more, not {every}")
    if max_gap < 0 or min_length < 1:
        raise BadInputError(
            f"max_gap must be 0 or more and min_length 1 or more, not {max_gap} "
            f"and {min_length}"
        )
    path = Path(video_path)
    info = probe_video(path, verify=False)
    stream = info.streams[0] if stream_index is None else _stream(info, stream_index)
    total = stream.frame_count or 0
    parameters = TrackingParameters(
        every=every,
        min_iou=min_iou,
        min_similarity=min_similarity,
        max_gap=max_gap,
        min_length=min_length,
        uses_embeddings=embed is not None,
    )
    linker = _Linker(parameters)
    decoded = sampled = 0
    # every frame is decoded anyway (inter-frame codecs); taking each one here lets
    # progress and cancel act frame by frame and counts what was decoded
    for rgb, ref in iter_frames(path, stream.index, 1):
        if cancel is not None and cancel():
            raise Cancelled(f"finding face tracks in {path.name} cancelled")
        decoded += 1
        if progress is not None:
            progress(
                decoded,
                max(total, decoded),
                f"finding faces in frame {ref.frame_number}",
            )
        if ref.frame_number % every:
            continue
        sampled += 1
        # faces are found and measured as a player shows the frame (turned by the
        # file's display matrix); the boxes are in those upright pixels
        rgb = upright(rgb, ref.display_rotation)
        faces = list(detect(rgb))
        embeddings = _embeddings(embed, rgb, faces, path)
        tracked = [
            _tracked(
                rgb, ref, face, embedding, f"frame {ref.frame_number} face {i + 1}"
            )
            for i, (face, embedding) in enumerate(zip(faces, embeddings, strict=True))
        ]
        linker.add(sampled - 1, tracked)
    return TrackingResult(
        video_sha256=info.sha256,
        stream_index=stream.index,
        every=every,
        parameters=parameters,
        decoder=info.decoder,
        frames_decoded=decoded,
        frames_sampled=sampled,
        tracks=linker.tracks(),
    )


# ---- linking -------------------------------------------------------------------
@dataclass
class _OpenTrack:
    faces: list[TrackedFace]
    samples: list[int]  # the sample index of each face
    misses: int = 0

    def predicted_box(self, sample: int) -> np.ndarray:
        """The last box moved on at the velocity of the last two faces."""
        last = np.asarray(self.faces[-1].bbox, float)
        if len(self.faces) < 2:
            return last
        before = np.asarray(self.faces[-2].bbox, float)
        velocity = (last - before) / (self.samples[-1] - self.samples[-2])
        predicted: np.ndarray = last + velocity * (sample - self.samples[-1])
        return predicted

    def appearance(self) -> np.ndarray | None:
        vectors = [
            _unit(face.embedding)
            for face in self.faces[-_EMBEDDINGS_KEPT:]
            if face.embedding is not None
        ]
        if not vectors:
            return None
        return _unit(np.mean(vectors, axis=0))


class _Linker:
    """Open tracks, and the optimal assignment of each sample's faces to them."""

    def __init__(self, parameters: TrackingParameters) -> None:
        self.parameters = parameters
        self.open: list[_OpenTrack] = []
        self.closed: list[_OpenTrack] = []

    def add(self, sample: int, faces: Sequence[TrackedFace]) -> None:
        from scipy.optimize import linear_sum_assignment

        taken: set[int] = set()
        matched: set[int] = set()
        if self.open and faces:
            cost = np.full((len(self.open), len(faces)), _BLOCKED)
            for t, track in enumerate(self.open):
                predicted = track.predicted_box(sample)
                last = np.asarray(track.faces[-1].bbox, float)
                appearance = track.appearance()
                for f, face in enumerate(faces):
                    box = np.asarray(face.bbox, float)
                    overlap = max(_iou(predicted, box), _iou(last, box))
                    similarity = (
                        None
                        if appearance is None or face.embedding is None
                        else float(appearance @ _unit(face.embedding))
                    )
                    if overlap < self.parameters.min_iou and (
                        similarity is None
                        or similarity < self.parameters.min_similarity
                    ):
                        continue
                    score = (
                        overlap
                        if similarity is None
                        else (overlap + max(similarity, 0.0)) / 2
                    )
                    cost[t, f] = 1.0 - score
            rows, columns = linear_sum_assignment(cost)
            for t, f in zip(rows.tolist(), columns.tolist(), strict=True):
                if cost[t, f] >= _BLOCKED:
                    continue
                self.open[t].faces.append(faces[f])
                self.open[t].samples.append(sample)
                self.open[t].misses = 0
                matched.add(t)
                taken.add(f)
        still_open = []
        for t, track in enumerate(self.open):
            if t not in matched:
                track.misses += 1
            if track.misses > self.parameters.max_gap:
                self.closed.append(track)
            else:
                still_open.append(track)
        self.open = still_open
        # new tracks left to right, so numbering does not depend on detector order
        for f in sorted(
            (f for f in range(len(faces)) if f not in taken),
            key=lambda f: (faces[f].bbox[0], faces[f].bbox[1]),
        ):
            self.open.append(_OpenTrack(faces=[faces[f]], samples=[sample]))

    def tracks(self) -> tuple[Track, ...]:
        every = self.closed + self.open
        every.sort(key=lambda t: (t.samples[0], t.faces[0].bbox[0], t.faces[0].bbox[1]))
        return tuple(
            Track(
                number=number,
                faces=tuple(track.faces),
                short=len(track.faces) < self.parameters.min_length,
            )
            for number, track in enumerate(every, start=1)
        )


# ---- helpers -------------------------------------------------------------------
def _embeddings(
    embed: EmbedFunction | None, rgb: np.ndarray, faces: list[Face], path: Path
) -> list[np.ndarray | None]:
    if embed is None or not faces:
        return [None] * len(faces)
    vectors = np.asarray(embed(rgb, faces), np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(faces):
        raise BadInputError(
            f"the model gave {vectors.shape[0] if vectors.ndim else 0} embeddings "
            f"for {len(faces)} faces",
            path,
        )
    return list(vectors)


def _tracked(
    rgb: np.ndarray,
    ref: FrameRef,
    face: Face,
    embedding: np.ndarray | None,
    label: str,
) -> TrackedFace:
    quality: dict[str, Any] | None
    try:
        quality = assess(
            FaceInput(
                rgb=rgb,
                bbox=face.bbox,
                landmarks5=face.landmarks5,
                landmarks68=face.landmarks68,
                embedding=embedding,
                name=label,
                no_block_grid=VIDEO_FRAME_NO_GRID,
            ),
            label=label,
        ).to_dict()
        note = ""
    except BadInputError as error:  # e.g. no landmarks: the face is still tracked
        quality, note = None, str(error)
    return TrackedFace(
        frame=ref,
        bbox=_box(face.bbox),
        landmarks5=_points(face.landmarks5),
        landmarks68=None if face.landmarks68 is None else _points(face.landmarks68),
        score=None if face.score is None else float(face.score),
        source=face.source,
        quality=quality,
        quality_note=note,
        embedding=embedding,
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = float(width * height)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]))
    return overlap / (union - overlap) if union > overlap else 0.0


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float64).ravel()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 and math.isfinite(norm) else vector


def _box(values: Sequence[float]) -> tuple[float, float, float, float]:
    left, top, right, bottom = (float(v) for v in values)
    return (left, top, right, bottom)


def _points(values: Any) -> tuple[tuple[float, float], ...]:
    array = np.asarray(values, float).reshape(-1, 2)
    return tuple((float(x), float(y)) for x, y in array)


def _stream(info: VideoInfo, index: int) -> StreamInfo:
    try:
        return info.stream(index)
    except KeyError:
        video = ", ".join(str(s.index) for s in info.streams)
        raise BadInputError(
            f"no video stream {index} (video streams: {video})", info.path
        ) from None


def frame_ref_from_dict(record: dict[str, Any]) -> FrameRef:
    """A ``FrameRef`` back from its ``to_dict`` record."""
    return FrameRef(
        video_sha256=str(record["video_sha256"]),
        stream_index=int(record["stream_index"]),
        frame_number=int(record["frame_number"]),
        pts=None if record.get("pts") is None else int(record["pts"]),
        time_base=Fraction(str(record["time_base"])),
        seconds=None if record.get("seconds") is None else float(record["seconds"]),
        wall_clock=record.get("wall_clock"),
        frame_sha256=str(record["frame_sha256"]),
        shape=_shape(record["shape"]),
        decoder=str(record["decoder"]),
        display_rotation=int(record.get("display_rotation", 0)),
    )


def _shape(values: Sequence[int]) -> tuple[int, int, int]:
    height, width, channels = (int(v) for v in values)
    return (height, width, channels)
