"""The examiner's annotations, numbered as on the face figures."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, table

name = "annotations"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    annotations = content.annotations
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Examiner's annotations", styles.h1),
    ]
    if not annotations:
        return [*story, styles.p("The examiner made no annotations.")]
    marks: dict[int | None, str] = {
        e.exhibit.id: e.exhibit.mark for e in content.exhibits
    }
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
    story.append(table(rows, widths))
    story.append(
        styles.p(
            "Annotations on an exhibit are drawn on the face figures of the "
            "comparisons above, numbered as here.",
            styles.small,
        )
    )
    return story
