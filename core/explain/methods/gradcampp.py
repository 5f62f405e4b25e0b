"""Grad-CAM++ (Chattopadhyay et al., WACV 2018) on a layer tap of the face model.

As ``gradcam`` but with the pixel-wise weighting of Grad-CAM++ (higher-order terms
from the exponential-score formulation), which localises several regions better.
"""

from __future__ import annotations

from core.explain.base import ExplainerInfo, register
from core.explain.methods.gradcam import LAYER_PARAM, GradCAM


@register
class GradCAMPlusPlus(GradCAM):
    plus_plus = True
    info = ExplainerInfo(
        method_id="gradcampp",
        map_units=(
            "relative: layer activations weighted by the cosine similarity's "
            "gradient (no physical unit)"
        ),
        display_name="Grad-CAM++",
        reference="gradcampp",  # core.references
        citation=(
            "A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian, "
            "Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
            "Convolutional Networks, WACV 2018"
        ),
        description=(
            "A refinement of Grad-CAM that gives each position of the layer its own "
            "weight, so that several separate regions (for example both eyes) can "
            "show up instead of one blob. Read like Grad-CAM."
        ),
        kind="gradient",
        has_dissimilarity=True,
        uses_layer=True,
        params=(LAYER_PARAM,),
        # 2: default layer stage2.block3 for dlib (was stage4.block2, off the face);
        # the denominator guard scales with the gradients (was a fixed 1e-7)
        algorithm_version=2,
    )
