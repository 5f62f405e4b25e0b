"""Verification accuracy of a model on a labelled data set.

Two layouts are read:

* a folder of identities (``DIR/<person>/<image>``): every genuine pair (two images of
  one person) plus a deterministic, seeded sample of impostor pairs (images of two
  different people): as many as genuine pairs but at least 1000, or all of them if
  there are fewer;
* LFW's protocol file ``pairs.txt`` (folds header, then ``name i j`` for genuine and
  ``name1 i name2 j`` for impostor pairs), given directly or as a folder holding
  ``pairs.txt`` and ``pairs-images/`` (or the usual LFW image folder beside it).

Each image is embedded once.  With ``ProbeChains`` (``xfr eval verification
--degrade / --process``) the probe of every pair (its first image) is run through a
processing chain after loading and before detection, and embedded apart from the
same file used unprocessed as a gallery image (the second of a pair).

Reported: EER, ROC AUC, accuracy / true-accept and false-accept rates at the model's
threshold, pair counts, and failures to detect (a pair with an undetected face is
left out and counted, never guessed - unless the caller asks for dlib's LFW
convention of falling back to the centre of the image).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import BadInputError, Cancelled, NoFaceError
from core.faces.align import chip_for_model
from core.faces.detect import Face, FaceDetector
from core.imageio import LoadedImage, decode_image, load_image, read_image_bytes
from core.models.base import (
    FaceModel,
    Threshold,
    cosine_similarity,
    euclidean_distance,
)
from core.progress import ProgressCallback
from core.verify import PreparedFace, needs_68_landmarks, prepare_face

if TYPE_CHECKING:  # core.quality pulls in OpenCV: imported where it is used
    from core.engine import Engine
    from core.processing import Step
    from core.quality import FaceQuality

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

MIN_IMPOSTOR_PAIRS = 1000


@dataclass(frozen=True)
class Pair:
    first: Path
    second: Path
    genuine: bool


@dataclass
class VerificationReport:
    """Figures of one evaluation run (plain data, JSON-serialisable via to_dict)."""

    data: str
    protocol: str
    model_id: str
    weights_sha256: str
    score: str  # which score the ROC is computed on
    threshold: dict
    genuine_pairs: int
    impostor_pairs: int
    pairs_evaluated: int
    pairs_skipped: int
    images: int
    failures_to_detect: int
    failed_images: list[str]
    eer: float
    eer_threshold: float
    roc_auc: float
    accuracy_at_threshold: float
    true_accept_rate: float
    false_accept_rate: float
    seconds: float
    seed: int
    centre_fallbacks: int = 0
    by_quality: QualityBandReport | None = None  # --by-quality
    probe_processing: dict | None = None  # --degrade / --process (ProbeChains)

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.by_quality is None:
            del data["by_quality"]
        else:
            data["by_quality"] = self.by_quality.to_dict()
        if self.probe_processing is None:
            del data["probe_processing"]
        return data

    def summary(self) -> str:
        bands = [] if self.by_quality is None else self.by_quality.lines()
        processing = (
            []
            if self.probe_processing is None
            else processing_lines(self.probe_processing)
        )
        return "\n".join(
            [
                f"data: {self.data} ({self.protocol})",
                f"model: {self.model_id} (weights {self.weights_sha256[:12]}…)",
                *processing,
                f"pairs: {self.genuine_pairs} genuine + "
                f"{self.impostor_pairs} impostor; "
                f"{self.pairs_evaluated} evaluated, {self.pairs_skipped} skipped "
                f"(images: {self.images}, failures to detect: "
                f"{self.failures_to_detect}, unreadable: "
                f"{len(self.failed_images) - self.failures_to_detect}, "
                f"centre fallbacks: {self.centre_fallbacks})",
                f"EER {100 * self.eer:.2f} % "
                f"(at {self.score} {self.eer_threshold:.4f}), "
                f"ROC AUC {self.roc_auc:.4f}",
                f"at the model threshold ({self.threshold['metric']} "
                f"{self.threshold['value']:g}): accuracy "
                f"{100 * self.accuracy_at_threshold:.2f} %, "
                f"TAR {100 * self.true_accept_rate:.2f} %, "
                f"FAR {100 * self.false_accept_rate:.2f} %",
                *bands,
                f"time {self.seconds:.1f} s",
            ]
        )


# ---- figures per quality band ------------------------------------------------------
@dataclass(frozen=True)
class BandFigures:
    """EER and ROC AUC of the pairs of one quality band (None: no pairs of a kind)."""

    label: str  # "16-24 px"
    low: float | None  # [low, high) of the worse face's figure; None: open
    high: float | None
    genuine_pairs: int
    impostor_pairs: int
    eer: float | None
    eer_threshold: float | None
    roc_auc: float | None

    def line(self) -> str:
        counts = f"{self.genuine_pairs} genuine + {self.impostor_pairs} impostor pairs"
        if self.eer is None or self.roc_auc is None:
            return f"  {self.label}: {counts}; EER and AUC need pairs of both kinds"
        return (
            f"  {self.label}: {counts}; EER {100 * self.eer:.2f} %, "
            f"ROC AUC {self.roc_auc:.4f}"
        )


@dataclass(frozen=True)
class QualityBandReport:
    """Verification figures per band of one quality measure (band = worse face)."""

    measure: str
    name: str
    unit: str
    edges: tuple[float, ...]
    bands: tuple[BandFigures, ...]
    pairs_without_quality: int  # neither face could be measured: in no band
    rule: str = "the worse of the two faces of a pair"

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "name": self.name,
            "unit": self.unit,
            "edges": list(self.edges),
            "rule": self.rule,
            "pairs_without_quality": self.pairs_without_quality,
            "bands": [asdict(band) for band in self.bands],
        }

    def lines(self) -> list[str]:
        return [
            f"by quality band of {self.name} ({self.rule}; "
            f"{self.pairs_without_quality} pairs without the figure):",
            *(band.line() for band in self.bands),
        ]


def figures_by_band(
    genuine_scores: Sequence[float] | np.ndarray,
    genuine_values: Sequence[float | None],
    impostor_scores: Sequence[float] | np.ndarray,
    impostor_values: Sequence[float | None],
    *,
    measure: str,
    name: str,
    unit: str,
    edges: Sequence[float],
) -> QualityBandReport:
    """EER / ROC AUC per band of the pairs' worse figures (``*_values``, from
    :func:`core.calibration.worse_value`; None: the pair is in no band)."""
    from core.calibration import band_label, band_limits, split_by_band

    genuine_bands = split_by_band(genuine_scores, genuine_values, edges)
    impostor_bands = split_by_band(impostor_scores, impostor_values, edges)
    bands = []
    for (low, high), g, i in zip(
        band_limits(edges), genuine_bands, impostor_bands, strict=True
    ):
        defined = g.size > 0 and i.size > 0
        eer, eer_threshold = equal_error_rate(g, i) if defined else (None, None)
        bands.append(
            BandFigures(
                label=band_label(low, high, unit),
                low=low,
                high=high,
                genuine_pairs=int(g.size),
                impostor_pairs=int(i.size),
                eer=eer,
                eer_threshold=eer_threshold,
                roc_auc=roc_auc(g, i) if defined else None,
            )
        )
    missing = sum(v is None for v in [*genuine_values, *impostor_values])
    return QualityBandReport(
        measure, name, unit, tuple(edges), tuple(bands), int(missing)
    )


def pair_value(
    measure: str,
    qualities: dict[Path, FaceQuality],
    pair: Pair,
    probe_qualities: dict[Path, FaceQuality] | None = None,
) -> float | None:
    """The worse of the pair's two figures of ``measure`` (None: neither known);
    ``probe_qualities``: the first image's figures are of its processed copy."""
    from core.calibration import figure_of, worse_value

    first = (qualities if probe_qualities is None else probe_qualities).get(pair.first)
    return worse_value(
        measure,
        [figure_of(first, measure), figure_of(qualities.get(pair.second), measure)],
    )


def measure_name_unit(measure: str) -> tuple[str, str]:
    from core.quality import get

    found = get(measure)
    return found.name, found.unit


# ---- pair lists ---------------------------------------------------------------------
def images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def identity_pairs(
    root: str | Path, *, seed: int = 0, max_pairs: int | None = None
) -> list[Pair]:
    """Genuine pairs (all) and a seeded sample of impostor pairs from DIR/<person>/."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError("not a folder of identities", root)
    people = {
        folder.name: images
        for folder in sorted(root.iterdir())
        if folder.is_dir() and (images := images_in(folder))
    }
    if len(people) < 2:
        raise BadInputError(
            "need at least two identity folders with images (DIR/<person>/<image>)",
            root,
        )
    genuine = [
        Pair(a, b, True)
        for images in people.values()
        for a, b in itertools.combinations(images, 2)
    ]
    rng = random.Random(seed)
    names = list(people)
    all_impostor_count = sum(
        len(people[a]) * len(people[b]) for a, b in itertools.combinations(names, 2)
    )
    # At least as many impostor as genuine pairs, and at least 1000 when there are
    # that many (small sets then use every impostor pair).
    wanted = min(max(len(genuine), MIN_IMPOSTOR_PAIRS), all_impostor_count)
    impostor: set[tuple[Path, Path]] = set()
    if wanted == all_impostor_count:
        impostor = {
            (x, y)
            for a, b in itertools.combinations(names, 2)
            for x in people[a]
            for y in people[b]
        }
    while len(impostor) < wanted:
        a, b = rng.sample(names, 2)
        x, y = rng.choice(people[a]), rng.choice(people[b])
        impostor.add((x, y) if str(x) < str(y) else (y, x))
    pairs = genuine + [Pair(x, y, False) for x, y in sorted(impostor)]
    return _limit(pairs, max_pairs, seed)


def lfw_pairs(
    pairs_file: str | Path,
    image_root: str | Path | None = None,
    *,
    max_pairs: int | None = None,
    seed: int = 0,
) -> list[Pair]:
    """Pairs from LFW's ``pairs.txt`` (images at ``<root>/<Name>/<Name>_NNNN.jpg``)."""
    pairs_file = Path(pairs_file)
    root = Path(image_root) if image_root else _lfw_image_root(pairs_file)
    try:
        lines = pairs_file.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(
            f"cannot read the pairs file ({error})", pairs_file
        ) from None

    def image(name: str, number: str) -> Path:
        return root / name / f"{name}_{int(number):04d}.jpg"

    pairs: list[Pair] = []
    for line_number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) == 3:
                pairs.append(
                    Pair(image(fields[0], fields[1]), image(fields[0], fields[2]), True)
                )
            elif len(fields) == 4:
                pairs.append(
                    Pair(
                        image(fields[0], fields[1]), image(fields[2], fields[3]), False
                    )
                )
            else:
                raise ValueError
        except ValueError:
            raise BadInputError(
                f"line {line_number} is not 'name i j' or 'name1 i name2 j'", pairs_file
            ) from None
    if not pairs:
        raise BadInputError("no pairs found in the pairs file", pairs_file)
    return _limit(pairs, max_pairs, seed)


def _lfw_image_root(pairs_file: Path) -> Path:
    for candidate in ("pairs-images", "lfw", "lfw-deepfunneled", "images"):
        if (pairs_file.parent / candidate).is_dir():
            return pairs_file.parent / candidate
    return pairs_file.parent


def check_max_pairs(max_pairs: int | None) -> None:
    """``--max-pairs`` must leave at least one pair (None: no limit)."""
    if max_pairs is not None and (isinstance(max_pairs, bool) or max_pairs < 1):
        raise BadInputError(f"--max-pairs must be at least 1, got {max_pairs}")


def _limit(pairs: list[Pair], max_pairs: int | None, seed: int) -> list[Pair]:
    """A seeded subset keeping the genuine/impostor balance."""
    check_max_pairs(max_pairs)
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs
    rng = random.Random(seed)
    genuine = [p for p in pairs if p.genuine]
    impostor = [p for p in pairs if not p.genuine]
    n_genuine = min(len(genuine), max(1, round(max_pairs * len(genuine) / len(pairs))))
    n_impostor = min(len(impostor), max_pairs - n_genuine)
    return rng.sample(genuine, n_genuine) + rng.sample(impostor, n_impostor)


def pairs_for(data: str | Path, *, seed: int = 0, max_pairs: int | None = None):
    """Pick the protocol from what ``data`` is; returns (pairs, protocol name)."""
    check_max_pairs(max_pairs)  # before reading any folder
    data = Path(data)
    if data.is_file() and data.name.startswith("pairs"):
        return lfw_pairs(data, max_pairs=max_pairs, seed=seed), "LFW pairs protocol"
    if data.is_dir() and (data / "pairs.txt").is_file():
        return (
            lfw_pairs(data / "pairs.txt", max_pairs=max_pairs, seed=seed),
            "LFW pairs protocol",
        )
    if data.is_dir() and (data / "identities").is_dir():
        data = data / "identities"
    pairs = identity_pairs(data, seed=seed, max_pairs=max_pairs)
    return pairs, "folder of identities: all genuine pairs + seeded impostor sample"


# ---- metrics ----------------------------------------------------------------------
def roc_auc(genuine_scores: np.ndarray, impostor_scores: np.ndarray) -> float:
    """P(a genuine pair scores above an impostor pair), ties counting half."""
    genuine = np.asarray(genuine_scores, float)
    impostor = np.asarray(impostor_scores, float)
    if genuine.size == 0 or impostor.size == 0:
        return float("nan")
    scores = np.concatenate([genuine, impostor])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(scores.size, float)
    ranks[order] = np.arange(1, scores.size + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    rank_sum = ranks[: genuine.size].sum()
    return float(
        (rank_sum - genuine.size * (genuine.size + 1) / 2)
        / (genuine.size * impostor.size)
    )


def equal_error_rate(
    genuine_scores: np.ndarray, impostor_scores: np.ndarray
) -> tuple[float, float]:
    """EER and the score threshold where false-accept = false-reject (higher = same).

    Evaluated at every observed score; the EER is the mean of FAR and FRR at the
    threshold where they are closest (standard discrete estimate).
    """
    genuine = np.asarray(genuine_scores, float)
    impostor = np.asarray(impostor_scores, float)
    if genuine.size == 0 or impostor.size == 0:
        return float("nan"), float("nan")
    candidates = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    far = np.array([(impostor >= t).mean() for t in candidates])
    frr = np.array([(genuine < t).mean() for t in candidates])
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2), float(candidates[best])


# ---- processing the probes (--degrade, --process) --------------------------------
PROBE_SIDE = "the probe: the first image of every pair (the gallery image is unchanged)"


@dataclass(frozen=True)
class ProbeChains:
    """Processing applied to the probe of every pair, after loading and before
    detection: ``degrade`` first (a simulated condition: low light, blur), then
    ``process`` (the enhancement measured).  Either may be empty."""

    degrade: tuple[Step, ...] = ()
    process: tuple[Step, ...] = ()

    @property
    def steps(self) -> tuple[Step, ...]:
        return (*self.degrade, *self.process)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The probe's pixels through ``degrade`` then ``process``."""
        from core.processing import run_chain

        return run_chain(rgb, self.steps)[0] if self.steps else rgb

    def to_dict(self) -> dict[str, Any]:
        """Both chains (recorded JSON form and one line per step) and the
        software and library versions that computed them."""
        from core.processing import chain_to_json, library_versions
        from core.version import __version__, source_commit

        def chain(steps: tuple[Step, ...]) -> dict[str, Any]:
            return {
                "chain": chain_to_json(steps),
                "steps": [s.describe() for s in steps],
            }

        return {
            "applied_to": PROBE_SIDE,
            "order": "degrade, then process",
            "degrade": chain(self.degrade),
            "process": chain(self.process),
            "software_version": __version__,
            "software_commit": source_commit(),
            "libraries": library_versions(),
        }


def processing_lines(record: dict[str, Any]) -> list[str]:
    """The text summary's lines for a ``ProbeChains.to_dict`` record."""
    lines = [f"processed: {record['applied_to']}; {record['order']}"]
    for name in ("degrade", "process"):
        steps = record[name]["steps"]
        lines.append(f"  --{name}: " + ("; ".join(steps) if steps else "none"))
        if steps:
            lines.append(f"    chain {record[name]['chain']}")
    libraries = ", ".join(f"{k} {v}" for k, v in record["libraries"].items())
    lines.append(
        f"  software {record['software_version']} (commit "
        f"{record['software_commit']}); {libraries}"
    )
    return lines


# ---- running ----------------------------------------------------------------------
@dataclass
class EmbeddedImages:
    """Embeddings of the images whose face could be used, and what failed."""

    embeddings: dict[Path, np.ndarray]
    failed: list[str]  # "path: reason"
    failures_to_detect: int = 0
    centre_fallbacks: int = 0
    # with quality=True: each embedded face's quality measures (a face no measure
    # can use, e.g. coinciding eye landmarks, is missing here but still embedded)
    qualities: dict[Path, FaceQuality] = field(default_factory=dict)


def embed_images(
    images: list[Path],
    model: FaceModel,
    *,
    centre_fallback: bool = False,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    quality: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    read: Callable[[Path], bytes] | None = None,
) -> EmbeddedImages:
    """Detect, align and embed each image once, in batches.

    An image without a usable face is listed in ``failed`` and left out - unless
    ``centre_fallback`` asks for dlib's LFW convention of using the image centre.
    ``quality``: also measure each face (:func:`core.quality.assess`, without the
    embedding length) into ``qualities``.  ``transform``: the loaded pixels are
    replaced by ``transform(rgb)`` before detection (the processed probes of
    ``ProbeChains``; a failed image is then named "(processed probe)").
    ``read``: each image's bytes (default: read from its path; a distributed
    worker is given the bytes the driver read and hashed, :func:`embed_shard`).
    """
    detector = FaceDetector.shared()
    with_68 = needs_68_landmarks(model)
    result = EmbeddedImages({}, [])
    pending_paths: list[Path] = []
    pending_chips: list[np.ndarray] = []

    def flush() -> None:
        if pending_chips:
            for path, emb in zip(
                pending_paths, model.embed_chips(np.stack(pending_chips)), strict=True
            ):
                result.embeddings[path] = emb
            pending_paths.clear()
            pending_chips.clear()

    for number, path in enumerate(images, start=1):
        if cancel is not None and cancel():
            raise Cancelled("evaluation cancelled")
        if progress is not None:
            progress(number, len(images), str(path))
        try:
            try:
                prepared = _prepare(path, model, detector, transform, read)
                chip = prepared.aligned.chip
                image, face = prepared.image, prepared.face
            except NoFaceError:
                if not centre_fallback:
                    raise
                image = _load(path, transform, read)  # again: rare (no face)
                rgb = image.rgb
                face = detector.face_in_box(rgb, _centre_box(rgb.shape), with_68)
                chip = chip_for_model(rgb, face, model.preprocessing).chip
                result.centre_fallbacks += 1
            if quality:
                _measure(
                    result, path, image, face, processed=transform is not None,
                    read=read,
                )  # fmt: skip
        except NoFaceError as error:
            result.failures_to_detect += 1
            result.failed.append(f"{_named(path, transform)}: {error.reason}")
            continue
        except BadInputError as error:
            result.failed.append(f"{_named(path, transform)}: {error.reason}")
            continue
        pending_paths.append(path)
        pending_chips.append(chip)
        if len(pending_chips) >= batch_size:
            flush()
    flush()
    return result


def _named(path: Path, transform: object | None) -> str:
    return str(path) if transform is None else f"{path} (processed probe)"


def _load(
    path: Path,
    transform: Callable[[np.ndarray], np.ndarray] | None,
    read: Callable[[Path], bytes] | None = None,
) -> LoadedImage:
    image = load_image(path) if read is None else decode_image(read(path), path)
    if transform is None:
        return image
    return dataclasses.replace(image, rgb=transform(image.rgb))


def _prepare(
    path: Path,
    model: FaceModel,
    detector: FaceDetector,
    transform: Callable[[np.ndarray], np.ndarray] | None,
    read: Callable[[Path], bytes] | None = None,
) -> PreparedFace:
    """``prepare_face`` (largest face), on the processed pixels when ``transform``
    (and on the bytes ``read`` gives, when given)."""
    if transform is None and read is None:
        return prepare_face(path, model, detector=detector)
    from core.faces.detect import find_faces, select_face

    image = _load(path, transform, read)
    faces = find_faces(image, detector=detector, with_68=needs_68_landmarks(model))
    face = select_face(faces, None, path=image.path)
    aligned = chip_for_model(image.rgb, face, model.preprocessing)
    return PreparedFace(image, face, len(faces), 0, aligned)


def _measure(
    result: EmbeddedImages,
    path: Path,
    image: LoadedImage,
    face: Face,
    *,
    processed: bool = False,
    read: Callable[[Path], bytes] | None = None,
) -> None:
    from core.quality import FaceInput, assess
    from core.quality.pixels import read_jpeg_tables

    source: Path | io.BytesIO = path if read is None else io.BytesIO(read(path))

    # a processed probe's pixels are no longer the file's JPEG blocks: its
    # compression tables and block grid say nothing about them
    face_input = FaceInput(
        rgb=image.rgb,
        bbox=face.bbox,
        landmarks5=face.landmarks5,
        landmarks68=face.landmarks68,
        jpeg_tables=None if processed else read_jpeg_tables(source),
        blocks_aligned=image.exif_orientation == 1 and not processed,
        name=path.name,
    )
    try:
        result.qualities[path] = assess(face_input, label=path.name)
    except BadInputError:
        pass  # no measure can use this face: its pairs have no quality band


def evaluate_verification(
    data: str | Path,
    model: FaceModel,
    *,
    seed: int = 0,
    max_pairs: int | None = None,
    centre_fallback: bool = False,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    by_quality: str | None = None,
    bands: Sequence[float] = (),
    probe_chains: ProbeChains | None = None,
    engine: Engine | None = None,
) -> VerificationReport:
    """EER, AUC and accuracy of ``model`` on ``data``; with ``by_quality`` (a
    :mod:`core.quality` measure) also per band of ``bands`` edges, a pair counting
    in the band of its worse face.  ``probe_chains``: the first image of every
    pair is processed before detection (its embedding, failures and quality are
    those of the processed copy, kept apart from the same file as a gallery
    image).  ``engine``: embed shard by shard on it (:mod:`core.engine`; None:
    in this process, in one pass)."""
    started = time.perf_counter()
    pairs, protocol = pairs_for(data, seed=seed, max_pairs=max_pairs)
    options: dict[str, Any] = {
        "centre_fallback": centre_fallback,
        "batch_size": batch_size,
        "cancel": cancel,
        "quality": by_quality is not None,
    }
    processing = None
    if probe_chains is None or not probe_chains.steps:
        images = sorted({p for pair in pairs for p in (pair.first, pair.second)})
        embed = embedder(engine, "eval verification")
        embedded = embed(images, model, progress=progress, **options)
        probe_embeddings = embeddings = embedded.embeddings
        probe_qualities = None
        image_count = len(images)
    else:
        processing = probe_chains.to_dict()
        embedded, probe_embedded, image_count = _embed_with_probe_chains(
            pairs, model, probe_chains, progress, options,
            embedder(engine, "eval verification", probe_chains),
        )  # fmt: skip
        embeddings = embedded.embeddings
        probe_embeddings = probe_embedded.embeddings
        probe_qualities = probe_embedded.qualities

    threshold: Threshold = model.threshold
    genuine_scores: list[float] = []
    impostor_scores: list[float] = []
    genuine_values: list[float | None] = []
    impostor_values: list[float | None] = []
    correct = evaluated = 0
    accepted_genuine = accepted_impostor = 0
    for pair in pairs:
        if pair.first not in probe_embeddings or pair.second not in embeddings:
            continue
        a, b = probe_embeddings[pair.first], embeddings[pair.second]
        distance = euclidean_distance(a, b)
        similarity = cosine_similarity(a, b)
        score = -distance if threshold.metric == "euclidean" else similarity
        (genuine_scores if pair.genuine else impostor_scores).append(score)
        if by_quality is not None:
            (genuine_values if pair.genuine else impostor_values).append(
                pair_value(by_quality, embedded.qualities, pair, probe_qualities)
            )
        accepted = threshold.accepts(similarity, distance)
        evaluated += 1
        correct += accepted == pair.genuine
        if pair.genuine:
            accepted_genuine += accepted
        else:
            accepted_impostor += accepted
    genuine_arr, impostor_arr = np.array(genuine_scores), np.array(impostor_scores)
    eer, eer_threshold = equal_error_rate(genuine_arr, impostor_arr)
    score_name = (
        "negative Euclidean distance"
        if threshold.metric == "euclidean"
        else "cosine similarity"
    )
    band_report = None
    if by_quality is not None:
        name, unit = measure_name_unit(by_quality)
        band_report = figures_by_band(
            genuine_scores,
            genuine_values,
            impostor_scores,
            impostor_values,
            measure=by_quality,
            name=name,
            unit=unit,
            edges=bands,
        )
    return VerificationReport(
        data=str(data),
        protocol=protocol,
        model_id=model.model_id,
        weights_sha256=model.weights_sha256,
        score=score_name,
        threshold=threshold.to_dict(),
        genuine_pairs=sum(p.genuine for p in pairs),
        impostor_pairs=sum(not p.genuine for p in pairs),
        pairs_evaluated=evaluated,
        pairs_skipped=len(pairs) - evaluated,
        images=image_count,
        failures_to_detect=embedded.failures_to_detect,
        failed_images=embedded.failed,
        eer=eer,
        eer_threshold=eer_threshold,
        roc_auc=roc_auc(genuine_arr, impostor_arr),
        accuracy_at_threshold=correct / evaluated if evaluated else float("nan"),
        true_accept_rate=accepted_genuine / max(1, len(genuine_scores)),
        false_accept_rate=accepted_impostor / max(1, len(impostor_scores)),
        seconds=time.perf_counter() - started,
        seed=seed,
        centre_fallbacks=embedded.centre_fallbacks,
        by_quality=band_report,
        probe_processing=processing,
    )


def _embed_with_probe_chains(
    pairs: Sequence[Pair],
    model: FaceModel,
    chains: ProbeChains,
    progress: ProgressCallback | None,
    options: dict[str, Any],
    embed: Callable[..., EmbeddedImages] | None = None,
) -> tuple[EmbeddedImages, EmbeddedImages, int]:
    """The gallery images (second of a pair) as they are, and the probes (first of
    a pair) through ``chains``: two embeddings each for a file on both sides.
    Returns (gallery, probes with failures merged into the first, image count)."""
    gallery_images = sorted({pair.second for pair in pairs})
    probe_images = sorted({pair.first for pair in pairs})
    total = len(gallery_images) + len(probe_images)

    def shifted(offset: int) -> ProgressCallback | None:
        if progress is None:
            return None
        return lambda done, _total, message: progress(offset + done, total, message)

    embed = embed_images if embed is None else embed
    gallery = embed(gallery_images, model, progress=shifted(0), **options)
    probes = embed(
        probe_images,
        model,
        progress=shifted(len(gallery_images)),
        transform=chains.apply,
        **options,
    )
    merged = EmbeddedImages(
        gallery.embeddings,
        [*gallery.failed, *probes.failed],
        gallery.failures_to_detect + probes.failures_to_detect,
        gallery.centre_fallbacks + probes.centre_fallbacks,
        gallery.qualities,
    )
    return merged, probes, total


def _centre_box(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    height, width = shape[:2]
    return (width * 0.25, height * 0.25, width * 0.75, height * 0.75)


def pair_scores(
    pairs: Sequence[Pair],
    model: FaceModel,
    *,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Cosine similarities of genuine and impostor pairs; and the images that failed.

    Each distinct image is embedded once; pairs with a failed image are left out.
    """
    scored = scored_pairs(pairs, model, batch_size=batch_size, progress=progress)
    return scored.genuine, scored.impostor, scored.failed


@dataclass(frozen=True)
class ScoredPairs:
    """Cosine scores of the usable pairs, with the faces' quality when measured."""

    genuine: np.ndarray
    impostor: np.ndarray
    failed: list[str]
    genuine_pairs: list[Pair]  # in the order of ``genuine``
    impostor_pairs: list[Pair]
    qualities: dict[Path, FaceQuality]  # every scored image that could be measured

    def values(self, measure: str) -> tuple[list[float | None], list[float | None]]:
        """Each genuine / impostor pair's worse figure of ``measure``."""
        return (
            [pair_value(measure, self.qualities, p) for p in self.genuine_pairs],
            [pair_value(measure, self.qualities, p) for p in self.impostor_pairs],
        )

    def used_qualities(self) -> list[FaceQuality]:
        """The quality of each distinct image of the scored pairs, once."""
        used = {
            p
            for pair in [*self.genuine_pairs, *self.impostor_pairs]
            for p in (pair.first, pair.second)
        }
        return [self.qualities[p] for p in sorted(used) if p in self.qualities]


def scored_pairs(
    pairs: Sequence[Pair],
    model: FaceModel,
    *,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    quality: bool = False,
    engine: Engine | None = None,
    command: str = "calibrate",
) -> ScoredPairs:
    """:func:`pair_scores`, keeping which pair each score is (and, with
    ``quality``, each face's quality measures).  ``engine``: embed shard by shard
    on it (``command`` names the work in the shards' keys)."""
    images = sorted({p for pair in pairs for p in (pair.first, pair.second)})
    embedded = embedder(engine, command)(
        images, model, batch_size=batch_size, progress=progress, quality=quality
    )
    embeddings = embedded.embeddings
    genuine: list[float] = []
    impostor: list[float] = []
    genuine_pairs: list[Pair] = []
    impostor_pairs: list[Pair] = []
    for pair in pairs:
        if pair.first in embeddings and pair.second in embeddings:
            score = cosine_similarity(embeddings[pair.first], embeddings[pair.second])
            (genuine if pair.genuine else impostor).append(score)
            (genuine_pairs if pair.genuine else impostor_pairs).append(pair)
    return ScoredPairs(
        np.array(genuine, float),
        np.array(impostor, float),
        embedded.failed,
        genuine_pairs,
        impostor_pairs,
        embedded.qualities,
    )


# ---- shards (core.engine: --engine local|ray, --checkpoint) ------------------------
SHARD_IMAGES = 32  # images per shard: one embedding batch


@dataclass(frozen=True)
class ImageShard:
    """The images of one shard as the driver read them, in its order: names,
    bytes, hashes (``errors``: the files that could not be read, and why; their
    bytes and hash are empty)."""

    names: tuple[str, ...]
    data: tuple[bytes, ...]
    sha256: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EmbedOptions:
    """What :func:`embed_shard` does with a shard's images (part of its key)."""

    centre_fallback: bool = False
    quality: bool = False
    chains: ProbeChains | None = None  # the probes' processing, None for none
    batch_size: int = SHARD_IMAGES

    def key_parameters(self) -> dict[str, Any]:
        from core.processing import chain_to_json

        return {
            "centre_fallback": self.centre_fallback,
            "quality": self.quality,
            "batch_size": self.batch_size,
            "chains": None
            if self.chains is None
            else [
                chain_to_json(self.chains.degrade),
                chain_to_json(self.chains.process),
            ],
        }


def embed_shard(
    model: FaceModel, shard: ImageShard, options: EmbedOptions
) -> EmbeddedImages:
    """The shard function of every image-embedding command: :func:`embed_images`
    on the bytes the driver read, each checked against its SHA-256 first.  The
    local and the Ray runner both call this, on the same shards."""
    contents = dict(zip(shard.names, zip(shard.data, shard.sha256, strict=True),
                        strict=True))  # fmt: skip
    errors = dict(shard.errors)

    def read(path: Path) -> bytes:
        name = str(path)
        if name in errors:
            raise BadInputError(errors[name], path)
        data, expected = contents[name]
        if hashlib.sha256(data).hexdigest() != expected:
            raise BadInputError("the bytes received differ from those hashed", path)
        return data

    return embed_images(
        [Path(name) for name in shard.names],
        model,
        centre_fallback=options.centre_fallback,
        batch_size=options.batch_size,
        quality=options.quality,
        transform=None if options.chains is None else options.chains.apply,
        read=read,
    )


def encode_embedded(result: EmbeddedImages) -> dict[str, Any]:
    """A shard's result as JSON data (the checkpoint; floats round-trip exactly)."""
    return {
        "embeddings": [
            [str(p), [float(v) for v in e]] for p, e in result.embeddings.items()
        ],
        "failed": list(result.failed),
        "failures_to_detect": result.failures_to_detect,
        "centre_fallbacks": result.centre_fallbacks,
        "qualities": [
            [str(p), _encode_quality(q)] for p, q in result.qualities.items()
        ],
    }


def _encode_quality(quality: FaceQuality) -> dict[str, Any]:
    return {
        "label": quality.label,
        "values": [
            [
                v.measure,
                v.name,
                None if v.value is None else float(v.value),
                v.unit,
                v.note,
            ]
            for v in quality.values
        ],
        "rating": quality.summary.rating,
        "reasons": list(quality.summary.reasons),
    }


def _decode_quality(data: dict[str, Any]) -> FaceQuality:
    from core.quality import FaceQuality
    from core.quality.base import QualityValue
    from core.quality.summary import QualitySummary

    values = tuple(QualityValue(*value) for value in data["values"])
    return FaceQuality(
        data["label"], values, QualitySummary(data["rating"], tuple(data["reasons"]))
    )


def decode_embedded(data: dict[str, Any]) -> EmbeddedImages:
    return EmbeddedImages(
        {
            Path(name): np.asarray(values, dtype=np.float64)
            for name, values in data["embeddings"]
        },
        list(data["failed"]),
        int(data["failures_to_detect"]),
        int(data["centre_fallbacks"]),
        {Path(name): _decode_quality(q) for name, q in data.get("qualities", [])},
    )


def embed_images_sharded(
    images: Sequence[Path],
    model: FaceModel,
    engine: Engine,
    options: EmbedOptions,
    *,
    command: str,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> EmbeddedImages:
    """:func:`embed_images` shard by shard on ``engine``: each shard's files read
    and hashed here, on the driver; the results merged in shard order; every file
    hashed again at the end, so a file changed during the run is refused."""
    from core.engine import Shard, run_sharded, shard_key

    images = list(images)
    read_hashes: dict[Path, str] = {}
    parameters = options.key_parameters()
    size = engine.shard_size or SHARD_IMAGES

    def shards() -> Iterator[Shard]:
        for index, start in enumerate(range(0, len(images), size)):
            names: list[str] = []
            data: list[bytes] = []
            hashes: list[str] = []
            errors: list[tuple[str, str]] = []
            keyed: list[tuple[str, str]] = []
            for path in images[start : start + size]:
                try:
                    content = read_image_bytes(path)
                except BadInputError as error:
                    errors.append((str(path), error.reason))
                    content, digest = b"", ""
                else:
                    digest = hashlib.sha256(content).hexdigest()
                    read_hashes[path] = digest
                names.append(str(path))
                data.append(content)
                hashes.append(digest)
                keyed.append((str(path), digest or f"unreadable: {errors[-1][1]}"))
            key = shard_key(command, parameters, keyed, model.weights_sha256)
            payload = ImageShard(tuple(names), tuple(data), tuple(hashes),
                                 tuple(errors))  # fmt: skip
            yield Shard(index, key, payload, len(keyed))

    parts = run_sharded(
        engine,
        embed_shard,
        model,
        shards(),
        options,
        command=command,
        total=len(images),
        encode=encode_embedded,
        decode=decode_embedded,
        progress=progress,
        cancel=cancel,
    )
    merged = EmbeddedImages({}, [])
    for part in parts:
        merged.embeddings.update(part.embeddings)
        merged.failed.extend(part.failed)
        merged.failures_to_detect += part.failures_to_detect
        merged.centre_fallbacks += part.centre_fallbacks
        merged.qualities.update(part.qualities)
    check_unchanged(read_hashes)
    return merged


def check_unchanged(hashes: dict[Path, str]) -> None:
    """Every file still has the SHA-256 it had when it was read (one line naming
    the first that changed: its result is not of the file as it is now)."""
    from core.resources import sha256_file

    for path, digest in hashes.items():
        try:
            now = sha256_file(path)
        except OSError:
            now = "unreadable"
        if now != digest:
            raise BadInputError(
                "the file changed (or went) while the evaluation ran; run it again",
                path,
            )


def embedder(
    engine: Engine | None, command: str, chains: ProbeChains | None = None
) -> Callable[..., EmbeddedImages]:
    """:func:`embed_images`, or (with an engine) the same, shard by shard on it:
    called as ``embed(images, model, progress=..., cancel=..., centre_fallback=...,
    batch_size=..., quality=..., transform=...)``; ``chains``: what ``transform``
    stands for (a shard is shipped with the chains, not a function)."""
    if engine is None:
        return embed_images
    sharded_engine = engine

    def embed(
        images: Sequence[Path],
        model: FaceModel,
        *,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        centre_fallback: bool = False,
        batch_size: int = SHARD_IMAGES,
        quality: bool = False,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> EmbeddedImages:
        if transform is not None and chains is None:
            raise ValueError("a sharded embedding ships chains, not a function")
        options = EmbedOptions(
            centre_fallback, quality, None if transform is None else chains, batch_size
        )
        return embed_images_sharded(
            images, model, sharded_engine, options, command=command,
            progress=progress, cancel=cancel,
        )  # fmt: skip

    return embed
