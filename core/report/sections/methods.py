"""Appendix A: the face model and each explanation method used, with its reference."""

from __future__ import annotations

from reportlab.platypus import Flowable, PageBreak

from core.report.content import ReportContent
from core.report.layout import Styles

name = "methods"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [PageBreak(), styles.p("Appendix A: methods", styles.h1)]
    story.append(
        styles.p(
            "Face model: dlib's ResNet face-recognition model "
            "(dlib_face_recognition_resnet_model_v1, public domain), re-implemented "
            "in PyTorch; faces found with dlib's detector and aligned on five "
            "landmarks."
        )
    )
    for method in content.methods:
        info = method.info
        only_old = " (superseded comparisons only)" if method.superseded_only else ""
        story.append(styles.p(info.display_name + only_old, styles.h2))
        story.append(styles.p(styles.u(info.description)))
        story.append(styles.p(f"Reference: {styles.u(info.citation)}.", styles.small))
    if not content.methods:
        story.append(styles.p("No explanation method was used in this report."))
    cited = {m.reference.key: m.reference for m in content.methods if m.reference}
    if cited:
        story.append(styles.p("References", styles.h2))
        story += [
            styles.p(f"{styles.u(r.short)}: {styles.u(r.citation())}.", styles.small)
            for r in sorted(cited.values(), key=lambda r: r.short)
        ]
    return story
