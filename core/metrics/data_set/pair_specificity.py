"""Pair specificity over a data set: every map of both images (similarity,
dissimilarity, combined) gets the per-pair verdict of
``core.metrics.pair_faithfulness``.

For each image the face is removed region by region (``grid`` x ``grid`` cells of the
  aligned chip, blur fill, ``step_cells`` at a time) in the map's order and the
  model's decision margin against the other, unmodified image is tracked
  (dlib: 0.6 - distance).  Controls: ``random_orders`` random cell orders (30
  by default), the ``prior`` method's face-centre map, and the same method's maps
  for *other* faces: the references are one face (the first image) of each of
  ``references`` other pairs of the same data set (19 by default, the fewest for a
  pair-specific verdict), drawn without
  replacement by a generator seeded with (seed, pair index), never sharing an
  image or an identity (the image's folder) with the pair; the probe's map is
  recomputed against each reference as gallery, the gallery's map with each
  reference as probe.  ``random_percentile`` = 100 x (random orders the map beats
  + half the ties) / N; the map beats an order when the decision flips after
  fewer cells, or, at the same flip (or none), when the margin moves further in
  the map's direction (mean change over the curve; within 1e-6 is a tie).  The
  permutation p-value against random orders is (1 + orders at least as good) /
  (N + 1) (Phipson & Smyth 2010); against the K other-pair maps, under
  exchangeability, beating all K has chance 1 / (K + 1).  Rows per method and map
  kind (over both images of every pair): shares of each verdict, median flip
  fraction (over maps that flip the decision), median random percentile, share
  beating random orders at p <= 0.05, share beating the prior map, mean share of
  the other-pair maps beaten (chance 0.5) with a one-sided exact sign test over
  the maps (``other_pairs_sign_p``: a data-set test, valid with any K), and the
  mean number of other-pair maps used; curves: the mean margin against the
  removed fraction for the maps, random orders and the prior.

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from core.explain.base import MAP_KINDS, FacePair, FaceView
from core.metrics.data_set import Curves, MetricRows, MetricRun, Rows
from core.metrics.pair_faithfulness import (
    ALPHA,
    GENERIC,
    NOT_SHOWN,
    PAIR_SPECIFIC,
    check_pair,
)


def reference_choice(
    face_pairs: Sequence[FacePair], index: int, count: int, seed: int
) -> list[FaceView]:
    """One face (the first image) of each of ``count`` other pairs, drawn with a
    generator seeded by (seed, index); never an image or identity (folder) of
    pair ``index``."""
    pair = face_pairs[index]
    own_images = {view.image_sha256 for view in pair.sides}
    own_people = {_identity(view) for view in pair.sides}
    candidates = [
        number
        for number, other in enumerate(face_pairs)
        if number != index
        and not own_images & {view.image_sha256 for view in other.sides}
        and not own_people & {_identity(view) for view in other.sides}
    ]
    rng = np.random.default_rng([seed, index])
    chosen = rng.permutation(len(candidates))[:count]
    return [face_pairs[candidates[c]].probe for c in chosen]


def _identity(view: FaceView) -> str:
    return Path(view.path or view.image_sha256).parent.name or view.image_sha256


def measure(run: MetricRun) -> MetricRows:
    settings = run.pair_settings
    checks = [
        check_pair(
            result,
            face_pair,
            run.model,
            reference_choice(run.face_pairs, index, run.references, run.seed),
            settings=settings,
        )
        for index, (face_pair, result) in enumerate(
            zip(run.face_pairs, run.results, strict=True)
        )
    ]
    rows: Rows = []
    curves: Curves = {}
    for kind in MAP_KINDS:
        maps = [m for c in checks for side in c.maps.values() if (m := side.get(kind))]
        if not maps:
            continue
        verdicts = [m.verdict for m in maps]
        flips = [m.flip_fraction for m in maps if m.flip_fraction is not None]
        beaten = [
            m.vs_other_pairs["beaten"] / m.vs_other_pairs["maps"]
            for m in maps
            if m.vs_other_pairs["maps"]
        ]
        rows.append(
            {
                "map": kind,
                "pairs": len(checks),
                "maps": len(maps),
                "pair_specific": verdicts.count(PAIR_SPECIFIC) / len(maps),
                "generic": verdicts.count(GENERIC) / len(maps),
                "not_shown": verdicts.count(NOT_SHOWN) / len(maps),
                "median_flip_fraction": float(np.median(flips)) if flips else None,
                "median_random_percentile": float(
                    np.median([m.random_percentile for m in maps])
                ),
                "beats_random": float(np.mean([m.p_random <= ALPHA for m in maps])),
                "beats_prior": float(np.mean([m.vs_prior["better"] for m in maps])),
                "other_pairs_beaten": float(np.mean(beaten)) if beaten else None,
                "other_pairs_sign_p": sign_test_p(beaten),
                "references": float(np.mean([m.vs_other_pairs["maps"] for m in maps])),
                "random_orders": settings.random_orders,
            }
        )
        curves[kind] = {
            "x": list(maps[0].fractions),
            "margin": _mean_curve(m.margins for m in maps),
            "random_margin": _mean_curve(m.random_margins_mean for m in maps),
            "prior_margin": _mean_curve(m.prior_margins for m in maps),
        }
    return rows, curves


def sign_test_p(shares: Sequence[float]) -> float | None:
    """Data-set pair specificity: one-sided exact sign test that maps beat more
    than half of the other-face maps (chance: half, ties with 0.5 dropped).  A
    test over pairs, valid for any K, unlike one pair's 1 / (K + 1)."""
    above = sum(share > 0.5 for share in shares)
    below = sum(share < 0.5 for share in shares)
    n = above + below
    if n == 0:
        return None
    return float(sum(math.comb(n, k) for k in range(above, n + 1)) / 2**n)


def _mean_curve(curves: Iterable[Sequence[float]]) -> list[float]:
    return [float(v) for v in np.mean(np.array(list(curves)), axis=0)]
