"""Method and tools: the examination method, the conclusion scale, the software
and the models with their validation status (ENFSI BPM section 12; FISWG)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core import APP_NAME
from core.case.acev import FEATURE_LIST_SOURCE
from core.report.content import ReportContent
from core.report.layout import Styles

name = "method"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    exam = content.examination
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Method and tools", styles.h1),
        styles.p(
            "Method: morphological comparison by ACE-V (analysis, comparison, "
            "evaluation, verification) as described in ENFSI's Best Practice Manual "
            "for Facial Image Comparison (ENFSI-BPM-DI-01, 2018) and FISWG's Facial "
            "Comparison Overview and Methodology Guidelines. Features compared on "
            f"the list of {FEATURE_LIST_SOURCE}. No distance or ratio between "
            "landmarks was measured or used as evidence (photo-anthropometry)."
        ),
    ]
    if exam is not None:
        scale = exam.settings.scale
        story.append(
            styles.p(
                f"Conclusion scale: {styles.u(scale.name)} "
                f"({styles.u(scale.source or 'source not stated')}); every level is "
                "printed with the conclusion."
            )
        )
    story.append(
        styles.p(
            f"Software: {APP_NAME} version {content.software_version}, commit "
            f"{content.source_commit}."
        )
    )
    models = exam.validation if exam else ()
    if not models:
        story.append(
            styles.p(
                "Face-recognition model: none was used for the comparisons in this "
                "report."
            )
        )
    for line in models:
        story.append(styles.p(f"Face-recognition model {styles.u(line)}"))
    story.append(
        styles.p(
            "The model's results are a separate, automatic comparison; they are "
            "not fused with the examiner's opinion (no fusion is declared).",
            styles.small,
        )
    )
    return story
