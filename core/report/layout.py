"""What every report section lays out with: page geometry, styles, tables, images.

Pure layout helpers (reportlab flowables from plain data); nothing here reads the
case or runs a model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph, Table, TableStyle

from core import APP_NAME
from core.explain.render import colour_map
from core.report import figures
from core.report.fonts import markup, register_fonts

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN


# ---- styles and small helpers -------------------------------------------------------
class Styles:
    def __init__(self, texts: Sequence[str] = ()) -> None:
        self.fonts = register_fonts(texts)
        base = getSampleStyleSheet()
        regular, bold = self.fonts.regular, self.fonts.bold

        def style(name: str, parent: str, **kwargs: Any) -> ParagraphStyle:
            return ParagraphStyle(name, parent=base[parent], fontName=regular, **kwargs)

        self.body = style("xfr-body", "BodyText", fontSize=9.5, leading=12.5)
        self.small = style("xfr-small", "BodyText", fontSize=7.5, leading=9.5)
        self.mono = ParagraphStyle(
            "xfr-mono", parent=self.small, fontName=self.fonts.mono, fontSize=7
        )
        self.hash = ParagraphStyle(
            "xfr-hash", parent=self.small, fontName=self.fonts.mono, fontSize=6.3
        )
        self.title = style("xfr-title", "Title", fontSize=20, leading=24)
        self.title.fontName = bold
        self.h1 = style("xfr-h1", "Heading1", fontSize=15, leading=19, spaceBefore=6)
        self.h1.fontName = bold
        self.h2 = style("xfr-h2", "Heading2", fontSize=12, leading=15, spaceBefore=8)
        self.h2.fontName = bold
        self.caption = style(
            "xfr-caption", "BodyText", fontSize=8, leading=10, alignment=TA_CENTER
        )

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        """A paragraph of trusted template markup (user text goes through ``u``)."""
        return Paragraph(str(text), style or self.body)

    def u(self, text: Any, *, bold: bool = False) -> str:
        """User text (names, notes, labels) as escaped markup in any script."""
        return markup(str(text), bold=bold, fonts=self.fonts)


def plain_table(rows: list[list[Any]], widths: Sequence[float] | None = None) -> Table:
    """A layout grid of flowables (figures side by side), no rules."""
    return Table(rows, colWidths=widths)


def table(rows: list[list[Any]], widths: Sequence[float], header: bool = True) -> Table:
    grid = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
    grid.setStyle(TableStyle(commands))
    return grid


def image(rgb: np.ndarray, width: float) -> Image:
    height = width * rgb.shape[0] / rgb.shape[1]
    return Image(io.BytesIO(figures.png_bytes(rgb)), width=width, height=height)


def colour_bar(kind: str, peak: float, width: float, font: str) -> Drawing:
    """A vector colour bar with its value range (the same LUT as the panels)."""
    signed = kind == "combined"
    low, high = (-peak, peak) if signed else (0.0, peak)
    steps = 64
    ramp = np.linspace(low, high, steps)[None, :]
    rgb, _, _ = colour_map(ramp, signed, peak=peak)
    drawing = Drawing(width, 22)
    bar_width = width - 90
    for index in range(steps):
        r, g, b = (rgb[0, index] / 255.0).tolist()
        drawing.add(
            Rect(
                45 + index * bar_width / steps, 10, bar_width / steps + 0.3, 8,
                fillColor=colors.Color(r, g, b), strokeColor=None,
            )
        )  # fmt: skip
    drawing.add(String(0, 11, f"{low:.3g}", fontSize=7, fontName=font))
    drawing.add(String(width - 40, 11, f"{high:.3g}", fontSize=7, fontName=font))
    return drawing


# ---- the page frame: case number, report id, page x of y ----------------------------
def numbered_canvas(case_number: str, report_id: str, font: str) -> type[Canvas]:
    class NumberedCanvas(Canvas):
        """Defers drawing the footer until the page count is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # every page starts in the embedded font, not in (unembedded) Helvetica
            if not kwargs.get("initialFontName"):
                kwargs["initialFontName"] = font
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(font, 7.5)
                self.setFillColor(colors.dimgrey)
                self.drawString(
                    MARGIN, 10 * mm, f"Case {case_number} · report {report_id}"
                )
                self.drawRightString(
                    PAGE_WIDTH - MARGIN, 10 * mm, f"page {number} of {total}"
                )
                self.drawString(
                    MARGIN, PAGE_HEIGHT - 10 * mm, f"{APP_NAME} examiner report"
                )
                super().showPage()
            super().save()

    return NumberedCanvas
