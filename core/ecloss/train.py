"""Fine-tuning a face model with identity loss + β·ECLoss (Lin et al. 2023, eq. 7).

``Total = α · Loss(y, ŷ) - β · MI(T; X)`` with ``α = 1`` (§4.2) and ``X`` the feature
maps of one chosen layer.  What follows the paper and what is **our choice**:

* Identity loss.  The paper trains VGG classifiers with softmax from scratch on
  Glint360K.  We fine-tune an existing embedding model, and the default model
  (dlib's ResNet) was trained with dlib's metric loss on its 128-d descriptor, whose
  decision rule (Euclidean distance 0.6) the application uses; a softmax head over a
  few hundred new identities would start random and pull the embedding away from
  that rule.  So the identity loss is **dlib's own** ``loss_metric`` (distance
  threshold 0.6, margin 0.04): over every pair in the batch, same-person pairs pay
  ``max(0, d - 0.56)``, and as many of the hardest different-person pairs as there
  are same-person pairs pay ``max(0, 0.64 - d)``; the sum is divided by the number
  of same-person pairs (``dlib/dnn/loss.h``, ``loss_metric_``).  Batches therefore
  hold ``per_identity`` images of each of several people.
* β schedule (§4.2): "β is set as 1e-5 initially and then automatically changed by
  the program to reduce the total loss".  Our reading: β is one more trainable
  number, updated by gradient descent on the total loss; since
  ``∂Total/∂β = -MI ≤ 0`` the update ``β ← β + beta_lr · MI`` can only raise β, so
  it is capped at ``beta_max`` (default 0.02: in a pilot on dlib's ``stage3.block2``
  with ``τ = 0.1``, a cap of 1 let β pass 0.1 within ten steps and the run diverged
  to NaN by step 20; 0.02 stays finite).  ``beta_schedule="constant"`` keeps β fixed;
  β = 0 is the control (the ECLoss term is still measured and logged, never
  applied).
* Templates: §3.1 / §4.2 (:mod:`core.ecloss.templates`), ``τ`` and ``r`` as given.
  The paper's ``τ = 0.001`` suits activations as large as an un-normalised VGG's;
  on dlib's ``stage3.block2`` (mean activation 0.9) it gives ``MI ≈ 0.001`` with a
  gradient about 2 000 times smaller than the identity loss's, i.e. no effect in a
  short fine-tune.  §4.2 reports that results are not sensitive to τ and keeps it
  small only against overflow, which the log-sum-exp here rules out; so a larger
  ``τ`` (``--tau``) is a legitimate setting for such models.
* Optimiser: SGD with momentum 0.9 (the paper gives only "learning rate 0.03, batch
  64"; 0.03 is a from-scratch rate, we fine-tune with 1e-3 by default) or Adam.
* Only the layers from ``train_from`` on are trained (default: the first tap with
  the target layer's resolution); earlier layers are frozen, which is what makes a
  CPU fine-tune feasible.  The network runs in eval mode (normalisation statistics
  frozen), as is usual for small-batch fine-tuning.
* Augmentation: a seeded random horizontal flip per image.  Batches depend only on
  ``(seed, step)``, so a resumed run sees exactly the batches an uninterrupted run
  would.

The result is a TorchScript file with a model card (``*.pt.card.toml``) that the
model-file loader reads like any bring-your-own model; the card's ``[training]``
table records the base model and its hash, the data, the layer, the templates, the
β schedule, the steps, the seed, the final losses and the software versions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shlex
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from core.ecloss.loss import ECLoss, PxMode
from core.ecloss.templates import (
    PAPER_TAU,
    PAPER_TEMPLATE_COUNT,
    activation_templates,
)
from core.errors import BadInputError, Cancelled
from core.explain.layers import output_shapes
from core.io.atomic import atomic_writer
from core.models.base import FaceModel
from core.models.loading import EagerFaceModel
from core.models.model_card import ModelCard, training_record
from core.models.model_registry import registry
from core.progress import ProgressCallback
from core.references import REFERENCES

ECLOSS = REFERENCES["ecloss"]  # the paper this trains by, recorded in the card


CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
HISTORY_NAME = "history.json"
CHECKPOINT_VERSION = 1
PAPER_BETA0 = 1e-5  # §4.2
DLIB_DISTANCE_THRESHOLD = 0.6  # dlib loss_metric_ defaults
DLIB_MARGIN = 0.04


@dataclass
class ECLossConfig:
    """Everything that defines a fine-tuning run (recorded in the card)."""

    layer: str
    steps: int = 600
    batch_size: int = 64
    per_identity: int = 4
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    beta_schedule: Literal["paper", "constant"] = "paper"
    beta0: float = PAPER_BETA0
    beta_lr: float = 1e-3
    beta_max: float = 0.02
    tau: float = PAPER_TAU
    radius: float | None = None  # None: the paper's r = 4 scaled to the map
    templates: int = PAPER_TEMPLATE_COUNT
    p_x: PxMode = "paper"
    train_from: str | None = None
    flip: bool = True
    seed: int = 0
    checkpoint_every: int = 100
    distance_threshold: float = DLIB_DISTANCE_THRESHOLD
    margin: float = DLIB_MARGIN

    def check(self) -> None:
        if self.steps < 1:
            raise BadInputError("--steps must be at least 1")
        if self.batch_size < 4 or self.per_identity < 2:
            raise BadInputError(
                "a batch needs at least 4 images and 2 images per person "
                "(the identity loss compares same-person pairs)"
            )
        if self.beta0 < 0 or self.beta_max < 0 or self.beta_lr < 0:
            raise BadInputError("β values must not be negative")
        if self.lr <= 0:
            raise BadInputError("--lr must be positive")
        if self.tau <= 0 or (self.radius is not None and self.radius <= 0):
            raise BadInputError("τ and r must be positive (§3.1)")

    @property
    def is_control(self) -> bool:
        return self.beta0 == 0


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run produced."""

    model_path: Path
    card_path: Path
    checkpoint_path: Path
    history_path: Path
    steps: int
    seconds: float
    final: dict[str, float]
    history: list[dict[str, float]] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("history")
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


# ---- models --------------------------------------------------------------------------
def trainable_copy(model: FaceModel) -> FaceModel:
    """A copy with its own network, so the registry's cached model stays untouched."""
    return EagerFaceModel(
        model, copy.deepcopy(model.network), tuple(model.layer_taps())
    )


def check_layer(model: FaceModel, layer: str) -> tuple[int, int, int]:
    """(channels, h, w) of a spatial layer; BadInputError for any other."""
    taps = model.layer_taps()
    if not taps:
        raise BadInputError(
            f"model {model.model_id} exposes no layers (a TorchScript file cannot be "
            "hooked); use an ONNX export, a built-in model or a model fine-tuned here"
        )
    model.tap(layer)  # BadInputError listing the known layers
    shape = output_shapes(model).get(layer)
    if shape is None or len(shape) != 3:
        raise BadInputError(
            f"layer '{layer}' of {model.model_id} is not a convolutional feature map "
            f"(output {shape}); ECLoss needs a spatial layer"
        )
    return shape  # type: ignore[return-value]


def default_train_from(model: FaceModel, layer: str) -> str:
    """The first tap with the same resolution as ``layer`` (its stage's start)."""
    shapes = output_shapes(model)
    target = shapes[layer][1:]
    for tap in model.layer_taps():
        if len(shapes.get(tap.name, ())) == 3 and shapes[tap.name][1:] == target:
            return tap.name
    return layer


def freeze_before(model: FaceModel, tap_name: str) -> tuple[int, int]:
    """Freeze every parameter of the modules that run before ``tap_name``'s module.

    Order is the network's module order (``named_modules``); returns (trainable,
    frozen) parameter counts.
    """
    module_path = model.tap(tap_name).module_path
    order = {
        name: index for index, (name, _) in enumerate(model.network.named_modules())
    }
    if module_path not in order:
        raise BadInputError(f"unknown module '{module_path}' for layer '{tap_name}'")
    start = order[module_path]
    trainable = frozen = 0
    for name, parameter in model.network.named_parameters():
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        before = (
            owner in order
            and order[owner] < start
            and not module_path.startswith(owner + ".")
            and owner != ""
        )
        parameter.requires_grad_(not before)
        if before:
            frozen += parameter.numel()
        else:
            trainable += parameter.numel()
    return trainable, frozen


# ---- losses and batches --------------------------------------------------------------
def metric_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    threshold: float = DLIB_DISTANCE_THRESHOLD,
    margin: float = DLIB_MARGIN,
) -> torch.Tensor:
    """dlib's ``loss_metric_`` on raw descriptors (see the module doc)."""
    count = embeddings.shape[0]
    rows, cols = torch.triu_indices(count, count, 1, device=embeddings.device)
    differences = embeddings[rows] - embeddings[cols]
    distances = differences.pow(2).sum(dim=1).clamp_min(1e-12).sqrt()
    same = labels[rows] == labels[cols]
    positives = distances[same]
    negatives = distances[~same]
    pairs = int(same.sum())
    if pairs == 0 or negatives.numel() == 0:
        raise BadInputError("a batch needs same-person and different-person pairs")
    hardest = min(pairs, negatives.numel())
    cut = negatives.detach().sort().values[hardest - 1]
    positive_loss = (positives - (threshold - margin)).clamp_min(0).sum()
    negative_loss = ((threshold + margin) - negatives[negatives <= cut]).clamp_min(0)
    return (positive_loss + negative_loss.sum()) / pairs


def batch_indices(
    labels: np.ndarray, step: int, seed: int, batch_size: int, per_identity: int
) -> tuple[np.ndarray, np.ndarray]:
    """(image indices, flip flags) of one step; depends only on (seed, step)."""
    rng = np.random.default_rng([seed, step])
    by_identity: dict[int, np.ndarray] = {}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) >= 2:
            by_identity[int(label)] = members
    identities = np.array(sorted(by_identity))
    chosen: list[int] = []
    for identity in rng.permutation(identities):
        members = by_identity[int(identity)]
        take = min(per_identity, len(members), batch_size - len(chosen))
        if take < 2:
            break
        chosen.extend(rng.choice(members, take, replace=False).tolist())
        if len(chosen) >= batch_size:
            break
    indices = np.asarray(chosen, np.int64)
    return indices, rng.random(len(indices)) < 0.5


# ---- card ----------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings


def _toml_table(name: str, values: dict[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    nested = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict):
            nested[key] = value
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in nested.items():
        lines += ["", *_toml_table(f"{name}.{key}", value)]
    return lines


def write_card(
    path: Path,
    base: FaceModel,
    model_id: str,
    name: str,
    description: str,
    training: dict[str, Any],
) -> None:
    """The card beside the TorchScript file (read by ``core.models.model_card``)."""
    pre = base.preprocessing
    threshold = base.threshold
    lines = [
        f"id = {_toml_value(model_id)}",
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(description)}",
        f"input_size = {_toml_value(list(pre.input_size))}",
        f"channel_order = {_toml_value(pre.channel_order)}",
        f"mean = {_toml_value([float(v) for v in pre.mean])}",
        f"std = {_toml_value([float(v) for v in pre.std])}",
        f"alignment = {_toml_value(pre.alignment)}",
        f"flip_average = {_toml_value(pre.flip_average)}",
        "",
        "[threshold]",
        f"metric = {_toml_value(threshold.metric)}",
        f"value = {_toml_value(float(threshold.value))}",
        "source = "
        + _toml_value(
            f"inherited unchanged from the base model {base.model_id} "
            f"({threshold.source or threshold.rule_text()}); not re-estimated after "
            "fine-tuning - validate or calibrate before any casework"
        ),
        "",
        *_toml_table("training", training),
    ]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(path)


def export_torchscript(model: FaceModel, path: Path) -> None:
    """Trace the network on a 2-image batch and save it as TorchScript."""
    network = model.network
    was_training = network.training
    network.eval()
    height, width = model.input_size
    example = torch.zeros(2, 3, height, width, device=model.device)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and torch.jit deprecation notes
            traced = torch.jit.trace(network, example, check_trace=False)
            partial = path.with_name(path.name + ".partial")
            traced.save(str(partial))
        partial.replace(path)
    finally:
        network.train(was_training)


# ---- the run -------------------------------------------------------------------------
def _software() -> dict[str, str]:
    from core import __version__

    return {"xfr_desktop": __version__, "torch": torch.__version__}


def _architecture(model: FaceModel) -> str:
    """The built-in architecture an eager copy can be rebuilt from ("" if none)."""
    record = {}
    card = getattr(model, "card", None)  # a model file's card (FileFaceModel, eager)
    if isinstance(card, ModelCard):
        record = training_record(card.path)
    if record.get("architecture"):
        return str(record["architecture"])
    return model.model_id if model.model_id in registry() else ""


def train_ecloss(
    model: FaceModel,
    chip_set: Any,
    config: ECLossConfig,
    out: str | Path,
    *,
    resume: bool = False,
    model_id: str | None = None,
    data_description: str = "",
    command: list[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune a copy of ``model`` on ``chip_set`` (``core.train_data.ChipSet``).

    Writes ``checkpoint.pt`` every ``checkpoint_every`` steps, and at the end
    ``model.pt`` (TorchScript), ``model.pt.card.toml`` and ``history.json`` in ``out``.
    ``resume`` continues from ``out/checkpoint.pt``; the checkpoint must come from
    the same base model, data and settings.
    """
    config.check()
    started = time.perf_counter()
    out = Path(out)
    checkpoint_path = out / CHECKPOINT_NAME
    if checkpoint_path.is_file() and not resume:
        raise BadInputError(
            "a checkpoint is already there; pass --resume to continue it or choose "
            "another --out",
            checkpoint_path,
        )
    out.mkdir(parents=True, exist_ok=True)
    base_sha = model.weights_sha256
    architecture = _architecture(model)
    work = trainable_copy(model)
    channels, height, width = check_layer(work, config.layer)
    train_from = config.train_from or default_train_from(work, config.layer)
    work.tap(train_from)
    trainable, frozen = freeze_before(work, train_from)
    templates = activation_templates(
        (height, width), tau=config.tau, radius=config.radius, count=config.templates
    )
    ecloss = ECLoss(templates, p_x=config.p_x).to(work.device)
    parameters = [p for p in work.network.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            parameters, lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    labels = np.asarray(chip_set.labels)
    if len(np.unique(labels)) < 2:
        raise BadInputError("the training data needs at least two people")
    settings = asdict(config)
    for free in ("steps", "checkpoint_every"):  # a resumed run may go on longer
        settings.pop(free)
    identity = json.loads(
        json.dumps(
            {
                "base_model_id": model.model_id,
                "base_weights_sha256": base_sha,
                "images": len(labels),
                "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                "config": settings,
            }
        )
    )
    beta = 0.0 if config.is_control else config.beta0
    history: list[dict[str, float]] = []
    step = 0
    elapsed_before = 0.0
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=work.device, weights_only=True)
        if state.get("version") != CHECKPOINT_VERSION:
            raise BadInputError("checkpoint of another version", checkpoint_path)
        saved = json.loads(state["identity"])
        if saved != identity:
            changed = sorted(k for k in identity if saved.get(k) != identity[k])
            raise BadInputError(
                f"checkpoint was made with other settings ({', '.join(changed)}); "
                "use the same command or another --out",
                checkpoint_path,
            )
        work.network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        beta = float(state["beta"])
        step = int(state["step"])
        history = json.loads(state["history"])
        elapsed_before = float(state["seconds"])

    def save_checkpoint() -> None:
        state = {
            "version": CHECKPOINT_VERSION,
            "identity": json.dumps(identity),
            "network": work.network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "beta": beta,
            "step": step,
            "history": json.dumps(history),
            "seconds": elapsed_before + time.perf_counter() - started,
        }
        # replaced only when complete: a killed run resumes from the last one
        with atomic_writer(checkpoint_path, sync_folder=False) as writer:
            torch.save(state, writer)
        (out / HISTORY_NAME).write_text(json.dumps(history), encoding="utf-8")

    work.network.eval()  # see the module doc: normalisation statistics stay frozen
    while step < config.steps:
        if cancel is not None and cancel():
            save_checkpoint()
            raise Cancelled(f"training stopped at step {step}; --resume continues it")
        step_started = time.perf_counter()
        indices, flips = batch_indices(
            labels, step, config.seed, config.batch_size, config.per_identity
        )
        chips = np.array(chip_set.chips[indices])
        if config.flip:
            chips[flips] = chips[flips, :, ::-1]
        batch = work.prepare(chips)
        batch_labels = torch.as_tensor(labels[indices], device=work.device)
        with work.capture([config.layer]) as activations:
            embeddings = work.network(batch).reshape(len(indices), -1)
        features = activations[config.layer]
        identity_loss = metric_loss(
            embeddings, batch_labels, config.distance_threshold, config.margin
        )
        information = ecloss.mutual_information(features)
        total = identity_loss - beta * information  # eq. 7 with α = 1
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        mi = float(information.detach())
        if config.beta_schedule == "paper" and not config.is_control:
            beta = min(config.beta_max, beta + config.beta_lr * mi)  # -∂Total/∂β = MI
        step += 1
        record = {
            "step": step,
            "identity_loss": float(identity_loss.detach()),
            "mi": mi,
            "mean_information": float(ecloss.information(features.detach()).mean()),
            "ecloss": -mi,
            "beta": beta,
            "total": float(total.detach()),
            "seconds": time.perf_counter() - step_started,
        }
        history.append(record)
        if progress is not None:
            progress(
                step,
                config.steps,
                f"step {step}/{config.steps}: identity {record['identity_loss']:.4f}, "
                f"MI {mi:.4f} (per map {record['mean_information']:.4f} nats), "
                f"β {beta:.3g}, {record['seconds']:.2f} s",
            )
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint()

    seconds = elapsed_before + time.perf_counter() - started
    last = history[-min(len(history), 20) :]
    final = {
        key: float(np.mean([h[key] for h in last]))
        for key in ("identity_loss", "mi", "mean_information", "total")
    }
    final["beta"] = beta
    first = history[: min(len(history), 20)]
    initial = {
        key: float(np.mean([h[key] for h in first]))
        for key in ("identity_loss", "mi", "mean_information")
    }
    model_path = out / MODEL_NAME
    export_torchscript(work, model_path)
    from core.resources import sha256_file

    new_id = model_id or (
        f"{model.model_id}-ecloss-control"
        if config.is_control
        else f"{model.model_id}-ecloss"
    )
    kind = "β = 0 control" if config.is_control else "identity loss + β·ECLoss"
    training = {
        "kind": "ecloss",
        "paper": f"{ECLOSS.short}, {ECLOSS.title}",
        "architecture": architecture,
        "base_model_id": model.model_id,
        "base_weights_sha256": base_sha,
        "weights_sha256": sha256_file(model_path),
        "data": data_description,
        "images": len(labels),
        "identities": len(np.unique(labels)),
        "layer": config.layer,
        "layer_shape": [channels, height, width],
        "train_from": train_from,
        "trainable_parameters": trainable,
        "frozen_parameters": frozen,
        "identity_loss": f"dlib loss_metric (threshold {config.distance_threshold}, "
        f"margin {config.margin})",
        "steps": step,
        "batch_size": config.batch_size,
        "per_identity": config.per_identity,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "momentum": config.momentum,
        "weight_decay": config.weight_decay,
        "flip": config.flip,
        "seed": config.seed,
        "seconds": round(seconds, 1),
        "command": shlex.join(command) if command else "",
        "beta": {
            "schedule": "control (β = 0)"
            if config.is_control
            else config.beta_schedule,
            "beta0": 0.0 if config.is_control else config.beta0,
            "beta_lr": config.beta_lr,
            "beta_max": config.beta_max,
            "final": beta,
        },
        "templates": {**templates.describe(), "p_x": config.p_x},
        "initial": initial,
        "final": final,
        "software": _software(),
    }
    card_path = model_path.with_name(model_path.name + ".card.toml")
    write_card(
        card_path,
        model,
        new_id,
        f"{model.display_name}, ECLoss fine-tune ({kind})",
        f"{model.model_id} fine-tuned for {step} steps on {data_description or 'data'} "
        f"with {kind} on layer {config.layer} (Lin et al. 2023). Research model: its "
        "threshold is the base model's, not re-validated.",
        training,
    )
    history_path = out / HISTORY_NAME
    history_path.write_text(json.dumps(history), encoding="utf-8")
    return TrainResult(
        model_path=model_path,
        card_path=card_path,
        checkpoint_path=checkpoint_path,
        history_path=history_path,
        steps=step,
        seconds=seconds,
        final=final,
        history=history,
    )
