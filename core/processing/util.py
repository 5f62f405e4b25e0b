"""Shared pinned rules of the operations: rounding back to 8 bits, the look-up
table path for per-value curves, typed parameter reads."""

from __future__ import annotations

import numpy as np


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floating-point pixels back to 8 bits: rounded half to even (``numpy.rint``),
    then clipped to 0..255 - the one rounding rule of every operation."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def apply_lut(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map every value through a 256-entry table (one table for all channels, or a
    256x3 table, one column per channel)."""
    table = to_uint8(np.asarray(lut, dtype=np.float64))
    if table.ndim == 1:
        return table[rgb]
    return np.stack([table[:, c][rgb[..., c]] for c in range(3)], axis=-1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) in float64, 0..255."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
