"""``xfr case ...``: the case file from the command line (every command has --json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.case_gallery import add_gallery_commands
from core.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_TAMPERED,
    add_blind_options,
    add_trust_model_code,
    load_model_from_args,
    open_case,
    parse_box,
    parse_landmarks,
    parse_params,
    progress_printer,
)
from core.cli.examination import add_examination_commands, examination, in_case
from core.cli.faithfulness import add_faithfulness_options
from core.cli.processing import add_processing_commands
from core.cli.quality import add_quality_command, face_quality_dicts
from core.cli.video import add_video_commands, added_video_line, video_summary_lines
from core.errors import BadInputError
from core.io.atomic import write_atomic
from core.models.ids import DEFAULT_MODEL_ID
from core.progress import ProgressCallback

if TYPE_CHECKING:
    from core.case.examination import Examination
    from core.case.store import Case


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


def _progress(args: argparse.Namespace, label: str) -> ProgressCallback:
    return progress_printer(label, args.json)


# ---- commands ----------------------------------------------------------------------
def cmd_new(args: argparse.Namespace) -> int:
    from core.case.store import Case

    with Case.create(
        args.case,
        args.number,
        args.examiner,
        title=args.title,
        agency=args.agency,
        user=args.user,
        sequential_unmasking=not args.no_sequential_unmasking,
    ) as case:
        info = case.info().to_dict()
    _emit(args, {"case": str(args.case), **info}, f"created case {info['case_number']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from core.case.demo import create_demo_case

    model = None if args.no_compare else load_model_from_args(args)
    # acev: the demo ACE-V case (analysis, worksheet, evaluation, unmasking, a
    # blind verification with a resolved disagreement); passed only when asked,
    # so the plain demo needs nothing new of core.case.demo
    options: dict[str, Any] = {"acev": True} if args.acev else {}
    if args.cctv:  # the video demo (issue 20), likewise passed only when asked
        options["cctv"] = True
    with create_demo_case(args.case, model=model, **options) as case:
        payload = case.snapshot_info()
    _emit(args, payload, f"demo case created in {args.case}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from core import wording
    from core.case import workflow

    with open_case(args, read_only=True) as case:
        payload = case.snapshot_info()
        payload["exhibits"] = [e.to_dict() for e in case.exhibits()]
        processed = {d.mark: d.source for d in case.derivations.derivations()}
        for exhibit in payload["exhibits"]:
            if exhibit["mark"] in processed:  # originals keep their output
                exhibit["processed_from"] = processed[exhibit["mark"]]
        videos = case.videos.videos()
        if videos:  # a case without videos keeps its output as before
            payload["videos"] = [v.to_dict() for v in videos]
        # `info` takes no --blind: this session is the examiner's
        exam = case.examination()
        searches = case.gallery_searches.searches(examination=exam)
        leads = {
            lead.mark: lead for lead in case.gallery_searches.leads(examination=exam)
        }
        if searches:  # a case without gallery searches keeps its output
            payload["gallery_searches"] = [
                {k: v for k, v in s.to_dict().items() if k != "candidates"}
                | {"candidates": len(s.candidates)}
                for s in searches
            ]
        for exhibit in payload["exhibits"]:
            if exhibit["mark"] in leads:
                exhibit["investigative_lead"] = leads[exhibit["mark"]].to_dict()
        # exhibits, not scores: a lead's search score is in `gallery_searches`
        lead_notes = workflow.lead_notes(case, list(leads), examination=None)
    lines = [f"case {payload['case_number']}: {payload['title']}"] + [
        f"  {e['mark']:<4} {e['role']:<8} {e['original_name']}  sha256 {e['sha256']}"
        + (f"  (processed from {e['processed_from']})" if "processed_from" in e else "")
        + (
            f"  (lead: {e['investigative_lead']['search']} rank "
            f"{e['investigative_lead']['rank']})"
            if "investigative_lead" in e
            else ""
        )
        for e in payload["exhibits"]
    ]
    lines += video_summary_lines(videos)
    lines += [
        f"search {s.name}: {s.probe_label} against gallery {s.gallery_uuid} "
        f"(digest {s.short_digest}, {s.gallery_size} templates), top {s.k}, "
        f"{s.created}"
        + (
            ""
            if s.probe_current
            else f" ({wording.gallery_probe_replaced(s.probe_label)})"
        )
        for s in searches
    ]
    lines += [f"note: {note}" for note in lead_notes.values()]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from core.case import workflow

    files = _expand(args.files)
    with open_case(args) as case:
        done = workflow.add_and_detect(
            case,
            files,
            args.role,
            note=args.note,
            detect=not args.no_detect,
            detector=args.detector,
            progress=_progress(args, "intake"),
        )
    intake, faces = done.result, done.faces
    payload = {
        "added": [e.to_dict() | {"faces": faces.get(e.mark)} for e in intake.added],
        "rejected": [r.__dict__ for r in intake.rejected],
        "warnings": list(intake.warnings),
    }
    if intake.videos:
        payload["videos"] = [v.to_dict() for v in intake.videos]
    lines = (
        [added_video_line(v) for v in intake.videos]
        + [
            f"{e.mark:<4} {e.original_name}  ({faces.get(e.mark, '?')} face(s))"
            for e in intake.added
        ]
        + [f"warning: {w}" for w in intake.warnings]
        + [f"rejected: {r.path}: {r.reason}" for r in intake.rejected]
    )
    _emit(args, payload, "\n".join(lines) or "nothing added")
    return EXIT_BAD_INPUT if intake.rejected else EXIT_OK


def _expand(names: list[str]) -> list[Path]:
    """Files, and the files inside folders (sorted, not recursive)."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file()))
        else:
            files.append(path)
    return files


def cmd_faces(args: argparse.Namespace) -> int:
    from core.case import workflow

    changes = (args.correct, args.detect, args.box, args.reject, args.restore)
    with open_case(args, read_only=not (any(changes) or args.reset)) as case:
        if args.detect:
            workflow.detect_faces(case, args.detect, method=args.detector)
        if args.correct:
            points = parse_landmarks(args.landmarks, "--landmarks")
            if points is None:
                raise BadInputError("--correct needs --landmarks x1,y1,...,x5,y5")
            case.correct_face(args.correct, points)
        if args.box:
            box = parse_box(args.bbox, "--bbox")
            if box is None:
                raise BadInputError("--box needs --bbox left,top,right,bottom")
            workflow.place_face_in_box(case, args.box, box)
        if args.reject:
            case.reject_face(args.reject, args.reason)
        if args.restore:
            case.restore_face(args.restore)
        if args.reset:
            case.reset_face(args.reset)
        faces = case.faces()
        rejected = case.rejected_faces()
        history = case.face_history(args.history) if args.history else []
        reasons = case.rejection_reasons() if rejected else {}
        marks = [e.mark for e in case.exhibits()]
        videos = [v.mark for v in case.videos.videos()]
        quality = face_quality_dicts(case, faces) if args.json else {}
        processed = {d.mark: d.source for d in case.derivations.derivations()}
    if args.history:
        payload = {"history": [f.to_dict() for f in history]}
        lines = [
            f"record {f.id:<5} {f.created} {f.created_by}: {f.source}"
            f"{'' if f.superseded else '  (current)'}"
            for f in history
        ]
        _emit(args, payload, "\n".join(lines))
        return EXIT_OK
    payload = {
        "faces": [
            f.to_dict()
            | {"quality": quality.get(f.label)}
            | ({"processed_from": processed[f.mark]} if f.mark in processed else {})
            for f in faces
        ],
        "rejected": [f.to_dict() for f in rejected],
    }
    with_face = {f.mark for f in (*faces, *rejected)}
    without = [m for m in marks if m not in with_face]
    lines = (
        [
            f"{f.label:<6} {f.source:<6} box {', '.join(f'{v:.0f}' for v in f.bbox)}"
            + (
                f"  (on a processed copy of {processed[f.mark]})"
                if f.mark in processed
                else ""
            )
            for f in faces
        ]
        + [
            f"{f.label:<6} rejected: {reasons.get(f.label) or 'not a face'} "
            f"(restore with --restore {f.label})"
            for f in rejected
        ]
        + [f"{m:<6} no face found (place landmarks with --correct)" for m in without]
        + [
            f"{m:<6} video: its faces are in its tracks (xfr case tracks CASE {m})"
            for m in videos
        ]
    )
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from core.case import workflow

    model = load_model_from_args(args)
    with open_case(args) as case:
        with in_case(args):
            exam = examination(case, args, writing=False)
        if args.all:
            probes = [f.label for f in case.faces() if f.mark.startswith("Q")]
        else:
            probes = [args.probe or _only_probe(case)]
        rankings = {
            probe: workflow.rank_gallery(
                case, probe, model, progress=_progress(args, "compare")
            )
            for probe in probes
        }
        # recorded above; what is printed below leaves out what is masked
        masked = {
            probe: {c.face.label for c in found if exam.masked(probe, c.face.label)}
            for probe, found in rankings.items()
        }
        shown = [*probes, *(c.face.label for f in rankings.values() for c in f)]
        notes = workflow.derived_notes(case, shown)
        # a masked pair's score is not shown through its lead's search either
        leads = workflow.lead_notes(
            case, shown, examination=None if any(masked.values()) else exam
        )
    payload = {
        "model": {"id": model.model_id, "weights_sha256": model.weights_sha256},
        "threshold": model.threshold.to_dict(),
        "rankings": {p: _masked_ranking(r, masked[p]) for p, r in rankings.items()},
        "masked": {p: sorted(labels) for p, labels in masked.items()},
    }
    if notes:
        payload["processed"] = notes
    if leads:
        payload["investigative_leads"] = leads
    lines = []
    for probe, candidates in rankings.items():
        if masked[probe]:
            lines += _masked_lines(args, probe, candidates, masked[probe])
            continue
        lines.append(f"probe {probe} - gallery ranked by cosine similarity:")
        lines += [
            f"  {c.rank:>3}. {c.face.label:<6} cosine {c.comparison.similarity:.4f}  "
            f"distance {c.comparison.distance:.4f}  {c.comparison.decision}"
            for c in candidates
        ]
    lines += [f"note: {note}" for note in [*notes.values(), *leads.values()]]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def _masked_ranking(candidates: list[Any], masked: set[str]) -> list[dict[str, Any]]:
    """With any pair of the probe masked, no rank is shown (a rank tells how the
    masked pairs scored) and the list is in the gallery's order."""
    from core.case.examination import MASKED, RESULT_KEYS

    if not masked:
        return [c.to_dict() for c in candidates]
    hidden = RESULT_KEYS | {"cosine_similarity", "euclidean_distance"}
    out = []
    for candidate in sorted(candidates, key=lambda c: c.face.id):
        item = candidate.to_dict()
        secret = hidden if candidate.face.label in masked else {"rank"}
        out.append({k: MASKED if k in secret else v for k, v in item.items()})
        out[-1]["masked"] = candidate.face.label in masked
    return out


def _masked_lines(
    args: argparse.Namespace, probe: str, candidates: list[Any], masked: set[str]
) -> list[str]:
    from core.case.examination import MASKED

    lines = [
        f"probe {probe} - compared and recorded; sequential unmasking: the ranks and "
        "the masked pairs' results are hidden until unmasked:"
    ]
    for c in sorted(candidates, key=lambda c: c.face.id):
        if c.face.label in masked:
            lines.append(f"       {c.face.label:<6} {MASKED}")
        else:
            lines.append(
                f"       {c.face.label:<6} cosine {c.comparison.similarity:.4f}  "
                f"distance {c.comparison.distance:.4f}  {c.comparison.decision}"
            )
    first = sorted(masked)[0]
    lines.append(
        f"  to see a pair's results: record the analysis of {probe} and an "
        f"evaluation of the pair, then `xfr case unmask {args.case} {probe} {first}`"
    )
    return lines


def _only_probe(case: Case) -> str:
    probes = case.exhibits("probe")
    if len(probes) != 1:
        marks = ", ".join(e.mark for e in probes) or "none"
        raise BadInputError(f"choose a probe with --probe (probes: {marks})")
    return probes[0].mark


def cmd_explain(args: argparse.Namespace) -> int:
    from core.case import workflow
    from core.explain.export import write_result

    settings = _faithfulness_settings(args)
    model = load_model_from_args(args)
    checked = None
    with open_case(args) as case:
        exam = _refuse_masked(args, case)  # this session's (blind or not)
        done = workflow.explain(
            case,
            args.probe,
            args.gallery,
            args.method,
            model,
            params=parse_params(args.param),
            seed=args.seed,
            progress=_progress(args, args.method),
            batch_size=args.batch_size,
        )
        if args.faithfulness:
            checked = _check_faithfulness(args, case, model, settings)
        files = None
        if args.out:
            images = [
                workflow.load_evidence(case, label.partition("#")[0]).rgb
                for label in (args.probe, args.gallery)
            ]
            files = write_result(done.result, images, args.out)["files"]
        notes = workflow.derived_notes(case, [args.probe, args.gallery])
        leads = workflow.lead_notes(case, [args.probe, args.gallery], examination=exam)
    payload = {
        "explanation_id": done.stored.id,
        "from_cache": done.from_cache,
        **done.stored.result,
        "files": files,
    }
    source = "stored result reused" if done.from_cache else "computed and stored"
    text = (
        f"explanation {done.stored.id} ({args.method}, {source}); "
        f"{done.result.decision}, cosine {done.result.cosine_similarity:.4f}"
    )
    if checked is not None:
        from core.cli.faithfulness import faithfulness_json, verdict_lines

        payload |= faithfulness_json(checked.result)
        payload["faithfulness_from_cache"] = checked.from_cache
        again = "stored check reused" if checked.from_cache else "checked and stored"
        lines = [f"faithfulness ({again}):", *verdict_lines(checked.result)]
        text += "\n" + "\n  ".join(lines)
    if notes:
        payload["processed"] = notes
        text += "".join(f"\nnote: {note}" for note in notes.values())
    if leads:
        payload["investigative_leads"] = leads
        text += "".join(f"\nnote: {note}" for note in leads.values())
    _emit(args, payload, text)
    return EXIT_OK


def _refuse_masked(args: argparse.Namespace, case: Case) -> Examination:
    """No explanation of a masked pair: it would show the model's decision.
    Returns this session's examination (blind with --blind)."""
    from core.cli.examination import UNMASK_HINT

    probe, gallery = case.face(args.probe).label, case.face(args.gallery).label
    with in_case(args):
        exam = examination(case, args, writing=False)
        if exam.masked(probe, gallery):
            raise BadInputError(
                f"the model's results for {probe} / {gallery} are hidden until "
                "unmasked (sequential unmasking): "
                + UNMASK_HINT.format(case=args.case, q=probe, k=gallery)
            )
    return exam


def _faithfulness_settings(args: argparse.Namespace) -> Any:
    """With --faithfulness, its settings, checked before any long work starts."""
    if not args.faithfulness:
        return None
    from core.cli.faithfulness import settings_from

    if args.references < 0:
        raise BadInputError(
            f"--references needs 0 or more faces, got {args.references}"
        )
    return settings_from(args)


def _check_faithfulness(
    args: argparse.Namespace, case: Any, model: Any, settings: Any
) -> Any:
    """The per-pair verdicts of the explanation (stored in the case and reused);
    the references are the case's faces on other exhibits."""
    from core.case import workflow

    return workflow.check_faithfulness(
        case,
        args.probe,
        args.gallery,
        args.method,
        model,
        params=parse_params(args.param),
        seed=args.seed,
        settings=settings,
        reference_count=args.references,
        progress=_progress(args, f"{args.method} check"),
        batch_size=args.batch_size,
    )


def cmd_annotate(args: argparse.Namespace) -> int:
    with open_case(args, read_only=args.list) as case:
        with in_case(args):  # a blind session starts before its first write
            exam = examination(case, args, writing=not args.list)
        if args.delete is not None:
            if exam.blind and args.delete not in {
                a.id for a in exam.visible_annotations(case.annotations())
            }:
                raise BadInputError(
                    f"annotation {args.delete} is not one of yours; in a blind "
                    "verification only your own annotations can be deleted",
                    args.case,
                )
            case.delete_annotation(args.delete)
        elif not args.list:
            if not args.shape or not args.points:
                raise BadInputError("annotate needs --shape and --points")
            on_explanation = args.on.lower().startswith("explanation:")
            case.add_annotation(
                shape=args.shape,
                points=_points(args.points),
                exhibit=None if on_explanation else args.on,
                explanation_id=int(args.on.split(":", 1)[1])
                if on_explanation
                else None,
                label=args.label,
                note=args.note,
                component=args.component,
            )
        annotations = exam.visible_annotations(case.annotations())  # blind: own
        marks = {e.id: e.mark for e in case.exhibits()}
    payload = {"annotations": [a.to_dict() for a in annotations]}
    lines = [
        f"{a.id:>4} {a.shape:<9} on "
        + (marks[a.exhibit_id] if a.exhibit_id else f"explanation {a.explanation_id}")
        + f"  {a.label}  {a.component or ''}  ({a.author}, {a.created})"
        for a in annotations
    ]
    _emit(args, payload, "\n".join(lines) or "no annotations")
    return EXIT_OK


def _points(items: list[str]) -> list[list[float]]:
    try:
        return [[float(v) for v in item.split(",")] for item in items]
    except ValueError:
        raise BadInputError(
            "--points takes x,y pairs separated by spaces, e.g. 10,20 30,40"
        ) from None


def cmd_conclude(args: argparse.Namespace) -> int:
    with open_case(args) as case:
        conclusion = case.add_conclusion(args.text, args.comparison)
    _emit(args, conclusion.__dict__, f"conclusion {conclusion.id} recorded")
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    with open_case(args, read_only=True) as case, in_case(args):
        # the model's results of masked pairs (and, blind, the first
        # examiner's work) are not shown; the stored chain is unchanged
        entries = examination(case, args, writing=False).redact(case.audit_log())
    payload = {"entries": [e.to_dict() for e in entries]}
    lines = [
        f"{e.seq:>5} {e.time} {e.user:<14} {e.action:<18} "
        f"{json.dumps(e.details, ensure_ascii=False)[:100]}"
        for e in entries
    ]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from core.case.store import read_anchor

    anchor = read_anchor(args.anchor) if args.anchor else None
    with open_case(args, read_only=True) as case:
        report = case.verify(progress=_progress(args, "verify"), anchor=anchor)
    lines = [
        f"{'INTACT' if report.intact else 'TAMPERED'}: {report.audit_entries} audit "
        f"entries, {report.evidence_files} evidence files, {report.derived_files} "
        "derived files checked"
        + (
            f"; the processing of {report.processed_exhibits} processed exhibit(s) "
            "re-run"
            if report.processed_exhibits
            else ""
        )
    ]
    lines += [f"problem: {p}" for p in report.problems]
    lines += [f"warning: {w}" for w in report.warnings]
    if anchor is not None and report.intact:
        later = report.head[0] - int(anchor["seq"]) if report.head else 0
        lines.append(
            f"anchor {args.anchor}: entry {anchor['seq']} of {anchor['time']} is in "
            f"the log; {later} entr{'y' if later == 1 else 'ies'} added since"
        )
    _emit(args, report.to_dict(), "\n".join(lines))
    return EXIT_OK if report.intact else EXIT_TAMPERED


def cmd_anchor(args: argparse.Namespace) -> int:
    """Write the audit head to a small file to keep outside the case folder."""
    out = Path(args.out)
    if out.exists():
        raise BadInputError("already exists; an anchor is never overwritten", out)
    if not out.parent.is_dir():
        raise BadInputError("the folder for the anchor does not exist", out.parent)
    with open_case(args, read_only=True) as case:
        report = case.verify()
        if not report.intact:
            raise BadInputError(
                f"the case does not verify ({report.problems[0]}); an anchor would "
                "pin a tampered state",
                case.folder,
            )
        anchor = case.anchor()
    text = json.dumps(anchor, indent=2) + "\n"
    try:
        write_atomic(out, text.encode("utf-8"))
    except OSError as error:
        raise BadInputError(
            f"cannot write the anchor ({error.strerror})", out
        ) from None
    _emit(
        args,
        anchor,
        f"anchor written to {out}: audit entry {anchor['seq']} "
        f"({anchor['hash'][:16]}…), state {anchor['state_digest'][:16]}…; keep it "
        "outside the case folder and check with `xfr case verify CASE --anchor "
        f"{out}`",
    )
    return EXIT_OK


def _password(args: argparse.Namespace, p12: str) -> str:
    """The password of identity ``p12``, as every command takes it (file,
    $XFR_PASSWORD, then the terminal: core.cli.report.obtain_password)."""
    from core.cli.report import PasswordSource, obtain_password

    return obtain_password(p12, PasswordSource(args.password_file))


def cmd_export(args: argparse.Namespace) -> int:
    from core.case import workflow
    from core.case.archive_signature import load_signer

    # The identity is loaded first: a wrong password stops before anything is
    # written or audited.
    signer = load_signer(args.sign, _password(args, args.sign)) if args.sign else None
    with open_case(args) as case:
        export = workflow.export_audited(case, args.archive, signer)
    manifest, digest, signed_by = export.manifest, export.sha256, export.signed_by
    payload = {
        "archive": str(args.archive),
        "sha256": digest,
        "signed_by": signed_by,
        **manifest,
    }
    head = manifest["audit_head"]
    lines = [
        f"exported to {args.archive} (sha256 {digest})",
        f"manifest pins audit entry {head['seq']} (hash {head['hash'][:16]}…) and "
        f"state {manifest['state_digest'][:16]}…; "
        + (
            "not signed"
            if signer is None
            else f"signed by {signer.name} (certificate SHA-256 "
            f"{signer.fingerprint_sha256})"
        ),
    ]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from core.case import workflow
    from core.case.archive import ArchiveVerificationError
    from core.report.signing import load_certificate

    trust = [
        load_certificate(
            Path(item),
            _password(args, item) if item.lower().endswith((".p12", ".pfx")) else None,
        )
        for item in args.trust or []
    ]
    try:
        imported = workflow.import_audited(
            args.archive, args.case, trust=trust, user=args.user
        )
    except ArchiveVerificationError as error:
        if args.json:
            print(json.dumps({"imported": False, "error": str(error)}, indent=2))
        print(f"xfr: refused: {error}", file=sys.stderr)
        return EXIT_TAMPERED
    result, report = imported.result, imported.report
    payload = {
        "case": str(args.case),
        "verdict": result.to_dict(),
        "verify": report.to_dict(),
        **result.manifest,
    }
    state = "intact" if report.intact else "TAMPERED: " + "; ".join(report.problems)
    lines = [f"imported into {args.case}; {state}", *result.lines()]
    lines += [f"warning: {w}" for w in result.warnings]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK if report.intact else EXIT_TAMPERED


# ---- parser --------------------------------------------------------------------------
def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``case`` and its sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--user",
        help="examiner named in the audit trail (default: the case's examiner; "
        "the login name is recorded beside it)",
    )
    with_case = argparse.ArgumentParser(add_help=False, parents=[common])
    with_case.add_argument("case", help="case folder")
    with_model = argparse.ArgumentParser(add_help=False)
    with_model.add_argument("--model", default=DEFAULT_MODEL_ID)
    with_model.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_trust_model_code(with_model)

    blind = argparse.ArgumentParser(add_help=False)
    add_blind_options(blind)

    case = commands.add_parser("case", help="case files: evidence, audit trail")
    sub = case.add_subparsers(dest="case_command", required=True, metavar="COMMAND")

    new = sub.add_parser("new", parents=[with_case], help="create a case")
    new.add_argument("--number", required=True, help="case number")
    new.add_argument("--examiner", required=True, help="examiner's name")
    new.add_argument("--title", default="")
    new.add_argument("--agency", default="")
    new.add_argument(
        "--no-sequential-unmasking",
        action="store_true",
        help="show the model's results at once (default: hidden for each pair "
        "until its analysis and evaluation are recorded and it is unmasked)",
    )
    new.set_defaults(run=cmd_new)

    demo = sub.add_parser(
        "demo", parents=[with_case, with_model], help="create the demo case"
    )
    demo.add_argument("--no-compare", action="store_true", help="skip the 1:N run")
    demo.add_argument(
        "--acev",
        action="store_true",
        help="the ACE-V demo: analysis, worksheet, evaluation, unmasking and a "
        "blind verification with a disagreement resolved",
    )
    demo.add_argument(
        "--cctv",
        action="store_true",
        help="the video demo: a synthetic CCTV clip tracked, its best frames of "
        "the astronaut added as probes and compared with the two portraits",
    )
    demo.set_defaults(run=cmd_demo)

    info = sub.add_parser("info", parents=[with_case], help="case and exhibits")
    info.set_defaults(run=cmd_info)

    add = sub.add_parser("add", parents=[with_case], help="add evidence images")
    add.add_argument("files", nargs="+", help="image files or folders")
    add.add_argument("--role", required=True, choices=("probe", "gallery"))
    add.add_argument("--note", default="", help="acquisition note")
    add.add_argument("--detector", default="hog", choices=("hog", "cnn"))
    add.add_argument("--no-detect", action="store_true", help="do not find faces")
    add.set_defaults(run=cmd_add)

    faces = sub.add_parser("faces", parents=[with_case], help="list or fix faces")
    faces.add_argument("--detect", metavar="MARK", help="detect faces again")
    faces.add_argument("--detector", default="hog", choices=("hog", "cnn"))
    faces.add_argument("--correct", metavar="FACE", help="e.g. Q1 or Q1#2")
    faces.add_argument("--landmarks", help="x1,y1,...,x5,y5 (dlib's 5-point order)")
    faces.add_argument(
        "--box", metavar="FACE", help="find the landmarks inside --bbox for FACE"
    )
    faces.add_argument("--bbox", help="left,top,right,bottom of the face, in pixels")
    faces.add_argument(
        "--reject", metavar="FACE", help="reject a false detection (restorable)"
    )
    faces.add_argument("--reason", default="", help="why the face is rejected")
    faces.add_argument("--restore", metavar="FACE", help="undo a rejection")
    faces.add_argument(
        "--reset", metavar="FACE", help="return a corrected face to the detected one"
    )
    faces.add_argument("--history", metavar="FACE", help="every record of FACE")
    faces.set_defaults(run=cmd_faces)

    compare = sub.add_parser(
        "compare",
        parents=[with_case, with_model, blind],
        help="rank the gallery (1:N)",
        description="Compare the probe with every gallery face and record the "
        "comparisons.  With sequential unmasking on, a pair's results are hidden "
        "until it is unmasked (xfr case unmask), and the ranks while any pair of "
        "the probe is masked.",
    )
    compare.add_argument("--probe", help="probe face (default: the only probe)")
    compare.add_argument("--all", action="store_true", help="every probe face")
    compare.set_defaults(run=cmd_compare)

    explain = sub.add_parser(
        "explain",
        parents=[with_case, with_model, blind],
        help="explain one pair",
        description="Explain one pair (refused while the pair is masked: see "
        "xfr case unmask).",
    )
    explain.add_argument("--probe", required=True)
    explain.add_argument("--gallery", required=True)
    explain.add_argument("--method", required=True, help="see 'xfr methods'")
    explain.add_argument("--param", action="append", metavar="NAME=VALUE")
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument("--batch-size", type=int)
    explain.add_argument("--out", help="also write maps and overlays here")
    add_faithfulness_options(explain, references=False)
    explain.add_argument(
        "--references",
        type=int,
        default=5,
        metavar="K",
        help="with --faithfulness: how many of the case's faces on other exhibits "
        "test pair specificity (default 5, oldest first)",
    )
    explain.set_defaults(run=cmd_explain)

    annotate = sub.add_parser(
        "annotate", parents=[with_case, blind], help="annotations"
    )
    annotate.add_argument("--on", default="", help="exhibit mark or explanation:ID")
    annotate.add_argument(
        "--shape", choices=("point", "rectangle", "ellipse", "polygon", "freehand")
    )
    annotate.add_argument("--points", nargs="+", metavar="X,Y")
    annotate.add_argument("--label", default="")
    annotate.add_argument("--note", default="")
    annotate.add_argument("--component", help="FISWG facial component, e.g. nose")
    annotate.add_argument("--delete", type=int, metavar="ID")
    annotate.add_argument("--list", action="store_true")
    annotate.set_defaults(run=cmd_annotate)

    conclude = sub.add_parser(
        "conclude", parents=[with_case], help="record the examiner's conclusion"
    )
    conclude.add_argument("--text", required=True)
    conclude.add_argument("--comparison", type=int)
    conclude.set_defaults(run=cmd_conclude)

    log = sub.add_parser(
        "log",
        parents=[with_case, blind],
        help="the audit trail",
        description="The audit trail, with the model's results of masked pairs "
        "shown as hidden (and, with --blind, the first examiner's work).",
    )
    log.set_defaults(run=cmd_log)

    verify = sub.add_parser(
        "verify",
        parents=[with_case],
        help="check the audit chain, every stored row and every file",
    )
    verify.add_argument(
        "--anchor",
        metavar="FILE",
        help="an anchor from 'xfr case anchor': also detects a rolled-back or "
        "rewritten audit log",
    )
    verify.set_defaults(run=cmd_verify)

    anchor = sub.add_parser(
        "anchor",
        parents=[with_case],
        help="write the audit head to a file kept elsewhere (detects rollback)",
    )
    anchor.add_argument("--out", required=True, help="the anchor file (new)")
    anchor.set_defaults(run=cmd_anchor)

    export = sub.add_parser("export", parents=[with_case], help="case -> zip")
    export.add_argument("archive", help="OUT.zip (must not exist)")
    export.add_argument(
        "--sign", metavar="ID.p12", help="sign the manifest with this identity"
    )
    export.add_argument(
        "--password-file",
        metavar="FILE",
        help="the identity's password, first line of FILE (or set XFR_PASSWORD)",
    )
    export.set_defaults(run=cmd_export)

    importer = sub.add_parser("import", parents=[common], help="zip -> new case")
    importer.add_argument("archive", help="the .zip made by 'xfr case export'")
    importer.add_argument("case", help="new case folder (must not exist)")
    importer.add_argument(
        "--trust",
        action="append",
        metavar="CERT",
        help="require a signature by this certificate (.pem/.cer, or an identity "
        ".p12); repeatable",
    )
    importer.add_argument(
        "--password-file",
        metavar="FILE",
        help="password of a --trust .p12, first line of FILE (or set XFR_PASSWORD)",
    )
    importer.set_defaults(run=cmd_import)

    add_examination_commands(sub, with_case)
    add_quality_command(sub, with_case)
    add_video_commands(sub, with_case)
    add_processing_commands(sub, with_case)
    add_gallery_commands(sub, with_case)
