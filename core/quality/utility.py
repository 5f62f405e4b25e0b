"""The model's own utility proxy: the embedding's length before normalisation.

Some face models (trained with a magnitude-aware loss such as MagFace) give longer
embeddings to faces they can use better; for others the length means little, and
a model that normalises its own output gives every face length 1.  The figure is
therefore model-specific, has no threshold in the summary, and is reported as not
available when no model was given or the model normalises its output itself.
"""

from __future__ import annotations

import numpy as np

from core.quality.base import ComputedMeasure, FaceInput, register

UNIT_NORM_TOLERANCE = 1e-3  # an embedding this close to length 1 was normalised


def embedding_norm(face: FaceInput) -> tuple[float | None, str]:
    if face.embedding is None:
        return None, "no face model was given (xfr case quality --model measures it)"
    norm = float(np.linalg.norm(np.asarray(face.embedding, float)))
    if abs(norm - 1.0) < UNIT_NORM_TOLERANCE:
        return None, "the model normalises its embeddings itself, so every length is 1"
    return norm, "model-specific: compare only between faces embedded by one model"


EMBEDDING_NORM = register(
    ComputedMeasure(
        id="embedding_norm",
        name="embedding length (model utility proxy)",
        definition="L2 norm of the model's embedding of the face before it is "
        "normalised for comparison",
        unit="model-specific",
        better="higher",
        compute=embedding_norm,
    )
)
