"""The runners' registry: ``--engine NAME`` -> an :class:`Engine`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.engine.base import (
    ENGINE_IDS,
    Engine,
    LocalRunner,
    Runner,
    checkpoint_folder,
)
from core.errors import BadInputError
from core.progress import ProgressCallback


def make_engine(
    name: str,
    *,
    address: str | None = None,
    checkpoint: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Engine:
    """``--engine NAME [--ray-address ADDR] [--checkpoint DIR]`` -> an Engine.

    ``ray`` without an address starts a local Ray; with one it connects to the
    lab's cluster (one line when it cannot, or when ray is not installed).
    """
    runner: Runner
    if name == "local":
        if address is not None:
            raise BadInputError("--ray-address is for --engine ray")
        runner = LocalRunner()
    elif name == "ray":
        from core.engine.ray_runner import RayRunner

        runner = RayRunner(address)
    else:
        raise BadInputError(f"--engine {name!r} is not one of {', '.join(ENGINE_IDS)}")
    folder = None if checkpoint is None else checkpoint_folder(checkpoint)
    return Engine(runner, folder, progress, cancel)
