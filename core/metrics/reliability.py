"""Per-pair reliability of a map: Deletion/Insertion for the very pair in the case.

For each image of the pair, the pixels of its aligned chip are removed (deletion) or
put back (insertion) in the order of the map, and the similarity to the other
image's embedding is recomputed (paper 000, §IV-B); the same is done in random
orders.  A map faithful to the model beats random on both curves.  Similarity maps
are judged on the similarity map; for a method without one the combined map is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.explain.base import ExplanationResult, FacePair, eval_mode
from core.metrics.faithfulness import DeletionInsertion, deletion_insertion
from core.models.base import FaceModel

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class PairReliability:
    method_id: str
    kind: str
    sides: dict[str, DeletionInsertion]  # "probe" / "gallery"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method_id,
            "kind": self.kind,
            "sides": {side: r.to_dict() for side, r in self.sides.items()},
        }


def pair_reliability(
    result: ExplanationResult,
    pair: FacePair,
    model: FaceModel,
    *,
    kind: str = "similarity",
    steps: int = 20,
    random_orders: int = 3,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PairReliability:
    """Deletion/Insertion of ``result``'s ``kind`` map on both images of ``pair``."""
    chips = np.stack([view.chip for view in pair.sides])
    with eval_mode(model):
        embeddings = model.embed_chips(chips)
    sides = {}
    for index, (view, maps) in enumerate(zip(pair.sides, result.images, strict=True)):
        saliency = maps.chip_maps().get(kind)
        if saliency is None:
            continue  # this method defines no map of this kind
        sides[view.side] = deletion_insertion(
            model,
            view.chip,
            embeddings[1 - index],
            saliency,
            steps=steps,
            random_orders=random_orders,
            seed=seed,
            kind=kind,
            progress=(
                None
                if progress is None
                else lambda done, total, message, side=view.side: progress(
                    done, total, f"{side}: {message}"
                )
            ),
            cancel=cancel,
        )
    return PairReliability(result.method_id, kind, sides)


def reliability_sentence(curves: DeletionInsertion, side: str) -> str:
    """The figures in plain words (better: lower deletion, higher insertion AUC)."""
    text = (
        f"{side}: deletion AUC {curves.deletion_auc:.3f} (red), insertion AUC "
        f"{curves.insertion_auc:.3f} (blue)"
    )
    if curves.random_deletion_auc is not None:
        text += (
            f"; random order {curves.random_deletion_auc:.3f} / "
            f"{curves.random_insertion_auc:.3f} (dashed). "
            + (
                "Better than chance for this pair."
                if curves.better_than_random
                else "NOT better than chance for this pair: read the map with caution."
            )
        )
    return text
