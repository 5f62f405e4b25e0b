"""A small plot of a map's faithfulness for this pair (paper 000, Deletion/Insertion).

The similarity score is recomputed while the pixels are removed (deletion) or put
back (insertion) in the map's order, and in random orders for comparison.  A map
that reflects the model makes the deletion curve fall faster and the insertion
curve rise faster than random.

Drawn with QPainter: a pyqtgraph PlotWidget would bring its context menus along as
parentless top-level widgets, for a plot nobody needs to pan.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.metrics.reliability import reliability_sentence

COLOURS = {"deletion": QColor(200, 40, 40), "insertion": QColor(30, 110, 200)}


class _Curves(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        frame = QRectF(self.rect()).adjusted(34, 6, -6, -18)
        painter.setPen(QPen(QColor(120, 120, 120), 1))
        painter.drawRect(frame)
        if not self.series:
            painter.end()
            return
        values = [v for _, ys in self.series.values() for v in ys]
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 0.01, high + 0.01
        font = painter.font()
        font.setPointSizeF(7)
        painter.setFont(font)
        painter.drawText(QPointF(2, frame.top() + 8), f"{high:.3f}")
        painter.drawText(QPointF(2, frame.bottom()), f"{low:.3f}")
        painter.drawText(QPointF(frame.left(), frame.bottom() + 13), "0")
        painter.drawText(QPointF(frame.right() - 6, frame.bottom() + 13), "1")
        painter.drawText(
            QPointF(frame.center().x() - 40, frame.bottom() + 13), "fraction of pixels"
        )
        for name, (xs, ys) in self.series.items():
            colour = COLOURS["deletion" if "deletion" in name else "insertion"]
            pen = QPen(colour, 2 if not name.startswith("random") else 1)
            if name.startswith("random"):
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            points = [
                QPointF(
                    frame.left() + x * frame.width(),
                    frame.bottom() - (y - low) / (high - low) * frame.height(),
                )
                for x, y in zip(xs, ys, strict=True)
            ]
            painter.drawPolyline(QPolygonF(points))
        painter.end()


class ReliabilityPlot(QWidget):
    """Deletion and insertion curves of one map, with the random-order baselines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _Curves()
        self.summary = QLabel("'Check faithfulness' measures the map for this pair.")
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        self.summary.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary)

    @property
    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        return self.plot.series

    def clear(self, text: str = "") -> None:
        self.plot.series = {}
        self.plot.update()
        self.summary.setText(text)

    def set_result(self, result: Any, side: str) -> None:
        """``result``: ``core.metrics.faithfulness.DeletionInsertion``."""
        fractions = [float(f) for f in result.fractions]
        series = {}
        for name in ("deletion", "insertion"):
            series[name] = (
                fractions,
                [float(v) for v in getattr(result, f"{name}_scores")],
            )
            random = getattr(result, f"random_{name}_scores", None)
            if random is not None and len(random):
                series[f"random {name}"] = (fractions, [float(v) for v in random])
        self.plot.series = series
        self.plot.update()
        self.summary.setText(reliability_sentence(result, side))
