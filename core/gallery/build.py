"""Building a reference gallery from images, and searching it with a probe image.

The source is either a folder of identities, ``DIR/<identity>/<images>`` (as
``xfr eval`` reads; images directly in DIR and hidden folders are not read), or
a CSV file of ``identity,path`` lines (a path relative to
the CSV's folder unless absolute; an optional first line ``identity,path``).  Each
image is detected, aligned and embedded once by ``core.evaluation.embed_images``
(the largest face); an image with no usable face is listed in the manifest's
``failures`` with the reason, and the build goes on.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import core.evaluation as evaluation
from core.errors import BadInputError, Cancelled
from core.gallery.index import build_index, normalised, spec_for
from core.gallery.store import Candidate, Entry, Gallery, write_gallery
from core.progress import ProgressCallback
from core.resources import sha256_file
from core.version import __version__, source_commit

if TYPE_CHECKING:
    from core.engine import Engine
    from core.models.base import FaceModel


@dataclass(frozen=True)
class SourceImage:
    identity: str
    path: Path  # where the file is read
    given: str  # the name recorded: relative to the folder, or as the CSV says


@dataclass(frozen=True)
class BuildResult:
    path: Path
    count: int
    identities: int
    failures: list[dict[str, str]]
    index: dict[str, object]
    seconds: float


def source_images(source: str | Path) -> list[SourceImage]:
    """The images of a folder of identities or of an ``identity,path`` CSV."""
    root = Path(source)
    if root.is_dir():
        return _folder_images(root)
    if root.is_file():
        return _csv_images(root)
    raise BadInputError("no such folder or CSV file", root)


def _folder_images(root: Path) -> list[SourceImage]:
    people = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    found = [
        SourceImage(person.name, image, f"{person.name}/{image.name}")
        for person in people
        for image in evaluation.images_in(person)
    ]
    if not found:
        raise BadInputError(
            "no images in identity folders (expected DIR/<identity>/<image>)", root
        )
    return found


def _csv_images(file: Path) -> list[SourceImage]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError(
            "not a UTF-8 text file (expected identity,path lines)", file
        ) from None
    found: list[SourceImage] = []
    seen: set[tuple[str, str]] = set()
    rows = csv.reader(text.splitlines(), strict=True)
    number = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as error:  # an unterminated quote, ...
            raise BadInputError(f"line {rows.line_num}: {error}", file) from None
        number = rows.line_num
        if not row or not "".join(row).strip():
            continue
        cells = [cell.strip() for cell in row]
        if number == 1 and [c.lower() for c in cells] == ["identity", "path"]:
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise BadInputError(
                f"line {number}: expected identity,path, got {','.join(row)[:80]!r}",
                file,
            )
        identity, given = cells
        if (identity, given) in seen:
            raise BadInputError(f"line {number}: {identity},{given} listed twice", file)
        seen.add((identity, given))
        path = Path(given)
        path = path if path.is_absolute() else file.parent / path
        if not path.is_file():  # listed by the examiner: not a "no face" failure
            raise BadInputError(f"line {number}: no such image file {given!r}", file)
        found.append(SourceImage(identity, path, given))
    if not found:
        raise BadInputError("no identity,path lines", file)
    return found


def _reasons(failed: list[str], paths: list[Path]) -> dict[Path, str]:
    """``embed_images``'s "path: reason" lines, by path."""
    named = {str(p): p for p in paths}
    reasons: dict[Path, str] = {}
    for text in failed:
        cut = text.find(": ")
        while cut >= 0 and text[:cut] not in named:
            cut = text.find(": ", cut + 1)
        if cut >= 0:
            reasons[named[text[:cut]]] = text[cut + 2 :]
    return reasons


def build_gallery(
    source: str | Path,
    model: FaceModel,
    out: str | Path,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    threads: int = 1,
    engine: Engine | None = None,
) -> BuildResult:
    """Embed every image of ``source`` with ``model`` and write ``out``.

    ``threads``: faiss's threads for the index (1: a reproducible build).
    ``engine``: embed shard by shard on it (``--engine local|ray``, a checkpoint
    folder; :mod:`core.engine`); None: in this process, in one pass.
    """
    started = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise BadInputError("already exists; a gallery is never overwritten", out)
    images = source_images(source)
    unique = list(dict.fromkeys(image.path for image in images))
    embed = evaluation.embedder(engine, "gallery build")
    embedded = embed(unique, model, progress=progress, cancel=cancel)
    if cancel is not None and cancel():
        raise Cancelled("gallery build cancelled")
    reasons = _reasons(embedded.failed, unique)
    entries, vectors, failures = [], [], []
    hashes: dict[Path, str] = {}
    by_image: dict[str, Entry] = {}  # image SHA-256 -> its entry
    for image in images:
        embedding = embedded.embeddings.get(image.path)
        if embedding is None:
            reason = reasons.get(image.path, "no template (reason not given)")
            failures.append({"identity": image.identity, "file": image.given,
                             "reason": reason})  # fmt: skip
            continue
        if image.path not in hashes:
            hashes[image.path] = sha256_file(image.path)
        twin = by_image.get(hashes[image.path])
        if twin is not None:  # one photo twice would rank twice (or as two people)
            raise BadInputError(
                f"{image.given} ({image.identity}) is the same image as {twin.file} "
                f"({twin.identity}): list each photo once"
            )
        entries.append(Entry(image.identity, image.given, hashes[image.path], 0))
        by_image[hashes[image.path]] = entries[-1]
        vectors.append(np.asarray(embedding, dtype=np.float64))
    if not entries:
        first = failures[0] if failures else {"file": "none", "reason": ""}
        raise BadInputError(
            f"no image gave a template ({len(failures)} failed; the first: "
            f"{first['file']}: {first['reason']})",
            Path(source),
        )
    templates = normalised(np.stack(vectors))
    spec = spec_for(len(entries))
    index = build_index(templates, spec, threads=threads)
    write_gallery(
        out,
        templates=templates,
        entries=entries,
        index=index,
        spec=spec,
        model_id=model.model_id,
        weights_sha256=model.weights_sha256,
        source=str(source),
        failures=failures,
        build_threads=threads,
        software_version=__version__,
        software_commit=source_commit(),
        engine=None if engine is None else engine.describe(),
    )
    return BuildResult(
        out,
        len(entries),
        len({e.identity for e in entries}),
        failures,
        spec.to_dict(),
        time.perf_counter() - started,
    )


def embed_probe(path: str | Path, model: FaceModel) -> np.ndarray:
    """The probe image's largest face, embedded as the gallery's were."""
    probe = Path(path)
    if not probe.is_file():
        raise BadInputError("no such image file", probe)
    embedded = evaluation.embed_images([probe], model)
    if probe not in embedded.embeddings:
        reason = _reasons(embedded.failed, [probe]).get(probe, "no face found")
        raise BadInputError(reason, probe)
    return np.asarray(embedded.embeddings[probe], dtype=np.float64)


def search_probe(
    gallery: Gallery, probe: str | Path, model: FaceModel, top: int, threads: int = 1
) -> tuple[np.ndarray, list[Candidate]]:
    """Check the model against the gallery's, embed the probe, search."""
    gallery.check_model(model.model_id, model.weights_sha256)
    embedding = embed_probe(probe, model)
    return embedding, gallery.search(embedding, top, threads=threads)
