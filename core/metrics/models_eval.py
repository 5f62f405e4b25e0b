"""``xfr eval models``: two face models compared the way paper 003 compares its CNNs.

Paper 003 (Alonso-Fernandez et al., LIME for face verification) compares a light and
a large network (MobileNetV2, ResNet50) on the same images by

* verification accuracy of each network (§IV-C, Table I, EER);
* weighted score fusion of the two (§IV-C, Fig. 6, Table I "combined (best)");
* the EER of every intermediate layer used as descriptor (§IV-D, Fig. 8);
* the PSNR between the two networks' heatmaps of the same image (§IV-B, Fig. 4-5).

``compare_models`` computes all four for our models on one set of image pairs (a
folder of identities or an LFW ``pairs.txt``, read by ``core.evaluation.pairs_for``).
Every model aligns faces its own way (dlib: 150 px dlib chips; MobileFaceNet: 112 px
ArcFace chips), so each model gets its own chips of the *same* image pairs, and a
pair is used only when every model found and aligned both faces; pairs left out
are counted per model.  The metric functions are those of
``core.metrics.faithfulness`` (``heatmap_psnr``, ``fuse_scores``, ``layer_scores``,
``eer_per_layer``); ``write_outputs`` writes the tables, CSVs and plots and
``add_models_eval`` registers the ``xfr eval models`` command.

Our choices (not in the paper) are labelled "our choice" where they are made.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError, Cancelled
from core.evaluation import equal_error_rate, roc_auc
from core.explain.base import EvidenceMap, get
from core.metrics.evaluate import aligned_pairs
from core.metrics.faithfulness import (
    eer_per_layer,
    fuse_scores,
    heatmap_psnr,
    layer_scores,
)
from core.models.base import FaceModel

ProgressCallback = Callable[[int, int, str], None]
CancelCallback = Callable[[], bool]
ChipPair = tuple[np.ndarray, np.ndarray, bool]

DEFAULT_METHOD = "gradient"
# Paper 003 §IV-C sweeps a in [0, 1] (Fig. 6); its grid is not given: steps of 0.05.
DEFAULT_FUSION_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)
NORMALIZATIONS = ("zscore", "minmax", "none")  # see faithfulness.fuse_scores
EMBEDDING_LAYER = "embedding"
SIDES = ("probe", "gallery")


# ---- small helpers ------------------------------------------------------------------
def _floats(values: Any) -> list[Any]:
    return np.asarray(values, dtype=float).tolist()


def _check_cancel(cancel: CancelCallback | None, what: str) -> None:
    if cancel is not None and cancel():
        raise Cancelled(f"model comparison cancelled ({what})")


def _cosines(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return np.sum(first * second, axis=1) / np.maximum(norms, 1e-12)


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


# ---- 1. score fusion (paper 003, §IV-C) ---------------------------------------------
@dataclass(frozen=True, eq=False)
class FusionCurve:
    """EER of ``weight * s_first + (1 - weight) * s_second`` per weight (Fig. 6).

    ``weights[i]`` is the weight a of the *first* model (paper 003 writes a x s_MB2,
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
            "weights": _floats(self.weights),
            "eers": _floats(self.eers),
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
    """Weighted score fusion swept over ``weights`` (paper 003, §IV-C, Fig. 6).

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


# ---- 2. EER per layer (paper 003, §IV-D) --------------------------------------------
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
            "eers": _floats(self.eers),
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
    """EER of every layer tap of ``model`` plus its embedding (paper 003, §IV-D).

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
        _check_cancel(cancel, "embedding")
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


# ---- 3. heatmap PSNR on the evidence image (paper 003, §IV-B) ------------------------
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

    Paper 003 (§IV-B, Fig. 4-5) compares the two CNNs' heatmaps of the same image,
    both on the same 113x113 input.  Our models see different chips (other size,
    other alignment), so the maps are compared where they both lie on the evidence
    image (adaptation, our choice): each chip map is warped onto the image
    (``ExplanationResult.<side>.evidence``, NaN where the chip does not cover), the
    two are placed in image coordinates and ``faithfulness.heatmap_psnr`` (min-max
    scaling to [0, 1], then 10 log10(1 / MSE)) is taken over the pixels finite in
    both - so the scaling uses the common pixels only.

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


def _psnr_summary(values: Sequence[float]) -> dict[str, Any]:
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
            "Score fusion (paper 003 §IV-C):",
            "",
            _markdown_table(self.fusion_rows()),
            "",
            "EER per layer (paper 003 §IV-D):",
            "",
            _markdown_table(self.layer_rows()),
        ]
        if self.method is not None:
            parts += [
                "",
                f"Heatmap PSNR between {self.models[0]['id']} and "
                f"{self.models[1]['id']}, method {self.method}, similarity maps "
                f"on the evidence image (paper 003 §IV-B); reference: "
                f"{self.psnr_reference}:",
                "",
                _markdown_table(self.psnr_summary),
            ]
        return "\n".join(parts)


def _model_record(model: FaceModel) -> dict[str, Any]:
    pre = model.preprocessing
    return {
        "id": model.model_id,
        "name": model.display_name,
        "weights_sha256": model.weights_sha256,
        "threshold": model.threshold.to_dict(),
        "alignment": pre.alignment,
        "input_size": list(pre.input_size),
        "flip_average": pre.flip_average,
    }


def _check_models(models: Sequence[FaceModel]) -> None:
    if len(models) < 2:
        raise BadInputError(f"give at least two models to compare, got {len(models)}")
    seen: set[str] = set()
    for model in models:
        if model.model_id in seen:
            raise BadInputError(
                f"model {model.model_id} is given twice: a model compared with "
                "itself says nothing (its fused scores are its own scores at every "
                "weight, its heatmaps equal themselves: PSNR = inf); give two "
                "different models"
            )
        seen.add(model.model_id)


def _embed(
    model: FaceModel, chips: Sequence[np.ndarray], batch_size: int, tick: Callable
) -> np.ndarray:
    parts = []
    for start in range(0, len(chips), batch_size):
        stop = min(len(chips), start + batch_size)
        parts.append(model.embed_chips(np.stack(chips[start:stop])))
        tick(stop - start, f"{model.model_id}: embeddings")
    return np.concatenate(parts)


def _verification_row(
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


def compare_models(
    data: str | Path,
    models: Sequence[FaceModel],
    *,
    method: str | None = DEFAULT_METHOD,
    method_params: Mapping[str, Any] | None = None,
    max_pairs: int | None = None,
    seed: int = 0,
    fusion_weights: Sequence[float] | np.ndarray = DEFAULT_FUSION_WEIGHTS,
    normalization: str = "zscore",
    seed_reference: bool = False,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> ModelComparison:
    """Paper 003's model comparison (§IV-B, §IV-C, §IV-D) on one set of pairs.

    1. Pairs from ``data`` (``pairs_for``, ``max_pairs`` / ``seed`` as there);
       each model aligns every image its own way (``evaluate.aligned_pairs``); a
       pair is used when all models could align both faces.
    2. Per model on those pairs: EER, ROC AUC of the cosine similarity (paper 003
       §III-B scores by cosine; our choice for every model, also dlib's, whose own
       decision rule is a Euclidean distance) and accuracy / TAR / FAR at the
       model's own threshold rule.
    3. Fusion of the first two models' cosines over ``fusion_weights`` with
       ``normalization`` (``fusion_curve``, §IV-C).
    4. EER per layer tap + embedding for every model (``model_layer_eers``, §IV-D).
    5. With ``method`` (default ``gradient``; ``lime`` is the paper's own), each
       pair is explained by the first two models (``method_params``, ``seed``) and
       the similarity maps of each side are compared by ``evidence_psnr`` (§IV-B,
       on the evidence image).  Reference scale (our choice): ``shuffled_psnr``,
       the first model's map against the second's map with its pixels shuffled;
       with ``seed_reference`` and a stochastic method also the PSNR between the
       first model's maps for ``seed`` and ``seed + 1`` (its own run-to-run
       agreement; doubles the first model's explanation time).

    ``progress(done, total, message)`` is called per alignment of a model, then
    per embedded batch, per layer batch and per explanation; ``cancel()`` is
    checked between them (raising ``core.errors.Cancelled``).  Bad input (fewer
    than two models, one model twice, an unknown method or parameter, no usable
    pair, pairs of one kind only) raises ``BadInputError``.
    """
    _check_models(models)
    if normalization not in NORMALIZATIONS:
        raise BadInputError(
            f"unknown normalization {normalization!r} (use {', '.join(NORMALIZATIONS)})"
        )
    explainer = get(method) if method is not None else None
    resolved = explainer.info.resolve(method_params) if explainer else {}
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    # 1. pairs and chips per model; keep the pairs every model could use
    aligned, skipped_per_model, protocol, listed = [], {}, "", 0
    for number, model in enumerate(models):
        _check_cancel(cancel, "aligning faces")
        if progress is not None:
            progress(number, len(models), f"{model.model_id}: aligning faces")
        chips, face_pairs, skipped, protocol = aligned_pairs(
            data, model, seed, max_pairs
        )
        listed = len(chips) + skipped
        skipped_per_model[model.model_id] = skipped
        keyed = {}
        for chip_pair, face_pair in zip(chips, face_pairs, strict=True):
            key = (face_pair.probe.path, face_pair.gallery.path, chip_pair[2])
            keyed.setdefault(key, (chip_pair, face_pair))
        aligned.append(keyed)
    common = [key for key in aligned[0] if all(key in other for other in aligned[1:])]
    genuine = np.array([key[2] for key in common], bool)
    if not common:
        raise BadInputError("no pair whose faces every model could align", data)
    if genuine.all() or not genuine.any():
        raise BadInputError(
            "the usable pairs are all genuine or all impostor; EER needs both", data
        )
    chip_pairs = [[keyed[key][0] for key in common] for keyed in aligned]
    face_pairs = [[keyed[key][1] for key in common] for keyed in aligned]
    seconds["align"] = time.perf_counter() - started
    n = len(common)

    explained = 2 if explainer is not None else 0
    if explainer is not None and seed_reference and explainer.info.stochastic:
        explained = 3
    total = len(models) * 4 * n + explained * n
    done = 0

    def tick(units: int, message: str) -> None:
        nonlocal done
        _check_cancel(cancel, message)
        done += units
        if progress is not None:
            progress(min(done, total), total, message)

    # 2. verification figures per model
    began = time.perf_counter()
    verification, cosines = [], []
    for model, pairs in zip(models, chip_pairs, strict=True):
        probes = _embed(model, [p for p, _, _ in pairs], batch_size, tick)
        galleries = _embed(model, [g for _, g, _ in pairs], batch_size, tick)
        row, cosine = _verification_row(model, probes, galleries, genuine)
        verification.append(row)
        cosines.append(cosine)
    seconds["verification"] = time.perf_counter() - began

    # 3. score fusion of the first two models
    fusion = fusion_curve(
        cosines[0],
        cosines[1],
        genuine,
        weights=fusion_weights,
        normalization=normalization,
    )

    # 4. EER per layer
    began = time.perf_counter()
    layers = []
    for model, pairs, cosine in zip(models, chip_pairs, cosines, strict=True):
        base = done

        def layer_progress(
            layer_done: int, _total: int, _message: str, b=base, m=model
        ) -> None:
            nonlocal done
            done = b + layer_done
            if progress is not None:
                progress(min(done, total), total, f"{m.model_id}: layers")

        layers.append(
            model_layer_eers(
                model,
                pairs,
                embedding_scores=cosine,
                batch_size=batch_size,
                progress=layer_progress,
                cancel=cancel,
            )
        )
        done = base + 2 * n
    seconds["layers"] = time.perf_counter() - began

    comparison = ModelComparison(
        data=str(data),
        protocol=protocol,
        seed=seed,
        max_pairs=max_pairs,
        models=[_model_record(model) for model in models],
        pairs_listed=listed,
        pairs_used=n,
        genuine_pairs=int(genuine.sum()),
        impostor_pairs=int((~genuine).sum()),
        pairs_skipped_per_model=skipped_per_model,
        verification=verification,
        fusion=fusion,
        layers=layers,
        pair_scores=[
            {
                "probe": key[0],
                "gallery": key[1],
                "genuine": bool(key[2]),
                "cosine": {
                    model.model_id: float(cosine[index])
                    for model, cosine in zip(models, cosines, strict=True)
                },
            }
            for index, key in enumerate(common)
        ],
    )

    # 5. heatmap PSNR between the first two models
    if explainer is not None:
        began = time.perf_counter()
        _heatmap_psnr(
            comparison,
            explainer,
            models[:2],
            face_pairs[:2],
            resolved,
            seed,
            explained == 3,
            tick,
            cancel,
        )
        seconds["explain+psnr"] = time.perf_counter() - began
    seconds["total"] = time.perf_counter() - started
    comparison.seconds = {k: round(v, 2) for k, v in seconds.items()}
    return comparison


def _heatmap_psnr(
    comparison: ModelComparison,
    explainer: Any,
    models: Sequence[FaceModel],
    face_pairs: Sequence[Sequence[Any]],
    params: Mapping[str, Any],
    seed: int,
    with_seed_reference: bool,
    tick: Callable[[int, str], None],
    cancel: CancelCallback | None,
) -> None:
    method_id = explainer.info.method_id
    comparison.method = method_id
    comparison.method_params = {
        k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
    }
    comparison.psnr_reference = (
        f"{models[0].model_id}'s map vs {models[1].model_id}'s map with its pixels "
        "shuffled (same values, no spatial agreement)"
    )
    if with_seed_reference:
        comparison.psnr_reference += (
            f"; and {models[0].model_id}'s maps for seeds {seed} and {seed + 1}"
        )
    rng = np.random.default_rng(seed)
    for index, pair_views in enumerate(zip(*face_pairs, strict=True)):
        results = []
        for model, face_pair in zip(models, pair_views, strict=True):
            results.append(
                explainer.explain(face_pair, model, params, seed, cancel=cancel)
            )
            tick(1, f"{model.model_id}: {method_id} maps")
        again = None
        if with_seed_reference:
            again = explainer.explain(
                pair_views[0], models[0], params, seed + 1, cancel=cancel
            )
            tick(1, f"{models[0].model_id}: {method_id} maps, seed {seed + 1}")
        for side in SIDES:
            first = getattr(results[0], side).evidence["similarity"]
            second = getattr(results[1], side).evidence["similarity"]
            row = {
                "pair": index,
                "side": side,
                "path": getattr(pair_views[0], side).path,
                "genuine": comparison.pair_scores[index]["genuine"],
                "psnr_db": evidence_psnr(first, second),
                "shuffled_psnr_db": shuffled_psnr(first, second, rng),
            }
            if again is not None:
                row["seed_psnr_db"] = evidence_psnr(
                    first, getattr(again, side).evidence["similarity"]
                )
            comparison.psnr.append(row)
    summary = []
    for label, sides in (("probe", ("probe",)), ("gallery", ("gallery",)),
                         ("both", SIDES)):  # fmt: skip
        rows = [row for row in comparison.psnr if row["side"] in sides]
        measured = _psnr_summary([row["psnr_db"] for row in rows])
        reference = _psnr_summary([row["shuffled_psnr_db"] for row in rows])
        entry = {
            "side": label,
            **measured,
            "shuffled mean_db": reference["mean_db"],
            "shuffled median_db": reference["median_db"],
        }
        if with_seed_reference:
            seeds = _psnr_summary([row["seed_psnr_db"] for row in rows])
            entry["seed mean_db"] = seeds["mean_db"]
            entry["seed median_db"] = seeds["median_db"]
        summary.append(entry)
    comparison.psnr_summary = summary


# ---- outputs ------------------------------------------------------------------------
def write_outputs(comparison: ModelComparison, out_dir: str | Path) -> dict[str, str]:
    """``table.json``, ``table.md``, ``fusion.csv/.png``, ``layers.csv/.png`` and
    (with a method) ``psnr.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"json": folder / "table.json", "markdown": folder / "table.md"}
    files["json"].write_text(json.dumps(comparison.to_dict(), indent=2, default=float))
    files["markdown"].write_text(comparison.markdown() + "\n")

    first, second = comparison.models[0]["id"], comparison.models[1]["id"]
    curve = comparison.fusion
    files["fusion_csv"] = folder / "fusion.csv"
    with open(files["fusion_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"weight_{first}", "eer"])
        writer.writerows(zip(_floats(curve.weights), _floats(curve.eers), strict=True))
    figure, axis = plt.subplots(figsize=(6.5, 4))
    axis.plot(curve.weights, 100 * curve.eers, "o-", ms=3, label="fused")
    axis.axhline(100 * curve.eer_first, color="C1", ls="--", lw=1,
                 label=f"{first} alone (a = 1)")  # fmt: skip
    axis.axhline(100 * curve.eer_second, color="C2", ls=":", lw=1,
                 label=f"{second} alone (a = 0)")  # fmt: skip
    axis.plot([curve.best_weight], [100 * curve.best_eer], "r*", ms=10,
              label=f"best a = {curve.best_weight:.2f}")  # fmt: skip
    axis.set_xlabel(f"weight a of {first} (1 - a on {second})")
    axis.set_ylabel("EER (%)")
    axis.set_title(
        f"score fusion ({curve.normalization}), {comparison.pairs_used} pairs, "
        f"{Path(comparison.data).name}",
        fontsize=9,
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    files["fusion_png"] = folder / "fusion.png"
    figure.savefig(files["fusion_png"], dpi=110)
    plt.close(figure)

    files["layers_csv"] = folder / "layers.csv"
    with open(files["layers_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "index", "layer", "eer"])
        for layers in comparison.layers:
            for index, (name, eer) in enumerate(
                zip(layers.layers, _floats(layers.eers), strict=True)
            ):
                writer.writerow([layers.model_id, index, name, eer])
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for number, layers in enumerate(comparison.layers):
        colour = f"C{number % 10}"
        x = np.arange(len(layers.layers))
        axis.plot(x, 100 * layers.eers, "o-", ms=3, color=colour,
                  label=layers.model_id)  # fmt: skip
        for xi, (name, eer) in enumerate(zip(layers.layers, layers.eers, strict=True)):
            axis.annotate(name, (xi, 100 * eer), textcoords="offset points",
                          xytext=(2, 4), fontsize=5.5, rotation=40,
                          color=colour)  # fmt: skip
    axis.set_xlabel("layer tap index (shallow -> deep; names at the points)")
    axis.set_ylabel("EER (%)")
    axis.set_title(
        f"EER per layer (GAP features, cosine), {comparison.pairs_used} pairs",
        fontsize=9,
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    files["layers_png"] = folder / "layers.png"
    figure.savefig(files["layers_png"], dpi=110)
    plt.close(figure)

    if comparison.method is not None:
        files["psnr_csv"] = folder / "psnr.csv"
        with open(files["psnr_csv"], "w", newline="") as handle:
            columns = list(comparison.psnr[0]) if comparison.psnr else ["pair"]
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(comparison.psnr)
    return {name: str(path) for name, path in files.items()}


# ---- the command --------------------------------------------------------------------
def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",")]


def cmd_eval_models(args: argparse.Namespace) -> int:
    from core.cli import EXIT_OK, _load_model, _params, _print_json, _progress_printer

    names = [name for name in _split(args.models) if name]
    cards: list[str | None] = [
        None if card.lower() in ("", "-", "none") else card
        for card in _split(args.cards)
    ]
    if args.cards is None:
        cards = [None] * len(names)
    if len(names) < 2:
        raise BadInputError("--models needs two models: ID_OR_FILE,ID_OR_FILE")
    if len(cards) != len(names):
        raise BadInputError(
            f"--cards lists {len(cards)} card(s) for {len(names)} model(s); "
            "use 'none' for a model without a card, e.g. --cards none,model.card.toml"
        )
    given = list(zip(names, cards, strict=True))
    for number, entry in enumerate(given):
        if entry in given[:number]:
            raise BadInputError(
                f"model {entry[0]} is given twice: a model compared with itself says "
                "nothing (fused scores equal its own at every weight, its heatmaps "
                "equal themselves); give two different models"
            )
    models = [
        _load_model(name, args.device, card, args.trust_model_code)
        for name, card in given
    ]
    method = None if args.method.lower() == "none" else args.method
    comparison = compare_models(
        args.data,
        models,
        method=method,
        method_params=_params(args.param),
        max_pairs=args.max_pairs,
        seed=args.seed,
        normalization=args.normalization,
        seed_reference=args.seed_reference,
        progress=_progress_printer("models", args.json),
    )
    files = write_outputs(comparison, args.out) if args.out else {}
    if args.json:
        _print_json({**comparison.to_dict(), "files": files})
    else:
        print(comparison.markdown())
        if files:
            print(f"\nwritten to {args.out}")
    return EXIT_OK


def add_models_eval(eval_kinds: Any) -> None:
    """Register ``xfr eval models`` in the ``eval`` sub-parsers."""
    from core.cli import add_trust_model_code

    command = eval_kinds.add_parser(
        "models",
        help="compare two models: EER, score fusion, EER per layer, heatmap PSNR "
        "(paper 003)",
    )
    command.add_argument(
        "--data", required=True, help="identities folder or LFW pairs.txt"
    )
    command.add_argument(
        "--models",
        required=True,
        help="ID_OR_FILE,ID_OR_FILE: registry ids or ONNX/TorchScript files",
    )
    command.add_argument(
        "--cards",
        help="CARD,CARD: model card per model, 'none' for none (a registry id, or "
        "the .card.toml beside the file), e.g. none,mobilefacenet.card.toml",
    )
    add_trust_model_code(command)
    command.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help="explanation method for the heatmap PSNR (xfr methods; lime is the "
        "paper's), or 'none' to skip it",
    )
    command.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="parameter of --method (repeatable), e.g. --param samples=500",
    )
    command.add_argument("--max-pairs", type=int)
    command.add_argument("--seed", type=int, default=0)
    command.add_argument(
        "--normalization",
        default="zscore",
        choices=list(NORMALIZATIONS),
        help="per-model score normalisation before fusion (default zscore)",
    )
    command.add_argument(
        "--seed-reference",
        action="store_true",
        help="stochastic methods: also the PSNR between the first model's maps for "
        "seeds S and S+1 (one more explanation per pair)",
    )
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    command.add_argument("--out", help="folder for table.json/.md, CSVs and PNGs")
    command.add_argument("--json", action="store_true")
    command.set_defaults(run=cmd_eval_models)
