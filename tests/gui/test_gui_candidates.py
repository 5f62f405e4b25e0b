"""1:N for every probe in the workspace: the candidates table of the probe shown
(distance, cosine, LR, decision), sorted by the decision score and by any header,
re-ranked when faces change.  A tiny model and synthetic images (no dlib): the
face finder is replaced by one fixed face per exhibit."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, Qt

from core.case import workflow
from core.case.workflow import CandidateRow
from core.models import Threshold
from core.wording import ACCEPT_WORDS, REJECT_WORDS
from tests.gui.tiny_case import (
    WAIT_MS,
    TinyDistanceModel,
    add_exhibits,
    make_window,
    new_case,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.widgets.candidates_table import (
    COSINE,
    DISTANCE,
    GALLERY,
    LR,
    CandidatesTable,
)

pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    use_one_fixed_face(monkeypatch)
    models = tiny_registry(TinyDistanceModel)
    return make_window(qtbot, models, new_case(tmp_path / "case"))


def ranked(window: MainWindow, probes: list[str], gallery: int) -> bool:
    case, model = window.controller.case, window.model
    return not window.controller._ranker.is_busy() and all(
        len(workflow.candidate_rows(case, probe, model)) == gallery for probe in probes
    )


def column(table: CandidatesTable, index: int) -> list[str]:
    return [table.item(row, index).text() for row in range(table.rowCount())]


@pytest.fixture
def two_probes(qtbot, window, tmp_path):
    add_exhibits(qtbot, window, write_images(tmp_path, ["q1", "q2"]), "probe")
    add_exhibits(qtbot, window, write_images(tmp_path, ["k1", "k2", "k3"]), "gallery")
    qtbot.waitUntil(lambda: ranked(window, ["Q1", "Q2"], 3), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    return window


def test_a_second_probe_gets_its_own_ranked_table(qtbot, two_probes, tmp_path):
    window = two_probes
    compare, case = window.compare, window.controller.case
    window.compare.select("Q2", "probe")  # shown at once: no ranking to wait for
    table = compare.candidates
    assert table.rowCount() == 3
    assert "Candidates for Q2" in compare.candidates_title.text()
    q2 = case.face("Q2").id
    stored = {c.id: c for c in case.comparisons()}
    ids = [table.item(r, GALLERY).data(Qt.ItemDataRole.UserRole) for r in range(3)]
    expected = workflow.candidate_rows(case, "Q2", window.model)
    assert ids == [r.gallery_label for r in expected]
    assert {stored[r.comparison_id].probe_face_id for r in expected} == {q2}
    assert column(table, DISTANCE) == [f"{r.distance:.4f}" for r in expected]
    assert column(table, COSINE) == [f"{r.similarity:.4f}" for r in expected]
    words = {"accept": ACCEPT_WORDS, "reject": REJECT_WORDS}
    assert column(table, 5) == [words[r.decision] for r in expected]
    assert table.isColumnHidden(LR)  # the tiny model has no calibration
    qtbot.waitUntil(
        lambda: compare.loaded is not None and compare.loaded.probe_label == "Q2",
        timeout=WAIT_MS,
    )


def test_the_table_is_best_first_by_distance_and_sorts_numerically(qtbot, two_probes):
    table = two_probes.compare.candidates
    distances = [float(text) for text in column(table, DISTANCE)]
    assert distances == sorted(distances)  # the decision score of this model
    assert column(table, 0) == ["1", "2", "3"]
    assert "distance is below 0.6" in table.horizontalHeaderItem(DISTANCE).toolTip()
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(COSINE) + header.sectionSize(COSINE) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    cosines = [float(text) for text in column(table, COSINE)]
    assert cosines in (sorted(cosines), sorted(cosines, reverse=True))
    for _ in range(2):  # whichever way the first click went, both ways are numeric
        x = header.sectionViewportPosition(DISTANCE) + header.sectionSize(DISTANCE) // 2
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
        shown = [float(text) for text in column(table, DISTANCE)]
        assert shown in (sorted(shown), sorted(shown, reverse=True))


def test_a_header_click_sorts_numbers_not_text(qtbot):
    table = CandidatesTable()
    qtbot.addWidget(table)
    rows = [
        CandidateRow(1, "K1", 1, 0.5, 0.9, "accept", None, ""),
        CandidateRow(2, "K2", 2, 9.5, 0.2, "reject", None, ""),
        CandidateRow(3, "K3", 3, 10.25, 0.1, "reject", None, ""),
    ]
    table.set_rows(rows, Threshold("euclidean", 0.6))
    table.sortItems(DISTANCE, Qt.SortOrder.DescendingOrder)
    assert column(table, DISTANCE) == ["10.2500", "9.5000", "0.5000"]  # text: 9 > 1
    table.set_rows(rows, Threshold("cosine", 0.5))  # best first again, by cosine
    assert table.labels() == ["K1", "K2", "K3"]
    assert "Shown for reference" in table.horizontalHeaderItem(DISTANCE).toolTip()


def test_adding_a_gallery_exhibit_re_ranks_every_probe(qtbot, two_probes, tmp_path):
    window = two_probes
    add_exhibits(qtbot, window, write_images(tmp_path, ["k4"]), "gallery")
    qtbot.waitUntil(lambda: ranked(window, ["Q1", "Q2"], 4), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare.candidates.rowCount() == 4)
    assert "K4" in window.compare.candidates.labels()


def test_a_row_click_opens_the_pair(qtbot, two_probes):
    window = two_probes
    compare = window.compare
    compare.select("Q2", "probe")
    table = compare.candidates
    target = next(
        r for r in range(3) if table.label_at(r) != compare.gallery_combo.currentText()
    )
    label = table.label_at(target)
    rect = table.visualItemRect(table.item(target, GALLERY))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(
        lambda: (
            compare.loaded is not None
            and (compare.loaded.probe_label, compare.loaded.gallery_label)
            == ("Q2", label)
        ),
        timeout=WAIT_MS,
    )
    assert table.label_at(table.currentRow()) == label
    compare.next_candidate(1)  # Ctrl+Down: the next row's pair
    following = table.labels()[(target + 1) % 3]
    qtbot.waitUntil(
        lambda: (
            compare.loaded is not None and compare.loaded.gallery_label == following
        ),
        timeout=WAIT_MS,
    )


def test_a_probe_without_any_gallery_face_says_what_to_do(qtbot, window, tmp_path):
    """'not ranked yet' suggested work under way; with no gallery face there is
    nothing to rank, and the title says to add gallery images."""
    add_exhibits(qtbot, window, write_images(tmp_path, ["q1"]), "probe")
    qtbot.waitUntil(lambda: window.compare.probe_combo.count() > 0, timeout=WAIT_MS)
    window.compare.refresh_candidates()
    assert "add gallery images" in window.compare.candidates_title.text()
    assert window.compare.candidates.rowCount() == 0


def test_files_added_while_an_intake_runs_wait_their_turn(
    qtbot, window, tmp_path, monkeypatch
):
    """Adding more files before the first ones are done used to cancel the
    first intake's report and run the face detector twice at once (which
    crashed dlib): now the second intake waits, and both report."""
    import threading
    import time

    from tests.gui.tiny_case import one_fixed_face

    running, most = [0], [0]
    lock = threading.Lock()

    def slow_detection(case, mark, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return one_fixed_face(case, mark, **kwargs)

    monkeypatch.setattr(workflow, "detect_faces", slow_detection)
    finished = []
    window.controller.intake_finished.connect(finished.append)
    window.controller.add_files(write_images(tmp_path, ["q1"]), "probe")
    window.controller.add_files(write_images(tmp_path, ["k1", "k2"]), "gallery")
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT_MS)
    assert [len(r.added) for r in finished] == [1, 2]
    assert most[0] == 1  # never two detections at once
    assert [e.mark for e in window.controller.case.exhibits()] == ["Q1", "K1", "K2"]
    qtbot.waitUntil(lambda: ranked(window, ["Q1"], 2), timeout=WAIT_MS)
