"""1:N searches of a case face against a reference gallery, and the candidates
pulled into the case from them: investigative leads (issue 22).

A reference gallery (``core.gallery``, a ``.xfrgallery`` folder) lives outside
any case.  Searching it from a case stores one ``gallery_searches`` row: the probe
face and the SHA-256 of its template, the gallery's uuid, digest (SHA-256 of its
``manifest.sha256``) and size, the model (id and weights SHA-256), the index kind
and parameters, k, and the ranked candidates (identity, file name as the gallery
records it, the image's SHA-256, exact cosine similarity, rank).  Pulling a
candidate in reads its image, checks that its SHA-256 is the one the gallery
recorded, and stores it as a known (K) exhibit through the evidence intake
(``core.case.intake``), with a ``gallery_leads`` row naming the search and rank
in the same transaction.  Both tables are bound to the audit chain like every
other record (``core.case.state``), so ``xfr case verify`` names an edited,
planted or deleted row.

This module stores and reads; it opens no gallery and runs no model (the case
storage layer is below the science): ``core.case.workflow.search_gallery`` does
the search and hands the result here as a ``NewSearch``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    from core.case.store import Case

TABLES = ("gallery_searches", "gallery_leads")
KNOWN_MARK = re.compile(r"K[1-9][0-9]*")


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "identity": self.identity,
            "file": self.file,
            "image_sha256": self.image_sha256,
            "face_index": self.face_index,
            "cosine_similarity": self.similarity,
            "template_row": self.row,
        }

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

    @property
    def name(self) -> str:
        return f"S{self.id}"

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
        return {
            **{k: v for k, v in self.__dict__.items() if k != "candidates"},
            "search": self.name,
            "candidates": [c.to_dict() for c in self.candidates],
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "mark": self.mark,
            "search": self.search.name,
            "gallery_uuid": self.search.gallery_uuid,
            "gallery_digest": self.search.gallery_digest,
            "gallery_size": self.search.gallery_size,
            "rank": self.candidate.rank,
            "cosine_similarity": self.candidate.similarity,
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
    if not isinstance(spec, dict):
        raise TypeError("index_spec is not an object")
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
    )


def _search_id(search: str | int) -> int:
    """``3``, ``"3"`` or ``"S3"`` -> 3."""
    text = str(search).strip()
    digits = text[1:] if text[:1] in ("S", "s") else text
    if not digits.isdigit() or int(digits) < 1:
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
        if self.case.read_only:
            raise CaseError("the case is open read-only", self.case.folder)
        if not self._has_tables():
            raise CaseError("the case has no gallery search tables", self.case.folder)

    # -- reading -------------------------------------------------------------------
    def searches(self, probe: str | None = None) -> list[GallerySearch]:
        """Every recorded search (of faces of exhibit ``probe``), oldest first."""
        if not self._has_tables():
            return []
        rows = list(self.case._db.execute("SELECT * FROM gallery_searches ORDER BY id"))
        found = [
            _search_from_row(r)
            for r in self.case._audited.checked("gallery_searches", rows)
        ]
        if probe is not None:
            mark = probe.partition("#")[0].upper()
            found = [s for s in found if s.probe_label.partition("#")[0] == mark]
        return found

    def search(self, search: str | int) -> GallerySearch:
        number = _search_id(search)
        rows: list[Any] = []
        if self._has_tables():
            rows = list(
                self.case._db.execute(
                    "SELECT * FROM gallery_searches WHERE id = ?", (number,)
                )
            )
        if not rows:
            known = ", ".join(s.name for s in self.searches()) or "none yet"
            raise BadInputError(f"no search S{number} in this case (searches: {known})")
        checked = self.case._audited.checked("gallery_searches", rows)
        return _search_from_row(checked[0])

    def lead(self, mark: str) -> Lead | None:
        """How exhibit ``mark`` came in from a gallery search, or None."""
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
        search = self.search(int(row["search_id"]))
        return Lead(
            str(row["mark"]),
            search,
            search.candidate(int(row["rank"])),
            str(row["image_path"]),
            str(row["created"]),
            str(row["created_by"]),
        )

    def leads(self) -> list[Lead]:
        """Every exhibit pulled in from a search, in the order they were pulled."""
        if not self._has_tables():
            return []
        rows = self.case._db.execute(
            "SELECT exhibits.mark AS mark FROM gallery_leads JOIN exhibits ON "
            "exhibits.id = gallery_leads.exhibit_id ORDER BY gallery_leads.created, "
            "exhibits.id"
        )
        return [lead for r in list(rows) if (lead := self.lead(str(r["mark"])))]

    # -- writing -------------------------------------------------------------------
    def record(self, done: NewSearch) -> GallerySearch:
        """Store a search done against a gallery; returns it as recorded."""
        self._writable()
        face = self.case.face(done.probe_label)
        exhibit = self.case.exhibit(face.mark)
        if not done.candidates:
            raise BadInputError("the search found no candidate: nothing to record")
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
                "model_id, model_sha256, index_spec, k, candidates, "
                "software_version, created, created_by) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    __version__,
                    stamp,
                    self.case.user,
                ),
            )
            number = int(cursor.lastrowid or 0)
        return self.search(number)

    def pull(
        self,
        search: str | int,
        rank: int,
        image: str | Path,
        *,
        mark: str | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> Exhibit:
        """Candidate ``rank`` of ``search``, read from ``image``, stored as a known
        exhibit with its provenance; the image must be the one the gallery
        recorded (same SHA-256), or nothing changes."""
        self._writable()
        found = self.search(search)
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
                "created, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    cursor.lastrowid,
                    found.id,
                    candidate.rank,
                    printable(str(path)),
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
