"""The per-pair faithfulness figure of one map (``core.metrics.pair_faithfulness``).

The model's decision margin for this pair (positive: "same person") as the face is
removed region by region in the map's order, beside the mean of the random orders,
the fixed face-centre map's curve and the decision threshold (margin 0).  Under the
curve: the verdict sentence, always ``verdict_sentence``'s own words.

Drawn with QPainter: a pyqtgraph PlotWidget would bring its context menus along as
parentless top-level widgets, for a plot nobody needs to pan.  Its colours come from
the theme (``xfr_desktop.theme.plot_colours`` of the widget's palette) at every
paint, and a palette change repaints it, so it follows a theme switch.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.metrics.pair_faithfulness import MapFaithfulness, verdict_sentence
from core.wording import NOT_CHECKED_YET
from xfr_desktop.theme import PlotColours, plot_colours

# name -> (pen style, width); colours per theme in ``theme.PLOT_COLOURS``.  The
# styles differ too, so the curves stay apart for readers who cannot tell colours.
# The map's own curve is drawn last, on top.
SERIES_STYLE = {
    "random orders (mean)": (Qt.PenStyle.DashLine, 1.4),
    "face-centre map": (Qt.PenStyle.DotLine, 1.8),
    "this map": (Qt.PenStyle.SolidLine, 2.2),
}
LABEL_POINT_SIZE = 8.0


class MarginCurves(QWidget):
    """Margin against removed fraction: the series of ``SERIES_STYLE``, threshold 0."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    @property
    def colours(self) -> PlotColours:
        """The colours it paints with now (the theme of its palette)."""
        return plot_colours(self.palette())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.update()  # a theme switch: paint again in the new colours
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        colours = self.colours
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(colours.background))
        frame = QRectF(self.rect()).adjusted(42, 6, -6, -20)
        painter.setPen(QPen(QColor(colours.grid), 1))
        for quarter in (0.25, 0.5, 0.75):
            x = frame.left() + quarter * frame.width()
            painter.drawLine(QPointF(x, frame.top()), QPointF(x, frame.bottom()))
        painter.setPen(QPen(QColor(colours.frame), 1))
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
        font.setPointSizeF(LABEL_POINT_SIZE)
        painter.setFont(font)
        painter.setPen(QColor(colours.text))
        painter.drawText(QPointF(2, frame.top() + 8), f"{high:+.2f}")
        painter.drawText(QPointF(2, frame.bottom()), f"{low:+.2f}")
        painter.drawText(QPointF(frame.left(), frame.bottom() + 14), "0")
        painter.drawText(QPointF(frame.right() - 6, frame.bottom() + 14), "1")
        painter.drawText(
            QPointF(frame.center().x() - 70, frame.bottom() + 14),
            "fraction of the face removed",
        )
        painter.setPen(QPen(QColor(colours.text), 1))
        painter.drawLine(point(0, 0), point(1, 0))
        painter.drawText(point(0, 0) + QPointF(3, -3), "threshold")
        for name, (style, width) in SERIES_STYLE.items():
            if name not in self.series:
                continue
            xs, ys = self.series[name]
            pen = QPen(QColor(colours.series[name]), width)
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
