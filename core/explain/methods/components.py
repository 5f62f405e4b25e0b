"""Facial components: what hiding each FISWG component does to the model's decision.

An interventional explanation, faithful by construction: every number is a measured
change of the model's own decision score, not an estimate.  The components are the
ones of FISWG's "Facial Image Comparison Feature List for Morphological Analysis"
(Version 2.0, 2018.09.11) that the 68 landmarks locate - forehead, eyebrows, eyes,
cheeks, nose, ears (where visible), mouth, chin/jawline - built by
``core.ecloss.parts.component_masks`` on the aligned chip.  An ear counts only when
its side of the face is not turned away (its half-width, nose tip to jaw line, is at
least 0.6 of the other side's) and 75 % of its region lies inside the chip; the
table says why a component was not located.  A face without 68 landmarks (marked
by hand with 5 points) is refused with one line.

For each component (and, with ``pairs``, each pair of components) the component is
hidden in the probe only, in the gallery only, and in both, and the pair is scored
again.  The decision score is the model's margin to its threshold, positive when
the model accepts: for Euclidean models (dlib) ``threshold - distance`` (0.6 - d),
for cosine models ``cosine - threshold``.  Reported per component and condition:
the margin, its change from the unhidden pair, and whether the decision flips; per
pair the interaction, ``joint change - (change of the one + change of the other)``
(0 when the two components act independently; with the smoothed fills it also
holds the fill's own dependence on the neighbourhood, since next to a hidden
neighbour a component is filled from further away).  The table is in
``result.details["components"]``; ``component_table_lines`` renders it as text.

Maps: each side's component regions painted with the change measured when that
component is hidden in that side only (``paint = "side"``, the default) or in both
images (``paint = "both"``).  Similarity map: components whose hiding lowers the
margin, by how much (they support the match); dissimilarity map: components whose
hiding raises it (they count against the match); combined = similarity -
dissimilarity = minus the change.  Pixels outside every component are 0.

Occlusion fill (``fill``).  Default ``surround``: the component's pixels are
replaced by a smooth interpolation of the pixels *around* it (a normalised Gaussian
convolution of the rest of the chip, sigma = the component's half-thickness + 2
pixels).  None of the component's own pixels survive - so a change measures the
loss of the component's information, which is the question - and the patch keeps
the local skin tone and lighting, so the network is not shown a dark hole or
sharp edges, a feature no real face has that would change the score by itself.
The other fills, for comparison: ``blur`` (Gaussian blur of the component itself,
same sigma: keeps its colour and coarse shape, so it hides detail only), ``mean``
(the mean colour of the rest of the chip, a flat patch), ``model-mean`` (the
model's preprocessing mean, i.e. an input of zero after normalisation; for dlib a
grey).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from core.ecloss.parts import (
    FISWG_COMPONENTS,
    FISWG_NAMES,
    ComponentMasks,
    component_masks,
)
from core.errors import BadInputError
from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    FaceView,
    Param,
    register,
)
from core.models.base import Threshold

FILLS = ("surround", "blur", "mean", "model-mean")
CONDITIONS = ("probe", "gallery", "both")


# ---- the components of one face ------------------------------------------------------
def chip_landmarks(view: FaceView) -> np.ndarray:
    """The face's 68 landmarks in chip pixels; BadInputError when it has none."""
    record = view.face_record or {}
    marks = record.get("landmarks68")
    if marks is None or np.asarray(marks, float).shape != (68, 2):
        how = "marked by hand" if record.get("source") == "manual" else "5-point"
        raise BadInputError(
            f"the {view.side} face has no 68-point landmarks ({how} face), which the "
            "components method needs to locate eyes, nose, mouth and the other "
            "components: detect the face automatically to get them",
            view.path,
        )
    return view.transform.to_chip(np.asarray(marks, float))


def view_components(view: FaceView) -> ComponentMasks:
    """The located component masks of one side (with why others are not)."""
    try:
        located = component_masks(chip_landmarks(view), view.chip.shape[:2])
    except ValueError as error:  # degenerate landmarks (eyes at one place)
        raise BadInputError(
            f"the {view.side} face's landmarks cannot locate components: {error}",
            view.path,
        ) from None
    return located


# ---- occlusion -----------------------------------------------------------------------
def fill_sigma(mask: np.ndarray) -> float:
    """Half the thickness of the region (largest distance to its border) + 2 px."""
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    return float(inside.max()) + 2.0


def occlude(
    chip: np.ndarray,
    mask: np.ndarray,
    fill: str,
    model_mean: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """The chip (H, W, 3) as float32 with the ``mask`` pixels replaced (see module)."""
    image = np.asarray(chip, np.float32)
    if not mask.any():
        return image.copy()
    if fill == "mean":
        patch = np.broadcast_to(image[~mask].mean(0), image.shape)
    elif fill == "model-mean":
        patch = np.broadcast_to(np.asarray(model_mean, np.float32), image.shape)
    elif fill in ("surround", "blur"):
        sigma = fill_sigma(mask)

        def smooth(array: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(
                array, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT
            )

        if fill == "blur":
            patch = smooth(image)
        else:  # normalised convolution over the pixels outside the component
            outside = (~mask).astype(np.float32)
            weight = smooth(outside)[..., None]
            total = smooth(image * outside[..., None])
            mean = image[~mask].mean(0)
            tiny = 1e-3  # far inside a large region: fall back to the outside mean
            patch = (total + tiny * mean) / (weight + tiny)
    else:
        raise BadInputError(f"unknown fill '{fill}' (use {', '.join(FILLS)})")
    return np.where(mask[..., None], patch, image).astype(np.float32)


# ---- the decision score --------------------------------------------------------------
def margin(threshold: Threshold, first: torch.Tensor, second: torch.Tensor) -> float:
    """The model's signed distance to its decision: > 0 accepts (same person)."""
    a, b = first.double().flatten(), second.double().flatten()
    if threshold.metric == "euclidean":
        return float(threshold.value - (a - b).norm())
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=0)
    return float(cosine - threshold.value)


def accepts(threshold: Threshold, first: torch.Tensor, second: torch.Tensor) -> bool:
    a, b = first.double().flatten(), second.double().flatten()
    cosine = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    return threshold.accepts(cosine, float((a - b).norm()))


def score_name(threshold: Threshold) -> str:
    if threshold.metric == "euclidean":
        return f"distance margin ({threshold.value:g} - distance)"
    return f"cosine margin (cosine - {threshold.value:g})"


# ---- the explainer -------------------------------------------------------------------
@register
class Components(Explainer):
    info = ExplainerInfo(
        method_id="components",
        map_units=(
            "change of the model's decision margin when the component is hidden "
            "(similarity: the size of a drop, dissimilarity: of a rise)"
        ),
        display_name="Facial components (FISWG), hidden one by one",
        reference="fiswg-features",  # core.references
        citation=(
            "FISWG, Facial Image Comparison Feature List for Morphological "
            "Analysis, Version 2.0, 2018.09.11; occlusion analysis: M. D. Zeiler, "
            "R. Fergus, Visualizing and Understanding Convolutional Networks, "
            "ECCV 2014"
        ),
        description=(
            "Finds the facial components an examiner compares (forehead, eyebrows, "
            "eyes, cheeks, nose, ears where visible, mouth, chin and jawline) from "
            "the face's landmarks, hides each one - in the probe, in the gallery, "
            "and in both - and measures how far the model's score moves towards or "
            "away from its decision threshold, and whether the decision changes. "
            "Pairs of components are hidden together too, to show where they act "
            "jointly. Every number is a measurement on the model, not an estimate."
        ),
        kind="perturbation",
        has_dissimilarity=True,
        algorithm_version=1,
        params=(
            Param(
                "fill",
                str,
                "surround",
                "what replaces a hidden component: surround (smoothed from the "
                "pixels around it), blur (the component blurred), mean (the "
                "mean colour of the rest of the picture), model-mean (the model's "
                "mean input)",
                choices=FILLS,
            ),
            Param(
                "pairs",
                bool,
                True,
                "also hide every pair of components together (interactions)",
            ),
            Param(
                "paint",
                str,
                "side",
                "what each image's map shows: the change when the component is "
                "hidden in that image only (side) or in both images (both)",
                choices=("side", "both"),
            ),
        ),
    )

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        views = ctx.pair.sides
        located = [view_components(view) for view in views]
        names = [
            name
            for name in FISWG_COMPONENTS
            if any(name in faces.masks for faces in located)
        ]
        if not names:
            raise BadInputError("no facial component lies in either aligned chip")
        sets: list[tuple[str, ...]] = [(name,) for name in names]
        if ctx.params["pairs"]:
            sets += list(itertools.combinations(names, 2))
        fill = str(ctx.params["fill"])
        mean = ctx.model.preprocessing.mean

        # per side, the hidden sets that change its chip (a set none of whose
        # components is located on that side leaves it as it is)
        hidden: list[dict[tuple[str, ...], np.ndarray]] = []
        for view, faces in zip(views, located, strict=True):
            masks = faces.masks
            per_set = {}
            for components in sets:
                union = np.zeros(view.chip.shape[:2], bool)
                for name in components:
                    if name in masks:
                        union |= masks[name]
                if union.any():
                    per_set[components] = union
            hidden.append(per_set)
        ctx.start(sum(len(per_set) for per_set in hidden))
        embedded: list[dict[tuple[str, ...], torch.Tensor]] = []
        for view, per_set in zip(views, hidden, strict=True):
            keys = list(per_set)
            if not keys:
                embedded.append({})
                continue
            chips = np.stack(
                [occlude(view.chip, per_set[key], fill, mean) for key in keys]
            )

            def make_batch(start: int, stop: int, chips=chips) -> torch.Tensor:
                return ctx.model.prepare(chips[start:stop])

            vectors = ctx.embed_batches(
                len(keys), make_batch, f"{view.side} components"
            )
            embedded.append({key: vectors[index] for index, key in enumerate(keys)})

        threshold = ctx.threshold
        original = [e.detach().cpu() for e in ctx.embeddings]
        base = margin(threshold, *original)
        base_accepts = accepts(threshold, *original)

        def measure(components: tuple[str, ...], condition: str) -> dict[str, Any]:
            pair = list(original)
            for side, side_name in enumerate(("probe", "gallery")):
                if condition in (side_name, "both") and components in embedded[side]:
                    pair[side] = embedded[side][components]
            changed = any(
                condition in (side_name, "both") and components in embedded[side]
                for side, side_name in enumerate(("probe", "gallery"))
            )
            if not changed:
                return {"located": False}
            value = margin(threshold, *pair)
            return {
                "located": True,
                "margin": value,
                "change": value - base,
                "flips": accepts(threshold, *pair) != base_accepts,
            }

        results = {
            components: {
                condition: measure(components, condition) for condition in CONDITIONS
            }
            for components in sets
        }
        details = component_details(
            names, sets, results, located, views, base, base_accepts, threshold, fill
        )
        ctx.details["components"] = details
        paint = "both" if ctx.params["paint"] == "both" else None
        maps = []
        for side, (view, faces) in enumerate(zip(views, located, strict=True)):
            masks = faces.masks
            condition = paint or ("probe", "gallery")[side]
            change_map = np.zeros(view.chip.shape[:2], np.float32)
            for name in names:
                entry = results[(name,)][condition]
                if name in masks and entry["located"]:
                    change_map[masks[name]] = entry["change"]
            # hiding a supporting component lowers the margin (change < 0)
            maps.append(
                ChipMaps.from_parts(
                    np.maximum(-change_map, 0), np.maximum(change_map, 0)
                )
            )
        flips = [row["name"] for row in details["components"] if row["both"]["flips"]]
        if flips:
            ctx.notes.append(
                "hiding "
                + ", ".join(FISWG_NAMES[n].lower() for n in flips)
                + " in both images changes the model's decision"
            )
        return maps[0], maps[1]


def component_details(
    names: Sequence[str],
    sets: Sequence[tuple[str, ...]],
    results: Mapping[tuple[str, ...], Mapping[str, Mapping[str, Any]]],
    located: Sequence[ComponentMasks],
    views: Sequence[FaceView],
    base: float,
    base_accepts: bool,
    threshold: Threshold,
    fill: str,
) -> dict[str, Any]:
    """The JSON-ready table (see the module docstring)."""

    def entry(values: Mapping[str, Any]) -> dict[str, Any]:
        if not values["located"]:
            return {"located": False, "margin": None, "change": None, "flips": None}
        return {
            "located": True,
            "margin": float(values["margin"]),
            "change": float(values["change"]),
            "flips": bool(values["flips"]),
        }

    rows: list[dict[str, Any]] = []
    for name in names:
        areas = {
            view.side: (
                float(faces.masks[name].mean()) if name in faces.masks else None
            )
            for view, faces in zip(views, located, strict=True)
        }
        rows.append(
            {
                "name": name,
                "fiswg": FISWG_NAMES[name],
                "area_fraction": areas,
                **{c: entry(results[(name,)][c]) for c in CONDITIONS},
            }
        )
    # strongest effect first: the size of the change when hidden in both images
    rows.sort(key=lambda row: -abs(row["both"]["change"] or 0.0))
    single = {row["name"]: row for row in rows}
    pairs = []
    for components in sets:
        if len(components) != 2:
            continue
        item: dict[str, Any] = {"components": list(components)}
        for condition in CONDITIONS:
            values = entry(results[components][condition])
            parts = [single[n][condition]["change"] for n in components]
            if values["located"]:
                # interaction: joint change - sum of the single changes (0 when
                # the components act independently); a component not located on
                # this side contributes no change
                values["interaction"] = values["change"] - sum(
                    p for p in parts if p is not None
                )
            else:
                values["interaction"] = None
            item[condition] = values
        pairs.append(item)
    pairs.sort(key=lambda item: -abs(item["both"]["interaction"] or 0.0))
    not_located: dict[str, dict[str, str]] = {}
    notes = []
    for view, faces in zip(views, located, strict=True):
        for name, reason in faces.not_located.items():
            not_located.setdefault(name, {})[view.side] = reason
        notes += [f"{view.side}: {note}" for note in faces.notes]
    return {
        "score": score_name(threshold),
        "threshold": threshold.to_dict(),
        "margin": float(base),
        "decision": "accept" if base_accepts else "reject",
        "fill": fill,
        "components": rows,
        "pairs": pairs,
        "not_located": not_located,
        "notes": notes,
    }


# ---- plain text ---------------------------------------------------------------------
def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _decision(values: Mapping[str, Any]) -> str:
    if not values.get("located"):
        return "not located"
    return "flips" if values["flips"] else "unchanged"


def component_table_rows(details: Mapping[str, Any]) -> list[list[str]]:
    """The table as rows of strings, header first (for the CLI and the report).

    Components first (strongest effect first), then the pairs (strongest
    interaction first); changes of the margin, "-" where not located.
    """
    rows = [
        [
            "component",
            "hidden in probe",
            "hidden in gallery",
            "hidden in both",
            "interaction (both)",
            "decision (both)",
        ]
    ]
    for row in details["components"]:
        rows.append(
            [
                row["fiswg"],
                _number(row["probe"]["change"]),
                _number(row["gallery"]["change"]),
                _number(row["both"]["change"]),
                "",
                _decision(row["both"]),
            ]
        )
    for item in details.get("pairs", []):
        rows.append(
            [
                " + ".join(FISWG_NAMES[n] for n in item["components"]),
                _number(item["probe"]["change"]),
                _number(item["gallery"]["change"]),
                _number(item["both"]["change"]),
                _number(item["both"]["interaction"]),
                _decision(item["both"]),
            ]
        )
    return rows


def component_table_lines(details: Mapping[str, Any]) -> list[str]:
    """The table as aligned plain-text lines, with what the numbers mean."""
    rows = component_table_rows(details)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"Change of the {details['score']} when a component is hidden "
        f"(unhidden: {details['margin']:+.4f}, {details['decision']}; "
        "negative = the component supports the match, positive = it counts "
        f"against it; fill: {details['fill']})",
    ]
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for name, sides in details.get("not_located", {}).items():
        where = "; ".join(f"{side}: {reason}" for side, reason in sides.items())
        lines.append(f"{FISWG_NAMES[name]} not located ({where})")
    lines += [f"Note - {note}" for note in details.get("notes", [])]
    return lines
