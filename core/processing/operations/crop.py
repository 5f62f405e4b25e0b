"""Crop: keep a rectangle of the image, pixels unchanged."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, int_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)


@register
class Crop(Operation):
    info = OperationInfo(
        op_id="crop",
        display_name="Crop",
        description=(
            "Keeps the rectangle of w by h pixels whose top-left pixel is (x, y); "
            "the kept pixels are not changed."
        ),
        category="geometry",
        implementation="numpy array slicing",
        params=(
            Param("x", int, 0, "left edge, pixels from the left", minimum=0),
            Param("y", int, 0, "top edge, pixels from the top", minimum=0),
            Param("w", int, 1, "width in pixels", minimum=1),
            Param("h", int, 1, "height in pixels", minimum=1),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        x, y = int_param(params, "x"), int_param(params, "y")
        w, h = int_param(params, "w"), int_param(params, "h")
        if x + w > width or y + h > height:
            raise ProcessingError(
                f"crop x={x}, y={y}, w={w}, h={h} reaches outside the "
                f"{width}x{height} image"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        x, y = int_param(params, "x"), int_param(params, "y")
        w, h = int_param(params, "w"), int_param(params, "h")
        return rgb[y : y + h, x : x + w].copy()
