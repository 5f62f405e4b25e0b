"""Video exhibits, the face tracks found in them, and the frames taken from them.

A video is stored byte-identical like any image (``evidence/<sha256>``, read-only)
and gets a mark of its own (V1, V2, ...).  Tracking a video is recorded as a *run*
of tracks (``tracks``; re-tracking with other settings adds a run, never replaces
one).  A frame the examiner takes from a video becomes an ordinary image exhibit
(Q… or K…, the video's role), so detection, comparison, explanation and the report
treat it like a still; its evidence file is a lossless PNG of the decoded pixels, and
its ``frames`` row records where it came from: the video's SHA-256, the stream, the
frame number, the presentation timestamp, the wall-clock time when the container
carries one, the decoder, and the SHA-256 of the decoded RGB24 bytes.  ``check_frame``
decodes the frame from the stored video again and compares those hashes.

This module is storage: tracks are kept as the plain JSON the tracker wrote
(``core.video.tracks`` reads them back); finding them is ``core.case.workflow``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.case import state as bound
from core.case.intake import (
    altered_problem,
    file_problem,
    png_bytes,
    removing_on_failure,
    sha256_bytes,
    stage_bytes,
)
from core.case.layout import EVIDENCE
from core.case.records import (
    CaseError,
    Exhibit,
    Video,
    _malformed_as_case_error,
    json_default,
    now,
    video_from_row,
)
from core.errors import BadInputError, printable
from core.imageio import load_image
from core.video.decode import extract_frame, rotation_words, upright
from core.video.provenance import FrameRef, rgb_sha256
from core.video.stills import still_frame

if TYPE_CHECKING:
    from core.case.store import Case

TRACK_PREFIX = "T"


@dataclass(frozen=True)
class VideoFrame:
    """Where a frame exhibit came from: enough to decode it again and compare."""

    mark: str  # the frame's own exhibit mark (Q3, K2)
    video: str  # the video's mark (V1)
    video_sha256: str
    stream_index: int
    frame_number: int  # from 0, in presentation order
    pts: int | None
    time_base: str  # "num/den" seconds per pts tick
    seconds: float | None
    wall_clock: str | None
    frame_sha256: str  # of the decoded RGB24 bytes
    decoder: str
    track: str | None  # "T2" (of run 1) when taken from a track
    track_run: int | None
    selection: Mapping[str, Any] = field(default_factory=dict)
    display_rotation: int = 0  # degrees counter-clockwise the image was turned
    # "video", or "image": a frame of a multi-frame image exhibit (``video`` is
    # then that exhibit's mark, ``video_sha256`` its SHA-256)
    source: str = "video"

    def describe(self) -> str:
        """One line for the examiner: "frame 41 of V1 (4.100 s, stream 0)"."""
        if self.source == STILL_SOURCE:
            return (
                f"frame {self.frame_number} of {self.video} (an animation or "
                "multi-page image, counted from 0)"
            )
        when = "" if self.seconds is None else f"{self.seconds:.3f} s, "
        turned = rotation_words(self.display_rotation)
        return (
            f"frame {self.frame_number} of {self.video} ({when}stream "
            f"{self.stream_index}{'; ' + turned if turned else ''})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "selection": dict(self.selection)}


@dataclass(frozen=True)
class StoredTrack:
    """One face track of a tracking run, as stored."""

    id: int
    video: str  # the video's mark
    run: int
    number: int
    params: Mapping[str, Any]  # how the run was made (sampling, detector, model…)
    content: Mapping[str, Any]  # the tracker's own record of the track (JSON)
    created: str
    created_by: str

    @property
    def label(self) -> str:
        return f"{TRACK_PREFIX}{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "label": self.label,
            "params": dict(self.params),
            "content": dict(self.content),
        }


@dataclass(frozen=True)
class NewFrame:
    """A decoded frame to add as an exhibit: its pixels and where they came from."""

    rgb: np.ndarray = field(repr=False)  # (height, width, 3) uint8
    ref: FrameRef
    track_id: int | None = None
    selection: Mapping[str, Any] = field(default_factory=dict)  # rank, score, why


@dataclass(frozen=True)
class FrameCheck:
    """A frame decoded again from its video and compared with what was recorded."""

    mark: str
    intact: bool
    problems: tuple[str, ...]
    recorded_sha256: str
    extracted_sha256: str | None  # None when it could not be extracted
    stored_sha256: str | None  # of the stored PNG's pixels

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Source:
    """Where frames are taken from: a video or a multi-frame image exhibit."""

    mark: str
    role: str  # the frames' exhibits get the source's role
    column: str  # the frames row's column naming it
    id: int
    kind: str  # "video" or "image", for the audit entry and the note


@_malformed_as_case_error("tracks")
def _track_from_row(row: Any) -> StoredTrack:
    return StoredTrack(
        id=row["id"],
        video=row["video_mark"],
        run=row["run"],
        number=row["number"],
        params=json.loads(row["params"]),
        content=json.loads(row["content"]),
        created=row["created"],
        created_by=row["created_by"],
    )


@_malformed_as_case_error("frames")
def _frame_from_row(row: Any) -> VideoFrame:
    return VideoFrame(
        mark=row["mark"],
        video=row["video_mark"],
        video_sha256=row["video_sha256"],
        stream_index=row["stream_index"],
        frame_number=row["frame_number"],
        pts=row["pts"],
        time_base=row["time_base"],
        seconds=row["seconds"],
        wall_clock=row["wall_clock"],
        frame_sha256=row["frame_sha256"],
        decoder=row["decoder"],
        track=None if row["track_number"] is None else f"T{row['track_number']}",
        track_run=row["track_run"],
        selection=json.loads(row["selection"]),
        display_rotation=row["display_rotation"],
        source="video" if row["video_id"] is not None else STILL_SOURCE,
    )


# a frame's source is a video or a multi-frame image exhibit (``sources``)
_FRAME_QUERY = (
    "SELECT frames.*, exhibits.mark AS mark, "
    "COALESCE(videos.mark, sources.mark) AS video_mark, "
    "COALESCE(videos.sha256, sources.sha256) AS video_sha256, "
    "tracks.number AS track_number, tracks.run AS track_run FROM frames "
    "JOIN exhibits ON exhibits.id = frames.exhibit_id "
    "LEFT JOIN videos ON videos.id = frames.video_id "
    "LEFT JOIN exhibits AS sources ON sources.id = frames.source_exhibit_id "
    "LEFT JOIN tracks ON tracks.id = frames.track_id"
)
STILL_SOURCE = "image"  # VideoFrame.source of a frame of a multi-frame image
_TRACK_QUERY = (
    "SELECT tracks.*, videos.mark AS video_mark FROM tracks "
    "JOIN videos ON videos.id = tracks.video_id"
)


class CaseVideos:
    """The video exhibits of one open case, their tracks and their frames."""

    def __init__(self, case: Case) -> None:
        self.case = case

    # -- storage -------------------------------------------------------------------
    def _has_tables(self) -> bool:
        """An older case opened read-only is not migrated: it has no video tables."""
        return "videos" in bound.present_tables(self.case._db.execute)

    def _checked(self, table: str, rows: Sequence[Any]) -> list[Any]:
        # every row read is checked against the audit log, as exhibits are
        return list(self.case._audited.checked(table, rows))

    def _writable(self) -> None:
        if self.case.read_only:
            raise CaseError("the case is open read-only", self.case.folder)

    # -- videos --------------------------------------------------------------------
    def videos(self, role: str | None = None) -> list[Video]:
        if not self._has_tables():
            return []
        sql = "SELECT * FROM videos" + (" WHERE role = ?" if role else "")
        rows = self.case._db.execute(sql + " ORDER BY id", (role,) if role else ())
        return [video_from_row(r) for r in self._checked("videos", list(rows))]

    def video(self, mark: str) -> Video:
        found = [v for v in self.videos() if v.mark == mark.strip().upper()]
        if not found:
            marks = ", ".join(v.mark for v in self.videos()) or "none yet"
            raise BadInputError(f"no video {mark!r} in this case (videos: {marks})")
        return found[0]

    def stream_info(self, video: Video, stream: int | None = None) -> dict[str, Any]:
        """What intake recorded of a stream (``video_stream``'s by default)."""
        index = self.video_stream(video, stream)
        return next(dict(s) for s in video.info["streams"] if int(s["index"]) == index)

    def video_path(self, video: Video) -> Path:
        return self.case.folder / EVIDENCE / video.sha256

    def video_stream(self, video: Video, stream: int | None = None) -> int:
        """The stream to read: ``stream`` if the video has it, else its first
        stream with a frame that decodes (its first, when none is recorded)."""
        streams = list(video.info.get("streams", []))
        indices = [int(s["index"]) for s in streams]
        if not indices:
            raise CaseError(f"video {video.mark} records no video stream")
        if stream is None:
            decodable = [int(s["index"]) for s in streams if s.get("decoded_frames")]
            return decodable[0] if decodable else indices[0]
        if stream not in indices:
            listed = ", ".join(map(str, indices))
            raise BadInputError(
                f"video {video.mark} has no video stream {stream} (streams: {listed})"
            )
        return stream

    # -- tracks --------------------------------------------------------------------
    def record_tracks(
        self,
        mark: str,
        tracks: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
    ) -> list[StoredTrack]:
        """Store one tracking run of video ``mark``: ``tracks`` are the tracker's
        records (numbered 1, 2, ... in order), ``params`` how they were found."""
        self._writable()
        video = self.video(mark)
        run = 1 + max((t.run for t in self._all_tracks(video.mark)), default=0)
        stamp = now()
        params_text = json.dumps(params, default=json_default, sort_keys=True)
        with self.case._change(
            "tracks.record",
            {
                "video": video.mark,
                "run": run,
                "params": dict(params),
                "tracks": [
                    {
                        "track": f"{TRACK_PREFIX}{number}",
                        "faces": len(track.get("faces", ())),
                        "first_frame": track.get("first_frame"),
                        "last_frame": track.get("last_frame"),
                    }
                    for number, track in enumerate(tracks, start=1)
                ],
            },
        ) as db:
            for number, track in enumerate(tracks, start=1):
                db.execute(
                    "INSERT INTO tracks (video_id, run, number, params, content, "
                    "created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        video.id,
                        run,
                        number,
                        params_text,
                        json.dumps(track, default=json_default, sort_keys=True),
                        stamp,
                        self.case.user,
                    ),
                )
        return self.tracks(video.mark, run=run)

    def _all_tracks(self, mark: str) -> list[StoredTrack]:
        if not self._has_tables():
            return []
        rows = self.case._db.execute(
            _TRACK_QUERY + " WHERE videos.mark = ? ORDER BY tracks.run, tracks.number",
            (mark.strip().upper(),),
        )
        return [_track_from_row(r) for r in self._checked("tracks", list(rows))]

    def runs(self, mark: str) -> list[int]:
        return sorted({t.run for t in self._all_tracks(self.video(mark).mark)})

    def tracks(self, mark: str, *, run: int | None = None) -> list[StoredTrack]:
        """The tracks of video ``mark`` from run ``run`` (default: the latest)."""
        every = self._all_tracks(self.video(mark).mark)
        if not every:
            return []
        wanted = max(t.run for t in every) if run is None else run
        chosen = [t for t in every if t.run == wanted]
        if not chosen:
            runs = ", ".join(str(r) for r in sorted({t.run for t in every}))
            raise BadInputError(
                f"video {mark} has no tracking run {run} (runs: {runs})"
            )
        return chosen

    def track(
        self, mark: str, label: str | int, *, run: int | None = None
    ) -> StoredTrack:
        """Track ``T2`` (or ``2``) of video ``mark``'s latest run (or ``run``)."""
        text = str(label).strip().upper().removeprefix(TRACK_PREFIX)
        tracks = self.tracks(mark, run=run)
        if not tracks:
            raise BadInputError(
                f"video {mark} has not been tracked yet (run `xfr case tracks` first)"
            )
        for track in tracks:
            if text == str(track.number):
                return track
        listed = ", ".join(t.label for t in tracks)
        raise BadInputError(
            f"no track {label!r} in video {mark}'s run {tracks[0].run} "
            f"(tracks: {listed})"
        )

    # -- frames --------------------------------------------------------------------
    def add_frames(self, mark: str, frames: Sequence[NewFrame]) -> list[Exhibit]:
        """Add decoded frames of video ``mark`` as image exhibits of its role.

        Each frame's pixels are checked against its recorded hash and against the
        video's hash before anything is stored; all frames go in one transaction,
        or none.  A frame whose pixels are already an exhibit is refused.
        """
        self._writable()
        video = self.video(mark)
        if not frames:
            raise BadInputError("no frames to add")
        track_ids = {t.id for t in self._all_tracks(video.mark)}
        for frame in frames:
            self._check_new_frame(video.mark, video.sha256, frame, track_ids)
        return self._store_frames(
            _Source(video.mark, video.role, "video_id", video.id, "video"),
            video.original_name,
            frames,
        )

    def _store_frames(
        self, source: _Source, source_name: str, frames: Sequence[NewFrame]
    ) -> list[Exhibit]:
        """Store checked frames of ``source`` as image exhibits, one transaction."""
        known = {
            r["sha256"]: r["mark"]
            for r in self.case._db.execute("SELECT sha256, mark FROM exhibits")
        }
        staged: list[tuple[str, int, NewFrame]] = []
        new_files: list[Path] = []
        with removing_on_failure(new_files):
            for frame in frames:
                # stored as a player shows it; the hash checked is of the pixels
                # as decoded, and check_frame turns the stored image back
                data = png_bytes(upright(frame.rgb, frame.ref.display_rotation))
                sha256 = sha256_bytes(data)
                if sha256 in known:
                    raise BadInputError(
                        f"frame {frame.ref.frame_number} of {source.mark} is already "
                        f"in the case as {known[sha256]} (same pixels)"
                    )
                known[sha256] = f"frame {frame.ref.frame_number} of this addition"
                target = stage_bytes(
                    self.case.folder,
                    data,
                    sha256,
                    f"frame {frame.ref.frame_number} of {source.mark}",
                )
                if target is not None:
                    new_files.append(target)
                staged.append((sha256, len(data), frame))
        marks = self.case._next_marks(source.role, len(staged))
        stamp = now()
        entries = [
            {
                "mark": new_mark,
                "role": source.role,
                "sha256": sha256,
                source.kind: source.mark,
                "frame": frame.ref.to_dict(),
                "track_id": frame.track_id,
                "selection": dict(frame.selection),
            }
            for new_mark, (sha256, _s, frame) in zip(marks, staged, strict=True)
        ]
        with (
            removing_on_failure(new_files),
            self.case._change(
                "frames.add", {source.kind: source.mark, "frames": entries}
            ) as db,
        ):
            for new_mark, (sha256, size, frame) in zip(marks, staged, strict=True):
                height, width = upright(frame.rgb, frame.ref.display_rotation).shape[:2]
                stem = Path(source_name).stem
                name = printable(f"{stem} frame {frame.ref.frame_number}.png")
                cursor = db.execute(
                    "INSERT INTO exhibits (mark, role, sha256, original_name, "
                    "size, format, width, height, exif_orientation, exif, note, "
                    "intake_time, intake_user) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new_mark,
                        source.role,
                        sha256,
                        name,
                        size,
                        "PNG",
                        width,
                        height,
                        1,
                        "{}",
                        f"frame {frame.ref.frame_number} of {source.kind} "
                        f"{source.mark}",
                        stamp,
                        self.case.user,
                    ),
                )
                ref = frame.ref
                db.execute(
                    f"INSERT INTO frames (exhibit_id, {source.column}, track_id, "
                    "stream_index, frame_number, pts, time_base, seconds, wall_clock, "
                    "frame_sha256, decoder, selection, display_rotation) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cursor.lastrowid,
                        source.id,
                        frame.track_id,
                        ref.stream_index,
                        ref.frame_number,
                        ref.pts,
                        str(ref.time_base),
                        ref.seconds,
                        ref.wall_clock,
                        ref.frame_sha256,
                        ref.decoder,
                        json.dumps(dict(frame.selection), default=json_default),
                        ref.display_rotation if not ref.display_rotation % 90 else 0,
                    ),
                )
        return [self.case.exhibit(m) for m in marks]

    @staticmethod
    def _check_new_frame(
        mark: str, sha256: str, frame: NewFrame, track_ids: set[int]
    ) -> None:
        ref = frame.ref
        if ref.video_sha256 != sha256:
            raise BadInputError(
                f"frame {ref.frame_number} was not decoded from {mark} "
                "(its SHA-256 differs)"
            )
        rgb = np.ascontiguousarray(frame.rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise BadInputError(f"frame {ref.frame_number} is not an RGB image")
        if rgb_sha256(rgb.tobytes()) != ref.frame_sha256:
            raise BadInputError(
                f"frame {ref.frame_number}'s pixels do not match their recorded SHA-256"
            )
        if frame.track_id is not None and frame.track_id not in track_ids:
            raise BadInputError(f"track id {frame.track_id} is not a track of {mark}")

    def add_still_frame(self, mark: str, index: int) -> Exhibit:
        """Frame ``index`` (from 0) of the multi-frame image exhibit ``mark`` (an
        animated GIF, a multi-page TIFF, APNG or WebP, analysed on its first
        frame) as an image exhibit of its own, with its provenance."""
        self._writable()
        source = self.case.exhibit(mark)
        taken_from = self.frame(source.mark)
        if taken_from is not None:
            raise BadInputError(
                f"{source.mark} is itself {taken_from.describe()}: take the frame "
                f"from {taken_from.video}"
            )
        if index == 0:
            raise BadInputError(
                f"frame 0 of {source.mark} is the frame {source.mark} is analysed "
                "on: take another frame"
            )
        path = self.case.evidence_path(source)
        problem = file_problem(path, source.sha256, f"the evidence file of {mark}")
        if problem:  # a frame of a damaged copy proves nothing
            raise BadInputError(problem)
        try:
            rgb, still = still_frame(path, index)
        except BadInputError as error:  # named by its mark, not the stored copy
            raise BadInputError(
                f"{source.mark} ({source.original_name}): {error.reason}"
            ) from None
        ref = FrameRef(
            video_sha256=source.sha256,
            stream_index=0,
            frame_number=still.index,
            pts=None,
            time_base=Fraction(0, 1),
            seconds=None,
            wall_clock=None,
            frame_sha256=still.frame_sha256,
            shape=still.shape,
            decoder=_pillow_version(),
        )
        new = NewFrame(rgb=rgb, ref=ref, selection={"chosen_by": "examiner"})
        self._check_new_frame(source.mark, source.sha256, new, set())
        (added,) = self._store_frames(
            _Source(source.mark, source.role, "source_exhibit_id", source.id, "image"),
            source.original_name,
            [new],
        )
        return added

    def frame(self, mark: str) -> VideoFrame | None:
        """Where exhibit ``mark`` came from, or None if it is not a video frame."""
        if not self._has_tables():
            return None
        rows = list(
            self.case._db.execute(
                _FRAME_QUERY + " WHERE exhibits.mark = ?", (mark.upper(),)
            )
        )
        found = [_frame_from_row(r) for r in self._checked("frames", rows)]
        return found[0] if found else None

    def frames(self, video: str | None = None) -> list[VideoFrame]:
        """Every frame exhibit (of ``video``), in the order they were added."""
        if not self._has_tables():
            return []
        sql = _FRAME_QUERY
        params: tuple[str, ...] = ()
        if video is not None:
            sql, params = sql + " WHERE videos.mark = ?", (self.video(video).mark,)
        rows = list(self.case._db.execute(sql + " ORDER BY frames.exhibit_id", params))
        return [_frame_from_row(r) for r in self._checked("frames", rows)]

    def check_frame(self, mark: str) -> FrameCheck:
        """Decode frame exhibit ``mark`` again from the stored video (by frame
        number, and by its timestamp) and compare the pixels' SHA-256 with the
        recorded one and with the stored PNG's."""
        frame = self.frame(mark)
        if frame is None:
            raise BadInputError(
                f"exhibit {mark} is not a frame taken from a video or another image"
            )
        problems: list[str] = []
        extracted: str | None = None
        if frame.source == STILL_SOURCE:
            source = self.case.exhibit(frame.video)
            problem = file_problem(
                self.case.evidence_path(source),
                source.sha256,
                f"the evidence file of {source.mark}",
            )
            if problem:
                problems.append(problem)
            try:
                _rgb, still = still_frame(
                    self.case.evidence_path(source), frame.frame_number
                )
                extracted = still.frame_sha256
                if extracted != frame.frame_sha256:
                    problems.append(
                        f"frame {frame.frame_number} of {source.mark} has other "
                        "pixels than its provenance record says: the record or the "
                        "image was changed (`xfr case verify` names which)"
                    )
            except BadInputError as error:
                problems.append(f"cannot read it from {source.mark}: {error.reason}")
            return self._checked_stored(frame, problems, extracted)
        video = self.video(frame.video)
        path = self.video_path(video)
        what = f"the evidence file of {video.mark}"
        try:
            _rgb, by_number = extract_frame(
                path, frame_number=frame.frame_number, stream=frame.stream_index
            )
            # extract_frame hashed the file it read: damage away from this frame
            # decodes it unchanged, the hash does not
            if by_number.video_sha256 != video.sha256:
                problems.append(altered_problem(what))
            extracted = by_number.frame_sha256
            if extracted != frame.frame_sha256:
                decoder = (
                    ""
                    if by_number.decoder == frame.decoder
                    else f" (decoded with {by_number.decoder}, recorded with "
                    f"{frame.decoder}: another decoder may round colours otherwise)"
                )
                problems.append(
                    f"frame {frame.frame_number} decoded from {video.mark} has other "
                    f"pixels than its provenance record says{decoder}: the record or "
                    "the video was changed (`xfr case verify` names an altered "
                    "record and checks the video's hash)"
                )
            if by_number.display_rotation % 360 != frame.display_rotation % 360:
                problems.append(
                    f"the file now asks for a {by_number.display_rotation}° turn for "
                    f"display, {frame.display_rotation}° when the frame was taken"
                )
            if frame.pts is not None:
                _rgb, by_pts = extract_frame(
                    path, pts=frame.pts, stream=frame.stream_index
                )
                if by_pts.frame_sha256 != frame.frame_sha256:
                    problems.append(
                        f"the frame shown at pts {frame.pts} of {video.mark} is not "
                        "the recorded one"
                    )
        except BadInputError as error:
            problem = file_problem(path, video.sha256, what)
            problems += [problem] if problem else []
            problems.append(f"cannot decode it from {video.mark}: {error.reason}")
        return self._checked_stored(frame, problems, extracted)

    def _checked_stored(
        self, frame: VideoFrame, problems: list[str], extracted: str | None
    ) -> FrameCheck:
        """``check_frame``'s last step: the stored PNG against the recorded hash."""
        stored: str | None = None
        exhibit = self.case.exhibit(frame.mark)
        problem = file_problem(
            self.case.evidence_path(exhibit),
            exhibit.sha256,
            f"the stored image of {frame.mark}",
        )
        if problem:
            problems.append(problem)
        try:
            shown = load_image(self.case.evidence_path(exhibit)).rgb
            # turned back from how it was stored to the pixels as decoded
            decoded = upright(shown, -frame.display_rotation)
            stored = rgb_sha256(np.ascontiguousarray(decoded).tobytes())
            if stored != frame.frame_sha256:
                problems.append(
                    f"the stored image of {frame.mark} does not hold the recorded "
                    "pixels"
                )
        except BadInputError as error:
            problems.append(
                f"the stored image of {frame.mark} cannot be read: {error.reason}"
            )
        return FrameCheck(
            frame.mark,
            not problems,
            tuple(problems),
            frame.frame_sha256,
            extracted,
            stored,
        )


def _pillow_version() -> str:
    """The decoder of a frame of a multi-frame image (Pillow)."""
    import PIL

    return f"Pillow {PIL.__version__}"
