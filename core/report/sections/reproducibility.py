"""How every number and map can be recomputed: inputs, model, method, seed, version."""

from __future__ import annotations

import json

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, table

name = "reproducibility"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Reproducibility", styles.h1),
        styles.p(
            "Every number and map above can be recomputed from the case: verify the "
            "evidence and the audit trail with <i>xfr case verify CASE</i>, then rerun "
            "an explanation with <i>xfr case explain CASE --probe P --gallery G "
            "--method M --param NAME=VALUE --seed S</i>; the same inputs, model, "
            "method, parameters, seed and software version give the same cache key, "
            "and the same maps up to floating-point rounding (a processor's parallel "
            "sums can change a map's last digits, never its pattern)."
            + (
                " A superseded comparison's labels now name the corrected faces, so "
                "rerunning it by label computes the current comparison instead; its "
                "own inputs are the face records named below, whose landmarks the "
                "audit trail holds."
                if content.older
                else ""
            )
            + f" This report was made by software version {content.software_version} "
            f"(commit {content.source_commit})."
        ),
    ]
    rows = [
        [
            styles.p(h, styles.small)
            for h in (
                "Item",
                "Inputs (SHA-256)",
                "Model / method / parameters / seed / version",
            )
        ]
    ]
    for item in content.comparisons:
        comparison, faces = item.comparison, item.faces
        hashes = "<br/>".join(
            f"{f.label}: {sha256}"
            for f, sha256 in zip(faces, item.input_sha256, strict=True)
        )
        label = f"comparison {faces[0].label} × {faces[1].label}"
        if item.superseded:
            records = ", ".join(
                f"{s.face.label} = face record {s.face.id}" for s in item.superseded
            )
            label += f" (SUPERSEDED; {records})"
        rows.append(
            [
                styles.p(label, styles.small),
                styles.p(hashes, styles.mono),
                styles.p(
                    f"{comparison.model_id} {comparison.model_sha256}", styles.mono
                ),
            ]
        )
        for shown in item.explanations:
            explanation = shown.stored
            params = json.dumps(explanation.params, sort_keys=True)
            rows.append(
                [
                    styles.p(f"explanation #{explanation.id}", styles.small),
                    styles.p(f"cache key {explanation.cache_key}", styles.mono),
                    styles.p(
                        f"{explanation.method} {params} seed {explanation.seed} "
                        f"software {explanation.software_version} model "
                        f"{explanation.model_sha256}",
                        styles.mono,
                    ),
                ]
            )
    if len(rows) > 1:
        story.append(table(rows, [32 * mm, 68 * mm, TEXT_WIDTH - 100 * mm]))
    return story
