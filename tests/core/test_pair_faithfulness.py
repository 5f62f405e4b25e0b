"""Per-pair faithfulness verdicts (core.metrics.pair_faithfulness) on a synthetic
embedder whose pair-specific region is known, and stored in a real case."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from synthetic_models import SyntheticModel
from torch import nn

from core.errors import BadInputError, Cancelled
from core.explain import FacePair, FaceView, get
from core.explain.base import ChipMaps, ExplanationResult, ImageMaps
from core.faces.align import ChipTransform
from core.metrics import pair_faithfulness as pf
from core.models.base import Preprocessing, Threshold

SIZE = 64
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))
# 8 x 8 cells of 8 px, the patch size of PatchNet: a cell is one patch
SETTINGS = pf.FaithfulnessSettings(grid=8, step_cells=2)


# ---- a toy embedder whose answer is known --------------------------------------------
class PatchNet(nn.Module):
    """8x8-pixel patches -> 256 linear features each, averaged: the embedding is the
    sum of its patches' parts, so two chips that share some patches and hold
    independent zero-mean noise elsewhere are similar exactly through the shared
    patches.  Blurring a patch of noise makes it near grey (zero), removing it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.patches = nn.Conv2d(3, 256, 8, stride=8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patches(x).mean(dim=(2, 3))


def patch_model() -> SyntheticModel:
    model = SyntheticModel(PatchNet(), SIZE, threshold=0.3)
    model.preprocessing = Preprocessing(
        input_size=(SIZE, SIZE), mean=(127.5,) * 3, std=(127.5,) * 3
    )
    return model


@pytest.fixture(scope="module")
def model() -> SyntheticModel:
    return patch_model()


def quadrant(q: tuple[int, int]) -> tuple[slice, slice]:
    return slice(32 * q[0], 32 * q[0] + 32), slice(32 * q[1], 32 * q[1] + 32)


def noise(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    return rng.uniform(-amplitude, amplitude, (SIZE, SIZE, 3))


def chips_pair(
    shared: dict[tuple[int, int], float], own: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two chips of grey + noise: the same noise (amplitude ``shared[q]``) in the
    quadrants q of ``shared``, independent noise of amplitude ``own`` elsewhere."""
    rng = np.random.default_rng(seed)
    probe = 127.5 + noise(rng, own)
    gallery = 127.5 + noise(rng, own)
    common = noise(rng, 1.0)
    for q, amplitude in shared.items():
        rows, cols = quadrant(q)
        probe[rows, cols] = gallery[rows, cols] = 127.5 + amplitude * common[rows, cols]
    return tuple(np.clip(np.rint(c), 0, 255).astype(np.uint8) for c in (probe, gallery))


IDENTITY = ChipTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (SIZE, SIZE), "dlib")


def view(side: str, chip: np.ndarray, name: str) -> FaceView:
    return FaceView(side, chip, IDENTITY, (SIZE, SIZE), name * 64)


def face_pair(probe: np.ndarray, gallery: np.ndarray) -> FacePair:
    return FacePair(view("probe", probe, "a"), view("gallery", gallery, "b"))


def agreeing_pair(q: tuple[int, int], seed: int = 0) -> FacePair:
    """Strong shared noise in quadrant q, weaker independent noise elsewhere:
    accepted (cosine about 0.55 > 0.3) only through q."""
    return face_pair(*chips_pair({q: 110.0}, 50.0, seed))


def disagreeing_pair(q: tuple[int, int], seed: int = 0) -> FacePair:
    """The same noise in three quadrants, stronger independent noise in q: the
    faces differ in q only (``reject_threshold`` makes that the reason to reject)."""
    shared = {other: 60.0 for other in QUADRANTS if other != q}
    probe, gallery = chips_pair(shared, 60.0, seed)
    rng = np.random.default_rng(seed + 100)
    rows, cols = quadrant(q)
    for chip in (probe, gallery):
        strong = 127.5 + noise(rng, 90.0)[rows, cols]
        chip[rows, cols] = np.clip(np.rint(strong), 0, 255).astype(np.uint8)
    return face_pair(probe, gallery)


def reject_threshold(model, pair: FacePair, q: tuple[int, int]) -> float:
    """Half-way between the pair's cosine and the cosine once q is greyed out in
    the probe: rejected as it is, accepted without q."""
    rows, cols = quadrant(q)
    without = pair.probe.chip.copy()
    without[rows, cols] = 128
    chips = np.stack([pair.probe.chip, pair.gallery.chip, without])
    with torch.no_grad():
        embedded = model.embed(model.prepare(chips))
    cosine = nn.functional.cosine_similarity(embedded[[0, 2]], embedded[[1, 1]])
    assert cosine[1] > cosine[0] + 0.1  # q is what keeps them apart
    return float(cosine.mean())


def region_map(q: tuple[int, int]) -> np.ndarray:
    """1 in quadrant q, with a gentle slope inside so that the order is fixed."""
    grade = np.linspace(1.0, 0.9, SIZE, dtype=np.float32)
    saliency = np.zeros((SIZE, SIZE), np.float32)
    rows, cols = quadrant(q)
    saliency[rows, cols] = (grade[:, None] * grade[None, :])[rows, cols]
    return saliency


def with_maps(
    pair: FacePair,
    model,
    similarity: np.ndarray,
    dissimilarity: np.ndarray | None = None,
    threshold: float | None = None,
) -> ExplanationResult:
    """A result carrying the given maps on both sides (from a real run of the
    ``prior`` method, for its bookkeeping)."""
    base = get("prior").explain(
        pair,
        model,
        threshold=None if threshold is None else Threshold("cosine", threshold, "t"),
    )
    images = []
    for side in ("probe", "gallery"):
        combined = similarity if dissimilarity is None else similarity - dissimilarity
        chip = ChipMaps(similarity, dissimilarity, combined)
        images.append(ImageMaps(side, chip, {}))
    return dataclasses.replace(base, probe=images[0], gallery=images[1])


def others(kinds: dict[str, list[np.ndarray]]) -> dict[str, dict[str, list]]:
    return {side: dict(kinds) for side in ("probe", "gallery")}


def variants(quadrants, count: int = pf.MIN_OTHER_MAPS) -> list[np.ndarray]:
    """``count`` maps, each of one of ``quadrants`` in turn with its own inner
    texture: what a method shows for other pairs (the fewest K that can make a
    map pair-specific, 1 / (K + 1) <= 0.05)."""
    rng = np.random.default_rng(10)
    return [
        region_map(quadrants[i % len(quadrants)])
        * (1 + 0.1 * rng.random((SIZE, SIZE))).astype(np.float32)
        for i in range(count)
    ]


def elsewhere(q: tuple[int, int], count: int = pf.MIN_OTHER_MAPS) -> list[np.ndarray]:
    """Maps of the other quadrants: what the method shows for other pairs."""
    return variants([o for o in QUADRANTS if o != q], count)


# ---- (a) the true region, (d) flat and random maps ----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("q", [(0, 0), (1, 1)])
def test_a_map_of_the_agreeing_region_is_pair_specific(model, q):
    pair = agreeing_pair(q)
    truth = region_map(q)
    result = with_maps(pair, model, truth)
    checked = pf.pair_faithfulness(
        result,
        pair,
        model,
        other_maps=others({"similarity": elsewhere(q), "combined": elsewhere(q)}),
        settings=SETTINGS,
    )
    assert checked.decision == "accept"
    for side in ("probe", "gallery"):
        for kind in ("similarity", "combined"):
            verdict = checked.get(side, kind)
            assert verdict.verdict == pf.PAIR_SPECIFIC, pf.verdict_sentence(verdict)
            assert verdict.direction == pf.TOWARDS_REJECT and verdict.can_flip
            assert verdict.random_percentile == 100.0
            assert verdict.p_random == pytest.approx(1 / 31)
            assert verdict.vs_prior["better"] is True
            assert verdict.vs_other_pairs == {
                **verdict.vs_other_pairs,
                "maps": pf.MIN_OTHER_MAPS,
                "beaten": pf.MIN_OTHER_MAPS,
                "p_value": pytest.approx(0.05),
            }
            # the decision flips inside the quadrant (a quarter of the chip)
            assert 0 < verdict.flip_fraction <= 0.25
            assert verdict.margins[0] == pytest.approx(checked.margin)
            assert verdict.margins[-1] < 0 < verdict.margins[0]


def test_fewer_than_k_other_maps_is_not_shown(model):
    """Beating all of K < 19 other-face maps happens by chance 1 / (K + 1) > 5 %."""
    pair = agreeing_pair((0, 0))
    result = with_maps(pair, model, region_map((0, 0)))
    checked = pf.pair_faithfulness(
        result,
        pair,
        model,
        other_maps=others({"similarity": elsewhere((0, 0))[:2]}),
        settings=SETTINGS,
    )
    verdict = checked.get("probe", "similarity")
    assert verdict.verdict == pf.NOT_SHOWN
    assert "all 2 maps made for other faces" in verdict.reason
    assert "chance 0.33 of the time; at least 19 are needed" in verdict.reason
    # without references at all, the same honest answer
    alone = pf.pair_faithfulness(result, pair, model, settings=SETTINGS)
    assert alone.get("gallery", "combined").verdict == pf.NOT_SHOWN
    assert alone.get("gallery", "combined").vs_other_pairs["maps"] == 0


@pytest.mark.slow
def test_flat_and_random_maps_are_not_shown(model):
    pair = agreeing_pair((0, 1))
    flat = with_maps(pair, model, np.ones((SIZE, SIZE), np.float32))
    checked = pf.pair_faithfulness(flat, pair, model, settings=SETTINGS)
    for side in ("probe", "gallery"):
        verdict = checked.get(side, "similarity")
        assert verdict.verdict == pf.NOT_SHOWN
        assert "flat" in verdict.reason
    rng = np.random.default_rng(11)
    shown = 0
    for _ in range(4):
        random_map = rng.random((SIZE, SIZE)).astype(np.float32)
        result = with_maps(pair, model, random_map)
        checked = pf.pair_faithfulness(
            result,
            pair,
            model,
            other_maps=others({"similarity": elsewhere((0, 1))}),
            settings=SETTINGS,
        )
        verdicts = [checked.get(s, "similarity").verdict for s in ("probe", "gallery")]
        assert pf.PAIR_SPECIFIC not in verdicts
        shown += sum(v != pf.NOT_SHOWN for v in verdicts)
    assert shown <= 1  # random maps beat random orders about 1 time in 20


# ---- (b) the prior, (c) the map of another gallery ----------------------------------
def test_the_prior_method_is_never_pair_specific(model):
    pair = agreeing_pair((1, 0))
    prior = get("prior").explain(pair, model)
    # the same method for other pairs gives the same blob
    blobs = [prior.probe.similarity_map] * 3
    checked = pf.pair_faithfulness(
        prior,
        pair,
        model,
        other_maps=others({"similarity": blobs, "combined": blobs}),
        settings=SETTINGS,
    )
    for side in ("probe", "gallery"):
        for kind in ("similarity", "combined"):
            verdict = checked.get(side, kind)
            assert verdict.verdict in (pf.GENERIC, pf.NOT_SHOWN)
            assert verdict.vs_prior["better"] is False  # it *is* the prior


@pytest.mark.slow
def test_a_map_made_for_another_gallery_is_less_pair_specific(model):
    """The probe's true map for (probe, other gallery) shows where the probe
    agrees with *that* gallery, not with this one."""
    pair = agreeing_pair((0, 0))
    right = region_map((0, 0))
    wrong = region_map((1, 1))  # as if the gallery agreed with the probe there
    judged = {}
    for name, saliency, rivals in (
        ("right", right, variants(((0, 1), (1, 0), (1, 1)))),
        ("wrong", wrong, variants(((0, 1), (1, 0), (0, 0)))),
    ):
        result = with_maps(pair, model, saliency)
        judged[name] = pf.pair_faithfulness(
            result, pair, model, other_maps=others({"similarity": rivals}),
            settings=SETTINGS,
        ).get("probe", "similarity")  # fmt: skip
    right_v, wrong_v = judged["right"], judged["wrong"]
    assert right_v.verdict == pf.PAIR_SPECIFIC
    assert wrong_v.verdict != pf.PAIR_SPECIFIC
    assert wrong_v.vs_other_pairs["beaten"] < right_v.vs_other_pairs["beaten"]
    assert wrong_v.flip_fraction is None or wrong_v.flip_fraction > 0.25
    assert wrong_v.effect < right_v.effect


# ---- (e) dissimilarity maps: the reverse test ----------------------------------------
@pytest.mark.slow
def test_dissimilarity_maps_get_the_reverse_test(model):
    q = (1, 0)
    pair = disagreeing_pair(q)
    threshold = reject_threshold(model, pair, q)
    truth = region_map(q)
    zero = np.zeros_like(truth)
    result = with_maps(pair, model, zero + 1e-3 * region_map((0, 1)), truth, threshold)
    checked = pf.pair_faithfulness(
        result,
        pair,
        model,
        other_maps=others({"dissimilarity": elsewhere(q), "combined": elsewhere(q)}),
        settings=SETTINGS,
    )
    assert checked.decision == "reject"
    for side in ("probe", "gallery"):
        verdict = checked.get(side, "dissimilarity")
        assert verdict.direction == pf.TOWARDS_ACCEPT and verdict.can_flip
        assert verdict.verdict == pf.PAIR_SPECIFIC, pf.verdict_sentence(verdict)
        assert verdict.flip_fraction is not None and verdict.flip_fraction <= 0.25
        # moved towards accept, although removing the rest of the face then
        # drives the margin far below where it started (so effect < 0 here)
        assert verdict.peak > 0 and max(verdict.margins) > 0 > verdict.margins[0]
        assert verdict.margins[-1] < verdict.margins[0]
    # a dissimilarity map that points at where the faces agree: not borne out
    misplaced = with_maps(pair, model, zero + 1e-3, region_map((0, 1)), threshold)
    checked = pf.pair_faithfulness(misplaced, pair, model, settings=SETTINGS)
    for side in ("probe", "gallery"):
        verdict = checked.get(side, "dissimilarity")
        assert verdict.verdict == pf.NOT_SHOWN, pf.verdict_sentence(verdict)
        assert verdict.flip_fraction is None
        assert verdict.effect < 0  # removing them lowers the score


def test_a_similarity_map_of_a_rejected_pair_cannot_flip(model):
    pair = disagreeing_pair((1, 1))
    threshold = reject_threshold(model, pair, (1, 1))
    result = with_maps(pair, model, region_map((0, 0)), None, threshold)
    checked = pf.pair_faithfulness(result, pair, model, settings=SETTINGS)
    verdict = checked.get("probe", "similarity")
    assert verdict.direction == pf.TOWARDS_REJECT and not verdict.can_flip
    assert verdict.flip_fraction is None


# ---- (f) JSON, (g) settings, progress and cancel --------------------------------
@pytest.mark.slow
def test_json_round_trip_is_equal(model):
    pair = agreeing_pair((0, 0))
    result = with_maps(pair, model, region_map((0, 0)))
    checked = pf.pair_faithfulness(
        result,
        pair,
        model,
        other_maps=others({"similarity": elsewhere((0, 0))}),
        references=["c" * 64, "d" * 64, "e" * 64],
        settings=SETTINGS,
    )
    text = json.dumps(checked.to_dict())
    again = pf.PairFaithfulness.from_dict(json.loads(text))
    assert again == checked
    assert again.to_dict() == checked.to_dict()
    figures = checked.to_dict()["faithfulness"]["probe"]["similarity"]
    for name in ("verdict", "flip_fraction", "random_percentile", "vs_prior"):
        assert name in figures
    assert figures["vs_other_pairs"]["maps"] == pf.MIN_OTHER_MAPS
    assert pf.summary(checked)["probe similarity"] == pf.PAIR_SPECIFIC


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"random_orders": 10}, r"random orders must lie in 30\.\.1000"),
        ({"grid": 1}, "grid must lie in 2..50"),
        ({"grid": 4, "step_cells": 17}, "step_cells must lie in 1..16"),
        ({"fill": "black"}, "unknown fill 'black'"),
        ({"blur_sigma": 0.0}, r"blur sigma must lie in \(0, 100\]"),
    ],
)
def test_bad_settings_are_one_clear_line(kwargs, message):
    with pytest.raises(BadInputError, match=message) as raised:
        pf.FaithfulnessSettings(**kwargs)
    assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_mean_fill_and_seed_are_used(model):
    pair = agreeing_pair((0, 0))
    result = with_maps(pair, model, region_map((0, 0)))
    blur = pf.pair_faithfulness(result, pair, model, settings=SETTINGS)
    mean = pf.pair_faithfulness(
        result, pair, model, settings=dataclasses.replace(SETTINGS, fill="mean")
    )
    reseeded = pf.pair_faithfulness(
        result, pair, model, settings=dataclasses.replace(SETTINGS, seed=1)
    )
    again = pf.pair_faithfulness(result, pair, model, settings=SETTINGS)
    side = "probe", "similarity"
    assert again == blur  # deterministic
    assert mean.get(*side).margins != blur.get(*side).margins
    assert (
        reseeded.get(*side).random_margins_mean != blur.get(*side).random_margins_mean
    )
    # the map's own order depends on the seed only through its ties: the 16 cells
    # of its quadrant (8 steps of 2) come first whatever the seed, so the chip
    # after step 8 is the same; tied cells (equal means, the zeros outside) follow
    # a random order drawn from the seed (never their position)
    mine, theirs = blur.get(*side).margins, reseeded.get(*side).margins
    assert mine[0] == theirs[0] and mine[8] == pytest.approx(theirs[8], abs=1e-9)
    assert mine != theirs


@pytest.mark.slow
def test_progress_is_monotone_and_cancel_stops(model):
    pair = agreeing_pair((0, 0))
    references = [view("gallery", agreeing_pair((1, 1), s).gallery.chip, "cdef"[s])
                  for s in range(3)]  # fmt: skip
    result = get("gradient").explain(pair, model)
    calls: list[tuple[int, int, str]] = []
    checked = pf.check_pair(
        result,
        pair,
        model,
        references,
        settings=SETTINGS,
        batch_size=16,
        progress=lambda done, total, label: calls.append((done, total, label)),
    )
    assert checked.references == tuple(r.image_sha256 for r in references)
    assert checked.get("probe", "similarity").vs_other_pairs["maps"] == 3
    for label in ("maps for other faces", "faithfulness"):
        stage = [(d, t) for d, t, name in calls if name == label]
        assert stage, label
        assert [d for d, _ in stage] == sorted(d for d, _ in stage)
        assert len({t for _, t in stage}) == 1
        assert stage[-1][0] == stage[-1][1]
    # the pair's own images are never its references
    own = pf.check_pair(result, pair, model, [pair.gallery], settings=SETTINGS)
    assert own.references == ()
    seen = []

    def cancel() -> bool:
        return len(seen) > 3

    with pytest.raises(Cancelled):
        pf.pair_faithfulness(
            result,
            pair,
            model,
            settings=SETTINGS,
            batch_size=8,
            progress=lambda *call: seen.append(call),
            cancel=cancel,
        )


# ---- (h) in a real case ---------------------------------------------------------
CHEAP = pf.FaithfulnessSettings(grid=4, step_cells=4)


def _faithfulness_entries(case):
    return [e for e in case.audit_log() if e.action == "explanation.faithfulness"]


@pytest.mark.slow
def test_a_check_in_a_case_is_stored_reused_and_tamper_evident(demo, dlib_model):
    from core.case import workflow
    from core.case.store import CaseError

    references = workflow.reference_faces(demo, "Q1", "K1", 5)
    assert [face.label for face in references] == ["K2"]  # never Q1's or K1's
    calls = []
    first = workflow.check_faithfulness(
        demo,
        "Q1",
        "K1",
        "gradient",
        dlib_model,
        settings=CHEAP,
        progress=lambda done, total, label: calls.append((done, total, label)),
    )
    assert not first.from_cache
    checked = first.result
    assert checked.method_id == "gradient" and checked.decision == "accept"
    assert checked.references == (demo.exhibit("K2").sha256,)
    assert checked.explanation_cache_key == first.explanation.result.cache_key
    for side in ("probe", "gallery"):
        verdict = checked.get(side, "similarity")
        assert verdict.vs_other_pairs["maps"] == 1
        # one other face is too few to show pair specificity
        assert verdict.verdict in (pf.GENERIC, pf.NOT_SHOWN)
    stage = [done for done, _total, label in calls if label == "faithfulness"]
    assert stage == sorted(stage) and stage
    (entry,) = _faithfulness_entries(demo)
    assert entry.details["explanation"] == first.explanation.stored.id
    assert entry.details["verdicts"] == pf.summary(checked)
    entries = len(demo.audit_log())

    again = workflow.check_faithfulness(
        demo, "Q1", "K1", "gradient", dlib_model, settings=CHEAP
    )
    assert again.from_cache and again.result == checked
    assert len(demo.audit_log()) == entries
    assert workflow.stored_faithfulness(demo, first.explanation.stored.id) == checked
    assert demo.verify().intact

    # other settings are another check, kept beside the first
    other = workflow.check_faithfulness(
        demo, "Q1", "K1", "gradient", dlib_model,
        settings=dataclasses.replace(CHEAP, seed=3),
    )  # fmt: skip
    assert not other.from_cache and len(_faithfulness_entries(demo)) == 2

    # tampering with the stored verdicts is caught
    path = demo.derived_path(entry.details["sha256"])
    record = json.loads(path.read_bytes())
    record["faithfulness"]["probe"]["similarity"]["verdict"] = pf.PAIR_SPECIFIC
    path.write_text(json.dumps(record, sort_keys=True))
    report = demo.verify()
    assert not report.intact
    assert any("derived file" in p for p in report.problems)
    with pytest.raises(CaseError, match="does not match the hash"):
        demo.faithfulness_records(first.explanation.stored.id)
    with pytest.raises(CaseError, match="does not match the hash"):
        workflow.check_faithfulness(
            demo, "Q1", "K1", "gradient", dlib_model, settings=CHEAP
        )


@pytest.mark.slow
def test_the_prior_method_in_a_case_is_not_pair_specific(demo, dlib_model):
    from core.case import workflow

    checked = workflow.check_faithfulness(
        demo, "Q1", "K2", "prior", dlib_model, settings=CHEAP
    ).result
    assert checked.decision == "reject"
    for side, kinds in checked.maps.items():
        for kind, verdict in kinds.items():
            assert verdict.verdict != pf.PAIR_SPECIFIC, (side, kind)
            assert verdict.vs_prior["better"] is False
