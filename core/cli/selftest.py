"""``xfr self-test``: check this installation end to end (see :mod:`core.selftest`).

Exit code 0 when every step passed (skipped steps do not count), 1 otherwise; the
summary names each failed step and its message.
"""

from __future__ import annotations

import argparse
import json

from core.cli.common import progress_printer


def cmd_self_test(args: argparse.Namespace) -> int:
    from core.selftest import run_self_test

    progress = progress_printer("self-test", args.json, "step")
    report = run_self_test(args.keep, progress, device=args.device)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_summary())
    return report.exit_code


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``self-test``."""
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
