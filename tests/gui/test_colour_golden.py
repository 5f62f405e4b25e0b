"""Golden image: a map looks the same on screen as in the report and PNG export.

One synthetic map is shown in the real (offscreen) evidence viewer at opacity 1 and
the pixels the viewport actually painted are read back; the same map goes through
``core.explain.render.colour_map``, the mapping the PNG overlays and the signed
report use.  The RGB values must be equal exactly, for every colour map the GUI
offers and for the signed map.  The map is made of uniform 8x8 blocks and the
screen is sampled at block centres, so the view's scaling cannot blend colours.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPointF

from core.colours import COLOUR_MAPS
from core.explain.render import colour_map
from xfr_desktop.widgets.viewer import EvidenceViewer

BLOCK = 8
COLUMNS, ROWS = 16, 8


def block_map(signed: bool) -> np.ndarray:
    """16 x 8 blocks of distinct values spanning the scale (negative if signed)."""
    steps = np.linspace(0.0, 1.0, COLUMNS * ROWS, dtype=np.float32)
    if signed:
        steps = steps * 2.0 - 1.0
    grid = steps.reshape(ROWS, COLUMNS)
    return np.kron(grid, np.ones((BLOCK, BLOCK), dtype=np.float32))


def screen_rgb(viewer: EvidenceViewer, values: np.ndarray) -> np.ndarray:
    """The RGB the viewport shows at the centre of every block."""
    screen = viewer.graphics_view.grab().toImage()
    out = np.zeros((ROWS, COLUMNS, 3), dtype=np.uint8)
    for row in range(ROWS):
        for column in range(COLUMNS):
            x, y = (column + 0.5) * BLOCK, (row + 0.5) * BLOCK
            scene = viewer.view_box.mapViewToScene(QPointF(x, y))
            colour = screen.pixelColor(viewer.graphics_view.mapFromScene(scene))
            out[row, column] = (colour.red(), colour.green(), colour.blue())
    return out


@pytest.mark.parametrize(
    ("name", "signed"), [*((name, False) for name in COLOUR_MAPS), ("jet", True)]
)
def test_screen_colours_equal_report_colours(qtbot, name, signed):
    values = block_map(signed)
    image = np.full((*values.shape, 3), 77, dtype=np.uint8)
    viewer = EvidenceViewer()
    qtbot.addWidget(viewer)
    viewer.setFixedSize(500, 320)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.set_image(image)
    viewer.set_overlay(values, signed=signed, colour_map=name, opacity=1.0)
    qtbot.wait(20)

    report_rgb, low, high = colour_map(values, signed, name=name)
    centres = report_rgb[BLOCK // 2 :: BLOCK, BLOCK // 2 :: BLOCK]
    assert len({tuple(c) for c in centres.reshape(-1, 3)}) > 20  # a real ramp
    np.testing.assert_array_equal(screen_rgb(viewer, values), centres)
    # and the layer the viewer holds, pixel for pixel
    np.testing.assert_array_equal(viewer.rendered_overlay_rgba()[..., :3], report_rgb)
    bar = viewer.colour_bar
    assert bar.high_label.text() == f"{high:.3g}"
    assert bar.low_label.text() == f"{low:.3g}"
