"""Measures from the face's pixels: sharpness, exposure, contrast, compression.

The face region is the face aligned by its five landmarks onto a fixed
``REGION_SIZE`` square (dlib's chip geometry with no padding: brows to chin, jaw to
jaw), so that figures of faces of different sizes compare.  Pixels of that square
that fall outside the evidence image are masked out, not counted as black.

Blockiness is measured on the evidence's own pixels instead (the face's bounding
box, on the file's 8x8 grid), because resampling would blur the JPEG block edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from core.faces.align import ChipTransform, dlib_chip_transform
from core.quality.base import ComputedMeasure, FaceInput, register

REGION_SIZE = 128  # px, side of the aligned face region
MIN_REGION_SHARE = 0.25  # below this share of the region inside the image: n/a
CLIP_LOW, CLIP_HIGH = 2, 253  # luminance at or beyond these counts as clipped
MIN_BLOCK_REGION = 16  # px; a face box smaller than two blocks has no block edges

# IJG's (libjpeg's) standard luminance quantisation table (ITU-T T.81 Annex K.1),
# from which libjpeg scales the tables for its quality setting 1-100.
IJG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    float,
).ravel()


def face_region(face: FaceInput) -> tuple[np.ndarray, np.ndarray]:
    """(grey region as float 0-255, boolean mask of the pixels inside the image).

    Warped once per face and shared by sharpness, exposure, contrast and clipping
    (read-only arrays, as every measure reads the same copy).
    """
    return face.derived("face_region", _warp_face_region)


def _region_transform(face: FaceInput) -> ChipTransform:
    return face.derived(
        "region_transform",
        lambda f: dlib_chip_transform(f.points5, size=REGION_SIZE, padding=0.0),
    )


def _grey(face: FaceInput) -> np.ndarray:
    """The whole evidence image in grey (uint8), converted once per face."""

    def convert(f: FaceInput) -> np.ndarray:
        grey = cv2.cvtColor(np.ascontiguousarray(f.rgb), cv2.COLOR_RGB2GRAY)
        grey.setflags(write=False)
        return grey

    return face.derived("grey", convert)


def _warp_face_region(face: FaceInput) -> tuple[np.ndarray, np.ndarray]:
    transform = _region_transform(face)
    grey = _grey(face)
    size = (REGION_SIZE, REGION_SIZE)
    region = cv2.warpAffine(
        grey.astype(np.float32), transform.image_to_chip, size, flags=cv2.INTER_LINEAR
    )
    inside = cv2.warpAffine(
        np.ones_like(grey, np.float32),
        transform.image_to_chip,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    region64, mask = region.astype(float), inside > 0.999
    region64.setflags(write=False)
    mask.setflags(write=False)
    return region64, mask


def _region_or_reason(
    face: FaceInput,
) -> tuple[np.ndarray, np.ndarray] | str:
    region, inside = face_region(face)
    if inside.mean() < MIN_REGION_SHARE:
        return "most of the face lies outside the image"
    return region, inside


def sharpness(face: FaceInput) -> tuple[float | None, str]:
    found = _region_or_reason(face)
    if isinstance(found, str):
        return None, found
    region, inside = found
    laplacian = cv2.Laplacian(region, cv2.CV_64F, ksize=1)
    # The Laplacian's 3x3 kernel must lie wholly inside the image.
    valid = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    contrast = float(region[valid].var())
    if contrast < 1.0:
        return None, "the face region is uniform (no contrast to measure against)"
    return float(laplacian[valid].var()) / contrast, ""


def mean_luminance(face: FaceInput) -> tuple[float | None, str]:
    found = _region_or_reason(face)
    if isinstance(found, str):
        return None, found
    region, inside = found
    return float(region[inside].mean()), ""


def contrast(face: FaceInput) -> tuple[float | None, str]:
    found = _region_or_reason(face)
    if isinstance(found, str):
        return None, found
    region, inside = found
    return float(region[inside].std()), ""


def clipped_share(face: FaceInput) -> tuple[float | None, str]:
    found = _region_or_reason(face)
    if isinstance(found, str):
        return None, found
    region, inside = found
    values = np.rint(region[inside])
    return float(((values <= CLIP_LOW) | (values >= CLIP_HIGH)).mean()), ""


def _face_box(face: FaceInput) -> np.ndarray | None:
    """The evidence's own grey pixels in the face region's bounding box, with the
    box's top-left corner snapped to the file's 8x8 block grid."""
    transform = _region_transform(face)
    corners = transform.to_image(
        np.array([[0, 0], [REGION_SIZE, 0], [0, REGION_SIZE], [REGION_SIZE] * 2])
    )
    height, width = face.rgb.shape[:2]
    left = max(0, int(np.floor(corners[:, 0].min())) // 8 * 8)
    top = max(0, int(np.floor(corners[:, 1].min())) // 8 * 8)
    right = min(width, int(np.ceil(corners[:, 0].max())))
    bottom = min(height, int(np.ceil(corners[:, 1].max())))
    if right - left < MIN_BLOCK_REGION or bottom - top < MIN_BLOCK_REGION:
        return None
    # grey is per pixel, so the whole image's grey cut to the box is the box's grey
    return _grey(face)[top:bottom, left:right].astype(float)


def _boundary_ratio(grey: np.ndarray) -> float:
    """Mean absolute step across 8x8 block boundaries / mean step elsewhere, along
    the rows (the columns: transpose)."""
    steps = np.abs(np.diff(grey, axis=1))  # step j lies between columns j and j+1
    at_boundary = (np.arange(steps.shape[1]) % 8) == 7
    inside = float(steps[:, ~at_boundary].mean())
    return float(steps[:, at_boundary].mean()) / max(inside, 1e-6)


VIDEO_FRAME_NO_GRID = (
    "a frame decoded from a video: its codec's blocks and deblocking are not the "
    "JPEG 8x8 grid this measure reads"
)


def blockiness(face: FaceInput) -> tuple[float | None, str]:
    if face.no_block_grid:
        return None, face.no_block_grid
    if not face.blocks_aligned:
        return None, "EXIF orientation turned the image, so its block grid is unknown"
    grey = _face_box(face)
    if grey is None:
        return None, "the face is too small or outside the image"
    return (_boundary_ratio(grey) + _boundary_ratio(grey.T)) / 2.0, ""


def ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table for ``quality`` 1-100 (its scaling rule)."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((IJG_LUMINANCE * scale + 50.0) / 100.0), 1, 255)


def estimated_jpeg_quality(tables: Mapping[int, Sequence[int]]) -> float | None:
    """The libjpeg quality 1-100 whose luminance table is nearest the file's.

    Compared as sorted values, so that the table's storage order (zig-zag or
    natural) does not matter; for a file from another encoder this is an
    "IJG-equivalent" quality, not its encoder's own setting.
    """
    if 0 not in tables or len(tables[0]) != 64:
        return None
    table = np.sort(np.asarray(tables[0], float))
    errors = [np.abs(np.sort(ijg_table(q)) - table).sum() for q in range(1, 101)]
    return float(int(np.argmin(errors)) + 1)


def read_jpeg_tables(path: Path | BinaryIO) -> dict[int, list[int]] | None:
    """The quantisation tables of a JPEG file (None for any other file).

    The file was read and checked as evidence before (``core.imageio``); a file
    Pillow cannot open here simply has no tables to report.
    """
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                return None
            tables = getattr(image, "quantization", None) or {}
            return {int(k): [int(v) for v in table] for k, table in tables.items()}
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def jpeg_quality(face: FaceInput) -> tuple[float | None, str]:
    if face.jpeg_tables is None:
        return None, "the evidence file is not a JPEG, so it has no quantisation tables"
    quality = estimated_jpeg_quality(face.jpeg_tables)
    if quality is None:
        return None, "the JPEG's luminance quantisation table could not be read"
    return quality, "estimated from the file's luminance quantisation table"


SHARPNESS = register(
    ComputedMeasure(
        id="sharpness",
        name="sharpness",
        definition="variance of the Laplacian of the grey aligned face region "
        f"({REGION_SIZE} px square) divided by the variance of the region's grey "
        "values, so that a darker or flatter-lit image of the same detail is not "
        "rated blurrier",
        unit="ratio",
        better="higher",
        compute=sharpness,
    )
)
MEAN_LUMINANCE = register(
    ComputedMeasure(
        id="exposure",
        name="mean luminance",
        definition="mean grey value (ITU-R BT.601 luma) of the aligned face region",
        unit="0-255",
        better="neither",
        compute=mean_luminance,
    )
)
CONTRAST = register(
    ComputedMeasure(
        id="contrast",
        name="contrast",
        definition="standard deviation of the grey values of the aligned face region",
        unit="0-255",
        better="higher",
        compute=contrast,
    )
)
CLIPPED = register(
    ComputedMeasure(
        id="clipped",
        name="clipped pixels",
        definition=f"share of the face region's pixels at or below {CLIP_LOW} or at "
        f"or above {CLIP_HIGH} (black or white with the detail lost)",
        unit="fraction 0-1",
        better="lower",
        compute=clipped_share,
    )
)
BLOCKINESS = register(
    ComputedMeasure(
        id="blockiness",
        name="JPEG blockiness",
        definition="mean absolute grey step across the file's 8x8 block boundaries "
        "divided by the mean step inside the blocks, over the face's bounding box; "
        "about 1 for an image without block artefacts",
        unit="ratio",
        better="lower",
        compute=blockiness,
    )
)
JPEG_QUALITY = register(
    ComputedMeasure(
        id="jpeg_quality",
        name="estimated JPEG quality",
        definition="the libjpeg quality setting (1-100) whose luminance quantisation "
        "table is nearest the file's (IJG-equivalent for other encoders)",
        unit="1-100",
        better="higher",
        compute=jpeg_quality,
    )
)
