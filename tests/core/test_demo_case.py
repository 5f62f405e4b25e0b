"""The demo case is one case in the user's data folder: reused while it verifies,
made when missing, and made anew beside one that does not verify (never deleted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.case import demo
from core.case.demo import DEMO_CASE_NUMBER, demo_cases_folder, open_demo_case
from core.case.store import Case, CaseLockedError
from core.io.userdirs import user_data_dir
from tests.case_tampering import tamper


def stand_in_demo(
    folder: str | Path,
    *,
    user: str | None = None,
    model=None,
    detector=None,
    cctv: bool = False,
) -> Case:
    """A demo case without the photos (no dlib needed): what reuse looks at."""
    return Case.create(folder, DEMO_CASE_NUMBER, "Demo examiner", user=user)


@pytest.fixture
def made(monkeypatch) -> list[Path]:
    """Replace the demo's making; lists the folders it was made in."""
    folders: list[Path] = []

    def create(folder, **kwargs) -> Case:
        folders.append(Path(folder))
        return stand_in_demo(folder, **kwargs)

    monkeypatch.setattr(demo, "create_demo_case", create)
    return folders


def test_the_demo_case_lives_in_the_user_data_folder():
    assert demo_cases_folder() == user_data_dir() / "demo-cases"


def test_the_demo_case_is_made_once_then_reused(made):
    first = open_demo_case()
    assert first.created and first.note == ""
    folder = first.case.folder
    assert Path(folder) == demo_cases_folder() / "demo.xfrcase"
    first.case.close()
    again = open_demo_case()
    with again.case:
        assert not again.created and again.note == ""
        assert again.case.folder == folder
        assert not again.case.read_only
    assert made == [Path(folder)]
    assert sorted(p.name for p in demo_cases_folder().iterdir()) == ["demo.xfrcase"]


def test_a_demo_case_that_does_not_verify_is_kept_and_a_new_one_made(made, tmp_path):
    open_demo_case(tmp_path).case.close()
    old = tmp_path / "demo.xfrcase"
    tamper(old, "UPDATE case_info SET title = 'altered outside XFR'")
    replaced = open_demo_case(tmp_path)
    with replaced.case:
        assert replaced.created
        assert Path(replaced.case.folder) == tmp_path / "demo-2.xfrcase"
    assert replaced.note.startswith(f"{old}: the demo case does not verify (")
    assert replaced.note.endswith(
        f"); it was kept, and a new demo case was made in {tmp_path / 'demo-2.xfrcase'}"
    )
    assert (old / "case.sqlite").is_file()  # never deleted
    # the new one is reused from now on; the damaged one stays as it is
    again = open_demo_case(tmp_path)
    with again.case:
        assert not again.created
        assert Path(again.case.folder) == tmp_path / "demo-2.xfrcase"
    assert made == [old, tmp_path / "demo-2.xfrcase"]


def test_a_folder_that_is_no_case_is_left_alone(made, tmp_path):
    (tmp_path / "demo.xfrcase").mkdir()
    (tmp_path / "demo.xfrcase" / "notes.txt").write_text("mine")
    (tmp_path / "demo-2.xfrcase").write_text("a file in the way")
    opened = open_demo_case(tmp_path)
    with opened.case:
        assert Path(opened.case.folder) == tmp_path / "demo-3.xfrcase"
    assert "not a case folder" in opened.note
    assert (tmp_path / "demo.xfrcase" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "demo-2.xfrcase").read_text() == "a file in the way"


def test_a_demo_case_open_elsewhere_is_reported_not_replaced(made, tmp_path):
    with open_demo_case(tmp_path).case:  # another window has it
        with pytest.raises(CaseLockedError):
            open_demo_case(tmp_path)
    assert made == [tmp_path / "demo.xfrcase"]


@pytest.mark.slow
@pytest.mark.dlib
def test_the_real_demo_case_is_reused(tmp_path):
    first = open_demo_case(tmp_path)
    with first.case:
        assert first.created and [e.mark for e in first.case.exhibits()] == [
            "Q1",
            "K1",
            "K2",
        ]
    again = open_demo_case(tmp_path)
    with again.case:
        assert not again.created and again.case.folder == first.case.folder


def test_after_a_gap_in_the_numbers_the_new_demo_case_is_the_newest(made, tmp_path):
    """demo-5 damaged beside an intact demo: the new case is demo-6 and is reused
    from then on (numbered after the count it was demo-2, below the damaged
    demo-5, which was then tried and replaced again at every start)."""
    open_demo_case(tmp_path).case.close()
    stand_in_demo(tmp_path / "demo-5.xfrcase").close()
    tamper(tmp_path / "demo-5.xfrcase", "UPDATE case_info SET title = 'altered'")
    replaced = open_demo_case(tmp_path)
    with replaced.case:
        assert Path(replaced.case.folder) == tmp_path / "demo-6.xfrcase"
    again = open_demo_case(tmp_path)
    with again.case:
        assert not again.created and again.note == ""
        assert Path(again.case.folder) == tmp_path / "demo-6.xfrcase"
