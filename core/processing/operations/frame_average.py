"""Frame averaging: the mean of a video frame and its registered neighbours, which
lowers random noise by about the square root of the number of frames."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from core.params import Param, ParamValue, int_param, str_param
from core.processing.base import (
    Operation,
    OperationInfo,
    ProcessingError,
    StepContext,
    register,
)
from core.processing.util import luminance, to_uint8

REGISTRATIONS = ("translation", "none")
MIN_REGION = 16  # the smallest side of the area registered, in pixels


@register
class FrameAverage(Operation):
    info = OperationInfo(
        op_id="frame_average",
        display_name="Frame averaging",
        description=(
            "Averages the frame with up to `before` frames before and `after` frames "
            "after it in the video, each neighbour first aligned by a translation "
            "(translation: measured by OpenCV phase correlation of the BT.601 luma of "
            "the region, float64, Hann-windowed, and applied by cv2.warpAffine with "
            "bilinear interpolation at 1/32-pixel steps and the edge pixels "
            "repeated; none: not moved), the mean taken in float64, rounded half to "
            "even and clipped to 0..255."
        ),
        category="video",
        implementation=(
            "OpenCV cv2.phaseCorrelate, cv2.createHanningWindow, cv2.warpAffine "
            "(INTER_LINEAR, BORDER_REPLICATE, float64); numpy mean"
        ),
        params=(
            Param("before", int, 2, "frames before this one to average", 0, 15),
            Param("after", int, 2, "frames after this one to average", 0, 15),
            Param(
                "registration",
                str,
                "translation",
                "align each neighbour to this frame: translation or none",
                choices=REGISTRATIONS,
            ),
            Param(
                "region",
                tuple,
                None,
                "x,y,w,h of the area the alignment is measured on (default: the "
                "whole frame)",
                minimum=0,
                optional=True,
                length=4,
            ),
        ),
        needs_frames=True,
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        if int_param(params, "before") + int_param(params, "after") < 1:
            raise ProcessingError(
                "parameters before and after are both 0; average at "
                "least one neighbouring frame"
            )
        x, y, w, h = _region(params, height, width)
        if w < MIN_REGION or h < MIN_REGION:
            raise ProcessingError(
                f"parameter region {w}x{h} is too small to register "
                f"(at least {MIN_REGION}x{MIN_REGION} pixels)"
            )
        if x + w > width or y + h > height:
            raise ProcessingError(
                f"parameter region x={x}, y={y}, w={w}, h={h} reaches "
                f"outside the {width}x{height} frame"
            )

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        height, width = rgb.shape[:2]
        before, after = int_param(params, "before"), int_param(params, "after")
        wanted = [*range(-before, 0), *range(1, after + 1)]
        frame_set = ctx.frames(self.info.op_id, wanted)
        found = [o for o in wanted if o in frame_set.frames]
        missing = [o for o in wanted if o not in frame_set.frames]
        if not found:
            raise ProcessingError(
                "the video has none of the frames asked for "
                f"(offsets {', '.join(f'{o:+d}' for o in wanted)})"
            )
        register_frames = str_param(params, "registration") == "translation"
        x, y, w, h = _region(params, height, width)
        window = cv2.createHanningWindow((w, h), cv2.CV_64F)
        reference = luminance(rgb[y : y + h, x : x + w])
        if register_frames:
            _has_detail(reference, "the source frame")
        reference = reference * window
        total = rgb.astype(np.float64)
        used = []
        for offset in found:
            ctx.check_cancelled()
            frame = np.asarray(frame_set.frames[offset])
            if frame.dtype != np.uint8 or frame.shape != rgb.shape:
                raise ProcessingError(
                    f"the frame at offset {offset:+d} is "
                    f"{_size(frame)}, the source frame {width}x{height}x3 8-bit"
                )
            pixels: np.ndarray = frame.astype(np.float64)
            dx = dy = 0.0
            if register_frames:
                moving = luminance(frame[y : y + h, x : x + w])
                _has_detail(moving, f"the frame at offset {offset:+d}")
                moving = moving * window
                # the window is applied here rather than passed to phaseCorrelate:
                # OpenCV 5.0's binding gave the same shift with and without it
                (dx, dy), _ = cv2.phaseCorrelate(reference, moving)
                if not (np.isfinite(dx) and np.isfinite(dy)):  # pragma: no cover
                    raise ProcessingError(
                        f"the shift of the frame at offset {offset:+d} could not be "
                        "measured; use registration=none or another region"
                    )
                # the neighbour's content sits (dx, dy) from this frame's: sample
                # it at (x + dx, y + dy)
                matrix = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]])
                pixels = cv2.warpAffine(
                    pixels,
                    matrix,
                    (width, height),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
            total += pixels
            record = dict(frame_set.records.get(offset, {}))
            used.append({"offset": offset, **record, "shift": [float(dx), float(dy)]})
        ctx.inputs["frames"] = used
        ctx.inputs["missing_offsets"] = missing
        return to_uint8(total / (1 + len(found)))


def _region(
    params: Mapping[str, ParamValue], height: int, width: int
) -> tuple[int, int, int, int]:
    region = params.get("region")
    if region is None:
        return 0, 0, width, height
    if not isinstance(region, tuple) or len(region) != 4:
        raise ProcessingError(
            f"parameter region must be x,y,w,h (four numbers), not {region!r}"
        )
    x, y, w, h = (int(v) for v in region)
    return x, y, w, h


def _has_detail(luma: np.ndarray, what: str) -> None:
    """Phase correlation of a region of one grey level is meaningless (OpenCV
    answers half the region's size): refuse it."""
    if float(np.ptp(luma)) == 0.0:
        raise ProcessingError(
            f"{what} is one grey level in the region registered: there is nothing "
            "to align (choose another region, or registration=none)"
        )


def _size(frame: np.ndarray) -> str:
    shape = "x".join(str(n) for n in (frame.shape[1::-1] + frame.shape[2:]))
    return f"{shape} {frame.dtype}" if frame.ndim >= 2 else f"shape {frame.shape}"
