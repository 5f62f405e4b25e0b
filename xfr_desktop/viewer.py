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

``ViewSync`` keeps two viewers showing the same region relative to the two faces
(side-by-side comparison); ``colourise`` is the one colour-mapping function, shared
with ``ChipView``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

TOOLS: tuple[str | None, ...] = (
    None,
    "point",
    "rectangle",
    "ellipse",
    "polygon",
    "freehand",
)
SHAPES: tuple[str, ...] = tuple(t for t in TOOLS if t is not None)
MAX_FREEHAND_POINTS = 200
ZOOM_STEP = 1.25
SIGNED_COLOUR_MAP = "RdBu_r"  # blue (negative) - white - red (positive)
HIT_TOLERANCE_PX = 6.0  # how close (screen pixels) a click must be to an outline

_Z_IMAGE, _Z_OVERLAY, _Z_FACE, _Z_ANNOTATION, _Z_PREVIEW, _Z_LANDMARK = range(6)

_ANNOTATION_COLOUR = QColor(255, 221, 0)
_SELECTED_COLOUR = QColor(0, 230, 255)
_SHADOW_COLOUR = QColor(0, 0, 0, 200)
_FACE_COLOUR = QColor(60, 220, 90)

Point = tuple[float, float]


# -- colour mapping --------------------------------------------------------------------


def _lerp_lut(stops: Sequence[tuple[float, tuple[float, float, float]]]) -> np.ndarray:
    """A (256, 3) uint8 table interpolated linearly between colour stops."""
    t = np.linspace(0.0, 1.0, 256)
    xs = [s[0] for s in stops]
    channels = [np.interp(t, xs, [s[1][c] for s in stops]) for c in range(3)]
    return np.round(np.stack(channels, axis=1) * 255).astype(np.uint8)


_FALLBACK_STOPS: dict[str, list[tuple[float, tuple[float, float, float]]]] = {
    "gray": [(0.0, (0, 0, 0)), (1.0, (1, 1, 1))],
    "jet": [
        (0.0, (0, 0, 0.5)),
        (0.11, (0, 0, 1)),
        (0.125, (0, 0, 1)),
        (0.34, (0, 0.875, 1)),
        (0.35, (0, 1, 1)),
        (0.64, (1, 1, 0)),
        (0.65, (1, 0.96, 0)),
        (0.89, (1, 0, 0)),
        (1.0, (0.5, 0, 0)),
    ],
    SIGNED_COLOUR_MAP: [
        (0.0, (0.02, 0.19, 0.38)),
        (0.25, (0.26, 0.58, 0.76)),
        (0.5, (0.97, 0.97, 0.97)),
        (0.75, (0.84, 0.38, 0.30)),
        (1.0, (0.40, 0.0, 0.12)),
    ],
}
_FALLBACK_STOPS["grey"] = _FALLBACK_STOPS["gray"]


@lru_cache(maxsize=32)
def colour_lut(name: str) -> np.ndarray:
    """The (256, 3) uint8 lookup table of a colour map, read-only.

    matplotlib's maps first (through pyqtgraph), then pyqtgraph's own, then a few
    built in here; an unknown name gives "jet" rather than an error, because a bad
    name from a settings file must not stop an examiner from seeing the heatmap.
    """
    cmap = None
    for source in ("matplotlib", None):
        try:
            cmap = pg.colormap.get(name, source=source)
        except Exception:  # missing matplotlib, unknown name: try the next source
            cmap = None
        if cmap is not None:
            break
    if cmap is not None:
        table = np.asarray(cmap.getLookupTable(0.0, 1.0, 256, alpha=False))
        lut = np.ascontiguousarray(table[:, :3], dtype=np.uint8)
    else:
        lut = _lerp_lut(_FALLBACK_STOPS.get(name, _FALLBACK_STOPS["jet"]))
    lut.setflags(write=False)
    return lut


def colourise(
    values: np.ndarray,
    signed: bool,
    colour_map: str = "jet",
    top_percent: float = 100.0,
) -> tuple[np.ndarray, float, float]:
    """Map a heatmap to RGBA: ``(rgba uint8 (h, w, 4), low, high)``.

    The scale is robust to a few extreme values: ``p`` is the 99th percentile of
    ``|v|`` over finite values; unsigned maps ``0..p`` with ``colour_map``, signed
    maps ``-p..+p`` with a blue-white-red map (``colour_map`` is ignored).  NaN
    (not covered) is transparent, so is every value whose ``|v|`` is not in the top
    ``top_percent`` % of finite values.  Shown pixels have alpha 255; the caller
    applies its opacity.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"a heatmap must be 2-D, got shape {v.shape}")
    finite = np.isfinite(v)
    rgba = np.zeros((*v.shape, 4), dtype=np.uint8)
    if not finite.any():
        return rgba, (-1.0 if signed else 0.0), 1.0
    magnitude = np.abs(np.where(finite, v, 0.0))
    finite_magnitude = magnitude[finite]
    p = float(np.percentile(finite_magnitude, 99))
    if not p > 0.0:
        p = float(finite_magnitude.max()) or 1.0
    if signed:
        low, high = -p, p
        t = (v[finite] + p) / (2.0 * p)
        lut = colour_lut(SIGNED_COLOUR_MAP)
    else:
        low, high = 0.0, p
        t = v[finite] / p
        lut = colour_lut(colour_map)
    index = np.round(np.clip(t, 0.0, 1.0) * 255.0).astype(np.intp)
    rgba[finite, :3] = lut[index]
    shown = finite
    if top_percent < 100.0:
        if top_percent <= 0.0:
            shown = np.zeros_like(finite)
        else:
            threshold = float(np.percentile(finite_magnitude, 100.0 - top_percent))
            shown = finite & (magnitude >= threshold)
    rgba[shown, 3] = 255
    return rgba, low, high


def with_opacity(rgba: np.ndarray, opacity: float) -> np.ndarray:
    """A copy of ``rgba`` with its alpha channel scaled by ``opacity`` (0..1)."""
    out = np.array(rgba, dtype=np.uint8, copy=True)
    alpha = out[..., 3].astype(np.float32) * float(np.clip(opacity, 0.0, 1.0))
    out[..., 3] = np.round(alpha).astype(np.uint8)
    return out


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an (h, w, 3) or (h, w, 4) uint8 array."""
    array = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, c = array.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(array.data, w, h, c * w, fmt).copy()


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


# -- small helpers ---------------------------------------------------------------------


def _cosmetic_pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)  # width in screen pixels, whatever the zoom
    return pen


def _shape_path(shape: str, points: Sequence[Sequence[float]]) -> QPainterPath:
    """The outline of an annotation in image coordinates (empty for a point)."""
    path = QPainterPath()
    pts = [QPointF(float(x), float(y)) for x, y in points]
    if not pts or shape == "point":
        return path
    if shape in ("rectangle", "ellipse") and len(pts) >= 2:
        rect = QRectF(pts[0], pts[1]).normalized()
        if shape == "rectangle":
            path.addRect(rect)
        else:
            path.addEllipse(rect)
        return path
    path.moveTo(pts[0])
    for p in pts[1:]:
        path.lineTo(p)
    if shape == "polygon" and len(pts) >= 3:
        path.closeSubpath()
    return path


def _thin(points: list[Point], limit: int) -> list[Point]:
    """At most ``limit`` points, evenly spread, first and last kept."""
    if len(points) <= limit:
        return points
    keep = np.unique(np.round(np.linspace(0, len(points) - 1, limit)).astype(int))
    return [points[i] for i in keep]


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


class _ColourBar(QWidget):
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


# -- the viewer ------------------------------------------------------------------------


class EvidenceViewer(QWidget):
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
        self._image_item.setZValue(_Z_IMAGE)
        self._view_box.addItem(self._image_item)
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item.setZValue(_Z_OVERLAY)
        self._overlay_item.hide()
        self._view_box.addItem(self._overlay_item, ignoreBounds=True)
        self._face_item = QGraphicsRectItem()
        self._face_item.setPen(_cosmetic_pen(_FACE_COLOUR, 2))
        self._face_item.setZValue(_Z_FACE)
        self._face_item.hide()
        self._view_box.addItem(self._face_item, ignoreBounds=True)
        self._preview_items = self._add_outline_pair(
            _Z_PREVIEW, _cosmetic_pen(_ANNOTATION_COLOUR, 2, Qt.PenStyle.DashLine)
        )

        self._title = QLabel(self)
        self._title.setStyleSheet("font-weight: bold")
        self._title.hide()
        self._readout = QLabel(self)
        self._readout.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._colour_bar = _ColourBar(self)
        self._colour_bar.hide()

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
            item.setZValue(_Z_LANDMARK)
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
    ) -> None:
        """Show a heatmap whose top-left pixel lies on image pixel ``origin_xy``."""
        self._overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        if values is None:
            self._overlay_values = None
            self._overlay_base = None
            self._overlay_item.clear()
            self._update_overlay_visibility()
            return
        array = np.array(values, dtype=np.float32, copy=True)
        rgba, low, high = colourise(array, signed, colour_map, top_percent)
        self._overlay_values = array
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
        self._colour_bar.setVisible(shown)

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

    # -- annotations: display and selection --------------------------------------------

    def set_annotations(self, items: list[dict]) -> None:
        """Show stored annotations ({"id", "shape", "points", "label"} dicts)."""
        self._annotations = [
            {
                "id": int(item["id"]),
                "shape": str(item["shape"]),
                "points": [[float(x), float(y)] for x, y in item["points"]],
                "label": str(item.get("label", "")),
            }
            for item in items
        ]
        if self._selected not in {a["id"] for a in self._annotations}:
            self._selected = None
        self._move_from = None
        self._redraw_annotations()

    def annotations(self) -> list[dict]:
        """The annotations now shown (copies)."""
        return [
            {**a, "points": [list(p) for p in a["points"]]} for a in self._annotations
        ]

    def select_annotation(self, annotation_id: int | None) -> None:
        """Highlight one annotation (from the owner's list); emits nothing."""
        ids = {a["id"] for a in self._annotations}
        self._selected = annotation_id if annotation_id in ids else None
        self._redraw_annotations()

    def _set_selected(self, annotation_id: int | None) -> None:
        if annotation_id == self._selected:
            return
        self._selected = annotation_id
        self._redraw_annotations()
        self.annotation_selected.emit(annotation_id)

    def _add_outline_pair(self, z: float, pen: QPen) -> list[QGraphicsPathItem]:
        """A dark wide outline under a coloured one, so it shows on any image."""
        shadow = QGraphicsPathItem()
        shadow.setPen(_cosmetic_pen(_SHADOW_COLOUR, pen.widthF() + 2))
        main = QGraphicsPathItem()
        main.setPen(pen)
        for item in (shadow, main):
            item.setZValue(z)
            self._view_box.addItem(item, ignoreBounds=True)
        return [shadow, main]

    def _redraw_annotations(self) -> None:
        for items in self._annotation_items.values():
            for item in items:
                self._view_box.removeItem(item)
        self._annotation_items = {}
        for annotation in self._annotations:
            self._annotation_items[annotation["id"]] = self._draw_annotation(
                annotation, annotation["id"] == self._selected
            )

    def _draw_annotation(self, annotation: dict, selected: bool) -> list:
        colour = _SELECTED_COLOUR if selected else _ANNOTATION_COLOUR
        points = annotation["points"]
        items: list = []
        if annotation["shape"] == "point" and points:
            x, y = points[0]
            marker = QGraphicsEllipseItem(-5, -5, 10, 10)
            marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            marker.setPen(_cosmetic_pen(_SHADOW_COLOUR, 1))
            marker.setBrush(QBrush(colour))
            marker.setPos(x, y)
            marker.setZValue(_Z_ANNOTATION)
            self._view_box.addItem(marker, ignoreBounds=True)
            items.append(marker)
            anchor = (x, y)
        else:
            pair = self._add_outline_pair(
                _Z_ANNOTATION, _cosmetic_pen(colour, 3 if selected else 2)
            )
            path = _shape_path(annotation["shape"], points)
            for item in pair:
                item.setPath(path)
            items.extend(pair)
            box = path.boundingRect()
            anchor = (box.left(), box.top())
        if annotation["label"]:
            text = pg.TextItem(
                annotation["label"],
                color=colour,
                fill=pg.mkBrush(0, 0, 0, 170),
                anchor=(0, 1),
            )
            text.setPos(*anchor)
            text.setZValue(_Z_ANNOTATION)
            self._view_box.addItem(text, ignoreBounds=True)
            items.append(text)
        return items

    def _annotation_at(self, p: Point) -> int | None:
        """The annotation under image point ``p`` (the smallest when several)."""
        pixel = self._view_box.viewPixelSize()
        tolerance = HIT_TOLERANCE_PX * max(abs(pixel[0]), abs(pixel[1]))
        stroker = QPainterPathStroker()
        stroker.setWidth(2 * tolerance)
        point = QPointF(*p)
        best: tuple[float, int] | None = None
        for annotation in self._annotations:
            points = annotation["points"]
            if not points:
                continue
            if annotation["shape"] == "point":
                x, y = points[0]
                hit = math.hypot(x - p[0], y - p[1]) <= tolerance
                area = 0.0
            else:
                path = _shape_path(annotation["shape"], points)
                closed = annotation["shape"] in ("rectangle", "ellipse", "polygon")
                hit = stroker.createStroke(path).contains(point) or (
                    closed and path.contains(point)
                )
                box = path.boundingRect()
                area = box.width() * box.height()
            if hit and (best is None or area <= best[0]):
                best = (area, annotation["id"])
        return None if best is None else best[1]

    # -- mouse -------------------------------------------------------------------------

    def _event_point(self, pos: QPointF) -> Point:
        p = self._view_box.mapToView(pos)
        return (p.x(), p.y())

    def _handle_click(self, ev: Any) -> bool:
        """Left clicks: select (no tool) or draw; True when the viewer used it."""
        if ev.button() != Qt.MouseButton.LeftButton or self._image is None:
            return False
        p = self._event_point(ev.pos())
        if self._tool is None:
            self._set_selected(self._annotation_at(p))
        else:
            self._draw_click(p, double=bool(ev.double()))
        return True

    def _handle_drag(self, ev: Any) -> bool:
        """Left drags: draw, or move the selected annotation; else pan/zoom."""
        if ev.button() != Qt.MouseButton.LeftButton or self._image is None:
            return False
        p = self._event_point(ev.pos())
        if self._tool is not None:
            if ev.isStart():
                self._draw_press(self._event_point(ev.buttonDownPos()))
            self._draw_move(p)
            if ev.isFinish():
                self._draw_release(p)
            return True
        if ev.isStart():
            start = self._event_point(ev.buttonDownPos())
            if self._selected is not None and self._annotation_at(start) == (
                self._selected
            ):
                self._begin_move(start)
        if self._move_from is None:
            return False  # pan
        self._move_to(p, finish=bool(ev.isFinish()))
        return True

    # -- moving the selected annotation ------------------------------------------------

    def _selected_annotation(self) -> dict | None:
        for annotation in self._annotations:
            if annotation["id"] == self._selected:
                return annotation
        return None

    def _begin_move(self, start: Point) -> None:
        annotation = self._selected_annotation()
        if annotation is None:
            return
        self._move_from = start
        self._move_original = [list(p) for p in annotation["points"]]

    def _move_to(self, p: Point, finish: bool) -> None:
        annotation = self._selected_annotation()
        if annotation is None or self._move_from is None or not self._move_original:
            self._move_from = None
            return
        dx, dy = p[0] - self._move_from[0], p[1] - self._move_from[1]
        annotation["points"] = [[x + dx, y + dy] for x, y in self._move_original]
        for item in self._annotation_items.pop(annotation["id"], []):
            self._view_box.removeItem(item)
        self._annotation_items[annotation["id"]] = self._draw_annotation(
            annotation, selected=True
        )
        if finish:
            self._move_from = None
            self._move_original = None
            if dx or dy:
                self.annotation_moved.emit(
                    annotation["id"], [list(q) for q in annotation["points"]]
                )

    # -- drawing tools -----------------------------------------------------------------

    def set_tool(self, name: str | None) -> None:
        """Choose a drawing tool (see ``SHAPES``) or None for pan/zoom/select."""
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; expected one of {TOOLS}")
        self._cancel_draft()
        self._tool = name
        cursor = (
            Qt.CursorShape.ArrowCursor if name is None else Qt.CursorShape.CrossCursor
        )
        self._graphics_view.viewport().setCursor(cursor)

    def _clamp(self, p: Point) -> Point:
        if self._image is None:
            return p
        h, w = self._image.shape[:2]
        return (min(max(p[0], 0.0), float(w)), min(max(p[1], 0.0), float(h)))

    def _inside(self, p: Point) -> bool:
        if self._image is None:
            return False
        h, w = self._image.shape[:2]
        return 0.0 <= p[0] <= w and 0.0 <= p[1] <= h

    def _draw_click(self, p: Point, double: bool = False) -> None:
        """A click with a tool: a point, or a polygon vertex (double: finish)."""
        if self._tool == "point":
            if self._inside(p) and not double:
                self._emit_drawn("point", [p])
        elif self._tool == "polygon":
            q = self._clamp(p)
            if not self._draft or not self._near(self._draft[-1], q):
                self._draft.append(q)
            if double:
                self.finish_polygon()
            else:
                self._update_preview()

    def _draw_press(self, p: Point) -> None:
        """Start of a left drag with a tool."""
        if self._tool in ("rectangle", "ellipse", "freehand"):
            self._draft = [self._clamp(p)]
        elif self._tool == "point":
            self._draft = [p]

    def _draw_move(self, p: Point) -> None:
        """Left drag in progress: extend the preview."""
        if self._tool in ("rectangle", "ellipse") and self._draft:
            self._draft = [self._draft[0], self._clamp(p)]
        elif self._tool == "freehand" and self._draft:
            q = self._clamp(p)
            if q != self._draft[-1]:
                self._draft.append(q)
        else:
            return
        self._update_preview()

    def _draw_release(self, p: Point) -> None:
        """End of a left drag: emit the finished shape."""
        tool, draft = self._tool, self._draft
        if tool in ("rectangle", "ellipse") and draft:
            a, b = draft[0], self._clamp(p)
            self._cancel_draft()
            left, right = sorted((a[0], b[0]))
            top, bottom = sorted((a[1], b[1]))
            if right - left > 0 and bottom - top > 0:
                self._emit_drawn(tool, [(left, top), (right, bottom)])
        elif tool == "freehand" and draft:
            self._draw_move(p)
            points = _thin(self._draft, MAX_FREEHAND_POINTS)
            self._cancel_draft()
            if len(points) >= 2:
                self._emit_drawn("freehand", points)
        elif tool == "point" and draft:
            start = draft[0]  # a shaky click: the point is where it was pressed
            self._cancel_draft()
            if self._inside(start):
                self._emit_drawn("point", [start])

    def finish_polygon(self) -> None:
        """Close the polygon being drawn (Enter / double-click); needs 3 points."""
        if self._tool != "polygon":
            return
        points = list(self._draft)
        self._cancel_draft()
        if len(points) >= 3:
            self._emit_drawn("polygon", points)

    def cancel_drawing(self) -> None:
        """Drop the shape being drawn (Escape)."""
        self._cancel_draft()

    @property
    def drawing_in_progress(self) -> bool:
        return bool(self._draft)

    def _near(self, a: Point, b: Point) -> bool:
        pixel = self._view_box.viewPixelSize()
        tolerance = 3.0 * max(abs(pixel[0]), abs(pixel[1]))
        return math.hypot(a[0] - b[0], a[1] - b[1]) <= tolerance

    def _cancel_draft(self) -> None:
        self._draft = []
        self._draft_cursor = None
        self._update_preview()

    def _update_preview(self) -> None:
        points = list(self._draft)
        shape = self._tool or "freehand"
        if shape == "polygon" and self._draft_cursor is not None and points:
            points.append(self._draft_cursor)
            shape = "freehand"  # open rubber band until finished
        path = _shape_path(shape, points) if len(points) >= 2 else QPainterPath()
        for item in self._preview_items:
            item.setPath(path)

    def _emit_drawn(self, shape: str, points: Sequence[Point]) -> None:
        self.annotation_drawn.emit(shape, [[float(x), float(y)] for x, y in points])

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


# -- synchronised views ----------------------------------------------------------------

Box = tuple[float, float, float, float]


class ViewSync(QObject):
    """Keep two viewers on the same region relative to their faces.

    With both anchors (face boxes, left/top/right/bottom) known, a view range is
    mapped through the boxes: a region showing the left eye of face A at some zoom
    shows the left eye of face B at the same zoom relative to the face.  Without
    anchors the whole images are the anchors (fractions of width and height).
    Enabled from the start; a flag stops the follower's own change from echoing
    back.
    """

    def __init__(
        self, a: EvidenceViewer, b: EvidenceViewer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent if parent is not None else a)
        self._viewers = (a, b)
        self._anchors: list[Box | None] = [None, None]
        self._enabled = True
        self._busy = False
        a.view_box.sigRangeChanged.connect(self._a_changed)
        b.view_box.sigRangeChanged.connect(self._b_changed)

    def _a_changed(self, *_: object) -> None:
        self._follow(0)

    def _b_changed(self, *_: object) -> None:
        self._follow(1)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Start or stop following; starting aligns the second view to the first."""
        self._enabled = bool(enabled)
        if self._enabled:
            self._follow(0)

    def set_anchors(self, a_box: Box | None, b_box: Box | None) -> None:
        """Face boxes (left, top, right, bottom) of the two images, or None."""
        self._anchors = [self._valid_box(a_box), self._valid_box(b_box)]
        if self._enabled:
            self._follow(0)

    @staticmethod
    def _valid_box(box: Box | None) -> Box | None:
        if box is None:
            return None
        left, top, right, bottom = (float(v) for v in box)
        if not (right > left and bottom > top):
            return None
        return (left, top, right, bottom)

    def _frame(self, index: int) -> Box | None:
        """The rectangle views are mapped through for viewer ``index``."""
        if self._anchors[0] is not None and self._anchors[1] is not None:
            return self._anchors[index]
        size = self._viewers[index].image_size
        if size is None:
            return None
        return (0.0, 0.0, float(size[0]), float(size[1]))

    def map_rect(self, rect: QRectF, source: int) -> QRectF | None:
        """``rect`` in viewer ``source``'s image mapped into the other image."""
        src, dst = self._frame(source), self._frame(1 - source)
        if src is None or dst is None:
            return None
        sx = (dst[2] - dst[0]) / (src[2] - src[0])
        sy = (dst[3] - dst[1]) / (src[3] - src[1])
        left = dst[0] + (rect.left() - src[0]) * sx
        top = dst[1] + (rect.top() - src[1]) * sy
        return QRectF(left, top, rect.width() * sx, rect.height() * sy)

    def _follow(self, source: int) -> None:
        if not self._enabled or self._busy:
            return
        leader, follower = self._viewers[source], self._viewers[1 - source]
        if leader.image_size is None or follower.image_size is None:
            return
        target = self.map_rect(leader.view_box.viewRect(), source)
        if target is None or not (target.width() > 0 and target.height() > 0):
            return
        self._busy = True
        try:
            follower.view_box.setRange(target, padding=0.0)
        finally:
            self._busy = False
