"""Contrast stretch: map two luma percentiles onto black and white."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)
from core.processing.util import apply_lut, luma_exact


def stretch_bounds(rgb: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of the BT.601 luma (numpy's linear
    interpolation between order statistics)."""
    luma = luma_exact(rgb, "bt601")
    lo, hi = np.percentile(luma, [low, high], method="linear")
    return float(lo), float(hi)


@register
class ContrastStretch(Operation):
    info = OperationInfo(
        op_id="contrast_stretch",
        display_name="Contrast stretch",
        description=(
            "Maps the low and high percentiles of the BT.601 luma (0.299 R + 0.587 G "
            "+ 0.114 B, percentiles interpolated linearly) onto 0 and 255 by one "
            "straight-line table applied alike to red, green and blue, values beyond "
            "clipped and rounded half to even, and leaves an image whose two "
            "percentiles are equal (flat) unchanged."
        ),
        category="tone",
        implementation="numpy percentile and look-up table",
        params=(
            Param(
                "low", float, 0.5, "percentile of the luma that becomes black", 0, 100
            ),
            Param(
                "high", float, 99.5, "percentile of the luma that becomes white", 0, 100
            ),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        low, high = float_param(params, "low"), float_param(params, "high")
        if high <= low:
            raise ProcessingError(
                f"contrast_stretch, parameter high: {high:g} must be above low "
                f"({low:g})"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        lo, hi = stretch_bounds(
            rgb, float_param(params, "low"), float_param(params, "high")
        )
        if hi <= lo:
            return rgb.copy()
        values = np.arange(256, dtype=np.float64)
        return apply_lut(rgb, (values - lo) * 255.0 / (hi - lo))
