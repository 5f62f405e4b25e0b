"""The examiner's report as a PDF (reportlab platypus), built from the case alone.

Sections: cover; exhibits with their SHA-256; per comparison the faces, the scores
in plain words and each selected explanation (similarity and dissimilarity panels
with a colour bar and a plain reading); the examiner's annotations and conclusion
(verbatim); limitations; reproducibility block; methods appendix; the audit trail.
Every page carries the case number, the report id and "page x of y".

Building is two steps: ``core.report.content`` gathers everything the report
states (every case read and model pass), then the sections of
``core.report.sections`` lay it out in order (``lay_out``), which needs neither
the case nor a model.

The report id is a hash of what the report states (case, audit-log head, selected
comparisons and explanations, time): two reports of different case states never
share an id.  Generating a report is itself recorded in the case's audit trail,
with the PDF's SHA-256 (``core.report.api.generate_report``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, SimpleDocTemplate

from core import APP_NAME
from core.case.store import Case
from core.progress import ProgressCallback
from core.report.content import (
    ReportContent,
    ReportRequest,
    check_faithfulness_of,
    gather_content,
    select_comparisons,
    superseded_faces,
)
from core.report.explanation_figures import margin_chart
from core.report.layout import MARGIN, Styles, colour_bar, numbered_canvas
from core.report.sections import SECTIONS

__all__ = [
    "BuiltReport",
    "ReportRequest",
    "build_report",
    "check_faithfulness_of",
    "colour_bar",
    "lay_out",
    "margin_chart",
    "superseded_faces",
]


@dataclass(frozen=True)
class BuiltReport:
    pdf: bytes
    report_id: str
    pages: int
    comparisons: tuple[int, ...]
    explanations: tuple[int, ...]
    evidence_sha256: tuple[str, ...]
    # per comparison: its pair, result and whether a face of it was superseded
    comparison_entries: tuple[dict[str, Any], ...] = ()
    software_version: str = ""  # of the code that made the report
    source_commit: str = ""  # its git commit (core.version.source_commit)

    @property
    def superseded_comparisons(self) -> tuple[int, ...]:
        return tuple(e["id"] for e in self.comparison_entries if e["superseded"])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


def build_report(
    case: Case,
    request: ReportRequest | None = None,
    progress: ProgressCallback | None = None,
) -> BuiltReport:
    """Render the report of ``case`` to PDF bytes (nothing is written anywhere)."""
    request = request or ReportRequest()
    selection = select_comparisons(case, request)
    total = len(selection) + len(SECTIONS) + 1
    step = 0

    def advance(message: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, total, message)

    content = gather_content(case, request, selection, advance)
    pdf = lay_out(content, advance)
    return BuiltReport(
        pdf=pdf,
        report_id=content.report_id,
        pages=_count_pages(pdf),
        comparisons=tuple(c.comparison.id for c in content.comparisons),
        comparison_entries=tuple(c.manifest_entry for c in content.comparisons),
        explanations=tuple(
            e.stored.id for c in content.comparisons for e in c.explanations
        ),
        evidence_sha256=tuple(e.exhibit.sha256 for e in content.exhibits),
        software_version=content.software_version,
        source_commit=content.source_commit,
    )


def lay_out(
    content: ReportContent, advance: Callable[[str], None] | None = None
) -> bytes:
    """The PDF of gathered content: every section in order (no case, no model)."""
    styles = Styles(content.texts)
    story: list[Flowable] = []
    for section in SECTIONS:
        story += section.lay_out(content, styles)
        if advance is not None:
            advance(section.name)
    info = content.info
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{APP_NAME} report - case {info.case_number}",
        author=info.examiner,
        subject=f"Report {content.report_id}",
        creator=f"{APP_NAME} {content.software_version}",
    )
    document.build(
        story,
        canvasmaker=numbered_canvas(
            info.case_number, content.report_id, styles.fonts.regular
        ),
    )
    if advance is not None:
        advance("done")
    return buffer.getvalue()


def _count_pages(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
