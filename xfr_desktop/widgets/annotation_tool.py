"""The evidence viewer's annotation tool: drawing, selecting and moving shapes.

``AnnotationTool`` is mixed into ``EvidenceViewer`` (it is not a widget on its own):
it holds the methods that turn left-button input on the viewer's ViewBox into
annotation signals, draws the stored annotations and finds the one under a click.
The viewer owns the state these methods use (listed below as annotations) and the
signals they emit; keeping the tool here keeps the viewer about the image.
Coordinates are image pixels, as everywhere in the viewer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, SignalInstance
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem

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
HIT_TOLERANCE_PX = 6.0  # how close (screen pixels) a click must be to an outline

# stacking order of everything the viewer draws
Z_IMAGE, Z_OVERLAY, Z_FACE, Z_ANNOTATION, Z_PREVIEW, Z_LANDMARK = range(6)

ANNOTATION_COLOUR = QColor(255, 221, 0)
SELECTED_COLOUR = QColor(0, 230, 255)
SHADOW_COLOUR = QColor(0, 0, 0, 200)

Point = tuple[float, float]


def cosmetic_pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)  # width in screen pixels, whatever the zoom
    return pen


def shape_path(shape: str, points: Sequence[Sequence[float]]) -> QPainterPath:
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


def thin_points(points: list[Point], limit: int) -> list[Point]:
    """At most ``limit`` points, evenly spread, first and last kept."""
    if len(points) <= limit:
        return points
    keep = np.unique(np.round(np.linspace(0, len(points) - 1, limit)).astype(int))
    return [points[i] for i in keep]


class AnnotationTool:
    """Annotation display, hit testing, moving and the drawing tools (a mixin)."""

    # state and signals of the host viewer (``EvidenceViewer.__init__`` sets them)
    _view_box: pg.ViewBox
    _graphics_view: pg.GraphicsView
    _image: np.ndarray | None
    _annotations: list[dict]
    _annotation_items: dict[int, list[QGraphicsItem]]
    _selected: int | None
    _tool: str | None
    _draft: list[Point]
    _draft_cursor: Point | None
    _move_from: Point | None
    _move_original: list[list[float]] | None
    _preview_items: list[QGraphicsPathItem]
    annotation_drawn: SignalInstance
    annotation_selected: SignalInstance
    annotation_moved: SignalInstance

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
        shadow.setPen(cosmetic_pen(SHADOW_COLOUR, pen.widthF() + 2))
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
        colour = SELECTED_COLOUR if selected else ANNOTATION_COLOUR
        points = annotation["points"]
        items: list = []
        if annotation["shape"] == "point" and points:
            x, y = points[0]
            marker = QGraphicsEllipseItem(-5, -5, 10, 10)
            marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            marker.setPen(cosmetic_pen(SHADOW_COLOUR, 1))
            marker.setBrush(QBrush(colour))
            marker.setPos(x, y)
            marker.setZValue(Z_ANNOTATION)
            self._view_box.addItem(marker, ignoreBounds=True)
            items.append(marker)
            anchor = (x, y)
        else:
            pair = self._add_outline_pair(
                Z_ANNOTATION, cosmetic_pen(colour, 3 if selected else 2)
            )
            path = shape_path(annotation["shape"], points)
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
            text.setZValue(Z_ANNOTATION)
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
                path = shape_path(annotation["shape"], points)
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
            points = thin_points(self._draft, MAX_FREEHAND_POINTS)
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
        path = shape_path(shape, points) if len(points) >= 2 else QPainterPath()
        for item in self._preview_items:
            item.setPath(path)

    def _emit_drawn(self, shape: str, points: Sequence[Point]) -> None:
        self.annotation_drawn.emit(shape, [[float(x), float(y)] for x, y in points])
