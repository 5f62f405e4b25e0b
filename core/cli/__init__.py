"""``xfr`` - the command-line interface.

Exit codes:

* 0 success;
* 1 a verification failed (``xfr case verify``, ``xfr report verify``, an import
  whose case does not verify), or an internal error (a fault in XFR: one line
  asking to report it; ``XFR_DEBUG=1`` adds the traceback);
* 2 bad input or environment: a missing or unreadable file, an output folder that
  does not exist, a full disk, a read-only case, a file name that is not valid
  UTF-8, no terminal to ask a password on; also argparse's usage errors;
* 130 interrupted (Ctrl-C).

Every failure is one line on stderr naming the file and the problem, never a
traceback (`core.errors.plain_message` words the system's errors).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence

from core import APP_NAME, __version__
from core.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TAMPERED,
    CommandParser,
    apply_compute_options,
    check_output_folder,
)
from core.errors import BadInputError, XfrError, plain_message, printable

# The command groups, in the order ``xfr --help`` lists their commands; each
# module's ``add_commands(subparsers)`` registers its commands and handlers.
# Importing one is cheap: a handler imports the science it runs.
COMMAND_GROUPS = (
    "verify",  # models, layers, verify, methods
    "explain",
    "case",
    "processing",  # processing ops
    "report",  # identity, report
    "calibration",  # calibrate
    "channels",
    "selftest",  # self-test
    "train",
    "evaluate",  # eval
    "gallery",  # gallery build, gallery search
)


def build_parser() -> argparse.ArgumentParser:
    """The ``xfr`` parser, every command in it (building it imports no science)."""
    # a CommandParser, so that every command's parser is one (``add_subparsers``
    # makes its own type): a command may then have verbs (``xfr report verify``)
    parser = CommandParser(
        prog="xfr", description=f"{APP_NAME} {__version__} - command-line tools"
    )
    parser.add_argument(
        "--version", action="version", version=f"{APP_NAME} {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_GROUPS:
        importlib.import_module(f"core.cli.{name}").add_commands(commands)
    return parser


def _safe_streams() -> None:
    """Printing never fails: an odd file name is escaped instead of raising.

    A path with bytes that are not valid UTF-8 carries surrogate escapes, which a
    strict UTF-8 (or a narrower) terminal encoding cannot write.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(
            stream, "reconfigure"
        ):
            stream.reconfigure(errors="backslashreplace")


def _quiet_library_logs() -> None:
    """Libraries' log records never reach the examiner's terminal as tracebacks.

    pyHanko logs every validation problem with its traceback (a certificate that
    is not trusted, a change after signing); the verdict says the same in plain
    words.  With no handler, Python would print them to stderr.  ``XFR_DEBUG=1``
    shows them.
    """
    import logging

    root = logging.getLogger()
    if root.handlers:  # the caller (a test, an embedding program) configured it
        return
    if os.environ.get("XFR_DEBUG") == "1":
        logging.basicConfig(level=logging.WARNING)
    else:
        root.addHandler(logging.NullHandler())


def _output_paths(args: argparse.Namespace) -> list[str]:
    """What the command writes (--out, --plot, --keep, an export's archive)."""
    names = ["out", "plot", "keep"]
    if getattr(args, "case_command", None) == "export":
        names.append("archive")
    return [value for name in names if (value := getattr(args, name, None))]


def _output_path(args: argparse.Namespace) -> str | None:
    """The output to name when an error does not say which file it is about."""
    return next(iter(_output_paths(args)), None)


def _error(message: str) -> None:
    print(f"xfr: error: {printable(message)}", file=sys.stderr)


def _interrupted() -> None:
    # On a terminal the ^C is still on the prompt's line.
    start = "\n" if sys.stderr.isatty() else ""
    print(f"{start}xfr: interrupted", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; every failure becomes one line and an exit code."""
    case = getattr(args, "case", None)
    try:
        for path in _output_paths(args):
            check_output_folder(path)
        apply_compute_options()  # XFR_THREADS (core.compute)
        return int(args.run(args))
    except KeyboardInterrupt:
        _interrupted()
        return EXIT_INTERRUPTED
    except BadInputError as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    except XfrError as error:
        _error(str(error))
        return EXIT_INTERNAL
    except (OSError, sqlite3.Error, UnicodeError, EOFError, MemoryError) as error:
        where = case if isinstance(error, sqlite3.Error) else _output_path(args)
        _error(plain_message(error, where or case) or str(error))
        return EXIT_BAD_INPUT
    except Exception as error:  # a fault in XFR: still one line
        if os.environ.get("XFR_DEBUG") == "1":
            traceback.print_exc()
        _error(
            f"internal error: {type(error).__name__}: {error} (please report this; "
            "XFR_DEBUG=1 shows the details)"
        )
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    _safe_streams()
    _quiet_library_logs()
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        _interrupted()
        return EXIT_INTERRUPTED
    return run_command(args)


__all__ = [
    "COMMAND_GROUPS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TAMPERED",
    "build_parser",
    "main",
    "run_command",
]
