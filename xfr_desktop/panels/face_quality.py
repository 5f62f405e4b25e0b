"""Face image quality beside each face in the exhibits panel (issue 20 item 3).

The figures are measured by ``core.quality`` on the evidence's pixels, so they are
computed in a TaskRunner worker (``measure_faces``), never on the UI thread, and
kept per face id (a corrected face is a new record with a new id, so it is
measured again).  The rating is written out in words and marked by a shape (the
row's icon: circle, triangle, square) as well as a colour (Okabe-Ito's
colour-blind-safe palette), never by colour alone.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Callable

from core import wording
from core.case import workflow
from core.case.store import Case
from core.errors import BadInputError, Cancelled
from core.quality import FaceQuality, all_measures, figure_text, rate

# Okabe & Ito (2008), "Color Universal Design": blue, orange, vermillion stay
# distinct under the common colour-vision deficiencies; the words and shapes carry
# the rating on their own.
RATING_COLOURS = {"good": "#0072B2", "limited": "#E69F00", "poor": "#D55E00"}
PENDING_TEXT = "quality: measuring…"
ROW_CHARS = 20  # what a face row of the narrowest panel shows without eliding

Measured = dict[int, FaceQuality | str]  # face id -> figures, or why not


def measure_faces(
    case: Case, face_ids: list[int], cancel: Callable[[], bool] | None = None
) -> Measured:
    """Worker: the quality of each current face of ``face_ids`` (without a model:
    the embedding length is a model output and masked cases must not show it);
    a face that cannot be measured gets its one-line reason instead."""
    wanted = set(face_ids)
    found: Measured = {}
    for face in case.faces():
        if face.id not in wanted:
            continue
        if cancel is not None and cancel():
            raise Cancelled("face quality")
        try:
            found[face.id] = workflow.face_quality(case, face.label)
        except BadInputError as error:
            found[face.id] = str(error)
    return found


def short_reason(reasons: tuple[str, ...]) -> str:
    """The worst reason, and how many more, in lines of at most ``ROW_CHARS``:
    tree rows do not re-wrap when the panel (200 px at the least) is resized."""
    if not reasons:
        return ""
    more = f" +{len(reasons) - 1} more" if len(reasons) > 1 else ""
    return textwrap.fill(reasons[0] + more, ROW_CHARS, break_on_hyphens=False)


def row_text(quality: FaceQuality | str) -> str:
    """The face row's quality lines: ``quality: limited`` and its worst reason
    (the row's icon gives the rating's shape and colour)."""
    if isinstance(quality, str):
        return "quality: not measured (see tooltip)"
    rating = quality.summary.rating
    line = f"quality: {rating}"
    reason = short_reason(quality.summary.reasons)
    return f"{line}\n{reason}" if reason else line


def tooltip(label: str, quality: FaceQuality | str) -> str:
    """Rich text: the summary sentence, then each measure's value, unit, rating
    and definition."""
    if isinstance(quality, str):
        return html.escape(wording.quality_not_measured(label, quality))
    summary = quality.summary
    definitions = {m.id: m.definition for m in all_measures()}
    rows = []
    for value in quality.values:
        rating = rate(value)
        shown = figure_text(value) if value.available else wording.QUALITY_NOT_AVAILABLE
        rated = rating or wording.QUALITY_NO_THRESHOLD
        note = f" ({value.note})" if value.note else ""
        definition = html.escape(definitions.get(value.measure, "") + note)
        rows.append(
            "<tr>"
            f"<td>{html.escape(value.name)}</td>"
            f"<td>{html.escape(shown)}</td>"
            f"<td>{html.escape(value.unit)}</td>"
            f"<td>{html.escape(rated)}</td>"
            f"<td width='300'>{definition}</td>"
            "</tr>"
        )
    sentence = wording.quality_sentence(label, summary.rating, summary.reasons)
    return (
        f"<p><b>{html.escape(sentence)}</b></p>"
        "<table cellspacing='0' cellpadding='2'>"
        "<tr><th align='left'>measure</th><th align='left'>value</th>"
        "<th align='left'>unit</th><th align='left'>rating</th>"
        "<th align='left'>definition</th></tr>" + "".join(rows) + "</table>"
        f"<p>{html.escape(wording.QUALITY_INTRO)}</p>"
    )
