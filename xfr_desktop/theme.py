"""Light and dark themes: Qt's Fusion style with an explicit palette.

Fusion looks the same on every platform and follows the palette completely, so
both themes are fully defined here rather than inherited from the desktop.  The
dark palette keeps text at a contrast ratio of at least 7:1 against its
background (WCAG AAA) and disabled text still readable (>= 3:1); tooltips use a
light-on-dark pair in both themes so they stand out from the window.

``apply_theme(app, name)`` may be called any number of times; applying the theme
that is already active changes nothing.  ``current_theme(app)`` returns its name.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

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
        Role.WindowText: "#7a7a7a",
        Role.Text: "#7a7a7a",
        Role.ButtonText: "#7a7a7a",
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
        Role.WindowText: "#8a8a8a",
        Role.Text: "#8a8a8a",
        Role.ButtonText: "#8a8a8a",
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


def theme_palette(name: str) -> QPalette:
    """The palette of theme ``name`` ("light" or "dark")."""
    if name == "light":
        return _light_palette()
    if name == "dark":
        return _dark_palette()
    raise ValueError(f"unknown theme {name!r} (known: {', '.join(THEMES)})")


def apply_theme(app: QApplication, name: str) -> None:
    """Use the Fusion style and the palette of theme ``name`` for the whole app."""
    palette = theme_palette(name)  # raises before anything changes
    if current_theme(app) == name and app.style().name().lower() == "fusion":
        return  # idempotent: nothing to do
    if app.style().name().lower() != "fusion":
        style = QStyleFactory.create("Fusion")
        if style is not None:
            app.setStyle(style)
    app.setPalette(palette)
    app.setProperty(_PROPERTY, name)


def current_theme(app: QApplication) -> str | None:
    """The theme applied with ``apply_theme``, or None if none was."""
    value = app.property(_PROPERTY)
    return value if isinstance(value, str) and value in THEMES else None
