"""Measures from the landmarks alone: inter-eye distance, head pose, truncation.

Head pose fits a generic 3-D face template to the landmarks with ``cv2.solvePnP``
(the 68 points when the face has them, else the five).  The template is a set of
approximate average adult positions in millimetres, assembled for this tool from
the anthropometric averages in Farkas, *Anthropometry of the Head and Face* (1994):
outer eye corners 90 mm apart (ex-ex), inner corners 32 mm (en-en), subnasale about
50 mm below the eye line (en-sn), mouth corners 50 mm apart (ch-ch); the depths are
estimates.  Being generic, it gives yaw and pitch to within several degrees, not
an individual's exact pose.  The camera is assumed to be a pinhole with a focal
length of the image's longer side in pixels (about 53 degrees field of view), the
principal point in the image's centre and no lens distortion; CCTV with a wide or
fisheye lens breaks that assumption towards the edges of the frame.

Sign conventions (as the examiner sees the image): yaw > 0 when the nose points
towards the image's right, pitch > 0 when the face looks up, roll > 0 when the head
is tilted anticlockwise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.faces.align import dlib_chip_transform
from core.quality.base import Computation, ComputedMeasure, FaceInput, register

# x towards the image's right, y down, z away from the camera (mm); frontal face.
# 68-point index -> template position.
FACE_TEMPLATE_MM: dict[int, tuple[float, float, float]] = {
    36: (-45.0, 0.0, 12.0),  # outer corner of the eye on the image's left
    39: (-16.0, 0.0, 0.0),  # inner corner of the eye on the image's left
    42: (16.0, 0.0, 0.0),  # inner corner of the eye on the image's right
    45: (45.0, 0.0, 12.0),  # outer corner of the eye on the image's right
    30: (0.0, 35.0, -42.0),  # tip of the nose (pronasale)
    33: (0.0, 50.0, -28.0),  # base of the nose (subnasale)
    48: (-25.0, 75.0, -12.0),  # mouth corner on the image's left
    54: (25.0, 75.0, -12.0),  # mouth corner on the image's right
    8: (0.0, 118.0, -10.0),  # chin (menton)
}
# dlib's five points, in dlib's order, as 68-point indices.
FIVE_AS_68 = (45, 42, 36, 39, 33)

# The expected face area for truncation: dlib's chip around the mean face's landmark
# outline (brows, jaw, chin), widened by this share of its size on each side.
EXPECTED_FACE_PADDING = 0.1
_TRUNCATION_GRID = 64  # sample points per side of the expected face area


def inter_eye_distance(face: FaceInput) -> tuple[float | None, str]:
    left, right = face.eye_centres
    return float(np.linalg.norm(right - left)), ""


def eye_line_roll(face: FaceInput) -> tuple[float | None, str]:
    left, right = face.eye_centres
    dx, dy = right - left
    return math.degrees(math.atan2(-dy, dx)), ""


HeadPose = tuple[tuple[float, float, float] | None, str]


def head_pose(face: FaceInput) -> HeadPose:
    """(yaw, pitch, roll) in degrees, or None and why; solved once per face, as
    yaw, pitch and roll are three figures of one template fit."""
    return face.derived("head_pose", _solve_head_pose)


def _solve_head_pose(face: FaceInput) -> HeadPose:
    if face.landmarks68 is not None:
        indices = tuple(FACE_TEMPLATE_MM)
        image_points = np.asarray(face.landmarks68, float)[list(indices)]
        note = "from 9 of the 68 landmarks and a generic 3-D face template"
    else:
        indices = FIVE_AS_68
        image_points = face.points5
        note = "from the 5 landmarks and a generic 3-D face template (approximate)"
    model_points = np.array([FACE_TEMPLATE_MM[i] for i in indices], float)
    height, width = face.rgb.shape[:2]
    focal = float(max(width, height))
    camera = np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]]
    )
    # Start from a frontal face at the distance its eye width implies; the
    # iterative solver then refines (with five points it needs that start).
    outer = np.linalg.norm(face.points5[0] - face.points5[2])
    distance = focal * 90.0 / max(float(outer), 1.0)
    centre = image_points.mean(axis=0)
    template_centre = model_points.mean(axis=0)
    tvec = np.array(
        [
            (centre[0] - width / 2.0) * distance / focal - template_centre[0],
            (centre[1] - height / 2.0) * distance / focal - template_centre[1],
            distance,
        ]
    ).reshape(3, 1)
    try:
        ok, rvec, _ = cv2.solvePnP(
            model_points,
            image_points.reshape(-1, 1, 2),
            camera,
            None,
            np.zeros((3, 1)),
            tvec,
            useExtrinsicGuess=True,
            flags=cv2.SOLVEPNP_ITERATIVE,
        )
    except cv2.error:
        ok = False
    if not ok:
        return None, "the landmarks do not fit the face template"
    rotation, _ = cv2.Rodrigues(rvec)
    # rotation = Rz(psi) Ry(theta) Rx(phi) in camera axes (x right, y down, z away);
    # the signs are turned into the conventions in the module docstring.
    theta = math.asin(max(-1.0, min(1.0, -float(rotation[2, 0]))))
    phi = math.atan2(float(rotation[2, 1]), float(rotation[2, 2]))
    psi = math.atan2(float(rotation[1, 0]), float(rotation[0, 0]))
    return (-math.degrees(theta), -math.degrees(phi), -math.degrees(psi)), note


def _pose_angle(index: int) -> Computation:
    def compute(face: FaceInput) -> tuple[float | None, str]:
        angles, note = head_pose(face)
        return (None, note) if angles is None else (angles[index], note)

    return compute


def truncation(face: FaceInput) -> tuple[float | None, str]:
    transform = dlib_chip_transform(
        face.points5, size=_TRUNCATION_GRID, padding=EXPECTED_FACE_PADDING
    )
    steps = np.arange(_TRUNCATION_GRID) + 0.5
    grid = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
    points = transform.to_image(grid)
    height, width = face.rgb.shape[:2]
    inside = (
        (points[:, 0] >= 0)
        & (points[:, 0] < width)
        & (points[:, 1] >= 0)
        & (points[:, 1] < height)
    )
    return float(1.0 - inside.mean()), ""


INTER_EYE_DISTANCE = register(
    ComputedMeasure(
        id="inter_eye_distance",
        name="inter-eye distance",
        definition="distance between the centres of the two eyes (each the midpoint "
        "of the eye's outer and inner corner landmarks), in the evidence image's "
        "pixels",
        unit="px",
        better="higher",
        compute=inter_eye_distance,
    )
)
YAW = register(
    ComputedMeasure(
        id="yaw",
        name="yaw",
        definition="head rotation left/right from the landmarks fitted to a generic "
        "3-D face template (cv2.solvePnP, pinhole camera); positive when the nose "
        "points towards the image's right",
        unit="deg",
        better="nearer zero",
        compute=_pose_angle(0),
    )
)
PITCH = register(
    ComputedMeasure(
        id="pitch",
        name="pitch",
        definition="head rotation up/down from the same template fit; positive when "
        "the face looks up",
        unit="deg",
        better="nearer zero",
        compute=_pose_angle(1),
    )
)
ROLL = register(
    ComputedMeasure(
        id="roll",
        name="roll",
        definition="head tilt in the image plane from the same template fit; "
        "positive when the head is tilted anticlockwise",
        unit="deg",
        better="nearer zero",
        compute=_pose_angle(2),
    )
)
EYE_LINE_ROLL = register(
    ComputedMeasure(
        id="eye_line_roll",
        name="roll of the eye line",
        definition="angle of the line from the image's left eye centre to the "
        "image's right eye centre against the horizontal; positive anticlockwise",
        unit="deg",
        better="nearer zero",
        compute=eye_line_roll,
    )
)
TRUNCATION = register(
    ComputedMeasure(
        id="truncation",
        name="face outside the image",
        definition="share of the face's expected area (the aligned face region "
        "around the landmarks, widened by 10 % on each side) that lies outside the "
        "image",
        unit="fraction 0-1",
        better="lower",
        compute=truncation,
    )
)
