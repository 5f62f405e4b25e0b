"""A demo case built from public-domain photos that ship inside installed packages.

Q1 is a "CCTV-like" still made from scikit-image's astronaut (NASA photo of Eileen
Collins, public domain): half resolution, grey, blurred, sensor noise, heavy JPEG
compression and a camera time stamp.  K1 is the original astronaut photo (same
person), K2 matplotlib's Grace Hopper portrait (US Navy photo, public domain; a
different person).  A newcomer sees a real workflow without data of their own.

``create_demo_case(..., acev=True)`` adds a full ACE-V examination of Q1 / K1
(``record_acev_demo``): propositions, the analyses, a feature worksheet, an
evaluation made before the model's results were unmasked, a revision after, a
blind verification by a second examiner that disagrees and is resolved, and a
saved superimposition figure - what a report to the ENFSI/FISWG guideline shows.
The plain demo has sequential unmasking off, so that it shows the model's scores
at once.

``create_demo_case(..., cctv=True)`` is the video demo (issue 20): the questioned
material is a synthetic CCTV clip (``core.video.synthetic.write_cctv_clip``: the
astronaut walks toward the camera, Grace Hopper crosses it) stored as V1, tracked
on every 2nd frame; the astronaut's track's two best frames are added as Q1, Q2
with their provenance, and compared with the same two portraits (unmasked, as the
plain demo).  The clip is drawn from a fixed seed, so the demo is the same each time.

``open_demo_case`` keeps one demo case in the user's data folder and reuses it
while it verifies; one that does not is kept (never deleted: it may show what went
wrong) and a new one is made beside it, with a note saying so.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.case.acev import Analysis, FeatureObservation, Propositions, Worksheet
from core.case.store import Case, CaseError, CaseLockedError
from core.case.videos import StoredTrack
from core.errors import BadInputError, printable
from core.faces.detect import FaceDetector
from core.io.userdirs import user_data_dir
from core.models.base import FaceModel

DEMO_CASE_NUMBER = "DEMO-0001"
DEMO_EXAMINER = "A. Examiner"  # who examines the ACE-V demo
DEMO_VERIFIER = "B. Verifier"  # who verifies it, blind
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
    acev: bool = False,
    cctv: bool = False,
) -> Case:
    """Create the demo case (faces detected; ranked when a model is given).

    ``user`` is who the audit trail names (default: the examiner).  ``acev``: the
    examination demo (sequential unmasking on, examined by ``DEMO_EXAMINER`` and
    verified by ``DEMO_VERIFIER``; ``examiner`` and ``user`` are then not used);
    the case is returned open as the examiner's.  ``cctv``: the video demo
    (``create_cctv_demo_case``); not with ``acev``.
    """
    from core.case import workflow

    if cctv:
        if acev:
            raise BadInputError(
                "the ACE-V demo and the CCTV demo are two demos: choose one"
            )
        return create_cctv_demo_case(
            folder, examiner=examiner, user=user, model=model, detector=detector
        )
    if acev:
        examiner, user = DEMO_EXAMINER, None
    case = Case.create(
        folder,
        DEMO_CASE_NUMBER,
        examiner,
        title="Demo: CCTV still against two portraits",
        agency="XFR Desktop demo",
        user=user,
        sequential_unmasking=acev,
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
        if acev:
            case = record_acev_demo(case)
    except BaseException:
        case.close()
        raise
    return case


CCTV_SEED = 0  # the clip's noise and background: the same demo every time
CCTV_EVERY = 2  # frames sampled for tracking
CCTV_BEST = 2  # best frames of the astronaut's track added as probes


def create_cctv_demo_case(
    folder: str | Path,
    *,
    examiner: str = "Demo examiner",
    user: str | None = None,
    model: FaceModel | None = None,
    detector: FaceDetector | None = None,
) -> Case:
    """The video demo: V1 a synthetic CCTV clip, tracked; its astronaut track's
    best frames Q1, Q2; K1, K2 the portraits; compared when a model is given."""
    from core.case import workflow
    from core.video.synthetic import write_cctv_clip

    case = Case.create(
        folder,
        DEMO_CASE_NUMBER,
        examiner,
        title="Demo: CCTV clip against two portraits",
        agency="XFR Desktop demo",
        user=user,
        sequential_unmasking=False,
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            clip = write_cctv_clip(Path(scratch) / "cctv_cam03.mp4", seed=CCTV_SEED)
            case.add_exhibits(
                [Path(clip.path)],
                "probe",
                note="demo video: synthetic CCTV clip made from public-domain photos",
            )
            photos = demo_photos(Path(scratch))
            case.add_exhibits(
                photos["gallery"], "gallery", note="demo image (public domain)"
            )
        for exhibit in case.exhibits():
            workflow.detect_faces(case, exhibit.mark, detector=detector)
        video = case.videos.videos()[0]
        tracks = workflow.track_video(
            case, video.mark, every=CCTV_EVERY, model=model, detector=detector
        )
        walker = _track_of(tracks, clip.person(1).boxes)
        workflow.add_track_frames(case, video.mark, walker.label, best=CCTV_BEST)
        if model is not None:
            workflow.rank_all_probes(case, model)
    except BaseException:
        case.close()
        raise
    return case


def _track_of(
    tracks: Sequence[StoredTrack], boxes: Mapping[int, Sequence[float]]
) -> StoredTrack:
    """The track whose faces lie on the drawn person's boxes on most frames (the
    tracker numbers tracks by first appearance, which the demo need not rely on)."""
    from core.case import workflow

    def hits(stored: StoredTrack) -> int:
        found = 0
        for face in workflow.stored_track(stored).faces:
            drawn = boxes.get(face.frame_number)
            if drawn is None:
                continue
            left, top, right, bottom = face.bbox
            x, y = (left + right) / 2, (top + bottom) / 2
            found += int(drawn[0] <= x <= drawn[2] and drawn[1] <= y <= drawn[3])
        return found

    best = max(tracks, key=hits, default=None)
    if best is None or hits(best) == 0:
        raise CaseError("the demo clip's walker was not found by the face detector")
    return best


ANALYSIS_Q1 = Analysis(
    "limited",
    "a grey, blurred and heavily compressed CCTV still; the face is frontal and "
    "large enough to see the main components",
    ("resolution", "focus or motion blur", "compression", "colour or white balance"),
    visible=("face_head_outline", "hair", "eyebrows", "eyes", "nose", "mouth"),
    not_visible=("ears", "facial_marks", "skin"),
    notes="time stamp burnt into the bottom of the frame (not over the face)",
)
ANALYSIS_K1 = Analysis(
    "suitable",
    "a sharp, well-lit colour portrait",
    visible=(
        "face_head_outline",
        "hair",
        "eyebrows",
        "eyes",
        "nose",
        "mouth",
        "chin_jawline",
    ),
    not_visible=("ears",),
)
PROPOSITIONS = Propositions(
    request="Is the person in the CCTV still (Q1) the person in the portrait (K1)?",
    first="The person in Q1 is the person in K1.",
    second="The person in Q1 is another adult woman of similar apparent age.",
    population="adult women of similar apparent age and build",
)


def demo_worksheet(q_note: int | None = None, k_note: int | None = None) -> Worksheet:
    """The ACE-V demo's worksheet of Q1 / K1 (annotation ids link the nose)."""
    q = (q_note,) if q_note is not None else ()
    k = (k_note,) if k_note is not None else ()
    return Worksheet(
        (
            FeatureObservation(
                "face_head_outline", "similar", notes="oval, full at the cheeks"
            ),
            FeatureObservation(
                "hair", "similar", "hairline", notes="short, swept to one side"
            ),
            FeatureObservation("eyebrows", "similar", "shape", notes="gently arched"),
            FeatureObservation(
                "eyes",
                "different_explained",
                "upper lid and fold",
                notes="fold not resolved in Q1 (blur)",
            ),
            FeatureObservation(
                "nose",
                "similar",
                "tip",
                notes="rounded tip",
                questioned_annotations=q,
                known_annotations=k,
            ),
            FeatureObservation("mouth", "similar", "width"),
            FeatureObservation("ears", "not_visible"),
            FeatureObservation(
                "facial_marks", "not_assessable", notes="too little detail in Q1"
            ),
        ),
        notes="compared on the aligned faces, side by side and superimposed",
    ).sorted()


def record_acev_demo(case: Case, questioned: str = "Q1", known: str = "K1") -> Case:
    """Record the ACE-V demo examination in ``case`` (its examiner's, with its
    faces detected, ranked or not); returns the case open as the examiner's
    (the verifier's part is recorded under their name in between); closed
    when recording fails."""
    try:
        _record_first_examination(case, questioned, known)
    finally:
        folder = case.folder
        case.close()
    with Case.open(folder, user=DEMO_VERIFIER) as second:
        _record_blind_verification(second, questioned, known)
    return Case.open(folder)


def _record_first_examination(case: Case, questioned: str, known: str) -> None:
    from PIL import Image

    from core.case import workflow
    from core.compare_views import compose

    exam = case.examination()
    exam.set_propositions(PROPOSITIONS)
    exam.record_analysis(questioned, ANALYSIS_Q1)
    exam.record_analysis(known, ANALYSIS_K1)
    notes = []
    for label in (questioned, known):
        face = case.face(label)
        tip = [float(v) for v in face.landmarks5[4]]
        notes.append(
            case.add_annotation(
                shape="point",
                points=[tip],
                exhibit=face.mark,
                label="nose tip",
                component="nose",
            ).id
        )
    exam.record_worksheet(questioned, known, demo_worksheet(*notes))
    exam.record_evaluation(
        questioned,
        known,
        "moderate_same",
        "the visible components are similar; Q1's quality limits what can be seen",
    )
    probe, gallery = workflow.aligned_faces(case, questioned, known)
    picture = io.BytesIO()
    Image.fromarray(compose(probe, gallery, "superimposition", 0.5)).save(
        picture, format="PNG"
    )
    exam.save_figure(
        picture.getvalue(),
        view="superimposed",
        questioned=questioned,
        known=known,
        params={"opacity": 0.5},
        caption="K1 at 50 % over Q1, aligned on one eye line",
    )
    exam.unmask(questioned, known)
    exam.record_evaluation(
        questioned,
        known,
        "moderately_strong_same",
        "revised after the model's results: no new observation; the similar "
        "outline and nose weigh more than first written",
    )


def _record_blind_verification(second: Case, questioned: str, known: str) -> None:
    blind = second.examination(blind=True)
    blind.start_blind_session()
    blind.record_analysis(questioned, ANALYSIS_Q1)
    blind.record_analysis(known, ANALYSIS_K1)
    blind.record_worksheet(questioned, known, demo_worksheet())
    blind.record_evaluation(
        questioned, known, "weak_same", "Q1 is too degraded for more than weak"
    )
    blind.record_verification(
        questioned,
        known,
        resolution="discussed: both agree Q1's quality limits the strength; "
        "the report states moderate support",
        resolved_level="moderate_same",
    )


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
    cctv: bool = False,
) -> DemoCase:
    """The demo case in ``base`` (default: ``demo_cases_folder()``): the newest one
    there if it verifies, else a new one beside it; the first one when none is.
    ``cctv``: the video demo (``create_cctv_demo_case``), kept in ``base/cctv``."""
    base = Path(base) if base is not None else demo_cases_folder()
    if cctv:
        base = base / "cctv"
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
    case = create_demo_case(
        folder, user=user, model=model, detector=detector, cctv=cctv
    )
    return DemoCase(case, created=True, note=note)
