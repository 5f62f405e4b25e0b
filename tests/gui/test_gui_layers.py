"""Layer by layer (issue 18): opens on a layer that has maps of the chosen kind,
larger maps, one colour scale shared by both faces with its colour bar."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.colours import robust_peak
from core.explain.layerwise import LayerMaps, LayerwiseResult
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.panels.maps_panels import LAYER_CHIP_SIZE, LayersPanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
SIZE = 64


def _layer(name, spatial, scale):
    ramp = np.linspace(0, scale, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    cam = (ramp, 2 * ramp) if spatial else None
    return LayerMaps(name, 8, (4, 4) if spatial else None, 0.5, (ramp, 3 * ramp), cam)


@pytest.fixture
def panel(qtbot):
    panel = LayersPanel(ErrorReporter(show_dialogs=False))
    qtbot.addWidget(panel)
    chip = np.full((SIZE, SIZE, 3), 120, np.uint8)
    pair = SimpleNamespace(
        sides=(SimpleNamespace(chip=chip, side="probe"),
               SimpleNamespace(chip=chip, side="gallery"))
    )  # fmt: skip
    panel.set_pair(pair, model=None)
    layers = (_layer("block1", True, 1.0), _layer("block2", True, 2.0),
              _layer("embedding", False, 4.0))  # fmt: skip
    panel._on_result(LayerwiseResult("m", "0" * 64, {}, 0, 0.1, layers))
    return panel


def test_grad_cam_moves_to_the_deepest_layer_that_has_its_maps(panel):
    assert panel.slider.value() == 2  # LIME: the embedding has LIME maps
    panel.kind.setCurrentText("Grad-CAM")
    assert panel.slider.value() == 1  # block2: the embedding has no Grad-CAM map
    assert "block2" in panel.layer_label.text()
    assert all(chip.rendered_rgb() is not None for chip in panel.chips)


def test_both_faces_share_one_scale_and_the_bar_states_it(panel):
    panel.kind.setCurrentText("Grad-CAM")
    probe, gallery = panel.result.layers[1].gradcam_maps
    peak = max(robust_peak(probe), robust_peak(gallery))
    assert panel.colour_bar.isVisibleTo(panel)
    assert panel.colour_bar.high_label.text() == f"{peak:.3g}"
    # the same value has the same colour on both faces: the probe's top value (2)
    # is half the gallery's (4), so it is drawn mid-scale, like the gallery's 2
    shown_probe, shown_gallery = (chip.rendered_rgb() for chip in panel.chips)
    at_two = int(np.abs(gallery.ravel() - probe.max()).argmin())
    same_value = shown_gallery.reshape(-1, 3)[at_two]
    assert (shown_probe[-1, -1] == same_value).all()
    assert (shown_probe[-1, -1] != shown_gallery[-1, -1]).any()
    assert panel.chips[0]._image.width() == LAYER_CHIP_SIZE > 150


def test_a_kind_found_only_deeper_moves_down_to_it(qtbot):
    panel = LayersPanel(ErrorReporter(show_dialogs=False))
    qtbot.addWidget(panel)
    chip = np.full((SIZE, SIZE, 3), 120, np.uint8)
    side = SimpleNamespace(chip=chip, side="probe")
    panel.set_pair(SimpleNamespace(sides=(side, side)), model=None)
    layers = (_layer("block1", False, 1.0), _layer("block2", True, 2.0))
    panel._on_result(LayerwiseResult("m", "0" * 64, {}, 0, 0.1, layers))
    panel.slider.setValue(0)  # block1: LIME only
    panel.kind.setCurrentText("Grad-CAM")
    assert panel.slider.value() == 1
