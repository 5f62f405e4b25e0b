"""The cover: case, examiner, report id, software, models, audit head, notes."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from core import APP_NAME
from core.report.content import ReportContent
from core.report.fonts import coverage_warning
from core.report.layout import TEXT_WIDTH, Styles, table

name = "cover"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    info = content.info
    model_rows = sorted(
        {
            (c.comparison.model_id, c.comparison.model_sha256)
            for c in content.comparisons
        }
    )
    older = content.older
    rows = [
        ["Agency", info.agency or "-"],
        ["Case number", info.case_number],
        ["Case title", info.title or "-"],
        ["Examiner", info.examiner],
        ["Report generated", content.stamp],
        ["Report id", content.report_id],
        ["Software", f"{APP_NAME} {content.software_version}"],
    ]
    for model_id, model_sha256 in model_rows:
        rows.append(["Face model", f"{model_id}, weights SHA-256 {model_sha256}"])
    rows.append(
        [
            "Audit trail",
            f"{content.audit_seq} entries; last entry hash {content.audit_hash}; "
            f"state digest {content.state_digest} (the report describes the case "
            "as of this entry)",
        ]
    )
    rows.append(["Case identifier", info.case_uuid])
    facts = table(
        [[styles.p(a), styles.p(styles.u(b))] for a, b in rows],
        [40 * mm, TEXT_WIDTH - 40 * mm],
        header=False,
    )
    notes = [
        content.signature_note
        or "This report is not signed. An unsigned report can be changed without "
        "trace; rely on a signed copy.",
        content.timestamp_note,
        coverage_warning(content.texts),
        f"{len(older)} of the {len(content.comparisons)} comparisons in this report "
        "were computed on faces that were later replaced; they are shown for the "
        "record under 'Superseded comparisons', each marked SUPERSEDED, and are not "
        "current results."
        if older
        else "",
    ]
    return [
        Spacer(1, 20 * mm),
        styles.p("Facial image comparison", styles.title),
        styles.p("Examiner report", styles.h2),
        Spacer(1, 8 * mm),
        facts,
        Spacer(1, 6 * mm),
        *[styles.p(styles.u(n)) for n in notes if n],
        styles.p(
            "Check this report against the case with <i>xfr report verify REPORT "
            "--case CASE</i> and the case itself with <i>xfr case verify CASE</i>."
        ),
    ]
