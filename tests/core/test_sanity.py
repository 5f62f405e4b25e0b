"""The model-parameter randomisation test (``core.metrics.sanity``, ``xfr eval
sanity``): a map that ignores the weights fails, one that follows them passes, and
the shared model is never touched."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_models import SyntheticModel
from torch import nn

from core.cli import main
from core.errors import BadInputError
from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    FacePair,
    FaceView,
)
from core.explain.gradients import cosine_to, input_gradient
from core.faces.align import ChipTransform
from core.metrics import sanity
from core.models.base import LayerTap

SIZE = 32


# ---- test-only explainers (never registered) ---------------------------------------
class EdgeMap(Explainer):
    """Sobel magnitude of the chip: knows nothing of the model (paper's Fig. 1)."""

    info = ExplainerInfo(
        "test_edges", "edge detector", "test", "test", "gradient", False
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        maps = []
        for view in ctx.pair.sides:
            gray = cv2.cvtColor(view.chip, cv2.COLOR_RGB2GRAY).astype(np.float32)
            edges = np.hypot(cv2.Sobel(gray, -1, 1, 0), cv2.Sobel(gray, -1, 0, 1))
            maps.append(ChipMaps.from_signed(edges))
        return maps[0], maps[1]


class PlainGradient(Explainer):
    """|d cos / d x| summed over channels (Simonyan's saliency): follows the weights."""

    info = ExplainerInfo(
        "test_plain_gradient", "plain gradient", "test", "test", "gradient", False
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        maps = []
        for side in (0, 1):
            reference = ctx.other(side).to(ctx.device)
            gradient = input_gradient(
                ctx.model, ctx.inputs[side], lambda e, r=reference: cosine_to(e, r)
            )
            maps.append(ChipMaps.from_signed(gradient[0].abs().sum(0).numpy()))
        return maps[0], maps[1]


# ---- a small model whose learned weights look at one region -----------------------
class AttendingNet(nn.Module):
    """Two convolutions, then an embedding that reads only rows 4:14, columns
    18:30 (what "training" taught it); re-initialised, it reads everywhere."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8 * SIZE * SIZE, 16)
        mask = torch.zeros(8, SIZE, SIZE)
        mask[:, 4:14, 18:30] = 1
        with torch.no_grad():
            self.fc.weight.mul_(mask.flatten()[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.conv1(x)).flatten(1))


def attending_model() -> SyntheticModel:
    taps = (
        LayerTap("conv1", "conv1"),
        LayerTap("conv2", "conv2"),
        LayerTap("embedding", "fc"),
    )
    return SyntheticModel(AttendingNet(), SIZE, taps)


def photo_pair(astronaut_rgb: np.ndarray) -> FacePair:
    """The astronaut's face and a shifted crop, as 32x32 chips."""
    transform = ChipTransform(
        np.array([[4.0, 0, 0], [0, 4.0, 0]]), (SIZE, SIZE), "dlib"
    )

    def chip(top: int, left: int) -> np.ndarray:
        crop = astronaut_rgb[top : top + 128, left : left + 128]
        return np.asarray(Image.fromarray(crop).resize((SIZE, SIZE)))

    return FacePair(
        FaceView("probe", chip(40, 160), transform, (128, 128), "a" * 64),
        FaceView("gallery", chip(48, 168), transform, (128, 128), "b" * 64),
    )


def test_blocks_come_from_the_taps_and_cascade_from_the_embedding():
    model = attending_model()
    blocks = sanity.model_blocks(model)
    assert [b.name for b in blocks] == ["conv1", "conv2", "embedding"]
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    once = sanity.randomised_copy(model, 1, seed=3)
    twice = sanity.randomised_copy(model, 2, seed=3)
    state1, state2 = once.network.state_dict(), twice.network.state_dict()
    assert not torch.equal(state1["fc.weight"], before["fc.weight"])
    assert torch.equal(state1["conv2.0.weight"], before["conv2.0.weight"])
    assert torch.equal(state1["fc.weight"], state2["fc.weight"])  # cascade adds
    assert not torch.equal(state2["conv2.0.weight"], before["conv2.0.weight"])
    assert torch.equal(state2["conv1.0.weight"], before["conv1.0.weight"])
    other_seed = sanity.randomised_copy(model, 1, seed=4).network.state_dict()
    assert not torch.equal(other_seed["fc.weight"], state1["fc.weight"])
    for name, tensor in model.network.state_dict().items():
        assert torch.equal(tensor, before[name]), f"{name} of the shared model changed"
    hashes = {m.weights_sha256 for m in (model, once, twice)}
    assert len(hashes) == 3 and "randomised" in once.model_id
    unchanged = sanity.randomised_copy(model, 0)
    assert unchanged.weights_sha256 == sanity.parameters_sha256(model.network)


def test_the_copy_never_writes_into_a_capture_on_the_shared_model(astronaut_rgb):
    model = attending_model()
    pair = photo_pair(astronaut_rgb)
    with model.capture(["conv2"]) as captured:
        copy = sanity.randomised_copy(model, 3)
        copy.embed(copy.prepare(pair.probe.chip[None]))
        assert "conv2" not in captured


def test_edge_detector_fails_and_plain_gradient_passes(astronaut_rgb):
    model = attending_model()
    pair = photo_pair(astronaut_rgb)
    before = sanity.parameters_sha256(model.network)
    table = sanity.sanity_check(
        model, [pair], [EdgeMap(), PlainGradient()], depths=[1, 3], seed=0
    )
    assert sanity.parameters_sha256(model.network) == before
    verdicts = {v["method"]: v for v in table.verdicts}
    edges, gradient = verdicts["test_edges"], verdicts["test_plain_gradient"]
    assert edges["verdict"] == sanity.FAILS
    assert edges["spearman_abs_full"] == pytest.approx(1.0)
    assert gradient["verdict"] == sanity.PASSES, table.markdown()
    assert abs(gradient["spearman_abs_full"]) < sanity.PASS_THRESHOLD
    rows = {(r["method"], r["blocks_randomised"]): r for r in table.rows}
    assert set(rows) == {(m, d) for m in verdicts for d in (1, 3)}
    assert rows["test_edges", 3]["ssim_mean"] == pytest.approx(1.0)
    assert rows["test_plain_gradient", 3]["ssim_mean"] < 0.5
    assert rows["test_plain_gradient", 1]["down_to"] == "embedding"
    assert table.copy_check == 0.0
    json.dumps(table.to_dict())


class BlankWhenRandomised(EdgeMap):
    """Edges on the trained model; on a randomised copy the probe's map stays the
    edges and the gallery's (or, with ``both``, each) map is all zero."""

    info = ExplainerInfo("test_blank", "blank", "test", "test", "gradient", False)
    both = False

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        probe, gallery = super().compute(ctx)
        if "randomised" not in ctx.model.model_id:
            return probe, gallery
        blank = ChipMaps.from_signed(np.zeros_like(gallery.combined))
        return (blank if self.both else probe), blank


class BlankBoth(BlankWhenRandomised):
    info = ExplainerInfo("test_blank_both", "blank", "test", "test", "gradient", False)
    both = True


def test_constant_maps_are_left_out_of_the_verdict(astronaut_rgb):
    """A blank map on the randomised model has no ranking to compare: it is not
    "the map changed" (rank correlation 0 would count it as a pass)."""
    model = attending_model()
    table = sanity.sanity_check(
        model, [photo_pair(astronaut_rgb)], [BlankWhenRandomised(), BlankBoth()],
        depths=[3],
    )  # fmt: skip
    half, blank = table.verdicts
    assert half["verdict"] == sanity.FAILS  # judged on the probe, whose map stayed
    assert half["spearman_abs_full"] == pytest.approx(1.0)
    assert (half["maps_compared"], half["constant_maps"]) == (1, 1)
    assert blank["verdict"] == sanity.CONSTANT_RANDOMISED, table.markdown()
    assert blank["verdict"].startswith("not judged: constant maps")
    assert (blank["maps_compared"], blank["constant_maps"]) == (0, 2)
    assert blank["spearman_abs_full"] is None
    json.dumps(table.to_dict())


def test_the_test_refuses_no_method_and_a_negative_seed(astronaut_rgb):
    model, pair = attending_model(), photo_pair(astronaut_rgb)
    with pytest.raises(BadInputError, match="at least one method"):
        sanity.sanity_check(model, [pair], [])
    with pytest.raises(BadInputError, match="0 or more"):
        sanity.sanity_check(model, [pair], [EdgeMap()], seed=-1)


def test_constant_maps_have_zero_rank_correlation_not_nan():
    varied = np.arange(64.0).reshape(8, 8)
    for constant in (np.zeros((8, 8)), np.full((8, 8), np.nan)):
        values = sanity.compare_maps(varied, constant)
        assert values["spearman_abs"] == 0.0 and values["spearman_signed"] == 0.0
        assert np.isfinite(values["ssim"]) and values["constant"] == 1.0
    same = sanity.compare_maps(varied, 2 * varied + 1)
    assert same["spearman_signed"] == pytest.approx(1.0) and same["constant"] == 0.0
    assert sanity.compare_maps(varied, -varied)["spearman_signed"] == pytest.approx(-1)


def test_depths_are_spread_and_end_with_full_randomisation():
    assert sanity.choose_depths(16, 3) == [5, 11, 16]
    assert sanity.choose_depths(16, None) == list(range(1, 17))
    assert sanity.choose_depths(3, 10) == [1, 2, 3]


# ---- the command line on bundled photos ------------------------------------------


@pytest.mark.slow  # face detection on three photos and two maps x 2 models x 2 pairs
def test_eval_sanity_writes_the_table(bundled_identities, tmp_path, capsys, dlib_model):
    model = dlib_model  # the registry's instance, which the CLI shares
    before = sanity.parameters_sha256(model.network)
    code = main(
        ["eval", "sanity", "--data", str(bundled_identities),
         "--methods", "gradient,gradcam", "--max-pairs", "2", "--blocks", "1",
         "--device", "cpu", "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert sanity.parameters_sha256(model.network) == before
    assert payload["pairs_used"] == 2 and len(payload["blocks"]) == 16
    assert {(r["method"], r["blocks_randomised"]) for r in payload["rows"]} == {
        ("gradient", 16),
        ("gradcam", 16),
    }
    for verdict in payload["verdicts"]:
        assert verdict["verdict"] in (sanity.PASSES, sanity.FAILS)
    assert (tmp_path / "sanity.md").read_text().startswith("| method")
    assert (tmp_path / "sanity.png").stat().st_size > 1000
    assert (tmp_path / "sanity.csv").read_text().count("\n") == 3


def test_eval_sanity_bad_data_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["eval", "sanity", "--data", str(tmp_path / "nowhere"),
                 "--methods", "gradient", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("xfr: error:") and err.count("\n") == 1
    assert "nowhere" in err


@pytest.mark.parametrize(
    "command, options, problem",
    [
        ("sanity", ["--max-pairs", "0"], "--max-pairs must be at least 1, got 0"),
        ("sanity", ["--methods", " , "], "names no method"),
        ("sanity", ["--blocks", "0"], "--blocks must be at least 1"),
        ("faithfulness", ["--max-pairs", "-3"], "--max-pairs must be at least 1"),
        ("faithfulness", ["--methods", ","], "names no method"),
        ("verification", ["--max-pairs", "0"], "--max-pairs must be at least 1"),
    ],
)
def test_eval_options_are_checked_before_any_work(
    tmp_path, capsys, command, options, problem
):
    """One line, exit 2, before the model is loaded or the data is read (the data
    folder does not even exist)."""
    argv = ["eval", command, "--data", str(tmp_path / "nowhere"), "--device", "cpu"]
    if command == "faithfulness":
        argv += ["--metric", "pair-specificity"]
        argv += [] if "--methods" in options else ["--methods", "gradient"]
    code = main([*argv, *options])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and problem in err, err
    assert "nowhere" not in err and "internal error" not in err


def test_ranks_share_ties_as_scipy_does():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 40):
        values = rng.integers(0, 4, size).astype(float)
        assert np.array_equal(sanity._ranks(values), rankdata(values))
