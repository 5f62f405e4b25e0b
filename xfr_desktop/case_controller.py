"""The open case and the model, shared by every panel: a thin layer over ``core``.

Long work (opening, intake, face detection, ranking, explaining, loading evidence)
runs in ``TaskRunner`` workers; quick writes (annotations, conclusions) go straight
to the case, which commits them at once.  Panels listen to the ``*_changed``
signals and read what they show from ``controller.case``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.case import workflow
from core.case.demo import DemoCase, open_demo_case
from core.case.examination import Examination
from core.case.records import CaseFace
from core.case.store import Case, CaseError, CaseLockedError
from core.errors import BadInputError, printable
from core.faces.detect import Face, FaceDetector
from core.models.base import FaceModel
from xfr_desktop.errors import ErrorReporter, FolderExistsError, folder_is_taken
from xfr_desktop.workers import TaskRunner


@dataclass
class ExplainJob:
    """One queued explanation: what to run and how far it got."""

    probe: str
    gallery: str
    method: str
    params: dict[str, Any]
    seed: int = 0
    state: str = "queued"  # queued, running, done, cached, failed, cancelled
    done: int = 0
    total: int = 1
    message: str = ""
    explanation_id: int | None = None
    result: Any = field(default=None, repr=False)  # workflow.CaseExplanation


def _open_case(path: str, user: str | None, read_only: bool = False) -> Case:
    return Case.open(path, user=user, read_only=read_only)


def _read_only_would_work(error: BaseException) -> bool:
    """The case is fine but cannot be written here: locked, or a read-only disk."""
    return isinstance(error, CaseLockedError) or (
        isinstance(error, CaseError) and "read-only" in str(error)
    )


def _new_case(
    path: str,
    number: str,
    examiner: str,
    title: str,
    agency: str,
    sequential_unmasking: bool = True,
) -> Case:
    return Case.create(
        path,
        number,
        examiner,
        title=title,
        agency=agency,
        sequential_unmasking=sequential_unmasking,
    )


def _explain(
    case: Case,
    job: ExplainJob,
    model: FaceModel,
    progress: Callable[..., None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Any:
    return workflow.explain(
        case,
        job.probe,
        job.gallery,
        job.method,
        model,
        params=job.params,
        seed=job.seed,
        progress=progress,
        cancel=cancel,
    )


class CaseController(QObject):
    case_opened = Signal(object)  # Case
    # a case that can only be opened read-only (locked elsewhere, read-only disk):
    # the window offers that (path, the one-line reason)
    open_read_only_offered = Signal(str, str)
    case_closed = Signal()
    # about to close (a dialog's own runners stop and wait on it, first)
    case_closing = Signal()
    exhibits_changed = Signal()
    faces_changed = Signal()
    comparisons_changed = Signal()
    explanations_changed = Signal(object)  # the finished ExplainJob
    annotations_changed = Signal()
    # "Annotation 'left ear scar' on K1 deleted." (the window shows it with Undo)
    annotation_deleted = Signal(str)
    conclusions_changed = Signal()
    # an ACE-V record, an examination setting or an unmasking was written: what
    # is masked may have changed (every panel showing model results re-asks)
    examination_changed = Signal()
    audit_changed = Signal()
    jobs_changed = Signal()
    status = Signal(str)  # short messages for the status bar
    intake_finished = Signal(object)  # core IntakeResult
    tracks_changed = Signal(str)  # a video's mark: a new tracking run was recorded
    frames_added = Signal(list)  # the frame exhibits just added (core Exhibit)
    derived = Signal(object)  # the processed exhibit just added (core Exhibit)

    def __init__(self, errors: ErrorReporter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.errors = errors
        self.case: Case | None = None
        self.model: FaceModel | None = None
        self.user = ""
        # a verifier's blind session: the first examiner's records and
        # annotations are hidden, and ACE-V records are written as the verifier's
        self.blind = False
        self.undo_stack = QUndoStack(self)
        self._annotation_tokens = AnnotationTokens()  # undo: one token per annotation
        self.jobs: list[ExplainJob] = []
        # comparisons shown to the examiner since the case was opened: the report
        # dialog checks these by default
        self.viewed_comparisons: set[int] = set()
        self._opener = TaskRunner(self)
        self._opener.result.connect(self._on_opened)
        self._opener.error.connect(self._on_open_failed)
        self._opening = ""
        self._open_failure = "Could not open the case."  # what the opener is doing
        self._intake = self._runner(
            "add the images", model_job="intake", on_result=self._on_intake
        )
        # files added while an intake runs wait their turn: a second intake would
        # cancel the first one's report and run the face detector twice at once
        self._waiting_intakes: list[tuple[list[str], str]] = []
        self._intake.finished.connect(self._start_next_intake)
        self._ranker = self._runner(
            "rank the gallery", model_job="ranking", on_result=self._on_ranked
        )
        self._explainer = self._runner(
            "explain the pair", model_job="explanation", on_result=self._on_explained
        )
        self._explainer.progress.connect(self._on_job_progress)
        self._explainer.cancelled.connect(self._on_job_cancelled)
        self._explainer.error.connect(self._on_job_failed)
        self._explainer.finished.connect(self._start_next_job)
        self._ranker.progress.connect(
            lambda done, total, message: self.status.emit(message)
        )
        # video exhibits: the video panel shows these runners' progress and state
        self.tracker = self._runner(
            "find the face tracks", model_job="face tracks", on_result=self._on_tracked
        )
        self.frame_adder = self._runner(
            "add the frames", model_job="frames", on_result=self._on_frames_added
        )
        # processed (derived) exhibits: the processing panel follows this runner
        self.deriver = self._runner(
            "add the processed exhibit",
            model_job="processed exhibit",
            on_result=self._on_derived,
        )
        self._tracking = ""  # the video being tracked
        # the face finder tracking uses (None: dlib's shared one); tests put a
        # FaceDetector-like stand-in here so that they need no dlib
        self.video_detector: FaceDetector | None = None

    def _runner(
        self, doing: str, *, model_job: str, on_result: Callable[[Any], None]
    ) -> TaskRunner:
        # model work: each task waits its turn for the cores (core.compute)
        runner = TaskRunner(self, model_job=model_job)
        runner.result.connect(on_result)
        runner.error.connect(
            lambda error, details: self.errors.report(
                error, details, context=f"Could not {doing}."
            )
        )
        return runner

    @property
    def runners(self) -> tuple[TaskRunner, ...]:
        return (
            self._opener,
            self._intake,
            self._ranker,
            self._explainer,
            self.tracker,
            self.frame_adder,
            self.deriver,
        )

    # ---- opening and closing -------------------------------------------------------
    def open_case(self, path: str | Path, *, read_only: bool = False) -> None:
        self.status.emit(f"Opening {path}{' read-only' if read_only else ''}…")
        self._opening = "" if read_only else str(path)
        self._open_failure = "Could not open the case."
        self._opener.start(_open_case, str(path), self.user or None, read_only)

    def _on_open_failed(self, error: BaseException, details: str) -> None:
        if self._opening and _read_only_would_work(error):
            path, self._opening = self._opening, ""
            self.open_read_only_offered.emit(path, str(error))
            return
        self._opening = ""
        self.errors.report(error, details, context=self._open_failure)

    def new_case(
        self,
        path: str | Path,
        number: str,
        examiner: str,
        title: str,
        agency: str,
        *,
        sequential_unmasking: bool = True,
    ) -> None:
        if folder_is_taken(path):  # say so plainly, before any work starts
            self.errors.report(FolderExistsError(path))
            return
        self._opening = ""
        self._open_failure = "Could not create the case."
        self._opener.start(
            _new_case,
            str(path),
            number,
            examiner,
            title,
            agency,
            sequential_unmasking,
        )

    def open_demo(self, base: str | Path | None = None, *, cctv: bool = False) -> None:
        """The demo case in ``base`` (default: the user's data folder), reused
        while it verifies, made when missing (``core.case.demo.open_demo_case``);
        ``cctv``: the video demo (a synthetic CCTV clip, tracked, its best frames
        compared with the portraits)."""
        what = "the video demo case" if cctv else "the demo case"
        self.status.emit(f"Opening {what}…")
        self._opening = ""
        self._open_failure = f"Could not open {what}."
        self._opener.start(
            open_demo_case,
            None if base is None else str(base),
            user=self.user or None,
            model=self.model,
            cctv=cctv,
        )

    def _on_opened(self, opened: Case | DemoCase) -> None:
        case = opened.case if isinstance(opened, DemoCase) else opened
        self._opening = ""
        self.close_case()
        if self.user:
            case.user = self.user
        self.case = case
        self.undo_stack.clear()
        self.viewed_comparisons.clear()
        self.status.emit(f"Case {case.info().case_number} open")
        self.case_opened.emit(case)
        if isinstance(opened, DemoCase) and opened.note:
            self.errors.warn(
                "A new demo case was made",
                opened.note,
                "Nothing was deleted; the old demo case can still be opened with "
                "Open case… to see what changed.",
            )

    def close_case(self) -> None:
        if self.case is not None:
            self.case_closing.emit()
        for runner in self.runners[1:]:
            runner.shutdown()
        self.jobs.clear()
        self.jobs_changed.emit()
        self._waiting_intakes.clear()
        if self.case is not None:
            self.case.close()
            self.case = None
            self.undo_stack.clear()
            self._annotation_tokens.clear()
            self.viewed_comparisons.clear()
            self.case_closed.emit()

    # ---- intake, faces, ranking ----------------------------------------------------
    def add_files(self, files: Sequence[str], role: str) -> None:
        if self.case is None:
            return
        files = [str(f) for f in files]
        if self._intake.is_busy():
            self._waiting_intakes.append((files, role))
            self.status.emit(
                f"{len(files)} file(s) as {role} will be added after the images "
                "being added now"
            )
            return
        self.status.emit(f"Adding {len(files)} file(s) as {role}…")
        self._intake.start(workflow.add_and_detect, self.case, files, role)

    def _start_next_intake(self) -> None:
        if self._waiting_intakes and self.case is not None:
            files, role = self._waiting_intakes.pop(0)
            self.add_files(files, role)

    def _on_intake(self, intake: workflow.Intake) -> None:
        result = intake.result
        self.exhibits_changed.emit()
        self.faces_changed.emit()
        self.audit_changed.emit()
        self.intake_finished.emit(result)
        videos = getattr(result, "videos", ())
        if videos:
            marks = ", ".join(f"{v.mark} ({v.original_name})" for v in videos)
            self.status.emit(
                f"Added video {marks}: select it in the exhibits list to find its "
                "face tracks"
            )
        if result.warnings:  # added, but the examiner should know
            self.errors.warn(
                "Added, with a caution",
                "\n".join(result.warnings),
                "Look at the frame that was analysed before comparing.",
            )
        if result.rejected:  # the examiner's files, not a fault: a warning
            lines = "\n".join(
                f"{printable(r.path)}: {r.reason}" for r in result.rejected
            )
            added = (
                f" The other {len(result.added)} file(s) were added."
                if result.added
                else ""
            )
            self.errors.warn(
                "Some files were not added",
                f"{len(result.rejected)} file(s) could not be added to the case:"
                f"\n{lines}",
                f"Check these files, or choose others, and add them again.{added}",
            )
        self.rank()

    # ---- video exhibits: face tracks and frames -----------------------------------
    def track_video(self, mark: str, every: int, method: str = "hog") -> None:
        """Find and record the face tracks of video ``mark`` (in a worker), with
        the loaded model's embeddings when there is one."""
        if self.case is None:
            return
        self._tracking = mark
        self.status.emit(f"Finding the face tracks of {mark}, every {every} frames…")
        self.tracker.start(
            workflow.track_video,
            self.case,
            mark,
            every=every,
            method=method,
            model=self.model,
            detector=self.video_detector,
        )

    def cancel_tracking(self) -> None:
        if self.tracker.is_busy():
            self.tracker.cancel()
            self.status.emit(f"Finding the face tracks of {self._tracking} cancelled")

    def _on_tracked(self, tracks: Sequence[Any]) -> None:
        mark = self._tracking
        self.status.emit(
            f"{len(tracks)} face track(s) found in {mark}: pick the person's track"
            if tracks
            else f"No face found in {mark}: try sampling every frame, or the cnn "
            "face finder"
        )
        self.tracks_changed.emit(mark)
        self.audit_changed.emit()

    def add_track_frames(self, mark: str, track: str, frames: Sequence[int]) -> None:
        """Add ``frames`` of ``track`` of video ``mark`` as exhibits (in a worker)."""
        if self.case is None:
            return
        self.status.emit(f"Adding {len(frames)} frame(s) of {mark} {track}…")
        self.frame_adder.start(
            workflow.add_track_frames, self.case, mark, track, frames=list(frames)
        )

    def take_still_frame(self, mark: str, index: int) -> None:
        """Frame ``index`` of the multi-frame image exhibit ``mark`` as an exhibit
        of its own, its faces found (in a worker)."""
        if self.case is None:
            return
        self.status.emit(f"Taking frame {index} of {mark}…")
        self.frame_adder.start(_take_still_frame, self.case, mark, index)

    def _on_frames_added(self, added: Sequence[Any]) -> None:
        marks = ", ".join(exhibit.mark for exhibit in added)
        self.status.emit(f"Added {marks}: compare them like any other exhibit")
        self.exhibits_changed.emit()
        self.faces_changed.emit()
        self.audit_changed.emit()
        self.frames_added.emit(list(added))
        self.rank()

    # ---- processed (derived) exhibits ---------------------------------------------
    def derive_exhibit(self, mark: str, steps: Sequence[Any]) -> None:
        """Store exhibit ``mark`` processed by ``steps`` (``core.processing.Step``)
        as a new exhibit, its faces found (in a worker)."""
        if self.case is None:
            return
        self.status.emit(f"Processing {mark} into a new exhibit…")
        self.deriver.start(workflow.derive_exhibit, self.case, mark, list(steps))

    def _on_derived(self, exhibit: Any) -> None:
        self.status.emit(
            f"Added {exhibit.mark}, a processed copy: compare it like any other exhibit"
        )
        self.exhibits_changed.emit()
        self.faces_changed.emit()
        self.audit_changed.emit()
        self.derived.emit(exhibit)
        self.rank()

    # ---- faces under the examiner's control (undoable) ---------------------------
    # Each step is done at once (an error is reported and nothing is pushed), then
    # pushed as a ``_FaceCommand`` whose undo/redo make an earlier record current
    # again (``Case.revert_face``: the record itself, with its comparisons); every
    # step, undo and redo is an audit entry (append-only).
    def correct_landmarks(self, label: str, points: Any) -> bool:
        """The examiner moved the five points of ``label`` (comparison view)."""
        return self._face_step(
            f"move the points of {label}",
            label,
            lambda case: case.correct_face(label, points),
        )

    def place_face(self, label: str, face: Face) -> bool:
        """Make ``face`` (points or a box from the face dialog) ``label``'s face:
        a correction, or a new face (``Case.next_face_label``)."""
        placed = self.case is not None and (
            self._current_face_record(self.case, label) is None
        )
        return self._face_step(
            f"{'place' if placed else 'correct'} face {label}",
            label,
            lambda case: case.place_face(label, face),
        )

    def reject_face(self, label: str, reason: str = "") -> bool:
        """Reject a false detection (left out of 1:N and statistics)."""
        return self._face_step(
            f"reject face {label}",
            label,
            lambda case: case.reject_face(label, reason),
        )

    def restore_face(self, label: str) -> bool:
        return self._face_step(
            f"restore face {label}", label, lambda case: case.restore_face(label)
        )

    def reset_face(self, label: str) -> bool:
        """Return a corrected face to the one the detector found."""
        return self._face_step(
            f"reset face {label} to the detected one",
            label,
            lambda case: case.reset_face(label),
        )

    def _face_step(
        self, text: str, label: str, step: Callable[[Case], CaseFace]
    ) -> bool:
        case = self.case
        if case is None:
            return False
        before = self._current_face_record(case, label)
        try:
            after = step(case)
        except (BadInputError, CaseError) as error:
            self.errors.report(error, context=f"Could not {text}.")
            return False
        self.undo_stack.push(_FaceCommand(self, text, label, before, after.id))
        self._faces_touched()
        return True

    @staticmethod
    def _current_face_record(case: Case, label: str) -> int | None:
        """Id of ``label``'s current record (rejected included); None: no face yet."""
        try:
            history = case.face_history(label)
        except BadInputError:
            return None
        # not the newest row: an undo makes an older record current again
        current = [face.id for face in history if not face.superseded]
        return current[0] if current else None

    def _faces_touched(self) -> None:
        self.faces_changed.emit()
        self.audit_changed.emit()
        self.rank()  # 1:N of every probe: the faces it compared changed

    def rank(self, probe: str | None = None) -> None:
        """1:N for every probe face of the case (or only ``probe``), in a worker;
        a ranking still running is cancelled first (the faces it read changed)."""
        if self.case is None or self.model is None:
            return
        if probe is not None:
            self._ranker.start(workflow.rank_gallery, self.case, probe, self.model)
        else:
            self._ranker.start(workflow.rank_all_probes, self.case, self.model)

    def _on_ranked(self, ranked: Any) -> None:
        self.comparisons_changed.emit()
        self.audit_changed.emit()
        if isinstance(ranked, dict):  # rank_all_probes: probe label -> candidates
            if ranked:
                gallery = max(len(c) for c in ranked.values())
                self.status.emit(
                    f"Ranked {gallery} gallery face(s) for {len(ranked)} probe(s)"
                )
        else:
            self.status.emit(f"Ranked {len(ranked)} gallery face(s)")

    # ---- explanations: a queue, one job at a time -----------------------------------
    def queue_explanations(
        self, probe: str, gallery: str, methods: dict[str, dict[str, Any]], seed: int
    ) -> None:
        for method, params in methods.items():
            self.jobs.append(ExplainJob(probe, gallery, method, dict(params), seed))
        self.jobs_changed.emit()
        if not self._explainer.is_busy():
            self._start_next_job()

    def cancel_job(self, job: ExplainJob) -> None:
        if job.state == "queued":
            job.state = "cancelled"
            self.jobs_changed.emit()
        elif job.state == "running":
            self._explainer.cancel()

    def cancel_all_jobs(self) -> None:
        for job in self.jobs:
            if job.state == "queued":
                job.state = "cancelled"
        self._explainer.cancel()
        self.jobs_changed.emit()

    def running_job(self) -> ExplainJob | None:
        return next((j for j in self.jobs if j.state == "running"), None)

    def _start_next_job(self) -> None:
        if self.case is None or self.model is None or self._explainer.is_busy():
            return
        job = next((j for j in self.jobs if j.state == "queued"), None)
        if job is None:
            return
        job.state = "running"
        self.jobs_changed.emit()
        self._explainer.start(_explain, self.case, job, self.model)

    def _on_job_progress(self, done: int, total: int, message: str) -> None:
        job = self.running_job()
        if job is not None:
            job.done, job.total, job.message = done, total, message
            self.jobs_changed.emit()

    def _on_explained(self, done: Any) -> None:
        job = self.running_job()
        if job is None:
            return
        job.state = "cached" if done.from_cache else "done"
        job.result, job.explanation_id = done, done.stored.id
        job.done = job.total
        self.jobs_changed.emit()
        self.comparisons_changed.emit()
        self.audit_changed.emit()
        self.explanations_changed.emit(job)

    def _on_job_cancelled(self) -> None:
        job = self.running_job()
        if job is not None:
            job.state = "cancelled"
            self.jobs_changed.emit()

    def _on_job_failed(self, error: BaseException, details: str) -> None:
        job = self.running_job()
        if job is not None:
            job.state, job.message = "failed", str(error)
            self.jobs_changed.emit()

    # ---- annotations (undoable) and conclusions ------------------------------------
    def can_change_annotations(self) -> bool:
        """A case is open for writing (a read-only case offers no change)."""
        if self.case is None:
            return False
        if self.case.read_only:
            self.status.emit(
                "The case is open read-only: annotations cannot be added, changed "
                "or deleted."
            )
            return False
        return True

    def add_annotation(self, **fields: Any) -> None:
        if self.can_change_annotations():
            self.undo_stack.push(_AddAnnotation(self, fields))

    def move_annotation(self, annotation_id: int, points: Any) -> None:
        if self.can_change_annotations():
            self.undo_stack.push(
                _EditAnnotation(self, annotation_id, {"points": points}, "move")
            )

    def edit_annotation(self, annotation_id: int, **changes: Any) -> None:
        if self.can_change_annotations():
            self.undo_stack.push(_EditAnnotation(self, annotation_id, changes))

    def delete_annotation(self, annotation_id: int) -> None:
        """Deleted at once, undoable; ``annotation_deleted`` says which."""
        if self.can_change_annotations():
            self.undo_stack.push(_DeleteAnnotation(self, annotation_id))

    def add_conclusion(self, text: str, comparison_id: int | None = None) -> None:
        if self.case is None:
            return
        self.case.add_conclusion(text, comparison_id)
        self.conclusions_changed.emit()
        self.audit_changed.emit()

    # ---- the examination (ACE-V) ---------------------------------------------------
    def examination(self) -> Examination | None:
        """The open case's ACE-V records, as this session may see them."""
        if self.case is None:
            return None
        return self.case.examination(blind=self.blind)

    def masked(self, questioned: str, known: str) -> bool:
        """Whether the model's results for the pair are hidden (sequential
        unmasking); no case open: nothing to show, so masked."""
        examination = self.examination()
        return True if examination is None else examination.masked(questioned, known)

    def change_examination(self, change: Callable[[Examination], Any]) -> Any:
        """Run one ACE-V write (``change(examination)``) and tell every panel;
        a refused write is reported in one line and changes nothing."""
        examination = self.examination()
        if examination is None:
            return None
        if self.case is not None and self.case.read_only:
            self.status.emit("The case is open read-only: nothing can be recorded.")
            return None
        try:
            result = change(examination)
        except BadInputError as error:
            self.errors.report(error, context="Could not record it.")
            return None
        self.examination_changed.emit()
        self.audit_changed.emit()
        return result

    def _annotations_touched(self) -> None:
        self.annotations_changed.emit()
        self.audit_changed.emit()

    def shutdown(self) -> None:
        """Cancel and wait for every worker, then close the case (at quit)."""
        for runner in self.runners:
            runner.shutdown()
        self.close_case()


# Undo/redo: each step is a real change in the case (and so in its audit trail);
# undoing an addition deletes the row, undoing a deletion adds it again as a new row.
class AnnotationTokens:
    """One token per annotation for the undo stack, whatever id it has now.

    An undone delete re-adds an annotation under a new id, and SQLite reuses
    the ids of deleted rows: so commands never hold an id, they hold a token
    that follows one annotation through every re-add (None while deleted).
    """

    def __init__(self) -> None:
        self._current: dict[int, int | None] = {}  # token -> id now (None: deleted)
        self._token_of: dict[int, int] = {}  # id of a live annotation -> token

    def clear(self) -> None:
        self._current.clear()
        self._token_of.clear()

    def token_for(self, annotation_id: int) -> int:
        """The token of the live annotation ``annotation_id`` (a new one if new)."""
        if annotation_id not in self._token_of:
            token = len(self._current) + 1
            self._current[token] = annotation_id
            self._token_of[annotation_id] = token
        return self._token_of[annotation_id]

    def current_id(self, token: int) -> int:
        annotation_id = self._current.get(token)
        if annotation_id is None:
            raise BadInputError("the annotation was deleted meanwhile")
        return annotation_id

    def deleted(self, token: int) -> None:
        annotation_id = self._current.get(token)
        if annotation_id is not None:
            self._token_of.pop(annotation_id, None)
        self._current[token] = None

    def re_added(self, token: int, annotation_id: int) -> None:
        self._current[token] = annotation_id
        self._token_of[annotation_id] = token


class _AnnotationCommand(QUndoCommand):
    def __init__(self, controller: CaseController, text: str, key: int | None):
        super().__init__(text)
        # ``key``: the annotation's id now; the command keeps its token
        tokens = controller._annotation_tokens
        self.controller = controller
        self.token = None if key is None else tokens.token_for(key)

    @property
    def case(self) -> Case:
        assert self.controller.case is not None
        return self.controller.case

    def current_id(self) -> int:
        assert self.token is not None  # set by the first redo of every command
        return self.controller._annotation_tokens.current_id(self.token)

    def re_added(self, new_id: int) -> None:
        tokens = self.controller._annotation_tokens
        if self.token is None:
            self.token = tokens.token_for(new_id)
        else:
            tokens.re_added(self.token, new_id)

    def delete(self) -> None:
        """Delete the annotation this command is about (it may come back)."""
        self.case.delete_annotation(self.current_id())
        assert self.token is not None
        self.controller._annotation_tokens.deleted(self.token)

    def guarded(self, change: Callable[[], Any]) -> bool:
        """Run an undo/redo step; a failure is one line, never raised into Qt."""
        try:
            change()
        except (BadInputError, CaseError) as error:
            self.controller.errors.report(
                error, context=f"Could not undo or redo: {self.text()}."
            )
            return False
        finally:
            self.controller._annotations_touched()
        return True

    def fields_of(self, annotation_id: int) -> dict[str, Any]:
        annotation = self.case.annotation(annotation_id)
        fields: dict[str, Any] = {
            "shape": annotation.shape,
            "points": [list(p) for p in annotation.points],
            "label": annotation.label,
            "note": annotation.note,
            "component": annotation.component,
        }
        if annotation.exhibit_id is not None:
            marks = {e.id: e.mark for e in self.case.exhibits()}
            fields["exhibit"] = marks[annotation.exhibit_id]
        else:
            fields["explanation_id"] = annotation.explanation_id
        return fields


def _name(fields: dict[str, Any]) -> str:
    """ "'left ear scar' on K1" for the undo menu and the delete hint."""
    exhibit = fields.get("exhibit")
    target = (
        str(exhibit).upper()
        if exhibit
        else f"explanation {fields.get('explanation_id')}"
    )
    return workflow.annotation_name(
        str(fields.get("label") or ""),
        fields.get("component"),
        str(fields.get("shape", "annotation")),
        target,
    )


class _AddAnnotation(_AnnotationCommand):
    def __init__(self, controller: CaseController, fields: dict[str, Any]) -> None:
        super().__init__(controller, f"add {_name(fields)}", None)
        self.fields = fields

    def redo(self) -> None:
        self.guarded(lambda: self.re_added(self.case.add_annotation(**self.fields).id))

    def undo(self) -> None:
        self.guarded(self.delete)


class _EditAnnotation(_AnnotationCommand):
    def __init__(
        self,
        controller: CaseController,
        annotation_id: int,
        changes: dict[str, Any],
        verb: str = "edit",
    ) -> None:
        super().__init__(controller, "edit annotation", annotation_id)
        self.changes = changes
        before = self.fields_of(annotation_id)
        self.setText(f"{verb} annotation {_name(before)}")
        self.before = {key: before[key] for key in changes}

    def redo(self) -> None:
        self.guarded(
            lambda: self.case.update_annotation(self.current_id(), **self.changes)
        )

    def undo(self) -> None:
        self.guarded(
            lambda: self.case.update_annotation(self.current_id(), **self.before)
        )


class _DeleteAnnotation(_AnnotationCommand):
    def __init__(self, controller: CaseController, annotation_id: int) -> None:
        super().__init__(controller, "delete annotation", annotation_id)
        self.fields = self.fields_of(annotation_id)
        self.name = _name(self.fields)
        self.setText(f"delete annotation {self.name}")

    def redo(self) -> None:
        if self.guarded(self.delete):
            self.controller.annotation_deleted.emit(f"Annotation {self.name} deleted.")

    def undo(self) -> None:
        self.guarded(lambda: self.re_added(self.case.add_annotation(**self.fields).id))


class _FaceCommand(QUndoCommand):
    """One step on a face (place, correct, reject, restore, reset), already done
    when pushed.  Undo makes the record from before current again (``revert_face``)
    or, for a face that had none (placed by hand), rejects it; redo makes the
    step's own record current again."""

    def __init__(
        self,
        controller: CaseController,
        text: str,
        label: str,
        before: int | None,
        after: int,
    ) -> None:
        super().__init__(text)
        self.controller, self.label = controller, label
        self.before, self.after = before, after
        self._done = True  # pushed after the step was done: the first redo skips

    @property
    def case(self) -> Case:
        assert self.controller.case is not None
        return self.controller.case

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self._apply(
            lambda: self.case.revert_face(
                self.label, self.after, why=f"redo: {self.text()}"
            )
        )

    def undo(self) -> None:
        before = self.before
        if before is None:
            self._apply(
                lambda: self.case.reject_face(
                    self.label, "withdrawn: placing it by hand was undone"
                )
            )
        else:
            self._apply(
                lambda: self.case.revert_face(
                    self.label, before, why=f"undo: {self.text()}"
                )
            )

    def _apply(self, change: Callable[[], Any]) -> None:
        # an undo must not raise into Qt: a failure is reported in one line
        try:
            change()
        except (BadInputError, CaseError) as error:
            self.controller.errors.report(
                error, context=f"Could not undo or redo: {self.text()}."
            )
        self.controller._faces_touched()


def _take_still_frame(case: Case, mark: str, index: int) -> list[Any]:
    """Worker: ``workflow.add_still_frame`` answering like ``add_track_frames``
    (the exhibits added), so one runner and one signal serve both."""
    exhibit, _faces = workflow.add_still_frame(case, mark, index)
    return [exhibit]
