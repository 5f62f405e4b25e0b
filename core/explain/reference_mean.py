"""The mean face descriptor of a reference population, for contrastive maps.

FGGB (Lu et al. 2024, eqs. 3-4) and xSSAB weigh each embedding dimension k by the
product a_k b_k of the two descriptors.  A face model's descriptors are not
centred: every face shares a common offset, the population mean m.  Writing
b = m + (b - m), the product a_k b_k contains a_k m_k, a part that does not depend
on who the gallery is; on the default dlib model that part correlates 0.991 with
the whole FGGB map.  Expressing both descriptors relative to m (a' = a - m,
b' = b - m) removes it: a'_k b'_k averages to zero over galleries drawn from the
population, so what remains of the weights is about *this* pair.

The decision is unchanged by the shift.  Centring is done in the space where the
model decides by a distance: the raw descriptors for a Euclidean rule (dlib: same
person when |a - b| < 0.6), the unit-length descriptors for a cosine rule
(cos >= t is |a^ - b^| <= sqrt(2 - 2t)).  A distance does not change when both
points move by the same vector, so ``centred_threshold`` gives the cosine of the
centred descriptors at which this pair sits exactly on the decision threshold, and
the centred weights minus that threshold still sum to a number whose sign is the
model's decision.

The mean is a derived statistic (one vector, no images), computed by
``scripts/reference_mean.py`` from identities disjoint from any evaluation data,
for one set of model weights only: a mean for other weights is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from core.errors import BadInputError
from core.explain.base import Param, ParamValue, optional_str_param
from core.models.base import FaceModel, Threshold

if TYPE_CHECKING:
    from core.explain.base import ExplainContext

FORMAT = "xfr-reference-mean"
FORMAT_VERSION = 1
Space = Literal["descriptor", "unit"]


def shipped_reference_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "resources" / "reference-means"


def shipped_reference_path(model: FaceModel) -> Path:
    return shipped_reference_dir() / f"{model.model_id}.json"


def make_command(model: FaceModel) -> str:
    return (
        f"python scripts/reference_mean.py --model {model.model_id} "
        f"--data FOLDER_OF_IDENTITIES --out {model.model_id}-reference-mean.json"
    )


def decision_space(model: FaceModel) -> Space:
    """Where the model decides by a distance (so that centring keeps decisions)."""
    return "descriptor" if model.threshold.metric == "euclidean" else "unit"


def to_space(embeddings: torch.Tensor, space: Space) -> torch.Tensor:
    """Descriptors (..., D) as the model compares them by distance."""
    if space == "unit":
        return torch.nn.functional.normalize(embeddings, dim=-1)
    return embeddings


@dataclass(frozen=True)
class ReferenceMean:
    """A population mean descriptor for one model's weights."""

    model_id: str
    model_sha256: str
    space: Space
    mean: np.ndarray = field(repr=False)  # (D,) float64
    images: int
    path: Path | None = None
    sha256: str = ""  # of the file's bytes: part of the explanation cache key
    provenance: dict[str, Any] = field(default_factory=dict)

    def check_matches(self, model: FaceModel) -> None:
        """Refuse a mean made for other weights: it would not centre this model."""
        if self.model_sha256 != model.weights_sha256:
            raise BadInputError(
                f"reference mean was made for model {self.model_id} with weights "
                f"{self.model_sha256[:12]}…, not for {model.model_id} "
                f"({model.weights_sha256[:12]}…); make one with: "
                f"{make_command(model)}",
                self.path,
            )
        if self.space != decision_space(model):
            raise BadInputError(
                f"reference mean is of {self.space} vectors, model {model.model_id} "
                f"decides on {decision_space(model)} vectors",
                self.path,
            )

    def tensor(self, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(self.mean, dtype=torch.float32, device=device)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "model_sha256": self.model_sha256,
            "space": self.space,
            "images": self.images,
            "mean": [float(value) for value in self.mean],
            "provenance": dict(self.provenance),
        }


def compute_reference_mean(
    model: FaceModel, chips: list[np.ndarray], provenance: dict[str, Any]
) -> ReferenceMean:
    """The mean of the chips' descriptors in the model's decision space."""
    if not chips:
        raise BadInputError("no faces to compute a reference mean from")
    space = decision_space(model)
    total: torch.Tensor | None = None
    with torch.inference_mode():
        for start in range(0, len(chips), 32):
            batch = model.prepare(np.stack(chips[start : start + 32]))
            vectors = to_space(model.embed(batch).double(), space).sum(0)
            total = vectors if total is None else total + vectors
    assert total is not None  # chips is not empty (checked above)
    mean = (total / len(chips)).cpu().numpy()
    provenance = {"created": datetime.now(UTC).isoformat(), **provenance}
    return ReferenceMean(
        model.model_id,
        model.weights_sha256,
        space,
        mean,
        len(chips),
        None,
        "",
        provenance,
    )


def save_reference_mean(reference: ReferenceMean, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reference.to_dict(), indent=2) + "\n")
    return path


def load_reference_mean(path: str | Path) -> ReferenceMean:
    """Read and check a reference-mean file; one clear ``BadInputError`` if bad."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise BadInputError("reference mean file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"cannot read the reference mean ({error})", path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(f"not a reference mean file (format {FORMAT})", path)
    try:
        version = data["format_version"]
        mean = np.asarray(data["mean"], dtype=np.float64)
        space = data["space"]
        model_id, model_sha256 = str(data["model_id"]), str(data["model_sha256"])
        images = data["images"]
    except (KeyError, TypeError, ValueError) as error:
        raise BadInputError(f"reference mean lacks or mangles {error}", path) from None
    # A later version may add fields or change what one means: reading it as
    # version 1 would centre on numbers this code does not understand.
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise BadInputError(
            f"reference mean file format_version {version!r} is not understood "
            f"(this version of XFR reads format_version {FORMAT_VERSION} only)",
            path,
        )
    if mean.ndim != 1 or not mean.size or not np.isfinite(mean).all():
        raise BadInputError("reference mean is not a finite vector", path)
    if space not in ("descriptor", "unit"):
        raise BadInputError(f"unknown reference mean space {space!r}", path)
    if isinstance(images, float) and images.is_integer():
        images = int(images)
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise BadInputError(
            f"reference mean 'images' must be a whole number of at least 1 (the "
            f"faces it is the mean of), not {images!r}",
            path,
        )
    provenance = data.get("provenance")
    if provenance is None:
        provenance = {}
    if not isinstance(provenance, dict):
        raise BadInputError(
            f"reference mean 'provenance' must be an object of named entries, not "
            f"{type(provenance).__name__} {provenance!r:.40}",
            path,
        )
    import hashlib

    return ReferenceMean(
        model_id,
        model_sha256,
        space,
        mean,
        images,
        path,
        hashlib.sha256(raw).hexdigest(),
        dict(provenance),
    )


@cache
def _load_cached(path: Path, mtime_ns: int, size: int) -> ReferenceMean:
    del mtime_ns, size  # cache key only: a replaced file is read again
    return load_reference_mean(path)


def reference_mean_for(
    model: FaceModel, path: str | Path | None = None
) -> ReferenceMean:
    """The checked reference mean for ``model``: ``path``, else the shipped one."""
    if not path:
        path = shipped_reference_path(model)
        if not path.is_file():
            raise BadInputError(
                f"no reference mean is shipped for model {model.model_id}, so "
                f"centre=reference is unavailable for it (use centre=none, the "
                f"paper-exact version, or make a mean with: {make_command(model)})"
            )
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise BadInputError("reference mean file not found", path) from None
    reference = _load_cached(path.resolve(), stat.st_mtime_ns, stat.st_size)
    if reference.mean.size != _embedding_size(model, reference):
        raise BadInputError(
            f"reference mean has {reference.mean.size} numbers, model "
            f"{model.model_id} gives {_embedding_size(model, reference)}",
            path,
        )
    reference.check_matches(model)
    return reference


def _embedding_size(model: FaceModel, reference: ReferenceMean) -> int:
    size = int(getattr(model, "embedding_dim", 0) or 0)
    return size or reference.mean.size  # a model that does not say is not checked


def centred_threshold(
    threshold: Threshold, first: torch.Tensor, second: torch.Tensor
) -> float:
    """The decision threshold as a cosine of two *centred* decision-space vectors.

    Same algebra as ``core.explain.base.cosine_threshold``: the pair sits on the
    threshold when |a' - b'| = d_t, i.e. cos' = (|a'|^2 + |b'|^2 - d_t^2) /
    (2 |a'| |b'|), with d_t the distance threshold (Euclidean rule) or
    sqrt(2 - 2 t) between unit vectors (cosine rule t).  ``threshold`` is the one
    the explanation is made under (not always the model's: an examiner's, or a
    stored result's when its maps are made again for other faces), so that the
    centred weights minus it keep the sign of *this* explanation's decision.
    """
    if threshold.metric == "euclidean":
        distance = float(threshold.value)
    else:
        distance = math.sqrt(max(0.0, 2.0 - 2.0 * float(threshold.value)))
    norm_a, norm_b = float(first.norm()), float(second.norm())
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    value = (norm_a**2 + norm_b**2 - distance**2) / (2 * norm_a * norm_b)
    return float(np.clip(value, -1.0, 1.0))


def _metric_of(space: Space) -> str:
    return "Euclidean distance" if space == "descriptor" else "cosine similarity"


@dataclass(frozen=True)
class CentredPair:
    """Both descriptors of a pair relative to the reference mean, and the
    threshold as a cosine between them."""

    embeddings: tuple[torch.Tensor, torch.Tensor]
    cosine_threshold: float
    cosine: float
    mean: torch.Tensor  # in the decision space
    space: Space


def centre_pair(
    threshold: Threshold,
    embeddings: tuple[torch.Tensor, torch.Tensor],
    reference: ReferenceMean,
) -> CentredPair:
    """Centre both descriptors under the decision rule ``threshold``.

    A shift keeps only distances measured in the space it is made in: a mean of
    raw descriptors keeps a Euclidean decision, a mean of unit vectors a cosine
    one.  Any other pairing would change decisions, so it is refused.
    """
    needed: Space = "descriptor" if threshold.metric == "euclidean" else "unit"
    if reference.space != needed:
        raise BadInputError(
            f"centre=reference: the reference mean is of {reference.space} vectors, "
            f"which keeps decisions on a {_metric_of(reference.space)} but not this "
            f"explanation's {threshold.metric} threshold {threshold.value:g} (use "
            "centre=none, or a threshold on the model's own metric)",
            reference.path,
        )
    mean = reference.tensor(embeddings[0].device)
    centred = (
        to_space(embeddings[0], reference.space) - mean,
        to_space(embeddings[1], reference.space) - mean,
    )
    cosine = float(torch.nn.functional.cosine_similarity(*centred, dim=0))
    return CentredPair(
        (centred[0], centred[1]),
        centred_threshold(threshold, *centred),
        cosine,
        mean,
        reference.space,
    )


# ---- the parameters FGGB and xSSAB share ----------------------------------------
CENTRE_CHOICES = ("auto", "none", "reference")
# "auto": centred where a reference mean is shipped for the model's weights (the
# measured better default, docs/evaluation.md), paper-exact where none is; the
# result's notes and details say which was used, and the cache key carries it.


def centre_params(default: str) -> tuple[Param, Param]:
    return (
        Param(
            "centre",
            str,
            default,
            "none: the paper's weights on the raw descriptors (paper-exact); "
            "reference: descriptors taken relative to the mean face of a reference "
            "population first, which removes the part of the map that is the same "
            "for any gallery (the decision is unchanged); auto: reference where a "
            "mean is shipped for the model, none where not",
            choices=CENTRE_CHOICES,
        ),
        Param(
            "reference_mean",
            str,
            None,
            "reference mean file for centre=reference; empty = the one shipped "
            "for this model",
            optional=True,
        ),
    )


def resolved_centre(model: FaceModel, params: Mapping[str, ParamValue]) -> str:
    """ "none" or "reference": what ``centre`` (possibly "auto") means for ``model``."""
    centre = str(params.get("centre", "none"))
    if centre != "auto":
        return centre
    if params.get("reference_mean") or shipped_reference_path(model).is_file():
        return "reference"
    return "none"


def centring_extras(model: FaceModel, params: Mapping[str, ParamValue]) -> dict:
    """Cache-key inputs: the reference file's hash when it is used."""
    centre = resolved_centre(model, params)
    if centre != "reference":
        return {"centre_used": "none"} if params.get("centre") == "auto" else {}
    reference = reference_mean_for(model, optional_str_param(params, "reference_mean"))
    return {"reference_mean_sha256": reference.sha256}


@dataclass(frozen=True)
class WeightingPair:
    """The two vectors the method's weights are made from, and the threshold as a
    cosine between them: the raw descriptors (centre=none) or the centred ones."""

    embeddings: tuple[torch.Tensor, torch.Tensor]
    cosine_threshold: float
    mean: torch.Tensor | None  # decision-space mean subtracted, None for none
    space: Space | None


def weighting_pair(ctx: ExplainContext) -> WeightingPair:
    """What eq. 3 is computed on for this run, with a note saying so."""
    if resolved_centre(ctx.model, ctx.params) != "reference":
        if ctx.params.get("centre") == "auto":
            ctx.notes.append(
                f"no reference mean is shipped for model {ctx.model.model_id}: "
                "paper-exact weights on the raw descriptors (centre=none)"
            )
            ctx.details["centring"] = {"centre": "none"}
        return WeightingPair(ctx.embeddings, ctx.cosine_threshold, None, None)
    reference = reference_mean_for(
        ctx.model, optional_str_param(ctx.params, "reference_mean")
    )
    # The explanation's threshold, not the model's (see ``centred_threshold``).
    centred = centre_pair(ctx.threshold, ctx.embeddings, reference)
    where = reference.path.name if reference.path else "reference mean"
    ctx.notes.append(
        f"descriptors centred on the mean of {reference.images} reference faces "
        f"({where}, SHA-256 {reference.sha256[:12]}…, "
        f"{reference.provenance.get('data', 'data set not recorded')}); centred "
        f"cosine {centred.cosine:+.4f}, threshold as a centred cosine "
        f"{centred.cosine_threshold:+.4f}"
    )
    ctx.details["centring"] = {
        "centre": "reference",
        "reference_mean_sha256": reference.sha256,
        "reference_images": reference.images,
        "space": reference.space,
        "centred_cosine": centred.cosine,
        "centred_cosine_threshold": centred.cosine_threshold,
    }
    return WeightingPair(
        centred.embeddings, centred.cosine_threshold, centred.mean, centred.space
    )
