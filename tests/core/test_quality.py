"""Face image quality measures (core.quality, issue 20 item 3) on controlled
degradations of the astronaut and Grace Hopper: each figure moves the right way,
monotonically, and bad input is one clear line.

Fast tests use the faces' landmarks as dlib found them once (hard-coded below) and
transform them with the image; the slow test lets dlib find them again."""

from __future__ import annotations

import io
import itertools

import cv2
import numpy as np
import pytest
from PIL import Image

from core.errors import BadInputError
from core.quality import (
    THRESHOLDS,
    FaceInput,
    all_measures,
    assess,
    describe,
    get,
    register,
)
from core.quality.base import ComputedMeasure
from core.quality.geometry import FACE_TEMPLATE_MM, FIVE_AS_68, head_pose
from core.quality.pixels import estimated_jpeg_quality, ijg_table, read_jpeg_tables

# dlib's 5 points (HOG detector, shape_predictor_5) on each image, rounded.
ASTRONAUT_5 = np.array(
    [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
)
ASTRONAUT_BOX = (175.0, 76.0, 266.0, 167.0)
GRACE_5 = np.array(
    [[322.0, 187.0], [291.0, 190.0], [206.0, 197.0], [238.0, 194.0], [272.0, 252.0]]
)
GRACE_BOX = (180.0, 139.0, 367.0, 326.0)
AREA = cv2.INTER_AREA


@pytest.fixture(scope="module")
def grace_rgb(grace_hopper_path) -> np.ndarray:
    return np.asarray(Image.open(grace_hopper_path).convert("RGB"))


@pytest.fixture(params=["astronaut", "grace"])
def portrait(request, astronaut_rgb, grace_rgb):
    """(rgb, five landmarks, box) of each test portrait."""
    if request.param == "astronaut":
        return astronaut_rgb, ASTRONAUT_5, ASTRONAUT_BOX
    return grace_rgb, GRACE_5, GRACE_BOX


def measured(rgb, points, box=(0.0, 0.0, 1.0, 1.0), **extra):
    return assess(FaceInput(np.ascontiguousarray(rgb), box, points, **extra))


def jpeg(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, dict]:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB")), dict(image.quantization)


# ---- the degradations -------------------------------------------------------------
def test_downscaling_lowers_the_inter_eye_distance_in_proportion(portrait):
    rgb, points, box = portrait
    full = measured(rgb, points, box).value("inter_eye_distance")
    for factor in (0.75, 0.5, 0.25):
        small = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=AREA)
        # pixel centres: x_small + 0.5 = (x + 0.5) * factor
        moved = (points + 0.5) * factor - 0.5
        ied = measured(small, moved).value("inter_eye_distance")
        assert ied == pytest.approx(full * factor, rel=1e-6)


def test_a_tiny_face_is_poor_and_says_why(astronaut_rgb):
    factor = 18.0 / 43.07
    small = cv2.resize(astronaut_rgb, None, fx=factor, fy=factor)
    quality = measured(small, (ASTRONAUT_5 + 0.5) * factor - 0.5)
    assert quality.summary.rating == "poor"
    assert "inter-eye distance 18 px (below 30 px)" in quality.summary.reasons


def test_blur_lowers_sharpness_monotonically(portrait):
    rgb, points, box = portrait
    values = [measured(rgb, points, box).value("sharpness")]
    for sigma in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
        blurred = cv2.GaussianBlur(rgb, (0, 0), sigma)
        values.append(measured(blurred, points, box).value("sharpness"))
    assert all(b < a for a, b in itertools.pairwise(values)), values
    assert values[-1] < 0.2 * values[0]


def test_darkening_lowers_exposure_but_not_normalised_sharpness(portrait):
    rgb, points, box = portrait
    base = measured(rgb, points, box)
    previous = base.value("exposure")
    for factor in (0.7, 0.5, 0.3):
        dark = measured((rgb * factor).round().astype(np.uint8), points, box)
        assert dark.value("exposure") < previous
        previous = dark.value("exposure")
        # within 10 %: only the 8-bit rounding of the darker pixels differs
        assert dark.value("sharpness") == pytest.approx(
            base.value("sharpness"), rel=0.10
        )
    assert dark.value("contrast") < base.value("contrast")
    darkest = measured((rgb * 0.1).round().astype(np.uint8), points, box)
    assert darkest.summary.rating == "poor"
    assert any(r.startswith("mean luminance") for r in darkest.summary.reasons)


@pytest.mark.parametrize("degrees", [-30.0, -12.0, 7.0, 25.0])
def test_rotation_gives_roll(portrait, degrees):
    rgb, points, box = portrait
    height, width = rgb.shape[:2]
    centre = tuple(points[:4].mean(axis=0))
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)  # > 0: anticlockwise
    turned = cv2.warpAffine(rgb, matrix, (width, height), borderValue=(128,) * 3)
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    base = measured(rgb, points, box)
    after = measured(turned, moved, box)
    eye_line = after.value("eye_line_roll") - base.value("eye_line_roll")
    assert eye_line == pytest.approx(degrees, abs=0.5)
    pose = after.value("roll") - base.value("roll")
    assert pose == pytest.approx(degrees, abs=2.0)


def test_cropping_the_face_raises_truncation_monotonically(portrait):
    rgb, points, box = portrait
    values = [measured(rgb, points, box).value("truncation")]
    assert values[0] == 0.0
    right_eye_x = int(points[0, 0])
    ied = measured(rgb, points, box).value("inter_eye_distance")
    for share in (0.25, 0.0, -0.25, -0.5):  # crop the image's right side ever closer
        cropped = rgb[:, : right_eye_x + int(share * ied)]
        values.append(measured(cropped, points, box).value("truncation"))
    assert all(b > a for a, b in itertools.pairwise(values)), values
    # cut past the right eye: over a fifth of the face is outside, "poor"
    assert values[-2] > 0.2
    quality = measured(rgb[:, : right_eye_x - int(0.25 * ied)], points, box)
    assert quality.summary.rating == "poor"
    assert any(r.startswith("face outside the image") for r in quality.summary.reasons)


def test_jpeg_recompression_raises_blockiness_and_lowers_the_quality(portrait):
    rgb, points, box = portrait
    blockiness, estimated = [], []
    for quality in (90, 60, 40, 20):
        pixels, tables = jpeg(rgb, quality)
        result = measured(pixels, points, box, jpeg_tables=tables)
        blockiness.append(result.value("blockiness"))
        estimated.append(result.value("jpeg_quality"))
        # Pillow writes libjpeg's tables: the estimate is the setting itself
        assert result.value("jpeg_quality") == pytest.approx(quality, abs=1)
    assert all(b > a for a, b in itertools.pairwise(blockiness))
    assert all(b < a for a, b in itertools.pairwise(estimated))
    pixels, tables = jpeg(rgb, 20)
    last = measured(pixels, points, box, jpeg_tables=tables)
    assert last.summary.rating == "poor"
    assert "estimated JPEG quality 20 (below 25)" in last.summary.reasons


def test_the_jpeg_estimate_reads_any_table_order_and_rejects_odd_tables():
    for quality in (5, 33, 50, 75, 98):
        natural = ijg_table(quality).astype(int).tolist()
        assert estimated_jpeg_quality({0: natural}) == quality
        assert estimated_jpeg_quality({0: natural[::-1]}) == quality
    assert estimated_jpeg_quality({1: [1] * 64}) is None
    assert estimated_jpeg_quality({0: [1] * 10}) is None


def test_jpeg_tables_are_read_from_jpeg_files_only(tmp_path, astronaut_rgb):
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    Image.fromarray(astronaut_rgb).save(png)
    Image.fromarray(astronaut_rgb).save(jpg, quality=70)
    assert read_jpeg_tables(png) is None
    tables = read_jpeg_tables(jpg)
    assert tables is not None and estimated_jpeg_quality(tables) == 70
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert read_jpeg_tables(tmp_path / "broken.jpg") is None


def test_turned_pixels_have_no_block_grid(astronaut_rgb):
    quality = measured(astronaut_rgb, ASTRONAUT_5, blocks_aligned=False)
    assert quality.value("blockiness") is None
    note = next(v.note for v in quality.values if v.measure == "blockiness")
    assert "EXIF orientation turned" in note


# ---- head pose against the template itself -----------------------------------------
def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model -> camera rotation for the module's sign conventions."""
    t, p, r = (-np.radians(a) for a in (yaw, pitch, roll))
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _projected(yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """(68 landmarks, 5 landmarks) of the template seen by the module's camera."""
    size = 640
    points = np.array(list(FACE_TEMPLATE_MM.values()))
    camera_points = points @ _rotation(yaw, pitch, roll).T + [0.0, 0.0, 600.0]
    image = camera_points[:, :2] / camera_points[:, 2:] * size + size / 2
    by_index = dict(zip(FACE_TEMPLATE_MM, image, strict=True))
    landmarks68 = np.zeros((68, 2))
    for index, point in by_index.items():
        landmarks68[index] = point
    return landmarks68, np.array([by_index[i] for i in FIVE_AS_68])


@pytest.mark.parametrize(
    "angles", [(0, 0, 0), (30, 0, 0), (-25, 10, 0), (0, -15, 0), (15, 10, -20)]
)
def test_head_pose_recovers_known_angles(angles):
    landmarks68, landmarks5 = _projected(*angles)
    rgb = np.zeros((640, 640, 3), np.uint8)
    with_68 = FaceInput(rgb, (0, 0, 1, 1), landmarks5, landmarks68)
    found, note = head_pose(with_68)
    assert found == pytest.approx(angles, abs=1.0) and "68" in note
    found5, note5 = head_pose(FaceInput(rgb, (0, 0, 1, 1), landmarks5))
    assert found5 == pytest.approx(angles, abs=3.0) and "5 landmarks" in note5


def test_a_turned_head_is_limited_and_says_yaw():
    landmarks68, landmarks5 = _projected(35, 0, 0)
    rgb = np.full((640, 640, 3), 128, np.uint8)
    quality = assess(FaceInput(rgb, (0, 0, 1, 1), landmarks5, landmarks68))
    assert any(r.startswith("yaw 35° (beyond ±20°)") for r in quality.summary.reasons)


# ---- the model's utility proxy ---------------------------------------------------
def test_embedding_norm_only_when_the_model_gives_an_unnormalised_one(astronaut_rgb):
    def norm_of(embedding):
        quality = measured(astronaut_rgb, ASTRONAUT_5, embedding=embedding)
        value = next(v for v in quality.values if v.measure == "embedding_norm")
        return value.value, value.note

    assert norm_of(None) == (
        None,
        "no face model was given (xfr case quality --model measures it)",
    )
    value, note = norm_of(np.array([0.6, 0.8]))
    assert value is None and "normalises" in note
    value, _ = norm_of(np.array([3.0, 4.0]))
    assert value == pytest.approx(5.0)


# ---- bad input: one line, naming the face ------------------------------------------
@pytest.mark.parametrize(
    ("rgb", "points", "expected"),
    [
        (np.zeros((100, 100, 3), np.uint8), None, "has no landmarks"),
        (np.zeros((100, 100, 3), np.uint8), np.zeros((0, 2)), "has no landmarks"),
        (np.zeros((1, 1, 3), np.uint8), ASTRONAUT_5, "1x1 pixels, too small"),
        (np.zeros((100, 100), np.uint8), ASTRONAUT_5, "not an RGB image"),
        (
            np.zeros((100, 100, 3), np.uint8),
            np.where(np.eye(5, 2, dtype=bool), np.nan, ASTRONAUT_5),
            "not a number (NaN",
        ),
        (np.zeros((100, 100, 3), np.uint8), np.ones((4, 2)), "got an array of shape"),
        (np.zeros((100, 100, 3), np.uint8), np.ones((5, 2)), "coincide"),
    ],
)
def test_bad_input_is_one_line_naming_the_face(rgb, points, expected):
    face = FaceInput(rgb, (0, 0, 1, 1), points, name="face Q1 (cctv.jpg)")
    with pytest.raises(BadInputError) as raised:
        assess(face)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("face Q1 (cctv.jpg): ")
    assert expected in message


def test_bad_68_landmarks_are_one_line(astronaut_rgb):
    face = FaceInput(
        astronaut_rgb, ASTRONAUT_BOX, ASTRONAUT_5, np.full((68, 2), np.nan)
    )
    with pytest.raises(BadInputError, match="68 landmarks are not 68 finite"):
        assess(face)


def test_a_face_wholly_outside_the_image_has_no_pixel_figures(astronaut_rgb):
    quality = measured(astronaut_rgb, ASTRONAUT_5 + 2000.0)
    assert quality.value("truncation") == 1.0
    for measure in ("sharpness", "exposure", "contrast", "clipped", "blockiness"):
        assert quality.value(measure) is None
    assert quality.summary.rating == "poor"


# ---- the registry and the summary --------------------------------------------------
def test_every_measure_is_described_and_registered_once():
    ids = [m.id for m in all_measures()]
    assert len(ids) == len(set(ids)) >= 12
    for measure in all_measures():
        described = describe(measure)
        assert described["definition"] and described["unit"] and described["name"]
        assert described["better"] in ("higher", "lower", "nearer zero", "neither")
        assert get(measure.id) is measure
    with pytest.raises(BadInputError, match="unknown quality measure 'glare'"):
        get("glare")
    with pytest.raises(ValueError, match="registered twice"):
        register(all_measures()[0])
    assert {t.measure for t in THRESHOLDS} <= set(ids)
    assert all(t.source for t in THRESHOLDS)


def test_a_good_face_and_the_dict(grace_rgb):
    quality = assess(FaceInput(grace_rgb, GRACE_BOX, GRACE_5), label="K1")
    assert quality.summary.rating == "good" and quality.summary.words == "good"
    as_dict = quality.to_dict()
    assert as_dict["label"] == "K1" and as_dict["rating"] == "good"
    assert as_dict["reasons"] == []
    assert as_dict["measures"]["inter_eye_distance"]["unit"] == "px"
    assert as_dict["measures"]["jpeg_quality"]["value"] is None


def test_a_measure_that_gives_nan_is_not_available(astronaut_rgb):
    broken = ComputedMeasure(
        "nan",
        "nan",
        "always NaN",
        "px",
        "higher",
        lambda f: (
            float("nan"),
            "",
        ),
    )
    face = FaceInput(astronaut_rgb, ASTRONAUT_BOX, ASTRONAUT_5)
    quality = assess(face, measures=[broken])
    assert quality.value("nan") is None
    assert quality.summary.rating == "good"


@pytest.mark.slow
@pytest.mark.dlib
def test_dlib_landmarks_give_proportional_inter_eye_distances(grace_hopper_path):
    """End to end with detection: the IED of re-detected faces of a downscaled
    image falls with the scale (within dlib's landmark precision)."""
    from core.faces.detect import find_faces
    from core.imageio import load_image

    image = load_image(grace_hopper_path)
    full = find_faces(image, with_68=True)[0]
    base = assess(FaceInput(image.rgb, full.bbox, full.landmarks5, full.landmarks68))
    for factor in (0.6, 0.4):
        small = cv2.resize(image.rgb, None, fx=factor, fy=factor, interpolation=AREA)
        loaded = type(image)(
            image.path, image.sha256, small, "PNG", "RGB", small.shape[1::-1], 1
        )
        face = find_faces(loaded, with_68=True)[0]
        quality = assess(FaceInput(small, face.bbox, face.landmarks5, face.landmarks68))
        assert quality.value("inter_eye_distance") == pytest.approx(
            base.value("inter_eye_distance") * factor, rel=0.1
        )
        assert quality.value("yaw") == pytest.approx(base.value("yaw"), abs=5.0)


def test_a_reason_never_prints_a_figure_as_its_bound():
    """Rounding must not make "sharpness 0.01 (below 0.01)" of 0.005 < 0.006."""
    from core.quality.base import QualityValue
    from core.quality.summary import THRESHOLDS

    units = {"sharpness": "ratio", "inter_eye_distance": "px"}
    for threshold in THRESHOLDS:
        if threshold.measure not in units:
            continue
        for value in (0.0049, 0.005, 0.0059, 0.019, 29.6, 29.96, 59.7):
            rating = threshold.level(value)
            if rating == "good":
                continue
            text = threshold.reason(
                QualityValue(threshold.measure, "x", value, units[threshold.measure]),
                rating,
            )
            shown, bound = text.split(" (")
            assert shown.removeprefix("x ") != bound.split(" ", 1)[1].rstrip(")"), text
