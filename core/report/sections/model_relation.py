"""How the model's result relates to the examiner's opinion: kept separate, the
order of work (sequential unmasking) and whether the candidate came from a 1:N
search (ENFSI BPM section 12; FISWG)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.examination_content import (
    MODEL_MASKED,
    NOT_RECORDED,
    PairExamination,
)
from core.report.layout import TEXT_WIDTH, Styles, table

name = "model_relation"


def _unmasking_words(content: ReportContent, styles: Styles) -> list[Flowable]:
    assert content.examination is not None
    exam = content.examination
    story = []
    if exam.settings.sequential_unmasking:
        story.append(
            styles.p(
                "Sequential unmasking was on: the model's results for a pair were "
                "hidden until the examiner had recorded the analysis and an "
                "evaluation, and unmasking was itself recorded."
            )
        )
    elif not exam.settings.recorded:
        story.append(
            styles.p(
                "Sequential unmasking: not recorded (the case was made before the "
                "setting existed); the model's results were visible throughout."
            )
        )
    else:
        story.append(
            styles.p(
                "Sequential unmasking was off: the model's results could be seen "
                "before the examiner's own evaluation."
            )
        )
    for entry in exam.setting_changes:
        changed = entry.details.get("set", {})
        if "sequential_unmasking" not in changed:
            continue
        state = "on" if changed["sequential_unmasking"] else "off"
        reason = entry.details.get("reason") or NOT_RECORDED
        story.append(
            styles.p(
                f"Sequential unmasking turned {state} by {styles.u(entry.user)} on "
                f"{entry.time}; reason: {styles.u(reason)}.",
                styles.small,
            )
        )
    return story


def _pair(pair: PairExamination, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [styles.p(f"Pair {pair.title}", styles.h2)]
    latest = {e.role: e for e in pair.evaluations}
    opinion = latest.get("examiner")
    story.append(
        styles.p(
            "Examiner's opinion: "
            + (
                f"<b>{styles.u(opinion.evaluation.words)}</b>"
                if opinion
                else NOT_RECORDED
            )
            + "."
        )
    )
    if pair.masked:
        story.append(styles.p(f"Model: {MODEL_MASKED}."))
    elif pair.model is None:
        story.append(styles.p("Model: this pair was not compared by the model."))
    else:
        model = pair.model
        story.append(
            styles.p(
                f"Model ({styles.u(model.model_id)}), beside it and not combined "
                f"with it: cosine similarity {model.similarity:.4f}, decision "
                f"{model.decision}, {styles.u(model.lr_text)}."
            )
        )
        if model.gallery_size <= 1:
            search = (
                f"One-to-one comparison: {pair.questioned} was compared with "
                f"{pair.known} only (no 1:N search)."
            )
        elif model.rank is None:
            search = (
                f"The known face came from a one-to-many (1:N) search: "
                f"{pair.questioned} was compared with a gallery of "
                f"{model.gallery_size} faces. Its rank is not given: other pairs "
                f"of {pair.questioned} are still masked, and a rank would tell how "
                "the model scored them."
            )
        else:
            search = (
                f"The known face came from a one-to-many (1:N) search: "
                f"{pair.questioned} was compared with a gallery of "
                f"{model.gallery_size} faces, and {pair.known} ranked {model.rank} "
                f"of {model.gallery_size} by the model's decision score."
            )
        story.append(styles.p(search))
    if pair.seen:
        rows = [[styles.p(h, styles.small) for h in ("Time", "Who", "What")]]
        for step in pair.seen:
            rows.append(
                [
                    styles.p(step.time, styles.small),
                    styles.p(
                        styles.u(step.author)
                        + (f" ({step.role})" if step.role else ""),
                        styles.small,
                    ),
                    styles.p(styles.u(step.what), styles.small),
                ]
            )
        story.append(styles.p("Order of work:", styles.small))
        story.append(table(rows, [40 * mm, 45 * mm, TEXT_WIDTH - 85 * mm]))
    else:
        story.append(styles.p(f"Order of work: {NOT_RECORDED}."))
    return story


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("The model's result and the examiner's opinion", styles.h1),
        styles.p(
            "The examiner's opinion and the model's result are kept separate: no "
            "fusion of the two is declared or used. The model's result is printed "
            "beside the opinion only for pairs whose results were unmasked."
        ),
    ]
    exam = content.examination
    if exam is None:
        return story
    story += _unmasking_words(content, styles)
    for pair in exam.pairs:
        story += _pair(pair, styles)
        lead = content.lead_note(pair.known, scored=not pair.masked)
        if lead:  # the known face was itself found by a search outside the case
            story.append(styles.p(f"{styles.u(lead[:1].upper() + lead[1:])}."))
    return story
