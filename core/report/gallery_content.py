"""The report's record of a case's searches against reference galleries (issue
22, item 4): each search with its gallery (uuid, digest, size), model, index and
k, the candidates pulled into the case from it, and for each such exhibit the
sentence that it is an investigative lead (``workflow.lead_note``), which the
comparison pages print beside its scores.  Gathered here so that the sections lay
it out without the case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.case import workflow
from core.case.gallery_searches import GallerySearch, Lead
from core.case.store import Case


@dataclass(frozen=True)
class SearchContent:
    """One recorded search and the candidates pulled into the case from it."""

    search: GallerySearch  # its scores: ``search.score(rank)``, None if masked
    pulled: tuple[Lead, ...]
    probe_note: str | None = None  # the probe is a processed copy (derived_note)
    scale: str | None = None  # what a cosine means for the search's model


def gather_gallery_searches(
    case: Case,
) -> tuple[tuple[SearchContent, ...], Mapping[str, str], Mapping[str, str]]:
    """Every search of the case (oldest first) with its pulled candidates, and
    the lead sentence of every pulled exhibit by mark: with the search's score
    where the case shows it (``Lead.score``: not while the pair is masked), and
    without it."""
    # the report follows the first examiner's work (``case.examination()``, as
    # its comparisons and audit trail do; it is never made in a blind session)
    examination = case.examination()
    leads = case.gallery_searches.leads(examination=examination)
    searches = tuple(
        SearchContent(
            s,
            tuple(lead for lead in leads if lead.search.id == s.id),
            workflow.search_probe_note(case, s),
            workflow.search_scale_note(s),
        )
        for s in case.gallery_searches.searches(examination=examination)
    )
    marks = [lead.mark for lead in leads]
    return (
        searches,
        workflow.lead_notes(case, marks, examination=examination),
        workflow.lead_notes(case, marks, examination=None),
    )
