"""Alonso-Fernandez et al. 2023's model-comparison figures: score fusion, EER per layer,
heatmap PSNR.

Pure computation on scores, chips and evidence maps (no plotting, no files, no
argparse); ``core.metrics.model_comparison.runner`` runs the models over the pairs
and fills a ``ModelComparison``, ``outputs`` writes it.  See the package docstring
for what Alonso-Fernandez et al. 2023 compares and which choices are ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import BadInputError, Cancelled
from core.evaluation import equal_error_rate, roc_auc
from core.explain.base import EvidenceMap
from core.metrics.faithfulness import (
    eer_per_layer,
    fuse_scores,
    heatmap_psnr,
    layer_scores,
)
from core.metrics.model_comparison import NORMALIZATIONS
from core.models.base import FaceModel
from core.progress import ProgressCallback

CancelCallback = Callable[[], bool]
ChipPair = tuple[np.ndarray, np.ndarray, bool]

# Alonso-Fernandez et al. 2023, §IV-C, sweeps a in [0, 1] (Fig. 6); its grid is not
# given: steps of 0.05.
DEFAULT_FUSION_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)
EMBEDDING_LAYER = "embedding"


# ---- small helpers ------------------------------------------------------------------
def float_list(values: Any) -> list[Any]:
    floats: list[Any] = np.asarray(values, dtype=float).tolist()
    return floats


def check_cancel(cancel: CancelCallback | None, what: str) -> None:
    if cancel is not None and cancel():
        raise Cancelled(f"model comparison cancelled ({what})")


def _cosines(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    cosines: np.ndarray = np.sum(first * second, axis=1) / np.maximum(norms, 1e-12)
    return cosines


def _markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{row.get(c):.4f}" if isinstance(row.get(c), float) else str(row.get(c))
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- 1. score fusion (Alonso-Fernandez et al. 2023, §IV-C) ---------------------------
@dataclass(frozen=True, eq=False)
class FusionCurve:
    """EER of ``weight * s_first + (1 - weight) * s_second`` per weight (Fig. 6).

    ``weights[i]`` is the weight a of the *first* model (the paper writes a x s_MB2,
    its first network); weight 1 is the first model alone, weight 0 the second.
    EERs are fractions (0..1), not %.
    """

    weights: np.ndarray
    eers: np.ndarray
    normalization: str
    best_weight: float
    best_eer: float
    eer_at_half: float

    @property
    def eer_first(self) -> float:
        """EER of the first model alone (its normalised scores; weight 1)."""
        return float(self.eers[int(np.argmax(self.weights))])

    @property
    def eer_second(self) -> float:
        """EER of the second model alone (weight 0)."""
        return float(self.eers[int(np.argmin(self.weights))])

    @property
    def relative_change(self) -> float:
        """(best fused EER - better single EER) / better single EER (Table I's %)."""
        single = min(self.eer_first, self.eer_second)
        return (self.best_eer - single) / single if single > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": float_list(self.weights),
            "eers": float_list(self.eers),
            "normalization": self.normalization,
            "best_weight": self.best_weight,
            "best_eer": self.best_eer,
            "eer_at_half": self.eer_at_half,
            "eer_first": self.eer_first,
            "eer_second": self.eer_second,
            "relative_change": self.relative_change,
        }


def fusion_curve(
    scores_first: np.ndarray,
    scores_second: np.ndarray,
    is_genuine: np.ndarray,
    *,
    weights: Sequence[float] | np.ndarray = DEFAULT_FUSION_WEIGHTS,
    normalization: str = "zscore",
) -> FusionCurve:
    """Weighted score fusion swept over ``weights`` (Alonso-Fernandez et al. 2023,
    §IV-C, Fig. 6).

    Each weight's fused scores come from ``faithfulness.fuse_scores`` (weighted
    average of the per-model normalised scores, ``normalization`` per model over the
    given pairs); the EER from ``core.evaluation.equal_error_rate``.  The weights
    must include 0 and 1 (the single models, the ends of Fig. 6).

    Best weight: the lowest EER; among equal EERs the weight closest to 0.5 (our
    choice: an even fusion is preferred over a single model that is no better).
    Like the paper's a = 0.58 (picked for the highest overall accuracy on the test
    set itself), the best weight is chosen on the evaluated pairs, so its EER is
    optimistic; ``eer_at_half`` (a = 0.5, fixed in advance) is not.
    """
    if normalization not in NORMALIZATIONS:
        raise BadInputError(
            f"unknown normalization {normalization!r} (use {', '.join(NORMALIZATIONS)})"
        )
    genuine = np.asarray(is_genuine, bool)
    first = np.asarray(scores_first, np.float64)
    second = np.asarray(scores_second, np.float64)
    if not (first.shape == second.shape == genuine.shape) or first.ndim != 1:
        raise BadInputError(
            f"score arrays and labels differ in shape: {first.shape}, "
            f"{second.shape}, {genuine.shape}"
        )
    if genuine.all() or not genuine.any():
        raise BadInputError("score fusion needs genuine and impostor pairs")
    grid = np.asarray(weights, np.float64)
    if grid.ndim != 1 or grid.size == 0 or (grid < 0).any() or (grid > 1).any():
        raise BadInputError("fusion weights must be a list of numbers in [0, 1]")
    if not (np.isclose(grid, 0).any() and np.isclose(grid, 1).any()):
        raise BadInputError("fusion weights must include 0 and 1 (the single models)")
    grid = np.clip(grid, 0.0, 1.0)

    def eer(weight: float) -> float:
        fused = fuse_scores(first, second, weight, normalization=normalization)
        return equal_error_rate(fused[genuine], fused[~genuine])[0]

    eers = np.array([eer(float(w)) for w in grid])
    lowest = float(eers.min())
    ties = np.flatnonzero(np.isclose(eers, lowest, rtol=0, atol=1e-12))
    best = int(ties[np.argmin(np.abs(grid[ties] - 0.5))])
    return FusionCurve(
        weights=grid,
        eers=eers,
        normalization=normalization,
        best_weight=float(grid[best]),
        best_eer=float(eers[best]),
        eer_at_half=eer(0.5),
    )


# ---- 2. EER per layer (Alonso-Fernandez et al. 2023, §IV-D) --------------------------
@dataclass(frozen=True, eq=False)
class LayerEers:
    """EER per layer tap of one model, shallow to deep, embedding last (Fig. 8)."""

    model_id: str
    layers: tuple[str, ...]
    eers: np.ndarray

    @property
    def best_layer(self) -> str:
        """The layer with the lowest EER (the deeper one on ties)."""
        lowest = float(np.nanmin(self.eers))
        return self.layers[int(np.flatnonzero(self.eers == lowest)[-1])]

    @property
    def best_eer(self) -> float:
        return float(np.nanmin(self.eers))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "layers": list(self.layers),
            "eers": float_list(self.eers),
            "best_layer": self.best_layer,
            "best_eer": self.best_eer,
        }


def model_layer_eers(
    model: FaceModel,
    pairs: Sequence[ChipPair],
    *,
    embedding_scores: np.ndarray | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> LayerEers:
    """EER of every layer tap of ``model`` plus its embedding
    (Alonso-Fernandez et al. 2023, §IV-D).

    Taps are the model's ``layer_taps()`` (dlib: stem and every residual block;
    ONNX models: the deepest module at each spatial resolution), scored by
    ``faithfulness.layer_scores`` (cosine of globally average-pooled activations)
    and ``eer_per_layer``.  A tap named ``embedding`` is replaced by the model's
    final embedding (``FaceModel.embed``, flip-averaged where the card says so),
    which is always the last entry; ``embedding_scores`` (cosines per pair, in
    pair order) reuses already computed ones.

    ``layer_scores`` runs one plain pass per chip batch (one chip per pass for a
    model that runs one image at a time, e.g. our MobileFaceNet export), so the
    intermediate taps describe the chip itself, not the flip average the paper uses
    for every layer (§III-B); the embedding entry is flip-averaged.  The paper's
    Fig. 8 has every layer (~150); we have the model's taps only (dlib 15 +
    embedding, ONNX models one per spatial resolution).
    """
    if not pairs:
        raise BadInputError("no pairs to evaluate")
    genuine = np.array([bool(same) for _, _, same in pairs])
    layers = [tap.name for tap in model.layer_taps() if tap.name != EMBEDDING_LAYER]
    scores = (
        layer_scores(
            model,
            pairs,
            layers,
            batch_size=batch_size,
            progress=progress,
            cancel=cancel,
        )
        if layers
        else {}
    )
    if embedding_scores is None:
        check_cancel(cancel, "embedding")
        probes = model.embed_chips(np.stack([p for p, _, _ in pairs]))
        galleries = model.embed_chips(np.stack([g for _, g, _ in pairs]))
        embedding_scores = _cosines(probes, galleries)
    final = np.asarray(embedding_scores, np.float64)
    if final.shape != genuine.shape:
        raise BadInputError(
            f"{final.shape[0]} embedding score(s) for {genuine.size} pair(s)"
        )
    scores = {**scores, EMBEDDING_LAYER: (final[genuine], final[~genuine])}
    eers = eer_per_layer(scores)
    return LayerEers(
        model_id=model.model_id,
        layers=tuple(eers),
        eers=np.array(list(eers.values()), np.float64),
    )


# ---- 3. heatmap PSNR on the evidence image (Alonso-Fernandez et al. 2023, §IV-B) -----
def _overlap(a: EvidenceMap, b: EvidenceMap) -> tuple[np.ndarray, np.ndarray]:
    """The values of both maps at the image pixels where both are finite."""
    if tuple(a.image_shape) != tuple(b.image_shape):
        raise BadInputError(
            f"evidence maps belong to images of different sizes: {a.image_shape} "
            f"vs {b.image_shape}"
        )
    (ax, ay), (bx, by) = a.origin, b.origin
    x0, y0 = max(ax, bx), max(ay, by)
    x1 = min(ax + a.values.shape[1], bx + b.values.shape[1])
    y1 = min(ay + a.values.shape[0], by + b.values.shape[0])
    if x1 <= x0 or y1 <= y0:
        return np.empty(0), np.empty(0)
    va = np.asarray(a.values[y0 - ay : y1 - ay, x0 - ax : x1 - ax], np.float64)
    vb = np.asarray(b.values[y0 - by : y1 - by, x0 - bx : x1 - bx], np.float64)
    both = np.isfinite(va) & np.isfinite(vb)
    return va[both], vb[both]


def evidence_psnr(a: EvidenceMap, b: EvidenceMap) -> float:
    """PSNR (dB) of two heatmaps of one image computed on different chips.

    Alonso-Fernandez et al. 2023 (§IV-B, Fig. 4-5) compares the two CNNs' heatmaps
    of the same image, both on the same 113x113 input.  Our models see different
    chips (other size, other alignment), so the maps are compared where they both
    lie on the evidence image (adaptation, our choice): each chip map is warped onto
    the image (``ExplanationResult.<side>.evidence``, NaN where the chip does not
    cover), the two are placed in image coordinates and
    ``faithfulness.heatmap_psnr`` (min-max scaling to [0, 1], then
    10 log10(1 / MSE)) is taken over the pixels finite in both - so the scaling uses
    the common pixels only.

    Identical maps give ``inf``.  Maps on images of different sizes are an error
    (``BadInputError``).  When the two maps share fewer than 2 finite pixels
    (disjoint coverage) there is nothing to compare and the result is NaN; callers
    count such sides instead of averaging them.
    """
    va, vb = _overlap(a, b)
    if va.size < 2:
        return float("nan")
    return heatmap_psnr(va, vb)


def shuffled_psnr(a: EvidenceMap, b: EvidenceMap, rng: np.random.Generator) -> float:
    """Reference scale for ``evidence_psnr``: ``a`` against ``b`` shuffled.

    Our choice of reference: the common pixels of ``b`` are randomly permuted - a
    "random map" with exactly ``b``'s value histogram but no spatial agreement.
    Because min-max-scaled saliency maps are mostly near 0 (sparse gradient maps
    especially), even unrelated maps reach a PSNR well above 0 dB; the two models
    agree spatially only as far as their PSNR exceeds this reference.
    """
    va, vb = _overlap(a, b)
    if va.size < 2:
        return float("nan")
    return heatmap_psnr(va, rng.permutation(vb))


def psnr_summary(values: Sequence[float]) -> dict[str, Any]:
    array = np.asarray(values, np.float64)
    finite = array[np.isfinite(array)]
    return {
        "sides": int(array.size),
        "no_overlap": int(np.isnan(array).sum()),
        "identical": int(np.isposinf(array).sum()),
        "mean_db": float(finite.mean()) if finite.size else float("nan"),
        "median_db": float(np.median(array[~np.isnan(array)]))
        if (~np.isnan(array)).any()
        else float("nan"),
        "min_db": float(finite.min()) if finite.size else float("nan"),
        "max_db": float(finite.max()) if finite.size else float("nan"),
    }


# ---- the comparison -----------------------------------------------------------------
@dataclass
class ModelComparison:
    """Everything ``compare_models`` measured (plain data; ``to_dict`` for JSON)."""

    data: str
    protocol: str
    seed: int
    max_pairs: int | None
    models: list[dict[str, Any]]
    pairs_listed: int
    pairs_used: int
    genuine_pairs: int
    impostor_pairs: int
    pairs_skipped_per_model: dict[str, int]
    verification: list[dict[str, Any]]
    fusion: FusionCurve
    layers: list[LayerEers]
    method: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    psnr_reference: str = ""
    psnr: list[dict[str, Any]] = field(default_factory=list)  # one row per pair side
    psnr_summary: list[dict[str, Any]] = field(default_factory=list)
    pair_scores: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pairs_skipped(self) -> int:
        """Pairs of the list left out for every model (some model found no face)."""
        return self.pairs_listed - self.pairs_used

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "protocol": self.protocol,
            "seed": self.seed,
            "max_pairs": self.max_pairs,
            "models": self.models,
            "pairs_listed": self.pairs_listed,
            "pairs_used": self.pairs_used,
            "pairs_skipped": self.pairs_skipped,
            "pairs_skipped_per_model": self.pairs_skipped_per_model,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "verification": self.verification,
            "fusion": {
                "first": self.models[0]["id"],
                "second": self.models[1]["id"],
                **self.fusion.to_dict(),
            },
            "layers": [layers.to_dict() for layers in self.layers],
            "method": self.method,
            "method_params": self.method_params,
            "psnr_reference": self.psnr_reference,
            "psnr_summary": self.psnr_summary,
            "psnr": self.psnr,
            "pair_scores": self.pair_scores,
            "seconds": self.seconds,
        }

    def fusion_rows(self) -> list[dict[str, Any]]:
        first, second = self.models[0]["id"], self.models[1]["id"]
        curve = self.fusion
        return [
            {
                "fusion": f"a x {first} + (1 - a) x {second} ({curve.normalization})",
                f"EER {first} (a=1)": curve.eer_first,
                f"EER {second} (a=0)": curve.eer_second,
                "EER a=0.5": curve.eer_at_half,
                "best a": curve.best_weight,
                "EER best a": curve.best_eer,
                "change vs better single": "n/a (a single EER is 0)"
                if math.isnan(curve.relative_change)
                else f"{100 * curve.relative_change:+.1f} %",
            }
        ]

    def layer_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "model": layers.model_id,
                "layers": len(layers.layers),
                "best layer": layers.best_layer,
                "EER best layer": layers.best_eer,
                "EER embedding": float(layers.eers[-1]),
                "EER first layer": float(layers.eers[0]),
            }
            for layers in self.layers
        ]

    def markdown(self) -> str:
        parts = [
            f"Data: {self.data} ({self.protocol}); {self.pairs_used} pairs used "
            f"({self.genuine_pairs} genuine, {self.impostor_pairs} impostor) of "
            f"{self.pairs_listed} listed, {self.pairs_skipped} left out "
            f"(per model: "
            + ", ".join(f"{k} {v}" for k, v in self.pairs_skipped_per_model.items())
            + "). EERs are fractions (0..1) of cosine-similarity scores.",
            "",
            "Verification per model (common pairs):",
            "",
            _markdown_table(self.verification),
            "",
            "Score fusion (Alonso-Fernandez et al. 2023, §IV-C):",
            "",
            _markdown_table(self.fusion_rows()),
            "",
            "EER per layer (Alonso-Fernandez et al. 2023, §IV-D):",
            "",
            _markdown_table(self.layer_rows()),
        ]
        if self.method is not None:
            parts += [
                "",
                f"Heatmap PSNR between {self.models[0]['id']} and "
                f"{self.models[1]['id']}, method {self.method}, similarity maps "
                f"on the evidence image (Alonso-Fernandez et al. 2023, §IV-B); "
                "reference: "
                f"{self.psnr_reference}:",
                "",
                _markdown_table(self.psnr_summary),
            ]
        return "\n".join(parts)


# ---- verification figures of one model --------------------------------------------
def verification_row(
    model: FaceModel, probes: np.ndarray, galleries: np.ndarray, genuine: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    cosine = _cosines(probes, galleries)
    distance = np.linalg.norm(probes - galleries, axis=1)
    accepted = np.array(
        [
            model.threshold.accepts(float(c), float(d))
            for c, d in zip(cosine, distance, strict=True)
        ]
    )
    eer, eer_threshold = equal_error_rate(cosine[genuine], cosine[~genuine])
    row = {
        "model": model.model_id,
        "EER": eer,
        "EER cosine threshold": eer_threshold,
        "ROC AUC": roc_auc(cosine[genuine], cosine[~genuine]),
        "threshold": f"{model.threshold.metric} {model.threshold.value:g}",
        "accuracy at threshold": float(np.mean(accepted == genuine)),
        "TAR": float(accepted[genuine].mean()),
        "FAR": float(accepted[~genuine].mean()),
    }
    return row, cosine
