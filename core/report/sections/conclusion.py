"""The examiner's conclusion, latest revision, verbatim."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import Styles

name = "conclusion"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(50 * mm),
        styles.p("Examiner's conclusion", styles.h1),
    ]
    revisions = content.conclusions
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
