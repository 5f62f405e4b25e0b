"""``xfr self-test``: check this installation end to end (see :mod:`core.selftest`).

Exit code 0 when every step passed (skipped steps do not count), 1 otherwise; the
summary names each failed step and its message.
"""

from __future__ import annotations

import argparse
import json
import sys


def cmd_self_test(args: argparse.Namespace) -> int:
    from core.selftest import run_self_test

    def progress(done: int, total: int, message: str) -> None:
        if not args.json and done < total and sys.stderr.isatty():
            line = f"\rself-test {done + 1}/{total}: {message:<50}"
            print(line, end="", file=sys.stderr)

    report = run_self_test(args.keep, progress, device=args.device)
    if not args.json and sys.stderr.isatty():
        print("\r" + " " * 72 + "\r", end="", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_summary())
    return report.exit_code


def add_selftest_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``xfr self-test`` on the CLI's sub-command parser."""
    self_test = commands.add_parser(
        "self-test",
        help="check this installation: model, demo case, explanations, signed report",
        description="Load the model, build the demo case in a temporary folder, "
        "check that Q1 x K1 is accepted and Q1 x K2 rejected, run FGGB and a "
        "perturbation method, build, sign and verify a report, and check the shipped "
        "calibration. Exit code 0 when every step passed.",
    )
    self_test.add_argument("--json", action="store_true", help="the report as JSON")
    self_test.add_argument(
        "--keep",
        metavar="DIR",
        help="write the work files (case, report, identity) to this new or empty "
        "folder and keep them (default: a temporary folder, removed)",
    )
    self_test.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where the model runs (auto: CUDA when available)",
    )
    self_test.set_defaults(run=cmd_self_test)
