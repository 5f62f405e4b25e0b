"""The examiner's report as a PDF (reportlab platypus), built from the case alone.

Sections: cover; exhibits with their SHA-256; per comparison the faces, the scores
in plain words and each selected explanation (similarity and dissimilarity panels
with a colour bar and a plain reading); the examiner's annotations and conclusion
(verbatim); limitations; reproducibility block; methods appendix; the audit trail.
Every page carries the case number, the report id and "page x of y".

The report id is a hash of what the report states (case, audit-log head, selected
comparisons and explanations, time): two reports of different case states never
share an id.  Generating a report is itself recorded in the case's audit trail,
with the PDF's SHA-256 (``core.report.api.generate_report``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core import APP_NAME, __version__
from core.calibration import strength_of_evidence
from core.case.store import Case, CaseFace, Comparison, StoredExplanation
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
from core.explain.base import ExplanationResult, FacePair, get
from core.explain.methods.components import FISWG_NAMES, component_table_rows
from core.explain.render import colour_map
from core.explain.render_correspondence import render_correspondence
from core.explain.stability import stability_sentence
from core.metrics.pair_faithfulness import (
    LAYER_MAPS_NOT_CHECKED,
    MapFaithfulness,
    PairFaithfulness,
    verdict_sentence,
)
from core.models.base import Threshold
from core.report import figures
from core.report.fonts import coverage_warning, markup, register_fonts

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
ProgressCallback = Callable[[int, int, str], None]

LIMITATIONS = (
    "The similarity score comes from an automatic face-recognition model. It "
    "measures how alike the model finds two face images; it is not a probability "
    "that the two images show the same person, and it is not an identification.",
    "The model can be wrong, more so for low resolution, blur, compression, "
    "unusual pose, occlusion, illumination, age difference or image manipulation. "
    "Its decision threshold was set by its authors on other data; it is not "
    "calibrated for this case.",
    "A heatmap shows where the model's score for this pair is sensitive, under one "
    "explanation method and the test stated with it. Different methods can "
    "highlight different regions, and a region without colour is not proven "
    "irrelevant.",
    "Each map carries the verdict of a faithfulness check for this pair: the face "
    "was removed region by region in the map's order while the model's decision was "
    "followed. 'Pair-specific' means that this order changed the decision faster "
    "than random orders, than one fixed face-centre map that is the same for every "
    "pair, and than the same method's maps for other faces. 'No better "
    "than a generic face prior' means that a map knowing nothing about this pair "
    "did as well; 'not shown' means that the check did not bear the map out.",
    "Even a pair-specific map does not show that the highlighted regions look the "
    "same in both faces, nor why the model weighs them, nor anything about identity; "
    "it does not show which features a human examiner should rely on.",
    "The maps and scores support, and do not replace, the examiner's own "
    "morphological comparison (ACE-V). The conclusion in this report is the "
    "examiner's; the software does not propose one.",
)

READINGS = {
    "similarity": (
        "Warm colours (yellow to red) mark the regions that most supported the "
        "model's 'same person' score; blue or uncoloured regions supported it little."
    ),
    "dissimilarity": (
        "Warm colours mark the regions that most pushed the model towards "
        "'different people'; blue or uncoloured regions did so little."
    ),
    "combined": (
        "Red marks regions that supported 'same person', blue regions that supported "
        "'different people'; white or uncoloured regions had little influence."
    ),
}


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
class BuiltReport:
    pdf: bytes
    report_id: str
    pages: int
    comparisons: tuple[int, ...]
    explanations: tuple[int, ...]
    evidence_sha256: tuple[str, ...]
    # per comparison: its pair, result and whether a face of it was superseded
    comparison_entries: tuple[dict[str, Any], ...] = ()

    @property
    def superseded_comparisons(self) -> tuple[int, ...]:
        return tuple(e["id"] for e in self.comparison_entries if e["superseded"])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


# ---- styles and small helpers -------------------------------------------------------
class _Styles:
    def __init__(self, texts: Sequence[str] = ()) -> None:
        self.fonts = register_fonts(texts)
        base = getSampleStyleSheet()
        regular, bold = self.fonts.regular, self.fonts.bold

        def style(name: str, parent: str, **kwargs: Any) -> ParagraphStyle:
            return ParagraphStyle(name, parent=base[parent], fontName=regular, **kwargs)

        self.body = style("xfr-body", "BodyText", fontSize=9.5, leading=12.5)
        self.small = style("xfr-small", "BodyText", fontSize=7.5, leading=9.5)
        self.mono = ParagraphStyle(
            "xfr-mono", parent=self.small, fontName=self.fonts.mono, fontSize=7
        )
        self.hash = ParagraphStyle(
            "xfr-hash", parent=self.small, fontName=self.fonts.mono, fontSize=6.3
        )
        self.title = style("xfr-title", "Title", fontSize=20, leading=24)
        self.title.fontName = bold
        self.h1 = style("xfr-h1", "Heading1", fontSize=15, leading=19, spaceBefore=6)
        self.h1.fontName = bold
        self.h2 = style("xfr-h2", "Heading2", fontSize=12, leading=15, spaceBefore=8)
        self.h2.fontName = bold
        self.caption = style(
            "xfr-caption", "BodyText", fontSize=8, leading=10, alignment=TA_CENTER
        )

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        """A paragraph of trusted template markup (user text goes through ``u``)."""
        return Paragraph(str(text), style or self.body)

    def u(self, text: Any, *, bold: bool = False) -> str:
        """User text (names, notes, labels) as escaped markup in any script."""
        return markup(str(text), bold=bold, fonts=self.fonts)


def _plain_table(rows: list[list[Any]], widths: Sequence[float] | None = None):
    """A layout grid of flowables (figures side by side), no rules."""
    return Table(rows, colWidths=widths)


def _table(rows: list[list[Any]], widths: Sequence[float], header: bool = True):
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
    table.setStyle(TableStyle(commands))
    return table


def _image(rgb: np.ndarray, width: float) -> Image:
    height = width * rgb.shape[0] / rgb.shape[1]
    return Image(io.BytesIO(figures.png_bytes(rgb)), width=width, height=height)


def colour_bar(kind: str, peak: float, width: float, font: str) -> Drawing:
    """A vector colour bar with its value range (the same LUT as the panels)."""
    signed = kind == "combined"
    low, high = (-peak, peak) if signed else (0.0, peak)
    steps = 64
    ramp = np.linspace(low, high, steps)[None, :]
    rgb, _, _ = colour_map(ramp, signed, peak=peak)
    drawing = Drawing(width, 22)
    bar_width = width - 90
    for index in range(steps):
        r, g, b = (rgb[0, index] / 255.0).tolist()
        drawing.add(
            Rect(
                45 + index * bar_width / steps, 10, bar_width / steps + 0.3, 8,
                fillColor=colors.Color(r, g, b), strokeColor=None,
            )
        )  # fmt: skip
    drawing.add(String(0, 11, f"{low:.3g}", fontSize=7, fontName=font))
    drawing.add(String(width - 40, 11, f"{high:.3g}", fontSize=7, fontName=font))
    return drawing


# ---- the page frame: case number, report id, page x of y ----------------------------
def _numbered_canvas(case_number: str, report_id: str, font: str):
    class NumberedCanvas(Canvas):
        """Defers drawing the footer until the page count is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # every page starts in the embedded font, not in (unembedded) Helvetica
            if not kwargs.get("initialFontName"):
                kwargs["initialFontName"] = font
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(font, 7.5)
                self.setFillColor(colors.dimgrey)
                self.drawString(
                    MARGIN, 10 * mm, f"Case {case_number} · report {report_id}"
                )
                self.drawRightString(
                    PAGE_WIDTH - MARGIN, 10 * mm, f"page {number} of {total}"
                )
                self.drawString(
                    MARGIN, PAGE_HEIGHT - 10 * mm, f"{APP_NAME} examiner report"
                )
                super().showPage()
            super().save()

    return NumberedCanvas


# ---- selection ----------------------------------------------------------------------
@dataclass(frozen=True)
class Superseded:
    """A face of a comparison that a later detection or correction replaced."""

    face: CaseFace
    entry_seq: int | None  # the audit entry that replaced it (None: not found)


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
    return [Superseded(face, _replacing_entry(entries, face)) for face in old]


def _replacing_entry(entries, face: CaseFace) -> int | None:
    """The seq of the audit entry that replaced ``face``.

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
            or (e.action == "faces.correct" and e.details.get("face") == face.label)
        )
    ]
    return about[1].seq if len(about) > 1 else None


def _selected(
    case: Case, request: ReportRequest
) -> list[tuple[Comparison, list[StoredExplanation]]]:
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
            best: dict[int, Comparison] = {}
            for comparison in comparisons:
                old = best.get(comparison.probe_face_id)
                if old is None or comparison.similarity > old.similarity:
                    best[comparison.probe_face_id] = comparison
            chosen = list(best.values())
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


def _report_id(case: Case, selection, stamp: str) -> str:
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


# ---- the document -------------------------------------------------------------------
def build_report(
    case: Case,
    request: ReportRequest | None = None,
    progress: ProgressCallback | None = None,
) -> BuiltReport:
    """Render the report of ``case`` to PDF bytes (nothing is written anywhere)."""
    request = request or ReportRequest()
    styles = _Styles(_case_texts(case))
    info = case.info()
    now = datetime.now().astimezone()
    stamp = now.isoformat(timespec="seconds")
    selection = _selected(case, request)
    replaced = {c.id: superseded_faces(case, c) for c, _ in selection}
    report_id = _report_id(case, selection, stamp)
    exhibits = case.exhibits()
    total = 4 + len(selection)
    step = 0

    def advance(message: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, total, message)

    story: list[Flowable] = []
    story += _cover(case, styles, stamp, report_id, selection, request, replaced)
    advance("cover")
    story += _exhibits(case, exhibits, styles)
    advance("exhibits")
    images: dict[str, np.ndarray] = {}

    def evidence(mark: str) -> np.ndarray:
        if mark not in images:
            images[mark] = load_evidence(case, mark).rgb
        return images[mark]

    story.append(PageBreak())
    story.append(styles.p("Comparisons", styles.h1))
    current = [item for item in selection if not replaced[item[0].id]]
    older = [item for item in selection if replaced[item[0].id]]
    if not selection:
        story.append(
            styles.p(
                "<b>No comparisons.</b> The case holds no comparison of a probe face "
                "with a gallery face yet, so this report states the evidence received "
                "and the audit trail only.",
            )
        )
    elif not current:
        story.append(
            styles.p(
                "<b>No current comparison.</b> Only comparisons computed on faces "
                "that were later corrected were chosen for this report; they follow, "
                "each marked SUPERSEDED."
            )
        )
    for comparison, stored in current:
        story += _comparison(case, comparison, stored, styles, evidence, request)
        advance(f"comparison {comparison.id}")
    if older:
        story += [
            PageBreak(),  # apart from the current results, never below them
            styles.p("Superseded comparisons (not current results)", styles.h1),
            styles.p(
                "The examiner chose to include these comparisons for the record. "
                "Each was computed on a face that a later face detection or landmark "
                "correction replaced, so its scores and maps do not describe the "
                "faces as the case now holds them."
            ),
        ]
    for comparison, stored in older:
        story += _comparison(
            case, comparison, stored, styles, evidence, request, replaced[comparison.id]
        )
        advance(f"comparison {comparison.id} (superseded)")
    story += _annotations(case, styles, evidence)
    story += _conclusion(case, styles)
    story += _limitations(styles)
    story += _reproducibility(case, selection, styles, replaced)
    story += _methods_appendix(selection, styles, replaced)
    advance("appendices")
    story += _audit_appendix(case, styles)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{APP_NAME} report - case {info.case_number}",
        author=info.examiner,
        subject=f"Report {report_id}",
        creator=f"{APP_NAME} {__version__}",
    )
    document.build(
        story,
        canvasmaker=_numbered_canvas(info.case_number, report_id, styles.fonts.regular),
    )
    advance("done")
    pdf = buffer.getvalue()
    return BuiltReport(
        pdf=pdf,
        report_id=report_id,
        pages=_count_pages(pdf),
        comparisons=tuple(c.id for c, _ in selection),
        comparison_entries=tuple(
            _comparison_entry(case, c, replaced[c.id]) for c, _ in selection
        ),
        explanations=tuple(e.id for _, stored in selection for e in stored),
        evidence_sha256=tuple(e.sha256 for e in exhibits),
    )


def _case_texts(case: Case) -> list[str]:
    """Every user-written string the report may show (for one shared CJK subset)."""
    info = case.info()
    texts = [info.case_number, info.title, info.agency, info.examiner]
    texts += [
        t for e in case.exhibits() for t in (e.original_name, e.note, e.intake_user)
    ]
    texts += [t for a in case.annotations() for t in (a.label, a.note, a.author)]
    texts += [t for c in case.conclusions() for t in (c.text, c.author)]
    texts += [
        e.user + json.dumps(e.details, ensure_ascii=False) for e in case.audit_log()
    ]
    return texts


def _count_pages(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def _cover(case, styles: _Styles, stamp, report_id, selection, request, replaced):
    info = case.info()
    model_rows = sorted({(c.model_id, c.model_sha256) for c, _ in selection})
    older = [c for c, _ in selection if replaced[c.id]]
    rows = [
        ["Agency", info.agency or "-"],
        ["Case number", info.case_number],
        ["Case title", info.title or "-"],
        ["Examiner", info.examiner],
        ["Report generated", stamp],
        ["Report id", report_id],
        ["Software", f"{APP_NAME} {__version__}"],
    ]
    for model_id, model_sha256 in model_rows:
        rows.append(["Face model", f"{model_id}, weights SHA-256 {model_sha256}"])
    seq, digest = case.head()
    rows.append(
        [
            "Audit trail",
            f"{seq} entries; last entry hash {digest}; state digest "
            f"{case.recorded_state(seq).digest()} (the report describes the case "
            "as of this entry)",
        ]
    )
    rows.append(["Case identifier", info.case_uuid])
    table = _table(
        [[styles.p(a), styles.p(styles.u(b))] for a, b in rows],
        [40 * mm, TEXT_WIDTH - 40 * mm],
        header=False,
    )
    notes = [
        request.signature_note
        or "This report is not signed. An unsigned report can be changed without "
        "trace; rely on a signed copy.",
        request.timestamp_note,
        coverage_warning(_case_texts(case)),
        f"{len(older)} of the {len(selection)} comparisons in this report were "
        "computed on faces that were later corrected; they are shown for the record "
        "under 'Superseded comparisons', each marked SUPERSEDED, and are not current "
        "results."
        if older
        else "",
    ]
    return [
        Spacer(1, 20 * mm),
        styles.p("Facial image comparison", styles.title),
        styles.p("Examiner report", styles.h2),
        Spacer(1, 8 * mm),
        table,
        Spacer(1, 6 * mm),
        *[styles.p(styles.u(n)) for n in notes if n],
        styles.p(
            "Check this report against the case with <i>xfr report verify REPORT "
            "--case CASE</i> and the case itself with <i>xfr case verify CASE</i>."
        ),
    ]


def _exhibits(case, exhibits, styles: _Styles) -> list:
    story: list[Flowable] = [PageBreak(), styles.p("Evidence received", styles.h1)]
    if not exhibits:
        return [*story, styles.p("No exhibits were added to this case.")]
    story.append(
        styles.p(
            "Each exhibit is stored unaltered in the case, under its SHA-256. Marks: "
            "Q = questioned (probe), K = known (gallery)."
        )
    )
    rows: list[list[Any]] = [
        [
            styles.p(h, styles.small)
            for h in ("Mark", "Image", "File, intake", "SHA-256")
        ]
    ]
    for exhibit in exhibits:
        try:
            rgb = load_evidence(case, exhibit.mark).rgb
            thumb = _image(figures.scale_to(rgb, 240)[0], 22 * mm)
        except Exception:  # a damaged copy: state it, verify names it
            thumb = styles.p("unreadable", styles.small)
        rows.append(
            [
                styles.p(f"<b>{exhibit.mark}</b>", styles.small),
                thumb,
                styles.p(
                    f"{styles.u(exhibit.original_name)}<br/>{exhibit.size:,} bytes, "
                    f"{exhibit.format}, {exhibit.width}×{exhibit.height}<br/>"
                    f"received {exhibit.intake_time} by "
                    f"{styles.u(exhibit.intake_user)}"
                    + (f"<br/>note: {styles.u(exhibit.note)}" if exhibit.note else ""),
                    styles.small,
                ),
                # one line, so that the hash can be read and searched as a whole
                styles.p(exhibit.sha256, styles.hash),
            ]
        )
    story.append(_table(rows, [11 * mm, 24 * mm, 50 * mm, TEXT_WIDTH - 85 * mm]))
    return story


def _strength_text(comparison: Comparison) -> str:
    """The likelihood ratio and its ENFSI verbal equivalent, when calibrated."""
    strength = strength_of_evidence(
        comparison.similarity, comparison.model_id, comparison.model_sha256
    )
    if strength is None:
        return (
            "Strength of evidence: no likelihood ratio is given, because no "
            "calibration is available for this model."
        )
    lr, sentence, reference = strength
    return (
        f"Strength of evidence: likelihood ratio {lr:.3g}. {sentence} The ratio "
        f"comes from a calibration of this model's scores on a reference set "
        f"({reference}); it describes the score, not the case as a whole."
    )


def _plain_decision(comparison: Comparison) -> str:
    rule = Threshold.from_dict(comparison.threshold).rule_text()
    verdict = (
        "the model scores the two faces as the same person (accept)"
        if comparison.decision == "accept"
        else "the model scores the two faces as different people (reject)"
    )
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


def _superseded_banner(replaced: Sequence[Superseded], styles: _Styles) -> Table:
    entries = sorted({s.entry_seq for s in replaced if s.entry_seq is not None})
    where = (
        "see audit entry " + ", ".join(f"#{seq}" for seq in entries)
        if entries
        else "see the audit trail"
    )
    faces = " and ".join(
        f"{s.face.label} ({_source(s.face)}, recorded {s.face.created})"
        for s in replaced
    )
    text = (
        f"<b>SUPERSEDED — computed on a face that was later corrected ({where}).</b> "
        f"Face {faces} was replaced after this comparison was made. This is not a "
        "current result of the case; it is shown because it was chosen for the report."
    )
    banner = Table([[styles.p(text)]], colWidths=[TEXT_WIDTH])
    banner.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, colors.HexColor("#b00020")),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fde8ea")),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return banner


def _comparison(
    case,
    comparison,
    stored,
    styles: _Styles,
    evidence,
    request,
    replaced: Sequence[Superseded] = (),
) -> list:
    probe = case.face_by_id(comparison.probe_face_id)
    gallery = case.face_by_id(comparison.gallery_face_id)
    threshold = comparison.threshold
    title = f"{probe.label} × {gallery.label}"
    if replaced:
        title += " — SUPERSEDED"
    faces = (probe, gallery)
    marks_annotations = {
        face.mark: _numbered_annotations(case, face.mark) for face in faces
    }
    crops = [
        figures.face_crop(
            evidence(face.mark),
            face.bbox,
            face.landmarks5,
            annotations=marks_annotations[face.mark],
        )
        for face in faces
    ]
    width = (TEXT_WIDTH - 6 * mm) / 2
    figure = _plain_table(
        [
            [_image(crops[0], width), _image(crops[1], width)],
            [
                styles.p(_caption(probe), styles.caption),
                styles.p(_caption(gallery), styles.caption),
            ],
        ],
        [width + 3 * mm] * 2,
    )
    scores = _table(
        [
            [
                styles.p(h, styles.small)
                for h in (
                    "Cosine similarity",
                    "Euclidean distance",
                    "Threshold",
                    "Decision",
                )
            ],
            [
                styles.p(f"{comparison.similarity:.4f}"),
                styles.p(f"{comparison.distance:.4f}"),
                styles.p(f"{threshold['metric']} {threshold['value']:g}"),
                styles.p(
                    f"<b>{comparison.decision}</b>"
                    + (" (superseded)" if replaced else "")
                ),
            ],
        ],
        [TEXT_WIDTH / 4] * 4,
    )
    block: list[Flowable] = [
        styles.p(f"Comparison {title}", styles.h2),
        *([_superseded_banner(replaced, styles)] if replaced else []),
        figure,
        styles.p(
            "Green box: the face the model compared; cyan crosses: the five landmarks "
            "used to align it; yellow: the examiner's annotations (numbered as in the "
            "annotation list).",
            styles.small,
        ),
        Spacer(1, 2 * mm),
        scores,
        styles.p(_plain_decision(comparison)),
        styles.p(styles.u(_strength_text(comparison))),
        styles.p(
            f"Model {comparison.model_id}, weights SHA-256 {comparison.model_sha256}.",
            styles.small,
        ),
    ]
    story: list[Flowable] = [KeepTogether(block)]  # faces, scores and rule together
    if not stored:
        story.append(styles.p("No explanation was computed for this comparison."))
    pair = None
    if request.model is not None and stored:
        pair = FacePair(
            face_view(case, probe, request.model, "probe"),
            face_view(case, gallery, request.model, "gallery"),
        )
    for explanation in stored:
        result = load_result(case, explanation)
        check = stored_faithfulness(case, explanation.id)
        story += _explanation(
            result,
            explanation,
            faces,
            styles,
            evidence,
            superseded=bool(replaced),
            check=check,
            not_checked=_not_checked(case, request, result, bool(replaced)),
        )
        if result.details.get("links"):
            story += _correspondence(result, pair, styles)
        if result.details.get("components"):
            story += _components(result.details["components"], styles)
    # keyed by labels, which name the current faces: never shown for an older pair
    layers = None if replaced else request.layerwise.get((probe.label, gallery.label))
    if layers is not None:
        story += _layer_strip(layers, styles)
    return story


def _source(face: CaseFace) -> str:
    """How the face record's landmarks came about, in plain words."""
    if face.source == "manual":
        return "landmarks placed by hand"
    if face.source == "box":
        return "landmarks found automatically in a box drawn by hand"
    return f"found automatically ({face.source} detector)"


def _caption(face: CaseFace) -> str:
    state = "; later replaced" if face.superseded else ""
    return f"{face.label} ({_source(face)}, recorded {face.created}{state})"


def _explanation(
    result: ExplanationResult,
    stored,
    faces,
    styles: _Styles,
    evidence,
    *,
    superseded: bool = False,
    check: PairFaithfulness | None = None,
    not_checked: str = "",
):
    kinds = [k for k in ("similarity", "dissimilarity") if k in result.probe.evidence]
    width = (TEXT_WIDTH - 6 * mm) / 2
    story: list[Flowable] = []
    title = f"{result.method_name} (explanation #{stored.id})"
    if superseded:
        title += " — of a SUPERSEDED comparison"
    heading = [styles.p(title, styles.h2)]
    for kind in kinds:
        maps = [image.evidence[kind] for image in result.images]
        peak = figures.shared_peak(maps)
        panels = [
            figures.map_on_face(
                evidence(face.mark), face.bbox, evidence_map, kind, peak
            )
            for face, evidence_map in zip(faces, maps, strict=True)
        ]
        story.append(
            KeepTogether(
                [
                    *heading,  # the method's heading stays with its first panel
                    styles.p(f"<b>{kind.capitalize()} map</b> — {READINGS[kind]}"),
                    _plain_table(
                        [[_image(panels[0], width), _image(panels[1], width)]],
                        [width + 3 * mm] * 2,
                    ),
                    colour_bar(kind, peak, TEXT_WIDTH, styles.fonts.regular),
                    *_verdicts(check, kind, not_checked, width, styles),
                ]
            )
        )
        heading = []
    if "dissimilarity" not in kinds:
        story.append(
            styles.p(
                "This method gives a similarity map only (no dissimilarity map).",
                styles.small,
            )
        )
    params = ", ".join(f"{k} = {v}" for k, v in result.params.items()) or "none"
    story.append(
        styles.p(
            f"Parameters: {styles.u(params)}; seed {result.seed}; computed in "
            f"{result.seconds:.1f} s on {result.device}; software "
            f"{result.software_version}; method algorithm version "
            f"{result.algorithm_version}; cache key {result.cache_key}."
            + (f" Notes: {styles.u('; '.join(result.notes))}." if result.notes else ""),
            styles.small,
        )
    )
    for maps in result.images:
        stability = stability_sentence(result.details, maps.side)
        if stability:
            story.append(styles.p(stability[0].upper() + stability[1:], styles.small))
    if check is not None:
        story.append(styles.p(_check_text(check, result), styles.small))
    return story


# ---- per-pair faithfulness ----------------------------------------------------------
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
        why = (
            "the case was opened read-only, so no check was made for this report "
            "(a check is kept in the case)"
        )
    elif request.model is None:
        why = "the report was made without the model (no check could be made)"
    elif superseded:
        why = "the comparison was made on a face that was replaced since"
    elif not _current(result, request.model):
        why = (
            "the explanation was made with another model or software version; "
            "compute it again to check it"
        )
    else:
        why = "no check is stored in the case"
    return f"Faithfulness not checked for this pair: {why}."


def check_faithfulness_of(
    case: Case, request: ReportRequest, progress: ProgressCallback | None = None
) -> int:
    """Check every selected map that has no stored check, keeping each in the case
    (``workflow.check_faithfulness``); returns how many were made.  Nothing is done
    without a model or on a read-only case: the report then says "not checked"."""
    if request.model is None or case.read_only:
        return 0
    todo = []
    for comparison, stored in _selected(case, request):
        if superseded_faces(case, comparison):
            continue  # labels name the current faces, not this comparison's
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
            progress=None
            if progress is None
            else lambda done, total, _m, message=message: progress(
                done, total, message
            ),
        )
    return len(todo)


def _verdicts(
    check: PairFaithfulness | None,
    kind: str,
    not_checked: str,
    width: float,
    styles: _Styles,
) -> list:
    """Under a map's two panels: each side's margin curve and verdict sentence."""
    verdicts = [None if check is None else check.get(side, kind) for side in SIDES]
    if all(v is None for v in verdicts):
        return [styles.p(styles.u(not_checked or "Faithfulness not checked."))]
    charts, sentences = [], []
    for verdict in verdicts:
        if verdict is None:
            charts.append(Spacer(1, 1))
            sentences.append(styles.p(styles.u(not_checked), styles.small))
            continue
        charts.append(margin_chart(verdict, width, styles.fonts.regular))
        sentences.append(styles.p(styles.u(verdict_sentence(verdict)), styles.small))
    return [
        styles.p(
            "Faithfulness for this pair — the model's decision margin as the face is "
            "removed in the map's order (red), in random orders (grey, dashed: their "
            "mean) and in a fixed face-centre map's order (orange, dotted); the pair "
            "is accepted while the margin is above the black line.",
            styles.small,
        ),
        _plain_table([charts, sentences], [width + 3 * mm] * 2),
    ]


SIDES = ("probe", "gallery")


def _check_text(check: PairFaithfulness, result: ExplanationResult) -> str:
    """How the stored faithfulness check was made (under the explanation)."""
    settings = check.settings
    margin = (
        f"{result.threshold.value:g} minus the Euclidean distance"
        if result.threshold.metric == "euclidean"
        else f"the cosine similarity minus {result.threshold.value:g}"
    )
    fill = (
        f"blurred (Gaussian, sigma {settings.blur_sigma:g} px)"
        if settings.fill == "blur"
        else "filled with the face's mean colour"
    )
    others = len(check.references)
    return (
        f"Faithfulness check: the aligned face was cut into {settings.grid} x "
        f"{settings.grid} regions, removed {settings.step_cells} at a time ({fill}); "
        f"decision margin = {margin}; compared with {settings.random_orders} random "
        f"orders (seed {settings.seed}), a fixed face-centre map and the maps of "
        f"{others} other face{'s' if others != 1 else ''} of the case; check version "
        f"{check.algorithm_version}."
    )


def margin_chart(verdict: MapFaithfulness, width: float, font: str) -> Drawing:
    """The margin curves of one map (red), the random mean (grey dashed), the
    face-centre map (orange dotted) and the threshold (black, margin 0)."""
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.shapes import Line

    height = 34 * mm
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = 30, 18
    plot.width, plot.height = width - 38, height - 24
    fractions = list(verdict.fractions)
    series = [
        (verdict.random_margins_mean, colors.HexColor("#787878"), (3, 2)),
        (verdict.prior_margins, colors.HexColor("#e68214"), (1, 1.5)),
        (verdict.margins, colors.HexColor("#c81e1e"), None),
    ]
    plot.data = [list(zip(fractions, ys, strict=True)) for ys, _, _ in series]
    for index, (_, colour, dash) in enumerate(series):
        plot.lines[index].strokeColor = colour
        plot.lines[index].strokeWidth = 1.4 if dash is None else 1.1
        if dash:
            plot.lines[index].strokeDashArray = dash
    values = [v for ys, _, _ in series for v in ys] + [0.0]
    low, high = min(values), max(values)
    pad = max(1e-3, 0.05 * (high - low))
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = low - pad, high + pad
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, 1
    plot.xValueAxis.valueStep = 0.25
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontName = font
        axis.labels.fontSize = 6
    drawing.add(plot)
    zero = (
        plot.y
        + (0 - plot.yValueAxis.valueMin)
        / (plot.yValueAxis.valueMax - plot.yValueAxis.valueMin)
        * plot.height
    )
    drawing.add(
        Line(plot.x, zero, plot.x + plot.width, zero, strokeColor=colors.black,
             strokeWidth=0.6)
    )  # fmt: skip
    drawing.add(String(plot.x + 2, zero + 2, "threshold", fontName=font, fontSize=5.5))
    drawing.add(
        String(30, 2, "fraction of the face removed", fontName=font, fontSize=6)
    )
    return drawing


def _correspondence(result: ExplanationResult, pair: FacePair | None, styles) -> list:
    """The correspondence method's strongest region-to-region links: the figure on
    the aligned chips (needs the model's alignment) and the table."""
    links = result.details["links"]
    story: list[Flowable] = [
        styles.p(
            "<b>Region-to-region links</b> — each numbered spot pair joins a probe "
            "region and a gallery region whose pairing adds to the score (filled "
            "spot) or takes from it (ring); the share is the link's part of the "
            "whole score.",
        )
    ]
    if pair is not None:
        chips = [figures.scale_to(view.chip, 300) for view in pair.sides]
        scaled = [
            {
                **link,
                "probe_xy": [float(v) * chips[0][1] for v in link["probe_xy"]],
                "gallery_xy": [float(v) * chips[1][1] for v in link["gallery_xy"]],
            }
            for link in links
        ]
        figure = render_correspondence(chips[0][0], chips[1][0], scaled, gap=12)
        story.append(_image(figure, TEXT_WIDTH * 0.7))
    else:
        story.append(
            styles.p(
                "The figure is drawn on the model's aligned faces; this report was "
                "made without the model, so only the table is given.",
                styles.small,
            )
        )
    rows = [
        [
            styles.p(h, styles.small)
            for h in ("#", "Probe region", "Gallery region", "Contribution", "Share")
        ]
    ]
    for link in links:
        share = link.get("share")
        rows.append(
            [
                styles.p(str(link["rank"]), styles.small),
                styles.p("row {}, column {}".format(*link["probe_cell"]), styles.small),
                styles.p(
                    "row {}, column {}".format(*link["gallery_cell"]), styles.small
                ),
                styles.p(f"{float(link['contribution']):+.4f}", styles.small),
                styles.p(
                    "-" if share is None else f"{100 * share:.1f} %", styles.small
                ),
            ]
        )
    story.append(_table(rows, [10 * mm, 40 * mm, 40 * mm, 30 * mm, 25 * mm]))
    return [KeepTogether(story)]


def _components(table: Mapping[str, Any], styles: _Styles) -> list:
    """The components method's measurements: each FISWG component hidden in the
    probe, the gallery and both, and the change of the decision margin."""
    rows = component_table_rows(table)
    story: list[Flowable] = [
        styles.p(
            f"<b>Facial components</b> — change of the {table['score']} when a "
            f"component is hidden (unhidden: {table['margin']:+.4f}, "
            f"{table['decision']}; fill: {table['fill']}). Negative: the component "
            "supports the match; positive: it counts against it. Each figure is a "
            "measured intervention on this pair.",
        ),
        _table(
            [[styles.p(cell, styles.small) for cell in row] for row in rows],
            [TEXT_WIDTH / len(rows[0])] * len(rows[0]),
        ),
    ]
    for name, sides in table.get("not_located", {}).items():
        where = "; ".join(f"{side}: {reason}" for side, reason in sides.items())
        story.append(
            styles.p(f"{FISWG_NAMES[name]} not located ({where}).", styles.small)
        )
    story += [
        styles.p(f"Note: {note}", styles.small) for note in table.get("notes", [])
    ]
    return story


def _layer_strip(layers, styles: _Styles) -> list:
    story: list[Flowable] = [
        styles.p("Layer by layer (LIME on pooled features)", styles.h2),
        styles.p(LAYER_MAPS_NOT_CHECKED, styles.small),
    ]
    cells, captions = [], []
    width = TEXT_WIDTH / max(1, len(layers.layers)) - 2
    for layer in layers.layers:
        values = np.clip(layer.lime_maps[0], 0, 1)
        rgb, _, _ = colour_map(values, False, peak=1.0)
        cells.append(_image(rgb.astype(np.uint8), width))
        captions.append(styles.p(layer.name, styles.small))
    story.append(_plain_table([cells, captions]))
    return story


def _numbered_annotations(case: Case, mark: str) -> list[dict]:
    numbers = {a.id: n for n, a in enumerate(case.annotations(), start=1)}
    return [
        {"number": numbers[a.id], "shape": a.shape, "points": a.points}
        for a in case.annotations(exhibit=mark)
    ]


def _annotations(case: Case, styles: _Styles, evidence) -> list:
    annotations = case.annotations()
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Examiner's annotations", styles.h1),
    ]
    if not annotations:
        return [*story, styles.p("The examiner made no annotations.")]
    marks = {e.id: e.mark for e in case.exhibits()}
    rows = [
        [
            styles.p(h, styles.small)
            for h in (
                "#",
                "On",
                "Shape",
                "Label",
                "Note",
                "FISWG component",
                "Author, time",
            )
        ]
    ]
    for number, a in enumerate(annotations, start=1):
        target = marks.get(a.exhibit_id, f"explanation #{a.explanation_id}")
        rows.append(
            [
                styles.p(str(number), styles.small),
                styles.p(target, styles.small),
                styles.p(a.shape, styles.small),
                styles.p(styles.u(a.label or "-"), styles.small),
                styles.p(styles.u(a.note or "-"), styles.small),
                styles.p(styles.u(a.component or "-"), styles.small),
                styles.p(f"{styles.u(a.author)}<br/>{a.created}", styles.small),
            ]
        )
    widths = [8 * mm, 14 * mm, 18 * mm, 30 * mm, 45 * mm, 24 * mm]
    widths.append(TEXT_WIDTH - sum(widths))
    story.append(_table(rows, widths))
    story.append(
        styles.p(
            "Annotations on an exhibit are drawn on the face figures of the "
            "comparisons above, numbered as here.",
            styles.small,
        )
    )
    return story


def _conclusion(case: Case, styles: _Styles) -> list:
    story: list[Flowable] = [
        CondPageBreak(50 * mm),
        styles.p("Examiner's conclusion", styles.h1),
    ]
    revisions = case.conclusions()
    if not revisions:
        return [*story, styles.p("The examiner has not recorded a conclusion.")]
    latest = revisions[-1]
    story.append(
        styles.p(
            f"Written by {styles.u(latest.author)} on {latest.created} (revision "
            f"{len(revisions)} of {len(revisions)}; earlier revisions are kept in the "
            "case). Reproduced verbatim:",
            styles.small,
        )
    )
    for paragraph in latest.text.split("\n"):
        story.append(styles.p(styles.u(paragraph) or " "))
    return story


def _limitations(styles: _Styles) -> list:
    return [
        CondPageBreak(60 * mm),
        styles.p("Limitations", styles.h1),
        *[styles.p(f"• {text}") for text in LIMITATIONS],
    ]


def _reproducibility(case: Case, selection, styles: _Styles, replaced) -> list:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Reproducibility", styles.h1),
        styles.p(
            "Every number and map above can be recomputed from the case: verify the "
            "evidence and the audit trail with <i>xfr case verify CASE</i>, then rerun "
            "an explanation with <i>xfr case explain CASE --probe P --gallery G "
            "--method M --param NAME=VALUE --seed S</i>; the same inputs, model, "
            "method, parameters, seed and software version give the same cache key, "
            "and the same maps up to floating-point rounding (a processor's parallel "
            "sums can change a map's last digits, never its pattern)."
            + (
                " A superseded comparison's labels now name the corrected faces, so "
                "rerunning it by label computes the current comparison instead; its "
                "own inputs are the face records named below, whose landmarks the "
                "audit trail holds."
                if any(replaced.values())
                else ""
            )
        ),
    ]
    rows = [
        [
            styles.p(h, styles.small)
            for h in (
                "Item",
                "Inputs (SHA-256)",
                "Model / method / parameters / seed / version",
            )
        ]
    ]
    for comparison, stored in selection:
        faces = [
            case.face_by_id(comparison.probe_face_id),
            case.face_by_id(comparison.gallery_face_id),
        ]
        hashes = "<br/>".join(
            f"{f.label}: {case.exhibit(f.mark).sha256}" for f in faces
        )
        item = f"comparison {faces[0].label} × {faces[1].label}"
        if replaced[comparison.id]:
            records = ", ".join(
                f"{s.face.label} = face record {s.face.id}"
                for s in replaced[comparison.id]
            )
            item += f" (SUPERSEDED; {records})"
        rows.append(
            [
                styles.p(item, styles.small),
                styles.p(hashes, styles.mono),
                styles.p(
                    f"{comparison.model_id} {comparison.model_sha256}", styles.mono
                ),
            ]
        )
        for explanation in stored:
            params = json.dumps(explanation.params, sort_keys=True)
            rows.append(
                [
                    styles.p(f"explanation #{explanation.id}", styles.small),
                    styles.p(f"cache key {explanation.cache_key}", styles.mono),
                    styles.p(
                        f"{explanation.method} {params} seed {explanation.seed} "
                        f"software {explanation.software_version} model "
                        f"{explanation.model_sha256}",
                        styles.mono,
                    ),
                ]
            )
    if len(rows) > 1:
        story.append(_table(rows, [32 * mm, 68 * mm, TEXT_WIDTH - 100 * mm]))
    return story


def _methods_appendix(selection, styles: _Styles, replaced) -> list:
    used = {e.method for _, stored in selection for e in stored}
    current = {
        e.method for c, stored in selection if not replaced[c.id] for e in stored
    }
    story: list[Flowable] = [PageBreak(), styles.p("Appendix A: methods", styles.h1)]
    story.append(
        styles.p(
            "Face model: dlib's ResNet face-recognition model "
            "(dlib_face_recognition_resnet_model_v1, public domain), re-implemented "
            "in PyTorch; faces found with dlib's detector and aligned on five "
            "landmarks."
        )
    )
    for info in infos():
        if info.method_id in used:
            only_old = (
                "" if info.method_id in current else " (superseded comparisons only)"
            )
            story.append(styles.p(info.display_name + only_old, styles.h2))
            story.append(styles.p(styles.u(info.description)))
            story.append(
                styles.p(f"Reference: {styles.u(info.citation)}.", styles.small)
            )
    if not used:
        story.append(styles.p("No explanation method was used in this report."))
    return story


def _who(entry) -> str:
    """The examiner an entry names, and the login beside it when different."""
    if entry.login and entry.login != entry.user:
        return f"{entry.user} [{entry.login}]"
    return entry.user


def _audit_appendix(case: Case, styles: _Styles) -> list:
    entries = case.audit_log()
    story: list[Flowable] = [
        PageBreak(),
        styles.p("Appendix B: audit trail", styles.h1),
        styles.p(
            f"All {len(entries)} entries of the case's append-only log, each chained "
            "to the previous one by SHA-256 (details shortened here; the case holds "
            "them in full, with the SHA-256 of every row each entry wrote). "
            "“User” is the examiner the entry names; the login name of the "
            "computer account follows in brackets when it differs."
        ),
    ]
    rows = [
        [
            styles.p(h, styles.small)
            for h in ("#", "Time (UTC)", "User", "Action", "Details", "Hash")
        ]
    ]
    for entry in entries:
        details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True)
        if len(details) > 240:
            details = details[:237] + "…"
        rows.append(
            [
                styles.p(str(entry.seq), styles.small),
                styles.p(entry.time, styles.small),
                styles.p(styles.u(_who(entry)), styles.small),
                styles.p(entry.action, styles.small),
                styles.p(styles.u(details), styles.small),
                styles.p(entry.hash[:16] + "…", styles.mono),
            ]
        )
    widths = [8 * mm, 26 * mm, 20 * mm, 26 * mm, 70 * mm]
    widths.append(TEXT_WIDTH - sum(widths))
    story.append(_table(rows, widths))
    return story
