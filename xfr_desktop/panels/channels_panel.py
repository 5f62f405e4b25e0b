"""The "Channels" view: what each channel of a layer looks at (ECLoss, Lin et al. 2023).

Pick a model and a layer, analyse the faces of the open case (or of a chosen folder)
in the background, then read the three figures - part explainability, location
consistency, activation robustness - each with one plain sentence, and look at any
channel's strongest 10 % over any of the faces.  All computing happens in
``core.ecloss`` inside a worker; this widget only draws.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.ecloss.channels import (
    PLAIN_EXPLANATIONS,
    ChannelReport,
    channel_grid,
    overlay_parts,
    overlay_top_area,
)
from core.errors import BadInputError
from core.models.base import FaceModel
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.widgets.chip_view import ChipView
from xfr_desktop.widgets.qimage import rgb_to_qimage
from xfr_desktop.workers import TaskRunner

CURRENT = "Model in use"
FILE = "Model file…"
SOURCE_CASE = "Faces of the open case"
SOURCE_FOLDER = "Faces in a folder…"
MAX_EXAMPLES = 50  # faces kept for browsing (the figures use every face)
TRUST_CODE_QUESTION = (
    "This model file contains program code (TorchScript), which runs on this "
    "computer with your rights when the model is loaded.\n\n{path}\n\n"
    "Load it only if you trust where it came from. (An ONNX export of the model "
    "needs no such trust.) Load it?"
)
MIN_FACES_FOR_LS = 20  # below this, location consistency is not informative


def prepare_model(
    choice: str,
    current: FaceModel | None,
    path: str | None,
    trust_code: bool = False,
) -> tuple[FaceModel, list[str]]:
    """Worker: the chosen model and its spatial layers, deepest first.

    ``trust_code``: the examiner agreed to run a TorchScript file's code.
    """
    from core.explain.layers import output_shapes
    from core.models import load_model

    if choice == CURRENT:
        if current is None:
            raise BadInputError("no model is loaded yet")
        model = current
    elif choice == FILE:
        if not path:
            raise BadInputError("no model file chosen")
        model = load_model(path, trust_code=trust_code, analysis=True)
    else:
        model = load_model(choice, analysis=True)
    shapes = output_shapes(model)
    spatial = [
        tap.name for tap in model.layer_taps() if len(shapes.get(tap.name, ())) == 3
    ]
    return model, spatial[::-1]


def _pixmap(rgb: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_to_qimage(np.ascontiguousarray(rgb)))


class ChannelsPanel(QWidget):
    """Model + layer -> per-channel top-10 % maps and the PE / LS / AR figures."""

    def __init__(
        self,
        errors: ErrorReporter,
        current_model: Callable[[], FaceModel | None] = lambda: None,
        current_case: Callable[[], Any] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._current_model = current_model
        self._current_case = current_case
        self.model: FaceModel | None = None
        self.report: ChannelReport | None = None
        self.folder: str | None = None
        self.model_file: str | None = None
        self.errors = errors

        self.model_choice = QComboBox()
        self.model_choice.addItem(CURRENT)
        try:
            from core.models import registry

            self.model_choice.addItems(registry().ids())
        except Exception:  # a broken registry is reported when the model loads
            pass
        self.model_choice.addItem(FILE)
        self.model_choice.activated.connect(lambda _: self._choose_model())
        self.layer = QComboBox()
        self.source = QComboBox()
        self.source.addItems([SOURCE_CASE, SOURCE_FOLDER])
        self.source.activated.connect(lambda _: self._choose_source())
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, 2000)
        self.max_faces.setValue(50)
        self.max_faces.setToolTip("At most this many faces (a seeded sample)")
        self.analyse = QPushButton("Analyse channels")
        self.analyse.clicked.connect(self.start)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: self.runner.cancel())
        self.progress = QProgressBar()
        self.status = QLabel("Choose a model and a layer, then analyse.")
        self.status.setWordWrap(True)
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        self.channel = QSpinBox()
        self.channel.setEnabled(False)
        self.channel.valueChanged.connect(lambda _: self._show())
        self.face = QSpinBox()
        self.face.setEnabled(False)
        self.face.valueChanged.connect(lambda _: self._show(grid=True))
        self.chip = ChipView(size=220)
        self.parts_view = ChipView(size=220)
        self.channel_text = QLabel()
        self.channel_text.setWordWrap(True)
        self.grid = QLabel()
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid)

        self.loader = TaskRunner(self)
        self.loader.result.connect(self._on_model)
        self.loader.error.connect(
            lambda e, d: errors.report(e, d, context="The model could not be loaded.")
        )
        self.runner = TaskRunner(self, model_job="channels")
        self.runner.progress.connect(self._on_progress)
        self.runner.result.connect(self._on_result)
        self.runner.error.connect(
            lambda e, d: errors.report(e, d, context="The channel analysis failed.")
        )
        self.runner.finished.connect(lambda: self.analyse.setEnabled(True))

        controls = QGridLayout()
        controls.addWidget(QLabel("Model"), 0, 0)
        controls.addWidget(self.model_choice, 0, 1)
        controls.addWidget(QLabel("Layer"), 0, 2)
        controls.addWidget(self.layer, 0, 3)
        controls.addWidget(QLabel("Faces"), 1, 0)
        controls.addWidget(self.source, 1, 1)
        controls.addWidget(QLabel("At most"), 1, 2)
        controls.addWidget(self.max_faces, 1, 3)
        buttons = QHBoxLayout()
        for widget in (self.analyse, self.cancel, self.progress):
            buttons.addWidget(widget)
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Channel"))
        picker.addWidget(self.channel)
        picker.addWidget(QLabel("Face"))
        picker.addWidget(self.face)
        picker.addStretch(1)
        views = QHBoxLayout()
        views.addWidget(self.chip)
        views.addWidget(self.parts_view)
        views.addWidget(self.channel_text, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.figures)
        layout.addLayout(picker)
        layout.addLayout(views)
        layout.addWidget(
            QLabel("Every channel on this face (strongest 10 % in colour)")
        )
        layout.addWidget(scroll, 1)

    def showEvent(self, event: QShowEvent) -> None:
        """Pick up the model in use when the view is opened (it may have changed)."""
        super().showEvent(event)
        if (
            self.model_choice.currentText() == CURRENT
            and not self.loader.is_busy()
            and self._current_model() is not None
            and self._current_model() is not self.model
        ):
            self.load_model(CURRENT)

    # ---- choices ----------------------------------------------------------------
    def _choose_model(self) -> None:
        choice = self.model_choice.currentText()
        if choice == FILE:
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Model file (with its card)",
                "",
                "Models (*.pt *.ts *.torchscript *.onnx)",
            )
            if not path:
                return
            self.model_file = path
        trust_code = False
        if choice == FILE and self.model_file:
            from core.models.onnx_model import is_torchscript_file

            if is_torchscript_file(self.model_file):
                # Asked here, on the UI thread, before anything reads the file.
                answer = QMessageBox.question(
                    self,
                    "Trust this model file?",
                    TRUST_CODE_QUESTION.format(path=self.model_file),
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                    QMessageBox.StandardButton.No,
                )
                if answer != QMessageBox.StandardButton.Yes:
                    self.status.setText(
                        f"{self.model_file} was not loaded: its code is not trusted."
                    )
                    return
                trust_code = True
        self.load_model(choice, self.model_file, trust_code)

    def load_model(
        self, choice: str, path: str | None = None, trust_code: bool = False
    ) -> None:
        """Load the model in the background and list its spatial layers.

        ``trust_code`` lets a TorchScript file's code run (the examiner said yes).
        """
        self.model = None
        self.layer.clear()
        if choice == CURRENT and self._current_model() is None:
            self.analyse.setEnabled(False)
            self.status.setText("No model is loaded yet.")
            return
        self.analyse.setEnabled(False)
        self.status.setText("Loading the model…")
        self.loader.start(
            prepare_model, choice, self._current_model(), path, trust_code
        )

    def _choose_source(self) -> None:
        if self.source.currentText() == SOURCE_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Folder of face images")
            if folder:
                self.set_folder(folder)
            else:
                self.source.setCurrentText(SOURCE_CASE)
        else:
            self.folder = None

    def set_folder(self, folder: str | None) -> None:
        """Analyse the faces in ``folder`` (None: the open case's faces)."""
        self.folder = folder
        self.source.setCurrentText(SOURCE_FOLDER if folder else SOURCE_CASE)
        if folder:
            self.source.setToolTip(folder)

    def _on_model(self, value: tuple[FaceModel, list[str]]) -> None:
        self.model, layers = value
        self.layer.clear()
        self.layer.addItems(layers)
        self.analyse.setEnabled(bool(layers))
        self.status.setText(
            f"{self.model.display_name}: {len(layers)} convolutional layers."
            if layers
            else f"{self.model.display_name} exposes no convolutional layers "
            "(a TorchScript file cannot be looked into; use ONNX)."
        )

    # ---- running ----------------------------------------------------------------
    def start(self) -> None:
        if self.model is None or not self.layer.currentText():
            return
        self.analyse.setEnabled(False)
        self.status.setText("Analysing…")
        self.runner.start(
            workflow.channel_analysis,
            self.model,
            self.layer.currentText(),
            self._current_case(),
            self.folder,
            self.max_faces.value(),
            MAX_EXAMPLES,
        )

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(message)

    def _on_result(self, report: ChannelReport) -> None:
        self.report = report
        self.status.setText(
            f"{report.faces} face(s), layer {report.layer} of {report.model_name}, "
            f"{report.seconds:.1f} s"
            + (
                f"; {len(report.skipped)} images without a face"
                if report.skipped
                else ""
            )
        )
        self.figures.setText(self.figures_html(report))
        self.channel.setRange(0, report.channels - 1)
        self.channel.setEnabled(True)
        examples = 0 if report.examples is None else len(report.examples.chips)
        self.face.setRange(0, max(0, examples - 1))
        self.face.setEnabled(examples > 1)
        self._show(grid=True)

    @staticmethod
    def figures_html(report: ChannelReport) -> str:
        def figure(value: float, se: float | None, digits: int) -> str:
            text = f"{value:.{digits}f}"
            return text if se is None else f"{text} ± {se:.{digits}f}"

        rows = [
            (
                "PE",
                figure(report.part_explainability, report.part_explainability_se, 3),
            ),
            (
                "LS",
                figure(report.location_consistency, report.location_consistency_se, 4),
            ),
            (
                "AR",
                figure(
                    report.activation_robustness, report.activation_robustness_se, 2
                ),
            ),
        ]
        lines = [
            f"<b>{name} = {value}</b> — {html.escape(PLAIN_EXPLANATIONS[name])}"
            for name, value in rows
        ]
        lines.append(
            f"{report.dead_channels} of {report.channels} channels never touch a "
            "face part. These figures describe the model, not this comparison."
        )
        if report.faces < MIN_FACES_FOR_LS:
            lines.append(
                f"<i>Only {report.faces} face(s): LS needs many faces to mean "
                "anything (with one face every channel is trivially consistent).</i>"
            )
        return "<br>".join(lines)

    def _show(self, grid: bool = False) -> None:
        report = self.report
        if report is None or report.examples is None or not len(report.examples.chips):
            return
        face = min(self.face.value(), len(report.examples.chips) - 1)
        channel = self.channel.value()
        examples = report.examples
        kept = examples.top_map(face, channel, report.fraction)
        self.chip.set_chip(overlay_top_area(examples.chips[face], kept))
        self.chip.set_caption(f"channel {channel}, strongest 10 %")
        self.parts_view.set_chip(
            overlay_parts(examples.chips[face], examples.part_labels[face])
        )
        self.parts_view.set_caption("face parts from the 68 landmarks")
        stats = report.channel_stats[channel]
        if stats.dominant_part is None:
            text = f"Channel {channel} never lands on a face part."
        else:
            text = (
                f"Channel {channel} lands mostly on the <b>{stats.dominant_part}</b> "
                f"({stats.dominant_share:.0%} of the faces where it is active), with "
                f"{stats.mean_peaks:.1f} peaks on average; best overlap with a part "
                f"{stats.mean_best_iou:.2f} (IoU)."
            )
        self.channel_text.setText(text)
        if grid:
            self.grid.setPixmap(_pixmap(channel_grid(report, face, tile=72)))

    def shutdown(self) -> None:
        """Cancel and await both workers."""
        self.loader.shutdown()
        self.runner.shutdown()
