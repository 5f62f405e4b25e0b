"""What the scores, maps and the examiner's opinion do not show: the shared text
(``core.wording.LIMITATIONS``), the image quality the analyses recorded, and the
limits every facial comparison has."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from core.report.content import ReportContent
from core.report.layout import Styles
from core.wording import LIMITATIONS

name = "limitations"

COMPARISON_LIMITS = (
    "Close relatives, in particular identical twins, can look alike in every "
    "facial component compared here; neither the examiner's opinion nor the "
    "model's score can tell them apart.",
    "Face-recognition models are known to differ in their error rates between "
    "demographic groups (sex, age, skin tone); see NIST IR 8280, Face Recognition "
    "Vendor Test part 3: Demographic Effects (Grother, Ngan and Hanaoka, 2019). "
    "The differentials of the model used here are not stated for this case.",
    "The opinion is based on the images and information available when this "
    "report was made; it may change with new information (other images, other "
    "propositions, information about the persons).",
)


def _quality(content: ReportContent) -> list[str]:
    """The image-quality limits the analyses recorded, one sentence per image."""
    if content.examination is None:
        return []
    lines = []
    for row in content.examination.analyses:
        a = row.analysis
        if a is None or (a.suitability == "suitable" and not a.factors):
            continue
        factors = ", ".join(a.factors) if a.factors else "no factor named"
        lines.append(
            f"{row.face} ({row.role}'s analysis): {a.suitability.replace('_', ' ')} "
            f"- {a.reasons or 'reasons not recorded'} ({factors})."
        )
    return lines


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    quality = _quality(content) or [
        "Image quality: no limitation was recorded in the analyses."
    ]
    return [
        CondPageBreak(60 * mm),
        styles.p("Limitations", styles.h1),
        *[styles.p(f"• {styles.u(text)}") for text in quality],
        *[styles.p(f"• {text}") for text in COMPARISON_LIMITS],
        *[styles.p(f"• {text}") for text in LIMITATIONS],
    ]
