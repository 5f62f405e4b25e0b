"""Gradient helpers shared by the gradient-family explainers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.func import vjp, vmap

from core.models.base import FaceModel


def cosine_to(embedding: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each row of ``embedding`` to the fixed ``reference``."""
    return torch.nn.functional.cosine_similarity(embedding, reference[None], dim=1)


def input_gradient(
    model: FaceModel,
    inputs: torch.Tensor,
    target: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """d sum(target(embed(inputs))) / d inputs, for a batch of independent inputs."""
    inputs = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = target(model.embed(inputs)).sum()
        (gradient,) = torch.autograd.grad(value, inputs)
    return gradient


def feature_gradients(
    model: FaceModel, inputs: torch.Tensor, chunk: int, *, batched: bool = True
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Gradients of every embedding dimension w.r.t. the input (Lu et al. 2024, eq. 1).

    One forward pass, then vector-Jacobian products with rows of the identity,
    ``chunk`` dimensions at a time (vmapped, i.e. one batched backward per chunk).
    Yields ``(dimensions, gradients)`` with gradients of shape (k, 3, H, W).
    ``batched=False`` is the straightforward per-dimension ``autograd.grad`` loop,
    kept for the benchmark and as a fallback for networks vmap cannot batch.
    """
    if batched:
        embedding, pullback = vjp(lambda x: model.embed(x)[0], inputs.detach())
        identity = torch.eye(embedding.numel(), device=inputs.device)
        for start in range(0, embedding.numel(), chunk):
            rows = slice(start, min(embedding.numel(), start + chunk))
            (gradients,) = vmap(pullback)(identity[rows])
            yield rows, gradients[:, 0].detach()
        return
    inputs = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        embedding = model.embed(inputs)[0]
        for start in range(0, embedding.numel(), chunk):
            rows = slice(start, min(embedding.numel(), start + chunk))
            gradients = [
                torch.autograd.grad(embedding[k], inputs, retain_graph=True)[0][0]
                for k in range(rows.start, rows.stop)
            ]
            yield rows, torch.stack(gradients)
