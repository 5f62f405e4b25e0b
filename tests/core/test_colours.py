"""The one colour mapping (core.colours): stored tables, scale and index rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.colours import (
    COLOUR_MAPS,
    SIGNED_COLOUR_MAP,
    colour_lut,
    colour_map,
    colourise,
    lut_index,
)
from core.explain import render

OPENCV_MAPS = {
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
}


@pytest.mark.parametrize("name", sorted(OPENCV_MAPS))
def test_stored_tables_equal_opencv(name):
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    expected = cv2.applyColorMap(ramp, OPENCV_MAPS[name])[:, 0, ::-1]
    np.testing.assert_array_equal(colour_lut(name), expected)


def test_gray_signed_and_unknown_tables():
    gray = colour_lut("gray")
    np.testing.assert_array_equal(gray[:, 0], np.arange(256))
    np.testing.assert_array_equal(colour_lut("grey"), gray)
    signed = colour_lut(SIGNED_COLOUR_MAP)
    assert tuple(signed[0]) == (33, 102, 172)  # blue: speaks against
    assert tuple(signed[255]) == (178, 24, 43)  # red: supports
    assert min(signed[127]) >= 240  # white around 0
    np.testing.assert_array_equal(colour_lut("no-such-map"), colour_lut("jet"))
    for name in COLOUR_MAPS:
        lut = colour_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        assert not lut.flags.writeable  # shared by every caller


def test_index_rule_floors_and_maps_nan_to_low():
    values = np.array([np.nan, -1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(lut_index(values, 0.0, 1.0), [0, 0, 0, 127, 255, 255])
    np.testing.assert_array_equal(lut_index(np.zeros(2), 0.0, 0.0), [0, 0])


def test_render_colour_map_is_this_mapping():
    values = np.linspace(-3, 5, 400, dtype=np.float32).reshape(20, 20)
    for signed in (False, True):
        ours = colour_map(values, signed)
        theirs = render.colour_map(values, signed)
        np.testing.assert_array_equal(ours[0], theirs[0])
        assert ours[1:] == theirs[1:]


@pytest.mark.parametrize("name", COLOUR_MAPS)
def test_colourise_matches_colour_map_on_covered_pixels(name):
    values = np.random.default_rng(3).random((30, 40)).astype(np.float32)
    values[:5] = np.nan
    rgba, low, high = colourise(values, signed=False, colour_map=name)
    rgb, low2, high2 = colour_map(values, False, name=name)
    covered = np.isfinite(values)
    np.testing.assert_array_equal(rgba[covered, :3], rgb[covered])
    assert (rgba[~covered] == 0).all() and (rgba[covered, 3] == 255).all()
    assert (low, high) == (low2, high2)
