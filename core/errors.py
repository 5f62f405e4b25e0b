"""Exceptions the application turns into plain messages for the examiner.

Every error that is the user's input (a file, a model, a parameter) is a
`BadInputError`: its message names the file and the problem in one line, and the
CLI turns it into exit code 2.
"""

from __future__ import annotations

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
            f"{self.path}: {message}" if self.path is not None else message
        )


class NoFaceError(BadInputError):
    """No face was found in an image."""


class ModelFileError(BadInputError):
    """A model file (weights, card) is missing, damaged or not what it claims."""


class UnknownModelError(BadInputError):
    """A model id that is not in the registry."""


class Cancelled(XfrError):
    """A long job stopped because its caller asked it to (cooperative cancel)."""
