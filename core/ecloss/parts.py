"""Face-part masks from the 68 landmarks: paper 004 Fig. 7 (§5.2.2).

The paper re-annotates face-parsing data sets into seven parts - hair, forehead,
cheek, eyes, nose, mouth and jaw - from their landmarks, without giving the
construction.  **Our construction** (geometric, from dlib's 68-point iBUG order on an
aligned chip; every pixel belongs to at most one part):

* ``eyes``: for each eye, the convex hull of its eyebrow and eye contour
  (17-21 + 36-41, 22-26 + 42-47) - the eye region from brow to lower lid;
* ``nose``: the convex hull of the nose bridge, the nostrils and the inner eye
  corners (27-35, 39, 42), so the root of the nose between the eyes is nose;
* ``mouth``: the convex hull of the outer lip contour (48-59);
* ``jaw``: the lower face inside the jaw line from landmark 4 to 12 (chin and
  jaw below the mouth corners), less the mouth;
* ``cheek``: the rest of the face between the jaw line (0-16) and the eyebrows
  (26-17), less the parts above (so also the sides of the face at eye level);
* ``forehead``: from the eyebrows up by half the nasion-chin distance
  (``H = ‖p27 - p8‖``; the forehead is about a third of the face height, the
  nasion-chin distance about two thirds), less the eye regions;
* ``hair``: the area from the top of the jaw line (p0, p16) up to ``0.9 H`` above
  the eyebrows, as wide as the face plus 10 % each side, less every other part: the
  top of the head and the temples, where hair (or the scalp) usually is.  The
  landmarks cannot tell hair from background, so this part is approximate, and on a
  tight chip (dlib's 150×150) most of it lies outside the chip.

"Up" is perpendicular to the line through the eye centres, so a slightly tilted chip
still gets a forehead above the brows.  Overlaps are resolved in the order mouth,
nose, eyes, jaw, cheek, forehead, hair (the first wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

PARTS: tuple[str, ...] = (
    "hair",
    "forehead",
    "cheek",
    "eyes",
    "nose",
    "mouth",
    "jaw",
)

_PRIORITY = ("mouth", "nose", "eyes", "jaw", "cheek", "forehead", "hair")

JAW = list(range(0, 17))
RIGHT_BROW, LEFT_BROW = list(range(17, 22)), list(range(22, 27))
NOSE = list(range(27, 36))
RIGHT_EYE, LEFT_EYE = list(range(36, 42)), list(range(42, 48))
OUTER_LIP = list(range(48, 60))

FOREHEAD_HEIGHT = 0.5  # × nasion-chin distance, above the brows
HAIR_HEIGHT = 0.9  # × nasion-chin distance, above the brows
HAIR_WIDEN = 0.1  # × face width, each side


@dataclass(frozen=True)
class PartMasks:
    """Disjoint boolean masks ``(len(PARTS), H, W)`` in the order of ``PARTS``."""

    masks: np.ndarray = field(repr=False)
    names: tuple[str, ...] = PARTS

    def mask(self, name: str) -> np.ndarray:
        return self.masks[self.names.index(name)]

    def label_map(self) -> np.ndarray:
        """``(H, W)`` int: index into ``names``, -1 where no part is."""
        labels = np.full(self.masks.shape[1:], -1, np.int16)
        for index, mask in enumerate(self.masks):
            labels[mask] = index
        return labels

    def areas(self) -> dict[str, int]:
        return {n: int(m.sum()) for n, m in zip(self.names, self.masks, strict=True)}


def _fill(shape: tuple[int, int], points: np.ndarray, convex: bool) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    polygon = np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
    if convex:
        polygon = cv2.convexHull(polygon)
        cv2.fillConvexPoly(canvas, polygon, 1, lineType=cv2.LINE_8, shift=4)
    else:
        cv2.fillPoly(canvas, [polygon], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def part_masks(landmarks68: np.ndarray, shape: tuple[int, int]) -> PartMasks:
    """The seven part masks of one face (landmarks as (68, 2) x, y pixels)."""
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"need 68 finite (x, y) landmarks, got {points.shape}")
    height, width = int(shape[0]), int(shape[1])
    size = (height, width)
    eye_line = points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)
    norm = float(np.hypot(*eye_line))
    if norm == 0:
        raise ValueError("the two eyes are at the same place")
    along = eye_line / norm
    up = np.array([along[1], -along[0]])  # perpendicular, towards the top of the chip
    if up[1] > 0:
        up = -up
    unit = float(np.hypot(*(points[27] - points[8])))  # nasion-chin distance
    brows = points[RIGHT_BROW + LEFT_BROW]

    raw: dict[str, np.ndarray] = {}
    raw["mouth"] = _fill(size, points[OUTER_LIP], convex=True)
    raw["nose"] = _fill(size, points[[*NOSE, 39, 42]], convex=True)
    raw["eyes"] = _fill(size, points[RIGHT_BROW + RIGHT_EYE], convex=True) | _fill(
        size, points[LEFT_BROW + LEFT_EYE], convex=True
    )
    raw["jaw"] = _fill(size, points[4:13], convex=False)
    raw["cheek"] = _fill(size, np.vstack([points[JAW], brows[::-1]]), convex=False)
    forehead_top = brows + up * FOREHEAD_HEIGHT * unit
    raw["forehead"] = _fill(size, np.vstack([brows, forehead_top[::-1]]), convex=False)
    face_width = float(np.hypot(*(points[16] - points[0])))
    widen = along * HAIR_WIDEN * face_width
    top = up * HAIR_HEIGHT * unit
    raw["hair"] = _fill(
        size,
        np.vstack(
            [
                points[0] - widen,
                points[16] + widen,
                brows[-1] + top + widen,
                brows[0] + top - widen,
            ]
        ),
        convex=True,
    )

    taken = np.zeros(size, bool)
    final: dict[str, np.ndarray] = {}
    for name in _PRIORITY:
        final[name] = raw[name] & ~taken
        taken |= final[name]
    return PartMasks(np.stack([final[name] for name in PARTS]))
