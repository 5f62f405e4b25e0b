"""Levels and gamma: the usual input/output levels curve, one table for R, G, B."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param, int_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)
from core.processing.util import apply_lut


@register
class Levels(Operation):
    info = OperationInfo(
        op_id="levels",
        display_name="Levels and gamma",
        description=(
            "Maps input values black..white onto output_black..output_white through "
            "out = output_black + (output_white - output_black) * t^(1/gamma), "
            "t = (in - black) / (white - black) clipped to 0..1, the same table for "
            "red, green and blue, rounded half to even."
        ),
        category="tone",
        implementation="numpy look-up table",
        params=(
            Param("black", int, 0, "input value that becomes output_black", 0, 254),
            Param("white", int, 255, "input value that becomes output_white", 1, 255),
            Param("gamma", float, 1.0, "midtone gamma (>1 brightens)", 0.1, 10.0),
            Param("output_black", int, 0, "darkest output value", 0, 255),
            Param("output_white", int, 255, "brightest output value", 0, 255),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        black, white = int_param(params, "black"), int_param(params, "white")
        if white <= black:
            raise ProcessingError(
                f"levels: white ({white}) must be above black ({black})"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        black, white = int_param(params, "black"), int_param(params, "white")
        low, high = int_param(params, "output_black"), int_param(params, "output_white")
        gamma = float_param(params, "gamma")
        t = np.clip((np.arange(256, dtype=np.float64) - black) / (white - black), 0, 1)
        return apply_lut(rgb, low + (high - low) * t ** (1.0 / gamma))
