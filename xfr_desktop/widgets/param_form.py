"""Editors for typed parameters (``core.params.Param``), shared by the explanation
methods' form and the processing steps' form.

Each editor shows the parameter's default (or a value given), its description as the
tooltip, and keeps the range a spin box can hold; the value read back is checked by
``Param.coerce`` in core, which gives the one-line error for a bad one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from core.params import Param

INT_LIMIT = 2_000_000_000


def editor_for(param: Param, value: Any = None) -> QWidget:
    """A widget for one typed parameter, showing ``value`` (default: its default)."""
    shown = param.default if value is None else value
    if param.choices:
        combo = QComboBox()
        combo.addItems([str(c) for c in param.choices])
        combo.setCurrentText(str(shown))
        editor: QWidget = combo
    elif param.type is bool:
        check = QCheckBox()
        check.setChecked(bool(shown))
        editor = check
    elif param.type is int and not param.optional:
        spin = QSpinBox()
        spin.setRange(
            int(param.minimum if param.minimum is not None else -INT_LIMIT),
            int(param.maximum if param.maximum is not None else INT_LIMIT),
        )
        spin.setValue(int(shown))  # type: ignore[arg-type]
        editor = spin
    elif param.type is float and not param.optional:
        double = QDoubleSpinBox()
        double.setDecimals(4)
        double.setRange(
            float(param.minimum if param.minimum is not None else -1e9),
            float(param.maximum if param.maximum is not None else 1e9),
        )
        double.setValue(float(shown))  # type: ignore[arg-type]
        editor = double
    else:  # text, lists, and numbers that may be left "automatic" (empty)
        line = QLineEdit()
        if isinstance(shown, tuple | list):
            line.setText(",".join(str(v) for v in shown))
        elif shown is not None:
            line.setText(str(shown))
        if param.optional:
            line.setPlaceholderText("automatic")
        editor = line
    editor.setToolTip(param.description)
    return editor


def value_of(editor: QWidget) -> Any:
    """What the examiner entered (the operation's or method's Param checks it)."""
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        return editor.value()
    assert isinstance(editor, QLineEdit)
    return editor.text().strip()


def on_change(editor: QWidget, slot: Callable[[], None]) -> None:
    """Call ``slot`` whenever the examiner changes the editor's value."""
    if isinstance(editor, QComboBox):
        editor.currentTextChanged.connect(lambda _text: slot())
    elif isinstance(editor, QCheckBox):
        editor.toggled.connect(lambda _on: slot())
    elif isinstance(editor, QSpinBox | QDoubleSpinBox):
        editor.valueChanged.connect(lambda _value: slot())
    elif isinstance(editor, QLineEdit):
        editor.textEdited.connect(lambda _text: slot())
