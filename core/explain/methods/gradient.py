"""Gradient saliency of the pair's cosine similarity (Simonyan et al., 2014).

Simonyan's map is the gradient of the score w.r.t. the pixels.  The gradient of the
negated score (the dissimilarity target) is just its negative, so a magnitude map
could not tell the two apart; we therefore use the signed first-order contribution
gradient x (input - black image), summed over colour channels: positive where the
pixel's presence raises the similarity (similarity map), negative where it lowers
it (dissimilarity map, = the positive part for the negated score).  The same
black-image baseline is used by ``integrated_gradients``.
"""

from __future__ import annotations

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    register,
)
from core.explain.gradients import cosine_to, input_gradient


@register
class Gradient(Explainer):
    info = ExplainerInfo(
        method_id="gradient",
        display_name="Gradient (vanilla saliency)",
        citation=(
            "K. Simonyan, A. Vedaldi, A. Zisserman, Deep Inside Convolutional "
            "Networks: Visualising Image Classification Models and Saliency Maps, "
            "ICLR Workshop 2014"
        ),
        description=(
            "Measures, pixel by pixel, how the similarity score would change if "
            "that pixel faded towards black. Pixels whose presence raises the score "
            "form the similarity map, pixels whose presence lowers it the "
            "dissimilarity map. Fast, but known to be noisy."
        ),
        kind="gradient",
        has_dissimilarity=True,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(2)
        black = ctx.black_input()
        maps = []
        for side in (0, 1):
            reference = ctx.other(side).to(ctx.device)
            gradient = input_gradient(
                ctx.model, ctx.inputs[side], lambda e, r=reference: cosine_to(e, r)
            )
            signed = (gradient * (ctx.inputs[side] - black))[0].sum(0)
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
            ctx.step(1)
        return maps[0], maps[1]
