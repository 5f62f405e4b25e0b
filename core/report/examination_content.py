"""What the report states about the examiner's own work (ACE-V), from the case.

Gathered like the rest of ``core.report.content``: plain data, so that the
sections lay it out without the case.  Sequential unmasking is decided by
``core.case.examination`` (``masked``); a masked pair's model results are never
gathered here, so no section can print them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core import wording
from core.calibration import calibration_for
from core.case import workflow
from core.case.acev import AcevRecord, Analysis, Evaluation, Verification, Worksheet
from core.case.examination import (
    Examination,
    ExaminationSettings,
    Figure,
    SeenStep,
)
from core.case.records import AuditEntry, Comparison
from core.case.store import Case

NOT_RECORDED = "not recorded"
EARLIER_FACE = "recorded for an earlier record of the face, replaced since"
MODEL_MASKED = "the model's results were not unmasked when the report was made"


@dataclass(frozen=True)
class AnalysisRow:
    """The latest analysis of one face by one role (None: not recorded)."""

    face: str
    side: str  # "questioned" or "known"
    role: str
    author: str
    created: str
    analysis: Analysis | None
    earlier_face: bool = False  # recorded for a face record since replaced


@dataclass(frozen=True)
class WorksheetRow:
    role: str
    author: str
    created: str
    worksheet: Worksheet
    earlier_face: bool = False


@dataclass(frozen=True)
class EvaluationRow:
    role: str
    author: str
    created: str
    evaluation: Evaluation
    results_seen: bool  # the model's results could be seen when it was recorded
    blind: bool
    earlier_face: bool = False


@dataclass(frozen=True)
class ModelResult:
    """An unmasked pair's model result, as the report relates it to the opinion."""

    model_id: str
    similarity: float
    decision: str
    lr_text: str  # the likelihood ratio, or why there is none
    gallery_size: int  # gallery faces this probe was compared with (this model)
    rank: int | None  # None: other pairs of the probe are masked (it would tell)


@dataclass(frozen=True)
class PairExamination:
    questioned: str
    known: str
    worksheets: tuple[WorksheetRow, ...]  # latest per role, examiner first
    evaluations: tuple[EvaluationRow, ...]  # every one, oldest first
    verification: Verification | None
    verification_by: str
    verification_time: str
    seen: tuple[SeenStep, ...]
    masked: bool
    model: ModelResult | None  # None when masked or not compared

    @property
    def title(self) -> str:
        return f"{self.questioned} / {self.known}"


@dataclass(frozen=True)
class FigureContent:
    figure: Figure
    rgb: np.ndarray | None  # None: the stored PNG could not be read


@dataclass(frozen=True)
class ExaminationContent:
    settings: ExaminationSettings
    setting_changes: tuple[AuditEntry, ...]
    analyses: tuple[AnalysisRow, ...]
    pairs: tuple[PairExamination, ...]
    verifiers: tuple[str, ...]
    figures: tuple[FigureContent, ...]
    processing: tuple[str, ...]  # sentences: what was done to the images
    validation: tuple[str, ...]  # sentences: the models' validation, error rates

    def pair(self, questioned: str, known: str) -> PairExamination | None:
        for item in self.pairs:
            if (item.questioned, item.known) == (questioned, known):
                return item
        return None


def gather_examination(
    case: Case, comparisons: Sequence[Comparison]
) -> ExaminationContent:
    """The ACE-V records of the case, for the pairs with records and the pairs
    of ``comparisons`` (the ones the report shows)."""
    exam = Examination(case)
    faces = case.faces()
    roles = {face.label: case.exhibit(face.mark).role for face in faces}
    records = exam.records()  # not blind: every role (the report follows the work)
    verifier_worked = any(r.role == "verifier" for r in records)
    analyses = []
    for role in ("examiner", "verifier") if verifier_worked else ("examiner",):
        for side, wanted in (("questioned", "probe"), ("known", "gallery")):
            for face in faces:
                if roles[face.label] != wanted:
                    continue
                found = [
                    r
                    for r in records
                    if r.stage == "analysis"
                    and r.role == role
                    and face.label in (r.questioned, r.known)
                ]
                last = found[-1] if found else None
                analyses.append(
                    AnalysisRow(
                        face.label,
                        side,
                        role,
                        last.author if last else "",
                        last.created if last else "",
                        last.analysis() if last else None,
                        bool(last and not last.current),
                    )
                )
    pairs: dict[tuple[str, str], None] = {}
    for record in records:
        if record.questioned and record.known:
            pairs[(record.questioned, record.known)] = None
    for comparison in comparisons:
        probe = case.face_by_id(comparison.probe_face_id).label
        pairs[(probe, case.face_by_id(comparison.gallery_face_id).label)] = None
    return ExaminationContent(
        settings=exam.settings(),
        setting_changes=tuple(exam.setting_changes()),
        analyses=tuple(analyses),
        pairs=tuple(
            _pair(case, exam, records, q, k, comparisons) for q, k in sorted(pairs)
        ),
        verifiers=tuple(exam.verifiers()),
        figures=tuple(_figure(case, f) for f in exam.figures()),
        processing=tuple(_processing(case, bool(comparisons))),
        validation=tuple(_validation(comparisons)),
    )


def _pair(
    case: Case,
    exam: Examination,
    records: Sequence[AcevRecord],
    questioned: str,
    known: str,
    comparisons: Sequence[Comparison],
) -> PairExamination:
    mine = [r for r in records if (r.questioned, r.known) == (questioned, known)]
    worksheets = []
    for role in ("examiner", "verifier"):
        found = [r for r in mine if r.stage == "worksheet" and r.role == role]
        if found:
            last = found[-1]
            worksheets.append(
                WorksheetRow(
                    role,
                    last.author,
                    last.created,
                    last.worksheet(),
                    not last.current,
                )
            )
    evaluations = tuple(
        EvaluationRow(
            r.role,
            r.author,
            r.created,
            r.evaluation(),
            r.evaluation().results_seen,
            r.blind,
            not r.current,
        )
        for r in mine
        if r.stage == "evaluation"
    )
    verified = [r for r in mine if r.stage == "verification"]
    masked = exam.masked(questioned, known, role="examiner")
    return PairExamination(
        questioned=questioned,
        known=known,
        worksheets=tuple(worksheets),
        evaluations=evaluations,
        verification=verified[-1].verification() if verified else None,
        # the verifier whose evaluation was compared, not who wrote the record
        verification_by=(
            verified[-1].verification().verifier or verified[-1].author
            if verified
            else ""
        ),
        verification_time=verified[-1].created if verified else "",
        seen=tuple(exam.seen_order(questioned, known)),
        masked=masked,
        model=None
        if masked
        else _model_result(
            case,
            questioned,
            known,
            comparisons,
            rank_hidden=exam.any_masked(questioned),
        ),
    )


def _model_result(
    case: Case,
    questioned: str,
    known: str,
    comparisons: Sequence[Comparison],
    *,
    rank_hidden: bool,
) -> ModelResult | None:
    probe, gallery = case.face(questioned), case.face(known)
    shown = [
        c
        for c in comparisons
        if (c.probe_face_id, c.gallery_face_id) == (probe.id, gallery.id)
    ]
    if not shown:
        return None
    comparison = shown[-1]
    current = {face.id for face in case.faces()}
    search = {
        c.gallery_face_id: c
        for c in case.comparisons()
        if c.probe_face_id == comparison.probe_face_id
        and c.model_sha256 == comparison.model_sha256
        and c.gallery_face_id in current | {comparison.gallery_face_id}
    }
    # ranked by the model's decision score, as the 1:N list ranks it
    if comparison.threshold.get("metric") == "euclidean":
        better = sum(1 for c in search.values() if c.distance < comparison.distance)
    else:
        better = sum(1 for c in search.values() if c.similarity > comparison.similarity)
    rank = None if rank_hidden else 1 + better
    strength = workflow.comparison_strength(case, comparison)
    lr_text = (
        "no likelihood ratio (no calibration is available for this model)"
        if strength is None
        else f"likelihood ratio {strength.likelihood_ratio:.3g} ({strength.reference})"
        + (
            ""
            if not strength.cautions
            # the sentence that prints it ends with its own full stop
            else " " + wording.lr_cautions_text(strength.cautions).rstrip(".")
        )
    )
    return ModelResult(
        comparison.model_id,
        comparison.similarity,
        comparison.decision,
        lr_text,
        len(search),
        rank,
    )


def _figure(case: Case, figure: Figure) -> FigureContent:
    try:
        from PIL import Image

        with Image.open(case.derived_path(figure.image_sha256)) as png:
            rgb = np.asarray(png.convert("RGB"))
    except Exception:  # a damaged derived file: the report says so, verify names it
        rgb = None
    return FigureContent(figure, rgb)


def _processing(case: Case, compared: bool) -> list[str]:
    """What was done to the images, in plain words (nothing is left unsaid)."""
    lines = []
    for exhibit in case.exhibits():
        if exhibit.exif_orientation not in (0, 1):
            lines.append(
                f"{exhibit.mark}: turned upright as its EXIF orientation "
                f"({exhibit.exif_orientation}) says, for viewing and analysis; the "
                "stored original is not changed."
            )
    if compared:
        lines.append(
            "For the model, each face was cut out and aligned on its five landmarks "
            "(a derived copy, recomputed from the original); the comparison views "
            "and saved figures use the same alignment on one eye line."
        )
    processed = [
        (
            d.mark,
            d.source,
            ", ".join(workflow.get_operation_name(op) for op in d.operations()),
        )
        for d in case.derivations.derivations()
    ]
    lines.append(
        wording.processed_exhibits_text(processed)
        if processed
        else wording.no_enhancement_text()
    )
    return lines


def _validation(comparisons: Sequence[Comparison]) -> list[str]:
    """The models' validation status and error rates, where the case has them."""
    lines = []
    for model_id, sha256 in sorted({(c.model_id, c.model_sha256) for c in comparisons}):
        calibration = calibration_for(model_id, sha256)
        if calibration is None:
            lines.append(
                f"{model_id}: validation on a stated reference set: not stated (no "
                "calibration or 'xfr eval verification' result for these weights is "
                "available to this report); its scores are not converted to "
                "likelihood ratios."
            )
        else:
            lines.append(
                f"{model_id}: calibrated on {calibration.reference} "
                f"({calibration.n_genuine} genuine and {calibration.n_impostor} "
                f"impostor pairs); Cllr {calibration.cllr:.3f} (minimum "
                f"{calibration.cllr_min:.3f}); fitted {calibration.created} by "
                f"software {calibration.software_version}. Error rates on other "
                "data, and on images like the ones in this case, are not stated."
            )
    return lines
