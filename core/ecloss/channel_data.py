"""The inputs of the channel analysis: aligned face chips with their 68 landmarks
(from a folder, a ``pairs.txt`` or a case) and a layer's feature maps over them.

Alignment of image files is cached by :func:`core.train_data.align_face_files`;
the feature maps are computed afresh for each analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import BadInputError, Cancelled
from core.models.base import FaceModel
from core.progress import ProgressCallback


# ---- face chips with landmarks -------------------------------------------------------
@dataclass
class FaceChips:
    """Aligned chips and their 68 landmarks in chip coordinates."""

    chips: np.ndarray = field(repr=False)  # (N, H, W, 3) uint8
    landmarks68: np.ndarray = field(repr=False)  # (N, 68, 2)
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.chips)


def _image_files(data: Path) -> list[Path]:
    from core.evaluation import IMAGE_SUFFIXES, pairs_for

    if data.is_file() and data.suffix.lower() == ".txt":
        pairs, _ = pairs_for(data)
        return sorted({p for pair in pairs for p in (pair.first, pair.second)})
    if not data.is_dir():
        raise BadInputError(
            "not a folder of images, a folder of identities or a pairs.txt", data
        )
    files = sorted(
        p for p in data.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise BadInputError("no images found", data)
    return files


def detect_face_chips(
    files: Sequence[Path],
    preprocessing: Any,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Detect the largest face of each image (with 68 landmarks) and align it
    (``core.train_data.align_face_files``; images without a face are listed in
    ``skipped``; cached in ``cache_dir``)."""
    from core.train_data import align_face_files

    faces = align_face_files(
        list(files),
        preprocessing,
        cache_dir=cache_dir,
        progress=progress,
        cancel=cancel,
    )
    return FaceChips(faces.chips, faces.landmarks68, faces.paths, faces.skipped)


def _face_chips(
    chips: list[np.ndarray],
    marks: list[np.ndarray],
    names: list[str],
    skipped: list[str],
) -> FaceChips:
    if not chips:
        return FaceChips(
            np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 68, 2)), [], skipped
        )
    return FaceChips(
        np.stack(chips), np.asarray(marks, np.float32), list(names), list(skipped)
    )


def load_face_chips(
    data: str | Path,
    preprocessing: Any,
    *,
    max_images: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Faces of a folder of images (any depth, e.g. ``DIR/<person>/``) or of the
    images a ``pairs.txt`` names; ``max_images`` keeps a seeded random sample."""
    data = Path(data)
    files = _image_files(data)
    if max_images is not None and max_images < len(files):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(files), max(1, max_images), replace=False))
        files = [files[i] for i in keep]
    faces = detect_face_chips(
        files, preprocessing, cache_dir=cache_dir, progress=progress, cancel=cancel
    )
    if not len(faces):
        raise BadInputError("no face could be found in any image", data)
    return faces


def case_face_chips(
    case: Any,
    preprocessing: Any,
    *,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Every face recorded in a case, aligned from the case's copy of the evidence.

    Faces without stored 68 landmarks (marked by hand) get them predicted inside the
    face's box.
    """
    from core.faces.align import chip_for_model
    from core.faces.detect import FaceDetector
    from core.imageio import load_image

    faces = case.faces()
    detector = FaceDetector.shared()
    chips: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    names: list[str] = []
    skipped: list[str] = []
    for number, stored in enumerate(faces, start=1):
        if cancel is not None and cancel():
            raise Cancelled("reading the case's faces was cancelled")
        if progress is not None:
            progress(number, len(faces), f"aligning {stored.label}")
        try:
            image = load_image(case.evidence_path(case.exhibit(stored.mark)))
            face = stored.to_face()
            if face.landmarks68 is None:
                face = detector.face_in_box(image.rgb, face.bbox, with_68=True)
            aligned = chip_for_model(image.rgb, face, preprocessing)
        except BadInputError as error:
            skipped.append(f"{stored.label}: {error}")
            continue
        if face.landmarks68 is None:
            skipped.append(f"{stored.label}: no 68 landmarks")
            continue
        chips.append(aligned.chip)
        marks.append(aligned.transform.to_chip(face.landmarks68))
        names.append(stored.label)
    result = _face_chips(chips, marks, names, skipped)
    if not len(result):
        raise BadInputError("the case has no face with landmarks to analyse")
    return result


# ---- feature maps -------------------------------------------------------------------
def layer_maps(
    model: FaceModel,
    layer: str,
    chips: np.ndarray,
    *,
    batch_size: int = 16,
    cancel: Callable[[], bool] | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """The layer's feature maps ``(N, C, h, w)`` float32 for aligned chips."""
    outputs = []
    was_training = model.network.training
    model.network.eval()
    try:
        for start in range(0, len(chips), batch_size):
            if cancel is not None and cancel():
                raise Cancelled("the channel analysis was cancelled")
            batch = model.prepare(chips[start : start + batch_size])
            with torch.no_grad(), model.capture([layer]) as activations:
                model.network(batch)
            maps = activations.get(layer)
            if maps is None or maps.dim() != 4:
                shape = None if maps is None else tuple(maps.shape)
                raise BadInputError(
                    f"layer '{layer}' of {model.model_id} is not a convolutional "
                    f"feature map (output {shape}); choose a spatial layer"
                )
            outputs.append(maps.float().cpu().numpy())
            if progress is not None:
                done = min(start + batch_size, len(chips))
                progress(done, len(chips), f"feature maps {done}/{len(chips)}")
    finally:
        model.network.train(was_training)
    return np.concatenate(outputs)
