"""numpy images -> QImage, for every widget that paints an array."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an (h, w, 3) or (h, w, 4) uint8 array."""
    array = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, c = array.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(array.data, w, h, c * w, fmt).copy()
