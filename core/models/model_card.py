"""Model cards: what a bring-your-own face model needs to be used correctly.

A card is a small TOML or JSON file beside the weights (``model.onnx`` ->
``model.card.toml`` / ``model.card.json``).  Fields::

    id = "mobilefacenet"              # registry id (letters, digits, - _ .)
    name = "MobileFaceNet"            # shown to the examiner
    input_size = [112, 112]           # height, width of the aligned chip
    channel_order = "RGB"             # or "BGR"
    mean = [123.675, 116.28, 103.53]  # tensor = (pixel - mean) / std, pixels 0..255
    std = [58.395, 57.12, 57.375]     # ([0,1] then ImageNet: mean = 255*m, std = 255*s)
    alignment = "arcface"             # "arcface" (112 template) or "dlib" (chip, 25 %)
    flip_average = true               # embed = mean(chip, mirrored chip)
    embedding_output = "output0"      # ONNX output holding the embedding (optional)
    description = "..."               # optional
    licence = "..."                   # optional

    [threshold]
    metric = "cosine"                 # or "euclidean"
    value = 0.3
    source = "where the value comes from"

    [[taps]]                          # optional; otherwise derived from the network
    name = "stage2"
    module = "dotted.module.path"
    description = "..."

Every problem is a ``ModelFileError`` naming the card file and the field.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from core.errors import ModelFileError
from core.models.base import LayerTap, Preprocessing, Threshold

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelCard:
    path: Path
    model_id: str
    name: str
    preprocessing: Preprocessing
    threshold: Threshold
    embedding_output: str | None
    taps: tuple[LayerTap, ...]
    description: str
    licence: str


def card_path_for(weights: str | Path) -> Path | None:
    """The card beside a weights file, if there is one."""
    weights = Path(weights)
    for suffix in (".card.toml", ".card.json"):
        for candidate in (
            weights.with_name(weights.name + suffix),
            weights.with_suffix(suffix),
        ):
            if candidate.is_file():
                return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(f"cannot read model card ({error})", path) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ModelFileError(f"model card is not valid: {error}", path) from None
    if not isinstance(data, dict):
        raise ModelFileError("model card must be a table of fields", path)
    return data


MAX_INPUT_SIDE = 4096  # pixels; a face chip is a few hundred at most
PIXEL_RANGE = (0.0, 255.0)  # a mean is a pixel value, 0..255
MAX_STD = 1024.0  # dlib divides by 256; 4x the pixel range is already absurd


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_card(path: str | Path) -> ModelCard:
    """Read and check a model card; every value a model's use depends on is checked.

    Non-finite numbers (TOML ``nan``/``inf``, JSON ``NaN``/``Infinity``), sizes and
    scales outside what a face chip can be, and text where a number or a boolean
    belongs are refused, naming the card and the key.
    """
    path = Path(path)
    data = _read(path)

    def fail(field: str, problem: str) -> ModelFileError:
        return ModelFileError(f"'{field}' {problem}", path)

    def required(field: str) -> Any:
        if field not in data:
            raise fail(field, "is missing")
        return data[field]

    def numbers(
        field: str, count: int, low: float, high: float, low_open: bool = False
    ) -> tuple[float, ...]:
        """``count`` finite numbers in [low, high] (``(low, high]`` if low_open)."""
        value = required(field)
        kind = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        if (
            not isinstance(value, list)
            or len(value) != count
            or not all(_is_number(v) and math.isfinite(v) for v in value)
            or not all((v > low if low_open else v >= low) and v <= high for v in value)
        ):
            raise fail(field, f"must be a list of {count} numbers in {kind}")
        return tuple(float(v) for v in value)

    def text(field: str, default: str = "", allow_empty: bool = True) -> str:
        value = data.get(field, default)
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise fail(
                field, "must be text" if allow_empty else "must be non-empty text"
            )
        return value

    model_id = required("id")
    if not isinstance(model_id, str) or not _ID_PATTERN.match(model_id):
        raise fail("id", "must be 1-64 letters, digits, '.', '-' or '_'")
    size = numbers("input_size", 2, 0, MAX_INPUT_SIDE, low_open=True)
    if not all(v == int(v) for v in size):
        raise fail("input_size", f"must be two whole numbers in [1, {MAX_INPUT_SIDE}]")
    order = data.get("channel_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise fail("channel_order", 'must be "RGB" or "BGR"')
    alignment = data.get("alignment", "arcface")
    if alignment not in ("arcface", "dlib"):
        raise fail("alignment", 'must be "arcface" or "dlib"')
    flip = data.get("flip_average", False)
    if not isinstance(flip, bool):
        raise fail("flip_average", "must be true or false (not text or a number)")
    preprocessing = Preprocessing(
        input_size=(int(size[0]), int(size[1])),
        channel_order=order,
        mean=numbers("mean", 3, *PIXEL_RANGE),  # type: ignore[arg-type]
        std=numbers("std", 3, 0, MAX_STD, low_open=True),  # type: ignore[arg-type]
        alignment=alignment,
        flip_average=flip,
    )

    threshold_table = required("threshold")
    if not isinstance(threshold_table, dict):
        raise fail("threshold", "must be a table with metric, value and source")
    metric = threshold_table.get("metric")
    value = threshold_table.get("value")
    if metric not in ("cosine", "euclidean"):
        raise fail("threshold.metric", 'must be "cosine" or "euclidean"')
    if not _is_number(value) or not math.isfinite(value):
        raise fail("threshold.value", "must be a finite number")
    if metric == "cosine" and not -1 <= value <= 1:
        raise fail(
            "threshold.value", f"is {value:g}; a cosine similarity is in [-1, 1]"
        )
    if metric == "euclidean" and value < 0:
        raise fail("threshold.value", f"is {value:g}; a distance is never negative")
    source = threshold_table.get("source", "")
    if not isinstance(source, str) or not source.strip():
        raise fail("threshold.source", "must say where the threshold comes from")
    threshold = Threshold(metric, float(value), source)

    entries = data.get("taps", [])
    if not isinstance(entries, list):
        raise fail("taps", "must be a list of tables ([[taps]])")
    taps: list[LayerTap] = []
    for number, entry in enumerate(entries):
        key = f"taps[{number}]"
        if not isinstance(entry, dict) or not {"name", "module"} <= entry.keys():
            raise fail(key, "needs 'name' and 'module'")
        for field in ("name", "module"):
            if not isinstance(entry[field], str) or not entry[field].strip():
                raise fail(f"{key}.{field}", "must be non-empty text")
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise fail(f"{key}.description", "must be text")
        if entry["name"] in {tap.name for tap in taps}:
            raise fail(f"{key}.name", f"'{entry['name']}' is given twice")
        taps.append(LayerTap(entry["name"], entry["module"], description))
    output = data.get("embedding_output")
    if output is not None and (not isinstance(output, str) or not output.strip()):
        raise fail("embedding_output", "must be the name of an output")
    return ModelCard(
        path=path,
        model_id=model_id,
        name=text("name", model_id, allow_empty=False),
        preprocessing=preprocessing,
        threshold=threshold,
        embedding_output=output,
        taps=tuple(taps),
        description=text("description"),
        licence=text("licence"),
    )


def training_record(card_path: str | Path) -> dict[str, Any]:
    """The ``[training]`` table of a model card ({} when there is none)."""
    try:
        data = tomllib.loads(Path(card_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    record = data.get("training", {})
    return record if isinstance(record, dict) else {}
