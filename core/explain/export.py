"""Writing explanation results as files: float32 .npy maps and overlay .png images."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.errors import BadInputError
from core.explain.base import ExplanationResult, find_info
from core.explain.codec import map_entries, result_to_json
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
    evidence image with colour bar and legend).  Stochastic methods add
    ``<side>_uncertainty_chip.npy``: the per-pixel standard error of the combined
    map (same units), at chip resolution, listed per side under
    ``uncertainty_chip_npy``.  ``result.json`` holds the manifest.
    """
    final = Path(out_dir) / result.method_id
    info = find_info(result.method_id)
    files: dict[str, dict[str, Any]] = {}
    uncertainty: dict[str, str] = {}
    images = dict(zip((m.side for m in result.images), evidence_images, strict=True))
    with staged_folder(final) as folder:
        for entry in map_entries(result):
            stem = f"{entry.side}_{entry.kind}"
            np.save(folder / f"{stem}_chip.npy", entry.chip.astype(np.float32))
            np.save(folder / f"{stem}.npy", entry.evidence.values.astype(np.float32))
            title = f"{result.method_name} - {entry.kind} map - {entry.side}"
            overlay = render_overlay(
                images[entry.side], entry.evidence, entry.kind, title, info=info
            )
            if not cv2.imwrite(str(folder / f"{stem}.png"), overlay[..., ::-1]):
                raise BadInputError(
                    "cannot write overlay image (is the disk full?)",
                    final / f"{stem}.png",
                )
            files[stem] = {
                "chip_npy": str(final / f"{stem}_chip.npy"),
                "evidence_npy": str(final / f"{stem}.npy"),
                "overlay_png": str(final / f"{stem}.png"),
                **entry.evidence.to_dict(),
            }
        for maps in result.images:
            if maps.chip.uncertainty is not None:
                stem = f"{maps.side}_uncertainty"
                np.save(
                    folder / f"{stem}_chip.npy",
                    maps.chip.uncertainty.astype(np.float32),
                )
                uncertainty[maps.side] = str(final / f"{stem}_chip.npy")
        manifest = {**result_to_json(result), "files": files}
        if uncertainty:  # beside "files", whose entries are all overlaid map kinds
            manifest["uncertainty_chip_npy"] = uncertainty
        (folder / "result.json").write_text(json.dumps(manifest, indent=2))
    return manifest


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """A folder to write ``final``'s files in, which becomes ``final`` only when
    all were written: a full disk or Ctrl-C never leaves a half-written result
    under the final name (an earlier one stays until the new one is complete)."""
    staging = final.with_name(final.name + ".partial")
    try:
        shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
        staging.mkdir(parents=True)
    except OSError as error:
        raise BadInputError(
            f"cannot create output folder ({error.strerror})", final
        ) from None
    try:
        yield staging
        previous = final.with_name(final.name + ".previous")
        if final.exists():  # folders, not a file: core.io.atomic writes files
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(final, previous)
        os.replace(staging, final)
        shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
