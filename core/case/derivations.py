"""Derived exhibits: an exhibit processed by a recorded chain of operations.

Processing never touches an exhibit: applying a chain (``core.processing``) to
exhibit Q1 stores the result as a new exhibit, Q1.1, of the same role (a lossless
PNG of the processed pixels), and its ``derivations`` row records everything needed
to make those pixels again - the source's SHA-256 and the SHA-256 of its pixels as
analysed, the chain (operation ids, versions, parameters, order), what a step read
besides its input (the video frames averaged), the software and library versions,
and the SHA-256 of the output pixels.  ``check`` re-runs the chain on the stored
source and compares; ``xfr case verify`` does it for every derived exhibit
(``problems_of_all``).

A derived exhibit may itself be processed (Q1.1.1); each link is recorded and
checked on its own.  A derivation of a video frame exhibit may read the frames
around it from the stored video (frame averaging); they are decoded again, checked
against the video's SHA-256 and turned as the frame was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.case import state as bound
from core.case.intake import (
    file_problem,
    png_bytes,
    removing_on_failure,
    sha256_bytes,
    stage_bytes,
)
from core.case.layout import EVIDENCE
from core.case.records import (
    CaseError,
    Exhibit,
    _malformed_as_case_error,
    json_default,
    now,
)
from core.errors import BadInputError, printable
from core.imageio import load_image
from core.processing import (
    FrameSet,
    Step,
    chain_from_json,
    chain_to_json,
    check_chain,
    get,
    library_versions,
    pixels_sha256,
    run_chain,
)
from core.processing.base import FrameReader, ProcessingError
from core.progress import ProgressCallback
from core.version import __version__
from core.video.decode import iter_frames, upright
from core.video.stills import still_frame

if TYPE_CHECKING:
    from core.case.store import Case

# Re-created pixels may differ slightly where the recorded library versions or the
# platform differ (SIMD paths, FFT rounding): up to this many grey levels in up to
# this share of the pixels is reported as a warning, anything more as a problem.
# With the versions and platform recorded, any difference is a problem.
TOLERANCE_LEVELS = 2
TOLERANCE_SHARE = 0.01


@dataclass(frozen=True)
class Derivation:
    """How derived exhibit ``mark`` was made from ``source``."""

    mark: str
    source: str  # the source exhibit's mark
    source_sha256: str  # of its evidence file
    source_pixels_sha256: str  # of its pixels as analysed (pixels_sha256)
    steps: tuple[dict[str, Any], ...]  # the recorded steps: op, version, params
    inputs: tuple[dict[str, Any], ...]  # per step, what it read besides its input
    output_sha256: str  # of the output pixels (pixels_sha256)
    software_version: str
    libraries: dict[str, str]
    created: str
    created_by: str

    def step_lines(self) -> list[str]:
        """ "1. Levels and gamma (v1): black=10, ..." per step, as recorded."""
        return [f"{n}. {describe_recorded(s)}" for n, s in enumerate(self.steps, 1)]

    def operations(self) -> list[str]:
        return [str(s.get("op")) for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "steps": [dict(s) for s in self.steps],
            "inputs": [dict(i) for i in self.inputs],
            "libraries": dict(self.libraries),
        }


@dataclass(frozen=True)
class DerivationCheck:
    """The outcome of re-running one derivation."""

    mark: str
    ok: bool  # re-created bit for bit, and the stored image holds those pixels
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    recorded: str = ""
    recreated: str | None = None
    stored: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "problems": list(self.problems)}


@dataclass(frozen=True)
class Processed:
    """A chain applied to an exhibit, not yet stored (the GUI's preview)."""

    source: Exhibit
    source_pixels_sha256: str
    rgb: np.ndarray
    steps: tuple[Step, ...]
    inputs: tuple[dict[str, Any], ...] = field(default=())


def describe_recorded(step: dict[str, Any]) -> str:
    """A recorded step in words, even when this XFR no longer has its operation."""
    try:
        params = dict(step["params"])
        try:  # in the operation's own order, as the panel shows them
            order = [p.name for p in get(str(step["op"])).info.params]
            params = {k: params[k] for k in order if k in params} | params
        except ProcessingError:
            pass  # an operation this XFR does not have: as recorded
        return Step(str(step["op"]), int(step["version"]), params).describe()
    except (KeyError, TypeError, ValueError, AttributeError):
        return json.dumps(step, sort_keys=True)[:200]


@_malformed_as_case_error("derivations")
def _derivation_from_row(row: Any) -> Derivation:
    chain = json.loads(row["chain"])
    return Derivation(
        mark=row["mark"],
        source=row["source_mark"] or MISSING_SOURCE,
        source_sha256=row["source_sha256"],
        source_pixels_sha256=row["source_pixels_sha256"],
        steps=tuple(chain["steps"]),
        inputs=tuple(json.loads(row["inputs"])),
        output_sha256=row["output_sha256"],
        software_version=row["software_version"],
        libraries=dict(json.loads(row["libraries"])),
        created=row["created"],
        created_by=row["created_by"],
    )


# LEFT JOIN: a processed exhibit whose source row is gone stays a processed
# exhibit (verify names the missing source), never passes for an original
_QUERY = (
    "SELECT derivations.*, exhibits.mark AS mark, sources.mark AS source_mark "
    "FROM derivations JOIN exhibits ON exhibits.id = derivations.exhibit_id "
    "LEFT JOIN exhibits AS sources ON sources.id = derivations.source_exhibit_id"
)
MISSING_SOURCE = "an exhibit no longer in the case"


class CaseDerivations:
    """The derived exhibits of one open case (``Case.derivations``)."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def _has_table(self) -> bool:
        """An older case opened read-only is not migrated: it has no such table."""
        return "derivations" in bound.present_tables(self.case._db.execute)

    # -- reading -------------------------------------------------------------------
    def derivation(self, mark: str) -> Derivation | None:
        """How exhibit ``mark`` was derived, or None for an original."""
        if not self._has_table():
            return None
        rows = list(
            self.case._db.execute(_QUERY + " WHERE exhibits.mark = ?", (mark.upper(),))
        )
        checked = self.case._audited.checked("derivations", rows)
        return _derivation_from_row(checked[0]) if checked else None

    def record_problem(self, mark: str) -> str | None:
        """Why the processing record of ``mark`` is not what the audit log
        recorded (edited outside XFR), or None.  Checked even in a case open
        read-only, which otherwise shows its rows as they are."""
        if not self._has_table():
            return None
        rows = list(
            self.case._db.execute(_QUERY + " WHERE exhibits.mark = ?", (mark.upper(),))
        )
        try:
            self.case._audited.checked("derivations", rows, even_read_only=True)
        except CaseError as error:
            return error.reason
        return None

    def derivations(self, source: str | None = None) -> list[Derivation]:
        """Every derived exhibit (made directly from ``source``), oldest first."""
        if not self._has_table():
            return []
        sql: str = _QUERY
        params: tuple[str, ...] = ()
        if source is not None:
            sql, params = (
                sql + " WHERE sources.mark = ?",
                (self.case.exhibit(source).mark,),
            )
        rows = list(self.case._db.execute(sql + " ORDER BY exhibit_id", params))
        return [
            _derivation_from_row(r)
            for r in self.case._audited.checked("derivations", rows)
        ]

    def lineage(self, mark: str) -> list[Derivation]:
        """The derivations from the original to ``mark`` (empty for an original)."""
        chain: list[Derivation] = []
        current = self.derivation(mark)
        while current is not None and len(chain) < 100:
            chain.append(current)
            if current.source == MISSING_SOURCE:
                break
            current = self.derivation(current.source)
        return chain[::-1]

    def lineage_marks(self, mark: str) -> list[str]:
        """The marks from the original down to ``mark`` (["Q1", "Q1.1", "Q1.1.1"];
        [mark] for an original)."""
        lineage = self.lineage(mark)
        if not lineage:
            return [self.case.exhibit(mark).mark]
        return [lineage[0].source, *(link.mark for link in lineage)]

    def original(self, mark: str) -> str:
        """The original exhibit ``mark`` was derived from (itself, if original)."""
        lineage = self.lineage(mark)
        return lineage[0].source if lineage else self.case.exhibit(mark).mark

    # -- processing ----------------------------------------------------------------
    def process(
        self,
        mark: str,
        steps: Sequence[Step],
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Processed:
        """Apply ``steps`` to exhibit ``mark``'s pixels, storing nothing."""
        source = self.case.exhibit(mark)
        check_chain(steps)
        path = self.case.evidence_path(source)
        problem = file_problem(path, source.sha256, f"the evidence file of {mark}")
        if problem:  # processing a damaged copy proves nothing
            raise BadInputError(problem)
        rgb = load_image(path).rgb
        reader = self._frame_reader(source) if steps[0].info.needs_frames else None
        out, inputs = run_chain(
            rgb, steps, read_frames=reader, progress=progress, cancel=cancel
        )
        return Processed(source, pixels_sha256(rgb), out, tuple(steps), tuple(inputs))

    def _frame_reader(self, exhibit: Exhibit) -> FrameReader | None:
        frame = self.case.videos.frame(exhibit.mark)
        if frame is None:
            return None
        if frame.source == "video":
            video = self.case.videos.video(frame.video)
            return video_frame_reader(
                self.case.videos.video_path(video),
                video.sha256,
                frame.stream_index,
                frame.frame_number,
                frame.display_rotation,
                video.mark,
            )
        source = self.case.exhibit(frame.video)
        return still_frame_reader(
            self.case.evidence_path(source), source.sha256, frame.frame_number
        )

    def derive(
        self,
        mark: str,
        steps: Sequence[Step],
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Exhibit:
        """Process exhibit ``mark`` and store the result as a new exhibit."""
        if self.case.read_only:
            raise CaseError("the case is open read-only", self.case.folder)
        if not self._has_table():
            raise CaseError("the case has no derivations table", self.case.folder)
        done = self.process(mark, steps, progress, cancel)
        source = done.source
        data = png_bytes(done.rgb)
        sha256 = sha256_bytes(data)
        output = pixels_sha256(done.rgb)
        if output == done.source_pixels_sha256:
            raise BadInputError(
                f"this processing leaves the pixels of {source.mark} as they are: "
                "nothing to store (change a parameter)"
            )
        known = self.case._db.execute(
            # the same file, or the same pixels as a processed exhibit or as
            # an exhibit processed before (their pixel hashes are recorded)
            "SELECT mark FROM exhibits WHERE sha256 = ? UNION ALL SELECT exhibits.mark "
            "FROM derivations JOIN exhibits ON exhibits.id = derivations.exhibit_id "
            "WHERE derivations.output_sha256 = ? UNION ALL SELECT sources.mark FROM "
            "derivations JOIN exhibits AS sources ON sources.id = "
            "derivations.source_exhibit_id WHERE derivations.source_pixels_sha256 = ?",
            (sha256, output, output),
        ).fetchone()
        if known is not None:
            raise BadInputError(
                f"processing {source.mark} this way gives the pixels of {known['mark']}"
                f", already in the case (same image)"
            )
        new_mark = self._next_mark(source.mark)
        target = stage_bytes(self.case.folder, data, sha256, f"{new_mark} (processed)")
        chain = json.loads(chain_to_json(steps))
        record = {
            "mark": new_mark,
            "source": source.mark,
            "source_sha256": source.sha256,
            "source_pixels_sha256": done.source_pixels_sha256,
            "chain": chain,
            "inputs": list(done.inputs),
            "output_sha256": output,
            "sha256": sha256,
            "software_version": __version__,
            "libraries": library_versions(),
        }
        stamp = now()
        names = ", ".join(s.info.display_name.lower() for s in steps)
        # named after the original's file (Q1.1.1 is "cctv_still Q1.1.1.png")
        first = self.original(source.mark)
        original_stem = Path(
            self.case.exhibit(first).original_name
            if first != MISSING_SOURCE
            else source.original_name
        ).stem
        with (
            removing_on_failure([target] if target else []),
            self.case._change("exhibits.derive", record) as db,
        ):
            height, width = done.rgb.shape[:2]
            cursor = db.execute(
                "INSERT INTO exhibits (mark, role, sha256, original_name, size, "
                "format, width, height, exif_orientation, exif, note, intake_time, "
                "intake_user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_mark,
                    source.role,
                    sha256,
                    printable(f"{original_stem} {new_mark}.png"),
                    len(data),
                    "PNG",
                    width,
                    height,
                    1,
                    "{}",
                    f"derived from {source.mark}: {names}",
                    stamp,
                    self.case.user,
                ),
            )
            db.execute(
                "INSERT INTO derivations (exhibit_id, source_exhibit_id, "
                "source_sha256, source_pixels_sha256, chain, inputs, output_sha256, "
                "software_version, libraries, created, created_by) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cursor.lastrowid,
                    source.id,
                    source.sha256,
                    done.source_pixels_sha256,
                    chain_to_json(steps),
                    json.dumps(list(done.inputs), sort_keys=True, default=json_default),
                    record["output_sha256"],
                    __version__,
                    json.dumps(record["libraries"], sort_keys=True),
                    stamp,
                    self.case.user,
                ),
            )
        return self.case.exhibit(new_mark)

    def _next_mark(self, source: str) -> str:
        """Q1 -> Q1.1, Q1.2, ...; Q1.1 -> Q1.1.1."""
        prefix = f"{source}."
        numbers = [
            int(rest)
            for (mark,) in self.case._db.execute("SELECT mark FROM exhibits")
            if mark.startswith(prefix) and (rest := mark[len(prefix) :]).isdigit()
        ]
        return f"{prefix}{max(numbers, default=0) + 1}"

    # -- checking ------------------------------------------------------------------
    def check(self, mark: str) -> DerivationCheck:
        """Re-run the chain of derived exhibit ``mark`` on its stored source."""
        derivation = self.derivation(self.case.exhibit(mark).mark)
        if derivation is None:
            raise BadInputError(f"exhibit {mark} is an original, not a processed one")
        altered = self.record_problem(derivation.mark)
        if altered is not None:
            return DerivationCheck(
                derivation.mark,
                False,
                (f"its processing record was changed: {altered}",),
                recorded=derivation.output_sha256,
            )
        if derivation.source == MISSING_SOURCE:
            return DerivationCheck(
                derivation.mark,
                False,
                ("the exhibit it was made from is no longer in the case",),
                recorded=derivation.output_sha256,
            )
        exhibit = self.case.exhibit(derivation.mark)
        source = self.case.exhibit(derivation.source)
        reader: FrameReader | None = None
        try:
            reader = self._frame_reader(source)
        except BadInputError as error:
            return DerivationCheck(
                exhibit.mark,
                False,
                (f"its source's video cannot be read: {error.reason}",),
                recorded=derivation.output_sha256,
            )
        return check_derivation(
            derivation,
            source_path=self.case.evidence_path(source),
            source_file_sha256=source.sha256,
            stored_path=self.case.evidence_path(exhibit),
            stored_file_sha256=exhibit.sha256,
            read_frames=reader,
        )

    def check_all(self) -> list[DerivationCheck]:
        return [self.check(d.mark) for d in self.derivations()]


def check_derivation(
    derivation: Derivation,
    *,
    source_path: Path,
    source_file_sha256: str,
    stored_path: Path,
    stored_file_sha256: str,
    read_frames: FrameReader | None,
) -> DerivationCheck:
    """Re-create a derived exhibit's pixels and compare them with the record and
    with the stored image (used by ``CaseDerivations.check`` and by verify)."""
    mark = derivation.mark
    problems: list[str] = []
    warnings: list[str] = []
    recorded = derivation.output_sha256
    if derivation.source_sha256 != source_file_sha256:
        problems.append(
            f"its record names a source file with another SHA-256 than "
            f"{derivation.source}'s: the record or the exhibit was changed"
        )
    stored_rgb: np.ndarray | None = None
    stored: str | None = None
    problem = file_problem(stored_path, stored_file_sha256, f"the image of {mark}")
    if problem:
        problems.append(problem)
    try:
        stored_rgb = load_image(stored_path).rgb
        stored = pixels_sha256(stored_rgb)
        if stored != recorded:
            problems.append(
                f"the stored image of {mark} does not hold the pixels its processing "
                "record names"
            )
    except BadInputError as error:
        problems.append(f"the stored image of {mark} cannot be read: {error.reason}")
    recreated: str | None = None
    problem = file_problem(
        source_path, source_file_sha256, f"the evidence file of {derivation.source}"
    )
    if problem:
        problems.append(problem)
        return DerivationCheck(mark, False, tuple(problems), (), recorded, None, stored)
    try:
        source_rgb = load_image(source_path).rgb
        if pixels_sha256(source_rgb) != derivation.source_pixels_sha256:
            warnings.append(
                f"{derivation.source} decodes to other pixels here than when {mark} "
                "was made (another image decoder?)"
            )
        steps = chain_from_json(
            json.dumps({"format": 1, "steps": list(derivation.steps)})
        )
        out, _inputs = run_chain(source_rgb, steps, read_frames=read_frames)
        recreated = pixels_sha256(out)
    except BadInputError as error:
        problems.append(f"its processing cannot be re-run: {error.reason}")
        return DerivationCheck(
            mark, False, tuple(problems), tuple(warnings), recorded, None, stored
        )
    if recreated != recorded:
        here = library_versions()
        same_setup = derivation.libraries == here
        near = _small_difference(out, stored_rgb)
        if near is not None and not same_setup:
            warnings.append(
                f"re-running the processing of {mark} gives pixels within the "
                f"cross-platform tolerance ({near}), not bit for bit: it was made "
                f"{_setup(derivation.libraries, here)}"
            )
        else:
            setup = "" if same_setup else f" ({_setup(derivation.libraries, here)})"
            problems.append(
                f"re-running the recorded processing of {mark} on "
                f"{derivation.source} does not give the recorded pixels{setup}: the "
                "record, the source or the image was changed"
            )
    return DerivationCheck(
        mark,
        not problems,
        tuple(problems),
        tuple(warnings),
        recorded,
        recreated,
        stored,
    )


def _small_difference(a: np.ndarray, b: np.ndarray | None) -> str | None:
    """Words for a difference within the tolerance, or None if beyond it."""
    if b is None or a.shape != b.shape:
        return None
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    share = float(np.count_nonzero(diff.max(axis=2))) / (a.shape[0] * a.shape[1])
    if int(diff.max()) > TOLERANCE_LEVELS or share > TOLERANCE_SHARE:
        return None
    return f"at most {int(diff.max())} grey levels, in {share:.2%} of the pixels"


def _setup(made: dict[str, str], here: dict[str, str]) -> str:
    """What differs between the setup a derivation was made with and this one."""
    changed = [
        f"{key} {made.get(key, 'not recorded')} then, {here.get(key, 'unknown')} now"
        for key in sorted(set(made) | set(here))
        if made.get(key) != here.get(key)
    ]
    return "made with another setup: " + "; ".join(changed)


# ---- reading the frames around a frame exhibit ---------------------------------------
def video_frame_reader(
    path: Path, sha256: str, stream: int, number: int, rotation: int, mark: str = ""
) -> FrameReader:
    """Frames ``number + offset`` of the stored video (exhibit ``mark``), turned as
    the frame was; each frame's record names the video by mark and SHA-256."""

    def read(offsets: Sequence[int]) -> FrameSet:
        wanted = {number + o: o for o in offsets}
        frames: dict[int, np.ndarray] = {}
        records: dict[int, dict[str, Any]] = {}
        last = max(wanted, default=number)
        for rgb, ref in iter_frames(path, stream):
            if ref.video_sha256 != sha256:
                raise BadInputError(
                    "the stored video was altered: its SHA-256 no longer matches "
                    "the one recorded at intake (run `xfr case verify`)",
                    path,
                )
            if ref.frame_number in wanted:
                offset = wanted[ref.frame_number]
                frames[offset] = upright(rgb, rotation)
                records[offset] = {
                    "video": mark,
                    "video_sha256": sha256,
                    "stream": stream,
                    "frame_number": ref.frame_number,
                    "frame_sha256": ref.frame_sha256,
                }
            if ref.frame_number >= last:
                break
        return FrameSet(frames, records)

    return read


def still_frame_reader(path: Path, sha256: str, number: int) -> FrameReader:
    """Frames ``number + offset`` of a multi-frame image exhibit."""

    def read(offsets: Sequence[int]) -> FrameSet:
        problem = file_problem(path, sha256, "the multi-frame image")
        if problem:
            raise BadInputError(problem, path)
        frames: dict[int, np.ndarray] = {}
        records: dict[int, dict[str, Any]] = {}
        for offset in offsets:
            if number + offset < 0:
                continue
            try:
                rgb, still = still_frame(path, number + offset)
            except BadInputError:
                continue  # past its last frame
            frames[offset] = rgb
            records[offset] = {
                "image_sha256": sha256,
                "frame_number": still.index,
                "frame_sha256": still.frame_sha256,
            }
        return FrameSet(frames, records)

    return read


# ---- verify: every derivation re-run, from the rows of verify's read snapshot --------
@dataclass(frozen=True)
class ReplayPlan:
    """What verify needs to re-run one derivation, read inside its snapshot."""

    mark: str
    derivation: Derivation | None  # None: the row cannot be read
    problem: str
    source_file_sha256: str
    stored_file_sha256: str
    frame_reader: Callable[[Path], FrameReader | None]


_PLAN_QUERY = (
    "SELECT derivations.*, exhibits.mark AS mark, exhibits.sha256 AS stored_sha256, "
    "sources.mark AS source_mark, sources.sha256 AS source_file_sha256 "
    "FROM derivations JOIN exhibits ON exhibits.id = derivations.exhibit_id "
    "LEFT JOIN exhibits AS sources ON sources.id = derivations.source_exhibit_id "
    "ORDER BY derivations.exhibit_id"
)


def replay_plans(execute: Callable[..., Any]) -> list[ReplayPlan]:
    """Every derivation of the database, with what re-running it needs."""
    if "derivations" not in bound.present_tables(execute):
        return []
    frames: dict[str, Any] = {}
    if "frames" in bound.present_tables(execute):
        for row in execute(
            "SELECT exhibits.mark AS mark, frames.*, videos.sha256 AS video_sha256, "
            "sources.sha256 AS image_sha256 FROM frames "
            "JOIN exhibits ON exhibits.id = frames.exhibit_id "
            "LEFT JOIN videos ON videos.id = frames.video_id "
            "LEFT JOIN exhibits AS sources ON sources.id = frames.source_exhibit_id"
        ):
            frames[str(row["mark"])] = dict(row)
    plans = []
    for row in execute(_PLAN_QUERY):
        mark = str(row["mark"])
        try:
            derivation: Derivation | None = _derivation_from_row(row)
            problem = ""
        except CaseError as error:
            derivation, problem = None, error.reason
        if row["source_mark"] is None:
            derivation, problem = (
                None,
                (
                    f"the exhibit it was made from (row {row['source_exhibit_id']}) is "
                    "no longer in the case"
                ),
            )
        frame = frames.get(str(row["source_mark"]))
        plans.append(
            ReplayPlan(
                mark,
                derivation,
                problem,
                str(row["source_file_sha256"] or ""),
                str(row["stored_sha256"]),
                _reader_for(frame),
            )
        )
    return plans


def _reader_for(frame: dict[str, Any] | None) -> Callable[[Path], FrameReader | None]:
    def reader(folder: Path) -> FrameReader | None:
        if frame is None:
            return None
        if frame["video_id"] is not None:
            return video_frame_reader(
                folder / EVIDENCE / str(frame["video_sha256"]),
                str(frame["video_sha256"]),
                int(frame["stream_index"]),
                int(frame["frame_number"]),
                int(frame["display_rotation"]),
            )
        return still_frame_reader(
            folder / EVIDENCE / str(frame["image_sha256"]),
            str(frame["image_sha256"]),
            int(frame["frame_number"]),
        )

    return reader


def replay_problems(
    folder: Path,
    plans: Sequence[ReplayPlan],
    progress: Callable[[int, str], None] | None = None,
) -> tuple[list[str], list[str]]:
    """Re-run every planned derivation: (problems, warnings), each naming it."""
    problems: list[str] = []
    warnings: list[str] = []
    for number, plan in enumerate(plans):
        if progress:
            progress(number, f"re-running the processing of {plan.mark}")
        if plan.derivation is None:
            problems.append(f"processed exhibit {plan.mark}: {plan.problem}")
            continue
        result = check_derivation(
            plan.derivation,
            source_path=folder / EVIDENCE / plan.source_file_sha256,
            source_file_sha256=plan.source_file_sha256,
            stored_path=folder / EVIDENCE / plan.stored_file_sha256,
            stored_file_sha256=plan.stored_file_sha256,
            read_frames=plan.frame_reader(folder),
        )
        problems += [f"processed exhibit {plan.mark}: {p}" for p in result.problems]
        warnings += [f"processed exhibit {plan.mark}: {w}" for w in result.warnings]
    return problems, warnings
