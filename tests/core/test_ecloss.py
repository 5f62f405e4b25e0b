"""ECLoss (paper 004): templates, the loss, part masks, channel metrics, training and
the two commands, on hand-made maps, synthetic landmarks and numpy-drawn chips."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.ecloss.channel_analysis import ChannelReport, analyse_channels
from core.ecloss.channel_data import FaceChips
from core.ecloss.channel_figures import overlay_top_area, write_channel_outputs
from core.ecloss.channel_metrics import (
    best_parts,
    channel_consistency,
    count_peaks,
    face_part_explainability,
    location_consistency,
    part_iou,
    peak_prominences,
    top_area,
    top_threshold,
)
from core.ecloss.loss import ECLoss
from core.ecloss.parts import PARTS, part_masks
from core.ecloss.templates import (
    KIND_NEGATIVE,
    KIND_ONE_PEAK,
    KIND_TWO_PEAK,
    activation_templates,
    default_radius,
    full_template_count,
    negative_template,
    one_peak_template,
    subsample_indices,
    template_spec,
    two_peak_template,
)
from core.ecloss.train import (
    ECLossConfig,
    batch_indices,
    metric_loss,
    train_ecloss,
)
from core.errors import BadInputError, Cancelled
from core.explain.render import colour_map
from core.models import load_model
from core.models.onnx_model import load_model_file
from core.train_data import ChipSet


# ---- templates (§3.1, §4.2) ----------------------------------------------------------
def test_template_counts_and_shapes():
    assert full_template_count((14, 14)) == 196 + 196 * 195 // 2 + 1  # 19 307
    assert full_template_count((8, 8)) == 64 + 2016 + 1
    small = activation_templates((4, 4))  # 137 <= 400: every template is kept
    assert len(small) == 137 and small.templates.shape == (137, 4, 4)
    assert small.counts() == {"one_peak": 16, "two_peak": 120, "negative": 1}
    paper = activation_templates((14, 14))  # the paper's map size
    assert (
        paper.templates.shape == (400, 14, 14) and paper.templates.dtype == np.float32
    )
    assert paper.full_count == 19307 and paper.radius == 4.0 and paper.tau == 0.001
    assert sum(paper.counts().values()) == 400 and paper.counts()["negative"] == 1
    assert paper.kinds[0] == KIND_ONE_PEAK and paper.kinds[-1] == KIND_NEGATIVE
    assert paper.peaks[0] == ((0, 0),)
    mid = activation_templates((8, 8), tau=0.5, radius=2.0)
    assert len(mid) == 400 and mid.counts()["two_peak"] > 300
    described = mid.describe()
    assert described["count"] == 400 and described["full_count"] == 2081


def test_template_values_follow_the_equations():
    tau, r = 0.001, 4.0
    one = one_peak_template((14, 14), (0, 0), tau, r)  # eq. 2
    assert one[0, 0] == pytest.approx(tau)
    assert one[0, 2] == pytest.approx(tau * 0.5)
    assert one[0, 4] == pytest.approx(0.0, abs=1e-9)
    assert one[0, 8] == pytest.approx(-tau) and one[13, 13] == pytest.approx(-tau)
    assert one[3, 4] == pytest.approx(tau * (1 - 5 / 4))
    other = one_peak_template((14, 14), (10, 12), tau, r)
    two = two_peak_template((14, 14), (0, 0), (10, 12), tau, r)  # eq. 3
    np.testing.assert_array_equal(two, np.maximum(one, other))
    assert (negative_template((14, 14), tau) == -tau).all()
    assert default_radius((14, 14)) == 4.0
    assert default_radius((7, 7)) == 2.0
    with pytest.raises(ValueError):
        one_peak_template((4, 4), (4, 0), tau, r)
    with pytest.raises(ValueError):
        activation_templates((4, 4), tau=0)


def test_template_enumeration_covers_every_pair_once():
    size = (3, 3)
    total = full_template_count(size)
    specs = [template_spec(i, size) for i in range(total)]
    pairs = [peaks for kind, peaks in specs if kind == KIND_TWO_PEAK]
    assert len(pairs) == len(set(pairs)) == 36
    assert all(a < b for a, b in pairs)
    assert [k for k, _ in specs].count(KIND_ONE_PEAK) == 9
    assert specs[-1] == (KIND_NEGATIVE, ())
    chosen = subsample_indices(19307, 400)
    assert len(chosen) == 400 and chosen[0] == 0 and chosen[-1] == 19306
    assert np.all(np.diff(chosen) > 0)
    assert np.ptp(np.diff(chosen)) <= 1  # evenly spaced
    np.testing.assert_array_equal(subsample_indices(10, 400), np.arange(10))


# ---- the loss (eqs. 5-7) -------------------------------------------------------------
def test_template_map_has_more_information_than_noise():
    templates = activation_templates((8, 8), tau=1.0)
    loss = ECLoss(templates)
    rng = np.random.default_rng(0)
    pattern = templates.templates[[5, 150, 300]] * 0.1  # maps equal to templates
    as_maps = torch.from_numpy(pattern)[None]  # (1, 3, 8, 8)
    per_map = loss.information(as_maps)[0]
    for _ in range(20):  # noise maps of the same energy, map by map
        noise = rng.normal(size=pattern.shape).astype(np.float32)
        noise *= np.linalg.norm(pattern, axis=(1, 2), keepdims=True) / np.linalg.norm(
            noise, axis=(1, 2), keepdims=True
        )
        noise_maps = torch.from_numpy(noise)[None]
        assert (per_map > loss.information(noise_maps)[0]).all()
        assert loss.mutual_information(as_maps) > loss.mutual_information(noise_maps)
    assert float(per_map.max()) <= math.log(len(templates)) + 1e-5


def test_loss_is_differentiable_and_finite_on_constant_maps():
    templates = activation_templates((4, 4))
    loss = ECLoss(templates)
    features = torch.rand(2, 5, 4, 4, requires_grad=True)
    value = loss(features)
    value.backward()
    assert value.item() <= 0  # -MI, MI >= 0
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert features.grad.abs().sum() > 0
    zeros = torch.zeros(1, 3, 4, 4)
    assert loss.mutual_information(zeros).item() == pytest.approx(0.0, abs=1e-7)
    for constant in (torch.ones(1, 3, 4, 4), torch.full((1, 3, 4, 4), 1e4)):
        assert torch.isfinite(loss(constant))  # log-sum-exp: no overflow
    mean = ECLoss(templates, p_x="mean")
    maps = torch.rand(3, 4, 4, 4) * 50
    ratio = loss.mutual_information(maps) / mean.mutual_information(maps)
    assert ratio.item() == pytest.approx(3 * 4 / len(templates), rel=1e-4)
    with pytest.raises(ValueError, match="4×4"):
        loss(torch.rand(1, 2, 5, 5))


# ---- part masks (Fig. 7) -------------------------------------------------------------
def synthetic_landmarks() -> np.ndarray:
    """A frontal 68-point face on a 150×150 chip (dlib / iBUG order)."""
    points = np.zeros((68, 2))
    for i in range(17):  # jaw: a U from (25, 60) round the chin (75, 135)
        angle = math.pi * i / 16
        points[i] = (75 - 50 * math.cos(angle), 60 + 75 * math.sin(angle))
    for j in range(5):
        arch = 45 - 4 * math.sin(math.pi * j / 4)
        points[17 + j] = (35 + 7.5 * j, arch)
        points[22 + j] = (85 + 7.5 * j, arch)
    for j in range(4):
        points[27 + j] = (75, 55 + 10 * j)
    for j in range(5):
        points[31 + j] = (65 + 5 * j, 92)
    eye = np.array([(-10, 0), (-5, -4), (5, -4), (10, 0), (5, 4), (-5, 4)], float)
    points[36:42] = eye + np.array([50, 60])
    points[42:48] = eye + np.array([100, 60])
    angles = np.linspace(math.pi, -math.pi, 12, endpoint=False)
    points[48:60] = np.c_[75 + 20 * np.cos(angles), 112 - 8 * np.sin(angles)]
    inner = np.linspace(math.pi, -math.pi, 8, endpoint=False)
    points[60:68] = np.c_[75 + 12 * np.cos(inner), 112 - 3 * np.sin(inner)]
    return points


def test_part_masks_are_disjoint_and_where_the_landmarks_say():
    masks = part_masks(synthetic_landmarks(), (150, 150))
    assert masks.masks.shape == (7, 150, 150) and masks.names == PARTS
    assert masks.masks.sum(axis=0).max() == 1  # every pixel in at most one part
    assert all(area > 50 for area in masks.areas().values())
    expected = {
        "eyes": [(50, 60), (100, 60)],
        "nose": [(75, 85)],
        "mouth": [(75, 112)],
        "jaw": [(75, 128)],
        "cheek": [(40, 85), (110, 85)],
        "forehead": [(75, 25)],
        "hair": [(20, 40), (130, 40)],
    }
    labels = masks.label_map()
    for name, points in expected.items():
        for x, y in points:
            assert PARTS[labels[y, x]] == name, (name, x, y)
    assert labels[145, 5] == -1  # background
    with pytest.raises(ValueError):
        part_masks(np.zeros((5, 2)), (150, 150))


# ---- channel metrics (eqs. 8-10, §5.2) -----------------------------------------------
def stripe_masks(size: int = 100) -> np.ndarray:
    """Seven horizontal stripes of 10 % of the picture each (rows 10k .. 10k+9)."""
    masks = np.zeros((7, size, size), bool)
    for k in range(7):
        masks[k, 10 * k : 10 * k + 10] = True
    return masks


def test_top_ten_percent_threshold():
    values = torch.arange(100, dtype=torch.float32).reshape(1, 10, 10)
    assert top_threshold(values).item() == 90  # eq. 9: 10 of 100 pixels >= 90
    kept, area = top_area(values.numpy(), (10, 10))
    assert area.sum() == 10 and kept[area].min() == 90 and kept[~area].max() == 0
    kept, area = top_area(np.zeros((1, 4, 4)), (8, 8))
    assert not area.any()  # no activation, no area (our choice)


def test_part_explainability_on_maps_with_known_parts():
    masks = stripe_masks()
    maps = masks.astype(np.float32)  # channel k lights exactly part k
    _, area = top_area(maps, (100, 100))
    iou = part_iou(area, masks)
    np.testing.assert_allclose(np.diag(iou), 1.0)
    assert face_part_explainability(iou) == pytest.approx(1.0)
    assert best_parts(iou).tolist() == list(range(7))
    straddling = np.zeros((1, 100, 100), np.float32)
    straddling[0, 5:15] = 1.0  # half in part 0, half in part 1
    _, area = top_area(straddling, (100, 100))
    iou = part_iou(area, masks)
    np.testing.assert_allclose(iou[0, :2], [1 / 3, 1 / 3])
    assert face_part_explainability(iou) == pytest.approx(1 / 3)
    silent = part_iou(np.zeros((1, 100, 100), bool), masks)
    assert best_parts(silent).tolist() == [-1]


def test_location_consistency_on_known_choices():
    always = math.sqrt(6) / 49 * math.sqrt(7)  # sqrt(42) / 49
    best = np.array([[2, k, -1] for k in range(7)])  # 7 faces, 3 channels
    shares, spread = channel_consistency(best)
    np.testing.assert_allclose(shares[0], np.eye(7)[2])
    assert spread[0] == pytest.approx(always)  # always the same part
    assert spread[1] == pytest.approx(0.0)  # every part equally often
    assert np.isnan(spread[2])  # never touches a part: left out
    assert location_consistency(best) == pytest.approx(always / 2)


def gaussian(size: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / sigma**2)


def test_activation_robustness_counts_peaks_by_prominence():
    np.testing.assert_allclose(
        peak_prominences(np.array([[0.0, 5.0, 2.0, 3.0, 0.0]])), [5.0, 1.0]
    )
    assert count_peaks(np.zeros((8, 8))) == 0
    assert count_peaks(np.full((8, 8), 2.0)) == 1  # a plateau is one peak
    one = gaussian(14, (4, 4), 2.0)
    two = one + 0.8 * gaussian(14, (10, 10), 2.0)
    three = two + 0.6 * gaussian(14, (2, 11), 1.5)
    assert count_peaks(one) == 1 and count_peaks(two) == 2 and count_peaks(three) == 3
    ripple = two + 0.02 * np.random.default_rng(0).random((14, 14))
    assert count_peaks(ripple) == 2  # bumps below 10 % of the maximum do not count
    assert count_peaks(ripple, min_prominence=0.0) > 2


@pytest.mark.slow
def test_channel_analysis_end_to_end(dlib_model, tmp_path):
    chip = np.zeros((150, 150, 3), np.uint8)
    chip[...] = (np.indices((150, 150)).sum(0) % 255)[..., None].astype(np.uint8)
    faces = FaceChips(
        np.stack([chip, chip[:, ::-1]]),
        np.stack([synthetic_landmarks()] * 2).astype(np.float32),
        ["a", "b"],
    )
    report = analyse_channels(dlib_model, "stage4.block2", faces, repeats=2)
    assert isinstance(report, ChannelReport)
    assert report.channels == 256 and report.map_size == (4, 4) and report.faces == 2
    assert 0 <= report.part_explainability <= 1
    assert 0 <= report.location_consistency <= math.sqrt(42) / 49 + 1e-9
    assert report.activation_robustness >= 0
    assert report.part_explainability_se is None  # too few faces to split
    assert len(report.channel_stats) == 256
    assert sum(report.channels_per_part.values()) + report.dead_channels == 256
    plain = json.loads(json.dumps(report.to_dict()))  # plain data (tuples -> lists)
    assert plain["map_size"] == [4, 4] and plain["channels"] == 256
    assert plain["channels_per_part"] == report.channels_per_part
    written = write_channel_outputs(report, tmp_path / "out")
    assert {p.name for p in written} >= {
        "summary.json",
        "channels.csv",
        "parts.png",
        "channels-face1.png",
    }
    assert len((tmp_path / "out" / "channels.csv").read_text().splitlines()) == 257
    with pytest.raises(BadInputError, match="nope"):
        analyse_channels(dlib_model, "nope", faces)


def test_channel_overlay_uses_the_report_colours():
    # one colour mapping (issue 17): on a black chip the overlay is the report's
    # sequential colour scaled by 0.45 + 0.2 × strength; outside the area it is black
    kept = np.zeros((8, 8), np.float32)
    kept[2, 3], kept[5, 5], kept[6, 1] = 4.0, 2.0, 1.0
    image = overlay_top_area(np.zeros((8, 8, 3), np.uint8), kept)
    colours, _, _ = colour_map(kept / 4.0, signed=False, peak=1.0)
    for row, col in [(2, 3), (5, 5), (6, 1)]:
        strength = kept[row, col] / 4.0
        expected = np.float32(colours[row, col]) * np.float32(0.45 + 0.2 * strength)
        assert image[row, col].tolist() == expected.astype(np.uint8).tolist()
    assert not image[kept == 0].any()
    assert image[2, 3].tolist() != image[6, 1].tolist()  # the scale is not flat


# ---- training ------------------------------------------------------------------------
def drawn_chip_set(people: int = 4, per_person: int = 3, seed: int = 0) -> ChipSet:
    """Chips drawn with numpy: each 'person' a blurred colour pattern, each image a
    noisy, shifted copy of it."""
    import cv2

    rng = np.random.default_rng(seed)
    chips, labels = [], []
    for person in range(people):
        base = cv2.resize(
            rng.uniform(0, 255, (6, 6, 3)).astype(np.float32),
            (150, 150),
            interpolation=cv2.INTER_CUBIC,
        )
        for _ in range(per_person):
            shifted = np.roll(base, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
            noisy = shifted + rng.normal(0, 12, shifted.shape)
            chips.append(np.clip(noisy, 0, 255).astype(np.uint8))
            labels.append(person)
    count = len(chips)
    return ChipSet(
        np.stack(chips),
        np.asarray(labels, np.int64),
        [f"person{p}" for p in range(people)],
        [f"drawn-{i}.png" for i in range(count)],
        np.stack([synthetic_landmarks()] * count).astype(np.float32),
    )


def tiny_config(**changes) -> ECLossConfig:
    values: dict = {
        "layer": "stage4.block2",
        "train_from": "stage4.block0",
        "steps": 2,
        "batch_size": 6,
        "per_identity": 3,
        "tau": 0.1,
        "beta_schedule": "constant",
        "beta0": 0.01,
        "checkpoint_every": 10,
    }
    values.update(changes)
    return ECLossConfig(**values)


def test_batches_and_identity_loss():
    labels = np.repeat(np.arange(5), 3)
    first, flips = batch_indices(labels, 7, 0, 12, 3)
    again, flips_again = batch_indices(labels, 7, 0, 12, 3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(flips, flips_again)
    assert len(first) == 12 and np.bincount(labels[first]).max() == 3
    assert not np.array_equal(first, batch_indices(labels, 8, 0, 12, 3)[0])
    embeddings = torch.zeros(4, 2)
    embeddings[2:] = 1.0
    same_far = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [5.0, 6.0]])
    assert metric_loss(embeddings, torch.tensor([0, 0, 1, 1])).item() == 0
    assert metric_loss(same_far, torch.tensor([0, 0, 1, 1])).item() == pytest.approx(
        2 * (1 - 0.56) / 2
    )
    with pytest.raises(BadInputError):
        metric_loss(embeddings, torch.tensor([0, 1, 2, 3]))


@pytest.mark.slow
def test_training_checkpoints_resumes_and_reloads(dlib_model, tmp_path):
    data = drawn_chip_set()
    weights_before = dlib_model.network.stages[3][0].conv1.weight.detach().clone()
    done: list[int] = []
    with pytest.raises(Cancelled, match="--resume"):  # stopped after one step
        train_ecloss(
            dlib_model,
            data,
            tiny_config(),
            tmp_path / "a",
            progress=lambda step, _total, _message: done.append(step),
            cancel=lambda: bool(done),
        )
    assert (tmp_path / "a" / "checkpoint.pt").is_file()
    assert not (tmp_path / "a" / "model.pt").exists()
    with pytest.raises(BadInputError, match="--resume"):
        train_ecloss(dlib_model, data, tiny_config(), tmp_path / "a")
    with pytest.raises(BadInputError, match="other settings"):
        train_ecloss(
            dlib_model, data, tiny_config(tau=0.2), tmp_path / "a", resume=True
        )
    resumed = train_ecloss(dlib_model, data, tiny_config(), tmp_path / "a", resume=True)
    straight = train_ecloss(dlib_model, data, tiny_config(), tmp_path / "b")
    assert [h["step"] for h in resumed.history] == [1, 2]
    for key in ("identity_loss", "mi"):
        np.testing.assert_allclose(
            [h[key] for h in resumed.history],
            [h[key] for h in straight.history],
            rtol=1e-5,
        )
    assert all(math.isfinite(h["identity_loss"]) for h in resumed.history)
    assert resumed.checkpoint_path.is_file() and resumed.model_path.is_file()
    # the registry's shared model was not touched
    assert torch.equal(dlib_model.network.stages[3][0].conv1.weight, weights_before)

    card = tomllib.loads(resumed.card_path.read_text(encoding="utf-8"))
    training = card["training"]
    assert training["base_weights_sha256"] == dlib_model.weights_sha256
    assert training["steps"] == 2 and training["layer"] == "stage4.block2"
    assert training["architecture"] == "dlib-resnet-v1"
    assert training["beta"]["schedule"] == "constant"
    assert training["templates"]["count"] == 137
    assert "software" in training and "final" in training

    chips = data.chips[:3]
    # the generic model-file loader; the file is TorchScript, written here
    loaded = load_model_file(resumed.model_path, trust_code=True)
    assert loaded.model_id == "dlib-resnet-v1-ecloss"
    embedded = loaded.embed_chips(chips)
    assert embedded.shape == (3, 128) and np.isfinite(embedded).all()
    assert not np.allclose(embedded, dlib_model.embed_chips(chips))  # it changed
    eager = load_model(resumed.model_path, device="cpu", trust_code=True, analysis=True)
    assert "stage4.block2" in [tap.name for tap in eager.layer_taps()]
    np.testing.assert_allclose(eager.embed_chips(chips), embedded, atol=1e-4)


# ---- commands ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def face_folder(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    """Two 'people' with three photos each (crops and mirror images)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("identities")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    for name, image in (("astronaut", astronaut_rgb), ("hopper", hopper)):
        folder = root / name
        folder.mkdir()
        height, width = image.shape[:2]
        crops = [image, image[:, ::-1], image[height // 20 :, width // 20 :]]
        for number, crop in enumerate(crops, start=1):
            Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{number}.png")
    return root


@pytest.mark.dlib
@pytest.mark.slow
def test_cli_train_and_channels_end_to_end(face_folder, tmp_path, capsys):
    out = tmp_path / "control"
    code = main(
        [
            "train",
            "ecloss",
            "--data",
            str(face_folder),
            "--layer",
            "stage4.block2",
            "--train-from",
            "stage4.block0",
            "--out",
            str(out),
            "--steps",
            "1",
            "--batch-size",
            "6",
            "--per-identity",
            "3",
            "--beta",
            "0",
            "--json",
        ]
    )
    assert code == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 1 and Path(result["model_path"]).is_file()
    card = tomllib.loads(Path(result["card_path"]).read_text(encoding="utf-8"))
    assert card["id"] == "dlib-resnet-v1-ecloss-control"  # --beta 0: the control
    assert card["training"]["beta"]["final"] == 0.0
    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    assert history[0]["beta"] == 0.0 and history[0]["mi"] > 0  # measured only
    code = main(
        [
            "channels",
            "--model",
            result["model_path"],
            "--trust-model-code",  # the trained model is TorchScript
            "--layer",
            "stage4.block2",
            "--data",
            str(face_folder),
            "--out",
            str(tmp_path / "channels"),
            "--json",
        ]
    )
    assert code == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (
        report["faces"] == 6 and report["model_id"] == "dlib-resnet-v1-ecloss-control"
    )
    assert set(report) >= {"part_explainability", "location_consistency"}
    assert (tmp_path / "channels" / "channels-face1.png").is_file()


@pytest.mark.slow
@pytest.mark.dlib
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["train", "ecloss", "--layer", "nope"], "no layer tap 'nope'"),
        (["train", "ecloss", "--layer", "embedding"], "not a convolutional"),
        (["channels", "--layer", "nope"], "no layer tap 'nope'"),
        (["channels", "--layer", "embedding"], "not a convolutional"),
    ],
)
def test_cli_bad_layer_is_exit_2(command, message, face_folder, tmp_path, capsys):
    extra = ["--out", str(tmp_path / "x")] if command[0] == "train" else []
    code = main([*command, "--data", str(face_folder), *extra])
    assert code == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


@pytest.mark.dlib
@pytest.mark.parametrize("command", [["train", "ecloss"], ["channels"]])
def test_cli_bad_data_is_exit_2(command, tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    extra = ["--out", str(tmp_path / "x")] if command[0] == "train" else []
    code = main([*command, "--layer", "stage4.block2", "--data", str(missing), *extra])
    assert code == EXIT_BAD_INPUT
    assert "no-such-folder" in capsys.readouterr().err
