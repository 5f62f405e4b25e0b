"""Pixel elimination (Alonso-Fernandez et al. 2023, §IV-E) over a data set: the EER
when the most salient pixels are removed vs the same number of random pixels."""

from __future__ import annotations

import numpy as np

from core.metrics import faithfulness
from core.metrics.data_set import MetricRows, MetricRun


def measure(run: MetricRun) -> MetricRows:
    maps = [result.probe.chip.similarity for result in run.results]
    elimination = faithfulness.pixel_elimination(
        run.model, run.chips, maps, seed=run.seed
    )
    rows = [
        {
            "map": "similarity",
            "pairs": len(run.chips),
            "eer_saliency_mean": float(np.mean(elimination.saliency_eer)),
            "eer_random_mean": float(np.mean(elimination.random_eer)),
        }
    ]
    curves = {
        "similarity": {
            "x": list(map(float, elimination.levels)),
            "eer_saliency": list(map(float, elimination.saliency_eer)),
            "eer_random": list(map(float, elimination.random_eer)),
        }
    }
    return rows, curves
