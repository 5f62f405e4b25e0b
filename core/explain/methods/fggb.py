"""FGGB - Feature-Guided Gradient Backpropagation (Lu, Xu & Ebrahimi 2024).

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

Contrastive option (``centre=reference``).  dlib's descriptors are not centred: all
faces share an offset m, the mean face.  With b = m + (b - m), eq. (3)'s numerator
a_k b_k = a_k m_k + a_k (b_k - m_k); the first term does not depend on who the
gallery is, and on the default model the map it alone gives correlates 0.991 with
the whole map (with the raw weights 96 % of the pixels come out "similar" for
impostor pairs too).  ``centre=reference`` computes eqs. (3)-(4) on a' = a - m and
b' = b - m, with m the mean descriptor of a reference population that is disjoint
from the evaluation data (``core.explain.reference_mean``):

    weight'_k = a'_k b'_k / (||a'|| ||b'||)                       (eq. 3, centred)
    S_A = sum_k G~^k_A (weight'_k - threshold' / N)               (eq. 4, centred)

a'_k b'_k averages to zero over galleries drawn from the population, so the
gallery-independent term is gone.  threshold' is the decision threshold as a cosine
of the centred vectors (``centred_threshold``): a distance does not change when
both descriptors move by m, so sum_k (weight'_k - threshold'/N) = cos' - threshold'
is positive exactly when the model accepts, as in the paper.  Eqs. (1), (2), (5)
are unchanged (m is a constant, so dF/dI is the same).  ``centre=none`` is the
paper exactly.  Subtracting only the gallery-independent map (S minus the map
for a gallery equal to m) was considered and not offered: it drops the
threshold, so its sign no longer says accept or reject.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    ParamValue,
    int_param,
    register,
)
from core.explain.gradients import feature_gradients
from core.explain.reference_mean import (
    centre_params,
    centring_extras,
    weighting_pair,
)
from core.models.base import FaceModel

# Chosen by benchmarks/contrastive_fggb.py on 29 held-out LFW pairs: gallery-swap
# rank correlation of the probe map FGGB +0.64 -> +0.02 (genuine +0.42 -> -0.92,
# impostor +0.83 -> +0.89: a rejection's map stays mostly eq. 4's threshold term),
# xSSAB +0.10 -> +0.02; impostor "similar" pixels FGGB 21 -> 4 %, xSSAB 48 -> 30 %;
# deletion AUC unchanged (FGGB 0.869 -> 0.870, xSSAB 0.871 both, random 0.866).
DEFAULT_CENTRE = "auto"  # reference_mean.CENTRE_CHOICES


def fggb_weights(
    embedding: torch.Tensor, other: torch.Tensor, cosine_threshold: float
) -> torch.Tensor:
    """The bracket of eq. (4): channel-wise cosine (eq. 3) minus threshold / N."""
    weight = embedding * other / (embedding.norm() * other.norm())  # eq. (3)
    return weight - cosine_threshold / embedding.numel()  # eq. (4), bracket


def fggb_map(
    ctx: ExplainContext,
    side: int,
    *,
    batched: bool = True,
    chunk: int | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The signed FGGB map S (eq. 4) of one image, (H, W).

    ``weight``: eq. (4)'s bracket per dimension; by default the paper's, from the
    raw descriptors (``fggb_weights``).
    """
    model = ctx.model
    if weight is None:
        weight = fggb_weights(
            ctx.embeddings[side], ctx.other(side), ctx.cosine_threshold
        )
    chunk = chunk or int_param(ctx.params, "chunk")
    signed = torch.zeros(ctx.inputs[side].shape[1:], device=ctx.device)
    for rows, gradients in feature_gradients(
        model, ctx.inputs[side], chunk, batched=batched
    ):
        norms = gradients.flatten(1).norm(dim=1).clamp_min(1e-12)
        normalised = gradients.abs() / norms[:, None, None, None]  # eq. (2)
        signed += torch.einsum("kchw,k->chw", normalised, weight[rows].to(ctx.device))
        ctx.step(rows.stop - rows.start)
    return signed.sum(0)  # colour channels -> one value per pixel


def normalised_gradients(
    model: FaceModel, inputs: torch.Tensor, chunk: int = 32
) -> torch.Tensor:
    """All G~^k of one image (eqs. 1-2), (N, 3, H, W): to weigh them several ways
    without repeating the backward passes (benchmarks)."""
    parts = []
    for _rows, gradients in feature_gradients(model, inputs, chunk):
        norms = gradients.flatten(1).norm(dim=1).clamp_min(1e-12)
        parts.append(gradients.abs() / norms[:, None, None, None])  # eq. (2)
    return torch.cat(parts)


@register
class FGGB(Explainer):
    info = ExplainerInfo(
        method_id="fggb",
        map_units=(
            "relative: pixel gradients of the template numbers, weighted by "
            "their agreement minus the threshold (no physical unit)"
        ),
        display_name="FGGB (feature-guided gradient backpropagation)",
        reference="fggb",  # core.references
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
            "'accept', the dissimilarity map the regions behind a 'reject'. By "
            "default both templates are first compared with the average face of "
            "a reference population, so that what every face has in common does "
            "not paint the map the same way whoever the other person is (the "
            "paper's exact version: centre=none)."
        ),
        kind="gradient",
        # 2: centre=reference became the default (measured: benchmarks/
        # contrastive_fggb.py); centre=none gives version 1's maps.  3: centred
        # weights use the explanation's threshold, not always the model's.
        algorithm_version=3,
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
            *centre_params(DEFAULT_CENTRE),
        ),
    )

    def cache_extras(
        self, model: FaceModel, params: Mapping[str, ParamValue]
    ) -> dict[str, Any]:
        return centring_extras(model, params)

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(2 * ctx.embeddings[0].numel())
        weighting = weighting_pair(ctx)
        maps = []
        for side in (0, 1):
            weight = fggb_weights(
                weighting.embeddings[side],
                weighting.embeddings[1 - side],
                weighting.cosine_threshold,
            )
            try:
                signed = fggb_map(ctx, side, weight=weight)
            except RuntimeError as error:  # a network vmap cannot batch
                ctx.notes.append(f"batched backward unavailable ({error}); used a loop")
                signed = fggb_map(ctx, side, batched=False, weight=weight)
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
        return maps[0], maps[1]
