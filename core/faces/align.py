"""Face alignment: landmarks -> the aligned chip a model expects, and back.

``dlib`` alignment reproduces ``dlib.get_face_chip(img, shape, size, padding)``
(``get_face_chip_details`` + ``extract_image_chip`` in
``dlib/image_transforms/interpolation.h``): a similarity transform (Umeyama) from
dlib's mean-face template to the landmarks, an extraction rectangle with an angle,
dlib's own 2:1 image pyramid when the chip is much smaller than the face (a 5-tap
``[1 4 6 4 1]`` filter with integer arithmetic, and dlib's point mapping
``p/2 - (1.25, 0.75)``), and bilinear interpolation whose result is truncated to
8 bits, as dlib does.

``arcface`` alignment maps five points (eye centres, nose tip, mouth corners) onto
the standard 112×112 ArcFace template with a similarity transform.

Each chip comes with a ``ChipTransform`` (chip pixel -> original image pixel) so that
anything computed on the chip - a saliency map, a landmark - can be shown on the
evidence image itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.errors import BadInputError

if TYPE_CHECKING:
    from core.faces.detect import Face
    from core.models.base import Preprocessing

# dlib's 5-point template (get_face_chip_details), x/y as fractions of the face box.
# Order of dlib's 5-point model: 0/1 outer/inner corner of the eye on the image's
# right (the subject's left eye), 2/3 outer/inner corner of the other eye, 4 the base
# of the nose.
DLIB_TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
# dlib's mean face for 68-point shapes, points 17..67 (get_face_chip_details).
_MEAN_FACE_X = [
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
]  # fmt: skip
_MEAN_FACE_Y = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
]  # fmt: skip
# dlib ignores the eyebrows (17-26) and lower lip (55-59, 65-67) when aligning.
_DLIB_68_USED = [
    i for i in range(17, 68) if not (17 <= i <= 26 or 55 <= i <= 59 or 65 <= i <= 67)
]

# Standard ArcFace 112×112 template: image-left eye, image-right eye, nose tip,
# image-left mouth corner, image-right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


@dataclass(frozen=True)
class ChipTransform:
    """Affine map between chip pixels and original-image pixels.

    ``chip_to_image`` is 2×3: ``[x_img, y_img] = M @ [x_chip, y_chip, 1]``.
    """

    chip_to_image: np.ndarray = field(repr=False)
    size: tuple[int, int]  # (height, width) of the chip
    method: str  # "dlib" or "arcface"

    @property
    def image_to_chip(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.chip_to_image)

    @property
    def scale(self) -> float:
        """Original-image pixels per chip pixel."""
        return float(math.hypot(*self.chip_to_image[:, 0]))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, float).reshape(-1, 2)
        return points @ self.chip_to_image[:, :2].T + self.chip_to_image[:, 2]

    def to_chip(self, points: np.ndarray) -> np.ndarray:
        inverse = self.image_to_chip
        points = np.asarray(points, float).reshape(-1, 2)
        return points @ inverse[:, :2].T + inverse[:, 2]

    def warp_to_image(
        self, chip_map: np.ndarray, image_shape: tuple[int, ...], fill: float = np.nan
    ) -> np.ndarray:
        """A chip-resolution map (H, W[, C]) warped onto the original image.

        Pixels of the image that the chip does not cover get ``fill`` (NaN by
        default, so an overlay can leave them transparent rather than claim 0).
        """
        height, width = image_shape[:2]
        return _warp(
            np.asarray(chip_map, np.float32), self.chip_to_image, (height, width), fill
        )

    def to_dict(self) -> dict:
        return {
            "chip_to_image": self.chip_to_image.tolist(),
            "size": list(self.size),
            "method": self.method,
        }


@dataclass(frozen=True)
class AlignedChip:
    chip: np.ndarray = field(repr=False)  # (H, W, 3) uint8 RGB
    transform: ChipTransform


# ---- geometry helpers ---------------------------------------------------------------
def _warp(
    array: np.ndarray, matrix: np.ndarray, size: tuple[int, int], fill: float
) -> np.ndarray:
    """Bilinear affine resampling; ``matrix`` maps source to destination pixels."""
    height, width = size
    return cv2.warpAffine(
        array,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) source->target.

    Umeyama (1991), as dlib's ``find_similarity_transform``; returns 2×3.
    """
    source = np.asarray(source, float)
    target = np.asarray(target, float)
    mean_s, mean_t = source.mean(0), target.mean(0)
    centred_s, centred_t = source - mean_s, target - mean_t
    variance_s = (centred_s**2).sum() / len(source)
    covariance = centred_t.T @ centred_s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    correction = np.eye(2)
    if np.linalg.det(covariance) < 0:
        correction[1, 1] = -1
    rotation = u @ correction @ vt
    scale = (singular * np.diag(correction)).sum() / variance_s if variance_s else 1.0
    translation = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, translation[:, None]])


def _rotate(centre: np.ndarray, point: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    d = point - centre
    return centre + np.array([cos * d[0] - sin * d[1], sin * d[0] + cos * d[1]])


def _affine_exact(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The affine map of three point pairs, in float64 (cv2's is float32 inside)."""
    design = np.hstack([source, np.ones((3, 1))])
    return np.linalg.solve(design, target).T


# ---- dlib chips ---------------------------------------------------------------------
def _dlib_template(count: int, size: int, padding: float) -> np.ndarray:
    if count == 5:
        template = DLIB_TEMPLATE_5
    elif count == 68:
        template = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], 1)[
            np.array(_DLIB_68_USED) - 17
        ]
    else:
        raise BadInputError(f"alignment needs 5 or 68 landmarks, got {count}")
    return (padding + template) / (2 * padding + 1) * size


@dataclass(frozen=True)
class _ChipDetails:
    """dlib's chip_details: an extraction rectangle (l, t, r, b) and an angle."""

    rect: tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int

    def area(self, rect: tuple[float, float, float, float] | None = None) -> float:
        left, top, right, bottom = rect or self.rect
        return max(0.0, right - left + 1) * max(0.0, bottom - top + 1)

    def corners(self, rect: tuple[float, float, float, float]) -> np.ndarray:
        """tl, tr, bl rotated about the rectangle centre by the angle."""
        left, top, right, bottom = rect
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        return np.array(
            [
                _rotate(centre, np.array(p, float), self.angle)
                for p in ((left, top), (right, top), (left, bottom))
            ]
        )


def _dlib_chip_details(
    landmarks: np.ndarray, size: int, padding: float
) -> _ChipDetails:
    landmarks = np.asarray(landmarks, float)
    if landmarks.shape == (68, 2):
        to_points = landmarks[_DLIB_68_USED]
    elif landmarks.shape == (5, 2):
        to_points = landmarks
    else:
        raise BadInputError(
            f"alignment needs 5 or 68 (x, y) landmarks, got {landmarks.shape}"
        )
    from_points = _dlib_template(len(landmarks), size, padding)
    transform = similarity_transform(from_points, to_points)
    unit = transform[:, :2] @ np.array([1.0, 0.0])
    angle = math.atan2(unit[1], unit[0])
    scale = math.hypot(unit[0], unit[1])
    centre = transform[:, :2] @ np.array([size / 2, size / 2]) + transform[:, 2]
    # centered_drect(p, w, h): width and height count pixels, hence the -1.
    half = (size * scale - 1) / 2
    rect = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
    return _ChipDetails(rect, angle, size, size)


def dlib_chip_transform(
    landmarks: np.ndarray, size: int = 150, padding: float = 0.25
) -> ChipTransform:
    """Chip geometry of ``dlib.get_face_chip_details(shape, size, padding)``."""
    details = _dlib_chip_details(landmarks, size, padding)
    chip_corners = np.array(
        [[0, 0], [details.cols - 1, 0], [0, details.rows - 1]], float
    )
    matrix = _affine_exact(chip_corners, details.corners(details.rect))
    return ChipTransform(matrix, (size, size), "dlib")


def _pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` on an RGB uint8 image (integer [1 4 6 4 1] filter)."""
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    pixels = image.astype(np.int32)
    weights = (1, 4, 6, 4, 1)
    horizontal = sum(
        w * pixels[:, k : k + 2 * out_cols : 2] for k, w in enumerate(weights)
    )
    vertical = sum(
        w * horizontal[k : k + 2 * out_rows : 2] for k, w in enumerate(weights)
    )
    return (vertical // 256).astype(np.uint8)


def _rect_down(
    rect: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _bilinear_truncated(image: np.ndarray, matrix: np.ndarray, rows: int, cols: int):
    """dlib's transform_image with interpolate_bilinear: 0 outside, truncation."""
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float64)
    map_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    map_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    left, top = np.floor(map_x).astype(np.int64), np.floor(map_y).astype(np.int64)
    inside = (
        (left >= 0)
        & (top >= 0)
        & (left + 1 < image.shape[1])
        & (top + 1 < image.shape[0])
    )
    left_c = np.clip(left, 0, max(image.shape[1] - 2, 0))
    top_c = np.clip(top, 0, max(image.shape[0] - 2, 0))
    fx = (map_x - left)[..., None]
    fy = (map_y - top)[..., None]
    pixels = image.astype(np.float64)
    tl = pixels[top_c, left_c]
    tr = pixels[top_c, left_c + 1]
    bl = pixels[top_c + 1, left_c]
    br = pixels[top_c + 1, left_c + 1]
    value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    chip = np.clip(value, 0, 255).astype(np.uint8)  # static_cast: truncation
    chip[~inside] = 0
    return chip


def extract_dlib_chip(
    rgb: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25
) -> AlignedChip:
    """``dlib.get_face_chip(rgb, shape, size, padding)`` in numpy."""
    details = _dlib_chip_details(landmarks, size, padding)
    chip_corners = np.array([[0, 0], [size - 1, 0], [0, size - 1]], float)
    full_matrix = _affine_exact(chip_corners, details.corners(details.rect))

    # Pyramid depth needed so the chip is not sampled from a much larger window
    # (plain bilinear sampling would alias like nearest-neighbour).
    depth, rect = 0, _rect_down(details.rect)
    while details.area(rect) > size * size:
        rect = _rect_down(rect)
        depth += 1
    if depth == 0:
        chip = _bilinear_truncated(rgb, full_matrix, size, size)
        return AlignedChip(chip, ChipTransform(full_matrix, (size, size), "dlib"))

    # Crop (as dlib does) the rotated rectangle grown by a safety border, then build
    # the pyramid of that crop only.
    grow = 2.0
    for _ in range(depth):
        grow = grow * 2 + 2
    corners = details.corners(details.rect)
    fourth = corners[1] + corners[2] - corners[0]
    all_corners = np.vstack([corners, fourth])
    left = max(0, math.floor(all_corners[:, 0].min() - grow + 0.5))
    top = max(0, math.floor(all_corners[:, 1].min() - grow + 0.5))
    right = min(rgb.shape[1] - 1, math.floor(all_corners[:, 0].max() + grow + 0.5))
    bottom = min(rgb.shape[0] - 1, math.floor(all_corners[:, 1].max() + grow + 0.5))
    level_image = rgb[top : bottom + 1, left : right + 1]
    local = details.rect
    local = (local[0] - left, local[1] - top, local[2] - left, local[3] - top)
    while details.area(_rect_down(local)) > size * size:
        level_image = _pyramid_down(level_image)
        local = _rect_down(local)
    level_matrix = _affine_exact(chip_corners, details.corners(local))
    chip = _bilinear_truncated(level_image, level_matrix, size, size)
    return AlignedChip(chip, ChipTransform(full_matrix, (size, size), "dlib"))


# ---- ArcFace chips -----------------------------------------------------------------
def arcface_points(face: Face) -> np.ndarray:
    """The five ArcFace points from a face's landmarks.

    With 68 points: eye centres (mean of 36-41 and 42-47), nose tip (30), mouth
    corners (48, 54).  With only dlib's 5 points the mouth is unknown: the eye
    centres (means of the corner pairs) are returned and the caller aligns on them.
    """
    if face.landmarks68 is not None:
        marks = np.asarray(face.landmarks68, float)
        return np.array(
            [
                marks[36:42].mean(0),
                marks[42:48].mean(0),
                marks[30],
                marks[48],
                marks[54],
            ]
        )
    five = np.asarray(face.landmarks5, float)
    return np.array([five[2:4].mean(0), five[0:2].mean(0)])


def arcface_chip_transform(points: np.ndarray, size: int = 112) -> ChipTransform:
    points = np.asarray(points, float)
    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    if len(points) == 2:  # eyes only (see arcface_points)
        template = template[:2]
    image_to_chip = similarity_transform(points, template)
    chip_to_image = cv2.invertAffineTransform(image_to_chip)
    return ChipTransform(chip_to_image, (size, size), "arcface")


def extract_chip(rgb: np.ndarray, transform: ChipTransform) -> np.ndarray:
    """Bilinear resampling of the image through a chip transform (any method)."""
    return _warp(rgb, transform.image_to_chip, transform.size, 0)


def chip_for_model(
    rgb: np.ndarray, face: Face, preprocessing: Preprocessing
) -> AlignedChip:
    """The aligned chip the model described by ``preprocessing`` expects."""
    height, width = preprocessing.input_size
    if preprocessing.alignment == "dlib":
        if height != width:
            raise BadInputError("dlib alignment gives square chips only")
        return extract_dlib_chip(rgb, face.landmarks5, size=height, padding=0.25)
    if preprocessing.alignment == "arcface":
        if height != width:
            raise BadInputError("ArcFace alignment gives square chips only")
        transform = arcface_chip_transform(arcface_points(face), size=height)
        return AlignedChip(extract_chip(rgb, transform), transform)
    raise BadInputError(f"unknown alignment '{preprocessing.alignment}'")
