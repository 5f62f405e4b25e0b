"""The correspondence explainer: exact on dlib, recovers the agreeing region of a
synthetic pair, refuses what it cannot decompose; and its figure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from synthetic_models import SyntheticModel
from torch import nn

from core.errors import BadInputError
from core.explain import FacePair, FaceView, get
from core.explain.render_correspondence import (
    link_colour,
    links_on_images,
    render_correspondence,
)
from core.faces.align import ChipTransform
from core.models.base import (
    LayerTap,
    Preprocessing,
    cosine_similarity,
)
from core.verify import prepare_face


# ---- the real model ------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces(dlib_model, astronaut_path, grace_hopper_path):
    return prepare_face(astronaut_path, dlib_model), prepare_face(
        grace_hopper_path, dlib_model
    )


def last_features(model, chip: np.ndarray) -> torch.Tensor:
    """dlib's last feature map (C, h, w), computed here from the network's parts."""
    network = model.network
    with torch.no_grad():
        x = network.stem(model.prepare(chip[None]))
        for stage in network.stages:
            x = stage(x)
    return x[0].double()


def test_dlib_decomposition_is_exact_and_matches_zhu_by_hand(dlib_model, faces):
    probe, gallery = faces
    result = get("correspondence").explain(
        FacePair.from_prepared(probe, gallery), dlib_model
    )
    details = result.details
    # the pool and bias-free linear layer follow stage 5 (checked, not assumed)
    assert dlib_model.network.fc.bias is None
    assert details["layer"] == "stage5.block0" and details["grid"] == [2, 2]
    embeddings = dlib_model.embed_chips([probe.aligned.chip, gallery.aligned.chip])
    model_cosine = cosine_similarity(embeddings[0], embeddings[1])
    matrix = np.array(details["matrix"])
    assert matrix.shape == (4, 4)
    assert abs(matrix.sum() - model_cosine) < 1e-5
    assert abs(details["residual"]) < 1e-5 and details["exact"] is True
    assert abs(details["decomposition_total"] - result.cosine_similarity) < 1e-5

    # Zhu et al.: R_ij = <W f_i(A), W f_j(B)> / (n^2 |a| |b|), written out here
    weight = dlib_model.network.fc.weight.detach().double()
    projected = [
        (weight @ last_features(dlib_model, face.aligned.chip).reshape(256, -1)).T
        for face in faces
    ]
    n = 4
    a, b = (p.sum(0) / n for p in projected)
    by_hand = (projected[0] @ projected[1].T) / (n * n * a.norm() * b.norm())
    np.testing.assert_allclose(matrix, by_hand.numpy(), rtol=1e-5, atol=1e-7)

    # maps: row sums (probe) and column sums (gallery), signed
    grid_probe = matrix.sum(1).reshape(2, 2)
    grid_gallery = matrix.sum(0).reshape(2, 2)
    # a 2x2 grid upsampled bilinearly: each chip corner holds its cell's value
    np.testing.assert_allclose(result.probe.combined_map[0, 0], grid_probe[0, 0], 1e-5)
    np.testing.assert_allclose(
        result.gallery.combined_map[-1, -1], grid_gallery[1, 1], 1e-5
    )
    np.testing.assert_allclose(
        result.probe.combined_map,
        result.probe.similarity_map - result.probe.dissimilarity_map,
        atol=1e-7,
    )
    # links: the strongest first, in chip pixels, shares of the whole score
    links = details["links"]
    assert len(links) == 10
    contributions = [link["contribution"] for link in links]
    assert sorted(contributions, key=abs, reverse=True) == contributions
    assert abs(contributions[0]) == pytest.approx(np.abs(matrix).max())
    first = links[0]
    row, col = first["probe_cell"]
    assert first["probe_xy"] == [(col + 0.5) * 75, (row + 0.5) * 75]
    assert first["share"] == pytest.approx(first["contribution"] / matrix.sum())
    assert result.notes[-1].endswith("the decomposition is exact")


def test_same_photo_is_exact_and_symmetric(dlib_model, faces):
    probe = faces[0]
    result = get("correspondence").explain(
        FacePair.from_prepared(probe, probe), dlib_model, {"links": 3}
    )
    assert result.decision == "accept"
    assert result.details["model_score"] == pytest.approx(1.0, abs=1e-5)
    assert abs(result.details["residual"]) < 1e-5
    matrix = np.array(result.details["matrix"])
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)  # R(A, A) is symmetric
    np.testing.assert_allclose(
        result.probe.combined_map, result.gallery.combined_map, atol=1e-7
    )
    assert len(result.details["links"]) == 3


@pytest.mark.slow
def test_a_layer_that_does_not_add_up_is_refused(dlib_model, faces):
    pair = FacePair.from_prepared(*faces)
    with pytest.raises(BadInputError, match=r"stage4\.block2 of model dlib-resnet-v1"):
        get("correspondence").explain(pair, dlib_model, {"layer": "stage4.block2"})
    # on purpose, with a limit raised: shown, and marked approximate
    result = get("correspondence").explain(
        pair, dlib_model, {"layer": "stage4.block2", "max_residual": 2}
    )
    assert result.details["exact"] is False
    assert abs(result.details["residual"]) > 0.01
    assert result.details["grid"] == [4, 4]
    assert result.notes[-1].startswith("approximate")


def test_a_model_without_a_spatial_layer_is_refused():
    model = SyntheticModel(
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)),
        8,
        taps=(LayerTap("embedding", "1"),),
    )
    chip = np.full((8, 8, 3), 100, np.uint8)
    transform = ChipTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (8, 8), "dlib")
    pair = FacePair(
        FaceView("probe", chip, transform, (8, 8), "a" * 64),
        FaceView("gallery", chip, transform, (8, 8), "b" * 64),
    )
    with pytest.raises(BadInputError, match="model synthetic has none"):
        get("correspondence").explain(pair, model)


# ---- a toy model whose answer is known -----------------------------------------------
class PatchNet(nn.Module):
    """8x8-pixel patches -> 256 features each (an 8x8 grid on a 64x64 chip), global
    average, linear without bias: Zhu et al.'s structure, so R is exact."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.patches = nn.Conv2d(3, 256, 8, stride=8, bias=False)
        self.features = nn.Identity()
        self.fc = nn.Linear(256, 256, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(self.patches(x)).mean(dim=(2, 3)))


def patch_model(flip_average: bool = False) -> SyntheticModel:
    model = SyntheticModel(
        PatchNet(),
        64,
        taps=(LayerTap("features", "features"), LayerTap("embedding", "fc")),
    )
    # zero-mean inputs: patches of independent noise give unrelated features
    model.preprocessing = Preprocessing(
        input_size=(64, 64),
        mean=(127.5,) * 3,
        std=(127.5,) * 3,
        flip_average=flip_average,
    )
    return model


def agreeing_pair(quadrant: tuple[int, int], seed: int = 0) -> FacePair:
    """Independent noise, equal only in one 32x32 quadrant (4x4 grid cells)."""
    rng = np.random.default_rng(seed)
    probe = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    gallery = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rows = slice(32 * quadrant[0], 32 * quadrant[0] + 32)
    cols = slice(32 * quadrant[1], 32 * quadrant[1] + 32)
    gallery[rows, cols] = probe[rows, cols]
    transform = ChipTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (64, 64), "dlib")
    return FacePair(
        FaceView("probe", probe, transform, (64, 64), "a" * 64),
        FaceView("gallery", gallery, transform, (64, 64), "b" * 64),
    )


@pytest.mark.parametrize("flip_average", [False, True])
@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1), (0, 1)])
def test_top_links_join_the_agreeing_region(quadrant, flip_average):
    model = patch_model(flip_average)
    result = get("correspondence").explain(
        agreeing_pair(quadrant), model, {"links": 5, "link_sign": "supporting"}
    )
    details = result.details
    assert details["grid"] == [8, 8]
    assert details["flip_averaged"] is flip_average
    assert abs(details["residual"]) < 1e-5  # exact, with or without the mirror
    for link in details["links"]:
        # the same place in both faces, inside the quadrant where they agree
        assert link["probe_cell"] == link["gallery_cell"]
        row, col = link["probe_cell"]
        assert (row // 4, col // 4) == quadrant
        assert link["contribution"] > 0
    # and each side's signed map puts its support there: a region's total is its
    # match with the other face's whole descriptor, which for the unrelated regions
    # is noise around 0 (either sign, so only the signed map averages it away)
    rows = slice(32 * quadrant[0], 32 * quadrant[0] + 32)
    cols = slice(32 * quadrant[1], 32 * quadrant[1] + 32)
    for maps in result.images:
        combined = maps.combined_map
        inside = combined[rows, cols].mean()
        outside = (combined.sum() - combined[rows, cols].sum()) / (64 * 64 - 1024)
        assert inside > 3 * abs(outside)


def test_link_sign_filters_and_counts():
    model = patch_model()
    pair = agreeing_pair((1, 0), seed=1)
    opposing = get("correspondence").explain(
        pair, model, {"links": 7, "link_sign": "opposing"}
    )
    links = opposing.details["links"]
    assert len(links) == 7 and all(link["contribution"] < 0 for link in links)
    assert [link["rank"] for link in links] == list(range(1, 8))
    strongest = get("correspondence").explain(pair, model, {"links": 1})
    matrix = np.array(strongest.details["matrix"])
    assert strongest.details["links"][0]["contribution"] == pytest.approx(
        matrix.ravel()[np.abs(matrix).argmax()]
    )


# ---- the figure ---------------------------------------------------------------------
def test_figure_has_both_faces_and_the_numbered_spots():
    probe = np.full((150, 150, 3), 90, np.uint8)
    gallery = np.full((300, 200, 3), 160, np.uint8)
    links = [
        {"rank": 1, "probe_xy": [30, 40], "gallery_xy": [50, 55], "contribution": 0.2},
        {
            "rank": 2,
            "probe_xy": [110, 110],
            "gallery_xy": [150, 250],
            "contribution": -1,
        },
    ]
    figure = render_correspondence(probe, gallery, links, gap=10)
    # the probe is scaled to the gallery's height, x2
    assert figure.shape == (300, 300 + 10 + 200, 3) and figure.dtype == np.uint8
    assert (figure[150, 150] == 90).all() and (figure[5, 480] == 160).all()
    first = np.array(link_colour(0))
    assert (figure[80, 60] == first).all()  # probe spot: (30, 40) x2
    assert (figure[55, 310 + 50] == first).all()  # gallery spot, not scaled
    # the opposing link is a ring: its colour around the centre, not on it
    second = np.array(link_colour(1))
    probe_centre = figure[220, 220]
    assert not (probe_centre == second).all()
    radius = round(300 * 0.035)
    ring = figure[220, 220 - radius : 220 + radius + 1]
    assert (np.abs(ring.astype(int) - second).sum(axis=1) < 30).any()
    # the line joins the first pair (its middle is drawn in the link's colour)
    middle = figure[(80 + 55) // 2, (60 + 360) // 2].astype(int)
    assert np.abs(middle - first).sum() < 60
    # count limits the links drawn
    only_first = render_correspondence(probe, gallery, links, count=1, gap=10)
    assert (only_first[220, 220 - radius : 220 + radius + 1] == 90).all()


def test_figure_from_a_result_on_evidence_coordinates(dlib_model, faces):
    probe, gallery = faces
    result = get("correspondence").explain(
        FacePair.from_prepared(probe, gallery), dlib_model, {"links": 4}
    )
    links = links_on_images(
        result.details["links"], probe.aligned.transform, gallery.aligned.transform
    )
    first = result.details["links"][0]
    expected = probe.aligned.transform.to_image(np.array(first["probe_xy"]))[0]
    np.testing.assert_allclose(links[0]["probe_xy"], expected)
    figure = render_correspondence(probe.image.rgb, gallery.image.rgb, links)
    height = max(probe.image.rgb.shape[0], gallery.image.rgb.shape[0])
    assert figure.shape[0] == height and figure.shape[2] == 3


def test_figure_refuses_a_grey_image():
    with pytest.raises(BadInputError, match="probe image must be RGB uint8"):
        render_correspondence(np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3)), [])


def test_links_sharing_a_region_do_not_hide_each_other():
    chip = np.full((150, 150, 3), 90, np.uint8)
    links = [
        {"rank": 1, "probe_xy": [75, 75], "gallery_xy": [40, 40], "contribution": 1},
        {"rank": 2, "probe_xy": [75, 75], "gallery_xy": [110, 110], "contribution": 1},
    ]
    figure = render_correspondence(chip, chip, links, gap=0)
    for index in (0, 1):  # both spots of the shared probe region show their colour
        colour = np.array(link_colour(index))
        exact = (figure[40:110, 40:110] == colour).all(axis=2).astype(np.uint8)
        # a 3x3 block of it: a spot, not the one-pixel line that leaves it
        assert cv2.erode(exact, np.ones((3, 3), np.uint8)).any(), index
