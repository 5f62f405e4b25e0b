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
        assert info.algorithm_version == 3  # the stopping points moved
    # SmoothGrad's rounds are small already: no extra parameter, version unchanged
    assert "check_every" not in get("smoothgrad").info.defaults()
    assert get("smoothgrad").info.algorithm_version == 2


def test_rounds_after_the_first_have_the_check_size():
    rule = StoppingRule(round_size=20, cap=47, target=0.95, check_every=5)
    used, counts = 0, []
    while used < rule.cap:
        used += rule.next_count(used)
        counts.append(used)
    assert counts == [20, 25, 30, 35, 40, 45, 47]
    assert StoppingRule(20, 47, 0.95).next_count(20) == 20  # 0: as the first round


def test_lime_draws_the_same_copies_whatever_the_check_size(region_model, pair):
    """At a fixed count (target 1 = never stop) the maps are bit-identical: the
    finer checks only decide when to stop, never which copies are drawn."""
    runs = [
        get("lime").explain(
            pair,
            region_model,
            {**LIME, "stability": 1.0, "max_samples": 40, "check_every": every},
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


def test_lime_with_finer_checks_never_needs_more_copies(region_model, pair):
    """The coarse run's checks are a subset of the fine run's, on the same copies,
    so the fine run stops at the coarse run's count or before it."""
    params = {**LIME, "max_samples": 2000}
    coarse = get("lime").explain(pair, region_model, {**params, "check_every": 20})
    fine = get("lime").explain(pair, region_model, {**params, "check_every": 5})
    for side in ("probe", "gallery"):
        a = coarse.details["stability"][side]
        b = fine.details["stability"][side]
        assert b["samples"] <= a["samples"]
        assert b["stopped_by"] == a["stopped_by"] == "target"
