"""Face image quality: descriptive measures per face (issue 20 item 3).

``assess(FaceInput(...))`` gives every registered measure of one face (each a
figure with a definition and a unit, in the spirit of ISO/IEC 29794-5) and a
plain-words summary (good / limited / poor, and why) from documented conventions.
"""

from __future__ import annotations

from core.quality.base import (
    FaceInput,
    QualityMeasure,
    QualityValue,
    all_measures,
    check_face_input,
    describe,
    get,
    register,
)
from core.quality.summary import (
    THRESHOLDS,
    FaceQuality,
    QualitySummary,
    QualityThreshold,
    assess,
    figure_text,
    rate,
    summarise,
)

__all__ = [
    "THRESHOLDS",
    "FaceInput",
    "FaceQuality",
    "QualityMeasure",
    "QualitySummary",
    "QualityThreshold",
    "QualityValue",
    "all_measures",
    "assess",
    "check_face_input",
    "describe",
    "figure_text",
    "get",
    "rate",
    "register",
    "summarise",
]
