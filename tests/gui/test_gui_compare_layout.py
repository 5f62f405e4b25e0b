"""The comparison view fits from 1280x720 up (issue 18, item 3): no control overlaps
another, the annotation toolbar does not overflow ("Edit landmarks" visible), the
image views keep at least 280x280 px, captions do not sit on the chips.  A case
open and a pair loaded with a map shown (tiny model, no dlib)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QWidget

from tests.gui.layout_checks import (
    assert_min_size,
    assert_no_overlap,
    assert_no_toolbar_overflow,
    control_rect,
    overlaps,
)
from tests.gui.tiny_case import explain, open_pair_window
from xfr_desktop.panels.compare_panel import VIEW_MIN_SIZE, ComparePanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


def check_compare_layout(compare: ComparePanel) -> None:
    for tab in range(compare.tabs.count()):
        compare.tabs.setCurrentIndex(tab)
        assert_no_overlap(compare)
    compare.tabs.setCurrentIndex(0)
    assert_no_toolbar_overflow(compare)
    edit = compare.toolbar.widgetForAction(compare.edit_landmarks)
    assert edit is not None and edit.isVisible()
    assert_min_size(
        [viewer.graphics_view for viewer in compare.viewers],
        VIEW_MIN_SIZE,
        VIEW_MIN_SIZE,
    )
    for chip in compare.chips:  # the caption under the picture, not on it
        picture = control_rect(chip._image, compare)
        caption = control_rect(chip._caption, compare)
        assert chip.caption() and caption.top() >= picture.bottom()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
@pytest.mark.parametrize("kind", ["similarity", "combined"])
def test_the_comparison_view_fits_the_window(qtbot, tmp_path, monkeypatch, size, kind):
    window = open_pair_window(qtbot, tmp_path, monkeypatch)
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    compare.kind_combo.setCurrentText(kind)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() <= max(size[0], window.minimumWidth()))
    qtbot.wait(50)  # the layouts settle
    check_compare_layout(compare)
    assert compare.colour_bar.isVisible()


def test_the_panel_alone_fits_the_room_it_gets_at_1280x720(
    qtbot, tmp_path, monkeypatch
):
    # with the exhibits (~300 px) and methods (~340 px) panels beside it
    window = open_pair_window(qtbot, tmp_path, monkeypatch)
    compare = window.compare
    compare.set_explanations({1: explain(compare, "gradient_input")})
    compare.setParent(None)
    host = QWidget()
    qtbot.addWidget(host)
    compare.setParent(host)
    compare.resize(660, 560)
    host.resize(660, 560)
    host.show()
    qtbot.wait(50)
    check_compare_layout(compare)
    compare.setParent(None)
    compare.deleteLater()


def test_overlaps_are_found_and_named(qtbot):
    from PySide6.QtWidgets import QPushButton

    host = QWidget()
    qtbot.addWidget(host)
    host.resize(200, 100)
    first, second = QPushButton("First", host), QPushButton("Second", host)
    first.setGeometry(0, 0, 100, 30)
    second.setGeometry(50, 10, 100, 30)
    host.show()
    assert overlaps(host) == [
        "QPushButton('First') overlaps QPushButton('Second') by 50x20 px"
    ]
    with pytest.raises(AssertionError, match="overlapping controls"):
        assert_no_overlap(host)
    second.move(100, 0)
    assert_no_overlap(host)


def test_the_flow_layout_wraps_instead_of_overlapping(qtbot):
    from PySide6.QtWidgets import QPushButton

    from xfr_desktop.widgets.flow_layout import FlowLayout

    host = QWidget()
    qtbot.addWidget(host)
    flow = FlowLayout(host)
    buttons = [QPushButton(f"Button {i}") for i in range(6)]
    for button in buttons:
        flow.addWidget(button)
    host.resize(2000, 200)
    host.show()
    qtbot.wait(10)
    assert len({button.y() for button in buttons}) == 1  # one row when it fits
    narrow = buttons[0].width() * 2 + 20
    host.resize(narrow, flow.heightForWidth(narrow))
    qtbot.wait(10)
    assert len({button.y() for button in buttons}) == 3  # two per row
    assert_no_overlap(host)
    assert all(button.geometry().right() < narrow for button in buttons)


def test_the_faithfulness_tab_gets_room_for_its_curves(qtbot, tmp_path, monkeypatch):
    """The curves were about 60 px tall at 1280x720 under the views; choosing the
    tab gives the tabs up to 45 % of the height, the views keep their minimum."""
    window = open_pair_window(qtbot, tmp_path, monkeypatch)
    compare = window.compare
    window.resize(1280, 720)
    qtbot.wait(50)
    compare.tabs.setCurrentIndex(2)  # Faithfulness
    qtbot.wait(50)
    assert compare.tabs.tabText(2) == "Faithfulness"
    assert all(plot.height() >= 140 for plot in compare.faithfulness)
    assert_min_size(compare.viewers, VIEW_MIN_SIZE, VIEW_MIN_SIZE)
    compare.tabs.setCurrentIndex(0)  # the score: the views get the room back
    qtbot.wait(50)
    assert compare.tabs.height() <= compare.tabs.minimumHeight() + 2
