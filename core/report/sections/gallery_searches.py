"""1:N searches against reference galleries (issue 22, item 4): which face was
searched against which gallery (uuid, digest, size), with which model, index and
k, and which candidates were pulled into the case - each an investigative lead,
at the rank and score the search gave it.  Nothing is printed for a case that
searched no gallery."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, Spacer

from core import wording
from core.report.content import ReportContent
from core.report.gallery_content import SearchContent
from core.report.layout import TEXT_WIDTH, Styles, table

name = "gallery_searches"


def _index_words(item: SearchContent) -> str:
    spec = item.search.index_spec
    if item.search.exact:
        return "exact search (every template compared)"
    return (
        f"approximate search ({spec.get('kind')}, M={spec.get('m')}, efSearch="
        f"{spec.get('ef_search')}), the top {spec.get('rerank_factor')} x k "
        "candidates re-scored exactly"
    )


def _masked_marks(content: ReportContent) -> set[str]:
    """Exhibits in a pair whose model results are masked (sequential unmasking):
    their search scores are not printed either."""
    return {
        face.mark for item in content.comparisons if item.masked for face in item.faces
    }


def _search(item: SearchContent, styles: Styles, masked: set[str]) -> list[Flowable]:
    s = item.search
    facts = [
        (
            "Probe",
            f"{styles.u(s.probe_label)} (template SHA-256 {s.probe_template_sha256})",
        ),
        ("Gallery", f"uuid {s.gallery_uuid}, {s.gallery_size} templates"),
        ("Gallery digest", f"{s.gallery_digest} (SHA-256 of manifest.sha256)"),
        ("Model", f"{styles.u(s.model_id)}, weights SHA-256 {s.model_sha256}"),
        ("Index, k", f"{_index_words(item)}; k = {s.k}"),
        (
            "Searched",
            f"{s.created} by {styles.u(s.created_by)}, XFR {s.software_version}",
        ),
    ]
    rows = [[styles.p(k, styles.small), styles.p(v, styles.hash)] for k, v in facts]
    story: list[Flowable] = [
        styles.p(f"Search {s.name}", styles.h2),
        table(rows, [28 * mm, TEXT_WIDTH - 28 * mm], header=False),
        Spacer(1, 2 * mm),
    ]
    if not item.pulled:
        story.append(
            styles.p(
                f"No candidate of {s.name} was pulled into the case "
                f"({len(s.candidates)} recorded in the case file).",
                styles.small,
            )
        )
        return story
    header = ("Exhibit", "Rank", "Cosine", "Gallery identity / file", "Image SHA-256")
    rows = [[styles.p(h, styles.small) for h in header]]
    for lead in item.pulled:
        c = lead.candidate
        rows.append(
            [
                styles.p(styles.u(lead.mark), styles.small),
                styles.p(f"{c.rank} of {len(s.candidates)}", styles.small),
                styles.p(
                    "masked" if lead.mark in masked else f"{c.similarity:.4f}",
                    styles.small,
                ),
                styles.p(f"{styles.u(c.identity)} / {styles.u(c.file)}", styles.small),
                styles.p(c.image_sha256, styles.hash),
            ]
        )
    story.append(
        table(
            rows,
            [16 * mm, 16 * mm, 16 * mm, 45 * mm, TEXT_WIDTH - 93 * mm],
        )
    )
    return story


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    if not content.gallery_searches:
        return []
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p(wording.GALLERY_SEARCHES_HEADING, styles.h1),
        styles.p(wording.GALLERY_SEARCHES_INTRO),
    ]
    masked = _masked_marks(content)
    for item in content.gallery_searches:
        story += _search(item, styles, masked)
    for mark in content.leads:
        note = content.lead_note(mark, scored=mark not in masked) or ""
        story.append(
            styles.p(f"{styles.u(note[:1].upper() + note[1:])}.", styles.small)
        )
    return story
