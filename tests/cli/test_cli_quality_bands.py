"""``xfr eval verification --by-quality`` and ``xfr calibrate --by-quality`` on a
tiny score set whose EER is worked out by hand (no model, no detector: the images'
embeddings and quality figures are given)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import core.cli.calibration as calibrate_cli
import core.cli.evaluate as evaluate_cli
import core.evaluation as evaluation
from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.models.base import Threshold
from core.quality import FaceQuality, QualityValue, summarise

# image -> (embedding angle in degrees, inter-eye distance in px)
FACES = {"a1": (0, 40.0), "a2": (60, 12.0), "b1": (100, 40.0), "b2": (110, 40.0)}


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch) -> Path:
    """Two people, two photos each: genuine a1-a2 (cos 60° = 0.5, worse IED 12)
    and b1-b2 (cos 10° = 0.985, IED 40); impostor a1-b1 (cos 100°), a1-b2
    (cos 110°), both IED 40, and a2-b1 (cos 40° = 0.766), a2-b2 (cos 50° =
    0.643), both IED 12."""
    for name in FACES:
        folder = tmp_path / "identities" / name[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(b"")

    def embed_images(images, model, **options):
        result = evaluation.EmbeddedImages({}, [])
        for path in images:
            angle, ied = FACES[path.stem]
            rad = math.radians(angle)
            result.embeddings[path] = np.array([math.cos(rad), math.sin(rad)])
            values = (QualityValue("inter_eye_distance", "inter-eye distance",
                                   ied, "px"),)  # fmt: skip
            result.qualities[path] = FaceQuality(path.name, values, summarise(values))
        return result

    model = SimpleNamespace(
        model_id="tiny", weights_sha256="c" * 64,
        threshold=Threshold("cosine", 0.6, "test"),
    )  # fmt: skip
    monkeypatch.setattr(evaluation, "embed_images", embed_images)
    monkeypatch.setattr(evaluate_cli, "load_model_from_args", lambda args: model)
    monkeypatch.setattr(calibrate_cli, "load_model_from_args", lambda args: model)
    return tmp_path / "identities"


def test_eval_verification_by_quality_band(tiny, capsys):
    argv = ["eval", "verification", "--data", str(tiny),
            "--by-quality", "inter_eye_distance", "--bands", "20"]  # fmt: skip
    assert main([*argv, "--json"]) == EXIT_OK
    bands = json.loads(capsys.readouterr().out)["by_quality"]
    low, high = bands["bands"]
    # below 20 px: genuine 0.5, impostor 0.766 and 0.643.  Thresholds tried: 0.5
    # (FAR 1, FRR 0), 0.643 (both impostors accepted, the genuine rejected: FAR 1,
    # FRR 1, the closest), 0.766 (1/2, 1), inf (0, 1): EER 100 %; AUC 0
    assert (low["label"], low["genuine_pairs"], low["impostor_pairs"]) == (
        "below 20 px", 1, 2,
    )  # fmt: skip
    assert low["eer"] == 1.0 and low["roc_auc"] == 0.0
    assert low["eer_threshold"] == pytest.approx(math.cos(math.radians(50)))
    assert (high["genuine_pairs"], high["impostor_pairs"]) == (1, 2)
    assert high["eer"] == 0.0 and high["roc_auc"] == 1.0
    assert bands["measure"] == "inter_eye_distance" and bands["edges"] == [20.0]

    assert main(argv) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(
        "by quality band of inter-eye distance (the worse of the two faces of a "
        "pair; 0 pairs without the figure):"
    )
    assert lines[start + 1 : start + 3] == [
        "  below 20 px: 1 genuine + 2 impostor pairs; EER 100.00 %, ROC AUC 0.0000",
        "  20 px and above: 1 genuine + 2 impostor pairs; EER 0.00 %, ROC AUC 1.0000",
    ]


def test_band_options_fail_in_one_line(tiny, capsys):
    for argv, words in (
        (["--bands", "20"], "--bands needs --by-quality MEASURE"),
        (["--by-quality", "exposure"], "has no worse side"),
        (["--by-quality", "inter_eye_distance", "--bands", "30,20"], "must increase"),
    ):
        code = main(["eval", "verification", "--data", str(tiny), *argv])
        err = capsys.readouterr().err.strip()
        assert code == EXIT_BAD_INPUT and words in err and "\n" not in err


def test_calibrate_records_the_quality_and_refuses_small_bands(tiny, tmp_path, capsys):
    out = tmp_path / "cal.json"
    argv = ["calibrate", "--data", str(tiny), "--out", str(out)]
    assert main(argv) == EXIT_OK
    assert "image conditions: 4 reference faces measured" in capsys.readouterr().out
    quality = json.loads(out.read_text())["quality"]
    ied = quality["measures"][0]
    assert quality["faces"] == 4 and ied["measure"] == "inter_eye_distance"
    assert (ied["minimum"], ied["p50"], ied["maximum"]) == (12.0, 40.0, 40.0)

    banded = tmp_path / "banded.json"
    code = main([*argv[:-1], str(banded), "--by-quality", "inter_eye_distance",
                 "--bands", "20"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and "\n" not in err and not banded.exists()
    assert (
        "quality band inter_eye_distance below 20 px has 1 genuine and 2 impostor "
        "pairs; a band needs at least 20 of each"
    ) in err
    assert str(tiny) in err


@pytest.mark.slow
@pytest.mark.dlib
def test_by_quality_measures_real_faces(tmp_path, astronaut_rgb, capsys):
    """The real pipeline: faces detected and measured; a pair with a half-size
    copy falls in the band of that copy's (half) inter-eye distance."""
    from PIL import Image

    from core.faces.detect import find_faces
    from core.imageio import load_image
    from core.quality import FaceInput, get

    full = Image.fromarray(astronaut_rgb)
    half = full.resize((full.width // 2, full.height // 2), Image.Resampling.LANCZOS)
    for person, images in (("a", (full, half)), ("b", (full.transpose(0), half))):
        (tmp_path / person).mkdir()
        for number, image in enumerate(images):
            image.save(tmp_path / person / f"{number}.png")
    found = find_faces(load_image(tmp_path / "a" / "0.png"))[0]
    ied = (
        get("inter_eye_distance")
        .measure(FaceInput(astronaut_rgb, found.bbox, found.landmarks5))
        .value
    )
    assert ied is not None
    edge = f"{0.75 * ied:.1f}"  # between the half and the full size
    code = main(["eval", "verification", "--data", str(tmp_path), "--device", "cpu",
                 "--by-quality", "inter_eye_distance", "--bands", edge,
                 "--json"])  # fmt: skip
    assert code == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    bands = report["by_quality"]
    assert bands["pairs_without_quality"] == 0
    low, high = bands["bands"]
    # genuine: full with half, twice; impostor: full-full once, three with a half
    assert (low["genuine_pairs"], low["impostor_pairs"]) == (2, 3)
    assert (high["genuine_pairs"], high["impostor_pairs"]) == (0, 1)
