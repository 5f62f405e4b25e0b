"""Contrastive FGGB / xSSAB (centre=reference): descriptors centred on a reference
population's mean before eq. 3 (core.explain.reference_mean)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_models import RegionNet, SyntheticModel
from torch import nn

from core.errors import BadInputError
from core.explain import get
from core.explain.base import FacePair, FaceView, eval_mode, make_context
from core.explain.reference_mean import (
    CentredPair,
    centre_pair,
    compute_reference_mean,
    load_reference_mean,
    reference_mean_for,
    save_reference_mean,
    shipped_reference_path,
)
from core.faces.align import ChipTransform
from core.models.base import Threshold

SIZE, DIMENSIONS = 12, 16


def offset_model() -> SyntheticModel:
    """Embedding = W x + o with a large common offset o (like dlib's descriptors,
    which are far from centred): every face's template points nearly the same way."""
    torch.manual_seed(0)
    linear = nn.Linear(3 * SIZE * SIZE, DIMENSIONS)
    with torch.no_grad():
        linear.weight.mul_(0.5)
        linear.bias.copy_(3.0 + torch.rand(DIMENSIONS))
    return SyntheticModel(nn.Sequential(nn.Flatten(), linear), SIZE, threshold=0.3)


def chip(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)


def view(side: str, image: np.ndarray, tag: str) -> FaceView:
    transform = ChipTransform(
        np.array([[1.0, 0, 0], [0, 1.0, 0]]), (SIZE, SIZE), "dlib"
    )
    return FaceView(side, image, transform, (SIZE, SIZE), tag * 64)


@pytest.fixture(scope="module")
def population_mean(tmp_path_factory):
    model = offset_model()
    rng = np.random.default_rng(1)
    reference = compute_reference_mean(
        model, [chip(rng) for _ in range(200)], {"data": "random chips (test)"}
    )
    return save_reference_mean(reference, tmp_path_factory.mktemp("mean") / "m.json")


def probe_map(model, probe, gallery, params) -> np.ndarray:
    pair = FacePair(view("probe", probe, "a"), view("gallery", gallery, "b"))
    return get("fggb").explain(pair, model, params).probe.combined_map


@pytest.mark.slow
def test_centring_removes_the_gallery_independent_part(population_mean):
    """Plain weights: a_k b_k is dominated by the offset o_k^2, so the probe's map
    barely changes when the gallery is replaced by a random face.  Centred: the
    map follows the gallery."""
    model = offset_model()
    rng = np.random.default_rng(2)
    probe = chip(rng)
    same = np.clip(probe + rng.normal(0, 20, probe.shape), 0, 255).astype(np.uint8)
    swaps = [chip(rng) for _ in range(4)]

    def change(params) -> tuple[float, float]:
        """Correlation and relative difference of the real-gallery map with the
        random-gallery maps."""

        def run(gallery):
            pair = FacePair(view("probe", probe, "a"), view("gallery", gallery, "b"))
            return get("fggb").explain(pair, model, params).probe.combined_map

        real = run(same).ravel()
        others = [run(g).ravel() for g in swaps]
        return (
            float(np.mean([np.corrcoef(real, other)[0, 1] for other in others])),
            float(np.mean([np.linalg.norm(real - o) for o in others]))
            / float(np.linalg.norm(real)),
        )

    plain = change({"centre": "none"})
    centred = change({"centre": "reference", "reference_mean": population_mean})
    assert plain[0] > 0.95  # the map is the probe's, whoever the gallery is
    assert centred[0] < plain[0] - 0.1, (plain, centred)
    assert centred[1] > 10 * plain[1], (plain, centred)


def test_xssab_centred_splits_by_the_pair_not_by_the_offset(population_mean):
    """Plain arguments a^_k b^_k ~ o^_k^2 are all above t/N for any gallery, so
    nothing ever argues against a match, even with random faces; centred, the
    arguments of unrelated faces have both signs."""
    model = offset_model()
    rng = np.random.default_rng(8)
    probe = chip(rng)
    centred = {"centre": "reference", "reference_mean": population_mean}
    against = {"none": [], "reference": []}
    for _ in range(4):
        pair = FacePair(view("probe", probe, "a"), view("gallery", chip(rng), "b"))
        for name, params in (("none", {"centre": "none"}), ("reference", centred)):
            maps = get("xssab").explain(pair, model, params).probe
            total = maps.similarity_map.sum() + maps.dissimilarity_map.sum()
            against[name].append(maps.dissimilarity_map.sum() / total)
    assert max(against["none"]) == 0.0
    assert sum(share > 0.1 for share in against["reference"]) >= 2, against


def test_centring_keeps_the_decision_and_the_margin_sign():
    """A distance is unchanged by a common shift, so cos' >= t' iff the model
    accepts, for both decision rules."""
    rng = np.random.default_rng(3)

    for metric, value, space in (
        ("euclidean", 0.6, "descriptor"),
        ("cosine", 0.4, "unit"),
    ):
        for _ in range(200):
            a, b = (torch.tensor(rng.normal(0, 0.3, 8) + 0.5) for _ in range(2))
            mean = rng.normal(0.4, 0.1, 8)
            reference = load_like(mean, space)
            centred: CentredPair = centre_pair(
                Threshold(metric, value, "test"), (a, b), reference
            )
            if metric == "euclidean":
                accepts = float((a - b).norm()) < value
            else:
                accepts = float(torch.nn.functional.cosine_similarity(a, b, 0)) >= value
            if abs(centred.cosine - centred.cosine_threshold) > 1e-9:
                assert (centred.cosine >= centred.cosine_threshold) == accepts


def load_like(mean: np.ndarray, space: str):
    from core.explain.reference_mean import ReferenceMean

    return ReferenceMean("m", "0" * 64, space, mean, 10)


def test_a_mean_for_other_weights_is_refused_in_one_line(tmp_path, population_mean):
    data = json.loads(population_mean.read_text())
    data["model_sha256"] = "f" * 64
    other = tmp_path / "other-weights.json"
    other.write_text(json.dumps(data))
    model = offset_model()
    rng = np.random.default_rng(4)
    with pytest.raises(BadInputError) as error:
        probe_map(
            model,
            chip(rng),
            chip(rng),
            {"centre": "reference", "reference_mean": other},
        )
    message = str(error.value)
    assert "\n" not in message and "other-weights.json" in message
    assert "ffffffffffff" in message and "make one with" in message


def test_reference_is_unavailable_without_a_mean_for_the_model():
    model = offset_model()
    rng = np.random.default_rng(5)
    assert not shipped_reference_path(model).exists()
    with pytest.raises(BadInputError, match="unavailable") as error:
        probe_map(model, chip(rng), chip(rng), {"centre": "reference"})
    assert "\n" not in str(error.value) and "centre=none" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("method_id", ["fggb", "xssab"])
def test_auto_centre_is_paper_exact_where_no_mean_is_shipped(method_id):
    """The default (auto) never refuses a model: without a shipped mean it gives
    the paper-exact maps, bit for bit, and says so."""
    model = offset_model()
    rng = np.random.default_rng(6)
    pair = FacePair(view("probe", chip(rng), "a"), view("gallery", chip(rng), "b"))
    auto = get(method_id).explain(pair, model, {})
    exact = get(method_id).explain(pair, model, {"centre": "none"})
    assert auto.params["centre"] == "auto"
    np.testing.assert_array_equal(auto.probe.combined_map, exact.probe.combined_map)
    assert auto.details["centring"] == {"centre": "none"}
    assert any("no reference mean is shipped" in note for note in auto.notes)
    assert auto.cache_key != exact.cache_key  # what auto resolved to is in the key


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{", "cannot read"),
        ('{"format": "x"}', "not a reference mean"),
        ('{"format": "xfr-reference-mean", "mean": [1]}', "lacks"),
    ],
)
def test_a_broken_mean_file_is_one_clear_line(tmp_path, content, problem):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(BadInputError, match=problem) as error:
        load_reference_mean(path)
    assert "\n" not in str(error.value) and "broken.json" in str(error.value)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"format_version": 2}, "format_version 2 is not understood"),
        ({"format_version": "1"}, "reads format_version 1 only"),
        ({"images": 0}, "'images' must be a whole number of at least 1"),
        ({"images": 2.5}, "'images' must be"),
        ({"images": "many"}, "'images' must be"),
        ({"provenance": "lfw"}, "'provenance' must be an object"),
        ({"provenance": 3}, "'provenance' must be an object"),
    ],
)
def test_a_mangled_mean_file_field_is_named(tmp_path, population_mean, change, problem):
    data = json.loads(population_mean.read_text()) | change
    path = tmp_path / "mangled.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=problem) as error:
        load_reference_mean(path)
    assert "\n" not in str(error.value) and "mangled.json" in str(error.value)


def test_a_mean_file_without_provenance_is_read(tmp_path, population_mean):
    data = json.loads(population_mean.read_text())
    data["provenance"] = None
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(data))
    assert load_reference_mean(path).provenance == {}


@pytest.mark.slow
def test_centring_keeps_the_explanation_s_decision(population_mean):
    """Centred with the explanation's threshold, not the model's: the centred
    weights minus the centred threshold sum to the sign of *this* decision."""
    model = offset_model()
    rng = np.random.default_rng(9)
    pair = FacePair(view("probe", chip(rng), "a"), view("gallery", chip(rng), "b"))
    params = {"centre": "reference", "reference_mean": population_mean}
    cosine = get("fggb").explain(pair, model, {"centre": "none"}).cosine_similarity
    for value in (cosine - 0.05, cosine + 0.05):  # accept, then reject
        result = get("fggb").explain(
            pair, model, params, threshold=Threshold("cosine", value, "examiner")
        )
        centring = result.details["centring"]
        margin = centring["centred_cosine"] - centring["centred_cosine_threshold"]
        assert (margin >= 0) == (result.decision == "accept"), (value, centring)
    with pytest.raises(BadInputError, match="not this explanation's euclidean"):
        get("fggb").explain(
            pair, model, params, threshold=Threshold("euclidean", 1.0, "examiner")
        )


@pytest.mark.slow
def test_the_cache_key_carries_the_reference_file(tmp_path, population_mean):
    model = offset_model()
    rng = np.random.default_rng(6)
    pair = FacePair(view("probe", chip(rng), "a"), view("gallery", chip(rng), "b"))
    data = json.loads(population_mean.read_text())
    data["mean"] = [x + 0.01 for x in data["mean"]]
    shifted = tmp_path / "shifted.json"
    shifted.write_text(json.dumps(data))
    keys = {
        get("fggb").explain(pair, model, params, batch_size=8).cache_key
        for params in (
            {"centre": "none"},
            {"centre": "reference", "reference_mean": population_mean},
            {"centre": "reference", "reference_mean": shifted},
        )
    }
    assert len(keys) == 3


# ---- paper-exact mode is the implementation as it was --------------------------------
def fggb_before(ctx, side):
    """FGGB's map exactly as implemented before the option existed (frozen copy)."""
    from core.explain.gradients import feature_gradients

    embedding, other = ctx.embeddings[side], ctx.other(side)
    dimensions = embedding.numel()
    weight = embedding * other / (embedding.norm() * other.norm())
    weight = weight - ctx.cosine_threshold / dimensions
    signed = torch.zeros(ctx.inputs[side].shape[1:], device=ctx.device)
    for rows, gradients in feature_gradients(ctx.model, ctx.inputs[side], 32):
        norms = gradients.flatten(1).norm(dim=1).clamp_min(1e-12)
        normalised = gradients.abs() / norms[:, None, None, None]
        signed += torch.einsum("kchw,k->chw", normalised, weight[rows].to(ctx.device))
    return signed.sum(0).cpu().numpy()


def xssab_before(ctx, side):
    from core.explain.gradients import input_gradient

    embedding, other = ctx.embeddings[side], ctx.other(side)
    other_unit = (other / other.norm()).to(ctx.device)
    arguments = (embedding / embedding.norm()).to(ctx.device) * other_unit
    positive = arguments >= ctx.cosine_threshold / embedding.numel()
    parts = []
    for keep in (positive, ~positive):
        weights = torch.where(keep, other_unit, torch.zeros_like(other_unit))

        def target(batch, weights=weights):
            return torch.nn.functional.normalize(batch, dim=1) @ weights

        gradient = input_gradient(ctx.model, ctx.inputs[side], target)
        parts.append(gradient[0].abs().mean(0).cpu().numpy())
    return parts[0] - parts[1]


@pytest.mark.slow
def test_paper_exact_mode_equals_the_implementation_before_bit_for_bit():
    model = SyntheticModel(RegionNet(), 64)
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (64, 64, 3)).astype(np.uint8) for _ in range(2)]
    transform = ChipTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (64, 64), "dlib")
    pair = FacePair(
        FaceView("probe", images[0], transform, (64, 64), "a" * 64),
        FaceView("gallery", images[1], transform, (64, 64), "b" * 64),
    )
    for method_id, before in (("fggb", fggb_before), ("xssab", xssab_before)):
        result = get(method_id).explain(pair, model, {"centre": "none"})
        with eval_mode(model):
            ctx = make_context(pair, model, {}, 0, None, None, None, None)
            for side, maps in enumerate(result.images):
                assert np.array_equal(maps.combined_map, before(ctx, side)), method_id


# ---- the shipped mean ----------------------------------------------------------------
def test_the_shipped_mean_is_for_the_default_models_weights(dlib_model):
    model = dlib_model
    reference = reference_mean_for(model)  # refuses other weights
    assert reference.model_sha256 == model.weights_sha256
    assert reference.path == shipped_reference_path(model).resolve()
    assert reference.mean.shape == (model.embedding_dim,)
    assert reference.images >= 500 and reference.space == "descriptor"
    provenance = reference.provenance
    assert "train-identities" in provenance["data"] + provenance["data_folder"]
    assert provenance["command"].startswith("python scripts/reference_mean.py")
    assert provenance["created"] and provenance["images_used"] == reference.images


@pytest.mark.parametrize("method_id", ["fggb", "xssab"])
def test_a_result_s_own_parameters_run_it_again(method_id):
    """The faithfulness check and the GUI rerun a method with ``result.params``:
    the choice "auto" must survive being read back (it once meant "no value")."""
    model = offset_model()
    rng = np.random.default_rng(7)
    pair = FacePair(view("probe", chip(rng), "a"), view("gallery", chip(rng), "b"))
    first = get(method_id).explain(pair, model, {})
    again = get(method_id).explain(pair, model, dict(first.params))
    assert again.params == first.params and again.cache_key == first.cache_key
    assert get(method_id).info.resolve({"centre": "auto"})["centre"] == "auto"
