"""LIME for face verification (Alonso-Fernandez et al. 2023, §II; Ribeiro et al.).

The chip is divided into 75 SLIC superpixels; perturbed copies are made in a
first round of 1000, then in rounds of 250, each superpixel blacked out with
probability 0.6 (the first copy is the unperturbed chip, as in the LIME
package; ``antithetic``, the default: copies in pairs, the second drawn from
1 - u where the first drew u, so a region shown in one is hidden in the other;
the pairs stay together in the stability check), until the map is stable (split-half
correlation 0.95, ``core.explain.stability``) or 10000 copies per face were used;
each copy's score is the cosine similarity of its embedding to a reference
embedding; a weighted linear (ridge, alpha = 1) surrogate
with LIME's exponential kernel (width 0.25 on the cosine distance of the on/off
vectors) gives one coefficient per superpixel.  The coefficient map is smoothed
with a Gaussian of sigma = 4 and scaled to [0, 1] (the similarity map).

Reference: ``pair`` (default) = the other image's embedding, so the map shows what
makes this face similar to the other one; ``self`` = the image's own unperturbed
embedding, as in the paper.  LIME defines no dissimilarity map (Lu et al. 2024); the
combined map keeps the signed, smoothed coefficients before scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    float_param,
    int_param,
    register,
)
from core.explain.perturb import (
    blend,
    gaussian_smooth,
    lime_kernel_weights,
    scale_01,
    superpixels,
    weighted_ridge,
)
from core.explain.stability import (
    GROUPS,
    PairedDraws,
    StoppingRule,
    groups_of,
    record,
    sample_until_stable,
    stopping_params,
)

LIME_PARAMS = (
    Param("segments", int, 75, "number of SLIC superpixels", minimum=2, maximum=5000),
    Param(
        "samples",
        int,
        1000,
        "perturbed copies (per round in the LIME method; also the fewest used)",
        minimum=10,
        maximum=100000,
    ),
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
        "unperturbed image itself (self, as in Alonso-Fernandez et al. 2023)",
        choices=("pair", "self"),
    ),
)


def lime_design(
    ctx: ExplainContext, side: int
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Superpixel labels, the on/off design matrix and per-pixel keep masks."""
    labels, note = superpixels(
        ctx.pair.sides[side].chip, int_param(ctx.params, "segments")
    )
    if note:
        ctx.notes.append(f"{ctx.pair.sides[side].side}: {note}")
    count = int(labels.max()) + 1
    rng = ctx.rng(stream=side)
    samples = int_param(ctx.params, "samples")
    design = rng.random((samples, count)) >= float_param(ctx.params, "hide_probability")
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


class LimeSamples:
    """The on/off rows and scores drawn so far, with each row's group."""

    def __init__(self, labels: np.ndarray, params, pair: int = 1) -> None:
        self.labels, self.params, self.pair = labels, params, pair
        self.sizes = [0] * GROUPS
        self.rows: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []

    def add(self, first_index: int, rows: np.ndarray, scores: np.ndarray) -> None:
        self.rows.append(rows)
        self.scores.append(scores)
        for group in groups_of(first_index, len(rows), self.pair):
            self.sizes[group] += 1

    def map_of(self, groups: Sequence[int]) -> np.ndarray | None:
        rows, scores = np.concatenate(self.rows), np.concatenate(self.scores)
        chosen = np.isin(groups_of(0, len(rows), self.pair), list(groups))
        if chosen.sum() < 2:
            return None
        _scaled, signed = lime_map(
            self.labels, rows[chosen], scores[chosen], self.params
        )
        return signed


@register
class Lime(Explainer):
    info = ExplainerInfo(
        method_id="lime",
        legends=(
            (
                "similarity",
                "top: the region most for 'same person'",
                "bottom (0): the region most against it, not 'no effect' (scaled 0-1)",
            ),
        ),
        map_units=(
            "similarity: surrogate coefficients scaled to 0-1 (relative); "
            "combined: the coefficient, the change of the cosine similarity "
            "when the region is shown"
        ),
        display_name="LIME for verification",
        reference="lime-verification",  # core.references
        citation=(
            "F. Alonso-Fernandez et al., An Explainable Model-Agnostic Algorithm "
            "for CNN-based Biometrics Verification, WIFS 2023; M. T. Ribeiro, "
            "S. Singh, C. Guestrin, 'Why Should I Trust You?', KDD 2016"
        ),
        description=(
            "Cuts the face into about 75 small regions, hides random sets of them "
            "(a thousand times or more, until two halves of the trials give the "
            "same map) and watches how the similarity score changes. A simple "
            "model fitted to these trials says how much each region contributes "
            "to the match; the agreement reached and a per-pixel uncertainty are "
            "reported. Treats the network as a black box; gives a similarity map "
            "only."
        ),
        kind="perturbation",
        has_dissimilarity=False,
        stochastic=True,
        # 2: copies drawn in rounds until the map is stable (it was a fixed count)
        # 3: after the first round of 1000, stability checked every 250 copies
        # (the same copies in the same order; it stops sooner, so maps differ)
        # 4: copies in complementary pairs (antithetic), grouped by pair in the
        # stability check; other copies than version 3 (antithetic=False: as 3)
        algorithm_version=4,
        params=(
            *LIME_PARAMS,
            *stopping_params(
                "copies",
                10000,
                1000000,
                check_every=250,
                antithetic=(
                    "each region's random draw u, then 1 - u: a region shown in "
                    "one copy is hidden in the other"
                ),
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        rule = StoppingRule.from_params(ctx.params, "samples")
        ctx.start(2 * rule.cap)
        maps, stabilities = [], []
        for side in (0, 1):
            view = ctx.pair.sides[side]
            labels, note = superpixels(view.chip, int_param(ctx.params, "segments"))
            if note:
                ctx.notes.append(f"{view.side}: {note}")
            draws = self._copies(ctx, labels, ctx.rng(stream=side))
            samples = LimeSamples(labels, ctx.params, draws.pair)
            draw_round = partial(self._draw_round, ctx, side, samples, draws)
            signed, uncertainty, stability = sample_until_stable(
                ctx, side, rule, samples, draw_round, "copies"
            )
            maps.append(
                ChipMaps(scale_01(signed), None, signed, uncertainty=uncertainty)
            )
            stabilities.append(stability)
        record(ctx, rule, stabilities)
        return maps[0], maps[1]

    @staticmethod
    def _copies(
        ctx: ExplainContext, labels: np.ndarray, rng: np.random.Generator
    ) -> PairedDraws:
        """The uniform draws behind the on/off rows (a superpixel is shown when its
        draw is >= ``hide_probability``), in antithetic pairs (u, then 1 - u) when
        ``antithetic``: both copies of a pair have the same distribution as an
        unpaired copy (each superpixel hidden with the same probability), and a
        superpixel shown in one is hidden in the other (with 0.5 exactly the
        complementary set).  Unpaired, the stream is the one ``lime_design``
        draws from, so a run that stops after its first round used the same
        copies as the fixed-count version."""
        segments = int(labels.max()) + 1
        return PairedDraws(
            lambda count: rng.random((count, segments)),
            lambda draws: 1.0 - draws,
            np.concatenate,
            bool(ctx.params.get("antithetic", False)),
        )

    @staticmethod
    def _draw_round(
        ctx: ExplainContext,
        side: int,
        samples: LimeSamples,
        draws: PairedDraws,
        first: int,
        count: int,
        message: str,
    ) -> None:
        """Copies ``first`` .. ``first + count - 1``: on/off rows and their scores."""
        hide = float_param(ctx.params, "hide_probability")
        rows = (draws.take(first, count) >= hide).astype(np.float64)
        if first == 0:
            rows[0] = 1.0  # the unperturbed chip, as LIME does
        labels = samples.labels

        def keep(a: int, b: int) -> torch.Tensor:  # per batch: a round may be large
            return torch.from_numpy(rows[a:b, labels].astype(np.float32))

        pair_reference = ctx.params["reference"] == "pair"
        reference = ctx.other(side) if pair_reference else ctx.embeddings[side]
        x, black = ctx.inputs[side], ctx.black_input()
        scores = ctx.scores(
            side, count, lambda a, b: blend(x, black, keep(a, b)), reference, message
        )
        samples.add(first, rows, scores.double().cpu().numpy())
