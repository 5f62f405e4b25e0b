"""Case workflows: faces, 1:N ranking and cached explanations on a case's exhibits.

The store (``core.case.store``) knows rows and files; this module connects it with
the detector, the face model and the explainers.  Evidence is always read from the
case's own write-protected copy, never from where it was first found.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import processing, wording
from core.calibration import StrengthOfEvidence, calibration_for, evidence_strength
from core.case.derivations import DerivationCheck, Processed
from core.case.examination import Examination, Figure
from core.case.gallery_searches import (
    CASE_CLOSED,
    GallerySearch,
    NewSearch,
    SearchCandidate,
    template_sha256,
)
from core.case.store import (
    Case,
    CaseError,
    CaseFace,
    Comparison,
    Exhibit,
    StoredExplanation,
)
from core.case.videos import FrameCheck, NewFrame, StoredTrack
from core.compare_views import ALIGNED_SIZE, ViewParams, render_view
from core.errors import BadInputError, NoFaceError
from core.explain.base import (
    ExplanationResult,
    FacePair,
    FaceView,
    cache_key,
    get,
)
from core.explain.codec import (
    maps_from_npz,
    maps_to_npz,
    result_from_json,
    result_to_json,
)
from core.faces.align import chip_for_model, dlib_chip_transform, extract_chip
from core.faces.detect import Face, FaceDetector, find_faces
from core.imageio import LoadedImage, load_image
from core.metrics.pair_faithfulness import ALGORITHM_VERSION as FAITHFULNESS_VERSION
from core.metrics.pair_faithfulness import (
    MIN_OTHER_MAPS,
    FaithfulnessSettings,
    PairFaithfulness,
    check_pair,
)
from core.models.base import FaceModel, Threshold
from core.processing import Step
from core.progress import ProgressCallback
from core.quality import FaceInput, FaceQuality, assess
from core.quality.pixels import VIDEO_FRAME_NO_GRID, read_jpeg_tables
from core.report.figures import png_bytes
from core.resources import sha256_file
from core.verify import decide
from core.version import __version__
from core.video.best_frames import MIN_SEPARATION as BEST_FRAMES_SEPARATION
from core.video.best_frames import RankedFrame, best_frames, rank_frames
from core.video.decode import extract_frame
from core.video.tracks import Track, track_faces


# ---- faces -----------------------------------------------------------------------
def detect_faces(
    case: Case,
    mark: str,
    *,
    method: str = "hog",
    detector: FaceDetector | None = None,
) -> list[CaseFace]:
    """Detect the faces of one exhibit and record them (none found: an empty list)."""
    exhibit = case.exhibit(mark)
    image = load_image(case.evidence_path(exhibit))
    try:
        faces = find_faces(image, method=method, detector=detector, with_68=True)
    except NoFaceError:
        faces = []
    return case.set_faces(exhibit.mark, faces, detector=method)


def place_face_in_box(
    case: Case,
    label: str,
    box: Sequence[float],
    *,
    detector: FaceDetector | None = None,
) -> CaseFace:
    """The examiner drew ``box`` around a face: landmarks are predicted inside it
    (dlib's shape predictors, as for detected faces) and recorded as ``label``
    (a face being corrected, or ``Case.next_face_label`` for a missed one)."""
    mark = label.partition("#")[0]
    exhibit = case.exhibit(mark)
    left, top, right, bottom = (float(v) for v in box)
    if not np.isfinite([left, top, right, bottom]).all():
        raise BadInputError("a face box needs four finite numbers")
    left, right = sorted((left, right))
    top, bottom = sorted((top, bottom))
    left, top = max(0.0, left), max(0.0, top)
    right, bottom = min(float(exhibit.width), right), min(float(exhibit.height), bottom)
    if min(right - left, bottom - top) < 8:
        raise BadInputError(
            f"the face box on {exhibit.mark} is smaller than 8 pixels (or lies "
            "outside the image): draw it around the whole face"
        )
    image = load_image(case.evidence_path(exhibit))
    detector = detector or FaceDetector.shared()
    face = detector.face_in_box(image.rgb, (left, top, right, bottom), with_68=True)
    return case.place_face(label, face)


@dataclass(frozen=True)
class EarlierResults:
    """A comparison of earlier records of the shown faces, with its explanations:
    kept when a face is corrected, rejected or reset, and shown as superseded."""

    comparison: Comparison
    probe: CaseFace
    gallery: CaseFace
    explanations: tuple[StoredExplanation, ...]


def earlier_results(
    case: Case, probe_label: str, gallery_label: str
) -> list[EarlierResults]:
    """Explained comparisons of *earlier* records of these two faces, newest first."""
    probe_ids = {f.id: f for f in case.face_history(probe_label)}
    gallery_ids = {f.id: f for f in case.face_history(gallery_label)}
    found = []
    for comparison in case.comparisons():
        probe = probe_ids.get(comparison.probe_face_id)
        gallery = gallery_ids.get(comparison.gallery_face_id)
        if probe is None or gallery is None:
            continue
        if not (probe.superseded or gallery.superseded):
            continue  # the current comparison
        explanations = tuple(case.explanations(comparison.id))
        if explanations:
            found.append(EarlierResults(comparison, probe, gallery, explanations))
    return sorted(found, key=lambda e: e.comparison.id, reverse=True)


@dataclass(frozen=True)
class EarlierResult:
    """A stored explanation of an earlier record of the shown pair, and the note
    that says so wherever it is shown."""

    result: ExplanationResult
    earlier: EarlierResults
    note: str


def load_earlier_results(
    case: Case, probe_label: str, gallery_label: str
) -> dict[int, EarlierResult]:
    """Every explanation of the pair's earlier face records, by explanation id,
    maps read from the case (newest comparison first)."""
    loaded = {}
    for earlier in earlier_results(case, probe_label, gallery_label):
        replaced = [f for f in (earlier.probe, earlier.gallery) if f.superseded]
        note = wording.earlier_face_note(
            " and ".join(f.label for f in replaced),
            " and ".join(f.created for f in replaced),
        )
        for stored in earlier.explanations:
            loaded[stored.id] = EarlierResult(load_result(case, stored), earlier, note)
    return loaded


def explained_comparisons(case: Case, label: str) -> list[Comparison]:
    """Comparisons of the current record of ``label`` that have explanations: the
    ones a change of this face would leave behind as superseded."""
    face = case.face(label)
    return [
        comparison
        for comparison in case.comparisons()
        if face.id in (comparison.probe_face_id, comparison.gallery_face_id)
        and case.explanations(comparison.id)
    ]


def aligned_faces(
    case: Case, probe_label: str, gallery_label: str, size: int = ALIGNED_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Both faces aligned on one eye line at ``size`` px (dlib's five-point
    geometry, the model chip's, whatever the model), for the examiner's
    comparison views (``core.compare_views``)."""
    faces = []
    for label in (probe_label, gallery_label):
        face = case.face(label)
        rgb = load_evidence(case, face.mark).rgb
        transform = dlib_chip_transform(face.landmarks5, size=size, padding=0.25)
        faces.append(extract_chip(rgb, transform))
    return faces[0], faces[1]


def load_evidence(case: Case, mark: str) -> LoadedImage:
    return load_image(case.evidence_path(case.exhibit(mark)))


def face_view(case: Case, face: CaseFace, model: FaceModel, side: str) -> FaceView:
    """One side of a pair, aligned from the case's copy of the evidence."""
    exhibit = case.exhibit(face.mark)
    image = load_image(case.evidence_path(exhibit))
    aligned = chip_for_model(image.rgb, face.to_face(), model.preprocessing)
    return FaceView(
        side=side,
        chip=aligned.chip,
        transform=aligned.transform,
        image_shape=(int(image.rgb.shape[0]), int(image.rgb.shape[1])),
        image_sha256=exhibit.sha256,
        face_record=face.to_face().to_dict(),
        path=f"{exhibit.mark} ({exhibit.original_name})",
    )


def embed_faces(
    case: Case,
    faces: Sequence[CaseFace],
    model: FaceModel,
    progress: ProgressCallback | None = None,
) -> dict[int, np.ndarray]:
    """Embeddings of ``faces``, from the case's cache or computed (and cached)."""
    cached = case.cached_embeddings([f.id for f in faces], model.weights_sha256)
    missing = [f for f in faces if f.id not in cached]
    computed: dict[int, np.ndarray] = {}
    for number, face in enumerate(missing):
        if progress:
            progress(number, len(missing), f"embedding {face.label}")
        view = face_view(case, face, model, "probe")
        computed[face.id] = model.embed_chips(view.chip[None])[0].astype(np.float32)
    case.store_embeddings(computed, model.model_id, model.weights_sha256)
    if progress:
        progress(len(missing), len(missing), "embeddings ready")
    return {**cached, **computed}


# ---- 1:N ranking -----------------------------------------------------------------
def role_faces(case: Case, role: str) -> list[CaseFace]:
    """The current faces of the case's ``role`` ("probe"/"gallery") exhibits,
    oldest first (superseded faces left out, as ``Case.faces`` does)."""
    marks = {exhibit.mark for exhibit in case.exhibits(role)}
    return [face for face in case.faces() if face.mark in marks]


@dataclass(frozen=True)
class Candidate:
    rank: int
    face: CaseFace
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "gallery": self.face.label,
            "comparison_id": self.comparison.id,
            "cosine_similarity": self.comparison.similarity,
            "euclidean_distance": self.comparison.distance,
            "decision": self.comparison.decision,
        }


def rank_scores(
    probe: np.ndarray, gallery: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine similarities and distances of one probe to N gallery embeddings.

    Returns (order best first, similarities, distances); vectorised so that 10 000
    cached embeddings rank in milliseconds.
    """
    probe = np.asarray(probe, np.float64)
    gallery = np.asarray(gallery, np.float64).reshape(-1, probe.size)
    norms = np.linalg.norm(gallery, axis=1) * np.linalg.norm(probe)
    similarities = (gallery @ probe) / np.where(norms > 0, norms, 1.0)
    distances = np.linalg.norm(gallery - probe, axis=1)
    order = np.argsort(-similarities, kind="stable")
    return order, similarities, distances


def rank_gallery(
    case: Case,
    probe_label: str,
    model: FaceModel,
    *,
    threshold: Threshold | None = None,
    progress: ProgressCallback | None = None,
) -> list[Candidate]:
    """Every current gallery face against the probe face, best first (1:N)."""
    threshold = threshold or model.threshold
    probe = case.face(probe_label)
    if case.exhibit(probe.mark).role != "probe":
        raise BadInputError(f"{probe.mark} is a gallery exhibit, not a probe")
    gallery = role_faces(case, "gallery")
    if not gallery:
        raise BadInputError("the case has no gallery face to compare with")
    vectors = embed_faces(case, [probe, *gallery], model, progress)
    order, similarities, distances = rank_scores(
        vectors[probe.id], np.stack([vectors[f.id] for f in gallery])
    )
    scores = [
        (
            gallery[index].id,
            float(similarities[index]),
            float(distances[index]),
            decide(float(similarities[index]), float(distances[index]), threshold),
        )
        for index in order
    ]
    comparisons = case.record_comparisons(
        probe.id,
        scores,
        model_id=model.model_id,
        model_sha256=model.weights_sha256,
        threshold=threshold.to_dict(),
    )
    return [
        Candidate(rank, gallery[index], comparison)
        for rank, (index, comparison) in enumerate(
            zip(order, comparisons, strict=True), start=1
        )
    ]


def compare(
    case: Case,
    probe_label: str,
    gallery_label: str,
    model: FaceModel,
    *,
    threshold: Threshold | None = None,
) -> Comparison:
    threshold = threshold or model.threshold
    probe, gallery = case.face(probe_label), case.face(gallery_label)
    vectors = embed_faces(case, [probe, gallery], model)
    _, similarities, distances = rank_scores(vectors[probe.id], vectors[gallery.id])
    similarity, distance = float(similarities[0]), float(distances[0])
    (comparison,) = case.record_comparisons(
        probe.id,
        [
            (
                gallery.id,
                similarity,
                distance,
                decide(float(similarity), float(distance), threshold),
            )
        ],
        model_id=model.model_id,
        model_sha256=model.weights_sha256,
        threshold=threshold.to_dict(),
    )
    return comparison


# ---- explanations, cached in the case --------------------------------------------
@dataclass(frozen=True)
class CaseExplanation:
    stored: StoredExplanation
    result: ExplanationResult
    from_cache: bool


def explain(
    case: Case,
    probe_label: str,
    gallery_label: str,
    method_id: str,
    model: FaceModel,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    batch_size: int | None = None,
) -> CaseExplanation:
    """Explain a pair of the case; a stored result with the same key is reused."""
    from core import __version__

    explainer = get(method_id)
    resolved = explainer.info.resolve(params)
    comparison = compare(case, probe_label, gallery_label, model)
    probe, gallery = case.face(probe_label), case.face(gallery_label)
    pair = FacePair(
        face_view(case, probe, model, "probe"),
        face_view(case, gallery, model, "gallery"),
    )
    extras = explainer.cache_extras(model, resolved)
    key = cache_key(
        pair,
        model,
        method_id,
        resolved,
        int(seed),
        __version__,
        extras,
        algorithm_version=explainer.info.algorithm_version,
        threshold=model.threshold,  # what explainer.explain below decides with
    )
    stored = case.find_explanation(key)
    if stored is not None:
        return CaseExplanation(stored, load_result(case, stored), from_cache=True)
    result = explainer.explain(
        pair,
        model,
        resolved,
        seed=seed,
        progress=progress,
        cancel=cancel,
        batch_size=batch_size,
    )
    stored = case.store_explanation(
        comparison.id, result_to_json(result), maps_to_npz(result)
    )
    return CaseExplanation(stored, result, from_cache=False)


def maps_npz(result: ExplanationResult) -> bytes:
    """All maps of a result as one compressed ``.npz`` (see ``core.explain.codec``)."""
    return maps_to_npz(result)


def load_result(case: Case, stored: StoredExplanation) -> ExplanationResult:
    """An ``ExplanationResult`` rebuilt from the case (maps file hash-checked)."""
    from core.resources import sha256_file

    path = case.derived_path(stored.maps_sha256)
    if sha256_file(path) != stored.maps_sha256:
        raise BadInputError(
            "stored maps do not match their hash; run the explanation again", path
        )
    probe, gallery = maps_from_npz(path)
    return result_from_json(stored.result, probe, gallery)


# ---- faithfulness of an explanation, for its own pair ------------------------------
# Other faces of the case whose maps test pair specificity (pair_faithfulness): the
# fewest that can make a map pair-specific (chance 1/(K+1) <= 5 %); each costs two
# runs of the method.
DEFAULT_REFERENCE_FACES = MIN_OTHER_MAPS


@dataclass(frozen=True)
class CaseFaithfulness:
    explanation: CaseExplanation
    result: PairFaithfulness
    from_cache: bool


def reference_faces(
    case: Case, probe_label: str, gallery_label: str, count: int
) -> list[CaseFace]:
    """Up to ``count`` faces of the case, one per exhibit other than the pair's:
    each exhibit's first current face, oldest exhibit first (the same case always
    gives the same references; two faces of one photo would count it twice)."""
    probe, gallery = case.face(probe_label), case.face(gallery_label)
    own = {probe.exhibit_id, gallery.exhibit_id}
    first: dict[int, CaseFace] = {}
    # by exhibit and face number, not row id: a correction (a new row) or an undo
    # must not change which face of an exhibit stands for it
    for face in sorted(case.faces(), key=lambda f: (f.exhibit_id, f.face_index)):
        if not face.superseded and face.exhibit_id not in own:
            first.setdefault(face.exhibit_id, face)
    return [first[exhibit] for exhibit in sorted(first)][: max(0, count)]


def check_faithfulness(
    case: Case,
    probe_label: str,
    gallery_label: str,
    method_id: str,
    model: FaceModel,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    settings: FaithfulnessSettings | None = None,
    reference_count: int = DEFAULT_REFERENCE_FACES,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    batch_size: int | None = None,
) -> CaseFaithfulness:
    """The per-pair faithfulness verdicts of an explanation (stored and reused)."""
    from core import __version__

    settings = settings or FaithfulnessSettings(seed=seed)
    explained = explain(
        case,
        probe_label,
        gallery_label,
        method_id,
        model,
        params=params,
        seed=seed,
        progress=progress,
        cancel=cancel,
        batch_size=batch_size,
    )
    references = [
        face_view(case, face, model, "gallery")
        for face in reference_faces(case, probe_label, gallery_label, reference_count)
    ]
    key = faithfulness_key(explained.result, references, settings, __version__)
    for stored_key, record in case.faithfulness_records(explained.stored.id):
        if stored_key == key:
            return CaseFaithfulness(
                explained, PairFaithfulness.from_dict(record), from_cache=True
            )
    pair = FacePair(
        face_view(case, case.face(probe_label), model, "probe"),
        face_view(case, case.face(gallery_label), model, "gallery"),
    )
    checked = check_pair(
        explained.result,
        pair,
        model,
        references,
        settings=settings,
        batch_size=batch_size or 64,
        progress=progress,
        cancel=cancel,
    )
    record = {
        **checked.to_dict(),
        "key": key,
        "software_version": __version__,
        # the reference faces as they were: a later rejection or correction of one
        # makes this check stale (stored_faithfulness)
        "reference_faces": _face_records(references),
    }
    case.store_faithfulness(explained.stored.id, key, record)
    return CaseFaithfulness(explained, checked, from_cache=False)


def faithfulness_key(
    result: ExplanationResult,
    references: Sequence[FaceView],
    settings: FaithfulnessSettings,
    software_version: str,
) -> str:
    """SHA-256 over everything that determines the verdicts."""
    payload = {
        "explanation": result.cache_key,
        "references": [
            {"sha256": view.image_sha256, "face": dict(view.face_record)}
            for view in references
        ],
        "settings": settings.to_dict(),
        "algorithm_version": FAITHFULNESS_VERSION,
        "software_version": software_version,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _face_records(views: Sequence[FaceView]) -> list[dict[str, Any]]:
    return [{"sha256": v.image_sha256, "face": dict(v.face_record)} for v in views]


def stored_faithfulness(case: Case, explanation_id: int) -> PairFaithfulness | None:
    """The newest faithfulness check of a stored explanation made by this
    version of the check, whose reference faces are still current faces of the
    case (a check made with a face later rejected, corrected or detected again is
    stale; the audit trail and the case keep it)."""
    current = None
    for _key, record in reversed(case.faithfulness_records(explanation_id)):
        if record.get("algorithm_version") != FAITHFULNESS_VERSION:
            continue
        used = record.get("reference_faces")
        if used is not None:  # recorded since 0.6
            if current is None:
                current = {
                    json.dumps(r, sort_keys=True, default=str)
                    for r in _current_face_records(case)
                }
            if any(
                json.dumps(r, sort_keys=True, default=str) not in current for r in used
            ):
                continue
        return PairFaithfulness.from_dict(record)
    return None


def _current_face_records(case: Case) -> list[dict[str, Any]]:
    """Each current face as ``_face_records`` writes it (image hash, face record)."""
    sha = {exhibit.mark: exhibit.sha256 for exhibit in case.exhibits()}
    return [
        {"sha256": sha[face.mark], "face": face.to_face().to_dict()}
        for face in case.faces()
    ]


# ---- intake, export and import with their audit entries ---------------------------
# (moved from the command line, issue 17: the GUI needs the same steps)
@dataclass(frozen=True)
class Intake:
    """Exhibits added and refused, and how many faces each added one showed."""

    result: Any  # core.case.store.IntakeResult
    faces: dict[str, int]  # mark -> faces found; absent when detection did not run


def add_and_detect(
    case: Case,
    files: Sequence[Any],
    role: str,
    *,
    note: str = "",
    detect: bool = True,
    detector: str = "hog",
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Intake:
    """Take ``files`` into the case as ``role`` exhibits, then (``detect``) find the
    faces on each one added (the CLI's ``case add`` and the GUI's intake)."""
    result = case.add_exhibits(files, role, note=note, progress=progress, cancel=cancel)
    faces = {}
    if detect:
        for number, exhibit in enumerate(result.added):
            if progress:
                progress(number, len(result.added), f"finding faces in {exhibit.mark}")
            faces[exhibit.mark] = len(detect_faces(case, exhibit.mark, method=detector))
    return Intake(result, faces)


@dataclass(frozen=True)
class Export:
    """A written case archive: its manifest, SHA-256 and signer (or None)."""

    manifest: dict[str, Any]
    sha256: str
    signed_by: dict[str, str] | None


def export_audited(case: Case, archive: Any, signer: Any = None) -> Export:
    """Write the case to the zip ``archive`` (signed by ``signer`` when given) and
    record the export, with the archive's digest and the pinned head, in the
    audit trail (a start entry first, so that a failed export leaves a trace)."""
    from pathlib import Path

    from core.case.archive import export_case
    from core.resources import sha256_file

    case.log("case.export.start", {"archive": str(Path(archive).resolve())})
    manifest = export_case(
        case.folder, archive, case_info=case.info().to_dict(), signer=signer
    )
    digest = sha256_file(archive)
    signed_by = (
        None
        if signer is None
        else {"name": signer.name, "fingerprint_sha256": signer.fingerprint_sha256}
    )
    case.log(
        "case.export",
        {
            "archive": str(Path(archive).resolve()),
            "archive_sha256": digest,
            "files": len(manifest["files"]),
            "audit_head": manifest["audit_head"],
            "state_digest": manifest["state_digest"],
            "signed_by": signed_by,
        },
    )
    return Export(manifest, digest, signed_by)


@dataclass(frozen=True)
class Import:
    """An imported case: the archive's verdict and the new case's verification."""

    result: Any  # core.case.archive.ImportResult
    report: Any  # core.case.store.VerifyReport


def import_audited(
    archive: Any, folder: Any, *, trust: Sequence[Any] = (), user: str | None = None
) -> Import:
    """Import the zip ``archive`` into the new case ``folder`` and record the import
    (archive digest, head, signer) in its audit trail, then verify it.

    Raises ``core.case.archive.ArchiveVerificationError`` when the archive is
    refused.  A folder left without its import entry is removed.
    """
    from pathlib import Path

    from core.case.archive import import_case
    from core.resources import sha256_file

    digest = sha256_file(archive) if Path(archive).is_file() else None
    result = import_case(archive, folder, trust=list(trust))
    signature = result.signature
    try:
        with Case.open(folder, user=user) as case:
            case.log(
                "case.import",
                {
                    "archive": str(Path(archive).resolve()),
                    "archive_sha256": digest,
                    "archive_audit_head": {
                        "seq": result.head[0],
                        "hash": result.head[1],
                    },
                    "archive_state_digest": result.state_digest,
                    "archive_head_in_manifest": result.head_pinned,
                    "signed_by": None
                    if signature is None
                    else {
                        "name": signature.signer_name,
                        "fingerprint_sha256": signature.fingerprint_sha256,
                        "trusted": signature.trusted,
                    },
                },
            )
            report = case.verify()
    except BaseException:
        # The import is not done until the case records it; a folder left behind
        # (a full disk, Ctrl-C) would be a case without its import entry.  The
        # folder did not exist before (import_case refuses one that does).
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Import(result, report)


# ---- what the workspace loads (moved out of the GUI widgets; each runs in a worker)


@dataclass
class LoadedPair:
    """Everything the workspace shows for one pair (loaded in a worker)."""

    probe_label: str
    gallery_label: str
    pair: FacePair
    images: tuple[np.ndarray, np.ndarray]  # evidence RGB, EXIF orientation applied
    faces: tuple[CaseFace, CaseFace]
    comparison: Comparison
    # the LR with its cautions on the image conditions (None: not calibrated)
    strength: StrengthOfEvidence | None = None


def load_pair(
    case: Case, probe_label: str, gallery_label: str, model: FaceModel
) -> LoadedPair:
    """Read both evidence copies, align both faces, score the pair."""
    probe, gallery = case.face(probe_label), case.face(gallery_label)
    images = tuple(
        load_image(case.evidence_path(case.exhibit(face.mark))).rgb
        for face in (probe, gallery)
    )
    pair = FacePair(
        face_view(case, probe, model, "probe"),
        face_view(case, gallery, model, "gallery"),
    )
    comparison = compare(case, probe_label, gallery_label, model)
    return LoadedPair(
        probe_label, gallery_label, pair, (images[0], images[1]), (probe, gallery),
        comparison, comparison_strength(case, comparison),
    )  # fmt: skip


def stored_faithfulness_checks(
    case: Case, explanation_ids: Sequence[int]
) -> dict[int, PairFaithfulness | None]:
    """The newest stored faithfulness check of each explanation (or None)."""
    return {i: stored_faithfulness(case, i) for i in explanation_ids}


def load_results(case: Case, comparison_id: int) -> dict[int, ExplanationResult]:
    """Every stored explanation of one comparison, maps read from the case."""
    return {
        stored.id: load_result(case, stored)
        for stored in case.explanations(comparison_id)
    }


def evidence_thumbnails(
    case: Case, marks: Sequence[str], side: int
) -> dict[str, np.ndarray]:
    """Small RGB previews (longest side ``side`` px) of the case's evidence copies.

    A copy that cannot be read gets no thumbnail: ``verify`` reports it, and the
    exhibit list must still show.
    """
    import cv2

    out = {}
    for mark in marks:
        try:
            rgb = load_image(case.evidence_path(case.exhibit(mark))).rgb
        except Exception:  # a broken copy shows no thumbnail; verify reports it
            continue
        scale = side / max(rgb.shape[:2])
        size = (
            max(1, round(rgb.shape[1] * scale)),
            max(1, round(rgb.shape[0] * scale)),
        )
        out[mark] = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return out


def channel_analysis(
    model: FaceModel,
    layer: str,
    case: Case | None,
    folder: str | None,
    max_faces: int,
    max_examples: int,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Any:
    """Faces (a folder, else the open case) -> the channel report of one layer.

    Returns a ``core.ecloss.channels.ChannelReport``; that module is imported on
    use, as only this workflow needs it.
    """
    from core.ecloss.channels import analyse_channels, case_face_chips, load_face_chips

    if folder:
        faces = load_face_chips(
            folder, model.preprocessing, max_images=max_faces, cancel=cancel
        )
        source = folder
    else:
        if case is None:
            raise BadInputError("open a case or choose a folder of faces")
        faces = case_face_chips(case, model.preprocessing, cancel=cancel)
        source = "faces of the open case"
    report = analyse_channels(
        model,
        layer,
        faces,
        examples=min(max_faces, max_examples),
        progress=progress,
        cancel=cancel,
    )
    report.data = str(source)
    return report


# ---- 1:N for every probe, and the candidates table of one probe (issue 18) --------
def rank_all_probes(
    case: Case,
    model: FaceModel,
    *,
    threshold: Threshold | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, list[Candidate]]:
    """1:N for every current probe face: probe label -> its candidates, best first.

    Every face is embedded once (cached embeddings reused), then each probe is
    ranked with ``rank_gallery``; the comparisons are stored as for one probe.
    An empty dict when the case has no probe or no gallery face yet.
    """
    from core.errors import Cancelled

    probes = role_faces(case, "probe")
    gallery = role_faces(case, "gallery")
    if not probes or not gallery:
        return {}
    embed_faces(case, [*probes, *gallery], model, progress)
    ranked: dict[str, list[Candidate]] = {}
    for number, probe in enumerate(probes):
        if cancel is not None and cancel():
            raise Cancelled("ranking cancelled")
        if progress:
            progress(number, len(probes), f"ranking the gallery for {probe.label}")
        ranked[probe.label] = rank_gallery(
            case, probe.label, model, threshold=threshold
        )
    if progress:
        progress(len(probes), len(probes), f"ranked {len(probes)} probe face(s)")
    return ranked


@dataclass(frozen=True)
class CandidateRow:
    """One gallery face in a probe's candidates table (read from stored scores)."""

    rank: int  # by the decision score, 1 = best
    gallery_label: str
    comparison_id: int
    distance: float
    similarity: float
    decision: str  # "accept" / "reject"
    likelihood_ratio: float | None  # None when the model has no calibration
    lr_words: str  # the verbal scale of the LR ("" without calibration)

    def decision_score(self, metric: str) -> float:
        """The score the decision rests on: the distance (euclidean rule) or the
        cosine similarity (cosine rule)."""
        return self.distance if metric == "euclidean" else self.similarity


def candidate_rows(
    case: Case, probe_label: str, model: FaceModel
) -> list[CandidateRow]:
    """The stored comparisons of one probe with the current gallery faces, scored by
    ``model``, best first by the decision score of the model's rule (smallest
    distance for a euclidean rule, largest cosine for a cosine rule).

    Reads the case only (no embedding): quick enough for the GUI thread.
    """
    probe = case.face(probe_label)
    current = {f.id: f.label for f in role_faces(case, "gallery")}
    newest: dict[int, Comparison] = {}
    for comparison in case.comparisons():  # oldest first: the newest score wins
        if (
            comparison.probe_face_id == probe.id
            and comparison.gallery_face_id in current
            and comparison.model_sha256 == model.weights_sha256
        ):
            newest[comparison.gallery_face_id] = comparison
    metric = model.threshold.metric
    sign = 1.0 if metric == "euclidean" else -1.0
    ordered = sorted(
        newest.values(),
        key=lambda c: sign * (c.distance if metric == "euclidean" else c.similarity),
    )
    rows = []
    for rank, comparison in enumerate(ordered, start=1):
        strength = listed_strength(case, comparison)
        rows.append(
            CandidateRow(
                rank=rank,
                gallery_label=current[comparison.gallery_face_id],
                comparison_id=comparison.id,
                distance=float(comparison.distance),
                similarity=float(comparison.similarity),
                decision=comparison.decision,
                likelihood_ratio=None
                if strength is None
                else float(strength.likelihood_ratio),
                lr_words="" if strength is None else strength.words,
            )
        )
    return rows


# ---- annotations: the examiner's list -------------------------------------------


@dataclass(frozen=True)
class AnnotationRow:
    """One annotation as the examiner's list shows it: on an exhibit (``exhibit``
    is its mark) or on a stored explanation (``comparison_id`` is that
    explanation's pair, so the list can keep it with the pair it belongs to)."""

    annotation_id: int
    exhibit: str  # mark, "" for an annotation on an explanation
    explanation_id: int | None
    comparison_id: int | None
    shape: str
    component: str | None
    label: str
    note: str
    author: str
    created: str
    modified: str

    @property
    def target(self) -> str:
        """Where it is drawn: "K1" or "explanation 3"."""
        return self.exhibit or f"explanation {self.explanation_id}"

    @property
    def name(self) -> str:
        """How the examiner calls it: its label, else its FISWG component, else
        its shape ("'left ear scar' on K1", "rectangle on K1")."""
        return annotation_name(self.label, self.component, self.shape, self.target)


def annotation_name(label: str, component: str | None, shape: str, target: str) -> str:
    """ "'left ear scar' on K1": the label, else the FISWG component, else the
    shape, and where it is (the undo menu and the delete hint use it)."""
    what = f"'{label}'" if label else (component or shape)
    return f"{what} on {target}"


def annotation_rows(case: Case) -> list[AnnotationRow]:
    """Every annotation of the case, oldest first, with the mark it is on."""
    marks = {exhibit.id: exhibit.mark for exhibit in case.exhibits()}
    annotations = case.annotations()
    # explanations carry their maps: read them only when one is annotated
    on_explanations = any(a.explanation_id is not None for a in annotations)
    pairs = (
        {e.id: e.comparison_id for e in case.explanations()} if on_explanations else {}
    )
    return [
        AnnotationRow(
            annotation_id=a.id,
            exhibit="" if a.exhibit_id is None else marks.get(a.exhibit_id, "?"),
            explanation_id=a.explanation_id,
            comparison_id=(
                None if a.explanation_id is None else pairs.get(a.explanation_id)
            ),
            shape=a.shape,
            component=a.component,
            label=a.label,
            note=a.note,
            author=a.author,
            created=a.created,
            modified=a.modified,
        )
        for a in annotations
    ]


def annotation_row(case: Case, annotation_id: int) -> AnnotationRow:
    """One annotation's row (``BadInputError`` when there is none)."""
    for row in annotation_rows(case):
        if row.annotation_id == annotation_id:
            return row
    raise BadInputError(f"no annotation with id {annotation_id}")


def save_comparison_figure(
    examination: Examination,
    questioned: str,
    known: str,
    params: Mapping[str, Any],
    caption: str = "",
    faces: tuple[np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Keep a comparison view as the case's next numbered figure (audited).

    The picture is drawn from ``params`` (``core.compare_views.ViewParams``) at
    the aligned chips' own pixels, not grabbed from a screen, so the report and
    the CLI can redraw it from the params stored with it.  ``faces``: the two
    chips ``aligned_faces`` made for this pair, when the caller has them already
    (the GUI); otherwise they are aligned again from the case's evidence copies.
    """
    try:
        view = ViewParams.from_dict(params)
    except ValueError as error:
        raise BadInputError(str(error)) from error
    if faces is None:
        faces = aligned_faces(examination.case, questioned, known, view.chip_size)
    try:
        picture = render_view(faces[0], faces[1], view)
    except ValueError as error:
        raise BadInputError(str(error)) from error
    return examination.save_figure(
        png_bytes(picture),
        view=view.view,
        questioned=questioned,
        known=known,
        params=view.to_dict(),
        caption=caption,
    )


# ---- face image quality (issue 20 item 3) ------------------------------------------


def face_quality(case: Case, label: str, model: FaceModel | None = None) -> FaceQuality:
    """The quality measures and summary of the current face ``label``, measured on
    the case's copy of the evidence; with ``model``, also its embedding length
    (from the case's cache when there, else computed and not stored, so that a
    case open read-only can be measured)."""
    face = case.face(label)
    return _face_qualities(case, [face], model)[0]


def case_quality(case: Case, model: FaceModel | None = None) -> list[FaceQuality]:
    """`face_quality` of every current face of the case, oldest first."""
    return _face_qualities(case, case.faces(), model)


def _face_qualities(
    case: Case, faces: Sequence[CaseFace], model: FaceModel | None
) -> list[FaceQuality]:
    cached = (
        case.cached_embeddings([f.id for f in faces], model.weights_sha256)
        if model is not None
        else {}
    )
    evidence: dict[str, tuple[LoadedImage, dict[int, list[int]] | None]] = {}
    results = []
    for face in faces:
        if face.mark not in evidence:
            path = case.evidence_path(case.exhibit(face.mark))
            evidence[face.mark] = (load_image(path), read_jpeg_tables(path))
        image, tables = evidence[face.mark]
        embedding = cached.get(face.id)
        if model is not None and embedding is None:
            view = face_view(case, face, model, "probe")
            embedding = model.embed_chips(view.chip[None])[0]
        exhibit = case.exhibit(face.mark)
        taken = case.videos.frame(face.mark)
        video_frame = taken is not None and taken.source == "video"
        face_input = FaceInput(
            rgb=image.rgb,
            bbox=face.bbox,
            landmarks5=face.landmarks5,
            landmarks68=face.landmarks68,
            embedding=embedding,
            jpeg_tables=tables,
            # EXIF turned the pixels: the file's 8x8 block grid is not theirs.
            blocks_aligned=image.exif_orientation == 1,
            no_block_grid=VIDEO_FRAME_NO_GRID if video_frame else "",
            name=f"face {face.label} ({exhibit.original_name})",
        )
        results.append(assess(face_input, label=face.label))
    return results


# ---- video: face tracks and frames (issue 20 items 1, 2 and 4) ----------------------
DEFAULT_TRACK_EVERY = 2  # detect on every 2nd frame: CCTV at 10-25 fps moves little


def track_video(
    case: Case,
    mark: str,
    *,
    every: int = DEFAULT_TRACK_EVERY,
    method: str = "hog",
    model: FaceModel | None = None,
    stream: int | None = None,
    detector: FaceDetector | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[StoredTrack]:
    """Find the faces on every ``every``-th frame of video ``mark``, link them into
    tracks (with ``model``'s embeddings as well as the boxes), and record the run.

    The run's parameters say everything needed to find the same tracks again: the
    sampling, the detector, the model and its weights' hash, the linking gates and
    the tracker's algorithm version.
    """
    video = case.videos.video(mark)
    index = case.videos.video_stream(video, stream)
    found_by = detector or FaceDetector.shared()

    def detect(rgb: np.ndarray) -> list[Face]:
        return found_by.detect(rgb, method, True)

    embed = None
    if model is not None:
        preprocessing = model.preprocessing

        def embed(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
            chips = [chip_for_model(rgb, face, preprocessing).chip for face in faces]
            return model.embed_chips(np.stack(chips))

    result = track_faces(
        case.videos.video_path(video),
        detect=detect,
        embed=embed,
        every=every,
        stream_index=index,
        progress=progress,
        cancel=cancel,
    )
    if not result.frames_decoded:
        raise BadInputError(
            f"no frame of stream {index} of {video.mark} ({video.original_name}) "
            "can be decoded; nothing was tracked"
        )
    if result.video_sha256 != video.sha256:  # the stored copy changed under us
        raise BadInputError(
            f"the evidence file of {video.mark} no longer matches its intake hash "
            "(run `xfr case verify`)"
        )
    params = {
        "video_sha256": result.video_sha256,
        "stream_index": result.stream_index,
        "every": result.every,
        "detector": method,
        "model_id": None if model is None else model.model_id,
        "model_sha256": None if model is None else model.weights_sha256,
        "linking": result.parameters.to_dict(),
        "frames_decoded": result.frames_decoded,
        "frames_sampled": result.frames_sampled,
        "decoder": result.decoder,
        "algorithm_version": result.algorithm_version,
        "software_version": __version__,
    }
    return case.videos.record_tracks(
        video.mark, [track.to_dict() for track in result.tracks], params
    )


def stored_track(track: StoredTrack) -> Track:
    """The tracker's ``Track`` of a stored one (its faces, frames and quality)."""
    try:
        return Track.from_dict(dict(track.content))
    except (KeyError, TypeError, ValueError) as error:
        raise BadInputError(
            f"track {track.label} of {track.video} cannot be read "
            f"({type(error).__name__}: {error}); run `xfr case verify`"
        ) from None


def rank_track(case: Case, mark: str, track: str | int) -> list[RankedFrame]:
    """Every face of a stored track, best first (``core.video.best_frames``)."""
    return rank_frames(stored_track(case.videos.track(mark, track)))


def add_track_frames(
    case: Case,
    mark: str,
    track: str | int,
    *,
    best: int | None = None,
    frames: Sequence[int] = (),
    min_separation: int = BEST_FRAMES_SEPARATION,
) -> list[Exhibit]:
    """Add frames of a track of video ``mark`` as exhibits of the video's role.

    ``best`` takes the best-ranked frames (at least ``min_separation`` apart);
    ``frames`` names frames by number instead (the examiner's own choice, which
    may override the ranking).  Each frame is decoded again from the stored video,
    exactly, and must give the pixels recorded when it was tracked; its face on
    the track is recorded as the new exhibit's face.
    """
    if (best is None) == (not frames):
        raise BadInputError("give either a number of best frames or frame numbers")
    stored = case.videos.track(mark, track)
    found = stored_track(stored)
    ranked = {r.frame_number: r for r in rank_frames(found)}
    if best is not None:
        if best < 1:
            raise BadInputError(
                f"the number of best frames must be 1 or more, not {best}"
            )
        chosen = next_best_frames(
            case,
            stored.video,
            found,
            best,
            min_separation=min_separation,
            label=stored.label,
        )
        why = "ranked"
    else:
        missing = [n for n in frames if n not in ranked]
        if missing:
            span = f"{found.first_frame}-{found.last_frame}"
            raise BadInputError(
                f"track {stored.label} of {stored.video} has no face on frame "
                f"{missing[0]} (its faces are on frames {span}, sampled every "
                f"{stored.params.get('every', 1)} frames; `xfr case tracks --json` "
                "lists them)"
            )
        chosen = [ranked[n] for n in dict.fromkeys(frames)]
        why = "examiner"
    video = case.videos.video(stored.video)
    path = case.videos.video_path(video)
    damaged = BadInputError(
        f"the evidence file of {video.mark} ({video.original_name}) no longer "
        "matches its intake hash: no frame is taken from it (run `xfr case verify`)"
    )
    new_frames = []
    for choice in chosen:
        recorded = choice.face.frame
        try:
            rgb, ref = extract_frame(
                path, frame_number=recorded.frame_number, stream=recorded.stream_index
            )
        except BadInputError:
            if sha256_file(path) != video.sha256:
                raise damaged from None
            raise
        # extract_frame hashed the file it read: a damaged copy proves nothing
        if ref.video_sha256 != video.sha256:
            raise damaged
        if ref.frame_sha256 != recorded.frame_sha256:
            raise BadInputError(
                f"frame {recorded.frame_number} of {video.mark} decodes to other "
                "pixels than when it was tracked (another decoder?); track the "
                "video again"
            )
        new_frames.append(
            NewFrame(
                rgb=rgb,
                ref=ref,
                track_id=stored.id,
                selection={
                    "chosen_by": why,
                    "rank": choice.rank,
                    "of": len(ranked),
                    "ranking": choice.to_dict(),
                    "track": stored.label,
                    "run": stored.run,
                    **({"min_separation": min_separation} if best is not None else {}),
                },
            )
        )
    added = case.videos.add_frames(video.mark, new_frames)
    detector = stored.params.get("detector", "hog")
    for exhibit, choice in zip(added, chosen, strict=True):
        case.set_faces(
            exhibit.mark,
            [choice.face.to_face()],
            detector=f"{detector}, {video.mark} track {stored.label} run {stored.run}",
        )
    return added


def taken_frames(case: Case, mark: str) -> dict[int, str]:
    """Frame number -> exhibit mark of the frames of video ``mark`` already taken."""
    return {f.frame_number: f.mark for f in case.videos.frames(mark)}


def next_best_frames(
    case: Case,
    mark: str,
    track: Track,
    best: int,
    *,
    min_separation: int = BEST_FRAMES_SEPARATION,
    label: str = "",
) -> list[RankedFrame]:
    """The ``best`` best frames of ``track`` not taken yet: frames already exhibits
    of video ``mark`` (or with the same pixels, or within ``min_separation`` of
    one) are passed over, so asking again gives the next best rather than a
    refusal.  Their ranks are those of the whole track."""
    taken = case.videos.frames(mark)
    taken_numbers = [f.frame_number for f in taken]
    seen = {f.frame_sha256 for f in taken}
    open_faces = []
    for face in track.faces:
        pixels = face.frame.frame_sha256
        if pixels in seen or any(
            abs(face.frame_number - number) < min_separation for number in taken_numbers
        ):
            continue
        seen.add(pixels)  # a still scene repeats frames: one of them is enough
        open_faces.append(face)
    if not open_faces:
        listed = ", ".join(f"{f.mark} (frame {f.frame_number})" for f in taken)
        raise BadInputError(
            f"every frame of track {label or track.number} of {mark} is taken or "
            f"within {min_separation} frames of one taken ({listed}); name frames "
            "with --frame to take others"
        )
    ranked = {r.frame_number: r for r in rank_frames(track)}
    picked = best_frames(
        dataclasses.replace(track, faces=tuple(open_faces)),
        best,
        min_separation=min_separation,
    )
    return [ranked[choice.frame_number] for choice in picked]


def check_frames(case: Case, mark: str | None = None) -> list[FrameCheck]:
    """Every frame exhibit (of video ``mark``) decoded again and compared."""
    return [case.videos.check_frame(f.mark) for f in case.videos.frames(mark)]


# ---- the likelihood ratio with the faces' image conditions (issue 20 item 5) -------
_QUALITY_CACHE: dict[str, FaceQuality | str] = {}
_QUALITY_CACHE_SIZE = 1024


def face_record_quality(case: Case, face: CaseFace) -> FaceQuality | str:
    """The quality of one face record (current or not), or why it cannot be
    measured; kept for the session under everything it depends on - the evidence
    file's hash and the face's box and landmarks - so no other face, record or
    case (a case made again at the same path reuses record ids) can share it."""
    exhibit = case.exhibit(face.mark)
    key = hashlib.sha256(
        json.dumps(
            [
                exhibit.sha256,
                exhibit.exif_orientation,
                face.label,
                list(face.bbox),
                np.asarray(face.landmarks5, float).tolist(),
                None
                if face.landmarks68 is None
                else np.asarray(face.landmarks68, float).tolist(),
            ]
        ).encode()
    ).hexdigest()
    if key not in _QUALITY_CACHE:
        if len(_QUALITY_CACHE) >= _QUALITY_CACHE_SIZE:
            _QUALITY_CACHE.clear()
        try:
            _QUALITY_CACHE[key] = _face_qualities(case, [face], None)[0]
        except BadInputError as error:
            _QUALITY_CACHE[key] = error.reason
    return _QUALITY_CACHE[key]


def comparison_strength(
    case: Case, comparison: Comparison
) -> StrengthOfEvidence | None:
    """The comparison's likelihood ratio, with the cautions on both faces' image
    conditions against the calibration's reference faces (and, for a calibration
    fitted per quality band, the LR of the worse face's band); None when the
    model has no calibration.  What the report and the pair view show."""
    qualities: list[FaceQuality | None] = []
    unmeasured: list[str] = []
    for role, face_id in (
        ("questioned", comparison.probe_face_id),
        ("reference", comparison.gallery_face_id),
    ):
        face = case.face_by_id(face_id)
        measured = face_record_quality(case, face)
        if isinstance(measured, str):
            qualities.append(None)
            unmeasured.append(
                wording.quality_unmeasured_caution(role, face.label, measured)
            )
        else:
            qualities.append(measured)
    strength = evidence_strength(
        comparison.similarity,
        comparison.model_id,
        comparison.model_sha256,
        questioned=qualities[0],
        reference=qualities[1],
    )
    if strength is None:
        return None
    return dataclasses.replace(strength, cautions=strength.cautions + tuple(unmeasured))


def listed_strength(case: Case, comparison: Comparison) -> StrengthOfEvidence | None:
    """The LR for a list of many comparisons read on the window's thread: without
    measuring the faces (no image is read) when the calibration has no quality
    bands, which gives the same LR, and else as `comparison_strength`."""
    calibration = calibration_for(comparison.model_id, comparison.model_sha256)
    if calibration is None:
        return None
    if calibration.bands is None:
        return evidence_strength(
            comparison.similarity, comparison.model_id, comparison.model_sha256
        )
    return comparison_strength(case, comparison)


def add_still_frame(
    case: Case,
    mark: str,
    index: int,
    *,
    detect: bool = True,
    method: str = "hog",
    detector: FaceDetector | None = None,
) -> tuple[Exhibit, list[CaseFace]]:
    """Frame ``index`` of the multi-frame image exhibit ``mark`` (an animation or
    a multi-page file, which is analysed on its first frame) as an exhibit of its
    own, with its provenance; with ``detect``, its faces found as at intake."""
    exhibit = case.videos.add_still_frame(mark, index)
    faces = (
        detect_faces(case, exhibit.mark, method=method, detector=detector)
        if detect
        else []
    )
    return exhibit, faces


# ---- processed exhibits (issue 21) ------------------------------------------------
def process_exhibit(
    case: Case,
    mark: str,
    steps: Sequence[Step],
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Processed:
    """The chain applied to exhibit ``mark``, nothing stored (the panel's preview)."""
    return case.derivations.process(mark, steps, progress, cancel)


def derive_exhibit(
    case: Case,
    mark: str,
    steps: Sequence[Step],
    *,
    detect: bool = True,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Exhibit:
    """Store exhibit ``mark`` processed by ``steps`` as a new exhibit (Q1 -> Q1.1)
    and, with ``detect``, find its faces like any exhibit's."""
    exhibit = case.derivations.derive(mark, steps, progress, cancel)
    if detect:
        try:
            detect_faces(case, exhibit.mark)
        except NoFaceError:
            pass  # a processed crop of an ear is still a processed exhibit
    return exhibit


def derived_note(case: Case, mark: str) -> str | None:
    """The sentence saying that ``mark`` (an exhibit or a face label) is a
    processed copy, or None for an original."""
    lineage = case.derivations.lineage(mark.partition("#")[0])
    if not lineage:
        return None
    operations = [
        get_operation_name(op) for link in lineage for op in link.operations()
    ]
    return wording.derived_exhibit_note(lineage[-1].mark, lineage[0].source, operations)


def derived_notes(case: Case, labels: Sequence[str]) -> dict[str, str]:
    """For each processed exhibit among the faces or exhibits ``labels`` (each
    exhibit once, in order), its ``derived_note``; originals are left out."""
    notes: dict[str, str] = {}
    for label in labels:
        mark = label.partition("#")[0].upper()
        if mark not in notes and (note := derived_note(case, mark)):
            notes[mark] = note
    return notes


def get_operation_name(op_id: str) -> str:
    """An operation's name in lower case ("levels and gamma"), or its id."""
    try:
        return processing.get(op_id).info.display_name.lower()
    except BadInputError:
        return op_id


def check_derivations(case: Case) -> list[DerivationCheck]:
    """Re-run every processed exhibit's chain on its stored source."""
    return case.derivations.check_all()


# ---- 1:N searches against reference galleries (issue 22, item 4) ------------------
# the most candidates one search lists (and records, each with its template)
MAX_TOP = 1000
# a pulled image must give back the gallery's template: the cosine of the model's
# template of it (the gallery's face rule) with the stored one.  The same file,
# model and device give it to float32 rounding (measured 1.0 within 1e-7 on the
# test gallery, dlib on the CPU); another device or library build may differ in
# the last digits, a different photo of the same person scores far lower (0.9x)
TEMPLATE_REPRODUCTION = 0.9999


def search_gallery(
    case: Case,
    label: str,
    gallery_path: str | Path,
    top: int,
    model: FaceModel,
    *,
    examination: Examination | None,
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> GallerySearch:
    """Search face ``label`` (Q1, Q1#2) against the reference gallery at
    ``gallery_path`` and record the search.  The gallery's files are checked, and
    its templates must have been made with ``model``'s weights (refused
    otherwise); the probe's template is the case's own (its face record, as every
    comparison of the case uses it).  ``top`` is capped at ``MAX_TOP`` and at the
    gallery's size: the recorded ``k`` is the number listed (a caller compares it
    with ``top`` to say so).  Each candidate's template is recorded with it (a
    pulled image must reproduce it), and the model's one-to-one threshold (to
    say what a cosine means for this model).  The search is returned with the
    scores ``examination`` (the session's, blind or not) may see."""
    from core.gallery.store import open_gallery

    if case.closed:
        raise CaseError(CASE_CLOSED, case.folder)
    if case.read_only:
        raise CaseError("the case is open read-only", case.folder)
    if top < 1:
        raise BadInputError(f"--top must be at least 1, got {top}")
    face = case.face(label)
    gallery = open_gallery(gallery_path)
    gallery.check_model(model.model_id, model.weights_sha256)
    k = min(int(top), MAX_TOP, gallery.count)
    vector = embed_faces(case, [face], model, progress)[face.id]
    found = gallery.search(vector, k, threads=threads)
    return case.gallery_searches.record(
        NewSearch(
            probe_label=face.label,
            probe_template_sha256=template_sha256(vector),
            gallery_uuid=gallery.uuid,
            gallery_digest=gallery.digest,
            gallery_size=gallery.count,
            gallery_path=str(Path(gallery_path).absolute()),
            gallery_source=str(gallery.manifest.get("source", "")),
            model_id=model.model_id,
            model_sha256=model.weights_sha256,
            index_spec=gallery.spec.to_dict(),
            k=k,
            candidates=[
                SearchCandidate(
                    c.rank,
                    c.identity,
                    c.file,
                    c.image_sha256,
                    c.face_index,
                    c.similarity,
                    c.row,
                    *SearchCandidate.encode(gallery.templates[c.row]),
                )
                for c in found
            ],
            # the model's rule, and the probe's raw length to express it as a cosine
            threshold=model.threshold.to_dict()
            | {"probe_embedding_norm": float(np.linalg.norm(np.asarray(vector)))},
        ),
        examination=examination,
    )


def gallery_top_note(top: int, search: GallerySearch) -> str | None:
    """The line saying ``top`` was capped for ``search`` (None when not)."""
    if int(top) <= len(search.candidates):
        return None
    return wording.gallery_top_capped(
        int(top), len(search.candidates), search.gallery_size, MAX_TOP
    )


def search_scale_note(search: GallerySearch) -> str | None:
    """What a cosine of ``search`` means for its model (None without the
    threshold)."""
    if not search.threshold:
        return None
    norm = search.threshold.get("probe_embedding_norm")
    return wording.gallery_cosine_scale(
        search.model_id,
        Threshold.from_dict(dict(search.threshold)),
        None if norm is None else float(norm),
    )


def candidate_image_path(search: GallerySearch, candidate: SearchCandidate) -> Path:
    """Where the gallery's source had the candidate's image: its file name as
    recorded, relative to the source folder (or to the CSV's folder).  A source
    recorded as a relative path is looked for from here, then from the folder
    the gallery was in when searched; the first place that has the file wins."""
    given = Path(candidate.file)
    if given.is_absolute():
        return given
    source = Path(search.gallery_source)
    places = [source]
    if not source.is_absolute() and search.gallery_path:
        places.append(Path(search.gallery_path).parent / source)
    found = [
        (place if place.is_dir() or not place.suffix else place.parent) / given
        for place in places
    ]
    return next((path for path in found if path.is_file()), found[0])


def pull_candidate(
    case: Case,
    search: str | int,
    rank: int,
    *,
    image: str | Path | None = None,
    mark: str | None = None,
    detect: bool = True,
    method: str = "hog",
    model: FaceModel | None = None,
) -> Exhibit:
    """Candidate ``rank`` of recorded search ``search`` as a known exhibit (an
    investigative lead), read from ``image`` or from where the gallery's source
    had it.  Its SHA-256 must be the gallery's, and ``model`` (the search's:
    same weights; None loads the search's model id), run on it by the
    gallery's face rule, must reproduce the template the search recorded
    (cosine >= ``TEMPLATE_REPRODUCTION``, kept in the lead's row), or nothing
    changes.  With ``detect``, its faces are found as at intake."""
    if case.closed:
        raise CaseError(CASE_CLOSED, case.folder)
    if case.read_only:
        raise CaseError("the case is open read-only", case.folder)
    found = case.gallery_searches.search(search, examination=None)  # no score used
    candidate = found.candidate(rank)
    path = Path(image) if image is not None else candidate_image_path(found, candidate)
    if model is None:
        from core.models.loading import load_model

        model = load_model(found.model_id)
    if model.weights_sha256 != found.model_sha256:
        raise BadInputError(
            f"model {model.model_id} (weights SHA-256 {model.weights_sha256[:12]}...) "
            f"is not the model of search {found.name} ({found.model_id}, "
            f"{found.model_sha256[:12]}...): it cannot check the candidate's template"
        )
    used = model

    def reproduce(copy: Path, wanted: SearchCandidate) -> float:
        return template_reproduction(copy, path, found, wanted, used)

    exhibit = case.gallery_searches.pull(
        found.id, candidate.rank, path, reproduce=reproduce, mark=mark
    )
    if detect:
        detect_faces(case, exhibit.mark, method=method)
    return exhibit


def template_reproduction(
    copy: Path,
    path: Path,
    search: GallerySearch,
    candidate: SearchCandidate,
    model: FaceModel,
) -> float:
    """The cosine of ``model``'s template of the image ``copy`` (read from
    ``path``), by the gallery's face rule, with the template ``search``
    recorded for ``candidate``; ``BadInputError`` (one line, naming ``path``)
    when it does not reproduce it."""
    from core.gallery.build import embed_probe
    from core.gallery.store import FACE_RULE

    stored = np.asarray(candidate.vector(), dtype=np.float64)
    what = f"candidate {candidate.rank} of {search.name} ({candidate.identity} / "
    what += f"{candidate.file})"
    try:
        made = np.asarray(embed_probe(copy, model), dtype=np.float64)
    except BadInputError as error:
        raise BadInputError(
            f"{error.reason}: the model gives no template of {what} by the "
            f"gallery's face rule ({FACE_RULE}); nothing was added",
            path,
        ) from None
    if made.shape != stored.shape:
        raise BadInputError(
            f"the model's template of {what} has {made.size} values, the gallery's "
            f"{stored.size}; nothing was added",
            path,
        )
    cosine = float((made / np.linalg.norm(made)) @ (stored / np.linalg.norm(stored)))
    if not cosine >= TEMPLATE_REPRODUCTION:
        raise BadInputError(
            f"the model's template of {what} has cosine {cosine:.6f} with the "
            f"template the gallery recorded for it (SHA-256 "
            f"{candidate.template_sha256[:12]}...), below {TEMPLATE_REPRODUCTION}: "
            "not the face that was searched; nothing was added",
            path,
        )
    return cosine


def lead_note(case: Case, mark: str, *, examination: Examination | None) -> str | None:
    """The sentence saying that ``mark`` (an exhibit or a face label) came in as a
    candidate of a 1:N gallery search - an investigative lead - or None.  The
    search's score is in it only where ``examination`` - the session that shows
    it (the CLI command's, the window's, the report's; blind or not) - may see it
    (``Lead.score``: not while that session has the pair masked);
    ``examination=None`` leaves it out in any case.  A search of a probe face
    record since replaced says so (its score is that record's)."""
    lead = case.gallery_searches.lead(mark.partition("#")[0], examination=examination)
    if lead is None:
        return None
    return wording.gallery_lead_note(
        lead.mark,
        lead.candidate.rank,
        lead.search.name,
        lead.search.probe_label,
        lead.search.gallery_uuid,
        lead.search.gallery_size,
        lead.score,
        gallery_digest=lead.search.short_digest,
        probe_replaced=not lead.search.probe_current,
    )


def search_probe_note(case: Case, search: GallerySearch) -> str | None:
    """The sentence saying the search's probe is a processed copy, or None."""
    return derived_note(case, search.probe_label)


def lead_notes(
    case: Case, labels: Sequence[str], *, examination: Examination | None
) -> dict[str, str]:
    """For each exhibit among the faces or exhibits ``labels`` (each once, in
    order) that came from a gallery search, its ``lead_note`` (scores as
    ``examination`` may see them; None: none)."""
    notes: dict[str, str] = {}
    for label in labels:
        mark = label.partition("#")[0].upper()
        if mark not in notes and (
            note := lead_note(case, mark, examination=examination)
        ):
            notes[mark] = note
    return notes
