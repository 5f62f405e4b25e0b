"""``xfr eval faithfulness``: the papers' faithfulness tables for our model.

For every pair of a data set (a folder of identities or an LFW ``pairs.txt``) and
every requested method, the probe's map is computed once and scored with:

* ``deletion-insertion`` (Lu et al. 2024, §IV-B): similarity maps on genuine pairs,
  dissimilarity maps on impostor pairs (methods without a dissimilarity map are
  skipped there), mean AUCs over pairs, against random orders;
* ``hiding-game`` (Xu et al. 2023, §IV-B): verification accuracy as the least
  important pixels of the probe are blurred, and its AUC;
* ``pixel-elimination`` (Alonso-Fernandez et al. 2023, §IV-E): EER when the most
  salient pixels are removed vs the same number of random pixels;
* ``pair-specificity``: the per-pair verdict over the data set
  (``core.metrics.data_set.pair_specificity`` says how).

Each metric is a module of ``core.metrics.data_set`` (its table lists them).
Curves go to CSV and a PNG plot per metric; the table to JSON and Markdown.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import BadInputError, NoFaceError
from core.evaluation import pairs_for
from core.explain.base import ExplanationResult, FacePair, ImageMaps, get
from core.metrics.data_set import METRICS, MetricRun
from core.metrics.data_set import load as load_metric
from core.metrics.pair_faithfulness import (
    MIN_OTHER_MAPS,
    FaithfulnessSettings,
)
from core.models.base import FaceModel
from core.progress import ProgressCallback
from core.verify import prepare_face

if TYPE_CHECKING:
    from core.engine import Engine, Shard

DEFAULT_REFERENCES = MIN_OTHER_MAPS  # the fewest for a pair-specific verdict
SHARD_PAIRS = 4  # pairs per shard of maps (a map takes from 0.01 s to minutes)


@dataclass
class FaithfulnessTable:
    data: str
    protocol: str
    metric: str
    pairs_used: int
    pairs_skipped: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def markdown(self) -> str:
        if not self.rows:
            return "(no rows)"
        columns = list(self.rows[0])
        lines = [
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for row in self.rows:
            cells = [
                f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def aligned_pairs(
    data: str | Path, model: FaceModel, seed: int, max_pairs: int | None
) -> tuple[list[tuple[np.ndarray, np.ndarray, bool]], list[FacePair], int, str]:
    """(probe chip, gallery chip, is_genuine) and FacePair per usable pair, the
    number of pairs left out (no face / unreadable) and the protocol name."""
    pairs, protocol = pairs_for(data, seed=seed, max_pairs=max_pairs)
    prepared: dict[Path, Any] = {}
    out, face_pairs, skipped = [], [], 0
    for pair in pairs:
        try:
            for path in (pair.first, pair.second):
                if path not in prepared:
                    # 68 landmarks: the components method needs them
                    prepared[path] = prepare_face(path, model, with_68=True)
        except (NoFaceError, BadInputError):
            skipped += 1
            continue
        first, second = prepared[pair.first], prepared[pair.second]
        out.append((first.aligned.chip, second.aligned.chip, pair.genuine))
        face_pairs.append(FacePair.from_prepared(first, second))
    return out, face_pairs, skipped, protocol


def evaluate_faithfulness(
    data: str | Path,
    model: FaceModel,
    methods: Sequence[str],
    metric: str,
    *,
    max_pairs: int | None = None,
    seed: int = 0,
    params: dict[str, dict[str, Any]] | None = None,
    random_orders: int = 3,
    steps: int = 20,
    references: int = DEFAULT_REFERENCES,
    pair_settings: FaithfulnessSettings | None = None,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> FaithfulnessTable:
    """``random_orders`` and ``steps`` are deletion-insertion's; ``references`` and
    ``pair_settings`` (default: 30 random orders, seeded with ``seed``) are
    pair-specificity's (module docstring).  ``engine``: the maps are computed
    shard by shard on it (:func:`explain_shard`, pairs per shard), the metric
    then runs here on all of them."""
    if metric not in METRICS:
        raise BadInputError(f"unknown metric {metric!r} (one of: {', '.join(METRICS)})")
    measure = load_metric(metric)
    if references < 0:
        raise BadInputError(f"--references needs 0 or more pairs, got {references}")
    explainers = {m: get(m) for m in methods}
    chips, face_pairs, skipped, protocol = aligned_pairs(data, model, seed, max_pairs)
    if not chips:
        raise BadInputError("no usable pair (no face found in any)", data)
    table = FaithfulnessTable(str(data), protocol, metric, len(chips), skipped)
    total = len(methods) * len(chips)
    done = 0
    sharded: dict[str, list[ExplanationResult]] = {}
    if engine is not None:
        began = time.perf_counter()
        sharded = explain_sharded(
            face_pairs, model, engine, ExplainOptions(tuple(methods), params, seed)
        )
        shared_seconds = (time.perf_counter() - began) / len(face_pairs) / len(methods)
    for method_id, explainer in explainers.items():
        began = time.perf_counter()
        results = sharded.get(method_id, [])
        for face_pair in face_pairs if engine is None else ():
            results.append(
                explainer.explain(face_pair, model, (params or {}).get(method_id), seed)
            )
            done += 1
            if progress:
                progress(done, total, f"{method_id}: maps")
        explain_seconds = (time.perf_counter() - began) / len(face_pairs)
        if engine is not None:  # every method's maps came in the same shards
            explain_seconds = shared_seconds
        began = time.perf_counter()
        rows, curves = measure(
            MetricRun(
                model,
                chips,
                face_pairs,
                results,
                seed=seed,
                steps=steps,
                random_orders=random_orders,
                references=references,
                pair_settings=pair_settings or FaithfulnessSettings(seed=seed),
            )
        )
        metric_seconds = (time.perf_counter() - began) / len(face_pairs)
        for row in rows:
            table.rows.append(
                {
                    "method": method_id,
                    **row,
                    "s/pair explain": round(explain_seconds, 3),
                    "s/pair metric": round(metric_seconds, 3),
                }
            )
        for name, curve in curves.items():
            table.curves[f"{method_id}/{name}"] = curve
    return table


def write_outputs(table: FaithfulnessTable, out_dir: str | Path) -> dict[str, str]:
    """``table.json``, ``table.md``, one CSV per curve and a PNG plot per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"json": str(folder / "table.json"), "markdown": str(folder / "table.md")}
    (folder / "table.json").write_text(
        json.dumps(table.to_dict(), indent=2, default=float)
    )
    (folder / "table.md").write_text(table.markdown() + "\n")
    groups: dict[str, list[tuple[str, dict[str, list[float]]]]] = {}
    for name, curve in table.curves.items():
        stem = name.replace("/", "_")
        with open(folder / f"{stem}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            keys = list(curve)
            writer.writerow(keys)
            writer.writerows(zip(*(curve[k] for k in keys), strict=True))
        method, _, group = name.partition("/")
        groups.setdefault(group, []).append((method, curve))
    figure, axes = plt.subplots(
        len(groups), 1, figsize=(9, 3.6 * len(groups)), squeeze=False
    )
    for axis, (group, members) in zip(axes[:, 0], groups.items(), strict=True):
        for index, (method, curve) in enumerate(members):
            colour = f"C{index % 10}"
            for key in list(curve)[1:]:
                if key.startswith("random"):
                    if index == 0:  # the same pairs and orders for every method
                        axis.plot(curve["x"], curve[key], "k--", lw=1, label=key)
                    continue
                # pixel elimination's random control depends on each map (same
                # pixel count), so it is drawn per method, dashed in its colour
                style = ":" if key == "insertion" else "--" if "random" in key else "-"
                axis.plot(
                    curve["x"], curve[key], style, color=colour, label=f"{method} {key}"
                )
        axis.set_title(f"{table.metric}: {group} maps ({Path(table.data).name})")
        axis.set_xlabel(METRICS[table.metric].axis_labels[0])
        axis.set_ylabel(METRICS[table.metric].axis_labels[1])
        axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(folder / f"{table.metric}.png", dpi=110)
    plt.close(figure)
    files["plot"] = str(folder / f"{table.metric}.png")
    return files


# ---- shards (core.engine: --engine local|ray, --checkpoint) ------------------------
@dataclass(frozen=True)
class ExplainOptions:
    """The methods a shard explains its pairs with, their parameters, the seed."""

    methods: tuple[str, ...]
    params: dict[str, dict[str, Any]] | None
    seed: int

    def key_parameters(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods),
            "params": {m: (self.params or {}).get(m) or {} for m in self.methods},
            "seed": self.seed,
        }


def explain_shard(
    model: FaceModel, pairs: tuple[FacePair, ...], options: ExplainOptions
) -> dict[str, list[ExplanationResult]]:
    """The shard function of ``xfr eval faithfulness``: every method's map of every
    pair of the shard (the local and the Ray runner both call this)."""
    return {
        method_id: [
            get(method_id).explain(
                pair, model, (options.params or {}).get(method_id), options.seed
            )
            for pair in pairs
        ]
        for method_id in options.methods
    }


def encode_explained(result: dict[str, list[ExplanationResult]]) -> dict[str, Any]:
    """A shard's maps as JSON data (the checkpoint): each result's record
    (``core.explain.codec``) and its maps in an ``.npz`` that keeps every array's
    dtype, so the maps read back exactly as they were computed."""
    from core.explain.codec import result_to_json

    return {
        method_id: [
            {"record": result_to_json(explained),
             "maps": base64.b64encode(_maps_npz(explained)).decode()}
            for explained in results
        ]
        for method_id, results in result.items()
    }  # fmt: skip


def _maps_npz(result: ExplanationResult) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for maps in result.images:
        side = maps.side
        for kind, chip_map in maps.chip_maps().items():
            arrays[f"{side}/chip/{kind}"] = chip_map
        if maps.chip.uncertainty is not None:
            arrays[f"{side}/uncertainty"] = maps.chip.uncertainty
        for kind, evidence in maps.evidence.items():
            arrays[f"{side}/evidence/{kind}"] = evidence.values
            arrays[f"{side}/origin/{kind}"] = np.asarray(evidence.origin, np.int64)
            arrays[f"{side}/shape/{kind}"] = np.asarray(evidence.image_shape, np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _maps_from_npz(data: bytes) -> tuple[ImageMaps, ImageMaps]:
    from core.explain.base import ChipMaps, EvidenceMap

    sides = []
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        stored = {name: arrays[name] for name in arrays.files}
    for side in ("probe", "gallery"):
        chip = {
            name.rsplit("/", 1)[1]: value
            for name, value in stored.items()
            if name.startswith(f"{side}/chip/")
        }
        evidence = {}
        for name, value in stored.items():
            if name.startswith(f"{side}/evidence/"):
                kind = name.rsplit("/", 1)[1]
                origin = tuple(int(v) for v in stored[f"{side}/origin/{kind}"])
                shape = tuple(int(v) for v in stored[f"{side}/shape/{kind}"])
                evidence[kind] = EvidenceMap(
                    value, (origin[0], origin[1]), (shape[0], shape[1])
                )
        maps = ChipMaps(
            chip["similarity"],
            chip.get("dissimilarity"),
            chip["combined"],
            uncertainty=stored.get(f"{side}/uncertainty"),
        )
        sides.append(ImageMaps(side, maps, evidence))
    return sides[0], sides[1]


def decode_explained(data: dict[str, Any]) -> dict[str, list[ExplanationResult]]:
    from core.explain.codec import result_from_json

    decoded = {}
    for method_id, items in data.items():
        results = []
        for item in items:
            probe, gallery = _maps_from_npz(base64.b64decode(item["maps"]))
            results.append(result_from_json(item["record"], probe, gallery))
        decoded[method_id] = results
    return decoded


def face_pair_shards(
    face_pairs: Sequence[FacePair],
    model: FaceModel,
    size: int,
    command: str,
    parameters: Any,
) -> Iterator[Shard]:
    """The pairs in shards of ``size`` (for ``eval faithfulness`` and ``eval
    sanity``), each keyed by its pairs' image hashes and face records."""
    from core.engine import Shard, shard_key

    for index, start in enumerate(range(0, len(face_pairs), size)):
        pairs = tuple(face_pairs[start : start + size])
        keyed = [
            (
                f"{view.path}#{json.dumps(view.face_record, sort_keys=True)}",
                view.image_sha256,
            )
            for pair in pairs
            for view in pair.sides
        ]
        key = shard_key(command, parameters, keyed, model.weights_sha256)
        yield Shard(index, key, pairs, len(pairs))


def explain_sharded(
    face_pairs: Sequence[FacePair],
    model: FaceModel,
    engine: Engine,
    options: ExplainOptions,
) -> dict[str, list[ExplanationResult]]:
    """Every method's maps of every pair, shard by shard on ``engine``; each
    shard's key names its pairs' image hashes and face records."""
    from core.engine import run_sharded

    size = engine.shard_size or SHARD_PAIRS
    shards = face_pair_shards(
        face_pairs, model, size, "eval faithfulness", options.key_parameters()
    )
    parts = run_sharded(
        engine,
        explain_shard,
        model,
        shards,
        options,
        command="eval faithfulness",
        total=len(face_pairs),
        encode=encode_explained,
        decode=decode_explained,
    )
    merged: dict[str, list[ExplanationResult]] = {m: [] for m in options.methods}
    for part in parts:
        for method_id in options.methods:
            merged[method_id].extend(part[method_id])
    return merged
