"""Layer capture is per call: another thread's forward passes neither write into a
running capture nor are changed by it (issue 16: a layer-by-layer job crashed with
"expanded size of tensor (64) must match (7)" while the Channels panel ran)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from synthetic_models import RegionNet, SyntheticModel

from core.ecloss.channel_data import layer_maps
from core.explain.base import FacePair
from core.explain.layerwise import explain_layers
from core.models.base import LayerTap
from core.verify import prepare_face


def _synthetic_model() -> SyntheticModel:
    return SyntheticModel(RegionNet(), 64, (LayerTap("masked", "masked"),))


def _run(target, errors: list[BaseException]) -> threading.Thread:
    def guarded():
        try:
            target()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread


def test_another_threads_pass_is_neither_recorded_nor_replaced():
    model = _synthetic_model()
    batch = model.prepare(np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)))
    other = model.prepare(np.full((7, 64, 64, 3), 90, np.uint8))
    with torch.no_grad():
        plain = model.embed(other)
    inside, release = threading.Event(), threading.Event()
    seen: dict[str, torch.Tensor] = {}
    errors: list[BaseException] = []

    def holder():  # keeps a capture and a replacement open on its own thread
        with (
            torch.no_grad(),
            model.capture(["masked"]) as captured,
            model.replacing_output("masked", torch.zeros_like),
        ):
            model.embed(batch)
            seen.update(captured)
            inside.set()
            assert release.wait(10)
            model.embed(batch)  # still only its own passes
            seen["after"] = captured["masked"]

    thread = _run(holder, errors)
    assert inside.wait(10)
    with torch.no_grad(), model.capture(["masked"]) as mine:
        embedded = model.embed(other)  # runs while the other thread's hooks are on
    release.set()
    thread.join(10)
    assert not errors, errors
    # this thread's pass: unreplaced output, its own activations only
    assert torch.equal(embedded, plain)
    assert mine["masked"].shape[0] == 7 and float(mine["masked"].abs().sum()) > 0
    # the other thread's capture saw its own 3-chip passes, never the 7-chip one
    assert seen["masked"].shape[0] == 3 and seen["after"].shape[0] == 3


def test_nested_captures_and_gradients_in_one_thread():
    model = _synthetic_model()
    batch = model.prepare(np.full((2, 64, 64, 3), 120, np.uint8)).requires_grad_()
    with model.capture(["masked"]) as outer:
        with model.capture(["masked"]) as inner:
            embedding = model.embed(batch)
        model.embed(batch[:1])  # the inner capture is closed: only outer records
    assert inner["masked"].shape[0] == 2 and outer["masked"].shape[0] == 1
    (gradient,) = torch.autograd.grad(embedding.sum(), [inner["masked"]])
    assert gradient.shape == inner["masked"].shape


@pytest.mark.slow
def test_layerwise_job_is_unchanged_by_channels_and_embeds_in_other_threads(
    dlib_model, astronaut_path, grace_hopper_path
):
    model = dlib_model
    probe = prepare_face(astronaut_path, model)
    gallery = prepare_face(grace_hopper_path, model)
    pair = FacePair.from_prepared(probe, gallery)
    params, seed = {"samples": 16, "segments": 20}, 3
    expected = explain_layers(pair, model, params, seed=seed, batch_size=16)
    # 7 chips: a batch size the job never uses, as in the GUI crash
    chips = np.stack(
        [probe.aligned.chip, gallery.aligned.chip] * 3 + [probe.aligned.chip]
    )
    channels_alone = layer_maps(model, "stage2.block0", chips, batch_size=7)
    embeds_alone = model.embed_chips(chips)

    stop = threading.Event()
    errors: list[BaseException] = []
    rounds = {"channels": 0, "embeds": 0}

    def channels():
        while not stop.is_set():
            maps = layer_maps(model, "stage2.block0", chips, batch_size=7)
            np.testing.assert_allclose(maps, channels_alone, rtol=1e-5, atol=1e-6)
            rounds["channels"] += 1

    def embeds():
        while not stop.is_set():
            np.testing.assert_allclose(
                model.embed_chips(chips), embeds_alone, rtol=1e-6, atol=1e-7
            )
            rounds["embeds"] += 1

    threads = [_run(channels, errors), _run(embeds, errors)]
    try:
        concurrent = explain_layers(pair, model, params, seed=seed, batch_size=16)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert rounds["channels"] > 0 and rounds["embeds"] > 0  # they did overlap
    for alone, together in zip(expected.layers, concurrent.layers, strict=True):
        assert alone.gap_cosine == pytest.approx(together.gap_cosine, abs=1e-6)
        for a, b in zip(alone.lime_maps, together.lime_maps, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        if alone.gradcam_maps is not None:
            for a, b in zip(alone.gradcam_maps, together.gradcam_maps, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.ptp(a))
