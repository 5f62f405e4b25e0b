"""Model throughput under contention, with and without the compute executor, one run.

    python benchmarks/contention.py [--seconds 4] [--rounds 2] [--batch 32]

Embeds random 150x150 chips with the default model (dlib ResNet, torch port, CPU;
its speed does not depend on the pixels) in child processes, one per setting, the
settings taking turns round after round (each round starting with the next), so
that a change in the machine's other load falls on all of them alike:

* ``library defaults`` - no executor: libgomp's default wait (spin 300 000 times at
  a barrier, ``GOMP_SPINCOUNT=300000``), torch's default threads, two jobs are two
  Python threads calling the model at once (what the GUI did before);
* ``passive wait only`` - ``OMP_WAIT_POLICY=PASSIVE`` (set by ``core/__init__.py``),
  two jobs still run at once;
* ``executor`` - passive wait and ``core.compute.model_job``: two jobs take turns
  for the cores (FIFO).

For each it measures chips/s of one job **alone** (nothing else of ours running;
the machine's other load is what ``uptime`` shows), of one job on **one thread**,
of **two jobs submitted together** (their combined chips/s), and of one job while
**1 and 2 other CPU-bound processes** (a pure-Python busy loop each) run, and prints
each as a ratio to alone.  The ideal for two jobs together is 1.0 (the machine
does the same work, shared).  With ``n`` busy processes a fair scheduler gives a
``T``-thread job ``T / (T + n)`` of the CPU time, so the ideal is about that share
(0.67 with one busy process, 0.50 with two, on 2 cores with 2 threads): a ratio
near the share means no collapse, however it compares with the 0.8 target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    # name: (environment changes, two jobs through the executor)
    "library defaults": ({"GOMP_SPINCOUNT": "300000"}, False),
    "passive wait only": ({}, False),
    "executor": ({}, True),
}
BUSY_LOOP = "while True:\n    pass\n"


# ---- child: one setting ------------------------------------------------------------
def _child(setting: str, seconds: float, batch: int) -> None:
    # isort: off
    from core import compute  # before torch: sets OpenMP's wait policy
    from core.models import DEFAULT_MODEL_ID, registry
    import numpy as np
    import torch

    # isort: on

    _, through_executor = SETTINGS[setting]
    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (batch, 150, 150, 3), dtype=np.uint8)
    model.embed_chips(chips)  # warm-up: allocations, the thread team
    threads = torch.get_num_threads()

    def embed_for(deadline: float) -> int:
        done = 0
        while time.perf_counter() < deadline:
            if through_executor:
                with compute.model_job("benchmark"):
                    model.embed_chips(chips)
            else:
                model.embed_chips(chips)
            done += batch
        return done

    def rate() -> float:
        started = time.perf_counter()
        done = embed_for(started + seconds)
        return done / (time.perf_counter() - started)

    def two_jobs() -> float:
        counts: list[int] = []
        started = time.perf_counter()
        deadline = started + seconds
        workers = [
            threading.Thread(target=lambda: counts.append(embed_for(deadline)))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(counts) / (time.perf_counter() - started)

    def with_busy(processes: int) -> float:
        busy = [
            subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
            for _ in range(processes)
        ]
        try:
            time.sleep(0.3)  # the loops are running
            return rate()
        finally:
            for each in busy:
                each.kill()
                each.wait()

    result = {"alone": rate()}
    torch.set_num_threads(1)
    result["one thread"] = rate()
    torch.set_num_threads(threads)
    result["two jobs"] = two_jobs()
    result["1 busy process"] = with_busy(1)
    result["2 busy processes"] = with_busy(2)
    print(
        json.dumps(
            {
                "threads": threads,
                "wait": os.environ.get("OMP_WAIT_POLICY")
                or f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'default')}",
                "rates": result,
            }
        )
    )


def _run_child(setting: str, seconds: float, batch: int) -> dict:
    changes, _ = SETTINGS[setting]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
    }
    env.update(changes)
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, __file__, "--child", setting]
    command += ["--seconds", str(seconds), "--batch", str(batch)]
    output = subprocess.run(command, env=env, capture_output=True, text=True)
    if output.returncode != 0:
        raise SystemExit(f"{setting}: the child failed:\n{output.stderr}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.seconds, args.batch)
        return

    cores = len(os.sched_getaffinity(0))
    print(f"cores available: {cores}; before: {_uptime()}")
    print(f"{args.rounds} rounds x {len(SETTINGS)} settings, {args.seconds:g} s each")
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    names = list(SETTINGS)
    for round_number in range(args.rounds):
        # each round starts with the next setting: none is always first or last
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(_run_child(name, args.seconds, args.batch))
        print(f"  round {round_number + 1} done ({_uptime()})")
    print(f"after: {_uptime()}")

    measures = ["alone", "one thread", "two jobs", "1 busy process", "2 busy processes"]
    medians = {
        name: {
            m: statistics.median(run["rates"][m] for run in runs[name])
            for m in measures
        }
        for name in SETTINGS
    }
    first = runs[next(iter(SETTINGS))][0]
    threads = first["threads"]
    print(f"\nchips/s (median of {args.rounds}); threads per job: {threads}")
    print(f"{'':20s}" + "".join(f"{m:>18s}" for m in measures))
    for name in SETTINGS:
        wait = runs[name][0]["wait"]
        print(
            f"{name:20s}"
            + "".join(f"{medians[name][m]:18.1f}" for m in measures)
            + f"   ({wait})"
        )

    ideal = {
        "one thread": None,
        "two jobs": 1.0,
        "1 busy process": threads / (threads + 1),
        "2 busy processes": threads / (threads + 2),
    }
    print("\nratio to the same setting's job alone (target >= 0.8)")
    print(f"{'':20s}" + "".join(f"{m:>18s}" for m in measures[1:]))
    for name in SETTINGS:
        alone = medians[name]["alone"]
        cells = "".join(f"{medians[name][m] / alone:18.2f}" for m in measures[1:])
        print(f"{name:20s}{cells}")
    print(
        f"{'ideal (fair share)':20s}{'-':>18s}"
        + "".join(f"{ideal[m]:18.2f}" for m in measures[2:])
    )
    base = medians["library defaults"]["alone"]
    print("\nratio to the library defaults' job alone (the same work, other settings)")
    for name in SETTINGS:
        cells = "".join(f"{medians[name][m] / base:18.2f}" for m in measures)
        print(f"{name:20s}{cells}")


if __name__ == "__main__":
    main()
