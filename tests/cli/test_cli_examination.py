"""``xfr case settings|analysis|features|evaluate|unmask|verification|acev`` and
sequential unmasking in every CLI output (issue 19 item 6): each command round
trips through the case with and without --json; before ``unmask`` no command prints
a masked pair's score; a blind verifier sees only their own records; bad input is
one line naming the case folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import SyntheticModel

import core.cli.case as cli_case
from core.case.examination import BLIND_HIDDEN, MASKED
from core.case.store import Case
from core.faces.detect import Face
from tests.cli.in_process import one_line_error, xfr

POINTS = np.array([[150, 80], [130, 80], [70, 80], [90, 80], [110, 130]], float)


def face(shift: float = 0.0) -> Face:
    points = POINTS + shift
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    return Face((left, top, right, bottom), points, None, 1.0, "hog")


def make_case(tmp_path: Path, name: str = "case", **options) -> Path:
    """A cheap case with hand-placed faces: Q1 (probe), K1 and K2 (gallery)."""
    rng = np.random.default_rng(0)
    files = []
    for role in ("probe", "known", "other"):
        path = tmp_path / f"{name}-{role}.png"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(path)
        files.append(path)
    with Case.create(tmp_path / name, "2026-0019", "A. Examiner", **options) as case:
        case.add_exhibits([files[0]], "probe")
        case.add_exhibits(files[1:], "gallery")
        case.set_faces("Q1", [face()], detector="hog")
        case.set_faces("K1", [face(2.0)], detector="hog")
        case.set_faces("K2", [face(9.0)], detector="hog")
    return tmp_path / name


@pytest.fixture
def case(tmp_path) -> Path:
    return make_case(tmp_path)


@pytest.fixture
def model(monkeypatch):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    tiny = SyntheticModel(network, 8)
    monkeypatch.setattr(cli_case, "load_model_from_args", lambda args: tiny)
    return tiny


def xfr_json(capsys, *argv) -> dict:
    code, out, err = xfr(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def similarities(folder: Path) -> dict[str, float]:
    """The true similarity of each pair, from the core API (gallery -> score)."""
    with Case.open(folder, read_only=True) as opened:
        labels = {f.id: f.label for f in opened.faces()}
        return {labels[c.gallery_face_id]: c.similarity for c in opened.comparisons()}


def digits(value: float) -> list[str]:
    return [f"{value:.4f}", repr(value)]


def analyse_and_evaluate(capsys, case: Path, *extra: str) -> None:
    code, _, err = xfr(capsys, "case", "analysis", case, "Q1", "--suitability",
                       "suitable", *extra)  # fmt: skip
    assert code == 0, err
    code, _, err = xfr(capsys, "case", "evaluate", case, "Q1", "K1", "--level",
                       "moderate_same", *extra)  # fmt: skip
    assert code == 0, err


# ---- settings ----------------------------------------------------------------------
def test_settings_print_the_scale_and_record_propositions_scale_and_masking(
    capsys, case, tmp_path
):
    code, out, _ = xfr(capsys, "case", "settings", case)
    assert code == 0 and "sequential unmasking: on" in out
    assert "extremely_strong_same" in out and "no_opinion" in out
    assert "first proposition: not recorded" in out
    settings = xfr_json(
        capsys, "case", "settings", case, "--request", "Is Q1 K1?", "--first",
        "Q1 shows K1", "--second", "Q1 shows someone else",
    )  # fmt: skip
    assert settings["propositions"]["first"] == "Q1 shows K1"
    settings = xfr_json(capsys, "case", "settings", case, "--population", "adults")
    assert settings["propositions"]["request"] == "Is Q1 K1?"  # merged, not reset
    assert settings["propositions"]["population"] == "adults"
    scale = tmp_path / "lab.json"
    scale.write_text(
        json.dumps(
            {
                "id": "lab-3",
                "name": "Lab three-point",
                "levels": [
                    {"code": "id", "words": "Identification", "support": 1},
                    {"code": "inc", "words": "Inconclusive", "support": 0},
                    {"code": "excl", "words": "Exclusion", "support": -1},
                ],
            }
        )
    )
    settings = xfr_json(capsys, "case", "settings", case, "--scale", scale)
    assert [level["code"] for level in settings["scale"]["levels"]] == [
        "id", "inc", "excl",
    ]  # fmt: skip
    line = one_line_error(
        capsys, "case", "settings", case, "--sequential-unmasking", "off"
    )
    assert line.startswith(f"xfr: error: {case}: turning sequential unmasking off")
    settings = xfr_json(
        capsys, "case", "settings", case, "--sequential-unmasking", "off",
        "--reason", "the lab asks for the score first",
    )  # fmt: skip
    assert not settings["sequential_unmasking"]
    reasons = [c["details"].get("reason") for c in settings["changes"]]
    assert "the lab asks for the score first" in reasons
    scale.write_text("{not json")
    line = one_line_error(capsys, "case", "settings", case, "--scale", scale)
    assert line.startswith(f"xfr: error: {scale}: the scale is not valid JSON")


# ---- analysis, features, evaluation ------------------------------------------------
def test_analysis_round_trip(capsys, case):
    code, out, _ = xfr(capsys, "case", "analysis", case, "Q1")
    assert code == 0 and out.strip() == "Q1: no analysis recorded"
    line = one_line_error(
        capsys, "case", "analysis", case, "K1", "--suitability", "suitable"
    )
    assert line == (
        f"xfr: error: {case}: analyse the questioned image first (ACE-V: the "
        "questioned face is analysed before the known one is looked at)"
    )
    done = xfr_json(
        capsys, "case", "analysis", case, "q1", "--suitability", "limited",
        "--reasons", "low resolution", "--factor", "resolution", "pose",
        "--visible", "nose", "Eyes", "--not-visible", "ears", "--notes", "CCTV",
    )  # fmt: skip
    assert done["face"] == "Q1" and done["record"]["stage"] == "analysis"
    assert done["analysis"] == {
        "suitability": "limited",
        "reasons": "low resolution",
        "factors": ["resolution", "pose"],
        "visible": ["nose", "eyes"],
        "not_visible": ["ears"],
        "notes": "CCTV",
    }
    code, out, _ = xfr(capsys, "case", "analysis", case, "Q1")
    assert "Q1: of limited suitability" in out
    assert "image factors: resolution, pose" in out
    assert xfr_json(capsys, "case", "analysis", case, "Q1")["record"] is None
    with Case.open(case, read_only=True) as opened:
        assert opened.examination().analysis("Q1").factors == ("resolution", "pose")
        assert [e for e in opened.audit_log() if e.action == "acev.analysis"]
    line = one_line_error(
        capsys, "case", "analysis", case, "Q1", "--suitability", "limited"
    )
    assert "needs the reasons written" in line and line.startswith(
        f"xfr: error: {case}: "
    )
    line = one_line_error(capsys, "case", "analysis", case, "Q1", "--reasons", "x")
    assert line == f"xfr: error: {case}: recording an analysis needs --suitability"
    line = one_line_error(
        capsys, "case", "analysis", case, "Q1", "--suitability", "suitable",
        "--visible", "tail",
    )  # fmt: skip
    assert "unknown facial component 'tail'" in line


def test_features_merge_into_the_latest_worksheet_and_print_the_table(
    capsys, case, tmp_path
):
    line = one_line_error(capsys, "case", "features", case, "Q1", "K1", "--set",
                          "nose=similar")  # fmt: skip
    assert line.startswith(f"xfr: error: {case}: record the analysis of Q1 first")
    xfr(capsys, "case", "analysis", case, "Q1", "--suitability", "suitable")
    with Case.open(case) as opened:
        mark = opened.add_annotation(shape="point", points=[[5, 5]], exhibit="Q1")
        wrong = opened.add_annotation(shape="point", points=[[5, 5]], exhibit="K2")
    first = xfr_json(
        capsys, "case", "features", case, "Q1", "K1", "--set", "nose=similar",
        "--set", "Eyes:Upper lid and fold=different_explained", "--note",
        "nose=broad tip", "--link", f"nose=q:{mark.id}", "--notes", "poor light",
    )  # fmt: skip
    sheet = first["worksheet"]
    assert [(o["component"], o["characteristic"]) for o in sheet["observations"]] == [
        ("eyes", "upper lid and fold"),
        ("nose", ""),
    ]
    nose = sheet["observations"][1]
    assert nose["notes"] == "broad tip" and nose["questioned_annotations"] == [mark.id]
    second = xfr_json(
        capsys, "case", "features", case, "Q1", "K1", "--set", "ears=not_visible",
        "--set", "nose=different",
    )  # fmt: skip
    assert second["record"]["id"] > first["record"]["id"]
    values = {o["component"]: o for o in second["worksheet"]["observations"]}
    assert values["nose"]["value"] == "different"
    assert values["nose"]["notes"] == "broad tip"  # merged: the note stays
    assert set(values) == {"eyes", "nose", "ears"}
    assert second["worksheet"]["notes"] == "poor light"
    code, out, _ = xfr(capsys, "case", "features", case, "Q1", "K1")
    assert code == 0
    assert "Nose" in out and "different, not explainable by the image conditions" in out
    assert "Skin" in out and "not recorded" in out and "notes: poor light" in out
    # --from starts from a worksheet file (what --json printed)
    saved = tmp_path / "sheet.json"
    saved.write_text(json.dumps(first))
    again = xfr_json(capsys, "case", "features", case, "Q1", "K1", "--from", saved)
    assert again["worksheet"] == first["worksheet"]
    for argv, wanted in [
        (["--set", "tail=similar"], "unknown facial component 'tail'"),
        (["--set", "nose:hairline=similar"], "'hairline' is not a characteristic"),
        (["--set", "nose=alike"], "observation 'alike' is not one of"),
        (["--set", "nose"], "--set needs COMPONENT[:CHARACTERISTIC]=VALUE"),
        (["--note", "mouth=thin"], "record its observation first"),
        (["--link", "nose=x:1"], "is not q:ID or k:ID"),
        (["--link", f"nose=k:{wrong.id}"], f"{wrong.id} is not an annotation on K1"),
    ]:  # fmt: skip
        line = one_line_error(capsys, "case", "features", case, "Q1", "K1", *argv)
        assert wanted in line, line
    line = one_line_error(capsys, "case", "features", case, "K1", "Q1")
    assert line == f"xfr: error: {case}: K1 is not a questioned (probe) face"
    line = one_line_error(capsys, "case", "features", case, "Q1", "K7")
    assert line.startswith(f"xfr: error: {case}: ") and "K7" in line
    saved.write_text("[1, 2]")
    line = one_line_error(capsys, "case", "features", case, "Q1", "K1", "--from", saved)
    assert line.startswith(f"xfr: error: {saved}: ")


def test_evaluate_prints_the_scale_and_records_on_it(capsys, case):
    code, out, _ = xfr(capsys, "case", "evaluate", case, "Q1", "K1")
    assert code == 0 and "Q1 / K1: no evaluation recorded" in out
    assert "moderate_same" in out  # the scale, to choose from
    xfr(capsys, "case", "analysis", case, "Q1", "--suitability", "suitable")
    line = one_line_error(
        capsys, "case", "evaluate", case, "Q1", "K1", "--level", "likely"
    )
    assert line.startswith(f"xfr: error: {case}: 'likely' is not a level of the scale")
    done = xfr_json(
        capsys, "case", "evaluate", case, "Q1", "K1", "--level", "strong_same",
        "--reasoning", "ear shape",
    )  # fmt: skip
    assert done["evaluation"]["level"] == "strong_same"
    assert done["evaluation"]["reasoning"] == "ear shape"
    assert done["scale"]["id"] == "enfsi-verbal-2015"
    code, out, _ = xfr(capsys, "case", "evaluate", case, "Q1", "K1")
    assert "Strong support for the first proposition" in out and "ear shape" in out


# ---- sequential unmasking in every output ------------------------------------------
def test_nothing_prints_a_masked_pairs_score_until_it_is_unmasked(
    capsys, case, model, tmp_path
):
    code, out, err = xfr(capsys, "case", "compare", case)
    assert code == 0, err
    true = similarities(case)
    assert set(true) == {"K1", "K2"}  # recorded
    assert MASKED in out and f"xfr case unmask {case} Q1 K1" in out
    ranking = xfr_json(capsys, "case", "compare", case)
    log_text = xfr(capsys, "case", "log", case)[1]
    log_json = json.dumps(xfr_json(capsys, "case", "log", case))
    for text in (out, json.dumps(ranking), log_text, log_json):
        for value in true.values():
            for shown in digits(value):
                assert shown not in text
    assert {c["gallery"]: c["rank"] for c in ranking["rankings"]["Q1"]} == {
        "K1": MASKED, "K2": MASKED,
    }  # fmt: skip
    line = one_line_error(
        capsys, "case", "explain", case, "--probe", "Q1", "--gallery", "K1",
        "--method", "gradient",
    )  # fmt: skip
    assert line == (
        f"xfr: error: {case}: the model's results for Q1 / K1 are hidden until "
        "unmasked (sequential unmasking): record the analysis and evaluation (xfr "
        "case analysis, xfr case evaluate) and run `xfr case unmask "
        f"{case} Q1 K1` first"
    )
    line = one_line_error(capsys, "case", "unmask", case, "Q1", "K1")
    assert line.startswith(f"xfr: error: {case}: record the analysis of Q1 first")

    analyse_and_evaluate(capsys, case)
    done = xfr_json(capsys, "case", "unmask", case, "Q1", "K1")
    assert done["record"]["stage"] == "unmasking"
    code, out, _ = xfr(capsys, "case", "compare", case)
    assert f"{true['K1']:.4f}" in out and f"{true['K2']:.4f}" not in out
    ranking = xfr_json(capsys, "case", "compare", case)["rankings"]["Q1"]
    by_face = {c["gallery"]: c for c in ranking}
    assert by_face["K1"]["cosine_similarity"] == pytest.approx(true["K1"])
    assert by_face["K1"]["rank"] == MASKED  # K2 still masked: no ranks
    assert by_face["K2"]["cosine_similarity"] == MASKED
    log_json = json.dumps(xfr_json(capsys, "case", "log", case))
    assert repr(true["K1"]) in log_json and repr(true["K2"]) not in log_json
    explained = xfr_json(
        capsys, "case", "explain", case, "--probe", "Q1", "--gallery", "K1",
        "--method", "gradient",
    )  # fmt: skip
    assert explained["explanation_id"] >= 1
    line = one_line_error(
        capsys, "case", "explain", case, "--probe", "Q1", "--gallery", "K2",
        "--method", "gradient",
    )  # fmt: skip
    assert "Q1 / K2 are hidden until unmasked" in line
    # unmask K2 as well: every score and the ranks are printed
    xfr(capsys, "case", "evaluate", case, "Q1", "K2", "--level", "neither")
    xfr(capsys, "case", "unmask", case, "Q1", "K2")
    code, out, _ = xfr(capsys, "case", "compare", case)
    assert "ranked by cosine similarity" in out and MASKED not in out
    assert all(f"{v:.4f}" in out for v in true.values())
    log_json = json.dumps(xfr_json(capsys, "case", "log", case))
    assert MASKED not in log_json and repr(true["K2"]) in log_json
    order = xfr_json(capsys, "case", "acev", case, "Q1", "K1")["order"]["Q1 / K1"]
    assert [s["what"] for s in order] == [
        "analysis of Q1",
        "evaluation: Moderate support for the first proposition (same person)",
        "model's results unmasked",
    ]


def test_a_case_made_without_masking_prints_scores_at_once(capsys, tmp_path, model):
    code, _, err = xfr(capsys, "case", "new", tmp_path / "open", "--number", "1",
                       "--examiner", "E", "--no-sequential-unmasking")  # fmt: skip
    assert code == 0, err
    with Case.open(tmp_path / "open", read_only=True) as opened:
        assert not opened.examination().settings().sequential_unmasking
    code, _, _ = xfr(capsys, "case", "new", tmp_path / "masked", "--number", "1",
                     "--examiner", "E")  # fmt: skip
    with Case.open(tmp_path / "masked", read_only=True) as opened:
        assert opened.examination().settings().sequential_unmasking
    folder = make_case(tmp_path, "plain", sequential_unmasking=False)
    code, out, _ = xfr(capsys, "case", "compare", folder)
    assert code == 0 and "ranked by cosine similarity" in out and MASKED not in out
    assert all(f"{v:.4f}" in out for v in similarities(folder).values())


# ---- blind verification ------------------------------------------------------------
def test_a_blind_verifier_sees_only_their_own_records_then_verifies(
    capsys, case, model
):
    analyse_and_evaluate(capsys, case)
    xfr(capsys, "case", "annotate", case, "--on", "Q1", "--shape", "point",
        "--points", "3,4", "--note", "mole")  # fmt: skip
    xfr(capsys, "case", "unmask", case, "Q1", "K1")
    blind = ("--blind", "--user", "B. Verifier")
    line = one_line_error(capsys, "case", "acev", case, "--blind")
    assert line == (
        f"xfr: error: {case}: --blind needs --user NAME (the verifier's name)"
    )
    line = one_line_error(
        capsys, "case", "analysis", case, "Q1", "--suitability", "suitable",
        "--blind", "--user", "A. Examiner",
    )  # fmt: skip
    assert "a verification is done by a second examiner" in line
    seen = xfr_json(capsys, "case", "acev", case, *blind)
    assert seen["records"] == [] and seen["blind"]
    assert xfr_json(capsys, "case", "annotate", case, "--list", *blind) == {
        "annotations": []
    }
    assert len(xfr_json(capsys, "case", "annotate", case, "--list")["annotations"]) == 1
    assert xfr_json(capsys, "case", "analysis", case, "Q1", *blind)["analysis"] is None
    assert (
        xfr_json(capsys, "case", "evaluate", case, "Q1", "K1", *blind)["evaluation"]
        is None
    )
    # the verifier is masked too, although the first examiner unmasked K1
    code, out, _ = xfr(capsys, "case", "compare", case, *blind)
    assert code == 0 and MASKED in out
    assert f"{similarities(case)['K1']:.4f}" not in out
    trail = xfr_json(capsys, "case", "log", case, *blind)["entries"]
    hidden = {e["action"] for e in trail if e["details"] == {"hidden": BLIND_HIDDEN}}
    assert hidden == {"acev.analysis", "acev.evaluation", "acev.unmasking",
                      "annotation.add"}  # fmt: skip
    code, _, err = xfr(capsys, "case", "analysis", case, "Q1", "--suitability",
                       "suitable", *blind)  # fmt: skip
    assert code == 0, err
    code, _, err = xfr(capsys, "case", "evaluate", case, "Q1", "K1", "--level",
                       "strong_same", *blind)  # fmt: skip
    assert code == 0, err
    seen = xfr_json(capsys, "case", "acev", case, *blind)
    assert {r["role"] for r in seen["records"]} == {"verifier"}
    assert {r["author"] for r in seen["records"]} == {"B. Verifier"}
    everything = xfr_json(capsys, "case", "acev", case)
    assert {r["role"] for r in everything["records"]} == {"examiner", "verifier"}
    with Case.open(case, read_only=True) as opened:
        started = [
            e for e in opened.audit_log() if e.action == "verification.blind_session"
        ]
        assert [e.details["verifier"] for e in started] == ["B. Verifier"]  # once

    printed = xfr_json(capsys, "case", "verification", case, "Q1", "K1", *blind)
    assert printed["verification"] is None
    done = xfr_json(
        capsys, "case", "verification", case, "Q1", "K1", "--record", *blind
    )
    outcome = done["verification"]
    assert outcome["mode"] == "blind" and outcome["outcome"] == "disagreement"
    code, out, _ = xfr(capsys, "case", "verification", case, "Q1", "K1")
    assert "disagreement" in out and "OPEN" in out
    line = one_line_error(
        capsys, "case", "verification", case, "Q1", "K1", "--resolved-level",
        "moderately_strong_same", "--user", "B. Verifier",
    )  # fmt: skip
    assert line == f"xfr: error: {case}: a resolved level needs the resolution written"
    done = xfr_json(
        capsys, "case", "verification", case, "Q1", "K1", "--resolution",
        "agreed after discussing the ear", "--resolved-level",
        "moderately_strong_same", "--user", "B. Verifier",
    )  # fmt: skip
    assert done["verification"]["resolved_level"] == "moderately_strong_same"
    code, out, _ = xfr(capsys, "case", "verification", case, "Q1", "K1")
    assert "resolution: agreed after discussing the ear" in out
    assert xfr(capsys, "case", "verify", case)[0] == 0


# ---- bad input, the demo -------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["analysis", "CASE", "Q9", "--suitability", "suitable"], "Q9"),
        (["evaluate", "CASE", "K1", "Q1", "--level", "neither"], "not a questioned"),
        (["unmask", "CASE", "Q1", "Q1"], "not a known (gallery) face"),
        (["acev", "CASE", "Q1"], "give both faces of the pair"),
        (["evaluate", "CASE", "Q1", "K1", "--reasoning", "x"], "goes with --level"),
        (["settings", "CASE", "--reason", "x"], "goes with --sequential-unmasking"),
    ],
)
def test_bad_input_is_one_line(capsys, case, argv, wanted):
    argv = [str(case) if a == "CASE" else a for a in argv]
    line = one_line_error(capsys, "case", *argv)
    assert wanted in line


def test_a_missing_case_is_one_line(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    for argv in (["acev", missing], ["analysis", missing, "Q1"]):
        line = one_line_error(capsys, "case", *argv)
        assert str(missing) in line


def test_demo_acev_passes_the_flag(capsys, tmp_path, monkeypatch):
    """The wiring of --acev (the demo itself: test_demo_acev_case below)."""
    import core.case.demo as demo

    calls = []

    def fake(folder, *, model=None, **options):
        calls.append(options)
        return Case.create(folder, "DEMO", "Demo examiner")

    monkeypatch.setattr(demo, "create_demo_case", fake)
    assert xfr(capsys, "case", "demo", tmp_path / "d", "--no-compare", "--acev")[0] == 0
    assert xfr(capsys, "case", "demo", tmp_path / "e", "--no-compare")[0] == 0
    assert calls == [{"acev": True}, {}]


@pytest.mark.slow
def test_demo_acev_case(capsys, tmp_path):
    """Needs core.case.demo.create_demo_case(..., acev=True), which another branch
    adds (issue 19): until that is merged this test fails with "unexpected keyword
    argument 'acev'"; the lead runs it after the merge."""
    folder = tmp_path / "demo"
    code, _, err = xfr(capsys, "case", "demo", folder, "--no-compare", "--acev")
    assert code == 0, err
    records = xfr_json(capsys, "case", "acev", folder)["records"]
    stages = {r["stage"] for r in records}
    assert {"analysis", "worksheet", "evaluation", "verification"} <= stages
    assert {r["role"] for r in records} == {"examiner", "verifier"}


def test_a_blind_annotation_starts_the_session_and_cannot_touch_hidden_ones(
    capsys, case
):
    analyse_and_evaluate(capsys, case)
    xfr(capsys, "case", "annotate", case, "--on", "K1", "--shape", "point",
        "--points", "3,4")  # fmt: skip
    first = xfr_json(capsys, "case", "annotate", case, "--list")["annotations"][0]
    blind = ("--blind", "--user", "B. Verifier")
    code, _, err = xfr(capsys, "case", "annotate", case, "--on", "K1", "--shape",
                       "point", "--points", "5,5", *blind)  # fmt: skip
    assert code == 0, err
    trail = xfr_json(capsys, "case", "log", case)["entries"]
    b_actions = [e["action"] for e in trail if e["user"] == "B. Verifier"]
    assert b_actions[:2] == ["verification.blind_session", "annotation.add"]
    line = one_line_error(
        capsys, "case", "annotate", case, "--delete", str(first["id"]), *blind
    )
    assert "not one of yours" in line
    assert len(xfr_json(capsys, "case", "annotate", case, "--list")["annotations"]) == 2
