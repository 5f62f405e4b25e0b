"""The examiner's comparison views of the pair shown (issue 19, item 3): the two
faces aligned on one eye line, side by side, superimposed, wiped or flickered,
with a magnifier without interpolation.  Viewing aids only: nothing is measured
(``core.compare_views`` says why).

Side by side is two viewers kept on the same chip pixels by ``ViewSync`` (the
Comparison tab's): panning or zooming one moves the other, and the magnifier
shows the centre of the view.  "Save view as figure…" keeps what is shown as the
case's next numbered figure, drawn again at the chips' own pixels from the
settings stored with it (``workflow.save_comparison_figure``), not grabbed from
the screen.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.examination import Figure
from core.case.store import Case
from core.compare_views import (
    ALIGNED_SIZE,
    MAGNIFIER_PIXELS,
    MAX_MAGNIFICATION,
    MODES,
    ViewParams,
    compose,
    render_view,
)
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.widgets.processed_note import ProcessedNote
from xfr_desktop.widgets.qimage import rgb_to_qimage
from xfr_desktop.widgets.view_sync import ViewSync
from xfr_desktop.widgets.viewer import EvidenceViewer
from xfr_desktop.workers import TaskRunner

if TYPE_CHECKING:
    from xfr_desktop.case_controller import CaseController

FLICKER = "flicker"
SAVE_SHORTCUT = "Ctrl+Shift+F"
NOT_MEASURED = (
    "Viewing aids for your own comparison: the faces are aligned on one eye "
    "line; nothing here measures distances or ratios, which are not to be used "
    "as evidence (photo-anthropometry; ASTM E3149)."
)
NO_PAIR = "Open a pair to compare its faces here."
WIPES = ("wipe (vertical)", "wipe (horizontal)")
# the figure view each mode of the list is saved as
FIGURE_VIEW = {
    "side by side": "side by side",
    "superimposition": "superimposed",
    "wipe (vertical)": "wipe",
    "wipe (horizontal)": "wipe",
    FLICKER: "flicker",
}


class SuperimposePanel(QWidget):
    """Side by side / superimposition / wipe / flicker of the aligned pair."""

    def __init__(
        self,
        errors: ErrorReporter,
        controller: CaseController | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.errors = errors
        self.controller = controller
        self.case: Case | None = None
        self.faces: tuple[np.ndarray, np.ndarray] | None = None
        self.labels = ("", "")
        self.mode = QComboBox()
        self.mode.addItems([*MODES, FLICKER])
        self.amount = QSlider(Qt.Orientation.Horizontal)
        self.amount.setRange(0, 100)
        self.amount.setValue(50)
        self.amount.setToolTip("Superimposition: the known face's opacity; wipe: where")
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.5, 10.0)
        self.rate.setValue(2.0)
        self.rate.setSuffix(" Hz")
        self.rate.setToolTip("Flicker: how often the two faces swap per second")
        self.zoom = QSpinBox()
        self.zoom.setRange(1, MAX_MAGNIFICATION)
        self.zoom.setValue(4)
        self.zoom.setSuffix("×")
        self.zoom.setToolTip(
            "The magnifier: each pixel repeated (no interpolation), a pixel grid "
            "from 4×; it shows the centre of the view"
        )
        self.caption = QLabel()
        self.note = QLabel(NOT_MEASURED)
        self.note.setWordWrap(True)
        self.viewers = (EvidenceViewer(), EvidenceViewer())
        for viewer in self.viewers:
            viewer.set_readout_shown(False)
            viewer.setMinimumWidth(200)
        self.sync = ViewSync(*self.viewers, parent=self)
        self.magnifier = QLabel()
        self.magnifier.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # wide enough for the side-by-side magnifier (two windows and the gap at
        # the largest zoom), so the views do not jump when the view changes
        column = 2 * MAGNIFIER_PIXELS + 4 * MAX_MAGNIFICATION
        self.magnifier.setFixedWidth(column)
        self.magnifier.setMinimumHeight(MAGNIFIER_PIXELS)
        self.magnifier_title = QLabel()
        self.magnifier_title.setWordWrap(True)
        self.magnifier_title.setFixedWidth(column)
        self.save_view_button = QPushButton("Save view as figure…")
        self.save_view_button.clicked.connect(lambda: self.save_figure("view"))
        self.save_magnifier_button = QPushButton("Save magnifier as figure…")
        self.save_magnifier_button.clicked.connect(
            lambda: self.save_figure("magnifier")
        )
        self.save_shortcut = QShortcut(QKeySequence(SAVE_SHORTCUT), self)
        self.save_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.save_shortcut.activated.connect(lambda: self.save_figure("view"))
        self.saved = QLabel()  # "Saved as Figure N …"
        self.saved.setWordWrap(True)

        controls = QHBoxLayout()
        for text, widget in (
            ("View", self.mode),
            ("Opacity / wipe", self.amount),
            ("Flicker", self.rate),
            ("Magnifier", self.zoom),
        ):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget, 1 if widget is self.amount else 0)
        side = QVBoxLayout()
        side.addWidget(self.magnifier_title)
        side.addWidget(self.magnifier)
        side.addStretch(1)
        views = QHBoxLayout()
        views.addWidget(self.viewers[0], 1)
        views.addWidget(self.viewers[1], 1)
        views.addLayout(side, 0)
        saving = QHBoxLayout()
        saving.addWidget(self.save_view_button)
        saving.addWidget(self.save_magnifier_button)
        saving.addWidget(self.saved, 1)
        self.processed_note = ProcessedNote()  # a face on a processed exhibit
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.processed_note)
        layout.addWidget(self.note)
        layout.addWidget(self.caption)
        layout.addLayout(views, 1)
        layout.addLayout(saving)

        self.flicker = QTimer(self)
        self.flicker.timeout.connect(self._next_frame)
        self.showing_gallery = False  # flicker: which face is shown now
        # the faces whose view the viewers hold: their pan and zoom are kept
        # until another pair comes
        self._viewed: tuple[np.ndarray, np.ndarray] | None = None
        for signal in (
            self.mode.currentIndexChanged,
            self.amount.valueChanged,
            self.rate.valueChanged,
            self.zoom.valueChanged,
        ):
            signal.connect(lambda *_: self.redraw())
        # the magnifier follows the centre of the (synchronised) views
        for viewer in self.viewers:
            viewer.view_box.sigRangeChanged.connect(lambda *_: self._magnify())
        self.runner = TaskRunner(self)
        self.runner.result.connect(self._on_faces)
        self.runner.error.connect(
            lambda e, d: errors.report(e, d, context="Could not align the faces.")
        )
        self.redraw()

    def set_controller(self, controller: CaseController) -> None:
        """The controller figures are saved through (the main window's)."""
        self.controller = controller
        self._update_saving()

    def set_pair(self, case: Case | None, probe: str, gallery: str) -> None:
        """Align the pair's faces in a worker (reads both evidence copies)."""
        self.case = case
        self.faces = None
        self.labels = (probe, gallery)
        self.saved.clear()
        self.redraw()
        if case is not None and probe and gallery:
            self.runner.start(workflow.aligned_faces, case, probe, gallery)

    def _on_faces(self, faces: Any) -> None:
        self.faces = faces
        self.redraw()

    def _next_frame(self) -> None:
        self.showing_gallery = not self.showing_gallery
        self.redraw()

    # -- drawing -----------------------------------------------------------------------

    def redraw(self) -> np.ndarray | None:
        """Draw the chosen view; the picture a saved figure of it would hold (at
        the chips' pixels, the region shown), None without a pair.  The pan and
        zoom stay while the pair does (another view, a slider, a flicker frame);
        a new pair starts from the whole face."""
        mode = self.mode.currentText()
        flickering = mode == FLICKER and self.faces is not None
        interval = round(1000 / self.rate.value() / 2)
        if flickering and not self.flicker.isActive():
            self.flicker.start(interval)
        elif flickering:
            self.flicker.setInterval(interval)
        elif self.flicker.isActive():
            self.flicker.stop()
        self.viewers[1].setVisible(mode == "side by side")
        self.amount.setEnabled(mode in ("superimposition", *WIPES))
        self.rate.setEnabled(mode == FLICKER)
        if self.faces is None:
            blank = np.full((ALIGNED_SIZE, ALIGNED_SIZE, 3), 40, np.uint8)
            self._show(blank, blank)
            for viewer in self.viewers:
                viewer.set_message(NO_PAIR)
            self.caption.setText(NO_PAIR)
            self.magnifier.clear()
            self.magnifier_title.clear()
            self._update_saving()
            return None
        probe, gallery = self.faces
        for viewer in self.viewers:
            viewer.set_message("")
        if mode == "side by side":
            self._show(probe, gallery, titles=self._titles())
        elif mode == FLICKER:
            self._show(gallery if self.showing_gallery else probe, None)
        else:
            self._show(compose(probe, gallery, mode, self._share()), None)
        self.caption.setText(self._caption(mode))
        self._magnify()
        self._update_saving()
        return render_view(probe, gallery, self.view_params("view"))

    def _show(
        self,
        first: np.ndarray,
        second: np.ndarray | None,
        titles: tuple[str, str] = ("", ""),
    ) -> None:
        """New pictures in the viewers, on the region shown while the pair stays."""
        shown = self.viewers[0].visible_rect()
        same_size = self.viewers[0].image_size == (first.shape[1], first.shape[0])
        keep_view = same_size and self._viewed is self.faces
        self._viewed = self.faces
        with self.sync.paused():
            self.viewers[0].set_image(first, titles[0])
            if second is not None:
                self.viewers[1].set_image(second, titles[1])
        if keep_view and same_size:
            self.viewers[0].view_box.setRange(shown, padding=0.0)  # B follows
        else:
            self.sync.set_enabled(True)  # B on A's (whole-face) view

    def _magnify(self) -> None:
        if self.faces is None:
            return
        params = self.view_params("magnifier")
        picture = render_view(*self.faces, params)
        self.magnifier.setPixmap(QPixmap.fromImage(rgb_to_qimage(picture)))
        x, y = params.magnifier_centre or (0.0, 0.0)
        self.magnifier_title.setText(
            f"Magnifier {params.magnifier_zoom}× at the centre of the view "
            f"({x:.0f}, {y:.0f} px of the aligned face)"
        )

    def _share(self) -> float:
        return self.amount.value() / 100

    def _titles(self) -> tuple[str, str]:
        return f"{self.labels[0]} (questioned)", f"{self.labels[1]} (known)"

    def _caption(self, mode: str) -> str:
        probe, gallery = self.labels
        share = self.amount.value()
        if mode == FLICKER:
            now = gallery if self.showing_gallery else probe
            return f"Flicker: {now} shown"
        if mode == "superimposition":
            return f"{gallery} at {share} % over {probe}"
        if mode.startswith("wipe"):
            where = "left of" if "vertical" in mode else "above"
            return f"{probe} {where} the yellow line ({share} %), {gallery} beyond"
        return f"{probe} (left) and {gallery} (right)"

    # -- what a figure records ---------------------------------------------------------

    def _chip_size(self) -> int:
        return self.faces[0].shape[0] if self.faces is not None else ALIGNED_SIZE

    def visible_region(self) -> tuple[int, int, int, int]:
        """The chip pixels the (first) view shows, whole pixels, inside the chip."""
        size = self._chip_size()
        rect = self.viewers[0].visible_rect()
        x0 = min(max(math.floor(rect.left()), 0), size - 1)
        y0 = min(max(math.floor(rect.top()), 0), size - 1)
        x1 = max(min(math.ceil(rect.right()), size), x0 + 1)
        y1 = max(min(math.ceil(rect.bottom()), size), y0 + 1)
        return x0, y0, x1, y1

    def view_params(self, which: str = "view") -> ViewParams:
        """The settings of what is shown now: the main view (``"view"``) or the
        magnifier (``"magnifier"``), everything needed to draw it again."""
        mode = self.mode.currentText()
        size = self._chip_size()
        rect = self.viewers[0].visible_rect()
        centre = (
            float(np.clip(rect.center().x(), 0, size)),
            float(np.clip(rect.center().y(), 0, size)),
        )
        view = FIGURE_VIEW[mode]
        return ViewParams(
            "magnifier" if which == "magnifier" else view,
            chip_size=size,
            region=self.visible_region(),
            opacity=self._share(),
            wipe_axis="horizontal" if mode == "wipe (horizontal)" else "vertical",
            wipe_position=self._share(),
            flicker_side="known" if self.showing_gallery else "questioned",
            flicker_rate_hz=float(self.rate.value()),
            magnified=view,
            magnifier_centre=centre,
            magnifier_zoom=int(self.zoom.value()),
        )

    # -- saving a figure ---------------------------------------------------------------

    def _why_not_saving(self) -> str:
        """Why a figure cannot be saved now ("" when it can)."""
        if self.faces is None:
            return "Open a pair first: a figure is made of its aligned faces."
        if self.case is not None and self.case.read_only:
            return (
                "The case is open read-only: figures cannot be saved. Open it "
                "again for writing to save one."
            )
        if self.controller is None or self.controller.case is None:
            return "Open a case to save figures into it."
        return ""

    def _update_saving(self) -> None:
        why = self._why_not_saving()
        for button, what in (
            (self.save_view_button, f"the view shown now ({SAVE_SHORTCUT})"),
            (self.save_magnifier_button, "the magnifier's picture"),
        ):
            button.setEnabled(not why)
            button.setToolTip(
                why
                or f"Keep {what} as the case's next numbered figure, at the aligned "
                "faces' own pixels, with a caption (audited; in the report's annex)"
            )

    def save_figure(
        self, which: str = "view", caption: str | None = None
    ) -> Figure | None:
        """Keep the view (or the magnifier) as the next figure; ``caption`` None
        asks the examiner.  The figure, or None when nothing was saved."""
        why = self._why_not_saving()
        if why:
            self.saved.setText(why)
            return None
        assert self.controller is not None and self.faces is not None
        params = self.view_params(which)  # this moment's frame, before any dialog
        faces, (probe, gallery) = self.faces, self.labels
        if caption is None:
            text, ok = QInputDialog.getText(
                self,
                "Save as figure",
                "Caption for the figure (the report prints it under the figure):",
                text=self._caption(self.mode.currentText()),
            )
            if not ok:
                return None
            caption = text
        figure: Figure | None = self.controller.change_examination(
            lambda exam: workflow.save_comparison_figure(
                exam, probe, gallery, params.to_dict(), caption, faces=faces
            )
        )
        if figure is not None:
            message = (
                f"Saved as Figure {figure.number} (in the case and the report's annex)."
            )
            self.saved.setText(message)
            self.controller.status.emit(message)
        return figure

    def shutdown(self) -> None:
        self.flicker.stop()
        self.runner.shutdown()
