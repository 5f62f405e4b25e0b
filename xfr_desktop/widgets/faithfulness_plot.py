"""The per-pair faithfulness figure of one map (``core.metrics.pair_faithfulness``).

The model's decision margin for this pair (positive: "same person") as the face is
removed region by region in the map's order, beside the mean of the random orders,
the fixed face-centre map's curve and the decision threshold (margin 0).  Under the
curve: the verdict sentence, always ``verdict_sentence``'s own words.

Drawn with QPainter: a pyqtgraph PlotWidget would bring its context menus along as
parentless top-level widgets, for a plot nobody needs to pan.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.metrics.pair_faithfulness import MapFaithfulness, verdict_sentence
from core.wording import NOT_CHECKED_YET

# name -> (colour, pen style, width); the map's own curve drawn last, on top
SERIES_STYLE = {
    "random orders (mean)": (QColor(120, 120, 120), Qt.PenStyle.DashLine, 1.2),
    "face-centre map": (QColor(230, 130, 20), Qt.PenStyle.DotLine, 1.6),
    "this map": (QColor(200, 30, 30), Qt.PenStyle.SolidLine, 2.0),
}


class MarginCurves(QWidget):
    """Margin against removed fraction: the series of ``SERIES_STYLE``, threshold 0."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        frame = QRectF(self.rect()).adjusted(38, 6, -6, -18)
        painter.setPen(QPen(QColor(120, 120, 120), 1))
        painter.drawRect(frame)
        if not self.series:
            painter.end()
            return
        values = [v for _, ys in self.series.values() for v in ys] + [0.0]
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 0.01, high + 0.01

        def point(x: float, y: float) -> QPointF:
            return QPointF(
                frame.left() + x * frame.width(),
                frame.bottom() - (y - low) / (high - low) * frame.height(),
            )

        font = painter.font()
        font.setPointSizeF(7)
        painter.setFont(font)
        painter.setPen(QColor(60, 60, 60))
        painter.drawText(QPointF(2, frame.top() + 8), f"{high:+.2f}")
        painter.drawText(QPointF(2, frame.bottom()), f"{low:+.2f}")
        painter.drawText(QPointF(frame.left(), frame.bottom() + 13), "0")
        painter.drawText(QPointF(frame.right() - 6, frame.bottom() + 13), "1")
        painter.drawText(
            QPointF(frame.center().x() - 60, frame.bottom() + 13),
            "fraction of the face removed",
        )
        threshold = QPen(QColor(0, 0, 0), 1)
        painter.setPen(threshold)
        painter.drawLine(point(0, 0), point(1, 0))
        painter.drawText(point(0, 0) + QPointF(3, -3), "threshold")
        for name, (colour, style, width) in SERIES_STYLE.items():
            if name not in self.series:
                continue
            xs, ys = self.series[name]
            pen = QPen(colour, width)
            pen.setStyle(style)
            painter.setPen(pen)
            painter.drawPolyline(
                QPolygonF([point(x, y) for x, y in zip(xs, ys, strict=True)])
            )
        painter.end()


class FaithfulnessPlot(QWidget):
    """One side's curves for the map shown, and its verdict sentence under them."""

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.plot = MarginCurves()
        self.verdict = QLabel(NOT_CHECKED_YET)
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.PlainText)
        self.verdict.setToolTip(
            "Does removing the face in the map's order change the model's decision "
            "for this pair faster than random orders, a fixed face-centre map and "
            "the same method's maps for other faces?"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.verdict)

    @property
    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        return self.plot.series

    def clear(self, text: str = NOT_CHECKED_YET) -> None:
        self.plot.series = {}
        self.plot.update()
        self.verdict.setText(text)

    def set_result(self, result: MapFaithfulness) -> None:
        fractions = [float(f) for f in result.fractions]
        self.plot.series = {
            "random orders (mean)": (fractions, list(result.random_margins_mean)),
            "face-centre map": (fractions, list(result.prior_margins)),
            "this map": (fractions, list(result.margins)),
        }
        self.plot.update()
        self.verdict.setText(verdict_sentence(result))
