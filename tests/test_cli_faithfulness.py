"""``xfr explain --faithfulness``, ``xfr case explain --faithfulness`` and
``xfr eval faithfulness --metric pair-specificity`` on bundled photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import EXIT_BAD_INPUT, main
from core.metrics.pair_faithfulness import VERDICTS

FIGURES = (
    "verdict",
    "flip_fraction",
    "random_percentile",
    "vs_prior",
    "vs_other_pairs",
)
CHEAP = ["--faithfulness-grid", "4"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> dict[str, Path]:
    """A pair of the astronaut, and a folder of references: Grace Hopper twice
    (as two other faces), a photo without a face and a file that is no image."""
    folder = tmp_path_factory.mktemp("faithfulness")
    files = {"probe": folder / "astronaut.png", "gallery": folder / "mirrored.jpg"}
    Image.fromarray(astronaut_rgb).save(files["probe"])
    Image.fromarray(astronaut_rgb[:, ::-1]).save(files["gallery"], quality=85)
    references = folder / "references"
    references.mkdir()
    hopper = Image.open(grace_hopper_path).convert("RGB")
    hopper.save(references / "hopper.jpg", quality=90)
    hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(references / "hopper2.png")
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(references / "blank.png")
    (references / "notes.txt").write_text("not a photo")
    files["references"] = references
    return files


def _check_figures(faithfulness: dict, kinds: set[str]) -> None:
    assert set(faithfulness) == {"probe", "gallery"}
    for side in faithfulness.values():
        assert set(side) == kinds
        for figures in side.values():
            assert set(FIGURES) <= set(figures)
            assert figures["verdict"] in VERDICTS


def test_explain_with_faithfulness_json(capsys, photos, tmp_path):
    code, out, err = run(
        capsys,
        "explain",
        str(photos["probe"]),
        str(photos["gallery"]),
        "--method",
        "prior",
        "--faithfulness",
        "--references",
        str(photos["references"]),
        *CHEAP,
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    _check_figures(result["faithfulness"], {"similarity", "combined"})
    check = result["faithfulness_check"]
    assert len(check["references"]) == 2  # the two readable photos with a face
    assert check["settings"]["grid"] == 4 and check["settings"]["random_orders"] == 30
    for side in result["faithfulness"].values():
        for figures in side.values():
            assert figures["verdict"] != "pair-specific"  # a control never is
            assert figures["vs_prior"]["better"] is False
            assert figures["vs_other_pairs"]["maps"] == 2
    notes = [line for line in err.splitlines() if line.startswith("xfr: note:")]
    assert len(notes) == 2
    assert any("blank.png" in n and "no face" in n for n in notes)
    assert any("notes.txt" in n for n in notes)
    stored = json.loads((tmp_path / "out" / "prior" / "faithfulness.json").read_text())
    assert stored["faithfulness"] == result["faithfulness"]


def test_explain_with_faithfulness_text_says_what_was_not_measured(
    capsys, photos, tmp_path
):
    code, out, err = run(
        capsys,
        "explain",
        str(photos["probe"]),
        str(photos["gallery"]),
        "--method",
        "gradient",
        "--faithfulness",
        *CHEAP,
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    assert "probe similarity map: " in out and "gallery combined map: " in out
    assert "Pair specificity was not measured" in out
    assert "pair-specific." not in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--faithfulness-orders", "10"], "at least 30 random orders"),
        (["--faithfulness-grid", "1"], "grid must lie in 2..50"),
        (["--references", "MISSING"], "folder not found"),
        (["--references", "FILE"], "needs a folder of photos"),
    ],
)
def test_explain_faithfulness_bad_input_is_one_line(
    capsys, photos, tmp_path, options, message
):
    options = [
        str(tmp_path / "missing")
        if o == "MISSING"
        else str(photos["probe"])
        if o == "FILE"
        else o
        for o in options
    ]
    code, _out, err = run(
        capsys,
        "explain",
        str(photos["probe"]),
        str(photos["gallery"]),
        "--method",
        "prior",
        "--faithfulness",
        *options,
        "--out",
        str(tmp_path / "out"),
    )
    assert code == EXIT_BAD_INPUT
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before any work


# ---- in a case --------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    from core.case.demo import create_demo_case
    from core.models.base import DEFAULT_MODEL_ID, registry

    folder = tmp_path_factory.mktemp("case") / "demo.xfrcase"
    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    with create_demo_case(folder, model=model):
        pass
    return folder


@pytest.mark.slow
def test_case_explain_with_faithfulness_is_stored_and_reused(
    capsys, demo_folder, tmp_path
):
    folder = tmp_path / "demo.xfrcase"
    shutil.copytree(demo_folder, folder)
    argv = [
        "case", "explain", str(folder), "--probe", "Q1", "--gallery", "K2",
        "--method", "prior", "--faithfulness", *CHEAP,
    ]  # fmt: skip
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    payload = json.loads(out)
    _check_figures(payload["faithfulness"], {"similarity", "combined"})
    assert payload["faithfulness_from_cache"] is False
    # the case's faces on other exhibits: K1's two faces (Q1 and K2 are the pair's)
    references = payload["faithfulness_check"]["references"]
    assert len(references) == 2 and len(set(references)) == 1
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "faithfulness (stored check reused):" in out
    assert "probe similarity map: " in out
    assert "Pair specificity was not measured" in out
    code, out, err = run(capsys, "case", "verify", str(folder))
    assert code == 0, err
    code, out, err = run(capsys, *argv, "--references", "-1")
    assert code == EXIT_BAD_INPUT and len(err.strip().splitlines()) == 1
    assert "--references needs 0 or more" in err
