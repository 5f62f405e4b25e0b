"""A control, not an explanation: one fixed face-centre map for every pair.

Measured on LFW pairs (issue 16): a fixed blob in the middle of the aligned chip,
which knows nothing about either face, beats random deletion orders on 14 of 16
pairs, because the aligned chip puts eyes, nose and mouth in the middle and the
model needs them.  A per-pair faithfulness figure that this map passes cannot tell
an explanation of *this* pair from a generic "faces matter in the middle" prior, so
every map is also judged against this one (``core.metrics.pair_faithfulness``).
It is registered like a method so that every metric and table can run on it; it is
marked ``control`` and is never offered to the examiner as evidence by default.
"""

from __future__ import annotations

import numpy as np

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    float_param,
    register,
)

# Where the aligned chip puts the centre of the inner face, as fractions of its
# height and width (dlib's chips: between the eyes and the mouth, at the nose).
CENTRE_Y, CENTRE_X = 0.55, 0.5


def face_centre_prior(size: tuple[int, int], spread: float) -> np.ndarray:
    """A Gaussian blob of standard deviation ``spread`` x the chip side, peak 1."""
    height, width = size
    rows = (np.arange(height) + 0.5) / height - CENTRE_Y
    columns = (np.arange(width) + 0.5) / width - CENTRE_X
    squared = rows[:, None] ** 2 + columns[None, :] ** 2
    return np.exp(-squared / (2 * spread**2)).astype(np.float32)


@register
class FaceCentrePrior(Explainer):
    info = ExplainerInfo(
        method_id="prior",
        magnitude_only=True,
        legends=tuple(
            (
                kind,
                "top: the centre of a fixed face-centre blob (a control: it says "
                "nothing about this pair)",
                "bottom: the blob's edge",
            )
            for kind in ("similarity", "combined")
        ),
        map_units=(
            "none: a fixed face-centre blob from 0 to 1 (a control, not a measurement)"
        ),
        display_name="Face-centre prior (control)",
        reference="sanity-checks",  # core.references
        citation=(
            "Control map for faithfulness checks (issue 16); cf. J. Adebayo et al., "
            "Sanity Checks for Saliency Maps, NeurIPS 2018"
        ),
        description=(
            "A control, not evidence: the same bright blob in the middle of every "
            "face, whoever the two people are. Any map that does no better than "
            "this one on the faithfulness check says nothing about this pair in "
            "particular."
        ),
        kind="perturbation",
        has_dissimilarity=False,
        params=(
            Param(
                "spread",
                float,
                0.22,
                "Width of the blob as a fraction of the chip side",
                minimum=0.02,
                maximum=2.0,
            ),
        ),
        control=True,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        blob = face_centre_prior(
            ctx.model.input_size, float_param(ctx.params, "spread")
        )
        ctx.start(1)
        ctx.step(1, "prior")
        maps = ChipMaps(blob, None, blob.copy())
        return maps, ChipMaps(blob.copy(), None, blob.copy())
