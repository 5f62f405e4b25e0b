"""The main window and the background-task wrapper, in real (offscreen) Qt."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from core import APP_NAME, __version__
from core.errors import Cancelled, UnknownModelError
from core.models.base import DEFAULT_MODEL_ID
from xfr_desktop.main_window import MainWindow
from xfr_desktop.workers import TaskRunner


@pytest.fixture
def window(qtbot):
    created = []

    def make(**kwargs) -> MainWindow:
        win = MainWindow(**kwargs)
        qtbot.addWidget(win)
        win.show()
        created.append(win)
        return win

    yield make
    for win in created:
        win.model_loader.shutdown()


def test_main_window_shows_app_model_and_device(qtbot, window):
    win = window(model_id=DEFAULT_MODEL_ID, device="cpu")
    assert win.windowTitle() == f"{APP_NAME} {__version__}"
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    assert win.model is not None
    assert win.model_label.text() == (
        f"Model: {win.model.display_name} ({DEFAULT_MODEL_ID})"
    )
    assert win.device_label.text() == "Device: CPU"
    assert win.model.weights_sha256 in win.hash_label.toolTip()
    assert win.model.weights_sha256 in win.about_text()


def test_unknown_model_goes_through_the_error_path(qtbot, window):
    win = window(model_id="no-such-model", device="cpu")
    with qtbot.waitSignal(win.errors.reported, timeout=30_000) as blocker:
        pass
    report = blocker.args[0]
    assert "unknown model 'no-such-model'" in report.message
    assert report.title == "Cannot use this input"
    assert win.model_label.text() == "Model: not loaded"
    assert win.errors.last_dialog is not None and win.errors.last_dialog.isVisible()
    win.errors.last_dialog.close()
    assert win.isVisible()  # the app stays alive


def _counting_task(steps: int, progress, cancel, delay: float = 0.01, **_):
    for step in range(1, steps + 1):
        if cancel():
            raise Cancelled("stopped")
        time.sleep(delay)
        progress(step, steps, f"step {step}")
    return f"done {steps}"


def test_runner_delivers_progress_and_result(qtbot):
    runner = TaskRunner()
    seen = []
    runner.progress.connect(lambda done, total, message: seen.append((done, total)))
    with qtbot.waitSignal(runner.result, timeout=10_000) as blocker:
        runner.start(_counting_task, steps=5)
    assert blocker.args == ["done 5"]
    qtbot.waitUntil(lambda: not runner.is_busy())
    assert seen == [(i, 5) for i in range(1, 6)]


def test_runner_cancel_stops_a_long_task(qtbot):
    runner = TaskRunner()
    results = []
    runner.result.connect(results.append)
    started = threading.Event()

    def long_task(progress, cancel, **_):
        started.set()
        for _ in range(10_000):
            if cancel():
                raise Cancelled("stopped")
            time.sleep(0.005)
        return "finished"

    with qtbot.waitSignal(runner.cancelled, timeout=10_000):
        runner.start(long_task)
        assert started.wait(5)
        runner.cancel()
    assert runner.wait(5)
    assert results == []


def test_runner_drops_stale_results(qtbot):
    """A superseded task's result never reaches the view, even if it ends last."""
    runner = TaskRunner()
    results = []
    runner.result.connect(results.append)
    release_old = threading.Event()

    def old_task(progress, cancel, **_):
        release_old.wait(5)
        return "old"  # ignores cancel on purpose: a slow, uncooperative task

    runner.start(old_task)
    with qtbot.waitSignal(runner.result, timeout=10_000):
        runner.start(_counting_task, steps=2)
    release_old.set()
    assert runner.wait(5)
    qtbot.wait(50)  # let any queued signal of the old task arrive
    assert results == ["done 2"]


def test_runner_reports_exceptions(qtbot):
    runner = TaskRunner()

    def failing(progress, cancel, **_):
        raise UnknownModelError("unknown model 'x'")

    with qtbot.waitSignal(runner.error, timeout=10_000) as blocker:
        runner.start(failing)
    error, details = blocker.args
    assert isinstance(error, UnknownModelError)
    assert "Traceback" in details
