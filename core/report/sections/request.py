"""The request and the competing propositions, with the relevant population
(ENFSI-BPM-DI-01 sections 9 and 12: an evaluation needs at least two)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.examination_content import NOT_RECORDED
from core.report.layout import TEXT_WIDTH, Styles, table

name = "request"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Request and propositions", styles.h1),
    ]
    exam = content.examination
    propositions = exam.settings.propositions if exam else None
    rows = [
        ("Request", propositions.request if propositions else ""),
        ("First proposition (H1)", propositions.first if propositions else ""),
        ("Second proposition (H2)", propositions.second if propositions else ""),
        ("Relevant population", propositions.population if propositions else ""),
    ]
    story.append(
        table(
            [
                [styles.p(a, styles.small), styles.p(styles.u(b or NOT_RECORDED))]
                for a, b in rows
            ],
            [45 * mm, TEXT_WIDTH - 45 * mm],
            header=False,
        )
    )
    if not (propositions and propositions.complete):
        story.append(
            styles.p(
                "At least two competing propositions were not recorded, so the "
                "examiner's evaluation below has no stated pair of propositions to "
                "weigh the observations against."
            )
        )
    return story
