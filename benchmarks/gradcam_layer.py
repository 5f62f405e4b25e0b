"""Which layer should Grad-CAM explain by default?  Share of its mass on the face.

    python benchmarks/gradcam_layer.py --data PATH [--data PATH ...] [--pairs 40]
                                       [--seed 0] [--json OUT.json]

PATH is an LFW ``pairs.txt`` or a folder of identities (``core.evaluation.pairs_for``
reads both).  For every spatial layer tap of the default model, and for Grad-CAM
and Grad-CAM++, the script computes both images' similarity maps (target: the
pair's cosine similarity) and measures the share of the map's positive mass that
falls inside the face: the convex hull of the 68 detected landmarks, mapped into
chip coordinates.  A map that ignored the face entirely would put, on average, the
hull's share of the chip area there (printed as "chance").  The layer with the
largest mean share is the best default: Grad-CAM is meant to point at facial
regions, and mass on hair, background or the chip border is not evidence about the
face.  Images where no face is found are skipped and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from core.errors import XfrError
from core.evaluation import pairs_for
from core.explain.base import FacePair, eval_mode, make_context
from core.explain.cam import activations_and_gradients, cam_maps
from core.explain.layers import tap_shapes
from core.faces.align import chip_for_model
from core.faces.detect import find_faces, select_face
from core.imageio import load_image
from core.models import DEFAULT_MODEL_ID, registry
from core.verify import PreparedFace


def prepare_with_landmarks(path, model) -> PreparedFace:
    """As ``core.verify.prepare_face`` (largest face, same chip: dlib's alignment
    uses the 5 points), but keeping the 68 landmarks for the face mask."""
    image = load_image(path)
    faces = find_faces(image, with_68=True)
    face = select_face(faces, None, path=image.path)
    aligned = chip_for_model(image.rgb, face, model.preprocessing)
    return PreparedFace(image, face, len(faces), 0, aligned)


def face_hull_mask(prepared, shape: tuple[int, int]) -> np.ndarray:
    """The convex hull of the 68 landmarks in chip pixels, as a boolean mask."""
    marks = prepared.face.landmarks68
    if marks is None:
        raise ValueError("no 68-point landmarks")
    chip_points = prepared.aligned.transform.to_chip(np.asarray(marks, np.float64))
    polygon = np.round(chip_points * 16).astype(np.int32)  # 4 bits of sub-pixel
    canvas = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(canvas, cv2.convexHull(polygon), 1, cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def face_share(chip_map: np.ndarray, mask: np.ndarray) -> float:
    positive = np.maximum(chip_map, 0.0)
    total = float(positive.sum())
    return float(positive[mask].sum() / total) if total > 0 else float("nan")


def measure(paths: list[str], pairs_per_source: int, seed: int) -> dict:
    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    layers = [s.name for s in tap_shapes(model) if s.size is not None]
    sizes = {s.name: s.size for s in tap_shapes(model) if s.size is not None}
    shares: dict[str, dict[str, list[float]]] = {
        method: {layer: [] for layer in layers} for method in ("gradcam", "gradcampp")
    }
    chance: list[float] = []
    skipped = 0
    pairs_used = 0
    for path in paths:
        pairs, _protocol = pairs_for(path, seed=seed, max_pairs=pairs_per_source)
        for pair in pairs:
            try:
                probe = prepare_with_landmarks(pair.first, model)
                gallery = prepare_with_landmarks(pair.second, model)
            except XfrError:
                skipped += 1
                continue
            pairs_used += 1
            with eval_mode(model):
                ctx = make_context(
                    FacePair.from_prepared(probe, gallery),
                    model,
                    {},
                    0,
                    None,
                    None,
                    None,
                    None,
                )
                for side, prepared in enumerate((probe, gallery)):
                    mask = face_hull_mask(prepared, model.input_size)
                    chance.append(float(mask.mean()))
                    captured = activations_and_gradients(ctx, side, layers)
                    for layer, (activation, gradient) in captured.items():
                        for method, plus in (("gradcam", False), ("gradcampp", True)):
                            maps = cam_maps(
                                activation, gradient, model.input_size, plus
                            )
                            shares[method][layer].append(
                                face_share(maps.similarity, mask)
                            )
    table = {
        method: {
            layer: {
                "grid": list(sizes[layer]),
                "mean_face_share": float(np.nanmean(values)),
                "median_face_share": float(np.nanmedian(values)),
                "standard_error": float(
                    np.nanstd(values, ddof=1) / np.sqrt(np.isfinite(values).sum())
                ),
                "maps": int(np.isfinite(values).sum()),
            }
            for layer, values in per_layer.items()
        }
        for method, per_layer in shares.items()
    }
    best = {
        method: max(rows, key=lambda layer: rows[layer]["mean_face_share"])
        for method, rows in table.items()
    }
    return {
        "model": DEFAULT_MODEL_ID,
        "data": paths,
        "pairs_used": pairs_used,
        "pairs_skipped": skipped,
        "chance_face_share": float(np.mean(chance)) if chance else float("nan"),
        "table": table,
        "best_layer": best,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", required=True, help="pairs/folder")
    parser.add_argument("--pairs", type=int, default=40, help="pairs per --data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        result = measure(args.data, args.pairs, args.seed)
    except XfrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"model {result['model']}, {result['pairs_used']} pairs "
        f"({result['pairs_skipped']} skipped: no usable face); chance (hull area "
        f"share of the chip) {result['chance_face_share']:.3f}"
    )
    for method, rows in result["table"].items():
        print(f"\n{method}: layer, grid, share of positive mass on the face: mean")
        print("  (± standard error) / median")
        for layer, row in rows.items():
            mark = "  <- best" if layer == result["best_layer"][method] else ""
            grid = "x".join(str(v) for v in row["grid"])
            print(
                f"  {layer:16s} {grid:>6s}  {row['mean_face_share']:.3f} "
                f"(± {row['standard_error']:.3f}) / "
                f"{row['median_face_share']:.3f}  ({row['maps']} maps){mark}"
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
