"""Rotate: turn the image by any angle about its centre."""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from core.imageio import MAX_PIXELS
from core.params import Param, ParamValue, float_param, str_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
FILLS = ("black", "white", "edge")


def quarter_turns(angle: float) -> int | None:
    """0..3 when the angle is an exact multiple of 90 degrees, else None."""
    if angle % 90.0 != 0.0:
        return None
    return round(angle / 90.0) % 4


def expanded_size(width: int, height: int, angle: float) -> tuple[int, int]:
    """The canvas that holds the whole turned image: the turned rectangle's
    bounding box (the pixels' outer edges), rounded to 6 decimals and then up to
    whole pixels."""
    turns = quarter_turns(angle)
    if turns is not None:
        return (height, width) if turns % 2 else (width, height)
    theta = math.radians(angle)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    new_w = math.ceil(round(width * cos + height * sin, 6))
    new_h = math.ceil(round(width * sin + height * cos, 6))
    return max(new_w, 1), max(new_h, 1)


def inverse_matrix(
    width: int, height: int, new_w: int, new_h: int, angle: float
) -> np.ndarray:
    """The 2x3 float64 map from an output pixel to the input position it samples:
    a counter-clockwise turn by ``angle`` about the image centre ((w-1)/2, (h-1)/2)
    that lands on the output centre ((W-1)/2, (H-1)/2)."""
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ox, oy = (new_w - 1) / 2.0, (new_h - 1) / 2.0
    # forward (y down, counter-clockwise on screen): x' = c(x-cx) + s(y-cy) + ox,
    # y' = -s(x-cx) + c(y-cy) + oy; its inverse is the transpose of the rotation
    return np.array(
        [
            [cos, -sin, cx - cos * ox + sin * oy],
            [sin, cos, cy - sin * ox - cos * oy],
        ],
        dtype=np.float64,
    )


def _fit(image: np.ndarray, height: int, width: int, fill: str) -> np.ndarray:
    """Centre ``image`` on a height x width canvas without resampling: cut or pad
    each side by half the difference, an odd pixel at the bottom / right."""
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    if top > 0:
        image = image[top : top + height]
    if left > 0:
        image = image[:, left : left + width]
    pad_y = height - image.shape[0]
    pad_x = width - image.shape[1]
    if pad_y > 0 or pad_x > 0:
        pads: tuple[tuple[int, int], ...] = (
            (max(pad_y, 0) // 2, max(pad_y, 0) - max(pad_y, 0) // 2),
            (max(pad_x, 0) // 2, max(pad_x, 0) - max(pad_x, 0) // 2),
            (0, 0),
        )
        if fill == "edge":
            image = np.pad(image, pads, mode="edge")
        else:
            value = 255 if fill == "white" else 0
            image = np.pad(image, pads, mode="constant", constant_values=value)
    return np.ascontiguousarray(image)


@register
class Rotate(Operation):
    info = OperationInfo(
        op_id="rotate",
        display_name="Rotate",
        description=(
            "Turns the image counter-clockwise by the angle about its centre; a "
            "multiple of 90 degrees is an exact rearrangement of the pixels (no "
            "resampling, whatever the interpolation; with expand off a non-square "
            "image is centred, cut or padded, an odd pixel at the bottom/right), any "
            "other angle is resampled by OpenCV warpAffine with the chosen "
            "interpolation (nearest, bilinear, bicubic or Lanczos-4; positions to "
            "1/32 pixel, OpenCV's 8-bit fixed-point weights) from a float64 "
            "matrix, uncovered pixels filled "
            "black, white or from the nearest edge pixel (BORDER_REPLICATE), on a "
            "canvas that is the turned bounding box rounded up to whole pixels "
            "(expand) or the original size."
        ),
        category="geometry",
        implementation="numpy rot90 (multiples of 90 degrees); OpenCV cv2.warpAffine",
        params=(
            Param(
                "angle",
                float,
                0.0,
                "degrees, counter-clockwise (negative turns clockwise)",
                -360.0,
                360.0,
            ),
            Param(
                "interpolation",
                str,
                "bicubic",
                "how a turned pixel is sampled (not used for multiples of 90)",
                choices=tuple(INTERPOLATIONS),
            ),
            Param(
                "expand",
                bool,
                True,
                "grow the canvas so no pixel is lost (off: keep the size, cut corners)",
            ),
            Param(
                "fill",
                str,
                "black",
                "what uncovered pixels become: black, white or the nearest edge pixel",
                choices=FILLS,
            ),
        ),
    )

    def _size(
        self, params: Mapping[str, ParamValue], height: int, width: int
    ) -> tuple[int, int]:
        if params["expand"]:
            return expanded_size(width, height, float_param(params, "angle"))
        return width, height

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        new_w, new_h = self._size(params, height, width)
        if new_w * new_h > MAX_PIXELS:
            raise ProcessingError(
                f"rotate, parameter angle: the turned {width}x{height} image would "
                f"need a {new_w}x{new_h} canvas, more than "
                f"{MAX_PIXELS // 1_000_000} MP (turn off expand or crop first)"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        angle = float_param(params, "angle")
        fill = str_param(params, "fill")
        height, width = rgb.shape[:2]
        new_w, new_h = self._size(params, height, width)
        turns = quarter_turns(angle)
        if turns is not None:
            turned = np.rot90(rgb, k=turns)  # counter-clockwise on screen
            return _fit(turned, new_h, new_w, fill)
        if fill == "edge":
            border, value = cv2.BORDER_REPLICATE, (0, 0, 0)
        else:
            level = 255 if fill == "white" else 0
            border, value = cv2.BORDER_CONSTANT, (level, level, level)
        return cv2.warpAffine(
            rgb,
            inverse_matrix(width, height, new_w, new_h, angle),
            (new_w, new_h),
            flags=INTERPOLATIONS[str_param(params, "interpolation")]
            | cv2.WARP_INVERSE_MAP,
            borderMode=border,
            borderValue=value,
        )
