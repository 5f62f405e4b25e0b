"""The ``components`` explainer: FISWG components located from the 68 landmarks,
hidden in probe, gallery and both; the table and maps are measured interventions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from synthetic_models import SyntheticModel
from torch import nn

from core.ecloss.parts import FISWG_COMPONENTS, component_masks
from core.errors import BadInputError
from core.explain import FacePair, get
from core.explain.methods.components import (
    FILLS,
    component_table_lines,
    component_table_rows,
    occlude,
)
from core.models.base import Threshold


@pytest.fixture(scope="module")
def pair(photo_pair):
    """Astronaut and Grace Hopper with their 68 landmarks (tests/core/conftest.py)."""
    return photo_pair[2]


def chip_points(view) -> np.ndarray:
    return view.transform.to_chip(np.asarray(view.face_record["landmarks68"]))


# ---- where the components are --------------------------------------------------------
def test_components_lie_where_the_landmarks_say(pair):
    view = pair.probe
    points = chip_points(view)
    located = component_masks(points, (150, 150))
    stack = np.stack(list(located.masks.values()))
    assert stack.sum(0).max() == 1  # every pixel in at most one component
    assert set(located.masks) <= set(FISWG_COMPONENTS)

    def at(name: str, point: np.ndarray) -> bool:
        x, y = np.round(point).astype(int)
        return bool(located.masks[name][y, x])

    assert at("nose", points[30])  # nose tip
    assert at("mouth", points[62])  # inner upper lip
    assert at("eyes", points[36:42].mean(0)) and at("eyes", points[42:48].mean(0))
    assert at("eyebrows", points[19] + (0, 3)) and at("eyebrows", points[24] + (0, 3))
    assert at("chin_jawline", points[8] - (0, 5))
    assert at("forehead", points[27] - (0, 30))
    assert at("cheeks", (points[2] + points[31]) / 2)


def test_an_ear_turned_away_or_outside_the_chip_is_not_located(pair):
    points = chip_points(pair.gallery)
    assert "ears" in component_masks(points, (150, 150)).masks
    # the face's left half (landmarks 9-16) squeezed towards the nose: turned away
    turned = points.copy()
    nose_x = points[30, 0]
    turned[9:17, 0] = nose_x + 0.4 * (points[9:17, 0] - nose_x)
    located = component_masks(turned, (150, 150))
    assert "left ear: the face is turned away from it" in located.notes
    assert "ears" in located.masks  # the right ear is still there
    # both jaw ends far out at the chip's border: no ear inside the chip
    wide = points.copy()
    wide[0, 0], wide[16, 0] = 2.0, 148.0
    located = component_masks(wide, (150, 150))
    assert "ears" not in located.masks
    assert "outside the aligned chip" in located.not_located["ears"]


@pytest.mark.parametrize("fill", FILLS)
def test_occlusion_changes_only_the_component(pair, fill):
    chip = pair.probe.chip
    mask = component_masks(chip_points(pair.probe), (150, 150)).masks["nose"]
    hidden = occlude(chip, mask, fill, (122.8, 117.0, 104.3))
    assert hidden.dtype == np.float32 and np.isfinite(hidden).all()
    np.testing.assert_array_equal(hidden[~mask], chip[~mask].astype(np.float32))
    assert np.abs(hidden[mask] - chip[mask]).mean() > 1  # it did hide something
    if fill != "blur":  # none of the component's own pixels survive
        scrambled = chip.copy()
        scrambled[mask] = np.random.default_rng(0).integers(0, 255, (mask.sum(), 3))
        np.testing.assert_allclose(
            occlude(scrambled, mask, fill, (122.8, 117.0, 104.3))[mask],
            hidden[mask],
            atol=1e-3,
        )


# ---- a model whose answer is known ------------------------------------------------
class ComponentReader(nn.Module):
    """Reads only the pixels of one region of a 150x150 chip (zero elsewhere before
    the convolution, so no other pixel can reach the embedding), and there only
    their detail (texture and shape), which hiding removes."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv = nn.Conv2d(3, 16, 5, bias=False)
        self.project = nn.Linear(16 * 16, 32, bias=False)  # signed: a sensitive cosine
        self.register_buffer("mask", torch.from_numpy(mask.astype(np.float32))[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # zero-mean kernels: the model sees the region's detail, not its colour
        kernels = self.conv.weight - self.conv.weight.mean((2, 3), keepdim=True)
        detail = nn.functional.conv2d(x * self.mask[:, None], kernels, padding=2)
        features = torch.relu(detail) * self.mask[:, None]
        pooled = nn.functional.adaptive_avg_pool2d(features, 4).flatten(1)
        return self.project(pooled - pooled.mean(1, keepdim=True))


def agreeing_pair(pair: FacePair, region: str) -> tuple[FacePair, np.ndarray]:
    """Probe = the astronaut; gallery = Grace Hopper's pixels everywhere except the
    astronaut's ``region``, with the astronaut's landmarks: the two images agree in
    that region only."""
    probe = pair.probe
    mask = component_masks(chip_points(probe), (150, 150)).masks[region]
    chip = pair.gallery.chip.copy()
    chip[mask] = probe.chip[mask]
    gallery = dataclasses.replace(probe, side="gallery", chip=chip, image_sha256="g")
    return FacePair(probe, gallery), mask


@pytest.mark.slow
@pytest.mark.parametrize("region", ["nose", "mouth", "eyes"])
def test_the_region_the_model_reads_has_the_largest_effect(pair, region):
    agreeing, mask = agreeing_pair(pair, region)
    model = SyntheticModel(ComponentReader(mask), 150, threshold=0.99)
    result = get("components").explain(agreeing, model, batch_size=16)
    table = result.details["components"]
    assert result.decision == "accept" and table["margin"] == pytest.approx(0.01)
    rows = table["components"]
    assert rows[0]["name"] == region  # sorted by effect: the true region first
    for condition in ("probe", "gallery", "both"):
        assert rows[0][condition]["change"] < -0.01
    assert all(rows[0][c]["flips"] for c in ("probe", "gallery", "both"))
    for row in rows[1:]:  # nothing else reaches the model
        for condition in ("probe", "gallery", "both"):
            assert row[condition]["change"] == pytest.approx(0, abs=1e-6), row
            assert row[condition]["flips"] is False
    for item in table["pairs"]:  # a pair with the region behaves like the region
        if region in item["components"]:
            # not exactly: next to a hidden neighbour the region is filled from
            # further away (the fills that ignore the neighbourhood give 0 below)
            assert abs(item["both"]["interaction"]) < -rows[0]["both"]["change"]
        else:
            assert item["both"]["change"] == pytest.approx(0, abs=1e-6)
    # the maps: the region alone, as a similarity (hiding it lowers the margin)
    for maps in result.images:
        assert maps.similarity_map[mask].min() > 0.01
        assert np.abs(maps.combined_map[~mask]).max() < 1e-6
        assert np.abs(maps.dissimilarity_map).max() < 1e-6


def test_a_flat_fill_makes_interactions_with_unread_regions_zero(pair):
    agreeing, mask = agreeing_pair(pair, "nose")
    model = SyntheticModel(ComponentReader(mask), 150, threshold=0.99)
    result = get("components").explain(agreeing, model, {"fill": "model-mean"})
    table = result.details["components"]
    assert table["components"][0]["name"] == "nose"
    for item in table["pairs"]:
        for condition in ("probe", "gallery", "both"):
            assert item[condition]["interaction"] == pytest.approx(0, abs=1e-6)


def test_every_number_is_the_measured_margin(pair):
    """Recompute one entry by hand: hide the nose in the probe, embed, t - d."""
    agreeing, mask = agreeing_pair(pair, "nose")
    model = SyntheticModel(ComponentReader(mask), 150)
    threshold = Threshold("euclidean", 0.05, "test")
    result = get("components").explain(
        agreeing, model, {"fill": "mean", "pairs": False}, threshold=threshold
    )
    table = result.details["components"]
    assert table["score"].startswith("distance margin (0.05")
    assert table["pairs"] == []
    original = model.embed_chips([view.chip for view in agreeing.sides])
    base = 0.05 - np.linalg.norm(original[0] - original[1])
    assert table["margin"] == pytest.approx(base, abs=1e-6)
    hidden = occlude(agreeing.probe.chip, mask, "mean")
    with torch.no_grad():
        probe_hidden = model.embed(model.prepare(hidden[None]))[0].double().numpy()
    expected = 0.05 - np.linalg.norm(probe_hidden - original[1])
    nose = next(row for row in table["components"] if row["name"] == "nose")
    assert nose["probe"]["margin"] == pytest.approx(expected, abs=1e-5)
    assert nose["probe"]["change"] == pytest.approx(expected - base, abs=1e-5)


# ---- the real model -----------------------------------------------------------------
@pytest.mark.slow
def test_dlib_on_two_people_gives_a_consistent_table(pair, dlib_model):
    result = get("components").explain(pair, dlib_model, batch_size=32)
    table = result.details["components"]
    assert json.loads(json.dumps(result.to_dict()))["details"]["components"]
    assert result.decision == table["decision"] == "reject"
    embeddings = dlib_model.embed_chips([view.chip for view in pair.sides])
    distance = np.linalg.norm(embeddings[0] - embeddings[1])
    assert table["margin"] == pytest.approx(0.6 - distance, abs=1e-4)
    names = [row["name"] for row in table["components"]]
    assert {"eyes", "nose", "mouth", "eyebrows", "forehead"} <= set(names)
    changes = [abs(row["both"]["change"]) for row in table["components"]]
    assert changes == sorted(changes, reverse=True)
    assert max(changes) > 1e-3  # hiding a component moves the real model
    single = {row["name"]: row for row in table["components"]}
    assert len(table["pairs"]) == len(names) * (len(names) - 1) // 2
    for item in table["pairs"]:
        first, second = item["components"]
        for condition in ("probe", "gallery", "both"):
            values = item[condition]
            assert values["change"] == pytest.approx(values["margin"] - table["margin"])
            assert values["interaction"] == pytest.approx(
                values["change"]
                - single[first][condition]["change"]
                - single[second][condition]["change"]
            )
    for row in table["components"]:
        assert row["both"]["flips"] == (row["both"]["margin"] > 0)  # base rejects
    # each side's map is minus the change of hiding the component in that side
    probe_masks = component_masks(chip_points(pair.probe), (150, 150)).masks
    for name, mask in probe_masks.items():
        np.testing.assert_allclose(
            result.probe.combined_map[mask], -single[name]["probe"]["change"], 1e-5
        )
    lines = component_table_lines(table)
    rows = component_table_rows(table)
    assert len(rows) == 1 + len(names) + len(table["pairs"])
    assert all(len(row) == len(rows[0]) for row in rows)
    assert "Nose" in "\n".join(lines) and "distance margin" in lines[0]


def test_a_face_without_68_landmarks_is_refused_in_one_line(pair, dlib_model):
    record = dict(pair.gallery.face_record, landmarks68=None, source="manual")
    gallery = dataclasses.replace(pair.gallery, face_record=record)
    with pytest.raises(BadInputError) as caught:
        get("components").explain(FacePair(pair.probe, gallery), dlib_model)
    message = str(caught.value)
    assert "\n" not in message and "68-point landmarks" in message
    assert "gallery" in message and "marked by hand" in message
