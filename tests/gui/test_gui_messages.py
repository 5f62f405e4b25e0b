"""What the examiner reads when something fails: an expected failure (the input,
a locked case, a folder that exists, the file system) is a warning naming the file,
the reason and what to do next; only a fault in XFR Desktop is an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox, QWidget

pytest.importorskip("PySide6")

from core.case.store import Case
from core.errors import BadInputError, NoFaceError
from xfr_desktop.case_controller import CaseController
from xfr_desktop.dialogs.new_case_dialog import NewCaseDialog
from xfr_desktop.errors import INTERNAL, WARNING, ErrorReporter

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def reporter(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    reporter = ErrorReporter(parent)
    yield reporter
    for box in parent.findChildren(QMessageBox):
        box.close()


def raised(error: BaseException) -> BaseException:
    """``error`` with a traceback, as the reporter gets it from a worker."""
    try:
        raise error
    except BaseException as caught:
        return caught


def assert_warning(reporter: ErrorReporter, title: str, first_line: str) -> None:
    report = reporter.last_report
    assert report is not None
    assert report.level == WARNING
    assert report.title == title
    assert "Internal" not in report.title and "fault" not in report.message
    assert report.message.splitlines()[-1] == first_line
    box = reporter.last_dialog
    assert box is not None and box.isVisible()  # shown, yet nothing blocked
    assert box.icon() == QMessageBox.Icon.Warning
    assert box.text() == report.message
    assert box.informativeText() == report.next_step


def test_a_bad_input_file_is_a_warning_naming_the_file_and_what_to_do(
    reporter, tmp_path
):
    path = tmp_path / "probe.jpg"
    reporter.report(
        raised(BadInputError("not an image file (unknown or unsupported format)", path))
    )
    assert_warning(
        reporter,
        "Cannot use this input",
        f"{path}: not an image file (unknown or unsupported format)",
    )
    assert reporter.last_report.next_step == (
        "Check the file named above, or choose another, then try again."
    )


def test_a_damaged_image_is_a_warning_not_an_internal_error(reporter, tmp_path):
    path = tmp_path / "still.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(OSError) as caught:
        Image.open(path).load()
    reporter.report(caught.value)  # the image library does not name the file
    report = reporter.last_report
    assert report.level == WARNING and report.title == "Cannot open file"
    assert report.message == "Truncated File Read"
    assert report.next_step.startswith("Try again; if it fails again, check")
    reporter.report(caught.value, where=path)  # the caller knows which file it read
    assert_warning(reporter, "Cannot open file", f"{path}: Truncated File Read")


def test_no_face_says_to_choose_another_image(reporter, tmp_path):
    path = tmp_path / "wall.jpg"
    reporter.report(raised(NoFaceError("no face found", path)))
    assert_warning(reporter, "Cannot use this input", f"{path}: no face found")
    assert "face is visible" in reporter.last_report.next_step


def test_a_locked_case_is_a_warning_that_offers_read_only(reporter, tmp_path):
    folder = tmp_path / "locked.xfrcase"
    with Case.create(folder, "2026-0001", "Examiner A"):
        with pytest.raises(BadInputError) as caught:
            Case.open(folder)
    reporter.report(caught.value, context="Could not open the case.")
    assert_warning(
        reporter,
        "Case in use",
        f"{folder}: the case is open in another window or process; close it there "
        "first (or open this one read-only)",
    )
    assert reporter.last_report.message.startswith("Could not open the case.\n\n")


def test_permission_denied_names_the_file_and_says_what_to_do(reporter, tmp_path):
    path = tmp_path / "report.pdf"
    reporter.report(raised(PermissionError(13, "Permission denied", str(path))))
    assert_warning(reporter, "Cannot open file", f"{path}: permission denied")
    assert reporter.last_report.next_step.startswith("Choose a folder you may write")


def test_a_missing_file_says_it_may_have_been_moved(reporter, tmp_path):
    path = tmp_path / "gone.jpg"
    with pytest.raises(OSError) as caught:
        path.open("rb")
    reporter.report(caught.value)
    assert_warning(reporter, "Cannot open file", f"{path}: No such file or directory")
    assert "moved or deleted" in reporter.last_report.next_step


def test_only_an_unexpected_error_is_internal_with_the_trace_in_details(reporter):
    reporter.report(raised(RuntimeError("index out of step")))
    report = reporter.last_report
    assert report.level == INTERNAL and report.title == "Internal error"
    assert report.message.startswith("RuntimeError: index out of step")
    assert "fault in" in report.message and report.next_step == ""
    assert "Traceback" in report.details and "index out of step" in report.details
    box = reporter.last_dialog
    assert box.icon() == QMessageBox.Icon.Critical
    assert box.detailedText() == report.details  # behind "Show Details..."
    assert "Traceback" not in box.text()


# ---- a new case in a folder that exists -------------------------------------------
@pytest.fixture
def taken_folder(tmp_path) -> Path:
    folder = tmp_path / "2026-0077.xfrcase"
    folder.mkdir()
    (folder / "notes.txt").write_text("someone's files")
    return folder


def test_a_new_case_in_an_existing_folder_says_exactly_that(
    qtbot, reporter, taken_folder
):
    controller = CaseController(reporter)
    controller.new_case(taken_folder, "2026-0077", "Examiner A", "", "")
    assert_warning(
        reporter,
        "Folder already exists",
        f"{taken_folder} already exists: choose another folder or open it with "
        "Open case…",
    )
    assert "Could not open" not in reporter.last_report.message
    assert controller.case is None
    assert sorted(p.name for p in taken_folder.iterdir()) == ["notes.txt"]


def test_a_failing_new_case_says_it_could_not_be_created(qtbot, reporter, tmp_path):
    controller = CaseController(reporter)
    with qtbot.waitSignal(reporter.reported, timeout=10_000):
        controller.new_case(tmp_path / "new.xfrcase", " ", "Examiner A", "", "")
    report = reporter.last_report
    assert report.level == WARNING
    assert report.message == "Could not create the case.\n\na case needs a case number"
    assert not (tmp_path / "new.xfrcase").exists()


def test_the_new_case_dialog_keeps_the_entries_and_names_the_existing_folder(
    qtbot, taken_folder, tmp_path
):
    dialog = NewCaseDialog("Examiner A")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.number.setText("2026-0077")
    dialog.folder.setText(str(taken_folder))
    dialog.accept()
    assert dialog.isVisible() and dialog.result() != NewCaseDialog.DialogCode.Accepted
    assert dialog.problem.isVisible()
    assert dialog.problem.text() == (
        f"{taken_folder} already exists: choose another folder or open it with "
        "Open case…"
    )
    dialog.folder.setText(str(tmp_path / "fresh.xfrcase"))
    assert not dialog.problem.isVisible()
    dialog.accept()
    assert dialog.result() == NewCaseDialog.DialogCode.Accepted
    assert dialog.values()[:2] == (str(tmp_path / "fresh.xfrcase"), "2026-0077")


def test_files_intake_refuses_are_a_warning_listing_each_file_and_reason(
    qtbot, reporter, tmp_path
):
    controller = CaseController(reporter)
    case = Case.create(tmp_path / "c.xfrcase", "2026-0079", "Examiner A")
    controller.case = case
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    try:
        with qtbot.waitSignal(reporter.reported, timeout=20_000):
            controller.add_files([str(text), str(empty)], "probe")
        report = reporter.last_report
        assert report.level == WARNING and report.title == "Some files were not added"
        assert report.message.splitlines() == [
            "2 file(s) could not be added to the case:",
            f"{text}: not an image file (unknown or unsupported format)",
            f"{empty}: file is empty (0 bytes)",
        ]
        assert report.next_step == (
            "Check these files, or choose others, and add them again."
        )
        assert reporter.last_dialog.icon() == QMessageBox.Icon.Warning
    finally:
        controller.close_case()


def _sqlite_error(make) -> BaseException:
    import sqlite3

    try:
        make(sqlite3)
    except sqlite3.Error as error:
        return error
    raise AssertionError("no sqlite error")


def _closed(sqlite3):
    connection = sqlite3.connect(":memory:")
    connection.close()
    connection.execute("SELECT 1")


def _busy(sqlite3, folder):
    holder = sqlite3.connect(folder / "busy.db", timeout=0)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    sqlite3.connect(folder / "busy.db", timeout=0).execute("SELECT * FROM t")


def test_a_fault_in_the_database_code_is_internal_a_busy_or_damaged_file_a_warning(
    tmp_path,
):
    """A misused connection or wrong SQL is the program's fault, never blamed on
    the examiner's set-up; a busy, damaged or unreadable file is the set-up's."""
    from xfr_desktop.errors import level

    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    assert level(_sqlite_error(_closed)) == INTERNAL
    no_table = _sqlite_error(
        lambda s: s.connect(":memory:").execute("SELECT * FROM nope")
    )
    assert level(no_table) == INTERNAL
    assert level(_sqlite_error(lambda s: _busy(s, tmp_path))) == WARNING
    garbage = str(tmp_path / "garbage.db")
    damaged = _sqlite_error(
        lambda s: s.connect(garbage).execute("SELECT * FROM sqlite_master")
    )
    assert level(damaged) == WARNING
