"""SmoothGrad (Smilkov et al., 2017) on the pair's cosine similarity.

The gradient is averaged over ``samples`` copies of the input with Gaussian noise
of standard deviation ``noise`` x (max - min of the input) (the paper recommends
10-20 % and 50 samples), then used like ``gradient``: the signed contribution
mean-gradient x (input - black image), summed over colour channels.
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
from core.explain.gradients import cosine_to, input_gradient


@register
class SmoothGrad(Explainer):
    info = ExplainerInfo(
        method_id="smoothgrad",
        display_name="SmoothGrad",
        citation=(
            "D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, SmoothGrad: "
            "removing noise by adding noise, arXiv:1706.03825, 2017"
        ),
        description=(
            "The gradient method repeated on many slightly noisy copies of the face "
            "and averaged, which removes much of the speckle of a single gradient. "
            "Similarity and dissimilarity maps read as for the gradient method."
        ),
        kind="gradient",
        has_dissimilarity=True,
        stochastic=True,
        params=(
            Param(
                "samples", int, 50, "noisy copies averaged", minimum=1, maximum=10000
            ),
            Param(
                "noise",
                float,
                0.15,
                "noise standard deviation as a fraction of the input's value range",
                minimum=0.0,
                maximum=1.0,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        samples = int(ctx.params["samples"])
        ctx.start(2 * samples)
        black = ctx.black_input()
        generator = torch.Generator().manual_seed(ctx.seed)
        maps = []
        for side in (0, 1):
            x = ctx.inputs[side]
            sigma = float(ctx.params["noise"]) * float(x.max() - x.min())
            reference = ctx.other(side).to(ctx.device)
            total = torch.zeros_like(x[0])
            for start in range(0, samples, ctx.batch_size):
                count = min(ctx.batch_size, samples - start)
                # Noise drawn on the CPU so that every device sees the same samples.
                noise = torch.randn((count, *x.shape[1:]), generator=generator)
                noisy = x + sigma * noise.to(ctx.device)
                gradient = input_gradient(
                    ctx.model, noisy, lambda e, r=reference: cosine_to(e, r)
                )
                total += gradient.sum(0)
                ctx.step(count)
            signed = (total / samples * (x[0] - black[0])).sum(0)
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
        return maps[0], maps[1]
