"""The comparison workspace: probe and gallery side by side, score in plain words,
the ranked candidates (1:N), explanation overlays and annotations."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QFontDatabase, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.calibration import StrengthOfEvidence
from core.case import workflow
from core.case.examination import Examination
from core.case.store import Case, Comparison
from core.case.workflow import LoadedPair
from core.colours import (
    COLOUR_MAPS,
    DEFAULT_COLOUR_MAP,
    SIGNED_COLOUR_MAP,
    SIGNED_COLOUR_MAP_LABEL,
    colour_lut,
    map_legend,
    shared_floor,
    shared_peak,
)
from core.explain import FacePair
from core.explain.base import (
    ExplainerInfo,
    ExplanationResult,
    find_info,
    warp_to_evidence,
)
from core.explain.methods.components import component_table_lines
from core.explain.render import display_sigma, smooth_covered
from core.explain.render_correspondence import render_correspondence
from core.explain.stability import stability_sentence
from core.metrics.pair_faithfulness import FaithfulnessSettings, PairFaithfulness
from core.models.base import FaceModel, Threshold
from core.wording import (
    ACCEPT_WORDS,
    NOT_CHECKED_YET,
    REJECT_WORDS,
    UNITS_NOT_STATED,
)
from xfr_desktop.dialogs.annotation_dialog import AnnotationDialog
from xfr_desktop.masking import (
    Masking,
    case_examination,
    hidden_list_message,
    hidden_message,
)
from xfr_desktop.theme import problem_style
from xfr_desktop.widgets.candidates_table import CandidatesTable
from xfr_desktop.widgets.chip_view import ChipView
from xfr_desktop.widgets.colour_bar import ColourBar
from xfr_desktop.widgets.faithfulness_plot import FaithfulnessPlot
from xfr_desktop.widgets.flow_layout import FlowLayout
from xfr_desktop.widgets.processed_note import ProcessedNote, processed_pair_text
from xfr_desktop.widgets.view_sync import ViewSync
from xfr_desktop.widgets.viewer import EvidenceViewer
from xfr_desktop.workers import TaskRunner

TOOLS = (
    (None, "Pan / select"),
    ("point", "Point"),
    ("rectangle", "Rectangle"),
    ("ellipse", "Ellipse"),
    ("polygon", "Polygon"),
    ("freehand", "Freehand"),
)
CHECK_TIP = (
    "Remove the face region by region in the map's order and watch the model's "
    "decision for this pair; compare with random orders, a fixed face-centre map "
    "and the same method's maps for other faces of the case (kept in the case)"
)
UNCERTAINTY = "uncertainty"
UNCERTAINTY_NOTE = (
    "The uncertainty shows how much a sampled map could change with another seed "
    "(per-pixel standard error); it is not a map of its own and gets no check."
)
COMPARE_CHIP_SIZE = 96  # the chips sit beside the score: the views get the height
# The views' smallest size: two of them beside the colour bar fit the ~680 px the
# comparison view gets in a 1280x720 window (issue 18).
VIEW_MIN_SIZE = 280
READ_ONLY_TIP = (
    "The case is open read-only: a check is kept in the case, so it cannot be made "
    "here (checks stored earlier are shown)."
)


def stability_text(result: ExplanationResult | None) -> str:
    """The stability lines of a sampled method's result ("" for others)."""
    if result is None:
        return ""
    lines = [stability_sentence(result.details, m.side) for m in result.images]
    return " ".join(line for line in lines if line)


def links_figure(pair: FacePair, links: list, height: int = 300) -> np.ndarray:
    """Both aligned chips with the numbered region-to-region links (enlarged, so
    that the numbers can be read; the link points scaled with the chips)."""
    import cv2

    chips, scales = [], []
    for view in pair.sides:
        scale = height / view.chip.shape[0]
        width = round(view.chip.shape[1] * scale)
        chips.append(
            cv2.resize(view.chip, (width, height), interpolation=cv2.INTER_LINEAR)
        )
        scales.append(scale)
    scaled = [
        {
            **link,
            "probe_xy": [float(v) * scales[0] for v in link["probe_xy"]],
            "gallery_xy": [float(v) * scales[1] for v in link["gallery_xy"]],
        }
        for link in links
    ]
    return render_correspondence(chips[0], chips[1], scaled, gap=12)


def plain_words(comparison: Comparison, strength: StrengthOfEvidence | None) -> str:
    """The score, the decision and the LR (with its cautions on the image
    conditions) as an examiner reads them out; ``strength`` is the LR the worker
    found for the pair (``LoadedPair.strength``)."""
    rule = Threshold.from_dict(comparison.threshold).rule_text()
    verdict = (
        f"The model scores these two faces as the <b>{ACCEPT_WORDS}</b>."
        if comparison.decision == "accept"
        else f"The model scores these two faces as <b>{REJECT_WORDS}</b>."
    )
    evidence = (
        "No likelihood ratio: no calibration is available for this model. "
        if strength is None
        else f"Likelihood ratio <b>{strength.likelihood_ratio:.3g}</b> "
        f"({html.escape(strength.words)} "
        f"Calibrated on: {html.escape(strength.reference)}.) "
    )
    cautions = (
        ""
        if strength is None
        else "".join(
            f"<br><b>Caution:</b> {html.escape(caution)}"
            for caution in strength.cautions
        )
    )
    return (
        f"Cosine similarity <b>{comparison.similarity:.4f}</b>, Euclidean distance "
        f"<b>{comparison.distance:.4f}</b>; rule: {rule}. {verdict} {evidence}"
        "<i>This is a model score, not an identification: it supports, and does not "
        f"replace, the examiner's comparison.</i>{cautions}"
    )


class ComparePanel(QWidget):
    """Probe | gallery viewers, chips, score text, candidates and overlay controls."""

    pair_loaded = Signal(object)  # LoadedPair
    annotation_requested = Signal(dict)  # fields for CaseController.add_annotation
    annotation_moved = Signal(int, object)
    annotation_delete_requested = Signal(int)
    landmarks_corrected = Signal(str, object)  # face label, (5, 2) points
    checks_changed = Signal(object)  # {explanation id: PairFaithfulness or None}
    check_failed = Signal(object, str)  # exception, details

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.case: Case | None = None
        self.model: FaceModel | None = None
        self.loaded: LoadedPair | None = None
        self.results: dict[int, ExplanationResult] = {}  # explanation id -> result
        self.ask_annotation_details = True  # tests switch the dialog off
        # sequential unmasking / blind mode (None: the case's examination, not blind)
        self.masking: Masking | None = None
        self.viewers = (EvidenceViewer(), EvidenceViewer())
        for viewer in self.viewers:
            # one read-out and one colour bar for both views (issue 18: two
            # read-outs disagreed, one of them showing the smoothed value)
            viewer.set_readout_shown(False)
            viewer.set_own_colour_bar(False)
            viewer.setMinimumSize(VIEW_MIN_SIZE, VIEW_MIN_SIZE)
        self.colour_bar = ColourBar()
        self.colour_bar.hide()
        self.chips = (ChipView(COMPARE_CHIP_SIZE), ChipView(COMPARE_CHIP_SIZE))
        # the examiner's map choice: kept while jobs finish (None: not chosen yet)
        self._chosen_explanation: int | None = None
        # explanations of earlier records of the shown faces (corrected, reset or
        # rejected since): listed after the current ones, drawn under a note
        self.earlier: dict[int, workflow.EarlierResult] = {}
        self.earlier_note = QLabel()
        self.earlier_note.setWordWrap(True)
        self.earlier_note.hide()
        # a face on a processed exhibit (Q1.1): what the pair's scores and maps are of
        self.derived_note = ProcessedNote()
        self._hover_at: tuple[int, float, float] | None = None  # side, x, y
        self._unsigned_colour_map = DEFAULT_COLOUR_MAP
        self.shown_peak: float | None = None  # the scale both views are drawn on
        self.sync = ViewSync(*self.viewers)
        self.probe_combo, self.gallery_combo = QComboBox(), QComboBox()
        self.probe_combo.activated.connect(lambda _: self._selection_changed())
        self.gallery_combo.activated.connect(lambda _: self._selection_changed())
        self.candidates = CandidatesTable()
        self.candidates.candidate_chosen.connect(self._on_candidate)
        self.candidates_title = QLabel("<b>Candidates</b> (1:N)")
        # 1:N beyond the case: the window opens the reference-gallery search
        self.gallery_search = QPushButton("Search a reference gallery…")
        self.probe_combo.activated.connect(lambda _: self.refresh_candidates())
        self.score = QLabel("Open a case and choose a probe and a gallery face.")
        self.score.setWordWrap(True)
        self.score.setTextFormat(Qt.TextFormat.RichText)
        self.hover = QLabel(" ")
        self.hover.setWordWrap(True)
        self.hover.setToolTip(
            "The stored map value under the cursor (not smoothed), and at the same "
            "face point in the other image"
        )
        # the per-pair faithfulness check of the shown maps (pair_faithfulness)
        self.checks: dict[int, PairFaithfulness | None] = {}  # read or computed
        self.faithfulness_settings: FaithfulnessSettings | None = None  # default
        self.reference_count = workflow.DEFAULT_REFERENCE_FACES
        self.faithfulness = (FaithfulnessPlot("probe"), FaithfulnessPlot("gallery"))
        self.check_faithfulness = QPushButton("Check faithfulness")
        self.check_faithfulness.setToolTip(CHECK_TIP)
        self.check_faithfulness.clicked.connect(self.start_check)
        self.cancel_check = QPushButton("Cancel check")
        self.cancel_check.setEnabled(False)
        self.links_view = QLabel()
        self.links_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.links_view.setToolTip(
            "Correspondence: the numbered spots join the probe region and the "
            "gallery region whose pairing adds most to the score (filled: raises "
            "it, ring: lowers it)"
        )
        self.links_view.hide()
        # the components method's measured table (monospace: aligned columns)
        self.components_view = QPlainTextEdit()
        self.components_view.setReadOnly(True)
        self.components_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.components_view.setFont(
            QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        )
        self.components_view.setToolTip(
            "Components: each FISWG component hidden in the probe, the gallery and "
            "both, and the measured change of the model's decision margin"
        )
        self.components_view.hide()
        self._build_overlay_controls()
        self._build_toolbar()
        self._layout()
        self._loader = TaskRunner(self)
        self._loader.result.connect(self._on_pair_loaded)
        self._check_reader = TaskRunner(self)
        self._check_reader.result.connect(self._on_checks_read)
        self._checker = TaskRunner(self)
        self._checker.result.connect(self._on_checked)
        self._checker.error.connect(self.check_failed)
        self._checker.progress.connect(self._on_check_progress)
        self._checker.started.connect(lambda: self.cancel_check.setEnabled(True))
        self._checker.finished.connect(self._on_check_finished)
        self.cancel_check.clicked.connect(self._checker.cancel)
        for side, viewer in enumerate(self.viewers):
            viewer.hovered.connect(
                lambda x, y, value, side=side: self._on_hover(side, x, y, value)
            )
            viewer.annotation_drawn.connect(
                lambda shape, points, side=side: self._on_drawn(side, shape, points)
            )
            viewer.annotation_moved.connect(self.annotation_moved)
            viewer.annotation_delete_requested.connect(self.annotation_delete_requested)
            viewer.landmarks_edited.connect(
                lambda points, side=side: self._on_landmarks(side, points)
            )

    # ---- layout --------------------------------------------------------------------
    def _build_overlay_controls(self) -> None:
        self.method_combo = QComboBox()
        self.method_combo.setToolTip("Explanations computed for this pair")
        # at 1280x720 the box is narrow: its tooltip carries the whole name
        self.method_combo.currentTextChanged.connect(
            lambda text: self.method_combo.setToolTip(
                f"{text}\nExplanations computed for this pair"
                if text
                else "Explanations computed for this pair"
            )
        )
        self.method_combo.setMinimumContentsLength(16)
        self.method_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.method_combo.activated.connect(self._on_method_chosen)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(
            ["similarity", "dissimilarity", "combined", UNCERTAINTY]
        )
        self.kind_combo.setToolTip(
            "similarity: regions behind 'same person'; dissimilarity: regions "
            "behind 'different people'; combined: both, red for and blue against; "
            "uncertainty: for sampled methods, how much the map could change with "
            "another seed"
        )
        self.stability_label = QLabel()
        self.stability_label.setWordWrap(True)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(90)
        self.colour_combo = QComboBox()
        self.colour_combo.addItems(COLOUR_MAPS)
        self.colour_combo.setToolTip("Colour map of similarity and dissimilarity maps")
        # wide enough for the diverging map's name, so it never reads cut off
        self.colour_combo.setMinimumContentsLength(len(SIGNED_COLOUR_MAP_LABEL) - 6)
        self.colour_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        # the examiner's pick (programmatic changes of the box block its signals)
        self.colour_combo.currentIndexChanged.connect(
            lambda _: self._remember_colour_map(self.colour_combo.currentText())
        )
        self.top_percent = QSpinBox()
        self.top_percent.setRange(1, 100)
        self.top_percent.setValue(100)
        self.top_percent.setSuffix(" %")
        self.top_percent.setToolTip("Show only the strongest x % of the map")
        self.smooth = QCheckBox("Smooth")
        self.smooth.setChecked(True)
        self.smooth.setToolTip(
            "Display only: Gaussian smoothing over 2 % of the face width, as in the "
            "exported overlays; stored maps and read-outs stay raw"
        )
        self.show_overlay = QCheckBox("Show map")
        self.show_overlay.setChecked(True)
        self.sync_check = QCheckBox("Sync zoom")
        self.sync_check.setToolTip(
            "Keep both views on the same region relative to their faces"
        )
        self.sync_check.setChecked(True)
        self.sync_check.toggled.connect(self.sync.set_enabled)
        self.sync.set_enabled(True)
        for signal in (
            self.method_combo.currentIndexChanged,
            self.kind_combo.currentIndexChanged,
            self.opacity.valueChanged,
            self.top_percent.valueChanged,
            self.show_overlay.toggled,
            self.smooth.toggled,
        ):
            signal.connect(lambda *_: self.update_overlays())

    def _build_toolbar(self) -> None:
        # Few, short entries: the drawing tools are one menu button, so that the
        # bar never overflows at 1280x720 (issue 18: "Edit landmarks" was hidden).
        self.toolbar = QToolBar("Annotation tools")
        group = QActionGroup(self)
        self.tool_actions: dict[str | None, QAction] = {}
        self.draw_menu = QMenu(self)
        for tool, text in TOOLS:
            action = QAction(text, self)
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, tool=tool: self.set_tool(tool))
            group.addAction(action)
            if tool is None:
                self.toolbar.addAction(action)
            else:
                self.draw_menu.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions[None].setChecked(True)
        self.draw_button = QToolButton()
        self.draw_button.setText("Annotate")
        self.draw_button.setToolTip("Draw an annotation: point, rectangle, ellipse, …")
        self.draw_button.setMenu(self.draw_menu)
        self.draw_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.toolbar.addWidget(self.draw_button)
        self.toolbar.addSeparator()
        self.edit_landmarks = QAction("Edit landmarks", self)
        self.edit_landmarks.setCheckable(True)
        self.edit_landmarks.setToolTip(
            "Drag the five points (eyes' corners, nose); the chip is re-aligned"
        )
        self.edit_landmarks.toggled.connect(
            lambda on: [v.set_landmarks_editable(on) for v in self.viewers]
        )
        self.toolbar.addAction(self.edit_landmarks)

    def _layout(self) -> None:
        # Controls in a wrapping row (one row wide, two or three at 1280x720, never
        # overlapping); the views take the height; score, candidates and the
        # faithfulness check share a tab area below a splitter (issue 18).
        controls = FlowLayout()
        controls.addWidget(self.toolbar)
        for widget in (
            self._labelled("Map", self.method_combo),
            self.kind_combo,
            self.show_overlay,
            self._labelled("Opacity", self.opacity),
            self._labelled("Colours", self.colour_combo),
            self._labelled("Show top", self.top_percent),
            self.smooth,
            self.sync_check,
        ):
            controls.addWidget(widget)
        views = QGridLayout()
        views.setSpacing(4)
        for side, (viewer, combo, name) in enumerate(
            zip(
                self.viewers,
                (self.probe_combo, self.gallery_combo),
                ("Probe", "Gallery"),
                strict=True,
            )
        ):
            views.addWidget(self._labelled(name, combo, stretch=True), 0, side)
            views.addWidget(viewer, 1, side)
            views.setColumnStretch(side, 1)
        views.addWidget(self.colour_bar, 1, 2)
        views.setRowStretch(1, 1)
        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        column.addLayout(controls)
        column.addWidget(self.earlier_note)
        column.addLayout(views, 1)
        column.addWidget(self.derived_note)
        column.addWidget(self.hover)

        score_tab = QWidget()
        score_row = QHBoxLayout(score_tab)
        score_row.setContentsMargins(4, 4, 4, 4)
        for chip in self.chips:
            score_row.addWidget(chip, 0, Qt.AlignmentFlag.AlignTop)
        # the score's words scroll when the tab is kept low (the views first)
        words = QWidget()
        text = QVBoxLayout(words)
        text.setContentsMargins(0, 0, 0, 0)
        text.addWidget(self.score)
        text.addWidget(self.stability_label)
        text.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(words)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        score_row.addWidget(scroll, 1)
        candidates_tab = QWidget()
        candidates = QVBoxLayout(candidates_tab)
        candidates.setContentsMargins(4, 4, 4, 4)
        title_row = QHBoxLayout()
        title_row.addWidget(self.candidates_title, 1)
        title_row.addWidget(self.gallery_search, 0, Qt.AlignmentFlag.AlignTop)
        candidates.addLayout(title_row)
        candidates.addWidget(self.candidates, 1)
        # what some methods measure besides their maps: links, components table
        details_tab = QWidget()
        details = QHBoxLayout(details_tab)
        details.setContentsMargins(4, 4, 4, 4)
        details.addWidget(self.links_view)
        details.addWidget(self.components_view, 1)
        check_tab = QWidget()
        check = QVBoxLayout(check_tab)
        check.setContentsMargins(4, 4, 4, 4)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_faithfulness)
        buttons.addWidget(self.cancel_check)
        buttons.addStretch(1)
        check.addLayout(buttons)
        plots = QHBoxLayout()
        for plot in self.faithfulness:
            plots.addWidget(plot)
        check.addLayout(plots, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(score_tab, "Score")
        self.tabs.addTab(candidates_tab, "Candidates (1:N)")
        self.tabs.addTab(check_tab, "Faithfulness")
        self.details_tab = self.tabs.addTab(details_tab, "Method details")
        self.tabs.setTabEnabled(self.details_tab, False)
        self.tabs.setTabToolTip(
            self.details_tab,
            "Correspondence links or the components table of the method shown",
        )
        self.tabs.setMinimumHeight(COMPARE_CHIP_SIZE + 50)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        # the views first: the tabs start at their smallest height
        splitter.setSizes([10_000, self.tabs.minimumHeight()])
        self.splitter = splitter
        self.tabs.currentChanged.connect(self._give_tab_room)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def _give_tab_room(self, index: int) -> None:
        """The candidates table, the faithfulness curves and the method details
        get up to 45 % of the height (the views keep their minimum); the score
        goes back to its smallest height.  The examiner can still drag."""
        total = sum(self.splitter.sizes())
        smallest = self.tabs.minimumHeight()
        wanted = smallest if index == 0 else max(smallest, int(total * 0.45))
        self.splitter.setSizes([total - wanted, wanted])

    @staticmethod
    def _labelled(text: str, widget: QWidget, stretch: bool = False) -> QWidget:
        """``widget`` with its label in front, as one item of a row."""
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(QLabel(text))
        row.addWidget(widget, 1 if stretch else 0)
        return box

    # ---- sequential unmasking and blind mode --------------------------------------
    def set_masking(self, masking: Masking) -> None:
        """Follow ``masking``: re-ask what is hidden whenever it may have changed."""
        self.masking = masking
        masking.changed.connect(self.apply_masking)
        self.apply_masking()

    def examination(self) -> Examination | None:
        if self.masking is not None:
            return self.masking.examination()
        return case_examination(self.case)

    def hidden_text(self) -> str:
        """The hidden line for the loaded pair, "" when its results may be shown."""
        examination = self.examination()
        if self.loaded is None or examination is None:
            return ""
        questioned, known = self.loaded.probe_label, self.loaded.gallery_label
        if not examination.masked(questioned, known):
            return ""
        return hidden_message(questioned, known)

    def apply_masking(self) -> None:
        """Show or hide the loaded pair's results as the examination now says
        (after an unmasking they appear without reopening the pair)."""
        if self.masking is not None and self.masking.controller.case is not self.case:
            return  # the case is closing or changing: set_case redraws
        if self.loaded is not None:
            self.score.setText(self._score_text(self.loaded))
        self.refresh_annotations()
        self.refresh_candidates()
        self._fill_method_combo()

    def _score_text(self, loaded: LoadedPair) -> str:
        hidden = self.hidden_text()
        if hidden:
            return f"<b>{html.escape(hidden, quote=False)}</b>"
        return plain_words(loaded.comparison, loaded.strength)

    # ---- case content --------------------------------------------------------------
    def set_case(self, case: Case | None, model: FaceModel | None) -> None:
        self.case, self.model = case, model
        self.loaded = None
        self.derived_note.hide()
        self._checker.cancel()
        self.checks = {}
        writable = case is None or not case.read_only
        self.check_faithfulness.setEnabled(writable)
        self.check_faithfulness.setToolTip(CHECK_TIP if writable else READ_ONLY_TIP)
        self._chosen_explanation = None
        self._hover_at = None
        self.earlier = {}
        self.set_explanations({})  # no map of another case may stay selectable
        for viewer in self.viewers:
            viewer.set_image(np.zeros((8, 8, 3), np.uint8))
            viewer.set_overlay(None, signed=False)
        self._show_readout()
        self.refresh_faces()

    def refresh_faces(self) -> None:
        if self.case is None:
            self.probe_combo.clear()
            self.gallery_combo.clear()
            return
        for combo, prefix in ((self.probe_combo, "Q"), (self.gallery_combo, "K")):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([f.label for f in self.case.faces() if f.mark[0] == prefix])
            if current:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self.refresh_candidates()

    def refresh_candidates(self) -> None:
        """The probe's 1:N table from the stored scores (no recompute: the case
        controller ranks every probe in a worker when faces change)."""
        probe = self.probe_combo.currentText()
        if self.case is None or self.model is None or not probe:
            self.candidates_title.setText("<b>Candidates</b> (1:N)")
            self.candidates.set_rows(
                [], None if self.model is None else self.model.threshold
            )
            return
        threshold = self.model.threshold
        examination = self.examination()
        if examination is not None and examination.any_masked(probe):
            # no score, LR, decision or rank: the gallery faces in mark order,
            # still there to choose a pair from
            self.candidates_title.setText(
                html.escape(hidden_list_message(probe), quote=False)
            )
            self.candidates_title.setWordWrap(True)
            self.candidates_title.setToolTip("")
            self.candidates.set_masked(
                [f.label for f in workflow.role_faces(self.case, "gallery")],
                self.gallery_combo.currentText(),
            )
            return
        rows = workflow.candidate_rows(self.case, probe, self.model)
        score = "distance" if threshold.metric == "euclidean" else "cosine"
        self.candidates_title.setText(
            f"<b>Candidates for {html.escape(probe)}</b> (1:N, best first by {score})"
            if rows
            else f"<b>Candidates for {html.escape(probe)}</b>: "
            + (
                "not ranked yet"
                if workflow.role_faces(self.case, "gallery")
                else "no gallery face to compare with yet: add gallery images"
            )
        )
        self.candidates_title.setToolTip(threshold.rule_text())
        self.candidates.set_rows(rows, threshold, self.gallery_combo.currentText())

    def _on_candidate(self, label: str) -> None:
        self.gallery_combo.setCurrentText(label)
        self._selection_changed()

    def next_candidate(self, step: int = 1) -> None:
        self.candidates.step(step)

    def select(self, label: str, role: str) -> None:
        combo = self.probe_combo if role == "probe" else self.gallery_combo
        combo.setCurrentText(label)
        if role == "probe":
            self.refresh_candidates()
        self._selection_changed()

    def _selection_changed(self) -> None:
        probe, gallery = (
            self.probe_combo.currentText(),
            self.gallery_combo.currentText(),
        )
        if self.case is None or self.model is None or not probe or not gallery:
            return
        self.score.setText(f"Loading {probe} and {gallery}…")
        self._loader.start(workflow.load_pair, self.case, probe, gallery, self.model)

    def reload(self) -> None:
        self._selection_changed()

    def _on_pair_loaded(self, loaded: LoadedPair) -> None:
        if self.case is not None:
            # a face changed while it loaded (an undo can bring back the record
            # the view showed before the load began): load what is current now
            current = {face.label: face.id for face in self.case.faces()}
            if any(current.get(f.label, f.id) != f.id for f in loaded.faces):
                self.reload()
                return
        if self.loaded is None or self.loaded.comparison.id != loaded.comparison.id:
            self._chosen_explanation = None  # another pair: its own maps
            self.earlier = {}
        self.loaded = loaded
        self._hover_at = None
        self._show_readout()
        for side in (0, 1):
            face = loaded.faces[side]
            # the face's label is in the picker above the view: no title in it
            self.viewers[side].set_image(loaded.images[side])
            self.viewers[side].set_face(face.bbox, face.landmarks5)
            self.chips[side].set_chip(loaded.pair.sides[side].chip)
            self.chips[side].set_caption(f"{face.label}: aligned chip")
        self._show_derived_note(loaded)
        self.sync.set_anchors(loaded.faces[0].bbox, loaded.faces[1].bbox)
        self.zoom_to_faces()
        self.score.setText(self._score_text(loaded))
        self.refresh_annotations()
        self.refresh_candidates()
        self._fill_method_combo()  # the new pair may be masked
        self.pair_loaded.emit(loaded)

    def _show_derived_note(self, loaded: LoadedPair) -> None:
        """Under the pair: which of its faces are on a processed exhibit."""
        self.derived_note.show_text(
            processed_pair_text(self.case, [face.label for face in loaded.faces])
        )

    def fit_views(self) -> None:
        """Each view shows its whole image (with the views synchronised the
        probe used to follow the gallery's fit instead of showing its own)."""
        with self.sync.paused():
            for viewer in self.viewers:
                viewer.fit()

    def zoom_to_faces(self, *, margin: float = 1.6) -> None:
        """Show each face with ``margin`` times its box around it (both views alike).

        ``margin`` is keyword-only: a menu action passes its ``checked`` flag
        (False) as the first argument, which made the margin 0, a zero-sized range
        pyqtgraph only centres on: "Zoom to the faces" did nothing after Fit or
        zoom-out (issue 18)."""
        if self.loaded is None:
            return
        for viewer, face in zip(self.viewers, self.loaded.faces, strict=True):
            left, top, right, bottom = face.bbox
            size = margin * max(right - left, bottom - top)
            centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
            viewer.view_box.setRange(
                QRectF(centre_x - size / 2, centre_y - size / 2, size, size), padding=0
            )

    def zoom_views(self, step: int) -> None:
        """Zoom in (``step`` > 0) or out by one step.  With the views synchronised
        only the probe's is zoomed and the gallery's follows; zooming both zoomed
        each of them twice."""
        for viewer in self.viewers[:1] if self.sync.enabled else self.viewers:
            viewer.zoom_in() if step > 0 else viewer.zoom_out()

    # ---- explanations ----------------------------------------------------------------
    def set_explanations(self, results: dict[int, ExplanationResult]) -> None:
        """Results stored for the current pair, by explanation id.

        The map shown stays shown when results are added (jobs finish while the
        examiner looks at another map, issue 18); with none shown yet, the newest.
        """
        self.results = dict(results)
        self._fill_method_combo()

    def set_earlier_results(self, earlier: dict[int, workflow.EarlierResult]) -> None:
        """Explanations of earlier records of the shown pair's faces
        (``workflow.load_earlier_results``): reachable, never taken for current."""
        self.earlier = dict(earlier)
        self._fill_method_combo()

    def _shown_results(
        self,
    ) -> tuple[dict[int, ExplanationResult], dict[int, workflow.EarlierResult]]:
        """The results that may be shown: none for a masked pair."""
        if self.hidden_text():
            return {}, {}
        examination = self.examination()
        if examination is None:
            return self.results, self.earlier
        # an earlier face record's maps: only where that record was unmasked
        earlier = {
            key: item
            for key, item in self.earlier.items()
            if not examination.masked_comparison(item.earlier.comparison)
        }
        return self.results, earlier

    def _fill_method_combo(self) -> None:
        current = self.method_combo.currentData()
        results, earlier_results = self._shown_results()
        known = (*results, *earlier_results)
        if current not in known:
            current = None
        if self._chosen_explanation not in known:
            self._chosen_explanation = None
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        for explanation_id, result in results.items():
            self.method_combo.addItem(
                f"{result.method_name} (#{explanation_id})", explanation_id
            )
        newest = self.method_combo.count() - 1
        if earlier_results and results:
            self.method_combo.insertSeparator(self.method_combo.count())
        for explanation_id, earlier in earlier_results.items():
            self.method_combo.addItem(
                f"{earlier.result.method_name} (#{explanation_id}) · earlier face",
                explanation_id,
            )
        index = self.method_combo.findData(current)
        # with nothing shown yet, the newest *current* result (never an earlier
        # face's map by default)
        self.method_combo.setCurrentIndex(index if index >= 0 else newest)
        self.method_combo.blockSignals(False)
        unread = [i for i in known if i not in self.checks]
        if self.case is not None and unread:
            self._check_reader.start(
                workflow.stored_faithfulness_checks, self.case, unread
            )
        self.update_overlays()

    def show_explanation(self, explanation_id: int) -> None:
        """A finished job's result: shown unless the examiner has chosen a map of
        this pair by hand (that choice is kept until the pair changes)."""
        if self._chosen_explanation is None:
            self._show_explanation(explanation_id)

    def select_explanation(self, explanation_id: int) -> None:
        """Show this explanation because the examiner asked for it (a tile of All
        methods): kept shown as a choice made in the Map box is."""
        if self._show_explanation(explanation_id):
            self._chosen_explanation = explanation_id

    def _show_explanation(self, explanation_id: int) -> bool:
        index = self.method_combo.findData(explanation_id)
        if index >= 0:
            self.method_combo.setCurrentIndex(index)
        return index >= 0

    def _on_method_chosen(self, _index: int) -> None:
        self._chosen_explanation = self.method_combo.currentData()

    def current_result(self) -> ExplanationResult | None:
        shown = self.method_combo.currentData()
        results, earlier = self._shown_results()
        if shown in earlier:
            return earlier[shown].result
        return results.get(shown)

    def shown_earlier(self) -> workflow.EarlierResult | None:
        """The earlier face's explanation shown, if the one shown is one."""
        return self._shown_results()[1].get(self.method_combo.currentData())

    def map_units(self, result: ExplanationResult | None = None) -> str:
        """What the shown map's numbers are (the method's ``map_units``)."""
        result = self.current_result() if result is None else result
        if result is None:
            return ""
        info = self.method_info(result)
        return (info.map_units if info is not None else "") or UNITS_NOT_STATED

    @staticmethod
    def method_info(result: ExplanationResult | None) -> ExplainerInfo | None:
        """The registered method of ``result`` (None: not registered here)."""
        if result is None:
            return None
        return find_info(result.method_id)

    def draws_signed(self, result: ExplanationResult | None = None) -> bool:
        """The shown map is drawn on the diverging scale: a combined map of a
        method whose maps are for and against (not a magnitude-only one)."""
        result = self.current_result() if result is None else result
        kind = self.kind_combo.currentText()
        info = self.method_info(result)
        return info.draws_signed(kind) if info is not None else kind == "combined"

    def drawn_colour_map(self) -> str:
        """The colour map the shown kind is drawn with."""
        if self.draws_signed():
            return SIGNED_COLOUR_MAP
        return self._unsigned_colour_map

    def _remember_colour_map(self, name: str) -> None:
        if name in COLOUR_MAPS:
            self._unsigned_colour_map = name
            self.update_overlays()

    def _show_colour_box(self, signed: bool) -> None:
        """The Colours box names the map drawn: the diverging one for signed maps
        (and cannot be changed there), the examiner's choice otherwise."""
        combo = self.colour_combo
        combo.blockSignals(True)
        diverging = combo.findText(SIGNED_COLOUR_MAP_LABEL)
        if signed:
            if diverging < 0:
                combo.addItem(SIGNED_COLOUR_MAP_LABEL)
            combo.setCurrentText(SIGNED_COLOUR_MAP_LABEL)
            combo.setToolTip(
                "Combined maps are signed: drawn with the diverging blue-white-red "
                "map (red raises the score, blue lowers it, white: no effect)"
            )
        else:
            if diverging >= 0:
                combo.removeItem(diverging)
            combo.setCurrentText(self._unsigned_colour_map)
            combo.setToolTip("Colour map of similarity and dissimilarity maps")
        combo.setEnabled(not signed)
        combo.blockSignals(False)

    def _side_maps(
        self, result: ExplanationResult | None, kind: str
    ) -> list[tuple[np.ndarray, tuple[int, int], np.ndarray] | None]:
        """Per side (evidence values, origin, chip values) as drawn, or None where
        the method has no map of ``kind``."""
        shown: list[tuple[np.ndarray, tuple[int, int], np.ndarray] | None] = []
        if kind == UNCERTAINTY and self.shown_earlier() is not None:
            # stored on the earlier record's chip: the current alignment would put
            # it on the wrong place of the evidence
            return [None, None]
        for side in (0, 1):
            maps = result.images[side] if result is not None else None
            if maps is None:
                shown.append(None)
            elif kind == UNCERTAINTY:
                uncertainty = maps.chip.uncertainty
                if uncertainty is None or self.loaded is None:
                    shown.append(None)
                    continue
                view = self.loaded.pair.sides[side]
                warped = warp_to_evidence(uncertainty, view.transform, view.image_shape)
                shown.append((warped.values, warped.origin, uncertainty))
            elif kind not in maps.evidence:
                shown.append(None)
            else:
                evidence = maps.evidence[kind]
                values, chip_map = evidence.values, maps.chip_maps()[kind]
                if self.smooth.isChecked():
                    values = smooth_covered(values, display_sigma(values))
                    chip_map = smooth_covered(chip_map, display_sigma(chip_map))
                shown.append((values, evidence.origin, chip_map))
        return shown

    def _no_map_message(self, result: ExplanationResult | None, kind: str) -> str:
        hidden = self.hidden_text()
        if hidden:
            return hidden
        if result is None:
            return ""
        if kind == UNCERTAINTY and self.shown_earlier() is not None:
            return (
                "The uncertainty of an earlier face's map is kept on that face's "
                "chip and is not drawn here. Choose similarity or combined."
            )
        if kind == UNCERTAINTY:
            return (
                f"{result.method_name} is not a sampled method: it has no "
                "uncertainty map. Choose similarity or combined."
            )
        return (
            f"{result.method_name} gives no {kind} map. Choose another map kind "
            "(similarity or combined) or another method."
        )

    def update_overlays(self) -> None:
        result = self.current_result()
        self.show_verdicts()
        self._show_links(result)
        self._show_components(result)
        self.tabs.setTabEnabled(
            self.details_tab,
            not (self.links_view.isHidden() and self.components_view.isHidden()),
        )
        kind = self.kind_combo.currentText()
        signed = self.draws_signed(result)
        self._show_colour_box(signed)
        self.stability_label.setText(stability_text(result))
        colour_map = self.drawn_colour_map()
        options: dict[str, Any] = {
            "signed": signed,
            "colour_map": colour_map,
            "opacity": self.opacity.value() / 100,
            "top_percent": float(self.top_percent.value()),
        }
        visible = self.show_overlay.isChecked()
        earlier = self.shown_earlier()
        self.earlier_note.setText("" if earlier is None else earlier.note)
        self.earlier_note.setStyleSheet(problem_style(self.palette()))
        self.earlier_note.setVisible(earlier is not None)
        writable = self.case is None or not self.case.read_only
        hidden = self.hidden_text()
        # a check would be made on the current faces, not the earlier ones; on a
        # masked pair it would show the model's decision
        self.check_faithfulness.setEnabled(writable and earlier is None and not hidden)
        self.check_faithfulness.setToolTip(
            hidden
            if hidden
            else READ_ONLY_TIP
            if not writable
            else CHECK_TIP
            if earlier is None
            else "A check is made on the faces shown now, not on an earlier face."
        )
        shown = self._side_maps(result, kind)
        drawn = [entry for entry in shown if entry is not None]
        # one scale for both faces: the larger robust peak of the two (as in layer
        # by layer), so the same colour is the same value on probe and gallery
        peak = shared_peak([values for values, _, _ in drawn])
        self.shown_peak = peak
        # one "show top x %" cut-off for both faces, as one scale: a value is shown
        # on both or on neither
        options["floor"] = shared_floor(
            [values for values, _, _ in drawn], options["top_percent"]
        )
        for side, viewer in enumerate(self.viewers):
            viewer.set_overlay_visible(visible)
            entry = shown[side]
            if entry is None:
                viewer.set_overlay(None, signed=False)
                self.chips[side].set_overlay(None, signed=False)
                viewer.set_message(self._no_map_message(result, kind))
                continue
            values, origin, chip_map = entry
            viewer.set_message("")
            viewer.set_overlay(values, origin, **options, peak=peak)
            # an earlier face's chip map belongs to another alignment: the chip
            # shown now is the current face's, so it is not drawn over it
            self.chips[side].set_overlay(
                chip_map if visible and earlier is None else None, **options, peak=peak
            )
        self._show_colour_bar(result, kind, peak, signed, visible)
        self._show_readout()

    def _show_colour_bar(
        self,
        result: ExplanationResult | None,
        kind: str,
        peak: float | None,
        signed: bool,
        visible: bool,
    ) -> None:
        if peak is None or not visible:
            self.colour_bar.hide()
            return
        low = -peak if signed else 0.0
        self.colour_bar.set_scale(colour_lut(self.drawn_colour_map()), low, peak)
        info = self.method_info(result)
        warm, cold = info.legend(kind) if info is not None else map_legend(kind)
        units = self.map_units(result)
        if kind == UNCERTAINTY:
            units = f"standard error of the map, in its units: {units}"
        self.colour_bar.set_meaning(units, warm, cold)
        self.colour_bar.show()

    # ---- per-pair faithfulness of the shown map --------------------------------
    def show_verdicts(self) -> None:
        """Each side's curves and verdict for the method and map kind shown."""
        explanation_id = self.method_combo.currentData()
        result = self.current_result()
        kind = self.kind_combo.currentText()
        hidden = self.hidden_text()
        for side, plot in enumerate(self.faithfulness):
            if hidden:
                plot.clear(hidden)
            elif result is None:
                plot.clear("No map shown.")
            elif kind == UNCERTAINTY:
                plot.clear(UNCERTAINTY_NOTE)
            elif kind not in result.images[side].evidence:
                plot.clear(f"This method gives no {kind} map.")
            elif explanation_id not in self.checks:
                plot.clear("Reading the stored faithfulness check…")
            else:
                check = self.checks[explanation_id]
                verdict = None if check is None else check.get(plot.side, kind)
                if verdict is None:
                    plot.clear(NOT_CHECKED_YET)
                else:
                    plot.set_result(verdict)

    def _on_checks_read(self, checks: dict[int, Any]) -> None:
        for explanation_id, check in checks.items():
            self.checks.setdefault(explanation_id, check)  # a new check stays
        self.show_verdicts()
        self.checks_changed.emit(dict(self.checks))

    def start_check(self) -> None:
        """Check the shown explanation's maps in the background (kept in the case)."""
        result = self.current_result()
        if (
            result is None
            or self.loaded is None
            or self.model is None
            or self.case is None
        ):
            for plot in self.faithfulness:
                plot.clear("Compute an explanation first.")
            return
        if self.case.read_only or self.hidden_text():
            return  # the button is disabled: stored in the case, or masked
        self._checker.start(
            workflow.check_faithfulness,
            self.case,
            self.loaded.probe_label,
            self.loaded.gallery_label,
            result.method_id,
            self.model,
            params=dict(result.params),
            seed=result.seed,
            settings=self.faithfulness_settings,
            reference_count=self.reference_count,
        )

    def _on_check_progress(self, done: int, total: int, message: str) -> None:
        self.check_faithfulness.setText(
            f"{(message or 'Checking').capitalize()}… {100 * done // max(total, 1)} %"
        )

    def _on_check_finished(self) -> None:
        self.check_faithfulness.setText("Check faithfulness")
        self.cancel_check.setEnabled(False)

    def _on_checked(self, checked: Any) -> None:
        """``workflow.CaseFaithfulness``: keep it under the explanation it checked
        (a new one when the shown result was made by an older version)."""
        stored = checked.explanation.stored
        self.checks[stored.id] = checked.result
        if (
            self.loaded is not None
            and stored.comparison_id == self.loaded.comparison.id
            and stored.id not in self.results
        ):
            results = dict(self.results)
            results[stored.id] = checked.explanation.result
            self.set_explanations(results)
            self.show_explanation(stored.id)
        self.show_verdicts()
        self.checks_changed.emit(dict(self.checks))

    def _show_components(self, result: ExplanationResult | None) -> None:
        table = None if result is None else result.details.get("components")
        if not table:
            self.components_view.clear()
            self.components_view.hide()
            return
        self.components_view.setPlainText("\n".join(component_table_lines(table)))
        self.components_view.show()

    def _show_links(self, result: ExplanationResult | None) -> None:
        links = [] if result is None else result.details.get("links", [])
        if self.loaded is None or not links:
            self.links_view.clear()
            self.links_view.hide()
            return
        rgb = np.ascontiguousarray(links_figure(self.loaded.pair, links))
        height, width = rgb.shape[:2]
        image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        pixmap = QPixmap.fromImage(image.copy())
        self.links_view.setPixmap(
            pixmap.scaledToWidth(
                min(width, 320), Qt.TransformationMode.SmoothTransformation
            )
        )
        self.links_view.show()

    def set_colour_map(self, name: str) -> None:
        """The examiner's colour map for unsigned maps (settings)."""
        if name in COLOUR_MAPS:
            self._unsigned_colour_map = name
        self.update_overlays()

    def toggle_overlay(self) -> None:
        self.show_overlay.toggle()

    # ---- hover: the value under the cursor, and at the same face point opposite -----
    def raw_value(self, side: int, x: float, y: float) -> float | None:
        """The stored (unsmoothed) map value at evidence pixel (x, y) of one side."""
        result = self.current_result()
        kind = self.kind_combo.currentText()
        if result is None:
            return None
        if kind == UNCERTAINTY:  # the stored standard error, on the evidence
            entry = self._side_maps(result, kind)[side]
            if entry is None:
                return None
            values, origin = entry[0], entry[1]
        elif kind in result.images[side].evidence:
            evidence = result.images[side].evidence[kind]
            values, origin = evidence.values, evidence.origin
        else:
            return None
        column = int(np.floor(x)) - origin[0]
        row = int(np.floor(y)) - origin[1]
        height, width = values.shape
        if not (0 <= row < height and 0 <= column < width):
            return None
        value = float(values[row, column])
        return value if np.isfinite(value) else None

    def _on_hover(self, side: int, x: float, y: float, _shown: Any) -> None:
        self._hover_at = (side, x, y)
        self._show_readout()

    def _show_readout(self) -> None:
        """The one read-out: the stored value under the cursor and at the same face
        point opposite, with units; current after every map, kind, pair or case
        change (cleared when there is nothing to read)."""
        if self.loaded is None or self._hover_at is None:
            self.hover.setText(" ")
            return
        side, x, y = self._hover_at
        here = self.loaded.pair.sides[side].transform
        there = self.loaded.pair.sides[1 - side].transform
        ox, oy = there.to_image(here.to_chip(np.array([[x, y]])))[0]
        names = ("probe", "gallery")

        def text(v: float | None) -> str:
            return "no map" if v is None else f"{v:.4g}"

        units = self.map_units()
        if self.shown_earlier() is not None:
            # the same face point would need the earlier record's alignment: the
            # value under the cursor only
            self.hover.setText(
                f"{names[side]} ({x:.0f}, {y:.0f}): {text(self.raw_value(side, x, y))}"
                + (f"   ({units})" if units else "")
            )
            return
        self.hover.setText(
            f"{names[side]} ({x:.0f}, {y:.0f}): {text(self.raw_value(side, x, y))}   "
            f"|   same face point on the {names[1 - side]} ({ox:.0f}, {oy:.0f}): "
            f"{text(self.raw_value(1 - side, float(ox), float(oy)))}"
            + (f"   ({units})" if units else "")
        )

    # ---- annotations and landmarks ---------------------------------------------------
    def set_tool(self, tool: str | None) -> None:
        self.tool_actions[tool].setChecked(True)
        for viewer in self.viewers:
            viewer.set_tool(tool)

    def refresh_annotations(self) -> None:
        if self.case is None or self.loaded is None:
            return
        examination = self.examination()
        for side, viewer in enumerate(self.viewers):
            mark = self.loaded.faces[side].mark
            annotations = self.case.annotations(exhibit=mark)
            if examination is not None:  # a blind session: the verifier's own
                annotations = examination.visible_annotations(annotations)
            viewer.set_annotations(
                [
                    {
                        "id": a.id,
                        "shape": a.shape,
                        "points": [list(p) for p in a.points],
                        "label": a.label or (a.component or ""),
                    }
                    for a in annotations
                ]
            )

    def _on_drawn(self, side: int, shape: str, points: list) -> None:
        if self.loaded is None:
            return
        details = {"label": "", "note": "", "component": None}
        if self.ask_annotation_details:
            dialog = AnnotationDialog(shape, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            details = dialog.values()
        self.annotation_requested.emit(
            {
                "exhibit": self.loaded.faces[side].mark,
                "shape": shape,
                "points": points,
                **details,
            }
        )

    def _on_landmarks(self, side: int, points: Any) -> None:
        if self.loaded is not None:
            self.landmarks_corrected.emit(self.loaded.faces[side].label, points)

    def shutdown(self) -> None:
        self._loader.shutdown()
        self._check_reader.shutdown()
        self._checker.shutdown()
