"""Run many ``xfr`` command lines in one process (torch is imported once).

Used by tests/cli/test_cli_failures.py: ``python tests/cli_runner.py IN.json OUT.json``
reads a JSON list of argv lists and writes, for each, the exit code, what went to
stderr and whether anything escaped ``core.cli.main``.  stdout and stderr are
strict UTF-8 streams like a terminal's (not Python's forgiving C-locale ones), so
a path with invalid UTF-8 bytes that is printed unescaped is caught.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def _strict_stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")


def run(argv: list[str]) -> dict:
    from core.cli import main

    out, err = _strict_stream(), _strict_stream()
    escaped = ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:  # exactly what the test looks for
            code = None
            escaped = traceback.format_exc()
        for stream in (out, err):
            with contextlib.suppress(Exception):
                stream.flush()
    return {
        "argv": argv,
        "code": code,
        "stderr": err.buffer.getvalue().decode("utf-8", "backslashreplace"),
        "escaped": escaped,
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        argvs = json.load(source)
    results = [run(argv) for argv in argvs]
    with open(sys.argv[2], "w", encoding="utf-8") as target:
        json.dump(results, target)
