"""Helpers shared by the perturbation-family explainers."""

from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import slic

from core.explain.base import ExplainContext


def blend(x: torch.Tensor, fill: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``keep`` (n, H, W) in [0, 1]: 1 keeps the input, 0 replaces it with ``fill``."""
    return fill + keep[:, None].to(x.device, x.dtype) * (x - fill)


def superpixels(chip: np.ndarray, count: int) -> tuple[np.ndarray, str | None]:
    """SLIC superpixels (Achanta et al.) of an RGB chip, labels 0..n-1.

    On strong pixel noise (a grainy CCTV still) SLIC's connectivity step can merge
    everything into a handful of regions, which would make any region-based map
    flat.  When it finds fewer than a quarter of the requested regions we use a
    regular grid of about ``count`` cells instead and say so (second value).
    """
    labels = slic(chip, n_segments=count, compactness=10.0, start_label=0)
    _, dense = np.unique(labels, return_inverse=True)  # no gaps in the numbering
    found = int(dense.max()) + 1
    if found >= max(2, count // 4):
        return dense.reshape(labels.shape).astype(np.int64), None
    grid = grid_segments(chip.shape[:2], count)
    return grid, (
        f"SLIC found only {found} region(s) in the noisy chip; used a regular grid "
        f"of {int(grid.max()) + 1} cells instead"
    )


def grid_segments(size: tuple[int, int], count: int) -> np.ndarray:
    """Labels of a regular grid with about ``count`` near-square cells."""
    height, width = size
    rows = max(1, round(np.sqrt(count * height / width)))
    columns = max(1, round(count / rows))
    row_of = np.minimum(np.arange(height) * rows // height, rows - 1)
    column_of = np.minimum(np.arange(width) * columns // width, columns - 1)
    return (row_of[:, None] * columns + column_of[None, :]).astype(np.int64)


def lime_kernel_weights(samples: np.ndarray, width: float) -> np.ndarray:
    """LIME's weights: exponential kernel on the cosine distance to "all on"."""
    norms = np.linalg.norm(samples, axis=1) * np.sqrt(samples.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = samples.sum(axis=1) / norms
    distance = 1.0 - np.nan_to_num(cosine, nan=0.0)
    return np.sqrt(np.exp(-(distance**2) / width**2))


def weighted_ridge(
    features: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float
) -> np.ndarray:
    """Coefficients of a weighted ridge regression with intercept.

    ``targets`` may have several columns (one surrogate per column, same design).
    Same solution as scikit-learn's ``Ridge(alpha).fit(X, y, sample_weight=w)``.
    """
    total = weights.sum()
    feature_mean = weights @ features / total
    target_mean = weights @ targets / total
    centred = features - feature_mean
    weighted = centred * weights[:, None]
    gram = weighted.T @ centred + alpha * np.eye(features.shape[1])
    return np.linalg.solve(gram, weighted.T @ (targets - target_mean))


def gaussian_smooth(array: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return array.astype(np.float32)
    return cv2.GaussianBlur(
        array.astype(np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT
    )


def scale_01(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.zeros_like(array, np.float32)
    return ((array - low) / (high - low)).astype(np.float32)


def score_masks(
    ctx: ExplainContext, side: int, keep: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """Cosine similarity to ``reference`` of the input with ``keep`` masks applied."""
    x, black = ctx.inputs[side], ctx.black_input()
    return ctx.scores(
        side, len(keep), lambda a, b: blend(x, black, keep[a:b]), reference
    )
