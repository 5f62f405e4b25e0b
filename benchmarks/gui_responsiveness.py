"""GUI responsiveness while an explanation runs in the background.

A 5 ms ``QTimer`` on the GUI thread records when it actually fires; the gaps between
ticks show how long the event loop was blocked (by the GIL, by Python code on the
GUI thread, by a starved CPU).  The explanation runs through
``xfr_desktop.workers.TaskRunner`` exactly as the GUI runs it.  The same figures are
measured for an idle period of the same length in the same run, side by side, and
compared with the target: no gap of 50 ms or more.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py \
        [--method lime] [--samples 1000] [--leave-one-core] [--device cpu]

The pair is the scikit-image astronaut and matplotlib's Grace Hopper photo; the
model is the default ``dlib-resnet-v1``.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# isort: off
import core  # noqa: F401  before torch, as in the app: OpenMP's wait policy (core.compute)
import numpy as np
import torch

# isort: on

TIMER_INTERVAL_MS = 5
TARGET_MAX_GAP_MS = 50.0


def sample_images() -> tuple[str, str]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    astronaut = Path(tempfile.gettempdir()) / "xfr-bench-astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(astronaut)
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return str(astronaut), str(hopper)


def gap_stats(stamps: list[float]) -> dict[str, Any]:
    """Gaps between consecutive time stamps (the first and last are the bounds)."""
    gaps = np.diff(np.asarray(stamps)) * 1000.0
    if gaps.size == 0:
        return {"ticks": 0, "max_gap_ms": None, "p99_gap_ms": None}
    return {
        "seconds": round(stamps[-1] - stamps[0], 3),
        "ticks": len(stamps) - 2,
        "max_gap_ms": round(float(gaps.max()), 2),
        "p99_gap_ms": round(float(np.percentile(gaps, 99)), 2),
        "median_gap_ms": round(float(np.median(gaps)), 2),
        "gaps_over_target": int((gaps >= TARGET_MAX_GAP_MS).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="lime", help="explainer id (lime)")
    parser.add_argument("--samples", type=int, default=1000, help="LIME samples")
    parser.add_argument("--device", default="cpu", help="model device (cpu)")
    parser.add_argument(
        "--leave-one-core",
        action="store_true",
        help="torch.set_num_threads(cpu_count - 1): keep a core for the GUI",
    )
    args = parser.parse_args(argv)

    if not (
        os.environ.get("QT_QPA_PLATFORM")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display: still measurable

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from core.explain import FacePair, get
    from core.models import registry
    from core.verify import prepare_face
    from xfr_desktop.workers import TaskRunner

    app = QApplication.instance() or QApplication([sys.argv[0]])

    if args.leave_one_core:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    threads = torch.get_num_threads()
    print(
        f"torch threads: {threads} of {os.cpu_count()} cores "
        f"({'--leave-one-core' if args.leave_one_core else 'torch default'})",
        file=sys.stderr,
    )

    model = registry().load("dlib-resnet-v1", args.device)
    probe_path, gallery_path = sample_images()
    pair = FacePair.from_prepared(
        prepare_face(probe_path, model), prepare_face(gallery_path, model)
    )
    explainer = get(args.method)
    params = {"samples": args.samples} if args.method == "lime" else {}

    stamps: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TIMER_INTERVAL_MS)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))

    # -- the explanation in the background ------------------------------------------
    outcome: dict[str, Any] = {}
    progress_events = [0]
    runner = TaskRunner(model_job="explanation")  # as the GUI runs it
    runner.result.connect(lambda value: outcome.setdefault("result", value))
    runner.error.connect(lambda error, details: outcome.setdefault("error", details))
    runner.progress.connect(
        lambda *_: progress_events.__setitem__(0, progress_events[0] + 1)
    )
    loop = QEventLoop()
    runner.finished.connect(loop.quit)

    stamps.append(time.perf_counter())
    timer.start()
    runner.start(explainer.explain, pair, model, params)
    loop.exec()
    timer.stop()
    stamps.append(time.perf_counter())
    busy_stamps, stamps = stamps, []
    run_seconds = busy_stamps[-1] - busy_stamps[0]
    runner.wait(5.0)
    if "error" in outcome:
        print(outcome["error"], file=sys.stderr)
        return 1

    # -- an idle period of the same length --------------------------------------------
    app.processEvents()
    idle_loop = QEventLoop()
    stamps.append(time.perf_counter())
    timer.start()
    QTimer.singleShot(round(run_seconds * 1000), idle_loop.quit)
    idle_loop.exec()
    timer.stop()
    stamps.append(time.perf_counter())

    busy, idle = gap_stats(busy_stamps), gap_stats(stamps)
    result = outcome.get("result")
    report = {
        "method": args.method,
        "params": params,
        "device": args.device,
        "platform": app.platformName(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "leave_one_core": args.leave_one_core,
        "timer_interval_ms": TIMER_INTERVAL_MS,
        "target_max_gap_ms": TARGET_MAX_GAP_MS,
        "explanation_seconds": round(run_seconds, 3),
        "explainer_reported_seconds": (
            round(result.seconds, 3) if result is not None else None
        ),
        "progress_events": progress_events[0],
        "during_explanation": busy,
        "idle": idle,
        "meets_target": busy["max_gap_ms"] is not None
        and busy["max_gap_ms"] < TARGET_MAX_GAP_MS,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
