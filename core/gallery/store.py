"""The ``.xfrgallery`` format: a reference gallery of face templates kept outside
any case.

A gallery is a folder of four files:

* ``manifest.json``: the format and its version, the gallery's uuid, when and by
  which software it was made, the model (id and weights SHA-256), the embedding
  dimension, the metric (cosine), the index kind and its parameters, the source
  as given, one entry per template (identity, source file name as given, the image
  file's SHA-256, which face of the image) and the images that gave no template
  (file and reason);
* ``templates.npy``: float32 N x d, row i the template of entry i, unit length
  (cosine similarity = dot product);
* ``index.faiss``: the faiss index over those rows (``core.gallery.index``);
* ``manifest.sha256``: the SHA-256 of each of the three, one ``DIGEST  NAME`` line
  each (``sha256sum`` reads it).

``open_gallery`` refuses a gallery whose files do not match ``manifest.sha256``
(one line naming the file), or whose manifest and arrays disagree.  The check finds
damage and partial edits; it is no signature: someone who rewrites a file and its
line in ``manifest.sha256`` is not detected here, which is why a search names the
gallery by the SHA-256 of ``manifest.sha256`` (``Gallery.digest``) - the figure to
compare with the one recorded when the gallery was made.

Written atomically: everything goes to a temporary folder beside the target,
synced, which is then renamed to the target name; an existing target is refused,
never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError
from core.gallery.index import Hit, IndexSpec, read_index, search, write_index
from core.io.atomic import fsync_dir

FORMAT = "xfrgallery"
FORMAT_VERSION = 1
SUFFIX = ".xfrgallery"
MANIFEST = "manifest.json"
TEMPLATES = "templates.npy"
INDEX = "index.faiss"
CHECKSUMS = "manifest.sha256"
HASHED = (MANIFEST, TEMPLATES, INDEX)
METRIC = "cosine"
FACE_RULE = "the largest face the detector found (face index 0)"


@dataclass(frozen=True)
class Entry:
    """One template: whose, from which file, which face."""

    identity: str
    file: str  # as given (relative to the source folder, or as the CSV names it)
    image_sha256: str
    face_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "file": self.file,
            "image_sha256": self.image_sha256,
            "face_index": self.face_index,
        }


@dataclass(frozen=True)
class Candidate:
    """One search result: an investigative lead, not an identification."""

    rank: int
    identity: str
    file: str
    image_sha256: str
    face_index: int
    similarity: float  # exact cosine similarity of probe and template
    row: int

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_gallery(
    out: Path,
    *,
    templates: np.ndarray,
    entries: list[Entry],
    index: Any,
    spec: IndexSpec,
    model_id: str,
    weights_sha256: str,
    source: str,
    failures: list[dict[str, str]],
    build_threads: int,
    software_version: str,
    software_commit: str,
    engine: dict[str, Any] | None = None,
) -> Path:
    """Write a gallery folder atomically; returns ``out``.  ``engine``: where the
    embeddings were computed and how many shards came from a checkpoint."""
    out = Path(out)
    if out.exists():
        raise BadInputError("already exists; a gallery is never overwritten", out)
    if templates.dtype != np.float32 or templates.shape[0] != len(entries):
        raise BadInputError(
            f"{templates.shape[0]} templates for {len(entries)} entries", out
        )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gallery_uuid": str(uuid.uuid4()),
        "created": _now(),
        "software_version": software_version,
        "software_commit": software_commit,
        "model": {"id": model_id, "weights_sha256": weights_sha256},
        "embedding_dim": int(templates.shape[1]),
        "metric": METRIC,
        "templates_normalised": "L2, unit length: cosine similarity = dot product",
        "index": spec.to_dict() | {"build_threads": build_threads},
        "face_rule": FACE_RULE,
        "source": source,
        "count": len(entries),
        "identities": len({e.identity for e in entries}),
        "templates": [e.to_dict() for e in entries],
        "failures": failures,
    }
    if engine is not None:
        manifest["engine"] = engine
    temp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    temp.mkdir()
    try:
        (temp / MANIFEST).write_text(
            json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        np.save(temp / TEMPLATES, templates, allow_pickle=False)
        write_index(index, temp / INDEX)
        lines = [f"{_sha256(temp / name)}  {name}\n" for name in HASHED]
        (temp / CHECKSUMS).write_text("".join(lines), encoding="utf-8")
        for name in (*HASHED, CHECKSUMS):
            with open(temp / name, "r+b") as handle:  # Windows syncs a writable one
                os.fsync(handle.fileno())
        fsync_dir(temp)
        os.rename(temp, out)  # refuses (on POSIX: a non-empty folder) a new target
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_dir(out.parent)
    return out


@dataclass
class Gallery:
    """An opened, checked gallery (read-only)."""

    path: Path
    manifest: dict[str, Any]
    templates: np.ndarray
    digest: str  # SHA-256 of manifest.sha256: names this gallery's exact content
    _index: Any = field(default=None, repr=False)

    @property
    def uuid(self) -> str:
        return str(self.manifest["gallery_uuid"])

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def weights_sha256(self) -> str:
        return str(self.manifest["model"]["weights_sha256"])

    @property
    def count(self) -> int:
        return int(self.templates.shape[0])

    @cached_property
    def spec(self) -> IndexSpec:
        return IndexSpec.from_dict(self.manifest["index"])

    @cached_property
    def entries(self) -> list[Entry]:
        return [
            Entry(
                str(t["identity"]),
                str(t["file"]),
                str(t["image_sha256"]),
                int(t.get("face_index", 0)),
            )
            for t in self.manifest["templates"]
        ]

    @property
    def index(self) -> Any:
        if self._index is None:
            self._index = read_index(self.path / INDEX, self.spec, self.templates)
        return self._index

    def check_model(self, model_id: str, weights_sha256: str) -> None:
        """One line when the probe would be embedded by another model."""
        if weights_sha256 != self.weights_sha256:
            raise BadInputError(
                f"the gallery's templates were made with model {self.model_id} "
                f"(weights SHA-256 {self.weights_sha256[:12]}...); the probe's model "
                f"{model_id} has weights {weights_sha256[:12]}...: their scores "
                "cannot be compared",
                self.path,
            )

    def search(
        self, embedding: np.ndarray, top: int, *, threads: int = 1
    ) -> list[Candidate]:
        """The ``top`` candidates for a probe embedding, exactly scored."""
        hits: list[Hit] = search(
            self.index, self.templates, embedding, top, self.spec, threads=threads
        )
        entries = self.entries
        return [
            Candidate(
                hit.rank,
                entries[hit.row].identity,
                entries[hit.row].file,
                entries[hit.row].image_sha256,
                entries[hit.row].face_index,
                hit.score,
                hit.row,
            )
            for hit in hits
        ]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "path": str(self.path),
            "gallery_uuid": self.uuid,
            "digest_sha256": self.digest,
            "created": m["created"],
            "model": m["model"],
            "count": self.count,
            "identities": m.get("identities"),
            "index": m["index"],
        }


def _checksums(path: Path) -> dict[str, str]:
    file = path / CHECKSUMS
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(
            f"not a gallery ({CHECKSUMS} is missing; build one with "
            "`xfr gallery build`)",
            path,
        ) from None
    except UnicodeDecodeError:
        raise BadInputError("damaged: not a text file", file) from None
    listed: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or name not in HASHED or name in listed:
            raise BadInputError(f"damaged: unexpected line {line[:80]!r}", file)
        listed[name] = digest
    missing = [name for name in HASHED if name not in listed]
    if missing:
        raise BadInputError(f"damaged: no line for {missing[0]}", file)
    return listed


def open_gallery(path: str | Path) -> Gallery:
    """Open and check a gallery: every file against ``manifest.sha256``, then the
    manifest against the arrays.  Any mismatch is one line naming the file."""
    folder = Path(path)
    if not folder.is_dir():
        if folder.exists():
            raise BadInputError("not a gallery (a gallery is a folder)", folder)
        raise BadInputError("no such gallery", folder)
    listed = _checksums(folder)
    for name in HASHED:
        file = folder / name
        if not file.is_file():
            raise BadInputError("missing from the gallery", file)
        if _sha256(file) != listed[name]:
            raise BadInputError(
                f"changed since the gallery was made (its SHA-256 is not the one "
                f"in {CHECKSUMS}); the gallery cannot be used",
                file,
            )
    digest = _sha256(folder / CHECKSUMS)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"not valid JSON ({error})", folder / MANIFEST) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInputError(f"not a {FORMAT} manifest", folder / MANIFEST)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BadInputError(
            f"format version {manifest.get('format_version')!r}; this XFR reads "
            f"version {FORMAT_VERSION}",
            folder / MANIFEST,
        )
    try:
        templates = np.load(folder / TEMPLATES, allow_pickle=False)
    except ValueError as error:
        raise BadInputError(
            f"not a template array ({error})", folder / TEMPLATES
        ) from None
    count, dim = len(manifest.get("templates", [])), manifest.get("embedding_dim")
    if templates.dtype != np.float32 or templates.shape != (count, dim):
        raise BadInputError(
            f"holds {templates.dtype} {templates.shape}; the manifest says float32 "
            f"({count}, {dim})",
            folder / TEMPLATES,
        )
    norms = np.linalg.norm(templates.astype(np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1.0) > 1e-4))
    if bad.size:  # a score shown as a cosine must be one
        raise BadInputError(
            f"template {int(bad[0])} is not a unit vector (length {norms[bad[0]]:.6g}):"
            " the gallery cannot be used",
            folder / TEMPLATES,
        )
    gallery = Gallery(folder, manifest, templates, digest)
    try:  # every field a search reads, read once now: a damaged one is one line
        _ = (gallery.uuid, gallery.model_id, gallery.weights_sha256, gallery.spec)
        entries = gallery.entries
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BadInputError(
            f"damaged: a field is missing or of the wrong kind ({error!r})",
            folder / MANIFEST,
        ) from None
    if len(entries) != count:
        raise BadInputError("damaged: entries and templates differ", folder / MANIFEST)
    _ = gallery.index  # the index is checked against the templates on opening
    return gallery
