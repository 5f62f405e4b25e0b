"""The analysis of each image on its own, questioned first: suitability, its
reasons and the components visible (ACE-V analysis; ENFSI BPM section 9)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core import wording
from core.case.acev import FEATURES, SUITABILITY
from core.quality import all_measures, figure_text, rate
from core.report.content import ReportContent
from core.report.examination_content import EARLIER_FACE, NOT_RECORDED, AnalysisRow
from core.report.layout import TEXT_WIDTH, Styles, table
from core.report.quality_content import FaceQualityContent
from core.report.video_content import frame_of

name = "analysis"

ROLE_TITLES = {"examiner": "Examiner", "verifier": "Verifier"}


def _names(keys: tuple[str, ...]) -> str:
    return ", ".join(FEATURES[k].name for k in keys) if keys else NOT_RECORDED


def _row(item: AnalysisRow, styles: Styles) -> list[object]:
    face = f"{item.face} ({item.side})"
    if item.analysis is None:
        return [
            styles.p(face, styles.small),
            styles.p(NOT_RECORDED, styles.small),
            styles.p("-", styles.small),
            styles.p("-", styles.small),
            styles.p("-", styles.small),
        ]
    a = item.analysis
    reasons = a.reasons or NOT_RECORDED
    if a.factors:
        reasons += " (factors: " + ", ".join(a.factors) + ")"
    if a.notes:
        reasons += f"; notes: {a.notes}"
    return [
        styles.p(face, styles.small),
        styles.p(f"<b>{SUITABILITY[a.suitability]}</b>", styles.small),
        styles.p(styles.u(reasons), styles.small),
        styles.p(
            f"visible: {_names(a.visible)}<br/>not visible: {_names(a.not_visible)}",
            styles.small,
        ),
        styles.p(
            f"{styles.u(item.author)}<br/>{item.created}"
            + (f"<br/>({EARLIER_FACE})" if item.earlier_face else ""),
            styles.small,
        ),
    ]


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Analysis and suitability of each image", styles.h1),
        styles.p(
            "Each image was analysed on its own, the questioned image before the "
            "known one: whether it is suitable for comparison, why, and which facial "
            "components can be seen."
        ),
    ]
    exam = content.examination
    rows = list(exam.analyses) if exam else []
    if not rows:
        return [
            *story,
            styles.p(f"Analysis: {NOT_RECORDED} (no faces)."),
            *lay_out_quality(content, styles),
        ]
    widths = [20 * mm, 28 * mm, 52 * mm, 48 * mm]
    widths.append(TEXT_WIDTH - sum(widths))
    for role in ("examiner", "verifier"):
        mine = [r for r in rows if r.role == role]
        if not mine:
            continue
        story.append(styles.p(f"{ROLE_TITLES[role]}'s analysis", styles.h2))
        header = [
            styles.p(h, styles.small)
            for h in ("Face", "Suitability", "Reasons", "Components", "By, when")
        ]
        story.append(table([header, *[_row(r, styles) for r in mine]], widths))
    story += _processed_notes(content, [r.face for r in rows], styles)
    return [*story, *lay_out_quality(content, styles)]


def _processed_notes(
    content: ReportContent, labels: list[str], styles: Styles
) -> list[Flowable]:
    """A line per processed exhibit among the faces analysed (issue 21)."""
    marks = dict.fromkeys(label.partition("#")[0] for label in labels)
    found = [content.processed_exhibit(mark) for mark in marks]
    return [
        styles.p(
            f"<b>Processed image:</b> {styles.u(p.note)} (see Processing applied).",
            styles.small,
        )
        for p in found
        if p is not None and p.note
    ]


# ---- the image quality of each face (issue 20 item 3) -----------------------------
def _quality_rows(item: FaceQualityContent, styles: Styles) -> list[list[object]]:
    rows: list[list[object]] = []
    for value in item.values:
        rating = rate(value)
        if value.value is None:
            shown = f"{wording.QUALITY_NOT_AVAILABLE}: {value.note}"
        else:
            shown = figure_text(value)
        rows.append(
            [
                styles.p(value.name, styles.small),
                styles.p(styles.u(shown), styles.small),
                # the unit the figure is printed in ("0 %", not "fraction 0-1")
                styles.p(
                    "%" if value.unit == "fraction 0-1" else value.unit, styles.small
                ),
                styles.p(
                    f"<b>{rating}</b>" if rating else wording.QUALITY_NO_THRESHOLD,
                    styles.small,
                ),
            ]
        )
    return rows


def lay_out_quality(content: ReportContent, styles: Styles) -> list[Flowable]:
    """Per face used: its figures (measure, value, unit, rating) and the summary
    sentence; the measures' definitions once after the last face."""
    if not content.quality:
        return []
    story: list[Flowable] = [
        CondPageBreak(50 * mm),
        styles.p(wording.QUALITY_HEADING, styles.h2),
        styles.p(wording.QUALITY_INTRO),
    ]
    widths = [52 * mm, 60 * mm, 26 * mm]
    widths.append(TEXT_WIDTH - sum(widths))
    header = [styles.p(h, styles.small) for h in ("Measure", "Value", "Unit", "Rating")]
    for item in content.quality:
        label = item.face.label
        if item.quality is None:
            story.append(
                styles.p(styles.u(wording.quality_not_measured(label, item.problem)))
            )
            continue
        summary = item.quality.summary
        story.append(CondPageBreak(40 * mm))
        sentence = wording.quality_sentence(label, summary.rating, summary.reasons)
        story.append(styles.p(styles.u(sentence, bold=True)))
        frame = frame_of(content.videos, item.face.mark, content.still_frames)
        if frame is not None:  # its provenance, beside its quality
            note = wording.frame_quality_note(frame.mark, frame.describe())
            story.append(styles.p(note, styles.small))
        story += _processed_notes(content, [label], styles)
        story.append(table([header, *_quality_rows(item, styles)], widths))
        if item.masked:
            story.append(styles.p(wording.QUALITY_UTILITY_WITHHELD, styles.small))
    story.append(styles.p(wording.QUALITY_DEFINITIONS_HEADING, styles.h2))
    for measure in all_measures():
        story.append(
            styles.p(
                f"<b>{measure.name}</b> ({measure.unit}): {measure.definition}.",
                styles.small,
            )
        )
    return story
