"""The examiner's comparison views (issue 19, item 3): what each view shows of two
aligned faces, a magnifier that adds nothing between pixels, and a view kept as a
numbered figure that is redrawn from its stored settings pixel for pixel."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.case import workflow
from core.case.examination import FIGURE_VIEWS
from core.case.store import Case
from core.compare_views import (
    MAGNIFIER_PIXELS,
    MODES,
    VIEWS,
    ViewParams,
    compose,
    magnifier_region,
    magnify,
    render_view,
)
from core.errors import BadInputError
from core.faces.detect import Face


@pytest.fixture
def faces() -> tuple[np.ndarray, np.ndarray]:
    return np.full((6, 8, 3), 10, np.uint8), np.full((6, 8, 3), 210, np.uint8)


def test_superimposition_mixes_by_the_chosen_opacity(faces):
    probe, gallery = faces
    assert (compose(probe, gallery, "superimposition", 0.0) == 10).all()
    assert (compose(probe, gallery, "superimposition", 1.0) == 210).all()
    assert (compose(probe, gallery, "superimposition", 0.25) == 60).all()


def test_a_wipe_shows_the_probe_before_the_line_and_the_gallery_beyond(faces):
    probe, gallery = faces
    vertical = compose(probe, gallery, "wipe (vertical)", 0.5)
    assert (vertical[:, :3] == 10).all() and (vertical[:, 5:] == 210).all()
    assert (vertical[:, 3:5] == (255, 255, 0)).all()  # the line
    horizontal = compose(probe, gallery, "wipe (horizontal)", 0.5)
    assert (horizontal[:2] == 10).all() and (horizontal[4:] == 210).all()


def test_side_by_side_keeps_both_whole(faces):
    probe, gallery = faces
    both = compose(probe, gallery, "side by side")
    assert both.shape == (6, 8 + 4 + 8, 3)
    assert (both[:, :8] == probe).all() and (both[:, -8:] == gallery).all()


def test_unknown_views_and_unaligned_faces_are_refused(faces):
    probe, gallery = faces
    with pytest.raises(ValueError, match="unknown view"):
        compose(probe, gallery, "measure")
    with pytest.raises(ValueError, match="one size"):
        compose(probe, gallery[:5], "superimposition")
    assert "measure" not in " ".join(MODES)  # no measuring view at all


def test_the_magnifier_repeats_pixels_and_draws_a_grid_from_4x():
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    doubled = magnify(rgb, 2)
    assert doubled.shape == (4, 4, 3)
    assert (doubled[0:2, 0:2] == rgb[0, 0]).all()  # no value between pixels
    big = magnify(rgb, 4)
    assert (big[5:8, 5:8] == rgb[1, 1]).all()  # inside a pixel: its value
    assert (big[4, 5] == (rgb[1, 1] * 0.6).astype(np.uint8)).all()  # grid line
    assert magnify(rgb, 99).shape[0] == 2 * 8  # capped at 8x


def chips(size: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    probe = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return probe, rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def test_the_figure_views_are_the_ones_a_case_stores():
    assert VIEWS == FIGURE_VIEWS


def test_each_view_is_drawn_at_the_chips_pixels_within_the_region_shown():
    probe, gallery = chips()
    region = (2, 4, 12, 18)
    cut = np.s_[4:18, 2:12]

    def view(**settings):
        return render_view(probe, gallery, {"chip_size": 20, **settings})

    side = view(view="side by side", region=region)
    assert (side == compose(probe[cut], gallery[cut], "side by side")).all()
    over = view(view="superimposed", opacity=0.3, region=region)
    assert (over == compose(probe, gallery, "superimposition", 0.3)[cut]).all()
    wipe = view(view="wipe", wipe_axis="horizontal", wipe_position=0.25)
    assert (wipe == compose(probe, gallery, "wipe (horizontal)", 0.25)).all()
    assert (view(view="flicker", flicker_side="known") == gallery).all()
    assert (view(view="flicker") == probe).all()
    zoomed = view(view="magnifier", magnified="superimposed", magnifier_zoom=4)
    window = magnifier_region(None, 4, 20)
    x0, y0, x1, y1 = window
    expected = compose(probe, gallery, "superimposition", 0.5)[y0:y1, x0:x1]
    assert (zoomed == magnify(expected, 4)).all()


def test_the_magnifier_window_follows_its_centre_and_stays_inside_the_chip():
    assert magnifier_region((150, 150), 4, 300) == (130, 130, 170, 170)
    assert magnifier_region((0, 299), 8, 300) == (0, 280, 20, 300)
    side = MAGNIFIER_PIXELS // 2
    assert magnifier_region(None, 2, 300)[2] - magnifier_region(None, 2, 300)[0] == side
    assert magnifier_region((5, 5), 1, 20) == (0, 0, 20, 20)  # never beyond the chip


def test_view_settings_round_trip_and_bad_ones_are_named():
    params = ViewParams(
        "magnifier", region=(0, 0, 10, 10), magnifier_centre=(3.5, 4.0)
    ).to_dict()
    assert ViewParams.from_dict(json.loads(json.dumps(params))).to_dict() == params
    with pytest.raises(ValueError, match="view 'measure'"):
        ViewParams("measure")
    with pytest.raises(ValueError, match="region"):
        ViewParams("wipe", chip_size=10, region=(0, 0, 11, 5))
    with pytest.raises(ValueError, match="unknown view settings: distance"):
        ViewParams.from_dict({"view": "wipe", "distance": 3})
    with pytest.raises(ValueError, match="aligned faces"):
        render_view(*chips(), {"view": "wipe"})  # 300 px expected, 20 px given


POINTS = np.array([[150, 80], [130, 80], [70, 80], [90, 80], [110, 130]], float)


def face(shift: float = 0.0) -> Face:
    points = POINTS + shift
    left, top = points.min(0) - 30
    right, bottom = points.max(0) + 30
    return Face((left, top, right, bottom), points, None, 1.0, "hog")


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for role in ("probe", "known"):
        path = tmp_path / f"{role}.png"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(path)
        files.append(path)
    case = Case.create(tmp_path / "case", "2026-0019", "A. Examiner")
    case.add_exhibits([files[0]], "probe")
    case.add_exhibits([files[1]], "gallery")
    case.set_faces("Q1", [face()], detector="hog")
    case.set_faces("K1", [face(2.0)], detector="hog")
    yield case
    case.close()


def test_a_saved_view_is_the_next_numbered_figure_and_redraws_from_its_params(case):
    exam = case.examination()
    wipe = ViewParams("wipe", region=(20, 30, 280, 290), wipe_position=0.4)
    first = workflow.save_comparison_figure(
        exam, "Q1", "K1", wipe.to_dict(), caption="wipe at the eye line"
    )
    zoom = ViewParams("magnifier", magnified="side by side", magnifier_zoom=8)
    faces = workflow.aligned_faces(case, "Q1", "K1")
    second = workflow.save_comparison_figure(
        exam, "Q1", "K1", zoom.to_dict(), "nose", faces=faces
    )
    assert (first.number, second.number) == (1, 2)
    assert (first.view, second.view) == ("wipe", "magnifier")
    saves = [e for e in case.audit_log() if e.action == "figure.save"]
    assert [(e.details["number"], e.details["view"]) for e in saves] == [
        (1, "wipe"),
        (2, "magnifier"),
    ]
    assert saves[0].details["params"] == wipe.to_dict()
    for figure, params in ((first, wipe), (second, zoom)):
        stored = case.derived_path(figure.image_sha256).read_bytes()
        pixels = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
        assert (pixels == render_view(*faces, params)).all()
        again = render_view(*workflow.aligned_faces(case, "Q1", "K1"), figure.params)
        assert (pixels == again).all()  # redrawn from what the case keeps
    assert case.verify().intact


def test_a_view_that_cannot_be_drawn_is_refused_in_one_line(case):
    exam = case.examination()
    with pytest.raises(BadInputError, match="cannot have view 'ratio'"):
        workflow.save_comparison_figure(exam, "Q1", "K1", {"view": "ratio"})
    with pytest.raises(BadInputError, match="aligned faces"):
        small = workflow.aligned_faces(case, "Q1", "K1", size=50)
        workflow.save_comparison_figure(exam, "Q1", "K1", {"view": "wipe"}, faces=small)
    assert exam.figures() == []
