"""The examiner's comparison views of two aligned faces (issue 19, item 3): side by
side, superimposition, a wipe and flicker, with a nearest-neighbour magnifier.

Both faces are aligned on one eye line (dlib's five-point alignment, the same
geometry as the model's chip, at a resolution for the eye) so that the views
compare like with like.  These are viewing aids for the examiner's morphological
comparison: nothing here measures a distance or a ratio, because photo-
anthropometry is not to be used as evidence (ASTM E3149; FISWG).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

MODES = ("side by side", "superimposition", "wipe (vertical)", "wipe (horizontal)")
ALIGNED_SIZE = 300  # px: the aligned faces the views are made of
MAX_MAGNIFICATION = 8


def compose(
    probe: np.ndarray, gallery: np.ndarray, mode: str, amount: float = 0.5
) -> np.ndarray:
    """One RGB picture of two aligned faces of the same size.

    ``amount`` (0..1): the gallery's opacity over the probe (superimposition), or
    where the wipe line lies (the probe left of / above it, the gallery beyond).
    """
    if probe.shape != gallery.shape or probe.ndim != 3 or probe.shape[2] != 3:
        raise ValueError(
            f"two aligned RGB faces of one size are needed, got {probe.shape} "
            f"and {gallery.shape}"
        )
    amount = float(np.clip(amount, 0.0, 1.0))
    if mode == "side by side":
        gap = np.full((probe.shape[0], 4, 3), 255, np.uint8)
        return np.ascontiguousarray(np.hstack([probe, gap, gallery]))
    if mode == "superimposition":
        mixed = probe.astype(np.float32) * (1 - amount) + gallery * amount
        return np.round(mixed).astype(np.uint8)
    if mode in ("wipe (vertical)", "wipe (horizontal)"):
        out = probe.copy()
        if mode == "wipe (vertical)":
            split = round(amount * probe.shape[1])
            out[:, split:] = gallery[:, split:]
            out[:, max(0, split - 1) : split + 1] = (255, 255, 0)  # the wipe line
        else:
            split = round(amount * probe.shape[0])
            out[split:] = gallery[split:]
            out[max(0, split - 1) : split + 1] = (255, 255, 0)
        return out
    raise ValueError(f"unknown view {mode!r} (use one of: {', '.join(MODES)})")


def magnify(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Enlarged by repeating each pixel (nearest neighbour: no interpolation adds
    detail that is not in the image), with a grid between pixels from 4x."""
    factor = int(np.clip(factor, 1, MAX_MAGNIFICATION))
    out = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    if factor >= 4:
        out = out.copy()
        out[::factor] = (out[::factor] * 0.6).astype(np.uint8)
        out[:, ::factor] = (out[:, ::factor] * 0.6).astype(np.uint8)
    return np.ascontiguousarray(out)


# -- figures: a view redrawn at the chips' own pixels from what was stored ---------
# The names of the views a figure records (``core.case.examination.FIGURE_VIEWS``).
VIEWS = ("side by side", "superimposed", "wipe", "flicker", "magnifier")
WIPE_AXES = ("vertical", "horizontal")
FLICKER_SIDES = ("questioned", "known")
# How workflow.aligned_faces aligns both faces (dlib's five-point chip geometry,
# padding 0.25): stored with each figure so that it is redrawn the same way.
ALIGNMENT = "dlib five-point chip, padding 0.25"
MAGNIFIER_PIXELS = 160  # px across the magnifier (its window shrinks with zoom)

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in chip pixels, x1/y1 exclusive


@dataclass(frozen=True)
class ViewParams:
    """Everything needed to redraw one comparison view from the two aligned chips.

    ``region`` is the part of the chips shown (None: all of it); the magnifier
    shows ``magnified`` (one of the other views) in a window around
    ``magnifier_centre`` that is ``MAGNIFIER_PIXELS / magnifier_zoom`` chip pixels
    across.  The flicker figure is the one frame shown (``flicker_side``); its rate
    is kept for the record.
    """

    view: str
    chip_size: int = ALIGNED_SIZE
    region: Region | None = None
    opacity: float = 0.5  # superimposed: the known face's opacity over the questioned
    wipe_axis: str = "vertical"
    wipe_position: float = 0.5  # 0..1 across (vertical) or down (horizontal)
    flicker_side: str = "questioned"
    flicker_rate_hz: float = 2.0
    magnified: str = "side by side"
    magnifier_centre: tuple[float, float] | None = None  # None: the chip's centre
    magnifier_zoom: int = 4
    alignment: str = ALIGNMENT

    def __post_init__(self) -> None:
        problems = []
        if self.view not in VIEWS:
            problems.append(f"view {self.view!r} (use one of: {', '.join(VIEWS)})")
        if self.magnified not in VIEWS or self.magnified == "magnifier":
            problems.append(f"magnified view {self.magnified!r}")
        if self.wipe_axis not in WIPE_AXES:
            problems.append(f"wipe axis {self.wipe_axis!r}")
        if self.flicker_side not in FLICKER_SIDES:
            problems.append(f"flicker side {self.flicker_side!r}")
        if not 0.0 <= self.opacity <= 1.0 or not 0.0 <= self.wipe_position <= 1.0:
            problems.append("an opacity or wipe position outside 0..1")
        if not 1 <= self.magnifier_zoom <= MAX_MAGNIFICATION:
            problems.append(f"magnification {self.magnifier_zoom}")
        if self.chip_size < 1:
            problems.append(f"chip size {self.chip_size}")
        elif self.region is not None:
            x0, y0, x1, y1 = self.region
            if not (0 <= x0 < x1 <= self.chip_size and 0 <= y0 < y1 <= self.chip_size):
                problems.append(f"region {list(self.region)}")
        if problems:
            raise ValueError("a comparison view cannot have " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (stored as the figure's params)."""
        out = asdict(self)
        for key in ("region", "magnifier_centre"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> ViewParams:
        """The inverse of ``to_dict``; ``ValueError`` names what is wrong."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown view settings: {', '.join(unknown)}")
        values = dict(params)
        try:
            if values.get("region") is not None:
                values["region"] = tuple(int(v) for v in values["region"])
            if values.get("magnifier_centre") is not None:
                x, y = values["magnifier_centre"]
                values["magnifier_centre"] = (float(x), float(y))
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the view settings cannot be read: {error}") from error

    def shown_region(self) -> Region:
        """The chip pixels this view draws."""
        if self.view == "magnifier":
            return magnifier_region(
                self.magnifier_centre, self.magnifier_zoom, self.chip_size
            )
        return self.region or (0, 0, self.chip_size, self.chip_size)


def magnifier_region(
    centre: tuple[float, float] | None, zoom: int, chip_size: int
) -> Region:
    """The window the magnifier shows around ``centre``, kept inside the chip."""
    side = min(chip_size, math.ceil(MAGNIFIER_PIXELS / max(1, zoom)))
    cx, cy = centre if centre is not None else (chip_size / 2, chip_size / 2)
    x0 = int(np.clip(round(cx - side / 2), 0, chip_size - side))
    y0 = int(np.clip(round(cy - side / 2), 0, chip_size - side))
    return x0, y0, x0 + side, y0 + side


def render_view(
    probe: np.ndarray, gallery: np.ndarray, params: ViewParams | Mapping[str, Any]
) -> np.ndarray:
    """The view described by ``params`` at the chips' own pixels (RGB uint8).

    Wipe and superimposition are drawn on the whole chips and then cut to the
    region, so a wipe line stays where it was on the face; side by side cuts each
    face first.  No pixel is interpolated (the magnifier repeats pixels).
    """
    view = params if isinstance(params, ViewParams) else ViewParams.from_dict(params)
    size = view.chip_size
    if probe.shape != (size, size, 3) or gallery.shape != (size, size, 3):
        raise ValueError(
            f"the view was made of {size} x {size} aligned faces, got "
            f"{probe.shape} and {gallery.shape}"
        )
    x0, y0, x1, y1 = view.shown_region()
    base = view.magnified if view.view == "magnifier" else view.view
    if base == "side by side":
        picture = compose(probe[y0:y1, x0:x1], gallery[y0:y1, x0:x1], "side by side")
    else:
        if base == "superimposed":
            whole = compose(probe, gallery, "superimposition", view.opacity)
        elif base == "wipe":
            whole = compose(
                probe, gallery, f"wipe ({view.wipe_axis})", view.wipe_position
            )
        else:  # flicker: the frame shown
            whole = gallery if view.flicker_side == "known" else probe
        picture = np.ascontiguousarray(whole[y0:y1, x0:x1])
    if view.view == "magnifier":
        return magnify(picture, view.magnifier_zoom)
    return picture
