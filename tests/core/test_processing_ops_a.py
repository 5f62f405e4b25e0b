"""Processing operations A: geometry (rotate, flip, resize), tone (contrast_stretch,
histogram_equalise, clahe) and colour (white_balance, greyscale).

Per operation: the same input gives the same bytes, bad parameters give one line
naming the parameter, and a known answer worked out by hand on a small image.
Every run goes through ``run_chain`` so the checked path is the one tested.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from core.errors import BadInputError
from core.processing import (
    ProcessingError,
    get,
    make_step,
    parse_step,
    pixels_sha256,
    run_chain,
)
from core.processing.util import divide_round_half_even, luminance

OPS_A = (
    "rotate",
    "flip",
    "resize",
    "contrast_stretch",
    "histogram_equalise",
    "clahe",
    "white_balance",
    "greyscale",
)


def _run(rgb: np.ndarray, op_id: str, **params: object) -> np.ndarray:
    out, _ = run_chain(rgb, [make_step(op_id, params)])
    return out


def _noise(height: int = 24, width: int = 32, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def _photo() -> np.ndarray:
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[::4, ::4])  # 128x128 RGB8


# ---- the registry entries ------------------------------------------------------------
@pytest.mark.parametrize("op_id", OPS_A)
def test_info_is_complete(op_id: str) -> None:
    info = get(op_id).info
    assert info.op_id == op_id
    assert info.version == 1
    expected = {
        "rotate": "geometry",
        "flip": "geometry",
        "resize": "geometry",
        "contrast_stretch": "tone",
        "histogram_equalise": "tone",
        "clahe": "tone",
        "white_balance": "colour",
        "greyscale": "colour",
    }
    assert info.category == expected[op_id]
    assert info.implementation
    # one sentence: ends with a full stop and has no other sentence end inside
    assert info.description.endswith(".")
    assert ". " not in info.description
    assert info.to_dict()["op_id"] == op_id


# ---- (1) deterministic ---------------------------------------------------------------
DETERMINISM_CASES = [
    ("rotate", {"angle": 17.5}),
    ("rotate", {"angle": -33.0, "interpolation": "lanczos", "fill": "edge"}),
    ("rotate", {"angle": 90.0, "expand": False, "fill": "white"}),
    ("flip", {"direction": "both"}),
    ("resize", {"scale": 1.7, "interpolation": "bilinear"}),
    ("resize", {"width": 50, "interpolation": "area"}),
    ("contrast_stretch", {}),
    ("histogram_equalise", {}),
    ("clahe", {"clip": 3.0, "tiles": 4}),
    ("white_balance", {"method": "grey_world"}),
    ("white_balance", {"method": "white_patch", "percentile": 95.0}),
    ("greyscale", {"weights": "bt709"}),
]


@pytest.mark.parametrize(("op_id", "params"), DETERMINISM_CASES)
def test_same_input_gives_the_same_bytes(op_id: str, params: dict) -> None:
    rgb = _photo()
    first = _run(rgb.copy(), op_id, **params)
    second = _run(rgb.copy(), op_id, **params)
    assert pixels_sha256(first) == pixels_sha256(second)
    assert first.dtype == np.uint8 and first.shape[2] == 3
    assert np.array_equal(rgb, _photo())  # the input is not changed in place


@pytest.mark.parametrize(("op_id", "params"), DETERMINISM_CASES)
def test_the_bytes_do_not_depend_on_opencv_threads(op_id: str, params: dict) -> None:
    rgb = _photo()
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        single = _run(rgb, op_id, **params)
        cv2.setNumThreads(4)
        several = _run(rgb, op_id, **params)
    finally:
        cv2.setNumThreads(before)
    assert pixels_sha256(single) == pixels_sha256(several)


def test_every_op_a_is_covered_by_the_determinism_cases() -> None:
    assert {op for op, _ in DETERMINISM_CASES} == set(OPS_A)


# ---- (2) bad parameters --------------------------------------------------------------
@pytest.mark.parametrize(
    ("op_id", "params", "name"),
    [
        ("rotate", {"angle": 400}, "angle"),
        ("rotate", {"angle": "steep"}, "angle"),
        ("rotate", {"interpolation": "spline"}, "interpolation"),
        ("rotate", {"expand": "maybe"}, "expand"),
        ("rotate", {"fill": "grey"}, "fill"),
        ("flip", {"direction": "diagonal"}, "direction"),
        ("resize", {"width": 0}, "width"),
        ("resize", {"height": 1.5}, "height"),
        ("resize", {"scale": 0}, "scale"),
        ("resize", {"width": 10, "interpolation": "super"}, "interpolation"),
        ("contrast_stretch", {"low": -1}, "low"),
        ("contrast_stretch", {"high": 101}, "high"),
        ("clahe", {"clip": 0.0}, "clip"),
        ("clahe", {"clip": 41}, "clip"),
        ("clahe", {"tiles": 0}, "tiles"),
        ("clahe", {"tiles": 65}, "tiles"),
        ("white_balance", {"method": "auto_magic"}, "method"),
        ("white_balance", {"red": 0.05}, "red"),
        ("white_balance", {"blue": 11}, "blue"),
        ("white_balance", {"percentile": 10}, "percentile"),
        ("greyscale", {"weights": "bt2020"}, "weights"),
    ],
)
def test_bad_parameter_is_refused_by_name(op_id: str, params: dict, name: str) -> None:
    with pytest.raises(BadInputError) as caught:
        make_step(op_id, params)
    message = str(caught.value)
    assert f"parameter {name}" in message and op_id in message
    assert "\n" not in message


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ProcessingError, match="no parameter 'degrees'"):
        make_step("rotate", {"degrees": 10})


@pytest.mark.parametrize(
    ("op_id", "params", "size", "name"),
    [
        ("resize", {}, (8, 8), "width"),  # neither width, height nor scale
        ("resize", {"width": 10, "scale": 2.0}, (8, 8), "scale"),  # both
        ("resize", {"scale": 0.01}, (20, 30), "scale"),  # under 1 pixel
        ("resize", {"height": 1}, (10, 1), "height"),  # width 0.1 -> 0: under 1 px
        ("resize", {"scale": 100.0}, (2000, 2000), "scale"),  # 40 000 MP
        ("resize", {"width": 100_000, "height": 100_000}, (8, 8), "width"),
        ("contrast_stretch", {"low": 60, "high": 40}, (8, 8), "high"),
        ("contrast_stretch", {"low": 50, "high": 50}, (8, 8), "high"),
        ("clahe", {"tiles": 9}, (8, 20), "tiles"),
    ],
)
def test_size_dependent_errors_name_the_parameter(
    op_id: str, params: dict, size: tuple[int, int], name: str
) -> None:
    # a 1-row image stands for the size: check() refuses before anything big exists
    rgb = np.zeros((*size, 3), np.uint8)
    step = make_step(op_id, params)
    with pytest.raises(ProcessingError) as caught:
        run_chain(rgb, [step])
    message = str(caught.value)
    assert message.startswith(f"step 1 ({op_id}): {op_id}, parameter {name}")
    assert "\n" not in message


def test_resize_check_refuses_before_allocating() -> None:
    step = make_step("resize", {"scale": 100.0})
    with pytest.raises(ProcessingError, match="more than the 200 MP"):
        get("resize").check(step.params, 50_000, 50_000)


def test_rotate_refuses_a_canvas_over_the_pixel_limit() -> None:
    step = make_step("rotate", {"angle": 45.0})
    operation = get("rotate")
    with pytest.raises(ProcessingError, match="rotate, parameter angle"):
        operation.check(step.params, 12_000, 12_000)  # 144 MP -> 290 MP canvas
    no_expand = make_step("rotate", {"angle": 45.0, "expand": False})
    operation.check(no_expand.params, 12_000, 12_000)  # keeps 144 MP: allowed


def test_white_balance_refuses_an_empty_channel() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 100
    rgb[..., 1] = 50  # blue is 0 everywhere
    with pytest.raises(ProcessingError) as caught:
        _run(rgb, "white_balance", method="grey_world")
    assert "parameter method" in str(caught.value)
    assert "blue channel's mean is 0" in str(caught.value)
    with pytest.raises(ProcessingError, match="blue channel's 99th percentile is 0"):
        _run(rgb, "white_balance", method="white_patch")


def test_command_line_form_reaches_the_same_step() -> None:
    assert parse_step("rotate:angle=30,expand=false,fill=edge") == make_step(
        "rotate", {"angle": 30.0, "expand": False, "fill": "edge"}
    )
    assert parse_step("resize:width=100").params["height"] is None


# ---- (3) known answers: rotate -------------------------------------------------------
def test_rotate_quarter_turns_are_exact_rearrangements() -> None:
    rgb = _noise(2, 3)
    for interpolation in ("nearest", "bilinear", "bicubic", "lanczos"):
        turned = _run(rgb, "rotate", angle=90.0, interpolation=interpolation)
        assert np.array_equal(turned, np.rot90(rgb, 1))
    assert np.array_equal(_run(rgb, "rotate", angle=180.0), rgb[::-1, ::-1])
    assert np.array_equal(_run(rgb, "rotate", angle=-90.0), np.rot90(rgb, -1))
    assert np.array_equal(_run(rgb, "rotate", angle=270.0), np.rot90(rgb, 3))
    assert np.array_equal(_run(rgb, "rotate", angle=360.0), rgb)
    assert np.array_equal(_run(rgb, "rotate", angle=0.0), rgb)


def test_rotate_quarter_turn_by_hand() -> None:
    # [[1 2 3], [4 5 6]] turned 90 degrees counter-clockwise: the right column on top
    rgb = np.repeat(np.arange(1, 7, dtype=np.uint8).reshape(2, 3)[..., None], 3, 2)
    turned = _run(rgb, "rotate", angle=90.0)
    assert turned[..., 0].tolist() == [[3, 6], [2, 5], [1, 4]]


def test_rotate_quarter_turn_without_expand_keeps_the_size() -> None:
    # 2 rows x 4 columns turned 90: 4x2, centred on 2x4 - one row cut at the top
    # and one at the bottom, one column of fill either side
    rgb = np.repeat(np.arange(1, 9, dtype=np.uint8).reshape(2, 4)[..., None], 3, 2)
    turned = _run(rgb, "rotate", angle=90.0, expand=False, fill="white")
    assert turned.shape == (2, 4, 3)
    assert turned[..., 0].tolist() == [[255, 3, 7, 255], [255, 2, 6, 255]]
    edge = _run(rgb, "rotate", angle=90.0, expand=False, fill="edge")
    assert edge[..., 0].tolist() == [[3, 3, 7, 7], [2, 2, 6, 6]]


def test_rotate_matrix_turns_the_same_way_as_rot90() -> None:
    # a hair off 90 degrees goes through warpAffine; nearest must then land on the
    # very pixels np.rot90 moves (same sense, same centre)
    rgb = _noise(5, 7)
    near = _run(rgb, "rotate", angle=90.0 - 1e-7, interpolation="nearest")
    assert np.array_equal(near, np.rot90(rgb, 1))
    near = _run(rgb, "rotate", angle=-90.0 + 1e-7, interpolation="nearest")
    assert np.array_equal(near, np.rot90(rgb, -1))


def test_rotate_30_degrees_canvas_is_the_bounding_box_rounded_up() -> None:
    # rule: W = ceil(w |cos| + h |sin|), H = ceil(w |sin| + h |cos|)
    rgb = _noise(20, 30)
    cos, sin = math.cos(math.radians(30)), math.sin(math.radians(30))
    expected_w = math.ceil(30 * cos + 20 * sin)  # 35.98 -> 36
    expected_h = math.ceil(30 * sin + 20 * cos)  # 32.32 -> 33
    turned = _run(rgb, "rotate", angle=30.0)
    assert turned.shape == (expected_h, expected_w, 3) == (33, 36, 3)
    kept = _run(rgb, "rotate", angle=30.0, expand=False)
    assert kept.shape == rgb.shape


@pytest.mark.parametrize("angle", [10.0, 30.0, -30.0, 135.0, 200.0])
def test_rotate_expand_loses_no_pixel(angle: float) -> None:
    # bilinear resampling keeps the area of a white rectangle on black: the turned
    # 30x20 image still holds 600 pixels' worth of white when the canvas grows,
    # and visibly less when the corners are cut (expand off)
    white = np.full((20, 30, 3), 255, np.uint8)
    grown = _run(white, "rotate", angle=angle, interpolation="bilinear")
    assert abs(grown[..., 0].sum() / 255 - 600) < 6
    cut = _run(white, "rotate", angle=angle, interpolation="bilinear", expand=False)
    assert cut[..., 0].sum() / 255 < 590


def test_rotate_45_degrees_of_a_square_is_not_over_rounded() -> None:
    # 2 * 10 * cos 45 = 14.142..., ceil 15; 2x2 at 45 gives 2.83 -> 3
    assert _run(_noise(10, 10), "rotate", angle=45.0).shape[:2] == (15, 15)
    assert _run(_noise(2, 2), "rotate", angle=45.0).shape[:2] == (3, 3)


def test_rotate_fill_colours_the_uncovered_corners() -> None:
    grey = np.full((20, 20, 3), 100, np.uint8)
    black = _run(grey, "rotate", angle=45.0, fill="black")
    white = _run(grey, "rotate", angle=45.0, fill="white")
    edge = _run(grey, "rotate", angle=45.0, fill="edge")
    assert black[0, 0].tolist() == [0, 0, 0]
    assert white[0, 0].tolist() == [255, 255, 255]
    assert np.all(edge == 100)  # the nearest edge pixel is grey everywhere
    centre = black.shape[0] // 2
    assert black[centre, centre].tolist() == [100, 100, 100]


def test_rotate_there_and_back_stays_close() -> None:
    rgb = _photo()
    there = _run(rgb, "rotate", angle=20.0, expand=False)
    back = _run(there, "rotate", angle=-20.0, expand=False)
    inner = (slice(40, 88), slice(40, 88))  # away from the cut corners
    diff = np.abs(back[inner].astype(int) - rgb[inner].astype(int))
    assert diff.mean() < 12  # resampled twice (bicubic), not the same pixels
    assert not np.array_equal(back, rgb)


# ---- flip ----------------------------------------------------------------------------
def test_flip_is_reversed_axes() -> None:
    rgb = _noise(3, 5)
    assert np.array_equal(_run(rgb, "flip", direction="horizontal"), rgb[:, ::-1])
    assert np.array_equal(_run(rgb, "flip", direction="vertical"), rgb[::-1])
    assert np.array_equal(_run(rgb, "flip", direction="both"), rgb[::-1, ::-1])
    twice, _ = run_chain(rgb, [make_step("flip"), make_step("flip")])
    assert np.array_equal(twice, rgb)


# ---- resize --------------------------------------------------------------------------
def test_resize_nearest_doubling_repeats_each_pixel() -> None:
    rgb = _noise(2, 2)
    doubled = _run(rgb, "resize", scale=2.0, interpolation="nearest")
    assert np.array_equal(doubled, np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1))
    by_width = _run(rgb, "resize", width=4, interpolation="nearest")
    assert np.array_equal(by_width, doubled)


def test_resize_nearest_samples_at_pixel_centres() -> None:
    # halving 0..5: output pixel d covers input d*2 .. d*2+2, its centre falls in
    # input pixel 2d+1 (a top-left-corner rule would take 0, 2, 4)
    row = np.arange(6, dtype=np.uint8)
    rgb = np.repeat(np.tile(row, (2, 1))[..., None], 3, axis=2)
    half = _run(rgb, "resize", width=3, height=1, interpolation="nearest")
    assert half[0, :, 0].tolist() == [1, 3, 5]


def test_resize_keeps_the_aspect_rounded_half_to_even() -> None:
    rgb = _noise(5, 10)
    assert _run(rgb, "resize", width=5).shape[:2] == (2, 5)  # 2.5 -> 2
    assert _run(rgb, "resize", width=7).shape[:2] == (4, 7)  # 3.5 -> 4
    assert _run(rgb, "resize", height=3).shape[:2] == (3, 6)
    assert _run(rgb, "resize", width=3, height=9).shape[:2] == (9, 3)  # both given
    assert _run(_noise(3, 3), "resize", scale=0.5).shape[:2] == (2, 2)  # 1.5 -> 2
    # the decimal 0.15 (not its binary 0.1499...): 10 x 0.15 = 1.5 -> 2, 30 -> 4.5 -> 4
    assert _run(_noise(30, 10), "resize", scale=0.15).shape[:2] == (4, 2)


def test_resize_area_halving_is_the_block_mean() -> None:
    # 2x2 blocks of (10, 20, 30, 41): mean 25.25 -> 25
    block = np.array([[10, 20], [30, 41]], np.uint8)
    rgb = np.repeat(np.tile(block, (2, 2))[..., None], 3, axis=2)
    half = _run(rgb, "resize", scale=0.5, interpolation="area")
    assert half.shape == (2, 2, 3)
    assert np.all(half == 25)


def test_resize_bilinear_of_a_flat_image_is_flat() -> None:
    flat = np.full((7, 9, 3), 77, np.uint8)
    for interpolation in ("bilinear", "bicubic", "lanczos", "area", "nearest"):
        out = _run(flat, "resize", scale=1.37, interpolation=interpolation)
        assert out.shape[:2] == (10, 12)  # 9.59 -> 10, 12.33 -> 12
        assert np.all(out == 77)


# ---- contrast stretch ----------------------------------------------------------------
def test_contrast_stretch_table_by_hand() -> None:
    # grey values 50..150 in equal numbers; low=0, high=100 give 50 -> 0, 150 -> 255
    values = np.linspace(50, 150, 101).astype(np.uint8).reshape(1, 101)
    rgb = np.repeat(values[..., None], 3, axis=2)
    out = _run(rgb, "contrast_stretch", low=0.0, high=100.0)
    expected = np.clip(np.rint((values - 50) * 255.0 / 100.0), 0, 255)
    assert np.array_equal(out[..., 0], expected.astype(np.uint8))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert out[0, 50, 0] == 128  # 100 -> 127.5 -> 128 (half to even)


def test_contrast_stretch_uses_the_luma_percentiles_and_one_table() -> None:
    rgb = _photo()
    low, high = 2.0, 98.0
    lo, hi = np.percentile(luminance(rgb), [low, high])
    table = np.clip(np.rint((np.arange(256) - lo) * 255.0 / (hi - lo)), 0, 255)
    out = _run(rgb, "contrast_stretch", low=low, high=high)
    assert np.array_equal(out, table.astype(np.uint8)[rgb])


def test_contrast_stretch_leaves_a_flat_image_unchanged() -> None:
    flat = np.zeros((6, 6, 3), np.uint8)
    flat[...] = (30, 90, 200)
    assert np.array_equal(_run(flat, "contrast_stretch"), flat)


# ---- histogram equalisation ----------------------------------------------------------
def test_histogram_equalise_two_grey_levels_become_black_and_white() -> None:
    grey = np.full((4, 6), 100, np.uint8)
    grey[:, 3:] = 140
    rgb = np.repeat(grey[..., None], 3, axis=2)
    out = _run(rgb, "histogram_equalise")
    assert np.all(out[:, :3] == 0) and np.all(out[:, 3:] == 255)


def test_histogram_equalise_keeps_the_colour_and_spreads_the_luma() -> None:
    rgb = (_photo() // 2 + 40).astype(np.uint8)  # a dull, low-contrast image
    out = _run(rgb, "histogram_equalise")
    y_in = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y_out = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)
    assert y_out[..., 0].min() <= 5 and y_out[..., 0].max() >= 250
    # chroma kept: Cr and Cb move only by the conversions' rounding (and clipping
    # where the new luma takes a colour out of the RGB cube)
    chroma = np.abs(y_out[..., 1:].astype(int) - y_in[..., 1:].astype(int))
    assert np.median(chroma) <= 1


# ---- CLAHE ---------------------------------------------------------------------------
def test_clahe_flat_image_stays_flat() -> None:
    flat = np.full((32, 48, 3), 90, np.uint8)
    out = _run(flat, "clahe")
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 1
    assert np.ptp(out) == 0  # still grey: R = G = B


def test_clahe_matches_opencv_on_the_y_channel() -> None:
    rgb = _photo()
    out = _run(rgb, "clahe", clip=3.0, tiles=4)
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = cv2.createCLAHE(3.0, (4, 4)).apply(ycrcb[..., 0].copy())
    assert np.array_equal(out, cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB))
    assert not np.array_equal(out, rgb)


def test_clahe_raises_local_contrast_of_a_dim_gradient() -> None:
    ramp = np.tile(np.linspace(60, 90, 64), (64, 1)).astype(np.uint8)
    rgb = np.repeat(ramp[..., None], 3, axis=2)
    out = _run(rgb, "clahe", clip=4.0, tiles=2)
    assert np.ptp(out[..., 0]) > np.ptp(ramp)
    # the two rows of tiles see the same histograms: every row comes out alike
    assert np.all(out == out[:1])


# ---- white balance -------------------------------------------------------------------
def test_grey_world_makes_the_channel_means_equal() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[...] = (100, 50, 200)
    out = _run(rgb, "white_balance", method="grey_world")
    means = out.reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) <= 1
    assert abs(means.mean() - (100 + 50 + 200) / 3) <= 1  # brightness kept
    # by hand: 350/3 = 116.67 -> 117 in every channel
    assert np.all(out == 117)


def test_grey_world_on_a_varied_image_equalises_means() -> None:
    rgb = _photo().astype(np.float64)
    rgb[..., 2] *= 0.6  # a yellow cast
    cast = np.clip(rgb, 0, 255).astype(np.uint8)
    out = _run(cast, "white_balance", method="grey_world")
    means = out.reshape(-1, 3).mean(axis=0)
    before = cast.reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < np.ptp(before) / 4


def test_white_patch_maps_each_percentile_to_white() -> None:
    ramp = np.arange(101, dtype=np.float64)  # 0..100
    rgb = np.stack([ramp * 2, ramp, ramp * 2.5], axis=-1).astype(np.uint8)[None]
    out = _run(rgb, "white_balance", method="white_patch", percentile=100.0)
    assert out[0, -1].tolist() == [255, 255, 255]
    # red max 200: gain 1.275, so 100 -> 127.5 -> 128 (half to even)
    assert out[0, 50, 0] == 128
    assert out[0, 50, 1] == 128  # green 50 * 2.55 = 127.5 -> 128


def test_white_patch_below_100_clips_the_brightest() -> None:
    ramp = np.arange(101, dtype=np.uint8)  # 0..100 in every channel
    rgb = np.repeat(ramp[None, :, None], 3, axis=2)
    out = _run(rgb, "white_balance", method="white_patch", percentile=80.0)
    # the 80th percentile of 0..100 is 80: gain 255/80, 40 -> 127.5 -> 128
    assert out[0, 80].tolist() == [255] * 3 and out[0, 100].tolist() == [255] * 3
    assert out[0, 40].tolist() == [128] * 3
    assert out[0, 79].tolist() == [252] * 3  # 79 * 255 / 80 = 251.81


def test_manual_gains_by_hand() -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[...] = (100, 100, 100)
    out = _run(rgb, "white_balance", method="manual", red=1.5, green=0.5, blue=3.0)
    assert out[0, 0].tolist() == [150, 50, 255]  # 300 clipped to 255


# ---- greyscale -----------------------------------------------------------------------
def test_greyscale_of_pure_red_by_weights() -> None:
    red = np.zeros((1, 1, 3), np.uint8)
    red[...] = (255, 0, 0)
    assert _run(red, "greyscale")[0, 0].tolist() == [76, 76, 76]  # 76.245
    assert _run(red, "greyscale", weights="bt709")[0, 0].tolist() == [54] * 3  # 54.2
    assert _run(red, "greyscale", weights="average")[0, 0].tolist() == [85] * 3


def test_greyscale_rounds_exact_ties_half_to_even() -> None:
    # every (R, G, B) whose 299 R + 587 G + 114 B ends in 500: an exact x.5 luma
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(0, 256, 5))
    sums = 299 * r + 587 * g + 114 * b
    ties = sums % 1000 == 500
    rgb = np.stack([r[ties], g[ties], b[ties]], axis=-1).astype(np.uint8)[None]
    assert rgb.shape[1] > 1000
    out = _run(rgb, "greyscale")[0, :, 0].astype(np.int64)
    below = sums[ties] // 1000  # the luma is below + 0.5
    assert np.all(out % 2 == 0)  # always the even neighbour
    assert np.array_equal(out, np.where(below % 2 == 0, below, below + 1))
    assert np.any(below % 2 == 0) and np.any(below % 2 == 1)


def test_greyscale_equals_rounded_luminance_away_from_ties() -> None:
    rgb = _photo()
    out = _run(rgb, "greyscale")
    assert np.array_equal(out[..., 0], out[..., 1])
    assert np.array_equal(out[..., 0], out[..., 2])
    assert np.abs(out[..., 0].astype(int) - np.rint(luminance(rgb))).max() <= 1
    wide = rgb.astype(np.int64)
    sums = 299 * wide[..., 0] + 587 * wide[..., 1] + 114 * wide[..., 2]
    not_tie = sums % 1000 != 500
    assert np.array_equal(
        out[..., 0][not_tie], np.rint(luminance(rgb)).astype(np.uint8)[not_tie]
    )


def test_divide_round_half_even() -> None:
    numerators = np.array([0, 4, 5, 6, 14, 15, 16, 25, 35], np.int64)
    assert divide_round_half_even(numerators, 10).tolist() == [
        0,
        0,
        0,
        1,
        1,
        2,
        2,
        2,
        4,
    ]
