"""The report's processing log (issue 21): how each processed exhibit was made.

A processed exhibit (Q1.1) is an exhibit like any other to the rest of the
report; what makes it evidence is its record (``core.case.derivations``): the
source it was made from, the chain of non-generative operations in order with
their versions and parameters, what a step read besides its input (the frames a
frame average took), the hashes of the source file, of the source's pixels, of
the output pixels and of the stored PNG, the software and library versions and
the platform.  This gathers that record per processed exhibit, in plain words,
with the result of re-running the chain now (``case.derivations.check``), so that
the sections lay it out without the case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core import wording
from core.case import workflow
from core.case.derivations import Derivation
from core.case.store import Case
from core.errors import BadInputError
from core.processing import get
from core.processing.base import ProcessingError


@dataclass(frozen=True)
class StepParam:
    """One parameter of a recorded step: its value as recorded and its meaning."""

    name: str
    value: str
    meaning: str  # the operation's description of the parameter ("" if unknown)


@dataclass(frozen=True)
class ProcessingStep:
    """One step of a processed exhibit's chain, as recorded."""

    number: int  # from 1, in the order applied
    op_id: str
    name: str  # the operation's display name (its id when this XFR lacks it)
    version: int | None  # None: the record does not say
    params: tuple[StepParam, ...]
    description: str  # the operation's one sentence (what is done, how rounded)
    implementation: str  # the library call(s)
    read: tuple[str, ...]  # what the step read besides its input, in words

    @property
    def params_text(self) -> str:
        """ "black=10, white=240, gamma=1.2" ("none" for an operation without)."""
        return ", ".join(f"{p.name}={p.value}" for p in self.params) or "none"


@dataclass(frozen=True)
class ProcessedExhibit:
    """A processed exhibit: where it came from, how it was made, and whether
    re-running its chain now gives its pixels again."""

    mark: str
    source: str  # the exhibit it was made from (itself possibly processed)
    original: str  # the original at the top of its lineage
    lineage: str  # "Q1 → Q1.1 → Q1.1.1"
    note: str  # workflow.derived_note: what faces, scores and maps on it are of
    steps: tuple[ProcessingStep, ...]
    source_sha256: str  # the source's evidence file
    source_pixels_sha256: str  # the source's pixels as analysed
    output_sha256: str  # the output pixels, as recorded
    stored_sha256: str  # the stored PNG file
    software_version: str
    libraries: tuple[tuple[str, str], ...]  # (library, version), platform last
    created: str
    created_by: str
    rerun_ok: bool  # re-created bit for bit and the stored image holds them
    rerun: tuple[str, ...]  # the re-run's result in words: problems, warnings
    recreated_sha256: str | None  # what the re-run gave (None: it could not run)

    @property
    def operations(self) -> str:
        """ "levels and gamma, unsharp mask" (its own chain, lower case)."""
        return ", ".join(step.name.lower() for step in self.steps)


def gather_processing(case: Case) -> tuple[ProcessedExhibit, ...]:
    """Every processed exhibit of the case, in the order they were made."""
    return tuple(_processed(case, d) for d in case.derivations.derivations())


def _processed(case: Case, derivation: Derivation) -> ProcessedExhibit:
    mark = derivation.mark
    marks = case.derivations.lineage_marks(mark)
    libraries = dict(derivation.libraries)
    platform = libraries.pop("platform", None)
    ordered = sorted(libraries.items())
    if platform is not None:
        ordered.append(("platform", platform))
    ok, rerun, recreated = _rerun(case, mark)
    return ProcessedExhibit(
        mark=mark,
        source=derivation.source,
        original=marks[0],
        lineage=wording.derivation_lineage_text(marks),
        note=workflow.derived_note(case, mark) or "",
        steps=tuple(
            _step(number, step, inputs)
            for number, (step, inputs) in enumerate(
                zip(derivation.steps, _padded(derivation), strict=True), start=1
            )
        ),
        source_sha256=derivation.source_sha256,
        source_pixels_sha256=derivation.source_pixels_sha256,
        output_sha256=derivation.output_sha256,
        stored_sha256=case.exhibit(mark).sha256,
        software_version=derivation.software_version,
        libraries=tuple(ordered),
        created=derivation.created,
        created_by=derivation.created_by,
        rerun_ok=ok,
        rerun=tuple(rerun),
        recreated_sha256=recreated,
    )


def _padded(derivation: Derivation) -> list[Mapping[str, Any]]:
    """One inputs record per step (an older or damaged record may have fewer)."""
    inputs: list[Mapping[str, Any]] = [
        i if isinstance(i, Mapping) else {} for i in derivation.inputs
    ]
    return (inputs + [{}] * len(derivation.steps))[: len(derivation.steps)]


def _rerun(case: Case, mark: str) -> tuple[bool, list[str], str | None]:
    """Re-run the chain now: (bit for bit, the result in words, the hash made)."""
    try:
        check = case.derivations.check(mark)
    except BadInputError as error:  # a source that cannot be read at all
        return False, [wording.processing_rerun_failed(mark, error.reason)], None
    if check.ok:
        lines = [wording.processing_rerun_ok(mark, check.recorded)]
    else:
        lines = [wording.processing_rerun_failed(mark, p) for p in check.problems]
    lines += [wording.processing_rerun_warning(mark, w) for w in check.warnings]
    return check.ok, lines, check.recreated


def _step(
    number: int, step: Mapping[str, Any], inputs: Mapping[str, Any]
) -> ProcessingStep:
    op_id = str(step.get("op", "?"))
    raw = step.get("params")
    params: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    version = step.get("version")
    try:
        info = get(op_id).info
    except ProcessingError:  # recorded by an XFR that had it: shown as recorded
        info = None
    meanings = {p.name: p.description for p in info.params} if info else {}
    order = [name for name in meanings if name in params] + [
        name for name in params if name not in meanings
    ]
    return ProcessingStep(
        number=number,
        op_id=op_id,
        name=info.display_name if info else op_id,
        version=version if isinstance(version, int) else None,
        params=tuple(
            StepParam(name, _value(params[name]), meanings.get(name, ""))
            for name in order
        ),
        description=(
            info.description if info else wording.PROCESSING_OPERATION_UNKNOWN
        ),
        implementation=info.implementation if info else "",
        read=tuple(_inputs_words(inputs)),
    )


def _value(value: Any) -> str:
    """A recorded value as the step's description shows it (10, 1.2, 0,0,64,64)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "automatic"
    return str(value)


def _inputs_words(inputs: Mapping[str, Any]) -> list[str]:
    """What a step read besides its input pixels (frames averaged), in words."""
    lines = []
    for frame in inputs.get("frames") or ():
        if not isinstance(frame, Mapping):
            continue
        shift = frame.get("shift")
        moved = (
            f", shifted by ({float(shift[0]):.2f}, {float(shift[1]):.2f}) pixels to "
            "register it"
            if isinstance(shift, Sequence) and len(shift) == 2 and any(shift)
            else ""
        )
        offset = frame.get("offset")
        video = frame.get("video") or ""
        source = (
            f" of video {video} (SHA-256 {frame['video_sha256']})"
            if frame.get("video_sha256")
            else f" of the image with SHA-256 {frame['image_sha256']}"
            if frame.get("image_sha256")
            else ""
        )
        lines.append(
            f"frame {frame.get('frame_number', '?')}{source}"
            + (f" (offset {int(offset):+d})" if isinstance(offset, int) else "")
            + f", decoded pixels SHA-256 {frame.get('frame_sha256', 'not recorded')}"
            + moved
        )
    missing = inputs.get("missing_offsets") or ()
    if missing:
        lines.append(
            "offsets "
            + ", ".join(f"{int(o):+d}" for o in missing)
            + " asked for but not in the video (left out of the average)"
        )
    rest = {k: v for k, v in inputs.items() if k not in ("frames", "missing_offsets")}
    if rest:  # anything else a step recorded: as recorded, nothing left unsaid
        lines.append(json.dumps(rest, sort_keys=True, default=str))
    return lines
