"""The examiner's conclusion on the declared scale: the whole scale with the
chosen level marked, the first evaluation and every revision with its time
(ENFSI BPM section 12; ENFSI Guideline for Evaluative Reporting)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.examination_content import (
    EARLIER_FACE,
    NOT_RECORDED,
    PairExamination,
)
from core.report.layout import TEXT_WIDTH, Styles, table

name = "evaluation"

ROLE_TITLES = {"examiner": "Examiner", "verifier": "Verifier"}


def _history(pair: PairExamination, styles: Styles) -> list[Flowable]:
    if not pair.evaluations:
        return [styles.p(f"Evaluation: {NOT_RECORDED}.")]
    story: list[Flowable] = []
    counts: dict[str, int] = {}
    for item in pair.evaluations:
        counts[item.role] = counts.get(item.role, 0) + 1
        kind = "first evaluation" if counts[item.role] == 1 else "revision"
        when = (
            "the model's results could be seen (unmasked, or sequential unmasking off)"
            if item.results_seen
            else "before the model's results were seen"
        )
        mode = ", blind" if item.blind else ""
        if item.earlier_face:
            mode += f", {EARLIER_FACE}"
        reasoning = item.evaluation.reasoning or NOT_RECORDED
        story.append(
            styles.p(
                f"{ROLE_TITLES[item.role]}'s {kind} ({styles.u(item.author)}, "
                f"{item.created}{mode}; {when}): <b>{styles.u(item.evaluation.words)}"
                f"</b>. Reasoning: {styles.u(reasoning)}"
            )
        )
    return story


def _scale(pair: PairExamination, content: ReportContent, styles: Styles) -> Flowable:
    assert content.examination is not None
    scale = content.examination.settings.scale
    chosen: dict[str, list[str]] = {}
    for item in pair.evaluations:  # the latest per role marks the scale
        for code, marks in list(chosen.items()):
            chosen[code] = [m for m in marks if m != ROLE_TITLES[item.role]]
        chosen.setdefault(item.evaluation.level, []).append(ROLE_TITLES[item.role])
    v = pair.verification
    if v is not None and v.outcome == "disagreement" and v.resolved_level:
        chosen.setdefault(v.resolved_level, []).append("the resolution")
    rows = [[styles.p(h, styles.small) for h in ("Level", "Likelihood ratio (range)")]]
    for level in scale.levels:
        marks = chosen.get(level.code, [])
        words = styles.u(level.words)
        rows.append(
            [
                styles.p(
                    f"<b>{words} — chosen by {' and '.join(marks)}</b>"
                    if marks
                    else words,
                    styles.small,
                ),
                styles.p(level.likelihood_ratio or "-", styles.small),
            ]
        )
    return table(rows, [TEXT_WIDTH - 40 * mm, 40 * mm])


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(80 * mm),
        styles.p("Evaluation on the declared scale", styles.h1),
    ]
    exam = content.examination
    if exam is None or not exam.pairs:
        return [*story, styles.p(f"Evaluation: {NOT_RECORDED}.")]
    scale = exam.settings.scale
    story.append(
        styles.p(
            f"Scale: {styles.u(scale.name)} ({styles.u(scale.source)}). The "
            "observations were weighed under the first proposition against the "
            "second; every level of the scale is printed, the chosen ones marked "
            "(the latest evaluation of each examiner, and a resolution).",
            styles.small,
        )
    )
    for pair in exam.pairs:
        story.append(styles.p(f"Pair {pair.title}", styles.h2))
        story += _history(pair, styles)
        if pair.evaluations:
            story.append(_scale(pair, content, styles))
    return story
