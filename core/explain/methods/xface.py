"""xFace occlusion maps (Knoche, Teepe, Hörmann & Rigoll, WACV 2023 workshops).

Systematic occlusion as in the authors' ``MapGenerator``: square black patches of
7, 14 and 28 pixels slid with a stride of 5 pixels over both images; for each
occluded copy the cosine distance is recomputed; the deviation from the original
distance, divided by the patch area, is painted on the occluded region and averaged
over positions; each patch size's map is blurred with a Gaussian (kernel and sigma
= stride) and the patch sizes are averaged.

Variants (the authors' methods): ``1`` compares every occluded copy of one image with
every occluded copy of the other (the authors' default), ``2`` with the unoccluded
other image, ``3`` occludes both images at the same place.

Sign: occluding a region that the match relies on raises the distance, so positive
values form the similarity map and negative values (occlusion makes the faces look
more alike) the dissimilarity map.  Adaptation: the patch sizes are in chip pixels;
the authors used 112-pixel ArcFace chips, dlib's chip is 150 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    int_param,
    int_tuple_param,
    register,
)
from core.explain.perturb import blend


def occlusion_positions(
    size: tuple[int, int], patch: int, stride: int
) -> list[tuple[int, int]]:
    height, width = size
    return [
        (y, x)
        for y in range(0, max(1, height - patch), stride)
        for x in range(0, max(1, width - patch), stride)
    ]


def occlusion_keep(
    positions: list[tuple[int, int]], patch: int, size: tuple[int, int]
) -> torch.Tensor:
    keep = torch.ones((len(positions), *size), dtype=torch.float32, device="cpu")
    for index, (y, x) in enumerate(positions):
        keep[index, y : y + patch, x : x + patch] = 0.0
    return keep


def _unit(embeddings: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(embeddings.double(), dim=1)


@register
class XFace(Explainer):
    info = ExplainerInfo(
        method_id="xface",
        map_units=(
            "change of the cosine distance when the region is hidden, per "
            "hidden pixel (similarity: the distance rises)"
        ),
        display_name="xFace (systematic occlusion)",
        reference="xface",  # core.references
        citation=(
            "M. Knoche, T. Teepe, S. Hörmann, G. Rigoll, Explainable Model-Agnostic "
            "Similarity and Confidence in Face Verification, WACV Workshops 2023"
        ),
        description=(
            "Slides small black squares of three sizes over each face and measures "
            "how the distance between the faces changes. Where hiding a region "
            "makes the faces look less alike, that region supports the match "
            "(similarity map); where hiding it makes them look more alike, it "
            "speaks against the match (dissimilarity map)."
        ),
        kind="perturbation",
        has_dissimilarity=True,
        params=(
            Param(
                "patch_sizes",
                tuple,
                (7, 14, 28),
                "occluding square sizes (pixels)",
                minimum=1,
                maximum=512,
            ),
            Param(
                "stride",
                int,
                5,
                "step between occlusion positions (pixels)",
                minimum=1,
                maximum=256,
            ),
            Param(
                "variant",
                str,
                "1",
                "1: occluded vs all occluded copies of the other image; 2: vs the "
                "unoccluded other image; 3: both occluded at the same place",
                choices=("1", "2", "3"),
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        size = ctx.model.input_size
        stride = int_param(ctx.params, "stride")
        patches = list(int_tuple_param(ctx.params, "patch_sizes"))
        plans = [(p, occlusion_positions(size, p, stride)) for p in patches]
        ctx.start(2 * sum(len(positions) for _, positions in plans))
        original = 1.0 - float(
            _unit(torch.stack(ctx.embeddings).cpu())[0]
            @ _unit(torch.stack(ctx.embeddings).cpu())[1]
        )
        black = ctx.black_input()
        per_side: list[list[np.ndarray]] = [[], []]
        for patch, positions in plans:
            keep = occlusion_keep(positions, patch, size)
            occluded = [
                _unit(
                    ctx.embed_batches(
                        len(keep),
                        lambda a, b, x=ctx.inputs[side], k=keep: blend(
                            x, black, k[a:b]
                        ),
                        f"{ctx.pair.sides[side].side}, {patch}-pixel patches",
                    )
                )
                for side in (0, 1)
            ]
            distances = self._distances(ctx, occluded)
            for side in (0, 1):
                deviation = (distances[side] - original) / patch**2
                painted = torch.einsum("n,nhw->hw", deviation.float(), 1.0 - keep)
                painted = (painted / len(keep)).cpu().numpy()
                kernel = stride if stride % 2 else stride + 1
                per_side[side].append(
                    cv2.GaussianBlur(painted, (kernel, kernel), stride)
                )
        return (
            ChipMaps.from_signed(np.mean(per_side[0], axis=0)),
            ChipMaps.from_signed(np.mean(per_side[1], axis=0)),
        )

    @staticmethod
    def _distances(
        ctx: ExplainContext, occluded: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        variant = ctx.params["variant"]
        if variant == "1":
            distances = 1.0 - occluded[0] @ occluded[1].T
            return distances.mean(1), distances.mean(0)
        if variant == "2":
            unoccluded = _unit(torch.stack(ctx.embeddings).cpu())
            return 1.0 - occluded[0] @ unoccluded[1], 1.0 - occluded[1] @ unoccluded[0]
        paired = 1.0 - (occluded[0] * occluded[1]).sum(1)
        return paired, paired
