"""Two evidence viewers kept on the same region relative to their faces."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF

if TYPE_CHECKING:
    from xfr_desktop.widgets.viewer import EvidenceViewer

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

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No following inside: each view is set on its own (e.g. each to its
        whole image, which face-anchored following would undo for the first)."""
        busy, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = busy

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
