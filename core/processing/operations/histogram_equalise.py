"""Histogram equalisation of the luma, colours kept."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from core.params import ParamValue
from core.processing.base import Operation, OperationInfo, StepContext, register


@register
class HistogramEqualise(Operation):
    info = OperationInfo(
        op_id="histogram_equalise",
        display_name="Histogram equalisation",
        description=(
            "Spreads the brightness over 0..255 by global histogram equalisation of "
            "the luma: the image is converted to 8-bit YCrCb (OpenCV COLOR_RGB2YCrCb, "
            "BT.601), the Y channel alone is remapped through its normalised "
            "cumulative histogram (cv2.equalizeHist, rounded to nearest), the Cr and "
            "Cb channels are kept, and the result is converted back to RGB (OpenCV's "
            "fixed-point conversions, which round, so an unchanged colour may move "
            "by a grey level)."
        ),
        category="tone",
        implementation="OpenCV cv2.cvtColor (RGB<->YCrCb) and cv2.equalizeHist",
    )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        ycrcb[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycrcb[..., 0]))
        return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
