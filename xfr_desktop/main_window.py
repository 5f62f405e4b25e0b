"""The main window: app name and version, the active model and device.

This is the frame the examiner's workstation grows in (cases, comparisons and
explanations come in later issues).  The model is loaded in the background: the
window appears at once and the status bar says "loading" until it is ready.
"""

from __future__ import annotations

from typing import Any

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from core import APP_NAME, __version__
from core.models.base import DEFAULT_MODEL_ID, FaceModel, ModelRegistry, registry
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.workers import TaskRunner

WELCOME = f"""
<h2>{APP_NAME}</h2>
<p>An offline workstation for forensic face comparison. The face-recognition model
runs on this computer; nothing is sent anywhere.</p>
<p>This release provides the verified face model, face detection and alignment, and
the <code>xfr</code> command line (<code>xfr verify PROBE GALLERY</code>). Case files,
side-by-side comparison and explanation maps come in the next releases.</p>
<p>Model scores support, and never replace, the examiner's own comparison.</p>
"""


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"Device: CUDA ({torch.cuda.get_device_name(device)})"
    return "Device: CPU"


def _load_model(model_registry: ModelRegistry, model_id: str, device: str, **_: Any):
    """Runs in the worker thread (accepts and ignores progress/cancel)."""
    return model_registry.load(model_id, device)


class MainWindow(QMainWindow):
    model_ready = Signal(object)  # FaceModel

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        device: str = "auto",
        model_registry: ModelRegistry | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.resize(1100, 720)
        self.model: FaceModel | None = None
        self._registry = model_registry or registry()
        self.errors = ErrorReporter(self)
        self.model_loader = TaskRunner(self)

        welcome = QLabel(WELCOME)
        welcome.setTextFormat(Qt.TextFormat.RichText)
        welcome.setWordWrap(True)
        welcome.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        welcome.setMaximumWidth(720)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.addWidget(welcome)
        layout.addStretch(1)
        self.setCentralWidget(central)

        self.model_label = QLabel("Model: loading…")
        self.hash_label = QLabel("")
        self.device_label = QLabel("Device: …")
        for label in (self.model_label, self.hash_label, self.device_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)

        self._build_menus()
        self.model_loader.result.connect(self._on_model_loaded)
        self.model_loader.error.connect(self._on_model_error)
        self.load_model(model_id, device)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction(f"&About {APP_NAME}", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    # ---- model ------------------------------------------------------------------
    def load_model(self, model_id: str, device: str = "auto") -> None:
        self.model_label.setText(f"Model: loading {model_id}…")
        self.model_loader.start(
            _load_model, model_registry=self._registry, model_id=model_id, device=device
        )

    def _on_model_loaded(self, model: FaceModel) -> None:
        self.model = model
        self.model_label.setText(f"Model: {model.display_name} ({model.model_id})")
        self.hash_label.setText(f"weights SHA-256 {model.weights_sha256[:12]}…")
        self.hash_label.setToolTip(
            f"SHA-256 of the weights file:\n{model.weights_sha256}"
        )
        self.device_label.setText(device_label(model.device))
        self.model_ready.emit(model)

    def _on_model_error(self, error: BaseException, details: str) -> None:
        self.model_label.setText("Model: not loaded")
        self.device_label.setText("Device: –")
        self.errors.report(
            error, details, context="The face model could not be loaded."
        )

    # ---- about / quit -----------------------------------------------------------
    def about_text(self) -> str:
        lines = [f"<b>{APP_NAME}</b> {__version__}"]
        if self.model is not None:
            lines.append(
                f"Model: {self.model.display_name} ({self.model.model_id})<br>"
                f"Weights SHA-256: <code>{self.model.weights_sha256}</code>"
            )
        lines.append(
            "Default model: dlib's dlib_face_recognition_resnet_model_v1 "
            "(public domain), run with PyTorch. GUI: Qt for Python (LGPL)."
        )
        return "<br><br>".join(lines)

    def show_about(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information, f"About {APP_NAME}", "", parent=self
        )
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.open()

    def closeEvent(self, event) -> None:
        # Nothing may run after the window is gone: cancel and wait for workers.
        self.model_loader.shutdown()
        super().closeEvent(event)
