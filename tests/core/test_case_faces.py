"""Faces under the examiner's control (issue 18 item 1): reject a false detection,
restore it, reset a corrected face to the detected one, undo any step, place a face
the detector missed; each step audited, bound to the chain, and left out of (or
back in) comparisons, 1:N and statistics."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import SyntheticModel

from core.case import workflow
from core.case.store import Case
from core.errors import BadInputError
from core.faces.detect import Face

POINTS = np.array([[150, 80], [130, 80], [70, 80], [90, 80], [110, 130]], float)


def detected(shift: float = 0.0, score: float = 1.0) -> Face:
    points = POINTS + shift
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    return Face((left, top, right, bottom), points, None, score, "hog")


@pytest.fixture
def case(tmp_path):
    """Q1 (one face) against K1 (a face and a false detection K1#1), no dlib."""
    rng = np.random.default_rng(0)
    files = []
    for name in ("probe", "known"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(path)
        files.append(path)
    with Case.create(tmp_path / "case", "2026-0018", "A. Examiner", user="tester") as c:
        c.add_exhibits([files[0]], "probe")
        c.add_exhibits([files[1]], "gallery")
        c.set_faces("Q1", [detected()], detector="hog")
        c.set_faces("K1", [detected(2.0), detected(60.0, 0.1)], detector="hog")
        yield c


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    return SyntheticModel(network, 8)


def labels(faces) -> list[str]:
    return [face.label for face in faces]


def test_a_rejected_face_leaves_faces_1_to_n_and_comparisons(case, model):
    assert labels(workflow.role_faces(case, "gallery")) == ["K1", "K1#1"]
    before = workflow.rank_all_probes(case, model)
    assert sorted(labels(c.face for c in before["Q1"])) == ["K1", "K1#1"]
    rejected = case.reject_face("K1#1", "the mission patch, not a face")
    assert rejected.rejected and rejected.label == "K1#1"
    assert labels(case.faces()) == ["Q1", "K1"]
    assert labels(case.rejected_faces()) == ["K1#1"]
    assert labels(workflow.role_faces(case, "gallery")) == ["K1"]
    assert labels(c.face for c in workflow.rank_all_probes(case, model)["Q1"]) == ["K1"]
    with pytest.raises(BadInputError, match=r"rejected as not a face.*restore it"):
        case.face("K1#1")
    with pytest.raises(BadInputError, match="rejected"):
        workflow.compare(case, "Q1", "K1#1", model)
    entry = case.audit_log()[-1]
    assert entry.action == "faces.reject" and entry.user == "tester"
    assert entry.details["face"] == "K1#1"
    assert entry.details["reason"] == "the mission patch, not a face"
    assert entry.details["from"]["source"] == "hog"
    assert not case.verify().problems


def test_restore_brings_back_the_same_face_and_label(case):
    original = case.face("K1#1")
    case.reject_face("K1#1")
    restored = case.restore_face("K1#1")
    assert restored.label == "K1#1" and not restored.rejected
    assert restored.source == "hog" and restored.score == original.score
    np.testing.assert_array_equal(restored.landmarks5, original.landmarks5)
    assert restored.id == original.id  # the record itself is current again
    assert labels(case.faces("K1")) == ["K1", "K1#1"]
    assert [(f.source, f.superseded) for f in case.face_history("K1#1")] == [
        ("hog", False),
        ("rejected", True),
    ]
    assert case.audit_log()[-1].action == "faces.revert"
    assert case.audit_log()[-1].details["why"] == "restore"
    with pytest.raises(BadInputError, match="not rejected"):
        case.restore_face("K1#1")
    assert not case.verify().problems


def test_reset_returns_a_corrected_face_to_the_detected_one(case):
    detected_face = case.face("K1")
    case.correct_face("K1", POINTS + 5)
    case.correct_face("K1", POINTS + 7)
    assert case.face("K1").source == "manual"
    reset = case.reset_face("K1")
    assert reset.id == detected_face.id
    assert reset.source == "hog" and reset.score == detected_face.score
    np.testing.assert_array_equal(reset.landmarks5, detected_face.landmarks5)
    assert case.detected_face("K1").id == reset.id
    with pytest.raises(BadInputError, match="already the detected face"):
        case.reset_face("K1")
    assert not case.verify().problems


def test_every_step_can_be_undone_by_reverting_to_the_record_before(case):
    first = case.face("Q1")
    corrected = case.correct_face("Q1", POINTS + 3)
    undone = case.revert_face("Q1", first.id)  # undo the correction
    assert undone.id == first.id
    np.testing.assert_array_equal(undone.landmarks5, first.landmarks5)
    redone = case.revert_face("Q1", corrected.id, why="redo")
    np.testing.assert_array_equal(redone.landmarks5, POINTS + 3)
    assert [e.action for e in case.audit_log()[-2:]] == ["faces.revert"] * 2
    assert case.revert_face("Q1", corrected.id).id == redone.id  # current: no entry
    assert case.audit_log()[-1].details["why"] == "redo"
    with pytest.raises(BadInputError, match="not a record of Q1"):
        case.revert_face("Q1", case.face("K1").id)


def test_a_face_placed_by_hand_has_no_detected_face_to_reset_to(case):
    label = case.next_face_label("Q1")
    assert label == "Q1#1"
    case.correct_face(label, POINTS + 20)
    with pytest.raises(BadInputError, match="placed by hand"):
        case.reset_face("Q1#1")
    # a rejected index stays reserved: the next face is not K1#1 again
    case.reject_face("K1#1")
    assert case.next_face_label("K1") == "K1#2"
    with pytest.raises(BadInputError, match="restore it before correcting"):
        case.correct_face("K1#1", POINTS)


def test_a_new_detection_replaces_rejections_too(case):
    case.reject_face("K1#1")
    case.set_faces("K1", [detected(2.0)], detector="hog")
    assert case.rejected_faces() == [] and labels(case.faces("K1")) == ["K1"]


def test_rejection_edited_outside_xfr_is_detected(case):
    case.reject_face("K1#1")
    case.close()
    db = sqlite3.connect(case.folder / "case.sqlite")
    db.execute("UPDATE faces SET source = 'hog' WHERE source = 'rejected'")
    db.commit()
    db.close()
    with Case.open(case.folder, read_only=True) as reopened:
        report = reopened.verify()
    assert report.problems
    assert any("faces row" in problem for problem in report.problems)


def test_earlier_results_stay_reachable_after_a_correction(case, model):
    comparison = workflow.compare(case, "Q1", "K1", model)
    workflow.explain(case, "Q1", "K1", "gradient", model)
    assert [c.id for c in workflow.explained_comparisons(case, "K1")] == [comparison.id]
    case.correct_face("K1", POINTS + 4)
    assert workflow.explained_comparisons(case, "K1") == []
    (earlier,) = workflow.earlier_results(case, "Q1", "K1")
    assert earlier.comparison.id == comparison.id
    assert earlier.gallery.superseded and not earlier.probe.superseded
    assert [e.method for e in earlier.explanations] == ["gradient"]


@pytest.mark.dlib
def test_a_face_box_drawn_by_hand_gets_predicted_landmarks(case, astronaut_rgb):
    tmp = case.folder.parent / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(tmp)
    (exhibit,) = case.add_exhibits([tmp], "gallery").added
    label = case.next_face_label(exhibit.mark)
    face = workflow.place_face_in_box(case, label, (150, 40, 300, 220))
    assert face.source == "box" and face.landmarks68 is not None
    left, top, right, bottom = face.bbox
    assert (left, top, right, bottom) == (150, 40, 300, 220)
    assert ((face.landmarks5 > [140, 30]) & (face.landmarks5 < [310, 230])).all()
    with pytest.raises(BadInputError, match="smaller than 8 pixels"):
        workflow.place_face_in_box(case, label, (-50, -50, -10, -10))


@pytest.mark.slow
def test_components_check_leaves_out_a_reference_placed_by_hand(demo, dlib_model):
    """A face placed by hand has no 68 landmarks, which ``components`` needs: as a
    reference face it is left out (and not counted), not a crash of the check."""
    from core.metrics.pair_faithfulness import FaithfulnessSettings

    k2 = demo.face("K2")
    demo.correct_face("K2", k2.landmarks5)  # by hand: no 68-point landmarks now
    assert demo.face("K2").landmarks68 is None
    checked = workflow.check_faithfulness(
        demo, "Q1", "K1", "components", dlib_model,
        settings=FaithfulnessSettings(grid=4, step_cells=8), reference_count=2,
    )  # fmt: skip
    hashes = {demo.exhibit("K2").sha256}
    assert not hashes & set(checked.result.references)


def test_an_undone_correction_brings_back_the_explained_comparison(case, model):
    """Undo makes the earlier record current again, not a copy: the comparison
    and its explanations are current again, not left behind as superseded."""
    comparison = workflow.compare(case, "Q1", "K1", model)
    workflow.explain(case, "Q1", "K1", "gradient", model)
    before = case.face("K1").id
    case.correct_face("K1", POINTS + 4)
    assert workflow.explained_comparisons(case, "K1") == []
    case.revert_face("K1", before)
    assert case.face("K1").id == before
    assert [c.id for c in workflow.explained_comparisons(case, "K1")] == [comparison.id]
    assert workflow.compare(case, "Q1", "K1", model).id == comparison.id
    assert workflow.earlier_results(case, "Q1", "K1") == []
    again = workflow.explain(case, "Q1", "K1", "gradient", model)
    assert again.from_cache and again.stored.comparison_id == comparison.id
    assert not case.verify().problems


def test_a_new_detection_restarts_the_history(case):
    """After a re-detection the label may be another face: no record from before
    it is made current again (an old undo fails in one line)."""
    old = case.face("K1#1").id
    case.reject_face("K1#1")
    case.set_faces("K1", [detected(2.0), detected(60.0, 0.1)], detector="hog")
    assert old not in [f.id for f in case.face_history("K1#1")]
    with pytest.raises(BadInputError, match="since its exhibit was last detected"):
        case.revert_face("K1#1", old)


def test_the_report_says_how_a_face_was_replaced(case, model):
    """A comparison on a face later rejected is not "later corrected"."""
    from core.report.content import superseded_faces

    comparison = workflow.compare(case, "Q1", "K1#1", model)
    case.reject_face("K1#1", "the mission patch")
    (replaced,) = superseded_faces(case, comparison)
    assert replaced.how == "rejected as not a face (the mission patch)"
    assert replaced.entry_seq == case.audit_log()[-1].seq


def test_a_check_whose_reference_face_was_rejected_is_stale(case, model, tmp_path):
    """The verdict rests on the other faces it was compared with: once one of
    them is rejected it is not shown as current; restored, it is again."""
    from core.metrics.pair_faithfulness import FaithfulnessSettings

    rng = np.random.default_rng(1)
    other = tmp_path / "other.png"
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(other)
    case.add_exhibits([other], "gallery")
    case.set_faces("K2", [detected(4.0)], detector="hog")
    checked = workflow.check_faithfulness(
        case, "Q1", "K1", "gradient", model,
        settings=FaithfulnessSettings(grid=4, step_cells=2), reference_count=1,
    )  # fmt: skip
    explanation_id = checked.explanation.stored.id
    assert workflow.stored_faithfulness(case, explanation_id) is not None
    case.reject_face("K2", "not a face")
    assert workflow.stored_faithfulness(case, explanation_id) is None
    case.restore_face("K2")
    assert workflow.stored_faithfulness(case, explanation_id) is not None


def test_mirrored_or_collinear_points_are_refused(case):
    """Five points with the eyes swapped (a mirror image) or the nose on the eye
    line would align a face that is not there: one line, nothing stored."""
    before = case.face("Q1").id
    mirrored = POINTS[[2, 3, 0, 1, 4]]
    in_a_line = POINTS.copy()
    in_a_line[4] = [110, 80]
    for points in (mirrored, in_a_line):
        with pytest.raises(BadInputError, match="mirrored or in a line"):
            case.correct_face("Q1", points)
    assert case.face("Q1").id == before


def test_a_new_detection_keeps_a_rejected_false_detection_rejected(case):
    """Detecting the exhibit again finds the patch again: it is rejected again at
    once with the examiner's reason (audited), and can still be restored."""
    case.reject_face("K1#1", "the mission patch")
    case.set_faces("K1", [detected(2.0), detected(61.0, 0.1)], detector="hog")
    assert labels(case.faces("K1")) == ["K1"]
    assert labels(case.rejected_faces("K1")) == ["K1#1"]
    entry = case.audit_log()[-1]
    assert entry.action == "faces.reject"
    assert entry.details["reason"] == (
        "the mission patch (rejected before it was found again)"
    )
    assert case.restore_face("K1#1").source == "hog"
    assert not case.verify().problems


def test_a_detection_recorded_before_0_6_also_restarts_the_history(case):
    """Entries of older versions have no "stamp": the rows stamped just before
    the entry start the history, so no record from an earlier detection (maybe
    another person's face under the same label) is made current again."""
    from core.case.records import now

    first = case.face("K1").id
    exhibit = case.exhibit("K1")
    moved = detected(40.0)
    details = {"exhibit": "K1", "detector": "hog", "faces": [moved.to_dict()]}
    with case._change("faces.detect", details) as db:  # as 0.5 wrote it
        db.execute(
            "UPDATE faces SET superseded = 1 WHERE exhibit_id = ?", (exhibit.id,)
        )
        case._insert_face(db, exhibit.id, 0, moved, now())
    assert first not in [f.id for f in case.face_history("K1")]
    with pytest.raises(BadInputError, match="since its exhibit was last detected"):
        case.revert_face("K1", first)


def test_a_withdrawn_placement_does_not_reject_the_face_found_later(case):
    """Undoing a face placed by hand is recorded as a rejection; a detection
    that then finds the real face on that spot must not reject it."""
    label = case.next_face_label("Q1")  # Q1#1
    case.correct_face(label, POINTS + 40)
    case.reject_face(label, "withdrawn: placing it by hand was undone")
    case.set_faces("Q1", [detected(), detected(40.0, 0.2)], detector="cnn")
    assert labels(case.faces("Q1")) == ["Q1", "Q1#1"]
    assert case.rejected_faces("Q1") == []


def test_restore_and_the_reason_follow_the_rejection_shown(case):
    """After undos an older rejection can be current again: restore brings back
    the record from before *that* rejection, and its own reason is shown."""
    first = case.face("K1").id
    first_rejection = case.reject_face("K1", "first reason")
    case.restore_face("K1")
    corrected = case.correct_face("K1", POINTS + 2)
    case.reject_face("K1", "second reason")
    case.revert_face("K1", corrected.id)  # undo the second rejection
    case.revert_face("K1", first)  # undo the correction
    case.revert_face("K1", first_rejection.id)  # undo the restore
    assert case.rejection_reasons() == {"K1": "first reason"}
    assert case.restore_face("K1").id == first
    assert not case.verify().problems


def test_a_rejection_found_again_twice_keeps_one_note(case):
    case.reject_face("K1#1", "the patch")
    for _ in range(3):
        case.set_faces("K1", [detected(2.0), detected(60.0, 0.1)], detector="hog")
    assert case.rejection_reasons() == {
        "K1#1": "the patch (rejected before it was found again)"
    }
