"""Synthetic face models with known answers, shared by the explainer and metric
tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
from torch import nn

from core.models.base import FaceModel, LayerTap, Preprocessing, Threshold


class SyntheticModel(FaceModel):
    def __init__(
        self,
        network: nn.Module,
        size: int,
        taps: tuple[LayerTap, ...] = (),
        threshold: float = 0.3,
    ) -> None:
        self.model_id = "synthetic"
        self.display_name = "synthetic test model"
        self.weights_sha256 = "0" * 64
        self.network = network.eval()
        self.embedding_dim = 0
        self.preprocessing = Preprocessing(input_size=(size, size))
        self.threshold = Threshold("cosine", threshold, "test")
        self.taps = taps


class RegionNet(nn.Module):
    """Looks only at rows 16:36, columns 24:52 of a 64x64 chip (asymmetric on
    purpose: a transposed or flipped map fails)."""

    ROWS, COLS = slice(16, 36), slice(24, 52)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.masked = nn.Identity()
        mask = torch.zeros(1, 1, 64, 64)
        mask[..., self.ROWS, self.COLS] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.masked(torch.relu(self.conv(x)) * self.mask)
        pooled = nn.functional.adaptive_avg_pool2d(
            features[..., self.ROWS, self.COLS], 4
        )
        return pooled.flatten(1) + 0.05
