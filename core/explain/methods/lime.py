"""LIME for face verification (paper 003 §II, Alonso-Fernandez et al.; Ribeiro et al.).

The chip is divided into 75 SLIC superpixels; 1000 perturbed copies are made, each
superpixel blacked out with probability 0.6 (the first copy is the unperturbed
chip, as in the LIME package); each copy's score is the cosine similarity of its
embedding to a reference embedding; a weighted linear (ridge, alpha = 1) surrogate
with LIME's exponential kernel (width 0.25 on the cosine distance of the on/off
vectors) gives one coefficient per superpixel.  The coefficient map is smoothed
with a Gaussian of sigma = 4 and scaled to [0, 1] (the similarity map).

Reference: ``pair`` (default) = the other image's embedding, so the map shows what
makes this face similar to the other one; ``self`` = the image's own unperturbed
embedding, as in the paper.  LIME defines no dissimilarity map (paper 000); the
combined map keeps the signed, smoothed coefficients before scaling.
"""

from __future__ import annotations

import numpy as np
import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    register,
)
from core.explain.perturb import (
    gaussian_smooth,
    lime_kernel_weights,
    scale_01,
    score_masks,
    superpixels,
    weighted_ridge,
)

LIME_PARAMS = (
    Param("segments", int, 75, "number of SLIC superpixels", minimum=2, maximum=5000),
    Param("samples", int, 1000, "perturbed copies", minimum=10, maximum=100000),
    Param(
        "hide_probability",
        float,
        0.6,
        "probability that a superpixel is blacked out",
        minimum=0.01,
        maximum=0.99,
    ),
    Param("kernel_width", float, 0.25, "LIME kernel width", minimum=1e-3, maximum=100),
    Param(
        "sigma",
        float,
        4.0,
        "Gaussian smoothing of the map (pixels)",
        minimum=0,
        maximum=100,
    ),
    Param(
        "reference",
        str,
        "pair",
        "compare perturbed copies with the other image (pair) or with the "
        "unperturbed image itself (self, as in paper 003)",
        choices=("pair", "self"),
    ),
)


def lime_design(
    ctx: ExplainContext, side: int
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Superpixel labels, the on/off design matrix and per-pixel keep masks."""
    labels, note = superpixels(ctx.pair.sides[side].chip, int(ctx.params["segments"]))
    if note:
        ctx.notes.append(f"{ctx.pair.sides[side].side}: {note}")
    count = int(labels.max()) + 1
    rng = ctx.rng(stream=side)
    samples = int(ctx.params["samples"])
    design = rng.random((samples, count)) >= float(ctx.params["hide_probability"])
    design = design.astype(np.float64)
    design[0] = 1.0  # the unperturbed chip, as LIME does
    keep = torch.from_numpy(design[:, labels].astype(np.float32))
    return labels, design, keep


def lime_map(
    labels: np.ndarray, design: np.ndarray, scores: np.ndarray, params
) -> tuple[np.ndarray, np.ndarray]:
    """Surrogate coefficients painted on the superpixels: (scaled, signed)."""
    weights = lime_kernel_weights(design, float(params["kernel_width"]))
    coefficients = weighted_ridge(design, scores, weights, alpha=1.0)
    signed = gaussian_smooth(coefficients[labels], float(params["sigma"]))
    return scale_01(signed), signed


@register
class Lime(Explainer):
    info = ExplainerInfo(
        method_id="lime",
        display_name="LIME for verification",
        citation=(
            "F. Alonso-Fernandez et al., An Explainable Model-Agnostic Algorithm "
            "for CNN-based Biometrics Verification, WIFS 2023; M. T. Ribeiro, "
            "S. Singh, C. Guestrin, 'Why Should I Trust You?', KDD 2016"
        ),
        description=(
            "Cuts the face into about 75 small regions, hides random sets of them "
            "(a thousand times) and watches how the similarity score changes. A "
            "simple model fitted to these trials says how much each region "
            "contributes to the match. Treats the network as a black box; gives a "
            "similarity map only."
        ),
        kind="perturbation",
        has_dissimilarity=False,
        stochastic=True,
        params=LIME_PARAMS,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        ctx.start(2 * int(ctx.params["samples"]))
        maps = []
        for side in (0, 1):
            labels, design, keep = lime_design(ctx, side)
            reference = (
                ctx.other(side)
                if ctx.params["reference"] == "pair"
                else ctx.embeddings[side]
            )
            scores = score_masks(ctx, side, keep, reference).double().numpy()
            scaled, signed = lime_map(labels, design, scores, ctx.params)
            maps.append(ChipMaps(scaled, None, signed))
        return maps[0], maps[1]
