"""MinusPlus (Mery, CVPR Workshops 2022): removal and aggregation saliency.

Black-box, two strategies with Gaussian windows g_i (peak 1, ``sigma`` pixels)
centred on a grid with ``stride`` pixels:

* Minus (removal): fade the window to black in one image and score it against the
  other image; H- = sum_i (s0 - s_i^-) g_i / sum_i g_i, the score lost.
* Plus (aggregation): keep only the window (the rest black);
  H+ = sum_i s_i^+ g_i / sum_i g_i, the score the region achieves on its own.

Each is scaled to [0, 1] and the two are averaged into the saliency map.  Mery
defines no dissimilarity map (Lu et al. 2024).  Adaptation: windows, grid and the
cosine similarity to the other image's embedding as the score are our choices for
the 150-pixel dlib chip; the paper works on 112-pixel chips.
"""

from __future__ import annotations

import numpy as np
import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    float_param,
    int_param,
    register,
)
from core.explain.perturb import scale_01, score_masks


def gaussian_windows(size: tuple[int, int], sigma: float, stride: int) -> torch.Tensor:
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centres = [
        (cy, cx)
        for cy in range(stride // 2, height, stride)
        for cx in range(stride // 2, width, stride)
    ]
    windows = np.stack(
        [
            np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
            for cy, cx in centres
        ]
    )
    return torch.from_numpy(windows.astype(np.float32))


@register
class MinusPlus(Explainer):
    info = ExplainerInfo(
        method_id="minusplus",
        magnitude_only=True,
        legends=tuple(
            (
                kind,
                "top: the regions most for 'same person' (scaled 0-1, relative)",
                "bottom (0): the regions least for it, or most against it",
            )
            for kind in ("similarity", "combined")
        ),
        map_units=(
            "relative, 0 to 1: the mean of the scaled loss when a region is "
            "removed and the score when it is shown alone (no physical unit)"
        ),
        display_name="MinusPlus (removal + aggregation)",
        reference="minusplus",  # core.references
        citation=(
            "D. Mery, True Black-Box Explanation in Facial Analysis, "
            "CVPR Workshops 2022"
        ),
        description=(
            "Two complementary experiments: first each region is removed in turn "
            "and the loss of similarity is measured (minus); then each region is "
            "shown alone and its similarity is measured (plus). Regions that "
            "matter in both experiments light up. Gives a similarity map only."
        ),
        kind="perturbation",
        has_dissimilarity=False,
        params=(
            Param(
                "sigma",
                float,
                12.0,
                "Gaussian window size (pixels)",
                minimum=1,
                maximum=200,
            ),
            Param(
                "stride",
                int,
                10,
                "step between window centres (pixels)",
                minimum=1,
                maximum=200,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        windows = gaussian_windows(
            ctx.model.input_size,
            float_param(ctx.params, "sigma"),
            int_param(ctx.params, "stride"),
        )
        ctx.start(4 * len(windows))
        coverage = windows.sum(0)
        original = float(
            torch.nn.functional.cosine_similarity(
                ctx.embeddings[0], ctx.embeddings[1], dim=0
            )
        )
        maps = []
        for side in (0, 1):
            removed = score_masks(ctx, side, 1.0 - windows, ctx.other(side))
            alone = score_masks(ctx, side, windows, ctx.other(side))
            minus = torch.einsum("n,nhw->hw", original - removed, windows) / coverage
            plus = torch.einsum("n,nhw->hw", alone, windows) / coverage
            saliency = 0.5 * (
                scale_01(minus.cpu().numpy()) + scale_01(plus.cpu().numpy())
            )
            maps.append(ChipMaps(saliency, None, saliency))
        return maps[0], maps[1]
