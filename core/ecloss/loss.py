"""ECLoss = -MI(T; X): Lin et al. 2023, §3.2, eqs. 5-7, as a torch module.

For the feature maps ``X = {x}`` of the target layer (every channel of every image in
the batch is one map ``x``) and the templates ``T`` (:mod:`core.ecloss.templates`):

* eq. 6, the fitness of a template to a map, a softmax over the templates::

      P(T | x) = exp(tr(x · T)) / Σ_T' exp(tr(x · T')),   tr(x · T) = Σ_ij x_ij T_ij

* eq. 5, the mutual information of the two sets::

      MI(T; X) = Σ_T Σ_x P(x) P(T | x) log(P(T | x) / P(T))

  with the uniform prior ``P(T) = 1 / |T|`` (§3.2, §4.2: 0.0025 for 400 templates);
* eq. 7, ``Total = α Loss(y, ŷ) - β MI(T; X)``; this module returns ``-MI``.

``P(x)``: §4.2 approximates ``P(x) ≈ Σ_T P(T) E_x[P(T | x)]``.  Because the posterior
sums to one over the templates, that expression is the constant ``1 / |T|`` for every
map, so ``p_x="paper"`` (the default) uses exactly that:
``MI = (1/|T|) Σ_x KL(P(T|x) ‖ P(T))``, which grows with the number of maps in the
batch (batch size × channels), as in the paper, where ``β`` was tuned for it.
``p_x="mean"`` (our alternative) normalises ``P(x) = 1/|X|`` so that MI is the mean
per-map information, between 0 and ``log |T|`` nats, independent of the batch; the
two differ by the constant factor ``|X| / |T|`` (absorbed into β).

Numerics: the softmax is computed with ``log_softmax`` (log-sum-exp), so a large
``τ`` or large activations cannot overflow (the reason §4.2 gives for a small τ).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from core.ecloss.templates import TemplateSet

PxMode = Literal["paper", "mean"]


class ECLoss(nn.Module):
    """``-MI(T; X)`` of the feature maps of one layer (eqs. 5-7)."""

    templates: torch.Tensor  # a registered buffer (K, h·w), moved with the module

    def __init__(self, templates: TemplateSet, p_x: PxMode = "paper") -> None:
        super().__init__()
        if p_x not in ("paper", "mean"):
            raise ValueError(f"p_x must be 'paper' or 'mean', got {p_x!r}")
        self.p_x: PxMode = p_x
        self.size = templates.size
        self.count = len(templates)
        flat = torch.from_numpy(templates.templates.reshape(self.count, -1).copy())
        self.register_buffer("templates", flat)  # (K, h·w)

    def log_posterior(self, features: torch.Tensor) -> torch.Tensor:
        """``log P(T | x)`` (eq. 6) for every map: ``(N, C, h, w)`` -> ``(N·C, K)``."""
        if features.dim() != 4 or tuple(features.shape[2:]) != self.size:
            raise ValueError(
                f"ECLoss templates are {self.size[0]}×{self.size[1]}; got feature "
                f"maps of shape {tuple(features.shape)}"
            )
        maps = features.reshape(-1, self.size[0] * self.size[1])
        templates = self.templates.to(dtype=maps.dtype)
        logits = maps @ templates.T  # tr(x · T) = Σ_ij x_ij T_ij (eq. 6)
        return torch.log_softmax(logits, dim=1)

    def information(self, features: torch.Tensor) -> torch.Tensor:
        """Per map ``Σ_T P(T|x) log(P(T|x) / P(T))`` (the inner sum of eq. 5), nats.

        Returns ``(N, C)``; 0 when a map favours no template, ``log |T|`` at most.
        """
        log_post = self.log_posterior(features)
        log_prior = -math.log(self.count)  # P(T) = 1/|T| (§3.2)
        per_map = (log_post.exp() * (log_post - log_prior)).sum(dim=1)
        return per_map.reshape(features.shape[0], features.shape[1])

    def mutual_information(self, features: torch.Tensor) -> torch.Tensor:
        """``MI(T; X)`` of eq. 5 with ``P(x)`` as chosen by ``p_x``."""
        per_map = self.information(features)
        if self.p_x == "paper":
            return per_map.sum() / self.count  # P(x) = 1/|T| (§4.2's approximation)
        return per_map.mean()  # P(x) = 1/|X|

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``ECLoss = -MI(T; X)`` (§3.2)."""
        return -self.mutual_information(features)
