"""Deinterlace: rebuild a full frame from one field (the even or the odd lines)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, str_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)

FIELDS = ("top", "bottom")
METHODS = ("line_doubling", "linear")


@register
class Deinterlace(Operation):
    info = OperationInfo(
        op_id="deinterlace",
        display_name="Deinterlace (one field)",
        description=(
            "Keeps one field - top: lines 0, 2, 4, ...; bottom: lines 1, 3, 5, ... - "
            "and replaces every other line, the size unchanged: line_doubling copies "
            "the kept line of the same pair of lines (0-1, 2-3, ...; the kept line "
            "nearest when the pair has none), linear takes the mean of the kept lines "
            "above and below in exact integer arithmetic rounded half to even (the "
            "one kept neighbour copied at the top and bottom edges)."
        ),
        category="video",
        implementation="numpy integer arithmetic",
        params=(
            Param(
                "field",
                str,
                "top",
                "the field kept: top (even lines 0, 2, ...) or bottom (odd lines)",
                choices=FIELDS,
            ),
            Param(
                "method",
                str,
                "line_doubling",
                "how the other lines are filled: line_doubling or linear",
                choices=METHODS,
            ),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        if str_param(params, "field") == "bottom" and height < 2:
            raise ProcessingError(
                f"a {width}x{height} image has no bottom field (odd "
                "lines); use field=top"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        height = rgb.shape[0]
        first = 0 if str_param(params, "field") == "top" else 1
        kept = np.arange(first, height, 2)  # the kept lines, at least one (check)
        last = int(kept[-1])
        rows = np.arange(height)
        if str_param(params, "method") == "line_doubling":
            # line i copies the kept line of its pair (i // 2), clamped to the field
            source = np.clip(2 * (rows // 2) + first, first, last)
            return rgb[source].copy()
        out = rgb.copy()
        missing = rows[(rows - first) % 2 == 1]
        above = np.clip(missing - 1, first, last)
        below = np.clip(missing + 1, first, last)
        below = np.where(missing + 1 > last, above, below)  # bottom edge: copy above
        above = np.where(missing - 1 < first, below, above)  # top edge: copy below
        total = rgb[above].astype(np.int32) + rgb[below].astype(np.int32)
        half = total // 2
        # exact halves (odd totals) go to the even neighbour: round half to even
        half += (total & 1) & (half & 1)
        out[missing] = half.astype(np.uint8)
        return out
