"""Shared pinned rules of the operations: rounding back to 8 bits, the look-up
table path for per-value curves, typed parameter reads."""

from __future__ import annotations

import numpy as np


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floating-point pixels back to 8 bits: rounded half to even (``numpy.rint``),
    then clipped to 0..255 - the one rounding rule of every operation."""
    out: np.ndarray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return out


def apply_lut(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map every value through a 256-entry table (one table for all channels, or a
    256x3 table, one column per channel)."""
    table = to_uint8(np.asarray(lut, dtype=np.float64))
    if table.ndim == 1:
        mapped: np.ndarray = table[rgb]
        return mapped
    return np.stack([table[:, c][rgb[..., c]] for c in range(3)], axis=-1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) in float64, 0..255, summed
    element by element in that order (a matrix product may go through BLAS, whose
    summation order - and so the last bit - can differ between machines)."""
    image = rgb.astype(np.float64)
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


# ---- exact integer luma and rounding (ops-a) ----------------------------------------
# Luma weights as whole numbers over a denominator, so a weighted sum of 8-bit values
# is computed exactly in integers and rounded half to even without any floating-point
# (or BLAS) rounding deciding a tie: the same bytes on every machine.
LUMA_WEIGHTS: dict[str, tuple[tuple[int, int, int], int]] = {
    "bt601": ((299, 587, 114), 1000),  # ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B
    "bt709": ((2126, 7152, 722), 10000),  # ITU-R BT.709: 0.2126 R + 0.7152 G + 0.0722 B
    "average": ((1, 1, 1), 3),  # (R + G + B) / 3
}


def weighted_sum_int(rgb: np.ndarray, weights: tuple[int, int, int]) -> np.ndarray:
    """``w0 R + w1 G + w2 B`` per pixel, exactly, in int64."""
    pixels = rgb.astype(np.int64)
    return (
        weights[0] * pixels[..., 0]
        + weights[1] * pixels[..., 1]
        + weights[2] * pixels[..., 2]
    )


def divide_round_half_even(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """``numerator / denominator`` rounded half to even, exactly (non-negative
    whole numbers, int64 in and out)."""
    quotient, remainder = np.divmod(numerator, denominator)
    twice = 2 * remainder
    up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    rounded: np.ndarray = quotient + up
    return rounded


def luma_exact(rgb: np.ndarray, weights: str = "bt601") -> np.ndarray:
    """The luma of ``LUMA_WEIGHTS[weights]`` in float64: the exact integer sum
    divided once (correctly rounded), so it does not depend on the BLAS library."""
    coefficients, denominator = LUMA_WEIGHTS[weights]
    return weighted_sum_int(rgb, coefficients) / float(denominator)


def per_channel_lut(
    numerators: np.ndarray, denominators: np.ndarray | None = None
) -> np.ndarray:
    """A 256x3 table ``value * numerator / denominator`` per channel (float64,
    multiplied first and divided once, so a whole-number ratio that lands exactly
    half-way stays half-way; ``apply_lut`` rounds half to even and clips)."""
    values = np.arange(256, dtype=np.float64)[:, None]
    table = values * np.asarray(numerators, dtype=np.float64)[None, :]
    if denominators is not None:
        table = table / np.asarray(denominators, dtype=np.float64)[None, :]
    return table
