"""``xfr eval sanity``: the model-parameter randomisation test for every method.

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, §3 (cascading
randomisation): re-initialise the network's weights block by block, from the
embedding layer down to the input, and compare each method's maps on the
randomised network with its maps on the trained one.  A map that stays the same
when the weights the model learned are gone cannot be explaining what the model
learned (the paper's analogy: an edge detector passes as a saliency map).

What is done here, and how it differs from the paper:

* **Blocks** come from the model's structure: when the layer taps' modules own every
  weight of the network (dlib's ResNet: stem, 14 residual blocks, embedding), the
  taps are the blocks; otherwise (ONNX / TorchScript files, whose automatic taps are
  single layers) every module that owns weights is a block, in registration order.
  Depth k re-initialises the k deepest blocks; the deepest depth is the whole
  network ("full randomisation").
* **Re-initialisation** (the paper re-initialises with the network's initialisers,
  truncated normal): weights of dimension >= 2 (convolutions, fully-connected) are
  drawn from a normal of standard deviation sqrt(2 / fan_in) (He), truncated at ±2
  standard deviations; 1-D scales (batch-norm / dlib affine ``gamma``, names ending
  in ``weight``) are set to 1 and 1-D shifts (biases, ``beta``) to 0, as in a freshly
  initialised network; batch-norm running statistics are reset.  Each parameter's
  values come from its own generator seeded by (seed, parameter name), so a block
  has the same random values at every depth (the cascade only ever adds blocks) and
  on every device.
* **Always on a private copy**: the network is deep-copied (its hooks removed, so a
  capture running on the shared model in another thread is never written to by the
  copy) and the copy is randomised; the shared model is never modified.  The copy's
  ``weights_sha256`` is the SHA-256 of its randomised tensors and its ``model_id``
  says it is randomised, so no cache can mistake its maps for the trained model's.
* **Similarity of maps** (the paper's §3 metrics, HOG left out): Spearman rank
  correlation of the absolute maps and of the signed maps (``combined`` =
  similarity - dissimilarity), and SSIM (scikit-image, 7×7 window) of the absolute
  maps each scaled to [0, 1] by its own minimum and maximum.  Probe and gallery maps
  are both compared; a pair's value is the mean of its two sides; the table gives
  the mean and standard deviation over pairs.  Stochastic methods use the same seed
  on both networks, so their random draws (noise, masks) are the same.
* **Degenerate maps**: a method may give a constant map (e.g. all zero) on the
  trained or on a randomised network.  A constant map has no ranking: the table's
  rank correlation for it is 0 and it is counted in ``constant_maps``; a map with
  non-finite values is treated the same.  SSIM of a constant map uses the map
  scaled to 0 everywhere (SSIM's constants keep it finite).  The verdict leaves
  such comparisons out: a correlation of 0 there means "nothing to compare", not
  "the map changed", and counting it would let a method that never shows
  anything pass.
* **Verdict** per method, from the full randomisation, over the image comparisons
  in which neither map is constant (``maps_compared``; ``constant_maps`` says how
  many were left out): *passes* when the mean of both |rank correlation|
  (absolute and signed maps) is below ``PASS_THRESHOLD`` = 0.2, else *fails*;
  *not judged* when every comparison had a constant map.  Why 0.2: over 22 500
  pixels any
  correlation is "significant" (and neighbouring pixels are not independent), so the
  criterion is one of size: |ρ| < 0.2 shares under 4 % of rank variance, the range
  conventionally called negligible to very weak; the methods that pass in the
  paper's Figure 4 fall close to 0 after full randomisation, those that fail stay
  far above.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.errors import BadInputError
from core.explain.base import Explainer, FacePair, get
from core.models.base import FaceModel
from core.progress import ProgressCallback

if TYPE_CHECKING:
    from core.engine import Engine

PASS_THRESHOLD = 0.2
SHARD_PAIRS = 4  # pairs per shard (each pair: a map per method and depth)
PASSES = "passes"
FAILS = "fails: the map survives randomising the model"
CONSTANT_ORIGINAL = (
    "not judged: constant maps (the method shows nothing on the trained model, "
    "so there is nothing to randomise away)"
)
CONSTANT_RANDOMISED = (
    "not judged: constant maps (on the randomised model the method shows nothing "
    "to compare with its maps on the trained model)"
)
CONSTANT_MAPS = (
    "not judged: constant maps (on the trained or on the randomised model the "
    "method shows nothing to compare)"
)


# ---- blocks and the randomised copy -----------------------------------------------
@dataclass(frozen=True)
class Block:
    """A group of weights re-initialised together, named as the model names it."""

    name: str
    module_paths: tuple[str, ...]
    parameter_names: tuple[str, ...]


def model_blocks(model: FaceModel) -> list[Block]:
    """The network's blocks, shallow to deep (see the module docstring)."""
    network = model.network
    modules = dict(network.named_modules())
    all_names = [name for name, _ in network.named_parameters()]
    _refuse_constant_weights(model)
    blocks: list[Block] = []
    claimed: set[str] = set()
    for tap in model.layer_taps():
        module = modules.get(tap.module_path)
        if module is None:
            continue
        prefix = f"{tap.module_path}." if tap.module_path else ""
        names = tuple(
            prefix + name
            for name, _ in module.named_parameters()
            if prefix + name not in claimed
        )
        if names:
            blocks.append(Block(tap.name, (tap.module_path,), names))
            claimed.update(names)
    if blocks and claimed == set(all_names):
        return blocks
    # the taps do not cover every weight: one block per module owning weights
    blocks = []
    for path, module in network.named_modules():
        local = module.named_parameters(recurse=False)
        own = tuple(f"{path}.{name}" if path else name for name, _ in local)
        if own:
            blocks.append(Block(path or "network", (path,), own))
    if not blocks:
        raise BadInputError(
            f"model {model.model_id} has no weights the randomisation test can "
            "re-initialise"
        )
    return blocks


def _refuse_constant_weights(model: FaceModel) -> None:
    """Weights kept as constants (buffers) cannot be re-initialised: say so."""
    constants = [
        name
        for name, buffer in model.network.named_buffers()
        if buffer.is_floating_point() and buffer.dim() >= 2
    ]
    if constants:
        raise BadInputError(
            f"model {model.model_id} keeps {len(constants)} weight tensors as "
            f"constants (e.g. {constants[0]}), not as parameters; the randomisation "
            "test cannot re-initialise them (a converted ONNX model can do this), so "
            "it does not run on this model"
        )


def parameters_sha256(network: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in [*network.named_parameters(), *network.named_buffers()]:
        values = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(values.shape)}:{values.dtype}".encode())
        digest.update(values.cpu().numpy().tobytes() if values.numel() else b"")
    return digest.hexdigest()


def _private_network(model: FaceModel) -> torch.nn.Module:
    """A deep copy of the network with no hooks (see the module docstring)."""
    for attempt in range(3):
        try:  # another thread adding or removing a hook can interrupt the copy
            network = copy.deepcopy(model.network)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    for module in network.modules():
        for name, value in vars(module).items():
            if name.startswith(("_forward", "_backward")) and isinstance(value, dict):
                value.clear()
    return network


def _generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


@torch.no_grad()
def _reinitialise(parameter: torch.Tensor, name: str, seed: int) -> None:
    if parameter.dim() >= 2:
        fan_in = math.prod(parameter.shape[1:])
        std = math.sqrt(2.0 / fan_in)  # He et al. 2015, truncated as in the paper
        values = torch.empty(parameter.shape, dtype=torch.float32, device="cpu")
        torch.nn.init.trunc_normal_(
            values, 0.0, std, -2 * std, 2 * std, generator=_generator(seed, name)
        )
    else:
        scale = name.rsplit(".", 1)[-1] in ("weight", "gamma")
        fill = torch.ones if scale else torch.zeros
        values = fill(parameter.shape, device="cpu")
    parameter.copy_(values.to(parameter.device, parameter.dtype))


def randomised_copy(model: FaceModel, depth: int, seed: int = 0) -> FaceModel:
    """A copy of ``model`` whose ``depth`` deepest blocks are re-initialised.

    ``depth`` 0 is an unchanged copy (its weights hash equals the original's
    tensors).  The shared ``model`` is only read.
    """
    blocks = model_blocks(model)
    if not 0 <= depth <= len(blocks):
        raise BadInputError(
            f"model {model.model_id} has {len(blocks)} blocks, cannot randomise {depth}"
        )
    network = _private_network(model)
    parameters = dict(network.named_parameters())
    modules = dict(network.named_modules())
    for block in blocks[len(blocks) - depth :]:
        for name in block.parameter_names:
            _reinitialise(parameters[name], name, seed)
        for path in block.module_paths:
            for module in modules[path].modules():
                if hasattr(module, "reset_running_stats"):
                    module.reset_running_stats()
    clone = copy.copy(model)
    clone.network = network.eval()
    clone.weights_sha256 = parameters_sha256(network)
    if depth:
        lowest = blocks[len(blocks) - depth].name
        clone.model_id = f"{model.model_id}~randomised-{depth}-seed{seed}"
        clone.display_name = (
            f"{model.display_name}, {depth} of {len(blocks)} blocks re-initialised "
            f"(down to {lowest}, seed {seed})"
        )
    return clone


# ---- comparing maps ---------------------------------------------------------------
def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (as scipy's ``rankdata``, whose
    import alone takes seconds)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_run = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_run)
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size)
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(starts_run) - 1]
    return ranks


def _usable(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.ptp(values) > 0)


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Rank correlation; 0 when either map is constant (no ranking to share)."""
    a, b = np.ravel(first).astype(np.float64), np.ravel(second).astype(np.float64)
    if not (_usable(a) and _usable(b)):
        return 0.0
    ranks_a, ranks_b = _ranks(a), _ranks(b)
    ranks_a -= ranks_a.mean()
    ranks_b -= ranks_b.mean()
    return float(
        ranks_a @ ranks_b / math.sqrt((ranks_a @ ranks_a) * (ranks_b @ ranks_b))
    )


def _unit_range(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if not _usable(values):
        return np.zeros(values.shape)
    return (values - values.min()) / np.ptp(values)


def compare_maps(original: np.ndarray, randomised: np.ndarray) -> dict[str, float]:
    """The three similarities of two signed maps of one image."""
    from skimage.metrics import structural_similarity

    original = np.asarray(original, np.float64)
    randomised = np.asarray(randomised, np.float64)
    side = min(original.shape)
    window = min(7, side if side % 2 else side - 1)  # 7x7, or what a tiny map allows
    return {
        "spearman_abs": spearman(np.abs(original), np.abs(randomised)),
        "spearman_signed": spearman(original, randomised),
        "ssim": float(
            structural_similarity(
                _unit_range(np.abs(original)),
                _unit_range(np.abs(randomised)),
                data_range=1.0,
                win_size=window,
            )
        ),
        "constant": float(not _usable(original) or not _usable(randomised)),
        "constant_original": float(not _usable(original)),
    }


# ---- the test ---------------------------------------------------------------------
@dataclass
class SanityTable:
    """Rows per (method, depth), one verdict per method, and the settings used."""

    data: str
    protocol: str
    pairs_used: int
    pairs_skipped: int
    seed: int
    blocks: list[str]  # shallow to deep
    threshold: float = PASS_THRESHOLD
    rows: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    copy_check: float = 0.0  # max |embedding change| of an unrandomised copy

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def markdown(self) -> str:
        parts = [_markdown(self.rows), "", _markdown(self.verdicts)]
        return "\n".join(parts)


def _markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def choose_depths(block_count: int, requested: int | None) -> list[int]:
    """``requested`` depths spread evenly over 1..block_count, ending with full
    randomisation; every depth when ``requested`` is None or too large."""
    if requested is not None and requested < 1:
        raise BadInputError(f"--blocks must be at least 1, got {requested}")
    if requested is None or requested >= block_count:
        return list(range(1, block_count + 1))
    spread = np.linspace(block_count / requested, block_count, requested)
    return sorted({max(1, round(float(depth))) for depth in spread})


def sanity_check(
    model: FaceModel,
    pairs: Sequence[FacePair],
    methods: Sequence[str | Explainer],
    *,
    depths: Sequence[int] | None = None,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    threshold: float = PASS_THRESHOLD,
    progress: ProgressCallback | None = None,
    data: str = "",
    protocol: str = "",
    pairs_skipped: int = 0,
    engine: Engine | None = None,
) -> SanityTable:
    """Run the cascading randomisation test; ``depths`` default to every block.

    ``methods`` are registered ids or ``Explainer`` instances (a test's control).
    ``seed`` is the methods' seed and the re-initialisation seed.  ``engine``:
    the pairs are measured shard by shard on it (:func:`measure_pairs`), the
    table made here from all of them with the same code.
    """
    if not pairs:
        raise BadInputError("the randomisation test needs at least one pair")
    if not methods:
        raise BadInputError("the randomisation test needs at least one method")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadInputError(f"--seed must be a whole number of 0 or more, got {seed}")
    explainers = [get(m) if isinstance(m, str) else m for m in methods]
    blocks = model_blocks(model)
    depths = sorted(set(depths or range(1, len(blocks) + 1)))
    if depths[0] < 1 or depths[-1] > len(blocks):
        raise BadInputError(
            f"depths must lie in 1..{len(blocks)} (the model's blocks), got {depths}"
        )
    table = SanityTable(
        data, protocol, len(pairs), pairs_skipped, seed, [b.name for b in blocks],
        threshold,
    )  # fmt: skip
    table.copy_check = _copy_check(model, pairs)
    options = SanityOptions(tuple(explainers), tuple(depths), seed,
                            None if params is None else dict(params))  # fmt: skip
    if engine is None:
        total = len(explainers) * len(pairs) * (1 + len(depths))
        parts = [measure_pairs(model, tuple(pairs), options, progress, total)]
    else:
        parts = _measured_sharded(pairs, model, engine, options)
    measured: dict[str, dict[int, list[dict[str, Any]]]] = {}
    refused: dict[str, str] = {}
    for explainer in explainers:  # the first depth any shard refused, its message
        method_id = explainer.info.method_id
        stops = [part[method_id]["refused"] for part in parts]
        first = min((stop for stop in stops if stop is not None),
                    key=lambda stop: stop[0], default=None)  # fmt: skip
        if first is not None:
            refused[method_id] = first[1]
    for depth in depths:
        for explainer in explainers:
            method_id = explainer.info.method_id
            stop = [p[method_id]["refused"] for p in parts if p[method_id]["refused"]]
            if any(depth >= refused_at for refused_at, _ in stop):
                continue
            per_pair = [
                row for part in parts for row in part[method_id]["depths"][str(depth)]
            ]
            measured.setdefault(method_id, {})[depth] = per_pair
            seconds = sum(
                part[method_id]["seconds"][str(depth)] for part in parts
            ) / len(pairs)
            table.rows.append(
                _row(method_id, depth, blocks[len(blocks) - depth].name, per_pair)
                | {"s/pair": round(seconds, 3)}
            )
    for explainer in explainers:
        method_id = explainer.info.method_id
        table.verdicts.append(
            _verdict(
                method_id,
                measured.get(method_id, {}),
                len(blocks),
                threshold,
                refused.get(method_id),
            )
        )
    return table


@dataclass(frozen=True)
class SanityOptions:
    """What :func:`measure_pairs` runs on a shard's pairs."""

    explainers: tuple[Explainer, ...]
    depths: tuple[int, ...]
    seed: int
    params: dict[str, Mapping[str, Any]] | None

    def key_parameters(self) -> dict[str, Any]:
        ids = [explainer.info.method_id for explainer in self.explainers]
        return {
            "methods": ids,
            "depths": list(self.depths),
            "seed": self.seed,
            "params": {m: dict((self.params or {}).get(m) or {}) for m in ids},
        }


def measure_pairs(
    model: FaceModel,
    pairs: tuple[FacePair, ...],
    options: SanityOptions,
    progress: ProgressCallback | None = None,
    total: int = 0,
) -> dict[str, dict[str, Any]]:
    """The shard function of ``xfr eval sanity``: for each method, every pair's
    map on the trained model and on the model randomised to each depth, compared
    (``compare_maps``); the first depth a method refuses, and why; the seconds
    per depth.  JSON data (the checkpoint keeps it as it is)."""
    done = 0
    seed, params = options.seed, options.params

    def explain(explainer: Explainer, pair: FacePair, on: FaceModel) -> list[Any]:
        nonlocal done
        method_id = explainer.info.method_id
        result = explainer.explain(pair, on, (params or {}).get(method_id), seed)
        done += 1
        if progress is not None:
            progress(done, total, method_id)
        return [maps.chip.combined for maps in result.images]

    originals = {
        explainer.info.method_id: [explain(explainer, pair, model) for pair in pairs]
        for explainer in options.explainers
    }
    out: dict[str, dict[str, Any]] = {
        e.info.method_id: {"depths": {}, "seconds": {}, "refused": None}
        for e in options.explainers
    }
    for depth in options.depths:
        randomised = randomised_copy(model, depth, seed)
        for explainer in options.explainers:
            method_id = explainer.info.method_id
            if out[method_id]["refused"] is not None:
                done += len(pairs)
                continue
            began = time.perf_counter()
            per_pair = []
            try:
                for pair, original in zip(pairs, originals[method_id], strict=True):
                    maps = explain(explainer, pair, randomised)
                    sides = [
                        _plain(compare_maps(o, r))
                        for o, r in zip(original, maps, strict=True)
                    ]
                    per_pair.append(
                        {k: float(np.mean([s[k] for s in sides])) for k in sides[0]}
                        | {
                            "constant": sum(s["constant"] for s in sides),
                            "constant_original": sum(
                                s["constant_original"] for s in sides
                            ),
                            # the comparisons the verdict is made on (no constant map)
                            "usable": [s for s in sides if not s["constant"]],
                        }
                    )
            except BadInputError as error:  # e.g. a part trained for the weights
                # its own advice (e.g. "train one for this model") does not apply
                out[method_id]["refused"] = [depth, str(error).split("; ")[0]]
                continue
            out[method_id]["depths"][str(depth)] = per_pair
            out[method_id]["seconds"][str(depth)] = time.perf_counter() - began
    return out


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """numpy scalars as Python numbers (JSON, and equal after a round trip)."""
    return {
        key: bool(value) if isinstance(value, (bool, np.bool_)) else float(value)
        for key, value in values.items()
    }


def _measured_sharded(
    pairs: Sequence[FacePair],
    model: FaceModel,
    engine: Engine,
    options: SanityOptions,
) -> list[dict[str, dict[str, Any]]]:
    from core.engine import run_sharded
    from core.metrics.evaluate import face_pair_shards

    size = engine.shard_size or SHARD_PAIRS
    shards = face_pair_shards(
        pairs, model, size, "eval sanity", options.key_parameters()
    )
    return run_sharded(
        engine,
        measure_pairs,
        model,
        shards,
        options,
        command="eval sanity",
        total=len(pairs),
        encode=lambda result: result,
        decode=lambda data: data,
    )


def _copy_check(model: FaceModel, pairs: Sequence[FacePair]) -> float:
    """Largest embedding change an unrandomised copy makes (0: the copy is exact)."""
    chips = np.stack([view.chip for pair in pairs[:2] for view in pair.sides])
    unchanged = randomised_copy(model, 0)
    return float(np.abs(unchanged.embed_chips(chips) - model.embed_chips(chips)).max())


def _row(method_id: str, depth: int, lowest: str, per_pair: list[dict[str, float]]):
    row: dict[str, Any] = {
        "method": method_id,
        "blocks_randomised": depth,
        "down_to": lowest,
        "pairs": len(per_pair),
    }
    for key in ("spearman_abs", "spearman_signed", "ssim"):
        values = [p[key] for p in per_pair]
        row[f"{key}_mean"] = float(np.mean(values))
        row[f"{key}_sd"] = float(np.std(values))
    row["constant_maps"] = int(sum(p["constant"] for p in per_pair))
    return row


def _verdict(method_id, by_depth, block_count, threshold, refused):
    verdict: dict[str, Any] = {
        "method": method_id,
        "spearman_abs_full": None,
        "spearman_signed_full": None,
        "maps_compared": 0,
        "constant_maps": 0,
        "verdict": "",
    }
    if refused is not None:
        verdict["verdict"] = (
            f"not judged: the method refuses a randomised model ({refused})"
        )
    elif block_count not in by_depth:
        verdict["verdict"] = "not judged: full randomisation was not run"
    else:
        full = by_depth[block_count]
        usable = [side for p in full for side in p["usable"]]
        verdict["maps_compared"] = len(usable)
        verdict["constant_maps"] = int(sum(p["constant"] for p in full))
        if not usable:
            originals = sum(p["constant_original"] for p in full)
            verdict["verdict"] = (
                CONSTANT_ORIGINAL
                if originals == verdict["constant_maps"]
                else CONSTANT_RANDOMISED
                if originals == 0
                else CONSTANT_MAPS
            )
            return verdict
        rho_abs = float(np.mean([side["spearman_abs"] for side in usable]))
        rho_signed = float(np.mean([side["spearman_signed"] for side in usable]))
        worst = max(abs(rho_abs), abs(rho_signed))
        verdict |= {
            "spearman_abs_full": rho_abs,
            "spearman_signed_full": rho_signed,
            "verdict": PASSES if worst < threshold else FAILS,
        }
    return verdict


# ---- outputs ----------------------------------------------------------------------
def write_outputs(table: SanityTable, out_dir: str | Path) -> dict[str, str]:
    """``sanity.json``, ``sanity.md``, ``sanity.csv`` and ``sanity.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: str(folder / f"sanity.{name}") for name in ("json", "md", "csv")}
    Path(files["json"]).write_text(json.dumps(table.to_dict(), indent=2, default=float))
    Path(files["md"]).write_text(table.markdown() + "\n")
    with open(files["csv"], "w", newline="") as handle:
        if table.rows:
            writer = csv.DictWriter(handle, fieldnames=list(table.rows[0]))
            writer.writeheader()
            writer.writerows(table.rows)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    methods = list(dict.fromkeys(row["method"] for row in table.rows))
    for axis, key, title in zip(
        axes,
        ("spearman_abs", "spearman_signed", "ssim"),
        ("rank correlation, absolute maps", "rank correlation, signed maps", "SSIM"),
        strict=True,
    ):
        for index, method in enumerate(methods):
            rows = [row for row in table.rows if row["method"] == method]
            axis.errorbar(
                [row["blocks_randomised"] for row in rows],
                [row[f"{key}_mean"] for row in rows],
                yerr=[row[f"{key}_sd"] for row in rows],
                marker="o", ms=3, capsize=2, color=f"C{index % 10}", label=method,
            )  # fmt: skip
        if key.startswith("spearman"):
            for level in (-table.threshold, table.threshold):
                axis.axhline(level, color="k", ls="--", lw=0.8)
        axis.set_title(title)
        axis.set_xlabel(
            f"blocks re-initialised (of {len(table.blocks)}, deepest first)"
        )
        axis.set_ylim(-0.2 if key == "ssim" else -1, 1.02)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.suptitle(f"Model-parameter randomisation ({Path(table.data).name})")
    figure.tight_layout()
    files["plot"] = str(folder / "sanity.png")
    figure.savefig(files["plot"], dpi=110)
    plt.close(figure)
    return files
