"""GUI model jobs (``TaskRunner(model_job=...)``): they take turns for the cores
through ``core.compute``, say that they wait, can be cancelled while they wait, and
never hold the threads of the ordinary task pool.  Events and signals, no timings.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from core import compute
from xfr_desktop.workers import TaskRunner, model_pool, task_pool

JOIN_S = 20


def _until(condition) -> None:
    pause = threading.Event()
    while not condition():
        pause.wait(0.005)


@pytest.fixture
def runners():
    made: list[TaskRunner] = []

    def make(**kwargs) -> TaskRunner:
        made.append(TaskRunner(**kwargs))
        return made[-1]

    yield make
    for each in made:
        assert each.shutdown(JOIN_S)
    assert compute.activity() == (None, [])


def test_model_jobs_take_turns_and_say_that_they_wait(qtbot, runners):
    ranking = runners(model_job="ranking")
    explanation = runners(model_job="explanation")
    assert ranking._pool is model_pool() and ranking._pool is not task_pool()
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def hold() -> str:
        holding.set()
        assert release.wait(JOIN_S)
        order.append("ranking")
        return "ranked"

    def explain() -> str:
        order.append("explanation")
        return "explained"

    waiting: list[str] = []
    explanation.progress.connect(lambda done, total, message: waiting.append(message))
    ranking.start(hold)
    assert holding.wait(JOIN_S)
    with qtbot.waitSignal(explanation.result, timeout=JOIN_S * 1000) as blocker:
        explanation.start(explain)
        _until(lambda: compute.activity() == ("ranking", ["explanation"]))
        qtbot.waitUntil(lambda: bool(waiting), timeout=JOIN_S * 1000)
        assert order == []  # the explanation waits while the ranking holds the cores
        release.set()
    assert blocker.args == ["explained"]
    assert order == ["ranking", "explanation"]
    assert waiting[0] == (
        "Waiting for the processor: 1 model job ahead (ranking is running)"
    )


def test_a_model_job_waiting_for_the_cores_can_be_cancelled(qtbot, runners):
    channels = runners(model_job="channels")
    holding, release = threading.Event(), threading.Event()
    results: list[object] = []
    channels.result.connect(results.append)

    def hold() -> None:
        with compute.model_job("explanation"):
            holding.set()
            release.wait(JOIN_S)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(JOIN_S)
    ran: list[bool] = []
    with qtbot.waitSignals(
        [channels.cancelled, channels.finished], timeout=JOIN_S * 1000
    ):
        channels.start(lambda: ran.append(True))
        _until(lambda: compute.activity()[1] == ["channels"])
        channels.cancel()
    # it ended while the other job still held the cores, without running
    assert compute.activity() == ("explanation", [])
    assert ran == [] and results == []
    release.set()
    holder.join(JOIN_S)
    assert not holder.is_alive()


def test_ordinary_tasks_do_not_wait_for_the_cores(qtbot, runners):
    thumbnails = runners()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with compute.model_job("explanation"):
            holding.set()
            release.wait(JOIN_S)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(JOIN_S)
    try:
        with qtbot.waitSignal(thumbnails.result, timeout=JOIN_S * 1000) as blocker:
            thumbnails.start(lambda: "thumbnail")
        assert blocker.args == ["thumbnail"]
        assert compute.activity() == ("explanation", [])  # it never queued
    finally:
        release.set()
        holder.join(JOIN_S)
