"""The ``gaussian_blur`` operation, and ``xfr eval verification --degrade /
--process``: a processing chain on every pair's probe (its first image), kept apart
from the same file used as a gallery image."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import core.cli.evaluate as evaluate_cli
import core.evaluation as evaluation
from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.errors import BadInputError
from core.imageio import load_image
from core.models.base import Threshold, cosine_similarity
from core.processing import (
    chain_to_json,
    get,
    library_versions,
    make_step,
    parse_step,
    run_chain,
)
from core.version import __version__, source_commit


# ---- gaussian_blur ------------------------------------------------------------------
def numpy_gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """The documented rule written out: separable normalised Gaussian, radius
    ceil(3 sigma), border mirrored without repeating the edge (numpy 'reflect' is
    OpenCV's BORDER_REFLECT_101), float64, rounded half to even, clipped."""
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    edge = (radius, radius)
    padded = np.pad(image.astype(np.float64), (edge, edge, (0, 0)), "reflect")
    height, width = image.shape[:2]
    rows = sum(k * padded[i : i + height, :, :] for i, k in enumerate(kernel))
    both = sum(k * rows[:, i : i + width, :] for i, k in enumerate(kernel))
    return np.clip(np.rint(both), 0, 255).astype(np.uint8)


def test_gaussian_blur_is_registered_with_its_rule():
    info = get("gaussian_blur").info
    assert info.category == "noise" and info.version == 1
    assert "2*ceil(3 sigma)+1" in info.description
    assert "rounded half to even" in info.description
    (sigma,) = info.params
    assert (sigma.name, sigma.minimum, sigma.maximum) == ("sigma", 0.1, 25.0)
    for bad in ("0.05", "26", "x"):
        with pytest.raises(BadInputError, match="sigma"):
            parse_step(f"gaussian_blur:sigma={bad}")


def test_gaussian_blur_known_answer_impulse():
    """A single 255 in the middle spreads as 255 * k(dy) * k(dx), k the normalised
    Gaussian of sigma 1 over -3..3 (kernel 7 = 2*ceil(3)+1)."""
    image = np.zeros((21, 21, 3), np.uint8)
    image[10, 10] = 255
    out, _ = run_chain(image, [make_step("gaussian_blur", {"sigma": 1.0})])
    k = np.exp(-(np.arange(-3, 4) ** 2) / 2.0)
    k /= k.sum()
    expected = np.zeros((21, 21))
    expected[7:14, 7:14] = 255 * np.outer(k, k)
    assert np.array_equal(out[..., 0], np.rint(expected).astype(np.uint8))
    assert out[10, 10, 0] == 41  # 255 * 0.39905^2 = 40.6
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(
        out[..., 1], out[..., 2]
    )
    assert out[:7].max() == 0 and out[14:].max() == 0  # nothing beyond 3 sigma


@pytest.mark.parametrize("sigma", [0.7, 2.0])
def test_gaussian_blur_matches_the_documented_rule_at_the_borders(sigma):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    out, _ = run_chain(image, [make_step("gaussian_blur", {"sigma": sigma})])
    assert np.array_equal(out, numpy_gaussian(image, sigma))


def test_gaussian_blur_is_deterministic_and_keeps_a_flat_image(astronaut_rgb):
    step = parse_step("gaussian_blur:sigma=2.5")
    first, _ = run_chain(astronaut_rgb, [step])
    second, _ = run_chain(astronaut_rgb.copy(), [step])
    assert first.tobytes() == second.tobytes()
    assert not np.array_equal(first, astronaut_rgb)
    flat = np.full((30, 40, 3), 137, np.uint8)
    assert np.array_equal(run_chain(flat, [step])[0], flat)


# ---- the evaluation's probe chains, wired (no model, no detector) -------------------
COLOURS = {
    "a": [(200, 40, 40), (190, 60, 30)],
    "b": [(40, 40, 200), (70, 30, 180)],
}


def colour_embedding(rgb: np.ndarray) -> np.ndarray:
    """A stand-in model: the mean colour about mid-grey (so that darkening an
    image turns its embedding, as a real model's would change)."""
    return rgb.reshape(-1, 3).mean(axis=0) - 128.0


@pytest.fixture
def colours(tmp_path: Path, monkeypatch):
    """Two people, two flat-colour photos each; ``embed_images`` replaced by one
    that loads the real files, applies ``transform`` as the real one does and
    records every call."""
    root = tmp_path / "identities"
    for person, colours in COLOURS.items():
        (root / person).mkdir(parents=True)
        for number, colour in enumerate(colours):
            Image.new("RGB", (16, 16), colour).save(root / person / f"{number}.png")
    calls: list[tuple[list[Path], bool]] = []

    def embed_images(images, model, *, transform=None, **options):
        calls.append((list(images), transform is not None))
        result = evaluation.EmbeddedImages({}, [])
        for path in images:
            rgb = load_image(path).rgb
            result.embeddings[path] = colour_embedding(
                rgb if transform is None else transform(rgb)
            )
        return result

    model = SimpleNamespace(
        model_id="colours", weights_sha256="d" * 64,
        threshold=Threshold("cosine", 0.5, "test"),
    )  # fmt: skip
    monkeypatch.setattr(evaluation, "embed_images", embed_images)
    monkeypatch.setattr(evaluate_cli, "load_model_from_args", lambda args: model)
    return SimpleNamespace(root=root, calls=calls)


def expected_eer(root: Path, probe_steps) -> tuple[float, float]:
    """The EER worked out here: probe (first image) processed, gallery as is."""
    pairs, _ = evaluation.pairs_for(root)
    scores: dict[bool, list[float]] = {True: [], False: []}
    for pair in pairs:
        probe = load_image(pair.first).rgb
        if probe_steps:
            probe = run_chain(probe, probe_steps)[0]
        gallery = load_image(pair.second).rgb
        scores[pair.genuine].append(
            cosine_similarity(colour_embedding(probe), colour_embedding(gallery))
        )
    return evaluation.equal_error_rate(np.array(scores[True]), np.array(scores[False]))


def test_the_plain_run_embeds_each_image_once_and_records_no_chain(colours, capsys):
    argv = ["eval", "verification", "--data", str(colours.root)]
    assert main([*argv, "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert "probe_processing" not in report
    assert colours.calls == [(sorted(colours.root.glob("*/*.png")), False)]
    assert (report["eer"], report["eer_threshold"]) == pytest.approx(
        expected_eer(colours.root, [])
    )
    assert main(argv) == EXIT_OK
    assert "processed" not in capsys.readouterr().out


def test_degrade_and_process_change_the_probes_only(colours, capsys):
    argv = ["eval", "verification", "--data", str(colours.root), "--json",
            "--degrade", "levels:output_white=60",
            "--degrade", "gaussian_blur:sigma=1",
            "--process", "levels:white=120"]  # fmt: skip
    assert main(argv) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    pairs, _ = evaluation.pairs_for(colours.root)
    # the gallery images (second of a pair) as they are, then the probes processed
    assert colours.calls == [
        (sorted({p.second for p in pairs}), False),
        (sorted({p.first for p in pairs}), True),
    ]
    degrade = [
        parse_step("levels:output_white=60"),
        parse_step("gaussian_blur:sigma=1"),
    ]
    process = [parse_step("levels:white=120")]
    eer, threshold = expected_eer(colours.root, [*degrade, *process])
    assert (report["eer"], report["eer_threshold"]) == pytest.approx((eer, threshold))
    plain = expected_eer(colours.root, [])
    assert report["eer_threshold"] != pytest.approx(plain[1])  # scores moved
    assert report["images"] == len({p.second for p in pairs}) + len(
        {p.first for p in pairs}
    )
    record = report["probe_processing"]
    assert "first image of every pair" in record["applied_to"]
    assert record["degrade"] == {
        "chain": chain_to_json(degrade),
        "steps": [
            "Levels and gamma (v1): black=0, white=255, gamma=1, output_black=0, "
            "output_white=60",
            "Gaussian blur (v1): sigma=1",
        ],
    }
    assert record["process"]["chain"] == chain_to_json(process)
    assert record["software_version"] == __version__
    assert record["software_commit"] == source_commit()
    assert record["libraries"] == library_versions()


def test_only_process_is_recorded_with_an_empty_degrade(colours, capsys):
    argv = ["eval", "verification", "--data", str(colours.root),
            "--process", "unsharp:radius=2,amount=1"]  # fmt: skip
    assert main(argv) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == (
        "processed: the probe: the first image of every pair (the gallery image is "
        "unchanged); degrade, then process"
    )
    assert lines[3] == "  --degrade: none"
    assert lines[4] == "  --process: Unsharp mask (v1): radius=2, amount=1, threshold=0"
    assert lines[5] == "    chain " + chain_to_json(
        [parse_step("unsharp:radius=2,amount=1")]
    )
    assert lines[6].startswith(f"  software {__version__} (commit {source_commit()}); ")
    assert "opencv " in lines[6]


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--process", "sharpen:amount=2"], "--process 'sharpen:amount=2': unknown "
         "processing operation 'sharpen'"),
        (["--process", "unsharp:radius=99"], "--process 'unsharp:radius=99': "),
        (["--degrade", "levels:white"], "--degrade 'levels:white': 'white' is not "
         "name=value"),
        (["--degrade", "gaussian_blur:size=3"], "has no parameter 'size'"),
        (["--process", ":x=1"], "name an operation"),
    ],
)  # fmt: skip
def test_a_bad_chain_is_one_line_and_exit_2_before_the_model(
    option, words, tmp_path, monkeypatch, capsys
):
    def no_model(args):
        raise AssertionError("the model must not be loaded for a bad chain")

    monkeypatch.setattr(evaluate_cli, "load_model_from_args", no_model)
    code = main(["eval", "verification", "--data", str(tmp_path), *option])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and "\n" not in err and "Traceback" not in err
    assert words in err


def test_help_says_the_probe_is_the_first_image(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "verification", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--degrade OP[:NAME=VALUE,...]" in text
    assert "--process OP[:NAME=VALUE,...]" in text
    assert "PROBE of every pair (the first image" in text
    assert "gallery image is left as it is" in text


# ---- the real pipeline (dlib detector and ResNet) ----------------------------------
@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    root = tmp_path_factory.mktemp("identities")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    for name, rgb in (("eileen_collins", astronaut_rgb), ("grace_hopper", hopper)):
        (root / name).mkdir()
        for number, variant in enumerate((rgb, rgb[:, ::-1])):
            Image.fromarray(np.ascontiguousarray(variant)).save(
                root / name / f"{number}.png"
            )
    return root


@pytest.mark.slow
@pytest.mark.dlib
def test_real_probes_are_processed_and_galleries_are_not(
    faces_folder, dlib_model, monkeypatch
):
    calls: list[tuple[bool, dict[Path, np.ndarray]]] = []
    real = evaluation.embed_images

    def spy(images, model, **options):
        result = real(images, model, **options)
        calls.append((options.get("transform") is not None, result.embeddings))
        return result

    monkeypatch.setattr(evaluation, "embed_images", spy)
    plain = evaluation.evaluate_verification(faces_folder, dlib_model)
    chains = evaluation.ProbeChains(
        (parse_step("gaussian_blur:sigma=3"),), (parse_step("unsharp:radius=2"),)
    )
    processed = evaluation.evaluate_verification(
        faces_folder, dlib_model, probe_chains=chains
    )
    (_, everything), (_, gallery), (transformed, probes) = calls
    assert transformed and processed.failures_to_detect == 0
    assert processed.pairs_evaluated == plain.pairs_evaluated == 6
    # the gallery side: the plain embeddings (to float32 rounding: a batch of
    # other images changes the last bits of the network's sums)
    for path, embedding in gallery.items():
        assert np.linalg.norm(embedding - everything[path]) < 1e-5
    for path, embedding in probes.items():  # the probes: other embeddings
        assert np.linalg.norm(embedding - everything[path]) > 1e-2
    assert processed.eer_threshold != plain.eer_threshold
    assert processed.probe_processing["process"]["steps"] == [
        "Unsharp mask (v1): radius=2, amount=1, threshold=0"
    ]


@pytest.mark.slow
@pytest.mark.dlib
def test_a_chain_that_does_not_fit_a_probe_leaves_its_pairs_out(
    faces_folder, dlib_model
):
    chains = evaluation.ProbeChains(process=(parse_step("crop:x=0,y=0,w=4000,h=10"),))
    report = evaluation.evaluate_verification(
        faces_folder, dlib_model, probe_chains=chains
    )
    assert report.pairs_evaluated == 0 and report.pairs_skipped == 6
    assert report.failures_to_detect == 0
    assert len(report.failed_images) == 3  # every probe, the gallery ones fine
    assert all("(processed probe): step 1 (crop)" in f for f in report.failed_images)


def test_a_run_that_scores_no_pair_is_refused_not_reported(
    colours, monkeypatch, capsys
):
    """A chain that fits no probe (or no face found at all) leaves nothing to
    measure: one line and exit 2, never "EER nan %" and "TAR 0.00 %"."""

    def nothing_embedded(images, model, *, transform=None, **options):
        failed = [
            f"{path} (processed probe): step 1 (crop): too big" for path in images
        ]
        return evaluation.EmbeddedImages({}, failed)

    monkeypatch.setattr(evaluation, "embed_images", nothing_embedded)
    code = main(["eval", "verification", "--data", str(colours.root), "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT and captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "no pair could be scored" in err and "too big" in err
