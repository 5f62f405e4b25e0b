"""``xfr identity ...`` and ``xfr report ...``: examiner identities, signed reports.

Passwords are never taken from the command line (it ends up in shell histories)
and never stored.  Each command that opens an identity takes its password from,
in this order: ``--password-file FILE`` (the file's first line, as openssl's
``-passin file:``), the ``XFR_PASSWORD`` environment variable, or a prompt on the
terminal when there is one.  A countersigner's identity has its own
``--countersign-password-file`` and ``XFR_COUNTERSIGN_PASSWORD``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from core.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandParser,
    load_model,
    progress_printer,
)
from core.errors import BadInputError

PASSWORD_ENV = "XFR_PASSWORD"
COUNTERSIGN_PASSWORD_ENV = "XFR_COUNTERSIGN_PASSWORD"
PASSWORD_FILE_HELP = (
    "read the identity's password from the first line of FILE (keep it readable "
    f"by you only); default: ${PASSWORD_ENV}, else a prompt on the terminal"
)


@dataclass(frozen=True)
class PasswordSource:
    """Where a password may come from besides the terminal."""

    file: str | None
    option: str = "--password-file"
    env_var: str = PASSWORD_ENV


def read_password_file(path: str | Path) -> str:
    """The first line of a password file, without its line ending."""
    path = Path(path)
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise BadInputError(
            f"cannot read the password file ({exc.strerror})", path
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError("the password file is not UTF-8 text", path) from None
    password = text.split("\n", 1)[0].removesuffix("\r")
    if not password:
        raise BadInputError(
            "the password file is empty (the password is its first line)", path
        )
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        # As ssh does for keys: say so, but a lab's shared setup may need it.
        print(
            f"xfr: warning: {path}: other users can read this password file "
            f"(chmod 600 {path})",
            file=sys.stderr,
        )
    return password


def obtain_password(
    identity: str | Path, source: PasswordSource, confirm: bool = False
) -> str:
    """The password for ``identity``: file, then environment, then the terminal."""
    if source.file is not None:
        return read_password_file(source.file)
    from_env = os.environ.get(source.env_var)
    if from_env is not None:
        if not from_env:
            raise BadInputError(f"{source.env_var} is set but empty", identity)
        return from_env
    if not sys.stdin.isatty():
        raise BadInputError(
            f"no terminal to ask the password: give {source.option} FILE or set "
            f"{source.env_var}",
            identity,
        )
    return ask_password(f"Password for {identity}: ", confirm)


def ask_password(prompt: str, confirm: bool = False) -> str:
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat the password: ") != password:
            raise BadInputError("the two passwords differ")
    except EOFError:
        raise BadInputError(
            "no password given (the input ended at the prompt)"
        ) from None
    return password


def cmd_identity_new(args: argparse.Namespace) -> int:
    from core.report.signing import create_identity

    if Path(args.out).exists():  # say so before asking for a password
        raise BadInputError("file exists; an identity is never overwritten", args.out)
    # A password from a file or the environment was typed once, on purpose.
    password = obtain_password(
        args.out, PasswordSource(args.password_file), confirm=True
    )
    if len(password) < 8:
        raise BadInputError("use a password of at least 8 characters", args.out)
    info = create_identity(
        args.name, Path(args.out), password,
        organisation=args.organisation, email=args.email,
    )  # fmt: skip
    payload = {
        "path": str(args.out),
        "name": info.name,
        "fingerprint_sha256": info.fingerprint_sha256,
        "valid_until": info.not_after.isoformat(),
        "self_signed": info.self_signed,
    }
    print(
        json.dumps(payload, indent=2)
        if args.json
        else f"created {args.out}: self-signed identity of {info.name}\n"
        f"certificate SHA-256 fingerprint: {info.fingerprint_sha256}\n"
        "Give verifiers this fingerprint (or 'xfr identity export') so that they "
        "can trust your signatures."
    )
    return EXIT_OK


def cmd_identity_export(args: argparse.Namespace) -> int:
    from core.report.signing import export_certificate

    info = export_certificate(
        Path(args.p12),
        obtain_password(args.p12, PasswordSource(args.password_file)),
        Path(args.out),
    )
    print(f"wrote {args.out} (certificate of {info.name}, SHA-256 "
          f"{info.fingerprint_sha256})")  # fmt: skip
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from core.case.store import Case
    from core.report.api import Signer, generate_report
    from core.report.build import ReportRequest

    comparisons = []
    for item in args.comparison or []:
        probe, sep, gallery = item.partition(":")
        if not sep or not probe or not gallery:
            raise BadInputError(f"--comparison needs PROBE:GALLERY, got {item!r}")
        comparisons.append((probe, gallery))
    sources = {
        "sign": PasswordSource(args.password_file),
        "countersign": PasswordSource(
            args.countersign_password_file,
            "--countersign-password-file",
            COUNTERSIGN_PASSWORD_ENV,
        ),
    }
    signers = {}
    for role, path in (("sign", args.sign), ("countersign", args.countersign)):
        if path:
            signers[role] = Signer(Path(path), obtain_password(path, sources[role]))
    request = ReportRequest(
        comparisons=comparisons, explanation_ids=args.explanation or ()
    )
    model = None
    if not args.no_faithfulness:
        with Case.open(args.case, read_only=True) as case:
            model_ids = {c.model_id for c in case.comparisons()}
        if len(model_ids) == 1:
            model = load_model(model_ids.pop(), args.device)
    with Case.open(args.case, user=args.user) as case:
        outcome = generate_report(
            case,
            args.out,
            request,
            sign=signers.get("sign"),
            countersign=signers.get("countersign"),
            timestamp_url=args.timestamp_url,
            model=model,
            progress=progress_printer("report", args.json),
        )
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        signed = ", ".join(outcome.signed_by) or "not signed"
        print(
            f"wrote {outcome.path}: report {outcome.report_id}, {outcome.pages} pages, "
            f"{signed}\nSHA-256 {outcome.sha256} (recorded in the case's audit trail)"
        )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from core.case.store import Case
    from core.report.api import verify_report
    from core.report.signing import load_certificate

    trust = []
    for item in args.trust or []:
        password = (
            obtain_password(item, PasswordSource(args.password_file))
            if item.lower().endswith((".p12", ".pfx"))
            else None
        )
        trust.append(load_certificate(Path(item), password))
    if args.case:
        with Case.open(args.case, read_only=True) as case:
            check = verify_report(args.report, trust=trust, case=case)
    else:
        check = verify_report(args.report, trust=trust)
    if args.json:
        print(json.dumps(check.to_dict(), indent=2))
    else:
        print(f"report {check.report_id or '(no XFR manifest)'}: "
              f"{'OK' if check.ok else 'NOT OK'}")  # fmt: skip
        if not check.signatures:
            print("  not signed: the report can have been changed without trace")
        for status in check.signatures:
            print(f"  {status.field_name}: {status.summary}")
        if check.case_checked:
            print(
                "  evidence: "
                + ("matches the case" if not check.evidence_problems else "MISMATCH")
            )
            for problem in check.evidence_problems:
                print(f"    {problem}")
            if check.changes_since:
                print(
                    f"  the case has changed since this report: "
                    f"{len(check.changes_since)} later audit entr"
                    f"{'y' if len(check.changes_since) == 1 else 'ies'}"
                )
                for change in check.changes_since:
                    print(f"    {change}")
            elif not check.evidence_problems:
                print("  the case is unchanged since this report")
        elif not args.case:
            print("  evidence not compared (give --case CASE)")
    return EXIT_OK if check.ok else EXIT_FAILED


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``identity`` and ``report``."""
    identity = commands.add_parser("identity", help="examiner signing identities")
    sub = identity.add_subparsers(dest="identity_command", required=True)
    new = sub.add_parser("new", help="create a self-signed examiner identity (.p12)")
    new.add_argument("--name", required=True, help="the examiner's full name")
    new.add_argument("--out", required=True, help="identity file to create (.p12)")
    new.add_argument("--organisation", default="")
    new.add_argument("--email", default="")
    new.add_argument(
        "--password-file", metavar="FILE",
        help="the new identity's password (at least 8 characters), from the first "
        f"line of FILE; default: ${PASSWORD_ENV}, else asked twice on the terminal",
    )  # fmt: skip
    new.add_argument("--json", action="store_true")
    new.set_defaults(run=cmd_identity_new)
    export = sub.add_parser("export", help="write an identity's public certificate")
    export.add_argument("p12")
    export.add_argument("--out", required=True, help="certificate file (.pem)")
    export.add_argument("--password-file", metavar="FILE", help=PASSWORD_FILE_HELP)
    export.set_defaults(run=cmd_identity_export)

    report = cast(  # build_parser's parsers are all CommandParsers
        CommandParser,
        commands.add_parser(
            "report",
            help="write a case's PDF report; 'xfr report verify REPORT' checks one",
            description="write the examiner's report of a case as PDF "
            "('xfr report verify REPORT' checks one)",
        ),
    )
    _add_report_arguments(report)
    report.set_defaults(run=_build)
    verify = report.add_verb(
        "verify",
        description="check a report's signatures and, with --case, its evidence "
        "hashes against the case; exit 0 only when everything holds",
    )
    _add_verify_arguments(verify)
    verify.set_defaults(run=_verify)


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfr report CASE --out PDF ...``."""
    parser.add_argument("case", help="case folder")
    parser.add_argument("--out", required=True, help="report.pdf (must not exist)")
    parser.add_argument(
        "--comparison", action="append", metavar="PROBE:GALLERY",
        help="e.g. Q1:K3, on the current faces (repeatable; default: every explained "
        "comparison on current faces)",
    )  # fmt: skip
    parser.add_argument("--explanation", action="append", type=int, metavar="ID")
    parser.add_argument("--sign", metavar="ID.p12", help="examiner's identity")
    parser.add_argument(
        "--countersign",
        metavar="ID.p12",
        help="the verifier's (the report says whether a verification is recorded)",
    )
    parser.add_argument(
        "--password-file", metavar="FILE", help="for --sign: " + PASSWORD_FILE_HELP
    )
    parser.add_argument(
        "--countersign-password-file", metavar="FILE",
        help="the same for --countersign; default: "
        f"${COUNTERSIGN_PASSWORD_ENV}, else a prompt on the terminal",
    )  # fmt: skip
    parser.add_argument("--timestamp-url", help="RFC 3161 time-stamp server")
    parser.add_argument(
        "--no-faithfulness",
        action="store_true",
        help="do not check maps that have no stored per-pair faithfulness check "
        "(faster; checks already kept in the case are still shown, the other maps "
        "say 'not checked')",
    )
    parser.add_argument(
        "--device", default="auto", help="for the faithfulness checks and figures"
    )
    parser.add_argument("--user", help="name recorded in the audit trail")
    parser.add_argument("--json", action="store_true")


def _add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfr report verify PDF ...``."""
    parser.add_argument("report", help="report.pdf")
    parser.add_argument("--case", help="the case folder the report is about")
    parser.add_argument(
        "--trust", action="append", metavar="CERT",
        help="certificate to trust (.pem/.cer, or an identity .p12); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--password-file", metavar="FILE",
        help="for a .p12 given to --trust: " + PASSWORD_FILE_HELP,
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
