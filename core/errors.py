"""Exceptions the application turns into plain messages for the examiner.

Every error that is the user's input (a file, a model, a parameter) is a
`BadInputError`: its message names the file and the problem in one line, and the
CLI turns it into exit code 2.

Errors raised by the system or a library rather than by XFR (``OSError`` for a full
disk or a read-only folder, ``sqlite3.Error`` from the case database, a file name
that is not valid UTF-8) are turned into the same kind of one line by
`plain_message`; the CLI and the GUI both use it, so only real faults in XFR are
reported as internal errors.  `printable` makes any path safe to print.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path


class XfrError(Exception):
    """Base class of all errors the application reports in plain words."""


class BadInputError(XfrError):
    """The input (a file, a model id, a parameter) cannot be used.

    ``path`` names the file concerned, when there is one, so that the message the
    examiner reads always says which file is at fault.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(
            printable(f"{self.path}: {message}" if self.path is not None else message)
        )


class NoFaceError(BadInputError):
    """No face was found in an image."""


class ModelFileError(BadInputError):
    """A model file (weights, card) is missing, damaged or not what it claims."""


class UnknownModelError(BadInputError):
    """A model id that is not in the registry."""


class Cancelled(XfrError):
    """A long job stopped because its caller asked it to (cooperative cancel)."""


# ---- plain messages for the system's and libraries' errors -------------------------
def printable(text: str | os.PathLike | bytes) -> str:
    """``text`` (a path, or a message containing one) safe to print anywhere.

    A file name whose bytes are not valid UTF-8 reaches Python with surrogate
    escapes, which no terminal or log can encode; they are shown as ``\\xNN``.
    """
    text = os.fspath(text)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # the file system's undecodable bytes, as the OS gave them
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


_OS_PROBLEMS = {
    errno.ENOSPC: "disk full (no space left on the device)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
}
if hasattr(errno, "EDQUOT"):
    _OS_PROBLEMS[errno.EDQUOT] = "disk quota exceeded"

# The codes that say what went wrong; SQLITE_ERROR is generic and, after a failed
# COMMIT, usually only "cannot rollback" hiding the real cause in __context__.
_SQLITE_PROBLEMS = {
    "SQLITE_FULL": "disk full: the case database cannot grow",
    "SQLITE_READONLY": "the case is read-only (its database cannot be written)",
    "SQLITE_CANTOPEN": "the case database cannot be opened",
    "SQLITE_BUSY": "the case database is busy (another process is writing)",
    "SQLITE_LOCKED": "the case database is busy (another process is writing)",
    "SQLITE_CORRUPT": "the case database is damaged",
    "SQLITE_NOTADB": "the case database is damaged or not a database",
    "SQLITE_IOERR": "the disk failed while reading or writing the case database",
    "SQLITE_PERM": "permission denied on the case database",
    "SQLITE_NOMEM": "out of memory",
}


def describe_os_error(error: OSError, where: str | os.PathLike | None = None) -> str:
    """One line naming the file and the problem.

    ``where`` names the file when the error does not (a write to an open file that
    fills the disk carries no file name).
    """
    code = error.errno
    problem = _OS_PROBLEMS.get(code) if code is not None else None
    if problem is None and code is None and "requested and" in str(error):
        # numpy's short write ("16256 requested and 2016 written") has no errno
        problem = f"could not be written completely ({error}); is the disk full?"
    if problem is None:
        problem = error.strerror or str(error) or type(error).__name__
    name = error.filename if error.filename is not None else where
    if name is None:
        return problem
    if error.filename2 is not None:
        return f"{printable(name)} -> {printable(error.filename2)}: {problem}"
    return f"{printable(name)}: {problem}"


def _significant_sqlite_error(error: sqlite3.Error) -> sqlite3.Error:
    """The error in ``error``'s chain that says what happened."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, sqlite3.Error):
            name = getattr(current, "sqlite_errorname", "") or ""
            if any(name.startswith(code) for code in _SQLITE_PROBLEMS):
                return current
        current = current.__context__
    return error


def sqlite_error_from_outside(error: sqlite3.Error) -> bool:
    """Whether a database error comes from the disk, the file or another program
    (busy, read-only, full, damaged, ...), not from a fault in XFR (a closed
    connection, a missing table, wrong SQL)."""
    name = getattr(_significant_sqlite_error(error), "sqlite_errorname", "") or ""
    return any(name.startswith(code) for code in _SQLITE_PROBLEMS)


def describe_sqlite_error(
    error: sqlite3.Error, where: str | os.PathLike | None = None
) -> str:
    """One line for a database error; ``where`` names the case (sqlite does not)."""
    error = _significant_sqlite_error(error)
    name = getattr(error, "sqlite_errorname", "") or ""
    problem = next(
        (text for code, text in _SQLITE_PROBLEMS.items() if name.startswith(code)),
        None,
    )
    if problem is None:
        problem = f"case database error: {error}"
    elif "disk full" not in problem:
        problem = f"{problem} ({error})"
    return f"{printable(where)}: {problem}" if where is not None else problem


def plain_message(
    error: BaseException, where: str | os.PathLike | None = None
) -> str | None:
    """The one line the examiner reads for ``error``, or None for a fault in XFR.

    ``where`` is the file or case the failing step was working on; it names the
    file when the error itself does not.
    """
    if isinstance(error, XfrError):
        return printable(str(error))
    if isinstance(error, OSError):
        return describe_os_error(error, where)
    if isinstance(error, sqlite3.Error):
        return describe_sqlite_error(error, where)
    if isinstance(error, UnicodeError):
        problem = (
            "a file name or text is not valid UTF-8 "
            f"({printable(getattr(error, 'reason', '') or str(error))})"
        )
        return f"{printable(where)}: {problem}" if where is not None else problem
    if isinstance(error, EOFError):
        return "no input available (standard input is closed or not a terminal)"
    if isinstance(error, MemoryError):
        return "out of memory" + (
            f" while working on {printable(where)}" if where else ""
        )
    return None
