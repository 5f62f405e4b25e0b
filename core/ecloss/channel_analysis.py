"""The channel analysis of ECLoss (Lin, Liu, Li and Shen 2023), §5.2: PE, LS and AR
of one layer of one model over a set of faces, as one :class:`ChannelReport`.

The measures themselves are :mod:`core.ecloss.channel_metrics`; the faces and the
feature maps come from :mod:`core.ecloss.channel_data`.

**Our choice** where the paper is silent (recorded in every report): the paper
repeats each measurement on random 100-face subsets; we compute every figure on all
faces given and, as its uncertainty, the standard error over ``repeats`` (default 5)
disjoint seeded splits of those faces.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.ecloss.channel_data import FaceChips, layer_maps
from core.ecloss.channel_metrics import (
    MIN_PROMINENCE,
    PLAIN_EXPLANATIONS,
    TOP_FRACTION,
    best_parts,
    channel_consistency,
    count_peaks,
    face_part_explainability,
    location_consistency,
    part_iou,
    top_area,
)
from core.ecloss.parts import PARTS, part_masks
from core.errors import BadInputError, Cancelled
from core.models.base import FaceModel
from core.progress import ProgressCallback

REPEATS = 5  # the paper's 5 independent experiments (Table 5)


# ---- the result ----------------------------------------------------------------------
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

    def top_map(
        self, face: int, channel: int, fraction: float = TOP_FRACTION
    ) -> np.ndarray:
        """``x̂`` (eq. 8) of one channel on one example face, at chip resolution."""
        size = self.chips.shape[1:3]
        kept, _ = top_area(self.maps[face, channel : channel + 1], size, fraction)
        first: np.ndarray = kept[0]
        return first


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


# ---- the analysis --------------------------------------------------------------------
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
    model.tap(layer)  # BadInputError naming the known layers
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
    size = (int(faces.chips.shape[1]), int(faces.chips.shape[2]))
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
