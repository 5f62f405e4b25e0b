"""The Ray runner: shards as Ray tasks on a local Ray or the lab's cluster.

Nothing leaves the lab: Ray's usage statistics are switched off before Ray is
imported (``RAY_USAGE_STATS_ENABLED=0``), the dashboard is not started, and the
only addresses contacted are the local Ray this process starts or the cluster
given with ``--ray-address`` (docs/distributed.md).  The model goes to the
object store once, as weights bytes with their SHA-256 (:mod:`core.engine.payload`);
each task gets its shard's payload (image bytes read and hashed on the driver).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from core import compute
from core.engine.base import Shard, ShardFunction
from core.engine.payload import (
    ModelPayload,
    configure_worker_threads,
    model_from_payload,
    payload_for,
)
from core.errors import BadInputError, Cancelled, XfrError
from core.version import __version__

if TYPE_CHECKING:
    from core.models.base import FaceModel

NOT_INSTALLED = "ray is not installed: pip install 'xfr-desktop[distributed]'"
CONNECT_TIMEOUT_S = 5.0  # the address check (TCP connect, then Ray's answer)
JOIN_TIMEOUT_S = 30.0  # ray.init on a cluster that answered the check
# Ray environment settings applied before ray is imported: no usage statistics
# sent to Anyscale, no dashboard, no metrics exporter.
PRIVATE_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}
# Ray's C++ backend and gRPC log to stderr; only fatal lines are let through
# (a value the user set is kept), so an error stays one line.
QUIET_ENVIRONMENT = {
    "RAY_BACKEND_LOG_LEVEL": "fatal",
    "GRPC_VERBOSITY": "NONE",
}
# The HTTP/2 client preface and an empty SETTINGS frame: a Ray GCS (a gRPC
# server) answers with its own SETTINGS frame (type 4); anything else is no Ray.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(
    [0, 0, 0, 4, 0, 0, 0, 0, 0]
)


def import_ray() -> Any:
    """``ray``, with usage statistics off and its backend's logs quiet; one line
    when it is not installed."""
    os.environ.update(PRIVATE_ENVIRONMENT)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError:
        raise BadInputError(NOT_INSTALLED) from None
    return ray


def check_address(address: str) -> None:
    """``HOST:PORT`` (or ``ray://HOST:PORT``) must answer as a gRPC (HTTP/2)
    server, checked with a short timeout so that a wrong address - nothing
    listening, or another kind of server - is one line, not a minute's wait."""
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if host.startswith("[") or text.count(":") > 1:
        raise BadInputError(
            f"--ray-address {address!r}: IPv6 addresses are not supported; give "
            "the head's IPv4 address or host name as HOST:PORT"
        )
    if not host or not port.isdigit():
        raise BadInputError(
            f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379)"
        )
    if not 0 < int(port) < 65536:
        raise BadInputError(
            f"--ray-address {address!r}: port out of range (1 to 65535)"
        )
    try:
        with socket.create_connection(
            (host, int(port)), timeout=CONNECT_TIMEOUT_S
        ) as connection:
            connection.settimeout(CONNECT_TIMEOUT_S)
            connection.sendall(_HTTP2_PREFACE)
            answer = _read_at_most(connection, 9)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if isinstance(error, TimeoutError) or reason == "timed out":
            reason = f"no answer within {CONNECT_TIMEOUT_S:g} s"
        raise BadInputError(
            f"--ray-address {address}: no Ray cluster answers there ({reason}); "
            "is 'ray start --head' running on that machine?"
        ) from None
    if len(answer) < 9 or answer[3] != 4:  # not an HTTP/2 SETTINGS frame
        raise BadInputError(
            f"--ray-address {address}: no Ray cluster answers there (a server "
            "answers, but not Ray's); is the port the head's GCS port (6379)?"
        )


def _read_at_most(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def _backend_stderr_quiet() -> Iterator[None]:
    """File descriptor 2 to the null device for the block (Ray's C++ backend
    writes there directly; Python's ``sys.stderr`` is not affected when it is
    not fd 2, e.g. under pytest)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _init_bounded(ray: Any, timeout_s: float, **options: Any) -> None:
    """``ray.init`` in a helper thread, waited for at most ``timeout_s``: a
    cluster that accepts the connection and then never answers is one line."""
    import threading

    failure: list[BaseException] = []

    def start() -> None:
        try:
            ray.init(**options)
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=start, name="xfr-ray-init", daemon=True)
    with _backend_stderr_quiet():  # Ray's C++ client logs its retries on fd 2
        thread.start()
        thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if failure:
        raise failure[0]


def _run_task(
    fn: ShardFunction, payload: ModelPayload, shard_payload: Any, options: Any
) -> tuple[str, Any]:
    """A shard on a worker: the model from its payload, then the shard function."""
    configure_worker_threads(payload.threads)
    model = model_from_payload(payload)
    return __version__, fn(model, shard_payload, options)


class RayRunner:
    """Shards as Ray tasks, at most ``2 x CPUs`` in flight, merged by the caller."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        ray = import_ray()
        if address is not None:
            check_address(address)
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": True,
                "logging_level": "ERROR",
            }
            try:
                if address is None:
                    # the local workers inherit the driver's OpenMP thread count
                    os.environ.setdefault(
                        "OMP_NUM_THREADS", str(compute.settings().threads)
                    )
                    ray.init(num_cpus=num_cpus, **options)
                else:
                    _init_bounded(ray, JOIN_TIMEOUT_S, address=address, **options)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                where = address or "a local Ray"
                raise BadInputError(f"cannot start or join {where}: {first}") from None
        self._ray = ray
        # Ray gives each worker OMP_NUM_THREADS=1 unless told otherwise, and OpenMP
        # reads it when it starts: the workers get the driver's thread count (the
        # environment only, nothing shipped) so their gradients equal the local run's
        threads = str(compute.settings().threads)
        self._task = ray.remote(
            num_cpus=1,
            max_retries=1,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": threads}},
        )(_run_task)
        self._payloads: dict[str, Any] = {}  # weights SHA-256 -> object ref

    def _model_ref(self, model: FaceModel) -> Any:
        ref = self._payloads.get(model.weights_sha256)
        if ref is None:
            device = "cpu" if model.device.type == "cpu" else str(model.device)
            ref = self._ray.put(payload_for(model, device))
            self._payloads[model.weights_sha256] = ref
        return ref

    def in_flight_limit(self) -> int:
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        return max(2, 2 * cpus)

    def map(
        self,
        fn: ShardFunction,
        model: FaceModel,
        shards: Iterable[Shard],
        options: Any,
        on_done: Callable[[Shard, Any], None],
        cancel: Callable[[], bool] | None,
    ) -> None:
        ray = self._ray
        model_ref = self._model_ref(model)
        limit = self.in_flight_limit()
        pending: dict[Any, Shard] = {}
        source = iter(shards)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    if cancel is not None and cancel():
                        raise Cancelled("cancelled between shards")
                    shard = next(source, None)
                    if shard is None:
                        exhausted = True
                        break
                    ref = self._task.remote(fn, model_ref, shard.payload, options)
                    pending[ref] = shard
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    shard = pending.pop(ref)
                    version, result = self._get(ref)
                    if version != __version__:
                        raise BadInputError(
                            f"a Ray worker runs XFR {version}, this is {__version__}: "
                            "install the same version on every machine of the cluster"
                        )
                    on_done(shard, result)
                if cancel is not None and cancel():
                    raise Cancelled("cancelled between shards")
        finally:
            for ref in pending:
                ray.cancel(ref, force=False)

    def _get(self, ref: Any) -> tuple[str, Any]:
        ray = self._ray
        try:
            value: tuple[str, Any] = ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, XfrError):
                raise cause from None
            text = str(cause if cause is not None else error).strip().splitlines()
            raise BadInputError(
                f"a Ray worker failed: {text[-1] if text else type(error).__name__}"
            ) from None
        except ray.exceptions.RayError as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise BadInputError(f"the Ray cluster failed: {first}") from None
        return value

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
