"""The one compute executor: who may use the CPU cores for model work, and how many.

Why (``benchmarks/contention.py``, docs/performance.md): torch runs its operators on
an OpenMP team of one thread per core, and the team's threads spin at every barrier
while they wait for each other.  When something else takes a core - a second model
job of this program, or another program - the spinning threads burn the time the
descheduled thread needs, and embedding fell 35x on the 2-core machine.  Three
things prevent it:

* **Passive waiting.**  ``core/__init__.py`` sets ``OMP_WAIT_POLICY=PASSIVE``
  before torch can be imported (OpenMP reads it once, when the library loads), so
  a waiting thread sleeps instead of spinning.  A value the user set is kept.
* **One model job holds the cores at a time.**  :func:`model_job` is a FIFO queue:
  a job waits (cancellable, reporting that it waits) until the jobs before it have
  finished, then runs alone with every core.  Two jobs together therefore take the
  time of one after the other, never the collapse of two thread teams on the same
  cores.  The same thread may enter again (a model job that calls another model
  function inside does not wait for itself).
* **Threads sized to the cores this process may use** (``os.sched_getaffinity``:
  a ``taskset`` or a container's CPU set counts), or ``XFR_THREADS``, or
  :func:`configure`, never more than those cores (a larger count is capped and
  the settings' ``source`` says so).  torch's thread count is per OS thread
  under OpenMP (a new thread starts with the default), so every job sets it in
  its own thread when it differs.

Torch-free at import (the CLI's parser imports this module): torch is imported by
:func:`configure` and :func:`model_job` only when it is first needed.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from core.errors import BadInputError, Cancelled
from core.progress import ProgressCallback
from core.wording import compute_waiting_message

T = TypeVar("T")

THREADS_ENV = "XFR_THREADS"
"""Environment variable: the number of threads a model job uses (default: the
cores this process may run on)."""

# How often a waiting job looks at its cancel hook (seconds).  Not a timing
# assumption: a job that is handed the cores is woken at once.
_CANCEL_POLL_S = 0.05


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform (macOS)
        return max(1, os.cpu_count() or 1)


def _threads_from_env() -> int | None:
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BadInputError(
            f"{THREADS_ENV}={text!r}: the number of model threads must be a whole "
            "number of at least 1"
        )
    return value


def check_threads(value: object, where: str = "threads") -> int:
    """``value`` as a thread count (a whole number >= 1), or one clear error."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise BadInputError(
            f"{where} {value}: the number of model threads must be a whole number "
            "of at least 1"
        )
    return number


@dataclass(frozen=True)
class ComputeSettings:
    """What the executor uses: ``threads`` per model job, and where it came from."""

    threads: int
    # "cores available", "XFR_THREADS", "configured" (+ ": N asked, capped at ...")
    source: str
    wait_policy: str  # OMP_WAIT_POLICY as the OpenMP runtime read it ("" = default)


class _Cores:
    """A FIFO, re-entrant hold on the cores: one model job at a time."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._owner: int | None = None  # thread ident of the job holding the cores
        self._owner_name = ""
        self._depth = 0  # re-entries of the owner
        self._queue: deque[tuple[int, str]] = deque()  # (ticket, name) waiting

        self._next_ticket = 0

    def acquire(
        self,
        name: str,
        cancel: Callable[[], bool] | None,
        progress: ProgressCallback | None,
    ) -> None:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:  # re-entry: the job already holds the cores
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            self._queue.append((ticket, name))
            told = -1  # the place in the queue last reported
            try:
                while self._owner is not None or self._queue[0][0] != ticket:
                    if cancel is not None and cancel():
                        raise Cancelled(
                            f"{name}: cancelled while waiting for the cores"
                        )
                    place = self._place(ticket)
                    if progress is not None and place != told:
                        told = place
                        progress(0, 0, compute_waiting_message(self._owner_name, place))
                    self._condition.wait(_CANCEL_POLL_S if cancel else None)
            except BaseException:
                self._queue = deque(t for t in self._queue if t[0] != ticket)
                self._condition.notify_all()  # the next in line may now be first
                raise
            self._queue.popleft()
            self._owner, self._owner_name, self._depth = me, name, 1

    def _place(self, ticket: int) -> int:
        """Jobs ahead of ``ticket``: the running one and those queued before it."""
        ahead = sum(1 for t, _ in self._queue if t < ticket)
        return ahead + (1 if self._owner is not None else 0)

    def release(self) -> None:
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError(
                    "the cores are released by a thread that does not hold them"
                )
            self._depth -= 1
            if self._depth == 0:
                self._owner, self._owner_name = None, ""
                self._condition.notify_all()

    def snapshot(self) -> tuple[str | None, list[str]]:
        """The running job's name (None: idle) and the names waiting, in order."""
        with self._condition:
            running = self._owner_name if self._owner is not None else None
            return running, [name for _, name in self._queue]


_cores = _Cores()
_settings_lock = threading.Lock()
_settings: ComputeSettings | None = None


def _apply_threads(threads: int) -> None:
    """torch's intra-op threads in the calling OS thread (OpenMP: per thread)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def configure(threads: int | None = None) -> ComputeSettings:
    """Set the threads every model job uses, once for the process (and now in the
    calling thread).  ``None``: ``XFR_THREADS``, else the cores available.  A
    count above the cores available is capped at them (``source`` says so:
    ``XFR_THREADS=10000`` would otherwise start 10 000 OS threads per job).

    For a worker process too (a Ray task): ``compute.configure(threads=n)`` before
    its first model call.  Calling it again replaces the setting.
    """
    global _settings
    if threads is not None:
        threads, source = check_threads(threads), "configured"
    elif (from_env := _threads_from_env()) is not None:
        threads, source = from_env, THREADS_ENV
    else:
        threads, source = available_cores(), "cores available"
    cores = available_cores()
    if threads > cores:  # more threads than cores only oversubscribe them
        source = f"{source}: {threads} asked, capped at the {cores} core(s) available"
        threads = cores
    with _settings_lock:
        _settings = ComputeSettings(
            threads, source, os.environ.get("OMP_WAIT_POLICY", "")
        )
        settings = _settings
    _apply_threads(threads)
    return settings


def settings() -> ComputeSettings:
    """The settings in force (configured with the defaults on first use)."""
    with _settings_lock:
        current = _settings
    return current if current is not None else configure()


def activity() -> tuple[str | None, list[str]]:
    """The model job running now (None: none) and the jobs waiting for the cores."""
    return _cores.snapshot()


@contextmanager
def model_job(
    name: str,
    *,
    cancel: Callable[[], bool] | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[ComputeSettings]:
    """Hold the cores for one model job: wait in turn (FIFO), then run alone.

    While it waits, ``cancel()`` is looked at (``core.errors.Cancelled`` is raised
    when it is true) and ``progress(0, 0, message)`` says what it waits for.  The
    cores are released however the block ends (an exception too).  Re-entrant in
    the same thread.
    """
    current = settings()
    _cores.acquire(name, cancel, progress)
    try:
        _apply_threads(current.threads)
        yield current
    finally:
        _cores.release()


def run(
    name: str,
    function: Callable[..., T],
    *args: object,
    cancel: Callable[[], bool] | None = None,
    progress: ProgressCallback | None = None,
    **kwargs: object,
) -> T:
    """``function(*args, **kwargs)`` as a model job (see :func:`model_job`)."""
    with model_job(name, cancel=cancel, progress=progress):
        return function(*args, **kwargs)


__all__ = [
    "THREADS_ENV",
    "ComputeSettings",
    "activity",
    "available_cores",
    "check_threads",
    "configure",
    "model_job",
    "run",
    "settings",
]
