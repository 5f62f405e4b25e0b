"""The report's sections, in the order they are printed.

Each section is one module with a ``name`` and ``lay_out(content, styles)``, which
turns the gathered ``ReportContent`` into flowables; it reads neither the case nor
a model.  Adding a section means adding one module and naming it in ``SECTIONS``.

The order follows ENFSI-BPM-DI-01 (2018) and FISWG's minimum documentation item by
item (request and propositions, items, analysis, processing, method, observations,
evaluation, the model's result, verification, limitations, annexes); the mapping
is in docs/reporting.md.
"""

from __future__ import annotations

from typing import Protocol

from reportlab.platypus import Flowable

from core.report.content import ReportContent
from core.report.layout import Styles
from core.report.sections import (
    analysis,
    audit,
    comparisons,
    conclusion,
    cover,
    evaluation,
    examiner_annotations,
    exhibits,
    gallery_searches,
    limitations,
    method,
    methods,
    model_relation,
    processing,
    reproducibility,
    request,
    saved_figures,
    verification,
    worksheet,
)


class ReportSection(Protocol):
    """One part of the report (a module satisfies it)."""

    name: str

    def lay_out(self, content: ReportContent, styles: Styles) -> list[Flowable]: ...


SECTIONS: tuple[ReportSection, ...] = (
    cover,
    request,  # a: request, propositions, population
    exhibits,  # b: items, provenance, originals not altered
    analysis,  # c: per-image analysis and suitability
    processing,  # d
    method,  # e: method, tools, validation, software version
    worksheet,  # f: observations per feature
    examiner_annotations,  # f: the annotations the worksheet links
    evaluation,  # g: the conclusion on the printed scale
    conclusion,  # g: the examiner's written conclusion, verbatim
    model_relation,  # h, i: the model's result beside the opinion; 1:N search
    gallery_searches,  # h: searches against reference galleries, the leads pulled
    comparisons,  # h: the model's results (model behaviour), unmasked pairs only
    verification,  # j
    limitations,  # k
    reproducibility,  # e: how to recompute every number
    methods,  # l: appendix A, the model and the explanation methods
    audit,  # appendix B
    saved_figures,  # l: appendix C, the saved comparison figures
)
