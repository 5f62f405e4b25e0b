"""CorrRISE (Lu, Xu & Ebrahimi, WACV 2024): correlation of random masks with score.

RISE-style masks (Petsiuk et al.): a coarse ``grid`` x ``grid`` binary grid, each
cell kept with probability ``keep_probability``, upsampled bilinearly to
(grid + 1) cells and cropped at a random sub-cell shift.  Each masked copy of one
image (removed pixels black) is scored by cosine similarity to the other image's
embedding.  The map is the Pearson correlation, per pixel, between the mask value
and the score over all masks: positive where keeping the pixel raises the
similarity (similarity map), negative where it lowers it (dissimilarity map).

Our defaults: 1000 masks, 8 x 8 grid, keep probability 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    register,
)
from core.explain.perturb import score_masks


def rise_masks(
    rng: np.random.Generator, count: int, grid: int, keep: float, size: tuple[int, int]
) -> torch.Tensor:
    """(count, H, W) smooth random masks in [0, 1] (Petsiuk et al., 2018)."""
    height, width = size
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    cells = torch.from_numpy(
        (rng.random((count, 1, grid, grid)) < keep).astype(np.float32)
    )
    upsampled = F.interpolate(
        cells,
        size=((grid + 1) * cell_h, (grid + 1) * cell_w),
        mode="bilinear",
        align_corners=False,
    )[:, 0]
    shifts_y = rng.integers(0, cell_h, count)
    shifts_x = rng.integers(0, cell_w, count)
    masks = torch.empty((count, height, width), dtype=torch.float32)
    for index, (dy, dx) in enumerate(zip(shifts_y, shifts_x, strict=True)):
        masks[index] = upsampled[index, dy : dy + height, dx : dx + width]
    return masks


def pixel_correlation(masks: torch.Tensor, scores: torch.Tensor) -> np.ndarray:
    """Pearson correlation between each pixel's mask value and the score."""
    flat = masks.reshape(len(masks), -1).double()
    centred = flat - flat.mean(0)
    score = scores.double() - scores.double().mean()
    denominator = centred.norm(dim=0) * score.norm()
    correlation = (centred.T @ score) / denominator.clamp_min(1e-12)
    return correlation.reshape(masks.shape[1:]).float().numpy()


@register
class CorrRISE(Explainer):
    info = ExplainerInfo(
        method_id="corrrise",
        display_name="CorrRISE",
        citation=(
            "Y. Lu, Z. Xu, T. Ebrahimi, Towards Visual Saliency Explanations of "
            "Face Verification, WACV 2024"
        ),
        description=(
            "Covers each face with many random soft masks and records the "
            "similarity score every time. Regions whose visibility goes together "
            "with a higher score are similar regions; regions whose visibility goes "
            "together with a lower score are dissimilar regions. Black-box, so it "
            "works with any model."
        ),
        kind="perturbation",
        has_dissimilarity=True,
        stochastic=True,
        params=(
            Param(
                "masks", int, 1000, "number of random masks", minimum=10, maximum=100000
            ),
            Param("grid", int, 8, "mask grid cells per side", minimum=2, maximum=64),
            Param(
                "keep_probability",
                float,
                0.5,
                "probability that a grid cell is kept visible",
                minimum=0.01,
                maximum=0.99,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        count = int(ctx.params["masks"])
        ctx.start(2 * count)
        maps = []
        for side in (0, 1):
            masks = rise_masks(
                ctx.rng(stream=side),
                count,
                int(ctx.params["grid"]),
                float(ctx.params["keep_probability"]),
                ctx.model.input_size,
            )
            scores = score_masks(ctx, side, masks, ctx.other(side))
            maps.append(ChipMaps.from_signed(pixel_correlation(masks, scores)))
        return maps[0], maps[1]
