"""The correspondence figure: both faces side by side, the strongest region-to-region
links as numbered, coloured spot pairs joined by lines (numpy/cv2 only, no Qt).

Links are those of the ``correspondence`` method (``result.details["links"]``),
whose ``probe_xy`` / ``gallery_xy`` are chip pixel centres.  To draw on the
evidence images instead of the chips, convert the points first with
``links_on_images``.  A link that raises the score (supporting) is a filled spot;
one that lowers it (opposing) is a ring, so the figure stays readable in grey.
Links that share a region (several per cell on a coarse grid) have their spots
spread on a small circle around the region's centre.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from core.errors import BadInputError
from core.faces.align import ChipTransform

# Distinct colours (RGB) for the numbered links, repeated beyond ten.
LINK_COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


def link_colour(index: int) -> tuple[int, int, int]:
    """The colour of the ``index``-th link (0-based)."""
    return LINK_COLOURS[index % len(LINK_COLOURS)]


def links_on_images(
    links: Sequence[Mapping[str, Any]],
    probe_transform: ChipTransform,
    gallery_transform: ChipTransform,
) -> list[dict[str, Any]]:
    """The links with their points moved from chip pixels to evidence pixels."""
    moved = []
    for link in links:
        probe = probe_transform.to_image(np.asarray(link["probe_xy"], float))[0]
        gallery = gallery_transform.to_image(np.asarray(link["gallery_xy"], float))[0]
        moved.append(
            {**link, "probe_xy": probe.tolist(), "gallery_xy": gallery.tolist()}
        )
    return moved


def _as_rgb(image: np.ndarray, which: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(
            f"{which} image must be RGB uint8 (H, W, 3), got {image.dtype} array of "
            f"shape {image.shape}"
        )
    return image


def render_correspondence(
    probe_rgb: np.ndarray,
    gallery_rgb: np.ndarray,
    links: Sequence[Mapping[str, Any]],
    *,
    count: int | None = None,
    gap: int = 8,
) -> np.ndarray:
    """Probe (left) and gallery (right) with the first ``count`` links (all when
    None) drawn as numbered spot pairs joined by lines -> RGB uint8.

    Both images are scaled to the taller one's height (the link points with them);
    the result is ``(height, width_probe' + gap + width_gallery', 3)``.  A spot
    sits at its link's point unless several links share that point (then around it).
    """
    probe_rgb = _as_rgb(probe_rgb, "probe")
    gallery_rgb = _as_rgb(gallery_rgb, "gallery")
    if gap < 0:
        raise BadInputError(f"gap between the images must be >= 0, got {gap}")
    height = max(probe_rgb.shape[0], gallery_rgb.shape[0])
    scales = [height / image.shape[0] for image in (probe_rgb, gallery_rgb)]
    panels = [
        image
        if scale == 1
        else cv2.resize(
            image,
            (max(1, round(image.shape[1] * scale)), height),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        for image, scale in zip((probe_rgb, gallery_rgb), scales, strict=True)
    ]
    offset = panels[0].shape[1] + gap
    canvas = np.full((height, offset + panels[1].shape[1], 3), 255, np.uint8)
    canvas[:, : panels[0].shape[1]] = panels[0]
    canvas[:, offset:] = panels[1]

    shown = list(links if count is None else links[: max(0, count)])
    radius = max(3, round(height * 0.035))
    thickness = max(1, round(height / 200))
    font_scale = max(0.35, height / 400)
    points = []
    for link in shown:
        px, py = (float(v) * scales[0] for v in link["probe_xy"])
        gx, gy = (float(v) * scales[1] for v in link["gallery_xy"])
        points.append(((px, py), (gx + offset, gy)))
    points = _spread_shared_points(points, spacing=2.4 * radius)
    # lines first, spots and numbers on top of every line
    for index, (probe, gallery) in enumerate(points):
        cv2.line(canvas, probe, gallery, link_colour(index), thickness, cv2.LINE_AA)
    for index, ((probe, gallery), link) in enumerate(zip(points, shown, strict=True)):
        colour = link_colour(index)
        supporting = float(link.get("contribution", 1.0)) >= 0
        for centre in (probe, gallery):
            cv2.circle(canvas, centre, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            if supporting:
                cv2.circle(canvas, centre, radius, colour, -1, cv2.LINE_AA)
            else:  # a ring: lowers the score
                cv2.circle(
                    canvas, centre, radius, colour, max(2, radius // 3), cv2.LINE_AA
                )
            _label(canvas, str(link.get("rank", index + 1)), centre, radius, font_scale)
    return canvas


def _spread_shared_points(
    points: list[tuple[tuple[float, float], tuple[float, float]]], spacing: float
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Links that share a region (coarse grids: several links per cell) get their
    spots on a small circle around the region's centre, so none hides another."""
    spread = [[list(probe), list(gallery)] for probe, gallery in points]
    for side in (0, 1):
        groups: dict[tuple[int, int], list[int]] = {}
        for index, pair in enumerate(points):
            centre = pair[side]
            groups.setdefault((round(centre[0]), round(centre[1])), []).append(index)
        for members in groups.values():
            if len(members) < 2:
                continue
            # a circle whose chord between neighbours is ``spacing``
            ring = spacing / (2 * np.sin(np.pi / len(members)))
            for order, index in enumerate(members):
                angle = 2 * np.pi * order / len(members) - np.pi / 2
                spread[index][side][0] += ring * np.cos(angle)
                spread[index][side][1] += ring * np.sin(angle)
    return [((round(p[0]), round(p[1])), (round(g[0]), round(g[1]))) for p, g in spread]


def _label(
    canvas: np.ndarray,
    text: str,
    centre: tuple[int, int],
    radius: int,
    font_scale: float,
) -> None:
    """The link's number beside its spot, white on a dark outline."""
    origin = (centre[0] + radius + 2, centre[1] - radius - 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, text, origin, font, font_scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
