"""The GUI's one error path: every failure reaches the examiner the same way.

* ``describe(error)`` turns an exception into a title and a readable message: input
  problems (``core.errors.BadInputError``) already name the file and the reason;
  the system's errors (a file that cannot be opened, a full disk, a read-only
  folder, the case database) are worded by ``core.errors.plain_message``;
  anything else is an internal error.
* ``show_error_dialog(parent, report)`` shows it in a ``QMessageBox`` with the
  traceback under "Show Details...".  The box is opened with ``open()``, never
  ``exec()``: nothing blocks, neither background work nor tests.
* ``ErrorReporter`` is what widgets call (``report(error, details)``); it records
  the last report and emits ``reported`` so tests and later an audit log can observe
  it.  ``install_excepthook`` routes uncaught exceptions (from Qt slots or other
  threads) into the same reporter.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core import APP_NAME
from core.errors import BadInputError, plain_message, printable

EDQUOT = getattr(errno, "EDQUOT", errno.ENOSPC)


@dataclass(frozen=True)
class ErrorReport:
    """What the examiner is shown: a title, a one-paragraph message, details."""

    title: str
    message: str
    details: str = ""


def describe(error: BaseException) -> tuple[str, str]:
    """``(title, message)`` for an exception, in plain words.

    Input and environment problems (a bad file, a full disk, a read-only folder,
    the case database refusing a write) get the one line that names the file;
    only what is none of these is called a fault in the application.
    """
    if isinstance(error, BadInputError):  # its message names the file and reason
        return "Cannot use this input", printable(str(error))
    message = plain_message(error)
    if message is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, EDQUOT):
            return "Disk full", message
        if isinstance(error, sqlite3.Error):
            return "Cannot use the case", message
        if isinstance(error, OSError):
            return "Cannot open file", message
        return "Cannot use this input", message
    return (
        "Internal error",
        f"{type(error).__name__}: {error}\n\nThis is a fault in {APP_NAME}; "
        "please report it with the details below.",
    )


def show_error_dialog(parent: QWidget | None, report: ErrorReport) -> QMessageBox:
    """Show ``report`` in a non-blocking message box and return the box."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, report.title, report.message, parent=parent
    )
    box.setTextFormat(Qt.TextFormat.PlainText)  # file names may contain < or &
    if report.details:
        box.setDetailedText(report.details)  # "Show Details..." expands it
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # no hidden boxes pile up
    box.open()
    return box


class ErrorReporter(QObject):
    """Shows errors in dialogs over ``parent`` and records them.

    ``show_dialogs=False`` keeps the record and the signal but shows nothing (for
    headless use).
    """

    reported = Signal(object)  # ErrorReport
    # Uncaught exceptions may come from any thread; this queues them to ours.
    _uncaught = Signal(object, str)

    def __init__(
        self, parent: QWidget | None = None, show_dialogs: bool = True
    ) -> None:
        super().__init__(parent)
        self._parent_widget = parent
        self.show_dialogs = show_dialogs
        self.last_report: ErrorReport | None = None
        self.last_dialog: QMessageBox | None = None
        self._uncaught.connect(self.report)

    def report(
        self, error: BaseException, details: str = "", context: str = ""
    ) -> ErrorReport:
        """Tell the examiner about ``error``; ``context`` says what was being done."""
        title, message = describe(error)
        if context:
            message = f"{context}\n\n{message}"
        if not details and error.__traceback__ is not None:
            details = "".join(traceback.format_exception(error))
        report = ErrorReport(title, message, details)
        self.last_report = report
        if self.show_dialogs:
            self.last_dialog = show_error_dialog(self._parent_widget, report)
        self.reported.emit(report)
        return report

    def report_uncaught(self, error: BaseException, details: str = "") -> None:
        """Thread-safe: delivered to ``report`` on the reporter's thread."""
        self._uncaught.emit(error, details)


def install_excepthook(reporter: ErrorReporter) -> Callable[[], None]:
    """Route uncaught exceptions to ``reporter`` as well as to stderr.

    Returns a function that restores the previous hooks.
    """
    previous_sys_hook = sys.excepthook
    previous_thread_hook = threading.excepthook

    def sys_hook(
        kind: type[BaseException],
        error: BaseException,
        tb: TracebackType | None,
    ) -> None:
        previous_sys_hook(kind, error, tb)  # keep the console trace for developers
        if isinstance(error, Exception):  # not KeyboardInterrupt / SystemExit
            details = "".join(traceback.format_exception(kind, error, tb))
            reporter.report_uncaught(error, details)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        previous_thread_hook(args)
        if isinstance(args.exc_value, Exception):
            details = "".join(
                traceback.format_exception(
                    args.exc_type, args.exc_value, args.exc_traceback
                )
            )
            reporter.report_uncaught(args.exc_value, details)

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook

    def restore() -> None:
        sys.excepthook = previous_sys_hook
        threading.excepthook = previous_thread_hook

    return restore
