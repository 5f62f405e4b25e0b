"""The examiner's comparison views of two aligned faces (issue 19, item 3): side by
side, superimposition, a wipe and flicker, with a nearest-neighbour magnifier.

Both faces are aligned on one eye line (dlib's five-point alignment, the same
geometry as the model's chip, at a resolution for the eye) so that the views
compare like with like.  These are viewing aids for the examiner's morphological
comparison: nothing here measures a distance or a ratio, because photo-
anthropometry is not to be used as evidence (ASTM E3149; FISWG).
"""

from __future__ import annotations

import numpy as np

MODES = ("side by side", "superimposition", "wipe (vertical)", "wipe (horizontal)")
ALIGNED_SIZE = 300  # px: the aligned faces the views are made of
MAX_MAGNIFICATION = 8


def compose(
    probe: np.ndarray, gallery: np.ndarray, mode: str, amount: float = 0.5
) -> np.ndarray:
    """One RGB picture of two aligned faces of the same size.

    ``amount`` (0..1): the gallery's opacity over the probe (superimposition), or
    where the wipe line lies (the probe left of / above it, the gallery beyond).
    """
    if probe.shape != gallery.shape or probe.ndim != 3 or probe.shape[2] != 3:
        raise ValueError(
            f"two aligned RGB faces of one size are needed, got {probe.shape} "
            f"and {gallery.shape}"
        )
    amount = float(np.clip(amount, 0.0, 1.0))
    if mode == "side by side":
        gap = np.full((probe.shape[0], 4, 3), 255, np.uint8)
        return np.ascontiguousarray(np.hstack([probe, gap, gallery]))
    if mode == "superimposition":
        mixed = probe.astype(np.float32) * (1 - amount) + gallery * amount
        return np.round(mixed).astype(np.uint8)
    if mode in ("wipe (vertical)", "wipe (horizontal)"):
        out = probe.copy()
        if mode == "wipe (vertical)":
            split = round(amount * probe.shape[1])
            out[:, split:] = gallery[:, split:]
            out[:, max(0, split - 1) : split + 1] = (255, 255, 0)  # the wipe line
        else:
            split = round(amount * probe.shape[0])
            out[split:] = gallery[split:]
            out[max(0, split - 1) : split + 1] = (255, 255, 0)
        return out
    raise ValueError(f"unknown view {mode!r} (use one of: {', '.join(MODES)})")


def magnify(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Enlarged by repeating each pixel (nearest neighbour: no interpolation adds
    detail that is not in the image), with a grid between pixels from 4x."""
    factor = int(np.clip(factor, 1, MAX_MAGNIFICATION))
    out = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    if factor >= 4:
        out = out.copy()
        out[::factor] = (out[::factor] * 0.6).astype(np.uint8)
        out[:, ::factor] = (out[:, ::factor] * 0.6).astype(np.uint8)
    return np.ascontiguousarray(out)
