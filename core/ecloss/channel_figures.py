"""Pictures and files of a channel analysis: a channel's top-10 % area over its face,
the part masks (Fig. 7 of ECLoss, Lin, Liu, Li and Shen 2023), a grid of every
channel, and the folder ``xfr channels --out`` writes (summary, table, PNGs).

These only draw what :class:`core.ecloss.channel_analysis.ChannelReport` holds; no
model is run here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from core.ecloss.channel_analysis import ChannelReport
from core.ecloss.parts import PARTS
from core.errors import BadInputError
from core.explain.render import colour_map

PART_COLOURS = np.array(
    [
        [140, 70, 20],  # hair
        [240, 220, 0],  # forehead
        [255, 128, 0],  # cheek
        [30, 60, 255],  # eyes
        [0, 200, 60],  # nose
        [230, 0, 0],  # mouth
        [220, 0, 220],  # jaw
    ],
    np.float32,
)


def overlay_top_area(chip: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The chip with ``x̂`` (eq. 8) as a heatmap; the rest of the face dimmed."""
    base = chip.astype(np.float32) * 0.55
    peak = float(kept.max())
    if peak <= 0:
        return base.astype(np.uint8)
    strength = (kept / peak)[..., None]
    # the sequential scale of PNG export and the report, so a channel looks the same
    colours, _, _ = colour_map(kept / peak, signed=False, peak=1.0)
    colours = colours.astype(np.float32)
    inside = (kept > 0)[..., None]
    mixed = np.where(inside, chip * 0.35 + colours * (0.45 + 0.2 * strength), base)
    return np.clip(mixed, 0, 255).astype(np.uint8)


def overlay_parts(chip: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The chip with the part masks (Fig. 7) in colour."""
    out = chip.astype(np.float32)
    inside = labels >= 0
    out[inside] = 0.5 * out[inside] + 0.5 * PART_COLOURS[labels[inside]]
    return out.astype(np.uint8)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((14, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(
        bar, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.vstack([tile, bar])


def channel_grid(
    report: ChannelReport,
    face: int = 0,
    *,
    columns: int = 16,
    tile: int = 96,
    channels: Sequence[int] | None = None,
) -> np.ndarray:
    """One tile per channel: its top-10 % area over one example face (RGB uint8)."""
    examples = report.examples
    if examples is None or face >= len(examples.chips):
        raise BadInputError("no example face to draw")
    chosen = list(range(report.channels)) if channels is None else list(channels)
    tiles = []
    for channel in chosen:
        kept = examples.top_map(face, channel, report.fraction)
        image = cv2.resize(
            overlay_top_area(examples.chips[face], kept),
            (tile, tile),
            interpolation=cv2.INTER_AREA,
        )
        part = report.channel_stats[channel].dominant_part or "-"
        tiles.append(_caption(image, f"{channel} {part}"))
    blank = np.full_like(tiles[0], 255)
    while len(tiles) % columns:
        tiles.append(blank)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def write_channel_outputs(report: ChannelReport, out: str | Path) -> list[Path]:
    """``summary.json``, ``channels.csv``, ``parts.png`` and a grid per example face."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    summary = out / "summary.json"
    summary.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    written.append(summary)
    table = out / "channels.csv"
    lines = [
        "channel,dominant_part,dominant_share,S_i,mean_best_iou,mean_peaks,"
        "active_share," + ",".join(f"share_{p}" for p in PARTS)
    ]
    for s in report.channel_stats:
        lines.append(
            ",".join(
                [
                    str(s.channel),
                    s.dominant_part or "",
                    f"{s.dominant_share:.4f}",
                    "" if s.consistency is None else f"{s.consistency:.5f}",
                    f"{s.mean_best_iou:.4f}",
                    f"{s.mean_peaks:.3f}",
                    f"{s.active_share:.3f}",
                    *(f"{s.part_shares[p]:.4f}" for p in PARTS),
                ]
            )
        )
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(table)
    examples = report.examples
    if examples is not None and len(examples.chips):
        parts = np.hstack(
            [
                overlay_parts(chip, labels)
                for chip, labels in zip(
                    examples.chips, examples.part_labels, strict=True
                )
            ]
        )
        Image.fromarray(parts).save(out / "parts.png")
        written.append(out / "parts.png")
        for face in range(min(3, len(examples.chips))):
            path = out / f"channels-face{face + 1}.png"
            Image.fromarray(channel_grid(report, face)).save(path)
            written.append(path)
    return written
