"""The runner protocol, the runners' registry, shard keys and the checkpoint folder.

``run_sharded`` is the one loop every distributed command goes through: for each
shard (made lazily by the caller, in order) it looks the shard's key up in the
checkpoint folder, hands the shards not found there to the runner, writes each
finished shard's result atomically as it arrives, streams progress, and returns
the results in shard order.  A shard's key is a SHA-256 over the command, its
parameters, the SHA-256 of every file the shard reads, the model's weights
SHA-256 and the software version; ``run_sharded`` stores it under a key that
adds the model's whole identity (its card's SHA-256, its parsed preprocessing,
threshold and embedding output, and the device), so a changed input, model,
card, device, parameter or version never reuses a stale result: it is another
key and is computed again.

Each shard file is authenticated with an HMAC-SHA256 under a key kept outside
the checkpoint folder (:func:`checkpoint_key`): a shard edited by hand, even with
its checksum recomputed, is refused with one line naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core import compute
from core.errors import BadInputError, Cancelled
from core.io.atomic import fsync_dir, remove_quietly
from core.progress import ProgressCallback
from core.version import __version__

if TYPE_CHECKING:
    from core.models.base import FaceModel

ENGINE_IDS = ("local", "ray")
CHECKPOINT_FORMAT = "xfr-shard/2"  # /2: HMAC-SHA256 authenticated, model identity keyed
CHECKPOINT_KEY_ENV = "XFR_CHECKPOINT_KEY"
"""Environment variable: the secret that authenticates checkpoint shards (any
text of at least 16 characters); without it, the per-user key file is used."""
CHECKPOINT_KEY_FILE = "checkpoint.key"  # in the user's XFR config folder, mode 0600

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
        """The run's engine facts, recorded in every output of the run."""
        return {
            "engine": self.name,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            **self.stats.to_dict(),
        }

    def facts(self) -> str:
        """:meth:`describe` as one sentence (text outputs, calibration records)."""
        from core.wording import engine_facts

        folder = None if self.checkpoint is None else str(self.checkpoint)
        return engine_facts(self.name, folder, self.stats.computed, self.stats.reused)


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


def model_identity(model: FaceModel) -> dict[str, Any]:
    """Everything about the model a shard's result depends on besides its weights
    hash: the card file's SHA-256 (a model file's card), the parsed preprocessing
    (input size, channel order, mean/std, alignment, flip averaging), threshold
    and embedding output, the embedding size and the device.  A changed card or
    device therefore makes another key: stale embeddings are never reused."""
    card = getattr(model, "card", None)
    card_path = getattr(card, "path", None)
    card_sha256: str | None = None
    if card_path is not None:
        try:
            card_sha256 = hashlib.sha256(Path(card_path).read_bytes()).hexdigest()
        except OSError as error:
            raise BadInputError(
                f"cannot read the model card ({error.strerror})", Path(card_path)
            ) from None
    try:
        device = str(model.device)
    except (AttributeError, StopIteration):  # a model without parameters
        device = "cpu"
    return {
        "model_id": getattr(model, "model_id", None),
        "weights_sha256": getattr(model, "weights_sha256", None),
        "card_sha256": card_sha256,
        "preprocessing": _plain(getattr(model, "preprocessing", None)),
        "threshold": _plain(getattr(model, "threshold", None)),
        "embedding_output": getattr(card, "embedding_output", None),
        "embedding_dim": getattr(model, "embedding_dim", None),
        "device": device,
        # gradients differ in their last bits between thread counts
        "torch_threads": compute.settings().threads,
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return None if value is None else repr(value)


def stored_key(key: str, identity: dict[str, Any]) -> str:
    """The name a shard is kept under: its key with the model's identity."""
    return _digest({"shard_key": key, "model": identity})


def checkpoint_key() -> bytes:
    """The secret that authenticates shard files, never kept in the checkpoint
    folder: ``XFR_CHECKPOINT_KEY`` when set (the same on every machine that shares
    a checkpoint folder), else a per-user key file (32 random bytes, created once
    with mode 0600 in the user's XFR config folder).  Whoever can read the key can
    forge a shard; it protects against an edited or swapped shard file by anyone
    who can write the checkpoint folder but not read the key."""
    text = os.environ.get(CHECKPOINT_KEY_ENV)
    if text is not None:
        if len(text) < 16:
            raise BadInputError(
                f"{CHECKPOINT_KEY_ENV} must be at least 16 characters "
                "(a secret shared by the machines that share a checkpoint folder)"
            )
        return text.encode("utf-8")
    from core.io.userdirs import user_config_dir

    path = user_config_dir() / CHECKPOINT_KEY_FILE
    try:
        return _key_from_file(path)
    except OSError as error:
        raise BadInputError(
            f"cannot read or create the checkpoint key ({error.strerror}); set "
            f"{CHECKPOINT_KEY_ENV} instead",
            path,
        ) from None


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole under a temporary name, then linked into place: a reader
        # never sees a half-written key, and the first of two makers wins
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(secrets.token_hex(32).encode("ascii"))
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            try:
                os.link(temporary, path)
            except FileExistsError:  # another process made it first: use theirs
                pass
        finally:
            os.unlink(temporary)
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise BadInputError(
            "the checkpoint key file is empty or too short; delete it to make a "
            "new one (shards written with the old key are then refused)",
            path,
        )
    return key


def _digest(encoded: Any) -> str:
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _mac(secret: bytes, record: dict[str, Any]) -> str:
    """HMAC-SHA256 over the whole record but its ``mac`` (canonical JSON)."""
    body = {name: value for name, value in record.items() if name != "mac"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def shard_file(folder: Path, key: str) -> Path:
    return folder / f"shard-{key}.json"


def read_shard(folder: Path, key: str, secret: bytes | None = None) -> Any | None:
    """A finished shard's encoded result, None when there is none; a damaged,
    altered or unauthenticated file is one line naming it (never silently
    recomputed or used)."""
    path = shard_file(folder, key)
    if not path.is_file():
        return None
    secret = checkpoint_key() if secret is None else secret
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        valid = (
            record["format"] == CHECKPOINT_FORMAT
            and record["key"] == key
            and record["result_sha256"] == _digest(record["result"])
        )
        authentic = valid and hmac.compare_digest(
            str(record["mac"]), _mac(secret, record)
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        valid = authentic = False
    if not valid:
        raise BadInputError(
            "damaged or altered checkpoint shard (its format, key or checksum does "
            "not match); delete the file to compute the shard again",
            path,
        )
    if not authentic:
        raise BadInputError(
            "checkpoint shard not authenticated: its HMAC does not match this "
            "user's checkpoint key (edited, or written with another key; see "
            f"{CHECKPOINT_KEY_ENV}); delete the file to compute the shard again",
            path,
        )
    return record["result"]


def write_shard(
    folder: Path, key: str, command: str, encoded: Any, secret: bytes | None = None
) -> None:
    """The shard's record, written atomically under a unique temporary name (two
    runs sharing a folder never collide); one line naming the file on failure."""
    record: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "key": key,
        "command": command,
        "software_version": __version__,
        "result_sha256": _digest(encoded),
        "result": encoded,
    }
    record["mac"] = _mac(checkpoint_key() if secret is None else secret, record)
    data = json.dumps(record).encode("utf-8")
    target = shard_file(folder, key)
    temp: Path | None = None
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".partial", dir=folder
        )
        temp = Path(name)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
        temp = None
        fsync_dir(folder)
    except OSError as error:
        if temp is not None:
            remove_quietly(temp)
        if _same_content(target, data):  # another run wrote the same shard
            return
        reason = error.strerror or type(error).__name__
        raise BadInputError(
            f"cannot write the checkpoint shard ({reason}); free space or choose "
            "another --checkpoint folder",
            target,
        ) from None


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


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
    folder = engine.checkpoint
    secret = checkpoint_key() if folder is not None else b""
    identity = model_identity(model) if folder is not None else {}

    def finished(shard: Shard, result: Any, reused: bool) -> None:
        nonlocal done_items
        results[shard.index] = result
        if reused:
            stats.reused += 1
        else:
            stats.computed += 1
            if folder is not None:
                name = stored_key(shard.key, identity)
                write_shard(folder, name, command, encode(result), secret)
        done_items += shard.size
        if progress is not None:
            what = "from the checkpoint" if reused else f"on {engine.name}"
            progress(done_items, total, f"shard {shard.index + 1} {what}")

    def to_compute() -> Iterator[Shard]:
        for shard in shards:
            stats.shards += 1
            if folder is not None:
                name = stored_key(shard.key, identity)
                encoded = read_shard(folder, name, secret)
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
