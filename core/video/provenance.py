"""What identifies one decoded frame, so that it can be re-extracted and verified.

A frame taken from a video is a *derived* exhibit: the court must be able to go from
the stored video to the same pixels again.  ``FrameRef`` records the video's SHA-256,
the stream, the frame number, its presentation timestamp, and the SHA-256 of the
decoded RGB24 bytes (row after row, 3 bytes a pixel, no padding) so that the pixels
can be checked with any tool that writes raw RGB24 (e.g. ``ffmpeg -pix_fmt rgb24 -f
rawvideo``).  The decoder is named because another FFmpeg build may round the colour
conversion differently.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class StreamInfo:
    """One video stream of a container, as the container and decoder describe it."""

    index: int  # the container's stream index (what ``ffprobe`` calls it)
    codec: str  # FFmpeg decoder name: "h264", "hevc", "mjpeg", …
    width: int
    height: int
    # frames the file holds (its packets) when checked, else the header's count, if any
    frame_count: int | None
    # frames the decoder produced, when checked: fewer than frame_count when a clip
    # was cut before a key frame (those frames' references are not in the file)
    decoded_frames: int | None
    average_rate: Fraction | None  # frames per second on average
    time_base: Fraction  # seconds per pts tick
    start_pts: int | None  # the first frame's pts, in time_base ticks
    # degrees counter-clockwise the container's display matrix turns the frames for
    # display (a phone held upright records sideways and says so here); 0 if none
    display_rotation: int = 0
    # the display matrix also mirrors the frames: they are shown as decoded (not
    # mirrored, and not turned, since the angle of such a matrix misleads)
    display_mirrored: bool = False


@dataclass(frozen=True)
class VideoInfo:
    """A video file as probed: container, duration, streams, claimed recording time."""

    path: str
    sha256: str
    container_format: str  # FFmpeg demuxer name: "mov,mp4,m4a,3gp,3g2,mj2", "avi", …
    duration_seconds: float | None
    streams: tuple[StreamInfo, ...]  # video streams only
    creation_time: str | None  # the container's "creation_time" tag, as written
    decoder: str  # PyAV and libavcodec versions that decoded it

    def stream(self, index: int) -> StreamInfo:
        """The video stream with container index ``index``."""
        for stream in self.streams:
            if stream.index == index:
                return stream
        raise KeyError(index)


@dataclass(frozen=True)
class FrameRef:
    """Where one frame came from, and the hash of its decoded pixels."""

    video_sha256: str
    stream_index: int
    frame_number: int  # from 0, in presentation order, over all frames the file holds
    pts: int | None  # presentation timestamp, in time_base ticks
    time_base: Fraction
    seconds: float | None  # pts × time_base
    wall_clock: str | None  # creation_time + offset from the first frame, if tagged
    frame_sha256: str  # of the RGB24 bytes, row-major, no padding
    shape: tuple[int, int, int]  # (height, width, 3), as decoded (not turned)
    decoder: str
    # degrees counter-clockwise to turn the decoded pixels for display (the file's
    # display matrix); frame_sha256 is of the pixels as decoded, before any turn
    display_rotation: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (the time base as "num/den")."""
        record = asdict(self)
        record["time_base"] = str(self.time_base)
        record["shape"] = list(self.shape)
        return record


@dataclass(frozen=True)
class StillFrame:
    """One frame of a multi-frame still image (GIF, TIFF page, APNG, WebP)."""

    index: int  # counted from 0, in the file's order
    width: int
    height: int
    duration_ms: int | None  # display time of an animation frame, if given
    frame_sha256: str  # of the RGB24 bytes, as for video frames
    shape: tuple[int, int, int]


def rgb_sha256(rgb_bytes: bytes) -> str:
    """SHA-256 of decoded RGB24 pixel bytes (the ``frame_sha256`` of a frame)."""
    return hashlib.sha256(rgb_bytes).hexdigest()
