"""``xfr`` run in the test's own process, and its one-line refusals (shared by
the CLI test files that read what a command printed)."""

from __future__ import annotations

from core.cli import main


def xfr(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``xfr ARGV``."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *argv, code: int = 2) -> str:
    """The one ``xfr: error: ...`` line a refused command prints (no traceback)."""
    got, out, err = xfr(capsys, *argv)
    assert got == code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("xfr: error: "), err
    return lines[0]
