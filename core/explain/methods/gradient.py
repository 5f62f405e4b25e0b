"""Vanilla gradient saliency of the pair's cosine similarity (Simonyan et al., 2014).

Simonyan et al. §3.1: the saliency of pixel (i, j) is M_ij = max_c |w_(i,j,c)|, with
w = ds/dx the gradient of the score with respect to the image.  We take it with
respect to the pixel values (0..255), i.e. the gradient with respect to the model's
input divided by the card's per-channel std, so that a model whose channels are
scaled differently does not let one channel win the maximum by its scale alone.
Channel maximum rather than mean, because that is the paper's definition (a pixel
is salient when the score is sensitive to any one of its colours).

A magnitude says how sensitive the score is to a pixel, not whether the pixel
speaks for or against the match (the gradient of the negated score has the same
magnitude), so there is only a similarity map.  The signed first-order
contribution gradient x input is ``gradient_input``.
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
from core.explain.gradients import cosine_to, input_gradient


def pixel_gradient(ctx: ExplainContext, side: int) -> torch.Tensor:
    """d cos(f(x), f(other)) / d pixel value, (3, H, W)."""
    reference = ctx.other(side).to(ctx.device)
    gradient = input_gradient(
        ctx.model, ctx.inputs[side], lambda e, r=reference: cosine_to(e, r)
    )[0]
    std = torch.tensor(ctx.model.preprocessing.std, device=gradient.device)
    if ctx.model.preprocessing.channel_order == "BGR":  # card std is in RGB order
        std = std.flip(0)
    return gradient / std.view(3, 1, 1)  # x = (pixel - mean) / std


@register
class Gradient(Explainer):
    info = ExplainerInfo(
        method_id="gradient",
        magnitude_only=True,
        map_units=(
            "gradient size: change of the cosine similarity per unit change of "
            "the pixel (largest colour channel)"
        ),
        display_name="Vanilla saliency (gradient)",
        reference="gradient",  # core.references
        citation=(
            "K. Simonyan, A. Vedaldi, A. Zisserman, Deep Inside Convolutional "
            "Networks: Visualising Image Classification Models and Saliency Maps, "
            "ICLR Workshop 2014"
        ),
        description=(
            "Shows, pixel by pixel, how strongly the similarity score reacts to a "
            "tiny change of that pixel's colour: bright where the score is "
            "sensitive. It cannot say whether a region speaks for or against the "
            "match, so there is no dissimilarity map, and sensitivity is not the "
            "same as importance: a region can matter to the decision and still "
            "show little here. Fast, but known to be noisy."
        ),
        kind="gradient",
        has_dissimilarity=False,
        # 2: plain |ds/dx| (channel maximum), was gradient x input (now its own id)
        algorithm_version=2,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(2)
        maps = []
        for side in (0, 1):
            # Simonyan et al. 2014, §3.1: M_ij = max_c |w_h(i,j,c)|
            saliency = pixel_gradient(ctx, side).abs().amax(0).cpu().numpy()
            maps.append(ChipMaps(saliency, None, saliency))
            ctx.step(1)
        return maps[0], maps[1]
