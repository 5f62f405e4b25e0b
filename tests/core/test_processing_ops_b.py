"""Processing operations B: bilateral, non-local means, deinterlace, Wiener and
Richardson-Lucy deconvolution, frame averaging (``core/processing/operations``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from core.errors import BadInputError
from core.processing.base import (
    FrameSet,
    ProcessingError,
    check_chain,
    get,
    make_step,
    pixels_sha256,
    run_chain,
)
from core.processing.psf import (
    box_psf,
    convolve_circular,
    gaussian_psf,
    motion_psf,
    otf,
)

OPS_B = ("bilateral", "nl_means", "deinterlace", "wiener", "richardson_lucy")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return np.ascontiguousarray(astronaut()[:256:2, 64:320:2])  # 128x128 RGB


def _run(rgb: np.ndarray, op_id: str, **params) -> np.ndarray:
    out, _ = run_chain(rgb, [make_step(op_id, params)])
    return out


@pytest.fixture
def threads():
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


# ---- the registry ---------------------------------------------------------------
def test_registered_with_category_and_version() -> None:
    expected = {
        "bilateral": "noise",
        "nl_means": "noise",
        "deinterlace": "video",
        "wiener": "restoration",
        "richardson_lucy": "restoration",
        "frame_average": "video",
    }
    for op_id, category in expected.items():
        info = get(op_id).info
        assert info.category == category
        assert info.version == 1
        assert info.description.endswith(".") and info.implementation
        assert info.needs_frames == (op_id == "frame_average")


# ---- determinism ----------------------------------------------------------------
@pytest.mark.parametrize("op_id", OPS_B)
def test_two_runs_give_the_same_bytes(face: np.ndarray, op_id: str) -> None:
    first = pixels_sha256(_run(face, op_id))
    assert pixels_sha256(_run(face.copy(), op_id)) == first


@pytest.mark.parametrize("op_id", ("bilateral", "nl_means"))
def test_opencv_threads_do_not_change_the_bytes(
    face: np.ndarray, op_id: str, threads
) -> None:
    results = set()
    for count in (1, 2, 4):
        cv2.setNumThreads(count)
        results.add(pixels_sha256(_run(face, op_id)))
    assert len(results) == 1


# ---- parameter errors -------------------------------------------------------------
@pytest.mark.parametrize(
    ("op_id", "params", "named"),
    [
        ("bilateral", {"diameter": 40}, "diameter"),
        ("bilateral", {"diameter": 1}, "diameter"),
        ("bilateral", {"sigma_colour": 0}, "sigma_colour"),
        ("nl_means", {"strength": 60}, "strength"),
        ("nl_means", {"template": 1}, "template"),
        ("deinterlace", {"field": "middle"}, "field"),
        ("deinterlace", {"method": "blend"}, "method"),
        ("wiener", {"nsr": 0}, "nsr"),
        ("wiener", {"kernel": "disc"}, "kernel"),
        ("wiener", {"length": 0.5}, "length"),
        ("richardson_lucy", {"iterations": 0}, "iterations"),
        ("richardson_lucy", {"iterations": 201}, "iterations"),
        ("frame_average", {"before": 16}, "before"),
        ("frame_average", {"registration": "affine"}, "registration"),
    ],
)
def test_bad_parameter_names_it(op_id: str, params: dict, named: str) -> None:
    with pytest.raises(BadInputError) as error:
        make_step(op_id, params)
    message = str(error.value)
    assert f"parameter {named}" in message and op_id in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("op_id", "params", "words"),
    [
        ("bilateral", {"diameter": 31}, "diameter 31 is larger than the 20x20"),
        ("bilateral", {"diameter": 8}, "diameter must be odd"),
        ("nl_means", {"template": 8}, "template must be odd"),
        ("nl_means", {"search": 20}, "search must be odd"),
        ("nl_means", {"template": 9, "search": 7}, "search (7) must be at least"),
        ("nl_means", {"search": 21}, "search 21 is larger than the 20x20"),
        ("wiener", {"kernel": "box", "size": 4}, "size must be odd"),
        ("wiener", {"length": 30}, "larger than the 20x20 image"),
        ("richardson_lucy", {"kernel": "gaussian", "sigma": 5}, "31x31 pixels"),
        ("frame_average", {"before": 0, "after": 0}, "before and after are both 0"),
        ("frame_average", {"region": "0,0,8,8"}, "too small"),
        ("frame_average", {"region": "10,0,16,16"}, "outside the 20x20 frame"),
    ],
)
def test_parameters_that_do_not_fit_the_image(
    op_id: str, params: dict, words: str
) -> None:
    small = np.zeros((20, 20, 3), np.uint8)
    reader = _reader({1: small}, small)
    with pytest.raises(ProcessingError) as error:
        run_chain(small, [make_step(op_id, params)], read_frames=reader)
    message = str(error.value)
    assert words in message and f"step 1 ({op_id})" in message
    assert "\n" not in message


def test_bottom_field_of_a_one_line_image_is_refused() -> None:
    with pytest.raises(ProcessingError, match="no bottom field"):
        _run(np.zeros((1, 5, 3), np.uint8), "deinterlace", field="bottom")


# ---- deinterlace, by hand ---------------------------------------------------------
def _lines(*values: int) -> np.ndarray:
    """An image of 2 columns whose line i is values[i] in all channels."""
    return np.repeat(np.array(values, np.uint8)[:, None, None], 2, 1).repeat(3, 2)


def _values(rgb: np.ndarray) -> list[int]:
    assert (rgb == rgb[:, :1, :1]).all()
    return [int(v) for v in rgb[:, 0, 0]]


def test_deinterlace_line_doubling_by_hand() -> None:
    image = _lines(10, 20, 30, 40)
    assert _values(_run(image, "deinterlace")) == [10, 10, 30, 30]
    assert _values(_run(image, "deinterlace", field="bottom")) == [20, 20, 40, 40]
    odd = _lines(10, 20, 30, 40, 50)
    assert _values(_run(odd, "deinterlace")) == [10, 10, 30, 30, 50]
    assert _values(_run(odd, "deinterlace", field="bottom")) == [20, 20, 40, 40, 40]


def test_deinterlace_linear_by_hand_rounds_half_to_even() -> None:
    # top field keeps 1, 4, 2 (lines 0, 2, 4): line 1 = (1 + 4) / 2 = 2.5 -> 2,
    # line 3 = (4 + 2) / 2 = 3, line 5 (last) repeats line 4
    image = _lines(1, 99, 4, 99, 2, 99)
    assert _values(_run(image, "deinterlace", method="linear")) == [1, 2, 4, 3, 2, 2]
    # bottom field keeps 3, 6, 255 (lines 1, 3, 5): line 0 repeats line 1,
    # line 2 = 4.5 -> 4, line 4 = 130.5 -> 130
    image = _lines(0, 3, 0, 6, 0, 255)
    assert _values(_run(image, "deinterlace", field="bottom", method="linear")) == [
        3,
        3,
        4,
        6,
        130,
        255,
    ]


def test_deinterlace_keeps_the_field_and_the_size(face: np.ndarray) -> None:
    for field, first in (("top", 0), ("bottom", 1)):
        for method in ("line_doubling", "linear"):
            out = _run(face, "deinterlace", field=field, method=method)
            assert out.shape == face.shape
            assert np.array_equal(out[first::2], face[first::2])


# ---- kernels ---------------------------------------------------------------------
def test_kernels_sum_to_one_and_are_centred() -> None:
    for kernel in (
        motion_psf(1.0, 0.0),
        motion_psf(7.5, 30.0),
        motion_psf(12.0, -100.0),
        gaussian_psf(1.2),
        box_psf(5),
    ):
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
        assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
        assert (kernel >= 0).all()
        axis = np.arange(kernel.shape[0]) - kernel.shape[0] // 2
        assert (kernel.sum(0) * axis).sum() == pytest.approx(0.0, abs=1e-9)
        assert (kernel.sum(1) * axis).sum() == pytest.approx(0.0, abs=1e-9)


def test_motion_kernel_direction_and_length() -> None:
    horizontal = motion_psf(5.0, 0.0)
    centre = horizontal.shape[0] // 2
    assert horizontal[centre].sum() == pytest.approx(1.0)  # all in the middle row
    assert np.allclose(motion_psf(5.0, 90.0), horizontal.T)
    # a uniform segment of length L has variance L^2 / 12 along it; sharing each
    # point with its two neighbouring pixels adds the mean of f(1-f), 1/6
    for length in (5.0, 6.5, 9.0):
        row = motion_psf(length, 0.0).sum(0)
        axis = np.arange(row.size) - row.size // 2
        assert (row * axis**2).sum() == pytest.approx(length**2 / 12 + 1 / 6, rel=0.02)
    # 45 degrees counter-clockwise: up and to the right (rows grow downwards)
    diagonal = motion_psf(6.0, 45.0)
    assert (
        diagonal[centre - 2, centre + 2] > 0 and diagonal[centre + 2, centre + 2] == 0
    )


# ---- deconvolution known answers ----------------------------------------------------
@pytest.fixture(scope="module")
def blurred_scene():
    """A 160x160 view of a motion-blurred astronaut: the blur was applied to the
    whole picture (circular, no noise, rounded to 8 bits), so the view's edges hold
    the true blurred surroundings."""
    scene = astronaut().astype(np.float64)
    kernel = motion_psf(7.5, 30.0)
    blurred = convolve_circular(scene, otf(kernel, scene.shape[:2]))
    view = np.s_[200:360, 170:330]
    return (
        np.clip(np.rint(blurred[view]), 0, 255).astype(np.uint8),
        scene[view],
    )


def _mse(image: np.ndarray, truth: np.ndarray, margin: int = 0) -> float:
    inner = np.s_[margin : truth.shape[0] - margin, margin : truth.shape[1] - margin]
    return float(np.mean((image.astype(np.float64)[inner] - truth[inner]) ** 2))


@pytest.mark.parametrize(
    ("op_id", "extra", "limit"),
    [
        ("wiener", {}, 0.3),
        ("richardson_lucy", {}, 0.35),
        ("richardson_lucy", {"iterations": 60}, 0.3),
    ],
)
def test_deconvolution_undoes_a_known_motion_blur(
    blurred_scene, op_id: str, extra: dict, limit: float
) -> None:
    blurred, truth = blurred_scene
    out = _run(blurred, op_id, kernel="motion", length=7.5, angle=30.0, **extra)
    whole = _mse(out, truth) / _mse(blurred, truth)
    inner = _mse(out, truth, 16) / _mse(blurred, truth, 16)
    assert whole < 0.5
    assert inner < limit


def test_deconvolution_with_the_wrong_direction_helps_less(blurred_scene) -> None:
    blurred, truth = blurred_scene
    right = _run(blurred, "wiener", length=7.5, angle=30.0)
    wrong = _run(blurred, "wiener", length=7.5, angle=120.0)
    assert _mse(right, truth, 16) < 0.5 * _mse(wrong, truth, 16)


@pytest.mark.parametrize("kernel", ("gaussian", "box"))
def test_deconvolution_of_gaussian_and_box_blur(face: np.ndarray, kernel: str) -> None:
    psf = gaussian_psf(1.5) if kernel == "gaussian" else box_psf(5)
    truth = face.astype(np.float64)
    blurred = np.clip(
        np.rint(convolve_circular(truth, otf(psf, truth.shape[:2]))), 0, 255
    )
    blurred = blurred.astype(np.uint8)
    for op_id in ("wiener", "richardson_lucy"):
        out = _run(blurred, op_id, kernel=kernel, sigma=1.5, size=5)
        assert _mse(out, truth, 16) < 0.6 * _mse(blurred, truth, 16)


# ---- noise reduction on a flat patch ---------------------------------------------
@pytest.mark.parametrize(
    ("op_id", "params"),
    [("bilateral", {}), ("nl_means", {"strength": 12, "colour_strength": 12})],
)
def test_denoisers_lower_noise_on_a_flat_patch(op_id: str, params: dict) -> None:
    rng = np.random.default_rng(21)
    noisy = np.clip(np.rint(128 + rng.normal(0, 8, (64, 64, 3))), 0, 255)
    noisy = noisy.astype(np.uint8)
    out = _run(noisy, op_id, **params)
    before = noisy.astype(np.float64).std()
    after = out.astype(np.float64).std()
    assert after < 0.6 * before
    assert abs(out.astype(np.float64).mean() - 128) < 1.5  # no shift of the level


def _bilateral_by_hand(
    rgb: np.ndarray, diameter: int, sigma_colour: float, sigma_space: float
) -> np.ndarray:
    """The operation's description, written out: a disc of radius diameter // 2,
    Gaussian weights on the distance and on the summed |R|+|G|+|B| difference,
    edges mirrored without repeating the edge pixel, rounded half to even."""
    r = diameter // 2
    padded = np.pad(rgb.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")
    height, width = rgb.shape[:2]
    out = np.zeros((height, width, 3))
    offsets = [(j, i) for j in range(-r, r + 1) for i in range(-r, r + 1)]
    offsets = [(j, i) for j, i in offsets if i * i + j * j <= r * r]
    for y in range(height):
        for x in range(width):
            centre = padded[y + r, x + r]
            total, weights = np.zeros(3), 0.0
            for j, i in offsets:
                value = padded[y + r + j, x + r + i]
                colour = np.abs(value - centre).sum()
                weight = np.exp(-(i * i + j * j) / (2 * sigma_space**2)) * np.exp(
                    -(colour**2) / (2 * sigma_colour**2)
                )
                total += weight * value
                weights += weight
            out[y, x] = total / weights
    return np.rint(out).astype(np.uint8)


@pytest.mark.parametrize(("diameter", "colour", "space"), [(5, 50, 3), (9, 30, 5)])
def test_bilateral_is_what_its_description_says(
    diameter: int, colour: float, space: float
) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    out = _run(
        image, "bilateral", diameter=diameter, sigma_colour=colour, sigma_space=space
    )
    assert np.array_equal(out, _bilateral_by_hand(image, diameter, colour, space))


def test_bilateral_keeps_an_edge() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, 16:] = 200
    out = _run(image, "bilateral", sigma_colour=20)
    assert np.array_equal(out, image)


# ---- frame averaging ---------------------------------------------------------
def _reader(frames: dict[int, np.ndarray], source: np.ndarray):
    calls: list[list[int]] = []

    def read(offsets: Sequence[int]) -> FrameSet:
        calls.append(list(offsets))
        have = {o: frames[o] for o in offsets if o in frames}
        records = {
            o: {"frame": 100 + o, "sha256": pixels_sha256(f)} for o, f in have.items()
        }
        return FrameSet(have, records)

    read.calls = calls  # type: ignore[attr-defined]
    return read


SHIFTS = {-2: (3, -2), -1: (-4, 1), 1: (2, 5), 2: (-1, -3)}  # offset: (dx, dy)
SIGMA = 8.0


@pytest.fixture(scope="module")
def shifted_frames():
    """A 176x176 view of a scene and four neighbours with the view moved by whole
    pixels, each with its own Gaussian noise (sigma 8 grey levels)."""
    rng = np.random.default_rng(2121)
    scene = astronaut().astype(np.float64) * 0.75 + 30  # away from 0 and 255
    x0 = y0 = 160
    size = 176

    def frame(dx: int, dy: int) -> np.ndarray:
        view = scene[y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size]
        noisy = view + rng.normal(0, SIGMA, view.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    clean = scene[y0 : y0 + size, x0 : x0 + size]
    source = frame(0, 0)
    neighbours = {o: frame(*shift) for o, shift in SHIFTS.items()}
    return clean, source, neighbours


def test_frame_average_registers_and_lowers_noise(shifted_frames) -> None:
    clean, source, neighbours = shifted_frames
    reader = _reader(neighbours, source)
    out, inputs = run_chain(source, [make_step("frame_average")], read_frames=reader)
    assert reader.calls == [[-2, -1, 1, 2]]
    used = inputs[0]["frames"]
    assert [f["offset"] for f in used] == [-2, -1, 1, 2]
    assert inputs[0]["missing_offsets"] == []
    for record in used:
        dx, dy = SHIFTS[record["offset"]]
        # the neighbour's content sits (-dx, -dy) from the source's
        assert record["shift"][0] == pytest.approx(-dx, abs=0.1)
        assert record["shift"][1] == pytest.approx(-dy, abs=0.1)
        assert record["frame"] == 100 + record["offset"]
        assert record["sha256"] == pixels_sha256(neighbours[record["offset"]])
    inner = np.s_[8:-8, 8:-8]  # away from the repeated edge pixels
    residual = out.astype(np.float64)[inner] - clean[inner]
    single = source.astype(np.float64)[inner] - clean[inner]
    assert single.std() == pytest.approx(SIGMA, rel=0.05)
    assert residual.std() == pytest.approx(SIGMA / np.sqrt(5), rel=0.15)
    again, _ = run_chain(source, [make_step("frame_average")], read_frames=reader)
    assert pixels_sha256(again) == pixels_sha256(out)


def test_frame_average_threads_do_not_change_the_bytes(shifted_frames, threads) -> None:
    _, source, neighbours = shifted_frames
    results = set()
    for count in (1, 2, 4):
        cv2.setNumThreads(count)
        out, inputs = run_chain(
            source,
            [make_step("frame_average")],
            read_frames=_reader(neighbours, source),
        )
        results.add((pixels_sha256(out), repr(inputs)))
    assert len(results) == 1


def test_frame_average_on_a_region(shifted_frames) -> None:
    _, source, neighbours = shifted_frames
    step = make_step("frame_average", {"region": "40,30,96,96", "before": 1})
    _, inputs = run_chain(source, [step], read_frames=_reader(neighbours, source))
    for record in inputs[0]["frames"]:
        dx, dy = SHIFTS[record["offset"]]
        # a smaller area, so a looser bound than the whole frame's 0.1 px
        assert record["shift"] == pytest.approx([-dx, -dy], abs=0.2)


def test_frame_average_without_registration_is_the_rounded_mean() -> None:
    rng = np.random.default_rng(5)
    frames = {o: rng.integers(0, 256, (24, 20, 3), dtype=np.uint8) for o in (-1, 1, 3)}
    source = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    step = make_step("frame_average", {"before": 2, "after": 3, "registration": "none"})
    out, inputs = run_chain(source, [step], read_frames=_reader(frames, source))
    stack = np.stack([source, frames[-1], frames[1], frames[3]]).astype(np.float64)
    assert np.array_equal(out, np.clip(np.rint(stack.mean(0)), 0, 255).astype(np.uint8))
    assert [f["offset"] for f in inputs[0]["frames"]] == [-1, 1, 3]
    assert all(f["shift"] == [0.0, 0.0] for f in inputs[0]["frames"])
    assert inputs[0]["missing_offsets"] == [-2, 2]


def test_frame_average_refuses_a_neighbour_of_another_size() -> None:
    source = np.zeros((24, 20, 3), np.uint8)
    reader = _reader({1: np.zeros((20, 24, 3), np.uint8)}, source)
    step = make_step("frame_average", {"registration": "none"})
    with pytest.raises(ProcessingError) as error:
        run_chain(source, [step], read_frames=reader)
    assert "offset +1 is 24x20x3" in str(error.value)
    assert "source frame 20x24x3" in str(error.value)


def test_frame_average_with_no_neighbour_in_the_video() -> None:
    source = np.zeros((24, 20, 3), np.uint8)
    with pytest.raises(ProcessingError, match="none of the frames asked for"):
        run_chain(source, [make_step("frame_average")], read_frames=_reader({}, source))


def test_frame_average_refuses_to_register_a_flat_region() -> None:
    flat = np.full((32, 32, 3), 77, np.uint8)
    reader = _reader({1: flat}, flat)
    with pytest.raises(ProcessingError, match="one grey level in the region"):
        run_chain(flat, [make_step("frame_average")], read_frames=reader)
    step = make_step("frame_average", {"registration": "none"})
    out, _ = run_chain(flat, [step], read_frames=reader)
    assert np.array_equal(out, flat)


def test_frame_average_must_be_the_first_step() -> None:
    with pytest.raises(ProcessingError, match="must be the first step"):
        check_chain([make_step("deinterlace"), make_step("frame_average")])


def test_frame_average_needs_a_frame_from_a_video() -> None:
    with pytest.raises(ProcessingError) as error:
        run_chain(np.zeros((24, 20, 3), np.uint8), [make_step("frame_average")])
    assert "frame exhibit taken from a video" in str(error.value)
    assert "\n" not in str(error.value)
