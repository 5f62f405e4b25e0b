"""Light and dark themes: Qt's Fusion style with an explicit palette.

Fusion looks the same on every platform and follows the palette completely, so
both themes are fully defined here rather than inherited from the desktop.  The
dark palette keeps text at a contrast ratio of at least 7:1 against its
background (WCAG AAA) and disabled text readable as text (>= 4.5:1 against the
window, the base and buttons: a greyed recent case still says why it cannot be
opened); tooltips use a light-on-dark pair in the dark theme and dark-on-light in
the light one, so they stand out from the window.  ``PROBLEM_TEXT`` is the colour
of a warning sentence in a dialog, per theme (one orange is unreadable on one of
the two backgrounds).

Fusion draws the frame of a check box, radio button or checkable list item in a
shade just darker than the window, which vanishes on a dark background; the
``IndicatorStyle`` proxy redraws that frame in the theme's ``INDICATOR_BORDER``
(>= 3:1 against the window and the base, WCAG 1.4.11 for controls).  Widgets that
paint themselves (the faithfulness plot) take their colours from ``plot_colours``
of their palette, so they follow the theme and repaint when it changes.

``apply_theme(app, name)`` may be called any number of times; applying the theme
that is already active changes nothing.  ``current_theme(app)`` returns its name.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleFactory,
    QStyleOption,
    QWidget,
)

THEMES = ("light", "dark")
_PROPERTY = "xfr_theme"  # dynamic property on the application: the active theme

Role = QPalette.ColorRole
Group = QPalette.ColorGroup


def _light_palette() -> QPalette:
    colours = {
        Role.Window: "#efefef",
        Role.WindowText: "#000000",
        Role.Base: "#ffffff",
        Role.AlternateBase: "#f5f5f5",
        Role.ToolTipBase: "#ffffdc",
        Role.ToolTipText: "#000000",
        Role.PlaceholderText: "#6b6b6b",
        Role.Text: "#000000",
        Role.Button: "#efefef",
        Role.ButtonText: "#000000",
        Role.BrightText: "#ffffff",
        Role.Light: "#ffffff",
        Role.Midlight: "#cacaca",
        Role.Mid: "#b8b8b8",
        Role.Dark: "#9f9f9f",
        Role.Shadow: "#767676",
        Role.Highlight: "#1f6fb5",
        Role.HighlightedText: "#ffffff",
        Role.Link: "#0000ff",
        Role.LinkVisited: "#ff00ff",
    }
    disabled = {
        Role.WindowText: "#6b6b6b",
        Role.Text: "#6b6b6b",
        Role.ButtonText: "#6b6b6b",
        Role.Base: "#efefef",
        Role.Highlight: "#919191",
        Role.HighlightedText: "#ffffff",
    }
    return _palette(colours, disabled)


def _dark_palette() -> QPalette:
    colours = {
        Role.Window: "#2b2b2b",
        Role.WindowText: "#eeeeee",
        Role.Base: "#1e1e1e",
        Role.AlternateBase: "#262626",
        Role.ToolTipBase: "#3c3f41",
        Role.ToolTipText: "#f0f0f0",
        Role.PlaceholderText: "#9a9a9a",
        Role.Text: "#eeeeee",
        Role.Button: "#353535",
        Role.ButtonText: "#eeeeee",
        Role.BrightText: "#ff6b6b",
        Role.Light: "#4a4a4a",
        Role.Midlight: "#404040",
        Role.Mid: "#303030",
        Role.Dark: "#1a1a1a",
        Role.Shadow: "#000000",
        Role.Highlight: "#2f6aa3",
        Role.HighlightedText: "#ffffff",
        Role.Link: "#6cb4ff",
        Role.LinkVisited: "#c89bff",
    }
    disabled = {
        Role.WindowText: "#a0a0a0",
        Role.Text: "#a0a0a0",
        Role.ButtonText: "#a0a0a0",
        Role.Base: "#262626",
        Role.Highlight: "#4a4a4a",
        Role.HighlightedText: "#b0b0b0",
    }
    return _palette(colours, disabled)


def _palette(colours: dict[Role, str], disabled: dict[Role, str]) -> QPalette:
    palette = QPalette()
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))  # all groups
    for role, colour in disabled.items():
        palette.setColor(Group.Disabled, role, QColor(colour))
    return palette


# The frame of unchecked check boxes and radio buttons, per theme.
INDICATOR_BORDER = {"light": "#5c5c5c", "dark": "#a6a6a6"}
# A problem line (why a dialog did not go on; a superseded row), per theme: a red
# that keeps >= 4.5:1 on the window and base colours.
PROBLEM_TEXT = {"light": "#b3261e", "dark": "#ff8a80"}


@dataclass(frozen=True)
class PlotColours:
    """The colours of a self-painted plot in one theme.

    ``series`` maps a curve's name to its colour; every curve, the axes and the
    text keep >= 3:1 (text >= 4.5:1) against ``background``.
    """

    background: str
    text: str  # axis labels, the threshold and its label
    frame: str  # the plot's frame
    grid: str  # faint guide lines (not data, so no contrast minimum)
    series: dict[str, str]


PLOT_COLOURS = {
    "light": PlotColours(
        background="#ffffff",
        text="#1a1a1a",
        frame="#6e6e6e",
        grid="#dedede",
        series={
            "random orders (mean)": "#5f5f5f",
            "face-centre map": "#b35900",
            "this map": "#c81e1e",
        },
    ),
    "dark": PlotColours(
        background="#1e1e1e",
        text="#eeeeee",
        frame="#9a9a9a",
        grid="#3a3a3a",
        series={
            "random orders (mean)": "#b0b0b0",
            "face-centre map": "#ffa94d",
            "this map": "#ff6b6b",
        },
    ),
}


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black .. 1 white)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (1 .. 21)."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def theme_of(palette: QPalette) -> str:
    """ "dark" for a palette whose window is dark, else "light".

    Read from the palette rather than the application, so a widget drawn with
    its own palette (or before any theme was applied) still picks readable colours.
    """
    return "dark" if relative_luminance(palette.color(Role.Window)) < 0.2 else "light"


def problem_colour(palette: QPalette) -> str:
    """The red of a problem line drawn with ``palette``."""
    return PROBLEM_TEXT[theme_of(palette)]


def problem_style(palette: QPalette) -> str:
    """A style sheet for a problem label drawn with ``palette``."""
    return f"color: {problem_colour(palette)};"


def plot_colours(palette: QPalette) -> PlotColours:
    """The plot colours that go with ``palette``'s theme."""
    return PLOT_COLOURS[theme_of(palette)]


class IndicatorStyle(QProxyStyle):
    """Fusion, with check-box and radio-button frames visible in every theme."""

    _INDICATORS = (
        QStyle.PrimitiveElement.PE_IndicatorCheckBox,
        QStyle.PrimitiveElement.PE_IndicatorRadioButton,
        QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck,
    )

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element not in self._INDICATORS:
            return
        border = QColor(INDICATOR_BORDER[theme_of(option.palette)])
        if not option.state & QStyle.StateFlag.State_Enabled:
            border = option.palette.color(Group.Disabled, Role.WindowText)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(border, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5)
        if element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            painter.drawEllipse(rect)
        else:
            painter.drawRoundedRect(rect, 1.0, 1.0)
        painter.restore()


def uses_theme_style(app: QApplication) -> bool:
    """Whether ``app`` draws with the themes' style (Fusion + visible indicators)."""
    return isinstance(app.style(), IndicatorStyle)


def theme_palette(name: str) -> QPalette:
    """The palette of theme ``name`` ("light" or "dark")."""
    if name == "light":
        return _light_palette()
    if name == "dark":
        return _dark_palette()
    raise ValueError(f"unknown theme {name!r} (known: {', '.join(THEMES)})")


def apply_theme(app: QApplication, name: str) -> None:
    """Use the Fusion style (with visible indicators) and the palette of theme
    ``name`` for the whole app."""
    palette = theme_palette(name)  # raises before anything changes
    if current_theme(app) == name and uses_theme_style(app):
        return  # idempotent: nothing to do
    if not uses_theme_style(app):
        fusion = QStyleFactory.create("Fusion")
        if fusion is not None:
            app.setStyle(IndicatorStyle(fusion))
    app.setPalette(palette)
    app.setProperty(_PROPERTY, name)


def current_theme(app: QApplication) -> str | None:
    """The theme applied with ``apply_theme``, or None if none was."""
    value = app.property(_PROPERTY)
    return value if isinstance(value, str) and value in THEMES else None
