"""The colour bar beside a heatmap: its scale, what the numbers are (units) and
what the top and bottom colours mean (legend), so that every colour on screen can
be read out and defended (issue 18)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from xfr_desktop.widgets.qimage import rgb_to_qimage

# The bar's text column: narrow enough to sit beside two image views at 1280x720.
TEXT_WIDTH = 96


class ColourBar(QWidget):
    """A vertical gradient (high at the top) between its max and min labels, with
    the meaning of each end and the values' units when the owner states them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.high_label = QLabel(self)
        self.low_label = QLabel(self)
        self.warm_label = QLabel(self)  # what the top colour means
        self.cold_label = QLabel(self)  # what the bottom colour means
        self.units_label = QLabel(self)
        self.gradient = QLabel(self)
        self.gradient.setFixedWidth(16)
        self.gradient.setMinimumHeight(40)
        self.gradient.setScaledContents(True)
        self.gradient.setSizePolicy(
            QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding
        )
        for label in (self.high_label, self.low_label):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for label in (self.warm_label, self.cold_label, self.units_label):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            label.setFixedWidth(TEXT_WIDTH)
            # a font, not a style sheet: a style sheet would freeze the text colour
            # of the palette the label was made under (unreadable after a theme
            # other than the desktop's)
            font = label.font()
            font.setPointSizeF(8.0)
            label.setFont(font)
            label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.warm_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.high_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.gradient, 1, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.low_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.cold_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.units_label, 0, Qt.AlignmentFlag.AlignHCenter)

    def set_scale(self, lut: np.ndarray, low: float, high: float) -> None:
        column = np.ascontiguousarray(lut[::-1][:, None, :].repeat(8, axis=1))
        self.gradient.setPixmap(QPixmap.fromImage(rgb_to_qimage(column)))
        self.high_label.setText(f"{high:.3g}")
        self.low_label.setText(f"{low:.3g}")

    def set_meaning(self, units: str, warm: str, cold: str) -> None:
        """The values' units and what the top (``warm``) and bottom (``cold``)
        colours mean; "" hides a line."""
        for label, text in (
            (self.units_label, f"values: {units}" if units else ""),
            (self.warm_label, warm),
            (self.cold_label, cold),
        ):
            label.setText(text)
            label.setToolTip(text)
            label.setVisible(bool(text))

    @property
    def units_text(self) -> str:
        """The units as the owner stated them (shown after "values: ")."""
        return self.units_label.text().removeprefix("values: ")
