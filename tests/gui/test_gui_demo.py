"""Open demo case (and ``xfr-desktop --demo``) reuse the one demo case; one that
does not verify is kept and the examiner is told a new one was made beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox, QWidget

pytest.importorskip("PySide6")

from core.case import demo
from core.case.demo import demo_cases_folder
from tests.case_tampering import tamper
from tests.core.test_demo_case import stand_in_demo
from xfr_desktop.case_controller import CaseController
from xfr_desktop.errors import WARNING, ErrorReporter

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def controller(qtbot, monkeypatch):
    monkeypatch.setattr(demo, "create_demo_case", stand_in_demo)  # no dlib needed
    parent = QWidget()
    qtbot.addWidget(parent)
    controller = CaseController(ErrorReporter(parent), parent)
    yield controller
    controller.close_case()
    for box in parent.findChildren(QMessageBox):
        box.close()


def open_demo(qtbot, controller: CaseController) -> str:
    with qtbot.waitSignal(controller.case_opened, timeout=10_000):
        controller.open_demo()
    assert controller.case is not None
    return str(controller.case.folder)


def test_the_demo_case_is_reused_from_the_user_data_folder(qtbot, controller):
    folder = open_demo(qtbot, controller)
    assert Path(folder) == demo_cases_folder() / "demo.xfrcase"
    controller.close_case()
    assert open_demo(qtbot, controller) == folder
    assert controller.errors.last_report is None  # nothing to say
    assert [p.name for p in demo_cases_folder().iterdir()] == ["demo.xfrcase"]


def test_a_damaged_demo_case_is_kept_and_the_examiner_told(qtbot, controller):
    old = Path(open_demo(qtbot, controller))
    controller.close_case()
    tamper(old, "UPDATE case_info SET title = 'altered outside XFR'")
    with qtbot.waitSignal(controller.errors.reported, timeout=10_000):
        new = open_demo(qtbot, controller)
    assert Path(new) == old.with_name("demo-2.xfrcase")
    report = controller.errors.last_report
    assert report.level == WARNING and report.title == "A new demo case was made"
    assert report.message.startswith(f"{old}: the demo case does not verify (")
    assert report.next_step.startswith("Nothing was deleted")
    assert controller.errors.last_dialog.informativeText() == report.next_step
    assert (old / "case.sqlite").is_file()


def test_the_video_demo_is_its_own_case_beside_the_demo(qtbot, controller):
    plain = open_demo(qtbot, controller)
    with qtbot.waitSignal(controller.case_opened, timeout=10_000):
        controller.open_demo(cctv=True)
    assert controller.case is not None
    video = Path(controller.case.folder)
    assert video == demo_cases_folder() / "cctv" / "demo.xfrcase"
    assert open_demo(qtbot, controller) == plain
