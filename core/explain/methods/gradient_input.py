"""Gradient x input of the pair's cosine similarity (Shrikumar et al., 2016).

The first-order (Taylor) contribution of each pixel: gradient x (input - black
image), summed over colour channels (Ancona et al., 2018, "Gradient * Input",
R_i = x_i ds/dx_i, with x measured from a black image).  Positive where the
pixel's presence raises the similarity (similarity map), negative where it lowers
it (dissimilarity map, = the positive part for the negated score).  The same
black-image baseline is used by ``integrated_gradients``, of which this is the
one-step version.  Up to algorithm version 1 this was the ``gradient`` map.
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
class GradientInput(Explainer):
    info = ExplainerInfo(
        method_id="gradient_input",
        map_units=(
            "estimated change of the cosine similarity if the pixel faded to "
            "black (gradient x input)"
        ),
        display_name="Gradient × input",
        reference="gradient-input",  # core.references
        citation=(
            "A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje, Not Just a "
            "Black Box: Learning Important Features Through Propagating Activation "
            "Differences, arXiv:1605.01713, 2016; M. Ancona, E. Ceolini, C. "
            "Öztireli, M. Gross, Towards Better Understanding of Gradient-based "
            "Attribution Methods for Deep Neural Networks, ICLR 2018"
        ),
        description=(
            "Estimates, pixel by pixel, how the similarity score would change if "
            "that pixel faded to black, from the score's slope at the photo. Pixels "
            "whose presence raises the score form the similarity map, pixels whose "
            "presence lowers it the dissimilarity map. Because the estimate is "
            "multiplied by the pixel's own brightness, bright and high-contrast "
            "areas (and the photo itself) show through even where the network "
            "pays little attention; it is a straight-line estimate, not a "
            "measurement of actually removing the pixel."
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
            # Ancona et al. 2018, Gradient * Input: R_i = x_i ds/dx_i, x from black
            signed = (gradient * (ctx.inputs[side] - black))[0].sum(0)
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
            ctx.step(1)
        return maps[0], maps[1]
