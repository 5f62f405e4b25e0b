"""Greyscale: one weighted luma in all three channels."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, str_param
from core.processing.base import Operation, OperationInfo, StepContext, register
from core.processing.util import LUMA_WEIGHTS, divide_round_half_even, weighted_sum_int


@register
class Greyscale(Operation):
    info = OperationInfo(
        op_id="greyscale",
        display_name="Greyscale",
        description=(
            "Replaces each pixel by one grey value in all three channels: the luma "
            "0.299 R + 0.587 G + 0.114 B (bt601), 0.2126 R + 0.7152 G + 0.0722 B "
            "(bt709) or (R + G + B) / 3 (average), computed exactly in whole numbers "
            "and rounded half to even."
        ),
        category="colour",
        implementation="numpy integer arithmetic",
        params=(
            Param(
                "weights",
                str,
                "bt601",
                "bt601 (ITU-R BT.601 luma), bt709 (ITU-R BT.709) or average",
                choices=tuple(LUMA_WEIGHTS),
            ),
        ),
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        coefficients, denominator = LUMA_WEIGHTS[str_param(params, "weights")]
        grey = divide_round_half_even(weighted_sum_int(rgb, coefficients), denominator)
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
