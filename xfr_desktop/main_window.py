"""The main window: start screen, then the case workspace.

Workspace: exhibits on the left; tabs for the examiner's own ACE-V examination
(first: with sequential unmasking it comes before any score), the comparison
(viewers, score, 1:N candidates, overlays, annotations, explanation jobs), all
methods at once, layer by layer, the examiner's conclusion and the audit trail.
A blind verification session is named in the title and a banner above the tabs.
The model loads in the background; the status bar names it, its weights hash and
the device.  Panels read from ``core`` through the ``CaseController``; no science
happens in a widget.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import shiboken6
import torch
from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QKeyCombination,
    QObject,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core import APP_NAME, __version__
from core.case import workflow
from core.case.examination import Examination
from core.case.workflow import LoadedPair
from core.errors import BadInputError
from core.explain.base import ExplanationResult
from core.models import FaceModel, ModelRegistry, load_model, registry
from core.report import identities
from core.report.api import Signer, generate_report, verify_report
from core.report.build import ReportRequest
from core.report.signing import WrongPasswordError
from xfr_desktop.case_controller import CaseController, ExplainJob
from xfr_desktop.dialogs.export_done_dialog import ExportDoneDialog
from xfr_desktop.dialogs.face_dialog import FaceDialog, replaced_results_question
from xfr_desktop.dialogs.gallery_search_dialog import (
    ACTION_TEXT,
    GallerySearchDialog,
    action_state,
)
from xfr_desktop.dialogs.identity_dialog import (
    ImportIdentityDialog,
    NewIdentityDialog,
    wrong_password_text,
)
from xfr_desktop.dialogs.manual_window import ManualWindow
from xfr_desktop.dialogs.new_case_dialog import NewCaseDialog
from xfr_desktop.dialogs.report_dialog import ReportChoice, ReportDialog
from xfr_desktop.dialogs.settings_dialog import SettingsDialog
from xfr_desktop.errors import ErrorReporter, describe
from xfr_desktop.masking import attach_masking
from xfr_desktop.panels.audit_view import AuditTrailView
from xfr_desktop.panels.channels_panel import ChannelsPanel
from xfr_desktop.panels.compare_panel import ComparePanel
from xfr_desktop.panels.conclusion_editor import ConclusionEditor
from xfr_desktop.panels.examination_panel import ExaminationPanel
from xfr_desktop.panels.exhibits_panel import ExhibitsPanel
from xfr_desktop.panels.explain_panel import ExplainPanel
from xfr_desktop.panels.maps_panels import LayersPanel, MethodGrid
from xfr_desktop.panels.processing_panel import ProcessingPanel
from xfr_desktop.panels.start_page import StartPage
from xfr_desktop.panels.superimpose_panel import SuperimposePanel
from xfr_desktop.panels.video_panel import VideoPanel
from xfr_desktop.settings import Settings, load_settings, save_settings
from xfr_desktop.theme import apply_theme
from xfr_desktop.widgets.annotation_list import AnnotationList
from xfr_desktop.widgets.undo_hint import UndoHint
from xfr_desktop.workers import TaskRunner

LICENCES_HTML = (
    "Default model: dlib's <i>dlib_face_recognition_resnet_model_v1</i> "
    "(public domain), run with PyTorch (BSD licence). "
    "GUI: Qt for Python / PySide6 (LGPL v3), pyqtgraph (MIT)."
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
    """Worker thread: build the registry if needed (imports, file reads) and load,
    with the one loader of CLI, GUI and training.

    The window's registry (the menu lists its ids) is the one loaded from.
    """
    models = model_registry if model_registry is not None else registry()
    return load_model(model_id, device=device, models=models)


# The answers to "work still running" when the window closes.
QUIT_WHEN_DONE = "Quit when they finish"
STOP_AND_QUIT = "Stop them and quit"
KEEP_WORKING = "Keep working"


CTRL_Y = QKeyCombination(Qt.KeyboardModifier.ControlModifier, Qt.Key.Key_Y)  # redo


def has_own_undo(widget: QObject) -> bool:
    """A text field the examiner types in (conclusion, notes, a name): Ctrl+Z
    undoes its typing.  A spin box's or combo box's text is not one of them."""
    if isinstance(widget, QLineEdit):
        holder = widget.parent()
        inside = isinstance(holder, (QAbstractSpinBox, QComboBox))
        return not widget.isReadOnly() and not inside
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    return False


class _CaseUndoKeys(QObject):
    """Lets Undo/Redo reach the case's undo stack from any widget of the window.

    Qt offers a shortcut first to the focused widget (ShortcutOverride); a spin
    box (or an editable combo box) accepts Ctrl+Z for its line edit, so the
    menu's action never fired.  Text fields (notes, conclusion) keep their own
    undo (``has_own_undo``)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and isinstance(watched, QWidget)
            and watched.window() is self._window
            and not has_own_undo(watched)
            and (
                event.matches(QKeySequence.StandardKey.Undo)
                or event.matches(QKeySequence.StandardKey.Redo)
                or event.keyCombination() == CTRL_Y
            )
        ):
            event.ignore()  # not the widget's: the window's shortcut fires
            return True
        return False


class MainWindow(QMainWindow):
    """The application's main window.

    ``model_registry`` defaults to the process-wide registry (built lazily in the
    loading worker, so that a broken model module still reaches the error path).
    ``settings`` defaults to the user's stored settings.
    """

    model_ready = Signal(object)  # FaceModel
    report_exported = Signal(object)  # core.report.api.ReportOutcome
    report_verified = Signal(object)  # core.report.api.ReportCheck

    def __init__(
        self,
        model_id: str | None = None,
        device: str | None = None,
        model_registry: ModelRegistry | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.resize(1400, 900)
        self.settings = settings if settings is not None else load_settings()
        self._idle_timer = QTimer(self)  # "quit when they finish": checks for idle
        self._idle_timer.setInterval(300)
        self._idle_timer.timeout.connect(self._quit_when_idle)
        self.model: FaceModel | None = None
        self._registry = model_registry
        self.errors = ErrorReporter(self)
        self.model_loader = TaskRunner(self)
        self.model_loader.result.connect(self._on_model_loaded)
        self.model_loader.error.connect(self._on_model_error)
        self.controller = CaseController(self.errors, self)
        self.controller.user = self.settings.effective_user()
        self._results_loader = TaskRunner(self)
        self._results_loader.result.connect(self._on_results)
        self._earlier_loader = TaskRunner(self)  # maps of the faces' earlier records
        self._earlier_loader.result.connect(
            lambda earlier: self.compare.set_earlier_results(earlier)
        )
        self._reporter = TaskRunner(self)
        self._reporter.progress.connect(
            lambda done, total, message: self.statusBar().showMessage(
                f"Report: {message} ({done}/{total})"
            )
        )
        self._reporter.result.connect(self._on_report)
        self._report_checker = TaskRunner(self)
        self._report_checker.result.connect(self._show_report_check)
        self._report_checker.error.connect(self._on_report_check_error)
        self._reporter.error.connect(self._on_report_error)
        self._verifier = TaskRunner(self)
        self._verifier.result.connect(
            lambda r: self.audit.show_verify_result(
                r.intact, list(r.problems), list(r.warnings)
            )
        )

        self.report_dialog: ReportDialog | None = None  # the last one opened
        self.identity_dialog: NewIdentityDialog | ImportIdentityDialog | None = None
        self.report_done_dialog: ExportDoneDialog | None = None  # the last export's
        # How "Open report" and "Show in folder" open a URL (tests replace it).
        self.open_url: Callable[[QUrl], Any] = QDesktopServices.openUrl
        # The last export's choices (its password dropped), kept to ask again when
        # the signing password turns out wrong; and the dialog a check is for.
        self._last_report_choice: ReportChoice | None = None
        self._check_for: ExportDoneDialog | None = None
        self._check_trust: list[str] = []  # the certificates that check trusts
        self._export_signer: Path | None = None  # the identity of the running export
        self.face_dialog: FaceDialog | None = None  # the last one opened
        self.gallery_search_dialog: GallerySearchDialog | None = None  # the last
        # File → Open for blind verification: the case being opened for it
        self._blind_opening = False
        self._build_pages()
        self._build_status_bar()
        self.manual_window: ManualWindow | None = None  # made when first opened
        self._build_menus()
        self._connect()
        self._restore_window_state()
        self.set_theme(self.settings.theme)
        self.load_model(
            model_id or self.settings.model_id, device or self.settings.device
        )

    # ---- layout -------------------------------------------------------------------
    def _build_pages(self) -> None:
        self.start_page = StartPage()
        self.start_page.set_recent(self.settings.recent_cases)
        self.exhibits = ExhibitsPanel()
        self.compare = ComparePanel()
        self.compare.set_colour_map(self.settings.colour_map)
        self.compare.opacity.setValue(round(self.settings.overlay_opacity * 100))
        self.compare.sync_check.setChecked(self.settings.sync_views)
        self.explain = ExplainPanel()
        self.annotation_list = AnnotationList()
        self.grid = MethodGrid()
        self.grid.set_colour_map(self.settings.colour_map)
        self.layers = LayersPanel(self.errors)
        self.superimpose = SuperimposePanel(self.errors, self.controller)
        self.channels = ChannelsPanel(
            self.errors, lambda: self.model, lambda: self.controller.case
        )
        self.conclusion = ConclusionEditor()
        self.audit = AuditTrailView()
        self.examination_panel = ExaminationPanel(self.controller)
        self.video_panel = VideoPanel(self.errors, self.controller)
        self.processing = ProcessingPanel(self.errors, self.controller)
        # Minimums that add up to less than a 1280 x 720 screen (exhibits 200 +
        # comparison ~650 + methods 260 + handles); no main view collapses away.
        self.exhibits.setMinimumWidth(200)
        self.explain.setMinimumWidth(260)
        compare_page = QSplitter()
        compare_page.addWidget(self.compare)
        # the methods and the annotations share the right column (tabs)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.explain, "Methods")
        self.side_tabs.addTab(self.annotation_list, "Annotations")
        compare_page.addWidget(self.side_tabs)
        compare_page.setStretchFactor(0, 4)
        compare_page.setStretchFactor(1, 1)
        compare_page.setChildrenCollapsible(False)
        compare_page.setSizes([900, 300])
        self.compare_page = compare_page
        self.tabs = QTabWidget()
        # first: with sequential unmasking the examiner's own work comes before
        # any of the model's results (and the tab bar still fits 1280 x 720)
        self.tabs.addTab(self.examination_panel, "Examination")
        self.tabs.addTab(compare_page, "Comparison")
        # shown only while the case holds a video (the tab bar fits 1280 x 720)
        self.tabs.addTab(self.video_panel, "Video")
        self.tabs.setTabVisible(self.tabs.indexOf(self.video_panel), False)
        self.tabs.addTab(self.grid, "All methods")
        self.tabs.addTab(self.layers, "Layer by layer")
        self.tabs.addTab(self.superimpose, "Superimpose")
        self.tabs.addTab(self.channels, "Channels")
        self.tabs.addTab(self.processing, "Processing")
        self.tabs.addTab(self.conclusion, "Conclusion")
        self.tabs.addTab(self.audit, "Audit trail")
        # the window still opens on the comparison (the examiner picks the pair
        # there); the Examination tab is one click away, first in the bar
        self.tabs.setCurrentWidget(compare_page)
        self.workspace = QSplitter()
        self.workspace.addWidget(self.exhibits)
        self.workspace.addWidget(self.tabs)
        self.workspace.setStretchFactor(1, 1)
        self.workspace.setChildrenCollapsible(False)
        self.workspace.setSizes([240, 1100])
        self.pages = QStackedWidget()
        self.pages.addWidget(self.start_page)
        self.pages.addWidget(self.workspace)
        # a blind verification says so above everything, all the time it lasts
        self.blind_banner = QLabel()
        self.blind_banner.setWordWrap(True)
        self.blind_banner.setStyleSheet(
            "QLabel { background: #fff3cd; color: #5c4400; padding: 4px 8px; "
            "font-weight: bold; }"
        )
        self.blind_banner.hide()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.blind_banner)
        central_layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        self.case_label = QLabel("No case open")
        self.model_label = QLabel()
        self.hash_label = QLabel()
        self.device_label = QLabel()
        for label in (
            self.case_label,
            self.model_label,
            self.hash_label,
            self.device_label,
        ):
            label.setContentsMargins(8, 0, 8, 0)
            # Permanent widgets stay on the right; temporary messages cannot hide them.
            self.statusBar().addPermanentWidget(label)

    def _action(
        self, menu, text: str, slot, shortcut=None, checkable: bool = False
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        keys = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New case…", self.new_case, keys.New)
        self.open_action = self._action(
            file_menu, "&Open case…", lambda: self.open_case(""), keys.Open
        )
        self.demo_action = self._action(file_menu, "Open &demo case", self.open_demo)
        self.video_demo_action = self._action(
            file_menu, "Open &video demo case", self.open_video_demo
        )
        self.blind_action = self._action(
            file_menu, "Open for &blind verification…", self.open_for_verification
        )
        self.close_case_action = self._action(
            file_menu, "&Close case", self.close_case, keys.Close
        )
        file_menu.addSeparator()
        # 1:N against a reference gallery outside the case (issue 22, item 4)
        self.gallery_search_action = self._action(
            file_menu, ACTION_TEXT, self.search_gallery
        )
        file_menu.setToolTipsVisible(True)  # why it is disabled (read-only)
        self.report_action = self._action(
            file_menu, "&Export report…", self.ask_export_report, keys.Print
        )
        self.verify_report_action = self._action(
            file_menu, "&Verify a report…", self.ask_verify_report
        )
        file_menu.addSeparator()
        self.settings_action = self._action(
            file_menu, "&Settings…", self.edit_settings, keys.Preferences
        )
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", self.close, keys.Quit)

        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.controller.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(keys.Undo)
        self.redo_action = self.controller.undo_stack.createRedoAction(self, "&Redo")
        redo_keys = QKeySequence.keyBindings(keys.Redo)
        for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):  # both habits, on every platform
            if QKeySequence(extra) not in redo_keys:
                redo_keys.append(QKeySequence(extra))
        self.redo_action.setShortcuts(redo_keys)
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        # Spin boxes and editable combo boxes take Ctrl+Z for their own text, so
        # the case's undo did nothing while one had focus: everywhere but in text
        # fields the examiner types in, the window's undo and redo win.
        self._case_undo_keys = _CaseUndoKeys(self)
        QApplication.instance().installEventFilter(self._case_undo_keys)
        # a delete is never silent: what went, with Undo, for a few seconds
        self.undo_hint = UndoHint(self.controller.undo_stack, self)
        self.statusBar().insertPermanentWidget(0, self.undo_hint)
        self.controller.annotation_deleted.connect(self.undo_hint.announce)

        view_menu = self.menuBar().addMenu("&View")
        self._action(
            view_menu, "Zoom &in", lambda: self.compare.zoom_views(1), keys.ZoomIn
        )
        self._action(
            view_menu, "Zoom &out", lambda: self.compare.zoom_views(-1), keys.ZoomOut
        )
        self._action(
            view_menu,
            "&Fit whole images",
            self.compare.fit_views,
            QKeySequence("Ctrl+0"),
        )
        self._action(
            view_menu,
            "Zoom to the &faces",
            self.compare.zoom_to_faces,
            QKeySequence("Ctrl+F"),
        )
        self.overlay_action = self._action(
            view_menu,
            "Show &map overlay",
            self.compare.toggle_overlay,
            QKeySequence("Ctrl+M"),
        )
        self._action(
            view_menu,
            "&Next candidate",
            lambda: self.compare.next_candidate(1),
            QKeySequence("Ctrl+Down"),
        )
        self._action(
            view_menu,
            "&Previous candidate",
            lambda: self.compare.next_candidate(-1),
            QKeySequence("Ctrl+Up"),
        )
        self.dark_action = self._action(
            view_menu,
            "&Dark theme",
            lambda on: self.set_theme("dark" if on else "light"),
            checkable=True,
        )
        self.dark_action.setChecked(self.settings.theme == "dark")

        signing_menu = self.menuBar().addMenu("&Signing")
        self.new_identity_action = self._action(
            signing_menu, "&New signing identity…", self.new_identity
        )
        self.import_identity_action = self._action(
            signing_menu, "&Import signing identity…", self.import_identity
        )

        help_menu = self.menuBar().addMenu("&Help")
        self.manual_action = self._action(
            help_menu, "&Manual", self.show_manual, QKeySequence("F1")
        )
        self.about_action = self._action(
            help_menu, f"&About {APP_NAME}", self.show_about
        )
        self._update_actions()

    def _connect(self) -> None:
        c = self.controller
        attach_masking(self)  # what the panels may show (sequential unmasking)
        self.start_page.new_requested.connect(self.new_case)
        self.start_page.open_requested.connect(self.open_case)
        self.start_page.demo_requested.connect(self.open_demo)
        c.case_opened.connect(self._on_case_opened)
        c.open_read_only_offered.connect(self._offer_read_only)
        c.case_closed.connect(self._on_case_closed)
        c.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.exhibits_changed.connect(self.exhibits.refresh)
        c.faces_changed.connect(self._on_faces_changed)
        c.comparisons_changed.connect(self.compare.refresh_candidates)
        c.annotations_changed.connect(self.compare.refresh_annotations)
        c.conclusions_changed.connect(self._refresh_conclusions)
        c.audit_changed.connect(self._refresh_audit)
        c.jobs_changed.connect(lambda: self.explain.set_jobs(c.jobs))
        c.explanations_changed.connect(self._on_explained)
        self.exhibits.add_requested.connect(c.add_files)
        self.exhibits.face_selected.connect(self.compare.select)
        self.exhibits.video_selected.connect(self.show_video)
        c.exhibits_changed.connect(self._update_video_tab)
        c.exhibits_changed.connect(self.processing.refresh_case)
        c.case_closed.connect(self.processing.refresh_case)
        # the processing tab follows the exhibit picked in the list
        self.exhibits.face_selected.connect(
            lambda label, _role: self.processing.set_source(label)
        )
        c.case_closed.connect(lambda: self.video_panel.set_video(None))
        c.case_closed.connect(self._update_video_tab)
        self.exhibits.place_requested.connect(self.place_face)
        self.exhibits.take_frame_requested.connect(self.controller.take_still_frame)
        self.exhibits.correct_requested.connect(self.correct_face)
        self.exhibits.reject_requested.connect(self._reject_face)
        self.exhibits.reset_requested.connect(self._reset_face)
        self.exhibits.restore_requested.connect(c.restore_face)
        c.case_closed.connect(self._close_face_dialog)
        self.compare.pair_loaded.connect(self._on_pair_loaded)
        self.compare.gallery_search.clicked.connect(self.search_gallery)
        self.compare.annotation_requested.connect(lambda f: c.add_annotation(**f))
        self.compare.annotation_moved.connect(c.move_annotation)
        self.compare.annotation_delete_requested.connect(c.delete_annotation)
        self.compare.landmarks_corrected.connect(self._on_landmarks_corrected)
        self.compare.checks_changed.connect(self._on_checks_changed)
        self.compare.check_failed.connect(
            lambda e, d: self.errors.report(
                e, d, context="The faithfulness check failed."
            )
        )
        self.grid.explanation_chosen.connect(
            lambda i: (
                self.compare.select_explanation(i),
                self.tabs.setCurrentWidget(self.compare_page),
            )
        )
        self.explain.run_requested.connect(self._run_methods)
        self.explain.cancel_requested.connect(
            lambda job: c.cancel_all_jobs() if job is None else c.cancel_job(job)
        )
        self.conclusion.save_requested.connect(self._save_conclusion)
        self.audit.verify_requested.connect(self.verify_case)
        self._connect_annotation_list()
        self._connect_examination()

    def show_video(self, mark: str) -> None:
        """The video view on video ``mark`` (the examiner clicked it)."""
        self._update_video_tab()
        if self.video_panel.video is None or self.video_panel.video.mark != mark:
            self.video_panel.set_video(mark)
        self.tabs.setCurrentWidget(self.video_panel)

    def _update_video_tab(self) -> None:
        case = self.controller.case
        has_videos = case is not None and bool(case.videos.videos())
        self.tabs.setTabVisible(self.tabs.indexOf(self.video_panel), has_videos)
        self.video_panel.refresh_case()

    def _connect_examination(self) -> None:
        c, panel = self.controller, self.examination_panel
        for signal in (
            c.examination_changed,
            c.annotations_changed,  # the worksheet links to annotations
            c.exhibits_changed,
            c.faces_changed,
        ):
            signal.connect(panel.refresh)
        c.explanations_changed.connect(lambda _job: panel.refresh())
        c.case_opened.connect(lambda _case: panel.refresh())
        c.case_closed.connect(lambda: panel.set_pair("", "", None))

    # ---- cases --------------------------------------------------------------------
    def new_case(self) -> None:
        if self.keeps_unsaved_examination():
            return
        dialog = NewCaseDialog(self.settings.effective_user(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            folder, number, examiner, title, agency = dialog.values()
            self._end_blind_session_if_idle()
            self.controller.new_case(
                folder,
                number,
                examiner,
                title,
                agency,
                sequential_unmasking=dialog.unmasking(),
            )

    def open_case(self, path: str = "") -> None:
        if self.keeps_unsaved_examination():
            return
        if not path:
            path = QFileDialog.getExistingDirectory(self, "Open a case folder")
        if path:
            self._end_blind_session_if_idle()
            self.controller.open_case(path)

    def open_demo(self) -> None:
        """The one demo case in the user's data folder: reused while it verifies,
        made when missing (or beside one that does not verify, saying so)."""
        if self.keeps_unsaved_examination():
            return
        self._end_blind_session_if_idle()
        self.controller.open_demo()

    def open_video_demo(self) -> None:
        """The video demo case: a synthetic CCTV clip (public-domain portraits on
        known paths), tracked, its best frames compared with the portraits."""
        if self.keeps_unsaved_examination():
            return
        self._end_blind_session_if_idle()
        self.controller.open_demo(cctv=True)

    # ---- blind verification ---------------------------------------------------------
    def open_for_verification(self) -> None:
        """File → Open for blind verification…: the case folder, then the
        verifier's name."""
        asked = self.ask_blind_verification()
        if asked is not None:
            self.start_blind_verification(*asked)

    def ask_blind_verification(self) -> tuple[str, str] | None:
        """The case folder and the verifier's name (None: cancelled); tests
        answer it instead."""
        path = QFileDialog.getExistingDirectory(
            self, "Open a case for blind verification"
        )
        if not path:
            return None
        name, ok = QInputDialog.getText(
            self,
            "Blind verification",
            "Your name, as the verifier (a second examiner: not the one who "
            "recorded the first examination):",
        )
        return (path, name) if ok else None

    def start_blind_verification(self, path: str, verifier: str) -> None:
        """Open ``path`` as ``verifier`` in a blind session: the first
        examiner's records, annotations and conclusions are hidden."""
        verifier = verifier.strip()
        if not verifier:
            self.statusBar().showMessage(
                f"Not opened: a blind verification of {path} needs the verifier's "
                "name; choose File → Open for blind verification… again.",
                10000,
            )
            return
        if self.keeps_unsaved_examination():
            return
        self.controller.close_case()  # the session is this case's only
        self.controller.user = verifier
        self.controller.blind = True
        self._blind_opening = True
        self.controller.open_case(path)

    def _begin_blind_session(self) -> bool:
        """The case just opened for a blind verification: record that it began
        (core refuses the first examiner, or a read-only case)."""
        self._blind_opening = False
        case = self.controller.case
        if case is not None and case.read_only:
            self.errors.warn(
                "Not opened for blind verification",
                f"{case.folder} could only be opened read-only, and a blind "
                "session is recorded in the case.",
                "Close it where it is open (or copy it to a writable disk) and "
                "choose File → Open for blind verification… again.",
            )
            QTimer.singleShot(0, self.controller.close_case)
            return False

        def start(examination: Examination) -> bool:
            examination.start_blind_session()
            return True

        started = self.controller.change_examination(start)
        if not started:
            # refused (one line already shown): not a blind session after all
            QTimer.singleShot(0, self.controller.close_case)
            return False
        return True

    def _end_blind_session(self) -> None:
        """Closing the case ends the blind session: the window's own user again."""
        self._blind_opening = False
        if self.controller.blind:
            self.controller.blind = False
            self.controller.user = self.settings.effective_user()
        self.blind_banner.hide()

    def _end_blind_session_if_idle(self) -> None:
        """An ordinary open after a blind open that failed is not blind."""
        if self.controller.case is None:
            self._end_blind_session()

    def blind_text(self) -> str:
        return (
            f"Blind verification by {self.controller.user}: the first examiner's "
            "records are hidden"
        )

    def close_case(self) -> None:
        if self.keeps_unsaved_examination():
            return
        self.controller.close_case()

    def keeps_unsaved_examination(self) -> bool:
        """True when the examiner chose to keep working on unrecorded ACE-V
        edits (asked only when there are some)."""
        unsaved = self.examination_panel.unsaved() if self.ask_before_closing else []
        return bool(unsaved) and not self.ask_discard_unsaved(unsaved)

    def ask_discard_unsaved(self, unsaved: Sequence[str]) -> bool:
        """Whether to close although ``unsaved`` edits are not recorded (tests
        answer it instead)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Examination not recorded")
        shown = "".join(f"<li>{html.escape(item)}</li>" for item in unsaved)
        box.setText(
            "These are typed in the Examination tab but not recorded in the case:"
            f"<ul>{shown}</ul>Closing the case loses them. Record them first with "
            "their Record / Save buttons, or close without them."
        )
        keep = box.addButton("Keep working", QMessageBox.ButtonRole.RejectRole)
        box.addButton("Close without recording", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is not keep

    def search_gallery(self) -> GallerySearchDialog | None:
        """The reference-gallery search dialog, on the comparison's probe."""
        if not action_state(self.controller.case)[0]:
            return None
        earlier = self.gallery_search_dialog
        if earlier is not None and not earlier.busy():
            earlier.deleteLater()  # a closed one still running ends on its own
        dialog = GallerySearchDialog(
            self.controller, self.compare.probe_combo.currentText(), self
        )
        self.gallery_search_dialog = dialog
        dialog.open()  # window-modal: the case cannot close under it
        return dialog

    def verify_case(self) -> None:
        if self.controller.case is not None:
            self._verifier.start(self.controller.case.verify)

    # ---- signing identities -------------------------------------------------------
    def new_identity(self, *, over: QWidget | None = None) -> NewIdentityDialog:
        """Signing → New signing identity… (the examiner's name filled in);
        ``over``: the dialog it was asked from (the report dialog's New…)."""
        dialog = NewIdentityDialog(
            self.settings.effective_user(), self.errors, over or self
        )
        self._open_identity_dialog(dialog)
        return dialog

    def import_identity(self, *, over: QWidget | None = None) -> ImportIdentityDialog:
        """Signing → Import signing identity…."""
        dialog = ImportIdentityDialog("", self.errors, over or self)
        self._open_identity_dialog(dialog)
        return dialog

    def _open_identity_dialog(
        self, dialog: NewIdentityDialog | ImportIdentityDialog
    ) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.identity_ready.connect(self._on_identity_ready)
        self.identity_dialog = dialog
        dialog.open()

    def _on_identity_ready(self, identity: identities.StoredIdentity) -> None:
        """A new identity is offered (and chosen) in an open report dialog."""
        self.statusBar().showMessage(
            f"Signing identity of {identity.name} kept in {identity.p12}", 15000
        )
        dialog = self.report_dialog
        if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
            dialog.set_identities(
                identities.known_identities(), select=str(identity.p12)
            )

    # ---- reports ------------------------------------------------------------------
    def ask_export_report(
        self, initial: ReportChoice | None = None, problem: str = ""
    ) -> None:
        """Where to write it, who signs it and which comparisons go in (one dialog).

        ``initial`` and ``problem``: asked again after a wrong signing password,
        with the earlier choices kept and the red line saying why."""
        case = self.controller.case
        if case is None:
            return
        if self.controller.blind:
            # the report prints the first examiner's work: not in a blind session
            self.statusBar().showMessage(
                "No report in a blind verification: it would show the first "
                "examiner's records. Close the case and open it normally to "
                "export the report.",
                10000,
            )
            return
        default = case.folder.parent / f"{case.info().case_number}-report.pdf"
        dialog = ReportDialog(
            case,
            self.controller.viewed_comparisons,
            str(default),
            self,
            errors=self.errors,
            initial=initial,
            problem=problem,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._export_chosen(dialog.choice()))
        dialog.new_identity_requested.connect(lambda: self.new_identity(over=dialog))
        dialog.import_identity_requested.connect(
            lambda: self.import_identity(over=dialog)
        )
        self.report_dialog = dialog
        dialog.open()

    def _export_chosen(self, choice: ReportChoice) -> None:
        signer = (
            Signer(Path(choice.identity), choice.password) if choice.identity else None
        )
        self.export_report(choice.path, signer, comparison_ids=choice.comparison_ids)
        self._last_report_choice = replace(choice, password="")

    def export_report(
        self, path: str, signer=None, countersigner=None, *, comparison_ids=None
    ) -> None:
        """Write the report in the background (``comparison_ids``: the choice)."""
        if self.controller.case is None:
            return
        request = None
        if comparison_ids is not None:
            request = ReportRequest(comparison_ids=tuple(comparison_ids))
        self.statusBar().showMessage("Writing the report…")
        self._last_report_choice = None  # set again by _export_chosen for its own
        self._export_signer = None if signer is None else Path(signer.p12)
        self._reporter.start(
            generate_report,
            self.controller.case,
            path,
            request,
            sign=signer,
            countersign=countersigner,
            model=self.model,
        )

    def _on_report(self, outcome) -> None:
        self._refresh_audit()
        signed = ", ".join(outcome.signed_by) or "not signed"
        self.statusBar().showMessage(
            f"Report {outcome.report_id} written to {outcome.path} ({signed})", 15000
        )
        # A dialog that stays, not only the status line: path, hash, what next.
        done = ExportDoneDialog(outcome, lambda url: self.open_url(url), self)
        done.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        trust = self._signer_certificates(self._export_signer)
        done.verify_requested.connect(lambda path: self._verify_for(done, path, trust))
        self.report_done_dialog = done
        done.open()
        self.report_exported.emit(outcome)

    @staticmethod
    def _signer_certificates(identity: Path | None) -> list[str]:
        """The public certificate kept beside the signer's identity file, to trust
        when verifying the report just made (none when it is not there)."""
        if identity is None:
            return []
        pem = identity.with_suffix(".pem")
        return [str(pem)] if pem.is_file() else []

    def _verify_for(
        self, dialog: ExportDoneDialog, path: Path, certificates: Sequence[str]
    ) -> None:
        self._check_for = dialog
        self._check_trust = list(certificates)
        self.verify_report_file(str(path), certificates)

    def _on_report_error(self, error: BaseException, details: str) -> None:
        choice = self._last_report_choice
        if isinstance(error, WrongPasswordError) and choice is not None:
            # Ask again with every other choice kept, not a failed export.
            self.statusBar().clearMessage()
            name = Path(choice.identity).name
            self.ask_export_report(choice, wrong_password_text(name))
            return
        self.errors.report(error, details, context="The report failed.")

    def ask_verify_report(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Verify a report", "", "PDF (*.pdf)"
        )
        if not path:
            return
        certificates, _ = QFileDialog.getOpenFileNames(
            self,
            "Certificates you trust (the signers'; Cancel: none)",
            "",
            "Certificates (*.pem *.cer *.crt *.der)",
        )
        self._check_for = None
        self.verify_report_file(path, certificates)

    def verify_report_file(self, path: str, certificates=()) -> None:
        # The certificates are read in the worker: a bad one is a warning naming it.
        trust = [Path(c) for c in certificates]
        self._report_checker.start(
            verify_report, path, trust=trust, case=self.controller.case
        )

    def _check_target(self) -> ExportDoneDialog | None:
        """The completion dialog whose "Verify now" asked, if still open."""
        target, self._check_for = self._check_for, None
        return target if target is not None and shiboken6.isValid(target) else None

    def _on_report_check_error(self, error: BaseException, details: str) -> None:
        target = self._check_target()
        if target is not None:
            target.verify_failed(describe(error)[1])
        self.errors.report(error, details, context="Could not check the report.")

    def _show_report_check(self, check) -> None:
        target = self._check_target()
        if target is not None:  # "Verify now": shown in the completion dialog
            untrusted = check.signatures and not self._check_trust
            target.show_check(
                check,
                "No certificate of the signer was found beside the identity file, "
                "so the signature was checked but not who made it: use File → "
                "Verify a report… with the signer's certificate."
                if untrusted
                else "",
            )
            self.report_verified.emit(check)
            return
        lines = [f"Report {check.report_id or '(no XFR manifest)'}"]
        lines += [f"• {line}" for line in check.findings()]
        box = QMessageBox(
            QMessageBox.Icon.Information if check.ok else QMessageBox.Icon.Warning,
            "Report verification",
            ("All checks hold." if check.ok else "Not all checks hold.")
            + "\n\n"
            + "\n".join(lines),
            parent=self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.report_verified.emit(check)

    def _offer_read_only(self, path: str, reason: str) -> None:
        answer = QMessageBox.question(
            self,
            "Open read-only?",
            f"{reason}\n\nOpen the case read-only? You can look at everything and "
            "verify it, but nothing can be added or changed.",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Open,
        )
        if answer == QMessageBox.StandardButton.Open:
            self.controller.open_case(path, read_only=True)

    def _on_case_opened(self, case) -> None:
        info = case.info()
        self.settings.add_recent(case.folder)
        save_settings(self.settings)
        self.start_page.set_recent(self.settings.recent_cases)
        self.case_label.setText(f"Case {info.case_number}")
        self.case_label.setToolTip(f"{info.title}\n{case.folder}")
        suffix = " (read-only)" if case.read_only else ""
        blind = self._begin_blind_session() if self._blind_opening else False
        self.blind_banner.setText(self.blind_text() if blind else "")
        self.blind_banner.setVisible(blind)
        self.case_label.setText(
            f"Case {info.case_number}{suffix}"
            + (" (blind verification)" if blind else "")
        )
        title = f"{info.case_number}{suffix}"
        if blind:
            title += f" — {self.blind_text()}"
        self.setWindowTitle(f"{title} — {APP_NAME} {__version__}")
        self.conclusion.set_read_only(case.read_only)
        self.exhibits.set_case(case)
        self.video_panel.set_video(None)
        self._update_video_tab()
        self.processing.refresh_case()
        self.compare.set_case(case, self.model)
        self._refresh_conclusions()
        self._refresh_audit()
        self.pages.setCurrentWidget(self.workspace)
        self._update_actions()
        self._select_first_pair()
        if case.examination().settings().sequential_unmasking:
            self.tabs.setCurrentWidget(self.examination_panel)  # ACE-V first
        if not case.comparisons() and not case.read_only:
            self.controller.rank()

    def _on_case_closed(self) -> None:
        self._end_blind_session()
        self.exhibits.set_case(None)
        self.compare.set_case(None, self.model)
        self.layers.set_pair(None, self.model)
        self.superimpose.set_pair(None, "", "")
        self.grid.set_results({}, None)
        for panel in (self.grid, self.layers, self.superimpose):
            panel.processed_note.show_text("")
        self.case_label.setText("No case open")
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.pages.setCurrentWidget(self.start_page)
        self._update_actions()

    def _update_actions(self) -> None:
        case = self.controller.case
        has_case = case is not None
        writable = has_case and not case.read_only
        self.close_case_action.setEnabled(has_case)
        # a report is audited in the case: it needs a case open for writing
        # no report in a blind session: it prints the first examiner's work
        self.report_action.setEnabled(writable and not self.controller.blind)
        self.report_action.setToolTip(
            "No report in a blind verification: close the case and open it "
            "normally to export the report."
            if self.controller.blind
            else ""
        )
        searchable, why = action_state(case)
        for searching in (self.gallery_search_action, self.compare.gallery_search):
            searching.setEnabled(searchable)
            searching.setToolTip(
                why
                or "Search a case face against a reference "
                "gallery (1:N); candidates are investigative leads"
            )
        for button in (
            self.exhibits.add_probe,
            self.exhibits.add_gallery,
            self.explain.run_button,
        ):
            button.setEnabled(writable or not has_case)
            button.setToolTip(
                "" if writable or not has_case else "The case is open read-only."
            )

    def _select_first_pair(self) -> None:
        case = self.controller.case
        if case is None:
            return
        faces = case.faces()
        probes = [f.label for f in faces if f.mark.startswith("Q")]
        gallery = [f.label for f in faces if f.mark.startswith("K")]
        if probes and gallery:
            # the first probe's best candidate by the model's decision score (the
            # table's order), not the best cosine of any probe
            rows = (
                workflow.candidate_rows(case, probes[0], self.model)
                if self.model is not None
                else []
            )
            examination = self.controller.examination()
            if examination is not None and examination.any_masked(probes[0]):
                rows = []  # the best candidate would give the hidden rank away
            first = rows[0].gallery_label if rows else gallery[0]
            self.compare.gallery_combo.setCurrentText(first)
            self.compare.select(probes[0], "probe")

    def _on_faces_changed(self) -> None:
        self.exhibits.refresh()
        self.compare.refresh_faces()
        case, loaded = self.controller.case, self.compare.loaded
        if case is None:
            return
        current = {face.label: face.id for face in case.faces()}
        if loaded is None or any(f.label not in current for f in loaded.faces):
            self._select_first_pair()  # a shown face was rejected (or none shown)
        elif any(current[f.label] != f.id for f in loaded.faces):
            self.compare.reload()  # a shown face changed: its chip, its scores

    def _on_landmarks_corrected(self, label: str, points) -> None:
        stored = self.confirm_face_change(label, "move") and (
            self.controller.correct_landmarks(label, points)
        )
        if not stored:
            self.compare.reload()  # the points go back to the stored face

    # ---- faces under the examiner's control --------------------------------------
    def confirm_face_change(self, label: str, change: str) -> bool:
        """Ask before a change of ``label`` leaves explained comparisons behind
        (``change``: a ``face_dialog.FACE_CHANGES`` key); True: go ahead."""
        case = self.controller.case
        if case is None:
            return False
        question = replaced_results_question(case, label, change)
        return question is None or self._ask_face_change(question)

    def _ask_face_change(self, question: str) -> bool:
        """The question itself (tests answer it instead)."""
        answer = QMessageBox.question(
            self,
            "Replace explained results?",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def place_face(self, mark: str) -> FaceDialog | None:
        """The face dialog for a new face of exhibit ``mark`` (next free label)."""
        case = self.controller.case
        if case is None or case.read_only:
            return None
        return self._open_face_dialog(case.next_face_label(mark), None)

    def correct_face(self, label: str) -> FaceDialog | None:
        """The face dialog on face ``label``, its points ready to be moved."""
        case = self.controller.case
        if case is None or case.read_only:
            return None
        try:
            current = case.face(label)
        except BadInputError as error:  # rejected meanwhile: one line
            self.errors.report(error, context=f"Could not correct face {label}.")
            return None
        return self._open_face_dialog(label, current)

    def _open_face_dialog(self, label: str, current) -> FaceDialog:
        assert self.controller.case is not None
        if self.face_dialog is not None:
            self.face_dialog.shutdown()
            self.face_dialog.deleteLater()
        dialog = FaceDialog(self.controller.case, label, current, self)
        dialog.accepted.connect(lambda: self._on_face_placed(dialog))
        self.face_dialog = dialog
        dialog.open()
        return dialog

    def _on_face_placed(self, dialog: FaceDialog) -> None:
        face = dialog.face()
        if face is None or self.controller.case is None:
            return
        if dialog.current is None or self.confirm_face_change(dialog.label, "correct"):
            self.controller.place_face(dialog.label, face)

    def _close_face_dialog(self) -> None:
        """A face dialog belongs to the case it was opened on."""
        if self.face_dialog is not None:
            self.face_dialog.reject()

    def _reject_face(self, label: str, reason: str) -> None:
        if self.confirm_face_change(label, "reject"):
            self.controller.reject_face(label, reason)

    def _reset_face(self, label: str) -> None:
        if self.confirm_face_change(label, "reset"):
            self.controller.reset_face(label)

    def _on_pair_loaded(self, loaded: LoadedPair) -> None:
        self.controller.viewed_comparisons.add(loaded.comparison.id)
        self.examination_panel.set_pair(
            loaded.probe_label, loaded.gallery_label, loaded.comparison.id
        )
        self.superimpose.set_pair(
            self.controller.case, loaded.probe_label, loaded.gallery_label
        )
        self.layers.set_pair(loaded.pair, self.model)
        # every view of the pair says when a face is on a processed exhibit
        processed = self.compare.derived_note.text()
        for panel in (self.grid, self.layers, self.superimpose):
            panel.processed_note.show_text(processed)
        self.explain.setEnabled(True)
        self._results_loader.start(
            workflow.load_results, self.controller.case, loaded.comparison.id
        )
        self._earlier_loader.start(
            workflow.load_earlier_results,
            self.controller.case,
            loaded.probe_label,
            loaded.gallery_label,
        )

    def _on_results(self, results: dict[int, ExplanationResult]) -> None:
        self.compare.set_explanations(results)
        loaded = self.compare.loaded
        chips = None if loaded is None else tuple(v.chip for v in loaded.pair.sides)
        self.grid.set_results(results, chips)  # type: ignore[arg-type]

    def _on_checks_changed(self, checks: dict) -> None:
        self.grid.set_checks(checks)
        self._refresh_audit()  # a new check is an audit entry

    def _run_methods(self, methods: dict, seed: int) -> None:
        loaded = self.compare.loaded
        if loaded is None:
            self.statusBar().showMessage(
                "Choose a probe and a gallery face first", 5000
            )
            return
        self.controller.queue_explanations(
            loaded.probe_label, loaded.gallery_label, methods, seed
        )

    def _on_explained(self, job: ExplainJob) -> None:
        loaded = self.compare.loaded
        if loaded is None or (job.probe, job.gallery) != (
            loaded.probe_label,
            loaded.gallery_label,
        ):
            return
        results = dict(self.compare.results)
        results[job.explanation_id] = job.result.result
        self._on_results(results)
        self.compare.show_explanation(job.explanation_id)

    def _refresh_conclusions(self) -> None:
        case = self.controller.case
        self.conclusion.set_revisions([] if case is None else case.conclusions())

    def _refresh_audit(self) -> None:
        case = self.controller.case
        self.audit.set_entries([] if case is None else case.audit_log())

    def _save_conclusion(self, text: str) -> None:
        self.controller.add_conclusion(text)

    # ---- the annotation list ------------------------------------------------------
    def _connect_annotation_list(self) -> None:
        c, listed = self.controller, self.annotation_list
        self._annotation_to_show: tuple[str, int] | None = None
        c.annotations_changed.connect(self._refresh_annotation_list)
        c.case_opened.connect(lambda case: listed.set_read_only(case.read_only))
        c.case_opened.connect(lambda _case: self._refresh_annotation_list())
        c.case_closed.connect(self._refresh_annotation_list)
        c.exhibits_changed.connect(self._refresh_annotation_list)
        listed.edit_requested.connect(
            lambda annotation_id, changes: c.edit_annotation(annotation_id, **changes)
        )
        listed.delete_requested.connect(c.delete_annotation)
        listed.annotation_chosen.connect(self.show_annotation)
        self.compare.pair_loaded.connect(self._on_pair_for_annotations)
        for viewer in self.compare.viewers:
            viewer.annotation_selected.connect(listed.select_annotation)

    def _refresh_annotation_list(self) -> None:
        case = self.controller.case
        self.annotation_list.set_rows(
            [] if case is None else workflow.annotation_rows(case)
        )
        if case is None:
            self.annotation_list.set_pair((), None)

    def _on_pair_for_annotations(self, loaded: LoadedPair) -> None:
        self.annotation_list.set_pair(
            tuple(face.mark for face in loaded.faces), loaded.comparison.id
        )
        wanted, self._annotation_to_show = self._annotation_to_show, None
        if wanted is not None:
            self.show_annotation(*wanted)

    def show_annotation(self, mark: str, annotation_id: int) -> None:
        """Show an annotation chosen in the list: selected in its viewer, after
        opening a pair with its exhibit when the pair shown does not have it."""
        case, loaded = self.controller.case, self.compare.loaded
        if case is None or not mark:
            return  # on an explanation: the list names it, no viewer draws it
        if loaded is not None:
            for viewer, face in zip(self.compare.viewers, loaded.faces, strict=True):
                if face.mark == mark:
                    viewer.select_annotation(annotation_id)
                    return
        faces = case.faces(mark)
        if not faces:
            self.statusBar().showMessage(
                f"{mark} has no face to compare, so its annotations are only "
                "listed; add a face to it to see them in the comparison.",
                8000,
            )
            return
        self._annotation_to_show = (mark, annotation_id)
        self.compare.select(faces[0].label, case.exhibit(mark).role)

    # ---- model --------------------------------------------------------------------
    def load_model(self, model_id: str, device: str = "auto") -> None:
        """Load a model in the background; a load still running is superseded."""
        self.model = None  # until the new one is ready, no model is active
        self.controller.model = None
        self.model_label.setText("Model: loading…")
        self.model_label.setToolTip(f"Loading {model_id} on device '{device}'")
        self.hash_label.clear()
        self.hash_label.setToolTip("")
        self.hash_label.hide()  # an empty label would still take room
        self.device_label.setText("Device: …")
        self.model_loader.start(_load_model, self._registry, model_id, device)

    def _on_model_loaded(self, model: FaceModel) -> None:
        self.model = model
        self.controller.model = model
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
        if self.controller.case is not None:
            self.compare.set_case(self.controller.case, model)
            self._select_first_pair()
            self.controller.rank()
        self.model_ready.emit(model)

    def _on_model_error(self, error: BaseException, details: str) -> None:
        # The status bar must never name a model the examiner did not get.
        self.model_label.setText("Model: not loaded")
        self.model_label.setToolTip(str(error))
        self.device_label.setText("Device: –")
        self.errors.report(
            error, details, context="The face model could not be loaded."
        )

    # ---- settings, theme, window state --------------------------------------------
    def edit_settings(self) -> None:
        model_ids = (self._registry or registry()).ids()
        dialog = SettingsDialog(self.settings, model_ids, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        old, new = self.settings, dialog.settings()
        self.settings = new
        save_settings(new)
        if not self.controller.blind:  # a verifier stays the verifier
            self.controller.user = new.effective_user()
        if self.controller.case is not None:
            case = self.controller.case
            case.user = self.controller.user or case.info().examiner
        self.compare.set_colour_map(new.colour_map)
        self.grid.set_colour_map(new.colour_map)
        self.compare.opacity.setValue(round(new.overlay_opacity * 100))
        self.set_theme(new.theme)
        if (old.model_id, old.device) != (new.model_id, new.device):
            self.load_model(new.model_id, new.device)

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, name)
        self.settings.theme = name
        self.dark_action.setChecked(name == "dark")

    def _restore_window_state(self) -> None:
        from xfr_desktop.settings import default_store

        store = default_store()
        geometry = store.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        # A size saved on a larger screen (or the default) must not run off this one.
        screen = self.screen()
        if screen is not None and not self.isMaximized():
            available = screen.availableGeometry()
            self.resize(
                min(self.width(), max(available.width(), self.minimumWidth())),
                min(self.height(), max(available.height(), self.minimumHeight())),
            )

    def _save_window_state(self) -> None:
        from xfr_desktop.settings import default_store

        store = default_store()
        store.setValue("window/geometry", self.saveGeometry())
        store.sync()

    # ---- about / quit -------------------------------------------------------------
    def about_html(self) -> str:
        import PySide6

        parts = [f"<b>{APP_NAME}</b> {html.escape(__version__)}"]
        if self.model is not None:
            parts.append(
                f"Model: {html.escape(self.model.display_name)} "
                f"(<code>{html.escape(self.model.model_id)}</code>)<br>"
                f"Weights SHA-256:<br><code>{self.model.weights_sha256}</code>"
            )
        else:
            parts.append("No model is loaded.")
        parts.append(
            f"PyTorch {html.escape(torch.__version__)}, PySide6 "
            f"{html.escape(PySide6.__version__)}"
        )
        parts.append(LICENCES_HTML)
        return "<br><br>".join(parts)

    def show_manual(self) -> ManualWindow:
        """The manual (one window, raised again if open); built from this window's
        actions when it opens, so its shortcut list is the current one."""
        if self.manual_window is None:
            self.manual_window = ManualWindow(self)
        self.manual_window.show()
        self.manual_window.raise_()
        self.manual_window.activateWindow()
        return self.manual_window

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

    def shutdown(self) -> None:
        """Cancel and await every worker; close the case (nothing half-written)."""
        runners = (
            self.model_loader,
            self._results_loader,
            self._earlier_loader,
            self._verifier,
        )
        for runner in (*runners, self._reporter, self._report_checker):
            runner.shutdown()
        self.exhibits.shutdown()
        if self.face_dialog is not None:
            self.face_dialog.shutdown()
        self.compare.shutdown()
        self.superimpose.shutdown()
        self.video_panel.shutdown()
        self.processing.shutdown()
        self.layers.runner.shutdown()
        self.channels.shutdown()
        self.controller.shutdown()

    # Closing with work in progress asks first (tests switch it off: a window
    # left with queued jobs at teardown must not wait for an answer).
    ask_before_closing = True

    def pending_work(self) -> list[str]:
        """What is still running or queued, in words (empty: nothing)."""
        jobs = [j for j in self.controller.jobs if j.state in ("running", "queued")]
        pending = [
            f"{job.method} for {job.probe} × {job.gallery} ({job.state})"
            for job in jobs
        ]
        if self._reporter.is_busy():
            pending.append("the report being written")
        if self.layers.runner.is_busy():
            pending.append("the layer-by-layer maps")
        if self.controller.tracker.is_busy():
            pending.append("the face tracks being found")
        if self.controller.frame_adder.is_busy():
            pending.append("the video frames being added")
        return pending

    def close_question(self, pending: Sequence[str]) -> QMessageBox:
        """The question asked when the window closes while work is running."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Work still running")
        shown = "".join(f"<li>{html.escape(item)}</li>" for item in pending[:8])
        more = f"<li>… and {len(pending) - 8} more</li>" if len(pending) > 8 else ""
        box.setText(
            f"{len(pending)} task(s) are still running or queued:<ul>{shown}{more}"
            "</ul>Stopping them keeps everything already stored in the case; "
            "what was not finished is not stored and can be run again later."
        )
        box.addButton(QUIT_WHEN_DONE, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(STOP_AND_QUIT, QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton(KEEP_WORKING, QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        return box

    def _ask_close(self, pending: Sequence[str]) -> str:
        box = self.close_question(pending)
        box.exec()
        clicked = box.clickedButton()
        return clicked.text() if clicked is not None else KEEP_WORKING

    def _quit_when_idle(self) -> None:
        # polled: jobs, the report and the layer maps each end in their own way
        if not self.pending_work():
            self._idle_timer.stop()
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.keeps_unsaved_examination():
            event.ignore()
            return
        pending = self.pending_work() if self.ask_before_closing else []
        if pending:  # asked again on a second close: the choice can be changed
            answer = self._ask_close(pending)
            if answer == KEEP_WORKING:
                self._idle_timer.stop()
                self.statusBar().clearMessage()
                event.ignore()
                return
            if answer == QUIT_WHEN_DONE:
                self._idle_timer.start()
                self.statusBar().showMessage(
                    f"Closing when the {len(pending)} running task(s) finish…"
                )
                event.ignore()
                return
        self._idle_timer.stop()
        # Nothing may run after the window is gone: cancel and wait for workers
        # (with a word and a busy cursor: waiting used to look like a freeze).
        self.statusBar().showMessage("Stopping running tasks…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        QApplication.processEvents()
        try:
            self._save_window_state()
            self.shutdown()
        finally:
            QApplication.restoreOverrideCursor()
        super().closeEvent(event)
