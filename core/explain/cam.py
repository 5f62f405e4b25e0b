"""Grad-CAM and Grad-CAM++ at a layer tap, with the pair's similarity as target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from core.explain.base import ChipMaps, ExplainContext
from core.explain.gradients import cosine_to


def activations_and_gradients(
    ctx: ExplainContext, side: int, layers: Sequence[str]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Activations A (C, h, w) at each layer and d cos(f(x), f(other)) / dA."""
    model = ctx.model
    reference = ctx.other(side).to(ctx.device)
    with torch.enable_grad(), model.capture(layers) as captured:
        score = cosine_to(model.embed(ctx.inputs[side]), reference).sum()
        gradients = torch.autograd.grad(score, [captured[name] for name in layers])
    return {
        name: (captured[name][0].detach(), gradient[0])
        for name, gradient in zip(layers, gradients, strict=True)
    }


def gradcam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al.): alpha_c = mean over positions of dS/dA_c."""
    del activation
    return gradient.mean(dim=(1, 2))


def gradcampp_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhyay et al., eq. 19 with the exponential-score trick).

    alpha^kc_ij = g^2 / (2 g^2 + sum_ab A_ab g^3);  w_c = sum_ij alpha relu(g).
    """
    squared, cubed = gradient**2, gradient**3
    denominator = 2 * squared + activation.sum(dim=(1, 2), keepdim=True) * cubed
    alpha = torch.where(gradient != 0, squared / (denominator + 1e-7), 0.0)
    return (alpha * F.relu(gradient)).sum(dim=(1, 2))


def cam(activation: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c w_c A_c), (h, w)."""
    return F.relu(torch.einsum("c,chw->hw", weights, activation))


def cam_maps(
    activation: torch.Tensor,
    gradient: torch.Tensor,
    size: tuple[int, int],
    plus_plus: bool,
) -> ChipMaps:
    """Similarity = CAM of the score, dissimilarity = CAM of the negated score."""
    weigh = gradcampp_weights if plus_plus else gradcam_weights
    similarity = cam(activation, weigh(activation, gradient))
    dissimilarity = cam(activation, weigh(activation, -gradient))
    both = torch.stack([similarity, dissimilarity])[:, None]
    # Bilinear upsampling to the chip: each cell covers its share of the chip.
    upsampled = F.interpolate(both, size=size, mode="bilinear", align_corners=False)
    return ChipMaps.from_parts(
        upsampled[0, 0].cpu().numpy(), upsampled[1, 0].cpu().numpy()
    )
