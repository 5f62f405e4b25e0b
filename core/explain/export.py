"""Writing explanation results as files: float32 .npy maps and overlay .png images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.errors import BadInputError
from core.explain.base import ExplanationResult
from core.explain.render import render_overlay


def write_result(
    result: ExplanationResult,
    evidence_images: Sequence[np.ndarray],
    out_dir: str | Path,
) -> dict[str, Any]:
    """Write every map of ``result`` under ``out_dir/<method>/``; return the manifest.

    Per image (probe, gallery) and map kind: ``<side>_<kind>_chip.npy`` (chip
    resolution), ``<side>_<kind>.npy`` (on the evidence, the part the chip covers;
    its pixel origin is in the manifest) and ``<side>_<kind>.png`` (overlay on the
    evidence image with colour bar and legend).  ``result.json`` holds the
    manifest.
    """
    folder = Path(out_dir) / result.method_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(
            f"cannot create output folder ({error.strerror})", folder
        ) from None
    files: dict[str, dict[str, Any]] = {}
    for maps, image in zip(result.images, evidence_images, strict=True):
        for kind, chip_map in maps.chip_maps().items():
            stem = f"{maps.side}_{kind}"
            evidence_map = maps.evidence[kind]
            np.save(folder / f"{stem}_chip.npy", chip_map.astype(np.float32))
            np.save(folder / f"{stem}.npy", evidence_map.values.astype(np.float32))
            title = f"{result.method_name} - {kind} map - {maps.side}"
            overlay = render_overlay(image, evidence_map, kind, title)
            png = folder / f"{stem}.png"
            if not cv2.imwrite(str(png), overlay[..., ::-1]):
                raise BadInputError("cannot write overlay image", png)
            files[stem] = {
                "chip_npy": str(folder / f"{stem}_chip.npy"),
                "evidence_npy": str(folder / f"{stem}.npy"),
                "overlay_png": str(png),
                **evidence_map.to_dict(),
            }
    manifest = {**result.to_dict(), "files": files}
    (folder / "result.json").write_text(json.dumps(manifest, indent=2))
    return manifest
