"""Explainer speed: FGGB vs a per-dimension loop, LIME vs the lime package, and a
per-method time table.  Ratios are measured side by side in one run.

    python benchmarks/explain_speed.py --probe A.jpg --gallery B.jpg [--device cuda]

Without --probe/--gallery the scikit-image astronaut and matplotlib's Grace Hopper
photo are used.  ``--save-pair F.npz`` stores the aligned pair and ``--pair F.npz``
reads it back, for machines without dlib's detector (e.g. a GPU box).
--skip-lime-package skips the comparison with the ``lime`` package
(``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.explain import get, method_ids
from core.explain.base import FacePair, eval_mode, make_context
from core.explain.methods.fggb import fggb_map
from core.explain.perturb import superpixels
from core.models import registry
from core.verify import prepare_face


def sample_images() -> tuple[str, str]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    astronaut = Path(tempfile.gettempdir()) / "xfr-bench-astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(astronaut)
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return str(astronaut), str(hopper)


def save_pair(pair: FacePair, path: str) -> None:
    arrays = {}
    for view in pair.sides:
        arrays[f"{view.side}_chip"] = view.chip
        arrays[f"{view.side}_matrix"] = view.transform.chip_to_image
        arrays[f"{view.side}_shape"] = np.array(view.image_shape)
        arrays[f"{view.side}_sha256"] = np.array(view.image_sha256)
    np.savez_compressed(path, **arrays)


def load_pair(path: str) -> FacePair:
    from core.explain.base import FaceView
    from core.faces.align import ChipTransform

    data = np.load(path)
    views = [
        FaceView(
            side=side,
            chip=data[f"{side}_chip"],
            transform=ChipTransform(
                data[f"{side}_matrix"], data[f"{side}_chip"].shape[:2], "dlib"
            ),
            image_shape=tuple(int(v) for v in data[f"{side}_shape"]),
            image_sha256=str(data[f"{side}_sha256"]),
        )
        for side in ("probe", "gallery")
    ]
    return FacePair(*views)


def timed(function, repeats: int = 1):
    function()  # warm-up (first-call allocations, cuDNN autotuning)
    _sync()
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        _sync()
        best = min(best, time.perf_counter() - began)
    return best, result


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_fggb(pair: FacePair, model, repeats: int) -> None:
    with eval_mode(model):
        ctx = make_context(pair, model, {"chunk": 32}, 0, None, None, None, None)
        ctx.start(10**9)
        chunk = 128 if model.device.type == "cuda" else 32
        batched_s, batched = timed(lambda: fggb_map(ctx, 0, chunk=chunk), repeats)
        loop_s, loop = timed(
            lambda: fggb_map(ctx, 0, batched=False, chunk=chunk), repeats
        )
    difference = float((batched - loop).abs().max())
    print(
        f"FGGB one image: batched VJP {batched_s:.3f} s, per-dimension loop "
        f"{loop_s:.3f} s -> {loop_s / batched_s:.2f}x faster; max |map diff| "
        f"{difference:.2e} (map max {float(loop.abs().max()):.2e})"
    )
    pair_s, _ = timed(lambda: get("fggb").explain(pair, model), repeats)
    print(f"FGGB whole pair (both images, warped to evidence): {pair_s:.3f} s")


def bench_lime(pair: FacePair, model, repeats: int) -> None:
    from lime import lime_image

    ours_s, _ = timed(lambda: get("lime").explain(pair, model, seed=0), repeats)
    reference = model.embed_chips(pair.gallery.chip[None])[0]
    reference = reference / np.linalg.norm(reference)

    def classifier(images: np.ndarray) -> np.ndarray:
        embeddings = model.embed_chips(np.clip(images, 0, 255).astype(np.uint8))
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        return (embeddings @ reference)[:, None]

    def package_one(view) -> None:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            explain_with_package(view)  # lime draws a progress bar per image

    def explain_with_package(view) -> None:
        explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=0)
        explainer.explain_instance(
            view.chip,
            classifier,
            labels=(0,),
            hide_color=0,
            num_samples=1000,
            batch_size=64,
            segmentation_fn=lambda image: superpixels(image, 75)[0],
            num_features=100000,
        )

    package_s, _ = timed(lambda: [package_one(v) for v in pair.sides], repeats)
    print(
        f"LIME pair (75 SLIC segments, 1000 samples each image): ours {ours_s:.3f} s, "
        f"lime package {package_s:.3f} s -> {package_s / ours_s:.2f}x faster"
    )


def method_table(pair: FacePair, model) -> None:
    print(f"\n| method | seconds per pair ({model.device}) |\n|---|---|")
    for method_id in method_ids():
        seconds, _ = timed(lambda m=method_id: get(m).explain(pair, model, seed=0), 1)
        print(f"| {method_id} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe")
    parser.add_argument("--gallery")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-lime-package", action="store_true")
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--pair", help="aligned pair saved with --save-pair")
    parser.add_argument("--save-pair", help="store the aligned pair and stop")
    args = parser.parse_args()
    model = registry().load("dlib-resnet-v1", args.device)
    if args.pair:
        pair = load_pair(args.pair)
    else:
        probe_path, gallery_path = (
            (args.probe, args.gallery) if args.probe else sample_images()
        )
        pair = FacePair.from_prepared(
            prepare_face(probe_path, model), prepare_face(gallery_path, model)
        )
    if args.save_pair:
        save_pair(pair, args.save_pair)
        return
    print(f"device {model.device}, torch threads {torch.get_num_threads()}")
    bench_fggb(pair, model, args.repeats)
    if not args.skip_lime_package:
        bench_lime(pair, model, args.repeats)
    if not args.skip_table:
        method_table(pair, model)


if __name__ == "__main__":
    main()
