"""Flip: mirror the image left-right, top-bottom or both."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, str_param
from core.processing.base import Operation, OperationInfo, StepContext, register


@register
class Flip(Operation):
    info = OperationInfo(
        op_id="flip",
        display_name="Flip",
        description=(
            "Mirrors the image left-right (horizontal), top-bottom (vertical) or both "
            "(the same as a 180-degree turn), an exact rearrangement of the pixels "
            "with no value changed."
        ),
        category="geometry",
        implementation="numpy array slicing (reversed axes)",
        params=(
            Param(
                "direction",
                str,
                "horizontal",
                "horizontal: left-right mirror; vertical: top-bottom; both",
                choices=("horizontal", "vertical", "both"),
            ),
        ),
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        direction = str_param(params, "direction")
        if direction == "horizontal":
            return rgb[:, ::-1].copy()
        if direction == "vertical":
            return rgb[::-1].copy()
        return rgb[::-1, ::-1].copy()
