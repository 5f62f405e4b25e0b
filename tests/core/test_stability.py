"""Stochastic explainers stop when their map is stable, and say how uncertain it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_models import RegionNet, SyntheticModel
from test_explain import synthetic_pair

from core.case import workflow
from core.explain import get, infos
from core.explain.export import write_result
from core.explain.methods.corrrise import CorrelationSums, pixel_correlation
from core.explain.stability import pearson, spearman_brown

STOCHASTIC = sorted(info.method_id for info in infos() if info.stochastic)
# small rounds, so that reaching the target takes several of them (every round
# the same size here; test_explain_speed.py checks later rounds of other sizes)
ROUND = {
    "corrrise": {"masks": 50, "check_every": 50},
    "lime": {"samples": 20, "segments": 60, "sigma": 1, "check_every": 20},
    # unpaired: with opposite pairs the synthetic map is stable after one round
    # (test_antithetic.py); the rounds are what these tests check
    "smoothgrad": {"samples": 2, "antithetic": False},
}
COUNT = {"corrrise": "masks", "lime": "samples", "smoothgrad": "samples"}


@pytest.fixture(scope="module")
def region_model():
    return SyntheticModel(RegionNet(), 64)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(64)


def run(method_id, model, pair, seed=0, progress=None, **params):
    return get(method_id).explain(
        pair, model, {**ROUND[method_id], **params}, seed=seed, progress=progress
    )


def test_every_stochastic_method_has_a_stopping_rule():
    assert STOCHASTIC == sorted(ROUND)  # a new stochastic method needs its rule
    for info in infos():
        names = {p.name for p in info.params}
        assert {"stability", "max_samples"} <= names or not info.stochastic
        if info.stochastic:
            assert info.algorithm_version >= 2


@pytest.mark.parametrize("method_id", STOCHASTIC)
def test_sampling_stops_once_stable(method_id, region_model, pair):
    calls: list[tuple[int, int, str]] = []
    result = run(
        method_id,
        region_model,
        pair,
        progress=lambda done, total, message: calls.append((done, total, message)),
        max_samples=100 * ROUND[method_id][COUNT[method_id]],
    )
    stability = result.details["stability"]
    assert stability["target"] == 0.95
    round_size = ROUND[method_id][COUNT[method_id]]
    for side in ("probe", "gallery"):
        reached = stability[side]
        assert reached["stopped_by"] == "target", reached
        assert reached["reached"] >= 0.95
        assert round_size < reached["samples"] < reached["cap"]  # took rounds
        assert reached["samples"] % round_size == 0
        counts = [count for count, _value in reached["history"]]
        assert counts == list(range(round_size, reached["samples"] + 1, round_size))
        # every round before the last fell short of the target
        assert all(value < 0.95 for _count, value in reached["history"][:-1])
    assert not any("did not become stable" in note for note in result.notes)
    # progress counts against the cap, monotone, and ends full although it stopped
    done = [d for d, _total, _message in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1]
    assert {total for _d, total, _m in calls} == {2 * stability["probe"]["cap"]}
    assert "the bar counts to the most that may be needed" in calls[1][2]


@pytest.mark.parametrize("method_id", STOCHASTIC)
def test_the_cap_is_honoured_and_reported(method_id, region_model, pair):
    round_size = ROUND[method_id][COUNT[method_id]]
    cap = 2 * round_size + 1  # two full rounds and a last one of a single sample
    calls: list[int] = []
    result = run(
        method_id,
        region_model,
        pair,
        progress=lambda done, _total, _message: calls.append(done),
        stability=1.0,  # unreachable for a noisy map
        max_samples=cap,
    )
    for side in ("probe", "gallery"):
        reached = result.details["stability"][side]
        assert reached["stopped_by"] == "cap"
        assert reached["samples"] == reached["cap"] == cap
        assert [c for c, _ in reached["history"]] == [
            round_size,
            2 * round_size,
            cap,
        ]
        assert reached["reached"] < 1.0
    assert sum("did not become stable within" in note for note in result.notes) == 2
    assert calls[-1] == 2 * cap


def test_a_cap_below_the_first_round_runs_the_round(region_model, pair):
    """Old calls that only set the count still get that many samples."""
    result = run("corrrise", region_model, pair, masks=60, max_samples=10)
    assert result.details["stability"]["probe"]["samples"] == 60


@pytest.mark.slow
@pytest.mark.parametrize("method_id", STOCHASTIC)
def test_same_seed_same_stop_and_map(method_id, region_model, pair):
    params = {"stability": 0.9, "max_samples": 2000}
    first = run(method_id, region_model, pair, seed=3, **params)
    again = run(method_id, region_model, pair, seed=3, **params)
    other = run(method_id, region_model, pair, seed=4, **params)
    assert again.details == first.details
    assert first.details["stability"]["probe"]["stopped_by"] == "target"
    assert again.cache_key == first.cache_key != other.cache_key
    for a, b, c in zip(first.images, again.images, other.images, strict=True):
        np.testing.assert_array_equal(a.combined_map, b.combined_map)
        np.testing.assert_array_equal(a.chip.uncertainty, b.chip.uncertainty)
        assert not np.array_equal(a.combined_map, c.combined_map)


@pytest.mark.slow
@pytest.mark.parametrize("method_id", STOCHASTIC)
def test_uncertainty_is_a_chip_sized_standard_error(method_id, region_model, pair):
    round_size = ROUND[method_id][COUNT[method_id]]
    # LIME: 60 superpixels, so 4 rounds (80 copies, 40 opposite pairs) are barely
    # more than the ridge's parameters, and its jackknife then overstates the
    # error (conservative: 1.6x the spread over seeds); from 8 rounds it scales
    rounds = 8 if method_id == "lime" else 4
    few = run(
        method_id, region_model, pair, stability=1.0, max_samples=rounds * round_size
    )
    many = run(
        method_id,
        region_model,
        pair,
        stability=1.0,
        max_samples=4 * rounds * round_size,
    )
    for side_few, side_many in zip(few.images, many.images, strict=True):
        for maps in (side_few, side_many):
            uncertainty = maps.chip.uncertainty
            assert uncertainty.shape == maps.combined_map.shape == (64, 64)
            assert uncertainty.dtype == np.float32
            assert np.isfinite(uncertainty).all() and (uncertainty >= 0).all()
            assert uncertainty.max() > 0
            assert "uncertainty" not in maps.chip_maps()  # not a map kind
        # a standard error: 4 x the samples, about half the spread
        ratio = side_many.chip.uncertainty.mean() / side_few.chip.uncertainty.mean()
        assert 0.3 < ratio < 0.7, ratio


@pytest.mark.slow
def test_uncertainty_predicts_the_spread_across_seeds(region_model, pair):
    """The jackknife error matches the standard deviation over independent seeds."""
    runs = [
        run("smoothgrad", region_model, pair, seed=seed, stability=1.0, max_samples=16)
        for seed in range(12)
    ]
    maps = np.stack([r.probe.combined_map for r in runs])
    spread = maps.std(0, ddof=1).mean()
    predicted = np.mean([r.probe.chip.uncertainty.mean() for r in runs])
    assert 0.7 < predicted / spread < 1.4, (predicted, spread)


def test_deterministic_methods_have_no_uncertainty(region_model, pair):
    result = get("gradient").explain(pair, region_model)
    assert all(maps.chip.uncertainty is None for maps in result.images)
    assert "stability" not in result.details


def test_streamed_correlation_equals_the_correlation_of_all_masks():
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(rng.random((37, 5, 6)).astype(np.float32))
    scores = torch.from_numpy(rng.normal(size=37).astype(np.float32))
    sums = CorrelationSums((5, 6))
    sums.add(0, masks[:20], scores[:20])
    sums.add(20, masks[20:], scores[20:])
    np.testing.assert_allclose(
        sums.map_of(range(8)), pixel_correlation(masks, scores), atol=1e-5
    )
    even = pixel_correlation(masks[::2], scores[::2])
    np.testing.assert_allclose(sums.map_of((0, 2, 4, 6)), even, atol=1e-5)
    assert sums.sizes == [5, 5, 5, 5, 5, 4, 4, 4]


def test_spearman_brown_and_pearson():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.9) == pytest.approx(1.8 / 1.9)
    assert spearman_brown(1.0) == 1.0
    a = np.arange(12.0).reshape(3, 4)
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert pearson(np.zeros((3, 4)), np.zeros((3, 4))) == 1.0  # both flat: agree
    assert pearson(a, np.zeros((3, 4))) == 0.0


def test_export_writes_the_uncertainty(region_model, pair, tmp_path):
    result = run("corrrise", region_model, pair, max_samples=50)
    images = [np.zeros((*view.image_shape, 3), np.uint8) for view in pair.sides]
    manifest = write_result(result, images, tmp_path)
    for maps in result.images:
        path = tmp_path / "corrrise" / f"{maps.side}_uncertainty_chip.npy"
        assert manifest["uncertainty_chip_npy"][maps.side] == str(path)
        np.testing.assert_array_equal(np.load(path), maps.chip.uncertainty)
    assert all("uncertainty" not in stem for stem in manifest["files"])
    gradient = write_result(
        get("gradient").explain(pair, region_model), images, tmp_path
    )
    assert "uncertainty_chip_npy" not in gradient
    assert not list((tmp_path / "gradient").glob("*uncertainty*"))


# ---- in a case: the maps file --------------------------------------------------------
@pytest.mark.slow
def test_the_maps_file_keeps_the_uncertainty(demo, dlib_model):
    params = {"masks": 16, "max_samples": 16}
    done = workflow.explain(demo, "Q1", "K1", "corrrise", dlib_model, params=params)
    assert not done.from_cache
    with np.load(demo.derived_path(done.stored.maps_sha256)) as arrays:
        assert {"probe_uncertainty_chip", "gallery_uncertainty_chip"} <= set(arrays)
    again = workflow.explain(demo, "Q1", "K1", "corrrise", dlib_model, params=params)
    assert again.from_cache
    for stored, computed in zip(again.result.images, done.result.images, strict=True):
        assert stored.chip.uncertainty.shape == (150, 150)
        np.testing.assert_array_equal(
            stored.chip.uncertainty, computed.chip.uncertainty
        )
        assert sorted(stored.chip_maps()) == sorted(computed.chip_maps())
    assert again.result.details["stability"] == done.result.details["stability"]


@pytest.mark.slow
def test_maps_files_without_uncertainty_still_load(demo, dlib_model):
    """Files written before uncertainty existed (as deterministic methods still
    write them) load with no uncertainty."""
    done = workflow.explain(demo, "Q1", "K1", "gradcam", dlib_model)
    with np.load(demo.derived_path(done.stored.maps_sha256)) as arrays:
        assert not any("uncertainty" in key for key in arrays)
    loaded = workflow.load_result(demo, done.stored)
    for maps, computed in zip(loaded.images, done.result.images, strict=True):
        assert maps.chip.uncertainty is None
        assert sorted(maps.chip_maps()) == sorted(computed.chip_maps())


def test_stability_sentence_says_what_was_reached_and_why_it_stopped():
    from core.explain.stability import stability_sentence

    details = {
        "stability": {
            "target": 0.95,
            "probe": {
                "reached": 0.9612,
                "samples": 3000,
                "cap": 10000,
                "stopped_by": "target",
            },
            "gallery": {
                "reached": 0.71,
                "samples": 10000,
                "cap": 10000,
                "stopped_by": "cap",
            },
        }
    }
    probe = stability_sentence(details, "probe")
    assert "stability 0.961 after 3000 samples" in probe and "at the target" in probe
    gallery = stability_sentence(details, "gallery")
    assert "cap of 10000 samples, below the target" in gallery
    assert stability_sentence({}, "probe") is None  # a method that samples nothing
