"""Appendix B: every entry of the case's audit trail."""

from __future__ import annotations

import json

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak

from core.case.store import AuditEntry
from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, table

name = "audit"


def _who(entry: AuditEntry) -> str:
    """The examiner an entry names, and the login beside it when different."""
    if entry.login and entry.login != entry.user:
        return f"{entry.user} [{entry.login}]"
    return entry.user


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    entries = content.audit
    story: list[Flowable] = [
        PageBreak(),
        styles.p("Appendix B: audit trail", styles.h1),
        styles.p(
            f"All {len(entries)} entries of the case's append-only log, each chained "
            "to the previous one by SHA-256 (details shortened here; the case holds "
            "them in full, with the SHA-256 of every row each entry wrote). "
            "“User” is the examiner the entry names; the login name of the "
            "computer account follows in brackets when it differs."
        ),
    ]
    rows = [
        [
            styles.p(h, styles.small)
            for h in ("#", "Time (UTC)", "User", "Action", "Details", "Hash")
        ]
    ]
    for entry in entries:
        details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True)
        if len(details) > 240:
            details = details[:237] + "…"
        rows.append(
            [
                styles.p(str(entry.seq), styles.small),
                styles.p(entry.time, styles.small),
                styles.p(styles.u(_who(entry)), styles.small),
                styles.p(entry.action, styles.small),
                styles.p(styles.u(details), styles.small),
                styles.p(entry.hash[:16] + "…", styles.mono),
            ]
        )
    widths = [8 * mm, 26 * mm, 20 * mm, 26 * mm, 70 * mm]
    widths.append(TEXT_WIDTH - sum(widths))
    story.append(table(rows, widths))
    return story
