"""`xfr eval models`: score fusion, EER per layer, heatmap PSNR (paper 003).

Known answers on synthetic scores, a synthetic two-layer model and synthetic
evidence maps; the real two-model path on bundled photos with the default model and
a second model made from it (dlib's network on ArcFace-aligned, flip-averaged chips
with a cosine threshold - it aligns faces differently, as MobileFaceNet does).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.cli import main
from core.errors import BadInputError, Cancelled
from core.explain.base import EvidenceMap
from core.metrics.model_comparison.outputs import write_outputs
from core.metrics.model_comparison.runner import compare_models
from core.metrics.model_comparison.science import (
    evidence_psnr,
    fusion_curve,
    model_layer_eers,
    shuffled_psnr,
)
from core.models.base import FaceModel, LayerTap, Preprocessing, Threshold


# ---- score fusion -----------------------------------------------------------------
def test_fusion_with_a_perfect_first_model():
    # first model: every genuine score above every impostor score (EER 0)
    perfect = np.array([0.9, 0.8, 0.7, 0.85, 0.1, 0.2, 0.3, 0.25])
    # second model: one genuine (0.35) below and one impostor (0.55) above the
    # threshold 0.5, where FAR = FRR = 1/4: EER 0.25
    weak = np.array([0.5, 0.6, 0.7, 0.35, 0.1, 0.2, 0.3, 0.55])
    genuine = np.array([True] * 4 + [False] * 4)
    for normalization in ("zscore", "minmax", "none"):
        curve = fusion_curve(perfect, weak, genuine, normalization=normalization)
        assert curve.weights[0] == 0.0 and curve.weights[-1] == 1.0
        assert curve.eer_first == 0.0 and curve.eers[-1] == 0.0  # weight 1
        assert curve.eer_second == 0.25 and curve.eers[0] == 0.25  # weight 0
        assert curve.best_eer == 0.0
        # ties are broken towards the even fusion a = 0.5
        assert curve.best_weight == pytest.approx(0.5)
        assert curve.eer_at_half == 0.0


def test_fusion_helps_models_with_independent_errors():
    """Paper 003 §IV-C's mechanism: complementary errors average out."""
    rng = np.random.default_rng(0)
    genuine = np.repeat([True, False], 300)
    truth = np.where(genuine, 1.0, 0.0)
    first = truth + rng.normal(0, 0.5, truth.size)
    second = 3.0 * (truth + rng.normal(0, 0.5, truth.size)) + 5.0  # other scale
    curve = fusion_curve(first, second, genuine)
    assert curve.eer_at_half < 0.8 * min(curve.eer_first, curve.eer_second)
    assert 0.3 <= curve.best_weight <= 0.7
    assert curve.relative_change < -0.2


def test_fusion_rejects_bad_input():
    scores = np.arange(4.0)
    genuine = np.array([True, False, True, False])
    with pytest.raises(BadInputError, match="include 0 and 1"):
        fusion_curve(scores, scores, genuine, weights=[0.2, 0.5])
    with pytest.raises(BadInputError, match="genuine and impostor"):
        fusion_curve(scores, scores, np.ones(4, bool))
    with pytest.raises(BadInputError, match="normalization"):
        fusion_curve(scores, scores, genuine, normalization="rank")


# ---- EER per layer ----------------------------------------------------------------
class TopMinusBottom(nn.Module):
    """Upper half minus lower half of the image: sees lighting, not identity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[2] // 2
        return x[:, :, :half] - x[:, :, half:]


class ColourNet(nn.Module):
    """Embedding = mean colour (identity); tap ``nuisance`` sees the lighting."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # FaceModel.device needs one
        self.colour = nn.Identity()
        self.nuisance = TopMinusBottom()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.nuisance(x)
        return self.colour(x * self.scale).mean(dim=(2, 3))


class ColourModel(FaceModel):
    def __init__(self, flip_average: bool = False) -> None:
        self.model_id = "colour"
        self.display_name = "synthetic colour model"
        self.weights_sha256 = "0" * 64
        self.embedding_dim = 3
        self.network = ColourNet().eval()
        self.preprocessing = Preprocessing((16, 16), flip_average=flip_average)
        self.threshold = Threshold("cosine", 0.99, "test")
        self.taps = (
            LayerTap("colour", "colour"),
            LayerTap("nuisance", "nuisance"),
            LayerTap("embedding", "colour"),  # replaced by the final embedding
        )


class OneAtATimeColourModel(ColourModel):
    """Like ``FileFaceModel.batch_of_one``: one forward pass per image."""

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.network(batch[i : i + 1]) for i in range(len(batch))])


def colour_pairs(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """4 identities (a colour each) x 3 images with random lighting gradients."""
    rng = np.random.default_rng(seed)
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (150, 150, 40)]
    rows = (np.arange(16)[:, None, None] / 15.0 - 0.5) * np.ones((16, 16, 1))
    images = []
    for identity, colour in enumerate(colours):
        for _ in range(3):
            gradient = rng.uniform(-50, 50)
            chip = np.array(colour, float) + 2 * gradient * rows
            chip = chip + rng.normal(0, 3, chip.shape)
            images.append((identity, np.clip(chip, 0, 255).astype(np.uint8)))
    return [
        (a, b, ia == ib)
        for i, (ia, a) in enumerate(images)
        for ib, b in images[i + 1 :]
    ]


def test_eer_per_layer_finds_the_layer_that_separates_identities():
    layers = model_layer_eers(ColourModel(), colour_pairs())
    assert layers.layers == ("colour", "nuisance", "embedding")
    eers = dict(zip(layers.layers, layers.eers, strict=True))
    assert eers["colour"] == 0.0 and eers["embedding"] == 0.0
    assert eers["nuisance"] > 0.3  # lighting says nothing about identity
    assert layers.best_layer == "embedding" and layers.best_eer == 0.0


def test_eer_per_layer_of_a_one_image_at_a_time_flip_averaged_model():
    """Layer taps of models that split a batch must still see every chip."""
    pairs = colour_pairs(1)
    plain = model_layer_eers(ColourModel(), pairs)
    split = model_layer_eers(OneAtATimeColourModel(flip_average=True), pairs)
    np.testing.assert_allclose(split.eers, plain.eers)


# ---- heatmap PSNR on the evidence image -------------------------------------------
def smooth_image_map(shape=(60, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape)
    for _ in range(4):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        out += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 8.0**2))
    return out.astype(np.float32)


def crop(full: np.ndarray, x0: int, y0: int, width: int, height: int) -> EvidenceMap:
    return EvidenceMap(full[y0 : y0 + height, x0 : x0 + width], (x0, y0), full.shape)


def test_evidence_psnr_places_both_maps_in_image_coordinates():
    full = smooth_image_map()
    a = crop(full, 5, 7, 40, 30)
    assert evidence_psnr(a, a) == math.inf
    # another window of the same image map: equal wherever both cover the image
    b = crop(full, 20, 15, 50, 40)
    assert evidence_psnr(a, b) == math.inf
    # NaN (not covered by the chip) pixels are left out
    holed = a.values.copy()
    holed[:10] = np.nan
    assert evidence_psnr(EvidenceMap(holed, a.origin, a.image_shape), b) == math.inf


def test_evidence_psnr_of_a_shifted_map_is_finite_and_above_the_shuffled_reference():
    full = smooth_image_map()
    shifted = np.roll(full, (3, 4), axis=(0, 1))
    a, b = crop(full, 5, 7, 50, 40), crop(shifted, 5, 7, 50, 40)
    psnr = evidence_psnr(a, b)
    assert 5 < psnr < 60
    reference = shuffled_psnr(a, b, np.random.default_rng(0))
    assert reference < psnr


def test_evidence_psnr_of_disjoint_maps_is_nan():
    full = smooth_image_map()
    assert math.isnan(
        evidence_psnr(crop(full, 0, 0, 10, 10), crop(full, 50, 40, 20, 20))
    )
    nothing = EvidenceMap(np.full((10, 10), np.nan, np.float32), (0, 0), full.shape)
    assert math.isnan(evidence_psnr(nothing, crop(full, 0, 0, 10, 10)))
    other_image = EvidenceMap(np.ones((5, 5), np.float32), (0, 0), (30, 30))
    with pytest.raises(BadInputError, match="different sizes"):
        evidence_psnr(crop(full, 0, 0, 10, 10), other_image)


# ---- the real two-model path --------------------------------------------------------
class DlibOnArcFaceChips(FaceModel):
    """dlib's network on 150-px ArcFace-aligned, flip-averaged chips, cosine rule."""

    def __init__(self, dlib: FaceModel) -> None:
        self.model_id = "dlib-arcface-flip"
        self.display_name = "dlib ResNet on ArcFace chips (test)"
        self.weights_sha256 = dlib.weights_sha256
        self.embedding_dim = dlib.embedding_dim
        self.network = dlib.network
        self.taps = dlib.taps
        self.preprocessing = replace(
            dlib.preprocessing, alignment="arcface", flip_average=True
        )
        self.threshold = Threshold("cosine", 0.9, "test")


@pytest.fixture(scope="module")
def identities(tmp_path_factory, astronaut_rgb, grace_hopper_path):
    root = tmp_path_factory.mktemp("identities")
    photo = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    for person, rgb in (("collins", astronaut_rgb), ("hopper", photo)):
        (root / person).mkdir()
        Image.fromarray(rgb).save(root / person / "a.png")
        Image.fromarray(rgb[:, ::-1]).save(root / person / "b.jpg", quality=85)
    return root


@pytest.fixture(scope="module")
def two_models(dlib_model):
    return dlib_model, DlibOnArcFaceChips(dlib_model)


@pytest.fixture(scope="module")
def comparison(identities, two_models):
    calls = []
    result = compare_models(
        identities,
        two_models,
        method="gradient",
        progress=lambda done, total, message: calls.append((done, total)),
    )
    return result, calls


@pytest.mark.slow
def test_compare_models_on_two_models(comparison, two_models):
    result, calls = comparison
    assert result.pairs_used == 6 and result.pairs_skipped == 0
    assert (result.genuine_pairs, result.impostor_pairs) == (2, 4)
    assert [row["model"] for row in result.verification] == [
        "dlib-resnet-v1",
        "dlib-arcface-flip",
    ]
    for row in result.verification:
        assert 0 <= row["EER"] <= 0.5 and 0.5 <= row["ROC AUC"] <= 1
    assert result.fusion.weights.size == 21
    assert result.fusion.eer_first == result.verification[0]["EER"]
    assert result.fusion.eer_second == result.verification[1]["EER"]
    for layers, model in zip(result.layers, two_models, strict=True):
        taps = [t.name for t in model.layer_taps() if t.name != "embedding"]
        assert layers.layers == (*taps, "embedding")
        assert np.isfinite(layers.eers).all()
    # heatmaps: one row per pair and side, on different chips -> finite PSNR
    assert len(result.psnr) == 2 * result.pairs_used
    assert all(0 < row["psnr_db"] < 100 for row in result.psnr)
    assert all(0 < row["shuffled_psnr_db"] < 100 for row in result.psnr)
    assert [row["side"] for row in result.psnr_summary] == ["probe", "gallery", "both"]
    done, total = calls[-1]
    assert done == total and all(d <= t for d, t in calls)


@pytest.mark.slow
def test_compare_models_writes_tables_and_plots(comparison, tmp_path):
    files = write_outputs(comparison[0], tmp_path)
    for name in ("table.json", "table.md", "fusion.csv", "fusion.png",
                 "layers.csv", "layers.png", "psnr.csv"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    assert set(files) >= {"json", "fusion_png", "layers_png", "psnr_csv"}
    payload = json.loads((tmp_path / "table.json").read_text())
    assert payload["fusion"]["first"] == "dlib-resnet-v1"
    assert len((tmp_path / "fusion.csv").read_text().splitlines()) == 22
    assert "Score fusion" in (tmp_path / "table.md").read_text()


def test_compare_models_refuses_one_model_twice_and_cancels(identities, two_models):
    dlib = two_models[0]
    with pytest.raises(BadInputError, match="given twice"):
        compare_models(identities, [dlib, dlib])
    with pytest.raises(BadInputError, match="at least two"):
        compare_models(identities, [dlib])
    with pytest.raises(Cancelled):
        compare_models(identities, two_models, cancel=lambda: True)


@pytest.mark.slow
def test_cli_eval_models_end_to_end(
    identities, two_models, tmp_path, capsys, monkeypatch
):
    import core.cli.evaluate

    by_name = {model.model_id: model for model in two_models}
    monkeypatch.setattr(
        core.cli.evaluate,
        "load_model",
        lambda name, device, card=None, trust_code=False: by_name[name],
    )
    code = main(
        ["eval", "models", "--data", str(identities), "--models",
         "dlib-resnet-v1,dlib-arcface-flip", "--method", "none", "--device", "cpu",
         "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["pairs_used"] == 6 and payload["method"] is None
    assert (tmp_path / "layers.png").stat().st_size > 1000
    assert not (tmp_path / "psnr.csv").exists()


def test_cli_eval_models_same_model_twice_is_exit_2(identities, capsys):
    code = main(
        ["eval", "models", "--data", str(identities), "--models",
         "dlib-resnet-v1,dlib-resnet-v1", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "given twice" in capsys.readouterr().err


def test_cli_eval_models_card_count_must_match(identities, capsys):
    code = main(
        ["eval", "models", "--data", str(identities), "--models",
         "dlib-resnet-v1,other.onnx", "--cards", "none", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "--cards lists 1 card(s) for 2 model(s)" in capsys.readouterr().err


def test_building_the_command_imports_no_torch():
    """The sub-parser is built without numpy or torch (they load when it runs)."""
    code = (
        "import argparse, sys\n"
        "from core.cli.evaluate import add_models_eval\n"
        "add_models_eval(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted({'torch', 'numpy'} & set(sys.modules)) or 'none')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
