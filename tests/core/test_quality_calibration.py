"""Quality-aware calibration (issue 20 item 5): the reference faces' quality
distribution in the calibration file, cautions outside it, bands per quality."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import core.calibration as calibration_module
from core.calibration import (
    Calibration,
    band_label,
    band_measure,
    evidence_strength,
    fit_banded_calibration,
    fit_calibration,
    load_calibration,
    parse_bands,
    quality_cautions,
    quality_distribution,
    save_calibration,
    strength_of_evidence,
    worse_value,
)
from core.errors import BadInputError
from core.evaluation import figures_by_band
from core.quality import FaceQuality, QualityValue, summarise
from core.wording import CALIBRATION_CONDITIONS_NOT_RECORDED

SHA = "b" * 64


def face(ied: float, yaw: float = 0.0, sharpness: float = 0.05) -> FaceQuality:
    values = (
        QualityValue("inter_eye_distance", "inter-eye distance", ied, "px"),
        QualityValue("yaw", "yaw", yaw, "deg"),
        QualityValue("sharpness", "sharpness", sharpness, "ratio"),
    )
    return FaceQuality("face", values, summarise(values))


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    rng = np.random.default_rng(1)
    fitted = fit_calibration(
        rng.normal(0.9, 0.03, 200),
        rng.normal(0.6, 0.08, 200),
        model_id="test-model",
        model_sha256=SHA,
        reference="synthetic",
    )
    # reference faces: IED 41..141 px, |yaw| 0..50 deg
    faces = [face(41.0 + i, yaw=(-1) ** i * i / 2) for i in range(101)]
    return replace(fitted, quality=quality_distribution(faces, source="test"))


def test_distribution_is_written_and_read_back(calibration, tmp_path):
    recorded = calibration.quality
    assert recorded is not None and recorded.faces == 101
    ied = recorded.get("inter_eye_distance")
    assert ied is not None and ied.faces == 101
    assert (ied.minimum, ied.p5, ied.p50, ied.p95, ied.maximum) == (
        41.0, 46.0, 91.0, 136.0, 141.0,
    )  # fmt: skip
    yaw = recorded.get("yaw")
    assert yaw is not None and yaw.absolute and yaw.minimum == 0 and yaw.maximum == 50
    path = save_calibration(calibration, tmp_path / "cal.json")
    data = json.loads(path.read_text())
    assert data["format_version"] == 2 and data["quality"]["faces"] == 101
    assert load_calibration(path) == calibration


def test_no_caution_inside_the_range(calibration):
    for ied in (46.0, 91.0, 136.0):
        for yaw in (-25.0, 0.0, 47.5):
            assert quality_cautions(calibration, face(ied, yaw), face(91.0)) == ()


def test_cautions_exactly_outside_the_range(calibration):
    below_every = quality_cautions(calibration, face(18.0))
    assert below_every == (
        "The questioned face's inter-eye distance (18 px) is below every face the "
        "calibration was fitted on (smallest 41 px): the likelihood ratio is "
        "outside what this calibration covers.",
    )
    rare = quality_cautions(calibration, None, face(43.0))
    assert rare == (
        "The reference face's inter-eye distance (43 px) is lower than 95 % of the "
        "faces the calibration was fitted on (5th percentile 46 px): the likelihood "
        "ratio rests on few faces like it.",
    )
    above = quality_cautions(calibration, face(200.0, yaw=-60.0))
    assert len(above) == 2
    assert "(200 px) is above every face" in above[0] and "largest 141 px" in above[0]
    assert "better than any it covers" in above[0]  # the better side, said so
    assert "outside what this calibration covers" in below_every[0]
    assert above[1].startswith("The questioned face's yaw (60° either way) is above")
    # on the better side (a larger face) only beyond every reference face counts
    assert quality_cautions(calibration, face(139.0)) == ()
    # on the worse side (a more turned head) the rare region counts too
    (turned,) = quality_cautions(calibration, face(91.0, yaw=49.0))
    assert "yaw (49° either way) is higher than 95 %" in turned


def test_old_files_load_and_say_the_conditions_are_not_recorded(calibration, tmp_path):
    data = calibration.to_dict()
    data["format_version"] = 1
    del data["quality"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    loaded = load_calibration(old)
    assert loaded.quality is None and loaded.lr(0.8) == calibration.lr(0.8)
    assert quality_cautions(loaded, face(91.0)) == (
        CALIBRATION_CONDITIONS_NOT_RECORDED,
    )
    data["format_version"] = 3
    old.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match="unsupported format_version 3"):
        load_calibration(old)


def _banded_scores(n: int = 30):
    rng = np.random.default_rng(2)
    # small faces: poorer separation than large ones
    genuine = np.concatenate([rng.normal(0.7, 0.1, n), rng.normal(0.9, 0.03, n)])
    impostor = np.concatenate([rng.normal(0.5, 0.1, n), rng.normal(0.5, 0.1, n)])
    values = [15.0] * n + [40.0] * n
    return genuine, values, impostor, list(values)


def test_band_fitting_refuses_too_small_bands():
    genuine, values, impostor, impostor_values = _banded_scores(30)
    with pytest.raises(BadInputError) as caught:
        fit_banded_calibration(
            genuine, values, impostor, impostor_values,
            measure="inter_eye_distance", unit="px", edges=(16.0, 24.0),
            model_id="m", model_sha256=SHA, reference="r",
        )  # fmt: skip
    assert str(caught.value).startswith(
        "quality band inter_eye_distance 16-24 px has 0 genuine and 0 impostor "
        "pairs; a band needs at least 20 of each"
    )


def test_banded_calibration_round_trip_and_band_of_the_worse_face(
    calibration, tmp_path, monkeypatch
):
    genuine, values, impostor, impostor_values = _banded_scores(30)
    banded = fit_banded_calibration(
        genuine, values, impostor, impostor_values,
        measure="inter_eye_distance", unit="px", edges=(24.0,),
        model_id="test-model", model_sha256=SHA, reference="r",
        quality=calibration.quality,
    )  # fmt: skip
    assert banded.bands is not None and banded.n_genuine == 60
    low, high = banded.bands.bands
    assert (low.label, high.label) == ("below 24 px", "24 px and above")
    assert low.calibration.n_genuine == 30 and high.calibration.n_impostor == 30
    path = save_calibration(banded, tmp_path / "banded.json")
    loaded = load_calibration(path)
    assert loaded == banded
    # the worse face decides: one small face puts the pair in the low band
    applied, band = loaded.for_faces(face(60.0), face(20.0))
    assert band == low and applied.lr(0.85) == low.calibration.lr(0.85)
    assert loaded.for_faces(face(60.0), face(30.0))[1] == high
    assert loaded.for_faces(None, None) == (loaded, None)
    # one face unmeasured: the fit over all bands, never the known face's band
    assert loaded.for_faces(None, face(60.0)) == (loaded, None)
    assert loaded.for_faces(face(20.0), None) == (loaded, None)
    assert low.calibration.lr(0.85) != high.calibration.lr(0.85)

    monkeypatch.setattr(calibration_module, "default_calibration_path", lambda _: path)
    strength = evidence_strength(
        0.85, "test-model", SHA, questioned=face(20.0), reference=face(60.0)
    )
    assert strength is not None and strength.band == "inter_eye_distance below 24 px"
    assert strength.likelihood_ratio == pytest.approx(low.calibration.lr(0.85))
    assert "quality band inter_eye_distance below 24 px" in strength.reference
    assert len(strength.cautions) == 1 and "(20 px)" in strength.cautions[0]
    # without the faces: the calibration over all bands
    assert strength_of_evidence(0.85, "test-model", SHA) == (
        banded.lr(0.85),
        banded.verbal(0.85),
        "r, 60 genuine + 60 impostor pairs, Cllr " + f"{banded.cllr:.3f}",
    )


def test_band_options_are_checked():
    assert parse_bands(None, "inter_eye_distance") == (16.0, 24.0, 32.0, 48.0)
    assert parse_bands("16, 24,48", "inter_eye_distance") == (16.0, 24.0, 48.0)
    for bad, words in (
        ("16,x", "not a list of numbers"),
        ("24,16", "must increase"),
        (",", "no finite edge"),
    ):
        with pytest.raises(BadInputError, match=words):
            parse_bands(bad, "inter_eye_distance")
    with pytest.raises(BadInputError, match="needs --bands"):
        parse_bands(None, "sharpness")
    with pytest.raises(BadInputError, match="no worse side"):
        band_measure("exposure")
    with pytest.raises(BadInputError, match="unknown quality measure 'ied'"):
        band_measure("ied")
    assert worse_value("inter_eye_distance", [30.0, None, 20.0]) == 20.0
    assert worse_value("yaw", [5.0, 40.0]) == 40.0  # figures already absolute
    assert worse_value("truncation", [None]) is None
    assert band_label(None, 16.0, "px") == "below 16 px"
    assert band_label(0.01, 0.02, "ratio") == "0.01-0.02"


def test_figures_by_band_by_hand():
    # below 20: genuine 0.9, 0.5; impostor 0.6, 0.1.  At threshold 0.6 FAR = 1/2
    # (0.6 accepted) and FRR = 1/2 (0.5 rejected): EER 50 %; AUC 3 of 4 = 0.75.
    # 20 and above: genuine 0.8, 0.7 above impostor 0.3: EER 0, AUC 1.
    report = figures_by_band(
        [0.9, 0.5, 0.8, 0.7, 0.95], [10.0, 15.0, 30.0, 20.0, None],
        [0.6, 0.1, 0.3], [12.0, 19.9, 40.0],
        measure="inter_eye_distance", name="inter-eye distance", unit="px",
        edges=(20.0,),
    )  # fmt: skip
    low, high = report.bands
    assert (low.genuine_pairs, low.impostor_pairs) == (2, 2)
    assert low.eer == 0.5 and low.eer_threshold == 0.6 and low.roc_auc == 0.75
    assert (high.genuine_pairs, high.impostor_pairs) == (2, 1)
    assert high.eer == 0.0 and high.roc_auc == 1.0
    assert report.pairs_without_quality == 1
    assert report.lines()[1:] == [
        "  below 20 px: 2 genuine + 2 impostor pairs; EER 50.00 %, ROC AUC 0.7500",
        "  20 px and above: 2 genuine + 1 impostor pairs; EER 0.00 %, ROC AUC 1.0000",
    ]
    empty = figures_by_band(
        [0.9], [30.0], [0.2], [30.0], measure="inter_eye_distance",
        name="inter-eye distance", unit="px", edges=(20.0,),
    )  # fmt: skip
    assert empty.bands[0].eer is None
    assert empty.bands[0].line().endswith("EER and AUC need pairs of both kinds")


def test_the_shipped_calibration_records_its_reference_faces():
    shipped = load_calibration(
        calibration_module.default_calibration_path("dlib-resnet-v1")
    )
    recorded = shipped.quality
    assert recorded is not None and recorded.faces == 2636  # 2646 less 10 no-face
    ied = recorded.get("inter_eye_distance")
    assert ied is not None and 30 < ied.p5 < ied.p50 < ied.p95 < 50
    assert shipped.bands is None
    assert quality_cautions(shipped, face(ied.p50, sharpness=0.02)) == ()
    (caution,) = quality_cautions(shipped, face(10.0, sharpness=0.02))
    assert caution.startswith(
        "The questioned face's inter-eye distance (10 px) is below every face"
    )


def test_a_case_made_again_at_the_same_path_gets_its_own_faces_quality(
    tmp_path, astronaut_rgb
):
    """The session's quality cache is keyed by what quality depends on (the
    evidence and the face's geometry), not by record ids a new case reuses."""
    import shutil

    from PIL import Image

    from core.case import workflow
    from core.case.store import Case
    from core.faces.detect import Face

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(photo)
    points = np.array(
        [[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]]
    )
    figures = []
    for scale in (1.0, 0.5):
        if (tmp_path / "case").exists():
            shutil.rmtree(tmp_path / "case")
        with Case.create(tmp_path / "case", "C", "A") as case:
            case.add_exhibits([photo], "probe")
            centre = points.mean(axis=0)
            scaled = centre + (points - centre) * scale
            left, top = scaled.min(axis=0) - 20
            right, bottom = scaled.max(axis=0) + 20
            face = Face((left, top, right, bottom), scaled, None, 1.0, "manual")
            (recorded,) = case.set_faces("Q1", [face])
            quality = workflow.face_record_quality(case, recorded)
            assert not isinstance(quality, str)
            figures.append(quality.value("inter_eye_distance"))
    assert figures[1] == pytest.approx(figures[0] / 2, rel=0.02)
