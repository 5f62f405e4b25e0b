"""A demo case built from public-domain photos that ship inside installed packages.

Q1 is a "CCTV-like" still made from scikit-image's astronaut (NASA photo of Eileen
Collins, public domain): half resolution, grey, blurred, sensor noise, heavy JPEG
compression and a camera time stamp.  K1 is the original astronaut photo (same
person), K2 matplotlib's Grace Hopper portrait (US Navy photo, public domain; a
different person).  A newcomer sees a real workflow without data of their own.

``open_demo_case`` keeps one demo case in the user's data folder and reuses it
while it verifies; one that does not is kept (never deleted: it may show what went
wrong) and a new one is made beside it, with a note saying so.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.case.store import Case, CaseError, CaseLockedError
from core.errors import printable
from core.faces.detect import FaceDetector
from core.io.userdirs import user_data_dir
from core.models.base import FaceModel

DEMO_CASE_NUMBER = "DEMO-0001"
DEMO_FOLDER = "demo.xfrcase"  # the next ones, made beside a damaged one: demo-2…
_NUMBERED = re.compile(r"demo(?:-(\d+))?\.xfrcase")


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


def demo_cases_folder() -> Path:
    """Where the demo case lives: the user's data folder, never a case folder."""
    return user_data_dir() / "demo-cases"


@dataclass(frozen=True)
class DemoCase:
    """The demo case opened for writing; ``created`` when it was made just now,
    ``note`` (one line) when an old one did not verify and was left beside it."""

    case: Case
    created: bool
    note: str = ""


def _number(path: Path) -> int:
    """1 for ``demo.xfrcase``, N for ``demo-N.xfrcase``."""
    match = _NUMBERED.fullmatch(path.name)
    return int(match.group(1) or 1) if match else 0


def _demo_folders(base: Path) -> list[Path]:
    """``demo.xfrcase``, ``demo-2.xfrcase``, … in ``base``, oldest first."""
    found = [path for path in base.glob("demo*.xfrcase") if _number(path)]
    return sorted(found, key=_number)


def _open_if_intact(folder: Path, user: str | None) -> tuple[Case | None, str]:
    """The case in ``folder`` opened for writing if it verifies, else why not."""
    try:
        case = Case.open(folder, user=user)
    except CaseLockedError:
        raise  # intact but in use elsewhere: the examiner is told, nothing is made
    except CaseError as error:
        return None, error.reason
    try:
        report = case.verify()
    except BaseException:
        case.close()
        raise
    if report.intact:
        return case, ""
    case.close()
    return None, report.problems[0]


def open_demo_case(
    base: str | Path | None = None,
    *,
    user: str | None = None,
    model: FaceModel | None = None,
    detector: FaceDetector | None = None,
) -> DemoCase:
    """The demo case in ``base`` (default: ``demo_cases_folder()``): the newest one
    there if it verifies, else a new one beside it; the first one when none is."""
    base = Path(base) if base is not None else demo_cases_folder()
    folders = _demo_folders(base)
    note = ""
    if folders and not (folders[-1].is_dir() and not any(folders[-1].iterdir())):
        newest = folders[-1]
        case, problem = _open_if_intact(newest, user)
        if case is not None:
            return DemoCase(case, created=False)
        # after the highest number, so the new case is the newest from now on
        # (numbered after the count, a gap left it below a damaged one, which was
        # then tried, refused and replaced again at every start)
        highest = max(_number(path) for path in folders)
        folder = base / f"demo-{highest + 1}.xfrcase"
        while folder.exists():  # a name taken by something else: never reuse it
            folder = folder.with_name(f"demo-{_number(folder) + 1}.xfrcase")
        note = (
            f"{printable(newest)}: the demo case does not verify ({problem}); it was "
            f"kept, and a new demo case was made in {printable(folder)}"
        )
    else:
        folder = folders[-1] if folders else base / DEMO_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    case = create_demo_case(folder, user=user, model=model, detector=detector)
    return DemoCase(case, created=True, note=note)
