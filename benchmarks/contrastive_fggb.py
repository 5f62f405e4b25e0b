"""Plain (paper-exact) vs contrastive (centre=reference) FGGB and xSSAB on held-out
pairs: is the probe's map about *this* pair?

    OMP_NUM_THREADS=1 python benchmarks/contrastive_fggb.py \
        --data ../shared/data/lfw/pairs.txt --pairs 30 --out contrastive.json

For each pair (a seeded, balanced subset of LFW's pairs protocol; identities
disjoint from the reference mean's train-identities) and each variant:

(i)   gallery swap: Spearman rank correlation over the chip's pixels between the
      probe's combined map against its own gallery and against an unrelated
      person's photo (the gallery of another pair, neither identity of this pair).
      Lower = the map depends more on who the gallery is.
(ii)  for impostor pairs, the share of the probe's pixels the map calls similar
      (combined map > 0).  The model rejects these pairs.
(iii) for genuine pairs, the deletion AUC of the probe's similarity map
      (``core.metrics.faithfulness.deletion_insertion``: black fill, 50 steps,
      map blurred with sigma 4 px, cosine to the gallery; lower = better) against
      the mean of 10 random pixel orders (the same orders for every variant).
Also: whether the weights' sum (FGGB: sum_k of eq. 4's bracket) has the sign of
the model's decision, and, as a diagnostic not offered as a method, FGGB with the
gallery-independent map subtracted (S(a, b) - S(a, m), m the reference mean).

The FGGB gradients (eqs. 1-2) of each probe are computed once and weighted per
variant; that gives the same maps as the method (the weights are the only
difference between variants).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# isort: off
import core  # noqa: F401 - first: its OMP_WAIT_POLICY=PASSIVE must precede torch

# isort: on
import numpy as np
import torch
from scipy.stats import spearmanr

from core.errors import BadInputError
from core.evaluation import pairs_for
from core.explain.base import FacePair, cosine_threshold, eval_mode, make_context
from core.explain.methods.fggb import fggb_weights, normalised_gradients
from core.explain.methods.xssab import xssab_parts
from core.explain.reference_mean import centre_pair, reference_mean_for
from core.metrics.faithfulness import deletion_insertion
from core.models import DEFAULT_MODEL_ID, registry
from core.verify import prepare_face

VARIANTS = ("fggb/none", "fggb/reference", "xssab/none", "xssab/reference")
DIAGNOSTIC = "fggb/subtracted (diagnostic)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="LFW pairs.txt")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-orders", type=int, default=10)
    parser.add_argument("--out", default=None, help="JSON file for all figures")
    args = parser.parse_args()
    began = time.perf_counter()
    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    reference = reference_mean_for(model)
    pairs, protocol = pairs_for(args.data, seed=args.seed, max_pairs=args.pairs)
    pairs = interleaved(pairs)  # genuine and impostor alternate: a stopped run is
    # still balanced
    faces = []
    for pair in pairs:
        try:
            faces.append(
                (pair, [prepare_face(p, model) for p in (pair.first, pair.second)])
            )
        except BadInputError as error:
            print(f"skipped: {error}", file=sys.stderr)
    rows = []
    with eval_mode(model):
        for index, (pair, (probe, gallery)) in enumerate(faces):
            swap = unrelated_gallery(faces, index)
            if swap is None:
                continue
            rows.append(measure(model, reference, pair, probe, gallery, swap, args))
            print(
                f"{len(rows)}/{len(faces)} pairs, {time.perf_counter() - began:.0f} s",
                file=sys.stderr,
            )
            report = make_report(rows, protocol, reference, args, began)
            if args.out:  # after every pair, so that a stopped run keeps its figures
                Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(make_report(rows, protocol, reference, args, began)))
    return 0


def make_report(rows, protocol, reference, args, began) -> dict:
    return {
        "protocol": protocol,
        "data": args.data,
        "pairs": len(rows),
        "genuine": sum(r["genuine"] for r in rows),
        "seed": args.seed,
        "random_orders": args.random_orders,
        "reference_mean_sha256": reference.sha256,
        "seconds": round(time.perf_counter() - began, 1),
        "summary": summarise(rows),
        "rows": rows,
    }


def interleaved(pairs):
    genuine = [p for p in pairs if p.genuine]
    impostor = [p for p in pairs if not p.genuine]
    out = []
    for index in range(max(len(genuine), len(impostor))):
        out += genuine[index : index + 1] + impostor[index : index + 1]
    return out


def mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def identity(path: Path) -> str:
    return path.parent.name


def unrelated_gallery(faces, index: int):
    """The gallery photo of the next pair whose people are neither of this pair's."""
    pair = faces[index][0]
    own = {identity(pair.first), identity(pair.second)}
    for step in range(1, len(faces)):
        other_pair, other_faces = faces[(index + step) % len(faces)]
        if identity(other_pair.second) not in own:
            return other_faces[1]
    return None


def embed(model, face) -> torch.Tensor:
    with torch.inference_mode():
        return model.embed(model.prepare(face.aligned.chip[None]))[0].clone()


def measure(model, reference, pair, probe, gallery, swap, args) -> dict:
    ctx = make_context(
        FacePair.from_prepared(probe, gallery), model, {}, 0, None, None, None, None
    )
    ctx.start(10**9)
    a, b = ctx.embeddings
    c = embed(model, swap)
    mean = reference.tensor(a.device)
    gradients = normalised_gradients(model, ctx.inputs[0])  # eqs. (1)-(2)

    def fggb(first, second, centred: bool) -> tuple[np.ndarray, float]:
        if centred:
            centred_pair = centre_pair(model, (first, second), reference)
            (first, second), t = centred_pair.embeddings, centred_pair.cosine_threshold
        else:
            t = cosine_threshold(model.threshold, first, second)
        weight = fggb_weights(first, second, t)
        signed = torch.einsum("kchw,k->hw", gradients, weight)
        return signed.numpy(), float(weight.sum())

    def xssab(first, second, centred: bool) -> tuple[np.ndarray, np.ndarray, float]:
        if centred:
            centred_pair = centre_pair(model, (first, second), reference)
            vectors, t = centred_pair.embeddings, centred_pair.cosine_threshold
            positive, negative = xssab_parts(
                ctx, 0, vectors, t, centred_pair.mean, centred_pair.space
            )
        else:
            vectors = (first, second)
            t = cosine_threshold(model.threshold, first, second)
            positive, negative = xssab_parts(ctx, 0, vectors, t)
        unit = [v / v.norm() for v in vectors]
        margin = float((unit[0] * unit[1]).sum()) - t
        combined = (positive - negative).numpy()
        return combined, positive.numpy(), margin

    maps, swapped, similarity, margins = {}, {}, {}, {}
    for centred, name in ((False, "none"), (True, "reference")):
        maps[f"fggb/{name}"], margins[f"fggb/{name}"] = fggb(a, b, centred)
        swapped[f"fggb/{name}"], _ = fggb(a, c, centred)
        similarity[f"fggb/{name}"] = np.maximum(maps[f"fggb/{name}"], 0)
        combined, positive, margin = xssab(a, b, centred)
        maps[f"xssab/{name}"], similarity[f"xssab/{name}"] = combined, positive
        margins[f"xssab/{name}"] = margin
        swapped[f"xssab/{name}"] = xssab(a, c, centred)[0]
    independent = lambda: fggb(a, mean, False)[0]  # noqa: E731 - gallery = the mean
    baseline = independent()
    maps[DIAGNOSTIC] = maps["fggb/none"] - baseline
    swapped[DIAGNOSTIC] = swapped["fggb/none"] - baseline
    similarity[DIAGNOSTIC] = np.maximum(maps[DIAGNOSTIC], 0)

    row = {
        "probe": str(pair.first),
        "gallery": str(pair.second),
        "swap_gallery": str(swap.image.path),
        "genuine": bool(pair.genuine),
        "decision": ctx.decision,
        "gallery_independent_vs_map_spearman": float(
            spearmanr(baseline.ravel(), maps["fggb/none"].ravel())[0]
        ),
        "variants": {},
    }
    accept = ctx.decision == "accept"
    random_auc = None
    for name in (*VARIANTS, DIAGNOSTIC):
        entry = {
            "swap_spearman": float(
                spearmanr(maps[name].ravel(), swapped[name].ravel())[0]
            ),
            "similar_share": float((maps[name] > 0).mean()),
        }
        if name in margins:
            entry["weights_sum_agrees_with_decision"] = (margins[name] > 0) == accept
        if pair.genuine:
            first = random_auc is None  # random orders once per pair, same seed
            result = deletion_insertion(
                model,
                probe.aligned.chip,
                b.numpy(),
                similarity[name],
                random_orders=args.random_orders if first else 0,
                seed=args.seed,
            )
            if first:
                random_auc = result.random_deletion_auc
            entry["deletion_auc"] = result.deletion_auc
            entry["random_deletion_auc"] = random_auc
        row["variants"][name] = entry
    return row


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in (*VARIANTS, DIAGNOSTIC):
        entries = [r["variants"][name] for r in rows]
        swap = np.array([e["swap_spearman"] for e in entries])
        impostor = np.array(
            [
                e["similar_share"]
                for r, e in zip(rows, entries, strict=True)
                if not r["genuine"]
            ]
        )
        genuine = [e for r, e in zip(rows, entries, strict=True) if r["genuine"]]
        deletion = np.array([e["deletion_auc"] for e in genuine])
        random = np.array([e["random_deletion_auc"] for e in genuine])
        agrees = [e.get("weights_sum_agrees_with_decision") for e in entries]
        out[name] = {
            "swap_spearman_mean": float(swap.mean()),
            "swap_spearman_median": float(np.median(swap)),
            "swap_spearman_max": float(swap.max()),
            "impostor_similar_share_mean": mean(impostor),
            "deletion_auc_mean": mean(deletion),
            "random_deletion_auc_mean": mean(random),
            "deletion_beats_random": int((deletion < random).sum()),
            "genuine_pairs": len(genuine),
            "weights_sum_sign_is_decision": None
            if agrees[0] is None
            else int(sum(bool(x) for x in agrees)),
        }
    return out


def table(report: dict) -> str:
    lines = [
        f"{report['pairs']} pairs ({report['genuine']} genuine), "
        f"{report['protocol']}, {report['seconds']} s",
        "| variant | swap rank corr. mean / median / max | impostor similar share "
        "| deletion AUC (genuine) | random | beats random | sign = decision |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in report["summary"].items():
        sign = s["weights_sum_sign_is_decision"]
        sign_text = "-" if sign is None else f"{sign}/{report['pairs']}"
        lines.append(
            f"| {name} | {s['swap_spearman_mean']:+.2f} / "
            f"{s['swap_spearman_median']:+.2f} / {s['swap_spearman_max']:+.2f} | "
            f"{100 * s['impostor_similar_share_mean']:.0f} % | "
            f"{s['deletion_auc_mean']:.3f} | {s['random_deletion_auc_mean']:.3f} | "
            f"{s['deletion_beats_random']}/{s['genuine_pairs']} | "
            f"{sign_text} |"
        )
    independent = [r["gallery_independent_vs_map_spearman"] for r in report["rows"]]
    lines.append(
        "FGGB (paper-exact): rank correlation of the map with its gallery-independent "
        f"part (gallery = mean face): mean {np.mean(independent):+.3f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
