"""The explainer protocol: typed parameters, the pair, the result, the registry.

Every method answers one question about one comparison: which regions of each
face made the model's score higher (similarity map) or lower (dissimilarity map).
Maps are computed on the aligned chip the model saw and then warped back onto the
evidence image through the alignment transform, so that overlays sit on the
examiner's original, not only on the chip.

Sign convention for all methods: ``combined_map = similarity_map -
dissimilarity_map`` where a method defines both; both parts are >= 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from core.colours import MAGNITUDE_LEGEND, map_legend
from core.errors import BadInputError, Cancelled
from core.faces.align import ChipTransform
from core.models.base import FaceModel, Threshold
from core.params import (  # noqa: F401  (re-exported: methods import them from here)
    Param,
    ParamValue,
    float_param,
    int_param,
    int_tuple_param,
    optional_str_param,
    str_param,
)
from core.progress import ProgressCallback

CancelCallback = Callable[[], bool]
Kind = Literal["gradient", "perturbation"]
MAP_KINDS = ("similarity", "dissimilarity", "combined")


@dataclass(frozen=True)
class ExplainerInfo:
    """What the registry lists without running anything (Orange3-style record)."""

    method_id: str
    display_name: str
    citation: str
    description: str  # one paragraph in plain words, for examiners
    kind: Kind
    has_dissimilarity: bool
    params: tuple[Param, ...] = ()
    stochastic: bool = False  # uses the seed
    uses_layer: bool = False  # takes the ``layer`` parameter (a model layer tap)
    # Raised whenever a change alters the maps for the same inputs: it is part of
    # the cache key, so a case never serves maps of an older algorithm as current.
    algorithm_version: int = 1
    # A control (e.g. ``prior``): run to test metrics and verdicts against it,
    # never offered to the examiner as evidence by default.
    control: bool = False
    # The key of the work it follows in ``core.references`` ("" for none).
    reference: str = ""
    # What the numbers of its maps are, in plain words, for the colour bar and the
    # read-out (read from ``compute``).  "" = not stated: the GUI then says so
    # rather than claim a unit the method does not have.
    map_units: str = ""
    # Maps that are sizes (a gradient's magnitude, a removal's effect), never for
    # or against the match: drawn on a sequential scale in every kind, with a
    # legend that says so, never blue-white-red "raises / lowers the score".
    magnitude_only: bool = False
    # (kind, top, bottom) legends where the default ones (core.colours.map_legend)
    # would claim something false of this method's maps (LIME's similarity map is
    # scaled 0-1, so its 0 is the region most against, not "no effect").
    legends: tuple[tuple[str, str, str], ...] = ()

    def draws_signed(self, kind: str) -> bool:
        """A map of ``kind`` is drawn on the diverging scale (for and against)."""
        return kind == "combined" and not self.magnitude_only

    def legend(self, kind: str) -> tuple[str, str]:
        """What the top and bottom colours of this method's ``kind`` map mean."""
        for legend_kind, top, bottom in self.legends:
            if legend_kind == kind:
                return top, bottom
        if self.magnitude_only and kind != "uncertainty":
            return MAGNITUDE_LEGEND
        return map_legend(kind)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none"
        raise BadInputError(
            f"method {self.method_id} has no parameter '{name}' (it has: {known})"
        )

    def defaults(self) -> dict[str, ParamValue]:
        return {param.name: param.default for param in self.params}

    def resolve(self, overrides: Mapping[str, Any] | None) -> dict[str, ParamValue]:
        values = self.defaults()
        for name, value in (overrides or {}).items():
            values[name] = self.param(name).coerce(value, self.method_id)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.method_id,
            "name": self.display_name,
            "citation": self.citation,
            "description": self.description,
            "kind": self.kind,
            "has_dissimilarity": self.has_dissimilarity,
            "stochastic": self.stochastic,
            "uses_layer": self.uses_layer,
            "algorithm_version": self.algorithm_version,
            "control": self.control,
            "params": [
                {
                    "name": p.name,
                    "type": p.type.__name__,
                    "default": list(p.default)
                    if isinstance(p.default, tuple)
                    else p.default,
                    "description": p.description,
                    "minimum": p.minimum,
                    "maximum": p.maximum,
                    "choices": list(p.choices) if p.choices else None,
                }
                for p in self.params
            ],
        }


# ---- the pair ----------------------------------------------------------------
@dataclass(frozen=True)
class FaceView:
    """One side of a comparison as explainers see it."""

    side: str  # "probe" or "gallery"
    chip: np.ndarray = field(repr=False)  # (H, W, 3) uint8, the model's aligned input
    transform: ChipTransform
    image_shape: tuple[int, int]  # (height, width) of the evidence image
    image_sha256: str
    face_record: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: str | None = None


@dataclass(frozen=True)
class FacePair:
    probe: FaceView
    gallery: FaceView

    @property
    def sides(self) -> tuple[FaceView, FaceView]:
        return (self.probe, self.gallery)

    @classmethod
    def from_prepared(cls, probe: Any, gallery: Any) -> FacePair:
        """From two ``core.verify.PreparedFace`` objects."""
        return cls(
            *(
                _view(side, face)
                for side, face in (("probe", probe), ("gallery", gallery))
            )
        )


def _view(side: str, prepared: Any) -> FaceView:
    rgb = prepared.image.rgb
    return FaceView(
        side=side,
        chip=prepared.aligned.chip,
        transform=prepared.aligned.transform,
        image_shape=(int(rgb.shape[0]), int(rgb.shape[1])),
        image_sha256=prepared.image.sha256,
        face_record=prepared.face.to_dict(),
        path=str(prepared.image.path),
    )


# ---- results -----------------------------------------------------------------
@dataclass(frozen=True)
class ChipMaps:
    """One image's maps at chip resolution (float32, method units)."""

    similarity: np.ndarray
    dissimilarity: np.ndarray | None
    combined: np.ndarray
    # Stochastic methods: the per-pixel standard error of ``combined`` (same
    # units) from their own samples (core.explain.stability); not a map kind.
    uncertainty: np.ndarray | None = None

    @classmethod
    def from_signed(cls, signed: np.ndarray) -> ChipMaps:
        """Split a signed map into S+ and S- (FGGB, Lu et al. 2024, eq. 5; S- as
        magnitude)."""
        signed = np.asarray(signed, np.float32)
        return cls(np.maximum(signed, 0), np.maximum(-signed, 0), signed)

    @classmethod
    def from_parts(cls, similarity: np.ndarray, dissimilarity: np.ndarray) -> ChipMaps:
        similarity = np.asarray(similarity, np.float32)
        dissimilarity = np.asarray(dissimilarity, np.float32)
        return cls(similarity, dissimilarity, similarity - dissimilarity)


@dataclass(frozen=True)
class EvidenceMap:
    """A chip map warped onto the evidence image.

    Only the part of the image the chip covers is stored (``values`` starts at
    pixel ``origin`` = (x, y)); pixels the chip does not cover are NaN, so an overlay
    leaves them transparent instead of claiming a value of 0 there.
    """

    values: np.ndarray = field(repr=False)
    origin: tuple[int, int]
    image_shape: tuple[int, int]

    def full(self) -> np.ndarray:
        """The map at full evidence resolution (NaN outside the chip)."""
        out = np.full(self.image_shape, np.nan, np.float32)
        x0, y0 = self.origin
        height, width = self.values.shape
        out[y0 : y0 + height, x0 : x0 + width] = self.values
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin_xy": list(self.origin),
            "size_wh": [int(self.values.shape[1]), int(self.values.shape[0])],
            "image_size_wh": [self.image_shape[1], self.image_shape[0]],
        }


def warp_to_evidence(
    chip_map: np.ndarray, transform: ChipTransform, image_shape: tuple[int, int]
) -> EvidenceMap:
    """Warp a chip map onto the part of the evidence image the chip covers."""
    height, width = transform.size
    corners = transform.to_image(
        np.array([[0, 0], [width, 0], [0, height], [width, height]], float)
    )
    x0 = max(0, math.floor(corners[:, 0].min()))
    y0 = max(0, math.floor(corners[:, 1].min()))
    x1 = min(image_shape[1], math.ceil(corners[:, 0].max()))
    y1 = min(image_shape[0], math.ceil(corners[:, 1].max()))
    if (
        x1 <= x0 or y1 <= y0
    ):  # chip entirely outside the image (cannot happen for a real face)
        return EvidenceMap(np.zeros((0, 0), np.float32), (0, 0), image_shape)
    matrix = transform.chip_to_image.copy()
    matrix[:, 2] -= (x0, y0)
    shifted = ChipTransform(matrix, transform.size, transform.method)
    values = shifted.warp_to_image(chip_map, (y1 - y0, x1 - x0))
    return EvidenceMap(values, (x0, y0), image_shape)


@dataclass(frozen=True)
class ImageMaps:
    """All maps of one image: on the chip and on the evidence."""

    side: str
    chip: ChipMaps
    evidence: Mapping[str, EvidenceMap] = field(repr=False)

    @property
    def similarity_map(self) -> np.ndarray:
        return self.chip.similarity

    @property
    def dissimilarity_map(self) -> np.ndarray | None:
        return self.chip.dissimilarity

    @property
    def combined_map(self) -> np.ndarray:
        return self.chip.combined

    def chip_maps(self) -> dict[str, np.ndarray]:
        """The maps this method defines, by kind."""
        maps = {
            "similarity": self.chip.similarity,
            "dissimilarity": self.chip.dissimilarity,
            "combined": self.chip.combined,
        }
        return {kind: array for kind, array in maps.items() if array is not None}


@dataclass(frozen=True)
class ExplanationResult:
    """One method run on one pair, with everything needed to reproduce it."""

    method_id: str
    method_name: str
    params: Mapping[str, ParamValue]
    seed: int
    model_id: str
    model_sha256: str
    device: str
    software_version: str
    seconds: float
    batch_size: int
    cosine_similarity: float
    cosine_threshold: float  # the decision threshold expressed as a cosine
    threshold: Threshold
    decision: str
    probe: ImageMaps
    gallery: ImageMaps
    cache_key: str
    notes: tuple[str, ...] = ()
    algorithm_version: int = 1
    # JSON-ready tables a method gives besides its maps (e.g. a score change per
    # facial component, or matched regions); stored in the case with the result.
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def images(self) -> tuple[ImageMaps, ImageMaps]:
        return (self.probe, self.gallery)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method_id,
            "method_name": self.method_name,
            "algorithm_version": self.algorithm_version,
            "params": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in self.params.items()
            },
            "seed": self.seed,
            "model": {"id": self.model_id, "weights_sha256": self.model_sha256},
            "device": self.device,
            "software_version": self.software_version,
            "seconds": round(self.seconds, 4),
            "batch_size": self.batch_size,
            "cosine_similarity": self.cosine_similarity,
            "cosine_threshold": self.cosine_threshold,
            "threshold": self.threshold.to_dict(),
            "decision": self.decision,
            "cache_key": self.cache_key,
            "notes": list(self.notes),
            "details": dict(self.details),
            "images": {
                maps.side: {
                    "maps": sorted(maps.chip_maps()),
                    "evidence": maps.evidence[next(iter(maps.evidence))].to_dict(),
                }
                for maps in self.images
            },
        }


# ---- running context ---------------------------------------------------------
@dataclass
class ExplainContext:
    """What a method gets: the model, both inputs, embeddings, RNG and hooks."""

    model: FaceModel
    pair: FacePair
    params: Mapping[str, ParamValue]
    seed: int
    batch_size: int
    inputs: tuple[torch.Tensor, torch.Tensor]  # preprocessed (1, 3, H, W), no grad
    embeddings: tuple[torch.Tensor, torch.Tensor]  # (D,), detached
    threshold: Threshold
    similarity: float  # cosine similarity of the pair
    decision: str  # "accept" or "reject" under ``threshold``
    cosine_threshold: float
    progress: ProgressCallback | None = None
    cancel: CancelCallback | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    _total: int = 0
    _done: int = 0

    # progress and cancellation (checked between batches)
    def start(self, total_units: int) -> None:
        self._total, self._done = max(1, int(total_units)), 0
        self.step(0)

    def step(self, units: int, message: str = "") -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("explanation cancelled")
        self._done = min(self._total, self._done + units)
        if self.progress is not None:
            self.progress(self._done, self._total, message)

    def rng(self, stream: int = 0) -> np.random.Generator:
        """A numpy generator for this run; ``stream`` separates independent draws."""
        return np.random.default_rng([self.seed, stream])

    @property
    def device(self) -> torch.device:
        return self.model.device

    def black_input(self) -> torch.Tensor:
        """A black chip (pixel value 0) after preprocessing: the "removed" value."""
        height, width = self.model.input_size
        return self.model.prepare(np.zeros((1, height, width, 3), np.uint8))

    def other(self, index: int) -> torch.Tensor:
        return self.embeddings[1 - index]

    def scores(
        self,
        side: int,
        count: int,
        make_batch: Callable[[int, int], torch.Tensor],
        reference: torch.Tensor,
        message: str = "",
    ) -> torch.Tensor:
        """Cosine similarity to ``reference`` of ``count`` perturbed inputs.

        ``make_batch(start, stop)`` returns the preprocessed inputs for that slice
        on the model's device.  Forward passes run in batches; progress and
        cancellation are handled between batches.
        """
        out = torch.empty(count, dtype=torch.float32, device="cpu")
        reference = reference.to(self.device)
        with torch.inference_mode():
            for start in range(0, count, self.batch_size):
                stop = min(count, start + self.batch_size)
                embedded = self.model.embed(
                    forward_layout(self.model, make_batch(start, stop))
                )
                out[start:stop] = (
                    torch.nn.functional.cosine_similarity(
                        embedded, reference[None], dim=1
                    )
                    .float()
                    .cpu()
                )
                self.step(stop - start, message or f"{self.pair.sides[side].side}")
        return out

    def embed_batches(
        self,
        count: int,
        make_batch: Callable[[int, int], torch.Tensor],
        message: str = "",
    ) -> torch.Tensor:
        """Embeddings of ``count`` perturbed inputs (for methods that compare them)."""
        parts = []
        with torch.inference_mode():
            for start in range(0, count, self.batch_size):
                stop = min(count, start + self.batch_size)
                batch = forward_layout(self.model, make_batch(start, stop))
                parts.append(self.model.embed(batch).float().cpu())
                self.step(stop - start, message)
        return torch.cat(parts)


# Channels-last inputs for the forward passes without gradients on the CPU:
# oneDNN's convolutions then run in NHWC, measured 1.2x more chips per CPU second
# for dlib's ResNet at batch 64 (benchmarks/explain_speed.py; docs/performance.md);
# embeddings equal the NCHW ones within 3e-7 (tests/core/test_explain_speed.py
# keeps every map within 1e-5).  Not used on CUDA (not measured there), nor for
# backends that split batches themselves (ONNX Runtime takes plain arrays).
CHANNELS_LAST_ON_CPU = True


def forward_layout(model: FaceModel, batch: torch.Tensor) -> torch.Tensor:
    """``batch`` in the memory layout the model's forward pass is fastest with."""
    if (
        CHANNELS_LAST_ON_CPU
        and batch.dim() == 4
        and batch.device.type == "cpu"
        and model.forwards_whole_batches
    ):
        return batch.contiguous(memory_format=torch.channels_last)
    return batch


def cosine_threshold(
    threshold: Threshold, first: torch.Tensor, second: torch.Tensor
) -> float:
    """The decision threshold as a cosine similarity, for this pair.

    FGGB (Lu et al. 2024, eq. 4) and xSSAB subtract a cosine threshold.  For models
    decided on Euclidean distance (dlib: d < 0.6 on descriptors that are not unit
    length) we use the cosine at which this pair, with its two embedding norms,
    would sit exactly on the distance threshold: d^2 = |a|^2 + |b|^2 - 2|a||b|cos.
    """
    if threshold.metric == "cosine":
        return float(threshold.value)
    norm_a, norm_b = float(first.norm()), float(second.norm())
    value = (norm_a**2 + norm_b**2 - threshold.value**2) / (2 * norm_a * norm_b)
    return float(np.clip(value, -1.0, 1.0))


def auto_batch_size(device: torch.device) -> int:
    """Forward-pass batch size from the device's memory.

    Uses total, not free, memory so that the same device always gets the same
    batch size (results are bit-reproducible only for the same batching).
    """
    if device.type == "cuda":
        total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
        return int(min(1024, max(64, 2 ** int(math.log2(total_gib * 8)))))
    # CPU: 32 gave more chips per CPU second than 64 for dlib's ResNet (caches);
    # the embeddings of a chip do not depend on the batch it is in here.
    return 32


@contextlib.contextmanager
def eval_mode(model: FaceModel) -> Iterator[None]:
    """Inference behaviour, and deterministic cuDNN kernels while explaining.

    cuDNN's fastest backward convolutions accumulate with atomics, whose order -
    and so the last bits of a gradient map - changes from run to run; an examiner
    must get the same map again from the same inputs and seed.
    """
    was_training = model.network.training
    cudnn = torch.backends.cudnn
    was_deterministic, was_benchmark = cudnn.deterministic, cudnn.benchmark
    model.network.eval()
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        model.network.train(was_training)
        cudnn.deterministic, cudnn.benchmark = was_deterministic, was_benchmark


def cache_key(
    pair: FacePair,
    model: FaceModel,
    method_id: str,
    params: Mapping[str, ParamValue],
    seed: int,
    software_version: str,
    extras: Mapping[str, Any] | None = None,
    *,
    algorithm_version: int,
    threshold: Threshold | None = None,
) -> str:
    """SHA-256 over everything that determines the maps.

    ``extras``: inputs a method depends on beyond its parameters (e.g. the hash of
    the trained reconstructor DDFV uses), from ``Explainer.cache_extras``.
    ``threshold``: the decision threshold the explanation is made under (None: the
    model's, as ``Explainer.explain`` uses then).  It sets the decision, FGGB's and
    xSSAB's maps and every verdict checked against the result, and a model card's
    threshold can be edited while the weights (and their hash) stay the same.
    Its ``source`` text is left out: it says why the number, it changes no output.
    """
    threshold = threshold or model.threshold
    rule = {k: v for k, v in threshold.to_dict().items() if k != "source"}
    rule["value"] = float(rule["value"])  # 1 and 1.0 are one threshold
    payload = {
        "images": [
            {"sha256": view.image_sha256, "face": dict(view.face_record)}
            for view in pair.sides
        ],
        "model_sha256": model.weights_sha256,
        "method": method_id,
        "algorithm_version": int(algorithm_version),
        "params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in sorted(params.items())
        },
        "seed": seed,
        "software_version": software_version,
        "threshold": rule,
    }
    if extras:  # absent when empty, so that keys of other methods stay as they were
        payload["extras"] = dict(extras)
    text = json.dumps(payload, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not serialisable: {type(value).__name__}")


def make_context(
    pair: FacePair,
    model: FaceModel,
    params: Mapping[str, ParamValue],
    seed: int,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
    batch_size: int | None,
    threshold: Threshold | None,
) -> ExplainContext:
    """Check the pair against the model, embed both faces, set up the context."""
    for view in pair.sides:
        if view.chip.shape[:2] != tuple(model.input_size):
            raise BadInputError(
                f"{view.side} chip is {view.chip.shape[1]}x{view.chip.shape[0]}, "
                f"model {model.model_id} needs {model.input_size[1]}x"
                f"{model.input_size[0]}"
            )
    if batch_size is not None and batch_size < 1:
        raise BadInputError(f"batch size must be at least 1, got {batch_size}")
    threshold = threshold or model.threshold
    inputs = tuple(model.prepare(view.chip[None]).detach() for view in pair.sides)
    with torch.inference_mode():
        embedded = [model.embed(x)[0] for x in inputs]
    embeddings = (embedded[0].clone(), embedded[1].clone())  # usable outside inference
    similarity = float(
        torch.nn.functional.cosine_similarity(embeddings[0], embeddings[1], dim=0)
    )
    distance = float((embeddings[0] - embeddings[1]).norm())
    return ExplainContext(
        model=model,
        pair=pair,
        params=params,
        seed=int(seed),
        batch_size=int(batch_size or auto_batch_size(model.device)),
        inputs=(inputs[0], inputs[1]),
        embeddings=embeddings,
        threshold=threshold,
        similarity=similarity,
        decision="accept" if threshold.accepts(similarity, distance) else "reject",
        cosine_threshold=cosine_threshold(threshold, *embeddings),
        progress=progress,
        cancel=cancel,
    )


# ---- the base class ----------------------------------------------------------
class Explainer:
    """Template method: ``explain`` prepares, calls ``compute``, warps, records.

    Subclasses set ``info`` and implement ``compute(ctx)`` returning the probe's and
    the gallery's ``ChipMaps``; a method with tables besides its maps puts them,
    JSON-ready, in ``ctx.details``.
    """

    info: ClassVar[ExplainerInfo]

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        raise NotImplementedError

    def cache_extras(
        self, model: FaceModel, params: Mapping[str, ParamValue]
    ) -> dict[str, Any]:
        """Inputs besides params, seed and model that determine the maps (hashes).

        Raises ``BadInputError`` when such an input is missing, before any work.
        """
        del model, params
        return {}

    def explain(
        self,
        pair: FacePair,
        model: FaceModel,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
        *,
        batch_size: int | None = None,
        threshold: Threshold | None = None,
    ) -> ExplanationResult:
        from core import __version__

        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            # numpy's generators take no negative seed (ExplainContext.rng)
            raise BadInputError(f"seed must be a whole number of 0 or more, got {seed}")
        resolved = self.info.resolve(params)
        extras = self.cache_extras(model, resolved)
        began = time.perf_counter()
        with eval_mode(model):
            ctx = make_context(
                pair, model, resolved, seed, progress, cancel, batch_size, threshold
            )
            probe_maps, gallery_maps = self.compute(ctx)
        images = tuple(
            ImageMaps(
                side=view.side,
                chip=maps,
                evidence={
                    kind: warp_to_evidence(array, view.transform, view.image_shape)
                    for kind, array in (
                        ("similarity", maps.similarity),
                        ("dissimilarity", maps.dissimilarity),
                        ("combined", maps.combined),
                    )
                    if array is not None
                },
            )
            for view, maps in zip(pair.sides, (probe_maps, gallery_maps), strict=True)
        )
        return ExplanationResult(
            method_id=self.info.method_id,
            method_name=self.info.display_name,
            params=resolved,
            seed=int(seed),
            model_id=model.model_id,
            model_sha256=model.weights_sha256,
            device=str(model.device),
            software_version=__version__,
            seconds=time.perf_counter() - began,
            batch_size=ctx.batch_size,
            cosine_similarity=ctx.similarity,
            cosine_threshold=ctx.cosine_threshold,
            threshold=ctx.threshold,
            decision=ctx.decision,
            probe=images[0],
            gallery=images[1],
            cache_key=cache_key(
                pair,
                model,
                self.info.method_id,
                resolved,
                int(seed),
                __version__,
                extras,
                algorithm_version=self.info.algorithm_version,
                threshold=ctx.threshold,
            ),
            notes=tuple(ctx.notes),
            algorithm_version=self.info.algorithm_version,
            details=dict(ctx.details),
        )


# ---- registry ----------------------------------------------------------------
_REGISTRY: dict[str, type[Explainer]] = {}


def register(cls: type[Explainer]) -> type[Explainer]:
    """Class decorator: make an explainer available by its id."""
    method_id = cls.info.method_id
    if method_id in _REGISTRY and _REGISTRY[method_id] is not cls:
        raise ValueError(f"explainer id {method_id!r} registered twice")
    _REGISTRY[method_id] = cls
    return cls


def _load_methods() -> None:
    # Importing the package imports every module in it; each registers itself.
    import core.explain.methods  # noqa: F401


def method_ids() -> list[str]:
    _load_methods()
    return list(_REGISTRY)


def infos() -> list[ExplainerInfo]:
    _load_methods()
    return [cls.info for cls in _REGISTRY.values()]


def find_info(method_id: str) -> ExplainerInfo | None:
    """The registered method's info, or None (a result of a method this version
    does not have, e.g. read from an older case, or a test's own)."""
    _load_methods()
    cls = _REGISTRY.get(method_id)
    return None if cls is None else cls.info


def get(method_id: str) -> Explainer:
    _load_methods()
    try:
        return _REGISTRY[method_id]()
    except KeyError:
        raise BadInputError(
            f"unknown explanation method '{method_id}' (known: {', '.join(_REGISTRY)})"
        ) from None
