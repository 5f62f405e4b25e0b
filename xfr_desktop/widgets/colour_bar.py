"""The colour bar beside the evidence viewer's heatmap."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from xfr_desktop.widgets.qimage import rgb_to_qimage


class ColourBar(QWidget):
    """A vertical gradient (high at the top) between its max and min labels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.high_label = QLabel(self)
        self.low_label = QLabel(self)
        self.gradient = QLabel(self)
        self.gradient.setFixedWidth(16)
        self.gradient.setScaledContents(True)
        self.gradient.setSizePolicy(
            QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding
        )
        for label in (self.high_label, self.low_label):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.high_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.gradient, 1, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.low_label, 0, Qt.AlignmentFlag.AlignHCenter)

    def set_scale(self, lut: np.ndarray, low: float, high: float) -> None:
        column = np.ascontiguousarray(lut[::-1][:, None, :].repeat(8, axis=1))
        self.gradient.setPixmap(QPixmap.fromImage(rgb_to_qimage(column)))
        self.high_label.setText(f"{high:.3g}")
        self.low_label.setText(f"{low:.3g}")
