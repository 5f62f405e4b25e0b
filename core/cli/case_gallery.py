"""``xfr case gallery-search`` and ``xfr case pull-candidate``: a case face
searched against a reference gallery (1:N), and a candidate pulled into the case
as a known exhibit - an investigative lead (issue 22, item 4).

Both go through ``core.case.workflow`` (``search_gallery``, ``pull_candidate``)
and ``case.gallery_searches``, as the GUI would; every failure is one line.
The scores printed are those this session may see (``--blind --user NAME``: a
verifier's blind session, their own unmaskings; ``core.case.gallery_searches``).
Building the parser imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from core.cli.common import (
    EXIT_OK,
    add_blind_options,
    add_trust_model_code,
    load_model_from_args,
    open_case,
    progress_printer,
)
from core.errors import BadInputError

WIDTH = 79


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False) if args.json else text)


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def _probe_label(probe: str, face: int | None) -> str:
    mark, _, index = probe.partition("#")
    if face is None:
        return probe
    if index:
        raise BadInputError(f"--probe {probe} already names a face; leave out --face")
    if face < 0:
        raise BadInputError(f"--face must be 0 or more, got {face}")
    return mark if face == 0 else f"{mark}#{face}"


def cmd_gallery_search(args: argparse.Namespace) -> int:
    from core import wording
    from core.case import workflow
    from core.cli.examination import examination, in_case
    from core.gallery.store import open_gallery

    if args.top < 1:
        raise BadInputError(f"--top must be at least 1, got {args.top}")
    if args.threads < 1:
        raise BadInputError(f"--threads must be at least 1, got {args.threads}")
    label = _probe_label(args.probe, args.face)
    gallery = open_gallery(args.gallery)  # checked before the model loads
    args.model = args.model or gallery.model_id
    model = load_model_from_args(args)
    with open_case(args) as case:
        with in_case(args):
            exam = examination(case, args, writing=True)
        done = workflow.search_gallery(
            case,
            label,
            args.gallery,
            args.top,
            model,
            examination=exam,
            threads=args.threads,
            progress=progress_printer("embedding", args.json, style="step"),
        )
        probe_note = workflow.search_probe_note(case, done)
        in_case_marks = _in_case(case, done)
    capped = workflow.gallery_top_note(args.top, done)
    scale = workflow.search_scale_note(done)
    # sequential unmasking: ranks, identities and files, not the scores (kept in
    # the case's record; shown with each pair's unmasking)
    hidden = not done.shown_ranks
    partly = not hidden and len(done.shown_ranks) < len(done.candidates)
    scores_note = (
        wording.GALLERY_SCORES_MASKED
        if hidden
        else (wording.GALLERY_SCORES_PARTLY_MASKED if partly else scale)
    )
    payload = done.to_dict() | {
        "note": wording.GALLERY_SEARCH_LEAD,
        "probe_note": probe_note,
        "top_capped": capped,
        "scores_note": scores_note,
        # rank -> the exhibit already in the case with that candidate's image
        "in_case": {str(rank): mark for rank, mark in in_case_marks.items()},
    }
    kind = "exact" if done.exact else "approximate, re-scored exactly"
    lines = [
        f"search {done.name}: {done.probe_label} against gallery {done.gallery_uuid}",
        f"  {done.gallery_size} templates, digest {done.gallery_digest}",
        f"  model {done.model_id} (weights SHA-256 {done.model_sha256})",
        f"  probe template SHA-256 {done.probe_template_sha256}; top {done.k} ({kind})",
        *_wrapped(f"probe: {probe_note}" if probe_note else "", "  "),
        *([capped] if capped else []),
        f"{'rank':>4}  {'' if hidden else 'cosine':>7}  {'in case':<7}  "
        "identity / file (image SHA-256)",
    ]
    for c in done.candidates:
        score = done.score(c.rank)
        shown = "" if hidden else ("masked" if score is None else f"{score:.4f}")
        lines.append(
            f"{c.rank:>4}  {shown:>7}  {in_case_marks.get(c.rank, '-'):<7}  "
            f"{c.identity} / {c.file} ({c.image_sha256[:12]}...)"
        )
    lines += [
        f"pull one in with `xfr case pull-candidate CASE --search {done.name} "
        "--rank R`",
        "",
        *_wrapped(scores_note or ""),
        *(_wrapped(scale or "") if partly else []),
        *_wrapped(wording.GALLERY_SEARCH_LEAD),
    ]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def _in_case(case: Any, search: Any) -> dict[int, str]:
    """Rank -> the mark of the exhibit in the case with that candidate's image
    (pulled from this search, or the same file already in the case)."""
    by_sha = {e.sha256: e.mark for e in case.exhibits()}
    return {
        c.rank: by_sha[c.image_sha256]
        for c in search.candidates
        if c.image_sha256 in by_sha
    }


def cmd_pull_candidate(args: argparse.Namespace) -> int:
    from core.case import workflow
    from core.cli.examination import examination, in_case

    with open_case(args) as case:
        with in_case(args):
            exam = examination(case, args, writing=True)
        found = case.gallery_searches.search(args.search, examination=None)
        args.model = args.model or found.model_id
        model = load_model_from_args(args)
        exhibit = workflow.pull_candidate(
            case,
            args.search,
            args.rank,
            image=args.image,
            mark=args.as_mark,
            detect=not args.no_detect,
            model=model,
        )
        lead = case.gallery_searches.lead(exhibit.mark, examination=exam)
        note = workflow.lead_note(case, exhibit.mark, examination=exam)
        faces = None if args.no_detect else [f.label for f in case.faces(exhibit.mark)]
    if lead is None:  # pragma: no cover - pull always records one
        raise BadInputError(f"{exhibit.mark} was stored without its lead record")
    payload = {
        "exhibit": exhibit.to_dict(),
        "lead": lead.to_dict(),
        "faces": faces,
        "note": note,
    }
    lines = [
        f"{exhibit.mark}: candidate {lead.candidate.rank} of {lead.search.name} "
        f"({lead.candidate.identity} / {lead.candidate.file}), known exhibit",
        f"  from {lead.image_path} (SHA-256 {exhibit.sha256}, as the gallery recorded)",
        f"  the model's template of it reproduces the gallery's (cosine "
        f"{lead.template_cosine:.6f}, template SHA-256 "
        f"{lead.candidate.template_sha256[:12]}...)",
        "  faces: "
        + (
            "not looked for (--no-detect)"
            if faces is None
            else (", ".join(faces) if faces else "none found")
        ),
        *_wrapped(note or "", "  "),
    ]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def add_gallery_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_case: argparse.ArgumentParser,
) -> None:
    """Register ``xfr case gallery-search`` and ``xfr case pull-candidate``."""
    blind = argparse.ArgumentParser(add_help=False)
    add_blind_options(blind)
    search = sub.add_parser(
        "gallery-search",
        parents=[with_case, blind],
        help="search a case face against a reference gallery (1:N, leads)",
        description="Check the gallery's files, embed the probe face as the case "
        "does (its face record) with the gallery's model - another model's weights "
        "are refused - list the --top most similar templates by exact cosine "
        "similarity and record the search in the case (gallery uuid, digest and "
        "size, model, index, k, the ranked candidates).  A result is an "
        "investigative lead, not an identification.",
    )
    search.add_argument("--probe", required=True, help="probe face (Q1, Q1#2)")
    search.add_argument("--face", type=int, help="face index of --probe (0: first)")
    search.add_argument("--gallery", required=True, help="a .xfrgallery folder")
    search.add_argument(
        "--top", type=int, default=50, help="candidates (default 50, at most 1000)"
    )
    search.add_argument(
        "--model", default=None, help="model id or file (default: the gallery's)"
    )
    search.add_argument("--device", default="auto", help="auto, cpu or cuda")
    search.add_argument("--card", help="model card of a model file")
    add_trust_model_code(search)
    search.add_argument("--threads", type=int, default=1, help="faiss threads")
    search.set_defaults(run=cmd_gallery_search)

    pull = sub.add_parser(
        "pull-candidate",
        parents=[with_case, blind],
        help="bring a gallery search candidate into the case as a known exhibit",
        description="Read candidate --rank of search --search from --image (by "
        "default where the gallery's source had it), check that its SHA-256 is "
        "the one the gallery recorded, and store it as a known (K) exhibit whose "
        "record says it is an investigative lead from that 1:N search.  A changed "
        "or missing file changes nothing.  The model (the search's; --model "
        "defaults to its id) is run on it by the gallery's face rule (the largest "
        "face) and must reproduce the template the search recorded (cosine >= "
        "0.9999), or nothing changes.  A pull is never withdrawn (the case is "
        "append-only), and an image already in the case cannot be pulled.",
    )
    pull.add_argument("--search", required=True, help="search id (S1 or 1)")
    pull.add_argument("--rank", required=True, type=int, help="the candidate's rank")
    pull.add_argument("--image", help="the candidate's image file")
    pull.add_argument(
        "--as", dest="as_mark", metavar="MARK", help="its mark (default: next K)"
    )
    pull.add_argument("--no-detect", action="store_true", help="do not find faces")
    pull.add_argument(
        "--model", default=None, help="model id or file (default: the search's)"
    )
    pull.add_argument("--device", default="auto", help="auto, cpu or cuda")
    pull.add_argument("--card", help="model card of a model file")
    add_trust_model_code(pull)
    pull.set_defaults(run=cmd_pull_candidate)
