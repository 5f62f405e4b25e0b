"""Unsharp mask: add back the difference between the image and a blurred copy."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from core.params import Param, ParamValue, float_param, int_param
from core.processing.base import Operation, OperationInfo, StepContext, register
from core.processing.util import to_uint8


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur in float64, kernel 2*ceil(3 sigma)+1, border reflected
    without repeating the edge pixel (OpenCV BORDER_REFLECT_101)."""
    size = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(
        image,
        (size, size),
        sigmaX=sigma,
        sigmaY=sigma,
        borderType=cv2.BORDER_REFLECT_101,
    )


@register
class UnsharpMask(Operation):
    info = OperationInfo(
        op_id="unsharp",
        display_name="Unsharp mask",
        description=(
            "Sharpens: out = in + amount * (in - blurred) wherever |in - blurred| is "
            "at least threshold, the blur Gaussian with the given radius (sigma, "
            "pixels; kernel 2*ceil(3 sigma)+1, edges reflected), each channel alike, "
            "rounded half to even."
        ),
        category="sharpness",
        implementation="OpenCV cv2.GaussianBlur (float64) and numpy",
        params=(
            Param("radius", float, 1.5, "Gaussian sigma in pixels", 0.1, 25.0),
            Param(
                "amount", float, 1.0, "strength: 1 adds the full difference", 0.0, 10.0
            ),
            Param(
                "threshold",
                int,
                0,
                "smallest difference sharpened (grey levels)",
                0,
                255,
            ),
        ),
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        image = rgb.astype(np.float64)
        detail = image - gaussian(image, float_param(params, "radius"))
        keep = np.abs(detail) >= int_param(params, "threshold")
        return to_uint8(image + float_param(params, "amount") * detail * keep)
