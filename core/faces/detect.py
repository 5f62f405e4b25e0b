"""Face detection and landmarks with dlib's detectors and shape predictors.

dlib (the ``dlib-bin`` wheel) is used here, for detection and landmarks only; the
face-recognition network itself is the torch port in ``core.models.dlib_resnet``.

* Detection: dlib's HOG frontal-face detector (default) or the MMOD CNN detector
  (``mmod_human_face_detector.dat`` from ``face-recognition-models``; slower on CPU,
  better on rotated and small faces).  Large images are searched on a copy downscaled
  to at most ``detect_max_side`` pixels and the boxes mapped back; if nothing is found
  there, a second pass runs at twice that size (small faces in big images).
  Small images are upsampled once (HOG finds faces down to about 80×80 pixels).
* Landmarks: the 5-point (and on request 68-point) shape predictors always run on the
  full-resolution image inside the mapped box, so landmark precision does not depend
  on the detection scale.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from core.errors import BadInputError, NoFaceError
from core.faces.align import dlib_chip_transform
from core.imageio import LoadedImage
from core.resources import MMOD_FILE, SHAPE_5_FILE, SHAPE_68_FILE, dlib_model_file

DETECTORS = ("hog", "cnn")

# Names of dlib's five points, in dlib's order (what an examiner places by hand).
LANDMARK5_NAMES = (
    "outer corner of the eye on the image's right",
    "inner corner of the eye on the image's right",
    "outer corner of the eye on the image's left",
    "inner corner of the eye on the image's left",
    "base of the nose (subnasale)",
)


@dataclass(frozen=True)
class Face:
    """A face found in (or marked on) an image, in full-resolution pixel coordinates."""

    bbox: tuple[float, float, float, float]  # left, top, right, bottom
    landmarks5: np.ndarray = field(repr=False)  # (5, 2) x, y in dlib's order
    landmarks68: np.ndarray | None = field(default=None, repr=False)
    score: float | None = None  # detector confidence (HOG/MMOD score)
    source: str = "hog"  # "hog", "cnn", "manual", "box" (landmarks in a given box)

    @property
    def area(self) -> float:
        left, top, right, bottom = self.bbox
        return max(0.0, right - left) * max(0.0, bottom - top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": [round(float(v), 2) for v in self.bbox],
            "landmarks5": np.round(np.asarray(self.landmarks5, float), 3).tolist(),
            "landmarks68": None
            if self.landmarks68 is None
            else np.round(np.asarray(self.landmarks68, float), 3).tolist(),
            "score": None if self.score is None else float(self.score),
            "source": self.source,
        }


def _dlib():
    import dlib  # deferred: importing dlib costs time the CLI's --help should not pay

    return dlib


class FaceDetector:
    """dlib detectors and shape predictors, loaded lazily and shared (thread-safe)."""

    _shared: ClassVar[FaceDetector | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, detect_max_side: int = 1600) -> None:
        self.detect_max_side = detect_max_side
        self._lock = threading.RLock()
        self._loaded: dict[str, Any] = {}

    @classmethod
    def shared(cls) -> FaceDetector:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _get(self, name: str) -> Any:
        with self._lock:
            if name not in self._loaded:
                dlib = _dlib()
                if name == "hog":
                    self._loaded[name] = dlib.get_frontal_face_detector()
                elif name == "cnn":
                    path = dlib_model_file(MMOD_FILE)
                    self._loaded[name] = dlib.cnn_face_detection_model_v1(str(path))
                elif name == "shape5":
                    path = dlib_model_file(SHAPE_5_FILE)
                    self._loaded[name] = dlib.shape_predictor(str(path))
                elif name == "shape68":
                    path = dlib_model_file(SHAPE_68_FILE)
                    self._loaded[name] = dlib.shape_predictor(str(path))
            return self._loaded[name]

    # ---- detection ---------------------------------------------------------------
    def _boxes_at(
        self, rgb: np.ndarray, scale: float, method: str
    ) -> list[tuple[tuple[float, float, float, float], float]]:
        """Detect on ``rgb`` resized by ``scale``; boxes returned in ``rgb`` pixels."""
        if scale != 1.0:
            size = (
                max(1, round(rgb.shape[1] * scale)),
                max(1, round(rgb.shape[0] * scale)),
            )
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            work = cv2.resize(rgb, size, interpolation=interpolation)
        else:
            work = rgb
        work = np.ascontiguousarray(work)
        # Upsample small images once: HOG's window is 80×80 pixels.
        upsample = 1 if max(work.shape[:2]) <= 1000 else 0
        results = []
        # one detection at a time: two intakes running dlib's detector at once
        # crashed the process (segmentation fault), as the predictors would
        if method == "hog":
            with self._lock:
                rects, scores, _ = self._get("hog").run(work, upsample, 0.0)
            found = list(zip(rects, scores, strict=True))
        elif method == "cnn":
            with self._lock:
                detections = self._get("cnn")(work, upsample)
            found = [(d.rect, d.confidence) for d in detections]
        else:
            raise BadInputError(
                f"unknown detector '{method}' (use {', '.join(DETECTORS)})"
            )
        for rect, score in found:
            box = (
                rect.left() / scale,
                rect.top() / scale,
                (rect.right() + 1) / scale,
                (rect.bottom() + 1) / scale,
            )
            results.append((box, float(score)))
        return results

    def landmarks(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        with_68: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """5 (optionally 68) landmarks inside ``box``, on the full-resolution image."""
        dlib = _dlib()
        left, top, right, bottom = box
        rect = dlib.rectangle(
            round(left), round(top), round(right) - 1, round(bottom) - 1
        )
        image = np.ascontiguousarray(rgb)
        with self._lock:  # dlib predictors are not documented as thread-safe
            shape5 = self._get("shape5")(image, rect)
            shape68 = self._get("shape68")(image, rect) if with_68 else None
        points5 = np.array([[p.x, p.y] for p in shape5.parts()], float)
        points68 = (
            None
            if shape68 is None
            else np.array([[p.x, p.y] for p in shape68.parts()], float)
        )
        return points5, points68

    def detect(
        self, rgb: np.ndarray, method: str = "hog", with_68: bool = False
    ) -> list[Face]:
        """All faces in an RGB image, largest first (empty list when none)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise BadInputError("face detection needs an RGB uint8 image")
        longest = max(rgb.shape[:2])
        scale = min(1.0, self.detect_max_side / longest)
        found = self._boxes_at(rgb, scale, method)
        if not found and scale < 1.0:  # small faces in a big image: look closer
            found = self._boxes_at(rgb, min(1.0, 2 * scale), method)
        faces = []
        for box, score in found:
            points5, points68 = self.landmarks(rgb, box, with_68)
            faces.append(Face(box, points5, points68, score, method))
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def face_in_box(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        with_68: bool = False,
    ) -> Face:
        """Landmarks predicted inside a given box (e.g. the examiner's rectangle)."""
        points5, points68 = self.landmarks(rgb, box, with_68)
        left, top, right, bottom = box
        bounds = (float(left), float(top), float(right), float(bottom))
        return Face(bounds, points5, points68, None, "box")


def find_faces(
    image: LoadedImage,
    *,
    method: str = "hog",
    with_68: bool = False,
    detector: FaceDetector | None = None,
) -> list[Face]:
    """Faces in a loaded image, largest first; NoFaceError naming the file if none."""
    faces = (detector or FaceDetector.shared()).detect(image.rgb, method, with_68)
    if not faces:
        raise NoFaceError(
            f"no face found (detector: {method}); "
            "mark the face by hand with 5 landmarks",
            image.path,
        )
    return faces


def select_face(faces: list[Face], index: int | None = None, path=None) -> Face:
    """The face at ``index`` (0 = largest, the default)."""
    if not faces:
        raise NoFaceError("no face found", path)
    chosen = 0 if index is None else index
    if not 0 <= chosen < len(faces):
        raise BadInputError(
            f"face index {chosen} requested but {len(faces)} face"
            f"{'s were' if len(faces) != 1 else ' was'} found "
            f"(indices 0-{len(faces) - 1})",
            path,
        )
    return faces[chosen]


def face_from_landmarks(
    points5: np.ndarray, image_shape: tuple[int, ...], path=None
) -> Face:
    """A face from the examiner's five points (dlib's order, see ``LANDMARK5_NAMES``).

    Alignment depends only on the points, so it is identical to the automatic path
    for the same points.  The box is the face area of the aligned chip (the chip
    without its 25 % padding) mapped back onto the image.
    """
    points = np.asarray(points5, float)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise BadInputError("manual landmarks must be five (x, y) points", path)
    height, width = image_shape[:2]
    if (
        (points < 0).any()
        or (points[:, 0] > width - 1).any()
        or (points[:, 1] > height - 1).any()
    ):
        raise BadInputError("a manual landmark lies outside the image", path)
    eye_distance = np.linalg.norm(points[0:2].mean(0) - points[2:4].mean(0))
    if eye_distance < 2.0:
        raise BadInputError("manual landmarks are degenerate (eyes coincide)", path)
    # The nose must lie clearly off the eye line, on the side dlib's order puts
    # it (true of any face turned any way in the image; detected faces give about
    # -0.74): points on one line, or the two eyes swapped (a mirrored face, which
    # a rotation-only alignment cannot undo), would align a face that is not there.
    right_eye, left_eye = points[0:2].mean(0), points[2:4].mean(0)
    across, down = left_eye - right_eye, points[4] - right_eye
    side = (across[0] * down[1] - across[1] * down[0]) / float(across @ across)
    if side > -0.15:
        raise BadInputError(
            "manual landmarks are mirrored or in a line (the nose must be below the "
            "eyes, and the first two points on the eye on the image's right): place "
            "them in the order shown",
            path,
        )
    transform = dlib_chip_transform(points, size=150, padding=0.25)
    inner = np.array([[25, 25], [125, 25], [25, 125], [125, 125]], float)
    corners = transform.to_image(inner)
    box = (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )
    return Face(box, points, None, None, "manual")


__all__ = [
    "DETECTORS",
    "LANDMARK5_NAMES",
    "Face",
    "FaceDetector",
    "face_from_landmarks",
    "find_faces",
    "select_face",
]
