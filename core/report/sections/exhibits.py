"""Evidence received: each exhibit with a thumbnail, its intake and its SHA-256."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak

from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, image, table

name = "exhibits"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [PageBreak(), styles.p("Evidence received", styles.h1)]
    if not content.exhibits:
        return [*story, styles.p("No exhibits were added to this case.")]
    story.append(
        styles.p(
            "Each exhibit is stored unaltered in the case, under its SHA-256. Marks: "
            "Q = questioned (probe), K = known (gallery). The originals were not "
            "altered: each is kept byte for byte as received, read-only, and "
            "<i>xfr case verify</i> checks it against the SHA-256 taken at intake; "
            "every view and figure in this report is made from a copy."
        )
    )
    rows: list[list[Any]] = [
        [
            styles.p(h, styles.small)
            for h in ("Mark", "Image", "File, intake", "SHA-256")
        ]
    ]
    for item in content.exhibits:
        exhibit = item.exhibit
        thumb: Flowable = (
            styles.p("unreadable", styles.small)  # a damaged copy: verify names it
            if item.thumbnail is None
            else image(item.thumbnail, 22 * mm)
        )
        rows.append(
            [
                styles.p(f"<b>{exhibit.mark}</b>", styles.small),
                thumb,
                styles.p(
                    f"{styles.u(exhibit.original_name)}<br/>{exhibit.size:,} bytes, "
                    f"{exhibit.format}, {exhibit.width}×{exhibit.height}<br/>"
                    f"received {exhibit.intake_time} by "
                    f"{styles.u(exhibit.intake_user)}"
                    + (f"<br/>note: {styles.u(exhibit.note)}" if exhibit.note else ""),
                    styles.small,
                ),
                # one line, so that the hash can be read and searched as a whole
                styles.p(exhibit.sha256, styles.hash),
            ]
        )
    story.append(table(rows, [11 * mm, 24 * mm, 50 * mm, TEXT_WIDTH - 85 * mm]))
    return story
