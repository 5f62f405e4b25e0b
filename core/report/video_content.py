"""Where the report's video exhibits and frame exhibits came from (issue 20 item 1).

A frame exhibit is an ordinary image to the rest of the report; what makes it
evidence is its link to the video it was decoded from.  This gathers, per video,
the stored file's facts, each tracking run's parameters (once per run, not per
frame) and, per frame taken from it, everything needed to decode it again and
compare: stream, frame number, timestamp, the decoded pixels' SHA-256 beside the
stored PNG's, the decoder, the track it came from and why it was chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.case.records import Exhibit, Video
from core.case.store import Case
from core.case.videos import STILL_SOURCE, VideoFrame


@dataclass(frozen=True)
class FrameContent:
    """One frame exhibit: its provenance record and its stored image."""

    frame: VideoFrame
    exhibit: Exhibit  # the stored PNG (its sha256 is the file's, not the pixels')


@dataclass(frozen=True)
class TrackingRun:
    """One tracking run of a video, as recorded: how its tracks were found."""

    run: int
    tracks: tuple[str, ...]  # T1, T2, ...
    params: Mapping[str, Any]


@dataclass(frozen=True)
class VideoContent:
    """A video exhibit, the runs that tracked it and the frames taken from it."""

    video: Video
    runs: tuple[TrackingRun, ...]
    frames: tuple[FrameContent, ...]


def gather_videos(case: Case) -> tuple[VideoContent, ...]:
    """Every video of the case in mark order, with its runs and frames."""
    found = []
    for video in case.videos.videos():
        tracks = [
            track
            for run in case.videos.runs(video.mark)
            for track in case.videos.tracks(video.mark, run=run)
        ]
        runs = tuple(
            TrackingRun(
                run,
                tuple(t.label for t in tracks if t.run == run),
                next(t.params for t in tracks if t.run == run),
            )
            for run in sorted({t.run for t in tracks})
        )
        frames = tuple(
            FrameContent(frame, case.exhibit(frame.mark))
            for frame in case.videos.frames(video.mark)
        )
        found.append(VideoContent(video, runs, frames))
    return tuple(found)


def gather_still_frames(case: Case) -> tuple[FrameContent, ...]:
    """Every frame taken from a multi-frame image exhibit (an animated GIF, a
    multi-page TIFF, APNG, WebP), in the order they were taken."""
    return tuple(
        FrameContent(frame, case.exhibit(frame.mark))
        for frame in case.videos.frames()
        if frame.source == STILL_SOURCE
    )


def frame_of(
    videos: tuple[VideoContent, ...],
    mark: str,
    still_frames: tuple[FrameContent, ...] = (),
) -> VideoFrame | None:
    """The provenance of exhibit ``mark`` when it is a frame taken from a video
    (or from a multi-frame image)."""
    for item in (*(f for v in videos for f in v.frames), *still_frames):
        if item.frame.mark == mark:
            return item.frame
    return None
