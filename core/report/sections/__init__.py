"""The report's sections, in the order they are printed.

Each section is one module with a ``name`` and ``lay_out(content, styles)``, which
turns the gathered ``ReportContent`` into flowables; it reads neither the case nor
a model.  Adding a section means adding one module and naming it in ``SECTIONS``.
"""

from __future__ import annotations

from typing import Protocol

from reportlab.platypus import Flowable

from core.report.content import ReportContent
from core.report.layout import Styles
from core.report.sections import (
    audit,
    comparisons,
    conclusion,
    cover,
    examiner_annotations,
    exhibits,
    limitations,
    methods,
    reproducibility,
)


class ReportSection(Protocol):
    """One part of the report (a module satisfies it)."""

    name: str

    def lay_out(self, content: ReportContent, styles: Styles) -> list[Flowable]: ...


SECTIONS: tuple[ReportSection, ...] = (
    cover,
    exhibits,
    comparisons,
    examiner_annotations,
    conclusion,
    limitations,
    reproducibility,
    methods,
    audit,
)
