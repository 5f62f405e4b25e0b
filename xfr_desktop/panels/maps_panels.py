"""All computed methods for the pair at once, and the maps layer by layer."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent, QMouseEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from core.colours import SIGNED_COLOUR_MAP, colour_lut, map_legend, shared_peak
from core.explain.base import ExplanationResult, FacePair, find_info
from core.explain.layerwise import LayerwiseResult, explain_layers
from core.explain.render import display_sigma, smooth_covered
from core.metrics.pair_faithfulness import verdict_sentence
from core.models.base import FaceModel
from core.wording import LAYER_MAPS_NOT_CHECKED, NOT_CHECKED_YET, UNITS_NOT_STATED
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.masking import Masking
from xfr_desktop.widgets.chip_view import ChipView
from xfr_desktop.widgets.colour_bar import ColourBar
from xfr_desktop.widgets.processed_note import ProcessedNote
from xfr_desktop.workers import TaskRunner

LAYER_CHIP_SIZE = 240  # px; the grid's tiles are TILE_CHIP_SIZE
TILE_CHIP_SIZE = 180  # px, the smallest: two tiles side by side at 1280 x 720
MAX_TILE_CHIP_SIZE = 300  # px; between the two, the chips grow to fill the width
TILE_CHIP_STEP = 20  # px: tiles are made again only when the size moves a step
GRID_SPACING = 8
NO_TILES = "No explanation computed for this pair yet."


class MethodTile(QFrame):
    """One computed method: probe and gallery chips with the chosen kind's map on
    one shared colour scale, its colour bar, and each map's faithfulness verdict.

    Clicking it (or Enter/Space while it has focus) asks for this explanation in
    the comparison view."""

    chosen = Signal(int)  # explanation id

    def __init__(
        self,
        explanation_id: int,
        result: ExplanationResult,
        chip_size: int = TILE_CHIP_SIZE,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.explanation_id = explanation_id
        self.chip_size = chip_size
        self.result = result
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click (or press Enter) to open it in the Comparison tab.")
        self.name = QLabel(f"<b>{html.escape(result.method_name)}</b>")
        self.name.setWordWrap(True)
        self.details = QLabel(
            f"#{explanation_id}, seed {result.seed}, {result.seconds:.1f} s"
        )
        self.cells = [ChipView(chip_size), ChipView(chip_size)]
        self.verdicts = [QLabel(), QLabel()]
        for verdict in self.verdicts:
            verdict.setWordWrap(True)
            verdict.setFixedWidth(chip_size)
            verdict.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.colour_bar = ColourBar()
        self.colour_bar.setToolTip(
            "One scale for both faces: the same colour is the same value."
        )
        self.colour_bar.setFixedHeight(chip_size)  # as tall as the maps
        self.no_map = QLabel()  # "<method> gives no <kind> map", when so
        self.no_map.setWordWrap(True)
        self.no_map.hide()
        # what the colours and numbers mean, as in the comparison view's colour bar
        self.meaning = QLabel()
        self.meaning.setWordWrap(True)
        small = self.meaning.font()
        small.setPointSizeF(8.0)
        self.meaning.setFont(small)
        maps = QGridLayout()
        maps.setSpacing(4)
        for side in (0, 1):
            maps.addWidget(self.cells[side], 0, side, Qt.AlignmentFlag.AlignTop)
            maps.addWidget(self.verdicts[side], 1, side, Qt.AlignmentFlag.AlignTop)
        maps.addWidget(self.colour_bar, 0, 2, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.name)
        layout.addWidget(self.details)
        layout.addLayout(maps)
        layout.addWidget(self.meaning)
        layout.addWidget(self.no_map)
        layout.addStretch(1)

    def show_kind(
        self,
        kind: str,
        chips: tuple[Any, Any] | None,
        colour_map: str,
        verdicts: tuple[str, str],
        grounds: tuple[str, str],
    ) -> None:
        """Draw ``kind``'s maps; ``verdicts``/``grounds``: short text and the full
        sentence (its tooltip) per side."""
        shown: list[np.ndarray | None] = []
        for maps in self.result.images:
            values = maps.chip_maps().get(kind)
            shown.append(
                None
                if values is None
                else smooth_covered(values, display_sigma(values))
            )
        present = [v for v in shown if v is not None]
        peak = shared_peak(present)
        info = find_info(self.result.method_id)
        signed = info.draws_signed(kind) if info is not None else kind == "combined"
        top, bottom = info.legend(kind) if info is not None else map_legend(kind)
        units = (info.map_units if info is not None else "") or UNITS_NOT_STATED
        self.meaning.setText(f"Colours: {top}; {bottom}. Values: {units}.")
        missing = []
        for side, maps in enumerate(self.result.images):
            cell = self.cells[side]
            cell.set_chip(None if chips is None else chips[side])
            values = shown[side]
            cell.set_caption(
                maps.side if values is not None else f"{maps.side}: no {kind} map"
            )
            cell.set_overlay(values, signed=signed, colour_map=colour_map, peak=peak)
            if values is None:
                missing.append(maps.side)
            label = self.verdicts[side]
            label.setText("" if values is None else verdicts[side])
            label.setToolTip("" if values is None else grounds[side])
        if peak is None:
            self.colour_bar.hide()
        else:
            lut = colour_lut(SIGNED_COLOUR_MAP if signed else colour_map)
            self.colour_bar.set_scale(lut, -peak if signed else 0.0, peak)
            self.colour_bar.show()
        self.no_map.setText(
            f"{self.result.method_name} gives no {kind} map"
            + ("." if len(missing) == 2 else f" for the {missing[0]}.")
            if missing
            else ""
        )
        self.no_map.setVisible(bool(missing))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.chosen.emit(self.explanation_id)
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.chosen.emit(self.explanation_id)
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.setFrameShape(QFrame.Shape.Box)  # where Enter goes, seen
        self.setLineWidth(2)
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setLineWidth(1)
        super().focusOutEvent(event)


class MethodGrid(QWidget):
    """Every method computed for the pair as tiles in a grid that fills the width
    (as many columns as fit, reflowing on resize)."""

    explanation_chosen = Signal(int)  # a tile was clicked: show it in Comparison

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour_map = "jet"
        self.kind = QComboBox()
        self.kind.addItems(["combined", "similarity", "dissimilarity"])
        self.kind.currentIndexChanged.connect(lambda _: self._on_kind())
        self._results: dict[int, ExplanationResult] = {}
        self._checks: dict[int, Any] = {}  # explanation id -> PairFaithfulness|None
        self._chips: tuple[Any, Any] | None = None
        self.inner = QWidget()
        self.grid = QGridLayout(self.inner)
        self.grid.setSpacing(GRID_SPACING)
        self.tiles_area = QScrollArea()
        self.tiles_area.setWidgetResizable(True)
        self.tiles_area.setWidget(self.inner)
        self.empty = QLabel(NO_TILES)
        self.empty.setWordWrap(True)
        self.masking: Masking | None = None
        self.columns = 1
        self.chip_size = TILE_CHIP_SIZE
        intro = QLabel(
            "Every method computed for this pair; click a tile to open it in the "
            "Comparison tab. Map shown:"
        )
        intro.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(intro, 1)
        top.addWidget(self.kind)
        self.processed_note = ProcessedNote()  # a face on a processed exhibit
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.processed_note)
        layout.addWidget(self.empty)
        layout.addWidget(self.tiles_area, 1)
        layout.addStretch(0)
        self.tiles: list[MethodTile] = []
        self.cells: list[ChipView] = []  # every tile's chips, tile by tile
        self.verdicts: list[QLabel] = []  # under each cell, in the cells' order

    def set_results(
        self, results: dict[int, ExplanationResult], chips: tuple[Any, Any] | None
    ) -> None:
        """Results by explanation id, and the pair's aligned chips under the maps."""
        self._results = dict(results)
        self._chips = chips
        self._build_tiles()

    def set_masking(self, masking: Masking) -> None:
        """A masked pair's maps are not drawn: the hidden line instead."""
        self.masking = masking
        masking.changed.connect(self._build_tiles)
        self._build_tiles()

    def hidden_text(self) -> str:
        return "" if self.masking is None else self.masking.shown_pair_hidden()

    def set_checks(self, checks: dict[int, Any]) -> None:
        """Stored faithfulness checks by explanation id (None: not checked)."""
        self._checks = dict(checks)
        self._render()

    def set_colour_map(self, name: str) -> None:
        """The colour map of unsigned maps (signed ones are always diverging)."""
        self.colour_map = name
        self._render()

    def _build_tiles(self) -> None:
        for tile in self.tiles:
            self.grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        hidden = self.hidden_text()
        self.empty.setText(hidden or NO_TILES)
        for explanation_id, result in ({} if hidden else self._results).items():
            tile = MethodTile(explanation_id, result, self.chip_size)
            tile.chosen.connect(self.explanation_chosen)
            self.tiles.append(tile)
        self.cells = [cell for tile in self.tiles for cell in tile.cells]
        self.verdicts = [label for tile in self.tiles for label in tile.verdicts]
        self.empty.setVisible(not self.tiles)
        self.tiles_area.setVisible(bool(self.tiles))
        self._render()  # first: a tile's width depends on its colour bar's labels
        self.columns = 0  # place them all again
        self._reflow()

    def _on_kind(self) -> None:
        self._render()
        self._reflow()  # the colour bars' labels, so the tiles' widths, changed

    def _render(self) -> None:
        kind = self.kind.currentText()
        for tile in self.tiles:
            texts = [
                self._verdict(tile.explanation_id, maps.side, kind)
                for maps in tile.result.images
            ]
            tile.show_kind(
                kind,
                self._chips,
                self.colour_map,
                (texts[0][0], texts[1][0]),
                (texts[0][1], texts[1][1]),
            )

    def fit(self) -> tuple[int, int]:
        """(columns, chip size): as many tiles side by side as fit with the
        smallest chips, then the chips as large as that many columns allow."""
        if not self.tiles:
            return 1, self.chip_size
        # what a tile needs besides its two chips (margins, colour bar, spacing)
        around = max(t.sizeHint().width() - 2 * t.chip_size for t in self.tiles)
        margins = self.grid.contentsMargins()
        available = (
            self.tiles_area.viewport().width() - margins.left() - margins.right()
        )
        smallest = 2 * TILE_CHIP_SIZE + around + GRID_SPACING
        # no more columns than tiles: one method gets the width, up to the cap
        columns = max(1, min(len(self.tiles), (available + GRID_SPACING) // smallest))
        room = (available + GRID_SPACING) // columns - GRID_SPACING - around
        size = room // 2 // TILE_CHIP_STEP * TILE_CHIP_STEP
        return columns, min(MAX_TILE_CHIP_SIZE, max(TILE_CHIP_SIZE, size))

    def column_count(self) -> int:
        """How many tiles fit side by side in the scroll area's width."""
        return self.fit()[0]

    def _reflow(self) -> None:
        columns, size = self.fit()
        if size != self.chip_size:
            self.chip_size = size
            self._build_tiles()  # ChipView's size is fixed: make the tiles again
            return
        if columns == self.columns:
            return
        self.columns = columns
        for tile in self.tiles:
            self.grid.removeWidget(tile)
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        for column in range(self.grid.columnCount()):
            self.grid.setColumnStretch(column, 0)
        for index, tile in enumerate(self.tiles):
            self.grid.addWidget(tile, index // columns, index % columns)
        # The space left over goes below and right of the tiles, not into them.
        self.grid.setRowStretch(-(-len(self.tiles) // columns), 1)
        self.grid.setColumnStretch(columns, 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._reflow()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._reflow()  # the viewport has its real width only once shown

    def _verdict(self, explanation_id: int, side: str, kind: str) -> tuple[str, str]:
        """The short verdict under a map and the full sentence (its tooltip)."""
        if explanation_id not in self._checks:
            return "", ""  # not read yet
        check = self._checks[explanation_id]
        verdict = None if check is None else check.get(side, kind)
        if verdict is None:
            return NOT_CHECKED_YET, NOT_CHECKED_YET
        return (
            f"Faithfulness: <b>{html.escape(verdict.verdict)}</b>",
            verdict_sentence(verdict),
        )


class LayersPanel(QWidget):
    """Alonso-Fernandez et al. 2023, §IV-D: LIME on each layer's pooled features, and
    Grad-CAM there."""

    def __init__(self, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pair: FacePair | None = None
        self.model: FaceModel | None = None
        self.result: LayerwiseResult | None = None
        self.params: dict[str, Any] | None = None  # LIME overrides (None: paper's)
        self.masking: Masking | None = None
        self.compute = QPushButton("Compute layer-by-layer maps")
        self.compute.clicked.connect(self.start)
        self.runner = TaskRunner(self, model_job="layer-by-layer maps")
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: self.runner.cancel())
        self.progress = QProgressBar()
        self.kind = QComboBox()
        self.kind.addItems(["LIME", "Grad-CAM"])
        self.kind.currentIndexChanged.connect(lambda _: self._on_kind())
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(lambda _: self._show())
        self.layer_label = QLabel("Choose a pair, then compute.")
        self.layer_label.setWordWrap(True)
        # Larger than the grid's tiles: the layer view is about where, in detail.
        self.chips = (ChipView(LAYER_CHIP_SIZE), ChipView(LAYER_CHIP_SIZE))
        self.colour_bar = ColourBar()
        self.colour_bar.setToolTip(
            "One scale for both faces: the same colour is the same value."
        )
        self.colour_bar.hide()
        self.runner.progress.connect(self._on_progress)
        self.runner.result.connect(self._on_result)
        self.runner.error.connect(
            lambda e, d: errors.report(e, d, context="Layer-by-layer maps failed.")
        )
        self.runner.finished.connect(self._enable_compute)
        top = QHBoxLayout()
        for widget in (self.compute, self.cancel, self.progress, self.kind):
            top.addWidget(widget)
        chips = QHBoxLayout()
        for chip in self.chips:
            chips.addWidget(chip)
        chips.addWidget(self.colour_bar)
        chips.addStretch(1)
        self.processed_note = ProcessedNote()  # a face on a processed exhibit
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.processed_note)
        layout.addWidget(QLabel("Depth (shallow → deep)"))
        layout.addWidget(self.slider)
        layout.addWidget(self.layer_label)
        not_checked = QLabel(LAYER_MAPS_NOT_CHECKED)
        not_checked.setWordWrap(True)
        layout.addWidget(not_checked)
        layout.addLayout(chips)
        layout.addStretch(1)

    def set_masking(self, masking: Masking) -> None:
        """A masked pair's layer maps (and its per-layer similarity) are not
        computed or shown: the hidden line instead."""
        self.masking = masking
        masking.changed.connect(self.apply_masking)
        self.apply_masking()

    def hidden_text(self) -> str:
        return "" if self.masking is None else self.masking.shown_pair_hidden()

    def apply_masking(self) -> None:
        self._enable_compute()
        hidden = self.hidden_text()
        if hidden:
            self._clear_maps(hidden)
        elif self.result is not None:
            self._show()
        elif self.pair is not None:
            self.layer_label.setText("Compute to see how the maps change with depth.")

    def _enable_compute(self) -> None:
        hidden = self.hidden_text()
        self.compute.setEnabled(not hidden and not self.runner.is_busy())
        self.compute.setToolTip(hidden)

    def _clear_maps(self, text: str) -> None:
        self.layer_label.setText(html.escape(text, quote=False))
        for chip in self.chips:
            chip.set_overlay(None, signed=False)
        self.colour_bar.hide()

    def _on_progress(self, done: int, total: int, _message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def set_pair(self, pair: FacePair | None, model: FaceModel | None) -> None:
        if pair is not self.pair:
            self.runner.cancel()
            self.result = None
            self.slider.setEnabled(False)
        self.pair, self.model = pair, model
        for side, chip in enumerate(self.chips):
            chip.set_chip(None if pair is None else pair.sides[side].chip)
            chip.set_overlay(None, signed=False)
        self.layer_label.setText("Compute to see how the maps change with depth.")
        self.apply_masking()

    def start(self) -> None:
        if self.pair is None or self.model is None or self.hidden_text():
            return
        self.compute.setEnabled(False)
        self.runner.start(explain_layers, self.pair, self.model, self.params)

    def _on_result(self, result: LayerwiseResult) -> None:
        self.result = result
        self.slider.setRange(0, len(result.layers) - 1)
        self.slider.setEnabled(True)
        self.slider.setValue(self._deepest_with_maps(len(result.layers) - 1))
        self._show()

    def _maps(self, index: int) -> Any:
        assert self.result is not None
        layer = self.result.layers[index]
        lime = self.kind.currentText() == "LIME"
        return layer.lime_maps if lime else layer.gradcam_maps

    def _deepest_with_maps(self, at_most: int) -> int:
        """The deepest layer up to ``at_most`` with maps of the chosen kind (the
        embedding has no Grad-CAM map: opening there showed nothing)."""
        for index in range(at_most, -1, -1):
            if self._maps(index) is not None:
                return index
        return at_most

    def _on_kind(self) -> None:
        if self.result is not None and self._maps(self.slider.value()) is None:
            index = self._deepest_with_maps(self.slider.value())
            if self._maps(index) is None:  # none at or above this depth: any layer
                index = self._deepest_with_maps(len(self.result.layers) - 1)
            self.slider.setValue(index)
        self._show()

    def _show(self) -> None:
        if self.result is None or self.pair is None:
            return
        hidden = self.hidden_text()
        if hidden:
            self._clear_maps(hidden)
            return
        layer = self.result.layers[self.slider.value()]
        size = f"{layer.size[0]}×{layer.size[1]}" if layer.size else "vector"
        maps = self._maps(self.slider.value())
        self.layer_label.setText(
            f"Layer <b>{layer.name}</b> ({layer.channels} channels, {size}); cosine "
            f"similarity of the two faces' pooled features at this depth: "
            f"{layer.gap_cosine:.3f}"
            + ("" if maps is not None else " — Grad-CAM needs a spatial layer")
        )
        peak = None if maps is None else shared_peak(maps)
        for side, chip in enumerate(self.chips):
            chip.set_chip(self.pair.sides[side].chip)
            chip.set_overlay(
                None if maps is None else maps[side], signed=False, peak=peak
            )
            chip.set_caption(f"{self.pair.sides[side].side}, {layer.name}")
        if peak is None:
            self.colour_bar.hide()
        else:
            self.colour_bar.set_scale(colour_lut("jet"), 0.0, peak)
            self.colour_bar.show()
