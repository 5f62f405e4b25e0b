"""The small bar that says what was just done and offers Undo for a few seconds
(after a delete: "Annotation 'left ear scar' on K1 deleted. [Undo (Ctrl+Z)]"),
so a delete is never silent.  It sits in the window's status bar and acts on the
case's undo stack."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence, QUndoStack
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

HINT_SECONDS = 8  # long enough to read the line and reach the button


class UndoHint(QWidget):
    """What was just done, with an Undo button, for a few seconds.

    The button undoes only the step it announced: any other change of the undo
    stack (an undo, a new step) hides the hint, so it can never undo something
    else."""

    def __init__(self, stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stack = stack
        self._expected_index = -1
        self.text = QLabel()
        bold = self.text.font()
        bold.setBold(True)  # it must be seen: the only word about a delete
        self.text.setFont(bold)
        keys = QKeySequence(QKeySequence.StandardKey.Undo)
        native = keys.toString(QKeySequence.SequenceFormat.NativeText)
        self.undo_button = QPushButton(f"Undo ({native})")
        self.undo_button.clicked.connect(self._undo)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(HINT_SECONDS * 1000)
        self.timer.timeout.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.undo_button)
        stack.indexChanged.connect(self._on_index)
        self.hide()

    def announce(self, text: str) -> None:
        """Call while the step is being done (the stack's index moves by one
        right after)."""
        self.text.setText(text)
        self._expected_index = self._stack.index() + 1
        self.show()
        self.timer.start()

    def _on_index(self, index: int) -> None:
        if index != self._expected_index:
            self.hide()

    def _undo(self) -> None:
        if self._stack.index() == self._expected_index:
            self._stack.undo()
        self.hide()
