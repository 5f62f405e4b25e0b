"""Exhibits of the open case: thumbnails, marks, hashes, faces; drop files to add."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.store import Case
from xfr_desktop.workers import TaskRunner

THUMBNAIL = 72
ROLE_TITLES = {"probe": "Questioned (probe)", "gallery": "Known (gallery)"}


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the numpy buffer may go away


def files_in(paths: list[str]) -> list[str]:
    """Dropped files, and the files inside dropped folders (not recursive)."""
    files = []
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.case: Case | None = None
        self.setAcceptDrops(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.tree.itemClicked.connect(self._on_clicked)
        self.add_probe = QPushButton("Add probe…")
        self.add_gallery = QPushButton("Add gallery…")
        self.add_probe.clicked.connect(lambda: self._browse("probe"))
        self.add_gallery.clicked.connect(lambda: self._browse("gallery"))
        hint = QLabel("Drop image files or folders here to add them.")
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

    # ---- content -------------------------------------------------------------------
    def set_case(self, case: Case | None) -> None:
        self.case = case
        self._pixmaps.clear()
        self.refresh()

    def refresh(self) -> None:
        self.tree.clear()
        if self.case is None:
            return
        faces_by_mark: dict[str, list] = {}
        for face in self.case.faces():
            faces_by_mark.setdefault(face.mark, []).append(face)
        missing = []
        for role, title in ROLE_TITLES.items():
            top = QTreeWidgetItem([title])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for exhibit in self.case.exhibits(role):
                faces = faces_by_mark.get(exhibit.mark, [])
                item = QTreeWidgetItem(
                    [
                        f"{exhibit.mark}  {exhibit.original_name}\n"
                        f"{exhibit.width}×{exhibit.height}, {len(faces)} face(s)"
                    ]
                )
                item.setData(0, Qt.ItemDataRole.UserRole, (exhibit.mark, role))
                item.setToolTip(
                    0,
                    f"{exhibit.mark}: {exhibit.original_name}\n"
                    f"SHA-256 {exhibit.sha256}\n{exhibit.size:,} bytes, "
                    f"{exhibit.format}\nadded {exhibit.intake_time} by "
                    f"{exhibit.intake_user}"
                    + (f"\nnote: {exhibit.note}" if exhibit.note else ""),
                )
                if exhibit.mark in self._pixmaps:
                    item.setIcon(0, QIcon(self._pixmaps[exhibit.mark]))
                else:
                    missing.append(exhibit.mark)
                top.addChild(item)
                for face in faces if len(faces) > 1 else []:
                    child = QTreeWidgetItem([f"face {face.label} ({face.source})"])
                    child.setData(0, Qt.ItemDataRole.UserRole, (face.label, role))
                    item.addChild(child)
                if not faces:
                    child = QTreeWidgetItem(["no face found: place landmarks"])
                    child.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    item.addChild(child)
            top.setExpanded(True)
        self.tree.expandAll()
        if missing:
            self._thumbs.start(
                workflow.evidence_thumbnails, self.case, missing, THUMBNAIL
            )

    def _on_thumbnails(self, thumbnails: dict[str, np.ndarray]) -> None:
        for mark, rgb in thumbnails.items():
            self._pixmaps[mark] = to_pixmap(rgb)
        self.refresh()

    def _on_clicked(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data:
            label, role = data
            self.face_selected.emit(label, role)

    # ---- adding --------------------------------------------------------------------
    def _browse(self, role: str) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            f"Add {role} images",
            "",
            "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp *.heic);;"
            "All files (*)",
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
