"""All measures of one face, and the plain-words summary: good, limited or poor.

The summary applies the thresholds below.  They are conventions, not validated
limits: each says where it comes from, and a lab should check them on its own
casework.  A figure beyond a "limited" threshold makes the face limited, beyond a
"poor" threshold poor; the worst figure decides, and every figure beyond a
threshold is named as a reason ("inter-eye distance 18 px (below 30 px)").
Figures that are not available do not change the rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# the measures register themselves when imported (module by module: importing
# them through the package would be a cycle, the package imports this module)
import core.quality.geometry
import core.quality.pixels
import core.quality.utility  # noqa: F401
from core.quality.base import (
    FaceInput,
    QualityMeasure,
    QualityValue,
    all_measures,
    check_face_input,
)

Rating = Literal["good", "limited", "poor"]
RATINGS: tuple[Rating, ...] = ("good", "limited", "poor")


@dataclass(frozen=True)
class QualityThreshold:
    """``limited``/``poor`` bounds of one measure, and where they come from.

    ``side`` "below": a value under the bound is worse; "above": over it is worse;
    "beyond": its absolute value over the bound is worse (angles).
    """

    measure: str
    side: Literal["below", "above", "beyond"]
    limited: float
    poor: float | None
    source: str

    def level(self, value: float) -> Rating:
        for rating, bound in (("poor", self.poor), ("limited", self.limited)):
            if bound is not None and self._worse(value, bound):
                return rating  # type: ignore[return-value]
        return "good"

    def _worse(self, value: float, bound: float) -> bool:
        if self.side == "below":
            return value < bound
        if self.side == "above":
            return value > bound
        return abs(value) > bound

    def reason(self, value: QualityValue, rating: Rating) -> str:
        bound = self.poor if rating == "poor" else self.limited
        assert bound is not None and value.value is not None
        words = {"below": "below ", "above": "above ", "beyond": "beyond ±"}[self.side]
        # as many digits as it takes for the figure not to print as its bound
        for extra in range(4):
            shown = _figure(value.value, value.unit, extra)
            limit = _figure(bound, value.unit, extra)
            if shown != limit:
                break
        return f"{value.name} {shown} ({words}{limit})"


def figure_text(value: QualityValue) -> str:
    """The figure as the summary's reasons print it ("43 px", "-9°", "0 %"), or
    "-" when it is not available."""
    return "-" if value.value is None else _figure(value.value, value.unit)


def _figure(number: float, unit: str, extra: int = 0) -> str:
    """``number`` in ``unit`` as a reader reads it, with ``extra`` more digits.

    Whole units by default; a ratio with three significant figures (a sharpness
    of 0.0049 is not "0.00").  round() rather than the format's own rounding,
    which prints -0.3 as "-0".
    """

    def whole(value: float) -> str:
        rounded = round(value, extra) if extra else round(value)
        return f"{rounded + 0:.{extra}f}" if extra else f"{rounded + 0}"

    if unit == "deg":
        return f"{whole(number)}°"
    if unit == "px":
        return f"{whole(number)} px"
    if unit == "fraction 0-1":
        return f"{whole(100 * number)} %"
    if unit == "1-100" or unit == "0-255":
        return whole(number)
    return f"{number:.{3 + extra}g}"


# IED: ISO/IEC 19794-5 and 39794-5 (as ICAO 9303 for passports) ask full-frontal
# images for at least 90 px between the eye centres; CCTV rarely reaches that.  The
# 60 px and 30 px bounds are this tool's conventions, in line with face recognition
# vendors' usual statements that their systems need about 20-30 px at the least.
IED_LIMITED_PX, IED_POOR_PX = 60.0, 30.0
# Pose: ISO/IEC 19794-5 asks frontal images for yaw and pitch within ±5°, roll ±8°;
# these looser bounds are this tool's conventions for casework images, where
# comparison across yaw beyond about 45° (a half profile) is known to be hard.
YAW_LIMITED_DEG, YAW_POOR_DEG = 20.0, 45.0
PITCH_LIMITED_DEG, PITCH_POOR_DEG = 20.0, 35.0
# Roll is undone by the alignment; only a strong tilt is worth a caution.
ROLL_LIMITED_DEG = 30.0
# Sharpness, blockiness: set on this tool's test images (the astronaut and Grace
# Hopper with Gaussian blur and JPEG re-compression, tests/core/test_quality.py);
# the sharp astronaut measures about 0.08 (Grace Hopper 0.6), blurred with sigma
# 1 px about 0.012, sigma 2 px 0.005; re-saved as JPEG quality 50 its blockiness is
# about 1.27, quality 20 about 1.66 (an uncompressed image: about 1).
SHARPNESS_LIMITED, SHARPNESS_POOR = 0.02, 0.006
BLOCKINESS_LIMITED, BLOCKINESS_POOR = 1.25, 1.6
JPEG_QUALITY_LIMITED, JPEG_QUALITY_POOR = 50.0, 25.0
# Exposure: a face whose mean luma is in the darkest or brightest fifth of the range
# (poor: tenth), or whose grey values hardly vary, is hard to read; conventions.
DARK_LIMITED, BRIGHT_LIMITED = 50.0, 205.0
DARK_POOR, BRIGHT_POOR = 25.0, 230.0
CONTRAST_LIMITED, CONTRAST_POOR = 15.0, 6.0
CLIPPED_LIMITED, CLIPPED_POOR = 0.05, 0.20
# Truncation: the example, a face 20 % outside the frame, is poor.
TRUNCATION_LIMITED, TRUNCATION_POOR = 0.05, 0.20

_CONVENTION = "a convention of this tool, not a validated limit"
THRESHOLDS: tuple[QualityThreshold, ...] = (
    QualityThreshold(
        "inter_eye_distance",
        "below",
        IED_LIMITED_PX,
        IED_POOR_PX,
        "ISO/IEC 39794-5 / ICAO ask 90 px for passport photos; 60/30 px: "
        + _CONVENTION,
    ),
    QualityThreshold(
        "yaw",
        "beyond",
        YAW_LIMITED_DEG,
        YAW_POOR_DEG,
        "ISO/IEC 19794-5 asks ±5°; " + _CONVENTION,
    ),
    QualityThreshold(
        "pitch",
        "beyond",
        PITCH_LIMITED_DEG,
        PITCH_POOR_DEG,
        "ISO/IEC 19794-5 asks ±5°; " + _CONVENTION,
    ),
    QualityThreshold(
        "eye_line_roll",
        "beyond",
        ROLL_LIMITED_DEG,
        None,
        "alignment undoes roll; " + _CONVENTION,
    ),
    QualityThreshold(
        "sharpness", "below", SHARPNESS_LIMITED, SHARPNESS_POOR, _CONVENTION
    ),
    QualityThreshold("exposure", "below", DARK_LIMITED, DARK_POOR, _CONVENTION),
    QualityThreshold("exposure", "above", BRIGHT_LIMITED, BRIGHT_POOR, _CONVENTION),
    QualityThreshold("contrast", "below", CONTRAST_LIMITED, CONTRAST_POOR, _CONVENTION),
    QualityThreshold("clipped", "above", CLIPPED_LIMITED, CLIPPED_POOR, _CONVENTION),
    QualityThreshold(
        "blockiness", "above", BLOCKINESS_LIMITED, BLOCKINESS_POOR, _CONVENTION
    ),
    QualityThreshold(
        "jpeg_quality", "below", JPEG_QUALITY_LIMITED, JPEG_QUALITY_POOR, _CONVENTION
    ),
    QualityThreshold(
        "truncation",
        "above",
        TRUNCATION_LIMITED,
        TRUNCATION_POOR,
        "the issue's example of a face 20 % outside the frame; " + _CONVENTION,
    ),
)


@dataclass(frozen=True)
class QualitySummary:
    rating: Rating
    reasons: tuple[str, ...]  # every figure beyond a threshold, worst first

    @property
    def words(self) -> str:
        """``limited: yaw 42° (beyond ±20°)``; ``good`` alone when nothing is wrong."""
        return (
            self.rating
            if not self.reasons
            else f"{self.rating}: " + "; ".join(self.reasons)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"rating": self.rating, "reasons": list(self.reasons)}


def summarise(
    values: Sequence[QualityValue],
    thresholds: Sequence[QualityThreshold] = THRESHOLDS,
) -> QualitySummary:
    by_id = {value.measure: value for value in values}
    found: list[tuple[Rating, str]] = []
    for threshold in thresholds:
        value = by_id.get(threshold.measure)
        if value is None or value.value is None:
            continue
        rating = threshold.level(value.value)
        if rating != "good":
            found.append((rating, threshold.reason(value, rating)))
    found.sort(key=lambda item: -RATINGS.index(item[0]))
    rating = max((r for r, _ in found), key=RATINGS.index, default="good")
    return QualitySummary(rating, tuple(reason for _, reason in found))


def rate(
    value: QualityValue, thresholds: Sequence[QualityThreshold] = THRESHOLDS
) -> Rating | None:
    """The rating of one figure on its own (the worst of its thresholds); None when
    the figure is not available or no threshold applies to its measure."""
    if value.value is None:
        return None
    mine = [t for t in thresholds if t.measure == value.measure]
    if not mine:
        return None
    number = value.value
    return max((t.level(number) for t in mine), key=RATINGS.index)


@dataclass(frozen=True)
class FaceQuality:
    """Every measure of one face and its summary."""

    label: str
    values: tuple[QualityValue, ...]
    summary: QualitySummary

    def value(self, measure: str) -> float | None:
        for value in self.values:
            if value.measure == measure:
                return value.value
        raise KeyError(measure)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            **self.summary.to_dict(),
            "measures": {value.measure: value.to_dict() for value in self.values},
        }


def assess(
    face: FaceInput,
    label: str = "",
    measures: Sequence[QualityMeasure] | None = None,
) -> FaceQuality:
    """Every measure (default: all registered) of ``face``, and the summary."""
    check_face_input(face)
    values = tuple(m.measure(face) for m in (measures or all_measures()))
    return FaceQuality(label or face.name, values, summarise(values))
