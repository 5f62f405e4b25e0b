"""The evidence viewer: one image at full resolution with everything drawn on it.

``EvidenceViewer`` shows one evidence image (RGB uint8, pixel ``(x, y)`` = column,
row) in a pyqtgraph ``ViewBox`` (y down, aspect locked, no axes) and, in the same
image-pixel coordinates, the face box, the five landmarks (optionally draggable), an
explanation heatmap with its colour bar, and the examiner's annotations.  Pixel
``(i, j)`` covers the square ``[i, i + 1) x [j, j + 1)``, so ``value_at(x, y)`` and the
hover read-out use ``floor``.

The widget does no model or disk work and never talks to the case database: the
owner passes data in (``set_image``, ``set_face``, ``set_overlay``,
``set_annotations``) and listens to signals (``annotation_drawn``,
``annotation_moved``, ``annotation_delete_requested``, ``landmarks_edited`` ...), then
stores what it must and calls the setters again.

Mouse: with no tool, left-drag pans (or moves the selected annotation when the drag
starts on it), the wheel and right-drag zoom, a click selects an annotation.  With a
drawing tool, left-button input draws; middle-drag still pans and the wheel and
right-drag still zoom.  Keys (handled in ``keyPressEvent`` only, so menu shortcuts of
the main window take precedence and nothing is handled twice): ``+``/``-`` zoom, ``0``
fits, ``O`` toggles the overlay, Enter finishes a polygon, Escape cancels a drawing
(or clears the selection), Delete/Backspace asks to delete the selected annotation.

The annotation tool (drawing, selecting, moving shapes) is the ``AnnotationTool``
mixin (``annotation_tool.py``); ``ViewSync`` (``view_sync.py``) keeps two viewers on
the same region; colours come from ``core.colours``, the mapping the report uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from core.colours import SIGNED_COLOUR_MAP, colour_lut, colourise, with_opacity
from xfr_desktop.widgets.annotation_tool import (
    ANNOTATION_COLOUR,
    Z_FACE,
    Z_IMAGE,
    Z_LANDMARK,
    Z_OVERLAY,
    Z_PREVIEW,
    AnnotationTool,
    Point,
    cosmetic_pen,
)
from xfr_desktop.widgets.colour_bar import ColourBar

ZOOM_STEP = 1.25
_FACE_COLOUR = QColor(60, 220, 90)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Check and normalise an evidence image to contiguous (H, W, 3) uint8."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"an image must be (H, W, 3) RGB, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"an image must be uint8, got {array.dtype}")
    return np.ascontiguousarray(array[:, :, :3])


class _CanvasViewBox(pg.ViewBox):
    """A ViewBox that lets the viewer claim left-button clicks and drags first."""

    def __init__(
        self,
        on_click: Callable[[Any], bool],
        on_drag: Callable[[Any], bool],
    ) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self._on_click = on_click
        self._on_drag = on_drag

    def mouseClickEvent(self, ev: Any) -> None:
        if self._on_click(ev):
            ev.accept()
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev: Any, axis: int | None = None) -> None:
        if axis is None and self._on_drag(ev):
            ev.accept()
            return
        super().mouseDragEvent(ev, axis)


# -- the viewer ------------------------------------------------------------------------


class EvidenceViewer(AnnotationTool, QWidget):
    """One evidence image with face, landmarks, heatmap and annotations on top."""

    hovered = Signal(float, float, object)  # x, y (image px), overlay value | None
    landmarks_edited = Signal(object)  # (5, 2) float array
    annotation_drawn = Signal(str, object)  # shape, [[x, y], ...]
    annotation_selected = Signal(object)  # id | None
    annotation_moved = Signal(int, object)  # id, new [[x, y], ...]
    annotation_delete_requested = Signal(int)  # id
    overlay_visibility_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self._image: np.ndarray | None = None
        self._overlay_values: np.ndarray | None = None
        self._overlay_origin = (0, 0)
        self._overlay_base: np.ndarray | None = None  # colourised, alpha 255/0
        self._overlay_opacity = 0.6
        self._overlay_visible = True
        self._overlay_peak: float | None = None  # the scale's end now drawn
        self._own_colour_bar = True  # False: the owner shows one bar for several
        self._landmark_items: list[pg.TargetItem] = []
        self._landmarks_editable = False
        self._annotations: list[dict] = []
        self._annotation_items: dict[int, list[QGraphicsItem]] = {}
        self._selected: int | None = None
        self._tool: str | None = None
        self._draft: list[Point] = []  # points of the shape being drawn
        self._draft_cursor: Point | None = None  # polygon rubber band end
        self._move_from: Point | None = None  # drag start while moving a selection
        self._move_original: list[list[float]] | None = None

        self._view_box = _CanvasViewBox(self._handle_click, self._handle_drag)
        self._view_box.disableAutoRange()
        self._graphics_view = pg.GraphicsView(background=QColor(40, 40, 40))
        self._graphics_view.setCentralItem(self._view_box)
        # Keys go to this widget (its keyPressEvent), not to the scene.
        self._graphics_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._graphics_view.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self._image_item = pg.ImageItem(axisOrder="row-major")
        self._image_item.setZValue(Z_IMAGE)
        self._view_box.addItem(self._image_item)
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item.setZValue(Z_OVERLAY)
        self._overlay_item.hide()
        self._view_box.addItem(self._overlay_item, ignoreBounds=True)
        self._face_item = QGraphicsRectItem()
        self._face_item.setPen(cosmetic_pen(_FACE_COLOUR, 2))
        self._face_item.setZValue(Z_FACE)
        self._face_item.hide()
        self._view_box.addItem(self._face_item, ignoreBounds=True)
        self._preview_items = self._add_outline_pair(
            Z_PREVIEW, cosmetic_pen(ANNOTATION_COLOUR, 2, Qt.PenStyle.DashLine)
        )

        self._title = QLabel(self)
        self._title.setStyleSheet("font-weight: bold")
        self._title.hide()
        self._readout = QLabel(self)
        self._readout.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._colour_bar = ColourBar(self)
        self._colour_bar.hide()
        # A message in the view itself (e.g. "this method gives no dissimilarity
        # map"), so an empty overlay is never left unexplained.
        self._message = QLabel(self._graphics_view)
        self._message.setWordWrap(True)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setStyleSheet(
            "background: rgba(0, 0, 0, 170); color: white; padding: 6px;"
            " border-radius: 4px"
        )
        self._message.hide()

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._graphics_view, 1)
        row.addWidget(self._colour_bar, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._title)
        layout.addLayout(row, 1)
        layout.addWidget(self._readout)

    # -- accessors ---------------------------------------------------------------------

    @property
    def view_box(self) -> pg.ViewBox:
        """The ViewBox whose view coordinates are image pixels."""
        return self._view_box

    @property
    def graphics_view(self) -> pg.GraphicsView:
        """The QGraphicsView (its viewport receives the mouse)."""
        return self._graphics_view

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the current image, None without one."""
        if self._image is None:
            return None
        return self._image.shape[1], self._image.shape[0]

    @property
    def overlay_visible(self) -> bool:
        """Whether the overlay is switched on (it may still be absent)."""
        return self._overlay_visible

    @property
    def tool(self) -> str | None:
        return self._tool

    @property
    def selected_annotation(self) -> int | None:
        return self._selected

    @property
    def colour_bar(self) -> QWidget:
        """The colour bar beside the image (hidden without a visible overlay)."""
        return self._colour_bar

    @property
    def readout_text(self) -> str:
        """The hover read-out under the view."""
        return self._readout.text()

    @property
    def overlay_peak(self) -> float | None:
        """The end of the colour scale the overlay is drawn with (None: none)."""
        return self._overlay_peak

    @property
    def message_text(self) -> str:
        """The message shown over the view ("" when none)."""
        return self._message.text() if not self._message.isHidden() else ""

    def set_message(self, text: str) -> None:
        """Show ``text`` over the middle of the view ("" removes it)."""
        self._message.setText(text)
        self._message.setVisible(bool(text))
        self._place_message()

    def _place_message(self) -> None:
        if self._message.isHidden():
            return
        area = self._graphics_view.rect()
        width = max(80, min(area.width() - 20, 320))
        height = self._message.heightForWidth(width)
        self._message.setGeometry(
            area.x() + (area.width() - width) // 2,
            area.y() + (area.height() - height) // 2,
            width,
            max(height, 24),
        )

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._place_message()

    def set_readout_shown(self, shown: bool) -> None:
        """Show (default) or hide the read-out line under the view, for an owner
        that shows one read-out for several viewers (the comparison view)."""
        self._readout.setVisible(bool(shown))

    def set_own_colour_bar(self, own: bool) -> None:
        """Show this viewer's colour bar (default), or leave it to the owner, which
        then shows one bar for viewers that share a scale."""
        self._own_colour_bar = bool(own)
        self._update_overlay_visibility()

    # -- image, face, landmarks --------------------------------------------------------

    def set_image(self, rgb: np.ndarray, title: str = "") -> None:
        """Show a new image; clears face, overlay, annotations and drawing."""
        image = _as_rgb(rgb)
        self._image = image
        self._image_item.setImage(image, autoLevels=False, levels=None)
        self._title.setText(title)
        self._title.setVisible(bool(title))
        self.set_face(None, None)
        self.set_overlay(None, signed=False)
        self._selected = None
        self.set_annotations([])
        self._cancel_draft()
        self._readout.clear()
        self.fit()

    def set_face(
        self,
        bbox: tuple[float, float, float, float] | None,
        landmarks5: np.ndarray | None,
    ) -> None:
        """Show the face box (left, top, right, bottom) and five landmarks."""
        if bbox is None:
            self._face_item.hide()
        else:
            left, top, right, bottom = (float(v) for v in bbox)
            self._face_item.setRect(QRectF(left, top, right - left, bottom - top))
            self._face_item.show()
        for item in self._landmark_items:
            self._view_box.removeItem(item)
        self._landmark_items = []
        if landmarks5 is None:
            return
        points = np.asarray(landmarks5, dtype=np.float64).reshape(-1, 2)
        for x, y in points:
            item = pg.TargetItem(
                pos=(float(x), float(y)),
                size=9,
                symbol="crosshair",
                pen=pg.mkPen((0, 255, 255), width=1.5),
                hoverPen=pg.mkPen((255, 0, 255), width=2),
                brush=(0, 0, 0, 0),
                movable=self._landmarks_editable,
            )
            item.setZValue(Z_LANDMARK)
            item.sigPositionChangeFinished.connect(self._on_landmark_moved)
            self._view_box.addItem(item, ignoreBounds=True)
            self._landmark_items.append(item)

    def set_landmarks_editable(self, editable: bool) -> None:
        """Allow (or stop) dragging the landmark markers with the left button."""
        self._landmarks_editable = bool(editable)
        for item in self._landmark_items:
            item.movable = self._landmarks_editable

    def landmarks(self) -> np.ndarray | None:
        """The landmark positions now shown, (n, 2) float, or None."""
        if not self._landmark_items:
            return None
        return np.array(
            [[item.pos().x(), item.pos().y()] for item in self._landmark_items],
            dtype=np.float64,
        )

    def _on_landmark_moved(self, _item: object) -> None:
        self.landmarks_edited.emit(self.landmarks())

    # -- overlay -----------------------------------------------------------------------

    def set_overlay(
        self,
        values: np.ndarray | None,
        origin_xy: tuple[int, int] = (0, 0),
        *,
        signed: bool,
        colour_map: str = "jet",
        opacity: float = 0.6,
        top_percent: float = 100.0,
        peak: float | None = None,
        floor: float | None = None,
    ) -> None:
        """Show a heatmap whose top-left pixel lies on image pixel ``origin_xy``.

        ``peak``: the end of a colour scale shared with another view (None: this
        map's own robust peak, ``core.colours.robust_peak``)."""
        self._overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        if values is None:
            self._overlay_values = None
            self._overlay_base = None
            self._overlay_peak = None
            self._overlay_item.clear()
            self._update_overlay_visibility()
            return
        array = np.array(values, dtype=np.float32, copy=True)
        rgba, low, high = colourise(
            array, signed, colour_map, top_percent, peak, floor=floor
        )
        self._overlay_values = array
        self._overlay_peak = float(high)
        self._overlay_origin = (int(origin_xy[0]), int(origin_xy[1]))
        self._overlay_base = rgba
        self._overlay_item.setImage(
            with_opacity(rgba, self._overlay_opacity), autoLevels=False, levels=None
        )
        self._overlay_item.setPos(*self._overlay_origin)
        lut = colour_lut(SIGNED_COLOUR_MAP if signed else colour_map)
        self._colour_bar.set_scale(lut, low, high)
        self._update_overlay_visibility()

    def set_overlay_opacity(self, opacity: float) -> None:
        """Change the overlay's opacity without recomputing its colours."""
        self._overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        if self._overlay_base is not None:
            self._overlay_item.setImage(
                with_opacity(self._overlay_base, self._overlay_opacity),
                autoLevels=False,
                levels=None,
            )

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the overlay (and its colour bar); it is kept either way."""
        visible = bool(visible)
        changed = visible != self._overlay_visible
        self._overlay_visible = visible
        self._update_overlay_visibility()
        if changed:
            self.overlay_visibility_changed.emit(visible)

    def toggle_overlay(self) -> None:
        """Flip the overlay's visibility (the "O" key)."""
        self.set_overlay_visible(not self._overlay_visible)

    def _update_overlay_visibility(self) -> None:
        shown = self._overlay_visible and self._overlay_values is not None
        self._overlay_item.setVisible(shown)
        self._colour_bar.setVisible(shown and self._own_colour_bar)

    def rendered_overlay_rgba(self) -> np.ndarray | None:
        """A copy of the RGBA array the overlay ImageItem displays (opacity in)."""
        if self._overlay_values is None or self._overlay_item.image is None:
            return None
        return np.array(self._overlay_item.image, copy=True)

    def value_at(self, x: float, y: float) -> float | None:
        """The overlay value at image point (x, y); None outside it or NaN.

        The raw value, also while the overlay is hidden or below ``top_percent``:
        the read-out is for measuring, the display for looking.
        """
        if self._overlay_values is None:
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        col = math.floor(x) - self._overlay_origin[0]
        row = math.floor(y) - self._overlay_origin[1]
        h, w = self._overlay_values.shape
        if not (0 <= col < w and 0 <= row < h):
            return None
        value = float(self._overlay_values[row, col])
        return value if math.isfinite(value) else None

    # -- zoom and pan ------------------------------------------------------------------

    def zoom_in(self) -> None:
        """Zoom in by one step around the centre of the view."""
        self._view_box.scaleBy((1.0 / ZOOM_STEP, 1.0 / ZOOM_STEP))

    def zoom_out(self) -> None:
        """Zoom out by one step around the centre of the view."""
        self._view_box.scaleBy((ZOOM_STEP, ZOOM_STEP))

    def fit(self) -> None:
        """Show the whole image."""
        if self._image is None:
            return
        h, w = self._image.shape[:2]
        self._view_box.setRange(QRectF(0, 0, w, h), padding=0.02)

    def visible_rect(self) -> QRectF:
        """The region of the image now visible, in image pixels."""
        return self._view_box.viewRect()

    # -- hover -------------------------------------------------------------------------

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._image is None:
            return
        p = self._view_box.mapSceneToView(scene_pos)
        x, y = p.x(), p.y()
        if self._tool == "polygon" and self._draft:
            self._draft_cursor = self._clamp((x, y))
            self._update_preview()
        h, w = self._image.shape[:2]
        if not (0.0 <= x < w and 0.0 <= y < h):
            self._readout.clear()
            return
        value = self.value_at(x, y)
        text = f"x {math.floor(x)}, y {math.floor(y)}"
        if value is not None:
            text += f" · value {value:.4g}"
        self._readout.setText(text)
        self.hovered.emit(float(x), float(y), value)

    # -- keys --------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_out()
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_O:
            self.toggle_overlay()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._tool == "polygon":
            self.finish_polygon()
        elif key == Qt.Key.Key_Escape:
            if self._draft:
                self._cancel_draft()
            else:
                self._set_selected(None)
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            if self._selected is None:
                event.ignore()
                return
            self.annotation_delete_requested.emit(self._selected)
        else:
            super().keyPressEvent(event)
            return
        event.accept()
