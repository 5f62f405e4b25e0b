"""Explainer engine: the registry contract on the real dlib model, closed forms and
region recovery on synthetic models, progress/cancel, layer-by-layer maps, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import RegionNet, SyntheticModel
from torch import nn

from core.cli import EXIT_BAD_INPUT, main
from core.errors import BadInputError, Cancelled
from core.explain import FacePair, FaceView, get, infos, method_ids
from core.explain.layerwise import explain_layers, write_layers
from core.explain.perturb import superpixels
from core.faces.align import ChipTransform
from core.models import (
    DEFAULT_MODEL_ID,
    LayerTap,
    Threshold,
)

# Reduced work per method so the whole table runs in seconds on two CPU cores; every
# registered method must appear here, so a new explainer is tested from day one.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "fggb": {"chunk": 64},
    "xssab": {},
    "gradient": {},
    "gradient_input": {},
    # stochastic methods: one round (the cap equals the round), see test_stability.py
    "smoothgrad": {"samples": 4, "max_samples": 4},
    "integrated_gradients": {"steps": 4},
    "gradcam": {},
    "gradcampp": {},
    "lime": {"samples": 64, "max_samples": 64},
    "corrrise": {"masks": 64, "max_samples": 64},
    "xface": {"patch_sizes": "28", "stride": 20},
    "minusplus": {"stride": 30},
    "ddfv": {"ig_steps": 4},  # the shipped reconstructor of the default model
    "correspondence": {"links": 5},
    "prior": {},
    "components": {"pairs": False},
}


def test_every_registered_method_is_covered_and_documented():
    assert sorted(FAST_PARAMS) == sorted(method_ids())
    for info in infos():
        assert info.display_name and info.citation and len(info.description) > 80
        assert info.kind in ("gradient", "perturbation")
        defaults = info.defaults()
        assert set(defaults) == {p.name for p in info.params}
        # plain data, as the GUI and the case store it
        assert json.loads(json.dumps(info.to_dict())) == info.to_dict()


# ---- real model, real photos ---------------------------------------------------------
@pytest.fixture(scope="module")
def dlib_results(dlib_model, photo_pair):
    """Each method run once on astronaut vs Grace Hopper, with its progress calls."""
    pair = photo_pair[2]
    results = {}
    for method_id in method_ids():
        calls: list[tuple[int, int]] = []
        result = get(method_id).explain(
            pair,
            dlib_model,
            FAST_PARAMS[method_id],
            seed=7,
            progress=lambda done, total, _message, calls=calls: calls.append(
                (done, total)
            ),
            batch_size=32,
        )
        results[method_id] = (result, calls)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("method_id", sorted(FAST_PARAMS))
def test_method_contract_on_real_faces(method_id, dlib_results, photo_pair, dlib_model):
    result, calls = dlib_results[method_id]
    info = get(method_id).info
    probe, gallery, _pair = photo_pair
    assert result.decision == "reject"  # two different people
    assert result.model_id == DEFAULT_MODEL_ID
    assert result.model_sha256 == dlib_model.weights_sha256
    assert result.params == info.resolve(FAST_PARAMS[method_id])
    assert len(result.cache_key) == 64
    # progress is monotone and ends complete
    assert calls and calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    for maps, prepared in zip(result.images, (probe, gallery), strict=True):
        assert (maps.dissimilarity_map is not None) == info.has_dissimilarity
        for kind, chip_map in maps.chip_maps().items():
            assert chip_map.shape == (150, 150), kind
            assert chip_map.dtype == np.float32 and np.isfinite(chip_map).all(), kind
        assert np.ptp(maps.combined_map) > 0  # not a constant map
        assert (maps.similarity_map >= 0).all()
        if info.has_dissimilarity:
            assert (maps.dissimilarity_map >= 0).all()
            np.testing.assert_allclose(
                maps.combined_map,
                maps.similarity_map - maps.dissimilarity_map,
                atol=1e-6,
            )
        # on the evidence: a finite map under the face box centre, NaN far away
        evidence = maps.evidence["combined"].full()
        height, width = prepared.image.rgb.shape[:2]
        assert evidence.shape == (height, width)
        left, top, right, bottom = prepared.face.bbox
        centre = evidence[int((top + bottom) / 2), int((left + right) / 2)]
        assert np.isfinite(centre)
        assert np.isnan(evidence).any()  # the chip does not cover the whole photo
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()  # plain data


@pytest.mark.slow
@pytest.mark.parametrize("method_id", sorted(FAST_PARAMS))
def test_a_result_s_parameters_resolve_to_themselves(method_id, dlib_results):
    """Reruns (faithfulness checks, the GUI, the report) pass ``result.params``
    back in: every resolved value must read back as itself."""
    result, _ = dlib_results[method_id]
    assert get(method_id).info.resolve(result.params) == dict(result.params)
    stored = json.loads(json.dumps(result.to_dict()))["params"]  # as the case has it
    assert get(method_id).info.resolve(stored) == dict(result.params)


@pytest.mark.slow
@pytest.mark.parametrize("method_id", sorted(FAST_PARAMS))
def test_same_seed_same_maps(method_id, dlib_results, dlib_model, photo_pair):
    first, _ = dlib_results[method_id]
    again = get(method_id).explain(
        photo_pair[2], dlib_model, FAST_PARAMS[method_id], seed=7, batch_size=32
    )
    assert again.cache_key == first.cache_key
    for a, b in zip(first.images, again.images, strict=True):
        # Equal to float32 rounding, not bit for bit: on the CPU, oneDNN's
        # thread-parallel sums in a backward pass change their last bits with the
        # thread count and with its first-call kernel choice (measured: up to
        # 5e-9 on maps of scale 1e-5); another seed's samples differ far more.
        scale = float(np.abs(a.combined_map).max())
        np.testing.assert_allclose(
            b.combined_map, a.combined_map, rtol=0, atol=1e-5 * scale
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "method_id", sorted(i.method_id for i in infos() if i.stochastic)
)
def test_another_seed_other_samples(method_id, dlib_results, dlib_model, photo_pair):
    first, _ = dlib_results[method_id]
    other = get(method_id).explain(
        photo_pair[2], dlib_model, FAST_PARAMS[method_id], seed=8, batch_size=32
    )
    assert other.cache_key != first.cache_key
    # beyond the rounding noise that test_same_seed_same_maps tolerates
    scale = float(np.abs(first.probe.combined_map).max())
    difference = np.abs(other.probe.combined_map - first.probe.combined_map).max()
    assert difference > 1e-3 * scale


@pytest.mark.slow
def test_fggb_batched_backward_equals_the_loop(dlib_model, photo_pair):
    from core.explain.base import eval_mode, make_context
    from core.explain.methods.fggb import fggb_map

    info = get("fggb").info
    with eval_mode(dlib_model):
        ctx = make_context(
            photo_pair[2], dlib_model, info.defaults(), 0, None, None, None, None
        )
        ctx.start(4 * 128)
        batched = fggb_map(ctx, 0, chunk=64)
        looped = fggb_map(ctx, 0, batched=False, chunk=64)
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-6)


def test_cancel_stops_between_batches(dlib_model, photo_pair):
    progress: list[int] = []

    def cancel() -> bool:
        return bool(progress) and progress[-1] >= 16

    with pytest.raises(Cancelled):
        get("lime").explain(
            photo_pair[2],
            dlib_model,
            {"samples": 400},
            progress=lambda done, _total, _message: progress.append(done),
            cancel=cancel,
            batch_size=16,
        )
    assert progress[-1] == 16  # stopped after the first batch, not at the end


@pytest.mark.parametrize(
    ("method_id", "params", "message"),
    [
        ("lime", {"samples": "many"}, "samples"),
        ("lime", {"samples": 3}, "samples"),
        ("lime", {"reference": "mirror"}, "reference"),
        ("lime", {"colour": 1}, "colour"),
        ("xface", {"patch_sizes": "7,x"}, "patch_sizes"),
        ("gradcam", {"layer": "no-such-layer"}, "no-such-layer"),
        ("gradcam", {"layer": "embedding"}, "spatial"),
    ],
)
def test_bad_parameters_are_named(method_id, params, message, dlib_model, photo_pair):
    with pytest.raises(BadInputError, match=message):
        get(method_id).explain(photo_pair[2], dlib_model, params, batch_size=8)


def test_unknown_method_names_the_known_ones():
    with pytest.raises(BadInputError, match="fggb"):
        get("shap")


def test_chip_of_the_wrong_size_is_refused(dlib_model, photo_pair):
    probe = photo_pair[2].probe
    small = FaceView(
        "probe", probe.chip[:100, :100], probe.transform, probe.image_shape, "0"
    )
    with pytest.raises(BadInputError, match="100x100"):
        get("gradient").explain(FacePair(small, photo_pair[2].gallery), dlib_model)


@pytest.mark.slow
def test_layer_by_layer_maps(dlib_model, photo_pair):
    result = explain_layers(
        photo_pair[2], dlib_model, {"samples": 48}, seed=1, batch_size=48
    )
    names = [layer.name for layer in result.layers]
    assert names == [tap.name for tap in dlib_model.layer_taps()]
    for layer in result.layers:
        for lime_map in layer.lime_maps:
            assert lime_map.shape == (150, 150) and np.isfinite(lime_map).all()
            assert lime_map.min() >= 0 and lime_map.max() <= 1
        assert (layer.gradcam_maps is None) == (layer.size is None)
        assert -1 <= layer.gap_cosine <= 1
    # the embedding tap's pooled cosine is the pair's score
    assert result.layers[-1].gap_cosine == pytest.approx(
        float(
            torch.nn.functional.cosine_similarity(
                *[
                    torch.from_numpy(e[None])
                    for e in dlib_model.embed_chips(
                        [v.chip for v in photo_pair[2].sides]
                    )
                ]
            )
        ),
        abs=1e-5,
    )


@pytest.mark.slow
def test_layerwise_export(dlib_model, photo_pair, tmp_path):
    result = explain_layers(photo_pair[2], dlib_model, {"samples": 16}, batch_size=16)
    manifest = write_layers(result, tmp_path)
    stack = np.load(tmp_path / "layerwise" / "lime_probe.npy")
    assert stack.shape == (len(result.layers), 150, 150)
    saved = json.loads((tmp_path / "layerwise" / "layers.json").read_text())
    assert saved == json.loads(json.dumps(manifest))


def test_superpixels_fall_back_to_a_grid_on_noise():
    rng = np.random.default_rng(0)
    grain = np.repeat(rng.integers(0, 256, (150, 150, 1)), 3, axis=2).astype(np.uint8)
    labels, note = superpixels(grain, 75)
    assert note and "grid" in note
    assert 60 <= labels.max() + 1 <= 90
    assert np.bincount(labels.ravel()).min() > 150  # no sliver cells
    smooth = cv2.GaussianBlur(grain, (0, 0), 4)
    labels, note = superpixels(
        np.dstack([smooth[..., 0], smooth[..., 0][::-1], 90 + 0 * smooth[..., 0]]), 75
    )
    assert note is None and labels.max() + 1 >= 40


# ---- synthetic models with known answers ---------------------------------------------
def synthetic_pair(size: int, seed: int = 0, similar: bool = True) -> FacePair:
    """Two textured chips placed at 2x scale inside 'evidence' images."""
    rng = np.random.default_rng(seed)

    def texture() -> np.ndarray:  # smooth enough for SLIC to find regions
        return cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)), (0, 0), 2) * 3

    base = np.clip(texture() - 250, 20, 235)
    other = base if similar else np.clip(texture() - 250, 20, 235)
    noisy = np.clip(other + rng.normal(0, 60, other.shape), 0, 255)
    transform = ChipTransform(
        np.array([[2.0, 0, 10], [0, 2.0, 20]]), (size, size), "dlib"
    )
    shape = (2 * size + 60, 2 * size + 40)
    return FacePair(
        FaceView("probe", base.astype(np.uint8), transform, shape, "a" * 64),
        FaceView("gallery", noisy.astype(np.uint8), transform, shape, "b" * 64),
    )


def test_fggb_matches_closed_form_on_a_linear_model():
    """Embedding = W x: G^k = W_k, so eq. (4) can be evaluated by hand."""
    size, dimensions = 12, 10
    torch.manual_seed(0)
    linear = nn.Linear(3 * size * size, dimensions, bias=False)
    model = SyntheticModel(nn.Sequential(nn.Flatten(), linear), size, threshold=0.3)
    pair = synthetic_pair(size, seed=1, similar=False)
    result = get("fggb").explain(pair, model, {"chunk": 3, "centre": "none"})

    inputs = [model.prepare(view.chip[None]) for view in pair.sides]
    with torch.no_grad():
        a, b = (linear(x.flatten(1))[0].double() for x in inputs)
    weights = linear.weight.detach().double()
    normalised = weights.abs() / weights.norm(dim=1, keepdim=True)  # eq. (2)
    for embedding, other, maps in ((a, b, result.probe), (b, a, result.gallery)):
        bracket = embedding * other / (embedding.norm() * other.norm())  # eq. (3)
        bracket = bracket - 0.3 / dimensions  # eq. (4)
        expected = (bracket @ normalised).reshape(3, size, size).sum(0)
        np.testing.assert_allclose(maps.combined_map, expected.numpy(), rtol=1e-4)
    np.testing.assert_allclose(result.probe.evidence["combined"].values.shape, (24, 24))
    assert result.probe.evidence["combined"].origin == (10, 20)


REGION_PARAMS: dict[str, dict[str, object]] = {
    **FAST_PARAMS,
    # no reference mean for a synthetic model: the paper-exact weights
    "fggb": {"centre": "none"},
    "xssab": {"centre": "none"},
    "lime": {"samples": 300, "max_samples": 300, "segments": 60, "sigma": 1},
    "corrrise": {"masks": 300, "max_samples": 300},
    "xface": {"patch_sizes": "7", "stride": 3},
    "minusplus": {"sigma": 4, "stride": 4},
    "smoothgrad": {"samples": 8, "max_samples": 8},
    # RegionNet adds 0.05 to every descriptor component, which no region owns: the
    # region pairs add up to 0.70 of a cosine of 0.996, refused by default
    "correspondence": {"links": 5, "max_residual": 2},
}


@pytest.fixture(scope="module")
def region_model():
    taps = (LayerTap("conv", "conv"), LayerTap("masked", "masked"))
    return SyntheticModel(RegionNet(), 64, taps)


# DDFV needs a reconstructor trained for the model; its region test (a toy backbone
# whose channels each own a quadrant) is in test_ddfv.py.  ``components`` needs faces
# with 68 landmarks (this pair is synthetic noise); its region test, on a model that
# reads one facial component, is in test_components.py.  ``prior`` is a control that
# knows nothing about either face (test_the_prior_control_knows_no_pair).
@pytest.mark.parametrize(
    "method_id", sorted(set(FAST_PARAMS) - {"ddfv", "components", "prior"})
)
def test_methods_find_the_region_the_model_looks_at(method_id, region_model):
    """A model that ignores everything outside one rectangle: the saliency there."""
    result = get(method_id).explain(
        synthetic_pair(64), region_model, REGION_PARAMS[method_id], seed=0
    )
    inside = np.zeros((64, 64), bool)
    inside[RegionNet.ROWS, RegionNet.COLS] = True
    for maps in result.images:
        magnitude = np.abs(maps.combined_map)
        assert magnitude[inside].mean() > 4 * magnitude[~inside].mean(), method_id


def test_the_prior_control_knows_no_pair(region_model):
    """The same face-centre map for any two pairs, on both sides: a control."""
    first = get("prior").explain(synthetic_pair(64), region_model)
    flipped = synthetic_pair(64)
    other = FacePair(
        dataclasses.replace(flipped.gallery, side="probe"),
        dataclasses.replace(flipped.probe, side="gallery"),
    )
    second = get("prior").explain(other, region_model)
    assert get("prior").info.control
    for a, b in zip(first.images, (*second.images, *first.images), strict=False):
        np.testing.assert_array_equal(a.combined_map, b.combined_map)
    np.testing.assert_array_equal(first.probe.combined_map, first.gallery.combined_map)
    peak = np.unravel_index(np.argmax(first.probe.combined_map), (64, 64))
    assert abs(peak[0] - 0.55 * 64) <= 1 and abs(peak[1] - 32) <= 1  # face centre


def _pair_gradients(model: SyntheticModel, pair: FacePair):
    """Independent autograd: ds/dx of cos(f(x), f(other)) for both sides."""
    inputs = [model.prepare(view.chip[None]) for view in pair.sides]
    with torch.no_grad():
        embeddings = [model.embed(x)[0] for x in inputs]
    out = []
    for side in (0, 1):
        x = inputs[side].clone().requires_grad_()
        score = nn.functional.cosine_similarity(
            model.embed(x)[0], embeddings[1 - side], dim=0
        )
        out.append((x.detach(), torch.autograd.grad(score, x)[0]))
    return out


def test_vanilla_saliency_is_the_channel_max_of_the_absolute_gradient(region_model):
    """Simonyan et al. 2014 §3.1: M = max_c |ds/dx_c|, per pixel value (÷ std)."""
    pair = synthetic_pair(64, seed=2, similar=False)
    result = get("gradient").explain(pair, region_model)
    assert get("gradient").info.algorithm_version == 2
    assert not get("gradient").info.has_dissimilarity
    std = region_model.preprocessing.std[0]
    for maps, (_x, gradient) in zip(
        result.images, _pair_gradients(region_model, pair), strict=True
    ):
        expected = (gradient[0].abs() / std).amax(0).numpy()
        np.testing.assert_allclose(maps.similarity_map, expected, rtol=1e-5)
        assert maps.dissimilarity_map is None


def test_gradient_input_is_the_signed_first_order_contribution(region_model):
    """Shrikumar et al. 2016: gradient x (input - black), summed over colours; S+ and
    S- are its positive and negative parts (the old ``gradient`` map)."""
    pair = synthetic_pair(64, seed=2, similar=False)
    result = get("gradient_input").explain(pair, region_model)
    black = region_model.prepare(np.zeros((1, 64, 64, 3), np.uint8))
    for maps, (x, gradient) in zip(
        result.images, _pair_gradients(region_model, pair), strict=True
    ):
        signed = (gradient * (x - black))[0].sum(0).numpy()
        np.testing.assert_allclose(maps.combined_map, signed, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(maps.dissimilarity_map, np.maximum(-signed, 0))
        assert maps.dissimilarity_map.max() > 0 and maps.similarity_map.max() > 0


def explain_at_threshold(method_id: str, model: SyntheticModel, threshold: float):
    original = model.threshold
    model.threshold = Threshold("cosine", threshold, "test")
    try:
        params = {"centre": "none"} if method_id in ("fggb", "xssab") else {}
        return get(method_id).explain(synthetic_pair(64), model, params)
    finally:
        model.threshold = original


def test_the_cache_key_carries_the_threshold_but_not_its_source(region_model):
    """A model card's threshold can be edited while the weights (and their hash)
    stay: the key must change with the rule, not with the words saying why."""
    from core.explain.base import cache_key

    pair, method = synthetic_pair(64), get("gradient")
    keys = {
        (metric, value, source): method.explain(
            pair, region_model, threshold=Threshold(metric, value, source)
        ).cache_key
        for metric, value, source in (
            ("cosine", 0.3, "card"),
            ("cosine", 0.3, "edited card, same number"),
            ("cosine", 0.5, "card"),
            ("euclidean", 0.3, "card"),
        )
    }
    assert (
        keys["cosine", 0.3, "card"] == keys["cosine", 0.3, "edited card, same number"]
    )
    assert len(set(keys.values())) == 3
    # None means the model's threshold, as Explainer.explain uses then
    default = method.explain(pair, region_model).cache_key
    rule = region_model.threshold
    arguments = (pair, region_model, "gradient", {}, 0, "v")
    assert cache_key(*arguments, algorithm_version=1) == cache_key(
        *arguments, algorithm_version=1, threshold=Threshold(rule.metric, rule.value)
    )
    assert default == method.explain(pair, region_model, threshold=rule).cache_key


def test_a_negative_seed_is_one_clear_line(region_model):
    with pytest.raises(BadInputError, match="seed must be a whole number of 0"):
        get("gradient").explain(synthetic_pair(64), region_model, seed=-1)


@pytest.mark.slow
def test_fggb_threshold_moves_mass_from_similarity_to_dissimilarity(region_model):
    """Eq. (4): S(t) = sum_k G~k w_k - (t / N) sum_k G~k, affine in t, decreasing."""
    maps = [
        explain_at_threshold("fggb", region_model, t).probe for t in (0.0, 1.0, 2.0)
    ]
    combined = [m.combined_map.astype(np.float64) for m in maps]
    np.testing.assert_allclose(
        combined[0] - combined[1], combined[1] - combined[2], rtol=1e-4, atol=1e-7
    )
    assert (combined[2] <= combined[0]).all()
    # a threshold above any cosine: every pixel with a gradient argues against
    assert maps[2].dissimilarity_map.sum() > maps[0].dissimilarity_map.sum()
    assert maps[2].similarity_map.sum() < maps[0].similarity_map.sum()


def test_xssab_threshold_splits_the_arguments(region_model):
    """All arguments above a threshold of -N: nothing speaks against the match;
    all below a threshold of N (a_k b_k <= 1 for unit vectors): nothing for it."""
    everything_for = explain_at_threshold("xssab", region_model, -1000.0).probe
    assert everything_for.similarity_map.max() > 0
    assert not everything_for.dissimilarity_map.any()
    everything_against = explain_at_threshold("xssab", region_model, 1000.0).probe
    assert not everything_against.similarity_map.any()
    np.testing.assert_allclose(
        everything_against.dissimilarity_map, everything_for.similarity_map, rtol=1e-5
    )


# ---- command line -------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo_files(tmp_path_factory, astronaut_path, grace_hopper_path):
    folder = tmp_path_factory.mktemp("explain-cli")
    hopper = folder / "hopper.png"
    Image.open(grace_hopper_path).convert("RGB").save(hopper)
    return astronaut_path, hopper


def test_cli_lists_methods(capsys):
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(m["id"] for m in listed) == sorted(method_ids())
    assert all(m["description"] and m["citation"] for m in listed)


@pytest.mark.dlib
@pytest.mark.slow
def test_cli_explain_writes_maps_and_overlays(capsys, photo_files, tmp_path):
    code = main(
        [
            "explain",
            *map(str, photo_files),
            "--method",
            "gradcam",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    (result,) = payload["results"]
    assert result["method"] == "gradcam" and result["decision"] == "reject"
    for stem, files in result["files"].items():
        chip = np.load(files["chip_npy"])
        evidence = np.load(files["evidence_npy"])
        assert chip.shape == (150, 150), stem
        assert list(evidence.shape[::-1]) == files["size_wh"]
        with Image.open(files["overlay_png"]) as overlay:
            assert overlay.size[0] >= files["image_size_wh"][0] // 2
    assert Path(tmp_path / "gradcam" / "result.json").is_file()


@pytest.mark.dlib
@pytest.mark.slow
@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--param=samples", "NAME=VALUE"),
        ("--param=samples=x", "parameter samples: cannot use 'x'"),
        ("--param=bogus=1", "no parameter 'bogus'"),
    ],
)
def test_cli_bad_param_is_a_clear_error(
    capsys, photo_files, tmp_path, argument, message
):
    probe, gallery = map(str, photo_files)
    code = main(
        [
            "explain",
            probe,
            gallery,
            "--method",
            "lime",
            argument,
            "--out",
            str(tmp_path),
        ]
    )
    assert code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lime").exists()  # nothing written for a refused run


@pytest.mark.slow
def test_integrated_gradients_account_for_the_score(region_model):
    """Completeness (Sundararajan et al.): attributions sum to f(x) - f(black)."""
    result = get("integrated_gradients").explain(
        synthetic_pair(64), region_model, {"steps": 256}
    )
    gaps = [float(note.split("gap ")[1].split()[0]) for note in result.notes]
    assert len(gaps) == 2 and max(abs(g) for g in gaps) < 2e-3, result.notes
    coarse = get("integrated_gradients").explain(
        synthetic_pair(64), region_model, {"steps": 2}
    )
    coarse_gaps = [float(n.split("gap ")[1].split()[0]) for n in coarse.notes]
    assert max(map(abs, coarse_gaps)) > max(map(abs, gaps))  # the check can fail


@pytest.mark.parametrize("kind", ["similarity", "combined"])
def test_overlay_keeps_labels_inside_the_picture(kind):
    """A narrow evidence image and long tick labels: nothing drawn at the edge."""
    from core.explain.base import EvidenceMap
    from core.explain.render import render_overlay

    image = np.full((300, 120, 3), 128, np.uint8)
    values = np.random.default_rng(0).normal(0, 7e-5, (100, 80)).astype(np.float32)
    if kind == "similarity":
        values = np.abs(values)
    overlay = render_overlay(
        image, EvidenceMap(values, (20, 60), (300, 120)), kind, "a long title " * 4
    )
    assert overlay.shape[0] > 300 and overlay.shape[1] > 120
    assert (overlay[:, -4:] == 255).all() and (overlay[-2:, 120:] == 255).all()
    # the evidence is shown untouched outside the chip footprint
    header = overlay.shape[0] - 300
    assert (overlay[header:, :, :][:50, :120] == 128).all()


def _plus_plus_exact(activation: torch.Tensor, gradient: torch.Tensor) -> np.ndarray:
    """Grad-CAM++ eq. 19 in float64 without any guard (denominators are nonzero)."""
    a, g = activation.double(), gradient.double()
    alpha = g**2 / (2 * g**2 + a.sum(dim=(1, 2), keepdim=True) * g**3)
    weights = (alpha * torch.relu(g)).sum(dim=(1, 2))
    return torch.relu(torch.einsum("c,chw->hw", weights, a)).numpy()


def test_gradcampp_guard_does_not_swamp_small_gradients():
    """alpha depends on A g only: rescaling (A, g) -> (A / k, k g) must leave the map
    alone.  A fixed eps of 1e-7 (the old guard) swamps gradients of dlib's scale."""
    from core.explain.cam import cam, gradcampp_weights

    generator = torch.Generator().manual_seed(0)
    activation = torch.rand(6, 5, 5, generator=generator)
    gradient = torch.randn(6, 5, 5, generator=generator) * 0.1
    reference = _plus_plus_exact(activation, gradient)
    for k in (1.0, 1e-4, 1e-6):
        scaled_a, scaled_g = activation / k, gradient * k
        new = cam(scaled_a, gradcampp_weights(scaled_a, scaled_g)).numpy()
        np.testing.assert_allclose(
            new, reference, rtol=1e-4, atol=1e-6 * reference.max()
        )
    # what the old fixed eps did at k = 1e-6: alpha ~ g^2 / 1e-7, a different map
    tiny_a, tiny_g = activation / 1e-6, gradient * 1e-6
    squared = tiny_g**2
    denominator = 2 * squared + tiny_a.sum(dim=(1, 2), keepdim=True) * tiny_g**3
    alpha = torch.where(tiny_g != 0, squared / (denominator + 1e-7), 0.0)
    old = cam(tiny_a, (alpha * torch.relu(tiny_g)).sum(dim=(1, 2))).numpy()
    old_correlation = np.corrcoef(old.ravel(), reference.ravel())[0, 1]
    relative_error = np.abs(old / old.max() - reference / reference.max()).max()
    assert relative_error > 0.1 and old_correlation < 0.99  # another shape
    assert old.max() < 1e-3 * reference.max()  # and a collapsed scale


def test_gradcam_default_layer_is_the_measured_one(dlib_model, region_model):
    """dlib names the layer chosen by benchmarks/gradcam_layer.py; a model without a
    measurement falls back to the deepest tap with at least 4x4 positions."""
    from core.explain.layers import default_cam_layer

    assert default_cam_layer(dlib_model) == "stage2.block3"
    assert region_model.cam_layer is None
    assert default_cam_layer(region_model) == "masked"  # both 64x64: the deeper
    for method_id in ("gradcam", "gradcampp"):
        assert get(method_id).info.algorithm_version == 2


def test_typed_parameter_reads_return_what_the_methods_computed_before():
    from core.explain.base import (
        float_param,
        int_param,
        int_tuple_param,
        optional_str_param,
        str_param,
    )

    resolved = get("lime").info.resolve({"segments": "50", "sigma": 3})
    assert int_param(resolved, "segments") == 50
    assert float_param(resolved, "sigma") == 3.0
    assert type(float_param(resolved, "sigma")) is float
    assert str_param(resolved, "reference") == "pair"
    assert optional_str_param(get("gradcam").info.defaults(), "layer") is None
    assert int_tuple_param(get("xface").info.defaults(), "patch_sizes") == (7, 14, 28)


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        ("int_param", 2.5, "parameter x: 2.5 is not a whole number"),
        ("int_param", True, "parameter x: True is not a whole number"),
        ("float_param", "0.5", "parameter x: '0.5' is not a number"),
        ("str_param", None, "parameter x: None is not text"),
        ("optional_str_param", 3, "parameter x: 3 is not text"),
        ("int_tuple_param", (1, 2.0), r"parameter x: \(1, 2.0\) is not whole numbers"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_one_line_naming_it(read, value, message):
    import core.explain.base as base

    with pytest.raises(BadInputError, match=f"^{message}$"):
        getattr(base, read)({"x": value}, "x")
