"""Geometry checks for layouts (issue 18, item 3): no control overlaps another, no
toolbar overflows, views keep a useful size.  For any panel's tests: import
``assert_no_overlap`` and friends from here.

Only what an examiner sees and uses counts: visible "leaf" controls (buttons,
tool buttons, combo boxes, check and radio boxes, spin boxes, sliders, line
edits, labels with text or a picture), their rectangles mapped into the checked
widget.  Containers (frames, group boxes, scroll areas, views) hold controls by
design and are left out; so are a control's own parts (a spin box's line edit,
a combo box's children).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QToolBar,
    QToolButton,
    QWidget,
)

LEAF_TYPES: tuple[type[QWidget], ...] = (
    QAbstractButton,
    QComboBox,
    QAbstractSpinBox,
    QAbstractSlider,
    QLineEdit,
    QLabel,
)
# Parts of a compound control, never separate controls of their own.
_COMPOUND_TYPES: tuple[type[QWidget], ...] = (QComboBox, QAbstractSpinBox)


def _is_leaf(widget: QWidget) -> bool:
    if not isinstance(widget, LEAF_TYPES):
        return False
    if isinstance(widget, QLabel):
        return bool(widget.text().strip()) or not widget.pixmap().isNull()
    return True


def _inside_compound(widget: QWidget, root: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        if isinstance(parent, _COMPOUND_TYPES):
            return True
        parent = parent.parentWidget()
    return False


def visible_controls(root: QWidget) -> list[QWidget]:
    """The visible leaf controls under ``root`` (see the module doc)."""
    return [
        widget
        for widget in root.findChildren(QWidget)
        if widget.isVisibleTo(root)
        and widget.isVisible()
        and _is_leaf(widget)
        and not _inside_compound(widget, root)
        and widget.width() > 0
        and widget.height() > 0
    ]


def control_rect(widget: QWidget, root: QWidget) -> QRect:
    """``widget``'s rectangle in ``root``'s coordinates, clipped to what its
    ancestors show (a control scrolled out of a scroll area takes no room)."""
    rect = QRect(widget.mapTo(root, widget.rect().topLeft()), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        shown = QRect(parent.mapTo(root, parent.rect().topLeft()), parent.size())
        rect = rect.intersected(shown)
        parent = parent.parentWidget()
    return rect


def describe(widget: QWidget) -> str:
    """``QLabel('Probe')``: how a failure names a control."""
    text = ""
    if isinstance(widget, QAbstractButton | QLabel):
        text = widget.text()
    elif isinstance(widget, QComboBox):
        text = widget.currentText()
    return f"{type(widget).__name__}({text[:30]!r})"


def overlaps(root: QWidget, tolerance: int = 1) -> list[str]:
    """Every pair of visible controls under ``root`` whose rectangles share more
    than ``tolerance`` pixels each way, as "A overlaps B by WxH" lines."""
    controls = [(w, control_rect(w, root)) for w in visible_controls(root)]
    found = []
    for index, (a, rect_a) in enumerate(controls):
        for b, rect_b in controls[index + 1 :]:
            if a.isAncestorOf(b) or b.isAncestorOf(a):
                continue
            common = rect_a.intersected(rect_b)
            if common.width() > tolerance and common.height() > tolerance:
                found.append(
                    f"{describe(a)} overlaps {describe(b)} by "
                    f"{common.width()}x{common.height()} px"
                )
    return found


def assert_no_overlap(root: QWidget, tolerance: int = 1) -> None:
    """Fail, naming the controls, when two visible controls under ``root``
    overlap (by more than ``tolerance`` px each way)."""
    found = overlaps(root, tolerance)
    assert not found, "overlapping controls:\n" + "\n".join(found)


def assert_settles_without_overlap(
    qtbot: Any, root: QWidget, what: str = "", timeout_ms: int = 3000
) -> None:
    """Like ``assert_no_overlap``, for layouts that settle later (the All-methods
    grid rebuilds its tiles for a new width; later on a loaded machine): fails
    only when an overlap is still there after ``timeout_ms``."""
    from pytestqt.exceptions import TimeoutError as SettleTimeout

    with contextlib.suppress(SettleTimeout):
        qtbot.waitUntil(lambda: not overlaps(root), timeout=timeout_ms)
    found = overlaps(root)
    assert not found, f"{what}: overlapping controls:\n" + "\n".join(found)


def assert_no_toolbar_overflow(root: QWidget) -> None:
    """Fail when a visible toolbar under ``root`` hides actions in its overflow
    (its extension button is shown)."""
    for toolbar in root.findChildren(QToolBar):
        if not toolbar.isVisibleTo(root):
            continue
        extension = [
            button
            for button in toolbar.findChildren(QToolButton)
            if button.objectName() == "qt_toolbar_ext_button"
        ]
        assert not any(button.isVisible() for button in extension), (
            f"toolbar {toolbar.windowTitle()!r} overflows: some of its actions "
            "are only reachable through the » button"
        )


def assert_min_size(widgets: Iterable[QWidget], width: int, height: int) -> None:
    """Fail when one of ``widgets`` is smaller than ``width`` x ``height``."""
    for widget in widgets:
        assert widget.width() >= width and widget.height() >= height, (
            f"{type(widget).__name__} is {widget.width()}x{widget.height()} px, "
            f"less than {width}x{height}"
        )
