"""How stable the stochastic explainers are at their default settings, on real pairs.

    python benchmarks/stochastic_stability.py --data ../shared/data/lfw/pairs.txt \
        [--pairs 5] [--methods corrrise,lime,smoothgrad] [--unpaired] [--json out.json]

Per method and face (probe and gallery of each pair), two runs with different
seeds: the samples each used, whether it stopped on the stability target or the
cap, the split-half stability it reported (Spearman-Brown corrected), and the
Pearson r between the two seeds' combined maps - the figure the reported
stability claims to predict.  ``--fixed`` also runs each method at one round
(the old fixed count) for comparison; ``--unpaired`` also runs the default with
``antithetic`` off (every sample drawn on its own, as before the opposite pairs),
so the samples saved and the honesty of the split-half figure under pairing (its
seed-to-seed r) are measured side by side.  The real dlib model runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import XfrError
from core.evaluation import pairs_for
from core.explain import FacePair, get, infos
from core.explain.stability import pearson
from core.models import DEFAULT_MODEL_ID, registry
from core.verify import prepare_face

COUNT_PARAMETER = {"corrrise": "masks", "lime": "samples", "smoothgrad": "samples"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="LFW pairs.txt (or its folder)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--methods",
        default=",".join(i.method_id for i in infos() if i.stochastic),
        help="comma-separated method ids (default: every stochastic method)",
    )
    parser.add_argument("--seeds", default="0,1", help="two seeds to compare")
    parser.add_argument(
        "--fixed", action="store_true", help="also run one round (the old count)"
    )
    parser.add_argument(
        "--unpaired",
        action="store_true",
        help="also run the default without opposite pairs (antithetic off)",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) != 2:
        parser.error("--seeds takes two seeds")
    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    pairs, protocol = pairs_for(args.data, seed=0, max_pairs=args.pairs)
    prepared = []
    for pair in pairs:
        try:
            faces = [prepare_face(path, model) for path in (pair.first, pair.second)]
        except XfrError as error:
            print(f"skipped {pair.first.name} / {pair.second.name}: {error}")
            continue
        prepared.append((pair, FacePair.from_prepared(*faces)))
    print(f"{len(prepared)} pairs ({protocol}), model {model.model_id}, CPU")
    rows = []
    # pairs outermost, so that a run cut short covers every method equally
    for pair, face_pair in prepared:
        for method_id in args.methods.split(","):
            explainer = get(method_id)
            settings = [("default", {})]
            if args.fixed:
                count = COUNT_PARAMETER.get(method_id)
                if count is None:
                    parser.error(f"--fixed: no count parameter known for {method_id}")
                one_round = {"max_samples": explainer.info.defaults()[count]}
                settings = [("one round", one_round), ("default", {})]
            if args.unpaired and "antithetic" in explainer.info.defaults():
                settings.append(("unpaired", {"antithetic": False}))
            for label, params in settings:
                runs = []
                for seed in seeds:
                    began = time.perf_counter()
                    result = explainer.explain(face_pair, model, params, seed=seed)
                    runs.append((result, time.perf_counter() - began))
                for side in ("probe", "gallery"):
                    uncertainties = [
                        getattr(result, side).chip.uncertainty.mean()
                        for result, _seconds in runs
                    ]
                    first, second = (getattr(result, side) for result, _seconds in runs)
                    stabilities = [r.details["stability"][side] for r, _ in runs]
                    rows.append(
                        {
                            "method": method_id,
                            "setting": label,
                            "pair": f"{pair.first.name} / {pair.second.name}",
                            "genuine": pair.genuine,
                            "side": side,
                            "samples": [s["samples"] for s in stabilities],
                            "stopped_by": [s["stopped_by"] for s in stabilities],
                            "reached": [s["reached"] for s in stabilities],
                            "seed_to_seed_r": pearson(
                                first.combined_map, second.combined_map
                            ),
                            "mean_uncertainty": float(np.mean(uncertainties)),
                            "seconds": [round(s, 2) for _, s in runs],
                        }
                    )
                last = rows[-1]
                print(
                    f"{method_id:<11}{label:<10} {last['pair']:<50} gallery "
                    f"samples {last['samples']} r {last['seed_to_seed_r']:.3f}",
                    flush=True,
                )
                if args.json:  # after every pair, so that partial runs keep theirs
                    args.json.write_text(json.dumps(rows, indent=2))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def table(rows: list[dict]) -> str:
    lines = [
        "| method | setting | faces x seeds | samples used: median (range) | stopped "
        "by target | split-half reached: median (min) | seed-to-seed r: median "
        "(min) | s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["method"], r["setting"]) for r in rows}, key=str)
    for method, setting in keys:
        chosen = [r for r in rows if (r["method"], r["setting"]) == (method, setting)]
        samples = [n for r in chosen for n in r["samples"]]
        reached = [v for r in chosen for v in r["reached"] if v is not None]
        stops = [s for r in chosen for s in r["stopped_by"]]
        agreement = [r["seed_to_seed_r"] for r in chosen]
        # each run covers both faces; count its seconds once
        seconds = [s for r in chosen if r["side"] == "probe" for s in r["seconds"]]
        lines.append(
            f"| {method} | {setting} | {len(chosen)} x 2 | "
            f"{int(np.median(samples))} ({min(samples)}-{max(samples)}) | "
            f"{stops.count('target')}/{len(stops)} | "
            f"{np.median(reached):.3f} ({min(reached):.3f}) | "
            f"{np.median(agreement):.3f} ({min(agreement):.3f}) | "
            f"{np.median(seconds):.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
