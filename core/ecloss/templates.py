"""Activation templates of Lin et al. 2023, §3.1 (eqs. 2-4) and the subsample of §4.2.

A template is an ``h × w`` map with the size of the target layer's feature maps:

* one peak at ``(i, j)`` (eq. 2)::

      T(i,j)[u, v] = τ · max(1 - ‖(u, v) - (i, j)‖₂ / r, -1)

* the negative template ``T⁻ = -τ`` everywhere (no peak);
* two peaks, the element-wise maximum of two one-peak templates (eq. 3); the set
  ``T₂`` of eq. 4 runs over every pair of peak positions.

``T = T₁ ∪ T₂ ∪ {T⁻}``.  §4.2 takes "400 templates evenly from the original template
set" to keep the loss cheap; the paper does not say how the original set is ordered,
so **our choice** (documented here and recorded in every model card) is:

* the original set ``T_ori`` is ordered one-peak templates first (peaks in row-major
  order), then the two-peak templates of every *unordered pair of distinct* peaks
  (``a < b`` in row-major numbering, lexicographic) - the ordered pairs of eq. 4
  repeat each template twice and the pairs ``a = b`` repeat the one-peak templates,
  which would only re-weight the uniform prior - and the negative template last;
* "evenly" is ``count`` indices evenly spaced over that order, first and last
  included (so the negative template is always kept).  A map with
  ``|T_ori| <= count`` (e.g. 4×4: 16 + 120 + 1 = 137) keeps every template.

Parameters: §4.2 uses ``τ = 0.001`` and ``r = 4`` on 14×14 maps.  ``τ`` is the
paper's value by default; the radius defaults to the paper's 4 scaled to the map
(``r = 4 · min(h, w) / 14``, exactly 4 on the paper's 14×14 maps), **our choice** so
that a peak covers the same fraction of the face on smaller maps; pass
``radius=4`` for the literal value.  Coordinates are 0-based array indices
``(row, column)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAPER_TAU = 0.001  # §4.2
PAPER_RADIUS = 4.0  # §4.2, on the paper's 14×14 maps
PAPER_MAP_SIZE = 14  # VGG's last convolutional layer on 224×224 input (§4.2)
PAPER_TEMPLATE_COUNT = 400  # §4.2

KIND_NEGATIVE = 0
KIND_ONE_PEAK = 1
KIND_TWO_PEAK = 2


def default_radius(size: tuple[int, int]) -> float:
    """The paper's ``r = 4`` on 14×14 maps, scaled to a map of ``size`` (our choice)."""
    return PAPER_RADIUS * min(size) / PAPER_MAP_SIZE


def _distance_grid(size: tuple[int, int], peak: tuple[int, int]) -> np.ndarray:
    rows, cols = np.meshgrid(
        np.arange(size[0], dtype=np.float64),
        np.arange(size[1], dtype=np.float64),
        indexing="ij",
    )
    return np.hypot(rows - peak[0], cols - peak[1])


def one_peak_template(
    size: tuple[int, int], peak: tuple[int, int], tau: float, radius: float
) -> np.ndarray:
    """Eq. 2: ``τ · max(1 - ‖(u, v) - (i, j)‖₂ / r, -1)`` for a peak at ``(i, j)``."""
    _check(size, tau, radius)
    if not (0 <= peak[0] < size[0] and 0 <= peak[1] < size[1]):
        raise ValueError(f"peak {peak} outside a {size[0]}×{size[1]} map")
    values = tau * np.maximum(1.0 - _distance_grid(size, peak) / radius, -1.0)
    return values.astype(np.float32)


def negative_template(size: tuple[int, int], tau: float) -> np.ndarray:
    """``T⁻``: ``-τ`` at every position (a map without any activation peak)."""
    _check(size, tau, 1.0)
    return np.full(size, -tau, np.float32)


def two_peak_template(
    size: tuple[int, int],
    first: tuple[int, int],
    second: tuple[int, int],
    tau: float,
    radius: float,
) -> np.ndarray:
    """Eq. 3: the element-wise maximum of the two one-peak templates."""
    return np.maximum(
        one_peak_template(size, first, tau, radius),
        one_peak_template(size, second, tau, radius),
    )


def full_template_count(size: tuple[int, int]) -> int:
    """``|T_ori|``: ``n`` one-peak + ``n(n-1)/2`` two-peak + 1 negative (n = h·w)."""
    positions = size[0] * size[1]
    return positions + positions * (positions - 1) // 2 + 1


def _pair_from_rank(rank: int, positions: int) -> tuple[int, int]:
    """The ``rank``-th unordered pair ``(a, b)``, ``a < b``, in lexicographic order."""
    # Pairs starting with a: positions-1-a of them; find a by walking (n is small).
    a = 0
    while rank >= positions - 1 - a:
        rank -= positions - 1 - a
        a += 1
    return a, a + 1 + rank


def template_spec(index: int, size: tuple[int, int]) -> tuple[int, tuple[int, ...]]:
    """(kind, peak positions as flat row-major indices) of ``T_ori[index]``."""
    positions = size[0] * size[1]
    total = full_template_count(size)
    if not 0 <= index < total:
        raise IndexError(f"template {index} of {total}")
    if index < positions:
        return KIND_ONE_PEAK, (index,)
    if index == total - 1:
        return KIND_NEGATIVE, ()
    return KIND_TWO_PEAK, _pair_from_rank(index - positions, positions)


def subsample_indices(total: int, count: int) -> np.ndarray:
    """``count`` indices evenly spaced over ``0 .. total-1`` (all when fewer)."""
    if count < 1:
        raise ValueError("at least one template is needed")
    if total <= count:
        return np.arange(total)
    return np.unique(np.round(np.linspace(0, total - 1, count)).astype(np.int64))


@dataclass(frozen=True)
class TemplateSet:
    """The activation templates ``T`` used by ECLoss for one feature-map size."""

    templates: np.ndarray = field(repr=False)  # (K, h, w) float32
    kinds: np.ndarray = field(repr=False)  # (K,) KIND_*
    peaks: tuple[tuple[tuple[int, int], ...], ...] = field(repr=False)
    size: tuple[int, int]
    tau: float
    radius: float
    full_count: int  # |T_ori| before the §4.2 subsample

    def __len__(self) -> int:
        return len(self.templates)

    def counts(self) -> dict[str, int]:
        return {
            "one_peak": int((self.kinds == KIND_ONE_PEAK).sum()),
            "two_peak": int((self.kinds == KIND_TWO_PEAK).sum()),
            "negative": int((self.kinds == KIND_NEGATIVE).sum()),
        }

    def describe(self) -> dict[str, Any]:
        """What a model card records about the templates."""
        return {
            "size": list(self.size),
            "tau": self.tau,
            "radius": self.radius,
            "count": len(self),
            "full_count": self.full_count,
            **self.counts(),
            "subsample": "evenly spaced over T_ori = one-peak, two-peak, negative",
        }


def activation_templates(
    size: tuple[int, int],
    *,
    tau: float = PAPER_TAU,
    radius: float | None = None,
    count: int = PAPER_TEMPLATE_COUNT,
) -> TemplateSet:
    """``T`` for feature maps of ``size``: §3.1's set, subsampled to ``count`` (§4.2).

    ``radius=None`` is the paper's ``r = 4`` scaled to the map (see the module doc).
    """
    size = (int(size[0]), int(size[1]))
    radius = default_radius(size) if radius is None else float(radius)
    _check(size, tau, radius)
    total = full_template_count(size)
    chosen = subsample_indices(total, count)
    width = size[1]
    templates, kinds, peaks = [], [], []
    for index in chosen:
        kind, flat = template_spec(int(index), size)
        points = tuple((p // width, p % width) for p in flat)
        if kind == KIND_NEGATIVE:
            templates.append(negative_template(size, tau))
        elif kind == KIND_ONE_PEAK:
            templates.append(one_peak_template(size, points[0], tau, radius))
        else:
            templates.append(two_peak_template(size, points[0], points[1], tau, radius))
        kinds.append(kind)
        peaks.append(points)
    return TemplateSet(
        np.stack(templates).astype(np.float32),
        np.asarray(kinds, np.int8),
        tuple(peaks),
        size,
        float(tau),
        radius,
        total,
    )


def _check(size: tuple[int, int], tau: float, radius: float) -> None:
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"template size must be positive, got {size}")
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError("τ must be a positive number (§3.1)")
    if not (radius > 0 and math.isfinite(radius)):
        raise ValueError("r must be a positive number (§3.1)")
