"""Grad-CAM (Selvaraju et al., ICCV 2017) on a layer tap of the face model.

Target: the pair's cosine similarity (the other image's embedding held fixed).
Similarity map: ReLU(sum_c alpha_c A_c) with alpha_c the spatially averaged gradient;
dissimilarity map: the same for the negated score.  Maps are upsampled bilinearly
from the layer's grid to the chip.  Default layer: the one measured for the model
(dlib: stage2.block3, 17x17, where the map's mass is most on the face; see
``benchmarks/gradcam_layer.py``), else the deepest tap with at least 4x4 positions
(``core.explain.layers.default_cam_layer``).
"""

from __future__ import annotations

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    optional_str_param,
    register,
)
from core.explain.cam import activations_and_gradients, cam_maps
from core.explain.layers import spatial_layer

LAYER_PARAM = Param(
    "layer",
    str,
    None,
    "layer tap to explain (see 'xfr layers'); empty = the layer measured for the "
    "model (dlib: stage2.block3), else the deepest layer with at least 4x4 "
    "positions",
    optional=True,
)


@register
class GradCAM(Explainer):
    plus_plus = False
    info = ExplainerInfo(
        method_id="gradcam",
        map_units=(
            "relative: layer activations weighted by the cosine similarity's "
            "gradient (no physical unit)"
        ),
        display_name="Grad-CAM",
        reference="gradcam",  # core.references
        citation=(
            "R. R. Selvaraju et al., Grad-CAM: Visual Explanations from Deep "
            "Networks via Gradient-based Localization, ICCV 2017"
        ),
        description=(
            "Looks inside the network at one layer, where each position corresponds "
            "to a patch of the face, and weighs that layer's detectors by how much "
            "they push the similarity score up (similarity map) or down "
            "(dissimilarity map). Coarse, but robust; the layer can be chosen."
        ),
        kind="gradient",
        has_dissimilarity=True,
        uses_layer=True,
        params=(LAYER_PARAM,),
        # 2: default layer stage2.block3 for dlib (was stage4.block2, off the face)
        algorithm_version=2,
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        layer = spatial_layer(ctx.model, optional_str_param(ctx.params, "layer"))
        ctx.notes.append(f"layer: {layer}")
        ctx.start(2)
        maps = []
        for side in (0, 1):
            activation, gradient = activations_and_gradients(ctx, side, [layer])[layer]
            maps.append(
                cam_maps(activation, gradient, ctx.model.input_size, self.plus_plus)
            )
            ctx.step(1)
        return maps[0], maps[1]
