"""The best frames of a face track, ranked by a documented mix of quality measures.

Each face of a track has its quality figures (``core.quality``, measured when the
track was made).  A frame's score is

    score = w_size * size + w_sharpness * sharpness
            - w_pose * pose - w_exposure * exposure - w_truncation * truncation

with every term between 0 and 1 (``clip`` to [0, 1]):

* ``size = clip(log2(IED / 16 px) / log2(90 px / 16 px))``: inter-eye distance on
  a log scale, 0 at 16 px (too small for any comparison), 1 at the 90 px ISO/IEC
  39794-5 asks of passport photos; doubling the size adds the same everywhere;
* ``sharpness = clip(log10(S / 0.003) / log10(0.6 / 0.003))``: the sharpness
  ratio on a log scale, 0 at 0.003 (heavily blurred), 1 at 0.6 (the sharp Grace
  Hopper photo; the astronaut measures 0.08, see ``core.quality.summary``), so
  that sharp faces are still told apart rather than all scoring 1;
* ``pose = clip(max(|yaw| / 45°, |pitch| / 35°))``: 1 at the summary's "poor"
  pose bounds;
* ``exposure = clip(max(clipped / 0.20, (|L - 127.5| - 77.5) / 25))``: 0 while the
  mean luminance L stays within the summary's "limited" bounds (50-205) and few
  pixels are clipped, 1 at its "poor" bounds (25 / 230, or 20 % clipped);
* ``truncation = clip(T / 0.20)``: the share of the face outside the image, 1 at
  the summary's "poor" 20 %.

A figure that is not available is named in ``missing`` and counts at its worst:
a missing size or sharpness term is 0 and a missing penalty term (pose, exposure,
truncation) is 1, so that a frame whose figures cannot be measured never ranks
above one whose figures can.
The weights (`RankingWeights`) are recorded with every ranked frame, and each
frame carries its terms, so the examiner sees why one frame ranks above another.
The ranking orders frames for the examiner to choose from; it is no verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from core.quality.summary import (
    BRIGHT_LIMITED,
    BRIGHT_POOR,
    CLIPPED_POOR,
    DARK_LIMITED,
    PITCH_POOR_DEG,
    TRUNCATION_POOR,
    YAW_POOR_DEG,
)
from core.video.tracks import Track, TrackedFace

IED_FLOOR_PX, IED_FULL_PX = 16.0, 90.0
SHARPNESS_FLOOR, SHARPNESS_FULL = 0.003, 0.6
# near-duplicate frames add nothing: chosen frames are at least this far apart
MIN_SEPARATION = 5  # frames (half a second at 10 fps)

_MID_GREY = 127.5
_LUMINANCE_LIMIT = _MID_GREY - DARK_LIMITED  # 77.5 either side (50 and 205)
_LUMINANCE_SPAN = BRIGHT_POOR - BRIGHT_LIMITED  # 25 more to the poor bounds


@dataclass(frozen=True)
class RankingWeights:
    """How much each term counts (see the module's formula)."""

    size: float = 1.0
    sharpness: float = 1.0
    pose: float = 0.5
    exposure: float = 0.5
    truncation: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_WEIGHTS = RankingWeights()


@dataclass(frozen=True)
class RankedFrame:
    """One face of a track, with its score, its terms and its rank (1 = best)."""

    frame_number: int
    rank: int
    score: float
    terms: dict[str, float]  # size, sharpness, pose, exposure, truncation (0-1)
    figures: dict[str, float | None]  # the quality figures the terms come from
    missing: tuple[str, ...]  # measures not available for this face
    weights: RankingWeights = field(compare=False)
    face: TrackedFace = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_number": self.frame_number,
            "seconds": self.face.frame.seconds,
            "frame_sha256": self.face.frame.frame_sha256,
            "rank": self.rank,
            "score": round(self.score, 4),
            "terms": {name: round(value, 4) for name, value in self.terms.items()},
            "figures": {
                name: None if value is None else round(value, 4)
                for name, value in self.figures.items()
            },
            "missing": list(self.missing),
            "weights": self.weights.to_dict(),
        }


def rank_frames(
    track: Track, *, weights: RankingWeights = DEFAULT_WEIGHTS
) -> list[RankedFrame]:
    """Every face of ``track``, best first (equal scores: the earlier frame first)."""
    scored = [(_score(face, weights), face) for face in track.faces]
    scored.sort(key=lambda item: (-item[0][0], item[1].frame_number))
    return [
        RankedFrame(
            frame_number=face.frame_number,
            rank=rank,
            score=score,
            terms=terms,
            figures=figures,
            missing=missing,
            weights=weights,
            face=face,
        )
        for rank, ((score, terms, figures, missing), face) in enumerate(scored, start=1)
    ]


def best_frames(
    track: Track,
    k: int,
    *,
    min_separation: int = MIN_SEPARATION,
    weights: RankingWeights = DEFAULT_WEIGHTS,
) -> list[RankedFrame]:
    """The ``k`` best frames at least ``min_separation`` frames apart, best first.

    Greedy in rank order: a frame closer than ``min_separation`` to one already
    chosen is passed over.  Fewer than ``k`` come back when the track is short.
    """
    if k < 1:
        raise ValueError(f"k must be 1 or more, not {k}")
    chosen: list[RankedFrame] = []
    for ranked in rank_frames(track, weights=weights):
        if all(
            abs(ranked.frame_number - other.frame_number) >= min_separation
            for other in chosen
        ):
            chosen.append(ranked)
            if len(chosen) == k:
                break
    return chosen


_Scored = tuple[float, dict[str, float], dict[str, float | None], tuple[str, ...]]
_MEASURES = (
    "inter_eye_distance",
    "sharpness",
    "yaw",
    "pitch",
    "exposure",
    "clipped",
    "truncation",
)


def _score(face: TrackedFace, weights: RankingWeights) -> _Scored:
    figures = {measure: face.quality_value(measure) for measure in _MEASURES}
    missing = tuple(measure for measure, value in figures.items() if value is None)
    ied, sharp = figures["inter_eye_distance"], figures["sharpness"]
    yaw, pitch = figures["yaw"], figures["pitch"]
    luminance, clipped = figures["exposure"], figures["clipped"]
    truncation = figures["truncation"]
    terms = {
        "size": 0.0
        if ied is None or ied <= 0
        else _clip(
            math.log2(ied / IED_FLOOR_PX) / math.log2(IED_FULL_PX / IED_FLOOR_PX)
        ),
        "sharpness": 0.0
        if sharp is None or sharp <= 0
        else _clip(
            math.log10(sharp / SHARPNESS_FLOOR)
            / math.log10(SHARPNESS_FULL / SHARPNESS_FLOOR)
        ),
        # a penalty that cannot be measured counts in full: the pose is missing
        # exactly when the landmarks fit no face, which is no reason to rank first
        "pose": _clip(
            max(
                1.0 if yaw is None else abs(yaw) / YAW_POOR_DEG,
                1.0 if pitch is None else abs(pitch) / PITCH_POOR_DEG,
            )
        ),
        "exposure": _clip(
            max(
                1.0 if clipped is None else clipped / CLIPPED_POOR,
                1.0
                if luminance is None
                else (abs(luminance - _MID_GREY) - _LUMINANCE_LIMIT) / _LUMINANCE_SPAN,
            )
        ),
        "truncation": 1.0
        if truncation is None
        else _clip(truncation / TRUNCATION_POOR),
    }
    score = (
        weights.size * terms["size"]
        + weights.sharpness * terms["sharpness"]
        - weights.pose * terms["pose"]
        - weights.exposure * terms["exposure"]
        - weights.truncation * terms["truncation"]
    )
    return score, terms, figures, missing


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
