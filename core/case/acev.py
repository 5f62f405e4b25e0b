"""The examiner's own comparison, ACE-V: plain records, the feature list, the scale.

ACE-V (Analysis, Comparison, Evaluation, Verification) is the method ENFSI's Best
Practice Manual for Facial Image Comparison (ENFSI-BPM-DI-01, 2018) and FISWG's
Facial Comparison Overview and Methodology Guidelines describe:

* **Analysis** of each image on its own, the questioned one first: is it suitable,
  why (or why not), which facial components can be seen;
* **Comparison** of the two faces component by component, on the feature list of
  ASTM E3149 (FISWG's "Facial Image Comparison Feature List for Morphological
  Analysis"): the *worksheet*;
* **Evaluation**: the examiner's conclusion on a declared scale (by default the
  ENFSI verbal likelihood-ratio scale of the ENFSI Guideline for Evaluative
  Reporting, 2015), for two stated propositions;
* **Verification** by a second examiner, blind to the first one's records.

Everything here is plain data with ``to_dict``/``from_dict``: the case stores it as
JSON (``core.case.examination``), the report and the CLI print it.  No component is
measured: ASTM E3149 says photo-anthropometry (distances and ratios between
landmarks as evidence) is not to be used, and nothing here records a measurement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadInputError, printable

STAGES = ("analysis", "worksheet", "evaluation", "unmasking", "verification")
ROLES = ("examiner", "verifier")


# ---- the feature list (ASTM E3149 / FISWG feature list, component level) ------------
@dataclass(frozen=True)
class FeatureComponent:
    """One facial component of the feature list and the characteristics an
    examiner considers for it (our short wording, in the list's order)."""

    key: str
    name: str
    characteristics: tuple[str, ...]


# In the list's order, top of the face to the bottom (not an order of importance).
FEATURE_LIST: tuple[FeatureComponent, ...] = (
    FeatureComponent(
        "skin", "Skin", ("tone", "texture", "pores", "blemishes", "pigmentation")
    ),
    FeatureComponent(
        "face_head_outline",
        "Face/head outline",
        ("overall shape", "symmetry", "cranial vault", "occipital region"),
    ),
    FeatureComponent(
        "face_head_composition",
        "Face/head composition",
        ("proportions of the thirds", "position of the features", "symmetry"),
    ),
    FeatureComponent(
        "hair",
        "Hair",
        ("hairline", "colour", "length", "texture", "density", "parting", "style"),
    ),
    FeatureComponent(
        "forehead", "Forehead", ("height", "width", "slope", "brow ridges")
    ),
    FeatureComponent(
        "eyebrows",
        "Eyebrows",
        ("shape", "thickness", "density", "position", "separation", "asymmetry"),
    ),
    FeatureComponent(
        "eyes",
        "Eyes",
        (
            "fissure shape",
            "upper lid and fold",
            "lower lid",
            "corners (canthi)",
            "iris",
            "spacing",
            "protrusion",
        ),
    ),
    FeatureComponent(
        "cheeks", "Cheeks", ("cheekbones", "fullness", "cheek lines and dimples")
    ),
    FeatureComponent(
        "nose",
        "Nose",
        (
            "root (nasion)",
            "bridge and profile",
            "tip",
            "width",
            "nostrils (alae)",
            "septum and columella",
        ),
    ),
    FeatureComponent(
        "ears",
        "Ears",
        (
            "protrusion",
            "helix",
            "antihelix",
            "concha",
            "tragus",
            "lobe and its attachment",
        ),
    ),
    FeatureComponent(
        "mouth",
        "Mouth",
        ("width", "upper lip", "lower lip", "philtrum", "corners", "teeth"),
    ),
    FeatureComponent(
        "chin_jawline",
        "Chin/jawline",
        ("chin shape", "chin cleft or dimple", "jaw angle", "jawline"),
    ),
    FeatureComponent("neck", "Neck", ("width", "length", "laryngeal prominence")),
    FeatureComponent(
        "facial_hair",
        "Facial hair",
        ("moustache", "beard", "sideburns", "density", "colour"),
    ),
    FeatureComponent(
        "facial_lines",
        "Facial lines",
        ("forehead lines", "nasolabial folds", "crow's feet", "other creases"),
    ),
    FeatureComponent("scars", "Scars", ("location", "shape", "size")),
    FeatureComponent(
        "facial_marks",
        "Facial marks",
        ("moles", "freckles", "birthmarks", "other marks"),
    ),
    FeatureComponent(
        "alterations",
        "Alterations",
        ("tattoos", "piercings", "cosmetic or surgical changes", "make-up"),
    ),
)
FEATURES: dict[str, FeatureComponent] = {c.key: c for c in FEATURE_LIST}
FEATURE_LIST_SOURCE = (
    "ASTM E3149 Standard Practice for Facial Image Comparison Feature List for "
    "Morphological Analysis (FISWG feature list v2.0); characteristics as this "
    "software words them"
)

# What an examiner records for a component (or one of its characteristics).
OBSERVATIONS: dict[str, str] = {
    "not_visible": "not visible",
    "similar": "similar",
    "different_explained": "different, explainable by the image conditions",
    "different": "different, not explainable by the image conditions",
    "not_assessable": "not assessable",
}

# Why an image may be of limited use (ENFSI BPM appendix B; ISO/IEC 29794-5 terms).
IMAGE_FACTORS: tuple[str, ...] = (
    "resolution",
    "focus or motion blur",
    "compression",
    "lighting",
    "pose",
    "occlusion",
    "expression",
    "perspective or lens distortion",
    "interlacing or frame artefacts",
    "colour or white balance",
    "time between the images",
)
SUITABILITY: dict[str, str] = {
    "suitable": "suitable for comparison",
    "limited": "of limited suitability",
    "not_suitable": "not suitable for comparison",
}


def component_key(text: str) -> str:
    """A component's key from its key or name (``"Chin/jawline"``, ``"nose"``);
    also the names older annotations stored (``"chin/jawline"``)."""
    wanted = text.strip().lower()
    for component in FEATURE_LIST:
        if wanted in (component.key, component.name.lower()):
            return component.key
    aliases = {"face/head outline": "face_head_outline", "chin/jaw": "chin_jawline"}
    if wanted in aliases:
        return aliases[wanted]
    raise BadInputError(
        f"unknown facial component {text!r} (one of: "
        + ", ".join(c.key for c in FEATURE_LIST)
        + ")"
    )


# ---- the conclusion scale -----------------------------------------------------------
@dataclass(frozen=True)
class ScaleLevel:
    """One step of a conclusion scale.  ``support`` is +1 for the first
    proposition, -1 for the second, 0 for neither (or no conclusion)."""

    code: str
    words: str
    support: int
    likelihood_ratio: str = ""  # the range the words stand for, where declared

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "words": self.words,
            "support": self.support,
            "likelihood_ratio": self.likelihood_ratio,
        }


@dataclass(frozen=True)
class ConclusionScale:
    """A declared scale: the report prints every level, so a reader sees where
    the chosen one sits."""

    id: str
    name: str
    source: str
    levels: tuple[ScaleLevel, ...]

    def level(self, code: str) -> ScaleLevel:
        for level in self.levels:
            if level.code == code:
                return level
        raise BadInputError(
            f"{code!r} is not a level of the scale {self.name!r} (one of: "
            + ", ".join(level.code for level in self.levels)
            + ")"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "levels": [level.to_dict() for level in self.levels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConclusionScale:
        """A scale from JSON (a lab's own, or the one a case stored); checked."""
        shape = (
            "a conclusion scale is a JSON object with id, name and levels: a list "
            "of objects with code, words and support (1, 0 or -1)"
        )
        if not isinstance(data, Mapping) or not isinstance(data.get("levels"), list):
            raise BadInputError(shape)
        items = data["levels"]
        if not all(isinstance(item, Mapping) for item in items):
            raise BadInputError(shape)
        for number, item in enumerate(items, 1):
            if "code" not in item or "words" not in item:
                raise BadInputError(f"level {number} needs a code and words ({shape})")
            if item.get("support", 0) not in (-1, 0, 1) or isinstance(
                item.get("support", 0), bool
            ):
                raise BadInputError(
                    f"level {number}: support is 1, 0 or -1, not "
                    f"{item.get('support')!r}"
                )
        levels = tuple(
            ScaleLevel(
                printable(str(item["code"])).strip(),
                printable(str(item["words"])).strip(),
                int(item.get("support", 0)),
                printable(str(item.get("likelihood_ratio", ""))),
            )
            for item in items
        )
        scale = cls(
            printable(str(data.get("id", ""))).strip(),
            printable(str(data.get("name", ""))).strip(),
            printable(str(data.get("source", ""))),
            levels,
        )
        codes = [level.code for level in levels]
        if len(levels) < 2 or len(set(codes)) != len(codes) or "" in codes:
            raise BadInputError(
                "a conclusion scale needs at least two levels with distinct codes"
            )
        if any(level.support not in (-1, 0, 1) or not level.words for level in levels):
            raise BadInputError("each level needs words and a support of 1, 0 or -1")
        if not scale.id or not scale.name:
            raise BadInputError("a conclusion scale needs an id and a name")
        return scale


def _enfsi_levels() -> tuple[ScaleLevel, ...]:
    # (code, words, LR range for the first proposition, for the second)
    steps = (
        (
            "extremely_strong",
            "extremely strong",
            "above 1,000,000",
            "below 1/1,000,000",
        ),
        (
            "very_strong",
            "very strong",
            "10,000 to 1,000,000",
            "1/10,000 to 1/1,000,000",
        ),
        ("strong", "strong", "1,000 to 10,000", "1/1,000 to 1/10,000"),
        ("moderately_strong", "moderately strong", "100 to 1,000", "1/100 to 1/1,000"),
        ("moderate", "moderate", "10 to 100", "1/10 to 1/100"),
        ("weak", "weak or limited", "2 to 10", "1/2 to 1/10"),
    )
    same = tuple(
        ScaleLevel(
            f"{code}_same",
            f"{words.capitalize()} support for the first proposition (same person)",
            1,
            lr,
        )
        for code, words, lr, _ in steps
    )
    neither = ScaleLevel(
        "neither",
        "The observations do not support one proposition over the other",
        0,
        "about 1",
    )
    different = tuple(
        ScaleLevel(
            f"{code}_different",
            f"{words.capitalize()} support for the second proposition "
            "(different persons)",
            -1,
            lr,
        )
        for code, words, _, lr in reversed(steps)
    )
    no_opinion = ScaleLevel(
        "no_opinion",
        "No opinion: the material is not suitable for an evaluation",
        0,
    )
    return (*same, neither, *different, no_opinion)


ENFSI_SCALE = ConclusionScale(
    "enfsi-verbal-2015",
    "ENFSI verbal scale",
    "ENFSI Guideline for Evaluative Reporting in Forensic Science (2015), verbal "
    "equivalents of likelihood ratios",
    _enfsi_levels(),
)
DEFAULT_SCALE = ENFSI_SCALE


# ---- the records --------------------------------------------------------------------
def _text(value: Any, what: str, *, limit: int = 20_000) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInputError(f"{what} should be text")
    text = printable(value).strip()
    if len(text) > limit:
        raise BadInputError(f"{what} is longer than {limit} characters")
    return text


def _keys(values: Iterable[str], what: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        key = component_key(value)
        if key not in out:
            out.append(key)
    del what
    return tuple(out)


@dataclass(frozen=True)
class Analysis:
    """One image on its own: suitable or not, why, which components show."""

    suitability: str
    reasons: str = ""
    factors: tuple[str, ...] = ()
    visible: tuple[str, ...] = ()  # component keys
    not_visible: tuple[str, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if self.suitability not in SUITABILITY:
            raise BadInputError(
                f"suitability {self.suitability!r} is not one of "
                + ", ".join(SUITABILITY)
            )
        unknown = [f for f in self.factors if f not in IMAGE_FACTORS]
        if unknown:
            raise BadInputError(
                f"unknown image factor(s) {unknown} (one of: "
                + ", ".join(IMAGE_FACTORS)
                + ")"
            )
        both = set(self.visible) & set(self.not_visible)
        if both:
            raise BadInputError(
                f"{sorted(both)} cannot be both visible and not visible"
            )
        if self.suitability != "suitable" and not self.reasons:
            raise BadInputError(
                "an image of limited or no suitability needs the reasons written"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "suitability": self.suitability,
            "reasons": self.reasons,
            "factors": list(self.factors),
            "visible": list(self.visible),
            "not_visible": list(self.not_visible),
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        return cls(
            suitability=str(data.get("suitability", "")),
            reasons=_text(data.get("reasons"), "the reasons"),
            factors=tuple(str(f) for f in data.get("factors", ())),
            visible=_keys(data.get("visible", ()), "visible"),
            not_visible=_keys(data.get("not_visible", ()), "not visible"),
            notes=_text(data.get("notes"), "the notes"),
        )


@dataclass(frozen=True)
class FeatureObservation:
    """The examiner's observation of one component (or one characteristic)."""

    component: str
    value: str
    characteristic: str = ""
    notes: str = ""
    questioned_annotations: tuple[int, ...] = ()
    known_annotations: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.component not in FEATURES:
            raise BadInputError(f"unknown facial component {self.component!r}")
        if self.value not in OBSERVATIONS:
            raise BadInputError(
                f"observation {self.value!r} is not one of " + ", ".join(OBSERVATIONS)
            )
        known = FEATURES[self.component].characteristics
        if self.characteristic and self.characteristic not in known:
            raise BadInputError(
                f"{self.characteristic!r} is not a characteristic of "
                f"{FEATURES[self.component].name} (one of: {', '.join(known)})"
            )

    @property
    def name(self) -> str:
        component = FEATURES[self.component].name
        return (
            f"{component}: {self.characteristic}" if self.characteristic else component
        )

    @property
    def words(self) -> str:
        return OBSERVATIONS[self.value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "characteristic": self.characteristic,
            "value": self.value,
            "notes": self.notes,
            "questioned_annotations": list(self.questioned_annotations),
            "known_annotations": list(self.known_annotations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureObservation:
        def ids(key: str) -> tuple[int, ...]:
            values = data.get(key, ()) or ()
            try:
                return tuple(int(v) for v in values)
            except (TypeError, ValueError):
                raise BadInputError(f"{key} should be annotation numbers") from None

        return cls(
            component=component_key(str(data.get("component", ""))),
            value=str(data.get("value", "")),
            characteristic=_text(data.get("characteristic"), "the characteristic"),
            notes=_text(data.get("notes"), "the notes"),
            questioned_annotations=ids("questioned_annotations"),
            known_annotations=ids("known_annotations"),
        )


@dataclass(frozen=True)
class Worksheet:
    """The comparison, component by component, in the feature list's order."""

    observations: tuple[FeatureObservation, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        for item in self.observations:
            key = (item.component, item.characteristic)
            if key in seen:
                raise BadInputError(f"{item.name} is recorded twice in the worksheet")
            seen.add(key)

    def sorted(self) -> Worksheet:
        order = {c.key: i for i, c in enumerate(FEATURE_LIST)}

        def rank(item: FeatureObservation) -> tuple[int, int]:
            chars = FEATURES[item.component].characteristics
            position = (
                chars.index(item.characteristic) + 1 if item.characteristic else 0
            )
            return order[item.component], position

        return Worksheet(tuple(sorted(self.observations, key=rank)), self.notes)

    def observation(
        self, component: str, characteristic: str = ""
    ) -> FeatureObservation | None:
        for item in self.observations:
            if (item.component, item.characteristic) == (component, characteristic):
                return item
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "observations": [o.to_dict() for o in self.sorted().observations],
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Worksheet:
        items = data.get("observations", ())
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise BadInputError("a worksheet's observations are a list")
        return cls(
            tuple(FeatureObservation.from_dict(item) for item in items),
            _text(data.get("notes"), "the notes"),
        ).sorted()


@dataclass(frozen=True)
class Evaluation:
    """The examiner's conclusion on the case's declared scale."""

    scale_id: str
    level: str
    words: str
    reasoning: str = ""
    # the model's results for the pair could be seen when this was recorded
    # (unmasked, or sequential unmasking off): not a blind opinion
    results_seen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale_id,
            "level": self.level,
            "words": self.words,
            "reasoning": self.reasoning,
            "results_seen": self.results_seen,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        return cls(
            str(data.get("scale", "")),
            str(data.get("level", "")),
            str(data.get("words", "")),
            _text(data.get("reasoning"), "the reasoning"),
            bool(data.get("results_seen", False)),
        )


@dataclass(frozen=True)
class Verification:
    """The outcome of a verification: the two evaluations side by side and, when
    they differ, how the difference was resolved."""

    mode: str  # "blind" or "open"
    outcome: str  # "agreement", "disagreement"
    examiner_level: str
    verifier_level: str
    resolution: str = ""
    resolved_level: str = ""
    verifier: str = ""  # whose evaluation was compared (not who wrote this)
    resolved_by: str = ""

    @property
    def resolved(self) -> bool:
        return self.outcome == "agreement" or bool(self.resolution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "outcome": self.outcome,
            "examiner_level": self.examiner_level,
            "verifier_level": self.verifier_level,
            "resolution": self.resolution,
            "resolved_level": self.resolved_level,
            "verifier": self.verifier,
            "resolved_by": self.resolved_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        return cls(
            str(data.get("mode", "")),
            str(data.get("outcome", "")),
            str(data.get("examiner_level", "")),
            str(data.get("verifier_level", "")),
            _text(data.get("resolution"), "the resolution"),
            str(data.get("resolved_level", "")),
            str(data.get("verifier", "")),
            str(data.get("resolved_by", "")),
        )


@dataclass(frozen=True)
class Propositions:
    """The request and at least two competing propositions (ENFSI BPM 12)."""

    request: str = ""
    first: str = ""  # e.g. the person in Q1 is the person in K1
    second: str = ""  # e.g. the person in Q1 is someone else from the population
    population: str = ""

    @property
    def complete(self) -> bool:
        return bool(self.first and self.second)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "first": self.first,
            "second": self.second,
            "population": self.population,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Propositions:
        return cls(
            _text(data.get("request"), "the request"),
            _text(data.get("first"), "the first proposition"),
            _text(data.get("second"), "the second proposition"),
            _text(data.get("population"), "the relevant population"),
        )


@dataclass(frozen=True)
class AcevRecord:
    """One stored ACE-V record (a row of ``acev``): later rows of the same stage,
    role and faces revise earlier ones, and none is ever removed."""

    id: int
    stage: str
    role: str
    questioned: str
    known: str
    content: Mapping[str, Any] = field(repr=False)
    blind: bool
    author: str
    created: str
    questioned_face_id: int | None = None
    known_face_id: int | None = None
    # the face records it names are still the labels' current ones
    current: bool = True

    @property
    def faces(self) -> str:
        if self.questioned and self.known:
            return f"{self.questioned} / {self.known}"
        return self.questioned or self.known

    def analysis(self) -> Analysis:
        return Analysis.from_dict(self.content)

    def worksheet(self) -> Worksheet:
        return Worksheet.from_dict(self.content)

    def evaluation(self) -> Evaluation:
        return Evaluation.from_dict(self.content)

    def verification(self) -> Verification:
        return Verification.from_dict(self.content)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stage": self.stage,
            "role": self.role,
            "questioned": self.questioned,
            "known": self.known,
            "content": dict(self.content),
            "blind": self.blind,
            "author": self.author,
            "created": self.created,
            "questioned_face_id": self.questioned_face_id,
            "known_face_id": self.known_face_id,
            "current": self.current,
        }
