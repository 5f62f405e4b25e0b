"""1:N searches of a case face against a reference gallery, and the candidates
pulled into the case from them: investigative leads (issue 22).

A reference gallery (``core.gallery``, a ``.xfrgallery`` folder) lives outside
any case.  Searching it from a case stores one ``gallery_searches`` row: the probe
face and the SHA-256 of its template, the gallery's uuid, digest (SHA-256 of its
``manifest.sha256``) and size, the model (id and weights SHA-256), the index kind
and parameters, k, and the ranked candidates (identity, file name as the gallery
records it, the image's SHA-256, exact cosine similarity, rank, and the
gallery's template itself: float32 little-endian, base64, with its SHA-256).
Pulling a candidate in reads its image, checks that its SHA-256 is the one the
gallery recorded and that the model, run on it by the gallery's face rule,
reproduces the stored template (``workflow.pull_candidate``; the figure is kept
in the lead's row), and stores it as a known (K) exhibit through the evidence intake
(``core.case.intake``), with a ``gallery_leads`` row naming the search and rank
in the same transaction.  Both tables are bound to the audit chain like every
other record (``core.case.state``), so ``xfr case verify`` names an edited,
planted or deleted row.

This module stores and reads; it opens no gallery and runs no model (the case
storage layer is below the science): ``core.case.workflow.search_gallery`` does
the search and hands the result here as a ``NewSearch``.

Which scores may be shown is decided here, once (``CaseGallerySearches._shown``),
from the examination of the session that reads (``core.case.examination``: the
CLI command's, the window's, the report's - a blind verifier's own unmaskings in
a blind session), which every reading method takes as a required keyword
(``examination=None``: no score at all): with sequential unmasking on, a
candidate's search score is shown only once it is in the case as an exhibit and
the face records of the pair (the search's own probe face record, by id as
``Examination.masked_comparison`` does, and the exhibit's face 0 - the largest,
the gallery's face rule) were unmasked by that session; ``GallerySearch.score``
and ``Lead.score`` are None otherwise, and every printed form (``to_dict``,
``workflow.lead_note``) goes through them.  A search whose probe face record has
since been replaced (``xfr case faces --box``) says so (``probe_current``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.case import state as bound
from core.case.intake import (
    commit_evidence,
    remove_partial,
    removing_on_failure,
    stage_evidence,
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
from core.imageio import MAX_PIXELS
from core.version import __version__

if TYPE_CHECKING:
    from core.case.examination import Examination
    from core.case.store import Case

TABLES = ("gallery_searches", "gallery_leads")
KNOWN_MARK = re.compile(r"K[1-9][0-9]*")
# a search or pull still running when its case was closed (the window's dialog)
CASE_CLOSED = "the case was closed before this could be recorded: nothing was added"
SEARCH_ID = re.compile(r"[Ss]?([0-9]+)")  # ASCII digits only (not "²", "١")
MAX_SEARCH_ID = 2**63 - 1  # SQLite's largest row id


@dataclass(frozen=True)
class SearchCandidate:
    """One ranked template of a recorded search."""

    rank: int
    identity: str
    file: str  # as the gallery records it
    image_sha256: str
    face_index: int
    similarity: float  # exact cosine similarity of probe and template
    row: int  # the template's row in the gallery
    template: str = ""  # the gallery's template: float32 little-endian, base64
    template_sha256: str = ""  # of those bytes

    def to_dict(self) -> dict[str, Any]:
        """As stored in the search's row (the score included: it is bound)."""
        return {
            "rank": self.rank,
            "identity": self.identity,
            "file": self.file,
            "image_sha256": self.image_sha256,
            "face_index": self.face_index,
            "cosine_similarity": self.similarity,
            "template_row": self.row,
            "template": self.template,
            "template_sha256": self.template_sha256,
        }

    def shown(self, score: float | None) -> dict[str, Any]:
        """For output: the template by its hash, the score only if given."""
        values = self.to_dict()
        del values["template"]
        values["cosine_similarity"] = score
        return values

    def vector(self) -> Any:
        """The stored template (float32), checked against its SHA-256."""
        import numpy as np

        try:
            data = base64.b64decode(self.template.encode("ascii"), validate=True)
        except ValueError:
            data = b""
        vector = np.frombuffer(data, dtype="<f4") if len(data) % 4 == 0 else None
        if (
            vector is None
            or not data
            or template_sha256(vector) != (self.template_sha256)
        ):
            raise BadInputError(
                f"the stored template of candidate {self.rank} ({self.identity} / "
                f"{self.file}) does not match its SHA-256"
            )
        return vector

    @staticmethod
    def encode(vector: Any) -> tuple[str, str]:
        """A template as stored: (base64 of float32 little-endian, SHA-256)."""
        import numpy as np

        data = np.ascontiguousarray(np.asarray(vector, dtype="<f4")).tobytes()
        return base64.b64encode(data).decode("ascii"), template_sha256(vector)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SearchCandidate:
        return cls(
            int(values["rank"]),
            str(values["identity"]),
            str(values["file"]),
            str(values["image_sha256"]),
            int(values["face_index"]),
            float(values["cosine_similarity"]),
            int(values["template_row"]),
            str(values["template"]),
            str(values["template_sha256"]),
        )


@dataclass(frozen=True)
class NewSearch:
    """A search done (by ``workflow.search_gallery``), to be recorded."""

    probe_label: str
    probe_template_sha256: str
    gallery_uuid: str
    gallery_digest: str
    gallery_size: int
    gallery_path: str
    gallery_source: str
    model_id: str
    model_sha256: str
    index_spec: Mapping[str, Any]
    k: int
    candidates: Sequence[SearchCandidate]
    # the model's one-to-one threshold (Threshold.to_dict), for the cosine scale
    threshold: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GallerySearch:
    """A recorded search (``S<id>``)."""

    id: int
    probe_label: str
    probe_exhibit_sha256: str
    probe_template_sha256: str
    gallery_uuid: str
    gallery_digest: str
    gallery_size: int
    gallery_path: str
    gallery_source: str
    model_id: str
    model_sha256: str
    index_spec: dict[str, Any]
    k: int
    candidates: tuple[SearchCandidate, ...]
    software_version: str
    created: str
    created_by: str
    threshold: dict[str, Any] = field(default_factory=dict)  # the model's 1:1 rule
    # the ranks whose scores may be shown now (``CaseGallerySearches._shown``):
    # every rank with sequential unmasking off; with it on, only the ranks pulled
    # into the case whose pair with the probe is unmasked
    shown_ranks: frozenset[int] = frozenset()
    # the probe's face record searched (its id), and whether it is still the
    # current record of ``probe_label`` (False: corrected since; the scores are
    # of that earlier record's template)
    probe_face_id: int | None = None
    probe_current: bool = True

    @property
    def name(self) -> str:
        return f"S{self.id}"

    @property
    def short_digest(self) -> str:
        """The gallery digest's first 12 hex digits (tells two galleries of one
        uuid apart)."""
        return self.gallery_digest[:12]

    def score(self, rank: int) -> float | None:
        """Candidate ``rank``'s cosine, or None while the pair is masked."""
        if rank not in self.shown_ranks:
            return None
        return self.candidate(rank).similarity

    @property
    def exact(self) -> bool:
        return bool(self.index_spec.get("exact_search"))

    def candidate(self, rank: int) -> SearchCandidate:
        for candidate in self.candidates:
            if candidate.rank == rank:
                return candidate
        raise BadInputError(
            f"search {self.name} has no candidate of rank {rank} (ranks 1 to "
            f"{len(self.candidates)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """For output: a masked candidate's score is None (listed in
        ``scores_hidden``); the templates by their SHA-256."""
        hidden = ("candidates", "shown_ranks", "probe_face_id", "probe_current")
        return {
            **{k: v for k, v in self.__dict__.items() if k not in hidden},
            "search": self.name,
            "candidates": [c.shown(self.score(c.rank)) for c in self.candidates],
            "scores_hidden": [
                c.rank for c in self.candidates if c.rank not in self.shown_ranks
            ],
            "probe_face_id": self.probe_face_id,
            # False: the probe's face record searched was replaced since
            "probe_face_current": self.probe_current,
        }


@dataclass(frozen=True)
class Lead:
    """An exhibit pulled in from a search: which search, which rank."""

    mark: str
    search: GallerySearch
    candidate: SearchCandidate
    image_path: str
    created: str
    created_by: str
    # the cosine of the model's template of the pulled image (the gallery's face
    # rule) with the gallery's stored template: 1 up to float rounding
    template_cosine: float = float("nan")

    @property
    def score(self) -> float | None:
        """The search's cosine of the probe and the gallery's template of this
        candidate, or None while the pair is masked (sequential unmasking)."""
        return self.search.score(self.candidate.rank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mark": self.mark,
            "search": self.search.name,
            "gallery_uuid": self.search.gallery_uuid,
            "gallery_digest": self.search.gallery_digest,
            "gallery_size": self.search.gallery_size,
            "rank": self.candidate.rank,
            "cosine_similarity": self.score,  # None while the pair is masked
            "template_sha256": self.candidate.template_sha256,
            "template_reproduction_cosine": self.template_cosine,
            "identity": self.candidate.identity,
            "file": self.candidate.file,
            "image_sha256": self.candidate.image_sha256,
            "image_path": self.image_path,
            "created": self.created,
            "created_by": self.created_by,
        }


def template_sha256(vector: Any) -> str:
    """SHA-256 of a template as float32 little-endian bytes (as the case stores
    embeddings)."""
    import hashlib

    import numpy as np

    data = np.ascontiguousarray(np.asarray(vector, dtype="<f4")).tobytes()
    return hashlib.sha256(data).hexdigest()


@_malformed_as_case_error("gallery_searches")
def _search_from_row(row: Any) -> GallerySearch:
    candidates = tuple(
        SearchCandidate.from_dict(c) for c in json.loads(row["candidates"])
    )
    spec = json.loads(row["index_spec"])
    threshold = json.loads(row["threshold"])
    if not isinstance(spec, dict) or not isinstance(threshold, dict):
        raise TypeError("index_spec or threshold is not an object")
    return GallerySearch(
        id=int(row["id"]),
        probe_label=str(row["probe_label"]),
        probe_exhibit_sha256=str(row["probe_exhibit_sha256"]),
        probe_template_sha256=str(row["probe_template_sha256"]),
        gallery_uuid=str(row["gallery_uuid"]),
        gallery_digest=str(row["gallery_digest"]),
        gallery_size=int(row["gallery_size"]),
        gallery_path=str(row["gallery_path"]),
        gallery_source=str(row["gallery_source"]),
        model_id=str(row["model_id"]),
        model_sha256=str(row["model_sha256"]),
        index_spec=spec,
        k=int(row["k"]),
        candidates=candidates,
        software_version=str(row["software_version"]),
        created=str(row["created"]),
        created_by=str(row["created_by"]),
        threshold=threshold,
        probe_face_id=int(row["probe_face_id"]),
    )


def _search_id(search: str | int) -> int:
    """``3``, ``"3"`` or ``"S3"`` -> 3."""
    text = str(search).strip()
    found = SEARCH_ID.fullmatch(text)
    digits = found.group(1) if found else ""
    # the length first: int() of thousands of digits is itself refused
    if not digits or len(digits) > 19 or not 1 <= int(digits) <= MAX_SEARCH_ID:
        raise BadInputError(f"--search {text!r} is not a search id (S1, S2, ...)")
    return int(digits)


class CaseGallerySearches:
    """The gallery searches and investigative leads of one open case
    (``Case.gallery_searches``)."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def _has_tables(self) -> bool:
        """An older case opened read-only is not migrated: it has no such tables."""
        present = bound.present_tables(self.case._db.execute)
        return all(table in present for table in TABLES)

    def _writable(self) -> None:
        if self.case.closed:
            raise CaseError(CASE_CLOSED, self.case.folder)
        if self.case.read_only:
            raise CaseError("the case is open read-only", self.case.folder)
        if not self._has_tables():
            raise CaseError("the case has no gallery search tables", self.case.folder)

    # -- reading -------------------------------------------------------------------
    def searches(
        self, probe: str | None = None, *, examination: Examination | None
    ) -> list[GallerySearch]:
        """Every recorded search (of faces of exhibit ``probe``), oldest first,
        with the scores ``examination`` (the reading session's) may see."""
        if not self._has_tables():
            return []
        rows = list(self.case._db.execute("SELECT * FROM gallery_searches ORDER BY id"))
        found = [
            self._shown(_search_from_row(r), examination)
            for r in self.case._audited.checked("gallery_searches", rows)
        ]
        if probe is not None:
            mark = probe.partition("#")[0].upper()
            found = [s for s in found if s.probe_label.partition("#")[0] == mark]
        return found

    def search(
        self, search: str | int, *, examination: Examination | None
    ) -> GallerySearch:
        """Search ``search`` (S3, 3), with the scores ``examination`` may see."""
        number = _search_id(search)
        rows: list[Any] = []
        if self._has_tables():
            rows = list(
                self.case._db.execute(
                    "SELECT * FROM gallery_searches WHERE id = ?", (number,)
                )
            )
        if not rows:
            known = (
                ", ".join(s.name for s in self.searches(examination=None)) or "none yet"
            )
            raise BadInputError(f"no search S{number} in this case (searches: {known})")
        checked = self.case._audited.checked("gallery_searches", rows)
        return self._shown(_search_from_row(checked[0]), examination)

    def _current_face_id(self, label: str) -> int | None:
        """The id of ``label``'s current face record (None: it has none)."""
        try:
            return int(self.case.face(label).id)
        except BadInputError:
            return None

    def _shown(
        self, search: GallerySearch, examination: Examination | None
    ) -> GallerySearch:
        """``search`` with the ranks whose scores ``examination`` (the reading
        session's: blind or not) may see now - the one place that decides it:
        none without an examination; all with sequential unmasking off; with it
        on, those pulled into the case as an exhibit whose face 0 (the largest
        face, the gallery's face rule) was unmasked with the search's own probe
        face record (by ids, as ``Examination.masked_comparison``: a record of
        the probe since replaced was never unmasked)."""
        from dataclasses import replace

        current = self._current_face_id(search.probe_label)
        search = replace(search, probe_current=current == search.probe_face_id)
        if examination is None:
            return replace(search, shown_ranks=frozenset())
        if not examination.settings().sequential_unmasking:
            shown = frozenset(c.rank for c in search.candidates)
            return replace(search, shown_ranks=shown)
        rows = list(
            self.case._db.execute(
                "SELECT * FROM gallery_leads WHERE search_id = ?", (search.id,)
            )
        )
        pulled = {
            int(row["rank"]): int(row["exhibit_id"])
            for row in self.case._audited.checked("gallery_leads", rows)
        }
        marks = {
            int(r["id"]): str(r["mark"])
            for r in self.case._db.execute("SELECT id, mark FROM exhibits")
        }
        shown = frozenset(
            rank
            for rank, exhibit in pulled.items()
            if exhibit in marks
            and not examination.masked_faces(
                search.probe_face_id, self._current_face_id(marks[exhibit])
            )
        )
        return replace(search, shown_ranks=shown)

    def lead(self, mark: str, *, examination: Examination | None) -> Lead | None:
        """How exhibit ``mark`` came in from a gallery search, or None; its
        score as ``examination`` (the reading session's) may see it."""
        if not self._has_tables():
            return None
        rows = list(
            self.case._db.execute(
                "SELECT gallery_leads.*, exhibits.mark AS mark FROM gallery_leads "
                "JOIN exhibits ON exhibits.id = gallery_leads.exhibit_id "
                "WHERE exhibits.mark = ?",
                (mark.partition("#")[0].upper(),),
            )
        )
        if not rows:
            return None
        (row,) = self.case._audited.checked("gallery_leads", rows)
        search = self.search(int(row["search_id"]), examination=examination)
        return Lead(
            str(row["mark"]),
            search,
            search.candidate(int(row["rank"])),
            str(row["image_path"]),
            str(row["created"]),
            str(row["created_by"]),
            float(row["template_cosine"]),
        )

    def leads(self, *, examination: Examination | None) -> list[Lead]:
        """Every exhibit pulled in from a search, in the order they were pulled
        (scores as ``examination`` may see them)."""
        if not self._has_tables():
            return []
        rows = self.case._db.execute(
            "SELECT exhibits.mark AS mark FROM gallery_leads JOIN exhibits ON "
            "exhibits.id = gallery_leads.exhibit_id ORDER BY gallery_leads.created, "
            "exhibits.id"
        )
        return [
            lead
            for r in list(rows)
            if (lead := self.lead(str(r["mark"]), examination=examination))
        ]

    # -- writing -------------------------------------------------------------------
    def record(
        self, done: NewSearch, *, examination: Examination | None
    ) -> GallerySearch:
        """Store a search done against a gallery; returns it as recorded (the
        scores as ``examination``, the recording session's, may see them)."""
        self._writable()
        face = self.case.face(done.probe_label)
        exhibit = self.case.exhibit(face.mark)
        if not done.candidates:
            raise BadInputError("the search found no candidate: nothing to record")
        if not all(c.template and c.template_sha256 for c in done.candidates):
            raise BadInputError("a candidate has no template: nothing was recorded")
        candidates = [c.to_dict() for c in done.candidates]
        spec = json.dumps(dict(done.index_spec), sort_keys=True)
        details = {
            "probe": face.label,
            "probe_exhibit_sha256": exhibit.sha256,
            "probe_template_sha256": done.probe_template_sha256,
            "gallery_uuid": done.gallery_uuid,
            "gallery_digest": done.gallery_digest,
            "gallery_size": done.gallery_size,
            "gallery_path": printable(done.gallery_path),
            "model_id": done.model_id,
            "model_sha256": done.model_sha256,
            "index": dict(done.index_spec),
            "k": done.k,
            "threshold": dict(done.threshold),
            "candidates": len(candidates),
            # the ranked list and its scores are in the row this entry binds;
            # the trail (shown in the report) names no score: a pair may be masked
            "top": {k: candidates[0][k] for k in ("rank", "identity", "file")},
        }
        stamp = now()
        with self.case._change("gallery.search", details) as db:
            cursor = db.execute(
                "INSERT INTO gallery_searches (probe_face_id, probe_label, "
                "probe_exhibit_sha256, probe_template_sha256, gallery_uuid, "
                "gallery_digest, gallery_size, gallery_path, gallery_source, "
                "model_id, model_sha256, index_spec, k, candidates, threshold, "
                "software_version, created, created_by) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    face.id,
                    face.label,
                    exhibit.sha256,
                    done.probe_template_sha256,
                    done.gallery_uuid,
                    done.gallery_digest,
                    int(done.gallery_size),
                    printable(done.gallery_path),
                    printable(done.gallery_source),
                    done.model_id,
                    done.model_sha256,
                    spec,
                    int(done.k),
                    json.dumps(candidates, sort_keys=True),
                    json.dumps(dict(done.threshold), sort_keys=True),
                    __version__,
                    stamp,
                    self.case.user,
                ),
            )
            number = int(cursor.lastrowid or 0)
        return self.search(number, examination=examination)

    def pull(
        self,
        search: str | int,
        rank: int,
        image: str | Path,
        *,
        reproduce: Callable[[Path, SearchCandidate], float],
        mark: str | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> Exhibit:
        """Candidate ``rank`` of ``search``, read from ``image``, stored as a known
        exhibit with its provenance; the image must be the one the gallery
        recorded (same SHA-256), and ``reproduce(copy, candidate)`` - run on the
        checked copy before anything is stored - returns the cosine of the
        model's template of it with the gallery's (it raises ``BadInputError``
        when that is not the template searched), or nothing changes."""
        self._writable()
        found = self.search(search, examination=None)  # no score is used here
        candidate = found.candidate(int(rank))
        path = Path(image)
        if not path.is_file():
            raise BadInputError(
                f"no such image file for candidate {candidate.rank} of {found.name} "
                f"({candidate.identity} / {candidate.file}); give it with --image",
                path,
            )
        new_mark = self._mark(mark)
        already = self.case._db.execute(
            "SELECT mark FROM exhibits WHERE sha256 = ?", (candidate.image_sha256,)
        ).fetchone()
        if already is not None:
            raise BadInputError(
                f"candidate {candidate.rank} of {found.name} ({candidate.identity} / "
                f"{candidate.file}) is already in the case as {already['mark']}"
            )
        copy, record = stage_evidence(self.case.folder, path, max_pixels)
        try:
            if record["sha256"] != candidate.image_sha256:
                raise BadInputError(
                    f"its SHA-256 is {record['sha256'][:12]}..., the gallery recorded "
                    f"{candidate.image_sha256[:12]}... for candidate {candidate.rank} "
                    f"of {found.name} ({candidate.identity} / {candidate.file}): not "
                    "the image that was searched; nothing was added",
                    path,
                )
            template_cosine = float(reproduce(copy, candidate))
            target = self.case.folder / EVIDENCE / record["sha256"]
            existed = target.exists()
            commit_evidence(self.case.folder, copy, record["sha256"], path)
        finally:
            remove_partial(copy)
        provenance = {
            "mark": new_mark,
            "role": "gallery",
            "sha256": record["sha256"],
            "original_name": record["original_name"],
            "size": record["size"],
            "source_path": printable(str(path)),
            "search": found.name,
            "probe": found.probe_label,
            "gallery_uuid": found.gallery_uuid,
            "gallery_digest": found.gallery_digest,
            "gallery_size": found.gallery_size,
            "model_sha256": found.model_sha256,
            "rank": candidate.rank,  # its score: in the search's row (masking)
            "template_sha256": candidate.template_sha256,
            "template_reproduction_cosine": template_cosine,
            "identity": candidate.identity,
            "file": candidate.file,
            "lead": "investigative lead from a 1:N gallery search",
        }
        note = (
            f"investigative lead: candidate {candidate.rank} of 1:N search "
            f"{found.name} ({found.probe_label} against gallery {found.gallery_uuid}, "
            f"{found.gallery_size} templates); gallery identity "
            f"{candidate.identity}, file {candidate.file} (its score: in the "
            "search record, shown only where the pair is not masked)"
        )
        stamp = now()
        with (
            removing_on_failure([] if existed else [target]),
            self.case._change("exhibits.pull_candidate", provenance) as db,
        ):
            cursor = db.execute(
                "INSERT INTO exhibits (mark, role, sha256, original_name, size, "
                "format, width, height, exif_orientation, exif, note, intake_time, "
                "intake_user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_mark,
                    "gallery",
                    record["sha256"],
                    record["original_name"],
                    record["size"],
                    record["format"],
                    record["width"],
                    record["height"],
                    record["exif_orientation"],
                    json.dumps(record["exif"], default=json_default),
                    printable(note),
                    stamp,
                    self.case.user,
                ),
            )
            db.execute(
                "INSERT INTO gallery_leads (exhibit_id, search_id, rank, image_path, "
                "template_cosine, created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    cursor.lastrowid,
                    found.id,
                    candidate.rank,
                    printable(str(path)),
                    template_cosine,
                    stamp,
                    self.case.user,
                ),
            )
        return self.case.exhibit(new_mark)

    def _mark(self, mark: str | None) -> str:
        """The next free K mark, or the one asked for (free, of the form K<n>)."""
        if mark is None:
            return self.case._next_marks("gallery", 1)[0]
        wanted = mark.strip().upper()
        if not KNOWN_MARK.fullmatch(wanted):
            raise BadInputError(
                f"--as {mark!r}: a pulled candidate is a known exhibit, marked K1, "
                "K2, ..."
            )
        taken = self.case._db.execute(
            "SELECT 1 FROM exhibits WHERE mark = ?", (wanted,)
        ).fetchone()
        if taken is not None:
            raise BadInputError(
                f"--as {wanted}: the case already has an exhibit {wanted}"
            )
        return wanted
