"""Image loading, face detection, landmarks and alignment (dlib is the reference)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.errors import BadInputError, NoFaceError
from core.faces.align import (
    arcface_chip_transform,
    arcface_points,
    dlib_chip_transform,
    extract_dlib_chip,
)
from core.faces.detect import (
    FaceDetector,
    face_from_landmarks,
    find_faces,
    select_face,
)
from core.imageio import load_image
from core.resources import SHAPE_5_FILE, SHAPE_68_FILE, dlib_model_file

dlib = pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def hopper_rgb(grace_hopper_path) -> np.ndarray:
    return np.asarray(Image.open(grace_hopper_path).convert("RGB"))


@pytest.fixture(scope="module")
def predictors():
    return (
        dlib.shape_predictor(str(dlib_model_file(SHAPE_5_FILE))),
        dlib.shape_predictor(str(dlib_model_file(SHAPE_68_FILE))),
    )


def _variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    height, width = rgb.shape[:2]
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), 17, 0.9)
    return {
        "original": rgb,
        "mirrored": np.ascontiguousarray(rgb[:, ::-1]),
        "rotated": cv2.warpAffine(rgb, rotation, (width, height)),
        "upscaled_5x": cv2.resize(rgb, (width * 5, height * 5)),  # dlib's pyramid path
        "downscaled": cv2.resize(rgb, (width * 2 // 3, height * 2 // 3)),
    }


@pytest.mark.slow
@pytest.mark.dlib
@pytest.mark.parametrize("photo", ["astronaut", "hopper"])
def test_chip_equals_dlib_get_face_chip(
    photo, astronaut_rgb, hopper_rgb, detector, predictors
):
    rgb = {"astronaut": astronaut_rgb, "hopper": hopper_rgb}[photo]
    for name, image in _variants(rgb).items():
        face = detector.detect(image, with_68=True)[0]
        left, top, right, bottom = (round(v) for v in face.bbox)
        rect = dlib.rectangle(left, top, right - 1, bottom - 1)
        for points, predictor in zip(
            (face.landmarks5, face.landmarks68), predictors, strict=True
        ):
            shape = predictor(np.ascontiguousarray(image), rect)
            ours_points = np.array([[p.x, p.y] for p in shape.parts()], float)
            assert np.array_equal(ours_points, points), name  # same landmarks
            reference = np.asarray(dlib.get_face_chip(image, shape, 150, 0.25))
            ours = extract_dlib_chip(image, points).chip
            mean_diff = np.abs(ours.astype(float) - reference).mean()
            assert mean_diff <= 1.0, f"{photo}/{name}: mean |diff| {mean_diff:.3f}"


@pytest.mark.slow
@pytest.mark.dlib
def test_transform_round_trip_and_map_warp(astronaut_rgb, detector):
    face = detector.detect(astronaut_rgb)[0]
    transform = dlib_chip_transform(face.landmarks5)
    points = np.array([[0, 0], [149, 0], [75.5, 80.25], [10, 140]])
    assert np.allclose(transform.to_chip(transform.to_image(points)), points)
    # A map that is 1 on the chip comes back as 1 inside the face region, NaN far away.
    warped = transform.warp_to_image(np.ones((150, 150)), astronaut_rgb.shape)
    assert warped.shape == astronaut_rgb.shape[:2]
    centre = transform.to_image(np.array([[75, 75]]))[0].round().astype(int)
    assert warped[centre[1], centre[0]] == pytest.approx(1.0)
    assert np.isnan(warped[-1, -1])
    # The chip pixel at a landmark's chip position shows what the image has there.
    chip = extract_dlib_chip(astronaut_rgb, face.landmarks5).chip
    nose_chip = transform.to_chip(face.landmarks5[4:5])[0].round().astype(int)
    nose_image = face.landmarks5[4].round().astype(int)
    assert (
        np.abs(
            chip[nose_chip[1], nose_chip[0]].astype(int)
            - astronaut_rgb[nose_image[1], nose_image[0]].astype(int)
        ).max()
        <= 40
    )


@pytest.mark.slow
@pytest.mark.dlib
def test_manual_landmarks_give_the_same_chip(astronaut_rgb, detector):
    face = detector.detect(astronaut_rgb)[0]
    manual = face_from_landmarks(face.landmarks5, astronaut_rgb.shape)
    assert manual.source == "manual"
    assert np.array_equal(
        extract_dlib_chip(astronaut_rgb, manual.landmarks5).chip,
        extract_dlib_chip(astronaut_rgb, face.landmarks5).chip,
    )
    # The box derived from the points covers the detected face's centre.
    cx = (face.bbox[0] + face.bbox[2]) / 2
    cy = (face.bbox[1] + face.bbox[3]) / 2
    left, top, right, bottom = manual.bbox
    assert left < cx < right and top < cy < bottom


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.zeros((4, 2)), "five"),
        (np.full((5, 2), -3.0), "outside"),
        (np.full((5, 2), 100.0), "degenerate"),
    ],
)
def test_manual_landmarks_are_validated(points, message):
    with pytest.raises(BadInputError, match=message):
        face_from_landmarks(points, (512, 512, 3))


@pytest.mark.dlib
@pytest.mark.slow
def test_several_faces_largest_first_and_selectable(
    astronaut_rgb, hopper_rgb, tmp_path
):
    canvas = np.full((700, 1100, 3), 200, np.uint8)
    small = cv2.resize(astronaut_rgb, (400, 400))
    canvas[150:550, 40:440] = small
    canvas[50:650, 540:1052] = hopper_rgb
    path = tmp_path / "two_people.png"
    Image.fromarray(canvas).save(path)
    faces = find_faces(load_image(path))
    assert len(faces) >= 2
    assert faces[0].area >= faces[1].area
    assert faces[0].bbox[0] > 540  # the larger face is Grace Hopper's (right)
    assert select_face(faces, 1).bbox[2] < 440
    with pytest.raises(BadInputError, match="face index 7 requested") as caught:
        select_face(faces, 7, path=path)
    assert path.name in str(caught.value)


@pytest.mark.dlib
@pytest.mark.slow
def test_mmod_cnn_detector_finds_the_face(astronaut_rgb, detector):
    small = cv2.resize(astronaut_rgb, (256, 256))  # CNN on CPU: keep it small
    cnn = detector.detect(small, method="cnn")
    hog = detector.detect(small, method="hog")
    assert cnn and cnn[0].source == "cnn"
    # Both detectors find the same face: their boxes overlap substantially.
    (l1, t1, r1, b1), (l2, t2, r2, b2) = cnn[0].bbox, hog[0].bbox
    overlap = max(0, min(r1, r2) - max(l1, l2)) * max(0, min(b1, b2) - max(t1, t2))
    assert overlap / min(cnn[0].area, hog[0].area) > 0.5
    with pytest.raises(BadInputError, match="unknown detector"):
        detector.detect(small, method="haar")


@pytest.mark.dlib
def test_no_face_names_the_file(tmp_path):
    path = tmp_path / "wall.png"
    noise = np.random.default_rng(0).integers(90, 110, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    with pytest.raises(NoFaceError) as caught:
        find_faces(load_image(path))
    assert "wall.png" in str(caught.value) and "no face" in str(caught.value)


@pytest.mark.dlib
@pytest.mark.slow
def test_large_image_detects_on_a_copy_landmarks_at_full_resolution(
    hopper_rgb, detector
):
    small = detector.detect(hopper_rgb)[0]
    factor = 7  # 3584 x 4200, above the 1600 px detection size
    big_rgb = cv2.resize(
        hopper_rgb, (hopper_rgb.shape[1] * factor, hopper_rgb.shape[0] * factor)
    )
    big = detector.detect(big_rgb)[0]
    assert np.abs(big.landmarks5 / factor - small.landmarks5).max() < 4.0
    assert abs(big.bbox[0] / factor - small.bbox[0]) < 10


@pytest.mark.slow
@pytest.mark.dlib
def test_arcface_alignment_puts_eyes_on_the_template(hopper_rgb, detector):
    face = detector.detect(hopper_rgb, with_68=True)[0]
    transform = arcface_chip_transform(arcface_points(face))
    eyes_in_chip = transform.to_chip(arcface_points(face)[:2])
    assert np.abs(eyes_in_chip - [[38.29, 51.70], [73.53, 51.50]]).max() < 4.0


# ---- image loading ------------------------------------------------------------------
@pytest.mark.dlib
def test_exif_orientation_is_applied_and_file_untouched(tmp_path, hopper_rgb, detector):
    path = tmp_path / "rotated_by_camera.jpg"
    # The camera stored the picture on its side (turned clockwise).
    stored = np.ascontiguousarray(np.rot90(hopper_rgb, k=-1))
    exif = Image.Exif()
    exif[0x0112] = 8  # EXIF: turn 90° counter-clockwise to display
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    image = load_image(path)
    assert image.exif_orientation == 8
    assert image.rgb.shape == hopper_rgb.shape  # upright again
    assert np.abs(image.rgb.astype(float) - hopper_rgb).mean() < 5
    assert image.sha256 == before == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(find_faces(image)) >= 1


def _png_with_header_size(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims a huge size (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "case",
    ["missing", "folder", "empty", "text", "truncated_jpeg", "truncated_png", "bomb"],
)
def test_bad_files_are_named_with_the_problem(tmp_path, grace_hopper_path, case):
    data = grace_hopper_path.read_bytes()
    path = tmp_path / f"{case}.jpg"
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("Exhibit list: Q1, K1")
    elif case == "truncated_jpeg":
        path.write_bytes(data[: len(data) // 2])
    elif case == "truncated_png":
        path = tmp_path / "truncated_png.png"
        Image.open(grace_hopper_path).save(path)
        path.write_bytes(path.read_bytes()[:-5000])
    elif case == "bomb":
        path = tmp_path / "bomb.png"
        _png_with_header_size(path, 20_000, 20_000)
    with pytest.raises(BadInputError) as caught:
        load_image(path)
    message = str(caught.value)
    assert path.name in message
    expected = {
        "missing": "not found",
        "folder": "not a file",
        "empty": "empty",
        "text": "not an image",
        "truncated_jpeg": "truncated",
        "truncated_png": "truncated",
        "bomb": "megapixels",
    }[case]
    assert expected in message


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16", "1"])
def test_odd_modes_load_as_rgb8(tmp_path, hopper_rgb, mode):
    image = Image.fromarray(hopper_rgb)
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), np.uint16) * 257
        converted = Image.fromarray(grey)  # uint16 -> mode "I;16"
        path = tmp_path / "deep.tif"
    else:
        converted = image.convert(mode)
        path = tmp_path / f"img_{mode}.{'tif' if mode == 'CMYK' else 'png'}"
    converted.save(path)
    loaded = load_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == hopper_rgb.shape
    assert loaded.mode == converted.mode
    if mode == "I;16":  # 16-bit grey keeps its full range when scaled to 8 bits
        assert loaded.rgb.max() > 200
