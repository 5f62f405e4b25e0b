"""Both themes readable: self-painted plots and indicator frames keep WCAG contrast.

Contrast is the WCAG 2 ratio of relative luminances: >= 4.5:1 for text, >= 3:1 for
graphics and the frames of controls (WCAG 1.4.3 and 1.4.11).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QRadioButton

import xfr_desktop
from xfr_desktop.dialogs.new_case_dialog import NewCaseDialog
from xfr_desktop.panels.start_page import recent_case_item
from xfr_desktop.theme import (
    INDICATOR_BORDER,
    PROBLEM_TEXT,
    THEMES,
    apply_theme,
    contrast_ratio,
    plot_colours,
    theme_palette,
)
from xfr_desktop.widgets.faithfulness_plot import SERIES_STYLE, MarginCurves

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
Role = QPalette.ColorRole
Group = QPalette.ColorGroup
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


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("role", [Role.Text, Role.WindowText, Role.ButtonText])
def test_disabled_text_is_readable_as_text(theme, role):
    """Greyed entries (a recent case that cannot be opened, with the reason) are
    read, not just noticed: text contrast against every background they sit on."""
    palette = theme_palette(theme)
    grey = palette.color(Group.Disabled, role)
    for background in (
        palette.color(Role.Base),
        palette.color(Role.Window),
        palette.color(Role.Button),
        palette.color(Group.Disabled, Role.Base),
    ):
        assert contrast_ratio(grey, background) >= TEXT, background.name()
    # still told apart from enabled text
    assert contrast_ratio(grey, palette.color(role)) >= 1.5


def test_a_greyed_recent_case_is_drawn_readably(qtbot, app_look, tmp_path):
    from PySide6.QtWidgets import QListWidget

    from core.case.summary import CaseSummary

    for theme in THEMES:
        apply_theme(app_look, theme)
        view = QListWidget()
        qtbot.addWidget(view)
        view.addItem(recent_case_item(CaseSummary(str(tmp_path), None, "moved")))
        view.resize(400, 60)
        base = app_look.palette().color(Role.Base)
        rect = view.visualItemRect(view.item(0))
        image = view.viewport().grab(rect).toImage()
        drawn = _pixels(image)
        assert max(contrast_ratio(QColor(*rgb), base) for rgb in drawn) >= TEXT, theme


@pytest.mark.parametrize("theme", THEMES)
def test_problem_text_contrasts_with_its_theme(theme):
    """Problem lines sit on the window, superseded report rows on the base."""
    palette = theme_palette(theme)
    problem = QColor(PROBLEM_TEXT[theme])
    for role in (Role.Window, Role.Base):
        assert contrast_ratio(problem, palette.color(role)) >= TEXT, role


def test_new_case_warning_takes_the_theme_colour(qtbot, app_look, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    for theme in THEMES:
        apply_theme(app_look, theme)
        dialog = NewCaseDialog("A. Examiner")
        qtbot.addWidget(dialog)
        dialog.number.setText("1")
        dialog.folder.setText(str(tmp_path / "taken"))
        dialog.accept()
        assert not dialog.problem.isHidden()
        assert PROBLEM_TEXT[theme] in dialog.problem.styleSheet()


# A text colour fixed in a style sheet must come with its own background, and the
# pair must read as text: it is then readable in both themes alike.
_STYLE_COLOUR = re.compile(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})")
_STYLE_BACKGROUND = re.compile(r"background(?:-color)?:\s*(#[0-9a-fA-F]{6})")


def _fixed_text_colours() -> list[tuple[str, str, str | None]]:
    found = []
    for path in sorted(Path(xfr_desktop.__file__).parent.rglob("*.py")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            for colour in _STYLE_COLOUR.findall(line):
                background = _STYLE_BACKGROUND.search(line)
                found.append(
                    (
                        f"{path.name}:{number}",
                        colour,
                        None if background is None else background.group(1),
                    )
                )
    return found


def test_fixed_text_colours_come_with_a_readable_background():
    found = _fixed_text_colours()
    assert any(where.startswith("audit_view.py") for where, _, _ in found)
    for where, colour, background in found:
        assert background is not None, f"{where}: {colour} on the theme's background"
        assert contrast_ratio(QColor(colour), QColor(background)) >= TEXT, where
