"""The model registry: ids -> face models, loaded lazily and cached per device.

The built-in models are listed from ``core.models.ids`` (no backend imported);
``BUILTIN_BACKENDS`` names the class that builds each one, imported only when the
model is first loaded, so that ``core.models.base`` (the protocol) never imports a
backend and a backend is free to import the protocol.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from core.errors import UnknownModelError
from core.models.base import FaceModel, resolve_device
from core.models.ids import BUILTIN_MODELS, DEFAULT_MODEL_ID, ModelInfo

# Built-in model id -> "module:class" of the backend that builds it (no arguments).
BUILTIN_BACKENDS: dict[str, str] = {
    DEFAULT_MODEL_ID: "core.models.dlib_resnet:DlibResNetModel",
}


@dataclass
class _Entry:
    info: ModelInfo
    loader: Callable[[], FaceModel]
    instances: dict[str, FaceModel] = field(default_factory=dict)


class ModelRegistry:
    """Models the application can use, loaded lazily and cached per device."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def register(self, info: ModelInfo, loader: Callable[[], FaceModel]) -> None:
        if info.model_id in self._entries:
            raise ValueError(f"model id '{info.model_id}' registered twice")
        self._entries[info.model_id] = _Entry(info, loader)

    def infos(self) -> list[ModelInfo]:
        return [entry.info for entry in self._entries.values()]

    def ids(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries

    def load(self, model_id: str, device: str | torch.device = "auto") -> FaceModel:
        entry = self._entries.get(model_id)
        if entry is None:
            known = ", ".join(self._entries) or "none"
            raise UnknownModelError(f"unknown model '{model_id}' (available: {known})")
        target = resolve_device(device)
        with self._lock:
            model = entry.instances.get(str(target))
            if model is None:
                model = entry.loader().to(target)
                model.network.eval()
                entry.instances[str(target)] = model
        return model


def backend_loader(backend: str) -> Callable[[], FaceModel]:
    """A loader that imports ``"module:class"`` when called and builds the model."""

    def load() -> FaceModel:
        module_name, _, class_name = backend.partition(":")
        model_class = getattr(importlib.import_module(module_name), class_name)
        model: FaceModel = model_class()
        return model

    return load


def register_builtins(target: ModelRegistry) -> None:
    """Register every built-in model of ``core.models.ids`` (weights load lazily)."""
    for info in BUILTIN_MODELS:
        target.register(info, backend_loader(BUILTIN_BACKENDS[info.model_id]))


_registry: ModelRegistry | None = None


def registry() -> ModelRegistry:
    """The process-wide registry, with the built-in models registered."""
    global _registry
    if _registry is None:
        _registry = ModelRegistry()
        register_builtins(_registry)
    return _registry
