"""Faithfulness metrics: does a saliency map point at what the model really uses?

Four families, each taken from one of the papers in ``shared/papers``:

* ``deletion_insertion`` - Deletion & Insertion (FGGB, Lu et al. 2024, §IV-B, metric of
  its ref. [19], CorrRISE), on one image of one pair.
* ``hiding_game`` - blur the least important pixels, verification accuracy per
  blurred percentage and its AUC (Xu et al. 2023, §IV-B and §IV-C.3).
* ``pixel_elimination`` - remove the pixels above a saliency threshold, EER against
  removing as many random pixels (Alonso-Fernandez et al. 2023, §IV-E).
* ``heatmap_psnr``, ``fuse_scores``, ``layer_scores`` / ``eer_per_layer`` - heatmap
  agreement, weighted score fusion and EER per layer (Alonso-Fernandez et al.
  2023, §IV-B, §IV-C, §IV-D).

Common adaptations.  Our chips are the aligned chips the model sees (dlib: 150x150
RGB).  "Removing" a pixel sets it to black (0), as the perturbation explainers do
(``ExplainContext.black_input``), unless the paper says blur; "blurring" replaces a
pixel by the same pixel of a Gaussian-blurred copy of the chip.  Pixel rankings
break ties by the row-major pixel index (a stable sort), so every curve is
reproducible.  Forward passes run in batches on the model's device; ``progress(done,
total, message)`` is called after each batch and ``cancel()`` is checked before
each one (raising ``core.errors.Cancelled``).  Results are frozen dataclasses with
``to_dict()`` for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import BadInputError, Cancelled
from core.evaluation import equal_error_rate
from core.explain.base import eval_mode
from core.explain.perturb import blend, gaussian_smooth
from core.models.base import FaceModel, Threshold
from core.progress import ProgressCallback

CancelCallback = Callable[[], bool]

MAP_KINDS = ("similarity", "dissimilarity", "combined")
# Not given in Lu et al. 2024 ("a fixed-size Gaussian blur kernel"): our default, in
# chip pixels (about 1/37 of a dlib chip's side, the scale of an eye corner).
DEFAULT_DI_BLUR_SIGMA = 4.0
# Not given in Xu et al. 2023 ("blur the pixels with a Gaussian kernel"): our default,
# strong enough on a 150x150 chip to wipe out identity detail.
DEFAULT_HIDING_SIGMA = 8.0
# Xu et al. 2023's Fig. 4 x-axis is not in the text: 0 %, 10 %, ..., 100 %.
DEFAULT_HIDING_PERCENTAGES = tuple(range(0, 101, 10))
# Alonso-Fernandez et al. (2023, §IV-E, Fig. 9/10) name the thresholds 0.8 and 0.5
# in the text; the full axis is not given.  1.0 removes nothing (the baseline EER).
DEFAULT_ELIMINATION_THRESHOLDS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


# ---- small helpers --------------------------------------------------------------
def _floats(values: Any) -> list[Any]:
    return np.asarray(values, dtype=float).tolist()


def _frozen(values: Any) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


def trapezoid_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under ``y(x)`` by the trapezoid rule (x increasing)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.size < 2:
        return float("nan")
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def rank_pixels(saliency: np.ndarray, descending: bool = True) -> np.ndarray:
    """Rank map ``(H, W)``: 0 for the pixel taken first, ties by row-major index."""
    values = np.asarray(saliency, np.float64).ravel()
    values = np.nan_to_num(values, nan=-np.inf if descending else np.inf)
    order = np.argsort(-values if descending else values, kind="stable")
    rank = np.empty(values.size, np.int64)
    rank[order] = np.arange(values.size)
    return rank.reshape(np.shape(saliency))


def _check_chip(model: FaceModel, chip: np.ndarray, what: str) -> np.ndarray:
    chip = np.asarray(chip)
    height, width = model.input_size
    if chip.shape != (height, width, 3):
        raise BadInputError(
            f"{what}: expected an aligned {height}x{width}x3 chip for model "
            f"{model.model_id}, got shape {chip.shape}"
        )
    return chip


def _check_map(saliency: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    saliency = np.asarray(saliency, np.float64)
    if saliency.shape != tuple(shape[:2]):
        raise BadInputError(
            f"{what}: saliency map of shape {saliency.shape} does not match the "
            f"chip ({shape[0]}x{shape[1]})"
        )
    return saliency


def _check_kind(kind: str) -> str:
    if kind not in MAP_KINDS:
        raise BadInputError(f"unknown map kind {kind!r} (use {', '.join(MAP_KINDS)})")
    return kind


def _batches(total: int, batch_size: int) -> Iterator[tuple[int, int]]:
    if batch_size < 1:
        raise BadInputError(f"batch size must be at least 1, got {batch_size}")
    for start in range(0, total, batch_size):
        yield start, min(total, start + batch_size)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(
        a.double(), b.double().expand_as(a), dim=1, eps=1e-12
    )


def _blurred_chip(chip: np.ndarray, sigma: float) -> np.ndarray:
    """The chip Gaussian-blurred per channel (reflected border), as uint8."""
    blurred = gaussian_smooth(np.asarray(chip, np.float32), sigma)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


class _Runner:
    """Batched, cancellable embedding of chips built on demand."""

    def __init__(
        self,
        model: FaceModel,
        batch_size: int,
        total: int,
        progress: ProgressCallback | None,
        cancel: CancelCallback | None,
        message: str,
    ) -> None:
        self.model, self.batch_size, self.total = model, batch_size, total
        self.progress, self.cancel, self.message = progress, cancel, message
        self.done = 0

    def embed(
        self, count: int, make_batch: Callable[[int, int], torch.Tensor]
    ) -> torch.Tensor:
        """Embeddings (count, D) of ``make_batch(start, stop)`` (preprocessed)."""
        parts = []
        with torch.inference_mode():
            for start, stop in _batches(count, self.batch_size):
                if self.cancel is not None and self.cancel():
                    raise Cancelled(f"{self.message}: cancelled")
                parts.append(self.model.embed(make_batch(start, stop)).detach())
                self.done += stop - start
                if self.progress is not None:
                    self.progress(self.done, self.total, self.message)
        if not parts:
            return torch.empty(0, 0, device=self.model.device)
        return torch.cat(parts)

    def embed_chips(self, chips: Sequence[np.ndarray]) -> torch.Tensor:
        return self.embed(
            len(chips), lambda a, b: self.model.prepare(np.stack(chips[a:b]))
        )


def _decisions(
    threshold: Threshold, probe: torch.Tensor, gallery: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and accept decisions of row-aligned embeddings."""
    cosine = _cosine(probe, gallery).cpu().numpy()
    distance = (
        torch.linalg.vector_norm(probe.double() - gallery.double(), dim=1).cpu().numpy()
    )
    accepted = np.array(
        [
            threshold.accepts(float(c), float(d))
            for c, d in zip(cosine, distance, strict=True)
        ],
        dtype=bool,
    )
    return cosine, accepted


def _pair_inputs(
    model: FaceModel,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
    saliency_maps: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[np.ndarray]]:
    if len(pairs) != len(saliency_maps):
        raise BadInputError(
            f"{len(pairs)} pair(s) but {len(saliency_maps)} saliency map(s)"
        )
    if not pairs:
        raise BadInputError("no pairs to evaluate")
    probes, galleries, genuine, maps = [], [], [], []
    for index, ((probe, gallery, same), saliency) in enumerate(
        zip(pairs, saliency_maps, strict=True)
    ):
        probes.append(_check_chip(model, probe, f"pair {index} probe"))
        galleries.append(_check_chip(model, gallery, f"pair {index} gallery"))
        genuine.append(bool(same))
        maps.append(_check_map(saliency, probes[-1].shape, f"pair {index}"))
    return probes, galleries, np.array(genuine, bool), maps


# ---- 1. Deletion & Insertion (Lu et al. 2024, §IV-B) ---------------------------------
@dataclass(frozen=True, eq=False)
class DeletionInsertion:
    """Deletion and insertion curves of one map on one chip.

    Scores are cosine similarities to the reference embedding; ``fractions[i]`` is
    the fraction of pixels removed (deletion) or put back (insertion).
    """

    kind: str
    fractions: np.ndarray
    deletion_scores: np.ndarray
    insertion_scores: np.ndarray
    deletion_auc: float
    insertion_auc: float
    blur_sigma: float | None
    random_orders: int = 0
    seed: int = 0
    random_deletion_scores: np.ndarray | None = None
    random_insertion_scores: np.ndarray | None = None
    random_deletion_auc: float | None = None
    random_insertion_auc: float | None = None

    @property
    def original_score(self) -> float:
        """Score of the unperturbed chip."""
        return float(self.deletion_scores[0])

    @property
    def removed_score(self) -> float:
        """Score of the fully removed (all black) chip."""
        return float(self.deletion_scores[-1])

    @property
    def deletion_better_than_random(self) -> bool | None:
        """Deletion beats random orders in the direction that fits ``kind``.

        Similarity / combined maps: deleting the most similar pixels first must
        drop the score faster (lower AUC).  Dissimilarity maps: deleting the most
        dissimilar pixels first must *raise* the similarity (higher AUC).
        """
        if self.random_deletion_auc is None:
            return None
        if self.kind == "dissimilarity":
            return self.deletion_auc > self.random_deletion_auc
        return self.deletion_auc < self.random_deletion_auc

    @property
    def insertion_better_than_random(self) -> bool | None:
        """Insertion beats random: higher AUC (similarity), lower (dissimilarity)."""
        if self.random_insertion_auc is None:
            return None
        if self.kind == "dissimilarity":
            return self.insertion_auc < self.random_insertion_auc
        return self.insertion_auc > self.random_insertion_auc

    @property
    def better_than_random(self) -> bool | None:
        """Both curves beat the random orders (None without random orders)."""
        deletion = self.deletion_better_than_random
        insertion = self.insertion_better_than_random
        if deletion is None or insertion is None:
            return None
        return deletion and insertion

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "fractions": _floats(self.fractions),
            "deletion_scores": _floats(self.deletion_scores),
            "insertion_scores": _floats(self.insertion_scores),
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "blur_sigma": self.blur_sigma,
            "random_orders": self.random_orders,
            "seed": self.seed,
        }
        if self.random_orders > 0:
            data.update(
                random_deletion_scores=_floats(self.random_deletion_scores),
                random_insertion_scores=_floats(self.random_insertion_scores),
                random_deletion_auc=self.random_deletion_auc,
                random_insertion_auc=self.random_insertion_auc,
                better_than_random=self.better_than_random,
            )
        return data


def deletion_insertion(
    model: FaceModel,
    pair_side_chip: np.ndarray,
    reference_embedding: np.ndarray,
    saliency: np.ndarray,
    *,
    kind: str = "similarity",
    steps: int = 50,
    blur_sigma: float | None = DEFAULT_DI_BLUR_SIGMA,
    random_orders: int = 0,
    seed: int = 0,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> DeletionInsertion:
    """Deletion & Insertion of one saliency map (FGGB, Lu et al. 2024, §IV-B).

    Definition (Lu et al. 2024, §IV-B, after its ref. [19]): pixels are deleted from /
    added to the input in the order of the saliency values and the effect on the
    verification score is observed; "the more precise the saliency map, the lower
    the Deletion score and the higher the Insertion score".  Before ranking, every
    map is blurred with "a fixed-size Gaussian blur kernel" so that sparse gradient
    maps and smooth perturbation maps compare fairly.

    Here: the map is blurred with a Gaussian of ``blur_sigma`` chip pixels (the
    paper gives no size: default ``DEFAULT_DI_BLUR_SIGMA`` = 4 px on the chip;
    ``None`` or 0 ranks the raw map), pixels are ranked by decreasing blurred value
    (ties: row-major index), and for k = round(i * H*W / steps), i = 0..steps,
    *deletion* sets the top-k pixels of ``pair_side_chip`` to black (0) and
    *insertion* starts from the all-black chip and puts the top-k pixels back.
    The tracked score is the cosine similarity of the modified chip's embedding to
    ``reference_embedding`` (normally the other image of the pair); the paper's
    per-dataset numbers average such curves over pairs.  AUCs are trapezoids over
    the removed/inserted fraction in [0, 1] (x 100 gives the paper's % scale).

    ``kind`` says what the map is.  For ``"similarity"`` and ``"combined"`` maps
    deletion should lower the score fast (low AUC) and insertion raise it fast
    (high AUC).  For ``"dissimilarity"`` maps the reading is reversed: deleting the
    most dissimilar pixels first should *increase* the similarity (high deletion
    AUC) and inserting them first keep it low (low insertion AUC); the result's
    ``*_better_than_random`` properties use the right direction.  Random baselines
    (``random_orders`` > 0) use uniformly random pixel orders from ``seed`` and
    report the mean curves.
    """
    _check_kind(kind)
    if steps < 1:
        raise BadInputError(f"steps must be at least 1, got {steps}")
    if random_orders < 0:
        raise BadInputError(f"random_orders must be >= 0, got {random_orders}")
    chip = _check_chip(model, pair_side_chip, "deletion/insertion")
    saliency = _check_map(saliency, chip.shape, "deletion/insertion")
    if blur_sigma:
        saliency = gaussian_smooth(saliency, float(blur_sigma)).astype(np.float64)
    height, width = chip.shape[:2]
    pixels = height * width
    counts = np.rint(np.arange(steps + 1) * pixels / steps).astype(np.int64)
    fractions = counts / pixels

    rng = np.random.default_rng(seed)
    rank_maps = [rank_pixels(saliency)]
    rank_maps += [
        rng.permutation(pixels).reshape(height, width) for _ in range(random_orders)
    ]
    device = model.device
    ranks = torch.from_numpy(np.stack(rank_maps)).to(device)  # (orders, H, W)
    ks = torch.from_numpy(counts).to(device)
    points = steps + 1
    per_order = 2 * points  # deletion points then insertion points
    total = per_order * len(rank_maps)

    with eval_mode(model):
        x = model.prepare(chip[None])
        black = model.prepare(np.zeros((1, height, width, 3), np.uint8))
        reference = torch.as_tensor(
            np.asarray(reference_embedding, np.float64).reshape(1, -1), device=device
        )

        def make_batch(start: int, stop: int) -> torch.Tensor:
            index = torch.arange(start, stop, device=device)
            order, within = index // per_order, index % per_order
            insertion = within >= points
            k = ks[within % points]
            rank = ranks[order]  # (n, H, W)
            keep_deleted = rank >= k[:, None, None]
            keep_inserted = rank < k[:, None, None]
            keep = torch.where(insertion[:, None, None], keep_inserted, keep_deleted)
            return blend(x, black, keep.float())

        runner = _Runner(
            model, batch_size, total, progress, cancel, "deletion/insertion"
        )
        embeddings = runner.embed(total, make_batch)
    scores = _cosine(embeddings, reference).cpu().numpy()
    scores = scores.reshape(len(rank_maps), 2, points)
    deletion, insertion = scores[0, 0], scores[0, 1]
    result: dict[str, Any] = {}
    if random_orders > 0:
        random_deletion = scores[1:, 0].mean(axis=0)
        random_insertion = scores[1:, 1].mean(axis=0)
        result = {
            "random_deletion_scores": _frozen(random_deletion),
            "random_insertion_scores": _frozen(random_insertion),
            "random_deletion_auc": trapezoid_auc(fractions, random_deletion),
            "random_insertion_auc": trapezoid_auc(fractions, random_insertion),
        }
    return DeletionInsertion(
        kind=kind,
        fractions=_frozen(fractions),
        deletion_scores=_frozen(deletion),
        insertion_scores=_frozen(insertion),
        deletion_auc=trapezoid_auc(fractions, deletion),
        insertion_auc=trapezoid_auc(fractions, insertion),
        blur_sigma=float(blur_sigma) if blur_sigma else None,
        random_orders=random_orders,
        seed=seed,
        **result,
    )


# ---- 2. Hiding game (Xu et al. 2023, §IV-B) ------------------------------------
@dataclass(frozen=True, eq=False)
class HidingGame:
    """Verification accuracy when the least important pixels are blurred."""

    percentages: np.ndarray
    accuracies: np.ndarray  # fraction of correct decisions per percentage
    auc: float  # trapezoid of accuracy over the blurred fraction in [0, 1]
    sigma: float
    pairs: int
    genuine_pairs: int
    scores: np.ndarray  # (percentages, pairs) cosine similarities

    def to_dict(self) -> dict[str, Any]:
        return {
            "percentages": _floats(self.percentages),
            "accuracies": _floats(self.accuracies),
            "auc": self.auc,
            "sigma": self.sigma,
            "pairs": self.pairs,
            "genuine_pairs": self.genuine_pairs,
            "scores": _floats(self.scores),
        }


def hiding_game(
    model: FaceModel,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
    saliency_maps: Sequence[np.ndarray],
    *,
    percentages: Sequence[float] = DEFAULT_HIDING_PERCENTAGES,
    sigma: float = DEFAULT_HIDING_SIGMA,
    threshold: Threshold | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> HidingGame:
    """The "hiding game" (Xu et al. 2023, §IV-B; results §IV-C.3, Fig. 4, Table II).

    Definition: sort the saliency map in ascending order and hide the least
    important pixels, then test the face-recognition model on the obscured images;
    the more accurate the map, the higher the verification accuracy, because the
    most critical pixels are kept.  Instead of masking (the original game of its
    ref. [8]) Xu et al. (2023) *blur* the hidden pixels with a Gaussian kernel, "an
    intuitive way of representing missing information".  The curve is accuracy vs
    hidden percentage; Table II reports its AUC.

    Here: for each pair ``(probe chip, gallery chip, is_genuine)`` the
    round(p/100 * H*W) lowest-ranked pixels of the probe chip (ascending saliency,
    ties by row-major index) are replaced by the same pixels of the probe chip
    blurred with a Gaussian of ``sigma`` px (the paper gives neither sigma nor the
    percentages: defaults 8 px and 0, 10, ..., 100 %).  Only the probe is hidden
    (the map explains the probe; the gallery stays intact).  A pair is correct when
    ``threshold.accepts(cosine, distance)`` (default: the model's threshold)
    equals ``is_genuine``.  The AUC is the trapezoid of accuracy (0..1) over the
    hidden fraction (0..1); x 100 gives the paper's figures.
    """
    threshold = threshold or model.threshold
    probes, galleries, genuine, maps = _pair_inputs(model, pairs, saliency_maps)
    levels = np.asarray(percentages, float)
    if levels.size == 0 or (levels < 0).any() or (levels > 100).any():
        raise BadInputError("percentages must lie in 0..100")
    if sigma <= 0:
        raise BadInputError(f"sigma must be positive, got {sigma}")
    pixels = probes[0].shape[0] * probes[0].shape[1]
    counts = np.rint(levels / 100.0 * pixels).astype(np.int64)
    ranks = [rank_pixels(m, descending=False) for m in maps]  # least important first
    blurred = [_blurred_chip(chip, sigma) for chip in probes]
    n, m = len(probes), len(levels)
    total = n + n * m
    runner = _Runner(model, batch_size, total, progress, cancel, "hiding game")

    def make_batch(start: int, stop: int) -> torch.Tensor:
        chips = []
        for index in range(start, stop):
            level, pair = divmod(index, n)
            hide = ranks[pair] < counts[level]
            chips.append(np.where(hide[..., None], blurred[pair], probes[pair]))
        return model.prepare(np.stack(chips))

    with eval_mode(model):
        gallery_embeddings = runner.embed_chips(galleries)
        hidden = runner.embed(n * m, make_batch)
    scores = np.empty((m, n))
    accuracies = np.empty(m)
    for level in range(m):
        rows = hidden[level * n : (level + 1) * n]
        scores[level], accepted = _decisions(threshold, rows, gallery_embeddings)
        accuracies[level] = float(np.mean(accepted == genuine))
    return HidingGame(
        percentages=_frozen(levels),
        accuracies=_frozen(accuracies),
        auc=trapezoid_auc(levels / 100.0, accuracies),
        sigma=float(sigma),
        pairs=n,
        genuine_pairs=int(genuine.sum()),
        scores=_frozen(scores),
    )


# ---- 3. Pixel elimination (Alonso-Fernandez et al. 2023, §IV-E) ---------------
@dataclass(frozen=True, eq=False)
class PixelElimination:
    """EER per elimination level: salient pixels removed vs as many random ones."""

    mode: str  # "threshold" or "fraction"
    levels: np.ndarray
    removed_fractions: np.ndarray  # (levels, pairs) fraction of probe pixels removed
    saliency_eer: np.ndarray
    random_eer: np.ndarray
    saliency_scores: np.ndarray  # (levels, pairs) cosine similarities
    random_scores: np.ndarray
    is_genuine: np.ndarray
    fill: str
    seed: int

    @property
    def mean_removed_fractions(self) -> np.ndarray:
        return self.removed_fractions.mean(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "levels": _floats(self.levels),
            "removed_fractions": _floats(self.removed_fractions),
            "mean_removed_fractions": _floats(self.mean_removed_fractions),
            "saliency_eer": _floats(self.saliency_eer),
            "random_eer": _floats(self.random_eer),
            "saliency_scores": _floats(self.saliency_scores),
            "random_scores": _floats(self.random_scores),
            "is_genuine": [bool(v) for v in self.is_genuine],
            "fill": self.fill,
            "seed": self.seed,
        }


def _scale_01(array: np.ndarray) -> np.ndarray:
    array = np.nan_to_num(np.asarray(array, np.float64))
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.zeros_like(array)
    return (array - low) / (high - low)


def pixel_elimination(
    model: FaceModel,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
    saliency_maps: Sequence[np.ndarray],
    *,
    thresholds: Sequence[float] | None = DEFAULT_ELIMINATION_THRESHOLDS,
    fractions: Sequence[float] | None = None,
    fill: str = "mean",
    seed: int = 0,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> PixelElimination:
    """Eliminating the most significant pixels (Alonso-Fernandez et al. 2023, §IV-E,
    Fig. 9-10).

    Definition: pixels whose (LIME) heatmap value is above a threshold are
    eliminated - set to the mean normalisation value of the input layer, i.e. zero
    after the network's normalisation - and the EER of genuine vs impostor scores
    is measured per threshold; this is compared with removing the same number of
    randomly chosen pixels.  Heatmaps are scaled to [0, 1] (Alonso-Fernandez et al.
    2023, §II).

    Here: each probe map is min-max scaled to [0, 1]; at threshold t the probe
    pixels with value > t are removed (t = 1.0 removes nothing: the baseline).
    With ``fractions`` instead (a documented alternative, not in the paper), the
    top round(f * H*W) pixels by rank (ties: row-major index) are removed, which
    removes the same share from every image.  Removed pixels are set, with the
    default ``fill="mean"`` (the paper's rule), to the model's per-channel
    preprocessing mean rounded to a pixel value - for dlib (122.8, 117.0, 104.3)
    -> (123, 117, 104), which is zero after normalisation to within 0.3 / 256 -
    or with ``fill="black"`` to pixel value 0 (the explainers' "removed" value;
    for dlib (-0.48, -0.46, -0.41) after normalisation, not the paper's zero).  The
    random control removes exactly as many pixels per image, chosen from one
    random permutation per pair (from ``seed``), so the random sets are nested
    across levels.  Only the probe chip is modified; the gallery is intact.
    Scores are cosine similarities, EERs from ``core.evaluation.equal_error_rate``
    (fraction 0..1, not %).  Pairs must include genuine and impostor pairs.
    """
    probes, galleries, genuine, maps = _pair_inputs(model, pairs, saliency_maps)
    if genuine.all() or not genuine.any():
        raise BadInputError("pixel elimination needs genuine and impostor pairs")
    if fill not in ("black", "mean"):
        raise BadInputError(f"unknown fill {fill!r} (use black or mean)")
    if fractions is not None:
        mode, levels = "fraction", np.asarray(fractions, float)
        if (levels < 0).any() or (levels > 1).any():
            raise BadInputError("fractions must lie in 0..1")
    elif thresholds is not None:
        mode, levels = "threshold", np.asarray(thresholds, float)
    else:
        raise BadInputError("give thresholds or fractions")
    if levels.size == 0:
        raise BadInputError("no elimination levels")
    height, width = probes[0].shape[:2]
    pixels = height * width
    n, m = len(probes), len(levels)
    rng = np.random.default_rng(seed)
    ranks = [rank_pixels(_scale_01(s)) for s in maps]
    random_ranks = [rng.permutation(pixels).reshape(height, width) for _ in probes]
    counts = np.empty((m, n), np.int64)
    for pair, scaled in enumerate(_scale_01(s) for s in maps):
        for level, value in enumerate(levels):
            if mode == "fraction":
                counts[level, pair] = round(value * pixels)
            else:
                counts[level, pair] = int((scaled > value).sum())
    if fill == "mean":
        fill_value = np.asarray(model.preprocessing.mean, np.float64)
        fill_value = np.clip(np.rint(fill_value), 0, 255).astype(np.uint8)
    else:
        fill_value = np.zeros(3, np.uint8)

    def make_batch(start: int, stop: int) -> torch.Tensor:
        chips = []
        for index in range(start, stop):
            use_random, rest = divmod(index, n * m)
            level, pair = divmod(rest, n)
            rank = (random_ranks if use_random else ranks)[pair]
            remove = rank < counts[level, pair]
            chips.append(np.where(remove[..., None], fill_value, probes[pair]))
        return model.prepare(np.stack(chips))

    total = n + 2 * n * m
    runner = _Runner(model, batch_size, total, progress, cancel, "pixel elimination")
    with eval_mode(model):
        gallery_embeddings = runner.embed_chips(galleries)
        modified = runner.embed(2 * n * m, make_batch)
    scores = _cosine(modified, gallery_embeddings.repeat(2 * m, 1)).cpu().numpy()
    scores = scores.reshape(2, m, n)
    saliency_eer = [equal_error_rate(s[genuine], s[~genuine])[0] for s in scores[0]]
    random_eer = [equal_error_rate(s[genuine], s[~genuine])[0] for s in scores[1]]
    return PixelElimination(
        mode=mode,
        levels=_frozen(levels),
        removed_fractions=_frozen(counts / pixels),
        saliency_eer=_frozen(saliency_eer),
        random_eer=_frozen(random_eer),
        saliency_scores=_frozen(scores[0]),
        random_scores=_frozen(scores[1]),
        is_genuine=np.array(genuine),
        fill=fill,
        seed=seed,
    )


# ---- 4. Heatmap agreement, score fusion, EER per layer (Alonso-Fernandez 2023) --
def heatmap_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between two heatmaps (Alonso-Fernandez et al. 2023, §IV-A/B,
    Fig. 2-5).

    Alonso-Fernandez et al. (2023) compare heatmaps (GAP vs softmax, MobileNetV2 vs
    ResNet50) by PSNR after scaling every heatmap to [0, 1] (§II "output is scaled
    to [0,1] for heatmap comparability").  The paper states no formula; we use the
    standard one with peak 1: ``10 * log10(1 / MSE)`` of the two min-max-scaled maps (a
    constant map scales to all zeros).  Identical maps give ``inf``; so does any
    MSE below 1e-12 (PSNR above 120 dB), which is floating-point rounding of maps
    that are equal up to scale and offset.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise BadInputError(f"heatmaps differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((_scale_01(a) - _scale_01(b)) ** 2))
    if mse < 1e-12:
        return math.inf
    return float(10.0 * math.log10(1.0 / mse))


def _normalise(scores: np.ndarray, normalization: str) -> np.ndarray:
    if normalization == "none":
        return scores
    if normalization == "zscore":
        spread = float(scores.std())
        return (scores - scores.mean()) / spread if spread > 0 else scores * 0.0
    if normalization == "minmax":
        return _scale_01(scores)
    raise BadInputError(
        f"unknown normalization {normalization!r} (use zscore, minmax or none)"
    )


def fuse_scores(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    weight: float,
    *,
    normalization: str = "zscore",
) -> np.ndarray:
    """Weighted score fusion of two models (Alonso-Fernandez et al. 2023, §IV-C,
    Fig. 6, Table I).

    Alonso-Fernandez et al. (2023) fuse the verification (cosine) scores of two
    networks by a weighted average ``a * s_MB2 + (a - 1) * s_R50`` with a in
    [0, 1] - as printed; the weights of a weighted average are a and (1 - a), which is
    what we compute: ``weight * norm(scores_a) + (1 - weight) * norm(scores_b)`` (best a
    = 0.58 in the paper).  The paper does not describe a normalisation (both of its
    scores are cosines).  Ours is per model over the given score set: ``"zscore"``
    (default; subtract the mean, divide by the standard deviation, so that models
    with different score spreads weigh as the weight says), ``"minmax"`` (scale to
    [0, 1]) or ``"none"`` (the paper's raw weighted average).  Both arrays must
    hold the same comparisons in the same order.  Weight 1 (0) returns model a's
    (b's) normalised scores.
    """
    a = np.asarray(scores_a, np.float64)
    b = np.asarray(scores_b, np.float64)
    if a.shape != b.shape:
        raise BadInputError(f"score arrays differ in shape: {a.shape} vs {b.shape}")
    if not 0.0 <= weight <= 1.0:
        raise BadInputError(f"fusion weight must lie in [0, 1], got {weight}")
    na, nb = _normalise(a, normalization), _normalise(b, normalization)
    if weight == 1.0:
        return na
    if weight == 0.0:
        return nb
    return weight * na + (1.0 - weight) * nb


def layer_scores(
    model: FaceModel,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
    layers: Sequence[str],
    *,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Genuine and impostor cosines of globally average-pooled layer activations.

    Alonso-Fernandez et al. (2023, §IV-D) use "the embedding provided by the
    respective intermediate layer" as descriptor and cosine similarity as score
    (§III-B).  Here the layer taps' activations (N, C, h, w) are averaged over space
    (GAP) to (N, C); other shapes are flattened.  Taps of a flip-averaging model
    describe the chip itself, not the flip average (one pass per chip is what the hooks
    can see).  Feed the result to ``eer_per_layer``.
    """
    if not pairs:
        raise BadInputError("no pairs to evaluate")
    probes = [
        _check_chip(model, p, f"pair {i} probe") for i, (p, _, _) in enumerate(pairs)
    ]
    galleries = [
        _check_chip(model, g, f"pair {i} gallery") for i, (_, g, _) in enumerate(pairs)
    ]
    genuine = np.array([bool(same) for _, _, same in pairs])
    chips = probes + galleries
    pooled: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    # ``capture`` keeps the activations of the last network pass: one plain pass per
    # batch (no flip averaging, so a tap describes the chip itself), and one chip
    # per pass for a backend that splits batches itself.
    if not model.forwards_whole_batches:
        batch_size = 1
    done = 0
    with eval_mode(model), torch.inference_mode():
        for start, stop in _batches(len(chips), batch_size):
            if cancel is not None and cancel():
                raise Cancelled("layers: cancelled")
            with model.capture(list(layers)) as activations:
                model._forward(model.prepare(np.stack(chips[start:stop])))
            for name in layers:
                act = activations[name].detach()
                act = act.mean(dim=(2, 3)) if act.ndim == 4 else act.flatten(1)
                pooled[name].append(act)
            done += stop - start
            if progress is not None:
                progress(done, len(chips), "layers")
    n = len(pairs)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in layers:
        features = torch.cat(pooled[name])
        cosine = _cosine(features[:n], features[n:]).cpu().numpy()
        out[name] = (cosine[genuine], cosine[~genuine])
    return out


def eer_per_layer(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, float]:
    """EER per layer (Alonso-Fernandez et al. 2023, §IV-D, Fig. 8).

    ``scores`` maps a layer name to (genuine cosines, impostor cosines) of that
    layer's pooled features (see ``layer_scores``); the EER (fraction 0..1) comes
    from ``core.evaluation.equal_error_rate``.  Layer order is kept.
    """
    return {
        name: equal_error_rate(np.asarray(g, float), np.asarray(i, float))[0]
        for name, (g, i) in scores.items()
    }
