"""Processing applied to the images (ENFSI BPM: every step that changes what is
seen is stated, and "none" is said when there was none).

First what is done to every image (EXIF orientation, the model's alignment) and
whether any exhibit was enhanced; then, when exhibits were processed, the
processing log (issue 21): per processed exhibit its lineage, a table of its
steps with their parameters and what each does, its hashes in a small monospace
table and the result of re-running its chain for this report; then the
statement that only non-generative operations were used, and what is out of
scope.
"""

from __future__ import annotations

from typing import Any

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Spacer,
    Table,
    TableStyle,
)

from core import wording
from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, table
from core.report.processing_content import ProcessedExhibit, ProcessingStep

name = "processing"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(40 * mm),
        styles.p("Processing applied", styles.h1),
    ]
    lines = content.examination.processing if content.examination else ()
    story += [styles.p(f"• {styles.u(line)}") for line in lines]
    if content.processed:
        story += [
            CondPageBreak(60 * mm),
            styles.p(wording.PROCESSING_LOG_HEADING, styles.h2),
            styles.p(wording.PROCESSING_LOG_INTRO),
        ]
        for item in content.processed:
            story += _processed(item, styles)
        story += [
            Spacer(1, 2 * mm),
            styles.p(styles.u(wording.NON_GENERATIVE_STATEMENT)),
            styles.p(wording.PIXELS_HASH_NOTE, styles.small),
        ]
    story.append(styles.p(styles.u(wording.PROCESSING_OUT_OF_SCOPE)))
    return story


def _processed(item: ProcessedExhibit, styles: Styles) -> list[Flowable]:
    head: list[Flowable] = [
        styles.p(f"{item.mark}: processed from {item.source}", styles.h2),
        styles.p(
            f"Lineage {styles.u(item.lineage)}. {styles.u(item.note)}.", styles.small
        ),
    ]
    widths = [7 * mm, 33 * mm, 56 * mm, TEXT_WIDTH - 96 * mm]
    rows: list[list[Any]] = [
        [
            styles.p(h, styles.small)
            for h in ("#", "Operation", "Parameters", "What it does")
        ],
        *[_step_row(step, styles) for step in item.steps],
    ]
    steps = table(rows, widths)
    # the heading stays with the first rows of its steps table
    return [
        KeepTogether([*head, steps]),
        Spacer(1, 1.5 * mm),
        KeepTogether(
            [
                table(_hash_rows(item, styles), [44 * mm, TEXT_WIDTH - 44 * mm], False),
                Spacer(1, 1.5 * mm),
                _rerun(item, styles),
            ]
        ),
        Spacer(1, 4 * mm),
    ]


def _step_row(step: ProcessingStep, styles: Styles) -> list[Any]:
    version = "version not recorded" if step.version is None else f"v{step.version}"
    params = (
        "<br/>".join(
            f"<b>{styles.u(p.name)} = {styles.u(p.value)}</b>"
            + (f" ({styles.u(p.meaning)})" if p.meaning else "")
            for p in step.params
        )
        or "none"
    )
    does = styles.u(step.description)
    if step.implementation:
        does += f"<br/><i>{styles.u(step.implementation)}</i>"
    if step.read:
        does += "<br/>Read besides its input: " + "; ".join(
            styles.u(line) for line in step.read
        )
    return [
        styles.p(str(step.number), styles.small),
        styles.p(
            f"<b>{styles.u(step.name)}</b><br/>{version}<br/>"
            f"<font size=6>({styles.u(step.op_id)})</font>",
            styles.small,
        ),
        styles.p(params, styles.small),
        styles.p(does, styles.small),
    ]


def _hash_rows(item: ProcessedExhibit, styles: Styles) -> list[list[Any]]:
    libraries = ", ".join(
        f"{k} {v}"
        for k, v in item.libraries
        if k != "platform" and not k.endswith(" cpu")
    )
    features = "; ".join(
        f"{k.removesuffix(' cpu')}: {v}"
        for k, v in item.libraries
        if k.endswith(" cpu")
    )
    platform = dict(item.libraries).get("platform", "not recorded")
    fields: list[tuple[str, str, bool]] = [
        (f"Source file SHA-256 ({item.source})", item.source_sha256, True),
        (f"Source pixels SHA-256 ({item.source})", item.source_pixels_sha256, True),
        (f"Output pixels SHA-256 ({item.mark})", item.output_sha256, True),
        (f"Stored PNG SHA-256 ({item.mark})", item.stored_sha256, True),
        ("Software", f"XFR Desktop {styles.u(item.software_version)}", False),
        ("Libraries", styles.u(libraries or "not recorded"), False),
        ("Platform", styles.u(platform), False),
        ("Processor features used", styles.u(features or "not recorded"), False),
        ("Made", f"{item.created} by {styles.u(item.created_by)}", False),
    ]
    return [
        [
            styles.p(label, styles.small),
            styles.p(value, styles.hash if mono else styles.small),
        ]
        for label, value, mono in fields
    ]


def _rerun(item: ProcessedExhibit, styles: Styles) -> Table:
    """The re-run's result, boxed: green-edged when bit for bit, red when not."""
    text = "<br/>".join(
        (styles.u(line) if item.rerun_ok else f"<b>{styles.u(line)}</b>")
        for line in item.rerun
    )
    box = Table([[styles.p(text, styles.small)]], colWidths=[TEXT_WIDTH])
    edge, fill = ("#2e7d32", "#eef7ee") if item.rerun_ok else ("#b00020", "#fde8ea")
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1, colors.HexColor(edge)),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(fill)),
                ("LEFTPADDING", (0, 0), (-1, -1), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return box
