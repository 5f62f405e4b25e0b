"""The quality-measure protocol: the face's plain data, one value, the registry.

Measures describe image conditions in the spirit of ISO/IEC 29794-5 (face image
quality): each is a figure with a definition and a unit (inter-eye distance in
pixels, yaw in degrees, ...), not a verdict on the face.  The plain-words summary
built from them (``core.quality.summary``) applies documented conventions.

A measure takes a `FaceInput` (numpy arrays and numbers only, no case, no model)
so that it can be tested on controlled degradations and reused on video frames.
A measure that cannot be computed for one face (the face lies outside the image,
the model gives no embedding) returns a value of ``None`` with a note saying why;
only input that no measure can use raises `BadInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from core.errors import BadInputError

# How a figure reads: "higher" is better, "lower" is better, "nearer zero" is better
# (angles), or "neither" (a middle value is best, e.g. mean luminance).
Better = Literal["higher", "lower", "nearer zero", "neither"]

MIN_IMAGE_SIDE = 16  # px; below this no face region can be measured at all

Derived = TypeVar("Derived")


@dataclass(frozen=True)
class FaceInput:
    """One face as plain data: the evidence image and where the face is on it.

    ``landmarks5`` are dlib's five points (``core.faces.detect.LANDMARK5_NAMES``);
    ``embedding`` is the model's output *before* any L2 normalisation by the
    caller; ``jpeg_tables`` are the file's quantisation tables (Pillow's
    ``Image.quantization``) when the evidence file is a JPEG.
    """

    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8, as analysed
    bbox: tuple[float, float, float, float]  # left, top, right, bottom
    landmarks5: np.ndarray | None = field(repr=False)
    landmarks68: np.ndarray | None = field(default=None, repr=False)
    embedding: np.ndarray | None = field(default=None, repr=False)
    jpeg_tables: Mapping[int, Sequence[int]] | None = field(default=None, repr=False)
    # False when the analysed pixels were turned from the file's (EXIF
    # orientation): the file's 8x8 JPEG block grid is then not known on them.
    blocks_aligned: bool = True
    # why the pixels have no JPEG 8x8 grid to measure ("" when they may): a frame
    # decoded from a video went through its codec's own blocks and deblocking
    no_block_grid: str = ""
    name: str = "face"  # what messages name, e.g. "Q1 (cctv.jpg)"
    # What several measures derive from the same face (the head-pose solution, the
    # grey aligned face region) is computed once per FaceInput and kept here; not
    # a field of the face (no init, no comparison), and `dataclasses.replace` gives
    # the new face an empty one, so a cached result always belongs to these fields.
    _derived: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def derived(self, key: str, compute: Callable[[FaceInput], Derived]) -> Derived:
        """``compute(self)``, computed on the first call for ``key`` only.

        The face's arrays are taken as they are when first asked: a caller that
        changes ``rgb`` in place afterwards must build a new FaceInput.
        """
        if key not in self._derived:
            self._derived[key] = compute(self)
        return self._derived[key]  # type: ignore[no-any-return]

    @property
    def points5(self) -> np.ndarray:
        """The checked five points as (5, 2) float."""
        return np.asarray(self.landmarks5, float).reshape(5, 2)

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres of (the image's left eye, the image's right eye): the midpoints
        of each eye's outer and inner corner."""
        points = self.points5
        return (points[2] + points[3]) / 2.0, (points[0] + points[1]) / 2.0


def check_face_input(face: FaceInput) -> None:
    """Raise one `BadInputError` line when no measure could use ``face``."""
    rgb = np.asarray(face.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadInputError(
            f"{face.name}: the image is not an RGB image (shape {rgb.shape}); "
            "face quality needs the evidence's colour pixels"
        )
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise BadInputError(
            f"{face.name}: the image is {width}x{height} pixels, too small to measure "
            f"face quality (at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} needed)"
        )
    if face.landmarks5 is None or np.asarray(face.landmarks5).size == 0:
        raise BadInputError(
            f"{face.name}: the face has no landmarks; place the five points first "
            "(xfr case faces --correct)"
        )
    points = np.asarray(face.landmarks5, float)
    if points.shape != (5, 2):
        raise BadInputError(
            f"{face.name}: face quality needs dlib's 5 landmarks as (x, y), "
            f"got an array of shape {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise BadInputError(
            f"{face.name}: a landmark is not a number (NaN or infinite); "
            "place the five points again (xfr case faces --correct)"
        )
    if face.landmarks68 is not None:
        points68 = np.asarray(face.landmarks68, float)
        if points68.shape != (68, 2) or not np.all(np.isfinite(points68)):
            raise BadInputError(
                f"{face.name}: the 68 landmarks are not 68 finite (x, y) points"
            )
    left, right = face.eye_centres
    if float(np.linalg.norm(right - left)) < 1.0:
        raise BadInputError(
            f"{face.name}: the two eyes' landmarks coincide (less than 1 px apart); "
            "place the five points again (xfr case faces --correct)"
        )


@dataclass(frozen=True)
class QualityValue:
    """One measured figure of one face (``value`` None: not available, see note)."""

    measure: str  # the measure's id
    name: str
    value: float | None
    unit: str
    note: str = ""  # why it is not available, or how it was obtained

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "name": self.name,
            "value": None if self.value is None else round(float(self.value), 4),
            "unit": self.unit,
            "note": self.note,
        }


class QualityMeasure(Protocol):
    """A descriptive face-image measure with its definition and unit."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def definition(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def better(self) -> Better: ...

    def measure(self, face: FaceInput) -> QualityValue: ...


# A computation returns the figure, or None and the reason it is not available; an
# optional note ("from 68 landmarks") may accompany a figure.
Computation = Callable[[FaceInput], tuple[float | None, str]]


@dataclass(frozen=True)
class ComputedMeasure:
    """A measure whose figure is one function of the face (most of them)."""

    id: str
    name: str
    definition: str
    unit: str
    better: Better
    compute: Computation = field(repr=False)

    def measure(self, face: FaceInput) -> QualityValue:
        value, note = self.compute(face)
        if value is not None and not math.isfinite(value):
            value, note = None, "could not be computed for this face"
        return QualityValue(self.id, self.name, value, self.unit, note)

    def describe(self) -> dict[str, str]:
        return describe(self)


def describe(measure: QualityMeasure) -> dict[str, str]:
    """What a measure is, for --json listings and the report."""
    return {
        "id": measure.id,
        "name": measure.name,
        "definition": measure.definition,
        "unit": measure.unit,
        "better": measure.better,
    }


# ---- registry ------------------------------------------------------------------------
_REGISTRY: dict[str, QualityMeasure] = {}


def register(measure: QualityMeasure) -> QualityMeasure:
    if measure.id in _REGISTRY:
        raise ValueError(f"quality measure {measure.id!r} is registered twice")
    _REGISTRY[measure.id] = measure
    return measure


def get(measure_id: str) -> QualityMeasure:
    try:
        return _REGISTRY[measure_id]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise BadInputError(
            f"unknown quality measure '{measure_id}' (known: {known})"
        ) from None


def all_measures() -> list[QualityMeasure]:
    """Every registered measure, in registration order (the order shown)."""
    return list(_REGISTRY.values())
