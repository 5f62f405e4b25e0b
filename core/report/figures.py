"""Raster figures for the report: face crops with boxes, landmarks, maps, annotations.

Everything is drawn on the case's copy of the evidence; the originals are never
written.  Crops are resampled so that they print at about 300 dpi at their size on
the page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from core.explain.base import EvidenceMap
from core.explain.render import colour_map, display_sigma, smooth_covered

FACE_MARGIN = 1.6  # crop = this many face-box sizes around the face centre
BOX_COLOUR = (0, 200, 0)
LANDMARK_COLOUR = (0, 220, 255)
ANNOTATION_COLOUR = (255, 215, 0)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def face_window(
    bbox: Sequence[float], image_shape: tuple[int, ...], margin: float = FACE_MARGIN
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a square window around the face, clipped to the image."""
    left, top, right, bottom = bbox
    size = margin * max(right - left, bottom - top)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    x0 = int(max(0, np.floor(centre_x - size / 2)))
    y0 = int(max(0, np.floor(centre_y - size / 2)))
    x1 = int(min(image_shape[1], np.ceil(centre_x + size / 2)))
    y1 = int(min(image_shape[0], np.ceil(centre_y + size / 2)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def scale_to(rgb: np.ndarray, pixels: int) -> tuple[np.ndarray, float]:
    """Resize so the longer side has ``pixels`` pixels (nearest when enlarging a lot,
    so that a low-resolution probe is shown as it is, not invented detail)."""
    scale = pixels / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    return cv2.resize(rgb, size, interpolation=interpolation), scale


def face_crop(
    rgb: np.ndarray,
    bbox: Sequence[float],
    landmarks5: np.ndarray | None,
    pixels: int = 600,
    annotations: Sequence[dict] = (),
) -> np.ndarray:
    """The face region with its box, its five landmarks and the annotations on it."""
    x0, y0, x1, y1 = face_window(bbox, rgb.shape)
    crop, scale = scale_to(rgb[y0:y1, x0:x1], pixels)
    crop = np.ascontiguousarray(crop)
    thickness = max(1, round(pixels / 300))

    def to_crop(points: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(points, float) - (x0, y0)) * scale).astype(int)

    left, top, right, bottom = to_crop(np.array([bbox[:2], bbox[2:]])).ravel()
    cv2.rectangle(crop, (left, top), (right, bottom), BOX_COLOUR, thickness)
    if landmarks5 is not None:
        for x, y in to_crop(landmarks5):
            cv2.drawMarker(
                crop, (int(x), int(y)), LANDMARK_COLOUR, cv2.MARKER_CROSS,
                4 * thickness + 6, thickness,
            )  # fmt: skip
    for annotation in annotations:
        draw_annotation(crop, annotation, to_crop, thickness)
    return crop


def draw_annotation(canvas: np.ndarray, annotation: dict, to_crop, thickness: int):
    """One examiner annotation (shape + label) in the annotation colour."""
    points = to_crop(np.asarray(annotation["points"], float))
    shape = annotation["shape"]
    colour = ANNOTATION_COLOUR
    if shape == "point":
        cv2.circle(canvas, tuple(int(v) for v in points[0]), 3 * thickness, colour, -1)
    elif shape == "rectangle":
        cv2.rectangle(canvas, tuple(points[0]), tuple(points[1]), colour, thickness)
    elif shape == "ellipse":
        centre = tuple(int(v) for v in (points[0] + points[1]) / 2)
        axes = tuple(int(abs(v)) for v in (points[1] - points[0]) / 2)
        cv2.ellipse(canvas, centre, axes, 0, 0, 360, colour, thickness)
    else:  # polygon, freehand
        closed = shape == "polygon"
        cv2.polylines(canvas, [points.reshape(-1, 1, 2)], closed, colour, thickness)
    label = f"[{annotation['number']}]"
    x, y = points.min(axis=0)
    cv2.putText(
        canvas, label, (int(x), max(12, int(y) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
        0.45 * thickness, colour, thickness, cv2.LINE_AA,
    )  # fmt: skip


def map_on_face(
    rgb: np.ndarray,
    bbox: Sequence[float],
    evidence_map: EvidenceMap,
    kind: str,
    peak: float,
    pixels: int = 500,
) -> np.ndarray:
    """A map on the face crop: smoothed for display, opacity grows with the value.

    ``peak`` is shared by all panels of one figure so that equal colours mean equal
    values across the probe and the gallery.
    """
    values = evidence_map.full()
    values = smooth_covered(values, display_sigma(evidence_map.values))
    x0, y0, x1, y1 = face_window(bbox, rgb.shape)
    crop, _ = scale_to(rgb[y0:y1, x0:x1], pixels)
    window = cv2.resize(
        values[y0:y1, x0:x1], (crop.shape[1], crop.shape[0]),
        interpolation=cv2.INTER_LINEAR,
    )  # fmt: skip
    colours, _, _ = colour_map(window, kind == "combined", peak=peak)
    strength = np.clip(np.abs(np.nan_to_num(window)) / (peak or 1.0), 0, 1)[..., None]
    opacity = 0.65 * (0.15 + 0.85 * strength)
    covered = np.isfinite(window)[..., None]
    blended = crop.astype(np.float32) * (1 - opacity) + colours * opacity
    return np.where(covered, blended, crop).astype(np.uint8)


def shared_peak(maps: Sequence[EvidenceMap]) -> float:
    """The 99th percentile of |value| over several maps (one colour scale)."""
    finite = [np.abs(m.values[np.isfinite(m.values)]) for m in maps]
    values = np.concatenate([f for f in finite if f.size] or [np.zeros(1)])
    return float(np.percentile(values, 99)) or 1.0
