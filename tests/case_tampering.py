"""Helpers the case-integrity tests share: copy a case, edit it as an outside
SQLite tool would, and verify it read-only; and give a case a tracked video with
frames taken from it (schema 4), so that every bound table has rows."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from core.case import workflow
from core.case.store import Case, Exhibit, VerifyReport
from core.faces.detect import Face, FaceDetector
from core.video.synthetic import write_cctv_clip


def copied_case(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a closed template case, for one test to alter."""
    target = tmp_path / "case"
    shutil.copytree(template, target)
    return target


def tamper(folder: Path, *statements: str) -> None:
    """Edit case.sqlite directly, as any SQLite tool would (foreign keys off)."""
    db = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def verify(folder: Path, anchor: dict[str, Any] | None = None) -> VerifyReport:
    with Case.open(folder, read_only=True) as case:
        return case.verify(anchor=anchor)


class BoxDetector:
    """A stand-in detector: the same face on every frame (a box and five points),
    so that tracking a clip gives one track without a face model."""

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        self.box = box

    def detect(self, rgb: np.ndarray, method: str, with_68: bool) -> list[Face]:
        left, top, right, bottom = self.box
        side, tall = right - left, bottom - top
        shares = ((0.7, 0.35), (0.3, 0.35), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75))
        points = np.array([(left + x * side, top + y * tall) for x, y in shares])
        return [Face(bbox=self.box, landmarks5=points, score=1.0, source="stub")]


def short_clip(folder: Path, *, created: str | None = None) -> Path:
    """A one-second synthetic CCTV clip (8 frames, 320×180); ``created`` is
    written as the container's creation_time tag (packets copied, not re-encoded)."""
    clip = Path(
        write_cctv_clip(folder / "plain.mp4", seconds=1, fps=8, size=(320, 180)).path
    )
    target = folder / "cctv.mp4"
    if created is None:
        return clip.rename(target)
    with av.open(str(clip)) as source, av.open(str(target), "w") as out:
        out.metadata["creation_time"] = created
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    clip.unlink()
    return target


def add_tracked_video(
    case: Case, folder: Path, *, best: int = 1, created: str | None = None
) -> list[Exhibit]:
    """Add `short_clip` as V1, track it with `BoxDetector` (run 1, T1) and add
    its ``best`` frames as exhibits; returns those exhibits."""
    added = case.add_exhibits([short_clip(folder, created=created)], "probe")
    assert [v.mark for v in added.videos] == ["V1"], added.rejected
    # track_video only calls .detect(), so any object with it stands in
    stub = cast(FaceDetector, BoxDetector((100, 40, 180, 130)))
    workflow.track_video(case, "V1", every=1, detector=stub)
    return workflow.add_track_frames(case, "V1", "T1", best=best, min_separation=1)
