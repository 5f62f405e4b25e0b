"""Deletion / insertion (Lu et al. 2024, §IV-B) over a data set: similarity maps on
genuine pairs, dissimilarity maps on impostor pairs (methods without a
dissimilarity map are skipped there), mean AUCs over pairs, against random orders.
"""

from __future__ import annotations

import numpy as np

from core.errors import BadInputError
from core.metrics import faithfulness
from core.metrics.data_set import Curves, MetricRows, MetricRun, Rows


def measure(run: MetricRun) -> MetricRows:
    if run.random_orders < 1:  # the table compares every map with random orders
        raise BadInputError(
            f"deletion-insertion needs 1 or more random orders, got {run.random_orders}"
        )
    rows: Rows = []
    curves: Curves = {}
    for kind, genuine in (("similarity", True), ("dissimilarity", False)):
        measured = []
        for (probe, gallery, is_genuine), result in zip(
            run.chips, run.results, strict=True
        ):
            saliency = result.probe.chip_maps().get(kind)
            if is_genuine != genuine or saliency is None:
                continue
            reference = run.model.embed_chips(gallery[None])[0]
            measured.append(
                faithfulness.deletion_insertion(
                    run.model,
                    probe,
                    reference,
                    saliency,
                    kind=kind,
                    steps=run.steps,
                    random_orders=run.random_orders,
                    seed=run.seed,
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
        }
        for key in ("random_deletion", "random_insertion"):  # random_orders >= 1
            curves[kind][key] = list(
                np.mean([getattr(m, f"{key}_scores") for m in measured], axis=0)
            )
    return rows, curves
