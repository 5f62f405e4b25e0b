"""Gaussian blur: smooth every channel with a Gaussian kernel (noise reduction,
and the simulated blur of ``xfr eval verification --degrade``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param
from core.processing.base import Operation, OperationInfo, StepContext, register
from core.processing.operations.unsharp_mask import gaussian
from core.processing.util import to_uint8


@register
class GaussianBlur(Operation):
    info = OperationInfo(
        op_id="gaussian_blur",
        display_name="Gaussian blur",
        description=(
            "Smooths each channel alike with a Gaussian of the given sigma (pixels; "
            "kernel 2*ceil(3 sigma)+1, computed in float64, edges reflected without "
            "repeating the edge pixel), rounded half to even and clipped to 0..255."
        ),
        category="noise",
        implementation="OpenCV cv2.GaussianBlur (float64, BORDER_REFLECT_101)",
        params=(Param("sigma", float, 1.0, "Gaussian sigma in pixels", 0.1, 25.0),),
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        sigma = float_param(params, "sigma")
        return to_uint8(gaussian(rgb.astype(np.float64), sigma))
