"""The built-in face models and model-file suffixes, without torch or numpy.

What a parser, a menu or the settings need to *name* models: the built-in ids with
their descriptions, the default id, and the suffixes that make an argument a model
file rather than an id.  Importing this module loads no backend (torch takes seconds
to import); loading a model is ``core.models.loading.load_model``.

A new built-in model is one ``ModelInfo`` in ``BUILTIN_MODELS`` here and one line
in ``core.models.model_registry.BUILTIN_BACKENDS`` naming the class that builds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.resources import RESNET_FILE


@dataclass(frozen=True)
class ModelInfo:
    """What the registry lists without loading weights."""

    model_id: str
    display_name: str
    description: str
    source: str  # where the weights come from (package, file path)


DEFAULT_MODEL_ID = "dlib-resnet-v1"

BUILTIN_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        model_id=DEFAULT_MODEL_ID,
        display_name="dlib ResNet v1 (torch port)",
        description=(
            "dlib's dlib_face_recognition_resnet_model_v1 (public domain), "
            "29-layer ResNet, 150×150 chips, 128-d descriptors; weights read from "
            "the face-recognition-models package"
        ),
        source=f"face-recognition-models:{RESNET_FILE}",
    ),
)

# Suffixes of model files (``core.models.onnx_model``).  ``.pth`` is listed so that
# a pickle is recognised as a model file - and refused there, with a reason -
# instead of being looked up as a registry id.
ONNX_SUFFIXES = frozenset({".onnx"})
TORCHSCRIPT_SUFFIXES = frozenset({".pt", ".ts", ".torchscript"})
MODEL_SUFFIXES = ONNX_SUFFIXES | TORCHSCRIPT_SUFFIXES | {".pth"}


def builtin_model_ids() -> list[str]:
    """The ids of the built-in models, the default first."""
    return [info.model_id for info in BUILTIN_MODELS]


def is_model_file(model: str | os.PathLike[str]) -> bool:
    """True when ``model`` names a model file (by suffix), not a registry id."""
    return Path(model).suffix.lower() in MODEL_SUFFIXES
