"""The examiner's comparison views of the pair shown (issue 19, item 3): the two
faces aligned on one eye line, side by side, superimposed, wiped or flickered,
magnified without interpolation.  Viewing aids only: nothing is measured
(``core.compare_views`` says why)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.store import Case
from core.compare_views import MAX_MAGNIFICATION, MODES, compose, magnify
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.widgets.qimage import rgb_to_qimage
from xfr_desktop.workers import TaskRunner

FLICKER = "flicker"
NOT_MEASURED = (
    "Viewing aids for your own comparison: the faces are aligned on one eye "
    "line; nothing here measures distances or ratios, which are not to be used "
    "as evidence (photo-anthropometry; ASTM E3149)."
)


class SuperimposePanel(QWidget):
    """Side by side / superimposition / wipe / flicker of the aligned pair."""

    def __init__(self, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.faces: tuple[np.ndarray, np.ndarray] | None = None
        self.labels = ("", "")
        self.mode = QComboBox()
        self.mode.addItems([*MODES, FLICKER])
        self.amount = QSlider(Qt.Orientation.Horizontal)
        self.amount.setRange(0, 100)
        self.amount.setValue(50)
        self.amount.setToolTip("Superimposition: the gallery's opacity; wipe: where")
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.5, 10.0)
        self.rate.setValue(2.0)
        self.rate.setSuffix(" Hz")
        self.rate.setToolTip("Flicker: how often the two faces swap per second")
        self.zoom = QSpinBox()
        self.zoom.setRange(1, MAX_MAGNIFICATION)
        self.zoom.setValue(2)
        self.zoom.setSuffix("×")
        self.zoom.setToolTip(
            "Magnification by repeating pixels (no interpolation); a pixel grid from 4×"
        )
        self.caption = QLabel()
        self.note = QLabel(NOT_MEASURED)
        self.note.setWordWrap(True)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        area = QScrollArea()
        area.setWidget(self.picture)
        area.setWidgetResizable(True)
        controls = QHBoxLayout()
        for text, widget in (
            ("View", self.mode),
            ("Opacity / wipe", self.amount),
            ("Flicker", self.rate),
            ("Magnify", self.zoom),
        ):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget, 1 if widget is self.amount else 0)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addWidget(self.caption)
        layout.addWidget(area, 1)
        self.flicker = QTimer(self)
        self.flicker.timeout.connect(self._next_frame)
        self.showing_gallery = False  # flicker: which face is shown now
        for signal in (
            self.mode.currentIndexChanged,
            self.amount.valueChanged,
            self.rate.valueChanged,
            self.zoom.valueChanged,
        ):
            signal.connect(lambda *_: self.render())
        self.runner = TaskRunner(self)
        self.runner.result.connect(self._on_faces)
        self.runner.error.connect(
            lambda e, d: errors.report(e, d, context="Could not align the faces.")
        )
        self.render()

    def set_pair(self, case: Case | None, probe: str, gallery: str) -> None:
        """Align the pair's faces in a worker (reads both evidence copies)."""
        self.faces = None
        self.labels = (probe, gallery)
        self.render()
        if case is not None and probe and gallery:
            self.runner.start(workflow.aligned_faces, case, probe, gallery)

    def _on_faces(self, faces: Any) -> None:
        self.faces = faces
        self.render()

    def _next_frame(self) -> None:
        self.showing_gallery = not self.showing_gallery
        self.render()

    def render(self) -> np.ndarray | None:
        """Draw the chosen view; the RGB array shown (None: no pair yet)."""
        mode = self.mode.currentText()
        flickering = mode == FLICKER and self.faces is not None
        if flickering and not self.flicker.isActive():
            self.flicker.start(round(1000 / self.rate.value() / 2))
        elif flickering:
            self.flicker.setInterval(round(1000 / self.rate.value() / 2))
        elif self.flicker.isActive():
            self.flicker.stop()
        if self.faces is None:
            self.picture.clear()
            self.caption.setText("Open a pair to compare its faces here.")
            return None
        probe, gallery = self.faces
        if mode == FLICKER:
            shown = gallery if self.showing_gallery else probe
            now = self.labels[1] if self.showing_gallery else self.labels[0]
            self.caption.setText(f"Flicker: {now} shown")
        else:
            shown = compose(probe, gallery, mode, self.amount.value() / 100)
            self.caption.setText(self._caption(mode))
        rgb = magnify(shown, self.zoom.value())
        self.picture.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))
        return rgb

    def _caption(self, mode: str) -> str:
        probe, gallery = self.labels
        share = self.amount.value()
        if mode == "superimposition":
            return f"{gallery} at {share} % over {probe}"
        if mode.startswith("wipe"):
            where = "left of" if "vertical" in mode else "above"
            return f"{probe} {where} the yellow line ({share} %), {gallery} beyond"
        return f"{probe} (left) and {gallery} (right)"

    def shutdown(self) -> None:
        self.flicker.stop()
        self.runner.shutdown()
