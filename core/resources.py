"""Locate the model files shipped by the PyPI package ``face-recognition-models``.

That package's ``__init__`` imports ``pkg_resources``, which current setuptools no
longer provides, so it is never imported: its data folder is found through
``importlib.util.find_spec`` (which reads the package location without executing it).
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from core.errors import ModelFileError

DLIB_MODELS_PACKAGE = "face_recognition_models"

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_5_FILE = "shape_predictor_5_face_landmarks.dat"
SHAPE_68_FILE = "shape_predictor_68_face_landmarks.dat"
MMOD_FILE = "mmod_human_face_detector.dat"


@cache
def dlib_models_dir() -> Path:
    """Folder holding dlib's ``.dat`` model files, without importing the package."""
    spec = importlib.util.find_spec(DLIB_MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "the package 'face-recognition-models' is not installed; "
            "install it with: pip install face-recognition-models",
            DLIB_MODELS_PACKAGE,
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not folder.is_dir():
        raise ModelFileError("model folder missing from the installed package", folder)
    return folder


def dlib_model_file(name: str) -> Path:
    """Path of one of dlib's model files; a clear error if it is not there."""
    path = dlib_models_dir() / name
    if not path.is_file():
        raise ModelFileError("model file missing", path)
    return path


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (evidence and models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
