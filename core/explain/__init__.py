"""Saliency explanations of face-verification decisions (no Qt).

``get(method_id).explain(pair, model, params, seed, progress, cancel)`` returns an
``ExplanationResult``; ``infos()`` lists the registered methods.
"""

from core.explain.base import (
    MAP_KINDS,
    ChipMaps,
    EvidenceMap,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    ExplanationResult,
    FacePair,
    FaceView,
    ImageMaps,
    Param,
    get,
    infos,
    method_ids,
    register,
)

__all__ = [
    "MAP_KINDS",
    "ChipMaps",
    "EvidenceMap",
    "ExplainContext",
    "Explainer",
    "ExplainerInfo",
    "ExplanationResult",
    "FacePair",
    "FaceView",
    "ImageMaps",
    "Param",
    "get",
    "infos",
    "method_ids",
    "register",
]
