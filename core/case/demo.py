"""A demo case built from public-domain photos that ship inside installed packages.

Q1 is a "CCTV-like" still made from scikit-image's astronaut (NASA photo of Eileen
Collins, public domain): half resolution, grey, blurred, sensor noise, heavy JPEG
compression and a camera time stamp.  K1 is the original astronaut photo (same
person), K2 matplotlib's Grace Hopper portrait (US Navy photo, public domain; a
different person).  A newcomer sees a real workflow without data of their own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from core.case.store import Case
from core.faces.detect import FaceDetector
from core.models.base import FaceModel

DEMO_CASE_NUMBER = "DEMO-0001"


def cctv_still(rgb: np.ndarray, seed: int = 0) -> bytes:
    """JPEG bytes of a degraded, grey, time-stamped copy of ``rgb``."""
    small = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (0, 0), 1.2)
    noise = np.random.default_rng(seed).normal(0, 8, grey.shape)
    grey = np.clip(grey + noise, 0, 255).astype(np.uint8)
    cv2.rectangle(grey, (0, grey.shape[0] - 16), (grey.shape[1], grey.shape[0]), 0, -1)
    cv2.putText(
        grey,
        "CAM 03  2026-03-14 21:07:42",
        (4, grey.shape[0] - 4),
        cv2.FONT_HERSHEY_PLAIN,
        0.8,
        230,
        1,
        cv2.LINE_AA,
    )
    ok, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 30])
    if not ok:  # pragma: no cover - OpenCV always encodes a grey uint8 image
        raise RuntimeError("could not encode the demo still")
    return encoded.tobytes()


def demo_photos(folder: Path) -> dict[str, list[Path]]:
    """Write the demo images into ``folder``; probe and gallery file lists."""
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    astronaut = data.astronaut()
    probe = folder / "cctv_still_cam03.jpg"
    probe.write_bytes(cctv_still(astronaut))
    known = folder / "astronaut_portrait.png"
    Image.fromarray(astronaut).save(known)
    hopper = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return {"probe": [probe], "gallery": [known, hopper]}


def create_demo_case(
    folder: str | Path,
    *,
    examiner: str = "Demo examiner",
    user: str | None = None,
    model: FaceModel | None = None,
    detector: FaceDetector | None = None,
) -> Case:
    """Create the demo case (faces detected; ranked when a model is given).

    ``user`` is who the audit trail names (default: the examiner).
    """
    from core.case import workflow

    case = Case.create(
        folder,
        DEMO_CASE_NUMBER,
        examiner,
        title="Demo: CCTV still against two portraits",
        agency="XFR Desktop demo",
        user=user,
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            photos = demo_photos(Path(scratch))
            for role in ("probe", "gallery"):
                case.add_exhibits(photos[role], role, note="demo image (public domain)")
        for exhibit in case.exhibits():
            workflow.detect_faces(case, exhibit.mark, detector=detector)
        if model is not None:
            workflow.rank_gallery(case, "Q1", model)
    except BaseException:
        case.close()
        raise
    return case
