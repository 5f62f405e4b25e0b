"""Both themes readable: self-painted plots and indicator frames keep WCAG contrast.

Contrast is the WCAG 2 ratio of relative luminances: >= 4.5:1 for text, >= 3:1 for
graphics and the frames of controls (WCAG 1.4.3 and 1.4.11).
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QRadioButton

from xfr_desktop.theme import (
    INDICATOR_BORDER,
    THEMES,
    apply_theme,
    contrast_ratio,
    plot_colours,
    theme_palette,
)
from xfr_desktop.widgets.faithfulness_plot import SERIES_STYLE, MarginCurves

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
Role = QPalette.ColorRole
TEXT, GRAPHICS = 4.5, 3.0


@pytest.fixture
def app_look(qapp):
    """Restore the application's style, palette and theme after a theme test."""
    style, palette = qapp.style(), QPalette(qapp.palette())
    name = style.name()
    yield qapp
    qapp.setStyle(name or "fusion")
    qapp.setPalette(palette)
    qapp.setProperty("xfr_theme", None)


def test_wcag_contrast_of_known_pairs():
    assert contrast_ratio(QColor("black"), QColor("white")) == pytest.approx(21.0)
    assert contrast_ratio(QColor("#777777"), QColor("#777777")) == pytest.approx(1.0)
    # WCAG's own example: #767676 on white is the lightest grey passing 4.5:1
    assert contrast_ratio(QColor("#767676"), QColor("white")) == pytest.approx(
        4.54, abs=0.01
    )


@pytest.mark.parametrize("theme", THEMES)
def test_plot_colours_contrast_with_the_plot_background(theme):
    colours = plot_colours(theme_palette(theme))
    background = QColor(colours.background)
    assert contrast_ratio(QColor(colours.text), background) >= TEXT
    assert contrast_ratio(QColor(colours.frame), background) >= GRAPHICS
    assert set(colours.series) == set(SERIES_STYLE)
    for name, colour in colours.series.items():
        assert contrast_ratio(QColor(colour), background) >= GRAPHICS, name


@pytest.mark.parametrize("theme", THEMES)
def test_indicator_frame_contrasts_with_window_and_base(theme):
    palette = theme_palette(theme)
    border = QColor(INDICATOR_BORDER[theme])
    assert contrast_ratio(border, palette.color(Role.Window)) >= GRAPHICS
    assert contrast_ratio(border, palette.color(Role.Base)) >= GRAPHICS


def _pixels(image) -> set[tuple[int, int, int]]:
    return {
        image.pixelColor(x, y).getRgb()[:3]
        for x in range(image.width())
        for y in range(image.height())
    }


@pytest.mark.parametrize("widget_type", [QCheckBox, QRadioButton])
def test_unchecked_indicator_is_drawn_visibly_in_the_dark_theme(
    qtbot, app_look, widget_type
):
    apply_theme(app_look, "dark")
    box = widget_type("")  # no text: the only thing drawn is the indicator
    qtbot.addWidget(box)
    box.resize(box.sizeHint())
    window = app_look.palette().color(Role.Window)
    drawn = _pixels(box.grab().toImage())
    assert max(contrast_ratio(QColor(*rgb), window) for rgb in drawn) >= GRAPHICS


def test_plot_restyles_when_the_theme_changes(qtbot, app_look):
    apply_theme(app_look, "light")
    plot = MarginCurves()
    qtbot.addWidget(plot)
    plot.resize(300, 160)
    plot.series = {"this map": ([0.0, 0.5, 1.0], [0.4, 0.1, -0.3])}
    corner = (1, 1)

    light = plot.grab().toImage().pixelColor(*corner)
    assert light == QColor(plot_colours(theme_palette("light")).background)
    assert plot.colours == plot_colours(theme_palette("light"))

    apply_theme(app_look, "dark")
    qtbot.waitUntil(lambda: plot.colours == plot_colours(theme_palette("dark")))
    assert plot.colours == plot_colours(theme_palette("dark"))
    dark = plot.grab().toImage().pixelColor(*corner)
    assert dark == QColor(plot_colours(theme_palette("dark")).background)
    assert dark != light
