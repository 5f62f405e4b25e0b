"""The Superimpose tab (issue 19, item 3): the pair's faces aligned on one eye
line, side by side, superimposed, wiped and flickered, magnified without
interpolation; it follows the pair shown and clears with the case."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from core.case import workflow
from core.compare_views import MODES, compose, magnify
from tests.gui.tiny_case import WAIT_MS, open_pair_window
from xfr_desktop.panels.superimpose_panel import FLICKER

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


def test_each_view_draws_the_aligned_pair_and_flicker_alternates(
    qtbot, tmp_path, monkeypatch
):
    window = open_pair_window(qtbot, tmp_path, monkeypatch)
    panel, loaded = window.superimpose, window.compare.loaded
    qtbot.waitUntil(lambda: panel.faces is not None, timeout=WAIT_MS)
    probe, gallery = workflow.aligned_faces(
        window.controller.case, loaded.probe_label, loaded.gallery_label
    )
    assert probe.shape == gallery.shape == (300, 300, 3)
    window.tabs.setCurrentWidget(panel)
    panel.zoom.setValue(1)
    for mode in MODES:
        panel.mode.setCurrentText(mode)
        shown = panel.render()
        np.testing.assert_array_equal(shown, compose(probe, gallery, mode, 0.5))
        assert not panel.flicker.isActive()
    panel.zoom.setValue(3)
    assert panel.render().shape == magnify(compose(probe, gallery, MODES[-1]), 3).shape
    panel.mode.setCurrentText(FLICKER)
    assert panel.flicker.isActive()
    seen = {panel.showing_gallery}
    qtbot.waitUntil(lambda: panel.showing_gallery not in seen, timeout=WAIT_MS)
    assert loaded.gallery_label in panel.caption.text()
    window.controller.close_case()
    assert panel.faces is None and not panel.flicker.isActive()
