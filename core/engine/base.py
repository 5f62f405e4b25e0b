"""The runner protocol, the runners' registry, shard keys and the checkpoint folder.

``run_sharded`` is the one loop every distributed command goes through: for each
shard (made lazily by the caller, in order) it looks the shard's key up in the
checkpoint folder, hands the shards not found there to the runner, writes each
finished shard's result atomically as it arrives, streams progress, and returns
the results in shard order.  A shard's key is a SHA-256 over the command, its
parameters, the SHA-256 of every file the shard reads, the model's weights
SHA-256 and the software version, so a changed input, model, parameter or
version never reuses a stale result: it is another key and is computed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import BadInputError, Cancelled
from core.io.atomic import write_atomic
from core.progress import ProgressCallback
from core.version import __version__

if TYPE_CHECKING:
    from core.models.base import FaceModel

ENGINE_IDS = ("local", "ray")
CHECKPOINT_FORMAT = "xfr-shard/1"

ShardFunction = Callable[["FaceModel", Any, Any], Any]
"""``(model, shard payload, options) -> result``: pure, module-level (a Ray
worker imports it by name), the same function whichever runner calls it."""


@dataclass(frozen=True)
class Shard:
    """One unit of work: its place, its key, what is shipped and its size."""

    index: int  # the shard's place in the merge order
    key: str  # shard_key(...)
    payload: Any  # everything the shard function needs besides the model
    size: int  # items (images, pairs) in it, for progress


class Runner(Protocol):
    """Runs a shard function over shards; calls ``on_done`` as each finishes."""

    name: str

    def map(
        self,
        fn: ShardFunction,
        model: FaceModel,
        shards: Iterable[Shard],
        options: Any,
        on_done: Callable[[Shard, Any], None],
        cancel: Callable[[], bool] | None,
    ) -> None: ...

    def close(self) -> None: ...


class LocalRunner:
    """Today's in-process runner: the shards one after another, in order."""

    name = "local"

    def map(
        self,
        fn: ShardFunction,
        model: FaceModel,
        shards: Iterable[Shard],
        options: Any,
        on_done: Callable[[Shard, Any], None],
        cancel: Callable[[], bool] | None,
    ) -> None:
        for shard in shards:
            if cancel is not None and cancel():
                raise Cancelled("cancelled between shards")
            on_done(shard, fn(model, shard.payload, options))

    def close(self) -> None:
        pass


@dataclass
class RunStats:
    """What the last ``run_sharded`` did: shards computed now and reused."""

    shards: int = 0
    computed: int = 0
    reused: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"shards": self.shards, "computed": self.computed, "reused": self.reused}


@dataclass
class Engine:
    """A runner with its checkpoint folder, progress and cancel callbacks."""

    runner: Runner
    checkpoint: Path | None = None
    progress: ProgressCallback | None = None
    cancel: Callable[[], bool] | None = None
    stats: RunStats = field(default_factory=RunStats)
    shard_size: int | None = None  # items per shard (None: the command's default)

    @property
    def name(self) -> str:
        return self.runner.name

    def close(self) -> None:
        self.runner.close()

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            **self.stats.to_dict(),
        }


def checkpoint_folder(path: str | Path) -> Path:
    """The checkpoint folder, created if needed (one line when it cannot be)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise BadInputError("--checkpoint must be a folder, this is a file", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(
            f"--checkpoint: cannot create the folder ({error.strerror})", folder
        ) from None
    return folder


def shard_key(
    command: str,
    parameters: dict[str, Any],
    file_hashes: Sequence[tuple[str, str]],
    weights_sha256: str,
    version: str = __version__,
) -> str:
    """SHA-256 of everything a shard's result depends on (JSON, sorted keys)."""
    text = json.dumps(
        {
            "command": command,
            "parameters": parameters,
            "files": [list(item) for item in file_hashes],
            "weights_sha256": weights_sha256,
            "software_version": version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(encoded: Any) -> str:
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def shard_file(folder: Path, key: str) -> Path:
    return folder / f"shard-{key}.json"


def read_shard(folder: Path, key: str) -> Any | None:
    """A finished shard's encoded result, None when there is none; a damaged or
    altered file is one line naming it (never silently recomputed or used)."""
    path = shard_file(folder, key)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        valid = (
            record["format"] == CHECKPOINT_FORMAT
            and record["key"] == key
            and record["result_sha256"] == _digest(record["result"])
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise BadInputError(
            "damaged or altered checkpoint shard (its key or checksum does not "
            "match); delete the file to compute the shard again",
            path,
        )
    return record["result"]


def write_shard(folder: Path, key: str, command: str, encoded: Any) -> None:
    record = {
        "format": CHECKPOINT_FORMAT,
        "key": key,
        "command": command,
        "software_version": __version__,
        "result_sha256": _digest(encoded),
        "result": encoded,
    }
    write_atomic(shard_file(folder, key), json.dumps(record).encode("utf-8"))


def run_sharded(
    engine: Engine,
    fn: ShardFunction,
    model: FaceModel,
    shards: Iterable[Shard],
    options: Any,
    *,
    command: str,
    total: int,
    encode: Callable[[Any], Any],
    decode: Callable[[Any], Any],
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Any]:
    """``fn`` over ``shards`` on the engine's runner; results in shard order.

    ``encode``/``decode``: a result to and from JSON-able data (the checkpoint);
    ``total``: the items of all shards (progress counts items, shard by shard).
    """
    results: dict[int, Any] = {}
    stats = engine.stats
    progress = progress if progress is not None else engine.progress
    stop = _either(cancel, engine.cancel)
    done_items = 0

    def finished(shard: Shard, result: Any, reused: bool) -> None:
        nonlocal done_items
        results[shard.index] = result
        if reused:
            stats.reused += 1
        else:
            stats.computed += 1
            if engine.checkpoint is not None:
                write_shard(engine.checkpoint, shard.key, command, encode(result))
        done_items += shard.size
        if progress is not None:
            what = "from the checkpoint" if reused else f"on {engine.name}"
            progress(done_items, total, f"shard {shard.index + 1} {what}")

    def to_compute() -> Iterator[Shard]:
        for shard in shards:
            stats.shards += 1
            if engine.checkpoint is not None:
                encoded = read_shard(engine.checkpoint, shard.key)
                if encoded is not None:
                    finished(shard, decode(encoded), True)
                    continue
            yield shard

    engine.runner.map(
        fn,
        model,
        to_compute(),
        options,
        lambda shard, result: finished(shard, result, False),
        stop,
    )
    return [results[index] for index in sorted(results)]


def _either(
    first: Callable[[], bool] | None, second: Callable[[], bool] | None
) -> Callable[[], bool] | None:
    if first is None or second is None:
        return first or second
    return lambda: first() or second()
