"""Aligned face chips from a folder of identities, for the training commands.

``DIR/<person>/<image>`` (the layout of ``xfr eval``) becomes a :class:`ChipSet`:
uint8 chips aligned for a model, an identity label per chip, and the 68 landmarks in
chip coordinates (part masks need them).  Detection and alignment are the slow part
(about 0.1 s per photo on a CPU), so the set is cached in an ``.npz`` keyed by the
folder listing (paths, sizes, modification times) and the alignment; a changed folder
is read again.  Images without a detectable face are left out and listed, never
guessed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import BadInputError, Cancelled, NoFaceError
from core.evaluation import images_in
from core.faces.align import chip_for_model
from core.faces.detect import FaceDetector, find_faces, select_face
from core.imageio import load_image
from core.io.userdirs import user_cache_dir
from core.models.base import Preprocessing
from core.progress import ProgressCallback

CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """Per-user cache of aligned training chips (regenerable, safe to delete)."""
    return user_cache_dir() / "training-chips"


@dataclass
class ChipSet:
    """Aligned chips of a folder of identities."""

    chips: np.ndarray = field(repr=False)  # (N, H, W, 3) uint8 RGB
    labels: np.ndarray = field(repr=False)  # (N,) int identity index
    identities: list[str]  # label -> folder name
    paths: list[str]  # image per chip
    landmarks68: np.ndarray = field(repr=False)  # (N, 68, 2) chip x, y
    skipped: list[str] = field(default_factory=list)  # "path: reason"

    def __len__(self) -> int:
        return len(self.chips)

    def subset(self, indices: np.ndarray) -> ChipSet:
        indices = np.asarray(indices)
        return ChipSet(
            self.chips[indices],
            self.labels[indices],
            self.identities,
            [self.paths[i] for i in indices],
            self.landmarks68[indices],
            self.skipped,
        )


def identity_images(root: str | Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every image of ``DIR/<person>/``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError("not a folder of identities (DIR/<person>/<image>)", root)
    items = [
        (folder.name, image)
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for image in images_in(folder)
    ]
    if not items:
        raise BadInputError("no images found in DIR/<person>/<image>", root)
    return items


@dataclass
class AlignedFaces:
    """The largest face of each image, aligned, with its 68 landmarks."""

    chips: np.ndarray = field(repr=False)  # (N, H, W, 3) uint8 RGB
    landmarks68: np.ndarray = field(repr=False)  # (N, 68, 2) chip x, y
    paths: list[str]  # image per chip
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def _files_key(files: list[Path], preprocessing: Preprocessing) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_VERSION, repr(preprocessing)]).encode())
    for path in files:
        stat, where = path.stat(), path.resolve()  # ../x and /abs/x: one cache
        digest.update(f"{where}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def align_face_files(
    files: list[Path],
    preprocessing: Preprocessing,
    *,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> AlignedFaces:
    """Detect the largest face of each image (68 landmarks) and align it.

    Images without a usable face are left out and listed in ``skipped``.  With
    ``cache_dir`` the result is kept in an ``.npz`` keyed by the files (path, size,
    modification time) and the chip geometry; a changed file is read again.
    """
    files = [Path(f) for f in files]
    cache_file = (
        Path(cache_dir) / f"faces-{_files_key(files, preprocessing)}.npz"
        if cache_dir
        else None
    )
    if cache_file is not None and cache_file.is_file():
        return _read_cache(cache_file)
    detector = FaceDetector.shared()
    chips, landmarks, paths, skipped = [], [], [], []
    for number, path in enumerate(files, start=1):
        if cancel is not None and cancel():
            raise Cancelled("reading the face images was cancelled")
        if progress is not None:
            progress(number, len(files), f"finding the face in {path.name}")
        try:
            image = load_image(path)
            face = select_face(
                find_faces(image, detector=detector, with_68=True), 0, image.path
            )
            aligned = chip_for_model(image.rgb, face, preprocessing)
        except (NoFaceError, BadInputError) as error:
            skipped.append(f"{path}: {error}")
            continue
        assert face.landmarks68 is not None  # with_68=True
        chips.append(aligned.chip)
        landmarks.append(aligned.transform.to_chip(face.landmarks68))
        paths.append(str(path))
    height, width = preprocessing.input_size
    faces = AlignedFaces(
        np.stack(chips) if chips else np.zeros((0, height, width, 3), np.uint8),
        np.asarray(landmarks, np.float32).reshape(-1, 68, 2),
        paths,
        skipped,
    )
    if cache_file is not None and chips:
        _write_cache(cache_file, faces)
    return faces


def load_identity_chips(
    root: str | Path,
    preprocessing: Preprocessing,
    *,
    cache_dir: str | Path | None = None,
    max_images: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ChipSet:
    """Detect, landmark (68 points) and align every image of a folder of identities.

    ``max_images`` keeps the first N images in sorted order (whole folders first), so
    the same N always gives the same set.
    """
    items = identity_images(root)
    if max_images is not None:
        items = items[: max(1, max_images)]
    faces = align_face_files(
        [path for _, path in items],
        preprocessing,
        cache_dir=cache_dir,
        progress=progress,
        cancel=cancel,
    )
    if not len(faces.chips):
        raise BadInputError("no face could be found in any image", root)
    identities = sorted({identity for identity, _ in items})
    label_of = {name: number for number, name in enumerate(identities)}
    identity_of = {str(path): identity for identity, path in items}
    labels = [label_of[identity_of[path]] for path in faces.paths]
    return ChipSet(
        faces.chips,
        np.asarray(labels, np.int64),
        identities,
        faces.paths,
        faces.landmarks68,
        faces.skipped,
    )


def _write_cache(path: Path, faces: AlignedFaces) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    meta = {"paths": faces.paths, "skipped": faces.skipped}
    np.savez(
        partial,
        chips=faces.chips,
        landmarks68=faces.landmarks68,
        meta=np.array(json.dumps(meta)),
    )
    partial.replace(path)


def _read_cache(path: Path) -> AlignedFaces:
    try:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            return AlignedFaces(
                data["chips"], data["landmarks68"], meta["paths"], meta["skipped"]
            )
    except (OSError, ValueError, KeyError) as error:
        raise BadInputError(
            f"damaged face cache ({error}); delete it to rebuild", path
        ) from error
