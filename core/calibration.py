"""Score-to-likelihood-ratio calibration (strength of evidence for the examiner).

A raw similarity score says nothing by itself about the strength of the evidence.
A :class:`Calibration` turns a model's score for a pair of face images into a
likelihood ratio

    LR = p(score | same person) / p(score | different people),

fitted on the genuine (same-person) and impostor (different-person) scores of a
reference set with the Netherlands Forensic Institute's ``lir`` package.  Without a
calibration made for the model in use there is no LR: nothing here ever invents one.

Methods (``method``):

* ``"logistic"`` (default): ``lir.algorithms.logistic_regression.LogitCalibrator``
  (class-balanced logistic regression, so the fitted log-odds are log-LRs), fitted
  *without* regularisation (``C=inf``: scikit-learn's default ``C=1`` shrinks the
  slope towards zero on scores in [0, 1] and understates the LRs).  The two fitted
  coefficients are stored; evaluating an LR needs numpy only, no refit.
* ``"kde"``: ``lir.algorithms.kde.KDECalibrator`` with Silverman's bandwidths.  A
  fitted KDE is not a handful of numbers, so the *training scores themselves* are
  stored in the JSON and the calibrator is refitted on load (deterministic: the
  same scores give the same densities); the file then grows with the reference set.

Bounds.  LRs are never extrapolated beyond what the reference set can support:

1. the score is first clipped to the range of the training scores
   (``score_range``), so that a score beyond everything seen gives the LR of the
   most extreme score seen;
2. the log10-LR is then clipped to the empirical lower and upper bounds (ELUB,
   Vergeer et al., Science & Justice 56 (2016) 482-491) computed by
   ``lir.algorithms.bayeserror.ELUBBounder`` on the training LRs (``llr_bounds``).

Cllr and Cllr_min (``lir.metrics.cllr`` / ``lir.metrics.cllr_min``) are computed on
the (bounded) LRs of the training scores themselves, i.e. in-sample; they describe
the fit, not an independent validation.  Cllr = 1 is an uninformative system (LR = 1
always), 0 a perfect one; Cllr_min is the Cllr after the best monotone
recalibration (the discrimination part) and is never above Cllr.

The verbal equivalents follow the ENFSI Guideline for Evaluative Reporting in
Forensic Science (European Network of Forensic Science Institutes, 2015), table of
verbal equivalents, see :func:`verbal_scale`.

Image conditions (format version 2).  A calibration describes the scores of the
faces it was fitted on, so it also records their *quality distribution*
(:class:`QualityDistribution`: per measure of :mod:`core.quality`, the minimum, 5th,
50th and 95th percentile and maximum over the reference faces, and how many faces):
:func:`quality_cautions` then says in plain words when a questioned or reference
face lies outside the 5th-95th percentile range of the faces the LR was fitted on.
A calibration may also hold one calibration per *quality band*
(:class:`QualityBands`, ``xfr calibrate --by-quality``): a pair is put in the band
of the *worse* of its two faces, because the worse face limits what the score can
say.  Version 1 files (no quality section) still load; their cautions say that the
image conditions are not recorded.

Only numpy is needed to load and evaluate a logistic calibration; ``lir`` is imported
when fitting (and to refit a KDE calibration).
"""

from __future__ import annotations

import bisect
import copy
import itertools
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import __version__, wording
from core.errors import BadInputError

if TYPE_CHECKING:  # core.quality pulls in OpenCV: imported where it is used
    from core.quality import FaceQuality

FORMAT = "xfr-calibration"
# 2: the quality distribution of the reference faces and optional quality bands
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
METHODS = ("logistic", "kde")
SCORE_KINDS = ("cosine",)
LN10 = math.log(10.0)

# ---- ENFSI (2015) verbal equivalents ----------------------------------------------
# (lower limit of the band, inclusive; words).  A boundary value belongs to the
# *higher* band, as in the guideline's last row "1,000,000 and above": LR = 10 is
# "moderate support", LR = 100 "moderately strong support", and so on.  For LR < 1
# the same bands are applied to 1/LR in favour of the different-source proposition.
ENFSI_BANDS: tuple[tuple[float, str], ...] = (
    (1_000_000.0, "extremely strong support"),
    (10_000.0, "very strong support"),
    (1_000.0, "strong support"),
    (100.0, "moderately strong support"),
    (10.0, "moderate support"),
    (1.0, "weak support"),
)
SAME_SOURCE = "the two images show the same person rather than different people"
DIFFERENT_SOURCE = "the two images show different people rather than the same person"
VERBAL_SCALE_SOURCE = (
    "ENFSI Guideline for Evaluative Reporting in Forensic Science (European Network "
    "of Forensic Science Institutes, 2015), verbal equivalents of the likelihood ratio"
)


def verbal_band(lr: float) -> str:
    """The ENFSI band of an LR, e.g. ``"moderate support"`` (``"no support"`` at 1).

    Bands (lower limit inclusive): [1, 10) weak, [10, 100) moderate, [100, 1,000)
    moderately strong, [1,000, 10,000) strong, [10,000, 1,000,000) very strong,
    >= 1,000,000 extremely strong; for LR < 1 the band of 1/LR.
    """
    value = float(lr)
    if math.isnan(value) or value < 0:
        raise ValueError(f"a likelihood ratio must be a number >= 0, got {lr!r}")
    if value == 1.0:
        return "no support"
    strength = value if value > 1.0 else (math.inf if value == 0 else 1.0 / value)
    for lower, words in ENFSI_BANDS:
        if strength >= lower:
            return words
    raise AssertionError("unreachable: strength >= 1")


def verbal_scale(lr: float) -> str:
    """The ENFSI (2015) verbal equivalent of an LR, as a sentence for a report.

    LR > 1 supports the same-person proposition, LR < 1 the different-people
    proposition (with the band of 1/LR), LR = 1 exactly supports neither.  A boundary
    value belongs to the higher band (LR = 10 is "moderate support"); see
    :func:`verbal_band`.  Source: :data:`VERBAL_SCALE_SOURCE`.
    """
    band = verbal_band(lr)
    if float(lr) == 1.0:
        return (
            "The similarity score is as probable if the two images show the same "
            "person as if they show different people: neither proposition is "
            "supported."
        )
    proposition = SAME_SOURCE if float(lr) > 1.0 else DIFFERENT_SOURCE
    return (
        f"The similarity score provides {band} for the proposition that {proposition}."
    )


# ---- the calibration ----------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """A fitted score-to-LR mapping for one model's scores (JSON via to_dict)."""

    model_id: str
    model_sha256: str
    score_kind: str  # "cosine": cosine similarity of the two embeddings
    method: str  # "logistic" | "kde"
    # logistic: {"intercept": a, "slope": b}, natural-log LR = a + b * score
    # (class-balanced, unregularised); kde: {"bandwidth": "silverman"}
    parameters: dict
    score_range: tuple[float, float]  # training scores' min and max (clip)
    llr_bounds: tuple[float, float]  # ELUB lower / upper log10-LR (clip)
    reference: str  # name / description of the reference set (data, seed, command)
    n_genuine: int
    n_impostor: int
    cllr: float
    cllr_min: float
    created: str  # ISO 8601, UTC
    software_version: str  # XFR Desktop version that fitted it
    lir_version: str
    # only for methods that are refitted on load (kde): the training scores
    training_scores: dict | None = None
    # image conditions of the reference faces (None: not recorded, version 1 files)
    quality: QualityDistribution | None = None
    # one calibration per quality band of the worse face of a pair (None: one for all)
    bands: QualityBands | None = None
    _fitted: object = field(default=None, init=False, repr=False, compare=False)

    # -- evaluation ---------------------------------------------------------------
    def log10_lrs(self, scores) -> np.ndarray:
        """Bounded log10-LRs of an array of scores (NaN scores give NaN)."""
        s = np.asarray(scores, dtype=float)
        clipped = np.clip(s, self.score_range[0], self.score_range[1])
        if self.method == "logistic":
            a = float(self.parameters["intercept"])
            b = float(self.parameters["slope"])
            llrs = (a + b * clipped) / LN10
        elif self.method == "kde":
            llrs = np.asarray(
                self._kde().transform(clipped.reshape(-1)), dtype=float
            ).reshape(clipped.shape)
        else:  # guarded in from_dict / fit; keeps the type checker honest
            raise BadInputError(f"unknown calibration method {self.method!r}")
        llrs = np.clip(llrs, self.llr_bounds[0], self.llr_bounds[1])
        return np.where(np.isnan(s), np.nan, llrs)

    def lrs(self, scores) -> np.ndarray:
        """Bounded LRs of an array of scores."""
        return np.power(10.0, self.log10_lrs(scores))

    def log10_lr(self, score: float) -> float:
        return float(self.log10_lrs(np.array([float(score)]))[0])

    def lr(self, score: float) -> float:
        return float(10.0 ** self.log10_lr(score))

    def verbal(self, score: float) -> str:
        """The ENFSI sentence for the LR of ``score``."""
        return verbal_scale(self.lr(score))

    def _kde(self):
        if self._fitted is None:
            scores = self.training_scores or {}
            genuine = np.asarray(scores.get("genuine", []), float)
            impostor = np.asarray(scores.get("impostor", []), float)
            object.__setattr__(
                self, "_fitted", _fit_kde(genuine, impostor, self.parameters)
            )
        return self._fitted

    # -- checks ---------------------------------------------------------------------
    def check_model(
        self, model_id: str, sha256: str, path: str | Path | None = None
    ) -> None:
        """Refuse a calibration made for another model (or other weights)."""
        if model_id != self.model_id or sha256 != self.model_sha256:
            raise BadInputError(
                f"this calibration was made for model {self.model_id} "
                f"(weights {self.model_sha256[:12]}…), not for {model_id} "
                f"(weights {sha256[:12]}…); its likelihood ratios do not apply",
                path,
            )

    # -- quality bands ------------------------------------------------------------
    def for_faces(
        self,
        questioned: FaceQuality | None = None,
        reference: FaceQuality | None = None,
    ) -> tuple[Calibration, QualityBand | None]:
        """The calibration that applies to a pair of faces, and its band.

        With bands, the band of the worse of the two faces' figures; without
        bands, or when either figure is not known, this calibration over all bands
        (band None): the band of the one known face - often the good reference
        photograph - would be the calibration least suited to the other.
        """
        if self.bands is None:
            return self, None
        figures = [
            figure_of(face, self.bands.measure) for face in (questioned, reference)
        ]
        if any(figure is None for figure in figures):
            return self, None
        value = worse_value(self.bands.measure, figures)
        if value is None:
            return self, None
        band = self.bands.band_of(value)
        return band.calibration, band

    # -- JSON -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        data: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
        # field by field, not asdict(): that would also copy the nested band
        # calibrations' fitted KDEs
        data.update(
            {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        )
        data.pop("_fitted", None)
        data["score_range"] = list(self.score_range)
        data["llr_bounds"] = list(self.llr_bounds)
        if data["training_scores"] is None:
            del data["training_scores"]
        data["quality"] = None if self.quality is None else self.quality.to_dict()
        if self.bands is None:
            del data["bands"]
        else:
            data["bands"] = self.bands.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict, path: str | Path | None = None) -> Calibration:
        def bad(problem: str) -> BadInputError:
            return BadInputError(f"not a usable calibration file: {problem}", path)

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise bad(f"'format' is not {FORMAT!r}")
        if data.get("format_version") not in READABLE_VERSIONS:
            raise bad(f"unsupported format_version {data.get('format_version')!r}")
        try:
            method = str(data["method"])
            score_kind = str(data["score_kind"])
            parameters = dict(data["parameters"])
            lo, hi = (float(v) for v in data["score_range"])
            llr_lo, llr_hi = (float(v) for v in data["llr_bounds"])
            calibration = cls(
                model_id=str(data["model_id"]),
                model_sha256=str(data["model_sha256"]),
                score_kind=score_kind,
                method=method,
                parameters=parameters,
                score_range=(lo, hi),
                llr_bounds=(llr_lo, llr_hi),
                reference=str(data["reference"]),
                n_genuine=int(data["n_genuine"]),
                n_impostor=int(data["n_impostor"]),
                cllr=float(data["cllr"]),
                cllr_min=float(data["cllr_min"]),
                created=str(data["created"]),
                software_version=str(data["software_version"]),
                lir_version=str(data.get("lir_version", "")),
                training_scores=data.get("training_scores"),
                quality=(
                    None
                    if data.get("quality") is None
                    else QualityDistribution.from_dict(data["quality"])
                ),
                bands=(
                    None
                    if data.get("bands") is None
                    else QualityBands.from_dict(data["bands"], path)
                ),
            )
        except KeyError as error:
            raise bad(f"field {error.args[0]!r} is missing") from None
        except (TypeError, ValueError) as error:
            raise bad(f"a field has the wrong type ({error})") from None
        if method not in METHODS:
            raise bad(f"unknown method {method!r} (known: {', '.join(METHODS)})")
        if score_kind not in SCORE_KINDS:
            raise bad(f"unknown score kind {score_kind!r}")
        if not (lo <= hi and llr_lo <= llr_hi) or not all(
            math.isfinite(v) for v in (lo, hi, llr_lo, llr_hi)
        ):
            raise bad("score_range / llr_bounds are not finite, ordered pairs")
        if method == "logistic":
            try:
                values = [float(parameters[k]) for k in ("intercept", "slope")]
            except (KeyError, TypeError, ValueError):
                raise bad("logistic parameters need 'intercept' and 'slope'") from None
            if not all(math.isfinite(v) for v in values):
                raise bad("logistic parameters are not finite")
        if method == "kde":
            scores = calibration.training_scores
            if (
                not isinstance(scores, dict)
                or not scores.get("genuine")
                or not (scores.get("impostor"))
            ):
                raise bad("a kde calibration needs its training_scores")
        return calibration


# ---- image conditions of the reference set ------------------------------------------
# The measures recorded for the reference faces: cheap once a face is found, and the
# ones that most change a model's scores (resolution, pose, blur, exposure, JPEG).
DISTRIBUTION_MEASURES = (
    "inter_eye_distance",
    "yaw",
    "pitch",
    "sharpness",
    "exposure",
    "contrast",
    "blockiness",
    "truncation",
)
# Angles are recorded and compared as their size (a face turned 30° left is as far
# from frontal as one turned 30° right).
ABSOLUTE_MEASURES = ("yaw", "pitch", "roll", "eye_line_roll")
PERCENTILES = (5.0, 50.0, 95.0)


def figure_of(face: FaceQuality | None, measure: str) -> float | None:
    """The face's figure for ``measure`` (its size for angles), None if unknown."""
    if face is None:
        return None
    try:
        value = face.value(measure)
    except KeyError:
        return None
    if value is None or not math.isfinite(value):
        return None
    return abs(value) if measure in ABSOLUTE_MEASURES else float(value)


@dataclass(frozen=True)
class MeasureDistribution:
    """One measure over the reference faces (angles: their absolute values)."""

    measure: str  # core.quality measure id
    name: str
    unit: str
    absolute: bool  # the figures are |value| (angles)
    faces: int  # faces with this figure
    minimum: float
    p5: float
    p50: float
    p95: float
    maximum: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureDistribution:
        return cls(
            measure=str(data["measure"]),
            name=str(data["name"]),
            unit=str(data["unit"]),
            absolute=bool(data["absolute"]),
            faces=int(data["faces"]),
            minimum=float(data["minimum"]),
            p5=float(data["p5"]),
            p50=float(data["p50"]),
            p95=float(data["p95"]),
            maximum=float(data["maximum"]),
        )


@dataclass(frozen=True)
class QualityDistribution:
    """The image conditions of the faces a calibration was fitted on."""

    faces: int  # reference faces measured
    measures: tuple[MeasureDistribution, ...]
    source: str = ""  # how the faces were measured (software, detector)

    def get(self, measure: str) -> MeasureDistribution | None:
        return next((m for m in self.measures if m.measure == measure), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": self.faces,
            "source": self.source,
            "measures": [m.to_dict() for m in self.measures],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityDistribution:
        return cls(
            faces=int(data["faces"]),
            measures=tuple(MeasureDistribution.from_dict(m) for m in data["measures"]),
            source=str(data.get("source", "")),
        )


def quality_distribution(
    qualities: Sequence[FaceQuality],
    measures: Sequence[str] = DISTRIBUTION_MEASURES,
    source: str = "",
) -> QualityDistribution:
    """Min / 5th / 50th / 95th percentile / max of each measure over ``qualities``
    (percentiles linearly interpolated, numpy's default); a measure no face has a
    figure for is left out."""
    recorded = []
    for measure in measures:
        figures = [
            v for face in qualities if (v := figure_of(face, measure)) is not None
        ]
        if not figures:
            continue
        example = next(
            value
            for face in qualities
            for value in face.values
            if value.measure == measure
        )
        p5, p50, p95 = (float(v) for v in np.percentile(figures, PERCENTILES))
        recorded.append(
            MeasureDistribution(
                measure=measure,
                name=example.name,
                unit=example.unit,
                absolute=measure in ABSOLUTE_MEASURES,
                faces=len(figures),
                minimum=float(min(figures)),
                p5=p5,
                p50=p50,
                p95=p95,
                maximum=float(max(figures)),
            )
        )
    return QualityDistribution(len(qualities), tuple(recorded), source)


def quality_cautions(
    calibration: Calibration,
    questioned: FaceQuality | None = None,
    reference: FaceQuality | None = None,
) -> tuple[str, ...]:
    """Plain-words cautions for an LR of this pair of faces: one per figure of either
    face outside the 5th-95th percentile range of the calibration's reference faces
    (none inside it), or the one caution that the calibration does not record them.

    The bounds are inclusive: a figure equal to the 5th or 95th percentile is
    inside.  A figure beyond the minimum or maximum is outside everything the
    calibration saw; one between them and the percentile is rare in it.  Angles
    are compared by size and only above the range: a face nearer frontal than the
    reference faces is not a caution.  On a measure's better side (a larger, a
    sharper face) only a figure beyond every reference face is a caution: known
    photographs are often sharper and larger than the reference set, and a
    caution on nearly every comparison would teach the reader to skip them.
    """
    from core.quality import get

    distribution = calibration.quality
    if distribution is None:
        return (wording.CALIBRATION_CONDITIONS_NOT_RECORDED,)
    cautions = []
    for role, face in (("questioned", questioned), ("reference", reference)):
        for recorded in distribution.measures:
            value = figure_of(face, recorded.measure)
            if value is None:
                continue
            better = get(recorded.measure).better
            if value < recorded.p5 and not recorded.absolute:
                beyond = value < recorded.minimum
                bound = recorded.minimum if beyond else recorded.p5
                side = "below"
            elif value > recorded.p95:
                beyond = value > recorded.maximum
                bound = recorded.maximum if beyond else recorded.p95
                side = "above"
            else:
                continue
            on_better_side = (better == "higher" and side == "above") or (
                better == "lower" and side == "below"
            )
            if on_better_side and not beyond:
                continue
            cautions.append(
                wording.calibration_range_caution(
                    role,
                    recorded.name,
                    recorded.unit,
                    recorded.absolute,
                    value,
                    side,
                    beyond,
                    bound,
                    better_side=on_better_side,
                )
            )
    return tuple(cautions)


# ---- quality bands --------------------------------------------------------------
# Fewer pairs of either kind than this in a band and its fit (and its EER) would
# rest on a handful of faces: the band is refused.
MIN_BAND_PAIRS = 20
# ``--by-quality MEASURE`` without ``--bands``: the inter-eye distances, and
# yaw in the steps of the quality summary's conventions.
DEFAULT_BANDS: dict[str, tuple[float, ...]] = {
    "inter_eye_distance": (16.0, 24.0, 32.0, 48.0),
    "yaw": (10.0, 20.0, 30.0, 45.0),
    "pitch": (10.0, 20.0, 35.0),
}


def band_measure(measure: str) -> str:
    """Check that ``measure`` can band pairs: a registered measure with a worse
    side (not mean luminance, whose middle is best)."""
    from core.quality import get

    found = get(measure)  # unknown: one line naming the known ones
    if found.better == "neither" and measure not in ABSOLUTE_MEASURES:
        raise BadInputError(
            f"quality measure '{measure}' has no worse side ({found.name}: a middle "
            "value is best), so pairs cannot be banded by it; choose another measure"
        )
    return measure


def parse_bands(text: str | None, measure: str) -> tuple[float, ...]:
    """``--bands 16,24,32,48`` -> the band edges, strictly increasing (None: the
    measure's default edges)."""
    if text is None:
        if measure not in DEFAULT_BANDS:
            raise BadInputError(
                f"--by-quality {measure} needs --bands EDGE,EDGE,... (default edges "
                f"exist only for {', '.join(DEFAULT_BANDS)})"
            )
        return DEFAULT_BANDS[measure]
    try:
        edges = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise BadInputError(
            f"--bands {text!r} is not a list of numbers, e.g. --bands 16,24,32,48"
        ) from None
    if not edges or not all(math.isfinite(e) for e in edges):
        raise BadInputError(
            f"--bands {text!r} gives no finite edge, e.g. --bands 16,24,32,48"
        )
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise BadInputError(
            f"--bands {text!r}: the edges must increase, e.g. --bands 16,24,32,48"
        )
    return edges


def worse_value(measure: str, values: Sequence[float | None]) -> float | None:
    """The worse of the known figures (angles already absolute): the smaller when
    higher is better, else the larger; None when none is known."""
    from core.quality import get

    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    higher_better = get(measure).better == "higher"
    return min(known) if higher_better else max(known)


def band_limits(
    edges: Sequence[float],
) -> list[tuple[float | None, float | None]]:
    """The bands of ``edges``: below the first, between neighbours, from the last
    on; each [low, high), None for an open end."""
    ends: list[float | None] = [None, *edges, None]
    return list(itertools.pairwise(ends))


def band_index(value: float, edges: Sequence[float]) -> int:
    """Which band of :func:`band_limits` holds ``value`` (a value on an edge belongs
    to the band above it)."""
    return bisect.bisect_right(list(edges), value)


def band_label(low: float | None, high: float | None, unit: str) -> str:
    """``"below 16 px"``, ``"16-24 px"``, ``"48 px and above"``."""
    suffix = f" {unit}" if unit in ("px", "deg") else ""

    def number(x: float) -> str:
        return f"{x:g}"

    if low is None and high is None:
        return "all"
    if low is None:
        return f"below {number(high)}{suffix}"  # type: ignore[arg-type]
    if high is None:
        return f"{number(low)}{suffix} and above"
    return f"{number(low)}-{number(high)}{suffix}"


@dataclass(frozen=True)
class QualityBand:
    """One band of a banded calibration: [low, high) of the worse face's figure."""

    low: float | None
    high: float | None
    label: str
    calibration: Calibration

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "label": self.label,
            "calibration": self.calibration.to_dict(),
        }


@dataclass(frozen=True)
class QualityBands:
    """One calibration per band of one quality measure."""

    measure: str
    unit: str
    edges: tuple[float, ...]
    bands: tuple[QualityBand, ...]  # len(edges) + 1, in order
    rule: str = "the worse of the two faces of a pair"

    def band_of(self, value: float) -> QualityBand:
        return self.bands[band_index(value, self.edges)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "unit": self.unit,
            "edges": list(self.edges),
            "rule": self.rule,
            "bands": [band.to_dict() for band in self.bands],
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], path: str | Path | None = None
    ) -> QualityBands:
        edges = tuple(float(e) for e in data["edges"])
        bands = tuple(
            QualityBand(
                low=None if b["low"] is None else float(b["low"]),
                high=None if b["high"] is None else float(b["high"]),
                label=str(b["label"]),
                calibration=Calibration.from_dict(b["calibration"], path),
            )
            for b in data["bands"]
        )
        if len(bands) != len(edges) + 1:
            raise BadInputError(
                f"not a usable calibration file: {len(edges)} band edges need "
                f"{len(edges) + 1} bands, the file has {len(bands)}",
                path,
            )
        return cls(
            measure=str(data["measure"]),
            unit=str(data.get("unit", "")),
            edges=edges,
            bands=bands,
            rule=str(data.get("rule", "the worse of the two faces of a pair")),
        )


def split_by_band(
    scores: Sequence[float] | np.ndarray,
    pair_values: Sequence[float | None],
    edges: Sequence[float],
) -> list[np.ndarray]:
    """The scores of each band (pairs whose worse figure is unknown left out)."""
    groups: list[list[float]] = [[] for _ in range(len(edges) + 1)]
    for score, value in zip(scores, pair_values, strict=True):
        if value is not None:
            groups[band_index(value, edges)].append(float(score))
    return [np.asarray(group, float) for group in groups]


def fit_banded_calibration(
    genuine_scores: Sequence[float] | np.ndarray,
    genuine_values: Sequence[float | None],
    impostor_scores: Sequence[float] | np.ndarray,
    impostor_values: Sequence[float | None],
    *,
    measure: str,
    unit: str,
    edges: Sequence[float],
    model_id: str,
    model_sha256: str,
    reference: str,
    method: str = "logistic",
    quality: QualityDistribution | None = None,
    min_pairs: int = MIN_BAND_PAIRS,
    source: str | Path | None = None,
) -> Calibration:
    """One calibration over all pairs, holding one per band of ``measure``.

    ``*_values``: each pair's worse figure (:func:`worse_value`).  Every band needs
    ``min_pairs`` genuine and impostor pairs; the first that has fewer is refused
    with one line naming the band and its counts.
    """
    genuine_bands = split_by_band(genuine_scores, genuine_values, edges)
    impostor_bands = split_by_band(impostor_scores, impostor_values, edges)
    limits = band_limits(edges)
    for (low, high), g, i in zip(limits, genuine_bands, impostor_bands, strict=True):
        if g.size < min_pairs or i.size < min_pairs:
            raise BadInputError(
                f"quality band {measure} {band_label(low, high, unit)} has "
                f"{g.size} genuine and {i.size} impostor pairs; a band needs at "
                f"least {min_pairs} of each to be calibrated: give fewer --bands or "
                "add reference pairs of that quality",
                source,
            )
    overall = fit_calibration(
        genuine_scores,
        impostor_scores,
        model_id=model_id,
        model_sha256=model_sha256,
        reference=reference,
        method=method,
    )
    bands = []
    for (low, high), g, i in zip(limits, genuine_bands, impostor_bands, strict=True):
        label = band_label(low, high, unit)
        band_calibration = fit_calibration(
            g,
            i,
            model_id=model_id,
            model_sha256=model_sha256,
            reference=f"{reference}; quality band {measure} {label}",
            method=method,
        )
        bands.append(QualityBand(low, high, label, band_calibration))
    return replace(
        overall,
        quality=quality,
        bands=QualityBands(measure, unit, tuple(edges), tuple(bands)),
    )


# ---- fitting ------------------------------------------------------------------------
def _lir_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lir")
    except PackageNotFoundError:
        return "unknown"


def _fit_kde(genuine: np.ndarray, impostor: np.ndarray, parameters: dict):
    from lir.algorithms.kde import KDECalibrator

    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)]).astype(
        int
    )
    return KDECalibrator(bandwidth=parameters.get("bandwidth", "silverman")).fit(
        scores, labels
    )


def _clean_scores(values, name: str) -> np.ndarray:
    scores = np.asarray(values, dtype=float).reshape(-1)
    if scores.size < 2:
        raise BadInputError(f"need at least two {name} scores, got {scores.size}")
    if not np.all(np.isfinite(scores)):
        raise BadInputError(f"the {name} scores contain NaN or infinite values")
    return scores


def fit_calibration(
    genuine_scores,
    impostor_scores,
    *,
    model_id: str,
    model_sha256: str,
    reference: str,
    method: str = "logistic",
    score_kind: str = "cosine",
) -> Calibration:
    """Fit a score-to-LR calibration on genuine / impostor scores with ``lir``."""
    from lir import metrics
    from lir.algorithms.bayeserror import ELUBBounder
    from lir.data.models import LLRData

    if method not in METHODS:
        raise BadInputError(
            f"unknown calibration method {method!r} (known: {', '.join(METHODS)})"
        )
    if score_kind not in SCORE_KINDS:
        raise BadInputError(f"unknown score kind {score_kind!r}")
    genuine = _clean_scores(genuine_scores, "genuine")
    impostor = _clean_scores(impostor_scores, "impostor")
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)]).astype(
        int
    )

    training_scores = None
    if method == "logistic":
        from lir.algorithms.logistic_regression import LogitCalibrator

        calibrator = LogitCalibrator(C=np.inf).fit(scores, labels)
        parameters = {
            "intercept": float(np.ravel(calibrator._logit.intercept_)[0]),
            "slope": float(np.ravel(calibrator._logit.coef_)[0]),
        }
        raw_llrs = (parameters["intercept"] + parameters["slope"] * scores) / LN10
    else:  # kde
        parameters = {"bandwidth": "silverman"}
        raw_llrs = np.asarray(
            _fit_kde(genuine, impostor, parameters).transform(scores), float
        )
        training_scores = {
            "genuine": [float(v) for v in genuine],
            "impostor": [float(v) for v in impostor],
        }

    # ELUB bounds from the training LLRs (lir's elub clips its input in place: copy)
    finite = np.clip(raw_llrs, -9.0, 9.0)
    bounder = ELUBBounder().fit(LLRData(features=finite.copy(), labels=labels))
    lower = float(bounder.lower_llr_bound)
    upper = float(bounder.upper_llr_bound)
    llrs = np.clip(finite, lower, upper)
    llr_data = LLRData(features=llrs, labels=labels)

    return Calibration(
        model_id=model_id,
        model_sha256=model_sha256,
        score_kind=score_kind,
        method=method,
        parameters=parameters,
        score_range=(float(scores.min()), float(scores.max())),
        llr_bounds=(lower, upper),
        reference=reference,
        n_genuine=int(genuine.size),
        n_impostor=int(impostor.size),
        cllr=float(metrics.cllr(llr_data)),
        cllr_min=float(metrics.cllr_min(llr_data)),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        software_version=f"{__version__} (Python {platform.python_version()})",
        lir_version=_lir_version(),
        training_scores=training_scores,
    )


# ---- files --------------------------------------------------------------------------
def save_calibration(cal: Calibration, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cal.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise BadInputError(
            f"cannot write the calibration ({error.strerror})", path
        ) from None
    return path


def load_calibration(
    path: str | Path, *, model_id: str | None = None, sha256: str | None = None
) -> Calibration:
    """Read a calibration; with ``model_id``/``sha256`` refuse one for another model."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("calibration file not found", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(
            f"cannot read the calibration file ({error})", path
        ) from None
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"the calibration file is damaged (not valid JSON: {error.msg} at line "
            f"{error.lineno})",
            path,
        ) from None
    calibration = Calibration.from_dict(data, path)
    if model_id is not None or sha256 is not None:
        calibration.check_model(
            model_id if model_id is not None else calibration.model_id,
            sha256 if sha256 is not None else calibration.model_sha256,
            path,
        )
    return calibration


def default_calibration_path(model_id: str) -> Path:
    """Where the calibration shipped for a model lives (it may not exist)."""
    return (
        Path(__file__).resolve().parent.parent
        / "resources"
        / "calibration"
        / (f"{model_id}.json")
    )


# ---- plotting data ------------------------------------------------------------------
def calibration_curve(
    cal: Calibration, genuine, impostor, *, bins: int = 10, points: int = 101
) -> dict:
    """Data to plot a calibration: the LR-vs-score curve and empirical LRs in bins.

    ``curve``: ``points`` scores over the training range with their bounded
    log10-LRs.  ``bins``: equal-width score bins over the range of the given scores,
    each with its genuine / impostor counts, the calibration's mean log10-LR of the
    scores in it, and the empirical log10-LR (share of genuine scores falling in the
    bin divided by the share of impostor scores; None when either count is 0).  Well
    calibrated: the two agree where there are enough pairs.
    """
    genuine = np.asarray(genuine, float).reshape(-1)
    impostor = np.asarray(impostor, float).reshape(-1)
    grid = np.linspace(cal.score_range[0], cal.score_range[1], points)
    every = np.concatenate([genuine, impostor])
    result: dict = {
        "curve": {
            "score": grid.tolist(),
            "log10_lr": cal.log10_lrs(grid).tolist(),
        },
        "bins": [],
        "n_genuine": int(genuine.size),
        "n_impostor": int(impostor.size),
    }
    if every.size == 0:
        return result
    edges = np.linspace(every.min(), every.max(), bins + 1)
    for i in range(bins):
        lo, hi = float(edges[i]), float(edges[i + 1])
        last = i == bins - 1

        def inside(x: np.ndarray, lo=lo, hi=hi, last=last) -> np.ndarray:
            return (x >= lo) & ((x <= hi) if last else (x < hi))

        g, m = inside(genuine), inside(impostor)
        n_g, n_i = int(g.sum()), int(m.sum())
        members = np.concatenate([genuine[g], impostor[m]])
        empirical = None
        if n_g and n_i and genuine.size and impostor.size:
            empirical = math.log10((n_g / genuine.size) / (n_i / impostor.size))
        result["bins"].append(
            {
                "low": lo,
                "high": hi,
                "n_genuine": n_g,
                "n_impostor": n_i,
                "mean_log10_lr": (
                    float(np.mean(cal.log10_lrs(members))) if members.size else None
                ),
                "empirical_log10_lr": empirical,
            }
        )
    return result


@dataclass(frozen=True)
class CalibrationCheck:
    """How a calibration performs on a set of scored pairs (ideally independent)."""

    data: str
    n_genuine: int
    n_impostor: int
    cllr: float  # of the calibration's bounded LRs on these pairs
    cllr_min: float  # after the best monotone recalibration (discrimination only)
    genuine_lr_below_1: float  # rate of misleading evidence, same-person pairs
    impostor_lr_above_1: float  # rate of misleading evidence, different people
    strongest_misleading_genuine_lr: float | None
    strongest_misleading_impostor_lr: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def check_calibration(
    cal: Calibration, genuine, impostor, data: str
) -> CalibrationCheck:
    """Cllr, Cllr_min and rates of misleading evidence of ``cal`` on these scores.

    On pairs the calibration was *not* fitted on this is a validation: Cllr well
    above Cllr_min means the LRs are miscalibrated for this kind of data, even if
    the model still discriminates.
    """
    from lir import metrics
    from lir.data.models import LLRData

    genuine = _clean_scores(genuine, "genuine")
    impostor = _clean_scores(impostor, "impostor")
    genuine_llr, impostor_llr = cal.log10_lrs(genuine), cal.log10_lrs(impostor)
    llrs = np.concatenate([genuine_llr, impostor_llr])
    labels = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)])
    llr_data = LLRData(features=llrs.copy(), labels=labels.astype(int))
    misleading_genuine = genuine_llr[genuine_llr < 0]
    misleading_impostor = impostor_llr[impostor_llr > 0]
    return CalibrationCheck(
        data=data,
        n_genuine=int(genuine.size),
        n_impostor=int(impostor.size),
        cllr=float(metrics.cllr(llr_data)),
        cllr_min=float(metrics.cllr_min(llr_data)),
        genuine_lr_below_1=float(np.mean(genuine_llr < 0)),
        impostor_lr_above_1=float(np.mean(impostor_llr > 0)),
        strongest_misleading_genuine_lr=(
            float(10 ** misleading_genuine.min()) if misleading_genuine.size else None
        ),
        strongest_misleading_impostor_lr=(
            float(10 ** misleading_impostor.max()) if misleading_impostor.size else None
        ),
    )


def plot_calibration(
    cal: Calibration, genuine, impostor, path: str | Path, title: str
) -> Path:
    """PNG: the calibration curve with empirical LRs per score bin, and the Tippett
    plot (share of same-person / different-people pairs with an LR above x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    genuine = _clean_scores(genuine, "genuine")
    impostor = _clean_scores(impostor, "impostor")
    data = calibration_curve(cal, genuine, impostor, bins=12)
    figure, (curve_axis, tippett_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    curve_axis.plot(
        data["curve"]["score"], data["curve"]["log10_lr"], "k-", label="calibration"
    )
    bins = [b for b in data["bins"] if b["empirical_log10_lr"] is not None]
    curve_axis.plot(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["empirical_log10_lr"] for b in bins],
        "o",
        color="C1",
        label="empirical (score bins of these pairs)",
    )
    curve_axis.axhline(0, color="grey", lw=0.6)
    curve_axis.set_xlabel(f"score ({cal.score_kind})")
    curve_axis.set_ylabel("log10 likelihood ratio")
    curve_axis.legend(fontsize=8)
    curve_axis.set_title("score → LR", fontsize=10)
    for values, label, colour in (
        (cal.log10_lrs(genuine), f"same person ({genuine.size})", "C0"),
        (cal.log10_lrs(impostor), f"different people ({impostor.size})", "C3"),
    ):
        ordered = np.sort(values)
        above = 1.0 - np.arange(ordered.size) / ordered.size
        tippett_axis.step(ordered, above, where="post", color=colour, label=label)
    tippett_axis.axvline(0, color="grey", lw=0.6)
    tippett_axis.set_xlabel("log10 likelihood ratio x")
    tippett_axis.set_ylabel("share of pairs with log10 LR ≥ x")
    tippett_axis.legend(fontsize=8)
    tippett_axis.set_title("Tippett plot", fontsize=10)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def calibration_for(model_id: str, sha256: str) -> Calibration | None:
    """The calibration shipped for this model and weights, or None (never invented)."""
    path = default_calibration_path(model_id)
    if not path.is_file():
        return None
    try:
        return load_calibration(path, model_id=model_id, sha256=sha256)
    except BadInputError:
        return None  # made for other weights: no LR rather than a wrong one


@dataclass(frozen=True)
class StrengthOfEvidence:
    """An LR for one pair as the examiner and the report are given it."""

    likelihood_ratio: float
    words: str  # the ENFSI sentence
    reference: str  # the reference set, its pair counts and Cllr (and band)
    # plain-words cautions on the image conditions (quality_cautions); empty when
    # both faces lie within the reference faces' 5th-95th percentiles
    cautions: tuple[str, ...] = ()
    band: str = ""  # the quality band whose calibration gave the LR ("" if none)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cautions": list(self.cautions)}


def evidence_strength(
    similarity: float,
    model_id: str,
    sha256: str,
    *,
    questioned: FaceQuality | None = None,
    reference: FaceQuality | None = None,
) -> StrengthOfEvidence | None:
    """The LR of a cosine score with its cautions, when the model is calibrated.

    A banded calibration gives the LR of the band of the worse of the two faces
    (:meth:`Calibration.for_faces`); the cautions compare both faces with the
    reference faces of the whole calibration.
    """
    calibration = calibration_for(model_id, sha256)
    if calibration is None:
        return None
    applied, band = calibration.for_faces(questioned, reference)
    lr = applied.lr(similarity)
    name = calibration.reference.split(":")[0].strip()
    described = (
        f"{name}, {applied.n_genuine} genuine + {applied.n_impostor} "
        f"impostor pairs, Cllr {applied.cllr:.3f}"
    )
    band_words = ""
    if band is not None and calibration.bands is not None:
        band_words = f"{calibration.bands.measure} {band.label}"
        described += f", quality band {band_words} ({calibration.bands.rule})"
    return StrengthOfEvidence(
        likelihood_ratio=lr,
        words=verbal_scale(lr),
        reference=described,
        cautions=quality_cautions(calibration, questioned, reference),
        band=band_words,
    )


def strength_of_evidence(
    similarity: float, model_id: str, sha256: str
) -> tuple[float, str, str] | None:
    """(LR, verbal sentence, reference set) for a cosine score, when calibrated.

    Without the faces' quality: a banded calibration gives its LR over all bands.
    :func:`evidence_strength` adds the faces' bands and cautions.
    """
    strength = evidence_strength(similarity, model_id, sha256)
    if strength is None:
        return None
    return strength.likelihood_ratio, strength.words, strength.reference
