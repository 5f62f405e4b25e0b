"""`xfr` command line: models, layers, verify (JSON + exit codes) and eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import EXIT_BAD_INPUT, main
from core.errors import BadInputError
from core.evaluation import equal_error_rate, lfw_pairs, roc_auc


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verify(capsys, first: Path, second: Path, *options: str) -> tuple[int, str, str]:
    return run(capsys, "verify", str(first), str(second), *options)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> dict[str, Path]:
    """Two people; the astronaut also mirrored and re-compressed (same person)."""
    folder = tmp_path_factory.mktemp("cli")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    files = {
        "astronaut": folder / "astronaut.png",
        "astronaut_mirrored": folder / "astronaut_mirrored.jpg",
        "hopper": folder / "hopper.jpg",
    }
    Image.fromarray(astronaut_rgb).save(files["astronaut"])
    Image.fromarray(astronaut_rgb[:, ::-1]).save(
        files["astronaut_mirrored"], quality=80
    )
    Image.fromarray(hopper).save(files["hopper"], quality=90)
    return files


def test_models_lists_the_default_model(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    assert "dlib-resnet-v1" in [m["model_id"] for m in json.loads(out)]


def test_layers_lists_taps_shallow_to_deep(capsys):
    code, out, _ = run(capsys, "layers", "--model", "dlib-resnet-v1", "--json")
    payload = json.loads(out)
    names = [layer["name"] for layer in payload["layers"]]
    assert code == 0 and names[0] == "stem" and names[-1] == "embedding"
    assert len(payload["weights_sha256"]) == 64


@pytest.mark.slow
@pytest.mark.dlib
def test_verify_same_person_accepts_with_full_json(capsys, photo_files):
    code, out, _ = verify(
        capsys,
        photo_files["astronaut"],
        photo_files["astronaut_mirrored"],
        "--json",
        "--device",
        "cpu",
    )
    assert code == 0
    result = json.loads(out)
    assert result["decision"] == "accept"
    for side, name in (("probe", "astronaut"), ("gallery", "astronaut_mirrored")):
        info = result[side]
        assert info["path"] == str(photo_files[name])
        assert len(info["sha256"]) == 64
        assert len(info["face"]["bbox"]) == 4
        assert np.asarray(info["face"]["landmarks5"]).shape == (5, 2)
    assert result["model"]["id"] == "dlib-resnet-v1"
    assert result["model"]["embedding_dim"] == 128
    assert len(result["model"]["weights_sha256"]) == 64
    assert result["threshold"] == {
        "metric": "euclidean",
        "value": 0.6,
        "source": result["threshold"]["source"],
    }
    assert result["euclidean_distance"] < 0.6
    assert 0.0 < result["cosine_similarity"] <= 1.0


@pytest.mark.slow
@pytest.mark.dlib
def test_manual_landmarks_give_the_same_result(capsys, photo_files):
    args = [
        "verify",
        str(photo_files["astronaut"]),
        str(photo_files["hopper"]),
        "--json",
    ]
    _, out, _ = run(capsys, *args)
    automatic = json.loads(out)
    points = automatic["probe"]["face"]["landmarks5"]
    text = ",".join(f"{x},{y}" for x, y in points)
    code, out, _ = run(capsys, *args, "--probe-landmarks", text)
    manual = json.loads(out)
    assert code == 0 and manual["probe"]["face"]["source"] == "manual"
    assert manual["euclidean_distance"] == pytest.approx(
        automatic["euclidean_distance"], abs=1e-6
    )
    assert np.allclose(
        manual["probe"]["chip_transform"]["chip_to_image"],
        automatic["probe"]["chip_transform"]["chip_to_image"],
    )
    code, _, err = run(capsys, *args, "--probe-landmarks", "1,2,3")
    assert code == EXIT_BAD_INPUT and "10 numbers" in err


@pytest.mark.dlib
def test_verify_different_people_rejects(capsys, photo_files):
    code, out, _ = verify(capsys, photo_files["astronaut"], photo_files["hopper"])
    assert code == 0
    assert "REJECT" in out and "Euclidean distance" in out


@pytest.mark.slow
@pytest.mark.dlib
def test_verify_examiner_threshold_is_applied_and_labelled(capsys, photo_files):
    # A cosine threshold of -1 accepts anything: the decision must follow it.
    code, out, _ = verify(
        capsys,
        photo_files["astronaut"],
        photo_files["hopper"],
        "--metric",
        "cosine",
        "--threshold",
        "-1",
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["decision"] == "accept"
    assert result["threshold"]["source"] == "set by the examiner"


def _bad_files(folder: Path, photo: Path) -> dict[str, Path]:
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[:3000])
    text = folder / "notes.jpg"
    text.write_text("this is not an image")
    noise = folder / "no_face.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(noise)
    return {
        "missing": folder / "does_not_exist.jpg",
        "truncated": truncated,
        "not_an_image": text,
        "no_face": noise,
    }


@pytest.mark.dlib
@pytest.mark.parametrize("case", ["missing", "truncated", "not_an_image", "no_face"])
def test_verify_bad_input_exits_2_naming_the_file(capsys, tmp_path, photo_files, case):
    bad = _bad_files(tmp_path, photo_files["hopper"])[case]
    code, out, err = verify(capsys, photo_files["astronaut"], bad)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert bad.name in err and len(err.strip().splitlines()) == 1


def test_verify_unknown_model_exits_2(capsys, photo_files):
    code, _, err = verify(
        capsys,
        photo_files["astronaut"],
        photo_files["hopper"],
        "--model",
        "no-such-model",
    )
    assert code == EXIT_BAD_INPUT and "unknown model 'no-such-model'" in err


@pytest.mark.dlib
def test_face_index_out_of_range_is_bad_input(capsys, photo_files):
    code, _, err = verify(
        capsys,
        photo_files["astronaut"],
        photo_files["hopper"],
        "--face-index",
        "3",
    )
    assert code == EXIT_BAD_INPUT and "astronaut.png" in err


@pytest.mark.slow
def test_console_entry_point_runs_as_a_program():
    completed = subprocess.run(
        [sys.executable, "-m", "core.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0 and "XFR Desktop" in completed.stdout


# ---- evaluation -------------------------------------------------------------------
@pytest.fixture(scope="module")
def identity_folder(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    """Two identities, three photos each (photometric variants of the real photos)."""
    root = tmp_path_factory.mktemp("identities")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    for name, rgb in (("eileen_collins", astronaut_rgb), ("grace_hopper", hopper)):
        (root / name).mkdir()
        variants = [rgb, rgb[:, ::-1], np.clip(rgb.astype(int) * 0.8 + 20, 0, 255)]
        for number, variant in enumerate(variants):
            Image.fromarray(variant.astype(np.uint8)).save(
                root / name / f"{number}.jpg"
            )
    (root / "notes.txt").write_text("not a folder: ignored")
    return root


@pytest.mark.slow
@pytest.mark.dlib
def test_eval_verification_on_identity_folder(capsys, identity_folder):
    code, out, _ = run(
        capsys, "eval", "verification", "--data", str(identity_folder), "--json"
    )
    report = json.loads(out)
    assert code == 0
    assert report["genuine_pairs"] == 6  # 3 + 3 within-identity pairs
    assert report["impostor_pairs"] == 9  # fewer than 1000 exist: all of them
    assert report["pairs_evaluated"] == 15 and report["failures_to_detect"] == 0
    assert report["eer"] == 0.0 and report["roc_auc"] == 1.0
    assert report["accuracy_at_threshold"] == 1.0


@pytest.mark.slow
@pytest.mark.dlib
def test_eval_is_deterministic_for_a_seed(capsys, identity_folder):
    outputs = []
    for _ in range(2):
        _, out, _ = run(
            capsys,
            "eval",
            "verification",
            "--data",
            str(identity_folder),
            "--json",
            "--max-pairs",
            "4",
            "--seed",
            "5",
        )
        report = json.loads(out)
        outputs.append(
            (report["genuine_pairs"], report["impostor_pairs"], report["eer"])
        )
    assert outputs[0] == outputs[1] and sum(outputs[0][:2]) == 4


def test_eval_rejects_a_folder_without_identities(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "verification", "--data", str(tmp_path))
    assert code == EXIT_BAD_INPUT and str(tmp_path) in err


def test_lfw_pairs_protocol_is_parsed(tmp_path):
    images = tmp_path / "pairs-images"
    for name, number in (("Ann_A", 1), ("Ann_A", 2), ("Bob_B", 3)):
        (images / name).mkdir(parents=True, exist_ok=True)
        (images / name / f"{name}_{number:04d}.jpg").write_bytes(b"")
    (tmp_path / "pairs.txt").write_text("1\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t3\n")
    pairs = lfw_pairs(tmp_path / "pairs.txt")
    assert [p.genuine for p in pairs] == [True, False]
    assert pairs[0].second == images / "Ann_A" / "Ann_A_0002.jpg"
    assert pairs[1].second == images / "Bob_B" / "Bob_B_0003.jpg"
    (tmp_path / "bad.txt").write_text("1 1\nonly_two 1\n")
    with pytest.raises(BadInputError, match="line 2 is not 'name i j' or"):
        lfw_pairs(tmp_path / "bad.txt")


def test_roc_auc_and_eer_on_known_scores():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5  # a tie counts half
    assert roc_auc(np.array([2.0, 0.0]), np.array([1.0, 3.0])) == 0.25
    eer, threshold = equal_error_rate(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert eer == 0.0 and 2.0 < threshold <= 3.0
    eer, _ = equal_error_rate(np.array([1.0, 3.0]), np.array([2.0, 0.0]))
    assert eer == 0.5
