"""The start page's recent cases: listed by case number, title and examiner (read
read-only from each case); a case that cannot be opened is greyed with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("PySide6")

from core.case.store import Case
from core.case.summary import summarise_case
from xfr_desktop.panels.start_page import StartPage

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def closed_case(tmp_path) -> Path:
    folder = tmp_path / "2026-0077.xfrcase"
    Case.create(
        folder, "2026-0077", "Examiner A", title="Depot burglary", agency="Met"
    ).close()
    return folder


@pytest.fixture
def page(qtbot) -> StartPage:
    page = StartPage()
    qtbot.addWidget(page)
    return page


def test_a_recent_case_shows_number_title_examiner_and_folder(qtbot, page, closed_case):
    with Case.open(closed_case, read_only=True) as case:
        entries = len(case.audit_log())
    page.set_recent([str(closed_case)])
    item = page.recent.item(0)
    assert (
        item.text() == "2026-0077 — Depot burglary, Examiner A    (2026-0077.xfrcase)"
    )
    assert item.flags() & Qt.ItemFlag.ItemIsEnabled
    assert str(closed_case) in item.toolTip() and "Agency: Met" in item.toolTip()
    with qtbot.waitSignal(page.open_requested) as opened:
        page.recent.itemActivated.emit(item)  # what a double-click does
    assert opened.args == [str(closed_case)]
    # listing neither changed the case nor kept it locked
    with Case.open(closed_case) as case:
        assert len(case.audit_log()) == entries


def test_a_case_without_a_title_shows_the_examiner(page, tmp_path):
    folder = tmp_path / "untitled"
    Case.create(folder, "2026-0078", "Examiner B").close()
    page.set_recent([str(folder)])
    assert page.recent.item(0).text() == "2026-0078 — Examiner B    (untitled)"


def test_a_case_open_elsewhere_is_still_listed(page, closed_case):
    with Case.open(closed_case):  # another window holds it for writing
        page.set_recent([str(closed_case)])
    assert page.recent.item(0).text().startswith("2026-0077 — ")


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda folder: None, "moved or deleted"),
        (lambda folder: folder.mkdir(), "not a case folder (no case.sqlite inside)"),
    ],
    ids=["moved-or-deleted", "not-a-case"],
)
def test_a_case_that_cannot_be_opened_is_greyed_with_the_reason(
    page, tmp_path, make, reason
):
    folder = tmp_path / "gone.xfrcase"
    make(folder)
    page.set_recent([str(folder)])
    item = page.recent.item(0)
    assert item.text() == f"gone.xfrcase    —    cannot be opened: {reason}"
    assert item.flags() == Qt.ItemFlag.NoItemFlags  # greyed, no double-click
    assert item.toolTip() == f"{folder}\n{reason}"


def test_the_summary_reads_the_case_number_or_says_why_not(closed_case, tmp_path):
    summary = summarise_case(closed_case)
    assert summary.info is not None and summary.info.case_number == "2026-0077"
    assert summary.problem == ""
    missing = summarise_case(tmp_path / "missing")
    assert missing.info is None and missing.problem == "moved or deleted"


def test_no_recent_cases_says_so(page):
    page.set_recent([])
    assert page.recent.count() == 1
    assert page.recent.item(0).text() == "No recent cases yet."


def test_screenshot_of_the_start_page(page, closed_case, tmp_path):
    page.set_recent([str(closed_case), str(tmp_path / "moved.xfrcase"), str(tmp_path)])
    page.resize(1280, 720)
    shots = os.environ.get("XFR_SHOTS")  # set to keep a copy to look at
    target = Path(shots) if shots else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    assert page.grab().save(str(target / "start_page_recent.png"))


def test_listing_a_closed_case_writes_nothing_into_its_folder(closed_case):
    """A read-only sqlite open leaves -wal and -shm files in a case closed cleanly:
    the summary reads it as an immutable file instead."""
    from core.case.summary import summarise_case

    folder = Path(closed_case)
    before = sorted(p.name for p in folder.iterdir())
    assert "case.sqlite-wal" not in before  # closed cleanly (checkpointed)
    summary = summarise_case(folder)
    assert summary.info is not None and summary.problem == ""
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_fault_reading_one_recent_case_still_lists_the_others(
    page, closed_case, tmp_path, monkeypatch
):
    from core.case import summary as module

    real = module.summarise_case
    broken = tmp_path / "broken.xfrcase"

    def summarise(path):
        if Path(path) == broken:
            raise RuntimeError("a bug")
        return real(path)

    monkeypatch.setattr("xfr_desktop.panels.start_page.summarise_case", summarise)
    page.set_recent([str(broken), str(closed_case)])
    texts = [page.recent.item(i).text() for i in range(page.recent.count())]
    assert len(texts) == 2 and "internal error" in texts[0]
    assert texts[1].startswith("2026-0077")
