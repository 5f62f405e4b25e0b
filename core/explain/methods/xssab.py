"""xSSAB - similarity score argument backpropagation (Huber et al., WACV 2024).

The cosine similarity is a sum of arguments a_k b_k over the embedding dimensions
(a, b unit-length embeddings).  Arguments at or above threshold / N form the
"positive" part, the rest the "negative" part (the authors' bound).  The gradient of
each part w.r.t. the image, its absolute value averaged over the colour channels,
is the similarity (positive) and the dissimilarity (negative) map; the combined map
is their difference, as in the authors' code.

Adaptation: the threshold is the model's decision threshold expressed as a cosine
(see ``core.explain.base.cosine_threshold``).
"""

from __future__ import annotations

import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    register,
)
from core.explain.gradients import input_gradient


@register
class XSSAB(Explainer):
    info = ExplainerInfo(
        method_id="xssab",
        display_name="xSSAB (similarity score argument backpropagation)",
        citation=(
            "M. Huber, A. T. Luu, P. Terhörst, N. Damer, Efficient Explainable Face "
            "Verification based on Similarity Score Argument Backpropagation, "
            "WACV 2024"
        ),
        description=(
            "The similarity score is a sum of many small contributions, one per "
            "number in the face template. xSSAB splits them into those that speak "
            "for 'same person' and those that speak against it, and traces each "
            "group back to the pixels that produced it: the first group gives the "
            "similarity map, the second the dissimilarity map."
        ),
        kind="gradient",
        has_dissimilarity=True,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(4)
        maps = []
        for side in (0, 1):
            embedding, other = ctx.embeddings[side], ctx.other(side)
            other_unit = (other / other.norm()).to(ctx.device)
            arguments = (embedding / embedding.norm()).to(ctx.device) * other_unit
            positive = arguments >= ctx.cosine_threshold / embedding.numel()
            parts = []
            for keep in (positive, ~positive):
                weights = torch.where(keep, other_unit, torch.zeros_like(other_unit))

                def target(batch: torch.Tensor, weights=weights) -> torch.Tensor:
                    unit = torch.nn.functional.normalize(batch, dim=1)
                    return unit @ weights

                gradient = input_gradient(ctx.model, ctx.inputs[side], target)
                parts.append(gradient[0].abs().mean(0).cpu().numpy())
                ctx.step(1)
            maps.append(ChipMaps.from_parts(*parts))
        return maps[0], maps[1]
