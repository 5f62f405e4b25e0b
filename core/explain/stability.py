"""Sampling until a stochastic map is stable, and how uncertain each pixel is.

A stochastic method (LIME, CorrRISE, SmoothGrad) estimates its map from random
samples; too few and another seed gives another map.  Instead of a fixed count,
samples are drawn in a first round of ``round_size`` (also the fewest used),
then in rounds of ``check_every`` (by default the same size; LIME and CorrRISE
check four times as often, so that a map stops within a quarter of a round of
the count it needs instead of up to a whole round later).  After each round the
samples are split into two halves fixed by the sample index (even / odd) and
each half gives its own map.  The Pearson correlation ``r`` of the two
half-maps (combined map, all chip pixels) measures maps of half the samples;
the Spearman-Brown formula ``2r / (1 + r)`` carries it to the full count.  For
a map that is a mean over independent samples this corrected split-half figure
is the expected correlation between two full runs with different seeds - the
seed-to-seed agreement an examiner or an opposing expert would check - while
the uncorrected ``r`` would understate it and ask for about twice the samples.
Sampling stops when it reaches ``target`` (stopped by "target") or when ``cap``
samples were drawn (stopped by "cap").  The same seed draws the same samples in
the same rounds, so it stops at the same point with the same map.

Per-pixel uncertainty: samples also fall into ``GROUPS`` = 8 groups by index
(index mod 8; the even groups make the even half, so the split above is a union
of groups). Samples drawn in opposite pairs (``antithetic``: a mask and its
complement, a noise and its negative; ``PairedDraws``) are grouped by pair
instead (pair index mod 8), so both of a pair always fall in the same group and
the same half: the halves stay independent and the corrected split-half figure
still predicts the seed-to-seed agreement. The delete-a-group jackknife over
them (Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 11) gives
the standard error of the full map at each pixel, in the units of the combined
map. We use it rather than the difference of the two half-maps because it has 7
degrees of freedom per pixel instead of 1 (a single |A - B| is as large as its
own mean by chance), it holds for the non-linear estimators used here (a
correlation, a ridge fit), and it costs only 8 more map evaluations from
statistics already kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from core.explain.base import ExplainContext, Param

GROUPS = 8
EVEN = (0, 2, 4, 6)  # sample index mod 8 even <=> sample index even
ODD = (1, 3, 5, 7)
ALL = tuple(range(GROUPS))
DEFAULT_STABILITY = 0.95
MEASURE = (
    "split-half Pearson correlation of the combined map (even against odd "
    "samples), Spearman-Brown corrected to the full number of samples"
)


def stopping_params(
    unit: str,
    cap: int,
    maximum: int,
    check_every: int | None = None,
    antithetic: str | None = None,
) -> tuple[Param, ...]:
    """The parameters every stochastic method adds to its sample count: the target
    and the cap, and (``check_every``, for methods whose rounds are large) how many
    samples each round after the first draws before the stability is measured
    again; ``antithetic`` (the method's words for a sample's opposite) adds the
    switch for drawing samples in opposite pairs (``paired_draws``)."""
    pairing = (
        ()
        if antithetic is None
        else (
            Param(
                "antithetic",
                bool,
                True,
                f"draw the {unit} in opposite pairs ({antithetic}); both of a "
                "pair count in the same half of the stability check, so the "
                "figure stays honest, and the map needs fewer samples",
            ),
        )
    )
    check = (
        ()
        if check_every is None
        else (
            Param(
                "check_every",
                int,
                check_every,
                f"after the first round, measure the stability again every this "
                f"many {unit} (smaller: stops nearer the count the map needs, "
                "for a little more fitting time)",
                minimum=1,
                maximum=maximum,
            ),
        )
    )
    return (
        Param(
            "stability",
            float,
            DEFAULT_STABILITY,
            "stop once the map agrees with itself this well (split-half "
            "correlation, corrected to the full count; 1 = always run to the cap)",
            minimum=0.0,
            maximum=1.0,
        ),
        Param(
            "max_samples",
            int,
            cap,
            f"most {unit} per face if the map does not become stable sooner "
            "(never fewer than the first round)",
            minimum=1,
            maximum=maximum,
        ),
        *check,
        *pairing,
    )


def group_of(index: int, pair: int = 1) -> int:
    """The group of sample ``index``: by sample, or by pair when samples are drawn
    in opposite pairs (``pair`` = 2), so both of a pair fall in the same group and
    so in the same half of the split-half check (a pair straddling the halves
    would make them correlated and the stability figure too high)."""
    return (index // pair) % GROUPS


def groups_of(first_index: int, count: int, pair: int = 1) -> np.ndarray:
    """``group_of`` for samples ``first_index`` .. ``first_index + count - 1``."""
    return (np.arange(first_index, first_index + count) // pair) % GROUPS


class PairedDraws:
    """Samples in opposite pairs: sample 2k is drawn, sample 2k + 1 is its opposite.

    ``draw(n)`` draws n new samples (stacked on axis 0) from the method's stream;
    ``opposite`` maps samples to their opposites (1 - mask, -noise).  Pair k's base
    is the k-th draw of the stream whatever the round sizes: a round that ends
    after the base of a pair keeps it, and the next round starts with its
    opposite.  With ``paired`` False every sample is a draw of its own.
    """

    def __init__(
        self,
        draw: Callable[[int], Any],
        opposite: Callable[[Any], Any],
        concatenate: Callable[[list[Any]], Any],
        paired: bool,
    ) -> None:
        self.draw, self.opposite, self.concatenate = draw, opposite, concatenate
        self.paired = paired
        self.pending: Any = None  # the base of a pair whose opposite is not drawn
        self.next_index = 0

    @property
    def pair(self) -> int:
        """Samples per group unit: 2 when paired (see ``group_of``), else 1."""
        return 2 if self.paired else 1

    def take(self, first_index: int, count: int) -> Any:
        """Samples ``first_index`` .. ``first_index + count - 1`` (in order)."""
        if first_index != self.next_index:
            raise ValueError(f"samples drawn out of order ({first_index})")
        self.next_index += count
        if not self.paired:
            return self.draw(count)
        parts: list[Any] = []
        index, end = first_index, first_index + count
        if index % 2 == 1 and index < end:  # the opposite of the last base
            parts.append(self.opposite(self.pending))
            self.pending = None
            index += 1
        pairs = (end - index) // 2
        if pairs:
            bases = self.draw(pairs)
            both = self.concatenate([bases, self.opposite(bases)])
            # interleaved: base 0, its opposite, base 1, its opposite, ...
            parts.append(
                both[[k + half * pairs for k in range(pairs) for half in (0, 1)]]
            )
            index += 2 * pairs
        if index < end:  # a pair's base; its opposite comes first in the next round
            base = self.draw(1)
            parts.append(base)
            self.pending = base
        return self.concatenate(parts) if len(parts) > 1 else parts[0]


class GroupedEstimate(Protocol):
    """Statistics kept per sample group, from which a map of any groups is made."""

    sizes: list[int]  # samples held per group, GROUPS entries

    def map_of(self, groups: Sequence[int]) -> np.ndarray | None:
        """The (H, W) combined map from the samples of ``groups`` (None if none)."""
        ...


@dataclass(frozen=True)
class StoppingRule:
    round_size: int  # also the minimum: the first round is always drawn whole
    cap: int
    target: float
    check_every: int = 0  # later rounds (0: the same as the first)

    @classmethod
    def from_params(cls, params: Any, count_name: str) -> StoppingRule:
        round_size = int(params[count_name])
        return cls(
            round_size=round_size,
            cap=max(round_size, int(params["max_samples"])),
            target=float(params["stability"]),
            check_every=int(params.get("check_every", round_size)),
        )

    def next_count(self, used: int) -> int:
        """How many samples the next round draws, ``used`` drawn so far."""
        size = self.round_size if used == 0 else (self.check_every or self.round_size)
        return min(size, self.cap - used)


@dataclass(frozen=True)
class SideStability:
    reached: float | None  # Spearman-Brown corrected split-half r (None: < 2 samples)
    split_half_r: float | None
    samples: int
    cap: int
    stopped_by: str  # "target" or "cap"
    history: tuple[tuple[int, float | None], ...]  # (samples so far, reached)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reached": self.reached,
            "split_half_r": self.split_half_r,
            "samples": self.samples,
            "cap": self.cap,
            "stopped_by": self.stopped_by,
            "history": [[count, value] for count, value in self.history],
        }


def pearson(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson r over all pixels; two constant maps agree (1), one constant: 0."""
    a = first.astype(np.float64).ravel() - first.mean(dtype=np.float64)
    b = second.astype(np.float64).ravel() - second.mean(dtype=np.float64)
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a < 1e-300 or norm_b < 1e-300:
        return 1.0 if norm_a < 1e-300 and norm_b < 1e-300 else 0.0
    return float(np.clip(a @ b / (norm_a * norm_b), -1.0, 1.0))


def spearman_brown(r: float) -> float:
    """Reliability of the full count from the correlation of two halves."""
    return 2 * r / (1 + r) if r > -1 else -1.0


def split_half(estimate: GroupedEstimate) -> tuple[float | None, float | None]:
    """(corrected, raw) split-half correlation; None while a half is empty."""
    even, odd = estimate.map_of(EVEN), estimate.map_of(ODD)
    if even is None or odd is None:
        return None, None
    r = pearson(even, odd)
    return spearman_brown(r), r


def jackknife_error(estimate: GroupedEstimate) -> np.ndarray:
    """Delete-a-group jackknife standard error of the full map, per pixel.

    SE^2 = (k - 1) / k * sum_g (theta_(-g) - mean theta_(-))^2 over the k groups
    that hold samples (Efron & Tibshirani 1993, eq. 11.5, groups deleted in turn);
    a group without samples would leave the map unchanged and is no replicate.
    """
    occupied = [g for g in ALL if estimate.sizes[g] > 0]
    if len(occupied) < 2:  # one group: no spread to measure
        full = estimate.map_of(ALL)
        assert full is not None
        return np.zeros(full.shape, np.float32)
    replicates = []
    for group in occupied:
        left_out = estimate.map_of(tuple(g for g in ALL if g != group))
        assert left_out is not None  # another group holds samples
        replicates.append(left_out.astype(np.float64))
    stack = np.stack(replicates)
    k = len(stack)
    spread = ((stack - stack.mean(0)) ** 2).sum(0)
    return np.sqrt((k - 1) / k * spread).astype(np.float32)


def sample_until_stable(
    ctx: ExplainContext,
    side: int,
    rule: StoppingRule,
    estimate: GroupedEstimate,
    draw_round: Callable[[int, int, str], None],
    unit: str,
) -> tuple[np.ndarray, np.ndarray, SideStability]:
    """Draw rounds until stable or capped: (combined map, uncertainty, stability).

    ``draw_round(first_index, count, message)`` draws samples ``first_index`` ..
    ``first_index + count - 1``, scores them (stepping progress by ``count``) and
    adds each to ``estimate`` under group ``index % GROUPS``.  The caller's progress
    total must include ``rule.cap`` units for this side: a side that stops early
    steps the rest at once, so the bar stays monotone and ends full.
    """
    name = ctx.pair.sides[side].side
    used = 0
    history: list[tuple[int, float | None]] = []
    reached: float | None = None
    raw: float | None = None
    while True:
        count = rule.next_count(used)
        so_far = "" if reached is None else f", stability so far {reached:.3f}"
        draw_round(
            used,
            count,
            f"{name}: {unit} {used + 1}-{used + count}{so_far} (target "
            f"{rule.target:g}); the bar counts to the most that may be needed, "
            f"{rule.cap} per face, and ends sooner once the map is stable",
        )
        used += count
        reached, raw = split_half(estimate)
        history.append((used, None if reached is None else round(reached, 6)))
        if reached is not None and reached >= rule.target:
            stopped_by = "target"
            break
        if used >= rule.cap:
            stopped_by = "cap"
            break
    if used < rule.cap:
        ctx.step(rule.cap - used, f"{name}: stable after {used} {unit}")
    full = estimate.map_of(ALL)
    assert full is not None  # at least one round was drawn
    stability = SideStability(reached, raw, used, rule.cap, stopped_by, tuple(history))
    return full, jackknife_error(estimate), stability


def record(
    ctx: ExplainContext, rule: StoppingRule, sides: Sequence[SideStability]
) -> None:
    """Put the stability reached per side in ``ctx.details["stability"]``."""
    ctx.details["stability"] = {
        "measure": MEASURE,
        "target": rule.target,
        "round_size": rule.round_size,
        "check_every": rule.check_every or rule.round_size,
        "uncertainty": (
            "per-pixel standard error of the combined map (delete-a-group "
            f"jackknife over {GROUPS} groups of samples), same units"
        ),
        **{
            view.side: stability.to_dict()
            for view, stability in zip(ctx.pair.sides, sides, strict=True)
        },
    }
    for view, stability in zip(ctx.pair.sides, sides, strict=True):
        if stability.stopped_by == "cap":
            reached = (
                "could not be measured"
                if stability.reached is None
                else f"was {stability.reached:.3f}"
            )
            ctx.notes.append(
                f"{view.side}: the map did not become stable within {stability.cap} "
                f"samples (its stability {reached}, target {rule.target:g}); "
                "another seed may give a visibly different map"
            )


def stability_sentence(details: Mapping[str, Any], side: str) -> str | None:
    """The stability a stochastic map reached, in one line (GUI and report);
    None for a method that samples nothing."""
    stability = details.get("stability")
    if not stability or side not in stability:
        return None
    figures = stability[side]
    reached = figures.get("reached")
    value = "not measurable" if reached is None else f"{reached:.3f}"
    how = (
        "stopped at the target"
        if figures.get("stopped_by") == "target"
        else f"stopped at the cap of {figures.get('cap')} samples, below the target"
    )
    return (
        f"{side}: stability {value} after {figures.get('samples')} samples "
        f"(split-half correlation, corrected to the full count; target "
        f"{stability.get('target')}; {how})."
    )
