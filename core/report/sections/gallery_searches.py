"""1:N searches against reference galleries (issue 22, item 4): which face was
searched against which gallery (uuid, digest, size), with which model, index and
k, its full ranked list (so a reader sees which higher-ranked candidates were not
pulled), and which candidates were pulled into the case - each an investigative
lead.  A score is printed only where the case shows it (``GallerySearch.score``,
read with the report's examination - the first examiner's work, as the report
follows it: not while the pair is masked by sequential unmasking).  Nothing
is printed for a case that searched no gallery."""

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


PER_ROW = 2  # candidates side by side in the ranked list (k may be 1000)


def _ranked(item: SearchContent, styles: Styles) -> Flowable:
    """The search's full ranked list, compact: rank, cosine (or "masked"),
    identity / file, and the exhibit it became in the case."""
    s = item.search
    marks = {lead.candidate.rank: lead.mark for lead in item.pulled}
    one = ("Rank", "Cosine", "Gallery identity / file", "In case")
    header = [styles.p(h, styles.small) for h in one * PER_ROW]
    cells: list[list[Flowable]] = []
    for c in s.candidates:
        score = s.score(c.rank)
        cells.append(
            [
                styles.p(str(c.rank), styles.small),
                styles.p("masked" if score is None else f"{score:.4f}", styles.small),
                styles.p(f"{styles.u(c.identity)} / {styles.u(c.file)}", styles.small),
                styles.p(styles.u(marks.get(c.rank, "-")), styles.small),
            ]
        )
    half = (len(cells) + PER_ROW - 1) // PER_ROW  # down the first column, then on
    rows = [header]
    for i in range(half):
        row: list[Flowable] = []
        for j in range(PER_ROW):
            at = i + j * half
            row += cells[at] if at < len(cells) else [styles.p("", styles.small)] * 4
        rows.append(row)
    width = TEXT_WIDTH / PER_ROW
    widths = [9 * mm, 13 * mm, width - 35 * mm, 13 * mm] * PER_ROW
    return table(rows, widths)


def _search(item: SearchContent, styles: Styles) -> list[Flowable]:
    s = item.search
    probe = f"{styles.u(s.probe_label)} (template SHA-256 {s.probe_template_sha256})"
    if not s.probe_current:
        probe += f"; {styles.u(wording.gallery_probe_replaced(s.probe_label))}"
    if item.probe_note:
        probe += f"; {styles.u(item.probe_note)}"
    facts = [
        ("Probe", probe),
        (
            "Gallery",
            f"uuid {s.gallery_uuid} (digest {s.short_digest}...), "
            f"{s.gallery_size} templates",
        ),
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
        styles.p(
            f"The {len(s.candidates)} candidates of {s.name}, best first"
            + (
                "; none was pulled into the case."
                if not item.pulled
                else f"; {len(item.pulled)} pulled into the case."
            ),
            styles.small,
        ),
        _ranked(item, styles),
        Spacer(1, 1 * mm),
    ]
    hidden = [c.rank for c in s.candidates if s.score(c.rank) is None]
    if hidden:
        # some shown beside "masked" ones: say which are hidden, not "not shown"
        partly = len(hidden) < len(s.candidates)
        story.append(
            styles.p(
                wording.GALLERY_SCORES_PARTLY_MASKED
                if partly
                else wording.GALLERY_SCORES_MASKED,
                styles.small,
            )
        )
    if item.scale and len(hidden) < len(s.candidates):
        story.append(styles.p(styles.u(item.scale), styles.small))
    if item.pulled:
        header = ("Exhibit", "Rank", "Image SHA-256", "Template reproduced")
        rows = [[styles.p(h, styles.small) for h in header]]
        for lead in item.pulled:
            rows.append(
                [
                    styles.p(styles.u(lead.mark), styles.small),
                    styles.p(f"{lead.candidate.rank}", styles.small),
                    styles.p(lead.candidate.image_sha256, styles.hash),
                    styles.p(f"cosine {lead.template_cosine:.6f}", styles.small),
                ]
            )
        story.append(table(rows, [16 * mm, 12 * mm, TEXT_WIDTH - 63 * mm, 35 * mm]))
    return story


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    if not content.gallery_searches:
        return []
    story: list[Flowable] = [
        CondPageBreak(60 * mm),
        styles.p(wording.GALLERY_SEARCHES_HEADING, styles.h1),
        styles.p(wording.GALLERY_SEARCHES_INTRO),
    ]
    for item in content.gallery_searches:
        story += _search(item, styles)
    for mark in content.leads:
        note = content.lead_note(mark) or ""  # scored only where the case shows it
        story.append(
            styles.p(f"{styles.u(note[:1].upper() + note[1:])}.", styles.small)
        )
    return story
