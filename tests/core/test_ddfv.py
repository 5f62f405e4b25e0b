"""DDFV (paper 002): the reconstructor, its training and files, Algorithm 1 on a toy
backbone whose channels each own one region of the face, and the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.errors import BadInputError
from core.explain import FacePair, FaceView, get
from core.explain.methods.ddfv import masked_feature_maps
from core.faces.align import ChipTransform
from core.models.base import (
    FaceModel,
    LayerTap,
    Preprocessing,
    Threshold,
)
from core.reconstruct.network import (
    FILE_FORMAT,
    FaceReconstructor,
    ReconstructorCard,
    find_reconstructor,
    layer_plan,
    load_reconstructor,
    shipped_reconstructor_dir,
)
from core.reconstruct.train import TrainingSettings, train_reconstructor
from core.train_data import ChipSet

SIZE, CELL = 32, 8  # 32-px chips, 4x4 grid of 8-px cells, four 16-px quadrants


class QuadrantNet(nn.Module):
    """Channel j sees only quadrant j (cell brightness on the 4x4 grid); the
    embedding is each channel's maximum - the architecture of paper 002, where
    channel i is embedding dimension i."""

    def __init__(self) -> None:
        super().__init__()
        masks = torch.zeros(4, 4, 4)
        for j, (rows, cols) in enumerate(self.quadrants()):
            masks[j, rows, cols] = 1
        self.register_buffer("masks", masks)
        self.parts = nn.Identity()
        self.gain = nn.Parameter(torch.ones(1), requires_grad=False)  # has a device

    @staticmethod
    def quadrants() -> list[tuple[slice, slice]]:
        half = slice(0, 2), slice(2, 4)
        return [(r, c) for r in half for c in half]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = nn.functional.avg_pool2d(x.mean(1, keepdim=True), CELL)  # (N,1,4,4)
        features = self.parts(cells * self.masks * self.gain)  # (N, 4, 4, 4)
        return features.amax(dim=(2, 3))


class ToyModel(FaceModel):
    def __init__(self) -> None:
        self.model_id = "toy-quadrants"
        self.display_name = "toy quadrant model"
        self.weights_sha256 = "1" * 64
        self.network = QuadrantNet().eval()
        self.embedding_dim = 4
        self.preprocessing = Preprocessing(input_size=(SIZE, SIZE))
        self.threshold = Threshold("cosine", 0.6, "test")
        self.taps = (LayerTap("parts", "parts"),)


def cell_image(brightness: np.ndarray) -> np.ndarray:
    """A chip whose 8-px cells have the given 4x4 grey levels (0..1)."""
    grid = np.kron(brightness, np.ones((CELL, CELL)))
    return np.repeat((grid * 255).round()[..., None], 3, axis=2).astype(np.uint8)


def toy_chip_set(count: int, seed: int = 0) -> ChipSet:
    rng = np.random.default_rng(seed)
    chips = np.stack([cell_image(rng.uniform(0, 1, (4, 4))) for _ in range(count)])
    labels = np.arange(count) % 8
    return ChipSet(
        chips,
        labels,
        [f"person{i}" for i in range(8)],
        [f"synthetic/{i}.png" for i in range(count)],
        np.zeros((count, 68, 2), np.float32),
    )


@pytest.fixture(scope="module")
def toy_model() -> ToyModel:
    return ToyModel()


@pytest.fixture(scope="module")
def toy_reconstructor(tmp_path_factory, toy_model) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("recon") / "toy.pt"
    settings = TrainingSettings(
        epochs=40,
        batch_size=32,
        learning_rate=3e-3,
        flip=False,
        widths=(32, 16, 8),
        tap="parts",
    )
    report = train_reconstructor(toy_model, toy_chip_set(256), out, settings)
    assert report.validation_psnr_db > 20, report.validation_psnr_db
    return out


def pair_of(first: np.ndarray, second: np.ndarray) -> FacePair:
    transform = ChipTransform(
        np.array([[1.0, 0, 0], [0, 1.0, 0]]), (SIZE, SIZE), "dlib"
    )
    return FacePair(
        FaceView("probe", first, transform, (SIZE, SIZE), "a" * 64),
        FaceView("gallery", second, transform, (SIZE, SIZE), "b" * 64),
    )


def quadrant_mass(chip_map: np.ndarray) -> np.ndarray:
    half = SIZE // 2
    return np.array(
        [
            chip_map[r * half : (r + 1) * half, c * half : (c + 1) * half].sum()
            for r in (0, 1)
            for c in (0, 1)
        ]
    )


@pytest.mark.slow
def test_algorithm_1_puts_similarity_and_dissimilarity_on_the_right_parts(
    toy_model, toy_reconstructor
):
    """Quadrants 0, 1 agree and quadrants 2, 3 differ: with T = 0.6 the weights
    f^_A f^_B - T/4 are positive for 0, 1 and negative for 2, 3 (paper's case,
    computed by hand in the comment below), so S+ must sit on 0, 1 and S- on 2, 3."""
    # A: 0.8 0.8 0.9 0.1 per quadrant, B: 0.8 0.8 0.1 0.9 -> |A| = |B| = 1.449,
    # products .305 .305 .043 .043 (s = 0.695), minus 0.15 -> + + - -.
    first = np.array([[0.8, 0.8], [0.9, 0.1]])
    second = np.array([[0.8, 0.8], [0.1, 0.9]])
    grids = [np.kron(q, np.ones((2, 2))) for q in (first, second)]
    result = get("ddfv").explain(
        pair_of(cell_image(grids[0]), cell_image(grids[1])),
        toy_model,
        {"reconstructor": str(toy_reconstructor), "ig_steps": 8},
    )
    assert result.decision == "accept"
    for maps in result.images:
        similar = quadrant_mass(maps.chip.similarity)
        dissimilar = quadrant_mass(maps.chip.dissimilarity)
        assert similar[:2].min() > 4 * similar[2:].max(), similar
        assert dissimilar[2:].min() > 4 * dissimilar[:2].max(), dissimilar
    # the channel weights add up to score - threshold (integrated gradients)
    note = next(n for n in result.notes if n.startswith("probe:"))
    match = re.search(r"sum to ([-+.\d]+) = score - threshold ([-+.\d]+)", note)
    assert match, note
    assert float(match[1]) == pytest.approx(float(match[2]), abs=1e-3)


def test_masking_one_channel_or_cumulatively():
    features = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(3, 2, 2) + 1
    single = masked_feature_maps(features, cumulative=False)
    cumulative = masked_feature_maps(features, cumulative=True)
    assert single.shape == cumulative.shape == (3, 3, 2, 2)
    for i in range(3):
        changed = (single[i] != features).nonzero().tolist()
        assert changed == [[i, 1, 1]]  # only the maximum of channel i, set to 0
        assert single[i][i, 1, 1] == 0
        assert sorted(
            c for c, _, _ in (cumulative[i] != features).nonzero().tolist()
        ) == list(range(i + 1))


def test_layer_plan_gives_the_chip_size():
    assert layer_plan(8, 150) == [(5, 2, 0), (4, 2, 1), (4, 2, 1), (4, 2, 2)]
    for grid, chip in ((8, 150), (4, 32), (7, 112), (17, 150), (2, 150)):
        network = FaceReconstructor(5, (chip, chip), (8, 8, 8), grid)
        out = network(torch.zeros(1, 5, grid, grid))
        assert out.shape == (1, 3, chip, chip)
        assert sum(isinstance(m, nn.ConvTranspose2d) for m in network.modules()) == 4


@pytest.mark.slow
def test_training_loss_falls_checkpoints_and_resumes(tmp_path, toy_model):
    chip_set = toy_chip_set(96, seed=1)
    settings = TrainingSettings(
        epochs=2,
        batch_size=16,
        learning_rate=3e-3,
        flip=True,
        widths=(16, 8, 8),
        tap="parts",
    )
    out = tmp_path / "r.pt"
    first = train_reconstructor(toy_model, chip_set, out, settings)
    assert first.epochs_run == 2 and (tmp_path / "r.pt.checkpoint").is_file()
    other_batch = TrainingSettings(**{**settings.__dict__, "batch_size": 8})
    with pytest.raises(BadInputError, match="other data, model or settings"):
        train_reconstructor(toy_model, chip_set, out, other_batch, resume=True)
    longer = TrainingSettings(**{**settings.__dict__, "epochs": 6})
    resumed = train_reconstructor(toy_model, chip_set, out, longer, resume=True)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 6
    assert resumed.train_losses[:2] == first.train_losses
    assert resumed.train_losses[-1] < 0.7 * resumed.train_losses[0]
    loaded = load_reconstructor(out)
    assert loaded.card.backbone_sha256 == toy_model.weights_sha256
    assert loaded.card.training["epochs_run"] == 6
    # the kept weights are those of the epoch with the lowest held-out loss
    kept = loaded.card.training["kept_epoch"]
    assert resumed.validation_losses[kept - 1] == min(resumed.validation_losses)
    assert loaded.card.training["kept_validation_loss"] == pytest.approx(
        min(resumed.validation_losses), rel=1e-5
    )
    assert (tmp_path / "r.card.json").is_file()


@pytest.mark.slow
def test_bad_reconstructor_files_are_named(
    tmp_path, toy_model, toy_reconstructor, dlib_model
):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(BadInputError, match=r"garbage\.pt"):
        load_reconstructor(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(toy_reconstructor.read_bytes()[:2000])
    with pytest.raises(BadInputError, match=r"truncated\.pt"):
        load_reconstructor(truncated)
    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(BadInputError, match="not a face reconstructor"):
        load_reconstructor(other)
    with pytest.raises(BadInputError, match="trained on model toy-quadrants"):
        get("ddfv").explain(
            pair_of(*[cell_image(np.full((4, 4), 0.5))] * 2),
            dlib_model,
            {"reconstructor": str(toy_reconstructor)},
        )


def test_no_reconstructor_says_how_to_train_one(toy_model):
    with pytest.raises(BadInputError, match="xfr train reconstructor --model toy"):
        find_reconstructor(toy_model)


def test_the_default_model_has_a_shipped_reconstructor(dlib_model):
    path = find_reconstructor(dlib_model)
    assert path.parent == shipped_reconstructor_dir()
    card = load_reconstructor(path).card
    assert card.tap == "stage3.block2" and card.feature_shape == (128, 8, 8)
    assert card.training["epochs_run"] >= 1 and card.data["images_used"] > 0


@pytest.mark.slow
@pytest.mark.dlib
def test_cli_trains_on_a_folder_of_identities(
    tmp_path, astronaut_path, grace_hopper_path
):
    data = tmp_path / "identities"
    for person, photo in (("astronaut", astronaut_path), ("hopper", grace_hopper_path)):
        (data / person).mkdir(parents=True)
        shutil.copy(photo, data / person / photo.name)
    out = tmp_path / "trained.pt"
    code = main(
        [
            "train",
            "reconstructor",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-cache",
        ]
    )
    assert code == EXIT_OK
    card = load_reconstructor(out).card
    assert card.data["images_used"] == 2 and card.data["identities"] == 2
    assert "xfr train reconstructor" in card.training["command"]
    assert main(["train", "reconstructor", "--data", str(tmp_path / "none")]) == (
        EXIT_BAD_INPUT
    )


def test_a_reconstructor_card_with_a_wrong_sized_shape_is_a_damaged_file(tmp_path):
    card = ReconstructorCard("m", "0" * 64, "res8x8", (4, 8, 8), (32, 32), (8, 8, 8))
    assert ReconstructorCard.from_dict(card.to_dict()) == card
    values = {**card.to_dict(), "chip_size": [32, 32, 3]}
    path = tmp_path / "bad.pt"
    torch.save({"format": FILE_FORMAT, "card": values, "state_dict": {}}, path)
    with pytest.raises(BadInputError, match=r"damaged reconstructor file \("):
        load_reconstructor(path)
