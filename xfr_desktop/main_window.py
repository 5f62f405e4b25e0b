"""The main window: app name and version, the active model and device.

This is the frame the examiner's workstation grows in (cases, comparisons and
explanations come in later issues).  The model is loaded in the background: the
window appears at once and the status bar says "loading" until the model is ready.
"""

from __future__ import annotations

import html

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from core import APP_NAME, __version__
from core.models.base import DEFAULT_MODEL_ID, FaceModel, ModelRegistry, registry
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.workers import TaskRunner

WELCOME_HTML = f"""
<h2>{APP_NAME}</h2>
<p>An offline workstation for forensic face examiners. It compares faces with a
face-recognition model that runs on this computer; no image leaves it.</p>
<p>So far this window loads the face model and shows which one is active, and on
which device, in the status bar below. Comparisons can already be run from the
command line: <code>xfr verify PROBE GALLERY</code>.</p>
<p>Case handling comes next: opening the images of a case, side-by-side
comparison, explanation maps and reports.</p>
<p>Model scores support the examiner's own comparison; they never replace it.</p>
"""

LICENCES_HTML = (
    "Default model: dlib's <i>dlib_face_recognition_resnet_model_v1</i> "
    "(public domain), run with PyTorch (BSD licence). "
    "GUI: Qt for Python / PySide6 (LGPL v3)."
)

HASH_PREFIX_CHARS = 12  # enough to tell weight files apart at a glance


def device_text(device: torch.device) -> str:
    """Status-bar text for the device a model runs on."""
    if device.type == "cuda":
        return f"Device: CUDA ({torch.cuda.get_device_name(device)})"
    return f"Device: {device.type.upper()}"


def _load_model(
    model_registry: ModelRegistry | None, model_id: str, device: str
) -> FaceModel:
    """Worker thread: build the registry if needed (imports, file reads) and load."""
    return (model_registry or registry()).load(model_id, device)


class MainWindow(QMainWindow):
    """The application's main window.

    ``model_registry`` defaults to the process-wide registry (built lazily in the
    loading worker, so that a broken model module still reaches the error path).
    """

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
        self._registry = model_registry
        self.errors = ErrorReporter(self)
        self.model_loader = TaskRunner(self)
        self.model_loader.result.connect(self._on_model_loaded)
        self.model_loader.error.connect(self._on_model_error)

        self.setCentralWidget(self._build_welcome())
        self._build_status_bar()
        self._build_menus()
        self.load_model(model_id, device)

    # ---- layout -------------------------------------------------------------------
    def _build_welcome(self) -> QWidget:
        welcome = QLabel(WELCOME_HTML)
        welcome.setObjectName("welcome")
        welcome.setTextFormat(Qt.TextFormat.RichText)
        welcome.setWordWrap(True)
        welcome.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        welcome.setMaximumWidth(720)  # long lines are hard to read
        welcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.addWidget(welcome)
        layout.addStretch(1)
        return panel

    def _build_status_bar(self) -> None:
        self.model_label = QLabel()
        self.hash_label = QLabel()
        self.device_label = QLabel()
        for label in (self.model_label, self.hash_label, self.device_label):
            label.setContentsMargins(8, 0, 8, 0)
            # Permanent widgets stay on the right; temporary messages cannot hide them.
            self.statusBar().addPermanentWidget(label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    # ---- model --------------------------------------------------------------------
    def load_model(self, model_id: str, device: str = "auto") -> None:
        """Load a model in the background; a load still running is superseded."""
        self.model = None  # until the new one is ready, no model is active
        self.model_label.setText("Model: loading…")
        self.model_label.setToolTip(f"Loading {model_id} on device '{device}'")
        self.hash_label.clear()
        self.hash_label.setToolTip("")
        self.hash_label.hide()  # an empty label would still take room
        self.device_label.setText("Device: …")
        self.model_loader.start(_load_model, self._registry, model_id, device)

    def _on_model_loaded(self, model: FaceModel) -> None:
        self.model = model
        self.model_label.setText(f"Model: {model.display_name} ({model.model_id})")
        self.model_label.setToolTip("")
        self.hash_label.setText(
            f"Weights SHA-256: {model.weights_sha256[:HASH_PREFIX_CHARS]}…"
        )
        self.hash_label.setToolTip(
            f"SHA-256 of the weights file:\n{model.weights_sha256}"
        )
        self.hash_label.show()
        self.device_label.setText(device_text(model.device))
        self.model_ready.emit(model)

    def _on_model_error(self, error: BaseException, details: str) -> None:
        # The status bar must never name a model the examiner did not get.
        self.model_label.setText("Model: not loaded")
        self.model_label.setToolTip(str(error))
        self.device_label.setText("Device: –")
        self.errors.report(
            error, details, context="The face model could not be loaded."
        )

    # ---- about / quit -------------------------------------------------------------
    def about_html(self) -> str:
        parts = [f"<b>{APP_NAME}</b> {html.escape(__version__)}"]
        if self.model is not None:
            parts.append(
                f"Model: {html.escape(self.model.display_name)} "
                f"(<code>{html.escape(self.model.model_id)}</code>)<br>"
                f"Weights SHA-256:<br><code>{self.model.weights_sha256}</code>"
            )
        else:
            parts.append("No model is loaded.")
        parts.append(LICENCES_HTML)
        return "<br><br>".join(parts)

    def show_about(self) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Information, f"About {APP_NAME}", "", parent=self
        )
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_html())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # non-blocking, like every dialog of the app
        return box

    def closeEvent(self, event: QCloseEvent) -> None:
        # Nothing may run after the window is gone: cancel and wait for workers.
        self.model_loader.shutdown()
        super().closeEvent(event)
