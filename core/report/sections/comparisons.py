"""Comparisons: per pair the faces, scores, decision rule, strength of evidence and
each explanation; superseded comparisons follow under their own heading."""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Spacer,
    Table,
    TableStyle,
)

from core import wording
from core.case.store import CaseFace
from core.report import figures
from core.report.content import ComparisonContent, ReportContent, Superseded
from core.report.examination_content import MODEL_MASKED
from core.report.explanation_figures import (
    components_table,
    correspondence,
    explanation,
    layer_strip,
)
from core.report.layout import TEXT_WIDTH, Styles, image, plain_table, table

name = "comparisons"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        PageBreak(),
        styles.p("Comparisons", styles.h1),
        styles.p(
            "The automatic face-recognition model's results and explanations: the "
            "behaviour of the model, not the examiner's observations or opinion, "
            "and printed only for pairs whose results were unmasked.",
            styles.small,
        ),
    ]
    current, older = content.current, content.older
    if not content.comparisons:
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
                "that were later replaced were chosen for this report; they follow, "
                "each marked SUPERSEDED."
            )
        )
    for item in current:
        story += _comparison(content, item, styles)
    if older:
        story += [
            PageBreak(),  # apart from the current results, never below them
            styles.p("Superseded comparisons (not current results)", styles.h1),
            styles.p(
                "The examiner chose to include these comparisons for the record. "
                "Each was computed on a face that a later step replaced (a new "
                "detection, a correction, a rejection, an undo or a reset), so its "
                "scores and maps do not describe the faces as the case now holds "
                "them."
            ),
        ]
    for item in older:
        story += _comparison(content, item, styles)
    return story


def _superseded_banner(replaced: Sequence[Superseded], styles: Styles) -> Table:
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
    how = " and ".join(dict.fromkeys(s.how for s in replaced))
    text = (
        f"<b>SUPERSEDED — computed on a face that was later {how} ({where}).</b> "
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
    content: ReportContent, item: ComparisonContent, styles: Styles
) -> list[Flowable]:
    comparison, replaced = item.comparison, item.superseded
    probe, gallery = item.faces
    threshold = comparison.threshold
    title = f"{probe.label} × {gallery.label}"
    if replaced:
        title += " — SUPERSEDED"
    crops = [
        figures.face_crop(
            content.evidence[face.mark],
            face.bbox,
            face.landmarks5,
            annotations=item.annotations[face.mark],
        )
        for face in item.faces
    ]
    width = (TEXT_WIDTH - 6 * mm) / 2
    figure = plain_table(
        [
            [image(crops[0], width), image(crops[1], width)],
            [
                styles.p(_caption(probe), styles.caption),
                styles.p(_caption(gallery), styles.caption),
            ],
        ],
        [width + 3 * mm] * 2,
    )
    scores = table(
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
    if item.masked:  # sequential unmasking: the faces, and no result of any kind
        return [
            KeepTogether(
                [
                    styles.p(f"Comparison {title}", styles.h2),
                    figure,
                    *_processed_notes(content, item, styles),
                    styles.p(
                        f"<b>Model results:</b> {MODEL_MASKED} (sequential "
                        "unmasking). No score, decision, likelihood ratio, rank or "
                        "explanation of this pair is printed.",
                    ),
                ]
            )
        ]
    block: list[Flowable] = [
        styles.p(f"Comparison {title}", styles.h2),
        *([_superseded_banner(replaced, styles)] if replaced else []),
        figure,
        *_processed_notes(content, item, styles),
        styles.p(
            "Green box: the face the model compared; cyan crosses: the five landmarks "
            "used to align it; yellow: the examiner's annotations (numbered as in the "
            "annotation list).",
            styles.small,
        ),
        Spacer(1, 2 * mm),
        scores,
        styles.p(item.decision_text),
        styles.p(styles.u(item.strength_text)),
        styles.p(
            f"Model {comparison.model_id}, weights SHA-256 {comparison.model_sha256}.",
            styles.small,
        ),
    ]
    story: list[Flowable] = [KeepTogether(block)]  # faces, scores and rule together
    if not item.explanations:
        story.append(styles.p("No explanation was computed for this comparison."))
    for shown in item.explanations:
        result = shown.result
        story += explanation(
            result,
            shown.stored,
            item.faces,
            styles,
            content.evidence,
            superseded=bool(replaced),
            check=shown.check,
            not_checked=shown.not_checked,
        )
        if result.details.get("links"):
            story += correspondence(result, item.aligned_chips, styles)
        if result.details.get("components"):
            story += components_table(result.details["components"], styles)
    if item.layers is not None:
        story += layer_strip(item.layers, styles)
    return story


def _processed_notes(
    content: ReportContent, item: ComparisonContent, styles: Styles
) -> list[Flowable]:
    """A line per face of the pair on a processed exhibit (workflow.derived_note)
    and per face on an exhibit pulled in from a gallery search (workflow.lead_note:
    an investigative lead)."""
    notes = []
    for mark in dict.fromkeys(face.mark for face in item.faces):
        lead = content.lead_note(mark, scored=not item.masked)
        if lead:
            notes.append(
                styles.p(
                    f"<b>Investigative lead:</b> {styles.u(lead)} (see "
                    f"{wording.GALLERY_SEARCHES_HEADING}).",
                    styles.small,
                )
            )
        processed = content.processed_exhibit(mark)
        if processed is not None and processed.note:
            notes.append(
                styles.p(
                    f"<b>Processed image:</b> {styles.u(processed.note)} (see "
                    "Processing applied).",
                    styles.small,
                )
            )
    return notes


def _source(face: CaseFace) -> str:
    """How the face record's landmarks came about, in plain words."""
    return wording.face_source_words(face.source)


def _caption(face: CaseFace) -> str:
    state = "; later replaced" if face.superseded else ""
    return f"{face.label} ({_source(face)}, recorded {face.created}{state})"
