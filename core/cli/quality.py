"""``xfr case quality CASE [--face LABEL] [--json]``: face image quality per face.

Every current face of the case (or one) measured on the case's copy of its
evidence (``core.case.workflow.case_quality``): each figure with its unit, and the
plain-words summary (good / limited / poor, and why).  With ``--model`` the
model's embedding length is measured too; without it that figure is "not
available".  The case is only read.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from core.cli.common import (
    EXIT_OK,
    add_trust_model_code,
    load_model_from_args,
    open_case,
)
from core.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.case.records import CaseFace
    from core.case.store import Case
    from core.quality import FaceQuality


def cmd_quality(args: argparse.Namespace) -> int:
    from core.case import workflow
    from core.quality import all_measures, describe

    model = load_model_from_args(args) if args.model else None
    withheld: list[str] = []
    with open_case(args, read_only=True) as case:
        labels = [args.face] if args.face else [f.label for f in case.faces()]
        hidden = _in_masked_pairs(case) if model is not None else set()
        qualities = []
        for label in labels:
            # the model's embedding length of a face in a masked pair is a model
            # output the examiner has not unmasked (the report withholds it too)
            masked = case.face(label).id in hidden
            qualities.append(
                workflow.face_quality(case, label, None if masked else model)
            )
            if masked:
                withheld.append(label)
    if args.json:
        payload: dict[str, Any] = {
            "faces": [quality.to_dict() for quality in qualities],
            "measures": [describe(measure) for measure in all_measures()],
            "model_output_withheld": withheld,
        }
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    if not qualities:
        print("no faces in the case (find them with xfr case faces --detect MARK)")
    print("\n\n".join(quality_text(quality) for quality in qualities))
    if withheld:
        print(
            f"\nthe model's embedding length of {', '.join(withheld)} is withheld: "
            "a pair with the face is masked (sequential unmasking); unmask it first"
        )
    return EXIT_OK


def _in_masked_pairs(case: Case) -> set[int]:
    """Face record ids of every comparison whose results are masked."""
    examination = case.examination()
    return {
        face_id
        for comparison in case.comparisons()
        if examination.masked_comparison(comparison)
        for face_id in (comparison.probe_face_id, comparison.gallery_face_id)
    }


def face_quality_dicts(case: Case, faces: Sequence[CaseFace]) -> dict[str, Any]:
    """Each face's quality dict for ``xfr case faces --json``; a face that cannot
    be measured (its landmarks coincide) gets its one-line reason instead, so
    that one face does not hide the others."""
    from core.case import workflow

    found: dict[str, Any] = {}
    for face in faces:
        try:
            found[face.label] = workflow.face_quality(case, face.label).to_dict()
        except BadInputError as error:
            found[face.label] = {"error": str(error)}
    return found


def quality_text(quality: FaceQuality) -> str:
    """A face's summary line, then one line per measure (figure or why not)."""
    lines = [f"{quality.label}: {quality.summary.words}"]
    for value in quality.values:
        if value.value is None:
            figure = f"not available ({value.note})"
        elif value.unit == "fraction 0-1":
            figure = f"{100 * value.value:.1f} %"
        else:
            figure = f"{value.value:.{_decimals(value.unit)}f} {value.unit}"
        lines.append(f"  {value.name:<40} {figure}")
    return "\n".join(lines)


def _decimals(unit: str) -> int:
    return {"px": 1, "deg": 1, "0-255": 1, "1-100": 0}.get(unit, 3)


def add_quality_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_case: argparse.ArgumentParser,
) -> None:
    """Register ``xfr case quality``."""
    quality = sub.add_parser(
        "quality",
        parents=[with_case],
        help="face image quality of each face (good / limited / poor, and why)",
        description="Descriptive image-condition measures of each face, in the "
        "spirit of ISO/IEC 29794-5: inter-eye distance, head pose, sharpness, "
        "exposure, compression, truncation.  The summary's thresholds are "
        "conventions, not validated limits.",
    )
    quality.add_argument("--face", metavar="LABEL", help="one face, e.g. Q1 or Q1#2")
    quality.add_argument(
        "--model",
        help="also measure this model's embedding length (its utility proxy)",
    )
    quality.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_trust_model_code(quality)
    quality.set_defaults(run=cmd_quality)
