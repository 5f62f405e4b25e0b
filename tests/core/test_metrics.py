"""Faithfulness metrics on a synthetic model whose answer is known: a network that
looks only at one rectangle of a 64x64 chip (the pattern of
tests/core/test_explain.py)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from synthetic_models import RegionNet, SyntheticModel

from core.errors import BadInputError, Cancelled
from core.metrics.faithfulness import (
    DeletionInsertion,
    deletion_insertion,
    eer_per_layer,
    fuse_scores,
    heatmap_psnr,
    hiding_game,
    layer_scores,
    pixel_elimination,
    rank_pixels,
)
from core.models.base import LayerTap, Preprocessing, Threshold

SIZE = 64


@pytest.fixture(scope="module")
def model() -> SyntheticModel:
    taps = (LayerTap("conv", "conv"), LayerTap("masked", "masked"))
    return SyntheticModel(RegionNet(), SIZE, taps)


def texture(rng: np.random.Generator) -> np.ndarray:
    raw = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE, SIZE, 3)), (0, 0), 2) * 3
    return np.clip(raw - 250, 20, 235).astype(np.uint8)


def noisy(chip: np.ndarray, rng: np.random.Generator, std: float = 20) -> np.ndarray:
    return np.clip(chip + rng.normal(0, std, chip.shape), 0, 255).astype(np.uint8)


def true_map() -> np.ndarray:
    saliency = np.zeros((SIZE, SIZE), np.float32)
    saliency[RegionNet.ROWS, RegionNet.COLS] = 1.0
    return saliency


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """12 genuine pairs (a chip and a noisy copy) and 12 impostor pairs."""
    rng = np.random.default_rng(5)
    faces = [texture(rng) for _ in range(12)]
    out = [(face, noisy(face, rng), True) for face in faces]
    out += [
        (faces[i], noisy(faces[(i + 1) % len(faces)], rng), False)
        for i in range(len(faces))
    ]
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- deletion & insertion ----------------------------------------------------------
@pytest.fixture(scope="module")
def di_setup(model, pairs):
    probe, gallery, _ = pairs[0]
    reference = model.embed_chips(gallery[None])[0]
    common = {"steps": 16, "blur_sigma": None, "random_orders": 3, "seed": 1}
    good = deletion_insertion(model, probe, reference, true_map(), **common)
    bad = deletion_insertion(model, probe, reference, 1.0 - true_map(), **common)
    return probe, reference, good, bad


def test_true_region_beats_inverse_and_random(di_setup):
    _probe, _reference, good, bad = di_setup
    assert good.deletion_auc < bad.deletion_auc
    assert good.insertion_auc > bad.insertion_auc
    assert good.deletion_auc < good.random_deletion_auc
    assert good.insertion_auc > good.random_insertion_auc
    assert good.better_than_random is True
    assert bad.better_than_random is False


def test_curves_have_steps_plus_one_points_and_known_ends(model, di_setup):
    probe, reference, good, _bad = di_setup
    for curve in (good.fractions, good.deletion_scores, good.insertion_scores):
        assert curve.shape == (17,)
    assert good.random_deletion_scores.shape == (17,)
    assert good.fractions[0] == 0.0 and good.fractions[-1] == 1.0
    assert np.all(np.diff(good.fractions) > 0)
    original = cosine(model.embed_chips(probe[None])[0], reference)
    black = cosine(model.embed_chips(np.zeros_like(probe)[None])[0], reference)
    assert good.deletion_scores[0] == pytest.approx(original, abs=1e-5)
    assert good.insertion_scores[-1] == pytest.approx(original, abs=1e-5)
    assert good.deletion_scores[-1] == pytest.approx(black, abs=1e-5)
    assert good.insertion_scores[0] == pytest.approx(black, abs=1e-5)
    assert good.original_score == pytest.approx(original, abs=1e-5)
    assert good.removed_score == pytest.approx(black, abs=1e-5)
    # what the network sees (region + the 3x3 conv's 1-pixel rim) is 660 of 4096
    # pixels: once it is gone (3/16 of the pixels = 768), the score is final
    seen = np.zeros((SIZE, SIZE))
    seen[15:37, 23:53] = 1
    sharp = deletion_insertion(model, probe, reference, seen, steps=16, blur_sigma=0)
    assert sharp.deletion_scores[3:] == pytest.approx(np.full(14, black), abs=1e-5)
    data = good.to_dict()
    assert json.loads(json.dumps(data))["deletion_scores"] == pytest.approx(
        list(good.deletion_scores)
    )


def test_default_blur_still_ranks_the_region_first(model, di_setup):
    probe, reference, _good, _bad = di_setup
    blurred = deletion_insertion(
        model, probe, reference, true_map(), steps=8, random_orders=2
    )
    assert blurred.blur_sigma == 4.0
    assert blurred.better_than_random is True
    assert (
        "random_deletion_auc"
        not in deletion_insertion(
            model, probe, reference, true_map(), steps=2
        ).to_dict()
    )


def test_dissimilarity_reading_is_reversed():
    fractions = np.linspace(0, 1, 3)
    curve = np.zeros(3)
    common = {
        "fractions": fractions,
        "deletion_scores": curve,
        "insertion_scores": curve,
        "deletion_auc": 0.8,
        "insertion_auc": 0.3,
        "blur_sigma": None,
        "random_orders": 2,
        "random_deletion_scores": curve,
        "random_insertion_scores": curve,
        "random_deletion_auc": 0.5,
        "random_insertion_auc": 0.5,
    }
    assert DeletionInsertion(kind="dissimilarity", **common).better_than_random
    assert not DeletionInsertion(kind="similarity", **common).better_than_random
    no_random = {**common, "random_orders": 0}
    no_random.update(random_deletion_auc=None, random_insertion_auc=None)
    assert DeletionInsertion(kind="similarity", **no_random).better_than_random is None


def test_cancel_between_batches(model, pairs):
    probe, gallery, _ = pairs[0]
    reference = model.embed_chips(gallery[None])[0]
    calls: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        deletion_insertion(
            model,
            probe,
            reference,
            true_map(),
            steps=20,
            batch_size=8,
            progress=lambda done, total, _message: calls.append((done, total)),
            cancel=lambda: len(calls) >= 2,
        )
    assert calls == [(8, 42), (16, 42)]


def test_bad_inputs_are_reported(model, pairs):
    probe, gallery, _ = pairs[0]
    reference = model.embed_chips(gallery[None])[0]
    with pytest.raises(BadInputError, match="does not match"):
        deletion_insertion(model, probe, reference, np.zeros((10, 10)))
    with pytest.raises(BadInputError, match="64x64x3"):
        deletion_insertion(model, probe[:10], reference, true_map())
    with pytest.raises(BadInputError, match="kind"):
        deletion_insertion(model, probe, reference, true_map(), kind="other")


def test_ties_are_broken_by_pixel_index():
    ranks = rank_pixels(np.zeros((3, 4)))
    assert ranks.ravel().tolist() == list(range(12))
    ranks = rank_pixels(np.array([[0.0, 2.0], [2.0, 1.0]]))
    assert ranks.tolist() == [[3, 0], [1, 2]]


# ---- hiding game -------------------------------------------------------------------
def separating_threshold(model, pairs) -> Threshold:
    probes = model.embed_chips(np.stack([p for p, _, _ in pairs]))
    galleries = model.embed_chips(np.stack([g for _, g, _ in pairs]))
    scores = np.array([cosine(a, b) for a, b in zip(probes, galleries, strict=True)])
    genuine = np.array([same for _, _, same in pairs])
    low, high = scores[~genuine].max(), scores[genuine].min()
    assert low < high  # the synthetic pairs are separable
    return Threshold("cosine", float((low + high) / 2), "test")


def test_hiding_game_correct_map_keeps_accuracy(model, pairs):
    threshold = separating_threshold(model, pairs)
    maps = [true_map()] * len(pairs)
    good = hiding_game(model, pairs, maps, threshold=threshold, batch_size=32)
    bad = hiding_game(
        model, pairs, [1.0 - m for m in maps], threshold=threshold, batch_size=32
    )
    half = list(good.percentages).index(50)
    assert good.accuracies[0] == bad.accuracies[0] == 1.0
    assert good.accuracies[half] > bad.accuracies[half]
    assert good.auc > bad.auc
    assert good.scores.shape == (11, len(pairs))
    assert json.loads(json.dumps(good.to_dict())) == good.to_dict()  # plain data


# ---- pixel elimination -------------------------------------------------------------
def test_removing_the_true_region_raises_eer_more_than_random(model, pairs):
    maps = [true_map()] * len(pairs)
    result = pixel_elimination(model, pairs, maps, thresholds=(1.0, 0.5), seed=3)
    assert result.removed_fractions[0].max() == 0.0
    assert result.removed_fractions[1] == pytest.approx(560 / 4096)
    assert result.saliency_eer[0] == result.random_eer[0]  # nothing removed
    assert result.saliency_eer[1] > result.random_eer[1] + 0.2
    by_fraction = pixel_elimination(model, pairs, maps, fractions=(0.0, 0.1))
    assert by_fraction.mode == "fraction"
    assert by_fraction.removed_fractions[1] == pytest.approx(410 / 4096)
    assert json.loads(json.dumps(result.to_dict()))["is_genuine"][0] is True
    with pytest.raises(BadInputError, match="genuine and impostor"):
        pixel_elimination(model, pairs[:3], maps[:3])


@pytest.mark.parametrize("order", ["RGB", "BGR"])
@pytest.mark.parametrize("fill", ["mean", "black"])
def test_eliminated_pixels_are_the_normalisation_mean(pairs, fill, order):
    """Paper 003 §IV-E: removed pixels are the mean normalisation value, i.e. zero
    after ``model.prepare`` (to uint8 rounding of the mean); "black" stays 0."""
    mean = (122.8, 117.0, 104.3)  # dlib's preprocessing mean
    model = SyntheticModel(RegionNet(), SIZE)
    model.preprocessing = Preprocessing(
        input_size=(SIZE, SIZE), channel_order=order, mean=mean, std=(256.0,) * 3
    )
    seen: list[torch.Tensor] = []
    model.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    maps = [true_map()] * len(pairs)
    kwargs = {} if fill == "mean" else {"fill": fill}
    result = pixel_elimination(
        model, pairs, maps, thresholds=(1.0, 0.5), batch_size=1000, **kwargs
    )
    assert result.fill == fill
    n = len(pairs)
    modified = seen[-1]  # one batch: (saliency, random) x (level) x (pair)
    removed = modified[n : 2 * n]  # saliency order, threshold 0.5: the true region
    region = removed[:, :, RegionNet.ROWS, RegionNet.COLS]
    if fill == "mean":
        assert float(region.abs().max()) <= 0.5 / 256
    else:
        black = torch.tensor(mean).view(1, 3, 1, 1) / -256
        if order == "BGR":
            black = black.flip(1)
        torch.testing.assert_close(region, black.expand_as(region))
    assert float(modified[:n].abs().max()) > 0.1  # level 1.0: the intact photos


# ---- PSNR, fusion, layers ------------------------------------------------------------
def test_heatmap_psnr():
    rng = np.random.default_rng(0)
    base = rng.uniform(size=(32, 32))
    assert heatmap_psnr(base, base) == math.inf
    assert heatmap_psnr(base, 3 * base + 2) == math.inf  # scaled to [0, 1] first
    small = heatmap_psnr(base, base + rng.normal(0, 0.05, base.shape))
    large = heatmap_psnr(base, base + rng.normal(0, 0.3, base.shape))
    assert math.isfinite(small) and small > large > 0
    with pytest.raises(BadInputError):
        heatmap_psnr(base, base[:10])


def test_fuse_scores():
    a = np.array([0.1, 0.5, 0.9, 0.3])
    b = np.array([10.0, 20.0, 15.0, 5.0])
    z_a = (a - a.mean()) / a.std()
    z_b = (b - b.mean()) / b.std()
    assert fuse_scores(a, b, 1.0) == pytest.approx(z_a)
    assert fuse_scores(a, b, 0.0) == pytest.approx(z_b)
    assert fuse_scores(a, b, 0.58) == pytest.approx(0.58 * z_a + 0.42 * z_b)
    assert fuse_scores(a, b, 0.5, normalization="none") == pytest.approx((a + b) / 2)
    minmax = fuse_scores(a, b, 1.0, normalization="minmax")
    assert minmax.min() == 0.0 and minmax.max() == 1.0
    with pytest.raises(BadInputError):
        fuse_scores(a, b, 1.5)


def test_eer_per_layer(model, pairs):
    scores = layer_scores(model, pairs, ["conv", "masked"], batch_size=16)
    assert list(scores) == ["conv", "masked"]
    genuine, impostor = scores["masked"]
    assert genuine.shape == impostor.shape == (12,)
    eers = eer_per_layer(scores)
    assert list(eers) == ["conv", "masked"]
    assert all(0.0 <= value <= 1.0 for value in eers.values())
    assert eer_per_layer({"x": (np.array([0.9, 0.8]), np.array([0.1, 0.2]))}) == {
        "x": 0.0
    }
