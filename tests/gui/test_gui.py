"""The main window, the error path and the background-task wrapper, in real
(offscreen) Qt.

Most tests use a tiny model registered into a fresh ``ModelRegistry`` so that they
do not depend on the real weights; one test loads the real default model.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMessageBox

from core import APP_NAME, __version__
from core.errors import Cancelled, ModelFileError, UnknownModelError
from core.explain import infos as explain_infos
from core.models import (
    DEFAULT_MODEL_ID,
    FaceModel,
    ModelInfo,
    ModelRegistry,
)
from core.wording import READINGS, VERDICTS
from tests.gui.tiny_case import tiny_model_class
from xfr_desktop import app as gui_app
from xfr_desktop import main_window as main_window_module
from xfr_desktop.dialogs.manual_window import (
    ManualWindow,
    heading_anchor,
    headings,
    internal_links,
    key_text,
)
from xfr_desktop.errors import ErrorReporter, describe, install_excepthook
from xfr_desktop.main_window import MainWindow
from xfr_desktop.workers import TaskRunner, active_task_count, wait_all

TINY_ID = "tiny-test"
TINY_SHA256 = hashlib.sha256(b"tiny test weights").hexdigest()


# seed=None: the weights are drawn from torch's generator as it stands
TinyModel = tiny_model_class(TINY_ID, "cosine", 0.5, seed=None)


@pytest.fixture
def damaged_file(tmp_path) -> Path:
    path = tmp_path / "damaged_model.dat"
    path.write_bytes(b"not a model")
    return path


@pytest.fixture
def test_registry(damaged_file) -> ModelRegistry:
    """A fresh registry: a tiny model, a gated (slow) one and a damaged file."""
    models = ModelRegistry()
    models.register(ModelInfo(TINY_ID, "Tiny test model", "test", "tests"), TinyModel)

    def damaged() -> FaceModel:
        raise ModelFileError("not a dlib model file (bad header)", damaged_file)

    models.register(ModelInfo("damaged", "Damaged", "test", "tests"), damaged)
    models.gate = threading.Event()  # type: ignore[attr-defined]

    def gated() -> FaceModel:
        assert models.gate.wait(10)  # type: ignore[attr-defined]
        return TinyModel()

    models.register(ModelInfo("gated", "Gated", "test", "tests"), gated)
    return models


pytestmark = pytest.mark.usefixtures("no_qt_leaks")


@pytest.fixture
def open_window(qtbot, test_registry):
    def make(model_id: str = TINY_ID, device: str = "cpu", **kwargs) -> MainWindow:
        kwargs.setdefault("model_registry", test_registry)
        window = MainWindow(model_id=model_id, device=device, **kwargs)
        qtbot.addWidget(window)  # closed (workers awaited) and deleted at teardown
        window.show()
        return window

    return make


# ---- main window ------------------------------------------------------------------
def test_window_title_and_loading_state(qtbot, open_window, test_registry):
    window = open_window("gated")
    assert window.windowTitle() == f"{APP_NAME} {__version__}"
    assert window.model_label.text() == "Model: loading…"
    assert window.model is None
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        test_registry.gate.set()
    assert window.model_label.text() == f"Model: Tiny test model ({TINY_ID})"


def test_status_bar_names_model_hash_and_device(qtbot, open_window):
    window = open_window()
    qtbot.waitUntil(lambda: window.model is not None, timeout=10_000)
    assert window.model_label.text() == f"Model: Tiny test model ({TINY_ID})"
    assert window.hash_label.text() == f"Weights SHA-256: {TINY_SHA256[:12]}…"
    assert TINY_SHA256 in window.hash_label.toolTip()
    assert window.hash_label.isVisible()
    assert window.device_label.text() == "Device: CPU"
    # permanent widgets: a temporary message does not hide them
    window.statusBar().showMessage("working")
    assert window.model_label.isVisible()


@pytest.mark.dlib
def test_real_default_model(qtbot, open_window):
    window = open_window(DEFAULT_MODEL_ID, model_registry=None)  # global registry
    with qtbot.waitSignal(window.model_ready, timeout=60_000) as blocker:
        pass
    model = blocker.args[0]
    assert model.model_id == DEFAULT_MODEL_ID
    assert window.model_label.text() == (
        f"Model: {model.display_name} ({DEFAULT_MODEL_ID})"
    )
    assert len(model.weights_sha256) == 64
    assert model.weights_sha256 in window.hash_label.toolTip()
    assert window.device_label.text() == "Device: CPU"
    assert model.weights_sha256 in window.about_html()


def test_unknown_model_goes_through_the_error_path(qtbot, open_window):
    window = open_window("no-such-model")
    with qtbot.waitSignal(window.errors.reported, timeout=10_000) as blocker:
        pass
    report = blocker.args[0]
    assert report is window.errors.last_report
    assert report.title == "Cannot use this input"
    assert "unknown model 'no-such-model'" in report.message
    assert TINY_ID in report.message  # lists what is available
    assert "Traceback" in report.details
    assert window.model is None
    assert window.model_label.text() == "Model: not loaded"
    assert not window.hash_label.isVisible()  # no hash of a model we do not have
    dialog = window.errors.last_dialog
    assert dialog is not None and dialog.isVisible()  # shown, yet nothing blocked
    assert "no-such-model" in dialog.text()
    assert dialog.detailedText() == report.details
    dialog.close()
    # the app stays alive and usable: the next load works
    assert window.isVisible()
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(TINY_ID, "cpu")
    assert window.model_label.text() == f"Model: Tiny test model ({TINY_ID})"


def test_damaged_model_file_message_names_the_file(qtbot, open_window, damaged_file):
    window = open_window("damaged")
    with qtbot.waitSignal(window.errors.reported, timeout=10_000) as blocker:
        pass
    report = blocker.args[0]
    assert str(damaged_file) in report.message
    assert "bad header" in report.message
    assert report.message.startswith("The face model could not be loaded.")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_readable_error(qtbot, open_window):
    window = open_window(TINY_ID, device="cuda")
    with qtbot.waitSignal(window.errors.reported, timeout=10_000) as blocker:
        pass
    assert "no CUDA GPU is available" in blocker.args[0].message


def test_about_names_version_model_hash_and_licences(qtbot, open_window):
    window = open_window()
    qtbot.waitUntil(lambda: window.model is not None, timeout=10_000)
    box = window.show_about()
    assert box.isVisible()
    text = box.text()
    for expected in (APP_NAME, __version__, TINY_ID, TINY_SHA256, "public domain"):
        assert expected in text
    box.close()


def test_menus_trigger_about_and_quit(qtbot, open_window):
    window = open_window()
    titles = [action.text() for action in window.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&View", "&Signing", "&Help"]
    window.about_action.trigger()
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1 and boxes[0].windowTitle() == f"About {APP_NAME}"
    boxes[0].close()
    window.quit_action.trigger()
    assert not window.isVisible()


def test_f1_opens_the_manual_in_the_app(qtbot, open_window):
    window = open_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # shortcuts reach the active window only
    qtbot.keyClick(window, Qt.Key.Key_F1)
    manual = window.manual_window
    assert isinstance(manual, ManualWindow) and manual.isVisible()
    assert manual.parent() is window  # closed with the window, no leak
    text = manual.browser.toPlainText()
    assert "The workflow" in text and "Keyboard shortcuts" in text
    window.manual_action.trigger()  # again: the same window, raised
    assert window.manual_window is manual


def test_manual_lists_every_shortcut_of_the_window(qtbot, open_window):
    window = open_window()
    manual = window.show_manual()
    keys: set[str] = set()
    for action in window.findChildren(QAction):
        keys.update(key_text(sequence) for sequence in action.shortcuts())
    for shortcut in window.findChildren(QShortcut):
        keys.update(key_text(sequence) for sequence in shortcut.keys())
    keys.discard("")
    assert {"F1", key_text(QKeySequence("Ctrl+M"))} <= keys
    for key in keys:
        assert f"| {key} |" in manual.markdown, key
    assert f"| {key_text(QKeySequence('Ctrl+M'))} | Show map overlay |" in (
        manual.markdown
    )


def test_manual_describes_every_registered_method_and_verdict(qtbot, open_window):
    manual = open_window().show_manual()
    text = manual.browser.toPlainText()
    for info in explain_infos():
        assert info.display_name in text, info.method_id
        assert info.description.split(". ")[0] in manual.markdown, info.method_id
    for verdict in VERDICTS:
        assert verdict.capitalize() in text
    for kind in READINGS:
        assert kind.capitalize() in text


def test_manual_has_no_broken_or_outside_links(qtbot, open_window):
    manual = open_window().show_manual()
    anchors = {heading_anchor(h) for h in headings(manual.markdown)}
    links = internal_links(manual.markdown)
    assert len(links) >= 5  # the contents line at least
    for link in links:
        assert link in anchors, f"link to #{link} has no heading"
        assert manual.go_to(link), link
    assert not manual.go_to("no-such-heading")
    assert "http" not in manual.markdown  # offline: nothing to fetch


# ---- error path -------------------------------------------------------------------
def test_describe_names_the_file_of_os_errors(tmp_path):
    missing = tmp_path / "missing.dat"
    try:
        missing.open("rb")
    except OSError as error:
        title, message = describe(error)
    assert title == "Cannot open file"
    assert str(missing) in message
    title, message = describe(RuntimeError("boom"))
    assert title == "Internal error" and "RuntimeError: boom" in message


def test_excepthook_routes_uncaught_errors_to_the_reporter(qtbot, monkeypatch):
    # Stand-ins for the previous hooks (pytest's own would fail the test).
    chained = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: chained.append(exc_info))
    monkeypatch.setattr(threading, "excepthook", chained.append)
    stand_in = sys.excepthook
    reporter = ErrorReporter(show_dialogs=False)
    restore = install_excepthook(reporter)
    try:
        error = ValueError("from a slot")
        with qtbot.waitSignal(reporter.reported, timeout=5_000) as from_slot:
            sys.excepthook(ValueError, error, error.__traceback__)

        def thread_body() -> None:
            raise OSError(2, "No such file or directory", "/cases/probe.png")

        with qtbot.waitSignal(reporter.reported, timeout=5_000) as from_thread:
            thread = threading.Thread(target=thread_body)
            thread.start()
            thread.join(5)
    finally:
        restore()
    assert sys.excepthook is stand_in  # restored
    assert len(chained) == 2  # the previous hooks still ran (console trace kept)
    assert from_slot.args[0].title == "Internal error"
    assert "ValueError: from a slot" in from_slot.args[0].message
    assert from_thread.args[0].message == "/cases/probe.png: No such file or directory"
    assert "thread_body" in from_thread.args[0].details
    reporter.deleteLater()


# ---- background tasks -------------------------------------------------------------
def _counting_task(steps: int, progress, cancel, delay: float = 0.01) -> str:
    for step in range(1, steps + 1):
        if cancel():
            raise Cancelled("stopped")
        time.sleep(delay)
        progress(step, steps, f"step {step}")
    return f"done {steps}"


@pytest.fixture
def runner():
    task_runner = TaskRunner()
    yield task_runner
    assert task_runner.shutdown(10)


def test_runner_delivers_progress_then_result(qtbot, runner):
    seen = []
    runner.progress.connect(lambda done, total, message: seen.append((done, total)))
    runner.result.connect(lambda value: seen.append(value))
    with qtbot.waitSignals([runner.started, runner.finished], timeout=10_000):
        runner.start(_counting_task, 5)
    assert seen == [*((i, 5) for i in range(1, 6)), "done 5"]
    assert not runner.is_busy()


def test_runner_passes_only_the_hooks_a_function_takes(qtbot, runner):
    def plain(a: int, b: int = 0) -> int:  # knows nothing of progress or cancel
        return a + b

    with qtbot.waitSignal(runner.result, timeout=10_000) as blocker:
        runner.start(plain, 2, b=3)
    assert blocker.args == [5]


def test_runner_cancel_stops_a_long_task(qtbot, runner):
    results = []
    runner.result.connect(results.append)
    started = threading.Event()
    checks = []

    def long_task(cancel) -> str:
        started.set()
        for _ in range(100_000):
            checks.append(1)
            if cancel():
                raise Cancelled("stopped")
            time.sleep(0.005)
        return "finished"

    with qtbot.waitSignals([runner.cancelled, runner.finished], timeout=10_000):
        runner.start(long_task)
        assert started.wait(5)
        assert runner.is_busy()
        runner.cancel()
    assert runner.wait(5)
    assert results == []
    assert len(checks) < 1_000  # it stopped early, not at the end
    assert not runner.is_busy()


def test_runner_drops_stale_results(qtbot, runner):
    """A superseded task's result never arrives, even if it ends last."""
    results = []
    runner.result.connect(results.append)
    release_old = threading.Event()

    def old_task() -> str:
        release_old.wait(5)
        return "old"  # ignores cancel on purpose: a slow, uncooperative task

    old_generation = runner.start(old_task)
    with qtbot.waitSignal(runner.result, timeout=10_000):
        new_generation = runner.start(_counting_task, 2)
    assert new_generation == old_generation + 1 == runner.generation
    release_old.set()
    assert runner.wait(5)
    qtbot.wait(50)  # let any queued signal of the old task arrive
    assert results == ["done 2"]


def test_runner_reports_exceptions(qtbot, runner):
    def failing() -> None:
        raise UnknownModelError("unknown model 'x'")

    with qtbot.waitSignal(runner.error, timeout=10_000) as blocker:
        runner.start(failing)
    error, details = blocker.args
    assert isinstance(error, UnknownModelError)
    assert "Traceback" in details and "failing" in details
    qtbot.waitUntil(lambda: not runner.is_busy())


def test_wait_all_cancels_every_running_task(qtbot):
    runners = [TaskRunner(), TaskRunner()]
    started = threading.Semaphore(0)

    def until_cancelled(cancel) -> None:
        started.release()
        while not cancel():
            time.sleep(0.005)
        raise Cancelled("stopped")

    for each in runners:
        each.start(until_cancelled)
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    assert active_task_count() == 2
    assert wait_all(5)
    assert active_task_count() == 0


# ---- entry point ------------------------------------------------------------------
def test_version_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gui_app.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"{APP_NAME} {__version__}"


def test_main_opens_the_window_and_quits(qapp, monkeypatch, test_registry):
    monkeypatch.setattr(main_window_module, "registry", lambda: test_registry)
    seen: list[str] = []

    def close_when_loaded() -> None:
        windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
        if windows and windows[0].model is not None:
            seen.append(windows[0].windowTitle())
            seen.append(windows[0].model_label.text())
            windows[0].quit_action.trigger()  # last window closed: the app quits
        else:
            poll.start(20)

    poll = QTimer(singleShot=True, timeout=close_when_loaded)
    guard = QTimer(singleShot=True, timeout=qapp.quit)  # never hang the suite
    poll.start(0)
    guard.start(30_000)
    try:
        assert gui_app.main(["--model", TINY_ID, "--device", "cpu"]) == 0
    finally:
        poll.stop()
        guard.stop()
    assert seen == [f"{APP_NAME} {__version__}", f"Model: Tiny test model ({TINY_ID})"]
    assert qapp.applicationName() == APP_NAME
    assert qapp.applicationVersion() == __version__


def test_undo_reaches_the_case_while_a_spin_box_has_focus(qtbot, open_window):
    """Ctrl+Z in a spin box (the seed, a parameter) used to do nothing: the spin
    box took it for its text.  The case's undo stack gets it now."""
    from PySide6.QtGui import QUndoCommand
    from PySide6.QtWidgets import QSpinBox

    window = open_window()
    qtbot.waitExposed(window)
    undone = []

    class Step(QUndoCommand):
        def redo(self):
            pass

        def undo(self):
            undone.append(True)

    window.controller.undo_stack.push(Step("a step"))
    spin = QSpinBox(window)
    spin.show()
    window.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    qtbot.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert undone == [True]
    assert window.controller.undo_stack.index() == 0


def test_closing_with_work_running_asks_and_keep_working_keeps_the_window(
    qtbot, open_window, monkeypatch
):
    """Closing while jobs run used to freeze for seconds and lose the queue
    without a word: now it asks (quit when done, stop and quit, keep working)."""
    from xfr_desktop import main_window as module

    window = open_window()
    monkeypatch.setattr(window, "ask_before_closing", True)
    pending = ["fggb for Q1 × K1 (running)", "lime for Q1 × K1 (queued)"]
    monkeypatch.setattr(window, "pending_work", lambda: list(pending))
    box = window.close_question(pending)
    qtbot.addWidget(box)
    assert "2 task(s) are still running or queued" in box.text()
    assert "lime for Q1 × K1 (queued)" in box.text()
    assert {b.text() for b in box.buttons()} == {
        module.QUIT_WHEN_DONE,
        module.STOP_AND_QUIT,
        module.KEEP_WORKING,
    }
    assert box.defaultButton().text() == module.KEEP_WORKING

    answers = iter([module.KEEP_WORKING, module.QUIT_WHEN_DONE])
    monkeypatch.setattr(window, "_ask_close", lambda _pending: next(answers))
    assert not window.close() and window.isVisible()  # keep working
    assert not window.close() and window.isVisible()  # quit when they finish
    assert "Closing when the 2 running task(s) finish" in (
        window.statusBar().currentMessage()
    )
    pending.clear()  # the work ends (a job, a report: any kind): it closes itself
    qtbot.waitUntil(lambda: not window.isVisible())


def test_a_second_close_while_waiting_asks_again_and_can_keep_working(
    qtbot, open_window, monkeypatch
):
    from xfr_desktop import main_window as module

    window = open_window()
    monkeypatch.setattr(window, "ask_before_closing", True)
    monkeypatch.setattr(window, "pending_work", lambda: ["the report being written"])
    answers = iter([module.QUIT_WHEN_DONE, module.KEEP_WORKING])
    monkeypatch.setattr(window, "_ask_close", lambda _pending: next(answers))
    assert not window.close()  # quit when it finishes ...
    assert not window.close()  # ... asked again: keep working after all
    qtbot.wait(700)  # longer than the idle check's interval
    assert window.isVisible() and not window._idle_timer.isActive()
    window.ask_before_closing = False  # teardown closes it without a question


def test_stop_and_quit_closes_at_once(qtbot, open_window, monkeypatch):
    from xfr_desktop import main_window as module

    window = open_window()
    monkeypatch.setattr(window, "ask_before_closing", True)
    monkeypatch.setattr(window, "pending_work", lambda: ["x (running)"])
    monkeypatch.setattr(window, "_ask_close", lambda _p: module.STOP_AND_QUIT)
    assert window.close() and not window.isVisible()
