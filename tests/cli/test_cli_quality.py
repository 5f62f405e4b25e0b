"""``xfr case quality`` and the quality in ``xfr case faces --json`` (issue 20
item 3): every current face's figures and summary, with and without --json and
--model; the case is only read; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_models import SyntheticModel

import core.cli.quality as cli_quality
from core.case import workflow
from core.case.store import Case
from core.cli import main
from core.errors import BadInputError
from core.faces.detect import Face
from core.quality.pixels import estimated_jpeg_quality, read_jpeg_tables
from tests.cli.in_process import one_line_error, xfr

ASTRONAUT_5 = np.array(
    [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
)
GRACE_5 = np.array(
    [[322.0, 187.0], [291.0, 190.0], [206.0, 197.0], [238.0, 194.0], [272.0, 252.0]]
)


def _face(points: np.ndarray) -> Face:
    left, top = points.min(0) - 40
    right, bottom = points.max(0) + 40
    return Face((left, top, right, bottom), points, None, 1.0, "hog")


@pytest.fixture
def case(tmp_path, astronaut_path, grace_hopper_path) -> Path:
    """Q1: the astronaut (PNG); K1: Grace Hopper (the JPEG as shipped)."""
    folder = tmp_path / "case"
    with Case.create(folder, "2026-0020", "A. Examiner") as opened:
        opened.add_exhibits([astronaut_path], "probe")
        opened.add_exhibits([grace_hopper_path], "gallery")
        opened.set_faces("Q1", [_face(ASTRONAUT_5)], detector="hog")
        opened.set_faces("K1", [_face(GRACE_5)], detector="hog")
    return folder


def test_quality_text_names_each_face_its_summary_and_every_figure(capsys, case):
    code, out, err = xfr(capsys, "case", "quality", case)
    assert code == 0, err
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0].split(":")[0] for b in blocks] == ["Q1", "K1"]
    assert blocks[0].splitlines()[0] == (
        "Q1: limited: inter-eye distance 43 px (below 60 px)"
    )
    assert blocks[1].splitlines()[0] == "K1: good"
    q1 = blocks[0]
    assert "inter-eye distance" in q1 and "43.1 px" in q1
    assert "estimated JPEG quality" in q1 and "not available (the evidence" in q1
    assert "embedding length (model utility proxy)" in q1
    assert "no face model was given (xfr case quality --model measures it)" in q1


def test_quality_json_matches_the_workflow_and_describes_the_measures(capsys, case):
    code, out, err = xfr(capsys, "case", "quality", case, "--json")
    assert code == 0, err
    payload = json.loads(out)
    with Case.open(case, read_only=True) as opened:
        expected = [q.to_dict() for q in workflow.case_quality(opened)]
    assert payload["faces"] == json.loads(json.dumps(expected))
    ids = [m["id"] for m in payload["measures"]]
    assert set(payload["faces"][0]["measures"]) == set(ids)
    assert all(m["definition"] and m["unit"] for m in payload["measures"])
    # K1 is a JPEG file: its quantisation tables are read from the case's copy
    with Case.open(case, read_only=True) as opened:
        copy = opened.evidence_path(opened.exhibit("K1"))
    tables = read_jpeg_tables(copy)
    assert tables is not None
    k1 = payload["faces"][1]["measures"]["jpeg_quality"]
    assert k1["value"] == estimated_jpeg_quality(tables)


def test_one_face_and_an_unknown_face(capsys, case):
    code, out, err = xfr(capsys, "case", "quality", case, "--face", "K1", "--json")
    assert code == 0, err
    faces = json.loads(out)["faces"]
    assert [f["label"] for f in faces] == ["K1"] and faces[0]["rating"] == "good"
    line = one_line_error(capsys, "case", "quality", case, "--face", "Q7")
    assert "Q7" in line


def test_quality_only_reads_the_case(capsys, case):
    with Case.open(case, read_only=True) as opened:
        before = len(opened.audit_log())
    assert xfr(capsys, "case", "quality", case)[0] == 0
    with Case.open(case, read_only=True) as opened:
        assert len(opened.audit_log()) == before


def test_with_a_model_the_embedding_length_is_measured(capsys, case, monkeypatch):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    tiny = SyntheticModel(network, 8)
    monkeypatch.setattr(cli_quality, "load_model_from_args", lambda args: tiny)
    code, out, err = xfr(
        capsys, "case", "quality", case, "--model", "synthetic", "--json"
    )
    assert code == 0, err
    norm = json.loads(out)["faces"][0]["measures"]["embedding_norm"]
    with Case.open(case, read_only=True) as opened:
        face = opened.face("Q1")
        view = workflow.face_view(opened, face, tiny, "probe")
    expected = float(np.linalg.norm(tiny.embed_chips(view.chip[None])[0]))
    assert norm["value"] == pytest.approx(expected, abs=1e-4)
    assert "model-specific" in norm["note"]


def test_a_masked_pairs_faces_get_no_embedding_length(capsys, case, monkeypatch):
    """Sequential unmasking: the model's embedding length of a face in a masked
    pair is a model output not yet unmasked (the report withholds it too)."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    tiny = SyntheticModel(network, 8)
    monkeypatch.setattr(cli_quality, "load_model_from_args", lambda args: tiny)
    with Case.open(case) as opened:
        workflow.compare(opened, "Q1", "K1", tiny)
        assert opened.examination().masked("Q1", "K1")
    code, out, err = xfr(
        capsys, "case", "quality", case, "--model", "synthetic", "--json"
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["model_output_withheld"] == ["Q1", "K1"]
    for face in payload["faces"]:
        assert face["measures"]["embedding_norm"]["value"] is None
    code, out, err = xfr(capsys, "case", "quality", case, "--model", "synthetic")
    assert "embedding length of Q1, K1 is withheld" in out


def test_faces_json_gains_each_faces_quality(capsys, case):
    code, out, err = xfr(capsys, "case", "faces", case, "--json")
    assert code == 0, err
    faces = json.loads(out)["faces"]
    assert faces[0]["quality"]["rating"] == "limited"
    assert faces[0]["quality"]["reasons"] == ["inter-eye distance 43 px (below 60 px)"]
    assert faces[1]["quality"]["measures"]["inter_eye_distance"]["unit"] == "px"
    # the text listing is unchanged
    code, out, _ = xfr(capsys, "case", "faces", case)
    assert code == 0 and "quality" not in out and "rating" not in out


def test_a_face_that_cannot_be_measured(capsys, case, monkeypatch):
    """``faces --json`` gives the one-line reason for a face that cannot be
    measured and still lists the others' quality (the store refuses the obvious
    cases, coincident eyes, so the failure is simulated here)."""
    measure = workflow.face_quality

    def failing(opened, label, model=None):
        if label == "Q1":
            raise BadInputError("face Q1 (astronaut.png): the two eyes coincide")
        return measure(opened, label, model)

    monkeypatch.setattr(workflow, "face_quality", failing)
    code, out, err = xfr(capsys, "case", "faces", case, "--json")
    assert code == 0, err
    faces = {f["label"]: f["quality"] for f in json.loads(out)["faces"]}
    assert faces["Q1"] == {"error": "face Q1 (astronaut.png): the two eyes coincide"}
    assert faces["K1"]["rating"] == "good"
    line = one_line_error(capsys, "case", "quality", case, "--face", "Q1")
    assert line == "xfr: error: face Q1 (astronaut.png): the two eyes coincide"


def test_a_case_without_faces(capsys, tmp_path, astronaut_path):
    folder = tmp_path / "empty"
    with Case.create(folder, "2026-0020", "A. Examiner") as opened:
        opened.add_exhibits([astronaut_path], "probe")
    code, out, err = xfr(capsys, "case", "quality", folder)
    assert code == 0, err
    assert out.startswith("no faces in the case (find them with xfr case faces")
    code, out, err = xfr(capsys, "case", "quality", folder, "--json")
    assert code == 0 and json.loads(out)["faces"] == []


def test_help_lists_quality(capsys):
    with pytest.raises(SystemExit):
        main(["case", "--help"])
    assert "quality" in capsys.readouterr().out
