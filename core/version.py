"""The software's version and the git commit of the running code (torch-free).

The version has one source: ``pyproject.toml``, read back from the installed
package metadata.  The commit says which code made a report when the version alone
does not (a development build between releases): a PyInstaller bundle carries it in
``core/_build_commit.txt`` written at build time; a source checkout asks git; else
it is "not recorded".  Both go into every report and its manifest.
"""

from __future__ import annotations

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("xfr-desktop")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

NOT_RECORDED = "not recorded"
BUILD_COMMIT_FILE = Path(__file__).with_name("_build_commit.txt")


@cache
def source_commit() -> str:
    """The commit of the running code, "-dirty" when tracked files were changed.

    Never raises and never uses the network; cached, since the code cannot change
    under a running process.
    """
    try:
        recorded = BUILD_COMMIT_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        recorded = ""
    if recorded:
        return recorded
    return _git_commit(Path(__file__).resolve().parent) or NOT_RECORDED


def _git_commit(folder: Path) -> str:
    """HEAD of the git checkout holding ``folder`` ("" when there is none)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()

    try:
        # a copy of the tree inside some other checkout is not that checkout's code
        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if not (top / "core" / "version.py").is_file() or top != folder.parent:
            return ""
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError, ValueError):
        return ""  # no git, not a checkout, or git failed: not recorded
    return commit + ("-dirty" if changed else "")
