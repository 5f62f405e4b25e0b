"""Each face's shared derivations (the head-pose fit, the grey aligned face region)
are computed once per face, not once per measure (issue 20 item 3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.quality import FaceInput, assess, geometry, pixels

ASTRONAUT_5 = np.array(
    [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
)
ASTRONAUT_BOX = (175.0, 76.0, 266.0, 167.0)


def counting(monkeypatch, module, name: str) -> list[int]:
    calls = [0]
    original = getattr(module.cv2, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module.cv2, name, counted)
    return calls


def test_the_pose_is_solved_and_the_region_warped_once_per_face(
    monkeypatch, astronaut_rgb
):
    solves = counting(monkeypatch, geometry, "solvePnP")
    warps = counting(monkeypatch, pixels, "warpAffine")
    quality = assess(FaceInput(astronaut_rgb, ASTRONAUT_BOX, ASTRONAUT_5))
    assert all(quality.value(m) is not None for m in ("yaw", "pitch", "roll"))
    assert quality.value("sharpness") is not None
    assert solves[0] == 1
    assert warps[0] == 2  # the grey region and its inside-the-image mask


def test_a_changed_face_is_measured_afresh_and_shared_arrays_are_read_only(
    astronaut_rgb,
):
    face = FaceInput(astronaut_rgb, ASTRONAUT_BOX, ASTRONAUT_5)
    region, _inside = pixels.face_region(face)
    with pytest.raises(ValueError):
        region[0, 0] = 0.0
    assert pixels.face_region(face)[0] is region
    moved = dataclasses.replace(face, landmarks5=ASTRONAUT_5 + np.array([40.0, 0.0]))
    assert pixels.face_region(moved)[0] is not region
    assert geometry.head_pose(moved) != geometry.head_pose(face)
    # a face equal in its fields compares equal, whatever it has cached
    assert face == FaceInput(astronaut_rgb, ASTRONAUT_BOX, ASTRONAUT_5)
