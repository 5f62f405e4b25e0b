"""All computed methods for the pair at once, and the maps layer by layer."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
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

from core.colours import colour_lut, robust_peak
from core.explain.base import ExplanationResult, FacePair
from core.explain.layerwise import LayerwiseResult, explain_layers
from core.explain.render import display_sigma, smooth_covered
from core.metrics.pair_faithfulness import verdict_sentence
from core.models.base import FaceModel
from core.wording import LAYER_MAPS_NOT_CHECKED, NOT_CHECKED_YET
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.widgets.chip_view import ChipView
from xfr_desktop.widgets.colour_bar import ColourBar
from xfr_desktop.workers import TaskRunner

LAYER_CHIP_SIZE = 240  # px; the grid's tiles are 150


class MethodGrid(QWidget):
    """One row per computed method: probe and gallery chips with the combined map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour_map = "jet"
        self.kind = QComboBox()
        self.kind.addItems(["combined", "similarity", "dissimilarity"])
        self.kind.currentIndexChanged.connect(lambda _: self._render())
        self._results: dict[int, ExplanationResult] = {}
        self._checks: dict[int, Any] = {}  # explanation id -> PairFaithfulness|None
        self._chips: tuple[Any, Any] | None = None
        self.inner = QWidget()
        self.grid = QGridLayout(self.inner)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.inner)
        top = QHBoxLayout()
        top.addWidget(QLabel("Every method computed for this pair; map shown:"))
        top.addWidget(self.kind)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self.cells: list[ChipView] = []
        self.verdicts: list[QLabel] = []  # under each cell, in the cells' order
        self.grid.setColumnStretch(3, 1)

    def set_results(
        self, results: dict[int, ExplanationResult], chips: tuple[Any, Any] | None
    ) -> None:
        """Results by explanation id, and the pair's aligned chips under the maps."""
        self._results = dict(results)
        self._chips = chips
        self._render()

    def set_checks(self, checks: dict[int, Any]) -> None:
        """Stored faithfulness checks by explanation id (None: not checked)."""
        self._checks = dict(checks)
        self._render()

    def _render(self) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.cells = []
        self.verdicts = []
        kind = self.kind.currentText()
        if not self._results:
            self.grid.addWidget(QLabel("No explanation computed for this pair yet."))
            return
        self.grid.setRowStretch(len(self._results), 1)
        for row, (explanation_id, result) in enumerate(self._results.items()):
            name = QLabel(
                f"<b>{result.method_name}</b><br>#{explanation_id}, seed "
                f"{result.seed}<br>{result.seconds:.1f} s"
            )
            name.setWordWrap(True)
            self.grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            for side, maps in enumerate(result.images):
                cell = ChipView()
                cell.set_chip(None if self._chips is None else self._chips[side])
                values = maps.chip_maps().get(kind)
                cell.set_caption(
                    f"{maps.side}"
                    if values is not None
                    else f"{maps.side}: no {kind} map"
                )
                if values is not None:
                    values = smooth_covered(values, display_sigma(values))
                    cell.set_overlay(
                        values, signed=kind == "combined", colour_map=self.colour_map
                    )
                verdict = QLabel(
                    ""
                    if values is None
                    else self._verdict(explanation_id, maps.side, kind)
                )
                verdict.setWordWrap(True)
                verdict.setMaximumWidth(260)
                box = QWidget()
                column = QVBoxLayout(box)
                column.setContentsMargins(0, 0, 0, 0)
                column.addWidget(cell)
                column.addWidget(verdict)
                self.grid.addWidget(box, row, 1 + side, Qt.AlignmentFlag.AlignTop)
                self.cells.append(cell)
                self.verdicts.append(verdict)

    def _verdict(self, explanation_id: int, side: str, kind: str) -> str:
        if explanation_id not in self._checks:
            return ""  # not read yet
        check = self._checks[explanation_id]
        verdict = None if check is None else check.get(side, kind)
        return NOT_CHECKED_YET if verdict is None else verdict_sentence(verdict)


class LayersPanel(QWidget):
    """Alonso-Fernandez et al. 2023, §IV-D: LIME on each layer's pooled features, and
    Grad-CAM there."""

    def __init__(self, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pair: FacePair | None = None
        self.model: FaceModel | None = None
        self.result: LayerwiseResult | None = None
        self.params: dict[str, Any] | None = None  # LIME overrides (None: paper's)
        self.compute = QPushButton("Compute layer-by-layer maps")
        self.compute.clicked.connect(self.start)
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
        self.runner = TaskRunner(self)
        self.runner.progress.connect(
            lambda done, total, _m: (
                self.progress.setRange(0, max(total, 1)),
                self.progress.setValue(done),
            )
        )
        self.runner.result.connect(self._on_result)
        self.runner.error.connect(
            lambda e, d: errors.report(e, d, context="Layer-by-layer maps failed.")
        )
        self.runner.finished.connect(lambda: self.compute.setEnabled(True))
        top = QHBoxLayout()
        for widget in (self.compute, self.cancel, self.progress, self.kind):
            top.addWidget(widget)
        chips = QHBoxLayout()
        for chip in self.chips:
            chips.addWidget(chip)
        chips.addWidget(self.colour_bar)
        chips.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(QLabel("Depth (shallow → deep)"))
        layout.addWidget(self.slider)
        layout.addWidget(self.layer_label)
        not_checked = QLabel(LAYER_MAPS_NOT_CHECKED)
        not_checked.setWordWrap(True)
        layout.addWidget(not_checked)
        layout.addLayout(chips)
        layout.addStretch(1)

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

    def start(self) -> None:
        if self.pair is None or self.model is None:
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
        layer = self.result.layers[self.slider.value()]
        size = f"{layer.size[0]}×{layer.size[1]}" if layer.size else "vector"
        maps = self._maps(self.slider.value())
        self.layer_label.setText(
            f"Layer <b>{layer.name}</b> ({layer.channels} channels, {size}); cosine "
            f"similarity of the two faces' pooled features at this depth: "
            f"{layer.gap_cosine:.3f}"
            + ("" if maps is not None else " — Grad-CAM needs a spatial layer")
        )
        peak = None if maps is None else max(robust_peak(m) for m in maps)
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
