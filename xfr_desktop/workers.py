"""Background work for the GUI: one small wrapper around ``QThreadPool``.

Core functions stay Qt-free (the Orange3 / superqt pattern): a long job accepts
``progress(done, total, message="")`` and ``cancel() -> bool`` keyword arguments,
checks ``cancel()`` between steps and raises ``core.errors.Cancelled`` when it is
true.  A function that takes neither (``ModelRegistry.load``) runs unchanged: the
wrapper passes only the hooks the function's signature names.

``TaskRunner`` runs one such function at a time for one panel of the GUI: starting
a new task cancels the previous one, and a generation counter drops the progress,
result and error of every task that was superseded or cancelled (ndv's pattern), so a
slow old result can never overwrite a newer one.  Signals arrive on the GUI thread.
``wait_all()`` cancels and awaits every task still running; the application calls it
on ``aboutToQuit`` so that no worker outlives the GUI.

A runner made with ``model_job="ranking"`` (a name the examiner may see) runs each
task as a model job of ``core.compute``: it waits its turn for the CPU cores (FIFO,
one model job at a time, so two never fight over the cores), says so through its
progress ("Waiting for the processor: ..."), and can be cancelled while it waits.
Such tasks run in their own pool (``model_pool()``), so jobs waiting for the cores
never hold up the threads that load thumbnails, files and reports.

Usage::

    runner = TaskRunner(parent=panel)
    runner.progress.connect(progress_bar.update)   # (done, total, message)
    runner.result.connect(panel.show_result)       # (value)
    runner.error.connect(panel.errors.report)      # (exception, traceback text)
    runner.start(core_function, image, threshold=0.6)
    cancel_button.clicked.connect(runner.cancel)
"""

from __future__ import annotations

import inspect
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QThread, QThreadPool, Signal

from core import compute
from core.errors import Cancelled

_HOOKS = ("progress", "cancel")

# Not Qt's global pool, which has one thread per core: on a small machine one slow or
# uncooperative task (a superseded model load) would hold up every other panel.
MIN_POOL_THREADS = 4
_pool: QThreadPool | None = None
# Model jobs mostly wait for each other (core.compute runs one at a time): a thread
# each, up to this many, so that waiting never blocks ``task_pool``.
MODEL_POOL_THREADS = 16
_model_pool: QThreadPool | None = None

# Every task that has not ended, whichever runner started it (for wait_all).
_live_tasks: set[_Task] = set()
_live_lock = threading.Lock()


def task_pool() -> QThreadPool:
    """The pool GUI tasks run in (created on first use, owned by the application)."""
    global _pool
    if _pool is None or not shiboken6.isValid(_pool):  # gone with an older app
        _pool = QThreadPool(QCoreApplication.instance())
        _pool.setMaxThreadCount(max(MIN_POOL_THREADS, QThread.idealThreadCount()))
    return _pool


def model_pool() -> QThreadPool:
    """The pool model jobs run (and wait for the cores) in."""
    global _model_pool
    if _model_pool is None or not shiboken6.isValid(_model_pool):
        _model_pool = QThreadPool(QCoreApplication.instance())
        _model_pool.setMaxThreadCount(MODEL_POOL_THREADS)
    return _model_pool


def _accepted_hooks(function: Callable[..., Any]) -> tuple[str, ...]:
    """The hook keywords (progress, cancel) that ``function`` can take."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: pass nothing
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return _HOOKS
    keyword_kinds = (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    names = {p.name for p in parameters if p.kind in keyword_kinds}
    return tuple(hook for hook in _HOOKS if hook in names)


class _TaskSignals(QObject):
    # Emitted from the worker thread, queued to the runner on the GUI thread.  Each
    # carries the task's generation so the runner can drop stale deliveries.
    progress = Signal(int, int, int, str)  # generation, done, total, message
    result = Signal(int, object)  # generation, value
    error = Signal(int, object, str)  # generation, exception, formatted traceback
    finished = Signal(int, bool)  # generation, cancelled


class _Task:
    """One run of a function: generation, cancel flag and signals.

    A plain Python object handed to the pool as a callable (``QThreadPool.start``
    accepts one), so no QRunnable wrapper can be deleted by C++ under our feet.
    """

    def __init__(
        self,
        generation: int,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        model_job: str | None = None,
    ) -> None:
        self.generation = generation
        self.model_job = model_job
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        self.signals = _TaskSignals()

    def _progress(self, done: float, total: float, message: str = "") -> None:
        self.signals.progress.emit(self.generation, int(done), int(total), str(message))

    def run(self) -> None:  # in a pool thread
        hooks = {"progress": self._progress, "cancel": self.cancel_event.is_set}
        kwargs = dict(self.kwargs)
        for name in _accepted_hooks(self.function):
            kwargs.setdefault(name, hooks[name])
        try:
            if self.model_job is None:
                value = self.function(*self.args, **kwargs)
            else:
                with compute.model_job(
                    self.model_job,
                    cancel=self.cancel_event.is_set,
                    progress=self._progress,
                ):
                    value = self.function(*self.args, **kwargs)
            if not self.cancel_event.is_set():
                _emit(self.signals.result, self.generation, value)
        except Cancelled:
            pass
        except Exception as error:  # every failure goes to the one error path
            _emit(self.signals.error, self.generation, error, traceback.format_exc())
        finally:
            # A task that was asked to stop counts as cancelled however it ended.
            _emit(self.signals.finished, self.generation, self.cancel_event.is_set())
            with _live_lock:
                _live_tasks.discard(self)
            self.done_event.set()  # last: after this the task touches nothing


def _emit(signal: Any, *args: Any) -> None:
    """Emit from a pool thread; a window torn down while the task ran has deleted
    the signals' object, and then nobody is left to tell (not an error)."""
    try:
        signal.emit(*args)
    except RuntimeError:  # "Signal source has been deleted"
        pass


class TaskRunner(QObject):
    """Runs one background task at a time; starting a new one supersedes the old.

    Signals (GUI thread, current task only):

    * ``started()`` - a task was started (the runner is busy).
    * ``progress(done, total, message)`` - from the function's ``progress`` hook.
    * ``result(value)`` - the function returned and was not cancelled.
    * ``error(exception, details)`` - it raised; ``details`` is the traceback text.
    * ``cancelled()`` - it stopped after ``cancel()`` (raised ``Cancelled`` or not).
    * ``finished()`` - it ended, whichever way; the runner is idle again.
    """

    started = Signal()
    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object, str)
    cancelled = Signal()
    finished = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        pool: QThreadPool | None = None,
        *,
        model_job: str | None = None,
    ) -> None:
        """``model_job``: run each task as a ``core.compute`` model job of that
        name (waiting its turn for the cores, in ``model_pool()``)."""
        super().__init__(parent)
        self.model_job = model_job
        self._pool = pool or (model_pool() if model_job else task_pool())
        self._generation = 0
        self._current: _Task | None = None  # None once ended or cancelled
        self._tasks: list[_Task] = []  # started here and maybe still running

    @property
    def generation(self) -> int:
        """Number of the latest task; results of any other number are dropped."""
        return self._generation

    def is_busy(self) -> bool:
        return self._current is not None

    def start(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Run ``function(*args, **kwargs)`` in the pool; returns its generation.

        ``progress`` and ``cancel`` are added to ``kwargs`` when the function
        accepts them.  A task still running is cancelled first.
        """
        self.cancel()
        self._generation += 1
        task = _Task(self._generation, function, args, kwargs, self.model_job)
        task.signals.progress.connect(self._on_progress)
        task.signals.result.connect(self._on_result)
        task.signals.error.connect(self._on_error)
        task.signals.finished.connect(self._on_finished)
        self._current = task
        self._tasks = [t for t in self._tasks if not t.done_event.is_set()]
        self._tasks.append(task)
        with _live_lock:
            _live_tasks.add(task)
        self.started.emit()
        self._pool.start(task.run)
        return task.generation

    def cancel(self) -> None:
        """Ask the current task to stop (cooperative); its result will be dropped.

        ``cancelled`` and ``finished`` follow once the function has returned.
        """
        if self._current is not None:
            self._current.cancel_event.set()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until every task this runner started has ended; False on timeout."""
        return _wait_for(self._tasks, timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel the current task and wait for all of this runner's tasks."""
        self.cancel()
        return self.wait(timeout_s)

    # ---- delivery on the GUI thread; other generations are dropped ---------------
    def _is_current(self, generation: int) -> bool:
        task = self._current
        return (
            task is not None
            and task.generation == generation
            and not task.cancel_event.is_set()
        )

    def _on_progress(self, generation: int, done: int, total: int, message: str):
        if self._is_current(generation):
            self.progress.emit(done, total, message)

    def _on_result(self, generation: int, value: object) -> None:
        if self._is_current(generation):
            self.result.emit(value)

    def _on_error(self, generation: int, error: object, details: str) -> None:
        if self._is_current(generation):
            self.error.emit(error, details)

    def _on_finished(self, generation: int, was_cancelled: bool) -> None:
        task = self._current
        if task is None or task.generation != generation:
            return  # a superseded task: its successor reports for it
        self._current = None
        if was_cancelled:
            self.cancelled.emit()
        self.finished.emit()


def _wait_for(tasks: list[_Task], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for task in list(tasks):
        if not task.done_event.wait(max(0.0, deadline - time.monotonic())):
            return False
    return True


def active_task_count() -> int:
    """Tasks started by any runner that have not ended yet."""
    with _live_lock:
        return len(_live_tasks)


def wait_all(timeout_s: float = 30.0) -> bool:
    """Cancel every running task and wait until all have ended; False on timeout.

    Connected to ``QApplication.aboutToQuit``: the application never exits with a
    worker still touching models or files.
    """
    with _live_lock:
        tasks = list(_live_tasks)
    for task in tasks:
        task.cancel_event.set()
    return _wait_for(tasks, timeout_s)
