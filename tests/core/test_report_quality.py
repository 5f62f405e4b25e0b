"""The report's per-image analysis gives each face used its quality figures and
summary sentence; a masked pair's faces do not show the model's embedding length
(issue 20 item 3).  Tiny model, no dlib: fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import wording
from core.case import workflow
from core.case.store import Case
from core.faces.detect import Face
from core.quality import all_measures
from core.report.content import ReportRequest, gather_content
from core.report.layout import Styles
from core.report.sections import analysis
from tests.gui.tiny_case import tiny_model_class

ASTRONAUT_5 = np.array(
    [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
)
TinyModel = tiny_model_class("tiny-report-quality", "cosine", 0.5)


class UnnormalisedTinyModel(TinyModel):  # type: ignore[misc, valid-type]
    """Its embeddings keep their length, so the utility proxy has a figure."""

    def embed_chips(self, chips):
        return super().embed_chips(chips) * 3.0


def make_case(folder: Path, astronaut_rgb, *, masked: bool) -> Case:
    path = folder / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(path)
    grey = folder / "k1.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(grey)
    case = Case.create(
        folder / "case", "2026-20", "A. Examiner", sequential_unmasking=masked
    )
    case.add_exhibits([path], "probe")
    case.add_exhibits([grey], "gallery")
    face = Face((175.0, 76.0, 266.0, 167.0), ASTRONAUT_5, None, 1.0, "hog")
    case.set_faces("Q1", [face], detector="hog")
    flat = Face(
        (40.0, 40.0, 160.0, 160.0),
        np.array([[130, 80], [110, 80], [70, 80], [90, 80], [100, 120]], float),
        None,
        1.0,
        "hog",
    )
    case.set_faces("K1", [flat], detector="hog")
    return case


@pytest.mark.parametrize("masked", [False, True])
def test_each_face_used_gets_its_figures_and_sentence(tmp_path, astronaut_rgb, masked):
    model = UnnormalisedTinyModel()
    with make_case(tmp_path, astronaut_rgb, masked=masked) as case:
        workflow.compare(case, "Q1", "K1", model)
        content = gather_content(case, ReportRequest(model=model))
        expected = {
            q.label: q for q in workflow.case_quality(case, None if masked else model)
        }
    assert [item.face.label for item in content.quality] == ["Q1", "K1"]
    for item in content.quality:
        assert item.masked is masked
        want = expected[item.face.label]
        shown = {v.measure: v for v in item.values}
        for value in want.values:
            if value.measure == "embedding_norm":
                continue
            assert shown[value.measure] == value
        if masked:
            assert "embedding_norm" not in shown
        else:
            assert shown["embedding_norm"].value is not None
    q1 = content.quality[0].quality
    assert q1 is not None and q1.summary.rating == "limited"  # IED 43 px < 60 px
    # the section prints the sentence, each figure and every definition once
    text = " ".join(
        getattr(f, "text", "") or "" for f in analysis.lay_out(content, Styles())
    )
    assert wording.QUALITY_HEADING in text
    assert "inter-eye distance 43 px (below 60 px)" in text
    assert text.count(all_measures()[0].definition) == 1
    assert (wording.QUALITY_UTILITY_WITHHELD in text) is masked
