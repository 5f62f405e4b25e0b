"""The face-reconstruction module of DDFV (Xu et al. 2023, §III-C) and its files.

A stack of four transposed convolutions rebuilds the aligned face chip from a
convolutional feature map of a frozen face model.  Xu et al. (2023) decode ResNet-50's
last 7×7 map of a 112-px chip; for dlib's ResNet (150-px chip) the tap with a
comparable grid is ``stage3.block2`` (128 channels, 8×8, one cell ≈ 19 chip
pixels).  Deeper taps are too coarse to localise anything (stage4 4×4, stage5 2×2:
masking a channel's maximum would blank a quarter of the face), shallower ones
(stage2, 17×17) are closer to edges and texture than to identity.

Layer sizes are chosen so that an 8×8 map becomes exactly 150×150 without
resampling: 8 → 19 (k5 s2) → 38 → 76 (k4 s2 p1) → 150 (k4 s2 p2).  Other grids
(bring-your-own models) end in a bilinear resize to the chip size.

A reconstructor file is a ``torch.save`` dict read with ``weights_only=True``
(tensors and plain values only, no code): ``format``, ``state_dict``, ``card``.  The
card records the backbone model id and weights SHA-256, the tap and its shape, the
training data, epochs, losses and the command that made it; a reconstructor is only
used with the exact backbone it was trained on.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import BadInputError
from core.io.userdirs import user_data_dir
from core.models.base import FaceModel
from core.resources import sha256_file

FILE_FORMAT = "xfr-face-reconstructor/1"
DEFAULT_TAPS = {"dlib-resnet-v1": "stage3.block2"}


@dataclass
class ReconstructorCard:
    """What a reconstructor was trained on and how well it reconstructs."""

    model_id: str
    backbone_sha256: str
    tap: str
    feature_shape: tuple[int, int, int]  # (channels, height, width)
    chip_size: tuple[int, int]  # (height, width)
    widths: tuple[int, int, int]  # channels after the first three layers
    data: dict[str, Any] = field(default_factory=dict)  # folder, images, identities
    training: dict[str, Any] = field(default_factory=dict)  # epochs, lr, losses...
    software_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("feature_shape", "chip_size", "widths"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReconstructorCard:
        # exactly as many numbers as each field has (else: a damaged file)
        channels, height, width = (int(v) for v in values["feature_shape"])
        chip_height, chip_width = (int(v) for v in values["chip_size"])
        first, second, third = (int(v) for v in values["widths"])
        return cls(
            model_id=str(values["model_id"]),
            backbone_sha256=str(values["backbone_sha256"]),
            tap=str(values["tap"]),
            feature_shape=(channels, height, width),
            chip_size=(chip_height, chip_width),
            widths=(first, second, third),
            data=dict(values.get("data", {})),
            training=dict(values.get("training", {})),
            software_version=str(values.get("software_version", "")),
        )


def _block(
    inputs: int, outputs: int, kernel: int, stride: int, padding: int
) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(inputs, outputs, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def layer_plan(grid: int, chip: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of the four transposed convolutions.

    8 -> 150 (dlib) has an exact plan; otherwise as many doubling layers as bring
    the grid nearest the chip size (at most four), the rest keep the size, and a
    bilinear resize makes up the difference.
    """
    if (grid, chip) == (8, 150):
        return [(5, 2, 0), (4, 2, 1), (4, 2, 1), (4, 2, 2)]  # 8-19-38-76-150
    doublings = int(min(4, max(0, round(math.log2(max(chip / grid, 1.0))))))
    return [(4, 2, 1)] * doublings + [(3, 1, 1)] * (4 - doublings)


class FaceReconstructor(nn.Module):
    """Feature map (N, C, h, w) -> chip (N, 3, H, W) with values in [0, 1]."""

    def __init__(
        self,
        channels: int,
        chip_size: tuple[int, int],
        widths: tuple[int, int, int] = (128, 64, 32),
        grid: int = 8,
    ) -> None:
        super().__init__()
        self.chip_size = tuple(chip_size)
        plan = layer_plan(grid, self.chip_size[0])
        sizes = (channels, *widths)
        self.layers = nn.Sequential(
            *(_block(sizes[i], sizes[i + 1], *plan[i]) for i in range(3)),
            nn.ConvTranspose2d(widths[2], 3, *plan[3]),
            nn.Sigmoid(),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        image = self.layers(features)
        if tuple(image.shape[-2:]) != self.chip_size:
            image = F.interpolate(
                image, size=self.chip_size, mode="bilinear", align_corners=False
            )
        return image


@dataclass
class LoadedReconstructor:
    network: FaceReconstructor
    card: ReconstructorCard
    path: Path
    sha256: str


def build(card: ReconstructorCard) -> FaceReconstructor:
    channels, grid, _ = card.feature_shape
    return FaceReconstructor(channels, card.chip_size, card.widths, grid)


def save_reconstructor(
    path: str | Path, network: FaceReconstructor, card: ReconstructorCard
) -> Path:
    """Write the file atomically, and its card as JSON beside it for people."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    state = {key: value.detach().cpu() for key, value in network.state_dict().items()}
    # plain JSON values only: the file is read back with weights_only=True
    card_values = json.loads(json.dumps(card.to_dict(), default=float))
    torch.save(
        {"format": FILE_FORMAT, "state_dict": state, "card": card_values}, partial
    )
    partial.replace(path)
    card_path = path.with_suffix(".card.json")
    card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def load_reconstructor(path: str | Path) -> LoadedReconstructor:
    """Read and check a reconstructor file; ``BadInputError`` naming it if bad."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("reconstructor file not found", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise BadInputError(
            f"not a readable reconstructor file ({type(error).__name__}: {error})",
            path,
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise BadInputError(
            f"not a face reconstructor file (expected format {FILE_FORMAT})", path
        )
    try:
        card = ReconstructorCard.from_dict(payload["card"])
        network = build(card)
        network.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise BadInputError(f"damaged reconstructor file ({error})", path) from None
    network.eval()
    return LoadedReconstructor(network, card, path, sha256_file(path))


def load_reconstructor_cached(path: str | Path) -> LoadedReconstructor:
    """``load_reconstructor``, read once per file version (path, size, mtime): DDFV
    looks its reconstructor up for the cache key and again to run."""
    path = Path(path)
    if not path.is_file():
        return load_reconstructor(path)  # raises, naming the file
    stat = path.stat()
    return _load_once(str(path), stat.st_mtime_ns, stat.st_size)


@cache
def _load_once(path: str, mtime_ns: int, size: int) -> LoadedReconstructor:
    del mtime_ns, size  # cache key only: a replaced file is read again
    return load_reconstructor(path)


def check_matches(reconstructor: LoadedReconstructor, model: FaceModel) -> None:
    """A reconstructor decodes one backbone's features only: refuse any other."""
    card = reconstructor.card
    if card.backbone_sha256 != model.weights_sha256:
        raise BadInputError(
            f"reconstructor was trained on model {card.model_id} with weights "
            f"{card.backbone_sha256[:12]}…, not on {model.model_id} "
            f"({model.weights_sha256[:12]}…)",
            reconstructor.path,
        )
    if tuple(card.chip_size) != tuple(model.input_size):
        raise BadInputError(
            f"reconstructor makes {card.chip_size} chips, the model takes "
            f"{model.input_size}",
            reconstructor.path,
        )


# ---- where reconstructors live ------------------------------------------------
def user_reconstructor_dir() -> Path:
    """Reconstructors the examiner trained (``xfr train reconstructor`` default)."""
    return user_data_dir() / "reconstructors"


def shipped_reconstructor_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "resources" / "reconstructors"


def default_reconstructor_path(model: FaceModel) -> Path:
    """Where ``xfr train reconstructor`` writes by default for this model."""
    return user_reconstructor_dir() / f"{model.model_id}-{model.weights_sha256[:12]}.pt"


def train_command(model: FaceModel) -> str:
    return (
        f"xfr train reconstructor --model {model.model_id} --data FOLDER_OF_IDENTITIES"
    )


def find_reconstructor(model: FaceModel, path: str | Path | None = None) -> Path:
    """The reconstructor to use: ``path``, else the user's, else the shipped one."""
    if path:
        return Path(path)
    candidates = [
        default_reconstructor_path(model),
        shipped_reconstructor_dir() / f"{model.model_id}.pt",
    ]
    for candidate in candidates:
        if candidate.is_file():
            try:
                card = load_reconstructor_cached(candidate).card
            except BadInputError:
                continue
            if card.backbone_sha256 == model.weights_sha256:
                return candidate
    raise BadInputError(
        f"no face reconstructor for model {model.model_id} (weights "
        f"{model.weights_sha256[:12]}…); DDFV needs one. Train it with: "
        f"{train_command(model)}"
    )
