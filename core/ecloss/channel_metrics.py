"""Channel part-explainability measures of ECLoss (Lin, Liu, Li and Shen 2023),
§3.3 and §5.2: plain numbers on arrays, no model and no files.

For each face (an aligned chip with its 68 landmarks) and each channel ``x`` of the
layer's feature maps (after the layer's ReLU when the tap has one):

* eqs. 8-9, the top-10 % area: ``x`` is resized to the chip (bilinear), the
  threshold ``t`` is the largest value with at least 10 % of the pixels at or above
  it, and ``x̂ = x`` where ``x ≥ t``, 0 elsewhere;
* eq. 10, ``IoU(Mask_k, x)`` of that area with each face part ``k``
  (:mod:`core.ecloss.parts`);
* part explainability (§5.2.2): ``PE_I = E_x[max_k IoU(Mask_k, x)]`` per face,
  averaged over the faces;
* location consistency (§5.2.3): per channel ``i``, ``A_ik`` is the share of faces
  whose best part ``k̂ = argmax_k IoU`` is ``k``;
  ``S_i = sqrt(Σ_k (A_ik - 1/|K|)²) / |K|``; ``LS = E_i[S_i]``.  ``S_i`` is 0 when
  a channel picks every part equally often and ``sqrt(|K|-1)/|K|^1.5`` (0.132 for
  seven parts) when it always picks the same part;
* activation robustness (§5.2.4): the number of peaks of the feature map, counted by
  topographic (contour) prominence: a peak's prominence is its height above the
  highest contour (col) that encloses it and a higher peak; computed exactly by
  merging the map's superlevel sets from the top (union-find, 8-neighbourhood).

**Our choices** where the paper is silent (recorded in every report):

* a channel with no positive activation on a face has an empty area (IoU 0 with
  every part, counted in PE as 0) and 0 peaks; ties at ``t`` are kept, but pixels
  ``≤ 0`` are never part of the area;
* LS uses, per channel, only the faces where the channel's area touches some part
  (``max_k IoU > 0``); channels that never do are left out of LS and reported as
  ``dead``;
* a peak counts when its prominence is at least ``min_prominence`` (default 10 %)
  of the map's maximum; the highest peak counts whenever the map has any positive
  value; prominence is measured on the layer's own grid (not the upsampled map).

How the measures are run over a set of faces, with their uncertainty, is
:mod:`core.ecloss.channel_analysis`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.ecloss.parts import PARTS

TOP_FRACTION = 0.1  # §3.3: top 10 %
MIN_PROMINENCE = 0.1  # our choice: × map maximum

PLAIN_EXPLANATIONS = {
    "PE": "Part explainability: how well a channel's strongest 10 % matches one "
    "face part (0 = no overlap with any part, 1 = exactly one part). Higher = "
    "channels are easier to name.",
    "LS": "Location consistency: whether a channel lands on the same face part "
    "from face to face (0 = any part, 0.132 = always the same part). Higher = "
    "channels are more dependable.",
    "AR": "Activation robustness: the average number of separate activation peaks "
    "per channel. Fewer (one or two) = each channel looks at one place.",
}


# ---- eqs. 8-9: the top-10 % area -----------------------------------------------------
def upsample(maps: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(C, h, w)`` feature maps -> ``(C, H, W)`` float32, bilinear (§3.3)."""
    tensor = torch.as_tensor(np.asarray(maps) if isinstance(maps, np.ndarray) else maps)
    tensor = tensor.detach().float()
    if tensor.dim() != 3:
        raise ValueError(f"expected (C, h, w) maps, got {tuple(tensor.shape)}")
    return torch.nn.functional.interpolate(
        tensor[None], size=size, mode="bilinear", align_corners=False
    )[0]


def top_threshold(values: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """Eq. 9 per map: the largest ``t`` with ``P(x ≥ t) ≥ fraction``.

    ``values`` is ``(C, H, W)``; returns ``(C,)``: the ``⌈fraction·H·W⌉``-th largest
    value of each map.
    """
    flat = values.reshape(values.shape[0], -1)
    count = max(1, math.ceil(fraction * flat.shape[1] - 1e-9))
    return torch.topk(flat, count, dim=1).values[:, -1]


def top_area(
    maps: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    fraction: float = TOP_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 8: ``(x̂, area)`` at chip resolution for ``(C, h, w)`` maps.

    ``x̂`` keeps the values at or above the eq. 9 threshold (and above 0), ``area``
    is where it is non-zero.
    """
    values = upsample(maps, size)
    threshold = top_threshold(values, fraction)
    area = (values >= threshold[:, None, None]) & (values > 0)
    kept = torch.where(area, values, torch.zeros_like(values))
    return kept.numpy(), area.numpy()


# ---- eq. 10 and the metrics ----------------------------------------------------------
def part_iou(areas: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Eq. 10: ``IoU`` of each channel's area ``(C, H, W)`` with each part mask
    ``(K, H, W)`` -> ``(C, K)``; 0 where the union is empty."""
    a = areas.reshape(areas.shape[0], -1).astype(np.float32)
    m = masks.reshape(masks.shape[0], -1).astype(np.float32)
    inter = a @ m.T
    union = a.sum(1)[:, None] + m.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def face_part_explainability(iou: np.ndarray) -> float:
    """§5.2.2: ``PE_I = E_x[max_k IoU(Mask_k, x)]`` for one face (``iou``: (C, K))."""
    return float(iou.max(axis=1).mean())


def best_parts(iou: np.ndarray) -> np.ndarray:
    """``k̂ = argmax_k IoU`` per channel; -1 where the area touches no part."""
    best = iou.argmax(axis=1)
    return np.where(iou.max(axis=1) > 0, best, -1)


def channel_consistency(
    best: np.ndarray, parts: int = len(PARTS)
) -> tuple[np.ndarray, np.ndarray]:
    """§5.2.3 per channel from ``best`` ``(faces, C)`` (-1 = none).

    Returns ``(A, S)``: ``A`` ``(C, K)`` the share of faces per part (rows of channels
    that never touch a part are NaN) and ``S`` ``(C,)`` (NaN for those channels).
    """
    channels = best.shape[1]
    counts = np.zeros((channels, parts))
    for k in range(parts):
        counts[:, k] = (best == k).sum(axis=0)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, counts / np.maximum(total, 1), np.nan)
    spread = np.sqrt(((shares - 1.0 / parts) ** 2).sum(axis=1)) / parts
    return shares, spread


def location_consistency(best: np.ndarray, parts: int = len(PARTS)) -> float:
    """``LS = E_i[S_i]`` over the channels that touch a part at least once."""
    _, spread = channel_consistency(best, parts)
    valid = np.isfinite(spread)
    return float(spread[valid].mean()) if valid.any() else 0.0


def peak_prominences(values: np.ndarray) -> np.ndarray:
    """Topographic prominence of every local maximum of a 2-D map (8-neighbourhood).

    Pixels are added from the highest down; a pixel touching no added pixel starts
    a peak; where two areas meet, the one with the lower peak ends, its prominence
    being its peak height minus the current level (the highest col between it and a
    higher peak).  The highest peak's prominence is its height minus the map's
    minimum.  Returns the prominences, highest peak first.
    """
    grid = np.asarray(values, np.float64)
    if grid.ndim != 2:
        raise ValueError("peak prominence needs a 2-D map")
    height, width = grid.shape
    flat = grid.ravel()
    order = np.argsort(-flat, kind="stable")
    parent = np.full(flat.size, -1, np.int64)
    peak_height: dict[int, float] = {}
    prominences: list[float] = []

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for pixel in order:
        pixel = int(pixel)
        level = flat[pixel]
        row, col = divmod(pixel, width)
        roots = set()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                if (dr or dc) and 0 <= r < height and 0 <= c < width:
                    neighbour = r * width + c
                    if parent[neighbour] >= 0:
                        roots.add(find(neighbour))
        if not roots:
            parent[pixel] = pixel
            peak_height[pixel] = level
            continue
        ranked = sorted(roots, key=lambda root: -peak_height[root])
        survivor = ranked[0]
        for loser in ranked[1:]:
            prominences.append(peak_height[loser] - level)
            parent[loser] = survivor
            del peak_height[loser]
        parent[pixel] = survivor
    lowest = float(flat.min())
    for root in peak_height:
        prominences.append(peak_height[root] - lowest)
    return np.sort(np.asarray(prominences))[::-1]


def count_peaks(values: np.ndarray, min_prominence: float = MIN_PROMINENCE) -> int:
    """§5.2.4: peaks whose prominence is at least ``min_prominence`` × the maximum.

    A map without positive values has no peak; otherwise the highest peak counts.
    """
    grid = np.asarray(values, np.float64)
    top = float(grid.max()) if grid.size else 0.0
    if top <= 0:
        return 0
    prominences = peak_prominences(grid)
    return max(1, int((prominences[1:] >= min_prominence * top).sum()) + 1)
