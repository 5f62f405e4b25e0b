"""Correspondence: which region of the probe matches which region of the gallery.

A second-order decomposition of the pair's cosine similarity over both images'
spatial features (point-to-point decomposition of Zhu, Yang & Chen, "Visual
explanation for deep metric learning", 2019, Sec. 3; the same construction as
BiLRP, Eberle et al., TPAMI 2022, with gradient x activation as the first-order
explanation of each embedding dimension).

At a layer with a grid of ``n = h * w`` positions, each embedding dimension ``k`` is
split over the positions by gradient x activation::

    c_k(i) = sum_channels f_i * d a_k / d f_i        (a = the embedding)

and the score over pairs of positions (i in the probe, j in the gallery)::

    R(i, j) = sum_k c_k(i; A) c_k(j; B) / (|a| |b|)

``sum_ij R(i, j) = <sum_i c(i; A), sum_j c(j; B)> / (|a| |b|)``, which is the
cosine exactly whenever ``sum_i c(i) = a``.  That holds when the layer is followed
by a global average pool and a linear layer without bias - dlib's ResNet at its
last block (``fc_no_bias(mean_i f_i)``: ``c(i) = W f_i / n``, Zhu et al.'s exact
decomposition).  At an earlier layer, or for a model with a bias or normalisation
after the pool, the parts do not add up to the embedding; the difference is
reported as the residual (never hidden or rescaled away).  For dlib at its
second-last stage (4x4) the parts add up to only 0.57 of a cosine of 0.88, at the
8x8 stage to 0.11: such a "decomposition" would misattribute most of the score.
So the generic path (any model, any layer) is accepted only while the residual is
at most ``max_residual`` (default 0.01 in cosine units); beyond that the run is
refused with a ``BadInputError`` naming the model, the layer and the residual.  An
examiner may raise the limit on purpose; the result then says "approximate".

Flip-averaging models (``embed = (phi(x) + phi(mirror x)) / 2``): both passes are
decomposed; the mirrored pass's grid is mirrored back so that a position means the
same part of the chip, and the two halves are averaged as ``embed`` does.  The sum
stays exact.

Models without a layer tap that has a spatial grid are refused too (there are no
regions to link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import BadInputError
from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    float_param,
    int_param,
    optional_str_param,
    register,
    str_param,
)
from core.explain.layers import tap_shapes
from core.models.base import FaceModel

# |sum of the matrix - model cosine| at or below this: the decomposition is exact
# (float32 network, sums in float64).
EXACT_TOLERANCE = 1e-5
# The full matrix goes into the details only up to this many entries (a 8x8 grid).
MATRIX_DETAIL_LIMIT = 4096
# At most this many regions per face (a 64x64 grid): the matrix has the square.
MAX_REGIONS = 4096
LINK_SIGNS = ("both", "supporting", "opposing")


def correspondence_layer(model: FaceModel, name: str | None) -> tuple[str, int, int]:
    """The layer to decompose at and its grid (h, w); default: the deepest tap with
    a spatial grid (the one the pool and the embedding layer follow)."""
    shapes = tap_shapes(model)
    spatial = [shape for shape in shapes if shape.size is not None]
    if not spatial:
        raise BadInputError(
            f"correspondence needs a layer with a spatial grid (a convolutional "
            f"feature map); model {model.model_id} has none among its layer taps"
        )
    if name is None:
        chosen = spatial[-1]
    else:
        matches = [shape for shape in shapes if shape.name == name]
        if not matches:
            known = ", ".join(shape.name for shape in shapes)
            raise BadInputError(
                f"model {model.model_id} has no layer '{name}' ({known})"
            )
        if matches[0].size is None:
            raise BadInputError(
                f"layer {name} of model {model.model_id} has no spatial grid; "
                "choose a convolutional layer (see 'xfr layers')"
            )
        chosen = matches[0]
    assert chosen.size is not None
    rows, cols = chosen.size
    if rows * cols > MAX_REGIONS:
        raise BadInputError(
            f"layer {chosen.name} of model {model.model_id} has a {rows}x{cols} grid; "
            f"correspondence links at most {MAX_REGIONS} regions per face (choose a "
            "deeper layer)"
        )
    return chosen.name, rows, cols


def _pass_contributions(
    ctx: ExplainContext, batch: torch.Tensor, layer: str, message: str
) -> torch.Tensor:
    """c_k(i) for one network pass: (D, h, w), gradient x activation per position."""
    model = ctx.model
    with torch.enable_grad(), model.capture([layer]) as captured:
        # one pass, no flip-averaging: the captured map belongs to this view
        embedding = model._forward(batch).reshape(-1)
        features = captured[layer]
        if features.ndim != 4 or features.shape[0] != 1:
            raise BadInputError(
                f"layer {layer} of model {model.model_id} gave an output of shape "
                f"{tuple(features.shape)}, not one (1, C, h, w) feature map"
            )
        rows = []
        for k in range(embedding.shape[0]):
            (gradient,) = torch.autograd.grad(
                embedding[k], features, retain_graph=k + 1 < embedding.shape[0]
            )
            rows.append((gradient[0] * features[0]).sum(dim=0).detach())
            ctx.step(1, message)
    return torch.stack(rows)


def position_contributions(ctx: ExplainContext, side: int, layer: str) -> torch.Tensor:
    """Each grid position's part of this side's embedding, (D, h, w), float64."""
    batch = ctx.inputs[side]
    message = f"{ctx.pair.sides[side].side}: splitting the descriptor over regions"
    contributions = _pass_contributions(ctx, batch, layer, message).double()
    if ctx.model.preprocessing.flip_average:
        # the mirrored pass: mirror its grid back so that a position is the same
        # part of the chip, then average the two passes as ``embed`` does
        mirrored = _pass_contributions(ctx, batch.flip(-1), layer, message).double()
        contributions = 0.5 * (contributions + mirrored.flip(-1))
    return contributions


@dataclass(frozen=True)
class Decomposition:
    """R and what is derived from it; marginals and total in float64 straight from
    the contributions (sum_j R(i, j) = <c(i; A), sum_j c(j; B)> / (|a| |b|))."""

    matrix: torch.Tensor  # (n_probe, n_gallery), float32 when large
    probe_totals: torch.Tensor  # (n_probe,) row sums, float64
    gallery_totals: torch.Tensor  # (n_gallery,) column sums, float64
    total: float
    probe_parts: torch.Tensor  # (D, h, w)
    gallery_parts: torch.Tensor


def decompose(ctx: ExplainContext, layer: str) -> Decomposition:
    """Both sides' contributions and R (the score over region pairs)."""
    probe = position_contributions(ctx, 0, layer)
    gallery = position_contributions(ctx, 1, layer)
    scale = ctx.embeddings[0].double().norm() * ctx.embeddings[1].double().norm()
    depth = probe.shape[0]
    flat_probe = probe.reshape(depth, -1)
    flat_gallery = gallery.reshape(depth, -1)
    probe_totals = flat_probe.T @ flat_gallery.sum(1) / scale.to(probe.device)
    gallery_totals = flat_gallery.T @ flat_probe.sum(1) / scale.to(probe.device)
    small = flat_probe.shape[1] * flat_gallery.shape[1] <= MATRIX_DETAIL_LIMIT
    kind = torch.float64 if small else torch.float32  # large: for ranking links
    matrix = (flat_probe.T.to(kind) @ flat_gallery.to(kind)) / scale.to(kind)
    return Decomposition(
        matrix,
        probe_totals,
        gallery_totals,
        float(probe_totals.sum()),
        probe,
        gallery,
    )


def cell_centre(index: int, grid: tuple[int, int], size: tuple[int, int]) -> list:
    """Chip pixel centre (x, y) of grid cell ``index`` (row-major)."""
    rows, cols = grid
    height, width = size
    row, col = divmod(index, cols)
    return [(col + 0.5) * width / cols, (row + 0.5) * height / rows]


def strongest_links(
    matrix: np.ndarray,
    total: float,
    grid_probe: tuple[int, int],
    grid_gallery: tuple[int, int],
    size: tuple[int, int],
    count: int,
    sign: str,
) -> list[dict[str, Any]]:
    """The ``count`` largest entries of R (by magnitude, or the largest positive /
    most negative ones) as JSON-ready links; ``share`` = contribution / total."""
    flat = matrix.ravel()
    if sign == "supporting":
        order = np.argsort(-flat, kind="stable")
        order = order[flat[order] > 0]
    elif sign == "opposing":
        order = np.argsort(flat, kind="stable")
        order = order[flat[order] < 0]
    else:
        order = np.argsort(-np.abs(flat), kind="stable")
    links = []
    for rank, index in enumerate(order[:count], start=1):
        probe_index, gallery_index = divmod(int(index), matrix.shape[1])
        contribution = float(flat[index])
        links.append(
            {
                "rank": rank,
                "probe_cell": list(divmod(probe_index, grid_probe[1])),
                "gallery_cell": list(divmod(gallery_index, grid_gallery[1])),
                "probe_xy": cell_centre(probe_index, grid_probe, size),
                "gallery_xy": cell_centre(gallery_index, grid_gallery, size),
                "contribution": contribution,
                "share": contribution / total if abs(total) > 1e-12 else None,
            }
        )
    return links


def _upsample(grid_map: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    # Bilinear, as for Grad-CAM: each cell covers its share of the chip.
    upsampled = F.interpolate(
        grid_map[None, None].float(), size=size, mode="bilinear", align_corners=False
    )
    return upsampled[0, 0].cpu().numpy()


@register
class Correspondence(Explainer):
    info = ExplainerInfo(
        method_id="correspondence",
        map_units=(
            "share of the cosine similarity: each region's part of the score "
            "(the parts add up to it)"
        ),
        display_name="Correspondence (region-to-region links)",
        reference="metric-learning-explanation",  # core.references
        citation=(
            "S. Zhu, T. Yang, C. Chen, Visual Explanation for Deep Metric Learning, "
            "arXiv:1909.12977 (2019; IEEE TIP 2021); O. Eberle et al., Building and "
            "Interpreting Deep Similarity Models (BiLRP), IEEE TPAMI 2022"
        ),
        description=(
            "Splits the similarity score into pieces, one for every pair of a "
            "region in the probe and a region in the gallery, so that it shows "
            "which part of one face the model matched with which part of the other. "
            "The numbered links join the region pairs that contribute most; the "
            "maps show how much each region contributes in total (similarity: "
            "raises the score, dissimilarity: lowers it). For the default model at "
            "its last layer the pieces add up exactly to the score (the difference "
            "is reported). The regions are coarse (a 2x2 grid for the default "
            "model), and what the network holds at a region is computed from a "
            "wider part of the face than the region itself."
        ),
        kind="gradient",
        has_dissimilarity=True,
        uses_layer=True,
        params=(
            Param(
                "layer",
                str,
                None,
                "layer tap to decompose at (see 'xfr layers'); empty = the deepest "
                "layer with a spatial grid, where the decomposition is exact for "
                "models that average that grid and apply a linear layer",
                optional=True,
            ),
            Param(
                "max_residual",
                float,
                0.01,
                "largest accepted difference between the sum of all region-pair "
                "contributions and the model's cosine similarity; a layer or model "
                "where the parts do not add up closer than this is refused",
                minimum=0.0,
                maximum=2.0,
            ),
            Param(
                "links",
                int,
                10,
                "how many of the strongest region-to-region links to list",
                minimum=1,
                maximum=1000,
            ),
            Param(
                "link_sign",
                str,
                "both",
                "which links to list: both (largest in size), supporting (raise "
                "the score) or opposing (lower it)",
                choices=LINK_SIGNS,
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        layer, rows, cols = correspondence_layer(
            ctx.model, optional_str_param(ctx.params, "layer")
        )
        passes = 2 if ctx.model.preprocessing.flip_average else 1
        ctx.start(2 * passes * ctx.embeddings[0].numel())
        parts = decompose(ctx, layer)
        grid = (rows, cols)
        height, width = ctx.model.input_size
        size = (height, width)
        total = parts.total
        residual = total - ctx.similarity
        exact = abs(residual) <= EXACT_TOLERANCE
        limit = float_param(ctx.params, "max_residual")
        if abs(residual) > limit:
            raise BadInputError(
                f"correspondence at layer {layer} of model {ctx.model.model_id}: the "
                f"region-pair contributions add up to {total:.4f} but the cosine "
                f"similarity is {ctx.similarity:.4f} (residual {residual:+.4f}, more "
                f"than max_residual {limit:g}); the layers after {layer} are not an "
                "average followed by a linear layer, so the score cannot be split "
                "over region pairs faithfully there (use the deepest spatial layer)"
            )
        matrix_np = parts.matrix.cpu().numpy()
        # marginals: each probe region's part of the score (row sums), each gallery
        # region's (column sums); they add up to the same total
        probe_map = _upsample(parts.probe_totals.reshape(grid), size)
        gallery_map = _upsample(parts.gallery_totals.reshape(grid), size)
        details: dict[str, Any] = {
            "score": "cosine similarity of the two descriptors",
            "layer": layer,
            "grid": [rows, cols],
            "cell_size_px": [size[1] / cols, size[0] / rows],
            "model_score": ctx.similarity,
            "decomposition_total": total,
            "residual": residual,
            "exact": exact,
            "exact_tolerance": EXACT_TOLERANCE,
            "flip_averaged": bool(ctx.model.preprocessing.flip_average),
            "embedding_reconstruction_error": {
                side.side: _reconstruction_error(side_parts, ctx.embeddings[index])
                for index, (side, side_parts) in enumerate(
                    zip(
                        ctx.pair.sides,
                        (parts.probe_parts, parts.gallery_parts),
                        strict=True,
                    )
                )
            },
            "links": strongest_links(
                matrix_np,
                total,
                grid,
                grid,
                size,
                int_param(ctx.params, "links"),
                str_param(ctx.params, "link_sign"),
            ),
        }
        if matrix_np.size <= MATRIX_DETAIL_LIMIT:
            details["matrix"] = matrix_np.tolist()  # rows: probe cells, row-major
        ctx.details.update(details)
        ctx.notes.append(f"layer: {layer} ({rows}x{cols} regions)")
        if exact:
            ctx.notes.append(
                f"the {matrix_np.size} region-pair contributions add up to "
                f"{total:.6f}, the model's cosine similarity is "
                f"{ctx.similarity:.6f}: the decomposition is exact"
            )
        else:
            ctx.notes.append(
                f"approximate: the {matrix_np.size} region-pair contributions add up "
                f"to {total:.6f} while the model's cosine similarity is "
                f"{ctx.similarity:.6f} (difference {residual:+.6f}); the layers after "
                f"{layer} are not a plain average and linear layer, so part of the "
                "score is not attributed to any region pair"
            )
        return ChipMaps.from_signed(probe_map), ChipMaps.from_signed(gallery_map)


def _reconstruction_error(parts: torch.Tensor, embedding: torch.Tensor) -> float:
    """|sum_i c(i) - a| / |a|: 0 when the positions' parts make up the embedding."""
    embedding = embedding.double().to(parts.device)
    rebuilt = parts.sum(dim=(1, 2))
    return float((rebuilt - embedding).norm() / embedding.norm())
