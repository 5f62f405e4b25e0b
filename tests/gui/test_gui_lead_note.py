"""The window's pair note says when a face is on an exhibit pulled in from a 1:N
gallery search - an investigative lead - without the search's score (the pair may
be masked), with the lead statement as its tooltip (issue 22, item 4).  The search
is recorded through the case's storage with a stand-in result: no model, no
gallery folder."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from core import wording
from core.case.gallery_searches import NewSearch, SearchCandidate
from core.case.store import Case
from core.faces.detect import Face
from xfr_desktop.widgets.processed_note import ProcessedNote, processed_pair_text

FACE = Face(
    (160.0, 40.0, 280.0, 190.0),
    np.array([[250, 100], [230, 100], [190, 100], [170, 100], [210, 150]], float),
    None,
    1.0,
    "manual",
)


def test_a_lead_says_so_under_the_pair(qtbot, tmp_path, astronaut_rgb):
    probe, candidate = tmp_path / "probe.png", tmp_path / "candidate.png"
    Image.fromarray(astronaut_rgb).save(probe)
    Image.fromarray(astronaut_rgb[:, ::-1].copy()).save(candidate)
    digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
    with Case.create(tmp_path / "case", "2026-22", "A. Examiner") as case:
        case.add_exhibits([probe], "probe")
        case.set_faces("Q1", [FACE], detector="manual")
        case.gallery_searches.record(
            NewSearch(
                "Q1", "0" * 64, "uuid-1", "d" * 64, 10, "g", "src", "m", "w" * 64,
                {"kind": "flat-ip", "exact_search": True}, 5,
                [SearchCandidate(1, "collins", "c/candidate.png", digest, 0, 0.93, 4,
                                 *SearchCandidate.encode(np.ones(4) / 2))],
            ),
            examination=case.examination(),
        )  # fmt: skip
        # the stand-in's template check (workflow.pull_candidate runs the model)
        case.gallery_searches.pull("S1", 1, candidate, reproduce=lambda *_: 1.0)
        case.set_faces("K1", [FACE], detector="manual")
        text = processed_pair_text(case, ["Q1", "K1"])
        assert case.verify().intact
    expected = wording.gallery_lead_note(
        "K1", 1, "S1", "Q1", "uuid-1", 10, None, gallery_digest="d" * 12
    )
    assert text == expected[:1].upper() + expected[1:] + "."
    assert "0.93" not in text
    note = ProcessedNote()
    qtbot.addWidget(note)
    note.show_text(text)
    assert not note.isHidden() and note.toolTip() == wording.GALLERY_SEARCH_LEAD
    note.show_text("")
    assert note.isHidden() and note.toolTip() == ""
