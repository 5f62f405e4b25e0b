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


@pytest.mark.slow
@pytest.mark.dlib
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


@pytest.mark.slow
@pytest.mark.dlib
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


@pytest.mark.slow
@pytest.mark.dlib
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--faithfulness-orders", "10"], "random orders must lie in 30..1000"),
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
def demo_folder(tmp_path_factory, dlib_model) -> Path:
    from core.case.demo import create_demo_case

    folder = tmp_path_factory.mktemp("case") / "demo.xfrcase"
    with create_demo_case(folder, model=dlib_model):
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
    # one face of each other exhibit: K1 (Q1 and K2 are the pair's); K1's second
    # face is on the same photo and would count it twice
    references = payload["faithfulness_check"]["references"]
    assert len(references) == 1
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


# ---- xfr eval faithfulness --metric pair-specificity ---------------------------------
@pytest.fixture(scope="module")
def three_people(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    """Three identity folders of two photos each (the third a re-toned, mirrored
    astronaut: another identity as far as the data set's labels go)."""
    root = tmp_path_factory.mktemp("people")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    toned = np.clip(astronaut_rgb.astype(int) * 0.7 + 40, 0, 255)[:, ::-1]
    for name, rgb in (("collins", astronaut_rgb), ("hopper", hopper), ("third", toned)):
        (root / name).mkdir()
        for number, variant in enumerate([rgb, rgb[:, ::-1]]):
            Image.fromarray(variant.astype(np.uint8)).save(
                root / name / f"{number}.jpg"
            )
    return root


def test_references_are_other_pairs_never_the_pairs_own_faces():
    from core.explain import FacePair, FaceView
    from core.metrics.data_set.pair_specificity import reference_choice

    def view(side: str, person: str, number: int) -> FaceView:
        return FaceView(
            side, np.zeros((2, 2, 3), np.uint8), None, (2, 2),
            f"{person}{number}".ljust(64, "0"), path=f"/data/{person}/{number}.jpg",
        )  # fmt: skip

    people = ["ann", "bob", "cy", "dee", "eve"]
    pairs = [
        FacePair(view("probe", a, 1), view("gallery", b, 2))
        for a in people
        for b in people
    ]

    def names(index: int, seed: int) -> list[str]:
        return [v.image_sha256 for v in reference_choice(pairs, index, 3, seed)]

    for index, pair in enumerate(pairs):
        chosen = reference_choice(pairs, index, 3, seed=4)
        assert len(chosen) == 3
        assert names(index, 4) == [v.image_sha256 for v in chosen]  # seeded
        own = {Path(v.path).parent.name for v in pair.sides}
        assert not own & {Path(v.path).parent.name for v in chosen}
    assert names(0, 4) != names(0, 5)


@pytest.mark.dlib
@pytest.mark.slow
def test_eval_pair_specificity_writes_the_table(capsys, three_people, tmp_path):
    out = tmp_path / "tables"
    code, text, err = run(
        capsys, "eval", "faithfulness", "--data", str(three_people),
        "--methods", "prior", "--metric", "pair-specificity", "--references", "2",
        "--max-pairs", "2", *CHEAP, "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    table = json.loads(text)
    assert table["metric"] == "pair-specificity" and table["pairs_used"] == 2
    rows = {row["map"]: row for row in table["rows"]}
    assert set(rows) == {"similarity", "combined"}
    for row in rows.values():
        assert row["method"] == "prior" and row["maps"] == 4
        assert row["pair_specific"] == 0.0  # the control never is
        assert row["beats_prior"] == 0.0
        assert row["generic"] + row["not_shown"] == pytest.approx(1.0)
        assert 0 <= row["median_random_percentile"] <= 100
        # the references used, not asked for: 2 pairs leave 1 other pair's face
        assert row["references"] == 1.0 and row["random_orders"] == 30
    curve = table["curves"]["prior/similarity"]
    assert curve["x"][0] == 0.0 and curve["x"][-1] == 1.0
    assert len(curve["margin"]) == len(curve["x"]) == len(curve["random_margin"])
    for name in ("table.json", "table.md", "prior_similarity.csv"):
        assert (out / name).is_file()
    assert "pair_specific" in (out / "table.md").read_text()


def test_eval_pair_specificity_bad_references_is_one_line(capsys, three_people):
    code, _text, err = run(
        capsys, "eval", "faithfulness", "--data", str(three_people),
        "--methods", "prior", "--metric", "pair-specificity", "--references", "-2",
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT and len(err.strip().splitlines()) == 1
    assert "--references needs 0 or more" in err
