"""Non-local means denoising of a colour image (OpenCV)."""

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
class NonLocalMeans(Operation):
    info = OperationInfo(
        op_id="nl_means",
        display_name="Non-local means denoising",
        description=(
            "Converts the image to 8-bit CIE L*a*b* and replaces each pixel by the "
            "mean of the pixels in a search window of the given side, weighted by how "
            "similar the template-sized patches around them are (filter strength h "
            "for lightness, colour_strength for a* and b*), edges reflected without "
            "repeating the edge pixel, then converts back to RGB, all in OpenCV's "
            "integer arithmetic (the same result with any number of threads)."
        ),
        category="noise",
        implementation="OpenCV cv2.fastNlMeansDenoisingColored",
        params=(
            Param(
                "strength",
                float,
                5.0,
                "filter strength h for lightness (larger removes more noise, detail)",
                0.0,
                50.0,
            ),
            Param(
                "colour_strength",
                float,
                5.0,
                "filter strength for the colour components",
                0.0,
                50.0,
            ),
            Param("template", int, 7, "patch side in pixels (odd)", 3, 21),
            Param("search", int, 21, "search window side in pixels (odd)", 3, 61),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        template = int_param(params, "template")
        search = int_param(params, "search")
        for name, value in (("template", template), ("search", search)):
            if value % 2 == 0:
                raise ProcessingError(f"parameter {name} must be odd (it is {value})")
        if search < template:
            raise ProcessingError(
                f"parameter search ({search}) must be at least template ({template})"
            )
        if search > min(height, width):
            raise ProcessingError(
                f"parameter search {search} is larger than the {width}x{height} image"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        # Checked: the output is the same under cv2.setNumThreads(1) and the default
        # (the patch distances are integer sums), so no thread count is pinned.
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = cv2.fastNlMeansDenoisingColored(
            bgr,
            None,
            float_param(params, "strength"),
            float_param(params, "colour_strength"),
            int_param(params, "template"),
            int_param(params, "search"),
        )
        return np.ascontiguousarray(out[:, :, ::-1])
