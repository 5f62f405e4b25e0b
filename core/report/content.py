"""What a report states, gathered from the case: every computation before layout.

Selection of comparisons and explanations, the faces and their superseded records,
the stored results, the per-pair faithfulness checks (and every model pass: the
checks themselves, the aligned chips of the correspondence figure), annotation
numbers, strength of evidence and reproducibility facts all end up in one
``ReportContent`` of plain typed data.  The sections in ``core.report.sections``
then lay that out without the case and without a model, so that a report can be
laid out, and its layout tested, from a stored content object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from core import wording
from core.case import workflow
from core.case.records import FACE_ACTIONS
from core.case.store import (
    Annotation,
    AuditEntry,
    Case,
    CaseFace,
    CaseInfo,
    Comparison,
    Conclusion,
    Exhibit,
    StoredExplanation,
)
from core.case.workflow import (
    DEFAULT_REFERENCE_FACES,
    check_faithfulness,
    face_view,
    load_evidence,
    load_result,
    stored_faithfulness,
)
from core.errors import BadInputError
from core.explain import infos
from core.explain.base import ExplainerInfo, ExplanationResult, FacePair, get
from core.metrics.pair_faithfulness import PairFaithfulness
from core.models.base import Threshold
from core.progress import ProgressCallback
from core.references import REFERENCES, Reference
from core.report import figures
from core.report.examination_content import (
    MODEL_MASKED,
    ExaminationContent,
    gather_examination,
)
from core.report.gallery_content import SearchContent, gather_gallery_searches
from core.report.processing_content import ProcessedExhibit, gather_processing
from core.report.quality_content import FaceQualityContent, gather_quality
from core.report.video_content import (
    FrameContent,
    VideoContent,
    gather_still_frames,
    gather_videos,
)
from core.version import __version__, source_commit

Selection = list[tuple[Comparison, list[StoredExplanation]]]


@dataclass
class ReportRequest:
    """What goes into the report; empty selections mean 'everything stored'."""

    comparisons: Sequence[tuple[str, str]] = ()  # (probe label, gallery label)
    comparison_ids: Sequence[int] = ()  # exact records, superseded ones included
    explanation_ids: Sequence[int] = ()
    layerwise: dict[tuple[str, str], Any] = field(default_factory=dict)
    signature_note: str = ""  # what the signing step will add, stated on the cover
    timestamp_note: str = ""
    # With a model, maps of a writable case without a stored faithfulness check are
    # checked (and the check kept in the case) before the report is laid out
    # (``check_faithfulness_of``, called by ``core.report.api.generate_report``);
    # the model's aligned chips also carry the correspondence figure.
    model: Any = None
    faithfulness_settings: Any = None  # FaithfulnessSettings; None: the default
    reference_faces: int | None = None  # None: workflow.DEFAULT_REFERENCE_FACES


@dataclass(frozen=True)
class Superseded:
    """A face of a comparison that a later step replaced (a new detection, a
    correction, a rejection, an undo or reset)."""

    face: CaseFace
    entry_seq: int | None  # the audit entry that replaced it (None: not found)
    how: str = "replaced"  # core.wording.face_replaced_words of that entry


def superseded_faces(case: Case, comparison: Comparison) -> list[Superseded]:
    """The comparison's faces that are no longer current, with the replacing entry."""
    faces = [
        case.face_by_id(comparison.probe_face_id),
        case.face_by_id(comparison.gallery_face_id),
    ]
    old = [face for face in faces if face.superseded]
    if not old:
        return []
    entries = case.audit_log()
    replaced = []
    for face in old:
        entry = _replacing_entry(entries, face)
        replaced.append(
            Superseded(
                face,
                None if entry is None else entry.seq,
                "replaced"
                if entry is None
                else wording.face_replaced_words(entry.action, entry.details),
            )
        )
    return replaced


def _replacing_entry(
    entries: Sequence[AuditEntry], face: CaseFace
) -> AuditEntry | None:
    """The audit entry that replaced ``face``.

    Faces are stamped just before the entry that records them is written, so the
    first entry about this face from its stamp on is the one that made it and the
    next one (a new detection of its exhibit or a correction of this face) is the
    one that replaced it.
    """
    about = [
        e
        for e in entries
        if e.time >= face.created
        and (
            (e.action == "faces.detect" and e.details.get("exhibit") == face.mark)
            or (e.action in FACE_ACTIONS and e.details.get("face") == face.label)
        )
    ]
    return about[1] if len(about) > 1 else None


def select_comparisons(case: Case, request: ReportRequest) -> Selection:
    """The comparisons the report shows, current ones first, and their explanations.

    Labels name the *current* faces, so a label-based choice never picks a
    comparison computed on a face that was replaced since; ``comparison_ids``
    can (the report then marks it SUPERSEDED).  The default is every explained
    comparison on current faces, else the best current one per probe.
    """
    comparisons = case.comparisons()
    if request.comparisons or request.comparison_ids:
        by_id = {c.id: c for c in comparisons}
        wanted: list[Comparison] = []
        for comparison_id in request.comparison_ids:
            if comparison_id not in by_id:
                raise BadInputError(
                    f"no comparison with id {comparison_id} in the case"
                )
            wanted.append(by_id[comparison_id])
        for probe, gallery in request.comparisons:
            wanted.append(_by_labels(case, comparisons, probe, gallery))
        comparisons = list({c.id: c for c in wanted}.values())  # once each, in order
    else:  # every current comparison that was explained, else the best per probe
        current = {f.id for f in case.faces()}
        comparisons = [
            c
            for c in comparisons
            if c.probe_face_id in current and c.gallery_face_id in current
        ]
        explained = {e.comparison_id for e in case.explanations()}
        chosen = [c for c in comparisons if c.id in explained]
        if not chosen:
            # a probe with a masked pair: all its pairs, since picking the best
            # would tell which masked pair the model scored highest
            exam = case.examination()
            masked = {
                c.probe_face_id
                for c in comparisons
                if exam.any_masked(case.face_by_id(c.probe_face_id).label)
            }
            chosen = [c for c in comparisons if c.probe_face_id in masked]
            best: dict[int, Comparison] = {}
            for comparison in comparisons:
                if comparison.probe_face_id in masked:
                    continue
                old = best.get(comparison.probe_face_id)
                if old is None or comparison.similarity > old.similarity:
                    best[comparison.probe_face_id] = comparison
            chosen += list(best.values())
        comparisons = chosen
    selection = []
    shown: set[int] = set()
    for comparison in comparisons:
        stored = case.explanations(comparison.id)
        if request.explanation_ids:
            stored = [e for e in stored if e.id in request.explanation_ids]
        shown.update(e.id for e in stored)
        selection.append((comparison, stored))
    left_out = sorted(set(request.explanation_ids) - shown)
    if left_out:  # asked for, but not in the report: say so rather than omit it
        known = {e.id: e for e in case.explanations()}
        first = left_out[0]
        if first not in known:
            raise BadInputError(f"no explanation with id {first} in the case")
        raise BadInputError(
            f"explanation {first} belongs to comparison {known[first].comparison_id}, "
            "which the report does not include (choose that comparison too)"
        )
    # current results first; superseded ones follow under their own heading
    selection.sort(key=lambda item: bool(superseded_faces(case, item[0])))
    return selection


def _by_labels(
    case: Case, comparisons: Sequence[Comparison], probe: str, gallery: str
) -> Comparison:
    probe_id, gallery_id = case.face(probe).id, case.face(gallery).id
    match = [
        c
        for c in comparisons
        if (c.probe_face_id, c.gallery_face_id) == (probe_id, gallery_id)
    ]
    if match:
        return match[-1]
    older = [
        c
        for c in comparisons
        if (
            case.face_by_id(c.probe_face_id).label,
            case.face_by_id(c.gallery_face_id).label,
        )
        == (probe, gallery)
    ]
    if older:
        raise BadInputError(
            f"the comparison {probe} × {gallery} was computed on a face that was "
            f"corrected since; compare them again ('xfr case compare CASE --probe "
            f"{probe}', or open the pair in the workstation) to report it"
        )
    raise BadInputError(
        f"no comparison {probe} × {gallery} in the case (run 'xfr case "
        "compare' or explain the pair first)"
    )


def _report_id(case: Case, selection: Selection, stamp: str) -> str:
    head = case.audit_log()[-1]
    payload = {
        "case": case.info().case_uuid,
        "audit_head": [head.seq, head.hash],
        "comparisons": [c.id for c, _ in selection],
        "explanations": [e.id for _, stored in selection for e in stored],
        "time": stamp,
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16].upper()


# ---- the content: plain data the sections lay out --------------------------------
@dataclass(frozen=True)
class ExhibitContent:
    exhibit: Exhibit
    thumbnail: np.ndarray | None  # None: the case's copy could not be read


@dataclass(frozen=True)
class ExplanationContent:
    stored: StoredExplanation
    result: ExplanationResult
    check: PairFaithfulness | None  # the stored per-pair faithfulness check
    not_checked: str  # why there is no check, in plain words


@dataclass(frozen=True)
class ComparisonContent:
    comparison: Comparison
    probe: CaseFace
    gallery: CaseFace
    superseded: tuple[Superseded, ...]  # its faces that were replaced since
    # exhibit mark -> numbered annotations
    annotations: Mapping[str, list[dict[str, Any]]]
    input_sha256: tuple[str, str]  # the exhibits of the probe and gallery faces
    decision_text: str
    strength_text: str
    explanations: tuple[ExplanationContent, ...]
    # the model's aligned chips (probe, gallery), for the correspondence figure;
    # None when the report is made without the model
    aligned_chips: tuple[np.ndarray, np.ndarray] | None
    layers: Any  # the layer-by-layer LIME strip, when one was computed
    manifest_entry: dict[str, Any]  # what the report's manifest records
    # sequential unmasking: the model's results were not unmasked, so none of them
    # (score, decision, LR, rank, maps) is gathered or printed
    masked: bool = False

    @property
    def faces(self) -> tuple[CaseFace, CaseFace]:
        return (self.probe, self.gallery)


@dataclass(frozen=True)
class MethodContent:
    info: ExplainerInfo
    superseded_only: bool  # used only by superseded comparisons
    reference: Reference | None  # the work it follows (core.references)


@dataclass(frozen=True)
class ReportContent:
    """Everything the report states; laying it out needs neither case nor model."""

    info: CaseInfo
    stamp: str  # when the report was made, ISO 8601 with the offset
    report_id: str
    texts: tuple[str, ...]  # every user-written string (font coverage)
    audit_seq: int
    audit_hash: str
    state_digest: str
    exhibits: tuple[ExhibitContent, ...]
    comparisons: tuple[ComparisonContent, ...]  # current ones first
    evidence: Mapping[str, np.ndarray]  # exhibit mark -> RGB, faces shown only
    annotations: tuple[Annotation, ...]
    conclusions: tuple[Conclusion, ...]
    methods: tuple[MethodContent, ...]  # used in the report, in registry order
    audit: tuple[AuditEntry, ...]
    signature_note: str = ""
    timestamp_note: str = ""
    software_version: str = __version__
    source_commit: str = field(default_factory=source_commit)
    examination: ExaminationContent | None = None  # the examiner's ACE-V records
    # the image quality of each current face compared (the per-image analysis)
    quality: tuple[FaceQualityContent, ...] = ()
    # the video exhibits, their tracking runs and the frames taken from them
    videos: tuple[VideoContent, ...] = ()
    # frames taken from multi-frame image exhibits (animations, multi-page files)
    still_frames: tuple[FrameContent, ...] = ()
    # the processed (derived) exhibits: their chains, hashes and re-run results
    processed: tuple[ProcessedExhibit, ...] = ()
    # searches against reference galleries, and the candidates pulled in from
    # them: exhibit mark -> the sentence that it is an investigative lead
    gallery_searches: tuple[SearchContent, ...] = ()
    leads: Mapping[str, str] = field(default_factory=dict)
    unscored_leads: Mapping[str, str] = field(default_factory=dict)  # no score

    def lead_note(self, mark_or_label: str, *, scored: bool = True) -> str | None:
        """The lead sentence of an exhibit (or of a face's exhibit) pulled in
        from a gallery search (``scored``: with the search's score); None for
        any other."""
        notes = self.leads if scored else self.unscored_leads
        return notes.get(mark_or_label.partition("#")[0].upper())

    def processed_exhibit(self, mark_or_label: str) -> ProcessedExhibit | None:
        """The processing record of an exhibit (or of a face's exhibit, "Q1.1#1");
        None for an original."""
        mark = mark_or_label.partition("#")[0].upper()
        return next((p for p in self.processed if p.mark == mark), None)

    @property
    def current(self) -> tuple[ComparisonContent, ...]:
        return tuple(c for c in self.comparisons if not c.superseded)

    @property
    def older(self) -> tuple[ComparisonContent, ...]:
        return tuple(c for c in self.comparisons if c.superseded)


def gather_content(
    case: Case,
    request: ReportRequest,
    selection: Selection | None = None,
    advance: Callable[[str], None] | None = None,
) -> ReportContent:
    """Read and compute everything the report states (``advance`` is told after
    each comparison)."""
    now = datetime.now().astimezone()
    stamp = now.isoformat(timespec="seconds")
    if selection is None:
        selection = select_comparisons(case, request)
    replaced = {c.id: superseded_faces(case, c) for c, _ in selection}
    report_id = _report_id(case, selection, stamp)
    seq, digest = case.head()
    searches, leads, unscored = gather_gallery_searches(case)
    exhibits = tuple(_exhibit_content(case, e) for e in case.exhibits())
    images: dict[str, np.ndarray] = {}

    def evidence(mark: str) -> np.ndarray:
        if mark not in images:
            images[mark] = load_evidence(case, mark).rgb
        return images[mark]

    comparisons = []
    for comparison, stored in selection:
        comparisons.append(
            _comparison_content(
                case, comparison, stored, request, replaced[comparison.id], evidence
            )
        )
        if advance is not None:
            suffix = " (superseded)" if replaced[comparison.id] else ""
            advance(f"comparison {comparison.id}{suffix}")
    return ReportContent(
        info=case.info(),
        stamp=stamp,
        report_id=report_id,
        texts=tuple(_case_texts(case)),
        audit_seq=seq,
        audit_hash=digest,
        state_digest=case.recorded_state(seq).digest(),
        exhibits=exhibits,
        comparisons=tuple(comparisons),
        evidence=images,
        annotations=tuple(case.annotations()),
        conclusions=tuple(case.conclusions()),
        methods=_methods(selection, replaced),
        # masked pairs' results are hidden in the trail too (the chain is not)
        audit=tuple(case.examination().redact(case.audit_log())),
        signature_note=request.signature_note,
        timestamp_note=request.timestamp_note,
        examination=gather_examination(case, [c for c, _ in selection]),
        quality=gather_quality(case, [c for c, _ in selection], request.model),
        videos=gather_videos(case),
        still_frames=gather_still_frames(case),
        processed=gather_processing(case),
        gallery_searches=searches,
        leads=leads,
        unscored_leads=unscored,
    )


def _exhibit_content(case: Case, exhibit: Exhibit) -> ExhibitContent:
    try:
        rgb = load_evidence(case, exhibit.mark).rgb
        thumbnail = figures.scale_to(rgb, 240)[0]
    except Exception:  # a damaged copy: the report states it, verify names it
        thumbnail = None
    return ExhibitContent(exhibit, thumbnail)


def _comparison_content(
    case: Case,
    comparison: Comparison,
    stored: Sequence[StoredExplanation],
    request: ReportRequest,
    replaced: Sequence[Superseded],
    evidence: Callable[[str], np.ndarray],
) -> ComparisonContent:
    probe = case.face_by_id(comparison.probe_face_id)
    gallery = case.face_by_id(comparison.gallery_face_id)
    faces = (probe, gallery)
    annotations = {face.mark: _numbered_annotations(case, face.mark) for face in faces}
    for face in faces:
        evidence(face.mark)
    if case.examination().masked_comparison(comparison):
        return _masked_content(case, comparison, replaced, annotations)
    chips = None
    if request.model is not None and stored:
        pair = FacePair(
            face_view(case, probe, request.model, "probe"),
            face_view(case, gallery, request.model, "gallery"),
        )
        chips = (pair.probe.chip, pair.gallery.chip)
    explanations = []
    for explanation in stored:
        result = load_result(case, explanation)
        explanations.append(
            ExplanationContent(
                stored=explanation,
                result=result,
                check=stored_faithfulness(case, explanation.id),
                not_checked=_not_checked(case, request, result, bool(replaced)),
            )
        )
    # keyed by labels, which name the current faces: never shown for an older pair
    layers = None if replaced else request.layerwise.get((probe.label, gallery.label))
    return ComparisonContent(
        comparison=comparison,
        probe=probe,
        gallery=gallery,
        superseded=tuple(replaced),
        annotations=annotations,
        input_sha256=(
            case.exhibit(probe.mark).sha256,
            case.exhibit(gallery.mark).sha256,
        ),
        decision_text=_plain_decision(comparison),
        strength_text=_strength_text(case, comparison),
        explanations=tuple(explanations),
        aligned_chips=chips,
        layers=layers,
        manifest_entry=_comparison_entry(case, comparison, replaced),
    )


def _masked_content(
    case: Case,
    comparison: Comparison,
    replaced: Sequence[Superseded],
    annotations: Mapping[str, list[dict[str, Any]]],
) -> ComparisonContent:
    """A masked pair: its faces only; no result, map or check is read."""
    probe = case.face_by_id(comparison.probe_face_id)
    gallery = case.face_by_id(comparison.gallery_face_id)
    entry = _comparison_entry(case, comparison, replaced)
    for key in ("similarity", "decision"):
        entry[key] = None  # the manifest does not carry it either
    entry["masked"] = True
    return ComparisonContent(
        # no section can print what it is not given
        comparison=dataclasses.replace(
            comparison, similarity=math.nan, distance=math.nan, decision=MODEL_MASKED
        ),
        probe=probe,
        gallery=gallery,
        superseded=tuple(replaced),
        annotations=annotations,
        input_sha256=(
            case.exhibit(probe.mark).sha256,
            case.exhibit(gallery.mark).sha256,
        ),
        decision_text=MODEL_MASKED,
        strength_text=MODEL_MASKED,
        explanations=(),
        aligned_chips=None,
        layers=None,
        manifest_entry=entry,
        masked=True,
    )


def _methods(
    selection: Selection, replaced: Mapping[int, Sequence[Superseded]]
) -> tuple[MethodContent, ...]:
    used = {e.method for _, stored in selection for e in stored}
    current = {
        e.method for c, stored in selection if not replaced[c.id] for e in stored
    }
    return tuple(
        MethodContent(
            info, info.method_id not in current, REFERENCES.get(info.reference)
        )
        for info in infos()
        if info.method_id in used
    )


def _case_texts(case: Case) -> list[str]:
    """Every user-written string the report may show (for one shared CJK subset)."""
    info = case.info()
    texts = [info.case_number, info.title, info.agency, info.examiner]
    texts += [
        t for e in case.exhibits() for t in (e.original_name, e.note, e.intake_user)
    ]
    texts += [
        t
        for v in case.videos.videos()
        for t in (v.original_name, v.note, v.intake_user)
    ]
    texts += [t for a in case.annotations() for t in (a.label, a.note, a.author)]
    texts += [t for c in case.conclusions() for t in (c.text, c.author)]
    texts += [
        e.user + json.dumps(e.details, ensure_ascii=False) for e in case.audit_log()
    ]
    return texts


def _strength_text(case: Case, comparison: Comparison) -> str:
    """The likelihood ratio and its ENFSI verbal equivalent, when calibrated, with
    the cautions on the faces' image conditions."""
    strength = workflow.comparison_strength(case, comparison)
    if strength is None:
        return (
            "Strength of evidence: no likelihood ratio is given, because no "
            "calibration is available for this model."
        )
    text = (
        f"Strength of evidence: likelihood ratio {strength.likelihood_ratio:.3g}. "
        f"{strength.words} The ratio comes from a calibration of this model's scores "
        f"on a reference set ({strength.reference}); it describes the score, not the "
        "case as a whole."
    )
    if strength.cautions:
        text += " " + wording.lr_cautions_text(strength.cautions)
    return text


def _plain_decision(comparison: Comparison) -> str:
    rule = Threshold.from_dict(dict(comparison.threshold)).rule_text()
    words = wording.decision_words(comparison.decision)
    verdict = f"the model scores the two faces as {words}"
    return f"Decision rule of the model: {rule}. Result: {verdict}."


def _comparison_entry(
    case: Case, comparison: Comparison, replaced: Sequence[Superseded]
) -> dict[str, Any]:
    """The manifest's record of one comparison (what a machine reader checks)."""
    probe = case.face_by_id(comparison.probe_face_id)
    gallery = case.face_by_id(comparison.gallery_face_id)
    return {
        "id": comparison.id,
        "probe": probe.label,
        "gallery": gallery.label,
        "probe_face_id": probe.id,
        "gallery_face_id": gallery.id,
        "model_sha256": comparison.model_sha256,
        "similarity": comparison.similarity,
        "decision": comparison.decision,
        "superseded": bool(replaced),
        "superseded_faces": [
            {
                "label": s.face.label,
                "face_id": s.face.id,
                "source": s.face.source,
                "created": s.face.created,
                "replaced_by_audit_entry": s.entry_seq,
            }
            for s in replaced
        ],
    }


def _numbered_annotations(case: Case, mark: str) -> list[dict[str, Any]]:
    numbers = {a.id: n for n, a in enumerate(case.annotations(), start=1)}
    return [
        {"number": numbers[a.id], "shape": a.shape, "points": a.points}
        for a in case.annotations(exhibit=mark)
    ]


def _current(result: ExplanationResult, model: Any) -> bool:
    """Whether ``explain`` with this model and software finds this very result again
    (so that a check made now belongs to it, not to a new explanation)."""
    try:
        version = get(result.method_id).info.algorithm_version
    except Exception:  # a method no longer registered
        return False
    return (
        result.model_sha256 == model.weights_sha256
        and result.software_version == __version__
        and result.algorithm_version == version
    )


def _not_checked(
    case: Case, request: ReportRequest, result: ExplanationResult, superseded: bool
) -> str:
    """Why a map has no stored faithfulness check, in plain words."""
    if case.read_only:
        why = wording.NOT_CHECKED_READ_ONLY
    elif request.model is None:
        why = wording.NOT_CHECKED_NO_MODEL
    elif superseded:
        why = wording.NOT_CHECKED_SUPERSEDED
    elif not _current(result, request.model):
        why = wording.NOT_CHECKED_OUTDATED
    else:
        why = wording.NOT_CHECKED_NOT_STORED
    return wording.not_checked_for_pair(why)


def check_faithfulness_of(
    case: Case, request: ReportRequest, progress: ProgressCallback | None = None
) -> int:
    """Check every selected map that has no stored check, keeping each in the case
    (``workflow.check_faithfulness``); returns how many were made.  Nothing is done
    without a model or on a read-only case: the report then says "not checked"."""
    if request.model is None or case.read_only:
        return 0
    todo = []
    for comparison, stored in select_comparisons(case, request):
        if superseded_faces(case, comparison):
            continue  # labels name the current faces, not this comparison's
        if case.examination().masked_comparison(comparison):
            continue  # its maps are not in the report
        for explanation in stored:
            if stored_faithfulness(case, explanation.id) is not None:
                continue
            result = load_result(case, explanation)
            if _current(result, request.model):
                todo.append((comparison, result))
    for number, (comparison, result) in enumerate(todo):
        probe = case.face_by_id(comparison.probe_face_id)
        gallery = case.face_by_id(comparison.gallery_face_id)
        message = f"faithfulness {number + 1} of {len(todo)} ({result.method_name})"
        check_faithfulness(
            case,
            probe.label,
            gallery.label,
            result.method_id,
            request.model,
            params=dict(result.params),
            seed=result.seed,
            settings=request.faithfulness_settings,
            reference_count=(
                DEFAULT_REFERENCE_FACES
                if request.reference_faces is None
                else request.reference_faces
            ),
            progress=_relabelled(progress, message),
        )
    return len(todo)


def _relabelled(
    progress: ProgressCallback | None, message: str
) -> ProgressCallback | None:
    """``progress`` told ``message`` instead of the check's own step names."""
    if progress is None:
        return None
    report = progress

    def relabelled(done: int, total: int, _message: str) -> None:
        report(done, total, message)

    return relabelled
