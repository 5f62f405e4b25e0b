"""Data-set faithfulness metrics of ``xfr eval faithfulness``: one module each.

Every metric is a module with ``measure(run: MetricRun) -> MetricRows``: the rows
(one dict per map kind, JSON-ready) and the mean curves of one method's maps over
all pairs of the data set.  The table below names each metric, what it measures
and which module holds it; it imports neither numpy nor torch, so the command
line can offer the metric ids without loading the science.  Adding a metric means
adding its module and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from core.explain.base import ExplanationResult, FacePair
    from core.metrics.pair_faithfulness import FaithfulnessSettings
    from core.models.base import FaceModel

Rows = list[dict[str, Any]]
Curves = dict[str, dict[str, list[float]]]
MetricRows = tuple[Rows, Curves]


@dataclass(frozen=True)
class MetricInfo:
    metric_id: str
    description: str
    module: str  # holds ``measure``
    axis_labels: tuple[str, str]  # the curves' x and y, for the plot


@dataclass(frozen=True)
class MetricRun:
    """One method's maps on every usable pair of a data set, and the settings."""

    model: FaceModel
    chips: Sequence[tuple[np.ndarray, np.ndarray, bool]]  # probe, gallery, genuine
    face_pairs: Sequence[FacePair]
    results: Sequence[ExplanationResult]  # the method's result per pair
    seed: int
    steps: int  # deletion-insertion's curve points
    random_orders: int  # deletion-insertion's random orders
    references: int  # pair-specificity's other pairs per pair
    pair_settings: FaithfulnessSettings  # pair-specificity's check


DataSetMetric = Callable[[MetricRun], MetricRows]

_PACKAGE = __name__

METRICS: dict[str, MetricInfo] = {
    info.metric_id: info
    for info in (
        MetricInfo(
            "deletion-insertion",
            "Lu et al. 2024, §IV-B: deletion and insertion AUCs against random orders",
            f"{_PACKAGE}.deletion_insertion",
            ("fraction of pixels deleted / inserted", "similarity"),
        ),
        MetricInfo(
            "hiding-game",
            "Xu et al. 2023, §IV-B: accuracy as the least important pixels are blurred",
            f"{_PACKAGE}.hiding_game",
            ("least important pixels blurred (%)", "accuracy"),
        ),
        MetricInfo(
            "pixel-elimination",
            "Alonso-Fernandez et al. 2023, §IV-E: EER with the most salient pixels "
            "removed",
            f"{_PACKAGE}.pixel_elimination",
            (
                "saliency threshold (pixels above it removed)",
                "EER (genuine vs impostor)",
            ),
        ),
        MetricInfo(
            "pair-specificity",
            "the per-pair verdict (core.metrics.pair_faithfulness) over a data set",
            f"{_PACKAGE}.pair_specificity",
            (
                "fraction of the face removed (cells, in the map's order)",
                "decision margin",
            ),
        ),
    )
}


def metric_ids() -> list[str]:
    return list(METRICS)


def load(metric_id: str) -> DataSetMetric:
    """The ``measure`` function of a registered metric (its module imported now)."""
    measure: DataSetMetric = importlib.import_module(METRICS[metric_id].module).measure
    return measure
