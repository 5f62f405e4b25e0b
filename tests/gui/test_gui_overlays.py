"""Defensible overlays in the comparison view (issue 18, item 4): one colour scale
for probe and gallery, units and a legend in the colour bar, the diverging map
named in the Colours box, a message where a method has no map of a kind, the
examiner's map kept when jobs finish, one read-out that shows the stored value.

A tiny model and real (fast) explainers on synthetic images; no dlib."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from core.colours import (
    MAGNITUDE_LEGEND,
    SIGNED_COLOUR_MAP_LABEL,
    map_legend,
    robust_peak,
)
from core.explain.base import get
from core.explain.render import display_sigma, smooth_covered
from tests.gui.tiny_case import WAIT_MS, explain, open_pair_window
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels.compare_panel import ComparePanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch) -> MainWindow:
    return open_pair_window(qtbot, tmp_path, monkeypatch)


def shown_values(compare: ComparePanel, side: int, kind: str) -> np.ndarray:
    values = compare.current_result().images[side].evidence[kind].values
    return smooth_covered(values, display_sigma(values))


def test_both_views_share_one_scale_the_larger_robust_peak(window):
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    for kind in ("similarity", "combined"):
        compare.kind_combo.setCurrentText(kind)
        peaks = [robust_peak(shown_values(compare, side, kind)) for side in (0, 1)]
        assert peaks[0] != pytest.approx(peaks[1])  # else the test proves nothing
        assert compare.shown_peak == pytest.approx(max(peaks))
        for viewer in compare.viewers:
            assert viewer.overlay_peak == pytest.approx(max(peaks))
        assert compare.colour_bar.high_label.text() == f"{max(peaks):.3g}"


def test_the_colour_bar_states_the_method_units_and_the_legend(window):
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    units = get("gradient_input").info.map_units
    for kind in ("similarity", "combined"):
        compare.kind_combo.setCurrentText(kind)
        assert compare.colour_bar.isVisibleTo(compare)
        assert compare.colour_bar.units_text == units
        warm, cold = map_legend(kind)
        assert compare.colour_bar.warm_label.text() == warm
        assert compare.colour_bar.cold_label.text() == cold
    assert "raises the score" in map_legend("combined")[0]
    assert "same person" in map_legend("similarity")[0]
    compare.show_overlay.setChecked(False)
    assert not compare.colour_bar.isVisibleTo(compare)  # no map: no bar


def test_the_colours_box_names_the_map_drawn(window):
    compare = window.compare
    compare.set_colour_map("viridis")
    compare.set_explanations({1: explain(compare, "gradient_input")})
    compare.kind_combo.setCurrentText("combined")
    assert compare.colour_combo.currentText() == SIGNED_COLOUR_MAP_LABEL
    assert "diverging" in compare.colour_combo.currentText()
    assert not compare.colour_combo.isEnabled()
    assert compare.drawn_colour_map() == "blue-white-red"
    compare.kind_combo.setCurrentText("similarity")
    assert compare.colour_combo.currentText() == "viridis" == compare.drawn_colour_map()
    assert compare.colour_combo.isEnabled()
    assert compare.colour_combo.findText(SIGNED_COLOUR_MAP_LABEL) < 0
    compare.colour_combo.setCurrentText("magma")  # the examiner picks another
    assert compare.drawn_colour_map() == "magma" == compare.colour_combo.currentText()
    assert compare.viewers[0].rendered_overlay_rgba() is not None


def test_a_magnitude_map_is_never_drawn_or_read_as_for_and_against(window):
    """Vanilla saliency's maps are gradient sizes: its combined map is not drawn
    blue-white-red and no legend says 'raises / lowers the score'."""
    compare = window.compare
    compare.set_colour_map("viridis")
    compare.set_explanations({1: explain(compare, "gradient")})
    for kind in ("similarity", "combined"):
        compare.kind_combo.setCurrentText(kind)
        assert not compare.draws_signed()
        assert compare.drawn_colour_map() == "viridis"
        assert compare.colour_combo.isEnabled()
        assert compare.colour_bar.low_label.text() == "0"
        assert (
            compare.colour_bar.warm_label.text(),
            compare.colour_bar.cold_label.text(),
        ) == MAGNITUDE_LEGEND
        assert "same person" not in compare.colour_bar.cold_label.text()


@pytest.mark.slow
def test_limes_scaled_similarity_map_has_its_own_legend(window):
    compare = window.compare
    compare.set_explanations({1: explain(compare, "lime", samples=64)})
    compare.kind_combo.setCurrentText("similarity")
    assert "most against" in compare.colour_bar.cold_label.text()
    compare.kind_combo.setCurrentText("combined")
    assert compare.draws_signed()  # its combined map is the signed coefficients


def test_a_method_without_a_dissimilarity_map_says_so_in_the_view(window):
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient")})  # no S- map
    compare.kind_combo.setCurrentText("dissimilarity")
    for viewer in compare.viewers:
        assert viewer.rendered_overlay_rgba() is None
        assert "gives no dissimilarity map" in viewer.message_text
        assert "Vanilla saliency" in viewer.message_text
    compare.kind_combo.setCurrentText("similarity")
    assert all(viewer.message_text == "" for viewer in compare.viewers)
    assert compare.viewers[0].rendered_overlay_rgba() is not None


def test_the_examiners_map_stays_selected_when_another_job_finishes(window):
    compare = window.compare
    first = explain(compare, "gradient")
    compare.set_explanations({1: first})
    compare.show_explanation(1)  # a job's result with nothing chosen: shown
    second = explain(compare, "gradient_input")
    compare.set_explanations({1: first, 2: second})
    compare.show_explanation(2)
    assert compare.method_combo.currentData() == 2  # nothing chosen yet: newest
    compare.method_combo.setCurrentIndex(compare.method_combo.findData(1))
    compare.method_combo.activated.emit(compare.method_combo.currentIndex())
    third = explain(compare, "integrated_gradients", steps=4)
    window._on_results({1: first, 2: second, 3: third})  # the job finishing path
    compare.show_explanation(3)
    assert compare.method_combo.currentData() == 1  # the examiner's choice stays
    assert compare.current_result() is first
    compare.select_explanation(3)  # asked for explicitly: shown
    assert compare.current_result() is third


def test_the_read_out_shows_the_stored_value_and_stays_current(qtbot, window, tmp_path):
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    assert compare.smooth.isChecked()  # the views show smoothed values
    face = compare.loaded.faces[0]
    x, y = (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2
    evidence = compare.current_result().probe.evidence["similarity"]
    stored = float(
        evidence.values[int(y) - evidence.origin[1], int(x) - evidence.origin[0]]
    )
    compare.viewers[0].hovered.emit(x, y, compare.viewers[0].value_at(x, y))
    assert f"probe ({x:.0f}, {y:.0f}): {stored:.4g}" in compare.hover.text()
    assert get("gradient_input").info.map_units in compare.hover.text()
    assert not compare.viewers[0]._readout.isVisibleTo(compare)  # one read-out
    compare.kind_combo.setCurrentText("combined")  # another kind: updated at once
    combined = compare.current_result().probe.evidence["combined"]
    value = float(
        combined.values[int(y) - combined.origin[1], int(x) - combined.origin[0]]
    )
    assert f"probe ({x:.0f}, {y:.0f}): {value:.4g}" in compare.hover.text()
    compare.set_explanations({})  # no map: nothing to read
    assert "no map" in compare.hover.text()
    window.controller.close_case()
    qtbot.waitUntil(lambda: window.controller.case is None, timeout=WAIT_MS)
    assert compare.hover.text().strip() == ""  # another case: cleared


def _action(window: MainWindow, text: str):
    from PySide6.QtGui import QAction

    return next(a for a in window.findChildren(QAction) if a.text() == text)


def test_zoom_to_the_faces_works_after_fit_and_zoom_out(qtbot, window):
    compare = window.compare
    zoom, fit = (
        _action(window, "Zoom to the &faces"),
        _action(window, "&Fit whole images"),
    )
    face = compare.loaded.faces[0]
    size = 1.6 * max(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1])
    for away in (fit.trigger, lambda: compare.zoom_views(-1)):
        away()
        away_rect = compare.viewers[0].visible_rect()
        assert min(away_rect.width(), away_rect.height()) > 1.05 * size
        zoom.trigger()  # passes checked=False: was taken for the margin (0)
        shown = compare.viewers[0].visible_rect()
        assert min(shown.width(), shown.height()) == pytest.approx(size, rel=0.01)
        centre = shown.center()
        assert centre.x() == pytest.approx((face.bbox[0] + face.bbox[2]) / 2)


def test_one_zoom_step_zooms_each_synchronised_view_once(qtbot, window):
    compare = window.compare
    compare.zoom_to_faces()
    before = [v.visible_rect().width() for v in compare.viewers]
    compare.zoom_views(-1)
    after = [v.visible_rect().width() for v in compare.viewers]
    for old, new in zip(before, after, strict=True):
        assert new == pytest.approx(old * 1.25, rel=0.01)


def test_show_top_is_one_cut_off_for_both_faces(window):
    """'Show top 20 %' keeps the same values on probe and gallery: one shared
    cut-off, as one shared scale (not each map's own 80th percentile)."""
    from core.colours import shared_floor

    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    compare.kind_combo.setCurrentText("similarity")
    compare.top_percent.setValue(20)
    drawn = [shown_values(compare, side, "similarity") for side in (0, 1)]
    floor = shared_floor(drawn, 20)
    own = [shared_floor([values], 20) for values in drawn]
    assert own[0] != pytest.approx(own[1])  # else the test proves nothing
    for side, values in enumerate(drawn):
        alpha = compare.viewers[side].rendered_overlay_rgba()[..., 3]
        finite = np.isfinite(values)
        assert (np.abs(values[finite & (alpha > 0)]) >= floor).all()
        assert (np.abs(values[finite & (alpha == 0)]) < floor).all()


def test_fit_shows_each_whole_image_with_the_views_synchronised(qtbot, window):
    """With sync on the probe used to follow the gallery's fit (a face-anchored
    frame) instead of showing its whole image."""
    from PySide6.QtCore import QRectF

    compare = window.compare
    assert compare.sync.enabled
    # the test images put both faces at one place: anchor the gallery's face
    # elsewhere, at half the size, as in real pairs
    compare.sync.set_anchors((40.0, 40.0, 160.0, 160.0), (20.0, 30.0, 80.0, 90.0))
    compare.zoom_to_faces()
    _action(window, "&Fit whole images").trigger()
    for viewer, image in zip(compare.viewers, compare.loaded.images, strict=True):
        shown = viewer.visible_rect()
        height, width = image.shape[:2]
        assert shown.contains(QRectF(0, 0, width, height))  # all of it
        assert min(shown.width() / width, shown.height() / height) < 1.1  # no more
