"""core.compute: one model job holds the cores at a time, in FIFO order; a waiting
job can be cancelled and says it waits; errors release the cores; re-entry does not
deadlock; the thread count is what was configured, in every thread.

Real threads, synchronised with events and the executor's own queue (``activity``),
never with timings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core import compute
from core.errors import BadInputError, Cancelled

ROOT = Path(__file__).resolve().parents[2]
JOIN_S = 20  # a guard against a deadlock hanging the run, not a timing assertion


@pytest.fixture(autouse=True)
def _restore_settings() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    yield
    assert compute.activity() == (None, []), "a test left the cores held"
    compute.configure(threads=threads)


def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, woken by the executor's own changes."""
    done = threading.Event()
    while not condition():
        done.wait(0.005)


def _holder(name: str) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A thread that holds the cores as job ``name`` until ``release`` is set."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with compute.model_job(name):
            holding.set()
            release.wait(JOIN_S)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(JOIN_S)
    return thread, holding, release


def _join(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(JOIN_S)
        assert not thread.is_alive(), "a model job never ended (deadlock)"


def test_jobs_run_one_at_a_time_in_the_order_they_asked():
    first, _, release = _holder("first")
    order: list[str] = []
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    def job(name: str) -> None:
        nonlocal inside, most_inside
        with compute.model_job(name):
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
                order.append(name)
            with lock:
                inside -= 1

    threads = []
    for number, name in enumerate(["second", "third", "fourth"], start=1):
        thread = threading.Thread(target=job, args=(name,))
        thread.start()
        threads.append(thread)
        # the next job asks only once this one is in the queue
        _until(lambda n=number: len(compute.activity()[1]) == n)
    assert compute.activity() == ("first", ["second", "third", "fourth"])
    assert order == []  # nobody ran while "first" held the cores
    release.set()
    _join(first, *threads)
    assert order == ["second", "third", "fourth"]
    assert most_inside == 1


def test_a_waiting_job_says_what_it_waits_for():
    first, _, release = _holder("ranking")
    messages: list[tuple[int, int, str]] = []

    def job() -> None:
        with compute.model_job(
            "explanation", progress=lambda d, t, m: messages.append((d, t, m))
        ):
            pass

    thread = threading.Thread(target=job)
    thread.start()
    _until(lambda: compute.activity()[1] == ["explanation"])
    _until(lambda: bool(messages))
    release.set()
    _join(first, thread)
    assert messages[0] == (
        0,
        0,
        "Waiting for the processor: 1 model job ahead (ranking is running)",
    )


def test_a_job_waiting_for_the_cores_can_be_cancelled():
    first, _, release = _holder("first")
    cancel = threading.Event()
    outcome: list[object] = []
    ran: list[bool] = []

    def job() -> None:
        try:
            with compute.model_job("waiting", cancel=cancel.is_set):
                ran.append(True)
        except Cancelled as error:
            outcome.append(error)

    thread = threading.Thread(target=job)
    thread.start()
    _until(lambda: compute.activity()[1] == ["waiting"])
    cancel.set()
    _join(thread)  # it stopped although "first" still holds the cores
    assert compute.activity() == ("first", [])
    assert ran == [] and len(outcome) == 1
    assert "waiting: cancelled while waiting for the cores" in str(outcome[0])
    release.set()
    _join(first)


def test_a_cancelled_waiter_does_not_block_the_jobs_behind_it():
    first, _, release = _holder("first")
    cancel = threading.Event()
    ran: list[str] = []

    def job(name: str, hook: Callable[[], bool] | None) -> None:
        try:
            with compute.model_job(name, cancel=hook):
                ran.append(name)
        except Cancelled:
            ran.append(f"{name} cancelled")

    a = threading.Thread(target=job, args=("a", cancel.is_set))
    a.start()
    _until(lambda: compute.activity()[1] == ["a"])
    b = threading.Thread(target=job, args=("b", None))
    b.start()
    _until(lambda: compute.activity()[1] == ["a", "b"])
    cancel.set()
    _join(a)
    release.set()
    _join(first, b)
    assert ran == ["a cancelled", "b"]


def test_an_exception_releases_the_cores():
    with pytest.raises(ValueError, match="broken model"):
        with compute.model_job("failing"):
            raise ValueError("broken model")
    assert compute.activity() == (None, [])
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(compute.run("next", str, 7)))
    thread.start()
    _join(thread)
    assert got == ["7"]


def test_a_model_job_may_call_another_model_function_inside():
    def inner() -> str:
        with compute.model_job("inner") as settings:
            return f"inner with {settings.threads}"

    def outer() -> str:
        with compute.model_job("outer"):
            assert compute.activity() == ("outer", [])
            return compute.run("nested", inner)

    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(outer()))
    thread.start()
    _join(thread)  # no deadlock on itself
    assert result == [f"inner with {compute.settings().threads}"]
    assert compute.activity() == (None, [])


@pytest.mark.parametrize("threads", [1, 2])
def test_every_job_runs_with_the_configured_threads_in_its_own_thread(threads):
    import torch

    if threads > compute.available_cores():
        pytest.skip("more threads than this machine's cores are capped")

    compute.configure(threads=threads)
    seen: list[int] = []

    def job() -> None:
        torch.set_num_threads(3)  # a thread that had some other count
        with compute.model_job("count"):
            seen.append(torch.get_num_threads())

    thread = threading.Thread(target=job)
    thread.start()
    _join(thread)
    assert seen == [threads]
    assert compute.settings().threads == threads
    assert compute.settings().source == "configured"


def test_more_threads_than_cores_are_capped_and_say_so(monkeypatch):
    cores = compute.available_cores()
    monkeypatch.setenv(compute.THREADS_ENV, "10000")
    settings = compute.configure()
    assert settings.threads == cores
    assert settings.source == (
        f"XFR_THREADS: 10000 asked, capped at the {cores} core(s) available"
    )
    assert compute.configure(threads=cores + 1).threads == cores


def test_the_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv(compute.THREADS_ENV, raising=False)
    settings = compute.configure()
    assert settings.threads == len(os.sched_getaffinity(0))
    assert settings.source == "cores available"
    monkeypatch.setenv(compute.THREADS_ENV, "1")
    assert compute.configure() == compute.ComputeSettings(
        1, compute.THREADS_ENV, os.environ.get("OMP_WAIT_POLICY", "")
    )


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(compute.THREADS_ENV, value)
    with pytest.raises(BadInputError, match=f"XFR_THREADS='{value}': the number"):
        compute.configure()
    with pytest.raises(
        BadInputError, match=f"threads {value}: the number .* at least 1"
    ):
        compute.check_threads(value)


def test_the_cores_are_released_only_by_their_holder():
    first, _, release = _holder("first")
    with pytest.raises(RuntimeError, match="does not hold them"):
        compute._cores.release()
    release.set()
    _join(first)


def _wait_policy_after_import(env: dict[str, str]) -> str:
    code = (
        "import os, core.models, torch; "
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def test_importing_core_makes_openmp_wait_passively_unless_told_otherwise():
    # set before torch loads (core/__init__.py), which is when OpenMP reads it
    assert _wait_policy_after_import({}) == "PASSIVE None"
    assert _wait_policy_after_import({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE None"
    assert _wait_policy_after_import({"GOMP_SPINCOUNT": "300000"}) == "None 300000"
