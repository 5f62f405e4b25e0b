"""Face-recognition model backends and their registry."""

from core.models.base import (
    DEFAULT_MODEL_ID,
    FaceModel,
    LayerTap,
    ModelInfo,
    ModelRegistry,
    Preprocessing,
    Threshold,
    registry,
    resolve_device,
)

__all__ = [
    "DEFAULT_MODEL_ID",
    "FaceModel",
    "LayerTap",
    "ModelInfo",
    "ModelRegistry",
    "Preprocessing",
    "Threshold",
    "registry",
    "resolve_device",
]
