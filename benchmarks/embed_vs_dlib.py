"""Torch port vs dlib native: embedding speed on the same aligned chips, one run.

    python benchmarks/embed_vs_dlib.py [--data DIR] [--chips 64] [--repeats 3]
                                       [--device cpu|cuda|auto] [--big-images-from DIR]

DIR is a folder of images (searched recursively, e.g. ../shared/data/fr-examples);
without it the chips come from the photos shipped in scikit-image / matplotlib.
Prints images/s of both implementations, their ratio (target: torch >= 8x dlib on the
2-core CPU) and the largest descriptor difference.  Then times ``xfr verify`` (the
library call behind it, model already loaded) on two >= 10-megapixel images made by
upscaling two photos (target <= 1 s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# isort: off
import core  # noqa: F401 - first: its OMP_WAIT_POLICY=PASSIVE must precede torch

# isort: on
import numpy as np
import torch
from PIL import Image

from core.faces.align import chip_for_model
from core.faces.detect import FaceDetector, find_faces, select_face
from core.imageio import load_image
from core.models import DEFAULT_MODEL_ID, registry
from core.resources import RESNET_FILE, dlib_model_file
from core.verify import verify_files

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def source_images(data: Path | None) -> list[Path]:
    if data is not None:
        return sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    import matplotlib.cbook
    from skimage import data as skdata

    folder = Path(tempfile.mkdtemp(prefix="xfr-bench-"))
    Image.fromarray(skdata.astronaut()).save(folder / "astronaut.png")
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return [folder / "astronaut.png", Path(hopper)]


def aligned_chips(paths: list[Path], count: int, model) -> list[np.ndarray]:
    chips = []
    for path in paths:
        try:
            image = load_image(path)
            face = select_face(find_faces(image), 0, path=path)
        except Exception as error:  # benchmark input: skip what cannot be used
            print(f"  skipped {path.name}: {error}")
            continue
        chips.append(chip_for_model(image.rgb, face, model.preprocessing).chip)
    if not chips:
        raise SystemExit("no usable face images")
    rng = np.random.default_rng(0)
    out = []
    while len(out) < count:  # repeat with small noise so no two chips are identical
        chip = chips[len(out) % len(chips)].astype(np.int16)
        out.append(
            np.clip(chip + rng.integers(-2, 3, chip.shape), 0, 255).astype(np.uint8)
        )
    return out


def best_of(repeats: int, function) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--chips", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--big-images-from", type=Path)
    args = parser.parse_args()

    import dlib

    print(
        f"cores: {os.cpu_count()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), dlib {dlib.__version__} "
        f"(CUDA: {dlib.DLIB_USE_CUDA})"
    )
    model = registry().load(DEFAULT_MODEL_ID, args.device)
    chips = aligned_chips(source_images(args.data), args.chips, model)
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_file(RESNET_FILE)))

    def run_torch() -> np.ndarray:
        return np.concatenate(
            [
                model.embed_chips(np.stack(chips[i : i + args.batch]))
                for i in range(0, len(chips), args.batch)
            ]
        )

    def run_dlib() -> np.ndarray:
        return np.array(
            [np.array(d) for d in recognizer.compute_face_descriptor(chips)]
        )

    run_torch(), run_dlib()  # warm-up (allocations, thread pools)
    torch_seconds = best_of(args.repeats, run_torch)
    dlib_seconds = best_of(args.repeats, run_dlib)
    worst = float(np.abs(run_torch() - run_dlib()).max())
    print(f"chips: {len(chips)} aligned 150x150, best of {args.repeats} runs")
    print(f"torch port ({model.device}): {len(chips) / torch_seconds:8.1f} images/s")
    print(f"dlib native (CPU):  {len(chips) / dlib_seconds:8.1f} images/s")
    print(f"ratio torch/dlib:   {dlib_seconds / torch_seconds:8.2f}x   (target >= 8x)")
    print(f"max |descriptor diff|: {worst:.2e}   (requirement <= 1e-4)")

    # ---- xfr verify on two >= 10 MP images, model already loaded ----------------
    sources = source_images(args.big_images_from)[:2]
    folder = Path(tempfile.mkdtemp(prefix="xfr-bench-big-"))
    big = []
    for number, path in enumerate(sources):
        rgb = load_image(path).rgb
        scale = np.sqrt(10.5e6 / (rgb.shape[0] * rgb.shape[1]))
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        target = folder / f"big_{number}.jpg"
        Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS).save(
            target, quality=92
        )
        big.append(target)
    sizes = [Image.open(p).size for p in big]
    FaceDetector.shared()  # detector and landmark models load once, like the model
    verify_files(big[0], big[1], model)  # warm-up
    seconds = best_of(args.repeats, lambda: verify_files(big[0], big[1], model))
    megapixels = ", ".join(f"{w}x{h} ({w * h / 1e6:.1f} MP)" for w, h in sizes)
    print(
        f"xfr verify on {megapixels}: {seconds:.3f} s after model load (target <= 1 s)"
    )


if __name__ == "__main__":
    main()
