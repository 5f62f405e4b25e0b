"""Overlay images: a map on the evidence image, with colour bar and legend.

Sequential maps (similarity, dissimilarity) use a blue-to-red scale from 0; signed
(combined) maps a diverging blue-white-red scale symmetric around 0.  For viewing
only, the map is smoothed with a small Gaussian (gradient maps are speckled at
pixel level; FGGB (Lu et al. 2024) blurs maps the same way before evaluating
them), the colour saturates at the 99th percentile of the magnitude, and opacity
grows with the magnitude so that the face stays visible where the map is near 0.  Pixels
the face chip does not cover are left uncoloured.  The .npy files keep the unsmoothed
maps.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.colours import colour_map  # the one mapping; reports import it from here
from core.explain.base import EvidenceMap, ExplainerInfo

MAX_SIDE = 2048  # overlays are for viewing; the .npy files keep full resolution
LEGENDS = {
    "similarity": "red = region supports 'same person' (0 = no support)",
    "dissimilarity": "red = region speaks against 'same person' (0 = not at all)",
    "combined": "red = supports 'same person', blue = speaks against, white = neutral",
}


def render_overlay(
    image_rgb: np.ndarray,
    evidence_map: EvidenceMap,
    kind: str,
    title: str,
    alpha: float = 0.6,
    *,
    info: ExplainerInfo | None = None,
) -> np.ndarray:
    """The evidence image with the map blended in, a colour bar and a legend
    (``info``: the method, whose maps may be magnitudes or have own legends)."""
    values = evidence_map.full()
    # Display smoothing: 2 % of the width of the area the chip covers.
    sigma = display_sigma(evidence_map.values)
    values = smooth_covered(values, sigma)
    scale = min(1.0, MAX_SIDE / max(image_rgb.shape[:2]))
    if scale < 1.0:
        size = (round(image_rgb.shape[1] * scale), round(image_rgb.shape[0] * scale))
        image_rgb = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        values = cv2.resize(values, size, interpolation=cv2.INTER_LINEAR)
    # a magnitude-only method's maps are sizes: never drawn as for / against
    signed = info.draws_signed(kind) if info is not None else kind == "combined"
    colours, low, high = colour_map(values, signed)
    span = max(abs(low), abs(high)) or 1.0
    strength = np.clip(np.abs(np.nan_to_num(values)) / span, 0, 1)[..., None]
    opacity = alpha * (0.15 + 0.85 * strength)  # a faint tint shows what is covered
    blended = image_rgb.astype(np.float32) * (1 - opacity) + colours * opacity
    covered = np.isfinite(values)[..., None]
    canvas = np.where(covered, blended, image_rgb).astype(np.uint8)
    _outline(canvas, np.isfinite(values))
    notes = [
        f"display: smoothed (sigma {sigma:.1f} px); colours saturate at the 99th "
        "percentile"
    ]
    if scale < 1.0:
        notes.append(f"shown at {scale:.0%} of the evidence resolution")
    legend = LEGENDS[kind]
    if info is not None and (info.magnitude_only or info.legends):
        legend = "; ".join(info.legend(kind))
    return _frame(canvas, low, high, signed, title, [legend, *notes])


def display_sigma(values: np.ndarray) -> float:
    """Display smoothing: 2 % of the width of the area a map covers.

    Pixel-level gradient maps are speckled; an examiner reads regions, so overlays
    (PNG and GUI) are smoothed, while stored arrays stay raw.
    """
    return 0.02 * max(1.0, float(values.shape[1]))


def smooth_covered(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing inside the covered area (NaN outside stays NaN)."""
    covered = np.isfinite(values)
    if sigma < 0.5 or not covered.any():
        return values
    filled = np.where(covered, values, 0).astype(np.float32)
    weight = covered.astype(np.float32)
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), sigmaX=sigma)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = blur(filled) / blur(weight)
    return np.where(covered, smoothed, np.nan).astype(np.float32)


def _outline(canvas: np.ndarray, covered: np.ndarray) -> None:
    """Thin outline of the area the face chip covers."""
    contours, _ = cv2.findContours(
        covered.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    thickness = max(1, round(max(canvas.shape[:2]) / 800))
    cv2.drawContours(canvas, contours, -1, (255, 255, 255), thickness)


def _frame(
    canvas: np.ndarray,
    low: float,
    high: float,
    signed: bool,
    title: str,
    notes: list[str],
) -> np.ndarray:
    height, width = canvas.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_scale = max(0.45, min(1.0, width / 1400))
    tick_scale = text_scale * 0.8
    line = int(30 * text_scale) + 6
    header_lines = [_ascii(text) for text in (title, *notes)]
    header = line * len(header_lines) + 10
    top, bottom = header + 10, header + max(60, int(height * 0.6))
    ticks = [(top, high), (bottom - 1, low)]
    if signed:
        ticks.append(((top + bottom) // 2, 0.0))
    labels = [(y, f"{value:.3g}") for y, value in ticks]

    def text_width(text: str, scale: float) -> int:
        return cv2.getTextSize(text, font, scale, 1)[0][0]

    # wide enough for the longest tick label and header line: nothing is clipped
    bar_width = 10 + 20 + 4 + max(text_width(t, tick_scale) for _, t in labels) + 8
    total_width = max(
        width + bar_width, 16 + max(text_width(t, text_scale) for t in header_lines)
    )
    out = np.full((height + header, total_width, 3), 255, np.uint8)
    out[header:, :width] = canvas
    for number, text in enumerate(header_lines):
        cv2.putText(
            out,
            text,
            (8, line * (number + 1)),
            font,
            text_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    # colour bar: top = high, bottom = low
    ramp = np.linspace(high, low, bottom - top)[:, None].repeat(20, axis=1)
    colours, _, _ = colour_map(ramp, signed, peak=max(abs(low), abs(high)))
    x0 = width + 10
    out[top:bottom, x0 : x0 + 20] = colours
    cv2.rectangle(out, (x0, top), (x0 + 19, bottom - 1), (0, 0, 0), 1)
    for y, label in labels:
        cv2.putText(
            out, label, (x0 + 24, y + 5), font, tick_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    return text.encode("ascii", "replace").decode("ascii")
