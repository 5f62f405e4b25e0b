"""Place or correct a face by hand: draw a box around it, or click its five points.

The detector misses faces (a profile, a small CCTV face) and finds faces that are
not (a mission patch); the examiner then marks the face.  "Draw a box" predicts the
five points inside the box with dlib's shape predictor (as for detected faces) in a
worker, without storing anything; "Click the five points" takes them one by one in
dlib's order, named as they are asked for.  The points can be dragged before OK.
OK hands the face to the window, which stores it through the case controller
(undoable); Cancel stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.records import CaseFace
from core.case.store import Case
from core.errors import BadInputError
from core.faces.detect import LANDMARK5_NAMES, Face, FaceDetector, face_from_landmarks
from xfr_desktop.errors import describe
from xfr_desktop.widgets.viewer import EvidenceViewer
from xfr_desktop.workers import TaskRunner

BOX, POINTS = "box", "points"
MIN_BOX = 8  # pixels: the smallest box core's place_face_in_box accepts
VIEWER_MIN = (600, 450)


class BoxPredictor(Protocol):
    """What predicts five points inside a box (``FaceDetector``; tests fake it)."""

    def face_in_box(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        with_68: bool = False,
    ) -> Face: ...


def _face_in_box(
    predictor: Callable[[], BoxPredictor],
    rgb: np.ndarray,
    box: tuple[float, float, float, float],
) -> Face:
    """Worker: the landmarks inside the examiner's box (nothing is stored)."""
    return predictor().face_in_box(rgb, box, with_68=True)


# What each change of a face is called in the question, and the question itself.
FACE_CHANGES = {
    "move": ("Moving the points of", "Move the points?"),
    "correct": ("Correcting", "Store the corrected face?"),
    "reject": ("Rejecting", "Reject it?"),
    "reset": ("Resetting", "Reset it to the detected face?"),
}


def replaced_results_question(case: Case, label: str, change: str) -> str | None:
    """The question asked before ``change`` (a ``FACE_CHANGES`` key) of face
    ``label`` leaves its explained comparisons behind; None when it has none."""
    try:
        explained = workflow.explained_comparisons(case, label)
        face = case.face(label)
    except BadInputError:
        return None
    if not explained:
        return None
    parts, total = [], 0
    for comparison in explained:
        other = (
            comparison.gallery_face_id
            if comparison.probe_face_id == face.id
            else comparison.probe_face_id
        )
        count = len(case.explanations(comparison.id))
        total += count
        name = case.face_by_id(other).label
        parts.append(f"{name}, which has {count} explanation{'s' * (count != 1)}")
    noun = "comparison" if len(parts) == 1 else "comparisons"
    kept = "It stays" if total == 1 else "They stay"
    doing, ask = FACE_CHANGES[change]
    return (
        f"{doing} {label} replaces its {noun} with {'; '.join(parts)}. {kept} in "
        f"the case, marked as belonging to the earlier face. {ask}"
    )


class FaceDialog(QDialog):
    """The evidence image of one exhibit, to place (or correct) the face ``label``."""

    image_loaded = Signal()
    face_changed = Signal()  # a face is ready (or was cleared)

    def __init__(
        self,
        case: Case,
        label: str,
        current: CaseFace | None = None,
        parent: QWidget | None = None,
        predictor: Callable[[], BoxPredictor] = FaceDetector.shared,
    ) -> None:
        super().__init__(parent)
        self.case, self.label, self.current = case, label, current
        self.mark = label.partition("#")[0]
        self._predictor = predictor
        self._rgb: np.ndarray | None = None
        self._points: list[tuple[float, float]] = []
        self._face: Face | None = None
        verb = "Correct" if current is not None else "Place"
        self.setWindowTitle(f"{verb} face {label}")

        self.box_mode = QRadioButton("Draw a box around the face")
        self.points_mode = QRadioButton("Click the five points")
        modes = QButtonGroup(self)
        modes.addButton(self.box_mode)
        modes.addButton(self.points_mode)
        self.box_mode.toggled.connect(lambda on: self._mode_toggled(on, BOX))
        self.points_mode.toggled.connect(lambda on: self._mode_toggled(on, POINTS))
        self.start_again = QPushButton("Start again")
        self.start_again.clicked.connect(self.clear)
        self.instructions = QLabel()
        self.instructions.setWordWrap(True)
        self.viewer = EvidenceViewer()
        self.viewer.setMinimumSize(*VIEWER_MIN)
        self.viewer.annotation_drawn.connect(self._on_drawn)
        self.viewer.landmarks_edited.connect(self._on_dragged)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.box_mode)
        top.addWidget(self.points_mode)
        top.addStretch(1)
        top.addWidget(self.start_again)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.instructions)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(980, 660)  # fits a 1280x720 screen, the image at >= 600x450

        self._predicting = TaskRunner(self)
        self._predicting.result.connect(self._on_predicted)
        self._predicting.error.connect(self._on_prediction_failed)
        self._loader = TaskRunner(self)
        self._loader.result.connect(self._on_image)
        self._loader.error.connect(
            lambda error, _details: self._say(
                f"Could not load the image of {self.mark}: {describe(error)[1]}"
            )
        )
        self.mode = POINTS if current is not None else BOX
        (self.points_mode if self.mode == POINTS else self.box_mode).setChecked(True)
        self._say(f"Loading the image of {self.mark}…")
        self._loader.start(workflow.load_evidence, case, self.mark)

    # ---- state -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """The image is shown (the dialog takes input)."""
        return self._rgb is not None

    @property
    def predicting(self) -> bool:
        return self._predicting.is_busy()

    def face(self) -> Face | None:
        """The face to store on OK (None: not complete yet)."""
        return self._face

    def points(self) -> list[tuple[float, float]]:
        """The points clicked so far (points mode)."""
        return list(self._points)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _set_face(self, face: Face | None) -> None:
        self._face = face
        self.ok_button.setEnabled(face is not None)
        self.face_changed.emit()

    # ---- loading -----------------------------------------------------------------
    def _on_image(self, loaded: Any) -> None:
        self._rgb = np.asarray(loaded.rgb)
        name = self.case.exhibit(self.mark).original_name
        self.viewer.set_image(self._rgb, f"{self.mark}: {name}")
        self._say("")
        if self.current is not None:
            self._points = [
                (float(x), float(y)) for x, y in np.asarray(self.current.landmarks5)
            ]
            self._set_face(self.current.to_face())
            self._show(self.current.bbox)
        self.set_mode(self.mode)
        self.image_loaded.emit()

    # ---- modes -------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``BOX`` (draw a rectangle) or ``POINTS`` (click the five points)."""
        if mode not in (BOX, POINTS):
            raise ValueError(f"unknown mode {mode!r}")
        changed = mode != self.mode
        self.mode = mode
        button = self.box_mode if mode == BOX else self.points_mode
        if not button.isChecked():
            button.setChecked(True)
        if changed:  # the other way of marking the face starts afresh
            self.clear()
        self._update_tool()

    def _mode_toggled(self, on: bool, mode: str) -> None:
        if on:
            self.set_mode(mode)

    def clear(self) -> None:
        """Drop the box or points drawn so far (Start again)."""
        self._points = []
        self._set_face(None)
        if self.ready:
            self.viewer.set_face(None, None)
        self._update_tool()

    def _update_tool(self) -> None:
        complete = self._face is not None
        if self.ready:
            tool = None if complete else ("rectangle" if self.mode == BOX else "point")
            self.viewer.set_tool(tool)
            self.viewer.set_landmarks_editable(complete)
        if complete:
            self.instructions.setText(
                "Drag any point to where it belongs, then OK to store the face "
                "(Start again to redo it; Edit → Undo undoes it after OK)."
            )
        elif self.mode == BOX:
            self.instructions.setText(
                "Drag a box around the whole face (brow to chin, ear to ear); the "
                "five points are then found inside it."
            )
        else:
            name = LANDMARK5_NAMES[len(self._points)]
            self.instructions.setText(
                f"Click point {len(self._points) + 1} of 5: the {name}. "
                "(Middle-drag pans, the wheel zooms.)"
            )

    def _show(self, bbox: Sequence[float] | None) -> None:
        points = np.array(self._points, float) if self._points else None
        box = None if bbox is None else tuple(float(v) for v in bbox)
        self.viewer.set_face(box, points)  # type: ignore[arg-type]
        self.viewer.set_landmarks_editable(self._face is not None)

    # ---- input -------------------------------------------------------------------
    def _on_drawn(self, shape: str, points: list[list[float]]) -> None:
        if shape == "rectangle" and self.mode == BOX:
            (left, top), (right, bottom) = points
            self.box_drawn((left, top, right, bottom))
        elif shape == "point" and self.mode == POINTS:
            self.click_point(*points[0])

    def box_drawn(self, box: Sequence[float]) -> None:
        """The examiner drew ``box`` (left, top, right, bottom): find the points."""
        if self._rgb is None:
            return
        left, top, right, bottom = (float(v) for v in box)
        left, right = sorted((left, right))
        top, bottom = sorted((top, bottom))
        if min(right - left, bottom - top) < MIN_BOX:
            self._say(
                f"The box is smaller than {MIN_BOX} pixels: draw it around the "
                "whole face."
            )
            return
        self._say("Finding the five points inside the box…")
        self.viewer.set_face((left, top, right, bottom), None)
        self._predicting.start(
            _face_in_box, self._predictor, self._rgb, (left, top, right, bottom)
        )

    def _on_predicted(self, face: Face) -> None:
        self._points = [(float(x), float(y)) for x, y in np.asarray(face.landmarks5)]
        self._set_face(face)
        self._show(face.bbox)
        self._say(
            "Points found inside the box: check each one and drag it if it is off."
        )
        self._update_tool()

    def _on_prediction_failed(self, error: BaseException, _details: str) -> None:
        self._say(
            f"Could not find the points inside the box: {describe(error)[1]} "
            "Draw the box again, or click the five points instead."
        )

    def click_point(self, x: float, y: float) -> None:
        """One click in points mode: the next of the five points."""
        if self._rgb is None or self.mode != POINTS or len(self._points) >= 5:
            return
        self._points.append((float(x), float(y)))
        if len(self._points) < 5:
            self._show(None)
            self._update_tool()
            return
        self._finish_points()

    def _finish_points(self) -> None:
        assert self._rgb is not None
        try:
            face = face_from_landmarks(np.array(self._points), self._rgb.shape)
        except BadInputError as error:
            self._points = []
            self._show(None)
            self._set_face(None)
            self._say(f"{error} Click the five points again.")
            self._update_tool()
            return
        self._set_face(face)
        self._show(face.bbox)
        self._say("")
        self._update_tool()

    def _on_dragged(self, points: Any) -> None:
        if self._face is None or points is None or len(points) != 5:
            return
        self._points = [(float(x), float(y)) for x, y in np.asarray(points)]
        # a moved point makes the face the examiner's own (source "manual"); the
        # box is redrawn after the drag's own signal has returned
        QTimer.singleShot(0, self._finish_points)

    def move_point(self, index: int, x: float, y: float) -> None:
        """Drag point ``index`` to (x, y), as the mouse would (tests)."""
        points = np.array(self._points, float)
        points[index] = (x, y)
        self._on_dragged(points)

    def done(self, result: int) -> None:
        self._predicting.cancel()
        self._loader.cancel()
        super().done(result)

    def shutdown(self) -> None:
        self._predicting.shutdown()
        self._loader.shutdown()
