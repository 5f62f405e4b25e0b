"""``xfr eval faithfulness``: the papers' faithfulness tables for our model.

For every pair of a data set (a folder of identities or an LFW ``pairs.txt``) and
every requested method, the probe's map is computed once and scored with:

* ``deletion-insertion`` (Lu et al. 2024, §IV-B): similarity maps on genuine pairs,
  dissimilarity maps on impostor pairs (methods without a dissimilarity map are
  skipped there), mean AUCs over pairs, against random orders;
* ``hiding-game`` (Xu et al. 2023, §IV-B): verification accuracy as the least
  important pixels of the probe are blurred, and its AUC;
* ``pixel-elimination`` (Alonso-Fernandez et al. 2023, §IV-E): EER when the most
  salient pixels are removed vs the same number of random pixels;
* ``pair-specificity`` (issue 16, ``core.metrics.pair_faithfulness``): every map
  of both images (similarity, dissimilarity, combined) gets the per-pair verdict
  *pair-specific* / *no better than a generic face prior* / *not shown*.  For each
  image the face is removed region by region (``grid`` x ``grid`` cells of the
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

Curves go to CSV and a PNG plot per metric; the table to JSON and Markdown.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError, NoFaceError
from core.evaluation import pairs_for
from core.explain.base import MAP_KINDS, FacePair, FaceView, get
from core.metrics import faithfulness
from core.metrics.pair_faithfulness import (
    ALPHA,
    GENERIC,
    MIN_OTHER_MAPS,
    NOT_SHOWN,
    PAIR_SPECIFIC,
    FaithfulnessSettings,
    check_pair,
)
from core.models.base import FaceModel
from core.progress import ProgressCallback
from core.verify import prepare_face

METRICS = ("deletion-insertion", "hiding-game", "pixel-elimination", "pair-specificity")
DEFAULT_REFERENCES = MIN_OTHER_MAPS  # the fewest for a pair-specific verdict


@dataclass
class FaithfulnessTable:
    data: str
    protocol: str
    metric: str
    pairs_used: int
    pairs_skipped: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def markdown(self) -> str:
        if not self.rows:
            return "(no rows)"
        columns = list(self.rows[0])
        lines = [
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for row in self.rows:
            cells = [
                f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def aligned_pairs(
    data: str | Path, model: FaceModel, seed: int, max_pairs: int | None
) -> tuple[list[tuple[np.ndarray, np.ndarray, bool]], list[FacePair], int, str]:
    """(probe chip, gallery chip, is_genuine) and FacePair per usable pair, the
    number of pairs left out (no face / unreadable) and the protocol name."""
    pairs, protocol = pairs_for(data, seed=seed, max_pairs=max_pairs)
    prepared: dict[Path, Any] = {}
    out, face_pairs, skipped = [], [], 0
    for pair in pairs:
        try:
            for path in (pair.first, pair.second):
                if path not in prepared:
                    # 68 landmarks: the components method needs them
                    prepared[path] = prepare_face(path, model, with_68=True)
        except (NoFaceError, BadInputError):
            skipped += 1
            continue
        first, second = prepared[pair.first], prepared[pair.second]
        out.append((first.aligned.chip, second.aligned.chip, pair.genuine))
        face_pairs.append(FacePair.from_prepared(first, second))
    return out, face_pairs, skipped, protocol


def evaluate_faithfulness(
    data: str | Path,
    model: FaceModel,
    methods: Sequence[str],
    metric: str,
    *,
    max_pairs: int | None = None,
    seed: int = 0,
    params: dict[str, dict[str, Any]] | None = None,
    random_orders: int = 3,
    steps: int = 20,
    references: int = DEFAULT_REFERENCES,
    pair_settings: FaithfulnessSettings | None = None,
    progress: ProgressCallback | None = None,
) -> FaithfulnessTable:
    """``random_orders`` and ``steps`` are deletion-insertion's; ``references`` and
    ``pair_settings`` (default: 30 random orders, seeded with ``seed``) are
    pair-specificity's (module docstring)."""
    if metric not in METRICS:
        raise BadInputError(f"unknown metric {metric!r} (one of: {', '.join(METRICS)})")
    if references < 0:
        raise BadInputError(f"--references needs 0 or more pairs, got {references}")
    explainers = {m: get(m) for m in methods}
    chips, face_pairs, skipped, protocol = aligned_pairs(data, model, seed, max_pairs)
    if not chips:
        raise BadInputError("no usable pair (no face found in any)", data)
    table = FaithfulnessTable(str(data), protocol, metric, len(chips), skipped)
    total = len(methods) * len(chips)
    done = 0
    for method_id, explainer in explainers.items():
        began = time.perf_counter()
        results = []
        for face_pair in face_pairs:
            results.append(
                explainer.explain(face_pair, model, (params or {}).get(method_id), seed)
            )
            done += 1
            if progress:
                progress(done, total, f"{method_id}: maps")
        explain_seconds = (time.perf_counter() - began) / len(face_pairs)
        began = time.perf_counter()
        if metric == "deletion-insertion":
            rows, curves = _deletion_insertion(
                model, chips, results, steps, random_orders, seed
            )
        elif metric == "pair-specificity":
            rows, curves = _pair_specificity(
                model,
                face_pairs,
                results,
                references,
                pair_settings or FaithfulnessSettings(seed=seed),
                seed,
            )
        else:
            maps = [r.probe.chip.similarity for r in results]
            if metric == "hiding-game":
                game = faithfulness.hiding_game(model, chips, maps)
                rows = [{"map": "similarity", "pairs": len(chips), "auc": game.auc}]
                curves = {
                    "similarity": {
                        "x": list(map(float, game.percentages)),
                        "accuracy": list(map(float, game.accuracies)),
                    }
                }
            else:
                elimination = faithfulness.pixel_elimination(
                    model, chips, maps, seed=seed
                )
                levels = list(map(float, elimination.levels))
                rows = [
                    {
                        "map": "similarity",
                        "pairs": len(chips),
                        "eer_saliency_mean": float(np.mean(elimination.saliency_eer)),
                        "eer_random_mean": float(np.mean(elimination.random_eer)),
                    }
                ]
                curves = {
                    "similarity": {
                        "x": levels,
                        "eer_saliency": list(map(float, elimination.saliency_eer)),
                        "eer_random": list(map(float, elimination.random_eer)),
                    }
                }
        metric_seconds = (time.perf_counter() - began) / len(face_pairs)
        for row in rows:
            table.rows.append(
                {
                    "method": method_id,
                    **row,
                    "s/pair explain": round(explain_seconds, 3),
                    "s/pair metric": round(metric_seconds, 3),
                }
            )
        for name, curve in curves.items():
            table.curves[f"{method_id}/{name}"] = curve
    return table


def _deletion_insertion(model, chips, results, steps, random_orders, seed):
    rows, curves = [], {}
    for kind, genuine in (("similarity", True), ("dissimilarity", False)):
        measured = []
        for (probe, gallery, is_genuine), result in zip(chips, results, strict=True):
            saliency = result.probe.chip_maps().get(kind)
            if is_genuine != genuine or saliency is None:
                continue
            reference = model.embed_chips(gallery[None])[0]
            measured.append(
                faithfulness.deletion_insertion(
                    model,
                    probe,
                    reference,
                    saliency,
                    kind=kind,
                    steps=steps,
                    random_orders=random_orders,
                    seed=seed,
                )
            )
        if not measured:
            continue
        better = sum(bool(m.better_than_random) for m in measured)
        rows.append(
            {
                "map": f"{kind} ({'genuine' if genuine else 'impostor'} pairs)",
                "pairs": len(measured),
                "deletion_auc": float(np.mean([m.deletion_auc for m in measured])),
                "random_deletion_auc": float(
                    np.mean([m.random_deletion_auc for m in measured])
                ),
                "insertion_auc": float(np.mean([m.insertion_auc for m in measured])),
                "random_insertion_auc": float(
                    np.mean([m.random_insertion_auc for m in measured])
                ),
                "better_than_random": f"{better}/{len(measured)}",
            }
        )
        curves[kind] = {
            "x": list(map(float, measured[0].fractions)),
            "deletion": list(np.mean([m.deletion_scores for m in measured], axis=0)),
            "insertion": list(np.mean([m.insertion_scores for m in measured], axis=0)),
            "random_deletion": list(
                np.mean([m.random_deletion_scores for m in measured], axis=0)
            ),
            "random_insertion": list(
                np.mean([m.random_insertion_scores for m in measured], axis=0)
            ),
        }
    return rows, curves


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


def _pair_specificity(model, face_pairs, results, count, settings, seed):
    checks = [
        check_pair(
            result,
            face_pair,
            model,
            reference_choice(face_pairs, index, count, seed),
            settings=settings,
        )
        for index, (face_pair, result) in enumerate(
            zip(face_pairs, results, strict=True)
        )
    ]
    rows, curves = [], {}
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
    return sum(math.comb(n, k) for k in range(above, n + 1)) / 2**n


def _mean_curve(curves) -> list[float]:
    return [float(v) for v in np.mean(np.array(list(curves)), axis=0)]


AXIS_LABELS = {
    "pair-specificity": (
        "fraction of the face removed (cells, in the map's order)",
        "decision margin",
    ),
    "deletion-insertion": ("fraction of pixels deleted / inserted", "similarity"),
    "hiding-game": ("least important pixels blurred (%)", "accuracy"),
    "pixel-elimination": (
        "saliency threshold (pixels above it removed)",
        "EER (genuine vs impostor)",
    ),
}


def write_outputs(table: FaithfulnessTable, out_dir: str | Path) -> dict[str, str]:
    """``table.json``, ``table.md``, one CSV per curve and a PNG plot per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"json": str(folder / "table.json"), "markdown": str(folder / "table.md")}
    (folder / "table.json").write_text(
        json.dumps(table.to_dict(), indent=2, default=float)
    )
    (folder / "table.md").write_text(table.markdown() + "\n")
    groups: dict[str, list[tuple[str, dict[str, list[float]]]]] = {}
    for name, curve in table.curves.items():
        stem = name.replace("/", "_")
        with open(folder / f"{stem}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            keys = list(curve)
            writer.writerow(keys)
            writer.writerows(zip(*(curve[k] for k in keys), strict=True))
        method, _, group = name.partition("/")
        groups.setdefault(group, []).append((method, curve))
    figure, axes = plt.subplots(
        len(groups), 1, figsize=(9, 3.6 * len(groups)), squeeze=False
    )
    for axis, (group, members) in zip(axes[:, 0], groups.items(), strict=True):
        for index, (method, curve) in enumerate(members):
            colour = f"C{index % 10}"
            for key in list(curve)[1:]:
                if key.startswith("random"):
                    if index == 0:  # the same pairs and orders for every method
                        axis.plot(curve["x"], curve[key], "k--", lw=1, label=key)
                    continue
                # pixel elimination's random control depends on each map (same
                # pixel count), so it is drawn per method, dashed in its colour
                style = ":" if key == "insertion" else "--" if "random" in key else "-"
                axis.plot(
                    curve["x"], curve[key], style, color=colour, label=f"{method} {key}"
                )
        axis.set_title(f"{table.metric}: {group} maps ({Path(table.data).name})")
        axis.set_xlabel(AXIS_LABELS[table.metric][0])
        axis.set_ylabel(AXIS_LABELS[table.metric][1])
        axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(folder / f"{table.metric}.png", dpi=110)
    plt.close(figure)
    files["plot"] = str(folder / f"{table.metric}.png")
    return files
