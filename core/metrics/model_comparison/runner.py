"""Running the models over one set of pairs: ``compare_models``
(Alonso-Fernandez et al. 2023).

Aligns every pair for every model, keeps the pairs all models could use, embeds,
explains, reports progress and checks for cancellation between steps; the figures
themselves are computed by ``core.metrics.model_comparison.science``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError
from core.explain.base import FacePair, get
from core.metrics.evaluate import aligned_pairs
from core.metrics.model_comparison import DEFAULT_METHOD, NORMALIZATIONS
from core.metrics.model_comparison.science import (
    DEFAULT_FUSION_WEIGHTS,
    CancelCallback,
    ChipPair,
    ModelComparison,
    check_cancel,
    evidence_psnr,
    fusion_curve,
    model_layer_eers,
    psnr_summary,
    shuffled_psnr,
    verification_row,
)
from core.models.base import FaceModel
from core.progress import ProgressCallback

SIDES = ("probe", "gallery")


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
    model: FaceModel,
    chips: Sequence[np.ndarray],
    batch_size: int,
    tick: Callable[[int, str], None],
) -> np.ndarray:
    parts = []
    for start in range(0, len(chips), batch_size):
        stop = min(len(chips), start + batch_size)
        parts.append(model.embed_chips(np.stack(chips[start:stop])))
        tick(stop - start, f"{model.model_id}: embeddings")
    return np.concatenate(parts)


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
    """Alonso-Fernandez et al. 2023's model comparison (§IV-B, §IV-C, §IV-D) on one set
    of pairs.

    1. Pairs from ``data`` (``pairs_for``, ``max_pairs`` / ``seed`` as there);
       each model aligns every image its own way (``evaluate.aligned_pairs``); a
       pair is used when all models could align both faces.
    2. Per model on those pairs: EER, ROC AUC of the cosine similarity
       (Alonso-Fernandez et al. 2023, §III-B, scores by cosine; our choice for
       every model, also dlib's, whose own decision rule is a Euclidean distance)
       and accuracy / TAR / FAR at the model's own threshold rule.
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
        check_cancel(cancel, "aligning faces")
        if progress is not None:
            progress(number, len(models), f"{model.model_id}: aligning faces")
        chips, model_face_pairs, skipped, protocol = aligned_pairs(
            data, model, seed, max_pairs
        )
        listed = len(chips) + skipped
        skipped_per_model[model.model_id] = skipped
        keyed: dict[tuple[str | None, str | None, bool], tuple[ChipPair, FacePair]] = {}
        for chip_pair, face_pair in zip(chips, model_face_pairs, strict=True):
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
        check_cancel(cancel, message)
        done += units
        if progress is not None:
            progress(min(done, total), total, message)

    # 2. verification figures per model
    began = time.perf_counter()
    verification, cosines = [], []
    for model, pairs in zip(models, chip_pairs, strict=True):
        probes = _embed(model, [p for p, _, _ in pairs], batch_size, tick)
        galleries = _embed(model, [g for _, g, _ in pairs], batch_size, tick)
        row, cosine = verification_row(model, probes, galleries, genuine)
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
            layer_done: int,
            _total: int,
            _message: str,
            b: int = base,
            m: FaceModel = model,
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
    face_pairs: Sequence[Sequence[FacePair]],
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
        measured = psnr_summary([row["psnr_db"] for row in rows])
        reference = psnr_summary([row["shuffled_psnr_db"] for row in rows])
        entry = {
            "side": label,
            **measured,
            "shuffled mean_db": reference["mean_db"],
            "shuffled median_db": reference["median_db"],
        }
        if with_seed_reference:
            seeds = psnr_summary([row["seed_psnr_db"] for row in rows])
            entry["seed mean_db"] = seeds["mean_db"]
            entry["seed median_db"] = seeds["median_db"]
        summary.append(entry)
    comparison.psnr_summary = summary
