"""The hiding game (Xu et al. 2023, §IV-B) over a data set: verification accuracy
as the least important pixels of the probe are blurred, and its AUC."""

from __future__ import annotations

from core.metrics import faithfulness
from core.metrics.data_set import MetricRows, MetricRun


def measure(run: MetricRun) -> MetricRows:
    maps = [result.probe.chip.similarity for result in run.results]
    game = faithfulness.hiding_game(run.model, run.chips, maps)
    rows = [{"map": "similarity", "pairs": len(run.chips), "auc": game.auc}]
    curves = {
        "similarity": {
            "x": list(map(float, game.percentages)),
            "accuracy": list(map(float, game.accuracies)),
        }
    }
    return rows, curves
