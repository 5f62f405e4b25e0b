"""``xfr processing ops`` and ``xfr case process|processed``: logged image
processing from the command line (issue 21).

``processing ops`` lists the registered operations and their parameters;
``case process`` applies a chain of ``--op`` steps to an exhibit and stores the
result as a derived exhibit (Q1 -> Q1.1) with its processing record;
``case processed`` lists the processed exhibits and, with ``--check``, re-runs each
chain on its stored source and compares the pixels (exit 1 when any differ).
Everything goes through ``core.case.workflow`` and ``case.derivations``, as the
GUI does; each failure is one line.  Building the parser imports nothing heavy:
the handlers import the processing code they run.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import TYPE_CHECKING, Any

from core.cli.common import EXIT_OK, EXIT_TAMPERED, open_case, progress_printer
from core.cli.video import in_case
from core.errors import BadInputError

if TYPE_CHECKING:
    from core.case.derivations import Derivation, DerivationCheck
    from core.case.store import Case
    from core.params import Param
    from core.processing import OperationInfo

WIDTH = 79  # the text output fits an 80-column terminal
NO_OP = (
    "give at least one --op OP[:name=value,...], e.g. --op levels:gamma=1.2 "
    "(`xfr processing ops` lists the operations)"
)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent
    ) or [indent.rstrip()]


# ---- processing ops ----------------------------------------------------------------
def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "auto" if value is None else str(value)


def param_summary(param: Param) -> str:
    """``int, default 0, 0..254`` / ``str, default edge, one of: edge, zero``."""
    parts = [param.type.__name__, f"default {_shown(param.default)}"]
    if param.choices:
        parts.append("one of: " + ", ".join(str(c) for c in param.choices))
    elif param.minimum is not None or param.maximum is not None:
        low = "" if param.minimum is None else f"{param.minimum:g}"
        high = "" if param.maximum is None else f"{param.maximum:g}"
        parts.append(f"range {low}..{high}")
    if param.optional:
        parts.append("may be auto")
    return ", ".join(parts)


def operation_lines(info: OperationInfo) -> list[str]:
    """What ``xfr processing ops`` says of one operation, within 80 columns."""
    head = (
        f"{info.op_id} - {info.display_name} ({info.category}, version {info.version})"
    )
    lines = _wrapped(head, "")
    lines += _wrapped(info.description, "    ")
    lines += _wrapped(f"implementation: {info.implementation}", "    ")
    if info.needs_frames:
        lines += _wrapped(
            "reads the neighbouring frames of the video a frame exhibit was taken "
            "from: first step only, on a frame exhibit",
            "    ",
        )
    if not info.params:
        lines.append("    no parameters")
    for param in info.params:
        lines += _wrapped(f"{param.name}: {param_summary(param)}", "    ")
        lines += _wrapped(param.description, "        ")
    return lines


def cmd_ops(args: argparse.Namespace) -> int:
    from core.processing import infos

    listed = infos()
    payload = {"operations": [info.to_dict() for info in listed]}
    blocks = ["\n".join(operation_lines(info)) for info in listed]
    usage = (
        "Apply them with `xfr case process CASE MARK --op OP:name=value,... "
        "[--op ...]`; a parameter not given takes its default."
    )
    text = "\n\n".join([*blocks, "\n".join(_wrapped(usage, ""))])
    _emit(args, payload, text)
    return EXIT_OK


# ---- case process --------------------------------------------------------------------
def _refuse_video(case: Case, mark: str) -> None:
    """A video is not an image exhibit: say what to process instead."""
    if not mark.strip().upper().startswith("V"):
        return
    try:
        video = case.videos.video(mark)
    except BadInputError:
        return  # not a video: the exhibit look-up names what there is
    raise BadInputError(
        f"{video.mark} is a video; processing applies to an image exhibit: take a "
        f"frame first (`xfr case frames CASE {video.mark} --track T1 --best 1`) and "
        "process the frame exhibit"
    )


def _hash_lines(derivation: Derivation, file_sha256: str | None) -> list[str]:
    # SHA-256s of: short labels, so that each line fits 80 columns whole
    rows = [
        ("source file", derivation.source_sha256),
        ("source pix", derivation.source_pixels_sha256),
        ("output pix", derivation.output_sha256),
    ]
    if file_sha256:
        rows.append(("output PNG", file_sha256))
    return ["  SHA-256s of:"] + [f"  {label:<11} {digest}" for label, digest in rows]


def _step_lines(derivation: Derivation) -> list[str]:
    return [
        wrapped
        for line in derivation.step_lines()
        for wrapped in textwrap.wrap(
            line, WIDTH, initial_indent="  ", subsequent_indent="     "
        )
    ]


def _made_with(derivation: Derivation) -> str:
    """Who made it, when, with which versions (the processor features the
    libraries used are in the --json output: a long list)."""
    libraries = ", ".join(
        f"{k} {v}"
        for k, v in sorted(derivation.libraries.items())
        if not k.endswith(" cpu")
    )
    return (
        f"made {derivation.created} by {derivation.created_by}, XFR "
        f"{derivation.software_version}; {libraries}"
    )


def cmd_process(args: argparse.Namespace) -> int:
    if not args.op:
        raise BadInputError(NO_OP)
    from core.case import workflow
    from core.processing import check_chain, parse_step

    steps = [parse_step(text) for text in args.op]  # refused before the case opens
    check_chain(steps)
    with open_case(args) as case, in_case(args):
        _refuse_video(case, args.mark)
        source = case.exhibit(args.mark)
        exhibit = workflow.derive_exhibit(
            case,
            source.mark,
            steps,
            detect=not args.no_detect,
            progress=progress_printer("processing", args.json, style="step"),
        )
        derivation = case.derivations.derivation(exhibit.mark)
        if derivation is None:  # pragma: no cover - derive always records one
            raise BadInputError(f"{exhibit.mark} was stored without its record")
        faces = None if args.no_detect else [f.label for f in case.faces(exhibit.mark)]
        lineage = case.derivations.lineage_marks(exhibit.mark)
        note = workflow.derived_note(case, exhibit.mark)
    payload = derivation.to_dict() | {
        "exhibit": exhibit.mark,
        "file_sha256": exhibit.sha256,
        "lineage": lineage,
        "faces": faces,
        "note": note,
    }
    from core import wording

    lines = [
        f"{exhibit.mark}: processed copy of {source.mark} ({exhibit.role}), "
        f"{len(steps)} step(s); lineage {wording.derivation_lineage_text(lineage)}",
        *_step_lines(derivation),
        *_hash_lines(derivation, exhibit.sha256),
        "  faces: "
        + (
            "not looked for (--no-detect)"
            if faces is None
            else (", ".join(faces) if faces else "none found")
        ),
    ]
    if note:
        lines += _wrapped(note, "  ")
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


# ---- case processed ------------------------------------------------------------------
def _listed(case: Case, mark: str | None) -> list[Derivation]:
    """Every processed exhibit; of a processed MARK, that one; of an original
    MARK, every processed exhibit descending from it."""
    if mark is None:
        return case.derivations.derivations()
    exhibit = case.exhibit(mark)
    own = case.derivations.derivation(exhibit.mark)
    if own is not None:
        return [own]
    return [
        d
        for d in case.derivations.derivations()
        if case.derivations.original(d.mark) == exhibit.mark
    ]


def derivation_lines(case: Case, derivation: Derivation) -> list[str]:
    lineage = case.derivations.lineage_marks(derivation.mark)
    from core import wording

    exhibit = case.exhibit(derivation.mark)
    lines = [
        f"{derivation.mark}: processed copy of {derivation.source}; lineage "
        f"{wording.derivation_lineage_text(lineage)}",
        *_step_lines(derivation),
        *_hash_lines(derivation, exhibit.sha256),
    ]
    return lines + _wrapped(_made_with(derivation), "  ")


def check_lines(check: DerivationCheck) -> list[str]:
    lines = (
        [f"{check.mark}: intact (re-run: the same pixels, bit for bit)"]
        if check.ok
        else [f"problem: {check.mark}: {p}" for p in check.problems]
    )
    return lines + [f"warning: {check.mark}: {w}" for w in check.warnings]


def cmd_processed(args: argparse.Namespace) -> int:
    with open_case(args, read_only=True) as case, in_case(args):
        listed = _listed(case, args.mark)
        entries = [
            d.to_dict()
            | {
                "file_sha256": case.exhibit(d.mark).sha256,
                "lineage": case.derivations.lineage_marks(d.mark),
            }
            for d in listed
        ]
        text = [line for d in listed for line in derivation_lines(case, d)]
        altered = {
            d.mark: problem
            for d in listed
            if (problem := case.derivations.record_problem(d.mark))
        }
        checks = [case.derivations.check(d.mark) for d in listed] if args.check else []
    payload: dict[str, Any] = {"processed": entries}
    if not listed:
        where = f" of {args.mark.upper()}" if args.mark else " in the case"
        text = [
            f"no processed exhibits{where} (make one with `xfr case process CASE "
            "Q1 --op levels:gamma=1.2`)"
        ]
    intact = all(c.ok for c in checks) and not altered
    if altered:  # listed as stored, and said to be so
        payload["altered_records"] = altered
        text += [
            f"warning: {mark}: the record above is not what the audit log recorded "
            f"({why}); run `xfr case verify`"
            for mark, why in altered.items()
        ]
    if args.check:
        payload |= {"intact": intact, "checks": [c.to_dict() for c in checks]}
        text += [line for c in checks for line in check_lines(c)]
    _emit(args, payload, "\n".join(text))
    return EXIT_OK if intact else EXIT_TAMPERED


# ---- parsers -------------------------------------------------------------------------
def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``processing`` and its ``ops``."""
    processing = commands.add_parser(
        "processing",
        help="image processing operations (crop, levels, CLAHE, ...)",
        description="The registered non-generative image processing operations; "
        "apply them with 'xfr case process'.",
    )
    sub = processing.add_subparsers(
        dest="processing_command", required=True, metavar="COMMAND"
    )
    ops = sub.add_parser(
        "ops",
        help="every operation: id, version, implementation, parameters",
        description="List every processing operation: its id, name, category, "
        "version, the library call it uses, what it does to the pixels, and each "
        "parameter's type, default and range.",
    )
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(run=cmd_ops)


def add_processing_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_case: argparse.ArgumentParser,
) -> None:
    """Register ``xfr case process`` and ``xfr case processed``."""
    process = sub.add_parser(
        "process",
        parents=[with_case],
        help="apply processing steps to an exhibit: a new, derived exhibit",
        description="Apply the --op steps, in the order given, to exhibit MARK and "
        "store the result as a new exhibit of the same role (Q1 -> Q1.1, a lossless "
        "PNG) with its processing record: source and output hashes, the chain, the "
        "software and library versions.  MARK itself is never changed.  "
        "'xfr processing ops' lists the operations and their parameters.",
    )
    process.add_argument("mark", help="the exhibit to process, e.g. Q1")
    process.add_argument(
        "--op",
        action="append",
        metavar="OP[:name=value,...]",
        help="one step, e.g. levels:black=10,gamma=1.2 (repeatable, applied in "
        "order; a list value keeps its commas)",
    )
    process.add_argument(
        "--no-detect",
        action="store_true",
        help="do not look for faces on the new exhibit",
    )
    process.set_defaults(run=cmd_process)

    processed = sub.add_parser(
        "processed",
        parents=[with_case],
        help="the processed exhibits: lineage, steps, hashes; --check re-runs them",
        description="List the processed (derived) exhibits: source, lineage, each "
        "step, the hashes, who made them and when, with which versions.  MARK: that "
        "processed exhibit, or every processed exhibit made from original MARK.  "
        "--check re-runs each chain on its stored source and compares the pixels "
        "(exit 1 when any differ).",
    )
    processed.add_argument("mark", nargs="?", help="an exhibit, e.g. Q1 or Q1.1")
    processed.add_argument(
        "--check", action="store_true", help="re-run every chain and compare"
    )
    processed.set_defaults(run=cmd_processed)
