"""Score-to-LR calibration: fit, bounds, JSON, verbal scale, the shipped default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.calibration import (
    Calibration,
    calibration_curve,
    check_calibration,
    default_calibration_path,
    fit_calibration,
    load_calibration,
    plot_calibration,
    save_calibration,
    verbal_band,
    verbal_scale,
)
from core.errors import BadInputError

SHA = "a" * 64
DEFAULT_MODEL = "dlib-resnet-v1"


def _scores(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.9, 0.03, n), rng.normal(0.6, 0.08, n)


@pytest.fixture(scope="module", params=["logistic", "kde"])
def fitted(request) -> tuple[Calibration, np.ndarray, np.ndarray]:
    genuine, impostor = _scores()
    cal = fit_calibration(
        genuine,
        impostor,
        model_id="test-model",
        model_sha256=SHA,
        reference="synthetic normal scores",
        method=request.param,
    )
    return cal, genuine, impostor


@pytest.mark.slow
def test_lr_direction_and_monotone(fitted):
    cal, _, _ = fitted
    assert cal.lr(0.92) > 1
    assert cal.lr(0.55) < 1
    grid = np.linspace(0.0, 1.0, 501)  # beyond the training range on both sides
    llrs = cal.log10_lrs(grid)
    assert np.all(np.diff(llrs) >= -1e-12)
    assert np.all(llrs >= cal.llr_bounds[0]) and np.all(llrs <= cal.llr_bounds[1])
    assert cal.log10_lr(0.92) == pytest.approx(np.log10(cal.lr(0.92)))
    np.testing.assert_allclose(cal.lrs([0.55, 0.92]), [cal.lr(0.55), cal.lr(0.92)])


@pytest.mark.slow
def test_cllr_informative(fitted):
    cal, genuine, impostor = fitted
    assert 0 <= cal.cllr_min <= cal.cllr < 1
    assert (cal.n_genuine, cal.n_impostor) == (genuine.size, impostor.size)
    assert cal.score_range == (
        min(genuine.min(), impostor.min()),
        max(genuine.max(), impostor.max()),
    )


@pytest.mark.slow
def test_json_round_trip(fitted, tmp_path):
    cal, _, _ = fitted
    path = save_calibration(cal, tmp_path / "cal.json")
    again = load_calibration(path, model_id="test-model", sha256=SHA)
    assert again == cal
    scores = np.linspace(0.3, 1.0, 57)
    np.testing.assert_array_equal(again.lrs(scores), cal.lrs(scores))


@pytest.mark.slow
def test_logistic_file_is_small_kde_stores_scores(fitted):
    cal, genuine, _ = fitted
    data = cal.to_dict()
    if cal.method == "logistic":
        assert set(data["parameters"]) == {"intercept", "slope"}
        assert "training_scores" not in data
    else:
        assert len(data["training_scores"]["genuine"]) == genuine.size


@pytest.mark.parametrize(
    ("lr", "band"),
    [
        (1.5, "weak support"),
        (9.999, "weak support"),
        (10, "moderate support"),  # a boundary belongs to the higher band
        (99.9, "moderate support"),
        (100, "moderately strong support"),
        (1_000, "strong support"),
        (10_000, "very strong support"),
        (999_999, "very strong support"),
        (1_000_000, "extremely strong support"),
        (1e9, "extremely strong support"),
        (0.1, "moderate support"),  # 1/LR = 10
        (0.5, "weak support"),
        (1e-3, "strong support"),
        (1e-6, "extremely strong support"),
        (0.0, "extremely strong support"),
    ],
)
def test_verbal_bands(lr, band):
    assert verbal_band(lr) == band
    sentence = verbal_scale(lr)
    assert f"provides {band} for the proposition" in sentence
    if lr > 1:
        assert "show the same person rather than different people" in sentence
    else:
        assert "show different people rather than the same person" in sentence


def test_verbal_neutral_and_invalid():
    assert "neither proposition is supported" in verbal_scale(1.0)
    assert verbal_band(1.0) == "no support"
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            verbal_scale(bad)


@pytest.mark.slow
def test_model_mismatch_refused(fitted, tmp_path):
    cal, _, _ = fitted
    with pytest.raises(BadInputError, match="made for model test-model"):
        cal.check_model("other-model", SHA)
    with pytest.raises(BadInputError, match="weights"):
        cal.check_model("test-model", "b" * 64)
    path = save_calibration(cal, tmp_path / "cal.json")
    with pytest.raises(BadInputError) as caught:
        load_calibration(path, model_id="other-model", sha256=SHA)
    assert caught.value.path == path


@pytest.mark.slow
def test_damaged_or_missing_file(fitted, tmp_path):
    cal, _, _ = fitted
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(cal.to_dict())[:-20])
    with pytest.raises(BadInputError, match="damaged") as caught:
        load_calibration(damaged)
    assert str(damaged) in str(caught.value)

    missing = tmp_path / "missing.json"
    with pytest.raises(BadInputError, match="not found") as caught:
        load_calibration(missing)
    assert str(missing) in str(caught.value)

    data = cal.to_dict()
    del data["llr_bounds"]
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match="llr_bounds") as caught:
        load_calibration(incomplete)
    assert str(incomplete) in str(caught.value)

    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(BadInputError, match="not a usable calibration"):
        load_calibration(other)


@pytest.mark.slow  # the first import of lir costs about 2 s
def test_fit_refuses_bad_input():
    genuine, impostor = _scores(50)
    with pytest.raises(BadInputError):
        fit_calibration([0.9], impostor, model_id="m", model_sha256=SHA, reference="r")
    with pytest.raises(BadInputError):
        fit_calibration(
            np.r_[genuine, np.nan],
            impostor,
            model_id="m",
            model_sha256=SHA,
            reference="r",
        )
    with pytest.raises(BadInputError, match="method"):
        fit_calibration(
            genuine, impostor, model_id="m", model_sha256=SHA, reference="r",
            method="magic",
        )  # fmt: skip


@pytest.mark.slow
def test_calibration_curve(fitted):
    cal, genuine, impostor = fitted
    curve = calibration_curve(cal, genuine, impostor, bins=8, points=21)
    assert len(curve["curve"]["score"]) == len(curve["curve"]["log10_lr"]) == 21
    assert len(curve["bins"]) == 8
    assert sum(b["n_genuine"] for b in curve["bins"]) == genuine.size
    assert sum(b["n_impostor"] for b in curve["bins"]) == impostor.size
    json.dumps(curve)  # plain data


def test_shipped_default_calibration():
    path = default_calibration_path(DEFAULT_MODEL)
    assert path == Path(__file__).resolve().parents[2] / (
        "resources/calibration/dlib-resnet-v1.json"
    )
    assert path.stat().st_size < 20_000
    sha = json.loads(path.read_text())["model_sha256"]
    cal = load_calibration(path, model_id=DEFAULT_MODEL, sha256=sha)
    assert cal.score_kind == "cosine"
    assert cal.lr(0.97) > 1
    assert cal.lr(0.80) < 1
    assert 0 < cal.cllr_min <= cal.cllr < 1
    assert "LFW train-identities" in cal.reference
    assert "seed" in cal.reference and "xfr calibrate" in cal.reference
    with pytest.raises(BadInputError):
        cal.check_model(DEFAULT_MODEL, "0" * 64)


def test_strength_of_evidence_only_for_the_calibrated_model():
    from core.calibration import strength_of_evidence

    path = default_calibration_path("dlib-resnet-v1")
    sha = json.loads(path.read_text())["model_sha256"]
    lr, sentence, reference = strength_of_evidence(0.97, "dlib-resnet-v1", sha)
    assert lr > 1 and "same person" in sentence and "LFW" in reference
    assert strength_of_evidence(0.97, "dlib-resnet-v1", "0" * 64) is None
    assert strength_of_evidence(0.97, "no-such-model", sha) is None


@pytest.mark.slow
def test_check_on_fresh_pairs_and_on_shifted_scores(fitted, tmp_path):
    """A calibration checked on new pairs of the same kind performs as fitted; on
    scores shifted towards the other class it misleads, and Cllr shows it while
    Cllr_min (discrimination only) does not."""
    cal, _, _ = fitted
    genuine, impostor = _scores(seed=1)
    same = check_calibration(cal, genuine, impostor, "fresh synthetic pairs")
    assert same.cllr == pytest.approx(cal.cllr, abs=0.1)
    assert same.cllr_min <= same.cllr + 1e-9
    assert same.genuine_lr_below_1 < 0.05 and same.impostor_lr_above_1 < 0.05
    shifted = check_calibration(cal, genuine - 0.2, impostor - 0.2, "shifted")
    assert shifted.genuine_lr_below_1 > 0.5  # same people now look different
    assert shifted.cllr > shifted.cllr_min + 0.3
    assert shifted.strongest_misleading_genuine_lr < 1
    png = plot_calibration(cal, genuine, impostor, tmp_path / "c.png", "title")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.dlib
@pytest.mark.slow
def test_cli_checks_the_shipped_calibration_on_a_folder(
    tmp_path, astronaut_path, grace_hopper_path, capsys
):
    from PIL import Image, ImageOps

    from core.cli import EXIT_OK, main

    data = tmp_path / "identities"
    for person, photo in (("astronaut", astronaut_path), ("hopper", grace_hopper_path)):
        (data / person).mkdir(parents=True)
        image = Image.open(photo).convert("RGB")
        image.save(data / person / "1.png")
        ImageOps.mirror(image).save(data / person / "2.png")
    plot = tmp_path / "check.png"
    shipped = str(default_calibration_path(DEFAULT_MODEL))
    code = main(
        ["calibrate", "--data", str(data), "--device", "cpu", "--json",
         "--evaluate", shipped, "--plot", str(plot)]
    )  # fmt: skip
    assert code == EXIT_OK
    check = json.loads(capsys.readouterr().out)["check"]
    assert check["n_genuine"] == 2 and check["n_impostor"] == 4
    assert check["genuine_lr_below_1"] == 0 and check["impostor_lr_above_1"] == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
