"""Face image quality beside each face in the exhibits panel (issue 20 item 3):
measured in a worker, shown in words with a shape (not colour alone), the figures
in the tooltip, and a result for one case never shown for another.

Faces set directly in the case (no dlib, no model): fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")

from core.case import workflow
from core.case.store import Case
from core.faces.detect import Face
from core.quality import all_measures
from tests.gui.tiny_case import WAIT_MS
from xfr_desktop.panels import face_quality
from xfr_desktop.panels.exhibits_panel import FACE, ExhibitsPanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
ASTRONAUT_5 = np.array(
    [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
)
FLAT_5 = np.array([[130, 80], [110, 80], [70, 80], [90, 80], [100, 120]], float)


def make_case(folder: Path, rgb: np.ndarray, points: np.ndarray) -> Case:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "q1.png"
    Image.fromarray(rgb).save(path)
    case = Case.create(folder / "case", "2026-20", "A. Examiner")
    case.add_exhibits([path], "probe")
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    case.set_faces("Q1", [Face((left, top, right, bottom), points)], detector="hog")
    return case


@pytest.fixture
def panel(qtbot):
    widget = ExhibitsPanel()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def let_go(panel: ExhibitsPanel) -> None:
    """Before the case closes: the panel drops it and its workers end."""
    panel.set_case(None)
    assert panel._thumbs.wait() and panel._measurer.wait()


def test_each_face_shows_its_rating_in_words_and_its_figures(
    qtbot, panel, tmp_path, astronaut_rgb
):
    with make_case(tmp_path, astronaut_rgb, ASTRONAUT_5) as case:
        panel.set_case(case)
        item = panel.item_for("Q1", FACE)
        assert item is not None and face_quality.PENDING_TEXT in item.text(0)
        qtbot.waitUntil(lambda: len(panel.qualities) == 1, timeout=WAIT_MS)
        item = panel.item_for("Q1", FACE)
        assert item is not None
        text, tip, icon = item.text(0), item.toolTip(0), item.icon(0)
        expected = workflow.face_quality(case, "Q1")
        let_go(panel)
    assert "quality: limited\ninter-eye distance\n43 px (below 60 px)" in text
    assert not icon.isNull()  # the shape in colour, beside the words
    assert expected.summary.rating == "limited"
    for measure in all_measures():
        assert measure.name in tip
    assert "Double-click to correct it." in tip  # the record's own tooltip stays


def test_a_face_that_cannot_be_measured_says_why_in_one_line(
    qtbot, panel, tmp_path, astronaut_rgb
):
    with make_case(tmp_path, astronaut_rgb, ASTRONAUT_5) as case:
        copy = case.evidence_path(case.exhibit("Q1"))
        copy.chmod(0o644)
        copy.write_bytes(b"damaged")
        panel.set_case(case)
        qtbot.waitUntil(lambda: len(panel.qualities) == 1, timeout=WAIT_MS)
        item = panel.item_for("Q1", FACE)
        assert item is not None
        assert "quality: not measured" in item.text(0)
        (problem,) = panel.qualities.values()
        assert isinstance(problem, str) and "\n" not in problem
        assert "Q1" in item.toolTip(0)
        let_go(panel)


def test_figures_of_the_case_left_behind_are_never_shown(
    qtbot, panel, tmp_path, astronaut_rgb
):
    rng = np.random.default_rng(20)
    noise = rng.integers(0, 256, (200, 200, 3), np.uint8)
    with (
        make_case(tmp_path / "a", astronaut_rgb, ASTRONAUT_5) as first,
        make_case(tmp_path / "b", noise, FLAT_5) as second,
    ):
        panel.set_case(first)
        panel.set_case(second)  # at once: the first case's worker is cancelled
        qtbot.waitUntil(lambda: len(panel.qualities) == 1, timeout=WAIT_MS)
        qtbot.wait(200)  # the first worker's result, had it been kept, is in now
        (quality,) = panel.qualities.values()
        assert not isinstance(quality, str)
        # both cases number their first face 1: the figure tells them apart
        assert quality.value("inter_eye_distance") == pytest.approx(40.0)
        assert [f.id for f in second.faces()] == list(panel.qualities)
        let_go(panel)
