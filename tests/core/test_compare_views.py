"""The examiner's comparison views (issue 19, item 3): what each view shows of two
aligned faces, and a magnifier that adds nothing between pixels."""

from __future__ import annotations

import numpy as np
import pytest

from core.compare_views import MODES, compose, magnify


@pytest.fixture
def faces() -> tuple[np.ndarray, np.ndarray]:
    return np.full((6, 8, 3), 10, np.uint8), np.full((6, 8, 3), 210, np.uint8)


def test_superimposition_mixes_by_the_chosen_opacity(faces):
    probe, gallery = faces
    assert (compose(probe, gallery, "superimposition", 0.0) == 10).all()
    assert (compose(probe, gallery, "superimposition", 1.0) == 210).all()
    assert (compose(probe, gallery, "superimposition", 0.25) == 60).all()


def test_a_wipe_shows_the_probe_before_the_line_and_the_gallery_beyond(faces):
    probe, gallery = faces
    vertical = compose(probe, gallery, "wipe (vertical)", 0.5)
    assert (vertical[:, :3] == 10).all() and (vertical[:, 5:] == 210).all()
    assert (vertical[:, 3:5] == (255, 255, 0)).all()  # the line
    horizontal = compose(probe, gallery, "wipe (horizontal)", 0.5)
    assert (horizontal[:2] == 10).all() and (horizontal[4:] == 210).all()


def test_side_by_side_keeps_both_whole(faces):
    probe, gallery = faces
    both = compose(probe, gallery, "side by side")
    assert both.shape == (6, 8 + 4 + 8, 3)
    assert (both[:, :8] == probe).all() and (both[:, -8:] == gallery).all()


def test_unknown_views_and_unaligned_faces_are_refused(faces):
    probe, gallery = faces
    with pytest.raises(ValueError, match="unknown view"):
        compose(probe, gallery, "measure")
    with pytest.raises(ValueError, match="one size"):
        compose(probe, gallery[:5], "superimposition")
    assert "measure" not in " ".join(MODES)  # no measuring view at all


def test_the_magnifier_repeats_pixels_and_draws_a_grid_from_4x():
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    doubled = magnify(rgb, 2)
    assert doubled.shape == (4, 4, 3)
    assert (doubled[0:2, 0:2] == rgb[0, 0]).all()  # no value between pixels
    big = magnify(rgb, 4)
    assert (big[5:8, 5:8] == rgb[1, 1]).all()  # inside a pixel: its value
    assert (big[4, 5] == (rgb[1, 1] * 0.6).astype(np.uint8)).all()  # grid line
    assert magnify(rgb, 99).shape[0] == 2 * 8  # capped at 8x
