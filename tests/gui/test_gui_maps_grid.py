"""All methods: a grid of tiles that fills the width, one shared colour scale per
tile with its colour bar, a short faithfulness verdict per map, and click-through
to the comparison view.  Synthetic results (no model run, no dlib)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt

from core.colours import colourise, robust_peak, shared_peak
from core.explain.base import ChipMaps, ExplanationResult, ImageMaps
from core.explain.render import display_sigma, smooth_covered
from core.metrics.pair_faithfulness import verdict_sentence
from core.models import Threshold
from core.wording import NOT_CHECKED_YET, PAIR_SPECIFIC
from xfr_desktop.panels.maps_panels import (
    MAX_TILE_CHIP_SIZE,
    TILE_CHIP_SIZE,
    MethodGrid,
)

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
CHIP = 32  # px; the maps' and chips' size


def synthetic_result(
    name: str, scale: tuple[float, float] = (1.0, 1.0), dissimilarity: bool = True
) -> ExplanationResult:
    """A result whose probe map is ``scale[0]`` and gallery map ``scale[1]`` times
    one ramp (so a shared scale and a per-map scale draw them differently)."""
    ramp = np.tile(np.linspace(0.0, 1.0, CHIP, dtype=np.float32), (CHIP, 1))

    def side(label: str, factor: float) -> ImageMaps:
        similarity = ramp * factor
        chip = (
            ChipMaps.from_parts(similarity, similarity[:, ::-1].copy())
            if dissimilarity
            else ChipMaps(similarity, None, similarity)
        )
        return ImageMaps(label, chip, {})

    return ExplanationResult(
        method_id=name.lower(),
        method_name=name,
        params={},
        seed=0,
        model_id="tiny",
        model_sha256="0" * 64,
        device="cpu",
        software_version="test",
        seconds=0.5,
        batch_size=1,
        cosine_similarity=0.5,
        cosine_threshold=0.4,
        threshold=Threshold("cosine", 0.4, "test"),
        decision="same",
        probe=side("probe", scale[0]),
        gallery=side("gallery", scale[1]),
        cache_key=name,
    )


def chips() -> tuple[np.ndarray, np.ndarray]:
    grey = np.full((CHIP, CHIP, 3), 128, np.uint8)
    return grey, grey.copy()


class Verdict:
    def __init__(self, side: str, kind: str) -> None:
        self.side, self.kind = side, kind
        self.verdict, self.reason = PAIR_SPECIFIC, "It beat every control."


class Check:
    """Stands in for a stored PairFaithfulness: similarity maps checked only."""

    def get(self, side: str, kind: str) -> Verdict | None:
        return Verdict(side, kind) if kind == "similarity" else None


@pytest.fixture
def grid(qtbot) -> MethodGrid:
    grid = MethodGrid()
    qtbot.addWidget(grid)
    grid.resize(1040, 640)  # the tab's size in a 1280 x 720 window
    grid.show()
    return grid


def results(count: int) -> dict[int, ExplanationResult]:
    return {i + 1: synthetic_result(f"Method {i + 1}") for i in range(count)}


def test_tiles_fill_the_width_and_reflow_on_resize(qtbot, grid):
    grid.set_results(results(5), chips())
    qtbot.waitUntil(lambda: grid.columns >= 2)
    assert grid.columns == 2  # 1040 px: two 180-px-chip tiles side by side
    positions = [grid.grid.getItemPosition(grid.grid.indexOf(t)) for t in grid.tiles]
    assert [p[:2] for p in positions] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    grid.resize(1660, 1000)  # the tab at 1920 x 1080
    qtbot.waitUntil(lambda: grid.columns == 3)
    grid.resize(500, 600)
    qtbot.waitUntil(lambda: grid.columns == 1)
    for tile in grid.tiles:
        for cell in tile.cells:
            assert cell.pixmap().width() >= TILE_CHIP_SIZE - 1  # never shrunk


def test_probe_and_gallery_share_one_scale_with_a_colour_bar(qtbot, grid):
    grid.kind.setCurrentText("similarity")
    grid.set_results({1: synthetic_result("Scaled", scale=(1.0, 0.25))}, chips())
    tile = grid.tiles[0]
    probe, gallery = (tile.result.images[s].chip.similarity for s in (0, 1))
    shown = [smooth_covered(m, display_sigma(m)) for m in (probe, gallery)]
    peak = max(robust_peak(m) for m in shown)
    assert shared_peak(shown) == peak
    for side, cell in enumerate(tile.cells):
        expected, low, high = colourise(shown[side], False, "jet", 100.0, peak)
        assert (low, high) == (0.0, peak)
        rendered = cell.rendered_rgb()
        own_scale, _, _ = colourise(shown[side], False, "jet")
        if side == 1:  # the weaker map, drawn on its own scale, would look the same
            assert not np.array_equal(expected[..., :3], own_scale[..., :3])
        alpha = 0.6
        mixed = np.round(128 * (1 - alpha) + expected[..., :3] * alpha)
        np.testing.assert_array_equal(rendered, mixed.astype(np.uint8))
    assert not tile.colour_bar.isHidden()
    assert tile.colour_bar.high_label.text() == f"{peak:.3g}"
    assert tile.colour_bar.low_label.text() == "0"
    grid.kind.setCurrentText("combined")  # signed: -peak .. +peak
    assert tile.colour_bar.low_label.text().startswith("-")


def test_a_kind_a_method_lacks_is_said_in_its_tile(qtbot, grid):
    grid.set_results({1: synthetic_result("Grad-CAM", dissimilarity=False)}, chips())
    grid.kind.setCurrentText("dissimilarity")
    tile = grid.tiles[0]
    assert not tile.no_map.isHidden()
    assert tile.no_map.text() == "Grad-CAM gives no dissimilarity map."
    assert [c.caption() for c in tile.cells] == [
        "probe: no dissimilarity map",
        "gallery: no dissimilarity map",
    ]
    assert tile.colour_bar.isHidden()
    grid.kind.setCurrentText("similarity")
    assert tile.no_map.isHidden() and not tile.colour_bar.isHidden()


def test_each_map_carries_a_short_verdict_with_its_grounds_as_tooltip(qtbot, grid):
    grid.set_results(results(2), chips())
    assert [v.text() for v in grid.verdicts] == [""] * 4  # checks not read yet
    grid.set_checks({1: Check(), 2: None})
    grid.kind.setCurrentText("similarity")
    probe = grid.verdicts[0]
    assert probe.text() == f"Faithfulness: <b>{PAIR_SPECIFIC}</b>"
    assert probe.toolTip() == verdict_sentence(Verdict("probe", "similarity"))
    assert [v.text() for v in grid.verdicts[2:]] == [NOT_CHECKED_YET] * 2
    grid.kind.setCurrentText("dissimilarity")  # checked for similarity only
    assert grid.verdicts[0].text() == NOT_CHECKED_YET


def test_click_or_enter_on_a_tile_chooses_its_explanation(qtbot, grid):
    grid.set_results(results(3), chips())
    tile = grid.tiles[1]
    with qtbot.waitSignal(grid.explanation_chosen) as chosen:
        qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert chosen.args == [2]
    tile = grid.tiles[2]
    tile.setFocus()
    with qtbot.waitSignal(grid.explanation_chosen) as chosen:
        qtbot.keyClick(tile, Qt.Key.Key_Return)
    assert chosen.args == [3]


def test_no_results_says_so(qtbot, grid):
    grid.set_results({}, None)
    assert not grid.empty.isHidden() and not grid.tiles
    grid.set_results(results(1), chips())
    assert grid.empty.isHidden() and len(grid.cells) == 2


def test_unsigned_maps_follow_the_chosen_colour_map(qtbot, grid):
    grid.kind.setCurrentText("similarity")
    grid.set_results({1: synthetic_result("One")}, chips())
    cell = grid.tiles[0].cells[0]
    jet = cell.rendered_rgb()
    grid.set_colour_map("viridis")
    assert grid.colour_map == "viridis"
    assert not np.array_equal(cell.rendered_rgb(), jet)


def test_chips_grow_into_the_space_left_and_still_fit(qtbot, grid):
    grid.set_results(results(4), chips())
    grid.resize(1660, 1000)
    qtbot.waitUntil(lambda: grid.columns == 3)
    qtbot.wait(100)
    assert grid.chip_size > TILE_CHIP_SIZE  # 3 x 180-px tiles leave ~400 px
    assert all(cell.pixmap().width() == grid.chip_size for cell in grid.cells)
    viewport = grid.tiles_area.viewport().width()
    assert max(t.geometry().right() for t in grid.tiles) < viewport
    assert len(grid.cells) == 8 and len(grid.verdicts) == 8  # the new tiles'


def test_one_method_gets_the_width_up_to_the_largest_maps(qtbot, grid):
    grid.set_results(results(1), chips())
    grid.resize(1660, 1000)  # the tab at 1920 x 1080
    qtbot.waitUntil(lambda: grid.chip_size == MAX_TILE_CHIP_SIZE)
    assert grid.columns == 1


def test_each_tile_says_what_its_colours_and_numbers_mean(qtbot, grid):
    grid.set_results(results(1), chips())
    grid.kind.setCurrentText("similarity")
    (tile,) = grid.tiles
    assert tile.meaning.text().startswith("Colours: top: supports 'same person'")
    assert "Values: " in tile.meaning.text()
