"""Background work for the GUI: one wrapper around QThreadPool.

Core functions take ``progress(done, total, message)`` and ``cancel() -> bool``
callables and raise ``core.errors.Cancelled`` when asked to stop (the Orange3 /
superqt pattern: they run and test without Qt).  ``TaskRunner`` runs one such
function at a time per panel: starting a new task cancels the previous one, and a
generation counter drops results of tasks that were superseded (ndv's pattern), so a
slow old result can never overwrite a newer one.  Signals are delivered on the GUI
thread because the runner lives there.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from core.errors import Cancelled


class _TaskSignals(QObject):
    progress = Signal(int, int, int, str)  # generation, done, total, message
    result = Signal(int, object)
    error = Signal(int, object, str)  # generation, exception, formatted traceback
    finished = Signal(int, bool)  # generation, cancelled


class _Task(QRunnable):
    def __init__(self, generation: int, function: Callable[..., Any], kwargs: dict):
        super().__init__()
        self.setAutoDelete(True)
        self.generation = generation
        self.function = function
        self.kwargs = kwargs
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        self.signals = _TaskSignals()

    def run(self) -> None:
        cancelled = False
        try:
            value = self.function(
                progress=lambda done, total, message="": self.signals.progress.emit(
                    self.generation, int(done), int(total), str(message)
                ),
                cancel=self.cancel_event.is_set,
                **self.kwargs,
            )
            if self.cancel_event.is_set():
                cancelled = True
            else:
                self.signals.result.emit(self.generation, value)
        except Cancelled:
            cancelled = True
        except Exception as error:  # every failure reaches the one error path
            self.signals.error.emit(self.generation, error, traceback.format_exc())
        finally:
            self.done_event.set()
            self.signals.finished.emit(self.generation, cancelled)


class TaskRunner(QObject):
    """Runs one background task at a time; a new one supersedes the old."""

    progress = Signal(int, int, str)  # done, total, message
    result = Signal(object)
    error = Signal(object, str)  # exception, traceback text
    busy_changed = Signal(bool)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None):
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._generation = 0
        self._current: _Task | None = None
        self._tasks: list[_Task] = []

    @property
    def generation(self) -> int:
        return self._generation

    def is_busy(self) -> bool:
        return self._current is not None and not self._current.done_event.is_set()

    def start(self, function: Callable[..., Any], **kwargs: Any) -> int:
        """Run ``function(progress=..., cancel=..., **kwargs)`` in the pool."""
        self.cancel()
        self._generation += 1
        task = _Task(self._generation, function, kwargs)
        task.signals.progress.connect(self._on_progress)
        task.signals.result.connect(self._on_result)
        task.signals.error.connect(self._on_error)
        task.signals.finished.connect(self._on_finished)
        self._current = task
        self._tasks = [t for t in self._tasks if not t.done_event.is_set()] + [task]
        self.busy_changed.emit(True)
        self._pool.start(task)
        return self._generation

    def cancel(self) -> None:
        """Ask the running task to stop (cooperative); its result will be dropped."""
        if self._current is not None and not self._current.done_event.is_set():
            self._current.cancel_event.set()
        self._current = None

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until every task this runner started has ended (used at quit)."""
        ok = True
        for task in list(self._tasks):
            ok = task.done_event.wait(timeout_s) and ok
        return ok

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        self.cancel()
        return self.wait(timeout_s)

    # ---- delivery on the GUI thread; stale generations are dropped ---------------
    def _is_current(self, generation: int) -> bool:
        return generation == self._generation and self._current is not None

    def _on_progress(self, generation: int, done: int, total: int, message: str):
        if self._is_current(generation):
            self.progress.emit(done, total, message)

    def _on_result(self, generation: int, value: object) -> None:
        if self._is_current(generation):
            self.result.emit(value)

    def _on_error(self, generation: int, error: object, details: str) -> None:
        if self._is_current(generation):
            self.error.emit(error, details)

    def _on_finished(self, generation: int, cancelled: bool) -> None:
        if generation == self._generation:
            self._current = None
            self.busy_changed.emit(False)
            if cancelled:
                self.cancelled.emit()
