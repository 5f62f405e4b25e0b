"""The model as it is shipped to a worker: its weights by hash, never by path.

The driver reads the model's weights file (and its card, for a model file) once,
checks the bytes against the SHA-256 the model was loaded with, and the runner
puts them in the cluster's object store once.  A worker checks the SHA-256 of the
bytes it received against the expected hash before loading anything, so a worker
never needs the driver's file system, and never runs with other weights than the
driver's.  A worker keeps the model it built for the rest of its life (one
load per worker process and weights hash).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core import compute
from core.errors import BadInputError

if TYPE_CHECKING:
    from core.models.base import FaceModel

WORKER_THREADS = 1  # torch threads per worker task (a task holds one CPU)


@dataclass(frozen=True)
class ModelPayload:
    """Everything a worker needs to rebuild the driver's model."""

    model_id: str
    weights_sha256: str  # the driver's model's: what the worker must receive
    kind: str  # "builtin" (a registry backend class) or "file" (ONNX/TorchScript)
    file_name: str
    weights: bytes
    card_name: str | None = None
    card: bytes | None = None
    trust_code: bool = False
    device: str = "cpu"
    # the driver's torch threads: gradients (sanity, faithfulness maps) differ in
    # their last bits between thread counts, so workers use the driver's count and
    # the Ray tables equal the local ones exactly
    threads: int = 1

    def without_bytes(self) -> str:
        return f"{self.model_id} (weights SHA-256 {self.weights_sha256})"


def payload_for(model: FaceModel, device: str = "cpu") -> ModelPayload:
    """The driver's model as a payload (one line when it cannot be shipped)."""
    from core.models.model_registry import BUILTIN_BACKENDS

    path = getattr(model, "path", None)
    if path is None:
        raise BadInputError(
            f"model {model.model_id} has no weights file to ship to Ray workers; "
            "use --engine local"
        )
    path = Path(path)
    try:
        weights = path.read_bytes()
    except OSError as error:
        raise BadInputError(
            f"cannot read the model's weights ({error.strerror})", path
        ) from None
    digest = hashlib.sha256(weights).hexdigest()
    if digest != model.weights_sha256:
        raise BadInputError(
            f"the weights file changed since the model was loaded (SHA-256 "
            f"{digest[:12]}…, loaded {model.weights_sha256[:12]}…)",
            path,
        )
    card = getattr(model, "card", None)
    if card is None and model.model_id in BUILTIN_BACKENDS:
        return ModelPayload(
            model.model_id,
            digest,
            "builtin",
            path.name,
            weights,
            device=device,
            threads=compute.settings().threads,
        )
    card_path = getattr(card, "path", None)
    if card_path is None:
        raise BadInputError(
            f"model {model.model_id} has no model card file to ship to Ray workers; "
            "use --engine local"
        )
    card_path = Path(card_path)
    return ModelPayload(
        model.model_id,
        digest,
        "file",
        path.name,
        weights,
        card_name=card_path.name,
        card=card_path.read_bytes(),
        trust_code=model.code_trusted,
        device=device,
        threads=compute.settings().threads,
    )


_models: dict[tuple[str, str], FaceModel] = {}
_lock = threading.Lock()


def model_from_payload(payload: ModelPayload) -> FaceModel:
    """The worker's model, built once per weights hash after checking the bytes."""
    received = hashlib.sha256(payload.weights).hexdigest()
    if received != payload.weights_sha256:
        raise BadInputError(
            f"the model weights a worker received have SHA-256 {received[:12]}…, "
            f"not the expected {payload.weights_sha256[:12]}… of "
            f"{payload.model_id}; refused before loading"
        )
    with _lock:
        key = (payload.weights_sha256, payload.device)
        model = _models.get(key)
        if model is None:
            model = _build(payload)
            _models[key] = model
    return model


def _build(payload: ModelPayload) -> FaceModel:
    import importlib

    from core.models.model_registry import BUILTIN_BACKENDS
    from core.models.onnx_model import load_model_file

    folder = Path(tempfile.mkdtemp(prefix="xfr-weights-"))
    try:
        weights = folder / payload.file_name
        weights.write_bytes(payload.weights)
        if payload.kind == "builtin":
            module_name, _, class_name = BUILTIN_BACKENDS[payload.model_id].partition(
                ":"
            )
            model_class = getattr(importlib.import_module(module_name), class_name)
            model: FaceModel = model_class(weights)
        else:
            assert payload.card_name is not None and payload.card is not None
            card = folder / payload.card_name
            card.write_bytes(payload.card)
            model = load_model_file(weights, card, trust_code=payload.trust_code)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if model.weights_sha256 != payload.weights_sha256:  # the loader hashed it again
        raise BadInputError(
            f"the worker's model {model.model_id} hashes to "
            f"{model.weights_sha256[:12]}…, not {payload.weights_sha256[:12]}…"
        )
    model.to(payload.device)
    model.network.eval()
    return model


def configure_worker_threads(threads: int = WORKER_THREADS) -> None:
    """The torch threads of a worker process, through the compute executor (so a
    worker's model jobs use the same thread rule as the app's)."""
    compute.configure(threads=threads)
