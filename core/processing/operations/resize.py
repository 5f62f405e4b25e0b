"""Resize: resample the image to another width and height."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import cv2
import numpy as np

from core.imageio import MAX_PIXELS
from core.params import Param, ParamValue, float_param, int_param, str_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)

# the *_EXACT variants are OpenCV's bit-exact (platform-independent) fixed-point
# paths; INTER_NEAREST_EXACT samples at pixel centres (as PIL), not at top-left corners
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR_EXACT,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}
MAX_SIDE = 100_000


def _optional_int(params: Mapping[str, ParamValue], name: str) -> int | None:
    return None if params[name] is None else int_param(params, name)


def target_size(
    params: Mapping[str, ParamValue], height: int, width: int
) -> tuple[int, int]:
    """(new width, new height) from width / height / scale, refused in one line
    when they do not say one size or give under 1 or over MAX_PIXELS pixels."""
    new_w, new_h = _optional_int(params, "width"), _optional_int(params, "height")
    scale = None if params["scale"] is None else float_param(params, "scale")
    if scale is not None and (new_w is not None or new_h is not None):
        raise ProcessingError(
            "resize, parameter scale: give either scale or width/height, not both"
        )
    if scale is None and new_w is None and new_h is None:
        raise ProcessingError(
            "resize, parameter width: give width, height (or both) or scale"
        )
    if scale is not None:
        # the scale as its shortest decimal (what was typed: 0.15, not the binary
        # 0.1499999...), the product rounded half to even
        factor = Fraction(repr(scale))
        new_w, new_h = round(width * factor), round(height * factor)
        name = "scale"
    elif new_h is None:
        assert new_w is not None  # one of the three was given (checked above)
        new_h = round(Fraction(height * new_w, width))  # keep the aspect
        name = "width"
    elif new_w is None:
        new_w = round(Fraction(width * new_h, height))
        name = "height"
    else:
        name = "width"
    assert new_w is not None and new_h is not None
    if new_w < 1 or new_h < 1:
        raise ProcessingError(
            f"resize, parameter {name}: the {width}x{height} image would become "
            f"{new_w}x{new_h} pixels, under 1 pixel"
        )
    if new_w * new_h > MAX_PIXELS:
        raise ProcessingError(
            f"resize, parameter {name}: the result would be {new_w}x{new_h} pixels, "
            f"more than the {MAX_PIXELS // 1_000_000} MP an image may have"
        )
    return new_w, new_h


@register
class Resize(Operation):
    info = OperationInfo(
        op_id="resize",
        display_name="Resize",
        description=(
            "Resamples the image to the given width and height (one of them alone "
            "keeps the aspect ratio, or a decimal scale factor; a size that is not "
            "whole rounded half to even) with OpenCV resize, interpolation nearest "
            "(pixel centres, INTER_NEAREST_EXACT), bilinear (bit-exact "
            "INTER_LINEAR_EXACT), "
            "bicubic, Lanczos-4 or area averaging, pixel centres aligned and edge "
            "pixels repeated beyond the border, 8-bit results rounded by OpenCV."
        ),
        category="geometry",
        implementation="OpenCV cv2.resize",
        params=(
            Param(
                "width",
                int,
                None,
                "new width in pixels (auto: from height, keeping the aspect)",
                1,
                MAX_SIDE,
                optional=True,
            ),
            Param(
                "height",
                int,
                None,
                "new height in pixels (auto: from width, keeping the aspect)",
                1,
                MAX_SIDE,
                optional=True,
            ),
            Param(
                "scale",
                float,
                None,
                "scale factor for both sides instead of width/height (2 doubles)",
                0.001,
                100.0,
                optional=True,
            ),
            Param(
                "interpolation",
                str,
                "bicubic",
                "nearest, bilinear, bicubic, lanczos or area (best for shrinking)",
                choices=tuple(INTERPOLATIONS),
            ),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        target_size(params, height, width)

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        new_w, new_h = target_size(params, *rgb.shape[:2])
        if (new_w, new_h) == (rgb.shape[1], rgb.shape[0]):
            return rgb.copy()
        return cv2.resize(
            rgb,
            (new_w, new_h),
            interpolation=INTERPOLATIONS[str_param(params, "interpolation")],
        )
