"""core.explain.codec: the stored form of an explanation result round-trips, and
its layout (npz member names and order, dtypes) stays what stored cases hold."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from core.explain.base import ChipMaps, EvidenceMap, ExplanationResult, ImageMaps
from core.explain.codec import (
    map_entries,
    maps_from_npz,
    maps_to_npz,
    result_from_json,
    result_to_json,
)
from core.models.base import Threshold


def _side(name: str, rng: np.random.Generator, *, uncertainty: bool) -> ImageMaps:
    chip = ChipMaps.from_signed(rng.normal(size=(8, 8)))
    if uncertainty:
        chip = ChipMaps(
            chip.similarity,
            chip.dissimilarity,
            chip.combined,
            uncertainty=rng.random((8, 8)).astype(np.float32),
        )
    evidence = {
        kind: EvidenceMap(rng.random((5, 6)).astype(np.float32), (3, 4), (20, 30))
        for kind in ("similarity", "dissimilarity", "combined")
    }
    return ImageMaps(name, chip, evidence)


def _result(*, uncertainty: bool) -> ExplanationResult:
    rng = np.random.default_rng(0)
    return ExplanationResult(
        method_id="m",
        method_name="Method",
        params={"window": (3, 5), "steps": 4},
        seed=7,
        model_id="model",
        model_sha256="ab" * 32,
        device="cpu",
        software_version="0.1.0",
        seconds=1.23456,
        batch_size=4,
        cosine_similarity=0.5,
        cosine_threshold=0.4,
        threshold=Threshold("cosine", 0.4, "card"),
        decision="same",
        probe=_side("probe", rng, uncertainty=uncertainty),
        gallery=_side("gallery", rng, uncertainty=uncertainty),
        cache_key="key",
        notes=("a note",),
        algorithm_version=2,
        details={"table": [1, 2]},
    )


@pytest.mark.parametrize("uncertainty", [False, True])
def test_a_result_round_trips_through_json_and_npz(uncertainty: bool):
    result = _result(uncertainty=uncertainty)
    record = json.loads(json.dumps(result_to_json(result)))  # as the case has it
    probe, gallery = maps_from_npz(io.BytesIO(maps_to_npz(result)))
    again = result_from_json(record, probe, gallery)
    assert again.to_dict() == result.to_dict()
    assert again.params == {"window": (3, 5), "steps": 4}
    for before, after in zip(result.images, again.images, strict=True):
        for kind, chip in before.chip_maps().items():
            assert np.array_equal(after.chip_maps()[kind], chip)
            assert np.array_equal(
                after.evidence[kind].values, before.evidence[kind].values
            )
            assert after.evidence[kind].origin == (3, 4)
        if uncertainty:
            assert np.array_equal(after.chip.uncertainty, before.chip.uncertainty)
        else:
            assert after.chip.uncertainty is None


def test_the_npz_layout_is_the_stored_one():
    data = maps_to_npz(_result(uncertainty=True))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    expected = []
    for side in ("probe", "gallery"):
        expected += [
            f"{side}_similarity_chip.npy",
            f"{side}_similarity_evidence.npy",
            f"{side}_origin.npy",
            f"{side}_image_shape.npy",
            f"{side}_dissimilarity_chip.npy",
            f"{side}_dissimilarity_evidence.npy",
            f"{side}_combined_chip.npy",
            f"{side}_combined_evidence.npy",
            f"{side}_uncertainty_chip.npy",
        ]
    assert names == expected
    with np.load(io.BytesIO(data)) as arrays:
        assert arrays["probe_combined_chip"].dtype == np.float32
        assert arrays["probe_origin"].dtype == np.int64


def test_map_entries_lists_every_map_probe_first():
    entries = [(e.side, e.kind) for e in map_entries(_result(uncertainty=False))]
    assert entries == [
        (side, kind)
        for side in ("probe", "gallery")
        for kind in ("similarity", "dissimilarity", "combined")
    ]
