"""Building ``xfr``'s parser imports no torch, numpy or science module.

``xfr --version`` and every ``--help`` must answer at once (issue 17: torch alone
took 2.4 s); the handlers import what they run.  The assertions are on module
names, not on time, so that a busy machine cannot fail them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "cv2", "dlib", "onnxruntime", "matplotlib", "PIL")
SCIENCE = ("core.models", "core.explain", "core.metrics.pair_faithfulness")
TORCH_FREE = {"core.models", "core.models.ids"}  # the parsers' default model id

PROBE = """
import json, sys
sys.argv = ["xfr", *json.loads(sys.argv[1])]
import core.cli
try:
    core.cli.main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["case", "--help"],
        ["explain", "--help"],
        ["train", "ecloss", "--help"],
        ["calibrate", "--help"],
        ["channels", "--help"],
        ["self-test", "--help"],
        ["eval", "--help"],
        ["eval", "models", "--help"],
    ],
)
def test_building_the_parser_imports_no_torch_or_science(argv):
    modules = _modules_after(argv)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    science = sorted(
        m for m in modules if m.startswith(SCIENCE) and m not in TORCH_FREE
    )
    assert heavy == [], f"xfr {' '.join(argv)} imported {heavy}"
    assert science == [], f"xfr {' '.join(argv)} imported {science}"


def test_the_parser_has_every_command_without_the_science():
    from core.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"case", "explain", "eval", "report", "self-test", "train"} <= set(commands)
    eval_kinds = commands["eval"]._subparsers._group_actions[0].choices
    assert {"faithfulness", "models", "sanity", "verification"} <= set(eval_kinds)
