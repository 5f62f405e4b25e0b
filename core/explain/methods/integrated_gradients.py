"""Integrated Gradients (Sundararajan et al., ICML 2017) on the cosine similarity.

Attribution_i = (x_i - x'_i) * mean over alpha of d s(x' + alpha (x - x')) / d x_i,
with a black image as baseline x' and ``steps`` midpoint-rule alphas.  The
attributions sum (completeness axiom) to s(x) - s(x'); the remaining gap is a check
of the step count and is reported in the notes.  Summed over colour channels;
positive = similarity, negative = dissimilarity (the positive part for the negated
score).
"""

from __future__ import annotations

import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    int_param,
    register,
)
from core.explain.gradients import cosine_to, input_gradient


@register
class IntegratedGradients(Explainer):
    info = ExplainerInfo(
        method_id="integrated_gradients",
        map_units=(
            "share of the cosine similarity's rise from a black image (all "
            "pixels add up to it)"
        ),
        display_name="Integrated Gradients",
        reference="integrated-gradients",  # core.references
        citation=(
            "M. Sundararajan, A. Taly, Q. Yan, Axiomatic Attribution for Deep "
            "Networks, ICML 2017"
        ),
        description=(
            "Fades each face in gradually from a black image and adds up, pixel by "
            "pixel, how much the similarity score rose or fell along the way. The "
            "parts add up to the whole score difference between the black image and "
            "the face, so the maps account for the score exactly."
        ),
        kind="gradient",
        has_dissimilarity=True,
        params=(
            Param(
                "steps",
                int,
                50,
                "points on the path from black to the face",
                minimum=2,
                maximum=10000,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        steps = int_param(ctx.params, "steps")
        ctx.start(2 * steps)
        baseline = ctx.black_input()
        alphas = (torch.arange(steps, dtype=torch.float32, device="cpu") + 0.5) / steps
        maps = []
        for side in (0, 1):
            x = ctx.inputs[side]
            reference = ctx.other(side).to(ctx.device)
            total = torch.zeros_like(x[0])
            for start in range(0, steps, ctx.batch_size):
                chunk = alphas[start : start + ctx.batch_size].to(ctx.device)
                path = baseline + chunk[:, None, None, None] * (x - baseline)
                gradient = input_gradient(
                    ctx.model, path, lambda e, r=reference: cosine_to(e, r)
                )
                total += gradient.sum(0)
                ctx.step(len(chunk))
            attribution = total / steps * (x[0] - baseline[0])
            with torch.inference_mode():
                ends = cosine_to(ctx.model.embed(torch.cat([x, baseline])), reference)
            gap = float(attribution.sum()) - float(ends[0] - ends[1])
            ctx.notes.append(
                f"{ctx.pair.sides[side].side}: completeness gap {gap:+.4f} "
                f"(sum of attributions minus score difference to the black image)"
            )
            maps.append(ChipMaps.from_signed(attribution.sum(0).cpu().numpy()))
        return maps[0], maps[1]
