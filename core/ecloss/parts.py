"""Face-part masks from the 68 landmarks: Lin et al. 2023 Fig. 7 (§5.2.2).

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


def face_frame(
    landmarks68: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Checked landmarks, the unit vectors along the eye line and up, and the
    nasion-chin distance (the scale every part is sized by)."""
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"need 68 finite (x, y) landmarks, got {points.shape}")
    eye_line = points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)
    norm = float(np.hypot(*eye_line))
    if norm == 0:
        raise ValueError("the two eyes are at the same place")
    along = eye_line / norm
    up = np.array([along[1], -along[0]])  # perpendicular, towards the top of the chip
    if up[1] > 0:
        up = -up
    unit = float(np.hypot(*(points[27] - points[8])))  # nasion-chin distance
    return points, along, up, unit


def part_masks(landmarks68: np.ndarray, shape: tuple[int, int]) -> PartMasks:
    """The seven part masks of one face (landmarks as (68, 2) x, y pixels)."""
    points, along, up, unit = face_frame(landmarks68)
    size = (int(shape[0]), int(shape[1]))
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


# ---- FISWG facial components ---------------------------------------------------------
# The components of FISWG's "Facial Image Comparison Feature List for Morphological
# Analysis" (Version 2.0, 2018.09.11) that the 68 landmarks can locate, in FISWG's
# order (top of the face to the bottom).  FISWG's other components (skin, face/head
# outline and composition, hair, neck, facial hair, facial lines, scars, facial
# marks, alterations) are not regions the landmarks delimit.
FISWG_COMPONENTS: tuple[str, ...] = (
    "forehead",
    "eyebrows",
    "eyes",
    "cheeks",
    "nose",
    "ears",
    "mouth",
    "chin_jawline",
)
FISWG_NAMES: dict[str, str] = {
    "forehead": "Forehead",
    "eyebrows": "Eyebrows",
    "eyes": "Eyes",
    "cheeks": "Cheeks",
    "nose": "Nose",
    "ears": "Ears",
    "mouth": "Mouth",
    "chin_jawline": "Chin/Jawline",
}
_FISWG_PRIORITY = (
    "mouth",
    "nose",
    "eyes",
    "eyebrows",
    "chin_jawline",
    "cheeks",
    "forehead",
    "ears",
)
# Sizes as fractions of the nasion-chin distance H (about 75 px on dlib's chip).
BROW_ABOVE, BROW_BELOW = 0.03, 0.10  # iBUG brow points run along the upper edge
EYE_MARGIN = 0.04  # lids and lashes around the eye contour
MOUTH_MARGIN = 0.03  # the lip border around the outer lip contour
NOSTRIL_WIDEN = 0.05  # the alae reach beyond landmarks 31 and 35
EAR_WIDTH = 0.18  # outwards from the jaw line at ear height (seen edge-on)
# An ear is located only where its side of the face is not turned away (its
# half-width, nose tip to jaw line, is at least this share of the other side's) ...
EAR_MIN_HALF_WIDTH_RATIO = 0.6
# ... and where this share of the ear's region lies inside the chip.
EAR_MIN_INSIDE = 0.75


@dataclass(frozen=True)
class ComponentMasks:
    """Disjoint boolean masks of the located FISWG components of one face."""

    masks: dict[str, np.ndarray] = field(repr=False)  # FISWG order, located only
    not_located: dict[str, str] = field(default_factory=dict)  # name -> reason
    notes: tuple[str, ...] = ()  # e.g. the one ear that was not located

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.masks)

    def areas(self) -> dict[str, int]:
        return {name: int(mask.sum()) for name, mask in self.masks.items()}


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    size = 2 * max(1, round(radius)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _ear_region(
    points: np.ndarray,
    along: np.ndarray,
    up: np.ndarray,
    unit: float,
    side: str,
    size: tuple[int, int],
) -> tuple[np.ndarray | None, str]:
    """One ear's region, or None and why not.

    dlib's 68 points have no ear landmarks: the ear is placed where anatomy puts
    it, just outside the jaw line's top point (0 or 16), from eyebrow height down
    to the base of the nose, ``EAR_WIDTH × H`` wide (a frontal view sees the ear
    nearly edge-on).  The landmarks cannot tell an ear from hair covering it.
    """
    jaw, brow, outwards = (
        (points[0], points[17], -along)
        if side == "right"
        else (points[16], points[26], along)
    )
    half_widths = {
        "right": float((points[30] - points[0]) @ along),
        "left": float((points[16] - points[30]) @ along),
    }
    other = half_widths["left" if side == "right" else "right"]
    if other <= 0 or half_widths[side] < EAR_MIN_HALF_WIDTH_RATIO * other:
        return None, "the face is turned away from it"
    top = jaw + up * float((brow - jaw) @ up)
    bottom = jaw + up * float((points[33] - jaw) @ up)
    offset = outwards * EAR_WIDTH * unit
    corners = np.array([top, top + offset, bottom + offset, bottom])
    height, width = size
    # the region's whole area (in a canvas large enough) against its part in the chip
    shift = np.array([width, height], float)
    whole = _fill((3 * height, 3 * width), corners + shift, convex=True).sum()
    inside = _fill(size, corners, convex=True)
    if whole == 0 or inside.sum() < EAR_MIN_INSIDE * whole:
        return None, "it lies (partly) outside the aligned chip"
    return inside, ""


def component_masks(landmarks68: np.ndarray, shape: tuple[int, int]) -> ComponentMasks:
    """The FISWG components of one face (68 landmarks as (x, y) chip pixels).

    **Our construction** (geometric, dlib's 68-point iBUG order; ``H`` is the
    nasion-chin distance; every pixel belongs to at most one component):

    * ``eyebrows``: a band along each brow's points (17-21, 22-26), from
      ``0.03 H`` above them to ``0.10 H`` below (the points mark the brow's upper
      edge);
    * ``eyes``: each eye contour's hull (36-41, 42-47) widened by ``0.04 H``
      (lids and lashes);
    * ``nose``: the hull of the bridge, the nostrils and the inner eye corners
      (27-35, 39, 42), with the base ``0.05 H`` wider each side (the alae);
    * ``mouth``: the outer lip contour's hull (48-59) widened by ``0.03 H``;
    * ``chin_jawline``: inside the jaw line from landmark 3 to 13, less the mouth;
    * ``cheeks``: the rest of the face between the jaw line (0-16) and the brows;
    * ``forehead``: from the brows up by ``0.5 H``, less the brows;
    * ``ears``: see ``_ear_region``; an ear counts only when its side of the face
      is not turned away (half-width at least ``0.6`` of the other side's) and
      ``75 %`` of its region lies inside the chip; otherwise it is listed in
      ``not_located`` with the reason.

    Overlaps go to the first of mouth, nose, eyes, eyebrows, chin/jawline, cheeks,
    forehead, ears.  A component with no pixel in the chip is not located.
    """
    points, along, up, unit = face_frame(landmarks68)
    size = (int(shape[0]), int(shape[1]))
    brows = points[RIGHT_BROW + LEFT_BROW]
    raw: dict[str, np.ndarray] = {}
    raw["mouth"] = _dilate(
        _fill(size, points[OUTER_LIP], convex=True), MOUTH_MARGIN * unit
    )
    alae = np.array(
        [
            points[31] - along * NOSTRIL_WIDEN * unit,
            points[35] + along * NOSTRIL_WIDEN * unit,
        ]
    )
    raw["nose"] = _fill(size, np.vstack([points[[*NOSE, 39, 42]], alae]), convex=True)
    raw["eyes"] = _dilate(
        _fill(size, points[RIGHT_EYE], convex=True)
        | _fill(size, points[LEFT_EYE], convex=True),
        EYE_MARGIN * unit,
    )
    eyebrows = np.zeros(size, bool)
    for brow in (points[RIGHT_BROW], points[LEFT_BROW]):
        band = np.vstack(
            [brow + up * BROW_ABOVE * unit, (brow - up * BROW_BELOW * unit)[::-1]]
        )
        eyebrows |= _fill(size, band, convex=False)
    raw["eyebrows"] = eyebrows
    raw["chin_jawline"] = _fill(size, points[3:14], convex=False)
    raw["cheeks"] = _fill(size, np.vstack([points[JAW], brows[::-1]]), convex=False)
    forehead_top = brows + up * FOREHEAD_HEIGHT * unit
    raw["forehead"] = _fill(size, np.vstack([brows, forehead_top[::-1]]), convex=False)
    ears = np.zeros(size, bool)
    reasons = []
    for side in ("right", "left"):
        region, reason = _ear_region(points, along, up, unit, side, size)
        if region is None:
            reasons.append(f"{side} ear: {reason}")
        else:
            ears |= region
    raw["ears"] = ears

    taken = np.zeros(size, bool)
    final: dict[str, np.ndarray] = {}
    for name in _FISWG_PRIORITY:
        final[name] = raw[name] & ~taken
        taken |= final[name]
    not_located: dict[str, str] = {}
    if reasons and not ears.any():
        not_located["ears"] = "; ".join(reasons)
    masks = {}
    for name in FISWG_COMPONENTS:
        if name in not_located:
            continue
        if not final[name].any():
            not_located[name] = "no pixel of it lies in the aligned chip"
            continue
        masks[name] = final[name]
    partly = tuple(reasons) if reasons and ears.any() else ()
    return ComponentMasks(masks, not_located, partly)
