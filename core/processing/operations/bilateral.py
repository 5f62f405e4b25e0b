"""Bilateral filter: edge-preserving smoothing (OpenCV)."""

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
class Bilateral(Operation):
    info = OperationInfo(
        op_id="bilateral",
        display_name="Bilateral filter",
        description=(
            "Replaces each pixel by the weighted mean of the pixels at most "
            "(diameter - 1) / 2 pixels from it (a disc), weighted by "
            "exp(-d^2 / (2 sigma_space^2)) for the distance d and "
            "exp(-c^2 / (2 sigma_colour^2)) for c the sum of the absolute red, green "
            "and blue differences, the edges reflected without "
            "repeating the edge pixel, computed by OpenCV on the 8-bit image and "
            "rounded to the nearest value (the same result with any number of "
            "threads)."
        ),
        category="noise",
        implementation="OpenCV cv2.bilateralFilter (8-bit, BORDER_REFLECT_101)",
        params=(
            Param("diameter", int, 9, "window diameter in pixels (odd)", 3, 31),
            Param(
                "sigma_colour",
                float,
                50.0,
                "colour spread: differences well below it are smoothed",
                0.1,
                1000.0,
            ),
            Param("sigma_space", float, 5.0, "spatial spread in pixels", 0.1, 100.0),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        diameter = int_param(params, "diameter")
        if diameter % 2 == 0:
            # OpenCV uses radius diameter // 2, so an even diameter would act as
            # the next odd one
            raise ProcessingError(f"parameter diameter must be odd (it is {diameter})")
        if diameter > min(height, width):
            raise ProcessingError(
                f"parameter diameter {diameter} is larger than the "
                f"{width}x{height} image"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        # Checked: the output is the same under cv2.setNumThreads(1) and the default
        # (each output pixel is computed on its own), so no thread count is pinned.
        return cv2.bilateralFilter(
            rgb,
            int_param(params, "diameter"),
            float_param(params, "sigma_colour"),
            float_param(params, "sigma_space"),
            borderType=cv2.BORDER_REFLECT_101,
        )
