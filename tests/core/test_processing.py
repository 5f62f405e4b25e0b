"""The processing registry and its rules, for every registered operation (issue 21
item 1): described, versioned, typed, deterministic; steps and chains round-trip
through their recorded form; a recorded step of another version is refused."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core import processing
from core.errors import BadInputError
from core.params import Param
from core.processing import (
    CATEGORIES,
    FrameSet,
    chain_from_json,
    chain_to_json,
    infos,
    make_step,
    parse_step,
    pixels_sha256,
    recorded_step,
    run_chain,
)

ISSUE_OPERATIONS = {
    # issue 21, Build 1: the operations asked for, by id
    "crop", "rotate", "flip", "resize", "levels", "contrast_stretch",
    "histogram_equalise", "clahe", "white_balance", "greyscale", "bilateral",
    "nl_means", "unsharp", "deinterlace", "wiener", "richardson_lucy",
    "frame_average",
}  # fmt: skip


# operations whose defaults alone are not a complete step (resize needs a size)
EXAMPLE_PARAMS = {"resize": {"scale": 0.5}, "crop": {"x": 3, "y": 4, "w": 20, "h": 30}}


def noisy_face(seed: int = 0, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """A smooth face-like blob with noise: every operation has work to do."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    blob = 200 * np.exp(-(((x - w / 2) / 10) ** 2 + ((y - h / 2) / 13) ** 2))
    rgb = np.stack([blob + 30, blob * 0.8 + 20, blob * 0.6 + 10], axis=-1)
    return np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)


def neighbours(offsets):
    """Frames around the source for frame averaging: shifted noisy copies."""
    return FrameSet(
        {o: noisy_face(seed=10 + o) for o in offsets},
        {o: {"frame_number": 5 + o} for o in offsets},
    )


def test_every_operation_the_issue_asks_for_is_registered():
    registered = {info.op_id for info in infos()}
    assert ISSUE_OPERATIONS <= registered, ISSUE_OPERATIONS - registered


@pytest.mark.parametrize("info", infos(), ids=lambda i: i.op_id)
def test_every_operation_is_described_versioned_and_typed(info):
    assert info.category in CATEGORIES
    assert isinstance(info.version, int) and info.version >= 1
    # one sentence for the report: ends with a full stop, no second sentence
    text = info.description.strip()
    assert text.endswith(".") and len(text) > 40
    assert not re.search(r"[a-z0-9)]\.\s+[A-Z]", text), text
    assert info.implementation and info.display_name
    for param in info.params:
        assert isinstance(param, Param) and len(param.description) > 5
        # the default is a valid value of its own parameter
        assert param.coerce(
            param.default, info.op_id, owner="operation"
        ) is not None or (param.optional)
    json.dumps(info.to_dict())


@pytest.mark.parametrize("info", infos(), ids=lambda i: i.op_id)
def test_every_operation_is_deterministic_on_its_defaults(info):
    rgb = noisy_face()
    step = make_step(info.op_id, EXAMPLE_PARAMS.get(info.op_id))
    reader = neighbours if info.needs_frames else None
    first, inputs = run_chain(rgb, [step], read_frames=reader)
    second, _ = run_chain(rgb.copy(), [step], read_frames=reader)
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert pixels_sha256(first) == pixels_sha256(second)
    json.dumps(inputs)  # what a step read is recorded as JSON


@pytest.mark.parametrize("info", infos(), ids=lambda i: i.op_id)
def test_every_step_round_trips_through_its_recorded_form(info):
    step = make_step(info.op_id, EXAMPLE_PARAMS.get(info.op_id))
    assert recorded_step(step.to_dict()) == step
    assert chain_from_json(chain_to_json([step])) == [step]


def test_a_recorded_step_of_another_version_is_refused():
    data = make_step("levels", {"gamma": 1.4}).to_dict()
    data["version"] = 99
    with pytest.raises(BadInputError, match="version 99 of operation levels"):
        recorded_step(data)
    with pytest.raises(BadInputError, match="cannot be read"):
        chain_from_json('{"format": 2, "steps": []}')
    with pytest.raises(BadInputError, match="lacks parameter"):
        recorded_step({"op": "levels", "version": 1, "params": {"gamma": 1.4}})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_a_number_that_is_not_finite_is_refused(value):
    """NaN passes every range test (all comparisons are false) and would reach
    the pixels as an undefined cast: refused for operations and methods alike."""
    with pytest.raises(BadInputError, match="not a finite number"):
        parse_step(f"levels:gamma={value}")
    with pytest.raises(BadInputError, match="not a finite number"):
        Param("p", float, 1.0, "a number").coerce(value, "lime")


def test_parse_step_reads_the_command_lines_form():
    step = parse_step("crop:x=1,y=2,w=30,h=40")
    assert dict(step.params) == {"x": 1, "y": 2, "w": 30, "h": 40}
    assert step.describe() == "Crop (v1): x=1, y=2, w=30, h=40"
    assert parse_step("levels").params["gamma"] == 1.0  # every default filled
    with pytest.raises(BadInputError, match="given twice"):
        parse_step("crop:x=1,x=2")
    with pytest.raises(BadInputError, match="name an operation"):
        parse_step(":x=1")


def test_a_step_error_names_the_step_and_the_parameter():
    rgb = noisy_face()
    chain = [parse_step("levels:gamma=1.2"), parse_step("crop:x=30,y=0,w=20,h=10")]
    with pytest.raises(BadInputError, match=r"step 2 \(crop\).*outside the 40x48"):
        run_chain(rgb, chain)


def test_frame_averaging_must_come_first_and_needs_a_video():
    rgb = noisy_face()
    average = make_step("frame_average")
    with pytest.raises(BadInputError, match="must be the first step"):
        run_chain(rgb, [make_step("levels"), average], read_frames=neighbours)
    with pytest.raises(BadInputError, match="frame exhibit taken from a video"):
        run_chain(rgb, [average])


def test_the_output_hash_is_bound_to_the_shape():
    flat = np.zeros((4, 6, 3), np.uint8)
    assert pixels_sha256(flat) != pixels_sha256(flat.reshape(6, 4, 3))


def test_registry_refuses_duplicates_and_unknown_categories():
    levels = processing.get("levels")

    class Other(processing.Operation):
        info = levels.info

    with pytest.raises(ValueError, match="registered twice"):
        processing.register(Other)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("crop:x=true", "cannot use 'true'"),
        ("levels:gamma=yes", "cannot use"),
        ("frame_average:region=0,0,16", "4 whole numbers needed"),
        ("frame_average:region=0.9,0,16,16", "cannot use '0.9,0,16,16'"),
    ],
)
def test_values_are_never_silently_cut_or_read_as_numbers(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_step(text)
    with pytest.raises(BadInputError, match="not true or false"):
        make_step("crop", {"x": True})
    with pytest.raises(BadInputError, match="not true or false"):
        make_step("levels", {"gamma": True})
    with pytest.raises(BadInputError, match=r"0\.9 is not a whole number"):
        make_step("frame_average", {"region": [0.9, 0, 16, 16]})


def test_a_recorded_value_checking_would_change_is_refused():
    data = make_step("crop", {"x": 2, "y": 2, "w": 9, "h": 9}).to_dict()
    data["params"]["w"] = "9"  # text where the record holds a number
    with pytest.raises(BadInputError, match="would not have recorded"):
        recorded_step(data)


def test_the_setup_names_the_processor_features_used():
    setup = processing.library_versions()
    assert {"opencv", "opencv cpu", "numpy", "numpy cpu", "platform"} <= set(setup)


def test_a_long_step_stops_between_iterations_when_asked():
    from core.errors import Cancelled

    asked = iter([False] + [False] * 3 + [True] * 1000)  # stop in the 4th iteration
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return next(asked)

    step = make_step("richardson_lucy", {"iterations": 200, "length": 3.0})
    with pytest.raises(Cancelled):
        run_chain(noisy_face(), [step], cancel=cancel)
    assert len(calls) == 5  # once before the step, then once per iteration
