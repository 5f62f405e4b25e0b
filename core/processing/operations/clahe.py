"""CLAHE: contrast-limited adaptive histogram equalisation of the luma."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from core.params import Param, ParamValue, float_param, int_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)


@register
class Clahe(Operation):
    info = OperationInfo(
        op_id="clahe",
        display_name="CLAHE (local contrast)",
        description=(
            "Raises local contrast by contrast-limited adaptive histogram "
            "equalisation of the luma only: the image is converted to 8-bit YCrCb "
            "(OpenCV COLOR_RGB2YCrCb, BT.601), the Y channel is equalised by OpenCV "
            "CLAHE on a tiles x tiles grid (each tile's histogram clipped at clip "
            "times its mean bin count, truncated to a whole count and at least 1, "
            "the excess spread over all bins, "
            "tables blended bilinearly between tile centres, an image not divisible "
            "into whole tiles padded by reflection without repeating the edge "
            "pixel), Cr and Cb are kept, and the result is converted back to RGB "
            "(OpenCV's rounding fixed-point conversions)."
        ),
        category="tone",
        implementation="OpenCV cv2.createCLAHE on Y of cv2.cvtColor RGB<->YCrCb",
        params=(
            Param(
                "clip",
                float,
                2.0,
                "contrast limit: histogram clip, times the mean bin count",
                0.1,
                40.0,
            ),
            Param("tiles", int, 8, "the grid is tiles x tiles regions (8: 8x8)", 1, 64),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        tiles = int_param(params, "tiles")
        if tiles > min(height, width):
            raise ProcessingError(
                f"clahe, parameter tiles: {tiles} tiles across is more than the "
                f"{width}x{height} image has pixels on its shorter side"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        tiles = int_param(params, "tiles")
        clahe = cv2.createCLAHE(
            clipLimit=float_param(params, "clip"), tileGridSize=(tiles, tiles)
        )
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        ycrcb[..., 0] = clahe.apply(np.ascontiguousarray(ycrcb[..., 0]))
        return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
