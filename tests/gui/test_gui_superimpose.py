"""The Superimpose tab (issue 19, item 3): the pair's faces aligned on one eye
line, side by side (two views that pan and zoom together), superimposed, wiped and
flickered, a magnifier without interpolation at the centre of the view; the view
saved as a numbered, audited figure drawn at the chips' pixels; it follows the
pair shown and clears with the case."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QInputDialog

from core.case import workflow
from core.case.store import Case
from core.compare_views import MODES, compose, magnify, render_view
from tests.gui.tiny_case import WAIT_MS, open_pair_window
from xfr_desktop.panels.superimpose_panel import FLICKER

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


def superimpose_tab(qtbot, tmp_path, monkeypatch):
    window = open_pair_window(qtbot, tmp_path, monkeypatch)
    panel = window.superimpose
    if panel.controller is None:  # until the main window passes its controller
        panel.set_controller(window.controller)
    qtbot.waitUntil(lambda: panel.faces is not None, timeout=WAIT_MS)
    window.resize(1280, 720)
    window.tabs.setCurrentWidget(panel)
    qtbot.wait(20)
    return window, panel


def rects_equal(a: QRectF, b: QRectF) -> bool:
    return all(
        abs(x - y) < 1e-6
        for x, y in zip(
            (a.left(), a.top(), a.width(), a.height()),
            (b.left(), b.top(), b.width(), b.height()),
            strict=True,
        )
    )


def test_each_view_draws_the_aligned_pair_and_flicker_alternates(
    qtbot, tmp_path, monkeypatch
):
    window, panel = superimpose_tab(qtbot, tmp_path, monkeypatch)
    loaded = window.compare.loaded
    probe, gallery = workflow.aligned_faces(
        window.controller.case, loaded.probe_label, loaded.gallery_label
    )
    assert probe.shape == gallery.shape == (300, 300, 3)
    for mode in MODES:
        panel.mode.setCurrentText(mode)
        shown = panel.redraw()
        np.testing.assert_array_equal(shown, compose(probe, gallery, mode, 0.5))
        assert not panel.flicker.isActive()
        assert panel.viewers[1].isVisible() == (mode == "side by side")
    panel.zoom.setValue(3)
    params = panel.view_params("magnifier")
    magnified = render_view(probe, gallery, params)
    x0, y0, x1, y1 = params.shown_region()
    expected = compose(probe, gallery, MODES[-1])[y0:y1, x0:x1]
    np.testing.assert_array_equal(magnified, magnify(expected, 3))
    assert panel.magnifier.pixmap().width() == magnified.shape[1]
    panel.mode.setCurrentText(FLICKER)
    assert panel.flicker.isActive()
    seen = {panel.showing_gallery}
    qtbot.waitUntil(lambda: panel.showing_gallery not in seen, timeout=WAIT_MS)
    assert loaded.gallery_label in panel.caption.text()
    window.controller.close_case()
    assert panel.faces is None and not panel.flicker.isActive()
    assert not panel.save_view_button.isEnabled()


def test_side_by_side_views_pan_and_zoom_together_and_the_magnifier_follows(
    qtbot, tmp_path, monkeypatch
):
    _, panel = superimpose_tab(qtbot, tmp_path, monkeypatch)
    first, second = panel.viewers
    assert rects_equal(first.visible_rect(), second.visible_rect())
    first.view_box.setRange(QRectF(60, 80, 100, 100), padding=0.0)  # pan + zoom
    assert first.visible_rect().width() < 200
    assert rects_equal(first.visible_rect(), second.visible_rect())
    second.zoom_in()
    second.view_box.translateBy(x=-15, y=10)
    assert rects_equal(first.visible_rect(), second.visible_rect())
    centre = first.visible_rect().center()
    magnifier = panel.view_params("magnifier")
    assert magnifier.magnifier_centre == pytest.approx((centre.x(), centre.y()))
    # another view or a slider keeps the examiner's region
    shown = QRectF(first.visible_rect())
    panel.mode.setCurrentText("superimposition")
    panel.amount.setValue(30)
    assert rects_equal(first.visible_rect(), shown)


def test_the_view_shown_is_saved_as_numbered_figures_drawn_at_the_chips_pixels(
    qtbot, tmp_path, monkeypatch
):
    window, panel = superimpose_tab(qtbot, tmp_path, monkeypatch)
    case = window.controller.case
    q, k = panel.labels
    panel.mode.setCurrentText("wipe (horizontal)")
    panel.amount.setValue(40)
    panel.viewers[0].view_box.setRange(QRectF(50, 40, 200, 200), padding=0.0)
    asked: list[str] = []

    def get_text(*args, **kwargs):
        asked.append(kwargs.get("text", ""))
        return "the eyes", True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    panel.save_view_button.click()
    assert asked and q in asked[0]  # the caption offered says what is shown
    assert (
        "Saved as Figure 1 (in the case and the report's annex)" in panel.saved.text()
    )
    magnified = panel.save_figure("magnifier", caption="nose, 4×")
    assert magnified is not None and magnified.number == 2
    first, second = case.examination().figures()
    assert (first.view, first.caption, second.view) == ("wipe", "the eyes", "magnifier")
    assert first.params["wipe_axis"] == "horizontal"
    assert first.params["wipe_position"] == 0.4
    assert first.params["region"][0] >= 49 and first.params["alignment"]
    saves = [e.details for e in case.audit_log() if e.action == "figure.save"]
    assert [(d["number"], d["view"]) for d in saves] == [(1, "wipe"), (2, "magnifier")]
    faces = workflow.aligned_faces(case, q, k)
    for figure in (first, second):
        png = case.derived_path(figure.image_sha256).read_bytes()
        stored = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        np.testing.assert_array_equal(stored, render_view(*faces, figure.params))
    assert stored.shape[0] == magnify(np.zeros((40, 40, 3), np.uint8), 4).shape[0]
    # the shortcut saves the view too; cancelling the caption saves nothing
    assert panel.save_shortcut.key().toString() == "Ctrl+Shift+F"
    panel.save_shortcut.activated.emit()
    assert [f.number for f in case.examination().figures()] == [1, 2, 3]
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("", False))
    assert panel.save_figure() is None and len(case.examination().figures()) == 3


def test_a_read_only_case_offers_no_saving(qtbot, tmp_path, monkeypatch):
    window, panel = superimpose_tab(qtbot, tmp_path, monkeypatch)
    folder = window.controller.case.folder
    q, k = panel.labels
    window.controller.close_case()
    with Case.open(folder, read_only=True) as copy:
        panel.set_pair(copy, q, k)
        qtbot.waitUntil(lambda: panel.faces is not None, timeout=WAIT_MS)
        assert not panel.save_view_button.isEnabled()
        assert "read-only" in panel.save_view_button.toolTip()
        assert panel.save_figure(caption="x") is None
        assert "read-only" in panel.saved.text()
        panel.set_pair(None, "", "")
