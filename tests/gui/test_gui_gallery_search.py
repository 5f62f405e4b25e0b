"""The window's reference-gallery search (issue 22, item 4): a case face searched
against a real gallery built by ``core.gallery.build`` (the real dlib model on
shipped images), the candidates listed under the investigative-lead statement, a
candidate pulled into the case as a known exhibit (asking for its image when it
is not where the gallery's source had it), scores masked while sequential
unmasking hides them, and the action disabled on a read-only case."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from core import compute, wording
from core.case import workflow
from core.case.acev import Analysis
from core.case.store import Case
from core.gallery.build import build_gallery
from core.models import registry
from tests.gallery_people import write_people
from tests.gui.tiny_case import WAIT_MS, make_window
from xfr_desktop import workers
from xfr_desktop.dialogs import gallery_search_dialog as dialog_module
from xfr_desktop.dialogs.gallery_search_dialog import (
    COLUMNS,
    MASKED_CELL,
    READ_ONLY_TIP,
    GallerySearchDialog,
)

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture(scope="module")
def identities(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    return write_people(
        tmp_path_factory.mktemp("identities"), astronaut_rgb, grace_hopper_path
    )


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, identities, dlib_model) -> Path:
    out = tmp_path_factory.mktemp("galleries") / "people.xfrgallery"
    build_gallery(identities, dlib_model, out)
    return out


def make_case(folder: Path, astronaut_rgb, *, sequential_unmasking=False) -> Path:
    """A case with one probe: another photo of 'collins' (darker, noisy)."""
    rng = np.random.default_rng(1)
    darker = astronaut_rgb.astype(float) * 0.8 + rng.normal(0, 6, astronaut_rgb.shape)
    probe = folder.parent / f"{folder.name}-probe.png"
    Image.fromarray(np.clip(darker, 0, 255).astype(np.uint8)).save(probe)
    with Case.create(
        folder, "2026-22", "A. Examiner", sequential_unmasking=sequential_unmasking
    ) as case:
        case.add_exhibits([probe], "probe")
        workflow.detect_faces(case, "Q1")
    return folder


def open_window(qtbot, case_path: Path, dlib_model):
    window = make_window(
        qtbot, registry(), case_path, model_id=dlib_model.model_id, show_dialogs=False
    )
    assert window.model is dlib_model  # the registry's one instance
    busy = (window.controller._ranker, window.compare._loader)
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in busy), timeout=WAIT_MS)
    return window


def search(qtbot, dialog: GallerySearchDialog, gallery: Path, top: int) -> None:
    dialog.gallery_edit.setText(str(gallery))
    dialog.top_spin.setValue(top)
    with qtbot.waitSignal(dialog.searcher.finished, timeout=WAIT_MS):
        dialog.search_button.click()


def pull(qtbot, dialog: GallerySearchDialog, rank: int) -> None:
    dialog.select_rank(rank)
    assert dialog.pull_button.isEnabled()
    with qtbot.waitSignal(dialog.puller.finished, timeout=WAIT_MS):
        dialog.pull_button.click()


def test_search_lists_the_candidates_under_the_lead_statement_and_pulls_one(
    qtbot, tmp_path, astronaut_rgb, gallery, dlib_model
):
    window = open_window(qtbot, make_case(tmp_path / "case", astronaut_rgb), dlib_model)
    assert window.gallery_search_action.isEnabled()
    assert window.compare.gallery_search.isEnabled()
    window.compare.gallery_search.click()  # the button by the 1:N table
    dialog = window.gallery_search_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.probe_combo.currentText() == "Q1"  # the comparison's probe
    assert dialog.top_spin.value() == 50
    assert (dialog.top_spin.minimum(), dialog.top_spin.maximum()) == (1, 1000)
    assert dialog.recorded_searches() == []
    assert dialog.lead_label.text() == wording.GALLERY_SEARCH_LEAD
    assert dialog.lead_label.isVisible()

    search(qtbot, dialog, gallery, 3)
    assert window.errors.last_report is None
    case = window.controller.case
    (recorded,) = case.gallery_searches.searches(examination=case.examination())
    assert dialog.search == recorded and dialog.recorded_searches() == ["S1"]
    rows = dialog.rows()
    assert [c.rank for c in recorded.candidates] == [1, 2, 3]
    assert rows == [
        (str(c.rank), c.identity, c.file, f"{c.similarity:.4f}", "")
        for c in recorded.candidates
    ]
    assert rows[0][1] == "collins"  # the probe's own identity comes first
    assert "S1" in dialog.summary.text() and recorded.gallery_uuid in (
        dialog.summary.text()
    )

    # the gallery's source folder is still where it was: no question asked
    marks_before = [e.mark for e in case.exhibits()]
    with qtbot.waitSignal(window.controller.exhibits_changed, timeout=WAIT_MS):
        pull(qtbot, dialog, 1)
    assert window.errors.last_report is None
    new = [e for e in case.exhibits() if e.mark not in marks_before]
    assert [(e.mark, e.role) for e in new] == [("K1", "gallery")]
    assert new[0].sha256 == recorded.candidate(1).image_sha256
    lead = case.gallery_searches.lead("K1", examination=case.examination())
    assert lead is not None and lead.search.name == "S1" and lead.candidate.rank == 1
    assert "K1" in [f.label for f in case.faces("K1")]  # found as at intake
    assert dialog.rows()[0][len(COLUMNS) - 1] == "K1"
    dialog.select_rank(1)
    assert not dialog.pull_button.isEnabled()  # already in the case
    # the window's views re-read the case: the new exhibit is listed
    qtbot.waitUntil(
        lambda: (
            "K1" in window.compare.gallery_combo.currentText()
            or window.compare.gallery_combo.findText("K1") >= 0
        ),
        timeout=WAIT_MS,
    )
    dialog.close()

    # an earlier search opens from the list, in a new dialog
    again = window.search_gallery()
    assert again.recorded_searches() == ["S1"]
    assert again.top_spin.value() == 50 and again.rows() == []
    again.open_search("S1")
    assert again.rows()[0][len(COLUMNS) - 1] == "K1"
    assert again.top_spin.value() == 3  # Search again repeats it
    assert again.gallery_edit.text() == str(gallery.absolute())
    again.close()


def test_a_missing_image_is_asked_for_and_the_pull_retried_with_it(
    qtbot, tmp_path, astronaut_rgb, identities, dlib_model, monkeypatch
):
    # a gallery of its own, whose source folder is then moved away
    source = tmp_path / "source"
    shutil.copytree(identities, source)
    built = tmp_path / "moved.xfrgallery"
    build_gallery(source, dlib_model, built)
    window = open_window(qtbot, make_case(tmp_path / "case", astronaut_rgb), dlib_model)
    dialog = window.search_gallery()
    search(qtbot, dialog, built, 2)
    moved = tmp_path / "elsewhere"
    source.rename(moved)
    candidate = dialog.search.candidate(2)
    asked: list[str] = []

    def answer(parent, caption, folder, filters):
        asked.append(caption)
        return str(moved / candidate.file), filters

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(answer))
    pull(qtbot, dialog, 2)
    assert len(asked) == 1 and candidate.file in asked[0]
    assert window.errors.last_report is None
    lead = window.controller.case.gallery_searches.lead(
        "K1", examination=window.controller.case.examination()
    )
    assert lead is not None and lead.candidate.rank == 2
    assert lead.image_path == str(moved / candidate.file)

    # the examiner cancels the question: nothing is added
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a: ("", ""))
    )
    dialog.select_rank(1)
    dialog.pull_button.click()
    assert not dialog.puller.is_busy()
    assert "nothing was added" in dialog.status.text()
    assert (
        window.controller.case.gallery_searches.lead(
            "K2", examination=window.controller.case.examination()
        )
        is None
    )
    dialog.close()


def test_a_wrong_image_goes_to_the_one_error_path_and_adds_nothing(
    qtbot, tmp_path, astronaut_rgb, gallery, dlib_model, monkeypatch
):
    window = open_window(qtbot, make_case(tmp_path / "case", astronaut_rgb), dlib_model)
    dialog = window.search_gallery()
    search(qtbot, dialog, gallery, 2)
    other = tmp_path / "other.png"
    Image.fromarray(astronaut_rgb[::-1].copy()).save(other)
    dialog.pull("S1", 1, str(other))
    qtbot.waitUntil(lambda: not dialog.puller.is_busy(), timeout=WAIT_MS)
    report = window.errors.last_report
    assert report is not None and "SHA-256" in report.message
    assert "Could not pull the candidate" in report.message
    assert [e.mark for e in window.controller.case.exhibits()] == ["Q1"]
    dialog.close()


def test_a_search_waiting_for_the_cores_shows_it_and_can_be_cancelled(
    qtbot, tmp_path, astronaut_rgb, gallery, dlib_model
):
    window = open_window(qtbot, make_case(tmp_path / "case", astronaut_rgb), dlib_model)
    dialog = window.search_gallery()
    dialog.gallery_edit.setText(str(gallery))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # another model job holds the cores
        with compute.model_job("explanation"):
            holding.set()
            release.wait(WAIT_MS / 1000)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(WAIT_MS / 1000)
        dialog.search_button.click()
        # core.compute's own words, through the runner's progress
        qtbot.waitUntil(
            lambda: "explanation is running" in dialog.progress.format(),
            timeout=WAIT_MS,
        )
        assert compute.activity() == ("explanation", ["gallery search"])
        assert dialog.cancel_button.isEnabled()
        assert not dialog.search_button.isEnabled()  # one search at a time
        with qtbot.waitSignal(dialog.searcher.finished, timeout=WAIT_MS):
            dialog.cancel_button.click()
    finally:
        release.set()
        holder.join(WAIT_MS / 1000)
    assert dialog.status.text() == "Search cancelled: nothing was recorded."
    assert (
        window.controller.case.gallery_searches.searches(
            examination=window.controller.case.examination()
        )
        == []
    )
    assert dialog.search_button.isEnabled() and not dialog.progress.isVisible()
    dialog.close()


def test_scores_are_masked_while_sequential_unmasking_hides_them(
    qtbot, tmp_path, astronaut_rgb, gallery, dlib_model
):
    case_path = make_case(tmp_path / "case", astronaut_rgb, sequential_unmasking=True)
    window = open_window(qtbot, case_path, dlib_model)
    dialog = window.search_gallery()
    search(qtbot, dialog, gallery, 3)
    recorded = window.controller.case.gallery_searches.search(
        "S1", examination=window.controller.case.examination()
    )
    rows = dialog.rows()
    assert [r[3] for r in rows] == [MASKED_CELL] * 3
    assert [r[:3] for r in rows] == [
        (str(c.rank), c.identity, c.file) for c in recorded.candidates
    ]
    text = " ".join(" ".join(r) for r in rows) + dialog.summary.text()
    for candidate in recorded.candidates:
        assert f"{candidate.similarity:.4f}" not in text
    assert "masked" in dialog.summary.text()
    dialog.close()


def test_the_action_is_disabled_on_a_read_only_case(
    qtbot, tmp_path, astronaut_rgb, dlib_model
):
    case_path = make_case(tmp_path / "case", astronaut_rgb)
    window = make_window(qtbot, registry(), model_id=dlib_model.model_id)
    assert not window.gallery_search_action.isEnabled()  # no case open
    assert window.gallery_search_action.toolTip() == dialog_module.NO_CASE_TIP
    window.controller.open_case(case_path, read_only=True)
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    for searching in (window.gallery_search_action, window.compare.gallery_search):
        assert not searching.isEnabled()
        assert searching.toolTip() == READ_ONLY_TIP
    assert window.search_gallery() is None


SUITABLE = Analysis("suitable", visible=("eyes", "nose"), not_visible=("ears",))


def test_a_pulled_candidate_s_score_shows_once_its_pair_is_unmasked(
    tmp_path, astronaut_rgb, gallery, dlib_model
):
    """The dialog's hidden ranks are the case side's (one function), for the
    session's examination: the examiner's unmasking shows rank 2 to her, not
    to a blind verifier."""
    case_path = make_case(tmp_path / "case", astronaut_rgb, sequential_unmasking=True)
    with Case.open(case_path) as case:
        exam = case.examination()
        workflow.search_gallery(case, "Q1", gallery, 3, dlib_model, examination=exam)
        workflow.pull_candidate(case, "S1", 2, model=dlib_model)

        def hidden(examination):
            search = dialog_module.session_search(case, examination, "S1")
            return dialog_module.hidden_ranks(search)

        assert hidden(exam) == {1, 2, 3}
        exam.record_analysis("Q1", SUITABLE)
        exam.record_evaluation("Q1", "K1", "moderate_same")
        exam.unmask("Q1", "K1")
        assert hidden(exam) == {1, 3}
        assert hidden(None) == {1, 2, 3}  # nothing to ask: hidden
        case.user = "B. Verifier"
        assert hidden(case.examination(blind=True)) == {1, 2, 3}


def hold_the_cores():
    """Another model job holds the cores until ``release`` is set."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with compute.model_job("explanation"):
            holding.set()
            release.wait(WAIT_MS / 1000)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(WAIT_MS / 1000)
    return holder, release


@pytest.mark.parametrize("closing", ["dialog", "case"])
def test_closing_the_dialog_or_the_case_stops_its_search_first(
    qtbot, tmp_path, astronaut_rgb, gallery, dlib_model, closing
):
    """R2-3: a search waiting for the cores is cancelled and waited for when the
    dialog or the case closes; nothing runs on against the closed case, and no
    untrue "read-only" error follows."""
    window = open_window(qtbot, make_case(tmp_path / "case", astronaut_rgb), dlib_model)
    dialog = window.search_gallery()
    dialog.gallery_edit.setText(str(gallery))
    holder, release = hold_the_cores()
    try:
        dialog.search_button.click()
        qtbot.waitUntil(
            lambda: "explanation is running" in dialog.progress.format(),
            timeout=WAIT_MS,
        )
        if closing == "dialog":
            dialog.close()
        else:
            window.controller.close_case()
        # waited for: it ended before the close returned (no longer queued)
        assert dialog.searcher.wait(0) and dialog.puller.wait(0)
        assert compute.activity() == ("explanation", [])
    finally:
        release.set()
        holder.join(WAIT_MS / 1000)
    assert workers.wait_all(WAIT_MS / 1000)
    qtbot.wait(50)  # deliver anything queued
    assert window.errors.last_report is None
    if closing == "dialog":
        case = window.controller.case
        assert case.gallery_searches.searches(examination=None) == []
    else:
        with Case.open(tmp_path / "case", read_only=True) as closed:
            assert closed.gallery_searches.searches(examination=None) == []
