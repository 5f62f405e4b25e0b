"""Training the face reconstructor with the face model frozen.

DDFV's reconstruction module, Xu et al. 2023, §III-C, §IV-A.

Xu et al. (2023) train the recognition and the explanation flows jointly with
L = L_id + λ·L_rec (eq. 2).  Our backbone is a fixed, published model whose scores
examiners rely on, so only the reconstruction term is trained: the backbone stays
frozen and bit-identical (its SHA-256 goes on the card), L = L_rec = MSE between the
chip (RGB in [0, 1]) and its reconstruction, Adam with learning rate 2e-4 as in
§IV-A.  Our choices where the paper is silent: batch 32, horizontal-flip
augmentation, a held-out 5 % of the identities for validation (loss and PSNR), and
the feature maps of the frozen backbone computed once up front.

Checkpoints (network, optimiser, epoch, losses, RNG state) are written after every
epoch beside the output; ``resume=True`` continues from one, refusing a checkpoint
that was made with other data or settings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import BadInputError, Cancelled
from core.explain.layers import output_shapes
from core.models.base import FaceModel
from core.progress import ProgressCallback
from core.reconstruct.network import (
    DEFAULT_TAPS,
    FaceReconstructor,
    ReconstructorCard,
    save_reconstructor,
)
from core.train_data import ChipSet

LEARNING_RATE = 2e-4  # Xu et al. 2023, §IV-A, Adam
VALIDATION_SHARE = 0.05


@dataclass
class TrainingSettings:
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = LEARNING_RATE
    seed: int = 0
    flip: bool = True
    tap: str | None = None  # None: DEFAULT_TAPS or the deepest map of >= 7x7
    widths: tuple[int, int, int] = (128, 64, 32)  # channels of the first 3 layers

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainingReport:
    out: Path
    epochs_run: int
    train_losses: list[float]
    validation_losses: list[float]
    validation_psnr_db: float
    seconds: float
    resumed_from_epoch: int = 0
    card: dict[str, Any] = field(default_factory=dict)


def choose_tap(model: FaceModel, tap: str | None) -> str:
    """The tap to decode: given, the model's documented default, or the deepest
    tap whose grid is at least 7×7 (Xu et al. 2023 decode a 7×7 map)."""
    if tap:
        model.tap(tap)  # raises BadInputError listing the taps
        return tap
    if model.model_id in DEFAULT_TAPS:
        return DEFAULT_TAPS[model.model_id]
    shapes = output_shapes(model)
    spatial = [
        name
        for name, shape in shapes.items()
        if len(shape) == 3 and min(shape[1:]) >= 7  # a feature map, 7x7 or more
    ]
    if not spatial:
        raise BadInputError(f"model {model.model_id} has no spatial layer tap")
    return spatial[-1]


@torch.inference_mode()
def feature_maps(
    model: FaceModel,
    chips: np.ndarray,
    tap: str,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """The frozen backbone's maps at ``tap`` for uint8 chips, float32 on the CPU."""
    parts = []
    model.network.eval()
    for start in range(0, len(chips), batch_size):
        if cancel is not None and cancel():
            raise Cancelled("training cancelled")
        with model.capture([tap]) as captured:
            model.embed(model.prepare(chips[start : start + batch_size]))
        parts.append(captured[tap].float().cpu())
        if progress is not None:
            done = min(len(chips), start + batch_size)
            progress(done, len(chips), "feature maps of the frozen model")
    return torch.cat(parts)


def split_by_identity(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation indices; validation identities never appear in training."""
    identities = np.unique(labels)
    rng = np.random.default_rng(seed)
    count = max(1, math.ceil(VALIDATION_SHARE * len(identities)))
    if len(identities) < 2:
        count = 0
    held_out = set(rng.choice(identities, size=count, replace=False).tolist())
    validation = np.array([i for i, x in enumerate(labels) if x in held_out], int)
    train = np.array([i for i, x in enumerate(labels) if x not in held_out], int)
    return train, validation


def _targets(chips: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0


def _evaluate(
    network: FaceReconstructor,
    features: torch.Tensor,
    chips: np.ndarray,
    batch_size: int,
) -> tuple[float, float]:
    """(MSE, PSNR in dB) of the reconstructions, [0, 1] pixel scale."""
    if len(chips) == 0:
        return float("nan"), float("nan")
    network.eval()
    device = next(network.parameters()).device
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(chips), batch_size):
            stop = start + batch_size
            output = network(features[start:stop].to(device))
            target = _targets(chips[start:stop]).to(device)
            total += float(F.mse_loss(output, target, reduction="sum"))
    mse = total / (len(chips) * math.prod(chips.shape[1:]))  # Python float: the
    return mse, 10 * math.log10(1.0 / max(mse, 1e-12))  # checkpoint holds plain values


def train_reconstructor(
    model: FaceModel,
    chip_set: ChipSet,
    out: str | Path,
    settings: TrainingSettings,
    *,
    data_description: dict[str, Any] | None = None,
    command: str = "",
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainingReport:
    """Train, checkpoint every epoch, write the reconstructor and card to ``out``."""
    from core import __version__

    started = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out.with_name(out.name + ".checkpoint")
    if len(chip_set) < 2:
        raise BadInputError("need at least two face images to train on")
    tap = choose_tap(model, settings.tap)
    torch.manual_seed(settings.seed)
    train_idx, validation_idx = split_by_identity(chip_set.labels, settings.seed)
    chips = chip_set.chips
    flips = 2 if settings.flip else 1
    total_steps = settings.epochs * math.ceil(
        flips * len(train_idx) / settings.batch_size
    )

    def features_progress(done: int, total: int, message: str) -> None:
        if progress is not None:
            progress(0, total_steps, f"{message} {done}/{total}")

    features = feature_maps(
        model, chips, tap, progress=features_progress, cancel=cancel
    )
    train_chips = chips[train_idx]
    train_features = features[train_idx]
    if settings.flip:  # a mirrored face is another plausible face: twice the data
        mirrored = np.ascontiguousarray(train_chips[:, :, ::-1])
        train_features = torch.cat(
            [train_features, feature_maps(model, mirrored, tap, cancel=cancel)]
        )
        train_chips = np.concatenate([train_chips, mirrored])
    validation_chips, validation_features = (
        chips[validation_idx],
        features[validation_idx],
    )

    device = model.device  # train where the model runs (GPU when present)
    chip_height, chip_width = model.input_size
    network = FaceReconstructor(
        features.shape[1], (chip_height, chip_width), settings.widths, features.shape[2]
    ).to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    fingerprint = {
        "model_sha256": model.weights_sha256,
        "tap": tap,
        "images": len(chip_set),
        "paths_head": chip_set.paths[:3],
        # the epoch count may change: a resumed run can be extended
        "settings": {k: v for k, v in settings.to_dict().items() if k != "epochs"},
    }
    train_losses: list[float] = []
    validation_losses: list[float] = []
    best: dict[str, Any] | None = None  # the epoch with the lowest held-out loss
    first_epoch = 0
    generator = torch.Generator().manual_seed(settings.seed)
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fingerprint:
            raise BadInputError(
                "checkpoint was made with other data, model or settings; delete it "
                "or train without --resume",
                checkpoint_path,
            )
        network.load_state_dict(state["network"])  # optimiser follows its params
        optimiser.load_state_dict(state["optimiser"])
        generator.set_state(state["generator"])
        train_losses, validation_losses = (
            state["train_losses"],
            state["validation_losses"],
        )
        first_epoch = int(state["epoch"])
        best = state.get("best")

    steps_per_epoch = math.ceil(len(train_chips) / settings.batch_size)
    step = first_epoch * steps_per_epoch
    for epoch in range(first_epoch, settings.epochs):
        network.train()
        order = torch.randperm(len(train_chips), generator=generator).numpy()
        running = 0.0
        for start in range(0, len(order), settings.batch_size):
            if cancel is not None and cancel():
                raise Cancelled("training cancelled (the last checkpoint is kept)")
            batch = order[start : start + settings.batch_size]
            output = network(train_features[batch].to(device))
            target = _targets(train_chips[batch]).to(device)
            loss = F.mse_loss(output, target)  # L_rec of Xu et al. 2023, eq. (2)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            running_loss = float(loss.detach())
            running += running_loss * len(batch)
            step += 1
            if progress is not None:
                progress(
                    step,
                    total_steps,
                    f"epoch {epoch + 1}/{settings.epochs}, loss {running_loss:.5f}",
                )
        train_losses.append(running / len(order))
        validation_losses.append(
            _evaluate(network, validation_features, validation_chips, 64)[0]
        )
        # Keep the epoch that reconstructs unseen people best (early stopping): on a
        # few thousand faces the decoder starts to memorise after a few epochs.
        if (
            best is None
            or not validation_idx.size
            or validation_losses[-1] <= best["validation_loss"]
        ):
            best = {
                "epoch": epoch + 1,
                "validation_loss": validation_losses[-1],
                "network": {
                    k: v.detach().clone() for k, v in network.state_dict().items()
                },
            }
        partial = checkpoint_path.with_name(checkpoint_path.name + ".partial")
        torch.save(
            {
                "fingerprint": fingerprint,
                "network": network.state_dict(),
                "optimiser": optimiser.state_dict(),
                "generator": generator.get_state(),
                "train_losses": train_losses,
                "validation_losses": validation_losses,
                "epoch": epoch + 1,
                "best": best,
            },
            partial,
        )
        partial.replace(checkpoint_path)  # a kill mid-write keeps the previous one

    if best is not None:
        network.load_state_dict(best["network"])
    validation_mse, validation_psnr = _evaluate(
        network, validation_features, validation_chips, 64
    )
    seconds = time.perf_counter() - started
    channels, height, width = (int(v) for v in features.shape[1:])
    card = ReconstructorCard(
        model_id=model.model_id,
        backbone_sha256=model.weights_sha256,
        tap=tap,
        feature_shape=(channels, height, width),
        chip_size=(chip_height, chip_width),
        widths=settings.widths,
        data={
            **(data_description or {}),
            "images_used": len(chip_set),
            "identities": len(chip_set.identities),
            "images_without_face": len(chip_set.skipped),
            "train_images": len(train_idx),
            "validation_images": len(validation_idx),
            "validation_split": "5 % of the identities, held out",
        },
        training={
            **settings.to_dict(),
            "tap": tap,
            "loss": "MSE on RGB in [0, 1] (Xu et al. 2023, eq. 2, L_rec only; backbone "
            "frozen)",
            "optimiser": "Adam",
            "epochs_run": len(train_losses),
            "train_losses": [round(v, 6) for v in train_losses],
            "validation_losses": [round(v, 6) for v in validation_losses],
            "final_train_loss": train_losses[-1] if train_losses else None,
            "kept_epoch": best["epoch"] if best else None,
            "kept_because": "lowest held-out loss (early stopping)",
            "kept_validation_loss": validation_mse,
            "validation_psnr_db": validation_psnr,
            "seconds": round(seconds, 1),
            "device": str(model.device),
            "torch": torch.__version__,
            "command": command,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        software_version=__version__,
    )
    save_reconstructor(out, network.cpu(), card)
    return TrainingReport(
        out=out,
        epochs_run=len(train_losses),
        train_losses=train_losses,
        validation_losses=validation_losses,
        validation_psnr_db=validation_psnr,
        seconds=seconds,
        resumed_from_epoch=first_epoch,
        card=card.to_dict(),
    )
