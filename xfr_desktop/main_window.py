"""The main window: start screen, then the case workspace.

Workspace: exhibits on the left; tabs for the comparison (viewers, score, 1:N
candidates, overlays, annotations, explanation jobs), all methods at once, layer by
layer, the examiner's conclusion and the audit trail.  The model loads in the
background; the status bar names it, its weights hash and the device.  Panels read
from ``core`` through the ``CaseController``; no science happens in a widget.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import torch
from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
)

from core import APP_NAME, __version__
from core.case import workflow
from core.case.workflow import LoadedPair
from core.explain.base import ExplanationResult
from core.models import FaceModel, ModelRegistry, load_model, registry
from core.report.api import Signer, generate_report, verify_report
from core.report.build import ReportRequest
from core.report.signing import load_certificate
from xfr_desktop.case_controller import CaseController, ExplainJob
from xfr_desktop.dialogs.manual_window import ManualWindow
from xfr_desktop.dialogs.new_case_dialog import NewCaseDialog
from xfr_desktop.dialogs.report_dialog import ReportDialog
from xfr_desktop.dialogs.settings_dialog import SettingsDialog
from xfr_desktop.errors import ErrorReporter
from xfr_desktop.panels.audit_view import AuditTrailView
from xfr_desktop.panels.channels_panel import ChannelsPanel
from xfr_desktop.panels.compare_panel import ComparePanel
from xfr_desktop.panels.conclusion_editor import ConclusionEditor
from xfr_desktop.panels.exhibits_panel import ExhibitsPanel
from xfr_desktop.panels.explain_panel import ExplainPanel
from xfr_desktop.panels.maps_panels import LayersPanel, MethodGrid
from xfr_desktop.panels.start_page import StartPage
from xfr_desktop.settings import Settings, load_settings, save_settings
from xfr_desktop.theme import apply_theme
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


class _CaseUndoKeys(QObject):
    """Lets Undo/Redo reach the case's undo stack while a spin box has focus.

    Qt offers a shortcut first to the focused widget (ShortcutOverride); a spin
    box accepts Ctrl+Z for its line edit, so the menu's action never fired.  Text
    fields (notes, conclusion) keep their own undo."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(watched, QAbstractSpinBox)
            and isinstance(event, QKeyEvent)
            and watched.window() is self._window
            and (
                event.matches(QKeySequence.StandardKey.Undo)
                or event.matches(QKeySequence.StandardKey.Redo)
            )
        ):
            event.ignore()  # not the spin box's: the window's shortcut fires
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
        self._reporter = TaskRunner(self)
        self._reporter.progress.connect(
            lambda done, total, message: self.statusBar().showMessage(
                f"Report: {message} ({done}/{total})"
            )
        )
        self._reporter.result.connect(self._on_report)
        self._report_checker = TaskRunner(self)
        self._report_checker.result.connect(self._show_report_check)
        self._report_checker.error.connect(
            lambda e, d: self.errors.report(e, d, context="Could not check the report.")
        )
        self._reporter.error.connect(
            lambda e, d: self.errors.report(e, d, context="The report failed.")
        )
        self._verifier = TaskRunner(self)
        self._verifier.result.connect(
            lambda r: self.audit.show_verify_result(
                r.intact, list(r.problems), list(r.warnings)
            )
        )

        self.report_dialog: ReportDialog | None = None  # the last one opened
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
        self.grid = MethodGrid()
        self.grid.set_colour_map(self.settings.colour_map)
        self.layers = LayersPanel(self.errors)
        self.channels = ChannelsPanel(
            self.errors, lambda: self.model, lambda: self.controller.case
        )
        self.conclusion = ConclusionEditor()
        self.audit = AuditTrailView()
        # Minimums that add up to less than a 1280 x 720 screen (exhibits 200 +
        # comparison ~650 + methods 260 + handles); no main view collapses away.
        self.exhibits.setMinimumWidth(200)
        self.explain.setMinimumWidth(260)
        compare_page = QSplitter()
        compare_page.addWidget(self.compare)
        compare_page.addWidget(self.explain)
        compare_page.setStretchFactor(0, 4)
        compare_page.setStretchFactor(1, 1)
        compare_page.setChildrenCollapsible(False)
        compare_page.setSizes([900, 300])
        self.compare_page = compare_page
        self.tabs = QTabWidget()
        self.tabs.addTab(compare_page, "Comparison")
        self.tabs.addTab(self.grid, "All methods")
        self.tabs.addTab(self.layers, "Layer by layer")
        self.tabs.addTab(self.channels, "Channels")
        self.tabs.addTab(self.conclusion, "Conclusion")
        self.tabs.addTab(self.audit, "Audit trail")
        self.workspace = QSplitter()
        self.workspace.addWidget(self.exhibits)
        self.workspace.addWidget(self.tabs)
        self.workspace.setStretchFactor(1, 1)
        self.workspace.setChildrenCollapsible(False)
        self.workspace.setSizes([240, 1100])
        self.pages = QStackedWidget()
        self.pages.addWidget(self.start_page)
        self.pages.addWidget(self.workspace)
        self.setCentralWidget(self.pages)

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
        self.close_case_action = self._action(
            file_menu, "&Close case", self.close_case, keys.Close
        )
        file_menu.addSeparator()
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
        self.redo_action.setShortcut(keys.Redo)
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        # A spin box takes Ctrl+Z for its own text, so the case's undo did nothing
        # while one had focus: there the window's undo and redo win.
        self._case_undo_keys = _CaseUndoKeys(self)
        QApplication.instance().installEventFilter(self._case_undo_keys)

        view_menu = self.menuBar().addMenu("&View")
        viewers = self.compare.viewers
        self._action(
            view_menu, "Zoom &in", lambda: [v.zoom_in() for v in viewers], keys.ZoomIn
        )
        self._action(
            view_menu,
            "Zoom &out",
            lambda: [v.zoom_out() for v in viewers],
            keys.ZoomOut,
        )
        self._action(
            view_menu,
            "&Fit whole images",
            lambda: [v.fit() for v in viewers],
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
        self.compare.pair_loaded.connect(self._on_pair_loaded)
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
            lambda i: (self.compare.show_explanation(i), self.tabs.setCurrentIndex(0))
        )
        self.explain.run_requested.connect(self._run_methods)
        self.explain.cancel_requested.connect(
            lambda job: c.cancel_all_jobs() if job is None else c.cancel_job(job)
        )
        self.conclusion.save_requested.connect(self._save_conclusion)
        self.audit.verify_requested.connect(self.verify_case)

    # ---- cases --------------------------------------------------------------------
    def new_case(self) -> None:
        dialog = NewCaseDialog(self.settings.effective_user(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            folder, number, examiner, title, agency = dialog.values()
            self.controller.new_case(folder, number, examiner, title, agency)

    def open_case(self, path: str = "") -> None:
        if not path:
            path = QFileDialog.getExistingDirectory(self, "Open a case folder")
        if path:
            self.controller.open_case(path)

    def open_demo(self) -> None:
        """The one demo case in the user's data folder: reused while it verifies,
        made when missing (or beside one that does not verify, saying so)."""
        self.controller.open_demo()

    def close_case(self) -> None:
        self.controller.close_case()

    def verify_case(self) -> None:
        if self.controller.case is not None:
            self._verifier.start(self.controller.case.verify)

    # ---- reports ------------------------------------------------------------------
    def ask_export_report(self) -> None:
        """Where to write it, who signs it and which comparisons go in (one dialog)."""
        case = self.controller.case
        if case is None:
            return
        default = case.folder.parent / f"{case.info().case_number}-report.pdf"
        dialog = ReportDialog(
            case, self.controller.viewed_comparisons, str(default), self
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._export_chosen(dialog.choice()))
        self.report_dialog = dialog
        dialog.open()

    def _export_chosen(self, choice) -> None:
        signer = (
            Signer(Path(choice.identity), choice.password) if choice.identity else None
        )
        self.export_report(choice.path, signer, comparison_ids=choice.comparison_ids)

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
        self.report_exported.emit(outcome)

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
        self.verify_report_file(path, certificates)

    def verify_report_file(self, path: str, certificates=()) -> None:
        trust = [load_certificate(Path(c)) for c in certificates]
        self._report_checker.start(
            verify_report, path, trust=trust, case=self.controller.case
        )

    def _show_report_check(self, check) -> None:
        lines = [f"Report {check.report_id or '(no XFR manifest)'}"]
        lines += [f"• {s.field_name}: {s.summary}" for s in check.signatures] or [
            "• Not signed: the report can have been changed without trace."
        ]
        if check.case_checked:
            lines.append(
                "• Evidence hashes match the open case."
                if not check.evidence_problems
                else "• Evidence MISMATCH: " + "; ".join(check.evidence_problems)
            )
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
        self.case_label.setText(f"Case {info.case_number}{suffix}")
        self.setWindowTitle(f"{info.case_number}{suffix} — {APP_NAME} {__version__}")
        self.conclusion.set_read_only(case.read_only)
        self.exhibits.set_case(case)
        self.compare.set_case(case, self.model)
        self._refresh_conclusions()
        self._refresh_audit()
        self.pages.setCurrentWidget(self.workspace)
        self._update_actions()
        self._select_first_pair()
        if not case.comparisons() and not case.read_only:
            self.controller.rank()

    def _on_case_closed(self) -> None:
        self.exhibits.set_case(None)
        self.compare.set_case(None, self.model)
        self.layers.set_pair(None, self.model)
        self.grid.set_results({}, None)
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
        self.report_action.setEnabled(writable)
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
            first = rows[0].gallery_label if rows else gallery[0]
            self.compare.gallery_combo.setCurrentText(first)
            self.compare.select(probes[0], "probe")

    def _on_faces_changed(self) -> None:
        self.compare.refresh_faces()
        if self.compare.loaded is None:
            self._select_first_pair()

    def _on_landmarks_corrected(self, label: str, points) -> None:
        self.controller.correct_landmarks(label, points)
        self.compare.reload()  # re-aligns the chip from the corrected points
        self.controller.rank()  # the corrected face is a new face: rank it again

    def _on_pair_loaded(self, loaded: LoadedPair) -> None:
        self.controller.viewed_comparisons.add(loaded.comparison.id)
        self.layers.set_pair(loaded.pair, self.model)
        self.explain.setEnabled(True)
        self._results_loader.start(
            workflow.load_results, self.controller.case, loaded.comparison.id
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
        self.controller.user = new.effective_user()
        if self.controller.case is not None:
            case = self.controller.case
            case.user = self.controller.user or case.info().examiner
        self.compare.set_colour_map(new.colour_map)
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
        runners = (self.model_loader, self._results_loader, self._verifier)
        for runner in (*runners, self._reporter, self._report_checker):
            runner.shutdown()
        self.exhibits.shutdown()
        self.compare.shutdown()
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
