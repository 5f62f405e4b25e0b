"""Processing applied to the images (ENFSI BPM: every step that changes what is
seen is stated, and "none" is said when there was none)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import Styles

name = "processing"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(40 * mm),
        styles.p("Processing applied", styles.h1),
    ]
    lines = content.examination.processing if content.examination else ()
    return [*story, *[styles.p(f"• {styles.u(line)}") for line in lines]]
