"""EER per quality band on LFW under synthetic degradations (docs/evaluation.md).

    OMP_NUM_THREADS=2 python benchmarks/quality_bands.py ../shared/data/lfw \
        [--folds 1] [--cache /tmp/xfr-quality-bands] [--json]

Each image of the official LFW pairs (``DATA/pairs.txt``, the first ``--folds``
folds of 300 genuine + 300 impostor pairs) is detected once, on the original, with
dlib's HOG detector (an image without a face is left out with its pairs, as
``xfr eval verification`` does).  Then, per condition, the *same* landmarks are used
on the degraded image, so that what changes is the model's input and not whether
the detector still finds the face (as when an examiner places the points):

* ``original``;
* ``IED N px`` (N = 48, 32, 24, 16, 12, 8): the whole image downscaled (OpenCV area
  interpolation) so that the inter-eye distance measured on the original becomes
  N px, the landmarks scaled with it, *not* upscaled back: the aligner resamples
  the small face to the model's 150x150 chip, as it does for a small CCTV face (an
  image whose face is already at most N px is left as it is);
* ``blur σ 2 px``: Gaussian blur with σ = 2 px on the original size;
* ``JPEG q 20``: re-encoded by Pillow at quality 20 (4:2:0), decoded again.

Each condition's embeddings and quality figures are cached in ``--cache`` (one
``.npz`` per condition and weights), so a rerun only prints.  Printed: per
condition the median inter-eye distance and sharpness, EER and ROC AUC, the
shipped calibration's Cllr / Cllr_min on the condition's pairs and the share of
faces whose IED is below its reference faces' 5th percentile (those get an IED
caution, ``core.calibration.quality_cautions``); then all
conditions pooled and split by the pair's worse inter-eye distance (bands
:data:`POOLED_EDGES`) with
``core.evaluation.figures_by_band`` (what ``xfr eval verification --by-quality
inter_eye_distance`` reports).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.calibration import (
    calibration_for,
    check_calibration,
    figure_of,
    worse_value,
)
from core.cli.common import load_model
from core.evaluation import (
    equal_error_rate,
    figures_by_band,
    lfw_pairs,
    roc_auc,
)
from core.faces.align import chip_for_model
from core.faces.detect import Face, FaceDetector, find_faces, select_face
from core.imageio import load_image
from core.models.base import FaceModel, cosine_similarity
from core.models.ids import DEFAULT_MODEL_ID
from core.quality import FaceInput, assess
from core.quality.geometry import INTER_EYE_DISTANCE

PAIRS_PER_FOLD = 600
IED_TARGETS = (48, 32, 24, 16, 12, 8)
BLUR_SIGMA = 2.0
JPEG_QUALITY = 20
# Pooled bands centred on the conditions (8, 12, 16, 24, 32 px; originals at about
# 41 px): a downscaled face measures within a fraction of a pixel of its target, so
# edges *at* the targets would split each condition over two bands.
POOLED_EDGES = (10.0, 14.0, 20.0, 28.0, 36.0)
CONDITIONS = (
    "original",
    *(f"IED {n} px" for n in IED_TARGETS),
    f"blur σ {BLUR_SIGMA:g} px",
    f"JPEG q {JPEG_QUALITY}",
)


def degrade(rgb: np.ndarray, face: Face, condition: str) -> tuple[np.ndarray, Face]:
    """The image and face (landmarks moved with it) under ``condition``."""
    if condition == "original":
        return rgb, face
    if condition.startswith("IED"):
        target = float(condition.split()[1])
        ied = _ied(rgb, face)
        factor = target / ied
        if factor >= 1.0:
            return rgb, face
        height, width = rgb.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # the pixel grids' centres: x_small = (x + 0.5) * f - 0.5
        fx, fy = size[0] / width, size[1] / height

        def move(points: np.ndarray) -> np.ndarray:
            p = np.asarray(points, float)
            return np.stack([(p[:, 0] + 0.5) * fx - 0.5, (p[:, 1] + 0.5) * fy - 0.5], 1)

        left, top, right, bottom = face.bbox
        moved = replace(
            face,
            bbox=(left * fx, top * fy, right * fx, bottom * fy),
            landmarks5=move(face.landmarks5),
            landmarks68=None if face.landmarks68 is None else move(face.landmarks68),
        )
        return np.ascontiguousarray(small), moved
    if condition.startswith("blur"):
        return cv2.GaussianBlur(rgb, (0, 0), BLUR_SIGMA), face
    if condition.startswith("JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY)
        return np.asarray(
            Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        ), face
    raise ValueError(condition)


def _ied(rgb: np.ndarray, face: Face) -> float:
    value = INTER_EYE_DISTANCE.measure(
        FaceInput(rgb=rgb, bbox=face.bbox, landmarks5=face.landmarks5)
    ).value
    assert value is not None
    return float(value)


def detect_all(images: list[Path]) -> tuple[dict[Path, Face], list[str]]:
    detector = FaceDetector.shared()
    faces: dict[Path, Face] = {}
    failed: list[str] = []
    for number, path in enumerate(images, 1):
        if number % 200 == 0:
            print(f"  detected {number}/{len(images)}", file=sys.stderr)
        try:
            faces[path] = select_face(
                find_faces(load_image(path), detector=detector), path=path
            )
        except Exception as error:  # a benchmark counts failures, never guesses
            failed.append(f"{path}: {error}")
    return faces, failed


def run_condition(
    condition: str,
    faces: dict[Path, Face],
    model: FaceModel,
    cache: Path,
) -> dict[str, dict[Path, float]]:
    """Embeddings and quality figures (IED, sharpness) of every face."""
    key = condition.replace(" ", "_").replace("σ", "sigma")
    file = cache / f"{model.weights_sha256[:12]}-{key}.npz"
    paths = sorted(faces)
    if file.is_file():
        stored = np.load(file, allow_pickle=False)
        names = [str(p) for p in stored["paths"]]
        if names == [str(p) for p in paths]:
            return _as_dicts(paths, stored)
    embeddings, ied, sharpness = [], [], []
    chips: list[np.ndarray] = []
    for number, path in enumerate(paths, 1):
        if number % 400 == 0:
            print(f"  {condition}: {number}/{len(paths)}", file=sys.stderr)
        rgb, face = degrade(load_image(path).rgb, faces[path], condition)
        chips.append(chip_for_model(rgb, face, model.preprocessing).chip)
        quality = assess(FaceInput(rgb=rgb, bbox=face.bbox, landmarks5=face.landmarks5))
        ied.append(figure_of(quality, "inter_eye_distance") or np.nan)
        sharpness.append(figure_of(quality, "sharpness") or np.nan)
        if len(chips) == 32:
            embeddings.extend(model.embed_chips(np.stack(chips)))
            chips.clear()
    if chips:
        embeddings.extend(model.embed_chips(np.stack(chips)))
    arrays = {
        "paths": np.array([str(p) for p in paths]),
        "embeddings": np.stack(embeddings),
        "ied": np.array(ied, float),
        "sharpness": np.array(sharpness, float),
    }
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **arrays)
    return _as_dicts(paths, arrays)


def _as_dicts(paths: list[Path], arrays) -> dict[str, dict[Path, float]]:
    return {
        name: dict(zip(paths, arrays[name], strict=True))
        for name in ("embeddings", "ied", "sharpness")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="LFW folder holding pairs.txt")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/xfr-quality-bands"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pairs = lfw_pairs(args.data / "pairs.txt")[: args.folds * PAIRS_PER_FOLD]
    images = sorted({p for pair in pairs for p in (pair.first, pair.second)})
    faces, failed = detect_all(images)
    model = load_model(DEFAULT_MODEL_ID, "cpu")
    usable = [p for p in pairs if p.first in faces and p.second in faces]
    shipped = calibration_for(model.model_id, model.weights_sha256)
    assert shipped is not None and shipped.quality is not None
    reference_ied = shipped.quality.get("inter_eye_distance")
    assert reference_ied is not None
    rows = []
    pooled: dict[str, list] = {"g": [], "gv": [], "i": [], "iv": []}
    for condition in CONDITIONS:
        figures = run_condition(condition, faces, model, args.cache)
        genuine, impostor = [], []
        for pair in usable:
            score = cosine_similarity(
                figures["embeddings"][pair.first], figures["embeddings"][pair.second]
            )
            worse = worse_value(
                "inter_eye_distance",
                [float(figures["ied"][pair.first]), float(figures["ied"][pair.second])],
            )
            kind = "g" if pair.genuine else "i"
            (genuine if pair.genuine else impostor).append(score)
            pooled[kind].append(score)
            pooled[kind + "v"].append(worse)
        eer, _ = equal_error_rate(np.array(genuine), np.array(impostor))
        check = check_calibration(shipped, genuine, impostor, condition)
        ieds = np.array([figures["ied"][p] for p in faces])
        rows.append(
            {
                "condition": condition,
                "median_ied_px": float(np.nanmedian(list(figures["ied"].values()))),
                "median_sharpness": float(
                    np.nanmedian(list(figures["sharpness"].values()))
                ),
                "genuine_pairs": len(genuine),
                "impostor_pairs": len(impostor),
                "eer": eer,
                "roc_auc": roc_auc(np.array(genuine), np.array(impostor)),
                # the shipped calibration (fitted on undegraded LFW faces) on them
                "cllr": check.cllr,
                "cllr_min": check.cllr_min,
                "faces_below_calibration_p5_ied": float(
                    np.mean(ieds < reference_ied.p5)
                ),
            }
        )
    bands = figures_by_band(
        pooled["g"], pooled["gv"], pooled["i"], pooled["iv"],
        measure="inter_eye_distance", name="inter-eye distance", unit="px",
        edges=POOLED_EDGES,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"conditions": rows, "by_band": bands.to_dict(),
                          "failed": failed, "seconds": seconds}, indent=2))  # fmt: skip
        return 0
    print(f"LFW pairs.txt, folds 1-{args.folds}: {len(usable)} of {len(pairs)} "
          f"pairs usable ({len(failed)} images without a detected face); "
          f"{DEFAULT_MODEL_ID}")  # fmt: skip
    print()
    print(
        f"shipped calibration's reference faces: IED 5th percentile "
        f"{reference_ied.p5:.1f} px, smallest {reference_ied.minimum:.1f} px"
    )
    print()
    print("| condition | median IED (px) | median sharpness | genuine + impostor "
          "| EER | ROC AUC | Cllr (shipped calibration) | Cllr_min "
          "| faces cautioned for IED |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['condition']} | {row['median_ied_px']:.1f} | "
            f"{row['median_sharpness']:.4f} | {row['genuine_pairs']} + "
            f"{row['impostor_pairs']} | {100 * row['eer']:.2f} % | "
            f"{row['roc_auc']:.4f} | {row['cllr']:.3f} | {row['cllr_min']:.3f} | "
            f"{100 * row['faces_below_calibration_p5_ied']:.0f} % |"
        )
    print()
    print("All conditions pooled, by the pair's worse inter-eye distance:")
    print()
    print("| band (worse face) | genuine + impostor | EER | ROC AUC |")
    print("|---|---:|---:|---:|")
    for band in bands.bands:
        eer_text = "-" if band.eer is None else f"{100 * band.eer:.2f} %"
        auc_text = "-" if band.roc_auc is None else f"{band.roc_auc:.4f}"
        print(f"| {band.label} | {band.genuine_pairs} + {band.impostor_pairs} | "
              f"{eer_text} | {auc_text} |")  # fmt: skip
    print(f"\n({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
