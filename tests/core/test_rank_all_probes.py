"""1:N for every probe of a case (``workflow.rank_all_probes``) and the candidates
table read back from the stored scores (``workflow.candidate_rows``), with a tiny
synthetic model and synthetic images (no dlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import SyntheticModel

from core.case import workflow
from core.case.store import Case
from core.faces.detect import Face
from core.models.base import Threshold

FACE = Face(
    bbox=(40.0, 40.0, 160.0, 160.0),
    landmarks5=np.array(
        [[130.0, 80.0], [110.0, 80.0], [70.0, 80.0], [90.0, 80.0], [100.0, 120.0]]
    ),
    source="manual",
)


def tiny_model(metric: str = "cosine") -> SyntheticModel:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    model = SyntheticModel(network, 8)
    value = 0.6 if metric == "euclidean" else 0.3
    model.threshold = Threshold(metric, value, "test")  # type: ignore[arg-type]
    return model


def write_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for number in range(count):
        path = folder / f"face_{number}.png"
        Image.fromarray(rng.integers(0, 256, (200, 200, 3), np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def case(tmp_path):
    images = write_images(tmp_path, 5)
    with Case.create(tmp_path / "case", "2026-0018", "A. Examiner") as case:
        case.add_exhibits(images[:2], "probe")
        case.add_exhibits(images[2:], "gallery")
        for mark in ("Q1", "Q2", "K1", "K2", "K3"):
            case.set_faces(mark, [FACE])
        yield case


def test_every_probe_is_ranked_against_every_gallery_face(case):
    model = tiny_model()
    ranked = workflow.rank_all_probes(case, model)
    assert sorted(ranked) == ["Q1", "Q2"]
    for probe, candidates in ranked.items():
        assert sorted(c.face.label for c in candidates) == ["K1", "K2", "K3"]
        probe_id = case.face(probe).id
        assert {c.comparison.probe_face_id for c in candidates} == {probe_id}
    assert len(case.comparisons()) == 6


def test_a_second_ranking_reuses_embeddings_and_stored_pairs(case, monkeypatch):
    model = tiny_model()
    workflow.rank_all_probes(case, model)
    calls = []
    real = model.embed_chips
    monkeypatch.setattr(model, "embed_chips", lambda c: calls.append(1) or real(c))
    workflow.rank_all_probes(case, model)
    assert calls == []
    assert len(case.comparisons()) == 6


def test_a_replaced_face_is_ranked_and_the_superseded_one_is_not(case):
    model = tiny_model()
    workflow.rank_all_probes(case, model)
    old = case.face("Q2").id
    moved = Face(FACE.bbox, FACE.landmarks5 + 3.0, source="manual")
    case.set_faces("Q2", [moved])
    ranked = workflow.rank_all_probes(case, model)
    assert old not in {c.comparison.probe_face_id for c in ranked["Q2"]}
    assert {r.gallery_label for r in workflow.candidate_rows(case, "Q2", model)} == {
        "K1", "K2", "K3"
    }  # fmt: skip


def test_no_probe_or_no_gallery_gives_no_ranking(tmp_path):
    images = write_images(tmp_path, 1)
    with Case.create(tmp_path / "case", "1", "A. Examiner") as case:
        case.add_exhibits(images, "probe")
        case.set_faces("Q1", [FACE])
        assert workflow.rank_all_probes(case, tiny_model()) == {}


def test_a_cancelled_ranking_stops_before_the_next_probe(case):
    from core.errors import Cancelled

    with pytest.raises(Cancelled):
        workflow.rank_all_probes(case, tiny_model(), cancel=lambda: True)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_candidate_rows_are_best_first_by_the_decision_score(case, metric):
    model = tiny_model(metric)
    workflow.rank_all_probes(case, model)
    rows = workflow.candidate_rows(case, "Q1", model)
    assert [r.rank for r in rows] == [1, 2, 3]
    scores = [r.decision_score(metric) for r in rows]
    if metric == "euclidean":
        assert scores == sorted(scores) and scores[0] == rows[0].distance
    else:
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == rows[0].similarity
    stored = {c.id: c for c in case.comparisons()}
    for row in rows:
        comparison = stored[row.comparison_id]
        assert (row.distance, row.similarity, row.decision) == (
            comparison.distance, comparison.similarity, comparison.decision
        )  # fmt: skip
        assert row.likelihood_ratio is None and row.lr_words == ""  # uncalibrated
