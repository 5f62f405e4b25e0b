"""The verification record: who verified, blind or open, agreement or the
disagreement and its resolution (ACE-V verification; ENFSI BPM section 13)."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.examination_content import NOT_RECORDED
from core.report.layout import TEXT_WIDTH, Styles, table

name = "verification"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p("Verification", styles.h1),
    ]
    exam = content.examination
    pairs = exam.pairs if exam else ()
    if not pairs:
        return [*story, styles.p(f"Verification: {NOT_RECORDED}.")]
    scale = exam.settings.scale if exam else None

    def words(code: str) -> str:
        if not code:
            return NOT_RECORDED
        try:
            return scale.level(code).words if scale else code
        except Exception:  # a level of another scale: its code stands
            return code

    for pair in pairs:
        story.append(styles.p(f"Pair {pair.title}", styles.h2))
        v = pair.verification
        if v is None:
            story.append(
                styles.p(f"Verification: {NOT_RECORDED} (no second examiner).")
            )
            continue
        resolution = (
            "not needed (agreement)"
            if v.outcome == "agreement"
            else (
                f"{v.resolution}; resolved level: {words(v.resolved_level)}"
                + (f" (recorded by {v.resolved_by})" if v.resolved_by else "")
                if v.resolution
                else "not recorded: the disagreement is open"
            )
        )
        rows = [
            ("Verifier", pair.verification_by),
            ("Mode", f"{v.mode} verification"),
            ("Recorded", pair.verification_time),
            ("First examiner's level", words(v.examiner_level)),
            ("Verifier's level", words(v.verifier_level)),
            ("Outcome", v.outcome),
            ("Resolution", resolution),
        ]
        story.append(
            table(
                [
                    [styles.p(a, styles.small), styles.p(styles.u(b), styles.small)]
                    for a, b in rows
                ],
                [45 * mm, TEXT_WIDTH - 45 * mm],
                header=False,
            )
        )
    return story
