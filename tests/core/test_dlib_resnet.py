"""The torch port of dlib's ResNet against dlib itself (dlib-bin, test dependency).

Requirement: on the same aligned 150x150 chips, max |diff| <= 1e-4 per component of
the 128-d descriptor, on real photos, augmented photos and synthetic images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import BadInputError, ModelFileError, UnknownModelError
from core.models import DEFAULT_MODEL_ID, ModelRegistry, registry
from core.models.dlib_resnet import add_zero_padded, build_dlib_resnet
from core.models.model_registry import register_builtins
from core.resources import (
    RESNET_FILE,
    SHAPE_5_FILE,
    dlib_model_file,
    sha256_file,
)

dlib = pytest.importorskip("dlib")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def dlib_reference():
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_file(SHAPE_5_FILE)))
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_file(RESNET_FILE)))

    def chip_of(rgb: np.ndarray) -> np.ndarray:
        rects = detector(rgb, 1)
        assert len(rects) >= 1, "dlib found no face in a test photo"
        biggest = max(rects, key=lambda r: r.area())
        return np.asarray(dlib.get_face_chip(rgb, predictor(rgb, biggest), 150, 0.25))

    def descriptors(chips: list[np.ndarray]) -> np.ndarray:
        batch = [np.ascontiguousarray(chip) for chip in chips]
        return np.array(
            [np.array(d) for d in recognizer.compute_face_descriptor(batch)]
        )

    return chip_of, descriptors


@pytest.fixture(scope="module")
def photos(astronaut_rgb, grace_hopper_path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {
        "astronaut": astronaut_rgb,
        "grace_hopper": np.asarray(Image.open(grace_hopper_path).convert("RGB")),
    }


def _augment(chip: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Photometric and geometric variants of a chip (what evidence images look like)."""
    import cv2

    as_float = chip.astype(np.float32)
    rotation = cv2.getRotationMatrix2D((75, 75), 12, 1.1)
    return [
        chip[:, ::-1],  # mirrored
        np.clip(as_float * 0.6 + 40, 0, 255).astype(np.uint8),  # low contrast
        np.clip(as_float * 1.4 - 30, 0, 255).astype(np.uint8),  # high contrast
        np.clip(as_float + rng.normal(0, 12, chip.shape), 0, 255).astype(np.uint8),
        cv2.GaussianBlur(chip, (7, 7), 2.0),  # out of focus
        cv2.warpAffine(chip, rotation, (150, 150), borderMode=cv2.BORDER_REFLECT),
        cv2.resize(cv2.resize(chip, (30, 30)), (150, 150)),  # low resolution (CCTV)
        np.repeat(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2),
        cv2.imdecode(  # heavy JPEG compression
            cv2.imencode(".jpg", chip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 8])[1], 1
        )[..., ::-1],
    ]


def _synthetic(rng: np.random.Generator) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, 150, dtype=np.float32)
    return [
        rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),  # uniform noise
        np.zeros((150, 150, 3), np.uint8),
        np.full((150, 150, 3), 255, np.uint8),
        np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), -1).astype(
            np.uint8
        ),
        (rng.random((15, 15, 3)) * 255).astype(np.uint8).repeat(10, 0).repeat(10, 1),
    ]


def _assert_matches(model, descriptors, chips: list[np.ndarray]) -> float:
    ours = model.embed_chips(np.stack(chips))
    reference = descriptors(chips)
    assert ours.shape == reference.shape == (len(chips), 128)
    worst = float(np.abs(ours - reference).max())
    assert worst <= TOLERANCE, f"max |diff| {worst:.2e} > {TOLERANCE}"
    return worst


@pytest.mark.slow
@pytest.mark.dlib
def test_real_photos_match_dlib(dlib_model, dlib_reference, photos):
    chip_of, descriptors = dlib_reference
    chips = [chip_of(rgb) for rgb in photos.values()]
    _assert_matches(dlib_model, descriptors, chips)


@pytest.mark.slow
@pytest.mark.dlib
def test_augmented_photos_match_dlib(dlib_model, dlib_reference, photos):
    chip_of, descriptors = dlib_reference
    rng = np.random.default_rng(7)
    chips = [aug for rgb in photos.values() for aug in _augment(chip_of(rgb), rng)]
    _assert_matches(dlib_model, descriptors, chips)


@pytest.mark.slow
@pytest.mark.dlib
def test_synthetic_images_match_dlib(dlib_model, dlib_reference):
    _, descriptors = dlib_reference
    _assert_matches(dlib_model, descriptors, _synthetic(np.random.default_rng(3)))


@pytest.mark.slow
@pytest.mark.dlib
def test_identity_separation_like_dlib(dlib_model, dlib_reference, photos):
    """Two different people are far apart; a person and their augmented self close."""
    chip_of, _ = dlib_reference
    astronaut, hopper = (chip_of(rgb) for rgb in photos.values())
    emb = dlib_model.embed_chips(np.stack([astronaut, hopper, astronaut[:, ::-1]]))
    assert np.linalg.norm(emb[0] - emb[1]) > 0.6
    assert np.linalg.norm(emb[0] - emb[2]) < 0.6


def test_embedding_is_differentiable(dlib_model, photos):
    chip = np.zeros((150, 150, 3), np.uint8) + 128
    batch = dlib_model.prepare(chip[None]).requires_grad_()
    dlib_model.embed(batch).pow(2).sum().backward()
    assert batch.grad is not None and float(batch.grad.abs().sum()) > 0


def test_layer_taps_capture_every_depth(dlib_model):
    taps = dlib_model.layer_taps()
    names = [tap.name for tap in taps]
    assert names[0] == "stem" and names[-1] == "embedding"
    assert len(names) == 1 + 14 + 1  # stem, 14 residual blocks, embedding
    batch = dlib_model.prepare(
        np.full((2, 150, 150, 3), 100, np.uint8)
    ).requires_grad_()
    with dlib_model.capture(names) as activations:
        embedding = dlib_model.embed(batch)
    shapes = {name: tuple(activations[name].shape) for name in names}
    assert shapes["stem"] == (2, 32, 35, 35)
    assert shapes["stage2.block0"] == (2, 64, 17, 17)
    assert shapes["stage3.block0"] == (2, 128, 8, 8)
    assert shapes["stage4.block0"] == (2, 256, 4, 4)  # zero-padded add: 3x3 + 4x4
    assert shapes["stage5.block0"] == (2, 256, 2, 2)
    assert torch.equal(activations["embedding"], embedding)
    # activations stay in the graph: a layer-wise gradient is possible
    grad = torch.autograd.grad(activations["stage3.block0"].sum(), batch)[0]
    assert float(grad.abs().sum()) > 0
    # hooks are removed on exit
    with dlib_model.capture([]) as nothing:
        dlib_model.embed(batch)
    assert nothing == {}


def test_unknown_tap_is_a_clear_error(dlib_model):
    with (
        pytest.raises(BadInputError, match="no layer tap 'conv99'"),
        dlib_model.capture(["conv99"]),
    ):
        pass


def test_add_zero_padded_matches_dlib_semantics():
    """dlib's tt::add: output has the max size per dimension; missing cells are 0."""
    big = torch.arange(1 * 2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    small = torch.ones(1, 3, 3, 3)
    out = add_zero_padded(big, small)
    assert out.shape == (1, 3, 4, 4)
    assert torch.equal(out[0, :2, :3, :3], big[0, :, :3, :3] + 1)
    assert torch.equal(out[0, :2, 3, :], big[0, :, 3, :])  # row only in `big`
    assert torch.equal(out[0, 2, :3, :3], torch.ones(3, 3))  # channel only in `small`
    assert float(out[0, 2, 3, 3]) == 0.0


def test_model_identity_and_registry(dlib_model):
    assert dlib_model.model_id == DEFAULT_MODEL_ID in registry().ids()
    assert dlib_model.weights_sha256 == sha256_file(dlib_model_file(RESNET_FILE))
    assert dlib_model.embedding_dim == 128
    assert dlib_model.input_size == (150, 150)
    assert (
        dlib_model.threshold.metric == "euclidean" and dlib_model.threshold.value == 0.6
    )
    assert registry().load(DEFAULT_MODEL_ID, "cpu") is dlib_model  # cached per device
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        registry().load("nope")


def test_registry_rejects_duplicate_ids():
    fresh = ModelRegistry()
    register_builtins(fresh)
    with pytest.raises(ValueError, match="registered twice"):
        register_builtins(fresh)


@pytest.mark.dlib
@pytest.mark.parametrize(
    "damage",
    ["truncated", "random", "empty", "other_dlib_file", "trailing_bytes"],
)
def test_damaged_model_files_are_named_in_the_error(tmp_path, damage):
    original = dlib_model_file(RESNET_FILE).read_bytes()
    rng = np.random.default_rng(0)
    content = {
        "truncated": original[: len(original) // 3],
        "random": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "empty": b"",
        "other_dlib_file": dlib_model_file(SHAPE_5_FILE).read_bytes()[:200_000],
        "trailing_bytes": original + b"\x00\x01",
    }[damage]
    bad = tmp_path / f"broken_{damage}.dat"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError) as caught:
        build_dlib_resnet(bad)
    assert bad.name in str(caught.value)
