"""Face-recognition model backends, their registry and the one model loader.

* ``core.models.ids`` - built-in ids and descriptions, model-file suffixes (no torch);
* ``core.models.base`` - the ``FaceModel`` protocol and its plain data types;
* ``core.models.model_registry`` - ids -> models, loaded lazily, cached per device;
* ``core.models.loading`` - ``load_model``: a registry id or a model file + card;
* backends: ``dlib_resnet`` (built in), ``onnx_model`` (bring-your-own files).

Names from ``ids`` are bound on import; the torch-bound names are imported on first
use, so ``from core.models import DEFAULT_MODEL_ID`` (a parser default, a settings
field) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.models.ids import DEFAULT_MODEL_ID, MODEL_SUFFIXES, ModelInfo

if TYPE_CHECKING:
    from core.models.base import (
        FaceModel,
        LayerTap,
        Preprocessing,
        Threshold,
        resolve_device,
    )
    from core.models.loading import load_model
    from core.models.model_registry import ModelRegistry, registry

# public name -> the module that defines it (imported on first use)
_TORCH_BOUND = {
    "FaceModel": "core.models.base",
    "LayerTap": "core.models.base",
    "Preprocessing": "core.models.base",
    "Threshold": "core.models.base",
    "resolve_device": "core.models.base",
    "ModelRegistry": "core.models.model_registry",
    "registry": "core.models.model_registry",
    "load_model": "core.models.loading",
}

__all__ = [
    "DEFAULT_MODEL_ID",
    "MODEL_SUFFIXES",
    "FaceModel",
    "LayerTap",
    "ModelInfo",
    "ModelRegistry",
    "Preprocessing",
    "Threshold",
    "load_model",
    "registry",
    "resolve_device",
]


def __getattr__(name: str) -> Any:
    module = _TORCH_BOUND.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
