"""The GUI's one error path: every failure reaches the examiner the same way.

* ``describe(error)`` turns an exception into a title and a readable message: input
  problems (``core.errors.BadInputError``) already name the file and the reason;
  the system's errors (a file that cannot be opened, a full disk, a read-only
  folder, the case database, a damaged image) are worded by
  ``core.errors.plain_message``; anything else is an internal error.
* ``level(error)`` says which: an expected failure is a *warning* (the examiner's
  input or the system, with ``next_step(error)`` saying what to do about it); only
  what none of these covers is *internal* (a fault in the application).
* ``show_error_dialog(parent, report)`` shows it in a ``QMessageBox`` (a warning or
  a critical icon by level, the next step under the message) with the traceback
  under "Show Details...".  The box is opened with ``open()``, never
  ``exec()``: nothing blocks, neither background work nor tests.
* ``ErrorReporter`` is what widgets call (``report(error, details)``); it records
  the last report and emits ``reported`` so tests and later an audit log can observe
  it.  ``install_excepthook`` routes uncaught exceptions (from Qt slots or other
  threads) into the same reporter.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from PIL import Image
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core import APP_NAME
from core.case.records import CaseError, CaseLockedError
from core.errors import (
    BadInputError,
    NoFaceError,
    XfrError,
    plain_message,
    printable,
    sqlite_error_from_outside,
)

EDQUOT = getattr(errno, "EDQUOT", errno.ENOSPC)

WARNING = "warning"  # expected: the input or the system; the examiner can act on it
INTERNAL = "internal"  # a fault in XFR Desktop


@dataclass(frozen=True)
class ErrorReport:
    """What the examiner is shown: a title, a one-paragraph message, details.

    ``level`` is ``WARNING`` or ``INTERNAL``; ``next_step`` is the sentence that
    says what to do now (empty for an internal error, whose message says it).
    """

    title: str
    message: str
    details: str = ""
    level: str = WARNING
    next_step: str = ""


class FolderExistsError(BadInputError):
    """A new case was asked for in a folder that already holds something."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        self.reason = "already exists"
        XfrError.__init__(
            self,
            f"{printable(self.path)} already exists: choose another folder or open "
            "it with Open case…",
        )


def folder_is_taken(folder: str | Path) -> bool:
    """Whether a new case may not be made in ``folder`` (``Case.create``'s rule)."""
    path = Path(folder)
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _expected(error: BaseException) -> BaseException | None:
    """``error`` as an expected failure (an image library's own errors turned into
    the OS error they are), or None when it is a fault in the application."""
    if isinstance(error, Image.DecompressionBombError):
        return BadInputError(f"image too large to open safely ({error})")
    if isinstance(error, sqlite3.Error) and not sqlite_error_from_outside(error):
        return None  # a closed database, no such table, bad SQL: a fault of ours
    return error if plain_message(error) is not None else None


def level(error: BaseException) -> str:
    """``WARNING`` for the input's and the system's failures, else ``INTERNAL``."""
    return WARNING if _expected(error) is not None else INTERNAL


def next_step(error: BaseException) -> str:
    """What the examiner can do about an expected failure, in one sentence."""
    if isinstance(error, FolderExistsError):
        return ""  # its message already says it
    if isinstance(error, CaseLockedError):
        return ""  # its message says: close it there, or open it read-only
    if isinstance(error, CaseError):
        return "Check the case folder named above, or choose another one."
    if isinstance(error, NoFaceError):
        return "Choose an image in which the face is visible, then add it again."
    if isinstance(error, BadInputError):
        return "Check the file named above, or choose another, then try again."
    if isinstance(error, OSError):
        if error.errno in (errno.ENOSPC, EDQUOT):
            return "Free some space on that disk, or choose another, then try again."
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (
                "Choose a folder you may write to, or ask for access to this file, "
                "then try again."
            )
        if error.errno == errno.ENOENT:
            return (
                "Check that the file is still there (it may have been moved or "
                "deleted), then try again."
            )
        if error.filename is None:  # nothing names the file
            return "Try again; if it fails again, check the disk and the files used."
        return "Check the file named above, then try again."
    if isinstance(error, sqlite3.Error):
        return (
            "Close other programs that use the case, check the disk, then open the "
            "case again."
        )
    return "Check the input named above, then try again."


def describe(
    error: BaseException, where: str | os.PathLike[str] | None = None
) -> tuple[str, str]:
    """``(title, message)`` for an exception, in plain words.

    Input and environment problems (a bad file, a full disk, a read-only folder,
    the case database refusing a write) get the one line that names the file;
    only what is none of these is called a fault in the application.  ``where``
    names the file when the error does not (a damaged image read from an open file).
    """
    if isinstance(error, FolderExistsError):
        return "Folder already exists", printable(str(error))
    if isinstance(error, CaseLockedError):
        return "Case in use", printable(str(error))
    expected = _expected(error)
    if isinstance(expected, BadInputError):  # its message names the file and reason
        return "Cannot use this input", printable(str(expected))
    message = plain_message(error, where)
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
    icon = (
        QMessageBox.Icon.Critical
        if report.level == INTERNAL
        else QMessageBox.Icon.Warning
    )
    box = QMessageBox(icon, report.title, report.message, parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)  # file names may contain < or &
    if report.next_step:
        box.setInformativeText(report.next_step)
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
        self,
        error: BaseException,
        details: str = "",
        context: str = "",
        where: str | os.PathLike[str] | None = None,
    ) -> ErrorReport:
        """Tell the examiner about ``error``; ``context`` says what was being done,
        ``where`` the file it was done on (when the error does not name it)."""
        title, message = describe(error, where)
        if context:
            message = f"{context}\n\n{message}"
        if not details and error.__traceback__ is not None:
            details = "".join(traceback.format_exception(error))
        kind = level(error)
        step = next_step(error) if kind == WARNING else ""
        report = ErrorReport(title, message, details, kind, step)
        self.last_report = report
        if self.show_dialogs:
            self.last_dialog = show_error_dialog(self._parent_widget, report)
        self.reported.emit(report)
        return report

    def warn(self, title: str, message: str, next_step: str = "") -> ErrorReport:
        """Tell the examiner about something that went differently from what they
        asked, though nothing failed (shown and recorded like a warning)."""
        report = ErrorReport(title, message, "", WARNING, next_step)
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
