"""An explanation result as stored data: a JSON record and one ``.npz`` of maps.

The record is ``ExplanationResult.to_dict()``; the maps file holds every map as
float32.  The case store keeps both (the record in the database, the maps as a
derived file named by its hash) and ``core.explain.export`` writes the same
record and maps as plain files; both go through here so they cannot drift.
The layout of both is fixed: stored cases name these bytes in their audit
chain, and results are found again by their cache key.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from core.explain.base import ChipMaps, EvidenceMap, ExplanationResult, ImageMaps
from core.models.base import Threshold

SIDES = ("probe", "gallery")
MAP_KINDS = ("similarity", "dissimilarity", "combined")


@dataclass(frozen=True)
class MapEntry:
    """One map kind of one side, at chip resolution and on the evidence."""

    side: str
    kind: str
    chip: np.ndarray
    evidence: EvidenceMap


def map_entries(result: ExplanationResult) -> Iterator[MapEntry]:
    """Every map of ``result``, probe first, in ``ImageMaps.chip_maps`` order."""
    for maps in result.images:
        for kind, chip_map in maps.chip_maps().items():
            yield MapEntry(maps.side, kind, chip_map, maps.evidence[kind])


def result_to_json(result: ExplanationResult) -> dict[str, Any]:
    """The JSON record of a result (the method, parameters, model, decision...)."""
    return result.to_dict()


def maps_to_npz(result: ExplanationResult) -> bytes:
    """All maps of a result as one compressed ``.npz`` (float32).

    Keys ``<side>_<kind>_chip`` / ``_evidence`` per map kind, and for stochastic
    methods ``<side>_uncertainty_chip`` (per-pixel standard error of the combined
    map, at chip resolution only); files written before it existed have none.
    """
    arrays: dict[str, np.ndarray] = {}
    for maps in result.images:
        for kind, chip_map in maps.chip_maps().items():
            evidence = maps.evidence[kind]
            arrays[f"{maps.side}_{kind}_chip"] = chip_map.astype(np.float32)
            arrays[f"{maps.side}_{kind}_evidence"] = evidence.values.astype(np.float32)
            arrays[f"{maps.side}_origin"] = np.asarray(evidence.origin, np.int64)
            arrays[f"{maps.side}_image_shape"] = np.asarray(
                evidence.image_shape, np.int64
            )
        if maps.chip.uncertainty is not None:  # stochastic methods (chip only)
            arrays[f"{maps.side}_uncertainty_chip"] = maps.chip.uncertainty.astype(
                np.float32
            )
    buffer = io.BytesIO()
    # every array is float32 or int64, which never pickles, so the bytes are the
    # same; naming the keyword also tells the type checker no map is called that
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def maps_from_npz(
    source: str | os.PathLike[str] | BinaryIO,
) -> tuple[ImageMaps, ImageMaps]:
    """The probe's and the gallery's maps from a file written by ``maps_to_npz``."""
    with np.load(source) as arrays:
        images = []
        for side in SIDES:
            origin = _int_pair(arrays[f"{side}_origin"])
            shape = _int_pair(arrays[f"{side}_image_shape"])
            chip = {}
            evidence = {}
            for kind in MAP_KINDS:
                if f"{side}_{kind}_chip" in arrays:
                    chip[kind] = arrays[f"{side}_{kind}_chip"]
                    evidence[kind] = EvidenceMap(
                        arrays[f"{side}_{kind}_evidence"], origin, shape
                    )
            images.append(
                ImageMaps(
                    side,
                    ChipMaps(
                        chip["similarity"],
                        chip.get("dissimilarity"),
                        chip["combined"],
                        uncertainty=arrays[f"{side}_uncertainty_chip"]
                        if f"{side}_uncertainty_chip" in arrays
                        else None,  # deterministic methods, and older files
                    ),
                    evidence,
                )
            )
    return images[0], images[1]


def _int_pair(values: np.ndarray) -> tuple[int, int]:
    """A stored ``(y, x)`` origin or ``(height, width)`` shape as two ints."""
    first, second = values
    return int(first), int(second)


def result_from_json(
    record: Mapping[str, Any], probe: ImageMaps, gallery: ImageMaps
) -> ExplanationResult:
    """An ``ExplanationResult`` from its JSON record and its maps."""
    threshold = record["threshold"]
    return ExplanationResult(
        method_id=record["method"],
        method_name=record["method_name"],
        params={
            k: tuple(v) if isinstance(v, list) else v
            for k, v in record["params"].items()
        },
        seed=record["seed"],
        model_id=record["model"]["id"],
        model_sha256=record["model"]["weights_sha256"],
        device=record["device"],
        software_version=record["software_version"],
        seconds=record["seconds"],
        batch_size=record["batch_size"],
        cosine_similarity=record["cosine_similarity"],
        cosine_threshold=record["cosine_threshold"],
        threshold=Threshold.from_dict(threshold),
        decision=record["decision"],
        probe=probe,
        gallery=gallery,
        cache_key=record["cache_key"],
        notes=tuple(record["notes"]),
        # results stored before methods carried a version are version 0
        algorithm_version=int(record.get("algorithm_version", 0)),
        details=record.get("details", {}),
    )
