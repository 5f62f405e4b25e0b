"""The Processing tab: an examiner's chain of non-generative operations on one image
exhibit, previewed live, and stored as a derived exhibit (Q1 -> Q1.1) on request
(issue 21, the GUI side).

A thin layer over ``core.processing`` (the registry, ``make_step``) and
``core.case.workflow`` (``process_exhibit`` for the preview, ``derive_exhibit``
through the case controller for the stored copy).  Every parameter form is built
from the operation's typed ``Param``s (``xfr_desktop.widgets.param_form``); values
are checked by ``make_step`` in core, and a bad value or a step that cannot run is
shown as one red line in the panel, never as a dialog or a traceback.

The preview runs in a TaskRunner worker.  Edits come faster than a chain runs, so
requests are coalesced: one preview is computed at a time and, when it is done,
only the latest request is computed next; a result that a newer request has made
stale is dropped, so the "after" image always belongs to the chain listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core import processing, wording
from core.case import workflow
from core.case.store import Case
from core.errors import BadInputError
from core.imageio import load_image
from core.processing import OperationInfo, Step
from xfr_desktop.case_controller import CaseController
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.theme import problem_style
from xfr_desktop.widgets.param_form import editor_for, on_change, value_of
from xfr_desktop.workers import TaskRunner

CATEGORY_TITLES = {
    "geometry": "Geometry",
    "tone": "Tone",
    "colour": "Colour",
    "noise": "Noise",
    "sharpness": "Sharpness",
    "restoration": "Restoration",
    "video": "Video",
}
OP_ROLE = Qt.ItemDataRole.UserRole
READ_ONLY_WHY = (
    "The case is open read-only: no processed exhibit can be added. Close it and "
    "open it normally to add one."
)
DERIVE_TIP = (
    "Store the source processed by this chain as a new exhibit (a lossless PNG, "
    "marked like Q1.1) with the chain, its parameters, the software and library "
    "versions and the pixels' hashes; its faces are found like any exhibit's. "
    "The source is not changed."
)
NO_SOURCE_TEXT = "Choose a source image exhibit above."
NO_STEP_TEXT = "Add a step on the left: the processed image shows here."


# ---- worker ------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    """The source's pixels and the chain's output (None: no step yet)."""

    request: int  # the request it answers (stale ones are dropped)
    mark: str
    before: np.ndarray
    after: np.ndarray | None
    steps: tuple[Step, ...]


def make_preview(
    case: Case,
    mark: str,
    steps: Sequence[Step],
    request: int,
    cancel: Callable[[], bool] | None = None,
) -> Preview:
    """Worker: exhibit ``mark``'s pixels as analysed, and ``steps`` applied to them
    (``workflow.process_exhibit``: nothing stored)."""
    before = load_image(case.evidence_path(case.exhibit(mark))).rgb
    if not steps:
        return Preview(request, mark, before, None, ())
    processed = workflow.process_exhibit(case, mark, list(steps), cancel=cancel)
    return Preview(request, mark, before, processed.rgb, tuple(steps))


def _image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # the numpy buffer may go away


def _fit(widget: QWidget, image: QImage, top: float = 0.0) -> QRectF:
    """Where ``image`` is drawn in ``widget`` (aspect kept, below ``top`` px)."""
    height = max(1.0, widget.height() - top)
    scale = min(widget.width() / image.width(), height / image.height())
    width, tall = image.width() * scale, image.height() * scale
    return QRectF((widget.width() - width) / 2, top + (height - tall) / 2, width, tall)


def _smooth(painter: QPainter, target: QRectF, image: QImage) -> None:
    """Smooth an image only where it is drawn smaller than it is: enlarged, its
    pixels show as blocks (nothing drawn between them that the file does not hold)."""
    painter.setRenderHint(
        QPainter.RenderHint.SmoothPixmapTransform, target.width() < image.width()
    )


def _paint_message(painter: QPainter, widget: QWidget, text: str) -> None:
    painter.setPen(QColor("#dddddd"))
    painter.drawText(
        widget.rect().adjusted(12, 12, -12, -12),
        Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
        text,
    )


# ---- views -------------------------------------------------------------------------
class ImagePane(QWidget):
    """One image, as large as the space allows, under a caption."""

    CAPTION = 20

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.image: QImage | None = None
        self.message = NO_SOURCE_TEXT
        self.setMinimumSize(160, 120)

    def sizeHint(self) -> QSize:
        return QSize(400, 300)

    def set_image(self, rgb: np.ndarray | None, caption: str | None = None) -> None:
        self.image = None if rgb is None else _image(rgb)
        if caption is not None:
            self.caption = caption
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        painter.setPen(QColor("#ffffff"))
        painter.drawText(
            QRectF(4, 0, self.width() - 8, self.CAPTION),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self.caption,
        )
        if self.image is None:
            _paint_message(painter, self, self.message)
        else:
            target = _fit(self, self.image, self.CAPTION)
            _smooth(painter, target, self.image)
            painter.drawImage(target, self.image)
        painter.end()


class WipeView(QWidget):
    """Before and after in one place: left of the divider the source, right of it
    the processed image.  Drag the divider (or use the slider under it).  When the
    two differ in size (a crop, a resize, a turn) there is nothing to wipe between:
    the processed image is shown alone and ``same_size`` is False."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5  # the divider, as a share of the image's width
        self.message = NO_SOURCE_TEXT
        self.on_split: Callable[[float], None] | None = None
        self.setMinimumSize(240, 160)
        self.setCursor(Qt.CursorShape.SplitHCursor)

    def sizeHint(self) -> QSize:
        return QSize(640, 420)

    @property
    def same_size(self) -> bool:
        return (
            self.before is not None
            and self.after is not None
            and self.before.size() == self.after.size()
        )

    def set_images(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        self.before = None if before is None else _image(before)
        self.after = None if after is None else _image(after)
        self.update()

    def set_split(self, share: float) -> None:
        self.split = float(min(1.0, max(0.0, share)))
        self.update()

    def _target(self) -> QRectF:
        image = self.after if self.after is not None else self.before
        return QRectF() if image is None else _fit(self, image)

    def _drag(self, event: QMouseEvent) -> None:
        target = self._target()
        if target.width() > 0 and self.same_size:
            self.set_split((event.position().x() - target.left()) / target.width())
            if self.on_split is not None:
                self.on_split(self.split)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        shown = self.after if self.after is not None else self.before
        if shown is None:
            _paint_message(painter, self, self.message)
            painter.end()
            return
        target = _fit(self, shown)
        _smooth(painter, target, shown)
        if not self.same_size or self.before is None or self.after is None:
            painter.drawImage(target, shown)
            painter.end()
            return
        cut = self.split * self.before.width()  # in image pixels
        left = QRectF(0, 0, cut, self.before.height())
        right = QRectF(cut, 0, self.before.width() - cut, self.before.height())
        scale = target.width() / self.before.width()
        x = target.left() + cut * scale
        painter.drawImage(
            QRectF(target.left(), target.top(), cut * scale, target.height()),
            self.before,
            left,
        )
        painter.drawImage(
            QRectF(x, target.top(), target.right() - x, target.height()),
            self.after,
            right,
        )
        painter.setPen(QPen(QColor("#ffd400"), 2))
        painter.drawLine(int(x), int(target.top()), int(x), int(target.bottom()))
        painter.setPen(QColor("#ffffff"))
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(
            QRectF(target.left() + 4, target.top() + 2, 120, 18),
            Qt.AlignmentFlag.AlignLeft,
            "before",
        )
        painter.drawText(
            QRectF(target.right() - 124, target.top() + 2, 120, 18),
            Qt.AlignmentFlag.AlignRight,
            "after",
        )
        painter.end()


# ---- the panel ---------------------------------------------------------------------
@dataclass
class StepEntry:
    """One step of the chain being built: its operation and the values entered."""

    op_id: str
    values: dict[str, Any]

    @property
    def info(self) -> OperationInfo:
        return processing.get(self.op_id).info


class ProcessingPanel(QWidget):
    """Source, steps and their parameters on the left; before | after on the right."""

    def __init__(
        self,
        errors: ErrorReporter,
        controller: CaseController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.errors = errors
        self.controller = controller
        self.entries: list[StepEntry] = []
        self.editors: dict[str, QWidget] = {}  # the selected step's, by parameter
        self.shown: Preview | None = None  # the preview on screen
        self.problem = ""  # the red line's text ("" when none)
        self._case: Case | None = None  # the case the chain was built in
        self._request = 0  # the latest preview asked for
        self._wanted: tuple[str, tuple[Step, ...], int] | None = None
        self._running: tuple[str | None, int] = (None, 0)  # the preview computing
        self._previewer = TaskRunner(self)
        self._previewer.result.connect(self._on_preview)
        self._previewer.error.connect(self._on_preview_error)
        self._previewer.finished.connect(self._preview_next)
        self._build()
        controller.deriver.started.connect(self._update_buttons)
        controller.deriver.finished.connect(self._update_buttons)
        controller.derived.connect(self._on_derived)
        self.refresh_case()

    # ---- layout ------------------------------------------------------------------
    def _build(self) -> None:
        self.source_combo = QComboBox()
        self.source_combo.setToolTip(
            "The image exhibit to process: an original or a processed one (the "
            "new exhibit then descends from it)."
        )
        self.source_combo.currentIndexChanged.connect(lambda _i: self._on_source())
        self.lineage = QLabel()
        self.lineage.setWordWrap(True)

        self.op_combo = QComboBox()
        self._fill_operations()
        self.add_button = QPushButton("Add step")
        self.add_button.setToolTip("Add the operation chosen as the chain's last step")
        self.add_button.clicked.connect(lambda: self.add_step(self.chosen_operation()))
        adding = QHBoxLayout()
        adding.addWidget(self.op_combo, 1)
        adding.addWidget(self.add_button)

        self.steps_list = QListWidget()
        self.steps_list.setToolTip("The chain, applied top to bottom")
        self.steps_list.currentRowChanged.connect(lambda _row: self._show_form())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_step)
        self.up_button = QPushButton("Up")
        self.up_button.setToolTip("Apply the selected step one place earlier")
        self.up_button.clicked.connect(lambda: self.move_step(-1))
        self.down_button = QPushButton("Down")
        self.down_button.setToolTip("Apply the selected step one place later")
        self.down_button.clicked.connect(lambda: self.move_step(1))
        moving = QHBoxLayout()
        for button in (self.remove_button, self.up_button, self.down_button):
            moving.addWidget(button)

        self.params_box = QGroupBox("Parameters")
        box = QVBoxLayout(self.params_box)
        box.setContentsMargins(6, 4, 6, 4)
        self.params_of = QLabel("Select a step to edit its parameters.")
        self.params_of.setWordWrap(True)
        box.addWidget(self.params_of)
        self.params_form = QFormLayout()
        self.params_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        box.addLayout(self.params_form)

        self.chain_label = QLabel()
        self.chain_label.setWordWrap(True)
        self.chain_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.error_line = QLabel()
        self.error_line.setWordWrap(True)
        self.error_line.hide()
        self.statement = QLabel(wording.PROCESSING_PANEL_STATEMENT)
        self.statement.setWordWrap(True)
        self.statement.setToolTip(wording.NON_GENERATIVE_STATEMENT)
        self.derive_button = QPushButton("Add as derived exhibit")
        self.derive_button.clicked.connect(self.derive)
        self.status = QLabel()
        self.status.setWordWrap(True)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Source"))
        source_row.addWidget(self.source_combo, 1)
        column.addLayout(source_row)
        column.addWidget(self.lineage)
        column.addLayout(adding)
        column.addWidget(self.steps_list, 1)
        column.addLayout(moving)
        column.addWidget(self.params_box)
        column.addWidget(self.error_line)
        column.addWidget(self.derive_button)
        column.addWidget(self.status)
        left.setMinimumWidth(280)

        self.side_button = QRadioButton("Side by side")
        self.wipe_button = QRadioButton("Wipe")
        self.side_button.setToolTip(
            "The source and the processed image next to each other"
        )
        self.wipe_button.setToolTip(
            "One image: left of the divider the source, right of it the processed "
            "image; drag the divider"
        )
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.side_button, 0)
        self.mode_group.addButton(self.wipe_button, 1)
        self.side_button.setChecked(True)
        self.mode_group.idToggled.connect(self._on_mode)
        self.working = QLabel()
        modes = QHBoxLayout()
        modes.addWidget(self.side_button)
        modes.addWidget(self.wipe_button)
        modes.addStretch(1)
        modes.addWidget(self.working)

        self.before_view = ImagePane("before")
        self.after_view = ImagePane("after")
        self.after_view.message = NO_STEP_TEXT
        side = QWidget()
        pair = QHBoxLayout(side)
        pair.setContentsMargins(0, 0, 0, 0)
        pair.setSpacing(4)
        pair.addWidget(self.before_view, 1)
        pair.addWidget(self.after_view, 1)
        self.wipe = WipeView()
        self.wipe_slider = QSlider(Qt.Orientation.Horizontal)
        self.wipe_slider.setRange(0, 1000)
        self.wipe_slider.setValue(500)
        self.wipe_slider.setToolTip(
            "Where the divider is: left the source, right the result"
        )
        self.wipe_slider.valueChanged.connect(lambda v: self.wipe.set_split(v / 1000))
        self.wipe.on_split = lambda share: self._set_slider(share)
        self.wipe_note = QLabel()
        self.wipe_note.setWordWrap(True)
        self.wipe_note.hide()
        wipe_page = QWidget()
        wipe_column = QVBoxLayout(wipe_page)
        wipe_column.setContentsMargins(0, 0, 0, 0)
        wipe_column.addWidget(self.wipe, 1)
        wipe_column.addWidget(self.wipe_slider)
        wipe_column.addWidget(self.wipe_note)
        self.views = QStackedWidget()
        self.views.addWidget(side)
        self.views.addWidget(wipe_page)

        right = QWidget()
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.addLayout(modes)
        right_column.addWidget(self.views, 1)
        right_column.addWidget(self.chain_label)
        right_column.addWidget(self.statement)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([320, 760])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def _fill_operations(self) -> None:
        """The registry's operations by category: a heading (not selectable), then
        each operation by its display name, its description as the tooltip."""
        model = QStandardItemModel(self.op_combo)
        category = None
        for info in processing.infos():
            if info.category != category:
                category = info.category
                heading = QStandardItem(CATEGORY_TITLES.get(category, category))
                heading.setFlags(Qt.ItemFlag.NoItemFlags)
                font = QFont()
                font.setBold(True)
                heading.setFont(font)
                model.appendRow(heading)
            item = QStandardItem(f"   {info.display_name}")
            item.setData(info.op_id, OP_ROLE)
            item.setToolTip(
                f"{info.description}\n({info.implementation}, v{info.version})"
            )
            model.appendRow(item)
        self.op_combo.setModel(model)
        for row in range(model.rowCount()):
            if model.item(row).data(OP_ROLE):
                self.op_combo.setCurrentIndex(row)
                break
        self.op_combo.setToolTip(
            "The operation to add (hover over one for what it does)"
        )

    def _set_slider(self, share: float) -> None:
        self.wipe_slider.blockSignals(True)
        self.wipe_slider.setValue(round(share * 1000))
        self.wipe_slider.blockSignals(False)

    # ---- the source --------------------------------------------------------------
    def refresh_case(self) -> None:
        """The case was opened, closed or changed: list its image exhibits, keeping
        the source chosen while it is still there."""
        case = self.controller.case
        if case is not self._case:  # another case (or none): its own chain
            self._case = case
            self._wanted = None
            self._previewer.cancel()  # its result is of the case gone
            self.entries = []
            self._fill_steps(-1)
        current = self.source_mark()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        if case is not None:
            derived = {d.mark: d for d in case.derivations.derivations()}
            for exhibit in case.exhibits():
                link = derived.get(exhibit.mark)
                words = (
                    exhibit.original_name
                    if link is None
                    else f"processed {link.source}: {', '.join(link.operations())}"
                )
                self.source_combo.addItem(f"{exhibit.mark}  {words}", exhibit.mark)
        index = self.source_combo.findData(current) if current else -1
        self.source_combo.setCurrentIndex(
            max(index, 0) if self.source_combo.count() else -1
        )
        self.source_combo.blockSignals(False)
        if self.source_mark() != (self.shown.mark if self.shown else None):
            self._on_source()
        self._update_buttons()

    def source_mark(self) -> str | None:
        mark = self.source_combo.currentData()
        return str(mark) if mark else None

    def set_source(self, mark: str) -> bool:
        """Process exhibit ``mark`` (an exhibit mark or a face label); False when
        it is not an image exhibit of the case."""
        index = self.source_combo.findData(mark.partition("#")[0])
        if index < 0:
            return False
        if index != self.source_combo.currentIndex():
            self.source_combo.setCurrentIndex(index)
        return True

    def _on_source(self) -> None:
        case, mark = self.controller.case, self.source_mark()
        self.shown = None
        self.status.setText("")
        self.before_view.set_image(None)
        self.after_view.set_image(None)
        self.wipe.set_images(None, None)
        lineage = [] if case is None or mark is None else case.derivations.lineage(mark)
        if lineage:
            marks = [lineage[0].source, *(link.mark for link in lineage)]
            self.lineage.setText(
                f"{mark} is processed: {wording.derivation_lineage_text(marks)}"
            )
            self.lineage.setToolTip("\n".join(lineage[-1].step_lines()))
        else:
            self.lineage.setText("")
            self.lineage.setToolTip("")
        self.lineage.setVisible(bool(lineage))
        if case is None or mark is None:
            self.before_view.message = NO_SOURCE_TEXT
            self.wipe.message = NO_SOURCE_TEXT
            self.before_view.update()
        self._chain_changed()

    # ---- the chain ---------------------------------------------------------------
    def chosen_operation(self) -> str | None:
        op_id = self.op_combo.currentData(OP_ROLE)
        return str(op_id) if op_id else None

    def choose_operation(self, op_id: str) -> None:
        """Pick ``op_id`` in the operation list (tests, screenshots)."""
        index = self.op_combo.findData(op_id, OP_ROLE)
        if index < 0:
            raise BadInputError(f"no operation {op_id!r} in the list")
        self.op_combo.setCurrentIndex(index)

    def add_step(self, op_id: str | None) -> None:
        """Append ``op_id`` with its defaults (a crop starts as the whole image)."""
        if op_id is None:
            return
        info = processing.get(op_id).info
        values: dict[str, Any] = {p.name: p.default for p in info.params}
        case, mark = self.controller.case, self.source_mark()
        if op_id == "crop" and case is not None and mark is not None:
            exhibit = case.exhibit(mark)
            values.update(w=exhibit.width, h=exhibit.height)
        self.entries.append(StepEntry(op_id, values))
        self._fill_steps(len(self.entries) - 1)

    def remove_step(self) -> None:
        row = self.steps_list.currentRow()
        if 0 <= row < len(self.entries):
            del self.entries[row]
            self._fill_steps(min(row, len(self.entries) - 1))

    def move_step(self, by: int) -> None:
        row = self.steps_list.currentRow()
        to = row + by
        if 0 <= row < len(self.entries) and 0 <= to < len(self.entries):
            self.entries[row], self.entries[to] = self.entries[to], self.entries[row]
            self._fill_steps(to)

    def _fill_steps(self, select: int) -> None:
        self.steps_list.blockSignals(True)
        self.steps_list.clear()
        for number, entry in enumerate(self.entries, 1):
            self.steps_list.addItem(f"{number}. {entry.info.display_name}")
            item = self.steps_list.item(number - 1)
            item.setToolTip(entry.info.description)
        self.steps_list.setCurrentRow(select)
        self.steps_list.blockSignals(False)
        self._show_form()
        self._chain_changed()

    def _show_form(self) -> None:
        """The selected step's parameters, one editor each (from its Params)."""
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors = {}
        row = self.steps_list.currentRow()
        if not 0 <= row < len(self.entries):
            self.params_of.setText("Select a step to edit its parameters.")
            self.params_of.setToolTip("")
            self._update_buttons()
            return
        entry = self.entries[row]
        info = entry.info
        self.params_of.setText(f"<b>{row + 1}. {info.display_name}</b>")
        self.params_of.setToolTip(
            f"{info.description}\n\nImplementation: {info.implementation}, "
            f"version {info.version}"
        )
        if not info.params:
            self.params_form.addRow(QLabel("no parameters"))
        for param in info.params:
            editor = editor_for(param, entry.values.get(param.name))
            on_change(editor, lambda name=param.name, e=editor: self._edited(name, e))
            self.editors[param.name] = editor
            label = QLabel(param.name)
            label.setToolTip(param.description)
            self.params_form.addRow(label, editor)
        self._update_buttons()

    def _edited(self, name: str, editor: QWidget) -> None:
        row = self.steps_list.currentRow()
        if 0 <= row < len(self.entries):
            self.entries[row].values[name] = value_of(editor)
            self._chain_changed()

    def steps(self) -> list[Step]:
        """The chain as checked steps; BadInputError naming the step on a bad
        value (``make_step`` checks each one against its Param)."""
        steps = []
        for number, entry in enumerate(self.entries, 1):
            try:
                steps.append(processing.make_step(entry.op_id, entry.values))
            except BadInputError as error:
                raise BadInputError(
                    f"step {number} ({entry.info.display_name}): {error.reason}"
                ) from None
        return steps

    def _chain_changed(self) -> None:
        """The chain or a value changed: list it as the report will, and ask for a
        preview of it (or say in one red line why it cannot run)."""
        try:
            steps = self.steps()
        except BadInputError as error:
            self._set_problem(error.reason)
            self._show_chain(None)
            self.after_view.set_image(None)
            self.after_view.message = "Correct the value in red to see the result."
            self.wipe.set_images(self.wipe_before(), None)
            self._update_buttons()
            return
        self._set_problem("")
        self._show_chain(steps)
        self._update_buttons()
        self.request_preview(steps)

    def _show_chain(self, steps: list[Step] | None) -> None:
        if steps is None:
            lines = [
                f"{n}. {entry.info.display_name}: (a value cannot be used)"
                for n, entry in enumerate(self.entries, 1)
            ]
        else:
            lines = [f"{n}. {step.describe()}" for n, step in enumerate(steps, 1)]
        self.chain_label.setText(
            "<b>Chain, as the report will list it:</b><br>"
            + ("<br>".join(_escape(line) for line in lines) if lines else "no step yet")
        )

    def _set_problem(self, text: str) -> None:
        self.problem = text
        # the theme's own red, read when shown (the theme may have changed since)
        self.error_line.setStyleSheet(
            problem_style(self.palette()) + " font-weight: bold;"
        )
        self.error_line.setText(text)
        self.error_line.setVisible(bool(text))

    # ---- the preview (coalesced) -------------------------------------------------
    def request_preview(self, steps: Sequence[Step]) -> None:
        """Preview ``steps`` on the source: computed now, or next if one runs (only
        the latest request is computed; the ones passed over never are)."""
        mark = self.source_mark()
        if self.controller.case is None or mark is None:
            return
        self._request += 1
        self._wanted = (mark, tuple(steps), self._request)
        self.working.setText("computing the preview…")
        if not self._previewer.is_busy():
            self._preview_next()

    def _preview_next(self) -> None:
        case = self.controller.case
        if self._wanted is None or case is None:
            if self._wanted is None:
                self.working.setText("")
            return
        (mark, steps, request), self._wanted = self._wanted, None
        self._running = (mark, request)  # whose error an error signal is
        self._previewer.start(make_preview, case, mark, steps, request)

    def preview_pending(self) -> bool:
        """A preview is being computed or waits its turn (tests)."""
        return self._previewer.is_busy() or self._wanted is not None

    def _on_preview(self, preview: Preview) -> None:
        if preview.request != self._request or preview.mark != self.source_mark():
            return  # stale: a newer chain or another source was asked for since
        self._set_problem("")  # an older request's error no longer holds
        self._update_buttons()
        self.shown = preview
        before = preview.before
        height, width = before.shape[:2]
        self.before_view.set_image(before, f"before: {preview.mark}, {width}×{height}")
        if preview.after is None:
            self.after_view.message = NO_STEP_TEXT
            self.after_view.set_image(None, "after")
            self.wipe.set_images(before, None)
            self.wipe_note.hide()
            return
        out_h, out_w = preview.after.shape[:2]
        self.after_view.set_image(
            preview.after,
            f"after: {len(preview.steps)} step(s), {out_w}×{out_h}",
        )
        self.wipe.set_images(before, preview.after)
        if self.wipe.same_size:
            self.wipe_note.hide()
            self.wipe_slider.setEnabled(True)
        else:
            self.wipe_note.setText(
                wording.processing_wipe_size_note(width, height, out_w, out_h)
            )
            self.wipe_note.show()
            self.wipe_slider.setEnabled(False)

    def _on_preview_error(self, error: BaseException, details: str) -> None:
        mark, request = self._running
        if request != self._request or mark != self.source_mark():
            return  # the error of a chain since changed: the newer one decides
        if isinstance(error, BadInputError):  # a step cannot run: one red line
            self._set_problem(error.reason)
            self.after_view.set_image(None)
            self.after_view.message = "The chain cannot run: see the line in red."
            self.wipe.set_images(self.wipe_before(), None)
            self._update_buttons()
            return
        self.errors.report(error, details, context="Could not preview the processing.")

    def wipe_before(self) -> np.ndarray | None:
        return None if self.shown is None else self.shown.before

    def _on_mode(self, mode: int, checked: bool) -> None:
        if checked:
            self.views.setCurrentIndex(mode)

    def set_wipe(self, on: bool) -> None:
        (self.wipe_button if on else self.side_button).setChecked(True)

    # ---- storing -----------------------------------------------------------------
    def derive(self) -> None:
        """Store the source processed by the chain as a derived exhibit (in the
        controller's worker; the exhibits list shows it when it is done)."""
        mark = self.source_mark()
        if mark is None or self.problem:
            return
        try:
            steps = self.steps()
        except BadInputError as error:
            self._set_problem(error.reason)
            return
        if not steps:
            return
        self.status.setText(f"Adding {mark} processed by {len(steps)} step(s)…")
        self.controller.derive_exhibit(mark, steps)

    def _on_derived(self, exhibit: Any) -> None:
        case = self.controller.case
        link = None if case is None else case.derivations.derivation(exhibit.mark)
        source = link.source if link is not None else "its source"
        self.status.setText(
            f"Added {exhibit.mark}, a processed copy of {source}: it is in the "
            f"exhibits list under {source}."
        )

    def _update_buttons(self) -> None:
        case = self.controller.case
        read_only = case is not None and case.read_only
        row = self.steps_list.currentRow()
        has_source = case is not None and self.source_mark() is not None
        self.add_button.setEnabled(has_source)
        self.op_combo.setEnabled(has_source)
        self.remove_button.setEnabled(0 <= row < len(self.entries))
        self.up_button.setEnabled(0 < row < len(self.entries))
        self.down_button.setEnabled(0 <= row < len(self.entries) - 1)
        busy = self.controller.deriver.is_busy()
        self.derive_button.setEnabled(
            has_source
            and not read_only
            and not busy
            and bool(self.entries)
            and not self.problem
        )
        self.derive_button.setToolTip(READ_ONLY_WHY if read_only else DERIVE_TIP)

    def shutdown(self) -> None:
        self._previewer.shutdown()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
