"""One-to-one verification: are the faces in two images the same person?

Pipeline per image: load (EXIF orientation honoured, file untouched) -> detect faces
(or take the examiner's 5 landmarks) -> select one face -> align a chip the way the
model expects -> embed.  The pair gets cosine similarity, Euclidean distance and a
decision against the model's threshold (or one the examiner sets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError
from core.faces.align import AlignedChip, chip_for_model
from core.faces.detect import (
    Face,
    FaceDetector,
    face_from_landmarks,
    find_faces,
    select_face,
)
from core.imageio import LoadedImage, load_image
from core.models.base import (
    FaceModel,
    Metric,
    Threshold,
    cosine_similarity,
    euclidean_distance,
)


@dataclass(frozen=True)
class PreparedFace:
    """One side of a comparison: the image, the chosen face and its aligned chip."""

    image: LoadedImage
    face: Face
    faces_found: int  # how many faces the detector found (0 for manual landmarks)
    face_index: int  # which one was used (largest = 0)
    aligned: AlignedChip

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.image.path),
            "sha256": self.image.sha256,
            "image_size": [int(self.image.rgb.shape[1]), int(self.image.rgb.shape[0])],
            "faces_found": self.faces_found,
            "face_index": self.face_index,
            "face": self.face.to_dict(),
            "chip_transform": self.aligned.transform.to_dict(),
        }


@dataclass(frozen=True)
class VerificationResult:
    """Scores and decision for one pair, with everything needed to reproduce them."""

    probe: PreparedFace
    gallery: PreparedFace
    model_id: str
    model_name: str
    weights_sha256: str
    embedding_dim: int
    device: str
    cosine_similarity: float
    euclidean_distance: float
    threshold: Threshold
    decision: str  # "accept" or "reject"
    embeddings: tuple[np.ndarray, np.ndarray] = field(repr=False, compare=False)
    code_trusted: bool = False  # the model file's program code was trusted to run

    def to_dict(self) -> dict[str, Any]:
        from core import __version__

        return {
            "probe": self.probe.to_dict(),
            "gallery": self.gallery.to_dict(),
            "model": {
                "id": self.model_id,
                "name": self.model_name,
                "weights_sha256": self.weights_sha256,
                "embedding_dim": self.embedding_dim,
                "device": self.device,
                **({"code_trusted": True} if self.code_trusted else {}),
            },
            "cosine_similarity": self.cosine_similarity,
            "euclidean_distance": self.euclidean_distance,
            "threshold": self.threshold.to_dict(),
            "decision": self.decision,
            "software_version": __version__,
        }

    def summary(self) -> str:
        """A short explanation in plain words, for the terminal."""
        rule = (
            f"distance below {self.threshold.value:g}"
            if self.threshold.metric == "euclidean"
            else f"cosine similarity of at least {self.threshold.value:g}"
        )
        verdict = (
            "ACCEPT - the model scores these faces as the same person"
            if self.decision == "accept"
            else "REJECT - the model scores these faces as different people"
        )
        return "\n".join(
            [
                f"probe:   {self.probe.image.path} (face {self.probe.face_index + 1} "
                f"of {max(self.probe.faces_found, 1)})",
                f"gallery: {self.gallery.image.path} (face "
                f"{self.gallery.face_index + 1} of {max(self.gallery.faces_found, 1)})",
                f"model:   {self.model_name} [{self.model_id}] on {self.device}",
                f"Euclidean distance {self.euclidean_distance:.4f}, "
                f"cosine similarity {self.cosine_similarity:.4f}",
                f"{verdict} (rule: same person when {rule}).",
                "This is a model score, not an identification: it supports, and does "
                "not replace, the examiner's comparison.",
            ]
        )


def prepare_face(
    path: str | Path,
    model: FaceModel,
    *,
    face_index: int | None = None,
    landmarks5: Sequence[Sequence[float]] | None = None,
    detector: FaceDetector | None = None,
    detector_method: str = "hog",
    with_68: bool | None = None,
) -> PreparedFace:
    """Load an image and align one face for ``model``.

    ``landmarks5`` (the examiner's five points, dlib order) bypasses detection;
    otherwise the largest face is used unless ``face_index`` picks another.
    ``with_68``: also predict the 68 landmarks (None: only when the model's
    alignment needs them); landmark-based explanations (``components``) need them.
    """
    image = load_image(path)
    if landmarks5 is not None:
        face = face_from_landmarks(np.asarray(landmarks5, float), image.rgb.shape)
        faces_found, index = 0, 0
    else:
        faces = find_faces(
            image,
            method=detector_method,
            detector=detector,
            with_68=needs_68_landmarks(model) if with_68 is None else with_68,
        )
        face = select_face(faces, face_index, path=image.path)
        faces_found, index = len(faces), face_index or 0
    aligned = chip_for_model(image.rgb, face, model.preprocessing)
    return PreparedFace(image, face, faces_found, index, aligned)


def needs_68_landmarks(model: FaceModel) -> bool:
    """ArcFace alignment uses mouth corners, which only the 68-point model gives."""
    return model.preprocessing.alignment == "arcface"


def decide(similarity: float, distance: float, threshold: Threshold) -> str:
    return "accept" if threshold.accepts(similarity, distance) else "reject"


def make_threshold(
    model: FaceModel, metric: Metric | None, value: float | None
) -> Threshold:
    """The model's threshold, or the examiner's own (which then says so)."""
    if value is None:
        if metric is not None and metric != model.threshold.metric:
            raise BadInputError(
                f"model {model.model_id} has a {model.threshold.metric} threshold; "
                f"give a value to decide on {metric}"
            )
        return model.threshold
    return Threshold(
        metric or model.threshold.metric, float(value), "set by the examiner"
    )


def verify_faces(
    probe: PreparedFace,
    gallery: PreparedFace,
    model: FaceModel,
    threshold: Threshold | None = None,
) -> VerificationResult:
    threshold = threshold or model.threshold
    embeddings = model.embed_chips(np.stack([probe.aligned.chip, gallery.aligned.chip]))
    similarity = cosine_similarity(embeddings[0], embeddings[1])
    distance = euclidean_distance(embeddings[0], embeddings[1])
    return VerificationResult(
        probe=probe,
        gallery=gallery,
        model_id=model.model_id,
        model_name=model.display_name,
        weights_sha256=model.weights_sha256,
        code_trusted=model.code_trusted,
        embedding_dim=model.embedding_dim,
        device=str(model.device),
        cosine_similarity=similarity,
        euclidean_distance=distance,
        threshold=threshold,
        decision=decide(similarity, distance, threshold),
        embeddings=(embeddings[0], embeddings[1]),
    )


def verify_files(
    probe_path: str | Path,
    gallery_path: str | Path,
    model: FaceModel,
    *,
    probe_face_index: int | None = None,
    gallery_face_index: int | None = None,
    probe_landmarks5: Sequence[Sequence[float]] | None = None,
    gallery_landmarks5: Sequence[Sequence[float]] | None = None,
    threshold: Threshold | None = None,
    detector: FaceDetector | None = None,
    detector_method: str = "hog",
) -> VerificationResult:
    probe, gallery = (
        prepare_face(
            path,
            model,
            face_index=index,
            landmarks5=landmarks,
            detector=detector,
            detector_method=detector_method,
        )
        for path, index, landmarks in (
            (probe_path, probe_face_index, probe_landmarks5),
            (gallery_path, gallery_face_index, gallery_landmarks5),
        )
    )
    return verify_faces(probe, gallery, model, threshold)
