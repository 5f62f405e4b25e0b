"""Time to a stable map: later rounds of LIME and CorrRISE check the stability more
often than the first round draws, without changing which samples are drawn."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_models import RegionNet, SyntheticModel
from test_explain import synthetic_pair

from core.explain import get
from core.explain.stability import StoppingRule

LIME = {"samples": 20, "segments": 60, "sigma": 1}


@pytest.fixture(scope="module")
def region_model():
    return SyntheticModel(RegionNet(), 64)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(64)


def test_defaults_check_every_quarter_round_and_name_the_new_version():
    for method_id, count in (("lime", "samples"), ("corrrise", "masks")):
        info = get(method_id).info
        defaults = info.defaults()
        assert defaults["check_every"] * 4 == defaults[count] == 1000
        # 3: the stopping points moved; LIME 4: antithetic pairs (test_antithetic.py)
        assert info.algorithm_version == (4 if method_id == "lime" else 3)
    # SmoothGrad's rounds are small already: no extra parameter
    assert "check_every" not in get("smoothgrad").info.defaults()
    assert get("smoothgrad").info.algorithm_version == 3


def test_rounds_after_the_first_have_the_check_size():
    rule = StoppingRule(round_size=20, cap=47, target=0.95, check_every=5)
    used, counts = 0, []
    while used < rule.cap:
        used += rule.next_count(used)
        counts.append(used)
    assert counts == [20, 25, 30, 35, 40, 45, 47]
    assert StoppingRule(20, 47, 0.95).next_count(20) == 20  # 0: as the first round


def _params(method_id: str) -> tuple[str, dict]:
    if method_id == "lime":
        return "samples", dict(LIME)
    return "masks", {"masks": 20}


@pytest.mark.parametrize("method_id", ["lime", "corrrise"])
def test_the_same_samples_whatever_the_check_size(method_id, region_model, pair):
    """At a fixed count (target 1 = never stop) the maps are bit-identical: the
    finer checks only decide when to stop, never which samples are drawn."""
    _count, base = _params(method_id)
    runs = [
        get(method_id).explain(
            pair,
            region_model,
            {**base, "stability": 1.0, "max_samples": 40, "check_every": every},
            seed=2,
        )
        for every in (20, 5)
    ]
    coarse, fine = (run.details["stability"]["probe"] for run in runs)
    assert [c for c, _ in coarse["history"]] == [20, 40]
    assert [c for c, _ in fine["history"]] == [20, 25, 30, 35, 40]
    assert coarse["history"][-1] == fine["history"][-1]
    for a, b in zip(runs[0].images, runs[1].images, strict=True):
        np.testing.assert_array_equal(a.combined_map, b.combined_map)
        np.testing.assert_array_equal(a.chip.uncertainty, b.chip.uncertainty)


@pytest.mark.parametrize("method_id", ["lime", "corrrise"])
def test_finer_checks_stop_at_a_checked_count_that_reached_the_target(
    method_id, region_model, pair
):
    count = "samples" if method_id == "lime" else "masks"
    base = LIME if method_id == "lime" else {count: 50}
    first = base[count]
    every = first // 4
    result = get(method_id).explain(
        pair,
        region_model,
        {**base, "max_samples": 100 * first, "check_every": every},
        seed=1,
    )
    stability = result.details["stability"]
    assert stability["check_every"] == every
    for side in ("probe", "gallery"):
        reached = stability[side]
        counts = [c for c, _ in reached["history"]]
        assert counts == list(range(first, reached["samples"] + 1, every))
        assert reached["stopped_by"] == "target" and reached["reached"] >= 0.95
        assert all(value < 0.95 for _c, value in reached["history"][:-1])


@pytest.mark.parametrize("method_id", ["lime", "corrrise"])
def test_finer_checks_never_need_more_samples(method_id, region_model, pair):
    """The coarse run's checks are a subset of the fine run's, on the same samples,
    so the fine run stops at the coarse run's count or before it."""
    _count, base = _params(method_id)
    params = {**base, "max_samples": 2000}
    coarse = get(method_id).explain(pair, region_model, {**params, "check_every": 20})
    fine = get(method_id).explain(pair, region_model, {**params, "check_every": 5})
    for side in ("probe", "gallery"):
        a = coarse.details["stability"][side]
        b = fine.details["stability"][side]
        assert b["samples"] <= a["samples"]
        assert b["stopped_by"] == a["stopped_by"] == "target"
    assert (
        sum(
            coarse.details["stability"][side]["samples"]
            - fine.details["stability"][side]["samples"]
            for side in ("probe", "gallery")
        )
        > 0
    )  # and here it does stop sooner


# Perturbation methods whose forward passes go through ExplainContext.scores or
# embed_batches, with reduced work (the real dlib model on the CPU).
PLAIN_VS_FAST = {
    "xface": {"patch_sizes": "28", "stride": 20},
    "lime": {"samples": 64, "max_samples": 64},
    "corrrise": {"masks": 64, "max_samples": 64},
    "minusplus": {"stride": 30},
    "components": {"pairs": False},
}


@pytest.mark.parametrize("method_id", sorted(PLAIN_VS_FAST))
def test_channels_last_and_cpu_batches_keep_every_map_within_1e5(
    method_id, dlib_model, photo_pair, monkeypatch
):
    """The fast path (channels-last inputs, batches of 32) against the plain one
    (NCHW, batches of 64): every map and table value within 1e-5."""
    import core.explain.base as base

    pair = photo_pair[2]
    params = PLAIN_VS_FAST[method_id]
    fast = get(method_id).explain(pair, dlib_model, params, seed=0)
    assert fast.batch_size == 32
    monkeypatch.setattr(base, "CHANNELS_LAST_ON_CPU", False)
    plain = get(method_id).explain(pair, dlib_model, params, seed=0, batch_size=64)
    assert fast.cache_key == plain.cache_key  # the same explanation
    for a, b in zip(fast.images, plain.images, strict=True):
        for kind, array in a.chip_maps().items():
            np.testing.assert_allclose(array, b.chip_maps()[kind], rtol=0, atol=1e-5)
    _close(fast.details, plain.details)  # tables (components) and stability


def _close(first, second, path="details"):
    """Equal structures; floats within 1e-5 (the only values that may move)."""
    if isinstance(first, dict):
        assert sorted(first) == sorted(second), path
        for key in first:
            _close(first[key], second[key], f"{path}.{key}")
    elif isinstance(first, list | tuple):
        assert len(first) == len(second), path
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            _close(a, b, f"{path}[{index}]")
    elif isinstance(first, float) and not isinstance(first, bool):
        assert abs(first - second) <= 1e-5, (path, first, second)
    else:
        assert first == second, (path, first, second)


def test_forward_layout_is_channels_last_on_the_cpu_only(dlib_model):
    import torch

    from core.explain.base import forward_layout

    batch = torch.zeros((2, 3, 150, 150))
    fast = forward_layout(dlib_model, batch)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert not batch.is_contiguous(memory_format=torch.channels_last)
    assert forward_layout(dlib_model, batch[0]).shape == (3, 150, 150)  # not 4-d
