"""The video view: one video exhibit's frames, its face tracks and their best frames
(issue 20 items 2, 4 and 6, the GUI side).

A thin layer over ``core.case.videos`` and ``core.case.workflow``: every decode runs
in a TaskRunner worker (``decode_frame``, ``track_strips``, ``video_thumbnails``),
and the case writes (finding tracks, adding frames) go through the CaseController,
which owns their workers and tells every panel what changed.

The slider can move faster than frames decode, so moves are coalesced: one frame
is decoded at a time and, when it is done, only the last frame asked for is
decoded next (the ones passed over in between never are).  The frame shown is
decoded exactly (``core.video.decode.extract_frame``), so what the examiner sees
is what a frame exhibit of that number would hold.

Tracking shows no comparison scores (sequential unmasking): a track's faces are
only linked to one another, never compared with the known exhibits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.records import Video
from core.case.store import Case
from core.case.videos import StoredTrack
from core.errors import BadInputError, Cancelled
from core.faces.detect import DETECTORS
from core.video import best_frames as best_frames_module
from core.video.best_frames import RankedFrame
from core.video.decode import extract_frame, iter_frames, upright
from core.video.provenance import FrameRef
from core.video.tracks import Track
from xfr_desktop.case_controller import CaseController
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.workers import TaskRunner

STRIP_SAMPLES = 12  # thumbnails at most per track strip
STRIP_THUMB = 56  # px, the longest side of a strip thumbnail
PRE_TICKED = 3  # best frames ticked when a track is picked
TRACK_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
ROLE_WORDS = {"probe": "questioned (probe)", "gallery": "known (gallery)"}
ADD_AS = {"probe": "probes", "gallery": "known exhibits"}
READ_ONLY_WHY = (
    "The case is open read-only: no tracks or frames can be added. Close it and "
    "open it normally to add them."
)
NO_TRACKS_TEXT = (
    "No face tracks yet: set how often to sample and press “Find face tracks”."
)
# column title -> its tooltip; the terms' titles are short to fit 1280 x 720
BEST_COLUMNS = {
    "rank": "1 = the best frame by the score; tick the frames to add",
    "frame": "frame number, from 0",
    "time": "seconds from the start of the video",
    "score": "the ranking score (hover over the table for the formula)",
    "size": "size term: inter-eye distance, 0 at 16 px, 1 at 90 px",
    "sharp": "sharpness term: 0 heavily blurred, 1 sharp",
    "pose": "pose term (subtracted): 0 frontal, 1 at the poor pose bounds",
    "expo": "exposure term (subtracted): 0 well exposed, 1 at the poor bounds",
    "trunc": "truncation term (subtracted): share of the face outside the image",
}
TERMS = ("size", "sharpness", "pose", "exposure", "truncation")
# The ranking formula, as core.video.best_frames documents it (one source).
RANKING_TIP = (best_frames_module.__doc__ or "").split("A figure that")[0].strip()


# ---- worker functions (decoding: never on the UI thread) ---------------------------
@dataclass(frozen=True)
class StripThumb:
    """One face of a track strip: the crop of its box on its frame."""

    track: str  # "T1"
    frame_number: int
    seconds: float | None
    rgb: np.ndarray
    rating: str | None  # the face's quality word (good, limited, poor)


def _thumbnail(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    scale = side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)


def video_thumbnails(
    case: Case, marks: Sequence[str], side: int
) -> dict[str, np.ndarray]:
    """Worker: the first frame of each video, longest side ``side`` px.  A video
    that cannot be decoded gets none (``verify`` names it; the list must show)."""
    out = {}
    for mark in marks:
        try:
            video = case.videos.video(mark)
            stream = case.videos.stream_info(video)
            held, decoded = stream.get("frame_count"), stream.get("decoded_frames")
            first = held - decoded if held and decoded and decoded < held else 0
            rgb, _ref = extract_frame(
                case.videos.video_path(video),
                frame_number=first,  # the first that decodes (a clip cut short)
                stream=int(stream["index"]),
            )
        except Exception:  # a broken copy shows no thumbnail; verify reports it
            continue
        out[mark] = _thumbnail(upright(rgb, _ref.display_rotation), side)
    return out


def decode_frame(path: Path, number: int, stream: int) -> tuple[np.ndarray, FrameRef]:
    """Worker: frame ``number`` decoded exactly (seek to its key frame, decode on),
    turned as the file's display matrix asks (as the tracks' boxes are)."""
    rgb, ref = extract_frame(path, frame_number=number, stream=stream)
    return upright(rgb, ref.display_rotation), ref


def sampled(count: int, at_most: int = STRIP_SAMPLES) -> list[int]:
    """Indices of at most ``at_most`` items of ``count``, evenly spread, first and
    last included."""
    if count <= at_most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (at_most - 1)) for i in range(at_most)})


def track_strips(
    case: Case,
    mark: str,
    tracks: Sequence[Track],
    labels: Sequence[str],
    side: int = STRIP_THUMB,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, list[StripThumb]]:
    """Worker: each track's strip, face crops from its stored boxes on at most
    ``STRIP_SAMPLES`` of its frames.  One pass over the video, in order, up to
    the last frame needed (seeking for each crop would decode most frames twice)."""
    wanted: dict[int, list[tuple[str, int]]] = {}
    for label, track in zip(labels, tracks, strict=True):
        for index in sampled(len(track.faces)):
            number = track.faces[index].frame_number
            wanted.setdefault(number, []).append((label, index))
    strips: dict[str, list[StripThumb]] = {label: [] for label in labels}
    if not wanted:
        return strips
    by_label = dict(zip(labels, tracks, strict=True))
    video = case.videos.video(mark)
    stream = case.videos.video_stream(video)
    last = max(wanted)
    for rgb, ref in iter_frames(case.videos.video_path(video), stream):
        if cancel is not None and cancel():
            raise Cancelled("track strips")
        if ref.frame_number in wanted:
            rgb = upright(rgb, ref.display_rotation)  # the boxes' pixels
        for label, index in wanted.get(ref.frame_number, []):
            face = by_label[label].faces[index]
            rating = None if face.quality is None else face.quality.get("rating")
            strips[label].append(
                StripThumb(
                    label,
                    ref.frame_number,
                    ref.seconds,
                    _thumbnail(face_crop(rgb, face.bbox), side),
                    rating,
                )
            )
        if ref.frame_number >= last:
            break
    return strips


def face_crop(
    rgb: np.ndarray, bbox: tuple[float, float, float, float], margin: float = 0.25
) -> np.ndarray:
    """The box with ``margin`` of its size around it, inside the frame."""
    left, top, right, bottom = bbox
    pad_x, pad_y = margin * (right - left), margin * (bottom - top)
    height, width = rgb.shape[:2]
    x0 = int(max(0, min(width - 1, left - pad_x)))
    y0 = int(max(0, min(height - 1, top - pad_y)))
    x1 = int(max(x0 + 1, min(width, right + pad_x)))
    y1 = int(max(y0 + 1, min(height, bottom + pad_y)))
    return rgb[y0:y1, x0:x1]


# ---- words -------------------------------------------------------------------------
def seconds_text(seconds: float | None) -> str:
    return "time unknown" if seconds is None else f"{seconds:.3f} s"


def video_summary(video: Video) -> str:
    """ "V1  cctv.mp4: 2.0 s, 20 frames, 640×360, 1,234 bytes" (the list and header)."""
    info = video.info
    streams = info.get("streams") or [{}]
    decodable = [s for s in streams if s.get("decoded_frames")]
    first = (decodable or streams)[0]  # the stream shown (CaseVideos.video_stream)
    duration = info.get("duration_seconds")
    held, decoded = first.get("frame_count"), first.get("decoded_frames")
    frames = f"{held if held is not None else '?'} frames"
    if held is not None and decoded is not None and decoded < held:
        frames += f" ({decoded} decodable)"
    parts = [
        "duration unknown" if duration is None else f"{duration:.1f} s",
        frames,
        f"{first.get('width', '?')}×{first.get('height', '?')}",
        f"{video.size:,} bytes",
    ]
    return ", ".join(parts)


def span_text(track: Track) -> str:
    """ "2.000–3.800 s (frames 20–38)" """
    first, last = track.first_seconds, track.last_seconds
    times = (
        f"{first:.3f}–{last:.3f} s"
        if first is not None and last is not None
        else "time unknown"
    )
    return f"{times} (frames {track.first_frame}–{track.last_frame})"


def position_text(ref: FrameRef, frame_count: int) -> str:
    text = (
        f"frame {ref.frame_number} of 0–{frame_count - 1} · {seconds_text(ref.seconds)}"
    )
    if ref.wall_clock:
        text += f" · {ref.wall_clock} (claimed by the file's tag, not verified)"
    return text


def _image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # the numpy buffer may go away


# ---- widgets -----------------------------------------------------------------------
class FrameView(QWidget):
    """The frame, as large as the space allows (aspect kept), with the tracked
    faces' boxes and track labels drawn in the frame's own coordinates."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.boxes: list[tuple[str, tuple[float, float, float, float], str]] = []
        self.message = "Select a video in the exhibits list."
        self.setMinimumSize(320, 180)

    def sizeHint(self) -> QSize:
        return QSize(640, 360)

    def set_frame(
        self,
        rgb: np.ndarray | None,
        boxes: list[tuple[str, tuple[float, float, float, float], str]],
    ) -> None:
        self.image = None if rgb is None else _image(rgb)
        self.boxes = boxes
        self.update()

    def image_rect(self) -> QRectF:
        """Where the frame is drawn in the widget."""
        if self.image is None:
            return QRectF()
        scale = min(
            self.width() / self.image.width(), self.height() / self.image.height()
        )
        width, height = self.image.width() * scale, self.image.height() * scale
        return QRectF(
            (self.width() - width) / 2, (self.height() - height) / 2, width, height
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        if self.image is None:
            painter.setPen(QColor("#dddddd"))
            painter.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.message,
            )
            painter.end()
            return
        target = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self.image)
        scale = target.width() / self.image.width()
        for label, (left, top, right, bottom), colour in self.boxes:
            pen = QPen(QColor(colour), 2)
            painter.setPen(pen)
            box = QRectF(
                target.left() + left * scale,
                target.top() + top * scale,
                (right - left) * scale,
                (bottom - top) * scale,
            )
            painter.drawRect(box)
            painter.fillRect(QRectF(box.left(), box.top() - 16, 28, 16), QColor(colour))
            painter.setPen(QColor("white"))
            painter.drawText(
                QRectF(box.left(), box.top() - 16, 28, 16),
                Qt.AlignmentFlag.AlignCenter,
                label,
            )
        painter.end()


class TrackStrip(QFrame):
    """One track: a radio button to pick it, its words, and its face thumbnails."""

    frame_clicked = Signal(int)

    def __init__(self, label: str, track: Track, colour: str) -> None:
        super().__init__()
        self.label = label
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.pick = QRadioButton(label)
        self.pick.setStyleSheet(
            f"QRadioButton {{ color: {colour}; font-weight: bold; }}"
        )
        self.pick.setToolTip(
            f"Pick {label} as the person's track: its best frames show on the right."
        )
        short = ", short" if track.short else ""
        self.words = QLabel(f"{span_text(track)}\n{len(track.faces)} faces{short}")
        if track.short:
            self.words.setToolTip(
                f"{label} has only {len(track.faces)} faces: it may be a stray "
                "detection or a person seen briefly."
            )
        side = QVBoxLayout()
        side.setSpacing(0)
        side.addWidget(self.pick)
        side.addWidget(self.words)
        side.addStretch(1)
        holder = QWidget()
        holder.setLayout(side)
        holder.setFixedWidth(190)
        self.thumbs = QHBoxLayout()
        self.thumbs.setSpacing(2)
        self.waiting = QLabel("decoding the faces…")
        self.thumbs.addWidget(self.waiting)
        self.thumbs.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(holder)
        layout.addLayout(self.thumbs, 1)
        self.buttons: list[QToolButton] = []

    def set_thumbs(self, thumbs: Sequence[StripThumb]) -> None:
        self.waiting.hide()
        for thumb in thumbs:
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIcon(QIcon(QPixmap.fromImage(_image(thumb.rgb))))
            button.setIconSize(QSize(STRIP_THUMB, STRIP_THUMB))
            button.setText(f"{thumb.frame_number}\n{thumb.rating or 'not rated'}")
            button.setToolTip(
                f"{self.label}, frame {thumb.frame_number} "
                f"({seconds_text(thumb.seconds)}); quality "
                f"{thumb.rating or 'not measured'}. Click to show this frame."
            )
            button.clicked.connect(
                lambda _=False, n=thumb.frame_number: self.frame_clicked.emit(n)
            )
            self.thumbs.insertWidget(self.thumbs.count() - 1, button)
            self.buttons.append(button)


class VideoPanel(QWidget):
    """One video exhibit: the frame slider, the track strips, the best frames."""

    def __init__(
        self,
        errors: ErrorReporter,
        controller: CaseController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.errors = errors
        self.controller = controller
        self.video: Video | None = None
        self.stored_tracks: list[StoredTrack] = []
        self.tracks: dict[str, Track] = {}  # label -> track of the latest run
        self.boxes_at: dict[
            int, list[tuple[str, tuple[float, float, float, float], str]]
        ] = {}
        self.picked: str | None = None  # the track the examiner picked
        self.ranked: list[RankedFrame] = []
        self.tracking: str | None = None  # the video being tracked, if any
        self.taken: dict[int, str] = {}  # frame number -> its exhibit's mark
        self.strips: dict[str, TrackStrip] = {}
        self.shown_rgb: np.ndarray | None = None
        self.shown_ref: FrameRef | None = None
        self._wanted: int | None = None  # the last frame asked for, not yet decoding
        self._frame_count = 0
        self._decoder = TaskRunner(self)
        self._decoder.result.connect(self._on_frame)
        self._decoder.error.connect(self._on_decode_error)
        self._decoder.finished.connect(self._decode_next)
        self._strip_maker = TaskRunner(self)
        self._strip_maker.result.connect(self._on_strips)
        self._strip_maker.error.connect(
            lambda e, d: self.errors.report(
                e, d, context="Could not show the faces of the tracks."
            )
        )
        self._build()
        controller.tracker.started.connect(self._update_buttons)
        controller.tracker.finished.connect(self._update_buttons)
        controller.tracker.progress.connect(self._on_tracking_progress)
        controller.frame_adder.started.connect(self._update_buttons)
        controller.frame_adder.finished.connect(self._update_buttons)
        controller.tracks_changed.connect(self._on_tracks_changed)
        controller.frames_added.connect(self._on_frames_added)
        self.set_video(None)

    # ---- layout ----------------------------------------------------------------
    def _build(self) -> None:
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.view = FrameView()
        self.first_button = self._step_button("|◀", "First frame", lambda: 0)
        self.back_button = self._step_button(
            "◀", "One frame back", lambda: self.slider.value() - 1
        )
        self.next_button = self._step_button(
            "▶", "One frame on", lambda: self.slider.value() + 1
        )
        self.last_button = self._step_button(
            "▶|", "Last frame", lambda: self.slider.maximum()
        )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Move through the video frame by frame.")
        self.slider.valueChanged.connect(self.show_frame)
        self.position = QLabel()
        steps = QHBoxLayout()
        for button in (self.first_button, self.back_button):
            steps.addWidget(button)
        steps.addWidget(self.slider, 1)
        for button in (self.next_button, self.last_button):
            steps.addWidget(button)

        self.every = QSpinBox()
        self.every.setRange(1, 100)
        self.every.setValue(workflow.DEFAULT_TRACK_EVERY)
        self.every.setPrefix("every ")
        self.every.setSuffix(" frames")
        self.every.setToolTip(
            "Find faces on every n-th frame: 1 looks at every frame (slowest)."
        )
        self.detector = QComboBox()
        self.detector.addItems(list(DETECTORS))
        self.detector.setToolTip(
            "The face finder: hog is fast; cnn is slower and finds smaller or "
            "turned faces."
        )
        self.track_button = QPushButton("Find face tracks")
        self.track_button.clicked.connect(self.find_tracks)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel_tracking)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumWidth(160)
        tracking = QHBoxLayout()
        tracking.addWidget(self.every)
        tracking.addWidget(self.detector)
        tracking.addWidget(self.track_button)
        tracking.addWidget(self.cancel_button)
        tracking.addWidget(self.progress)
        tracking.addStretch(1)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.header)
        left_layout.addWidget(self.view, 1)
        left_layout.addLayout(steps)
        left_layout.addWidget(self.position)
        left_layout.addLayout(tracking)

        self.best_title = QLabel("Best frames: pick a track below.")
        self.best_title.setToolTip(RANKING_TIP)
        self.best = QTableWidget(0, len(BEST_COLUMNS))
        self.best.setHorizontalHeaderLabels(list(BEST_COLUMNS))
        for column, tip in enumerate(BEST_COLUMNS.values()):
            header_item = self.best.horizontalHeaderItem(column)
            if header_item is not None:
                header_item.setToolTip(tip)
        self.best.setToolTip(RANKING_TIP)
        self.best.verticalHeader().hide()
        self.best.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.best.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.best.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.best.itemChanged.connect(lambda _item: self._update_buttons())
        self.best.cellClicked.connect(self._on_best_clicked)
        self.add_button = QPushButton("Add frames as exhibits")
        self.add_button.clicked.connect(self.add_ticked)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.best_title)
        right_layout.addWidget(self.best, 1)
        right_layout.addWidget(self.add_button)
        right.setMinimumWidth(300)

        top = QSplitter()
        top.addWidget(left)
        top.addWidget(right)
        top.setChildrenCollapsible(False)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        top.setSizes([560, 470])

        self.strips_box = QWidget()
        self.strips_layout = QVBoxLayout(self.strips_box)
        self.strips_layout.setContentsMargins(2, 2, 2, 2)
        self.strips_layout.setSpacing(2)
        self.no_tracks = QLabel(NO_TRACKS_TEXT)
        self.no_tracks.setWordWrap(True)
        self.strips_layout.addWidget(self.no_tracks)
        self.strips_layout.addStretch(1)
        self.strips_area = QScrollArea()
        self.strips_area.setWidgetResizable(True)
        self.strips_area.setWidget(self.strips_box)
        self.strips_area.setMinimumHeight(110)
        self.pick_group = QButtonGroup(self)
        self.pick_group.buttonClicked.connect(
            lambda button: self.pick_track(button.text())
        )

        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(self.strips_area)
        main.setChildrenCollapsible(False)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 2)
        main.setSizes([330, 220])  # at 720 px high: two strips in sight
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main)

    def _step_button(
        self, text: str, tip: str, target: Callable[[], int]
    ) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self.slider.setValue(target()))
        return button

    # ---- the video ---------------------------------------------------------------
    def set_video(self, mark: str | None) -> None:
        """Show video ``mark`` of the open case (None: nothing)."""
        case = self.controller.case
        self.video = None
        self._decoder.cancel()
        self._strip_maker.cancel()
        self._wanted = None
        self.shown_rgb = self.shown_ref = None
        self.view.set_frame(None, [])
        if case is not None and mark is not None:
            try:
                self.video = case.videos.video(mark)
            except BadInputError as error:
                self.errors.report(error, context=f"Could not show video {mark}.")
        if self.video is None:
            self.header.setText("No video selected: select one in the exhibits list.")
            self._frame_count = 0
            self.slider.setRange(0, 0)
            self.position.setText("")
        else:
            video = self.video
            self.header.setText(
                f"<b>{video.mark}</b>  {video.original_name} — "
                f"{ROLE_WORDS.get(video.role, video.role)}: {video_summary(video)}"
            )
            self.header.setToolTip(
                f"SHA-256 {video.sha256}\n{video.info.get('decoder', '')}\n"
                f"added {video.intake_time} by {video.intake_user}"
            )
            stream = case.videos.stream_info(video) if case is not None else {}
            self._frame_count = int(stream.get("frame_count") or 1)
            decoded = stream.get("decoded_frames")
            # a clip cut after a key frame cannot show its first frames: open on
            # the first that decodes (they are the last ``decoded`` ones)
            first = (
                self._frame_count - int(decoded)
                if decoded and int(decoded) < self._frame_count
                else 0
            )
            self.view.message = f"Decoding frame {first} of {video.mark}…"
            self.slider.blockSignals(True)
            self.slider.setRange(0, self._frame_count - 1)
            self.slider.setValue(first)
            self.slider.blockSignals(False)
            self.position.setText("")
        self._load_tracks()
        if self.video is not None:
            self.show_frame(self.slider.value())

    def refresh_case(self) -> None:
        """The case was opened, closed or changed: keep the video if it is still
        there."""
        case = self.controller.case
        mark = self.video.mark if self.video is not None else None
        if case is None or mark is None:
            self.set_video(None)
        self._update_buttons()

    # ---- frames (coalesced decoding) ---------------------------------------------
    def show_frame(self, number: int) -> None:
        """Decode and show frame ``number`` (only the last one asked for while a
        decode runs is decoded next)."""
        if self.video is None:
            return
        self._wanted = number
        if not self._decoder.is_busy():
            self._decode_next()

    def _decode_next(self) -> None:
        if self._wanted is None or self.video is None:
            return
        case = self.controller.case
        if case is None:
            return
        number, self._wanted = self._wanted, None
        self._decoder.start(
            decode_frame,
            case.videos.video_path(self.video),
            number,
            case.videos.video_stream(self.video),
        )

    def _on_frame(self, decoded: tuple[np.ndarray, FrameRef]) -> None:
        rgb, ref = decoded
        self.shown_rgb, self.shown_ref = rgb, ref
        self.view.set_frame(rgb, self.boxes_at.get(ref.frame_number, []))
        self.position.setText(position_text(ref, self._frame_count))

    def _on_decode_error(self, error: BaseException, details: str) -> None:
        mark = self.video.mark if self.video is not None else "the video"
        if isinstance(error, BadInputError):  # this frame cannot be shown: say so
            self.shown_rgb = self.shown_ref = None
            self.view.message = error.reason
            self.view.set_frame(None, [])
            self.position.setText(
                f"frame {self.slider.value()} of 0–{self._frame_count - 1}: "
                "cannot be decoded"
            )
            return
        self.errors.report(
            error,
            details,
            context=f"Could not show this frame of {mark}; run Verify to check "
            "the case's evidence files.",
        )

    # ---- tracks --------------------------------------------------------------------
    def find_tracks(self) -> None:
        if self.video is None:
            return
        self.progress.setValue(0)
        self.tracking = self.video.mark
        self.controller.track_video(
            self.video.mark, self.every.value(), self.detector.currentText()
        )

    def _on_tracking_progress(self, done: int, total: int, message: str) -> None:
        # one tracking at a time, whichever video is shown: the bar names it
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(
            f"tracking {self.tracking or 'a video'}: {done}/{total}"
        )
        self.progress.setToolTip(message)
        self.cancel_button.setToolTip(
            f"Stop finding face tracks in {self.tracking or 'the video'}"
        )

    def _on_tracks_changed(self, mark: str) -> None:
        if self.video is not None and self.video.mark == mark:
            self._load_tracks()
            if self.shown_ref is not None:
                self._on_frame((self.shown_rgb, self.shown_ref))  # type: ignore[arg-type]

    def _load_tracks(self) -> None:
        """The latest tracking run's tracks: strips, boxes, and no track picked."""
        for strip in self.strips.values():
            self.pick_group.removeButton(strip.pick)
            strip.setParent(None)
            strip.deleteLater()
        self.strips = {}
        self.tracks = {}
        self.boxes_at = {}
        self.picked = None
        self._show_ranked([])
        case, video = self.controller.case, self.video
        self.stored_tracks = (
            [] if case is None or video is None else case.videos.tracks(video.mark)
        )
        for stored in self.stored_tracks:
            try:
                self.tracks[stored.label] = workflow.stored_track(stored)
            except BadInputError as error:
                self.errors.report(
                    error, context=f"Could not show the tracks of {stored.video}."
                )
        for number, (label, track) in enumerate(self.tracks.items()):
            colour = TRACK_COLOURS[number % len(TRACK_COLOURS)]
            for face in track.faces:
                self.boxes_at.setdefault(face.frame_number, []).append(
                    (label, face.bbox, colour)
                )
            strip = TrackStrip(label, track, colour)
            strip.frame_clicked.connect(self.slider.setValue)
            self.pick_group.addButton(strip.pick)
            self.strips_layout.insertWidget(self.strips_layout.count() - 1, strip)
            self.strips[label] = strip
        runs = (
            ""
            if not self.stored_tracks
            else (
                f"{len(self.tracks)} track(s) from run {self.stored_tracks[0].run}, "
                f"every {self.stored_tracks[0].params.get('every', '?')} frames: "
                "pick the person's track."
            )
        )
        self.no_tracks.setText(runs or NO_TRACKS_TEXT)
        if self.tracks and case is not None and video is not None:
            labels = list(self.tracks)
            self._strip_maker.start(
                track_strips, case, video.mark, [self.tracks[x] for x in labels], labels
            )
        self._update_buttons()

    def _on_strips(self, strips: dict[str, list[StripThumb]]) -> None:
        for label, thumbs in strips.items():
            if label in self.strips:
                self.strips[label].set_thumbs(thumbs)

    # ---- best frames -----------------------------------------------------------------
    def pick_track(self, label: str) -> None:
        """The examiner picked ``label``: its frames ranked, the best ones ticked."""
        if label not in self.tracks:
            return
        self.picked = label
        self.strips[label].pick.setChecked(True)
        track = self.tracks[label]
        case = self.controller.case
        self.taken = (
            {} if case is None or self.video is None
            else workflow.taken_frames(case, self.video.mark)
        )  # fmt: skip
        try:
            ticked = (
                set()
                if case is None or self.video is None
                else {
                    r.frame_number
                    for r in workflow.next_best_frames(
                        case, self.video.mark, track, PRE_TICKED, label=label
                    )
                }
            )
        except BadInputError:  # every frame taken or near one taken: none ticked
            ticked = set()
        self._show_ranked(best_frames_module.rank_frames(track), ticked)

    def _show_ranked(
        self, ranked: list[RankedFrame], ticked: set[int] | None = None
    ) -> None:
        self.ranked = ranked
        ticked = ticked or set()
        self.best.blockSignals(True)
        self.best.setRowCount(len(ranked))
        for row, frame in enumerate(ranked):
            taken = self.taken.get(frame.frame_number)
            rank = QTableWidgetItem(
                str(frame.rank) if taken is None else f"{frame.rank} {taken}"
            )
            missing = (
                f"; not available: {', '.join(frame.missing)}" if frame.missing else ""
            )
            if taken is None:
                rank.setFlags(rank.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                rank.setCheckState(
                    Qt.CheckState.Checked
                    if frame.frame_number in ticked
                    else Qt.CheckState.Unchecked
                )
                rank.setToolTip(
                    f"Tick to add frame {frame.frame_number} as an exhibit{missing}."
                )
            else:  # already an exhibit: shown, not offered again
                rank.setFlags(rank.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                rank.setToolTip(
                    f"Frame {frame.frame_number} is already exhibit {taken}{missing}."
                )
            values = [
                str(frame.frame_number),
                "?"
                if frame.face.frame.seconds is None
                else f"{frame.face.frame.seconds:.3f}",
                f"{frame.score:.3f}",
                *(f"{frame.terms.get(term, 0.0):.2f}" for term in TERMS),
            ]
            self.best.setItem(row, 0, rank)
            for column, value in enumerate(values, start=1):
                item = QTableWidgetItem(value)
                item.setTextAlignment(
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
                self.best.setItem(row, column, item)
        self.best.blockSignals(False)
        if self.picked is None:
            self.best_title.setText("Best frames: pick a track below.")
        else:
            self.best_title.setText(
                f"Best frames of {self.picked}, best first: tick the ones to add."
            )
            self.best_title.setToolTip(
                f"The best {PRE_TICKED} frames at least "
                f"{workflow.BEST_FRAMES_SEPARATION} frames apart are ticked; tick or "
                f"untick to choose others.\n\n{RANKING_TIP}"
            )
        self._update_buttons()

    def ticked_frames(self) -> list[int]:
        """The frame numbers ticked, in the table's (rank) order."""
        chosen = []
        for row, frame in enumerate(self.ranked):
            item = self.best.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                chosen.append(frame.frame_number)
        return chosen

    def set_ticked(self, frames: Sequence[int]) -> None:
        """Tick exactly ``frames`` (the examiner's override; tests)."""
        wanted = set(frames)
        for row, frame in enumerate(self.ranked):
            item = self.best.item(row, 0)
            if item is not None:
                item.setCheckState(
                    Qt.CheckState.Checked
                    if frame.frame_number in wanted
                    else Qt.CheckState.Unchecked
                )

    def _on_best_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.ranked):
            self.slider.setValue(self.ranked[row].frame_number)

    def add_ticked(self) -> None:
        frames = self.ticked_frames()
        if self.video is None or self.picked is None or not frames:
            return
        self.controller.add_track_frames(self.video.mark, self.picked, frames)

    def _on_frames_added(self, added: list) -> None:
        case = self.controller.case
        if case is not None and self.video is not None:  # this video's frames only
            added = [
                e
                for e in added
                if (frame := case.videos.frame(e.mark)) is not None
                and frame.video == self.video.mark
            ]
        if added:
            if self.picked is not None:  # the frames taken now show their marks
                self.pick_track(self.picked)
            marks = ", ".join(e.mark for e in added)
            self.best_title.setText(
                f"Added {marks} from {self.picked}: they are in the exhibits list."
            )

    # ---- state -----------------------------------------------------------------------
    def _update_buttons(self) -> None:
        case = self.controller.case
        has_video = self.video is not None
        read_only = case is not None and case.read_only
        tracking = self.controller.tracker.is_busy()
        adding = self.controller.frame_adder.is_busy()
        for button in (
            self.first_button,
            self.back_button,
            self.next_button,
            self.last_button,
        ):
            button.setEnabled(has_video)
        self.slider.setEnabled(has_video)
        self.track_button.setEnabled(has_video and not read_only and not tracking)
        self.every.setEnabled(has_video and not read_only)
        self.detector.setEnabled(has_video and not read_only)
        self.cancel_button.setEnabled(tracking)
        self.progress.setVisible(tracking)
        count = len(self.ticked_frames())
        role = self.video.role if self.video is not None else "probe"
        self.add_button.setText(
            f"Add {count} frame(s) as {ADD_AS.get(role, 'exhibits')}"
        )
        self.add_button.setEnabled(
            has_video and not read_only and not adding and count > 0
        )
        tip = READ_ONLY_WHY if read_only else ""
        self.track_button.setToolTip(
            tip
            or "Find the faces on the sampled frames and link them into tracks "
            "(one per person, as far as the boxes and the model can tell)."
        )
        self.add_button.setToolTip(
            tip
            or "Decode the ticked frames again, exactly, and add each one as an "
            "exhibit with its provenance (video, frame number, time, hash)."
        )

    def shutdown(self) -> None:
        self._decoder.shutdown()
        self._strip_maker.shutdown()
