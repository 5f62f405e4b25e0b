"""Antithetic (opposite-pair) sampling for LIME and SmoothGrad: each pair is a
sample and its opposite, both always in the same half of the split-half
stability check, and the samples do not depend on the round sizes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_models import RegionNet, SyntheticModel
from test_explain import synthetic_pair

from core.explain import get
from core.explain import stability as stability_module
from core.explain.stability import EVEN, GROUPS, PairedDraws, group_of, groups_of

SMALL = {
    "lime": {"samples": 20, "segments": 60, "sigma": 1, "check_every": 10},
    "smoothgrad": {"samples": 4},
}


@pytest.fixture(scope="module")
def region_model():
    return SyntheticModel(RegionNet(), 64)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(64)


def _draws(paired: bool, seed: int = 5) -> PairedDraws:
    rng = np.random.default_rng(seed)
    return PairedDraws(
        lambda n: rng.random((n, 3)), lambda a: 1.0 - a, np.concatenate, paired
    )


def _take_in_rounds(sizes: list[int], paired: bool) -> np.ndarray:
    draws, used, parts = _draws(paired), 0, []
    for size in sizes:
        parts.append(draws.take(used, size))
        used += size
    return np.concatenate(parts)


def test_pairs_are_a_draw_then_its_opposite_whatever_the_round_sizes():
    whole = _take_in_rounds([21], True)
    for sizes in ([1] * 21, [3, 5, 1, 7, 5], [2, 19], [10, 11]):
        np.testing.assert_array_equal(_take_in_rounds(sizes, True), whole)
    np.testing.assert_array_equal(whole[1::2], 1.0 - whole[0:-1:2])
    # the bases are the stream's draws in order; unpaired, every sample is one
    stream = np.random.default_rng(5).random((11, 3))
    np.testing.assert_array_equal(whole[0::2], stream)
    np.testing.assert_array_equal(_take_in_rounds([4, 7], False), stream)


def test_samples_must_be_taken_in_order():
    draws = _draws(True)
    draws.take(0, 4)
    with pytest.raises(ValueError, match="out of order"):
        draws.take(5, 2)


def test_a_pair_never_straddles_the_halves():
    for index in range(0, 200, 2):
        assert group_of(index, 2) == group_of(index + 1, 2)
        assert (group_of(index, 2) in EVEN) == (group_of(index + 1, 2) in EVEN)
    # by sample (unpaired), neighbours are always in opposite halves
    assert all((group_of(i) in EVEN) != (group_of(i + 1) in EVEN) for i in range(50))
    np.testing.assert_array_equal(
        groups_of(7, 30, 2), [group_of(i, 2) for i in range(7, 37)]
    )
    # every group is used: 16 samples = 8 pairs, one in each group
    assert sorted(groups_of(0, 16, 2)) == sorted(list(range(GROUPS)) * 2)


def _estimates(monkeypatch, method_id, model, pair, **params):
    """Run a method, keeping the per-group estimate each stability check saw."""
    seen = []
    real = stability_module.split_half

    def spy(estimate):
        seen.append(estimate)
        return real(estimate)

    monkeypatch.setattr(stability_module, "split_half", spy)
    result = get(method_id).explain(pair, model, {**SMALL[method_id], **params}, seed=2)
    return result, seen


@pytest.mark.parametrize("method_id", sorted(SMALL))
def test_each_method_groups_its_pairs_together(
    monkeypatch, method_id, region_model, pair
):
    result, seen = _estimates(
        monkeypatch, method_id, region_model, pair, stability=1.0, max_samples=80
    )
    assert get(method_id).info.defaults()["antithetic"] is True
    # CorrRISE draws no pairs: measured, they needed more masks (performance.md)
    assert "antithetic" not in get("corrrise").info.defaults()
    for estimate in {id(e): e for e in seen}.values():
        assert estimate.pair == 2
        # both of every pair in one group: with 80 samples each group holds 5
        # whole pairs (by sample it would be 10 samples, 5 from each of 10 pairs)
        assert estimate.sizes == [10] * GROUPS
    if method_id == "lime":
        (estimate, *_rest) = seen
        rows = np.concatenate(estimate.rows)
        assert (rows[0] == 1).all()  # the unperturbed chip first, as LIME does
        # hide 0.6: u >= 0.6 shown, then 1 - u >= 0.6: never shown in both copies
        # (the first copy, the unperturbed chip, excepted)
        assert not ((rows[2::2] == 1) & (rows[3::2] == 1)).any()
        assert abs(rows[2:].mean() - 0.4) < 0.05  # each copy as unpaired: 40 % shown
        assert (
            groups_of(0, len(rows), 2)[0::2] == groups_of(0, len(rows), 2)[1::2]
        ).all()
    unpaired, seen = _estimates(
        monkeypatch,
        method_id,
        region_model,
        pair,
        stability=1.0,
        max_samples=80,
        antithetic=False,
    )
    assert all(e.pair == 1 for e in seen)
    for a, b in zip(result.images, unpaired.images, strict=True):
        assert not np.array_equal(a.combined_map, b.combined_map)


@pytest.mark.parametrize("method_id", sorted(SMALL))
def test_paired_maps_agree_with_unpaired_ones(method_id, region_model, pair):
    """Pairing changes the noise, not what is estimated: at a large count the
    paired and the unpaired maps agree closely (they are other samples)."""
    params = {
        **SMALL[method_id],
        "stability": 1.0,
        "max_samples": {"lime": 1000, "smoothgrad": 200}[method_id],
    }
    maps = [
        get(method_id).explain(
            pair, region_model, {**params, "antithetic": anti}, seed=4
        )
        for anti in (True, False)
    ]
    for a, b in zip(maps[0].images, maps[1].images, strict=True):
        assert stability_module.pearson(a.combined_map, b.combined_map) > 0.9


def test_smoothgrad_pairs_reach_the_target_with_fewer_samples(region_model, pair):
    """The odd part of the gradient in the noise cancels within a pair: on the
    synthetic model the paired map is stable after one round of 4 copies, the
    unpaired one needs several."""
    runs = {
        anti: get("smoothgrad").explain(
            pair, region_model, {"samples": 4, "antithetic": anti}, seed=0
        )
        for anti in (True, False)
    }
    for side in ("probe", "gallery"):
        paired = runs[True].details["stability"][side]
        unpaired = runs[False].details["stability"][side]
        assert paired["stopped_by"] == unpaired["stopped_by"] == "target"
        assert paired["samples"] < unpaired["samples"]
