"""Observations per feature: the FISWG / ASTM E3149 worksheet of each pair, the
examiner's and, separately, the verifier's (ACE-V comparison)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.examination_content import EARLIER_FACE, NOT_RECORDED, WorksheetRow
from core.report.layout import TEXT_WIDTH, Styles, table

name = "worksheet"

ROLE_TITLES = {"examiner": "Examiner", "verifier": "Verifier"}


def _ids(ids: tuple[int, ...], numbers: dict[int, int]) -> str:
    """Annotation record ids as the numbers the annotation list prints."""
    return ", ".join(f"#{numbers.get(i, i)}" for i in ids) if ids else "-"


def _table(
    row: WorksheetRow, numbers: dict[int, int], styles: Styles
) -> list[Flowable]:
    sheet = row.worksheet
    story: list[Flowable] = [
        styles.p(
            f"{ROLE_TITLES[row.role]}'s worksheet, by {styles.u(row.author)}, "
            f"{row.created}" + (f" ({EARLIER_FACE})" if row.earlier_face else ""),
            styles.h2,
        )
    ]
    if not sheet.observations:
        return [*story, styles.p(f"Observations: {NOT_RECORDED}.")]
    header = [
        styles.p(h, styles.small)
        for h in ("Component: characteristic", "Observation", "Notes", "Q", "K")
    ]
    rows = [header]
    for item in sheet.observations:
        rows.append(
            [
                styles.p(styles.u(item.name), styles.small),
                styles.p(f"<b>{item.words}</b>", styles.small),
                styles.p(styles.u(item.notes or "-"), styles.small),
                styles.p(_ids(item.questioned_annotations, numbers), styles.small),
                styles.p(_ids(item.known_annotations, numbers), styles.small),
            ]
        )
    widths = [45 * mm, 42 * mm, 0.0, 15 * mm, 15 * mm]
    widths[2] = TEXT_WIDTH - sum(widths)
    story.append(table(rows, widths))
    if sheet.notes:
        story.append(styles.p(f"Notes: {styles.u(sheet.notes)}", styles.small))
    return story


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Observations per feature", styles.h1),
        styles.p(
            "Each facial component (and characteristic) as the examiner recorded "
            "it: not visible, similar, different (explainable by the image "
            "conditions or not) or not assessable. Q and K name the linked "
            "annotations, numbered as in the list of the examiner's annotations. "
            "Components not listed were not recorded.",
            styles.small,
        ),
    ]
    numbers = {a.id: n for n, a in enumerate(content.annotations, start=1)}
    pairs = content.examination.pairs if content.examination else ()
    if not pairs:
        return [*story, styles.p(f"Worksheet: {NOT_RECORDED}.")]
    for pair in pairs:
        story.append(styles.p(f"Pair {pair.title}", styles.h2))
        if not pair.worksheets:
            story.append(styles.p(f"Worksheet: {NOT_RECORDED}."))
        for row in pair.worksheets:
            story += _table(row, numbers, styles)
    return story
