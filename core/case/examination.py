"""A case's examination: ACE-V records, sequential unmasking, blind verification.

``Examination(case)`` reads and writes the examiner's own work (``core.case.acev``
records) in the case, each change one audited transaction like every other:

* the settings: sequential unmasking (on for new cases), the conclusion scale,
  the request and the propositions;
* per face, the **analysis**; per pair, the **worksheet** and the **evaluation**;
* **unmasking**: with sequential unmasking on, the model's results for a pair (its
  score, likelihood ratio, decision, rank and explanations) are not shown until
  the examiner has recorded the questioned face's analysis and an evaluation of
  the pair, and has then unmasked the pair - itself an audited action;
* **verification**: a second examiner works in a *blind* session (the first
  examiner's records and annotations hidden) and records their own analysis and
  evaluation; recording the verification then compares the two, and a
  disagreement stays open until its resolution is recorded;
* **figures**: views of the aligned pair saved with a number for the report.

What is masked is decided here (``masked``); the GUI, the CLI and the report ask.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.case import state as bound
from core.case.acev import (
    DEFAULT_SCALE,
    ROLES,
    STAGES,
    AcevRecord,
    Analysis,
    ConclusionScale,
    Evaluation,
    Propositions,
    Verification,
    Worksheet,
)
from core.case.records import AuditEntry, CaseError, Comparison, now
from core.compare_views import VIEWS
from core.errors import BadInputError, printable

if TYPE_CHECKING:
    from core.case.store import Case

UNMASKING = "sequential_unmasking"
SCALE = "scale"
PROPOSITIONS = "propositions"
SETTING_KEYS = (UNMASKING, SCALE, PROPOSITIONS)

MASKED = "hidden until unmasked"  # what stands in for a masked value
BLIND_HIDDEN = "the first examiner's work, hidden in a blind verification"
# Audit-entry fields that carry a model result (redacted for a masked pair).
RESULT_KEYS = frozenset(
    {"similarity", "distance", "decision", "lr", "log10_lr", "rank", "verdicts"}
)
FIGURE_VIEWS = VIEWS  # the comparison views a figure can record


@dataclass(frozen=True)
class ExaminationSettings:
    sequential_unmasking: bool
    scale: ConclusionScale
    propositions: Propositions
    recorded: bool  # False: an older case with no settings stored (shown as such)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequential_unmasking": self.sequential_unmasking,
            "scale": self.scale.to_dict(),
            "propositions": self.propositions.to_dict(),
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class Figure:
    """A saved view of an aligned pair (``figures`` row); the image is a derived
    PNG named by its hash."""

    id: int
    number: int
    view: str
    questioned: str
    known: str
    params: Mapping[str, Any] = field(repr=False)
    image_sha256: str
    caption: str
    author: str
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "params": dict(self.params)}


@dataclass(frozen=True)
class SeenStep:
    """One step of the order in which a pair was worked on and seen."""

    time: str
    role: str
    author: str
    what: str


class Examination:
    """The ACE-V records of one open case.  ``blind=True`` is a verifier's blind
    session: records are written as the verifier's, and the first examiner's
    records and annotations are not returned.  ``verifier=True`` alone is an open
    verification: the verifier's records, with the first examiner's visible (the
    verification record then says "open")."""

    def __init__(
        self, case: Case, *, blind: bool = False, verifier: bool = False
    ) -> None:
        self.case = case
        self.blind = blind
        # an open (non-blind) verification writes the verifier's records too
        self.verifier = verifier or blind

    @property
    def role(self) -> str:
        return "verifier" if self.verifier else "examiner"

    # -- storage -------------------------------------------------------------------
    def _has_tables(self) -> bool:
        """An older case opened read-only is not migrated: it has no ACE-V tables."""
        return "acev" in bound.present_tables(self.case._db.execute)

    def _rows(self, table: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if not self._has_tables():
            return []
        # checked even read-only: `xfr case acev` on a copy must not print an
        # evaluation edited outside XFR as genuine
        return self.case._audited.checked(
            table, self.case._db.execute(sql, params), even_read_only=True
        )

    def _settings_rows(self) -> dict[str, Any]:
        rows = self._rows("case_settings", "SELECT * FROM case_settings")
        out: dict[str, Any] = {}
        for row in rows:
            try:
                out[row["key"]] = json.loads(row["value"])
            except ValueError:
                raise CaseError(
                    f"the case setting {row['key']!r} is not valid JSON",
                    self.case.folder,
                ) from None
        return out

    # -- settings ------------------------------------------------------------------
    def settings(self) -> ExaminationSettings:
        stored = self._settings_rows()
        scale = (
            ConclusionScale.from_dict(stored[SCALE])
            if SCALE in stored
            else DEFAULT_SCALE
        )
        propositions = Propositions.from_dict(stored.get(PROPOSITIONS, {}))
        if not self._has_tables():  # an older case, read-only: nothing recorded
            return ExaminationSettings(False, scale, propositions, False)
        # every schema-3 case stores the setting (at creation or migration): one
        # that is missing was removed outside XFR, and the results stay hidden
        return ExaminationSettings(
            bool(stored.get(UNMASKING, True)), scale, propositions, UNMASKING in stored
        )

    def set_sequential_unmasking(self, on: bool, reason: str = "") -> None:
        """Turning it off shows the model's results before the examiner's
        evaluation: the reason is required and recorded.  Turning it on once the
        case has comparisons is refused: results may have been seen while it was
        off, and hiding them again would hide that."""
        reason = printable(reason).strip()
        current = self.settings().sequential_unmasking
        if on == current:
            return
        if not on and not reason:
            raise BadInputError(
                "turning sequential unmasking off needs a reason (it is recorded "
                "and printed in the report)"
            )
        if on and self.case.comparisons():
            raise BadInputError(
                "sequential unmasking cannot be turned on in a case whose model "
                "results could already be seen; it is chosen when the case is made"
            )
        self._write_settings({UNMASKING: bool(on)}, reason)

    def set_scale(self, scale: ConclusionScale) -> None:
        if any(r.stage == "evaluation" for r in self._all_records()):
            raise BadInputError(
                "the conclusion scale is declared before evaluating: this case "
                "already has an evaluation on the scale "
                f"{self.settings().scale.name!r}"
            )
        self._write_settings({SCALE: scale.to_dict()}, "")

    def set_propositions(self, propositions: Propositions) -> None:
        self._write_settings({PROPOSITIONS: propositions.to_dict()}, "")

    def _write_settings(self, values: Mapping[str, Any], reason: str) -> None:
        details: dict[str, Any] = {"set": dict(values)}
        if reason:
            details["reason"] = reason
        with self.case._change("examination.settings", details) as db:
            write_settings(db, values)

    def setting_changes(self) -> list[AuditEntry]:
        """Every change of the settings, oldest first (for the report)."""
        return [e for e in self.case.audit_log() if e.action == "examination.settings"]

    # -- records -------------------------------------------------------------------
    def _all_records(self) -> list[AcevRecord]:
        current = {face.label: face.id for face in self.case.faces()}
        return [
            _record_from_row(row, current)
            for row in self._rows("acev", "SELECT * FROM acev ORDER BY id")
        ]

    def records(
        self,
        stage: str | None = None,
        *,
        questioned: str | None = None,
        known: str | None = None,
        role: str | None = None,
    ) -> list[AcevRecord]:
        """Records oldest first; in a blind session only the verifier's own."""
        out = []
        me = same_person(self.case.user)
        for record in self._all_records():
            # blind: only this verifier's own (another verifier's would show
            # the first evaluation in their verification record)
            if self.blind and (
                record.role != "verifier" or same_person(record.author) != me
            ):
                continue
            if stage is not None and record.stage != stage:
                continue
            if role is not None and record.role != role:
                continue
            if questioned is not None and record.questioned != questioned.upper():
                continue
            if known is not None and record.known != known.upper():
                continue
            out.append(record)
        return out

    def latest(
        self, stage: str, questioned: str = "", known: str = "", role: str | None = None
    ) -> AcevRecord | None:
        """The newest record of the stage for the faces as they are now (one made
        for a face record since replaced does not count)."""
        found = [
            r
            for r in self.records(
                stage, questioned=questioned, known=known, role=role or self.role
            )
            if r.current
        ]
        return found[-1] if found else None

    def _face(self, label: str, wanted_role: str) -> str:
        face = self.case.face(label)
        exhibit = self.case.exhibit(face.mark)
        if exhibit.role != wanted_role:
            kind = "questioned (probe)" if wanted_role == "probe" else "known (gallery)"
            raise BadInputError(f"{face.label} is not a {kind} face")
        return face.label

    def _pair(self, questioned: str, known: str) -> tuple[str, str]:
        """A questioned face and the face it is compared with: a known one, or
        another questioned image's (two stills of one event)."""
        first = self._face(questioned, "probe")
        other = self.case.face(known)
        if other.mark == self.case.face(first).mark:
            raise BadInputError(
                f"{first} and {other.label} are in the same image: compare faces "
                "of two exhibits"
            )
        return first, other.label

    def _add(
        self,
        stage: str,
        questioned: str,
        known: str,
        content: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        role: str | None = None,
    ) -> AcevRecord:
        role = role or self.role
        assert stage in STAGES and role in ROLES
        if role == "verifier" and stage != "verification":
            self._refuse_the_first_examiner()
        details = {
            "role": role,
            "questioned": questioned,
            "known": known,
            "blind": self.blind,
            **(extra or {}),
            "content": dict(content),
        }
        face_ids = [self.case.face(x).id if x else None for x in (questioned, known)]
        details["face_ids"] = face_ids
        with self.case._change(f"acev.{stage}", details) as db:
            cursor = db.execute(
                "INSERT INTO acev (stage, role, questioned, known, "
                "questioned_face_id, known_face_id, content, blind, author, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stage,
                    role,
                    questioned,
                    known,
                    *face_ids,
                    json.dumps(dict(content), sort_keys=True),
                    int(self.blind),
                    self.case.user,
                    now(),
                ),
            )
            record_id = cursor.lastrowid
        return next(r for r in self._all_records() if r.id == record_id)

    # -- analysis, comparison, evaluation -----------------------------------------
    def record_analysis(self, face: str, analysis: Analysis) -> AcevRecord:
        """The analysis of one image's face, questioned or known.  A known face is
        analysed only after some questioned face (the questioned image first)."""
        label = self.case.face(face).label
        exhibit = self.case.exhibit(self.case.face(face).mark)
        analysis = Analysis.from_dict(analysis.to_dict())  # stored as read back
        if exhibit.role == "probe":
            return self._add("analysis", label, "", analysis.to_dict())
        if not [
            r for r in self.records("analysis", role=self.role, known="") if r.current
        ]:
            raise BadInputError(
                "analyse the questioned image first (ACE-V: the questioned face "
                "is analysed before the known one is looked at)"
            )
        return self._add("analysis", "", label, analysis.to_dict())

    def analysis(self, face: str, role: str | None = None) -> Analysis | None:
        label = self.case.face(face).label
        for record in reversed(self.records("analysis", role=role or self.role)):
            if label in (record.questioned, record.known) and record.current:
                return record.analysis()
        return None

    def record_worksheet(
        self, questioned: str, known: str, worksheet: Worksheet
    ) -> AcevRecord:
        questioned, known = self._pair(questioned, known)
        self._require_analysis(questioned)
        worksheet = Worksheet.from_dict(worksheet.to_dict())  # stored as read back
        self._check_annotations(questioned, known, worksheet)
        return self._add("worksheet", questioned, known, worksheet.to_dict())

    def worksheet(
        self, questioned: str, known: str, role: str | None = None
    ) -> Worksheet | None:
        record = self.latest("worksheet", questioned.upper(), known.upper(), role)
        return record.worksheet() if record else None

    def record_evaluation(
        self, questioned: str, known: str, level: str, reasoning: str = ""
    ) -> AcevRecord:
        """The examiner's conclusion for the pair on the case's scale.  Recorded
        again after unmasking, it is a revision: the first one stays, and the
        report prints both and says which came after the model's results."""
        questioned, known = self._pair(questioned, known)
        self._require_analysis(questioned)
        scale = self.settings().scale
        chosen = scale.level(level)
        # the results could be seen: unmasked now, masking off, or unmasked
        # for an earlier record of these faces (a corrected face scores alike)
        seen = not self.masked(questioned, known) or bool(
            self.records(
                "unmasking", questioned=questioned, known=known, role=self.role
            )
        )
        evaluation = Evaluation(
            scale.id, chosen.code, chosen.words, printable(reasoning), seen
        )
        return self._add("evaluation", questioned, known, evaluation.to_dict())

    def evaluation(
        self, questioned: str, known: str, role: str | None = None
    ) -> Evaluation | None:
        record = self.latest("evaluation", questioned.upper(), known.upper(), role)
        return record.evaluation() if record else None

    def _require_analysis(self, questioned: str) -> None:
        if self.analysis(questioned) is None:
            raise BadInputError(
                f"record the analysis of {questioned} first (ACE-V: analysis "
                "before comparison and evaluation)"
            )

    def _check_annotations(
        self, questioned: str, known: str, worksheet: Worksheet
    ) -> None:
        marks = {
            "questioned": self.case.face(questioned).mark,
            "known": self.case.face(known).mark,
        }
        # a blind verifier links only their own (the others are hidden from them)
        by_id = {a.id: a for a in self.visible_annotations(self.case.annotations())}
        for item in worksheet.observations:
            for side, ids in (
                ("questioned", item.questioned_annotations),
                ("known", item.known_annotations),
            ):
                for annotation_id in ids:
                    annotation = by_id.get(annotation_id)
                    exhibit_id = self.case.exhibit(marks[side]).id
                    if annotation is None or annotation.exhibit_id != exhibit_id:
                        raise BadInputError(
                            f"{item.name}: annotation {annotation_id} is not an "
                            f"annotation on {marks[side]}"
                        )

    # -- sequential unmasking ------------------------------------------------------
    def masked(self, questioned: str, known: str, role: str | None = None) -> bool:
        """Whether the model's results for the pair are still hidden from
        ``role`` (default: this session's)."""
        if not self.settings().sequential_unmasking:
            return False
        return (
            self.latest(
                "unmasking", questioned.upper(), known.upper(), role or self.role
            )
            is None
        )

    def masked_comparison(self, comparison: Comparison) -> bool:
        """By the comparison's own face records: one of a face since replaced
        was never unmasked, whatever its label's current record was."""
        return self.masked_faces(comparison.probe_face_id, comparison.gallery_face_id)

    def masked_faces(
        self, questioned_face_id: int | None, known_face_id: int | None
    ) -> bool:
        """By face record ids (a gallery search's probe face, a pulled exhibit's
        face): masked unless this session unmasked exactly those records."""
        if not self.settings().sequential_unmasking:
            return False
        pair = (questioned_face_id, known_face_id)
        return None in pair or pair not in self._unmasked_face_ids()

    def any_masked(self, questioned: str) -> bool:
        """Whether any of this questioned face's pairs is masked (a 1:N list then
        shows neither scores nor ranks)."""
        if not self.settings().sequential_unmasking:
            return False
        label = self.case.face(questioned).label
        return any(
            self.masked(label, face.label)
            for face in self.case.faces()
            if self.case.exhibit(face.mark).role == "gallery"
        )

    def unmask(self, questioned: str, known: str) -> AcevRecord:
        """Show the model's results for the pair from now on (audited).  Needs the
        analysis and an evaluation first when sequential unmasking is on."""
        questioned, known = self._pair(questioned, known)
        existing = self.latest("unmasking", questioned, known)
        if existing is not None:
            return existing
        evaluation = self.latest("evaluation", questioned, known)
        if self.settings().sequential_unmasking:
            self._require_analysis(questioned)
            if evaluation is None:
                raise BadInputError(
                    f"record your evaluation of {questioned} / {known} before the "
                    "model's results are shown (sequential unmasking)"
                )
        return self._add(
            "unmasking",
            questioned,
            known,
            {"evaluation_before": evaluation.id if evaluation else None},
        )

    def seen_order(self, questioned: str, known: str) -> list[SeenStep]:
        """The order the pair's records were made and its model results unmasked,
        for every role this session may see."""
        questioned, known = questioned.upper(), known.upper()
        steps = []
        for record in self.records():
            if record.stage == "analysis":
                if record.questioned != questioned and record.known != known:
                    continue
                what = f"analysis of {record.faces}"
            elif (record.questioned, record.known) != (questioned, known):
                continue
            elif record.stage == "worksheet":
                what = "feature worksheet"
            elif record.stage == "evaluation":
                evaluation = record.evaluation()
                seen = (
                    " (the model's results could be seen)"
                    if evaluation.results_seen
                    else ""
                )
                what = f"evaluation: {evaluation.words}{seen}"
            elif record.stage == "unmasking":
                what = "model's results unmasked"
            else:
                what = f"verification: {record.verification().outcome}"
            if not record.current:
                what += " - for a face record since replaced"
            steps.append(SeenStep(record.created, record.role, record.author, what))
        # turning the setting off or on shows or hides every pair's results
        for entry in self.setting_changes():
            changed = entry.details.get("set", {})
            if UNMASKING in changed:
                state = "on" if changed[UNMASKING] else "off"
                reason = entry.details.get("reason", "")
                what = f"sequential unmasking turned {state}" + (
                    f" ({reason})" if reason else ""
                )
                steps.append(SeenStep(entry.time, "", entry.user, what))
        return sorted(steps, key=lambda step: step.time)

    def _unmasked_face_ids(self, role: str | None = None) -> set[tuple[int, int]]:
        """The (questioned, known) face records whose results this role unmasked
        - whatever the labels' current records are (an undo makes an earlier
        record current again; its results were never unmasked)."""
        return {
            (r.questioned_face_id, r.known_face_id)
            for r in self.records("unmasking", role=role or self.role)
            if r.questioned_face_id is not None and r.known_face_id is not None
        }

    def redact(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Audit entries with the model's results for masked pairs replaced by
        ``MASKED`` (for showing the trail; the stored chain is never changed).
        A result is shown only for the face records that were unmasked, and the
        results of an entry with a masked one are listed in mark order (their
        order would be the hidden ranking)."""
        entries = [self._blinded(entry) for entry in entries]
        if not self.settings().sequential_unmasking:
            return entries
        unmasked = self._unmasked_face_ids()
        face_ids = {face.label: face.id for face in self.case.faces()}
        comparisons = {c.id: c for c in self.case.comparisons()}
        explanations = {e.id: e.comparison_id for e in self.case.explanations()}

        def comparison_masked(details: Mapping[str, Any]) -> bool:
            comparison = None
            if "comparison" in details:
                comparison = comparisons.get(details["comparison"])
            elif "explanation" in details:
                comparison = comparisons.get(
                    explanations.get(details["explanation"], -1)
                )
            if comparison is None:
                return True  # not known to be unmasked: hidden
            pair = (comparison.probe_face_id, comparison.gallery_face_id)
            return pair not in unmasked

        def item_masked(details: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
            probe_id = details.get("probe_face_id")
            gallery_id = item.get("gallery_face_id")
            if probe_id is None or gallery_id is None:  # by label, as recorded
                probe_id = face_ids.get(str(details.get("probe", "")))
                gallery_id = face_ids.get(str(item.get("gallery", "")))
            return (probe_id, gallery_id) not in unmasked

        out = []
        for entry in entries:
            details = dict(entry.details)
            if entry.action == "comparisons.record":
                items = list(details.get("results", []))
                hidden = [item_masked(details, item) for item in items]
                shown = [
                    _redacted(item) if masked else item
                    for item, masked in zip(items, hidden, strict=True)
                ]
                if any(hidden):
                    shown.sort(key=lambda item: _mark_order(str(item.get("gallery"))))
                details["results"] = shown
            elif _has_results(details) and comparison_masked(details):
                details = _redacted(details)
            out.append(_with_details(entry, details))
        return out

    def _blinded(self, entry: AuditEntry) -> AuditEntry:
        """In a blind session, the first examiner's own work in the trail (ACE-V
        records, annotations, conclusions) is hidden; that it happened is not."""
        if not self.blind:
            return entry
        theirs = same_person(entry.user) != same_person(self.case.user)
        if (
            (entry.action.startswith("acev.") and theirs)
            or (entry.action.startswith("annotation.") and theirs)
            or (entry.action.startswith("conclusion.") and theirs)
            or (entry.action == "figure.save" and theirs)
        ):
            return _with_details(entry, {"hidden": BLIND_HIDDEN})
        return entry

    # -- verification --------------------------------------------------------------
    def start_blind_session(self) -> None:
        """A verifier begins blind (audited: the report states the mode)."""
        if not self.blind:
            raise BadInputError("a blind session is opened as Examination(blind=True)")
        self._refuse_the_first_examiner()
        self.case.log("verification.blind_session", {"verifier": self.case.user})

    def _refuse_the_first_examiner(self) -> None:
        if same_person(self.case.user) in {
            same_person(r.author) for r in self._all_records() if r.role == "examiner"
        }:
            raise BadInputError(
                f"{self.case.user} recorded the first examination; a verification "
                "is done by a second examiner (open the case under their name)"
            )

    def record_verification(
        self,
        questioned: str,
        known: str,
        *,
        resolution: str = "",
        resolved_level: str = "",
    ) -> AcevRecord:
        """Compare the verifier's evaluation with the first examiner's: agreement,
        or a disagreement (open until a resolution is recorded).  Recording it
        ends the blind session: the comparison reveals the first evaluation."""
        questioned, known = self._pair(questioned, known)
        mine = self.latest("evaluation", questioned, known, role="verifier")
        if mine is None:
            raise BadInputError(
                f"the verifier has no evaluation of {questioned} / {known} yet"
            )
        first = [
            r
            for r in self._all_records()
            if r.stage == "evaluation"
            and r.role == "examiner"
            and r.current
            and (r.questioned, r.known) == (questioned, known)
        ]
        if not first:
            raise BadInputError(
                f"the first examiner has no evaluation of {questioned} / {known} "
                "to verify"
            )
        examiner_level = first[-1].evaluation().level
        verifier_level = mine.evaluation().level
        if resolved_level:
            self.settings().scale.level(resolved_level)
        agreement = examiner_level == verifier_level
        resolution = printable(resolution).strip()
        if not agreement and resolved_level and not resolution:
            raise BadInputError("a resolved level needs the resolution written")
        me = same_person(self.case.user)
        if me != same_person(mine.author):
            # only the verifier compares; either examiner may record how an
            # open disagreement was resolved
            earlier = self.verification(questioned, known)
            if not (resolution and earlier is not None and not earlier.resolved):
                raise BadInputError(
                    f"the verification of {questioned} / {known} is recorded by "
                    f"its verifier, {mine.author}; another examiner may only "
                    "record how a disagreement was resolved"
                )
        analysis_blind = all(
            r.blind
            for r in self._all_records()
            if r.role == "verifier"
            and same_person(r.author) == same_person(mine.author)
            and r.stage in ("analysis", "evaluation")
            and (r.questioned in (questioned, "") and r.known in (known, ""))
        )
        blind = mine.blind and analysis_blind and self._worked_blind(mine.author)
        verification = Verification(
            "blind" if blind else "open",
            "agreement" if agreement else "disagreement",
            examiner_level,
            verifier_level,
            resolution,
            resolved_level if not agreement else examiner_level,
            verifier=mine.author,
            resolved_by=self.case.user if resolution else "",
        )
        # a verification is the verifier's record, whoever writes the resolution
        record = self._add(
            "verification", questioned, known, verification.to_dict(), role="verifier"
        )
        self.blind = False  # the comparison revealed the first evaluation
        return record

    def verification(self, questioned: str, known: str) -> Verification | None:
        """The pair's latest verification; in a blind session only one this
        verifier recorded (another's would show the first examiner's level)."""
        found = [
            r
            for r in self._all_records()
            if r.stage == "verification"
            and (r.questioned, r.known) == (questioned.upper(), known.upper())
            and (not self.blind or same_person(r.author) == same_person(self.case.user))
        ]
        return found[-1].verification() if found else None

    def _worked_blind(self, verifier: str) -> bool:
        """The verifier began with a blind session: nothing in the case's trail
        is theirs before it (what they read outside XFR it cannot know)."""
        person = same_person(verifier)
        for entry in self.case.audit_log():
            if same_person(entry.user) != person:
                continue
            return entry.action == "verification.blind_session"
        return False

    def blind_session_started(self) -> bool:
        """Whether this case's user has begun a blind session (audited once)."""
        return any(
            entry.action == "verification.blind_session"
            and same_person(str(entry.details.get("verifier", "")))
            == same_person(self.case.user)
            for entry in self.case.audit_log()
        )

    def verifiers(self) -> list[str]:
        return sorted({r.author for r in self._all_records() if r.role == "verifier"})

    def visible_annotations(self, annotations: Iterable[Any]) -> list[Any]:
        """In a blind session, only the verifier's own annotations."""
        if not self.blind:
            return list(annotations)
        me = same_person(self.case.user)
        return [a for a in annotations if same_person(a.author) == me]

    # -- figures -------------------------------------------------------------------
    def save_figure(
        self,
        png: bytes,
        *,
        view: str,
        questioned: str,
        known: str,
        params: Mapping[str, Any],
        caption: str = "",
    ) -> Figure:
        """Keep a comparison view as the next numbered figure (audited)."""
        if view not in FIGURE_VIEWS:
            raise BadInputError(
                f"view {view!r} is not one of " + ", ".join(FIGURE_VIEWS)
            )
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise BadInputError("a figure is stored as a PNG image")
        questioned, known = self._pair(questioned, known)
        caption = printable(caption).strip()
        numbers = [f.number for f in self._all_figures()]
        number = max(numbers, default=0) + 1
        sha = hashlib.sha256(png).hexdigest()
        with self.case._change(
            "figure.save",
            {
                "number": number,
                "view": view,
                "questioned": questioned,
                "known": known,
                "params": dict(params),
                "sha256": sha,
                "caption": caption,
            },
        ) as db:
            stored = self.case.store_derived(png, "figure", "png")
            db.execute(
                "INSERT INTO figures (number, view, questioned, known, params, "
                "image_sha256, caption, author, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    view,
                    questioned,
                    known,
                    json.dumps(dict(params), sort_keys=True),
                    stored,
                    caption,
                    self.case.user,
                    now(),
                ),
            )
        return next(f for f in self._all_figures() if f.number == number)

    def figures(self) -> list[Figure]:
        """Saved figures by number; in a blind session only the verifier's own
        (a caption can carry the first examiner's opinion)."""
        return [
            figure
            for figure in self._all_figures()
            if not self.blind
            or same_person(figure.author) == same_person(self.case.user)
        ]

    def _all_figures(self) -> list[Figure]:
        return [
            Figure(
                r["id"],
                r["number"],
                r["view"],
                r["questioned"],
                r["known"],
                json.loads(r["params"]),
                r["image_sha256"],
                r["caption"],
                r["author"],
                r["created"],
            )
            for r in self._rows("figures", "SELECT * FROM figures ORDER BY number")
        ]


def initial_settings(*, sequential_unmasking: bool) -> dict[str, Any]:
    """A new case's settings (written in its ``case.create`` transaction)."""
    return {UNMASKING: sequential_unmasking, SCALE: DEFAULT_SCALE.to_dict()}


def write_settings(db: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        db.execute(
            "INSERT OR REPLACE INTO case_settings (key, value) VALUES (?, ?)",
            (key, json.dumps(value, sort_keys=True)),
        )


def _mark_order(label: str) -> tuple[str, tuple[int, ...], int]:
    """K2 before K10 before K10#1, and K10.1 (processed from K10) after K10."""
    mark, _, index = label.partition("#")
    prefix = mark.rstrip("0123456789.")
    numbers = tuple(int(n) for n in mark[len(prefix) :].split(".") if n.isdigit())
    return (prefix, numbers, int(index) if index.isdigit() else 0)


def same_person(name: str) -> str:
    """Names compared as people write them: case and spacing do not make a
    second examiner."""
    return " ".join(printable(name).casefold().split())


def _record_from_row(row: Any, current: Mapping[str, int]) -> AcevRecord:
    try:
        content = json.loads(row["content"])
    except ValueError:
        content = {}
    return AcevRecord(
        row["id"],
        row["stage"],
        row["role"],
        row["questioned"],
        row["known"],
        content if isinstance(content, dict) else {},
        bool(row["blind"]),
        row["author"],
        row["created"],
        row["questioned_face_id"],
        row["known_face_id"],
        all(
            current.get(label) == face_id
            for label, face_id in (
                (row["questioned"], row["questioned_face_id"]),
                (row["known"], row["known_face_id"]),
            )
            if label
        ),
    )


def _has_results(details: Mapping[str, Any]) -> bool:
    return any(key in RESULT_KEYS for key in details)


def _redacted(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (MASKED if k in RESULT_KEYS else v) for k, v in details.items()}


def _with_details(entry: AuditEntry, details: Mapping[str, Any]) -> AuditEntry:
    return dataclasses.replace(entry, details=details)


__all__ = [
    "BLIND_HIDDEN",
    "FIGURE_VIEWS",
    "MASKED",
    "Examination",
    "ExaminationSettings",
    "Figure",
    "SeenStep",
]
