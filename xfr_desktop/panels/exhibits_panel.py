"""Exhibits of the open case: thumbnails, marks, hashes, faces; drop files to add.

Each exhibit lists its faces (with where they came from and their image quality,
measured in a worker: ``xfr_desktop.panels.face_quality``) and the faces the
examiner rejected, greyed.  The context menu (and a double-click) asks for the face
steps (place, correct, reject, reset, restore) through signals: the window confirms
and the case controller does them, undoably.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core import wording
from core.case import workflow
from core.case.derivations import Derivation
from core.case.records import CaseFace
from core.case.store import Case
from core.case.videos import VideoFrame
from core.errors import BadInputError
from core.imageio import frame_count
from core.quality import FaceQuality
from core.video.decode import VIDEO_SUFFIXES
from xfr_desktop.panels import face_quality
from xfr_desktop.panels.video_panel import video_summary, video_thumbnails
from xfr_desktop.workers import TaskRunner

THUMBNAIL = 72
ROLE_TITLES = {"probe": "Questioned (probe)", "gallery": "Known (gallery)"}
# What a tree item is (item data under KIND_ROLE).
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
EXHIBIT, FACE, REJECTED, NO_FACE = "exhibit", "face", "rejected", "no face"
VIDEO = "video"
VIDEOS_TITLE = "Videos"
IMAGE_PATTERNS = "*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp *.heic"
VIDEO_PATTERNS = " ".join(f"*{suffix}" for suffix in sorted(VIDEO_SUFFIXES))
NO_FACE_TEXT = "no face found:\nright-click →\nPlace a face…"
DEFAULT_REASON = "not a face"
READ_ONLY_TIP = "The case is open read-only."
# The menu's words, also used by tests to find the actions.
PLACE = "Place a face…"
CORRECT = "Correct this face…"
REJECT = "Reject as not a face…"
RESET = "Reset to the detected face"
RESTORE = "Restore"
TAKE_FRAME = "Take frame…"  # of an animation or multi-page image


def source_text(face: CaseFace) -> str:
    """Where a face came from, in the examiner's words."""
    return wording.face_source_words(face.source, short=True)


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the numpy buffer may go away


def frame_row_text(frame: VideoFrame) -> str:
    """A frame exhibit's provenance in a short row ("V1 frame 14, 1.400 s"); the
    tooltip has the whole line (``VideoFrame.describe``)."""
    when = "" if frame.seconds is None else f", {frame.seconds:.3f} s"
    return f"{frame.video} frame {frame.frame_number}{when}"


def derivation_tip(link: Derivation | None, case: Case) -> str:
    """A processed exhibit's tooltip lines: where it comes from and its chain."""
    if link is None:
        return ""
    marks = case.derivations.lineage_marks(link.mark)
    return f"\nprocessed: {wording.derivation_lineage_text(marks)}, by\n" + "\n".join(
        link.step_lines()
    )


def rating_icon(rating: str, size: int = 14) -> QIcon:
    """The rating's shape in its colour (circle, triangle, square): the shape and
    the row's words say it without the colour."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(face_quality.RATING_COLOURS[rating])
    painter.setBrush(colour)
    painter.setPen(colour.darker(150))
    edge = size - 2.0
    if rating == "good":
        painter.drawEllipse(1, 1, int(edge), int(edge))
    elif rating == "limited":
        painter.drawPolygon(
            QPolygonF([QPointF(size / 2, 1), QPointF(edge + 1, edge), QPointF(1, edge)])
        )
    else:
        painter.drawRect(2, 2, size - 4, size - 4)
    painter.end()
    return QIcon(pixmap)


def files_in(paths: list[str]) -> list[str]:
    """Dropped files, and the files inside dropped folders (not recursive)."""
    files: list[str] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(str(p) for p in sorted(path.iterdir()) if p.is_file())
        else:
            files.append(str(path))
    return files


class ExhibitsPanel(QWidget):
    """Tree: role → exhibit (thumbnail, mark, name) → faces."""

    add_requested = Signal(list, str)  # files, role
    face_selected = Signal(str, str)  # face label, role
    video_selected = Signal(str)  # video mark: open the video view on it
    place_requested = Signal(str)  # exhibit mark: open the face dialog for a new face
    correct_requested = Signal(str)  # face label: the face dialog on that face
    reject_requested = Signal(str, str)  # face label, reason
    reset_requested = Signal(str)  # face label
    restore_requested = Signal(str)  # face label
    take_frame_requested = Signal(str, int)  # exhibit mark, frame index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.case: Case | None = None
        self.setAcceptDrops(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.tree.setWordWrap(True)  # exhibit lines wrap beside the thumbnail
        self.tree.itemClicked.connect(self._on_clicked)
        self.tree.itemDoubleClicked.connect(self._on_double_clicked)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._show_menu)
        self.add_probe = QPushButton("Add probe…")
        self.add_gallery = QPushButton("Add gallery…")
        self.add_probe.clicked.connect(lambda: self._browse("probe"))
        self.add_gallery.clicked.connect(lambda: self._browse("gallery"))
        hint = QLabel(
            "Drop image or video files or folders here to add them. Right-click "
            "an exhibit or a face to place, correct, reject or reset a face; "
            "click a video to see its frames and face tracks."
        )
        hint.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_probe)
        buttons.addWidget(self.add_gallery)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)
        layout.addWidget(hint)
        self._pixmaps: dict[str, QPixmap] = {}
        self._thumbs = TaskRunner(self)
        self._thumbs.result.connect(self._on_thumbnails)
        # videos' first frames: their own worker (a new image's thumbnail must not
        # cancel a video's) and their own keys (V1 is no exhibit mark)
        self._video_pixmaps: dict[str, QPixmap] = {}
        self._video_thumbs = TaskRunner(self)
        self._video_thumbs.result.connect(self._on_video_thumbnails)
        # videos whose first frame was asked for (once per case: a video that
        # cannot be decoded is not decoded again at every refresh)
        self._video_tried: set[str] = set()
        # face id -> its quality (or why not): measured once per face record
        self.qualities: face_quality.Measured = {}
        self._measuring: set[int] = set()
        self._measurer = TaskRunner(self)
        self._measurer.result.connect(self._on_qualities)
        self._measurer.finished.connect(self._measuring.clear)

    # ---- content -------------------------------------------------------------------
    def set_case(self, case: Case | None) -> None:
        self.case = case
        self._pixmaps.clear()
        self._video_pixmaps.clear()
        self._video_thumbs.cancel()
        self._video_tried.clear()
        # another case (or none): thumbnails and figures still being made are not
        # its own (thumbnails are keyed by mark, which every case starts at Q1)
        self._thumbs.cancel()
        self._measurer.cancel()
        self._measuring.clear()
        self.qualities = {}
        self.refresh()

    def refresh(self) -> None:
        self.tree.clear()
        if self.case is None:
            return
        case = self.case
        faces_by_mark: dict[str, list[CaseFace]] = {}
        for face in case.faces():
            faces_by_mark.setdefault(face.mark, []).append(face)
        rejected_by_mark: dict[str, list[CaseFace]] = {}
        for face in case.rejected_faces():
            rejected_by_mark.setdefault(face.mark, []).append(face)
        reasons = case.rejection_reasons() if rejected_by_mark else {}
        # where each frame exhibit came from (its video, frame number, time)
        frames = {frame.mark: frame for frame in case.videos.frames()}
        # processed exhibits (Q1.1, Q1.1.1) are listed under their original (Q1),
        # one level deep so that a long lineage stays readable; the row names the
        # exhibit each was made from
        derived = {d.mark: d for d in case.derivations.derivations()}

        def original(mark: str) -> str:
            seen = 0
            while mark in derived and seen < 100:
                mark, seen = derived[mark].source, seen + 1
            return mark

        greyed = QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText))
        missing = []
        for role, title in ROLE_TITLES.items():
            top = QTreeWidgetItem([title])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            items: dict[str, QTreeWidgetItem] = {}
            for exhibit in case.exhibits(role):
                faces = faces_by_mark.get(exhibit.mark, [])
                rejected = rejected_by_mark.get(exhibit.mark, [])
                count = f"{len(faces)} face(s)" + (
                    f", {len(rejected)} rejected" if rejected else ""
                )
                frame = frames.get(exhibit.mark)
                source = None if frame is None else frame.describe()
                link = derived.get(exhibit.mark)
                item = QTreeWidgetItem(
                    [
                        # a processed copy's file name is long and says less
                        # than its source (the tooltip has both)
                        f"{exhibit.mark}  "
                        + (
                            exhibit.original_name
                            if link is None
                            else f"processed {link.source}"
                        )
                        + f"\n{exhibit.width}×{exhibit.height}, {count}"
                        + ("" if frame is None else f"\n{frame_row_text(frame)}")
                    ]
                )
                item.setData(0, Qt.ItemDataRole.UserRole, (exhibit.mark, role))
                item.setData(0, KIND_ROLE, EXHIBIT)
                item.setToolTip(
                    0,
                    f"{exhibit.mark}: {exhibit.original_name}\n"
                    f"SHA-256 {exhibit.sha256}\n{exhibit.size:,} bytes, "
                    f"{exhibit.format}\nadded {exhibit.intake_time} by "
                    f"{exhibit.intake_user}"
                    + (f"\nnote: {exhibit.note}" if exhibit.note else "")
                    + (f"\ntaken from {source}" if source else "")
                    + derivation_tip(link, case),
                )
                if exhibit.mark in self._pixmaps:
                    item.setIcon(0, QIcon(self._pixmaps[exhibit.mark]))
                else:
                    missing.append(exhibit.mark)
                parent = top if link is None else items.get(original(exhibit.mark), top)
                parent.addChild(item)
                items[exhibit.mark] = item
                shown = sorted(faces + rejected, key=lambda f: f.face_index)
                for face in shown:
                    child = self._face_item(face, role, reasons, greyed)
                    if not face.rejected:
                        self._show_quality(child, face)
                    item.addChild(child)
                if not faces:
                    child = QTreeWidgetItem([NO_FACE_TEXT])
                    child.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    child.setToolTip(
                        0,
                        f"The detector found no face on {exhibit.mark}. Double-click "
                        "(or right-click → Place a face…) to draw a box around it "
                        "or click its five points.",
                    )
                    child.setData(0, Qt.ItemDataRole.UserRole, (exhibit.mark, role))
                    child.setData(0, KIND_ROLE, NO_FACE)
                    item.addChild(child)
            top.setExpanded(True)
        self._add_videos(case)
        self.tree.expandAll()
        if missing:
            self._thumbs.start(workflow.evidence_thumbnails, case, missing, THUMBNAIL)
        unmeasured = [f.id for f in case.faces() if f.id not in self.qualities]
        if unmeasured and not set(unmeasured) <= self._measuring:
            self._measuring = set(unmeasured)
            self._measurer.start(face_quality.measure_faces, case, unmeasured)

    def _add_videos(self, case: Case) -> None:
        """The "Videos" group: each video with its first frame, length and size
        (none when the case has no video)."""
        videos = case.videos.videos()
        if not videos:
            return
        top = QTreeWidgetItem([VIDEOS_TITLE])
        top.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.tree.addTopLevelItem(top)
        missing = []
        for video in videos:
            role = ROLE_TITLES.get(video.role, video.role).split(" ")[0].lower()
            # short lines: tree rows do not wrap in the narrow panel
            summary = video_summary(video).split(", ")
            item = QTreeWidgetItem(
                [
                    f"{video.mark}  {video.original_name}\n{role}, {summary[0]}\n"
                    + "\n".join(summary[1:3])
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, (video.mark, video.role))
            item.setData(0, KIND_ROLE, VIDEO)
            item.setToolTip(
                0,
                f"{video.mark}: {video.original_name}\nSHA-256 {video.sha256}\n"
                f"{video.size:,} bytes, {video.container}\nadded {video.intake_time} "
                f"by {video.intake_user}\nClick to see its frames and find its "
                "face tracks.",
            )
            if video.mark in self._video_pixmaps:
                item.setIcon(0, QIcon(self._video_pixmaps[video.mark]))
            elif video.mark not in self._video_tried:
                missing.append(video.mark)
            top.addChild(item)
        top.setExpanded(True)
        if missing:
            # the marks still being made are asked for again with the new ones
            self._video_tried.update(missing)
            wanted = [v.mark for v in videos if v.mark not in self._video_pixmaps]
            self._video_thumbs.start(video_thumbnails, case, wanted, THUMBNAIL)

    def _on_video_thumbnails(self, thumbnails: dict[str, np.ndarray]) -> None:
        for mark, rgb in thumbnails.items():
            self._video_pixmaps[mark] = to_pixmap(rgb)
        if thumbnails:
            self.refresh()

    def _show_quality(self, child: QTreeWidgetItem, face: CaseFace) -> None:
        """The face row's quality line, rating icon and figures tooltip."""
        found = self.qualities.get(face.id)
        text = child.text(0)
        if found is None:
            child.setText(0, f"{text}\n{face_quality.PENDING_TEXT}")
            return
        child.setText(0, f"{text}\n{face_quality.row_text(found)}")
        if isinstance(found, FaceQuality):
            child.setIcon(0, rating_icon(found.summary.rating))
        recorded = html.escape(child.toolTip(0))
        child.setToolTip(
            0, f"<p>{recorded}</p>" + face_quality.tooltip(face.label, found)
        )

    def _on_qualities(self, found: face_quality.Measured) -> None:
        self.qualities.update(found)
        self.refresh()

    @staticmethod
    def _face_item(
        face: CaseFace, role: str, reasons: dict[str, str], greyed: QBrush
    ) -> QTreeWidgetItem:
        if face.rejected:
            reason = reasons.get(face.label) or DEFAULT_REASON
            # two short lines: the panel is narrow (tree rows do not wrap)
            child = QTreeWidgetItem([f"face {face.label}: rejected\n({reason})"])
            child.setForeground(0, greyed)
            child.setToolTip(
                0,
                f"Rejected by {face.created_by}, {face.created}: left out of "
                "comparisons, 1:N and statistics. Right-click → Restore to use it "
                "again.",
            )
            child.setData(0, KIND_ROLE, REJECTED)
        else:
            child = QTreeWidgetItem([f"face {face.label}\n{source_text(face)}"])
            child.setToolTip(
                0,
                f"{face.label}: {source_text(face)}, recorded {face.created} by "
                f"{face.created_by}. Double-click to correct it.",
            )
            child.setData(0, KIND_ROLE, FACE)
        child.setData(0, Qt.ItemDataRole.UserRole, (face.label, role))
        return child

    # ---- face steps (menu, double-click) -------------------------------------------
    def item_for(self, label: str, kind: str | None = None) -> QTreeWidgetItem | None:
        """The tree item of an exhibit mark or a face label (tests, screenshots)."""
        items = self.tree.findItems(
            "", Qt.MatchFlag.MatchContains | Qt.MatchFlag.MatchRecursive
        )
        for item in items:
            data = item.data(0, Qt.ItemDataRole.UserRole)
            if data and data[0] == label and kind in (None, item.data(0, KIND_ROLE)):
                return item
        return None

    def menu_for(self, item: QTreeWidgetItem) -> QMenu | None:
        """The context menu of a tree item (None for the role headings)."""
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if self.case is None or not data:
            return None
        label, _role = data
        kind = item.data(0, KIND_ROLE)
        writable = not self.case.read_only
        menu = QMenu(self)
        mark = label.partition("#")[0]
        if kind in (EXHIBIT, NO_FACE):
            menu.addAction(PLACE, lambda: self.place_requested.emit(mark))
            frames = self._frames_of(mark)
            if frames > 1:
                take = menu.addAction(TAKE_FRAME, lambda: self._ask_frame(mark, frames))
                take.setToolTip(
                    f"{mark} holds {frames} frames and is analysed on its first: "
                    "take another frame as an exhibit of its own."
                )
        elif kind == FACE:
            menu.addAction(CORRECT, lambda: self.correct_requested.emit(label))
            menu.addAction(REJECT, lambda: self._ask_reject(label))
            reset = menu.addAction(RESET, lambda: self.reset_requested.emit(label))
            reset.setEnabled(self._can_reset(label))
            if not reset.isEnabled():
                reset.setToolTip(
                    "This face is the detected one, or was placed by hand."
                )
            menu.addSeparator()
            menu.addAction(PLACE, lambda: self.place_requested.emit(mark))
        elif kind == REJECTED:
            menu.addAction(RESTORE, lambda: self.restore_requested.emit(label))
        menu.setToolTipsVisible(True)
        for action in menu.actions():
            if not writable:
                action.setEnabled(False)
                action.setToolTip(READ_ONLY_TIP)
        return menu

    def _frames_of(self, mark: str) -> int:
        """How many frames exhibit ``mark``'s file holds (1 when unreadable: the
        menu then offers no frame; verify names a damaged file)."""
        assert self.case is not None
        try:
            exhibit = self.case.exhibit(mark)
            if self.case.videos.frame(mark) is not None:
                return 1  # a frame taken already: take from its source instead
            return frame_count(self.case.evidence_path(exhibit))
        except BadInputError:
            return 1

    def _ask_frame(self, mark: str, frames: int) -> None:
        index, ok = QInputDialog.getInt(
            self,
            TAKE_FRAME.rstrip("…"),
            f"Frame of {mark} to take as an exhibit (1 to {frames - 1}; frame 0 is "
            f"the one {mark} is analysed on):",
            1,
            1,
            frames - 1,
        )
        if ok:
            self.take_frame_requested.emit(mark, index)

    def _can_reset(self, label: str) -> bool:
        assert self.case is not None
        try:
            detected = self.case.detected_face(label)
            return detected is not None and detected.id != self.case.face(label).id
        except BadInputError:
            return False

    def _show_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        menu = None if item is None else self.menu_for(item)
        if menu is not None:
            menu.exec(self.tree.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def _on_double_clicked(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if self.case is None or self.case.read_only or not data:
            return
        kind = item.data(0, KIND_ROLE)
        if kind == NO_FACE:
            self.place_requested.emit(data[0])
        elif kind == FACE:
            self.correct_requested.emit(data[0])

    def ask_reason(self, label: str) -> str | None:
        """Why ``label`` is rejected (None: cancelled); tests replace this."""
        reason, ok = QInputDialog.getText(
            self,
            f"Reject face {label}",
            f"Why is {label} not a face? (kept in the audit trail)",
            QLineEdit.EchoMode.Normal,
            DEFAULT_REASON,
        )
        return (reason.strip() or DEFAULT_REASON) if ok else None

    def _ask_reject(self, label: str) -> None:
        reason = self.ask_reason(label)
        if reason is not None:
            self.reject_requested.emit(label, reason)

    def _on_thumbnails(self, thumbnails: dict[str, np.ndarray]) -> None:
        for mark, rgb in thumbnails.items():
            self._pixmaps[mark] = to_pixmap(rgb)
        self.refresh()

    def _on_clicked(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data and item.data(0, KIND_ROLE) == VIDEO:
            self.video_selected.emit(data[0])
        elif data and item.data(0, KIND_ROLE) in (EXHIBIT, FACE):
            label, role = data
            self.face_selected.emit(label, role)

    # ---- adding --------------------------------------------------------------------
    def _browse(self, role: str) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            f"Add {role} images or videos",
            "",
            f"Images and videos ({IMAGE_PATTERNS} {VIDEO_PATTERNS});;"
            f"Images ({IMAGE_PATTERNS});;Videos ({VIDEO_PATTERNS});;All files (*)",
        )
        if files:
            self.handle_drop(files, role)

    def handle_drop(self, paths: list[str], role: str) -> None:
        """What a drop does once the role is known (also used by tests)."""
        files = files_in(paths)
        if files and self.case is not None:
            self.add_requested.emit(files, role)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and self.case is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        box = QMessageBox(self)
        box.setWindowTitle("Add to the case")
        box.setText(f"Add {len(paths)} item(s) as probe or as gallery images?")
        probe = box.addButton("Probe (questioned)", QMessageBox.ButtonRole.AcceptRole)
        gallery = box.addButton("Gallery (known)", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is probe:
            self.handle_drop(paths, "probe")
        elif box.clickedButton() is gallery:
            self.handle_drop(paths, "gallery")

    def shutdown(self) -> None:
        self._thumbs.shutdown()
        self._video_thumbs.shutdown()
        self._measurer.shutdown()
