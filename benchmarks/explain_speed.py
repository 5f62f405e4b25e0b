"""Explainer speed: forward layouts, FGGB vs a per-dimension loop, time to a stable
map, LIME vs the lime package at equal stability, and a per-method time table, side
by side in one run.

Time to a stable map: every stochastic method at its old fixed budget, with the
stopping rule checked once a round (algorithm version 2), with its stopping
rule unpaired (``antithetic`` off, the version before the pairs) and with its
default: samples, the split-half stability reached, seconds, and for the
stopping rules the seed-to-seed r of seeds 0 and 1 (the figure the split-half
stability claims to predict).  LIME at
equal stability: see ``bench_lime_equal_stability`` (seed-to-seed r of the maps).

    python benchmarks/explain_speed.py --probe A.jpg --gallery B.jpg [--device cuda]

Without --probe/--gallery the scikit-image astronaut and matplotlib's Grace Hopper
photo are used.  ``--save-pair F.npz`` stores the aligned pair and ``--pair F.npz``
reads it back, for machines without dlib's detector (e.g. a GPU box).
--skip-lime-package skips the comparison with the ``lime`` package
(``pip install -e .[bench]``); --threads N sets torch's intra-op threads.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import time
from pathlib import Path

# isort: off
import core  # noqa: F401 - first: its OMP_WAIT_POLICY=PASSIVE must precede torch

# isort: on
import numpy as np
import torch

from core.errors import BadInputError
from core.explain import get, infos, method_ids
from core.explain.base import FacePair, eval_mode, make_context
from core.explain.methods.fggb import fggb_map
from core.explain.perturb import gaussian_smooth, superpixels
from core.explain.stability import pearson
from core.models import registry
from core.verify import prepare_face


def sample_images() -> tuple[str, str]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    # per process: two benchmarks run at once must not read each other's half-file
    astronaut = Path(tempfile.gettempdir()) / f"xfr-bench-astronaut-{os.getpid()}.png"
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


def bench_forward(pair: FacePair, model, chips: int = 256) -> None:
    """Forward passes without gradients: the old layout and batch (NCHW, 64)
    against the new (channels-last on the CPU, ``auto_batch_size``), interleaved
    three times; chips per CPU second (process time: less sensitive to other jobs
    on the machine than wall time) and per wall second, medians."""
    import statistics

    import core.explain.base as base

    x = model.prepare(pair.probe.chip[None]).expand(64, -1, -1, -1).contiguous()
    fast_batch = base.auto_batch_size(model.device)
    configs = {
        "NCHW, batch 64 (before)": (False, 64),
        f"channels-last on CPU, batch {fast_batch} (now)": (True, fast_batch),
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    try:
        for _ in range(3):
            for name, (channels_last, batch) in configs.items():
                base.CHANNELS_LAST_ON_CPU = channels_last
                inputs = base.forward_layout(model, x[:batch])
                with torch.inference_mode():
                    model.embed(inputs)
                    _sync()
                    cpu, wall = time.process_time(), time.perf_counter()
                    for _ in range(chips // batch):
                        model.embed(inputs)
                    _sync()
                    done = chips // batch * batch
                    figures[name].append(
                        (
                            done / (time.process_time() - cpu),
                            done / (time.perf_counter() - wall),
                        )
                    )
    finally:
        base.CHANNELS_LAST_ON_CPU = True
    print(
        "\n## Forward passes without gradients\n\n| layout | chips per CPU "
        "second | chips per second (wall) |\n|---|---|---|"
    )
    medians = {}
    for name, values in figures.items():
        medians[name] = [statistics.median(v[i] for v in values) for i in (0, 1)]
        print(f"| {name} | {medians[name][0]:.1f} | {medians[name][1]:.1f} |")
    before, now = medians.values()
    print(
        f"ratio now / before: {now[0] / before[0]:.2f}x per CPU second, "
        f"{now[1] / before[1]:.2f}x wall"
    )


# The fixed counts the stochastic methods had before their stopping rules.
OLD_FIXED = {"lime": ("samples", 1000), "corrrise": ("masks", 1000)}
OLD_FIXED["smoothgrad"] = ("samples", 50)


def once(function):
    began = time.perf_counter()
    result = function()
    _sync()
    return time.perf_counter() - began, result


def _sides(result, key: str) -> str:
    stability = result.details["stability"]
    values = [stability[side][key] for side in ("probe", "gallery")]
    if key == "reached":
        return " / ".join("n/a" if v is None else f"{v:.3f}" for v in values)
    return " / ".join(str(v) for v in values)


def bench_stopping(
    pair, model, compare_rounds: bool, only: list[str] | None = None
) -> tuple[dict[str, float], dict[str, list]]:
    """Per stochastic method: the old fixed budget against the stopping rule, the
    stopping rule without and with opposite pairs (``antithetic``); each stopping
    rule also with seed 1, for the seed-to-seed r its split-half figure claims."""
    print(
        "\n## Time to a stable map (target: split-half r 0.95, Spearman-Brown "
        "corrected)\n\nSamples, stability and seconds of seed 0; seed-to-seed r: "
        "the Pearson r of the combined maps of seeds 0 and 1 (seed 1's samples in "
        "brackets), the figure the split-half stability predicts.\n\n"
        "| method | run | samples probe / gallery | stability probe / gallery | "
        "seed-to-seed r probe / gallery (seed 1 samples) | seconds per pair |"
        "\n|---|---|---|---|---|---|"
    )
    seconds: dict[str, float] = {}
    defaults_runs: dict[str, list] = {}
    for info in (i for i in infos() if i.stochastic):
        if only and info.method_id not in only:
            continue
        count, fixed = OLD_FIXED[info.method_id]
        defaults = info.defaults()
        unpaired = {"antithetic": False} if "antithetic" in defaults else {}
        runs = [
            (
                f"fixed budget ({fixed}, the old count)",
                {count: fixed, "max_samples": fixed, "stability": 1.0, **unpaired},
                False,
            )
        ]
        if compare_rounds and "check_every" in defaults:
            runs.append(
                (
                    f"stopping rule, checked every {defaults[count]} (version 2)",
                    {"check_every": defaults[count], **unpaired},
                    False,
                )
            )
        if unpaired:
            runs.append(("stopping rule, unpaired (before)", unpaired, True))
        runs.append(("stopping rule (default: antithetic pairs)", {}, True))
        for label, params, both_seeds in runs:
            took, result = once(
                lambda m=info.method_id, p=params: get(m).explain(
                    pair, model, p, seed=0
                )
            )
            agreement = "-"
            if both_seeds:
                _took, other = once(
                    lambda m=info.method_id, p=params: get(m).explain(
                        pair, model, p, seed=1
                    )
                )
                r = [
                    pearson(a.combined_map, b.combined_map)
                    for a, b in zip(result.images, other.images, strict=True)
                ]
                agreement = f"{r[0]:.3f} / {r[1]:.3f} ({_sides(other, 'samples')})"
                if not params:
                    defaults_runs[info.method_id] = [(took, result), (_took, other)]
            if not params:
                seconds[info.method_id] = took
            print(
                f"| {info.method_id} | {label} | {_sides(result, 'samples')} | "
                f"{_sides(result, 'reached')} | {agreement} | {took:.2f} |",
                flush=True,
            )
    return seconds, defaults_runs


def _package_map(view, other_embedding, labels, samples: int, seed: int, model):
    """The lime package's coefficients painted and smoothed as ours are."""
    from lime import lime_image

    reference = other_embedding / np.linalg.norm(other_embedding)

    def classifier(images: np.ndarray) -> np.ndarray:
        embeddings = model.embed_chips(np.clip(images, 0, 255).astype(np.uint8))
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        return (embeddings @ reference)[:, None]

    explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=seed)
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        explanation = explainer.explain_instance(  # it draws a progress bar
            view.chip,
            classifier,
            labels=(0,),
            hide_color=0,
            num_samples=samples,
            batch_size=64,
            segmentation_fn=lambda image: labels,
            num_features=100000,
        )
    coefficients = np.zeros(int(labels.max()) + 1)
    for feature, weight in explanation.local_exp[0]:
        coefficients[feature] = weight
    return gaussian_smooth(coefficients[labels], 4.0)


def needed_count(r: float, target: float, measured_at: int, step: int = 250) -> int:
    """Samples at which a map with seed-to-seed r at ``measured_at`` samples reaches
    ``target`` (Spearman-Brown prophecy: R(k) = k r / (1 + (k - 1) r) for k times
    the samples), rounded up to ``step``."""
    r = min(max(r, 1e-6), 1 - 1e-9)
    k = target * (1 - r) / (r * (1 - target))
    return max(step, math.ceil(k * measured_at / step) * step)


def bench_lime_equal_stability(
    pair, model, first_count: int, ours: list | None = None
) -> tuple[float, float]:
    """Ours (stopping rule) against the lime package at EQUAL seed-to-seed r.

    Method: ours runs with seeds 0 and 1; its stability is the Pearson r of the two
    seeds' combined maps, per face.  The package runs with random_state 0 and 1 at
    ``first_count`` samples, its coefficients painted on the same superpixels and
    smoothed as ours (sigma 4), giving its seed-to-seed r; the Spearman-Brown
    prophecy gives the count at which it would match our r, and the package is run
    again at that count (both seeds) to check the r it really reaches.  Its time
    is that of one seed at that count, both faces.
    """
    print("\n## LIME at equal stability (seed-to-seed r of the map, per face)\n")
    if ours is None:  # else: (seconds, result) of seeds 0 and 1, from bench_stopping
        ours = [
            once(lambda s=seed: get("lime").explain(pair, model, seed=s))
            for seed in (0, 1)
        ]
    ours_seconds = sum(took for took, _ in ours) / 2
    ours_r = [
        pearson(a.combined_map, b.combined_map)
        for a, b in zip(ours[0][1].images, ours[1][1].images, strict=True)
    ]
    samples = [
        [r.details["stability"][side]["samples"] for _, r in ours]
        for side in ("probe", "gallery")
    ]
    print(
        f"ours (stopping rule): samples per face (seed 0, seed 1) probe "
        f"{samples[0]}, gallery {samples[1]}; seed-to-seed r probe "
        f"{ours_r[0]:.3f}, gallery {ours_r[1]:.3f}; {ours_seconds:.2f} s a pair "
        "(mean of the two seeds)"
    )
    embeddings = [model.embed_chips(view.chip[None])[0] for view in pair.sides]
    labels = [superpixels(view.chip, 75)[0] for view in pair.sides]
    package_seconds = 0.0
    first_seconds = 0.0
    for index, view in enumerate(pair.sides):
        other = embeddings[1 - index]

        def run(count: int, seed: int, v=view, o=other, lab=labels[index]):
            return once(lambda: _package_map(v, o, lab, count, seed, model))

        (took, first), (_, second) = run(first_count, 0), run(first_count, 1)
        first_seconds += took
        r_first = pearson(first, second)
        count = needed_count(r_first, ours_r[index], first_count)
        (took, first), (_, second) = run(count, 0), run(count, 1)
        r_count = pearson(first, second)
        package_seconds += took
        print(
            f"lime package, {view.side}: seed-to-seed r {r_first:.3f} at "
            f"{first_count} samples; to match ours ({ours_r[index]:.3f}) the "
            f"Spearman-Brown prophecy asks {count}; measured there: r "
            f"{r_count:.3f} in {took:.2f} s"
            + ("" if r_count >= ours_r[index] - 0.005 else " (still below ours)")
        )
    print(
        f"lime package at {first_count} samples a face: {first_seconds:.2f} s a pair"
        f"\nLIME at equal stability: lime package {package_seconds:.2f} s, ours "
        f"{ours_seconds:.2f} s a pair -> {package_seconds / ours_seconds:.2f}x "
        "(target >= 3x)"
    )
    return ours_seconds, package_seconds


def method_table(pair, model) -> float:
    print(
        f"\n## Every method once, default parameters ({model.device})\n\n"
        "| method | seconds per pair |\n|---|---|"
    )
    total = 0.0
    for method_id in method_ids():
        try:
            seconds, _ = once(lambda m=method_id: get(m).explain(pair, model, seed=0))
        except BadInputError as error:
            print(f"| {method_id} | not run: {error} |")
            continue
        total += seconds
        print(f"| {method_id} | {seconds:.2f} |")
    print(f"| **all methods** | **{total:.2f}** (target <= 10) |")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe")
    parser.add_argument("--gallery")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--skip-lime-package", action="store_true")
    parser.add_argument("--skip-fggb", action="store_true")
    parser.add_argument("--skip-stopping", action="store_true")
    parser.add_argument(
        "--skip-rounds",
        action="store_true",
        help="leave out the stopping rule checked only once a round (version 2)",
    )
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument(
        "--stochastic", help="comma-separated stochastic methods (default: all)"
    )
    parser.add_argument("--pair", help="aligned pair saved with --save-pair")
    parser.add_argument("--save-pair", help="store the aligned pair and stop")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = registry().load("dlib-resnet-v1", args.device)
    if args.pair:
        pair = load_pair(args.pair)
    else:
        probe_path, gallery_path = (
            (args.probe, args.gallery) if args.probe else sample_images()
        )
        pair = FacePair.from_prepared(  # 68 landmarks: the components method
            prepare_face(probe_path, model, with_68=True),
            prepare_face(gallery_path, model, with_68=True),
        )
    if args.save_pair:
        save_pair(pair, args.save_pair)
        return
    load = os.getloadavg()
    print(
        f"device {model.device}, torch threads {torch.get_num_threads()}, "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    began = time.perf_counter()
    get("gradient").explain(pair, model)  # warm-up: first-call allocations
    bench_forward(pair, model)
    if not args.skip_fggb:
        bench_fggb(pair, model, args.repeats)
    ours = None
    if not args.skip_stopping:
        only = args.stochastic.split(",") if args.stochastic else None
        _seconds, defaults_runs = bench_stopping(
            pair, model, not args.skip_rounds, only
        )
        ours = defaults_runs.get("lime")
    if not args.skip_lime_package:
        bench_lime_equal_stability(pair, model, 1000, ours)
    if not args.skip_table:
        method_table(pair, model)
    load = os.getloadavg()
    print(
        f"\nload average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"benchmark {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
