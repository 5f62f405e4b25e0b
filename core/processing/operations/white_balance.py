"""White balance: one gain per colour channel."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param, str_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)
from core.processing.util import apply_lut, per_channel_lut

CHANNELS = ("red", "green", "blue")


def channel_gains(
    rgb: np.ndarray, params: Mapping[str, ParamValue]
) -> tuple[np.ndarray, np.ndarray]:
    """The three gains the method gives for this image, as float64 numerators and
    denominators (gain = numerator / denominator, divided once in the table)."""
    method = str_param(params, "method")
    if method == "manual":
        gains = [float_param(params, c) for c in CHANNELS]
        return np.array(gains, dtype=np.float64), np.ones(3, dtype=np.float64)
    pixels = rgb.reshape(-1, 3)
    if method == "grey_world":
        # channel mean m_c = S_c / n and target (S_r + S_g + S_b) / 3n, so the gain
        # is (S_r + S_g + S_b) / (3 S_c): exact whole-number sums
        sums = pixels.sum(axis=0, dtype=np.int64)
        levels = sums.astype(np.float64)
        numerators = np.full(3, float(sums.sum()), dtype=np.float64)
        denominators = 3.0 * levels
        what = "mean"
    else:  # white_patch
        percentile = float_param(params, "percentile")
        levels = np.percentile(pixels, percentile, axis=0, method="linear")
        numerators = np.full(3, 255.0, dtype=np.float64)
        denominators = np.asarray(levels, dtype=np.float64)
        what = f"{percentile:g}th percentile"
    for name, level in zip(CHANNELS, levels, strict=True):
        if level <= 0:
            raise ProcessingError(
                f"white_balance, parameter method: the {name} channel's {what} is 0, "
                f"so {method} has no gain for it (use manual)"
            )
    return numerators, denominators


@register
class WhiteBalance(Operation):
    info = OperationInfo(
        op_id="white_balance",
        display_name="White balance",
        description=(
            "Multiplies red, green and blue each by its own gain, computed in float64 "
            "(value times numerator, divided once) and applied by a 256x3 look-up "
            "table, results rounded half to even and "
            "clipped to 0..255: grey_world makes each channel's mean the mean of the "
            "three means, white_patch makes each channel's percentile (linearly "
            "interpolated) 255, and manual uses the red, green and blue gains given."
        ),
        category="colour",
        implementation="numpy sums / percentile and look-up table",
        params=(
            Param(
                "method",
                str,
                "grey_world",
                "grey_world: equal channel means; white_patch: bright percentile to "
                "white; manual: the gains below",
                choices=("grey_world", "white_patch", "manual"),
            ),
            Param("red", float, 1.0, "red gain (manual)", 0.1, 10.0),
            Param("green", float, 1.0, "green gain (manual)", 0.1, 10.0),
            Param("blue", float, 1.0, "blue gain (manual)", 0.1, 10.0),
            Param(
                "percentile",
                float,
                99.0,
                "white_patch: the percentile of each channel that becomes 255",
                50.0,
                100.0,
            ),
        ),
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        return apply_lut(rgb, per_channel_lut(*channel_gains(rgb, params)))
