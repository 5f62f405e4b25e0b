"""FGGB - Feature-Guided Gradient Backpropagation (paper 000, Lu, Xu & Ebrahimi).

Eq. (1): G^k = dF^k / dI, one gradient map per embedding dimension k.
Eq. (2): G~^k = |G^k| / ||G^k||_F.
Eq. (3): weight = (F_A . F_B) / (||F_A|| ||F_B||), element-wise (channel-wise cosine).
Eq. (4): S = sum_k G~^k (weight_k - threshold / N).
Eq. (5): S+ = S[S >= 0], S- = S[S < 0]; we store S- as a magnitude (>= 0) so that
S = S+ - S-.

Adaptations to our models: G^k has the three colour channels of the input; eq. (4)
is applied per channel and the channels are summed into one map per pixel.  The
threshold is the model's decision threshold expressed as a cosine (for dlib's
Euclidean rule, the cosine at which this pair would sit on d = 0.6, see
``core.explain.base.cosine_threshold``).  Gradients are taken w.r.t. the
preprocessed input, which differs from pixels by a constant factor per channel that
eq. (2) normalises away.
"""

from __future__ import annotations

import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    register,
)
from core.explain.gradients import feature_gradients


def fggb_map(
    ctx: ExplainContext, side: int, *, batched: bool = True, chunk: int | None = None
) -> torch.Tensor:
    """The signed FGGB map S (eq. 4) of one image, (H, W)."""
    model = ctx.model
    embedding, other = ctx.embeddings[side], ctx.other(side)
    dimensions = embedding.numel()
    weight = embedding * other / (embedding.norm() * other.norm())  # eq. (3)
    weight = weight - ctx.cosine_threshold / dimensions  # eq. (4), bracket
    chunk = chunk or int(ctx.params["chunk"])
    signed = torch.zeros(ctx.inputs[side].shape[1:], device=ctx.device)
    for rows, gradients in feature_gradients(
        model, ctx.inputs[side], chunk, batched=batched
    ):
        norms = gradients.flatten(1).norm(dim=1).clamp_min(1e-12)
        normalised = gradients.abs() / norms[:, None, None, None]  # eq. (2)
        signed += torch.einsum("kchw,k->chw", normalised, weight[rows].to(ctx.device))
        ctx.step(rows.stop - rows.start)
    return signed.sum(0)  # colour channels -> one value per pixel


@register
class FGGB(Explainer):
    info = ExplainerInfo(
        method_id="fggb",
        display_name="FGGB (feature-guided gradient backpropagation)",
        citation=(
            "Y. Lu, Z. Xu, T. Ebrahimi, Explainable Face Verification via "
            "Feature-Guided Gradient Backpropagation, FG 2024"
        ),
        description=(
            "For every number in the face template the model computes, FGGB finds "
            "which pixels that number depends on. Numbers on which the two faces "
            "agree (more than the decision threshold requires) paint their pixels "
            "as similar; numbers on which the faces disagree paint them as "
            "dissimilar. The similarity map therefore shows the regions behind an "
            "'accept', the dissimilarity map the regions behind a 'reject'."
        ),
        kind="gradient",
        has_dissimilarity=True,
        params=(
            Param(
                "chunk",
                int,
                32,
                "embedding dimensions back-propagated together (memory vs speed; "
                "does not change the result)",
                minimum=1,
                maximum=4096,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(2 * ctx.embeddings[0].numel())
        maps = []
        for side in (0, 1):
            try:
                signed = fggb_map(ctx, side)
            except RuntimeError as error:  # a network vmap cannot batch
                ctx.notes.append(f"batched backward unavailable ({error}); used a loop")
                signed = fggb_map(ctx, side, batched=False)
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
        return maps[0], maps[1]
