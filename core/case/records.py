"""The plain records a case holds, read from its rows, and the case's errors.

Frozen dataclasses, one per table (``Exhibit``, ``CaseFace``, ``Comparison``,
``StoredExplanation``, ``Annotation``, ``Conclusion``) and per answer
(``IntakeResult``, ``AuditEntry``, ``VerifyReport``); a row edited outside XFR
that cannot be read as its record is a ``CaseError``, never a traceback.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from core.errors import BadInputError
from core.faces.detect import Face

ROLE_PREFIX = {"probe": "Q", "gallery": "K"}  # questioned / known (forensic marks)
VIDEO_PREFIX = "V"  # a video exhibit (its frames become Q… / K… image exhibits)
# A face record's ``source`` when the examiner rejected it as not a face (a false
# detection): the row keeps the rejected geometry, is left out of ``Case.faces``
# (so of comparisons, 1:N and statistics) and its label stays reserved, so a
# restored face is the same ``K1#1`` as before.  Earlier rows keep the detector.
REJECTED_SOURCE = "rejected"
HAND_SOURCES = ("manual", "box")  # placed by the examiner (points / a drawn box)
# Audit actions that change one face, naming it in ``details["face"]``.
FACE_ACTIONS = ("faces.correct", "faces.reject", "faces.revert")
SHAPES = ("point", "rectangle", "ellipse", "polygon", "freehand")
# FISWG facial components (Facial Image Comparison Feature List, component level).
FISWG_COMPONENTS = (
    "skin",
    "face/head outline",
    "face/head composition",
    "hair",
    "forehead",
    "eyebrows",
    "eyes",
    "cheeks",
    "nose",
    "ears",
    "mouth",
    "chin/jawline",
    "neck",
    "facial hair",
    "facial lines",
    "scars",
    "facial marks",
    "alterations",
)

_Record = TypeVar("_Record")


class CaseError(BadInputError):
    """The case cannot be opened or changed (locked, damaged, newer format)."""


class CaseLockedError(CaseError):
    """Another window or process has the case open for writing."""


def now() -> str:
    """UTC time stamp, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def login_name() -> str:
    """The operating-system login, recorded beside the examiner's name."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still record something
        return "unknown"


# ---- plain records ---------------------------------------------------------------
@dataclass(frozen=True)
class CaseInfo:
    case_uuid: str
    case_number: str
    title: str
    agency: str
    examiner: str
    created: str
    modified: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Exhibit:
    id: int
    mark: str
    role: str
    sha256: str
    original_name: str
    size: int
    format: str
    width: int
    height: int
    exif_orientation: int
    exif: Mapping[str, Any]
    note: str
    intake_time: str
    intake_user: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "exif": dict(self.exif)}


@dataclass(frozen=True)
class Video:
    """A video exhibit: the file as stored (byte-identical) and as probed."""

    id: int
    mark: str
    role: str  # its frames become exhibits of this role
    sha256: str
    original_name: str
    size: int
    container: str
    info: Mapping[str, Any]  # streams, duration, creation time, decoder
    note: str
    intake_time: str
    intake_user: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "info": dict(self.info)}


@dataclass(frozen=True)
class CaseFace:
    id: int
    exhibit_id: int
    mark: str
    face_index: int
    bbox: tuple[float, float, float, float]
    landmarks5: np.ndarray = field(repr=False)
    landmarks68: np.ndarray | None = field(repr=False)
    score: float | None
    source: str
    created: str
    created_by: str
    superseded: bool = False  # replaced by a later detection or correction

    @property
    def rejected(self) -> bool:
        """The examiner rejected this record as not a face (``REJECTED_SOURCE``)."""
        return self.source == REJECTED_SOURCE

    @property
    def detected(self) -> bool:
        """Found by a detector (not placed by hand, not a rejection)."""
        return self.source not in (*HAND_SOURCES, REJECTED_SOURCE)

    @property
    def label(self) -> str:
        """``Q1`` for an exhibit's first face, ``Q1#2`` for its second."""
        return face_label(self.mark, self.face_index)

    def to_face(self) -> Face:
        return Face(
            bbox=self.bbox,
            landmarks5=self.landmarks5,
            landmarks68=self.landmarks68,
            score=self.score,
            source=self.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "mark": self.mark,
            "face_index": self.face_index,
            **self.to_face().to_dict(),
            "created": self.created,
            "created_by": self.created_by,
            "superseded": self.superseded,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class Comparison:
    id: int
    probe_face_id: int
    gallery_face_id: int
    model_id: str
    model_sha256: str
    similarity: float
    distance: float
    threshold: Mapping[str, Any]
    decision: str
    created: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "threshold": dict(self.threshold)}


@dataclass(frozen=True)
class StoredExplanation:
    id: int
    comparison_id: int
    method: str
    params: Mapping[str, Any]
    seed: int
    model_sha256: str
    software_version: str
    cache_key: str
    result: Mapping[str, Any]  # ExplanationResult.to_dict()
    maps_sha256: str
    created: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "params": dict(self.params), "result": self.result}


@dataclass(frozen=True)
class Annotation:
    id: int
    exhibit_id: int | None
    explanation_id: int | None
    shape: str
    points: tuple[tuple[float, float], ...]
    label: str
    note: str
    component: str | None
    author: str
    created: str
    modified: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class Conclusion:
    id: int
    comparison_id: int | None
    text: str
    author: str
    created: str


@dataclass(frozen=True)
class AuditEntry:
    """One entry; ``details`` is what the action recorded, without the row digests
    (``rows``) and the login name (``login``) that every entry also carries."""

    seq: int
    time: str
    user: str
    action: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str
    login: str = ""
    rows: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "details": dict(self.details),
            "rows": {t: dict(r) for t, r in self.rows.items()},
        }


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass(frozen=True)
class IntakeResult:
    added: tuple[Exhibit, ...]
    rejected: tuple[Rejection, ...]
    # added, but with a caution (e.g. only the first frame of an animation used)
    warnings: tuple[str, ...] = ()
    videos: tuple[Video, ...] = ()  # video exhibits added (V1, V2, ...)


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found; ``problems`` empty means intact."""

    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    audit_entries: int
    evidence_files: int
    derived_files: int
    first_broken_entry: int | None = None
    head: tuple[int, str] | None = None  # (seq, hash) of the last entry read
    state_digest: str = ""  # of the state the chain records at ``head``
    processed_exhibits: int = 0  # processed exhibits whose chain was re-run

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "intact": self.intact}


# ---- JSON ----------------------------------------------------------------------
def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for the values records hold (arrays, paths)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


# ---- checking values ---------------------------------------------------------------
def face_label(mark: str, index: int) -> str:
    """``Q1`` for an exhibit's first face, ``Q1#2`` for its third (index 2)."""
    return mark if index == 0 else f"{mark}#{index}"


def split_label(label: str) -> tuple[str, int]:
    mark, _, index = label.strip().upper().partition("#")
    if index and not index.isdigit():
        raise BadInputError(f"face label {label!r} should look like Q1 or Q1#2")
    return mark, int(index or 0)


def check_annotation(
    shape: str, points: Sequence[Sequence[float]], component: str | None
) -> list[list[float]]:
    if shape not in SHAPES:
        raise BadInputError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise BadInputError("annotation points must be finite (x, y) pairs")
    needed = {"point": 1, "rectangle": 2, "ellipse": 2, "polygon": 3, "freehand": 2}
    if len(array) < needed[shape] or (shape == "point" and len(array) != 1):
        raise BadInputError(
            f"a {shape} needs {'exactly' if shape == 'point' else 'at least'} "
            f"{needed[shape]} point(s), got {len(array)}"
        )
    if component is not None and component not in FISWG_COMPONENTS:
        raise BadInputError(
            f"unknown FISWG component {component!r} (one of: "
            f"{', '.join(FISWG_COMPONENTS)})"
        )
    pairs: list[list[float]] = array.tolist()
    return pairs


# ---- rows to records ---------------------------------------------------------------
def _malformed_as_case_error(
    table: str,
) -> Callable[[Callable[[sqlite3.Row], _Record]], Callable[[sqlite3.Row], _Record]]:
    """A stored row that cannot be read (edited outside XFR) is a CaseError."""

    def decorate(
        build: Callable[[sqlite3.Row], _Record],
    ) -> Callable[[sqlite3.Row], _Record]:
        def wrapper(row: sqlite3.Row) -> _Record:
            try:
                return build(row)
            except (ValueError, TypeError, KeyError, IndexError) as error:
                raise CaseError(
                    f"a stored {table} row cannot be read ({type(error).__name__}: "
                    f"{error}); the database was altered outside XFR - run "
                    "`xfr case verify`"
                ) from None

        return wrapper

    return decorate


@_malformed_as_case_error("case_info")
def case_info_from_row(row: sqlite3.Row) -> CaseInfo:
    return CaseInfo(*(row[key] for key in CaseInfo.__dataclass_fields__))


@_malformed_as_case_error("exhibits")
def exhibit_from_row(row: sqlite3.Row) -> Exhibit:
    values = dict(row)
    values["exif"] = json.loads(values["exif"])
    return Exhibit(**values)


@_malformed_as_case_error("videos")
def video_from_row(row: sqlite3.Row) -> Video:
    values = dict(row)
    values["info"] = json.loads(values["info"])
    return Video(**values)


@_malformed_as_case_error("faces")
def face_from_row(row: sqlite3.Row) -> CaseFace:
    return CaseFace(
        id=row["id"],
        exhibit_id=row["exhibit_id"],
        mark=row["mark"],
        face_index=row["face_index"],
        bbox=tuple(json.loads(row["bbox"])),
        landmarks5=np.asarray(json.loads(row["landmarks5"]), float),
        landmarks68=None
        if row["landmarks68"] is None
        else np.asarray(json.loads(row["landmarks68"]), float),
        score=row["score"],
        source=row["source"],
        created=row["created"],
        created_by=row["created_by"],
        superseded=bool(row["superseded"]),
    )


@_malformed_as_case_error("comparisons")
def comparison_from_row(row: sqlite3.Row) -> Comparison:
    values = dict(row)
    values["threshold"] = json.loads(values["threshold"])
    return Comparison(**values)


@_malformed_as_case_error("explanations")
def explanation_from_row(row: sqlite3.Row) -> StoredExplanation:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    values["result"] = json.loads(values["result"])
    return StoredExplanation(**values)


@_malformed_as_case_error("annotations")
def annotation_from_row(row: sqlite3.Row) -> Annotation:
    values = dict(row)
    values["points"] = tuple(tuple(p) for p in json.loads(values["points"]))
    return Annotation(**values)
