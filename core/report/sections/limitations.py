"""What the scores and maps do not show (the same text in every report)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import Styles
from core.wording import LIMITATIONS

name = "limitations"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    return [
        CondPageBreak(60 * mm),
        styles.p("Limitations", styles.h1),
        *[styles.p(f"• {text}") for text in LIMITATIONS],
    ]
