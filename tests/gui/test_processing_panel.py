"""The Processing tab (issue 21, the GUI side): a chain built through the panel's
widgets on the demo case's Q1, previewed in a worker, stored as Q1.1 with exactly
that chain; the exhibits tree lists Q1.1 under Q1; bad values are one red line.

The demo case is made with the fixed stand-in face (no dlib): the faces are not
what these tests look at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt

from core import processing, wording
from core.case import workflow
from core.case.demo import create_demo_case
from core.case.store import Case
from core.imageio import load_image
from tests.gui.tiny_case import (
    WAIT_MS,
    make_window,
    tiny_model_class,
    tiny_registry,
    use_one_fixed_face,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels import processing_panel
from xfr_desktop.panels.exhibits_panel import EXHIBIT
from xfr_desktop.panels.processing_panel import READ_ONLY_WHY, ProcessingPanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

TinyProcessingModel = tiny_model_class("tiny-processing", "cosine", 0.5)
LEVELS = {"black": 12, "white": 236, "gamma": 1.25}
UNSHARP = {"radius": 2.0, "amount": 0.8, "threshold": 3}


@pytest.fixture
def demo_path(tmp_path: Path, monkeypatch) -> Path:
    use_one_fixed_face(monkeypatch)  # the demo's and Q1.1's faces, without dlib
    create_demo_case(tmp_path / "demo.xfrcase").close()
    return tmp_path / "demo.xfrcase"


def open_window(qtbot, path: Path, *, read_only: bool = False) -> MainWindow:
    window = make_window(qtbot, tiny_registry(TinyProcessingModel))
    window.controller.open_case(path, read_only=read_only)
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.processing)
    return window


def add_step(qtbot, panel: ProcessingPanel, op_id: str, **values) -> None:
    """Choose ``op_id`` in the list, press Add step, enter ``values``."""
    panel.choose_operation(op_id)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert panel.steps_list.currentRow() == len(panel.entries) - 1
    for name, value in values.items():
        panel.editors[name].setValue(value)  # spin boxes: as the examiner types


def wait_preview(qtbot, panel: ProcessingPanel) -> None:
    qtbot.waitUntil(
        lambda: not panel.preview_pending() and panel.shown is not None,
        timeout=WAIT_MS,
    )


def test_a_chain_built_in_the_panel_becomes_q1_1_with_exactly_that_chain(
    qtbot, demo_path
):
    window = open_window(qtbot, demo_path)
    panel, case = window.processing, window.controller.case
    assert panel.set_source("Q1")
    add_step(qtbot, panel, "levels", **LEVELS)
    add_step(qtbot, panel, "unsharp", **UNSHARP)
    assert [panel.steps_list.item(row).text() for row in range(2)] == [
        "1. Levels and gamma",
        "2. Unsharp mask",
    ]
    wait_preview(qtbot, panel)
    expected = [
        processing.make_step("levels", LEVELS),
        processing.make_step("unsharp", UNSHARP),
    ]
    shown = panel.shown
    assert shown is not None and list(shown.steps) == expected
    # the preview is the chain run on Q1's pixels as analysed
    source = load_image(case.evidence_path(case.exhibit("Q1"))).rgb
    assert np.array_equal(shown.before, source)
    out, _inputs = processing.run_chain(source, expected)
    assert shown.after is not None and np.array_equal(shown.after, out)
    assert not np.array_equal(out, source)
    assert panel.before_view.image is not None and panel.after_view.image is not None
    # the chain is listed as the report will list it, with the statement
    for step in expected:
        assert step.describe() in panel.chain_label.text()
    assert panel.statement.text() == wording.PROCESSING_PANEL_STATEMENT
    assert not panel.error_line.isVisible()

    assert panel.derive_button.isEnabled()
    with qtbot.waitSignal(window.controller.derived, timeout=WAIT_MS):
        qtbot.mouseClick(panel.derive_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.deriver.is_busy(), timeout=WAIT_MS)
    link = case.derivations.derivation("Q1.1")
    assert link is not None and link.source == "Q1"
    assert [dict(s) for s in link.steps] == [s.to_dict() for s in expected]
    assert link.steps[0]["params"]["black"] == 12
    assert link.steps[1]["params"]["amount"] == pytest.approx(0.8)
    assert "Added Q1.1" in panel.status.text()
    report = case.verify()
    assert report.problems == (), report.problems
    assert report.evidence_files == 4  # Q1, K1, K2 and the PNG of Q1.1
    assert case.derivations.check("Q1.1").ok  # re-run bit for bit

    # the exhibits tree: Q1.1 under Q1, its chain in the tooltip
    tree = window.exhibits
    q1, q11 = tree.item_for("Q1", EXHIBIT), tree.item_for("Q1.1", EXHIBIT)
    assert q1 is not None and q11 is not None
    assert q11.parent() is q1
    assert q11.text(0).startswith("Q1.1  processed Q1\n")
    assert "processed" not in q1.text(0)
    assert q1.parent().text(0).startswith("Questioned")
    for line in link.step_lines():
        assert line in q11.toolTip(0)
    assert "Q1 → Q1.1" in q11.toolTip(0)
    # the source list now offers Q1.1 (processing it again gives Q1.1.1), and
    # picking it in the exhibits list makes it the source, its lineage shown
    assert panel.source_combo.findData("Q1.1") >= 0
    tree.tree.itemClicked.emit(q11, 0)
    assert panel.source_mark() == "Q1.1"
    assert "Q1 → Q1.1" in panel.lineage.text()

    # a comparison with Q1.1's face says what that face is of
    window.tabs.setCurrentWidget(window.compare_page)
    window.compare.select("Q1.1", "probe")
    window.compare.select("K1", "gallery")
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.faces[0].label == "Q1.1"
        ),
        timeout=WAIT_MS,
    )
    note = workflow.derived_note(case, "Q1.1")
    assert note and note in window.compare.derived_note.text()
    assert window.compare.derived_note.isVisible()
    # and so do the other views of the pair: all methods, layers, superimpose
    for panel in (window.grid, window.layers, window.superimpose):
        assert note in panel.processed_note.text()
        assert not panel.processed_note.isHidden()
    window.compare.select("Q1", "probe")
    qtbot.waitUntil(
        lambda: (
            window.compare.loaded is not None
            and window.compare.loaded.faces[0].label == "Q1"
        ),
        timeout=WAIT_MS,
    )
    assert not window.compare.derived_note.isVisible()
    for panel in (window.grid, window.layers, window.superimpose):
        assert panel.processed_note.isHidden()


def test_a_bad_value_is_one_red_line_and_nothing_is_added(qtbot, demo_path):
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    add_step(qtbot, panel, "levels", black=200, white=100)
    # the earlier requests are passed over (coalesced): only this one is computed
    qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.error_line.isVisible(), timeout=WAIT_MS)
    line = panel.error_line.text()
    assert "must be above black" in line and "\n" not in line
    assert "Traceback" not in line
    assert not panel.derive_button.isEnabled()
    assert window.errors.last_report is None  # no dialog: the line is enough
    # corrected: the red line goes, the preview comes back
    panel.editors["white"].setValue(250)
    qtbot.waitUntil(lambda: not panel.error_line.isVisible(), timeout=WAIT_MS)
    wait_preview(qtbot, panel)
    qtbot.waitUntil(lambda: panel.shown.after is not None, timeout=WAIT_MS)
    assert panel.derive_button.isEnabled()
    # a crop reaching outside the image: the step is named
    add_step(qtbot, panel, "crop", x=10)
    qtbot.waitUntil(lambda: panel.error_line.isVisible(), timeout=WAIT_MS)
    assert "step 2" in panel.error_line.text()
    assert "outside" in panel.error_line.text()
    assert window.controller.case.derivations.derivations() == []


def test_steps_reorder_and_remove_and_the_wipe_follows_the_size(qtbot, demo_path):
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    exhibit = window.controller.case.exhibit("Q1")
    add_step(qtbot, panel, "levels", black=5)
    add_step(qtbot, panel, "unsharp")
    add_step(
        qtbot, panel, "crop", x=4, y=6, w=exhibit.width - 20, h=exhibit.height - 30
    )
    ids = lambda: [e.op_id for e in panel.entries]  # noqa: E731
    assert ids() == ["levels", "unsharp", "crop"]
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert ids() == ["crop", "levels", "unsharp"]
    assert panel.steps_list.item(0).text() == "1. Crop"
    assert not panel.up_button.isEnabled()  # the first step cannot go higher
    assert panel.entries[0].values["x"] == 4  # its values went with it
    panel.steps_list.setCurrentRow(1)
    qtbot.mouseClick(panel.down_button, Qt.MouseButton.LeftButton)
    assert ids() == ["crop", "unsharp", "levels"]
    wait_preview(qtbot, panel)
    assert panel.shown.after.shape[:2] == (exhibit.height - 30, exhibit.width - 20)
    # the output is smaller: the wipe shows the result alone, with a note
    panel.set_wipe(True)
    assert panel.views.currentIndex() == 1
    assert not panel.wipe.same_size and panel.wipe_note.isVisible()
    assert f"{exhibit.width}×{exhibit.height}" in panel.wipe_note.text()
    panel.steps_list.setCurrentRow(0)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert ids() == ["unsharp", "levels"]
    wait_preview(qtbot, panel)
    qtbot.waitUntil(
        lambda: panel.shown is not None and len(panel.shown.steps) == 2,
        timeout=WAIT_MS,
    )
    assert panel.wipe.same_size and not panel.wipe_note.isVisible()
    assert "1. Unsharp mask" in panel.chain_label.text()
    panel.wipe_slider.setValue(250)
    assert panel.wipe.split == pytest.approx(0.25)
    panel.set_wipe(False)
    assert panel.views.currentIndex() == 0


def test_quick_edits_are_coalesced_and_only_the_latest_is_shown(
    qtbot, demo_path, monkeypatch
):
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    add_step(qtbot, panel, "levels")
    wait_preview(qtbot, panel)
    computed: list[int] = []
    original = processing_panel.make_preview

    def counted(case, mark, steps, request, cancel=None):
        computed.append(steps[0].params["black"])
        return original(case, mark, steps, request, cancel)

    monkeypatch.setattr(processing_panel, "make_preview", counted)
    # 29 edits with no event delivered between them (as a held-down arrow key
    # can): the one running goes on, the latest waits, the rest are never run
    for black in range(1, 30):
        panel.editors["black"].setValue(black)
    wait_preview(qtbot, panel)
    qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=WAIT_MS)
    assert computed[-1] == 29 and len(computed) <= 2
    assert panel.shown.steps[0].params["black"] == 29
    assert panel.entries[0].values["black"] == 29


def test_a_read_only_case_cannot_add_a_processed_exhibit(qtbot, demo_path):
    window = open_window(qtbot, demo_path, read_only=True)
    panel = window.processing
    panel.set_source("Q1")
    add_step(qtbot, panel, "levels", black=20)
    wait_preview(qtbot, panel)  # previewing is reading: still allowed
    assert panel.shown.after is not None
    assert not panel.derive_button.isEnabled()
    assert panel.derive_button.toolTip() == READ_ONLY_WHY


def test_done_when_made_in_the_gui_in_the_report_and_verified(
    qtbot, demo_path, tmp_path, capsys
):
    """Issue 21's done-when, end to end: levels + unsharp on the demo case's CCTV
    still (Q1) made in the Processing tab; the report's processing log shows the
    chain; `xfr case verify` re-runs it and finds the case intact."""
    from core.report.api import generate_report
    from tests.cli.in_process import xfr
    from tests.core.test_report_processing import pdf_text

    window = open_window(qtbot, demo_path)
    panel, case = window.processing, window.controller.case
    assert case.exhibit("Q1").original_name == "cctv_still_cam03.jpg"
    panel.set_source("Q1")
    add_step(qtbot, panel, "levels", **LEVELS)
    add_step(qtbot, panel, "unsharp", **UNSHARP)
    wait_preview(qtbot, panel)
    with qtbot.waitSignal(window.controller.derived, timeout=WAIT_MS):
        qtbot.mouseClick(panel.derive_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.deriver.is_busy(), timeout=WAIT_MS)
    link = case.derivations.derivation("Q1.1")
    assert link is not None
    # the new exhibit's faces and ranking are model jobs that may still be waiting
    # for the cores (core.compute): the report refuses a case that changes under it
    runners = window.controller.runners
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in runners), timeout=WAIT_MS)

    out = tmp_path / "report.pdf"
    generate_report(case, out)
    text = pdf_text(out)
    assert "Processing log" in text and "Q1.1: processed from Q1" in text
    for line in (
        "black = 12",
        "white = 236",
        "gamma = 1.25",
        "radius = 2",
        "amount = 0.8",
        "threshold = 3",
    ):
        assert line in text, line
    assert link.output_sha256 in text.replace(" ", "")
    assert "Levels and gamma" in text and "Unsharp mask" in text
    assert " ".join(wording.NON_GENERATIVE_STATEMENT.split()) in text

    window.controller.close_case()
    code, printed, _err = xfr(capsys, "case", "verify", demo_path)
    assert code == 0, printed
    assert printed.startswith("INTACT") and "1 processed exhibit(s) re-run" in printed


def test_a_number_left_automatic_can_be_entered(qtbot, demo_path):
    """Resize's width, height and scale may each be left empty ("automatic"): the
    form gives them a text field, not a spin box that cannot hold "none"."""
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    panel.choose_operation("resize")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    width = panel.editors["width"]
    assert width.text() == "" and width.placeholderText() == "automatic"
    qtbot.keyClicks(width, "100")
    qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: panel.shown is not None and panel.shown.after is not None,
        timeout=WAIT_MS,
    )
    assert panel.shown.after.shape[1] == 100
    assert not panel.error_line.isVisible()


def test_an_error_of_a_chain_since_corrected_does_not_stay(qtbot, demo_path):
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    add_step(qtbot, panel, "nl_means", search=61, template=21)  # slow: overlaps
    add_step(qtbot, panel, "crop", w=5000)
    # the failing chain is computing when the examiner corrects it
    qtbot.waitUntil(lambda: panel._running[1] == panel._request, timeout=WAIT_MS)
    panel.editors["w"].setValue(100)
    qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: panel.shown is not None and panel.shown.after is not None,
        timeout=WAIT_MS,
    )
    assert panel.shown.after.shape[1] == 100
    assert not panel.error_line.isVisible() and panel.derive_button.isEnabled()


def test_a_long_lineage_is_listed_one_level_under_its_original(qtbot, demo_path):
    with Case.open(demo_path) as case:
        case.derivations.derive("Q1", [processing.make_step("levels", LEVELS)])
        case.derivations.derive("Q1.1", [processing.parse_step("crop:w=100,h=90")])
        case.derivations.derive("Q1.1.1", [processing.parse_step("flip")])
    window = open_window(qtbot, demo_path)
    tree = window.exhibits
    q1 = tree.item_for("Q1", EXHIBIT)
    for mark, source in (("Q1.1", "Q1"), ("Q1.1.1", "Q1.1"), ("Q1.1.1.1", "Q1.1.1")):
        item = tree.item_for(mark, EXHIBIT)
        assert item is not None and item.parent() is q1, mark
        assert item.text(0).startswith(f"{mark}  processed {source}\n")


def test_every_operation_can_be_added_and_previewed(qtbot, demo_path):
    """Each registered operation gets a form and a preview (or one red line, as
    resize without a size): none reaches the error dialog."""
    window = open_window(qtbot, demo_path)
    panel = window.processing
    panel.set_source("Q1")
    for info in processing.infos():
        if info.needs_frames:  # Q1 is no video frame: the red line says so
            continue
        panel.choose_operation(info.op_id)
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
        assert [e.op_id for e in panel.entries] == [info.op_id]
        assert set(panel.editors) == {p.name for p in info.params}
        qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=WAIT_MS)
        assert window.errors.last_report is None, info.op_id
        assert panel.problem or (
            panel.shown is not None and panel.shown.after is not None
        ), info.op_id
        qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
        assert panel.entries == []
