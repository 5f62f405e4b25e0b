"""Every ``xfr ... --help`` answers: exit 0, usage on stdout, no torch imported.

The command paths come from the real parser (``core.cli.build_parser()``), so a
command added later is checked without touching this file.  ``xfr report --help``
once failed with a usage error ("--out is required") and was patched in ``main``;
walking every path keeps any command from failing the same way.

Run as a script (``python tests/cli/test_cli_help.py``) it asks every ``--help``
in one process and prints, as JSON, each answer and the modules that were loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "cv2", "dlib", "onnxruntime", "matplotlib", "PIL")


def command_paths(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """Every command path below ``parser`` (("case",), ("case", "new"), ...).

    A parser's sub-commands are argparse's sub-parsers plus its ``verbs``: the
    commands ``core.cli.common.CommandParser`` chooses by the first word
    (``xfr report verify`` beside ``xfr report CASE``).
    """
    children: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children.update(action.choices)
    children.update(getattr(parser, "verbs", {}))
    paths: list[tuple[str, ...]] = []
    for name, child in children.items():
        paths.append((name,))
        paths += [(name, *below) for below in command_paths(child)]
    return paths


def ask_help(path: tuple[str, ...]) -> dict[str, object]:
    """``core.cli.main([*path, "--help"])``: its exit code, stdout and stderr."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: object = "returned without exiting"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*path, "--help"])
        except SystemExit as exit_:
            code = exit_.code
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def _paths() -> list[tuple[str, ...]]:
    from core.cli import build_parser

    return command_paths(build_parser())


def check_answer(path: tuple[str, ...], answer: dict[str, object]) -> None:
    shown = " ".join(path)
    assert answer["code"] == 0, f"xfr {shown} --help: exit {answer['code']}: " + str(
        answer["err"]
    )
    out = str(answer["out"])
    assert out.startswith(f"usage: xfr {shown}"), f"xfr {shown} --help printed {out!r}"
    assert answer["err"] == "", f"xfr {shown} --help wrote to stderr"


def test_the_walk_finds_every_command_level():
    paths = set(_paths())
    # one of each kind: a top-level command, a sub-parser's, a sub-sub-parser's,
    # and a verb beside a positional argument
    assert {("case",), ("case", "new"), ("eval", "models"), ("report", "verify")} <= (
        paths
    )
    assert ("train", "ecloss") in paths and ("identity", "new") in paths
    assert len(paths) >= 30, sorted(paths)


@pytest.mark.parametrize("path", _paths(), ids=" ".join)
def test_every_command_answers_help(path):
    check_answer(path, ask_help(path))


def test_top_level_help_and_version():
    answer = ask_help(())
    assert answer["code"] == 0 and str(answer["out"]).startswith("usage: xfr ")
    for path in _paths():
        if len(path) == 1:
            assert path[0] in str(answer["out"]), f"xfr --help does not list {path[0]}"


@pytest.mark.slow
def test_no_help_imports_torch():
    """All the ``--help`` answers in one fresh process: nothing heavy is loaded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(Path(__file__))],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
        env=env,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["answers"]) == len(_paths()) + 1
    for shown, answer in result["answers"].items():
        if shown:
            check_answer(tuple(shown.split(" ")), answer)
    heavy = sorted(m for m in result["modules"] if m.split(".")[0] in HEAVY)
    assert heavy == [], f"asking every --help imported {heavy}"


def _report_every_help() -> None:
    answers = {" ".join(path): ask_help(path) for path in [(), *_paths()]}
    print(json.dumps({"answers": answers, "modules": sorted(sys.modules)}))


if __name__ == "__main__":
    _report_every_help()
