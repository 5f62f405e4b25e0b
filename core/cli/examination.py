"""``xfr case settings|analysis|features|evaluate|unmask|verification|acev``: the
examiner's ACE-V records from the command line (issue 19 item 6).

Every command reads or writes the same records as the GUI, through
``core.case.examination.Examination``, so each change is one audited transaction;
each has ``--json``; each failure is one line naming the case folder.

Blind verification: a second examiner gives ``--blind --user NAME`` on every
command (``analysis``, ``features``, ``evaluate``, ``unmask``, ``acev``, and
``compare``/``explain``/``log``).  The case is then opened as
``case.examination(blind=True)``: the first examiner's records are neither shown
nor used, and the verifier's are written as the verifier's.  The first command that
writes in a blind session records its start in the audit trail, once per verifier.
``xfr case verification CASE Q K --record`` then compares the two evaluations
(agreement or disagreement), and ``--resolution``/``--resolved-level`` record how a
disagreement was resolved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.common import EXIT_OK, add_blind_options, open_case, split_assignment
from core.errors import BadInputError, printable

if TYPE_CHECKING:
    from core.case.acev import AcevRecord, ConclusionScale, Worksheet
    from core.case.examination import Examination
    from core.case.store import Case

UNMASK_HINT = (
    "record the analysis and evaluation (xfr case analysis, xfr case evaluate) "
    "and run `xfr case unmask {case} {q} {k}` first"
)


# ---- shared ------------------------------------------------------------------------
def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


@contextlib.contextmanager
def in_case(args: argparse.Namespace) -> Iterator[None]:
    """The examination's refusals name no file; on the command line each names the
    case folder, like every other error."""
    try:
        yield
    except BadInputError as error:
        if error.path is not None:
            raise
        raise BadInputError(error.reason, args.case) from None


def examination(case: Case, args: argparse.Namespace, *, writing: bool) -> Examination:
    """This session's examination: blind for a verifier (``--blind``).  A blind
    session's first write audits its start, once per verifier."""
    blind = bool(getattr(args, "blind", False))
    if blind and not args.user:
        raise BadInputError("--blind needs --user NAME (the verifier's name)")
    exam = case.examination(blind=blind)
    # any write in a blind session comes after its start (a comparison recorded
    # first would make the verification "open": core.case.examination)
    if blind and (writing or not case.read_only) and not exam.blind_session_started():
        exam.start_blind_session()
    return exam


def _label(case: Case, face: str) -> str:
    return case.face(face).label


def _pair(case: Case, questioned: str, known: str) -> tuple[str, str]:
    """The pair's labels, questioned then known (checked for reading too: a
    swapped pair would only print "nothing recorded")."""
    labels = []
    for name, role, kind in (
        (questioned, "probe", "questioned (probe)"),
        (known, "gallery", "known (gallery)"),
    ):
        found = case.face(name)
        if case.exhibit(found.mark).role != role:
            raise BadInputError(f"{found.label} is not a {kind} face")
        labels.append(found.label)
    return labels[0], labels[1]


def _record_json(record: AcevRecord | None) -> dict[str, Any] | None:
    return record.to_dict() if record is not None else None


def _mode(exam: Examination) -> str:
    return " (blind verification)" if exam.blind else ""


# ---- settings ----------------------------------------------------------------------
def cmd_settings(args: argparse.Namespace) -> int:
    from core.case.acev import Propositions

    scale = _read_scale(args.scale) if args.scale else None
    propositions = {
        key: value
        for key in ("request", "first", "second", "population")
        if (value := getattr(args, key)) is not None
    }
    if args.reason and args.sequential_unmasking is None:
        raise BadInputError(
            "--reason goes with --sequential-unmasking on|off", args.case
        )
    changing = args.sequential_unmasking is not None or scale or propositions
    with open_case(args, read_only=not changing) as case, in_case(args):
        exam = examination(case, args, writing=bool(changing))
        if args.sequential_unmasking is not None:
            exam.set_sequential_unmasking(
                args.sequential_unmasking == "on", args.reason or ""
            )
        if scale is not None:
            exam.set_scale(scale)
        if propositions:
            current = exam.settings().propositions.to_dict()
            exam.set_propositions(Propositions.from_dict(current | propositions))
        settings = exam.settings()
        changes = [e.to_dict() for e in exam.setting_changes()]
    payload = {**settings.to_dict(), "changes": changes}
    p = settings.propositions
    lines = [
        "sequential unmasking: "
        + ("on" if settings.sequential_unmasking else "off")
        + ("" if settings.recorded else " (no settings recorded: an older case)"),
        f"request: {p.request or 'not recorded'}",
        f"first proposition: {p.first or 'not recorded'}",
        f"second proposition: {p.second or 'not recorded'}",
        f"relevant population: {p.population or 'not recorded'}",
        *_scale_lines(settings.scale),
    ]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def _read_scale(name: str) -> ConclusionScale:
    from core.case.acev import ConclusionScale

    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInputError(f"cannot read the scale ({error.strerror})", path) from None
    except ValueError as error:
        raise BadInputError(f"the scale is not valid JSON ({error})", path) from None
    try:
        return ConclusionScale.from_dict(data)
    except BadInputError as error:
        raise BadInputError(error.reason, path) from None


def _scale_lines(scale: ConclusionScale) -> list[str]:
    lines = [f"conclusion scale: {scale.name} ({scale.id})"]
    if scale.source:
        lines.append(f"  source: {scale.source}")
    lines += [
        f"  {level.code:<26} {level.words}"
        + (f"  (LR {level.likelihood_ratio})" if level.likelihood_ratio else "")
        for level in scale.levels
    ]
    return lines


# ---- analysis ----------------------------------------------------------------------
def cmd_analysis(args: argparse.Namespace) -> int:
    from core.case.acev import SUITABILITY, Analysis, component_key

    details = (args.reasons, args.factor, args.visible, args.not_visible, args.notes)
    if args.suitability is None and any(v is not None for v in details):
        raise BadInputError("recording an analysis needs --suitability", args.case)
    writing = args.suitability is not None
    with open_case(args, read_only=not writing) as case, in_case(args):
        exam = examination(case, args, writing=writing)
        label = _label(case, args.face)
        record = None
        if writing:
            analysis = Analysis(
                args.suitability,
                printable(args.reasons or "").strip(),
                tuple(args.factor or ()),
                tuple(component_key(c) for c in args.visible or ()),
                tuple(component_key(c) for c in args.not_visible or ()),
                printable(args.notes or "").strip(),
            )
            record = exam.record_analysis(label, analysis)
        current = exam.analysis(label)
    payload = {
        "face": label,
        "role": exam.role,
        "analysis": current.to_dict() if current else None,
        "record": _record_json(record),
    }
    if current is None:
        text = f"{label}: no analysis recorded{_mode(exam)}"
    else:
        text = "\n".join(
            [
                f"{label}: {SUITABILITY[current.suitability]}{_mode(exam)}",
                f"  reasons: {current.reasons or 'not recorded'}",
                f"  image factors: {', '.join(current.factors) or 'none recorded'}",
                f"  visible: {', '.join(current.visible) or 'none recorded'}",
                f"  not visible: {', '.join(current.not_visible) or 'none recorded'}",
                f"  notes: {current.notes or 'none'}",
            ]
        )
        if record is not None:
            text = f"analysis {record.id} recorded\n" + text
    _emit(args, payload, text)
    return EXIT_OK


# ---- features (the worksheet) ------------------------------------------------------
def _feature(target: str, option: str) -> tuple[str, str]:
    """``COMPONENT[:CHARACTERISTIC]`` -> (component key, characteristic)."""
    from core.case.acev import FEATURES, component_key

    name, _, characteristic = target.partition(":")
    key = component_key(name)
    characteristic = characteristic.strip()
    if characteristic:
        known = FEATURES[key].characteristics
        wanted = characteristic.lower()
        match = [c for c in known if c.lower() == wanted]
        if not match:
            raise BadInputError(
                f"{option}: {characteristic!r} is not a characteristic of "
                f"{FEATURES[key].name} (one of: {', '.join(known)})"
            )
        characteristic = match[0]
    return key, characteristic


def _read_worksheet(name: str) -> Worksheet:
    from core.case.acev import Worksheet

    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInputError(
            f"cannot read the worksheet ({error.strerror})", path
        ) from None
    except ValueError as error:
        raise BadInputError(
            f"the worksheet is not valid JSON ({error})", path
        ) from None
    if isinstance(data, dict) and isinstance(data.get("worksheet"), dict):
        data = data["worksheet"]  # what `xfr case features --json` prints
    if not isinstance(data, dict):
        raise BadInputError("a worksheet is a JSON object with observations", path)
    try:
        return Worksheet.from_dict(data)
    except BadInputError as error:
        raise BadInputError(error.reason, path) from None


def merged_worksheet(
    base: Worksheet | None,
    *,
    sets: Sequence[str] = (),
    notes: Sequence[str] = (),
    links: Sequence[str] = (),
    sheet_notes: str | None = None,
) -> Worksheet:
    """``base`` with the command line's ``--set``/``--note``/``--link`` merged in:
    observations not named stay as they were."""
    import dataclasses

    from core.case.acev import FeatureObservation, Worksheet

    items = {
        (o.component, o.characteristic): o for o in (base.observations if base else ())
    }
    for item in sets:
        target, value = split_assignment(
            item, "--set", "COMPONENT[:CHARACTERISTIC]=VALUE"
        )
        key = _feature(target, "--set")
        old = items.get(key)
        items[key] = (
            dataclasses.replace(old, value=value)
            if old
            else FeatureObservation(key[0], value, key[1])
        )
        FeatureObservation.from_dict(items[key].to_dict())  # value checked
    for option, entries in (("--note", notes), ("--link", links)):
        for item in entries:
            target, value = split_assignment(
                item,
                option,
                "COMPONENT[:CHARACTERISTIC]="
                + ("TEXT" if option == "--note" else "q:ID or k:ID"),
            )
            key = _feature(target, option)
            old = items.get(key)
            if old is None:
                raise BadInputError(
                    f"{option} {target}: record its observation first "
                    f"(--set {target}=VALUE)"
                )
            if option == "--note":
                items[key] = dataclasses.replace(old, notes=printable(value).strip())
            else:
                items[key] = _linked(old, value)
    return Worksheet(
        tuple(items.values()),
        printable(sheet_notes).strip()
        if sheet_notes is not None
        else (base.notes if base else ""),
    ).sorted()


def _linked(item: Any, value: str) -> Any:
    import dataclasses

    side, _, number = value.strip().partition(":")
    try:
        annotation = int(number)
    except ValueError:
        annotation = -1
    if side.lower() not in ("q", "k") or annotation < 1:
        raise BadInputError(
            f"--link {item.component}: {value!r} is not q:ID or k:ID (an annotation "
            "number on the questioned or the known image; see xfr case annotate --list)"
        )
    field = "questioned_annotations" if side.lower() == "q" else "known_annotations"
    ids = getattr(item, field)
    if annotation in ids:
        return item
    return dataclasses.replace(item, **{field: (*ids, annotation)})


def cmd_features(args: argparse.Namespace) -> int:
    base_file = _read_worksheet(args.from_file) if args.from_file else None
    writing = bool(
        args.set or args.note or args.link or args.from_file or args.notes is not None
    )
    with open_case(args, read_only=not writing) as case, in_case(args):
        exam = examination(case, args, writing=writing)
        q, k = _pair(case, args.questioned, args.known)
        record = None
        if writing:
            base = base_file or exam.worksheet(q, k)
            sheet = merged_worksheet(
                base,
                sets=args.set or (),
                notes=args.note or (),
                links=args.link or (),
                sheet_notes=args.notes,
            )
            record = exam.record_worksheet(q, k, sheet)
        current = exam.worksheet(q, k)
    payload = {
        "questioned": q,
        "known": k,
        "role": exam.role,
        "worksheet": current.to_dict() if current else None,
        "record": _record_json(record),
    }
    lines = [
        f"worksheet {q} / {k}{_mode(exam)}"
        + (f" (record {record.id}, {record.created})" if record else "")
    ]
    lines += worksheet_lines(current)
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def worksheet_lines(sheet: Worksheet | None) -> list[str]:
    """The worksheet as a table: every component of the feature list, its
    observation or 'not recorded', then its characteristics that were recorded."""
    from core.case.acev import FEATURE_LIST

    if sheet is None:
        return ["  no worksheet recorded (add observations with --set COMPONENT=VALUE)"]
    lines = []
    for component in FEATURE_LIST:
        main = sheet.observation(component.key)
        rows = [(component.name, main)] + [
            (f"  {c}", item)
            for c in component.characteristics
            if (item := sheet.observation(component.key, c)) is not None
        ]
        for name, item in rows:
            if item is None:
                lines.append(f"  {name:<30} not recorded")
                continue
            links = [f"q:{i}" for i in item.questioned_annotations] + [
                f"k:{i}" for i in item.known_annotations
            ]
            lines.append(
                f"  {name:<30} {item.words}"
                + (f"; {item.notes}" if item.notes else "")
                + (f"  [annotations {', '.join(links)}]" if links else "")
            )
    lines.append(f"  notes: {sheet.notes or 'none'}")
    return lines


# ---- evaluation, unmasking, verification -------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.reasoning is not None and args.level is None:
        raise BadInputError("--reasoning goes with --level CODE", args.case)
    writing = args.level is not None
    with open_case(args, read_only=not writing) as case, in_case(args):
        exam = examination(case, args, writing=writing)
        q, k = _pair(case, args.questioned, args.known)
        record = None
        if writing:
            record = exam.record_evaluation(q, k, args.level, args.reasoning or "")
        current = exam.evaluation(q, k)
        scale = exam.settings().scale
    payload = {
        "questioned": q,
        "known": k,
        "role": exam.role,
        "scale": scale.to_dict(),
        "evaluation": current.to_dict() if current else None,
        "record": _record_json(record),
    }
    if current is None:
        head = [f"{q} / {k}: no evaluation recorded{_mode(exam)}"]
    else:
        head = [
            (f"evaluation {record.id} recorded\n" if record else "")
            + f"{q} / {k}: {current.words} ({current.level}){_mode(exam)}",
            f"  reasoning: {current.reasoning or 'not recorded'}",
        ]
    text = "\n".join(head if record else [*head, *_scale_lines(scale)])
    _emit(args, payload, text)
    return EXIT_OK


def cmd_unmask(args: argparse.Namespace) -> int:
    with open_case(args, read_only=False) as case, in_case(args):
        exam = examination(case, args, writing=True)
        q, k = _pair(case, args.questioned, args.known)
        record = exam.unmask(q, k)
    payload = {
        "questioned": q,
        "known": k,
        "role": exam.role,
        "record": record.to_dict(),
    }
    _emit(
        args,
        payload,
        f"{q} / {k}: the model's results are shown from now on{_mode(exam)} "
        f"(unmasked {record.created}, record {record.id})",
    )
    return EXIT_OK


def cmd_verification(args: argparse.Namespace) -> int:
    record_it = bool(args.record or args.resolution or args.resolved_level)
    with open_case(args, read_only=not record_it) as case, in_case(args):
        exam = examination(case, args, writing=record_it)
        q, k = _pair(case, args.questioned, args.known)
        record = None
        if record_it:
            record = exam.record_verification(
                q,
                k,
                resolution=args.resolution or "",
                resolved_level=args.resolved_level or "",
            )
        current = exam.verification(q, k)
        if exam.blind and not exam.records("verification"):
            current = None  # another verifier's outcome would show the first level
    payload = {
        "questioned": q,
        "known": k,
        "verification": current.to_dict() if current else None,
        "record": _record_json(record),
    }
    if current is None:
        text = f"{q} / {k}: no verification recorded"
    else:
        text = "\n".join(
            [
                f"{q} / {k}: {current.mode} verification, {current.outcome}",
                f"  first examiner: {current.examiner_level}",
                f"  verifier: {current.verifier_level}",
                (
                    f"  resolution: {current.resolution} -> {current.resolved_level}"
                    if current.outcome == "disagreement" and current.resolved
                    else "  resolution: "
                    + (
                        "not needed"
                        if current.resolved
                        else "OPEN (record it with "
                        "--resolution TEXT --resolved-level CODE)"
                    )
                ),
            ]
        )
    _emit(args, payload, text)
    return EXIT_OK


# ---- the whole record --------------------------------------------------------------
def cmd_acev(args: argparse.Namespace) -> int:
    if (args.questioned is None) != (args.known is None):
        raise BadInputError("give both faces of the pair (Q K) or neither", args.case)
    with open_case(args, read_only=True) as case, in_case(args):
        exam = examination(case, args, writing=False)
        records = exam.records()
        if args.questioned is not None:
            q, k = _pair(case, args.questioned, args.known)
            pairs = [(q, k)]
            records = [
                r
                for r in records
                if (r.questioned, r.known) == (q, k)
                or (r.stage == "analysis" and (r.questioned == q or r.known == k))
            ]
        else:
            pairs = sorted(
                {(r.questioned, r.known) for r in records if r.known and r.questioned}
            )
        orders = {f"{q} / {k}": exam.seen_order(q, k) for q, k in pairs}
        masked = {f"{q} / {k}": exam.masked(q, k) for q, k in pairs}
    payload = {
        "role": exam.role,
        "blind": exam.blind,
        "records": [r.to_dict() for r in records],
        "order": {
            pair: [step.__dict__ for step in steps] for pair, steps in orders.items()
        },
        "masked": masked,
    }
    lines = [f"ACE-V records{_mode(exam)}:"] + [
        f"  {r.id:>4} {r.created} {r.role:<8} {r.author:<14} {r.stage:<12} {r.faces}"
        for r in records
    ]
    if not records:
        lines.append("  none recorded")
    for pair, steps in orders.items():
        state = "masked" if masked[pair] else "unmasked"
        lines.append(f"order of work, {pair} (model's results {state}):")
        lines += [
            f"  {i}. {s.time} {s.role} {s.author}: {s.what}"
            for i, s in enumerate(steps, 1)
        ] or ["  nothing recorded"]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


# ---- parser --------------------------------------------------------------------------
def add_examination_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_case: argparse.ArgumentParser,
) -> None:
    """Register the ACE-V commands under ``xfr case``."""
    from core.case.acev import IMAGE_FACTORS, OBSERVATIONS, SUITABILITY

    blind = argparse.ArgumentParser(add_help=False)
    add_blind_options(blind)
    pair = argparse.ArgumentParser(add_help=False)
    pair.add_argument("questioned", help="the questioned face, e.g. Q1")
    pair.add_argument("known", help="the known face, e.g. K1")

    settings = sub.add_parser(
        "settings",
        parents=[with_case],
        help="sequential unmasking, the conclusion scale, the propositions",
        description="Without options: print the case's examination settings and "
        "the whole conclusion scale.  Each change is audited.",
    )
    settings.add_argument("--sequential-unmasking", choices=("on", "off"))
    settings.add_argument(
        "--reason", help="why sequential unmasking is turned off (required; recorded)"
    )
    settings.add_argument(
        "--scale",
        metavar="FILE.json",
        help="a lab's conclusion scale (id, name, levels of code, words, support); "
        "declared before the first evaluation",
    )
    settings.add_argument("--request", help="what the examination was asked to answer")
    settings.add_argument("--first", help="the first proposition (same person)")
    settings.add_argument("--second", help="the second proposition (different persons)")
    settings.add_argument("--population", help="the relevant population")
    settings.set_defaults(run=cmd_settings)

    analysis = sub.add_parser(
        "analysis",
        parents=[with_case, blind],
        help="ACE-V analysis of one face (the questioned one first)",
        description="Record the analysis of one image's face, or print the latest "
        "one (no --suitability).  A revision is a new record; none is removed.",
    )
    analysis.add_argument("face", help="the face, e.g. Q1 or K1")
    analysis.add_argument("--suitability", choices=tuple(SUITABILITY))
    analysis.add_argument("--reasons", help="why (needed unless suitable)")
    analysis.add_argument(
        "--factor",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="image factors limiting its use: " + ", ".join(IMAGE_FACTORS),
    )
    analysis.add_argument(
        "--visible", action="extend", nargs="+", metavar="COMP", help="components seen"
    )
    analysis.add_argument(
        "--not-visible",
        action="extend",
        nargs="+",
        metavar="COMP",
        help="components not seen",
    )
    analysis.add_argument("--notes")
    analysis.set_defaults(run=cmd_analysis)

    features = sub.add_parser(
        "features",
        parents=[with_case, blind, pair],
        help="the FISWG / ASTM E3149 feature worksheet of a pair",
        description="Without options: print the worksheet table.  --set, --note, "
        "--link and --notes merge into the latest worksheet and record a new "
        "revision; --from FILE.json starts from a worksheet in a file (as "
        "`--json` prints it).  Observations: " + ", ".join(OBSERVATIONS) + ".",
    )
    features.add_argument(
        "--set",
        action="append",
        metavar="COMPONENT[:CHARACTERISTIC]=VALUE",
        help="an observation, e.g. nose=similar or 'eyes:upper lid and fold=similar'",
    )
    features.add_argument(
        "--note", action="append", metavar="COMPONENT[:CHARACTERISTIC]=TEXT"
    )
    features.add_argument(
        "--link",
        action="append",
        metavar="COMPONENT[:CHARACTERISTIC]=q:ID|k:ID",
        help="link an annotation on the questioned (q) or known (k) image",
    )
    features.add_argument("--from", dest="from_file", metavar="FILE.json")
    features.add_argument("--notes", help="notes on the whole worksheet")
    features.set_defaults(run=cmd_features)

    evaluate = sub.add_parser(
        "evaluate",
        parents=[with_case, blind, pair],
        help="the examiner's conclusion on the case's scale",
        description="Record the evaluation of a pair, or print the scale and the "
        "latest evaluation (no --level).  Recorded after unmasking, it is a "
        "revision and the report says so.",
    )
    evaluate.add_argument("--level", metavar="CODE", help="see `xfr case settings`")
    evaluate.add_argument("--reasoning")
    evaluate.set_defaults(run=cmd_evaluate)

    unmask = sub.add_parser(
        "unmask",
        parents=[with_case, blind, pair],
        help="show the model's results for a pair (after analysis and evaluation)",
        description="Sequential unmasking: the model's score, decision, rank and "
        "explanations of a pair are shown once the questioned face's analysis and "
        "an evaluation of the pair are recorded and the pair is unmasked (audited).",
    )
    unmask.set_defaults(run=cmd_unmask)

    verification = sub.add_parser(
        "verification",
        parents=[with_case, blind, pair],
        help="compare a blind verifier's evaluation with the first examiner's",
        description="Blind verification: the second examiner works with --blind "
        "--user NAME (analysis, features, evaluate) and then records the "
        "verification here (--record): agreement or disagreement.  A disagreement "
        "stays open until --resolution TEXT --resolved-level CODE is recorded.  "
        "Without options: print the verification.",
    )
    verification.add_argument(
        "--record", action="store_true", help="compare the two evaluations now"
    )
    verification.add_argument("--resolution", help="how a disagreement was resolved")
    verification.add_argument("--resolved-level", metavar="CODE")
    verification.set_defaults(run=cmd_verification)

    acev = sub.add_parser(
        "acev",
        parents=[with_case, blind],
        help="every ACE-V record and the order of work",
        description="Every ACE-V record (of the pair Q K, or all) and the order in "
        "which the pair was worked on and its model results seen.  With --blind "
        "--user NAME, only the verifier's own records.",
    )
    acev.add_argument("questioned", nargs="?", help="the questioned face, e.g. Q1")
    acev.add_argument("known", nargs="?", help="the known face, e.g. K1")
    acev.set_defaults(run=cmd_acev)
