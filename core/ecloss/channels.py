"""Channel part-explainability of any model and layer: paper 004 §3.3 and §5.2.

For each face (an aligned chip with its 68 landmarks) and each channel ``x`` of the
layer's feature maps (after the layer's ReLU when the tap has one):

* eqs. 8-9, the top-10 % area: ``x`` is resized to the chip (bilinear), the
  threshold ``t`` is the largest value with at least 10 % of the pixels at or above
  it, and ``x̂ = x`` where ``x ≥ t``, 0 elsewhere;
* eq. 10, ``IoU(Mask_k, x)`` of that area with each face part ``k``
  (:mod:`core.ecloss.parts`);
* part explainability (§5.2.2): ``PE_I = E_x[max_k IoU(Mask_k, x)]`` per face,
  averaged over the faces;
* location consistency (§5.2.3): per channel ``i``, ``A_ik`` is the share of faces
  whose best part ``k̂ = argmax_k IoU`` is ``k``;
  ``S_i = sqrt(Σ_k (A_ik - 1/|K|)²) / |K|``; ``LS = E_i[S_i]``.  ``S_i`` is 0 when
  a channel picks every part equally often and ``sqrt(|K|-1)/|K|^1.5`` (0.132 for
  seven parts) when it always picks the same part;
* activation robustness (§5.2.4): the number of peaks of the feature map, counted by
  topographic (contour) prominence: a peak's prominence is its height above the
  highest contour (col) that encloses it and a higher peak; computed exactly by
  merging the map's superlevel sets from the top (union-find, 8-neighbourhood).

**Our choices** where the paper is silent (recorded in every report):

* a channel with no positive activation on a face has an empty area (IoU 0 with
  every part, counted in PE as 0) and 0 peaks; ties at ``t`` are kept, but pixels
  ``≤ 0`` are never part of the area;
* LS uses, per channel, only the faces where the channel's area touches some part
  (``max_k IoU > 0``); channels that never do are left out of LS and reported as
  ``dead``;
* a peak counts when its prominence is at least ``min_prominence`` (default 10 %)
  of the map's maximum; the highest peak counts whenever the map has any positive
  value; prominence is measured on the layer's own grid (not the upsampled map);
* the paper repeats each measurement on random 100-face subsets; we compute every
  figure on all faces given and, as its uncertainty, the standard error over
  ``repeats`` (default 5) disjoint seeded splits of those faces.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from core.ecloss.parts import PARTS, part_masks
from core.errors import BadInputError, Cancelled
from core.models.base import FaceModel

ProgressCallback = Callable[[int, int, str], None]

TOP_FRACTION = 0.1  # §3.3: top 10 %
MIN_PROMINENCE = 0.1  # our choice: × map maximum
REPEATS = 5  # the paper's 5 independent experiments (Table 5)

PLAIN_EXPLANATIONS = {
    "PE": "Part explainability: how well a channel's strongest 10 % matches one "
    "face part (0 = no overlap with any part, 1 = exactly one part). Higher = "
    "channels are easier to name.",
    "LS": "Location consistency: whether a channel lands on the same face part "
    "from face to face (0 = any part, 0.132 = always the same part). Higher = "
    "channels are more dependable.",
    "AR": "Activation robustness: the average number of separate activation peaks "
    "per channel. Fewer (one or two) = each channel looks at one place.",
}


# ---- eqs. 8-9: the top-10 % area -----------------------------------------------------
def upsample(maps: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(C, h, w)`` feature maps -> ``(C, H, W)`` float32, bilinear (§3.3)."""
    tensor = torch.as_tensor(np.asarray(maps) if isinstance(maps, np.ndarray) else maps)
    tensor = tensor.detach().float()
    if tensor.dim() != 3:
        raise ValueError(f"expected (C, h, w) maps, got {tuple(tensor.shape)}")
    return torch.nn.functional.interpolate(
        tensor[None], size=size, mode="bilinear", align_corners=False
    )[0]


def top_threshold(values: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """Eq. 9 per map: the largest ``t`` with ``P(x ≥ t) ≥ fraction``.

    ``values`` is ``(C, H, W)``; returns ``(C,)``: the ``⌈fraction·H·W⌉``-th largest
    value of each map.
    """
    flat = values.reshape(values.shape[0], -1)
    count = max(1, math.ceil(fraction * flat.shape[1] - 1e-9))
    return torch.topk(flat, count, dim=1).values[:, -1]


def top_area(
    maps: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    fraction: float = TOP_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 8: ``(x̂, area)`` at chip resolution for ``(C, h, w)`` maps.

    ``x̂`` keeps the values at or above the eq. 9 threshold (and above 0), ``area``
    is where it is non-zero.
    """
    values = upsample(maps, size)
    threshold = top_threshold(values, fraction)
    area = (values >= threshold[:, None, None]) & (values > 0)
    kept = torch.where(area, values, torch.zeros_like(values))
    return kept.numpy(), area.numpy()


# ---- eq. 10 and the metrics ----------------------------------------------------------
def part_iou(areas: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Eq. 10: ``IoU`` of each channel's area ``(C, H, W)`` with each part mask
    ``(K, H, W)`` -> ``(C, K)``; 0 where the union is empty."""
    a = areas.reshape(areas.shape[0], -1).astype(np.float32)
    m = masks.reshape(masks.shape[0], -1).astype(np.float32)
    inter = a @ m.T
    union = a.sum(1)[:, None] + m.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def face_part_explainability(iou: np.ndarray) -> float:
    """§5.2.2: ``PE_I = E_x[max_k IoU(Mask_k, x)]`` for one face (``iou``: (C, K))."""
    return float(iou.max(axis=1).mean())


def best_parts(iou: np.ndarray) -> np.ndarray:
    """``k̂ = argmax_k IoU`` per channel; -1 where the area touches no part."""
    best = iou.argmax(axis=1)
    return np.where(iou.max(axis=1) > 0, best, -1)


def channel_consistency(
    best: np.ndarray, parts: int = len(PARTS)
) -> tuple[np.ndarray, np.ndarray]:
    """§5.2.3 per channel from ``best`` ``(faces, C)`` (-1 = none).

    Returns ``(A, S)``: ``A`` ``(C, K)`` the share of faces per part (rows of channels
    that never touch a part are NaN) and ``S`` ``(C,)`` (NaN for those channels).
    """
    channels = best.shape[1]
    counts = np.zeros((channels, parts))
    for k in range(parts):
        counts[:, k] = (best == k).sum(axis=0)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, counts / np.maximum(total, 1), np.nan)
    spread = np.sqrt(((shares - 1.0 / parts) ** 2).sum(axis=1)) / parts
    return shares, spread


def location_consistency(best: np.ndarray, parts: int = len(PARTS)) -> float:
    """``LS = E_i[S_i]`` over the channels that touch a part at least once."""
    _, spread = channel_consistency(best, parts)
    valid = np.isfinite(spread)
    return float(spread[valid].mean()) if valid.any() else 0.0


def peak_prominences(values: np.ndarray) -> np.ndarray:
    """Topographic prominence of every local maximum of a 2-D map (8-neighbourhood).

    Pixels are added from the highest down; a pixel touching no added pixel starts
    a peak; where two areas meet, the one with the lower peak ends, its prominence
    being its peak height minus the current level (the highest col between it and a
    higher peak).  The highest peak's prominence is its height minus the map's
    minimum.  Returns the prominences, highest peak first.
    """
    grid = np.asarray(values, np.float64)
    if grid.ndim != 2:
        raise ValueError("peak prominence needs a 2-D map")
    height, width = grid.shape
    flat = grid.ravel()
    order = np.argsort(-flat, kind="stable")
    parent = np.full(flat.size, -1, np.int64)
    peak_height: dict[int, float] = {}
    prominences: list[float] = []

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for pixel in order:
        pixel = int(pixel)
        level = flat[pixel]
        row, col = divmod(pixel, width)
        roots = set()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                if (dr or dc) and 0 <= r < height and 0 <= c < width:
                    neighbour = r * width + c
                    if parent[neighbour] >= 0:
                        roots.add(find(neighbour))
        if not roots:
            parent[pixel] = pixel
            peak_height[pixel] = level
            continue
        ranked = sorted(roots, key=lambda root: -peak_height[root])
        survivor = ranked[0]
        for loser in ranked[1:]:
            prominences.append(peak_height[loser] - level)
            parent[loser] = survivor
            del peak_height[loser]
        parent[pixel] = survivor
    lowest = float(flat.min())
    for root in peak_height:
        prominences.append(peak_height[root] - lowest)
    return np.sort(np.asarray(prominences))[::-1]


def count_peaks(values: np.ndarray, min_prominence: float = MIN_PROMINENCE) -> int:
    """§5.2.4: peaks whose prominence is at least ``min_prominence`` × the maximum.

    A map without positive values has no peak; otherwise the highest peak counts.
    """
    grid = np.asarray(values, np.float64)
    top = float(grid.max()) if grid.size else 0.0
    if top <= 0:
        return 0
    prominences = peak_prominences(grid)
    return max(1, int((prominences[1:] >= min_prominence * top).sum()) + 1)


# ---- face chips with landmarks -------------------------------------------------------
@dataclass
class FaceChips:
    """Aligned chips and their 68 landmarks in chip coordinates."""

    chips: np.ndarray = field(repr=False)  # (N, H, W, 3) uint8
    landmarks68: np.ndarray = field(repr=False)  # (N, 68, 2)
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.chips)


def _image_files(data: Path) -> list[Path]:
    from core.evaluation import IMAGE_SUFFIXES, pairs_for

    if data.is_file() and data.suffix.lower() == ".txt":
        pairs, _ = pairs_for(data)
        return sorted({p for pair in pairs for p in (pair.first, pair.second)})
    if not data.is_dir():
        raise BadInputError(
            "not a folder of images, a folder of identities or a pairs.txt", data
        )
    files = sorted(
        p for p in data.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise BadInputError("no images found", data)
    return files


def detect_face_chips(
    files: Sequence[Path],
    preprocessing: Any,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Detect the largest face of each image (with 68 landmarks) and align it
    (``core.train_data.align_face_files``; images without a face are listed in
    ``skipped``; cached in ``cache_dir``)."""
    from core.train_data import align_face_files

    faces = align_face_files(
        list(files),
        preprocessing,
        cache_dir=cache_dir,
        progress=progress,
        cancel=cancel,
    )
    return FaceChips(faces.chips, faces.landmarks68, faces.paths, faces.skipped)


def _face_chips(chips, marks, names, skipped) -> FaceChips:
    if not chips:
        return FaceChips(
            np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 68, 2)), [], skipped
        )
    return FaceChips(
        np.stack(chips), np.asarray(marks, np.float32), list(names), list(skipped)
    )


def load_face_chips(
    data: str | Path,
    preprocessing: Any,
    *,
    max_images: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Faces of a folder of images (any depth, e.g. ``DIR/<person>/``) or of the
    images a ``pairs.txt`` names; ``max_images`` keeps a seeded random sample."""
    data = Path(data)
    files = _image_files(data)
    if max_images is not None and max_images < len(files):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(files), max(1, max_images), replace=False))
        files = [files[i] for i in keep]
    faces = detect_face_chips(
        files, preprocessing, cache_dir=cache_dir, progress=progress, cancel=cancel
    )
    if not len(faces):
        raise BadInputError("no face could be found in any image", data)
    return faces


def case_face_chips(
    case: Any,
    preprocessing: Any,
    *,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FaceChips:
    """Every face recorded in a case, aligned from the case's copy of the evidence.

    Faces without stored 68 landmarks (marked by hand) get them predicted inside the
    face's box.
    """
    from core.faces.align import chip_for_model
    from core.faces.detect import FaceDetector
    from core.imageio import load_image

    faces = case.faces()
    detector = FaceDetector.shared()
    chips, marks, names, skipped = [], [], [], []
    for number, stored in enumerate(faces, start=1):
        if cancel is not None and cancel():
            raise Cancelled("reading the case's faces was cancelled")
        if progress is not None:
            progress(number, len(faces), f"aligning {stored.label}")
        try:
            image = load_image(case.evidence_path(case.exhibit(stored.mark)))
            face = stored.to_face()
            if face.landmarks68 is None:
                face = detector.face_in_box(image.rgb, face.bbox, with_68=True)
            aligned = chip_for_model(image.rgb, face, preprocessing)
        except BadInputError as error:
            skipped.append(f"{stored.label}: {error}")
            continue
        if face.landmarks68 is None:
            skipped.append(f"{stored.label}: no 68 landmarks")
            continue
        chips.append(aligned.chip)
        marks.append(aligned.transform.to_chip(face.landmarks68))
        names.append(stored.label)
    result = _face_chips(chips, marks, names, skipped)
    if not len(result):
        raise BadInputError("the case has no face with landmarks to analyse")
    return result


# ---- the analysis --------------------------------------------------------------------
@dataclass
class ChannelStats:
    """One channel over all faces."""

    channel: int
    dominant_part: str | None  # most frequent k̂ (None: never touches a part)
    dominant_share: float  # A_ik̂
    consistency: float | None  # S_i (§5.2.3); None for a dead channel
    mean_best_iou: float  # E_faces[max_k IoU]
    mean_peaks: float  # E_faces[number of peaks]
    active_share: float  # share of faces with any positive activation
    part_shares: dict[str, float]


@dataclass
class ChannelExamples:
    """What the views draw: a few faces, their raw maps and part labels."""

    chips: np.ndarray = field(repr=False)  # (E, H, W, 3)
    maps: np.ndarray = field(repr=False)  # (E, C, h, w) raw feature maps
    part_labels: np.ndarray = field(repr=False)  # (E, H, W) index into PARTS, -1
    names: list[str] = field(default_factory=list)

    def top_map(self, face: int, channel: int, fraction: float = TOP_FRACTION):
        """``x̂`` (eq. 8) of one channel on one example face, at chip resolution."""
        size = self.chips.shape[1:3]
        kept, _ = top_area(self.maps[face, channel : channel + 1], size, fraction)
        return kept[0]


@dataclass
class ChannelReport:
    """PE / LS / AR of one layer of one model on a set of faces (JSON via to_dict)."""

    model_id: str
    model_name: str
    weights_sha256: str
    layer: str
    channels: int
    map_size: tuple[int, int]
    faces: int
    parts: tuple[str, ...]
    part_explainability: float
    part_explainability_se: float | None
    location_consistency: float
    location_consistency_se: float | None
    activation_robustness: float
    activation_robustness_se: float | None
    dead_channels: int
    channels_per_part: dict[str, int]
    channel_stats: list[ChannelStats]
    per_face_pe: list[float]
    per_face_peaks: list[float]
    face_names: list[str]
    skipped: list[str]
    fraction: float
    min_prominence: float
    repeats: int
    seed: int
    seconds: float
    data: str = ""
    examples: ChannelExamples | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("examples", None)
        values["explanations"] = PLAIN_EXPLANATIONS
        return values

    def summary(self) -> str:
        def figure(value: float, se: float | None, digits: int) -> str:
            text = f"{value:.{digits}f}"
            return text if se is None else f"{text} ± {se:.{digits}f}"

        parts = ", ".join(
            f"{name} {count}" for name, count in self.channels_per_part.items()
        )
        return "\n".join(
            [
                f"model: {self.model_name} [{self.model_id}] "
                f"(weights {self.weights_sha256[:12]}…), layer {self.layer} "
                f"({self.channels} channels, {self.map_size[0]}×{self.map_size[1]})",
                f"faces: {self.faces} ({len(self.skipped)} images without a usable "
                "face)",
                "PE (part explainability, eq. 10)         "
                + figure(self.part_explainability, self.part_explainability_se, 4),
                "LS (location consistency, §5.2.3)        "
                + figure(self.location_consistency, self.location_consistency_se, 5),
                "AR (peaks per map, §5.2.4; lower=better) "
                + figure(self.activation_robustness, self.activation_robustness_se, 3),
                f"channels by dominant part: {parts}; dead: {self.dead_channels}",
                f"(± = standard error over {self.repeats} disjoint splits; top "
                f"{self.fraction:.0%}; peaks with prominence ≥ "
                f"{self.min_prominence:.0%} of the maximum)",
            ]
        )


def layer_maps(
    model: FaceModel,
    layer: str,
    chips: np.ndarray,
    *,
    batch_size: int = 16,
    cancel: Callable[[], bool] | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """The layer's feature maps ``(N, C, h, w)`` float32 for aligned chips."""
    outputs = []
    was_training = model.network.training
    model.network.eval()
    try:
        for start in range(0, len(chips), batch_size):
            if cancel is not None and cancel():
                raise Cancelled("the channel analysis was cancelled")
            batch = model.prepare(chips[start : start + batch_size])
            with torch.no_grad(), model.capture([layer]) as activations:
                model.network(batch)
            maps = activations.get(layer)
            if maps is None or maps.dim() != 4:
                shape = None if maps is None else tuple(maps.shape)
                raise BadInputError(
                    f"layer '{layer}' of {model.model_id} is not a convolutional "
                    f"feature map (output {shape}); choose a spatial layer"
                )
            outputs.append(maps.float().cpu().numpy())
            if progress is not None:
                done = min(start + batch_size, len(chips))
                progress(done, len(chips), f"feature maps {done}/{len(chips)}")
    finally:
        model.network.train(was_training)
    return np.concatenate(outputs)


def _splits(count: int, repeats: int, seed: int) -> list[np.ndarray]:
    if repeats < 2 or count < 2 * repeats:
        return []
    order = np.random.default_rng(seed).permutation(count)
    return [np.sort(part) for part in np.array_split(order, repeats)]


def _standard_error(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def analyse_channels(
    model: FaceModel,
    layer: str,
    faces: FaceChips,
    *,
    fraction: float = TOP_FRACTION,
    min_prominence: float = MIN_PROMINENCE,
    repeats: int = REPEATS,
    seed: int = 0,
    examples: int = 6,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ChannelReport:
    """PE, LS and AR of ``layer`` over ``faces`` (see the module doc for the rules)."""
    started = time.perf_counter()
    if not len(faces):
        raise BadInputError("no faces to analyse")
    if not 0 < fraction < 1:
        raise BadInputError("the top fraction must be between 0 and 1")
    model._tap(layer)  # BadInputError naming the known layers
    total_steps = 2 * len(faces)

    def maps_progress(done: int, _total: int, message: str) -> None:
        if progress is not None:
            progress(done, total_steps, message)

    maps = layer_maps(
        model,
        layer,
        faces.chips,
        batch_size=batch_size,
        cancel=cancel,
        progress=maps_progress,
    )
    count, channels = maps.shape[:2]
    size = tuple(int(v) for v in faces.chips.shape[1:3])
    best = np.full((count, channels), -1, np.int64)
    best_iou = np.zeros((count, channels))
    peaks = np.zeros((count, channels))
    active = np.zeros((count, channels), bool)
    per_face_pe = []
    labels = []
    for face in range(count):
        if cancel is not None and cancel():
            raise Cancelled("the channel analysis was cancelled")
        masks = part_masks(faces.landmarks68[face], size)
        if face < examples:
            labels.append(masks.label_map())
        _, area = top_area(maps[face], size, fraction)
        iou = part_iou(area, masks.masks)
        per_face_pe.append(face_part_explainability(iou))
        best[face] = best_parts(iou)
        best_iou[face] = iou.max(axis=1)
        active[face] = maps[face].reshape(channels, -1).max(axis=1) > 0
        peaks[face] = [count_peaks(m, min_prominence) for m in maps[face]]
        if progress is not None:
            progress(count + face + 1, total_steps, f"parts and peaks {face + 1}")

    shares, spread = channel_consistency(best)
    per_face_peaks = peaks.mean(axis=1)
    split_pe, split_ls, split_ar = [], [], []
    for part in _splits(count, repeats, seed):
        split_pe.append(float(np.mean([per_face_pe[i] for i in part])))
        split_ls.append(location_consistency(best[part]))
        split_ar.append(float(per_face_peaks[part].mean()))

    stats = []
    per_part = dict.fromkeys(PARTS, 0)
    for channel in range(channels):
        row = shares[channel]
        if np.isfinite(row).all():
            k = int(np.argmax(row))
            dominant, share = PARTS[k], float(row[k])
            per_part[dominant] += 1
        else:
            dominant, share = None, 0.0
        stats.append(
            ChannelStats(
                channel=channel,
                dominant_part=dominant,
                dominant_share=share,
                consistency=None
                if not np.isfinite(spread[channel])
                else float(spread[channel]),
                mean_best_iou=float(best_iou[:, channel].mean()),
                mean_peaks=float(peaks[:, channel].mean()),
                active_share=float(active[:, channel].mean()),
                part_shares={
                    name: float(v) if np.isfinite(v) else 0.0
                    for name, v in zip(PARTS, row, strict=True)
                },
            )
        )
    shown = min(examples, count)
    return ChannelReport(
        model_id=model.model_id,
        model_name=model.display_name,
        weights_sha256=model.weights_sha256,
        layer=layer,
        channels=channels,
        map_size=(int(maps.shape[2]), int(maps.shape[3])),
        faces=count,
        parts=PARTS,
        part_explainability=float(np.mean(per_face_pe)),
        part_explainability_se=_standard_error(split_pe),
        location_consistency=location_consistency(best),
        location_consistency_se=_standard_error(split_ls),
        activation_robustness=float(per_face_peaks.mean()),
        activation_robustness_se=_standard_error(split_ar),
        dead_channels=int((~np.isfinite(spread)).sum()),
        channels_per_part=per_part,
        channel_stats=stats,
        per_face_pe=[float(v) for v in per_face_pe],
        per_face_peaks=[float(v) for v in per_face_peaks],
        face_names=list(faces.names),
        skipped=list(faces.skipped),
        fraction=fraction,
        min_prominence=min_prominence,
        repeats=repeats,
        seed=seed,
        seconds=time.perf_counter() - started,
        examples=ChannelExamples(
            faces.chips[:shown].copy(),
            maps[:shown].copy(),
            np.stack(labels[:shown]) if shown else np.zeros((0, *size), np.int16),
            list(faces.names[:shown]),
        ),
    )


# ---- pictures ------------------------------------------------------------------------
PART_COLOURS = np.array(
    [
        [140, 70, 20],  # hair
        [240, 220, 0],  # forehead
        [255, 128, 0],  # cheek
        [30, 60, 255],  # eyes
        [0, 200, 60],  # nose
        [230, 0, 0],  # mouth
        [220, 0, 220],  # jaw
    ],
    np.float32,
)


def _jet(values: np.ndarray) -> np.ndarray:
    index = np.clip(values * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(index[..., None], cv2.COLORMAP_JET)[..., ::-1]


def overlay_top_area(chip: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The chip with ``x̂`` (eq. 8) as a heatmap; the rest of the face dimmed."""
    base = chip.astype(np.float32) * 0.55
    peak = float(kept.max())
    if peak <= 0:
        return base.astype(np.uint8)
    strength = (kept / peak)[..., None]
    colours = _jet(kept / peak).astype(np.float32)
    inside = (kept > 0)[..., None]
    mixed = np.where(inside, chip * 0.35 + colours * (0.45 + 0.2 * strength), base)
    return np.clip(mixed, 0, 255).astype(np.uint8)


def overlay_parts(chip: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The chip with the part masks (Fig. 7) in colour."""
    out = chip.astype(np.float32)
    inside = labels >= 0
    out[inside] = 0.5 * out[inside] + 0.5 * PART_COLOURS[labels[inside]]
    return out.astype(np.uint8)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((14, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(
        bar, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.vstack([tile, bar])


def channel_grid(
    report: ChannelReport,
    face: int = 0,
    *,
    columns: int = 16,
    tile: int = 96,
    channels: Sequence[int] | None = None,
) -> np.ndarray:
    """One tile per channel: its top-10 % area over one example face (RGB uint8)."""
    examples = report.examples
    if examples is None or face >= len(examples.chips):
        raise BadInputError("no example face to draw")
    chosen = list(range(report.channels)) if channels is None else list(channels)
    tiles = []
    for channel in chosen:
        kept = examples.top_map(face, channel, report.fraction)
        image = cv2.resize(
            overlay_top_area(examples.chips[face], kept),
            (tile, tile),
            interpolation=cv2.INTER_AREA,
        )
        part = report.channel_stats[channel].dominant_part or "-"
        tiles.append(_caption(image, f"{channel} {part}"))
    blank = np.full_like(tiles[0], 255)
    while len(tiles) % columns:
        tiles.append(blank)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def write_channel_outputs(report: ChannelReport, out: str | Path) -> list[Path]:
    """``summary.json``, ``channels.csv``, ``parts.png`` and a grid per example face."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    summary = out / "summary.json"
    summary.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    written.append(summary)
    table = out / "channels.csv"
    lines = [
        "channel,dominant_part,dominant_share,S_i,mean_best_iou,mean_peaks,"
        "active_share," + ",".join(f"share_{p}" for p in PARTS)
    ]
    for s in report.channel_stats:
        lines.append(
            ",".join(
                [
                    str(s.channel),
                    s.dominant_part or "",
                    f"{s.dominant_share:.4f}",
                    "" if s.consistency is None else f"{s.consistency:.5f}",
                    f"{s.mean_best_iou:.4f}",
                    f"{s.mean_peaks:.3f}",
                    f"{s.active_share:.3f}",
                    *(f"{s.part_shares[p]:.4f}" for p in PARTS),
                ]
            )
        )
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(table)
    examples = report.examples
    if examples is not None and len(examples.chips):
        parts = np.hstack(
            [
                overlay_parts(chip, labels)
                for chip, labels in zip(
                    examples.chips, examples.part_labels, strict=True
                )
            ]
        )
        Image.fromarray(parts).save(out / "parts.png")
        written.append(out / "parts.png")
        for face in range(min(3, len(examples.chips))):
            path = out / f"channels-face{face + 1}.png"
            Image.fromarray(channel_grid(report, face)).save(path)
            written.append(path)
    return written
