"""The examiner's ACE-V records (issue 19 items 1, 2, 4): analysis, worksheet,
evaluation on a declared scale, sequential unmasking, blind verification and saved
figures - stored in the case, audited, bound to the chain, surviving an archive."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import SyntheticModel

from core.case import workflow
from core.case.acev import (
    ENFSI_SCALE,
    FEATURE_LIST,
    Analysis,
    ConclusionScale,
    FeatureObservation,
    Propositions,
    Worksheet,
    component_key,
)
from core.case.examination import BLIND_HIDDEN, MASKED
from core.case.store import Case, CaseError
from core.errors import BadInputError
from core.faces.detect import Face

POINTS = np.array([[150, 80], [130, 80], [70, 80], [90, 80], [110, 130]], float)


def face(shift: float = 0.0) -> Face:
    points = POINTS + shift
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    return Face((left, top, right, bottom), points, None, 1.0, "hog")


def new_case(tmp_path, name="case", **options) -> Case:
    rng = np.random.default_rng(0)
    files = []
    for role in ("probe", "known", "other"):
        path = tmp_path / f"{name}-{role}.png"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(path)
        files.append(path)
    case = Case.create(tmp_path / name, "2026-0019", "A. Examiner", **options)
    case.add_exhibits([files[0]], "probe")
    case.add_exhibits(files[1:], "gallery")
    case.set_faces("Q1", [face()], detector="hog")
    case.set_faces("K1", [face(2.0)], detector="hog")
    case.set_faces("K2", [face(9.0)], detector="hog")
    return case


@pytest.fixture
def case(tmp_path):
    with new_case(tmp_path) as c:
        yield c


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    return SyntheticModel(network, 8)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


SUITABLE = Analysis("suitable", visible=("eyes", "nose"), not_visible=("ears",))


def test_new_cases_mask_by_default_and_older_settings_read_as_unrecorded(tmp_path):
    with new_case(tmp_path) as c:
        settings = c.examination().settings()
        assert settings.sequential_unmasking and settings.recorded
        assert settings.scale == ENFSI_SCALE
        (created,) = [e for e in c.audit_log() if e.action == "case.create"]
        assert created.details["examination_settings"]["sequential_unmasking"]
    with new_case(tmp_path, "open", sequential_unmasking=False) as c:
        assert not c.examination().masked("Q1", "K1")


def test_analysis_comes_first_and_questioned_before_known(case):
    exam = case.examination()
    with pytest.raises(BadInputError, match="analyse the questioned image first"):
        exam.record_analysis("K1", SUITABLE)
    with pytest.raises(BadInputError, match="analysis of Q1 first"):
        exam.record_evaluation("Q1", "K1", "moderate_same")
    with pytest.raises(BadInputError, match="needs the reasons"):
        Analysis("limited")
    exam.record_analysis("Q1", Analysis("limited", "low resolution", ("resolution",)))
    exam.record_analysis("K1", SUITABLE)
    assert exam.analysis("Q1").suitability == "limited"
    assert exam.analysis("K1").visible == ("eyes", "nose")


def test_sequential_unmasking_needs_analysis_and_evaluation_then_is_audited(
    case, model
):
    exam = case.examination()
    assert exam.masked("Q1", "K1") and exam.any_masked("Q1")
    with pytest.raises(BadInputError, match="analysis of Q1 first"):
        exam.unmask("Q1", "K1")
    exam.record_analysis("Q1", SUITABLE)
    with pytest.raises(BadInputError, match="evaluation of Q1 / K1 before"):
        exam.unmask("Q1", "K1")
    first = exam.record_evaluation("Q1", "K1", "moderate_same", "similar nose")
    assert not first.evaluation().results_seen
    record = exam.unmask("Q1", "K1")
    assert record.content["evaluation_before"] == first.id
    assert not exam.masked("Q1", "K1") and exam.masked("Q1", "K2")
    assert exam.unmask("Q1", "K1").id == record.id  # once
    revised = exam.record_evaluation("Q1", "K1", "strong_same")
    assert revised.evaluation().results_seen and revised.id > record.id
    order = [step.what for step in exam.seen_order("Q1", "K1")]
    assert order == [
        "analysis of Q1",
        "evaluation: Moderate support for the first proposition (same person)",
        "model's results unmasked",
        "evaluation: Strong support for the first proposition (same person) "
        "(the model's results could be seen)",
    ]
    # the model's results in the audit trail: shown for K1, hidden for K2
    workflow.rank_all_probes(case, model)
    (recorded,) = [
        e for e in exam.redact(case.audit_log()) if e.action == "comparisons.record"
    ]
    shown = {r["gallery"]: r for r in recorded.details["results"]}
    assert isinstance(shown["K1"]["similarity"], float)
    assert shown["K2"]["similarity"] == MASKED == shown["K2"]["decision"]
    raw = next(e for e in case.audit_log() if e.action == "comparisons.record")
    assert isinstance(raw.details["results"][1]["similarity"], float)  # kept


def test_turning_masking_off_needs_a_reason(case):
    exam = case.examination()
    with pytest.raises(BadInputError, match="needs a reason"):
        exam.set_sequential_unmasking(False)
    exam.set_sequential_unmasking(False, "the lab's request: score first")
    assert not exam.masked("Q1", "K2")
    (change,) = exam.setting_changes()
    assert change.details["reason"] == "the lab's request: score first"


def test_the_worksheet_round_trips_and_checks_components_and_annotations(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    mark = case.add_annotation(shape="point", points=[[10, 10]], exhibit="Q1")
    other = case.add_annotation(shape="point", points=[[10, 10]], exhibit="K2")
    sheet = Worksheet(
        (
            FeatureObservation("nose", "similar", notes="broad tip"),
            FeatureObservation(
                "eyes", "different_explained", "upper lid and fold", "pose"
            ),
            FeatureObservation(
                "ears", "not_visible", questioned_annotations=(mark.id,)
            ),
        ),
        notes="poor lighting on the left",
    )
    exam.record_worksheet("Q1", "K1", sheet)
    stored = exam.worksheet("Q1", "K1")
    assert [o.component for o in stored.observations] == ["eyes", "nose", "ears"]
    assert stored == sheet.sorted()
    bad = Worksheet(
        (FeatureObservation("ears", "similar", known_annotations=(other.id,)),)
    )
    with pytest.raises(
        BadInputError, match=f"annotation {other.id} is not an annotation on K1"
    ):
        exam.record_worksheet("Q1", "K1", bad)
    with pytest.raises(BadInputError, match="not a characteristic of Nose"):
        FeatureObservation("nose", "similar", "hairline")
    with pytest.raises(BadInputError, match="unknown facial component"):
        component_key("tail")
    assert component_key("Chin/jawline") == component_key("chin/jawline")
    assert len(FEATURE_LIST) == 18
    with pytest.raises(BadInputError, match="not a questioned"):
        exam.record_worksheet("K1", "Q1", sheet)


def test_scale_is_declared_before_evaluating_and_a_lab_scale_is_checked(case):
    exam = case.examination()
    mine = ConclusionScale.from_dict(
        {
            "id": "lab-5",
            "name": "Lab five-point",
            "levels": [
                {"code": "id", "words": "Identification", "support": 1},
                {"code": "inc", "words": "Inconclusive", "support": 0},
                {"code": "excl", "words": "Exclusion", "support": -1},
            ],
        }
    )
    exam.set_scale(mine)
    assert exam.settings().scale == mine
    exam.record_analysis("Q1", SUITABLE)
    with pytest.raises(BadInputError, match="not a level of the scale"):
        exam.record_evaluation("Q1", "K1", "strong_same")
    exam.record_evaluation("Q1", "K1", "inc")
    with pytest.raises(BadInputError, match="declared before evaluating"):
        exam.set_scale(ENFSI_SCALE)
    with pytest.raises(BadInputError, match="distinct codes"):
        ConclusionScale.from_dict(
            {"id": "x", "name": "x", "levels": [{"code": "a", "words": "a"}] * 2}
        )


def test_blind_verification_hides_the_first_examination_and_records_the_outcome(
    tmp_path,
):
    with new_case(tmp_path) as c:
        exam = c.examination()
        exam.record_analysis("Q1", SUITABLE)
        exam.record_evaluation("Q1", "K1", "strong_same")
        c.add_annotation(shape="point", points=[[1, 1]], exhibit="Q1", note="mole")
        exam.save_figure(
            _png(),
            view="wipe",
            questioned="Q1",
            known="K1",
            params={},
            caption="noses alike",
        )
        exam.set_propositions(
            Propositions("Is Q1 K1?", "Q1 shows K1", "Q1 shows someone else", "adults")
        )
    with Case.open(tmp_path / "case", user="A. Examiner") as c:
        with pytest.raises(BadInputError, match="second examiner"):
            c.examination(blind=True).start_blind_session()
    with Case.open(tmp_path / "case", user="B. Verifier") as c:
        blind = c.examination(blind=True)
        blind.start_blind_session()
        assert blind.records() == [] and blind.analysis("Q1") is None
        assert blind.visible_annotations(c.annotations()) == []
        assert blind.figures() == [] and len(c.examination().figures()) == 1
        assert blind.masked("Q1", "K1")  # the verifier is masked too
        trail = {e.seq: e for e in blind.redact(c.audit_log())}
        hidden = [e for e in trail.values() if e.details == {"hidden": BLIND_HIDDEN}]
        assert {e.action for e in hidden} == {
            "acev.analysis",
            "acev.evaluation",
            "annotation.add",
            "figure.save",
        }
        blind.record_analysis("Q1", SUITABLE)
        blind.record_evaluation("Q1", "K1", "moderate_same")
        assert [r.role for r in blind.records()] == ["verifier", "verifier"]
        verification = blind.record_verification("Q1", "K1").verification()
        assert verification.mode == "blind" and verification.outcome == "disagreement"
        assert not verification.resolved and not blind.blind
        with pytest.raises(BadInputError, match="needs the resolution written"):
            blind.record_verification("Q1", "K1", resolved_level="strong_same")
        blind.record_verification(
            "Q1",
            "K1",
            resolution="agreed on moderately strong after discussing the ear",
            resolved_level="moderately_strong_same",
        )
        done = c.examination().verification("Q1", "K1")
        assert done.resolved and done.resolved_level == "moderately_strong_same"
        assert c.examination().verifiers() == ["B. Verifier"]
        assert c.verify().intact


def test_records_are_bound_to_the_chain_and_survive_an_archive(case, tmp_path):
    from core.case.archive import export_case, import_case

    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_worksheet(
        "Q1", "K1", Worksheet((FeatureObservation("nose", "similar"),))
    )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    figure = exam.save_figure(
        buffer.getvalue(),
        view="superimposed",
        questioned="Q1",
        known="K1",
        params={"opacity": 0.5},
        caption="eye line",
    )
    assert figure.number == 1 and case.derived_path(figure.image_sha256).is_file()
    assert case.verify().intact
    archive = tmp_path / "case.zip"
    export_case(case.folder, archive)
    import_case(archive, tmp_path / "imported")
    with Case.open(tmp_path / "imported", read_only=True) as copy:
        again = copy.examination()
        assert again.worksheet("Q1", "K1") == exam.worksheet("Q1", "K1")
        assert again.figures()[0].caption == "eye line"
    case.close()
    db = sqlite3.connect(case.folder / "case.sqlite")
    content = json.dumps(
        {"observations": [{"component": "nose", "value": "different"}]}
    )
    db.execute("UPDATE acev SET content = ? WHERE stage = 'worksheet'", (content,))
    db.commit()
    db.close()
    with Case.open(case.folder, read_only=True) as reopened:
        problems = reopened.verify().problems
        assert any("acev row" in p for p in problems), problems


def test_a_case_without_the_tables_reads_as_having_no_records(tmp_path):
    with new_case(tmp_path) as c:
        folder = c.folder
    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    db = sqlite3.connect(copy / "case.sqlite")
    for table in ("acev", "figures", "case_settings"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Case.open(copy, read_only=True) as old:
        assert old.examination().records() == []
        assert not old.examination().settings().recorded
        assert not old.examination().masked("Q1", "K1")


def test_an_open_verification_is_recorded_as_open(tmp_path):
    with new_case(tmp_path) as c:
        exam = c.examination()
        exam.record_analysis("Q1", SUITABLE)
        exam.record_evaluation("Q1", "K1", "strong_same")
        with pytest.raises(BadInputError, match="second examiner"):
            c.examination(verifier=True).record_analysis("Q1", SUITABLE)
        c.user = "B. Verifier"
        open_check = c.examination(verifier=True)
        assert len(open_check.records()) == 2  # the first examination is visible
        open_check.record_analysis("Q1", SUITABLE)
        open_check.record_evaluation("Q1", "K1", "strong_same")
        verification = open_check.record_verification("Q1", "K1").verification()
        assert (verification.mode, verification.outcome) == ("open", "agreement")
        assert verification.resolved


def test_two_questioned_images_are_a_pair_and_a_face_is_not_paired_with_itself(
    case,
):
    exam = case.examination()
    with pytest.raises(BadInputError, match="same image"):
        exam.record_worksheet("Q1", "Q1", Worksheet())
    exam.record_analysis("Q1", SUITABLE)
    assert exam.masked("Q1", "K1")
    exam.record_evaluation("Q1", "K2", "neither")
    assert exam.unmask("Q1", "K2").known == "K2"


def test_a_verification_is_the_verifiers_record_and_hidden_from_another_blind_one(
    tmp_path,
):
    with new_case(tmp_path) as c:
        exam = c.examination()
        exam.record_analysis("Q1", SUITABLE)
        exam.record_evaluation("Q1", "K1", "strong_same")
        c.user = "B. Verifier"
        first = c.examination(blind=True)
        first.start_blind_session()
        assert first.blind_session_started()
        first.record_analysis("Q1", SUITABLE)
        first.record_evaluation("Q1", "K1", "weak_same")
        first.record_verification("Q1", "K1")
        c.user = "A. Examiner"
        resolution = c.examination().record_verification(
            "Q1", "K1", resolution="discussed", resolved_level="moderate_same"
        )
        assert resolution.role == "verifier" and resolution.author == "A. Examiner"
        c.user = "C. Second"
        other = c.examination(blind=True)
        assert not other.blind_session_started()
        assert other.verification("Q1", "K1") is None
        assert c.examination().verification("Q1", "K1").resolved


def test_a_removed_setting_keeps_the_results_hidden(case):
    """Deleting the setting row outside XFR (to peek) reads as masked, not off."""
    folder = case.folder
    case.close()
    db = sqlite3.connect(folder / "case.sqlite")
    db.execute("DELETE FROM case_settings WHERE key = 'sequential_unmasking'")
    db.commit()
    db.close()
    with Case.open(folder, read_only=True) as peek:
        exam = peek.examination()
        assert exam.settings().sequential_unmasking and not exam.settings().recorded
        assert exam.masked("Q1", "K1")


def test_masking_cannot_be_turned_back_on_once_results_could_be_seen(case, model):
    exam = case.examination()
    exam.set_sequential_unmasking(False, "peek")
    workflow.rank_all_probes(case, model)
    exam.record_analysis("Q1", SUITABLE)
    evaluation = exam.record_evaluation("Q1", "K1", "strong_same")
    assert evaluation.evaluation().results_seen  # not a blind opinion
    with pytest.raises(BadInputError, match="cannot be turned on"):
        exam.set_sequential_unmasking(True)
    steps = [step.what for step in exam.seen_order("Q1", "K1")]
    assert steps[0] == "sequential unmasking turned off (peek)"


def test_records_of_a_replaced_face_no_longer_count(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "moderate_same")
    exam.unmask("Q1", "K1")
    assert not exam.masked("Q1", "K1")
    case.set_faces("K1", [face(30.0)], detector="hog")  # another face at K1
    assert exam.masked("Q1", "K1") and exam.evaluation("Q1", "K1") is None
    with pytest.raises(BadInputError, match="evaluation of Q1 / K1 before"):
        exam.unmask("Q1", "K1")
    old = exam.records("evaluation")[0]
    assert not old.current and old.known_face_id != case.face("K1").id
    assert "since replaced" in exam.seen_order("Q1", "K1")[1].what
    assert exam.analysis("Q1") is not None  # Q1 itself was not replaced


def test_the_first_examiner_is_known_whatever_the_spelling(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    case.user = "  a.  EXAMINER "
    with pytest.raises(BadInputError, match="second examiner"):
        case.examination(blind=True).start_blind_session()


def test_a_verifier_who_worked_in_the_open_first_is_not_recorded_blind(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "strong_same")
    case.user = "B. Verifier"
    case.add_annotation(shape="point", points=[[3, 3]], exhibit="K1")  # not blind
    blind = case.examination(blind=True)
    blind.start_blind_session()
    blind.record_analysis("Q1", SUITABLE)
    blind.record_evaluation("Q1", "K1", "strong_same")
    assert blind.record_verification("Q1", "K1").verification().mode == "open"


def test_a_tampered_record_is_refused_even_read_only(case):
    case.examination().record_analysis("Q1", SUITABLE)
    folder = case.folder
    case.close()
    db = sqlite3.connect(folder / "case.sqlite")
    db.execute('UPDATE acev SET content = \'{"suitability": "not_suitable"}\'')
    db.commit()
    db.close()
    with Case.open(folder, read_only=True) as copy:
        with pytest.raises(CaseError, match="acev row 1"):
            copy.examination().records()


def test_a_second_blind_verifier_sees_nothing_of_the_first_verifier(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "strong_same")
    case.user = "B. Verifier"
    first = case.examination(blind=True)
    first.start_blind_session()
    first.record_analysis("Q1", Analysis("limited", "blur", ("focus or motion blur",)))
    first.record_evaluation("Q1", "K1", "weak_same")
    first.record_verification("Q1", "K1")
    case.user = "C. Third"
    second = case.examination(blind=True)
    assert second.records() == [] and second.analysis("Q1") is None
    assert second.verification("Q1", "K1") is None
    trail = second.redact(case.audit_log())
    theirs = [e for e in trail if e.action.startswith("acev.")]
    assert theirs and all(e.details == {"hidden": BLIND_HIDDEN} for e in theirs)


def test_an_evaluation_after_a_face_correction_says_the_results_were_seen(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "moderate_same")
    exam.unmask("Q1", "K1")
    case.set_faces("K1", [face(3.0)], detector="hog")  # masked again
    assert exam.masked("Q1", "K1")
    again = exam.record_evaluation("Q1", "K1", "strong_same")
    assert again.evaluation().results_seen  # the earlier record's were seen


def test_the_trail_shows_only_unmasked_face_records_in_mark_order(case, model):
    exam = case.examination()
    workflow.rank_all_probes(case, model)
    (entry,) = [
        e for e in exam.redact(case.audit_log()) if e.action == "comparisons.record"
    ]
    assert [r["gallery"] for r in entry.details["results"]] == ["K1", "K2"]
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "moderate_same")
    exam.unmask("Q1", "K1")
    old_k1 = case.face("K1").id
    case.correct_face("K1", POINTS + 1.0)
    workflow.rank_all_probes(case, model)  # the corrected K1: never unmasked
    entries = [
        e for e in exam.redact(case.audit_log()) if e.action == "comparisons.record"
    ]
    first, later = entries[0].details["results"], entries[-1].details["results"]
    shown = {(r["gallery_face_id"], r["similarity"] == MASKED) for r in first}
    assert (old_k1, False) in shown
    assert all(r["similarity"] == MASKED for r in later)


def test_the_first_examiner_may_only_resolve_and_the_verifier_stays_named(case):
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "strong_same")
    case.user = "B. Verifier"
    blind = case.examination(blind=True)
    blind.start_blind_session()
    blind.record_analysis("Q1", SUITABLE)
    blind.record_evaluation("Q1", "K1", "weak_same")
    case.user = "A. Examiner"
    with pytest.raises(BadInputError, match=r"recorded by its verifier, B\. Verifier"):
        case.examination().record_verification("Q1", "K1")  # not the verifier
    case.user = "B. Verifier"
    case.examination(blind=True).record_verification("Q1", "K1")
    case.user = "A. Examiner"
    done = case.examination().record_verification(
        "Q1", "K1", resolution="discussed", resolved_level="moderate_same"
    )
    verification = done.verification()
    assert (verification.verifier, verification.resolved_by) == (
        "B. Verifier",
        "A. Examiner",
    )
    with pytest.raises(BadInputError, match="may only record how a disagreement"):
        case.examination().record_verification("Q1", "K1", resolution="again")


def test_a_comparison_of_a_replaced_face_stays_masked(case, model):
    exam = case.examination()
    workflow.rank_all_probes(case, model)
    old = next(c for c in case.comparisons() if c.gallery_face_id == case.face("K1").id)
    case.correct_face("K1", POINTS + 1.0)
    workflow.rank_all_probes(case, model)
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "neither")
    exam.unmask("Q1", "K1")  # the corrected K1's results
    assert exam.masked_comparison(old)  # the earlier record's never were
    new = next(c for c in case.comparisons() if c.gallery_face_id == case.face("K1").id)
    assert not exam.masked_comparison(new)
