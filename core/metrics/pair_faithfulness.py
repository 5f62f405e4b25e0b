"""Per-pair faithfulness: does this map show what decided *this* pair?

Measured on LFW pairs (issue 16), the old per-pair figure (pixel deletion, black
fill, cosine, against random pixel orders) is passed by a fixed face-centre blob
that knows nothing about either face: the aligned chip puts the inner face in the
middle, and any map that ranks the middle first beats random orders.  A map can
only be said to explain *this* pair when it also beats maps that are not about it.
So each map is tested against three controls:

1. ``random_orders`` random region orders (the old, weak control);
2. the ``prior`` map (``core.explain.methods.prior``): one fixed face-centre blob,
   read as the map under test is read (a rejected pair's combined map from its
   lowest cells, so the blob's edge first), so that the prior method's own maps
   always tie with it;
3. the same method's maps for *other* pairs ("pair specificity"): the probe's map
   computed against other faces, the gallery's map against other probes.
   Under the null hypothesis that the map is no more about this pair than those
   are, the map and the K other-pair maps are exchangeable, so the chance that it
   beats all K by luck is 1 / (K + 1).

The figure.  The aligned chip is cut into a ``grid`` x ``grid`` grid of cells;
cells are ranked by the map's mean value in them (ties: row-major cell index) and
removed ``step_cells`` at a time; after each step the model embeds the modified
chip and its *decision margin* against the other image's (unmodified) embedding is
recorded: ``threshold - distance`` for models decided on Euclidean distance (dlib:
0.6 - d), ``cosine - threshold`` for cosine models; the decision is "same person"
while the margin is positive (cosine: not negative).  Removed cells are replaced by
the same cells of a Gaussian-blurred copy of the chip (``fill="blur"``, default) or
by the chip's mean colour (``fill="mean"``).  Blur is the default because it takes
out the identity detail (edges, texture, shape) while keeping the chip a natural
image: flat mean-colour squares add sharp new edges, which a CNN can react to as
structure of their own, so the margin would measure the patches as well as the
loss of the face (DDFV (Xu et al. 2023) hides pixels by blur for the same reason).

Directions.  A similarity map claims its top regions hold the model's evidence for
"same person": removing them first must move the margin towards *reject*.  A
dissimilarity map claims its top regions speak against the match: removing them
first must move the margin towards *accept* (the reverse test).  A combined map is
read as a similarity map when the pair was accepted (its highest cells first) and
as a dissimilarity map when it was rejected (its lowest cells first), the
direction in which it can change the decision.

Statistics, per map and control order:
* ``flip_fraction``: the fraction of the chip's cells removed when the decision
  first changes (None when it never does, or cannot in this direction: e.g. a
  similarity map of a rejected pair moves the margin away from the threshold);
* ``effect``: the mean change of the margin over the curve, in the map's direction
  (margin units; the area under the curve over the removed fraction);
* ``peak``: the largest change of the margin in the map's direction at any step.
  It, not ``effect``, says whether removing the map's regions moves the margin its
  way at all: once the regions a dissimilarity map points at are gone, removing the
  rest of the face still drives every order towards reject, so a dissimilarity
  map's ``effect`` can be negative although it flipped the decision to accept.
One order is *better* than another when it flips the decision after removing
fewer cells, or, when both flip after as many (or neither flips), when its effect
is larger.  ``random_percentile`` = 100 x (random orders worse + half the ties) / N;
``p_random`` = (1 + random orders at least as good) / (N + 1), the permutation
p-value (Phipson & Smyth 2010: never 0).  Verdicts:

* *not shown*: the map is flat, or removing its regions first never moves the
  margin in its direction (``peak`` <= 0), or it does not beat random orders at
  p <= 0.05, or it beats every other-pair map but there are fewer than
  ``MIN_OTHER_MAPS`` (19) of them, so that 1 / (K + 1) > 0.05;
* *no better than a generic face prior*: it beats random orders, but not the
  fixed face-centre map, or not every map the same method made for other pairs;
* *pair-specific*: it beats random orders (p <= 0.05), the face-centre map and
  every one of K >= 19 other-pair maps (chance 1 / (K + 1) <= 0.05 for a map that
  is not about this pair).
Other-pair maps that are flat or non-finite rank nothing and are left out of K;
duplicate reference faces (same image) count once.  Tied cells are ordered by a
random permutation from the seed, never by position.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core import wording
from core.errors import BadInputError, Cancelled
from core.explain.base import (
    MAP_KINDS,
    ExplanationResult,
    FacePair,
    FaceView,
    ImageMaps,
    eval_mode,
    get,
)
from core.explain.methods.prior import FaceCentrePrior, face_centre_prior
from core.explain.perturb import blend, gaussian_smooth
from core.metrics.pair_defaults import (  # re-exported: the check's public names
    ALPHA,
    DEFAULT_GRID,
    DEFAULT_RANDOM_ORDERS,
    DEFAULT_STEP_CELLS,
    MIN_OTHER_MAPS,
)
from core.models.base import FaceModel, Threshold
from core.progress import ProgressCallback

# The verdict names and the layer-strip sentence are declared with the other
# examiner sentences; importers keep finding them here.
from core.wording import (
    GENERIC,
    LAYER_MAPS_NOT_CHECKED,
    NOT_SHOWN,
    PAIR_SPECIFIC,
    VERDICTS,
)

CancelCallback = Callable[[], bool]

# Raised whenever a change alters the figures for the same inputs and settings.
# 2: the direction check uses the peak change (a flipping dissimilarity map was
# "not shown"); effect integrates over the true removed fractions; a rejected
# pair's combined map is held against the prior read the same way (lowest first);
# effects within EFFECT_TOLERANCE tie (the prior method tied only by luck).
ALGORITHM_VERSION = 2
DEFAULT_FILL = "blur"
DEFAULT_BLUR_SIGMA = 8.0  # chip px, as the hiding game (faithfulness.py)
FILLS = ("blur", "mean")
MAX_RANDOM_ORDERS = 1000  # orders x chip pixels of ranks are held at once
# The face-centre prior control, as the registered ``prior`` method draws it.
PRIOR_SPREAD = float(FaceCentrePrior.info.param("spread").default)  # type: ignore[arg-type]


TOWARDS_REJECT, TOWARDS_ACCEPT = "towards reject", "towards accept"


# ---- the settings ---------------------------------------------------------------
@dataclass(frozen=True)
class FaithfulnessSettings:
    grid: int = DEFAULT_GRID
    step_cells: int = DEFAULT_STEP_CELLS
    random_orders: int = DEFAULT_RANDOM_ORDERS
    fill: str = DEFAULT_FILL
    blur_sigma: float = DEFAULT_BLUR_SIGMA
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("grid", "step_cells", "random_orders", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise BadInputError(f"{name} must be a whole number, got {value!r}")
        if not isinstance(self.blur_sigma, int | float) or not math.isfinite(
            self.blur_sigma
        ):
            raise BadInputError(f"blur sigma must be a number, got {self.blur_sigma!r}")
        if self.seed < 0:
            raise BadInputError(f"the seed must be 0 or more, got {self.seed}")
        if not 2 <= self.grid <= 50:
            raise BadInputError(f"grid must lie in 2..50 cells a side, got {self.grid}")
        if not 1 <= self.step_cells <= self.grid**2:
            raise BadInputError(
                f"step_cells must lie in 1..{self.grid**2}, got {self.step_cells}"
            )
        if not 30 <= self.random_orders <= MAX_RANDOM_ORDERS:
            raise BadInputError(
                f"random orders must lie in 30..{MAX_RANDOM_ORDERS} (30 are needed "
                f"for a percentile), got {self.random_orders}"
            )
        if self.fill not in FILLS:
            raise BadInputError(f"unknown fill {self.fill!r} (use blur or mean)")
        if self.fill == "blur" and not 0 < self.blur_sigma <= 100:
            raise BadInputError(
                f"blur sigma must lie in (0, 100] chip pixels, got {self.blur_sigma}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- results -----------------------------------------------------------------
@dataclass(frozen=True)
class MapFaithfulness:
    """The verdict on one map of one image, with the figures behind it."""

    side: str
    kind: str
    direction: str  # TOWARDS_REJECT or TOWARDS_ACCEPT
    can_flip: bool  # the direction moves the margin towards the threshold
    verdict: str
    reason: str  # the verdict's grounds, one plain sentence
    flip_fraction: float | None
    effect: float
    random_percentile: float
    p_random: float
    vs_prior: Mapping[str, Any]
    vs_other_pairs: Mapping[str, Any]
    fractions: tuple[float, ...]
    margins: tuple[float, ...]
    random_margins_mean: tuple[float, ...]
    prior_margins: tuple[float, ...]
    peak: float = 0.0  # largest margin change in the map's direction (module doc)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["vs_prior"] = dict(self.vs_prior)
        data["vs_other_pairs"] = dict(self.vs_other_pairs)
        for name in ("fractions", "margins", "random_margins_mean", "prior_margins"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MapFaithfulness:
        values = dict(data)
        for name in ("fractions", "margins", "random_margins_mean", "prior_margins"):
            values[name] = tuple(float(v) for v in values[name])
        return cls(**values)


@dataclass(frozen=True)
class PairFaithfulness:
    """The verdicts on every map of one explanation, for its own pair."""

    method_id: str
    explanation_cache_key: str
    model_sha256: str
    decision: str
    margin: float
    settings: FaithfulnessSettings
    references: tuple[str, ...]  # SHA-256 of the other faces' images used
    maps: Mapping[str, Mapping[str, MapFaithfulness]]  # side -> kind -> verdict
    algorithm_version: int = ALGORITHM_VERSION

    def get(self, side: str, kind: str) -> MapFaithfulness | None:
        return self.maps.get(side, {}).get(kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method_id,
            "explanation_cache_key": self.explanation_cache_key,
            "model_sha256": self.model_sha256,
            "decision": self.decision,
            "margin": self.margin,
            "settings": self.settings.to_dict(),
            "references": list(self.references),
            "algorithm_version": self.algorithm_version,
            "faithfulness": {
                side: {kind: m.to_dict() for kind, m in kinds.items()}
                for side, kinds in self.maps.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairFaithfulness:
        return cls(
            method_id=data["method"],
            explanation_cache_key=data["explanation_cache_key"],
            model_sha256=data["model_sha256"],
            decision=data["decision"],
            margin=float(data["margin"]),
            settings=FaithfulnessSettings(**data["settings"]),
            references=tuple(data["references"]),
            maps={
                side: {k: MapFaithfulness.from_dict(m) for k, m in kinds.items()}
                for side, kinds in data["faithfulness"].items()
            },
            algorithm_version=int(data["algorithm_version"]),
        )


# ---- the sentences an examiner reads (declared in ``core.wording``) --------------
def verdict_sentence(result: MapFaithfulness) -> str:
    """The verdict and its grounds in one line (GUI and report)."""
    return wording.map_verdict_sentence(
        result.side, result.kind, result.verdict, result.reason
    )


def _count(number: int, singular: str, plural: str) -> str:
    """ "1 was", "2 were", "none was"."""
    if number == 0:
        return f"none {singular}"
    return f"{number} {singular if number == 1 else plural}"


def _percent(fraction: float | None) -> str:
    return "never" if fraction is None else f"{100 * fraction:.0f} %"


# ---- the figure ------------------------------------------------------------------
def margin_of(threshold: Threshold, cosine: np.ndarray, distance: np.ndarray):
    """Signed decision margin: positive (cosine: >= 0) means "same person"."""
    if threshold.metric == "euclidean":
        return threshold.value - distance
    return cosine - threshold.value


def _accepts(threshold: Threshold, margin: np.ndarray) -> np.ndarray:
    if threshold.metric == "euclidean":
        return margin > 0
    return margin >= 0


def cell_labels(size: tuple[int, int], grid: int) -> np.ndarray:
    """(H, W) cell index of every chip pixel, row-major over a grid x grid grid."""
    height, width = size
    rows = np.minimum(np.arange(height) * grid // height, grid - 1)
    columns = np.minimum(np.arange(width) * grid // width, grid - 1)
    return (rows[:, None] * grid + columns[None, :]).astype(np.int64)


def cell_order(
    saliency: np.ndarray, labels: np.ndarray, cells: int, tiebreak: np.ndarray
) -> np.ndarray:
    """Cells by decreasing mean map value (NaN pixels ignored).

    Tied cells (a map that is zero off the face, a coarse or piecewise-constant
    map) follow ``tiebreak``, a random permutation of the cells drawn from the
    check's seed: a fixed order such as row-major would remove the brows and eyes
    of an aligned chip first, a strong order that no map earned.
    """
    values = np.nan_to_num(np.asarray(saliency, np.float64), nan=0.0).ravel()
    flat = labels.ravel()
    sums = np.bincount(flat, weights=values, minlength=cells)
    counts = np.bincount(flat, minlength=cells)
    means = sums / np.maximum(counts, 1)
    return np.lexsort((tiebreak, -means))


@dataclass(frozen=True)
class _Curve:
    margins: np.ndarray  # (steps + 1,), margins[0] = the unmodified chip's
    flip_step: float  # first step whose decision differs from step 0's (inf: none)
    effect: float  # mean margin change over the curve, in the tested direction
    peak: float  # largest margin change in the tested direction at any step


def _curve(
    margins: np.ndarray,
    fractions: np.ndarray,
    threshold: Threshold,
    sign: float,
    can_flip: bool,
    start_accepted: bool,
) -> _Curve:
    # flips from the decision the check reports (the explanation's), not from the
    # first point's margin: on the threshold they can differ in the last digits
    changed = _accepts(threshold, margins[1:]) != start_accepted
    flips = np.nonzero(changed)[0] + 1
    flip_step = float(flips[0]) if can_flip and flips.size else float("inf")
    change = sign * (margins - margins[0])
    # trapezoid over the removed fraction in [0, 1] (the last step may be shorter)
    effect = float(np.sum(np.diff(fractions) * (change[1:] + change[:-1]) / 2))
    return _Curve(margins, flip_step, effect, float(np.max(change[1:])))


# Effects closer than this are equal: the same order run in another batch gives
# margins that differ in the last float32 digits (batch-dependent convolution
# kernels), and the prior method's own map must tie with the prior control.
EFFECT_TOLERANCE = 1e-6


def _tied(a: _Curve, b: _Curve) -> bool:
    return a.flip_step == b.flip_step and abs(a.effect - b.effect) <= EFFECT_TOLERANCE


def _better(a: _Curve, b: _Curve) -> bool:
    """Flip sooner; when both flip after as many cells (or neither flips), move the
    margin further."""
    if a.flip_step != b.flip_step:
        return a.flip_step < b.flip_step
    return a.effect > b.effect + EFFECT_TOLERANCE


class _SideRunner:
    """Margins of one chip with cells removed in given orders, in batches."""

    def __init__(
        self,
        model: FaceModel,
        view: FaceView,
        other_embedding: torch.Tensor,
        threshold: Threshold,
        settings: FaithfulnessSettings,
        batch_size: int,
        tick: Callable[[int], None],
    ) -> None:
        self.model, self.threshold, self.settings = model, threshold, settings
        self.batch_size, self.tick = batch_size, tick
        size = model.input_size
        self.cells = settings.grid**2
        self.labels = cell_labels(size, settings.grid)
        self.counts = np.minimum(
            np.arange(0, self.cells + settings.step_cells, settings.step_cells),
            self.cells,
        )
        self.counts = np.unique(self.counts)  # 0, step, 2 step, ..., all cells
        chip = np.asarray(view.chip)
        if settings.fill == "blur":
            filled = gaussian_smooth(chip.astype(np.float32), settings.blur_sigma)
            filled = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
        else:
            mean = chip.reshape(-1, 3).mean(axis=0)
            filled = np.broadcast_to(
                np.clip(np.rint(mean), 0, 255).astype(np.uint8), chip.shape
            ).copy()
        self.x = model.prepare(chip[None])
        self.fill = model.prepare(filled[None])
        self.other = other_embedding.to(model.device).double()

    @property
    def steps(self) -> int:
        return len(self.counts) - 1

    def passes(self, orders: int) -> int:
        return orders * self.steps

    def base_margin(self) -> float:
        return float(self._margins(self.x)[0])

    def _margins(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            embedded = self.model.embed(batch).detach().double()
        cosine = torch.nn.functional.cosine_similarity(
            embedded, self.other[None].expand_as(embedded), dim=1, eps=1e-12
        )
        distance = torch.linalg.vector_norm(embedded - self.other[None], dim=1)
        return margin_of(
            self.threshold, cosine.cpu().numpy(), distance.cpu().numpy()
        ).astype(np.float64)

    def curves(self, orders: Sequence[np.ndarray], base: float) -> np.ndarray:
        """(len(orders), steps + 1) margins; column 0 is ``base``."""
        device = self.model.device
        # pixel_rank[o, y, x]: when cell of (y, x) is removed in order o
        rank_of_cell = np.empty((len(orders), self.cells), np.int64)
        for index, order in enumerate(orders):
            rank_of_cell[index, order] = np.arange(self.cells)
        pixel_rank = torch.from_numpy(rank_of_cell[:, self.labels]).to(device)
        counts = torch.from_numpy(self.counts[1:]).to(device)
        total = len(orders) * self.steps
        out = np.empty(total)
        with torch.inference_mode():
            for start in range(0, total, self.batch_size):
                stop = min(total, start + self.batch_size)
                flat = torch.arange(start, stop, device=device)
                curve, step = flat // self.steps, flat % self.steps
                keep = pixel_rank[curve] >= counts[step][:, None, None]
                batch = blend(self.x, self.fill, keep.float())
                out[start:stop] = self._margins(batch)
                self.tick(stop - start)
        margins = out.reshape(len(orders), self.steps)
        return np.concatenate([np.full((len(orders), 1), base), margins], axis=1)


def _direction(kind: str, accepted: bool) -> tuple[str, float, bool]:
    """(direction, sign of the expected margin change, whether it can flip)."""
    if kind == "similarity" or (kind == "combined" and accepted):
        return TOWARDS_REJECT, -1.0, accepted
    return TOWARDS_ACCEPT, 1.0, not accepted


def _ranked_map(kind: str, saliency: np.ndarray, accepted: bool) -> np.ndarray:
    """The map whose highest cells go first: a rejected pair's combined map is
    read from its most dissimilar (lowest) cells."""
    if kind == "combined" and not accepted:
        return -np.asarray(saliency, np.float64)
    return np.asarray(saliency, np.float64)


def _prior_reading(kind: str, accepted: bool) -> str:
    """The kind whose reading of the prior serves as ``kind``'s control."""
    return "combined" if kind == "combined" and not accepted else "similarity"


def _prior_readings(kinds: Mapping[str, Any], accepted: bool) -> list[str]:
    return sorted({_prior_reading(kind, accepted) for kind in kinds})


def pair_faithfulness(
    result: ExplanationResult,
    pair: FacePair,
    model: FaceModel,
    *,
    other_maps: Mapping[str, Mapping[str, Sequence[np.ndarray]]] | None = None,
    references: Sequence[str] = (),
    settings: FaithfulnessSettings | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> PairFaithfulness:
    """Verdicts for every map of ``result`` on its own ``pair`` (module docstring).

    ``other_maps[side][kind]``: the same method's maps of that kind for other pairs
    (``other_pair_maps``); ``references``: the SHA-256 of the faces they came from,
    recorded with the result.  Flat or non-finite other-pair maps rank nothing and
    are left out of K (the verdict says how many).
    """
    settings = settings or FaithfulnessSettings()
    other_maps = other_maps or {}
    threshold = result.threshold
    embeddings, cosine = _check_inputs(result, pair, model, batch_size)
    distance = float((embeddings[0] - embeddings[1]).norm())
    margin = float(margin_of(threshold, np.array([cosine]), np.array([distance]))[0])
    # the decision the explanation recorded (on the threshold, float32 and float64
    # margins can disagree in the last digits; the check follows the recorded one)
    accepted = result.decision == "accept"

    done = [0]
    plans = []
    for index, (view, maps) in enumerate(zip(pair.sides, result.images, strict=True)):
        runner = _SideRunner(
            model,
            view,
            embeddings[1 - index],
            threshold,
            settings,
            batch_size,
            lambda n: _tick(done, n, total, progress, cancel),
        )
        kinds = maps.chip_maps()
        usable = {
            kind: [m for m in other_maps.get(view.side, {}).get(kind, ()) if _ranks(m)]
            for kind in kinds
        }
        plans.append((view, runner, kinds, usable))
    total = sum(
        r.passes(settings.random_orders + len(_prior_readings(kinds, accepted)))
        + r.passes(len(kinds) + sum(len(maps) for maps in usable.values()))
        for _, r, kinds, usable in plans
    )
    total += 2  # the two unmodified chips
    sides: dict[str, dict[str, MapFaithfulness]] = {}
    with eval_mode(model):
        for index, (view, runner, kinds, usable) in enumerate(plans):
            base = _on_the_decision_side(runner.base_margin(), threshold, accepted)
            _tick(done, 1, total, progress, cancel)
            rng = np.random.default_rng([settings.seed, index])
            random_orders = [
                rng.permutation(runner.cells) for _ in range(settings.random_orders)
            ]
            tiebreak = np.random.default_rng([settings.seed, index, 1]).permutation(
                runner.cells
            )

            def order_of(saliency: np.ndarray, runner=runner, tiebreak=tiebreak):
                return cell_order(saliency, runner.labels, runner.cells, tiebreak)

            # the prior read as each kind's map is (a rejected pair's combined map
            # from its lowest cells): the prior method's own maps tie with it
            prior = face_centre_prior(model.input_size, PRIOR_SPREAD)
            readings = _prior_readings(kinds, accepted)
            prior_orders = [
                order_of(_ranked_map(kind, prior, accepted)) for kind in readings
            ]
            control = runner.curves([*random_orders, *prior_orders], base)
            random_margins = control[: len(random_orders)]
            prior_curves = dict(
                zip(readings, control[len(random_orders) :], strict=True)
            )
            sides[view.side] = {}
            for kind, saliency in kinds.items():
                prior_margins = prior_curves[_prior_reading(kind, accepted)]
                ranked = _ranked_map(kind, saliency, accepted)
                other = [_ranked_map(kind, m, accepted) for m in usable[kind]]
                orders = [order_of(m) for m in [ranked, *other]]
                curves = runner.curves(orders, base)
                given = len(other_maps.get(view.side, {}).get(kind, ()))
                sides[view.side][kind] = _judge(
                    view.side,
                    kind,
                    saliency,
                    accepted,
                    threshold,
                    runner.counts / runner.cells,
                    curves[0],
                    curves[1:],
                    random_margins,
                    prior_margins,
                    left_out=given - len(other),
                )
    return PairFaithfulness(
        method_id=result.method_id,
        explanation_cache_key=result.cache_key,
        model_sha256=model.weights_sha256,
        decision="accept" if accepted else "reject",
        margin=margin,
        settings=settings,
        references=tuple(references),
        maps=sides,
    )


def _on_the_decision_side(margin: float, threshold: Threshold, accepted: bool) -> float:
    """The unmodified chip's margin, on the side of the threshold the explanation
    decided.  They differ only for a pair on the threshold, by rounding (the
    decision was taken in float32, the margins are float64): the curve then starts
    at the threshold itself instead of a hair beyond it."""
    if bool(_accepts(threshold, np.array([margin]))[0]) == accepted:
        return margin
    if abs(margin) > 1e-6:
        raise BadInputError(
            f"the explanation says {'accept' if accepted else 'reject'} but this "
            f"pair's margin is {margin:+.6f}: it was made for another pair or "
            "threshold"
        )
    if threshold.metric == "euclidean":  # accepted while d < t: a margin > 0
        return float(np.nextafter(0.0, 1.0)) if accepted else 0.0
    return 0.0 if accepted else float(np.nextafter(0.0, -1.0))  # cos >= t


def _ranks(saliency: np.ndarray) -> bool:
    """Whether a map ranks anything: finite somewhere and not constant there."""
    values = np.asarray(saliency, np.float64)
    finite = values[np.isfinite(values)]
    return finite.size > 0 and float(finite.max()) > float(finite.min())


def _check_inputs(
    result: ExplanationResult, pair: FacePair, model: FaceModel, batch_size: int
) -> tuple[list[torch.Tensor], float]:
    """One clear line for a result that cannot be checked on this pair and model,
    before any long work; the pair's embeddings (float64) and cosine."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise BadInputError(f"batch size must be at least 1, got {batch_size!r}")
    if result.model_sha256 != model.weights_sha256:
        raise BadInputError(
            f"the {result.method_id} explanation was made with other model weights "
            f"({result.model_sha256[:12]}…) than {model.model_id} "
            f"({model.weights_sha256[:12]}…)"
        )
    size = tuple(model.input_size)
    for view, maps in zip(pair.sides, result.images, strict=True):
        if tuple(view.chip.shape[:2]) != size:
            raise BadInputError(
                f"the {view.side} chip is {view.chip.shape[1]}x{view.chip.shape[0]}, "
                f"model {model.model_id} needs {size[1]}x{size[0]}"
            )
        for kind, array in maps.chip_maps().items():
            if tuple(np.shape(array)) != size:
                raise BadInputError(
                    f"the {view.side} {kind} map is {np.shape(array)}, not the "
                    f"chip's {size}: it cannot rank the chip's regions"
                )
    with eval_mode(model), torch.inference_mode():
        embeddings = [
            model.embed(model.prepare(view.chip[None])).detach()[0].double()
            for view in pair.sides
        ]
    cosine = float(
        torch.nn.functional.cosine_similarity(embeddings[0], embeddings[1], dim=0)
    )
    if abs(cosine - result.cosine_similarity) > 1e-4:
        raise BadInputError(
            f"the {result.method_id} explanation was made for another pair (its "
            f"cosine similarity {result.cosine_similarity:.4f}, this pair's "
            f"{cosine:.4f}): check the explanation of this pair"
        )
    return embeddings, cosine


def _tick(
    done: list[int],
    units: int,
    total: int,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
) -> None:
    if cancel is not None and cancel():
        raise Cancelled("faithfulness check cancelled")
    done[0] = min(total, done[0] + units)
    if progress is not None:
        progress(done[0], total, "faithfulness")


def _judge(
    side: str,
    kind: str,
    saliency: np.ndarray,
    accepted: bool,
    threshold: Threshold,
    fractions: np.ndarray,
    margins: np.ndarray,
    other_margins: np.ndarray,
    random_margins: np.ndarray,
    prior_margins: np.ndarray,
    left_out: int = 0,
) -> MapFaithfulness:
    direction, sign, can_flip = _direction(kind, accepted)

    def curve(values: np.ndarray) -> _Curve:
        return _curve(values, fractions, threshold, sign, can_flip, accepted)

    own = curve(margins)
    randoms = [curve(m) for m in random_margins]
    prior = curve(prior_margins)
    others = [curve(m) for m in other_margins]

    worse = sum(_better(own, r) for r in randoms)
    ties = sum(_tied(own, r) for r in randoms)
    at_least_as_good = len(randoms) - worse
    percentile = 100.0 * (worse + 0.5 * ties) / len(randoms)
    p_random = (1 + at_least_as_good) / (len(randoms) + 1)
    beats_prior = _better(own, prior)
    beaten = sum(_better(own, o) for o in others)
    p_other = (1 + len(others) - beaten) / (len(others) + 1)

    def fraction(curve: _Curve) -> float | None:
        if not np.isfinite(curve.flip_step):
            return None
        return float(fractions[int(curve.flip_step)])

    moved = "lower" if sign < 0 else "raise"
    flat_others = (
        f" {_count(left_out, 'other-face map was', 'other-face maps were')} flat "
        "and left out."
        if left_out
        else ""
    )
    if not _ranks(saliency):
        verdict, reason = NOT_SHOWN, "The map is flat: it ranks no region first."
    elif own.peak <= 0:
        verdict, reason = (
            NOT_SHOWN,
            f"Removing its strongest regions first does not {moved} the score.",
        )
    elif p_random > ALPHA:
        verdict, reason = (
            NOT_SHOWN,
            f"Removing its regions first changes the score no more than removing "
            f"random regions (better than {percentile:.0f} % of "
            f"{len(randoms)} random orders, p = {p_random:.2f}).",
        )
    elif not beats_prior:
        verdict, reason = (
            GENERIC,
            "A fixed face-centre map, the same for every pair, changes the score "
            f"as fast (decision changes after {_percent(fraction(prior))} of the "
            f"face removed, this map: {_percent(fraction(own))}).",
        )
    elif beaten < len(others):
        verdict, reason = (
            GENERIC,
            f"Maps the same method made for other faces change this "
            f"pair's score as fast ({len(others) - beaten} of {len(others)} did "
            "as well).",
        )
    elif not others:
        verdict, reason = (
            NOT_SHOWN,
            f"It beats random orders (p = {p_random:.2f}) and the face-centre map, "
            "but no map of the same method for other faces was available to test "
            f"pair specificity (at least {MIN_OTHER_MAPS} are needed).",
        )
    elif len(others) < MIN_OTHER_MAPS:
        verdict, reason = (
            NOT_SHOWN,
            f"It beats random orders (p = {p_random:.2f}), the face-centre map and "
            + (
                "the one map made for another face"
                if len(others) == 1
                else f"all {len(others)} maps made for other faces"
            )
            + f", but with {len(others)} a map that is not about this pair does so "
            "by chance "
            f"{p_other:.2f} of the time; at least {MIN_OTHER_MAPS} are needed for "
            f"{ALPHA:.0%}.",
        )
    else:
        verdict, reason = (
            PAIR_SPECIFIC,
            f"It changes the score faster than {len(randoms)} random orders "
            f"(p = {p_random:.2f}), the face-centre map and all {len(others)} maps "
            f"made for other faces (chance {p_other:.2f}).",
        )
    reason += flat_others
    return MapFaithfulness(
        side=side,
        kind=kind,
        direction=direction,
        can_flip=can_flip,
        verdict=verdict,
        reason=reason,
        flip_fraction=fraction(own),
        effect=own.effect,
        random_percentile=percentile,
        p_random=p_random,
        vs_prior={
            "better": bool(beats_prior),
            "prior_flip_fraction": fraction(prior),
            "prior_effect": prior.effect,
        },
        vs_other_pairs={
            "maps": len(others),
            "flat_left_out": int(left_out),
            "beaten": int(beaten),
            "p_value": p_other,
            "flip_fractions": [fraction(o) for o in others],
        },
        fractions=tuple(float(f) for f in fractions),
        margins=tuple(float(m) for m in margins),
        random_margins_mean=tuple(float(m) for m in random_margins.mean(axis=0)),
        prior_margins=tuple(float(m) for m in prior_margins),
        peak=own.peak,
    )


# ---- the other pairs ---------------------------------------------------------------
def other_pair_maps(
    result: ExplanationResult,
    pair: FacePair,
    model: FaceModel,
    references: Sequence[FaceView],
    *,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[dict[str, dict[str, list[np.ndarray]]], list[FaceView]]:
    """The same method, parameters and seed on (probe, reference) and (reference,
    gallery) for each reference face: maps that are not about this pair.

    Also the references used: one the method cannot explain (``components`` on a
    face placed by hand, which has no 68 landmarks) is left out on both sides, so
    that each side's K maps come from the same K faces and K is what is recorded.
    """
    explainer = get(result.method_id)
    out: dict[str, dict[str, list[np.ndarray]]] = {"probe": {}, "gallery": {}}
    used = []
    total = 2 * len(references)
    for number, reference in enumerate(references):
        as_gallery = dataclasses.replace(reference, side="gallery")
        as_probe = dataclasses.replace(reference, side="probe")
        jobs = (
            ("probe", FacePair(pair.probe, as_gallery)),
            ("gallery", FacePair(as_probe, pair.gallery)),
        )
        found: list[tuple[str, ImageMaps]] = []
        try:
            for step, (side, other_pair) in enumerate(jobs):
                if progress is not None:
                    progress(2 * number + step, total, "maps for other faces")
                other = explainer.explain(
                    other_pair,
                    model,
                    result.params,
                    seed=result.seed,
                    cancel=cancel,
                    batch_size=batch_size,
                    threshold=result.threshold,
                )
                found.append((side, other.probe if side == "probe" else other.gallery))
        except BadInputError:
            continue  # this face cannot be explained by the method: not a reference
        used.append(reference)
        for side, maps in found:
            for kind, array in maps.chip_maps().items():
                out[side].setdefault(kind, []).append(array)
    if progress is not None:
        progress(total, total, "maps for other faces")
    return out, used


def check_pair(
    result: ExplanationResult,
    pair: FacePair,
    model: FaceModel,
    references: Sequence[FaceView],
    *,
    settings: FaithfulnessSettings | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> PairFaithfulness:
    """Maps for the other faces, then the verdicts (progress in two stages).

    References that show one of the pair's own images, or an image given before,
    are left out: a photo counted twice would make 1 / (K + 1) a fiction; so are
    faces the method cannot explain (``other_pair_maps``).
    """
    _check_inputs(result, pair, model, batch_size)  # before the long part
    seen = {pair.probe.image_sha256, pair.gallery.image_sha256}
    distinct = []
    for reference in references:
        if reference.image_sha256 not in seen:
            seen.add(reference.image_sha256)
            distinct.append(reference)
    maps, used = other_pair_maps(
        result,
        pair,
        model,
        distinct,
        batch_size=batch_size,
        progress=_stage(progress, "maps for other faces"),
        cancel=cancel,
    )
    return pair_faithfulness(
        result,
        pair,
        model,
        other_maps=maps,
        references=[r.image_sha256 for r in used],
        settings=settings,
        batch_size=batch_size,
        progress=_stage(progress, "faithfulness"),
        cancel=cancel,
    )


def _stage(progress: ProgressCallback | None, label: str) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda done, total, _message: progress(done, total, label)


def summary(result: PairFaithfulness) -> dict[str, str]:
    """``"side kind"`` -> verdict, for tables and the audit trail."""
    return {
        f"{side} {kind}": m.verdict
        for side, kinds in result.maps.items()
        for kind, m in kinds.items()
    }


__all__ = [
    "GENERIC",
    "LAYER_MAPS_NOT_CHECKED",
    "MAP_KINDS",
    "NOT_SHOWN",
    "PAIR_SPECIFIC",
    "VERDICTS",
    "FaithfulnessSettings",
    "MapFaithfulness",
    "PairFaithfulness",
    "check_pair",
    "other_pair_maps",
    "pair_faithfulness",
    "verdict_sentence",
]
