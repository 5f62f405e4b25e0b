"""Appendix C: the comparison views the examiner saved as numbered figures."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether

from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, image

name = "figures"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(80 * mm),
        styles.p("Appendix C: saved figures", styles.h1),
        styles.p(
            "Views of the aligned faces (one eye line) that the examiner saved "
            "during the comparison. They illustrate the observations; nothing in "
            "them was measured.",
            styles.small,
        ),
    ]
    figures = content.examination.figures if content.examination else ()
    if not figures:
        return [*story, styles.p("No figure was saved.")]
    for item in figures:
        f = item.figure
        caption = (
            f"Figure {f.number}: {f.view}, {f.questioned} / {f.known}, "
            f"{styles.u(f.caption or 'no caption')}; saved by {styles.u(f.author)} "
            f"on {f.created}."
        )
        picture: Flowable = (
            styles.p("The stored image could not be read (run xfr case verify).")
            if item.rgb is None
            else image(item.rgb, min(TEXT_WIDTH, 120 * mm))
        )
        story.append(KeepTogether([picture, styles.p(caption, styles.caption)]))
    return story
