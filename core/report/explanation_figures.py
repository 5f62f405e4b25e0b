"""The flowables of one explanation in the comparisons section: the map panels with
their colour bar and reading, the per-pair faithfulness verdicts and margin charts,
the correspondence links, the components table and the layer-by-layer strip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from core import wording
from core.case.store import CaseFace, StoredExplanation
from core.explain.base import ExplanationResult, find_info
from core.explain.methods.components import FISWG_NAMES, component_table_rows
from core.explain.render import colour_map
from core.explain.render_correspondence import render_correspondence
from core.explain.stability import stability_sentence
from core.metrics.pair_faithfulness import (
    MapFaithfulness,
    PairFaithfulness,
    verdict_sentence,
)
from core.report import figures
from core.report.layout import TEXT_WIDTH, Styles, colour_bar, image, plain_table, table


def explanation(
    result: ExplanationResult,
    stored: StoredExplanation,
    faces: Sequence[CaseFace],
    styles: Styles,
    evidence: Mapping[str, np.ndarray],
    *,
    superseded: bool = False,
    check: PairFaithfulness | None = None,
    not_checked: str = "",
) -> list[Flowable]:
    kinds = [k for k in ("similarity", "dissimilarity") if k in result.probe.evidence]
    width = (TEXT_WIDTH - 6 * mm) / 2
    story: list[Flowable] = []
    title = f"{result.method_name} (explanation #{stored.id})"
    if superseded:
        title += " — of a SUPERSEDED comparison"
    heading = [styles.p(title, styles.h2)]
    info = find_info(result.method_id)
    for kind in kinds:
        reading = wording.READINGS[kind]
        own = info is not None and any(k == kind for k, _, _ in info.legends)
        if info is not None and info.magnitude_only:
            # not for / against: its own legend, or "where the score reacts"
            top, bottom = info.legend(kind)
            reading = f"{top}; {bottom}." if own else wording.MAGNITUDE_READING
        elif info is not None and own:
            top, bottom = info.legend(kind)
            reading += f" For this method: {top}; {bottom}."
        maps = [side.evidence[kind] for side in result.images]
        peak = figures.shared_peak(maps)
        panels = [
            figures.map_on_face(
                evidence[face.mark], face.bbox, evidence_map, kind, peak
            )
            for face, evidence_map in zip(faces, maps, strict=True)
        ]
        story.append(
            KeepTogether(
                [
                    *heading,  # the method's heading stays with its first panel
                    styles.p(f"<b>{kind.capitalize()} map</b> — {reading}"),
                    plain_table(
                        [[image(panels[0], width), image(panels[1], width)]],
                        [width + 3 * mm] * 2,
                    ),
                    colour_bar(kind, peak, TEXT_WIDTH, styles.fonts.regular),
                    *_verdicts(check, kind, not_checked, width, styles),
                ]
            )
        )
        heading = []
    if "dissimilarity" not in kinds:
        story.append(
            styles.p(
                "This method gives a similarity map only (no dissimilarity map).",
                styles.small,
            )
        )
    params = ", ".join(f"{k} = {v}" for k, v in result.params.items()) or "none"
    story.append(
        styles.p(
            f"Parameters: {styles.u(params)}; seed {result.seed}; computed in "
            f"{result.seconds:.1f} s on {result.device}; software "
            f"{result.software_version}; method algorithm version "
            f"{result.algorithm_version}; cache key {result.cache_key}."
            + (f" Notes: {styles.u('; '.join(result.notes))}." if result.notes else ""),
            styles.small,
        )
    )
    for side_maps in result.images:
        stability = stability_sentence(result.details, side_maps.side)
        if stability:
            story.append(styles.p(stability[0].upper() + stability[1:], styles.small))
    if check is not None:
        story.append(styles.p(_check_text(check, result), styles.small))
    return story


def _verdicts(
    check: PairFaithfulness | None,
    kind: str,
    not_checked: str,
    width: float,
    styles: Styles,
) -> list[Flowable]:
    """Under a map's two panels: each side's margin curve and verdict sentence."""
    verdicts = [None if check is None else check.get(side, kind) for side in SIDES]
    if all(v is None for v in verdicts):
        return [styles.p(styles.u(not_checked or wording.NOT_CHECKED))]
    charts, sentences = [], []
    for verdict in verdicts:
        if verdict is None:
            charts.append(Spacer(1, 1))
            sentences.append(styles.p(styles.u(not_checked), styles.small))
            continue
        charts.append(margin_chart(verdict, width, styles.fonts.regular))
        sentences.append(styles.p(styles.u(verdict_sentence(verdict)), styles.small))
    return [
        styles.p(
            "Faithfulness for this pair — the model's decision margin as the face is "
            "removed in the map's order (red), in random orders (grey, dashed: their "
            "mean) and in a fixed face-centre map's order (orange, dotted); the pair "
            "is accepted while the margin is above the black line.",
            styles.small,
        ),
        plain_table([charts, sentences], [width + 3 * mm] * 2),
    ]


SIDES = ("probe", "gallery")


def _check_text(check: PairFaithfulness, result: ExplanationResult) -> str:
    """How the stored faithfulness check was made (under the explanation)."""
    settings = check.settings
    margin = (
        f"{result.threshold.value:g} minus the Euclidean distance"
        if result.threshold.metric == "euclidean"
        else f"the cosine similarity minus {result.threshold.value:g}"
    )
    fill = (
        f"blurred (Gaussian, sigma {settings.blur_sigma:g} px)"
        if settings.fill == "blur"
        else "filled with the face's mean colour"
    )
    others = len(check.references)
    return (
        f"Faithfulness check: the aligned face was cut into {settings.grid} x "
        f"{settings.grid} regions, removed {settings.step_cells} at a time ({fill}); "
        f"decision margin = {margin}; compared with {settings.random_orders} random "
        f"orders (seed {settings.seed}), a fixed face-centre map and the maps of "
        f"{others} other face{'s' if others != 1 else ''} of the case; check version "
        f"{check.algorithm_version}."
    )


def margin_chart(verdict: MapFaithfulness, width: float, font: str) -> Drawing:
    """The margin curves of one map (red), the random mean (grey dashed), the
    face-centre map (orange dotted) and the threshold (black, margin 0)."""
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.shapes import Line

    height = 34 * mm
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = 30, 18
    plot.width, plot.height = width - 38, height - 24
    fractions = list(verdict.fractions)
    series = [
        (verdict.random_margins_mean, colors.HexColor("#787878"), (3, 2)),
        (verdict.prior_margins, colors.HexColor("#e68214"), (1, 1.5)),
        (verdict.margins, colors.HexColor("#c81e1e"), None),
    ]
    plot.data = [list(zip(fractions, ys, strict=True)) for ys, _, _ in series]
    for index, (_, colour, dash) in enumerate(series):
        plot.lines[index].strokeColor = colour
        plot.lines[index].strokeWidth = 1.4 if dash is None else 1.1
        if dash:
            plot.lines[index].strokeDashArray = dash
    values = [v for ys, _, _ in series for v in ys] + [0.0]
    low, high = min(values), max(values)
    pad = max(1e-3, 0.05 * (high - low))
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = low - pad, high + pad
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, 1
    plot.xValueAxis.valueStep = 0.25
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontName = font
        axis.labels.fontSize = 6
    drawing.add(plot)
    zero = (
        plot.y
        + (0 - plot.yValueAxis.valueMin)
        / (plot.yValueAxis.valueMax - plot.yValueAxis.valueMin)
        * plot.height
    )
    drawing.add(
        Line(plot.x, zero, plot.x + plot.width, zero, strokeColor=colors.black,
             strokeWidth=0.6)
    )  # fmt: skip
    drawing.add(String(plot.x + 2, zero + 2, "threshold", fontName=font, fontSize=5.5))
    drawing.add(
        String(30, 2, "fraction of the face removed", fontName=font, fontSize=6)
    )
    return drawing


def correspondence(
    result: ExplanationResult,
    aligned_chips: tuple[np.ndarray, np.ndarray] | None,
    styles: Styles,
) -> list[Flowable]:
    """The correspondence method's strongest region-to-region links: the figure on
    the aligned chips (needs the model's alignment) and the table."""
    links = result.details["links"]
    story: list[Flowable] = [
        styles.p(
            "<b>Region-to-region links</b> — each numbered spot pair joins a probe "
            "region and a gallery region whose pairing adds to the score (filled "
            "spot) or takes from it (ring); the share is the link's part of the "
            "whole score.",
        )
    ]
    if aligned_chips is not None:
        chips = [figures.scale_to(chip, 300) for chip in aligned_chips]
        scaled = [
            {
                **link,
                "probe_xy": [float(v) * chips[0][1] for v in link["probe_xy"]],
                "gallery_xy": [float(v) * chips[1][1] for v in link["gallery_xy"]],
            }
            for link in links
        ]
        figure = render_correspondence(chips[0][0], chips[1][0], scaled, gap=12)
        story.append(image(figure, TEXT_WIDTH * 0.7))
    else:
        story.append(
            styles.p(
                "The figure is drawn on the model's aligned faces; this report was "
                "made without the model, so only the table is given.",
                styles.small,
            )
        )
    rows = [
        [
            styles.p(h, styles.small)
            for h in ("#", "Probe region", "Gallery region", "Contribution", "Share")
        ]
    ]
    for link in links:
        share = link.get("share")
        rows.append(
            [
                styles.p(str(link["rank"]), styles.small),
                styles.p("row {}, column {}".format(*link["probe_cell"]), styles.small),
                styles.p(
                    "row {}, column {}".format(*link["gallery_cell"]), styles.small
                ),
                styles.p(f"{float(link['contribution']):+.4f}", styles.small),
                styles.p(
                    "-" if share is None else f"{100 * share:.1f} %", styles.small
                ),
            ]
        )
    story.append(table(rows, [10 * mm, 40 * mm, 40 * mm, 30 * mm, 25 * mm]))
    return [KeepTogether(story)]


def components_table(measured: Mapping[str, Any], styles: Styles) -> list[Flowable]:
    """The components method's measurements: each FISWG component hidden in the
    probe, the gallery and both, and the change of the decision margin."""
    rows = component_table_rows(measured)
    story: list[Flowable] = [
        styles.p(
            f"<b>Facial components</b> — change of the {measured['score']} when a "
            f"component is hidden (unhidden: {measured['margin']:+.4f}, "
            f"{measured['decision']}; fill: {measured['fill']}). Negative: the "
            "component supports the match; positive: it counts against it. Each "
            "figure is a "
            "measured intervention on this pair.",
        ),
        table(
            [[styles.p(cell, styles.small) for cell in row] for row in rows],
            [TEXT_WIDTH / len(rows[0])] * len(rows[0]),
        ),
    ]
    for name, sides in measured.get("not_located", {}).items():
        where = "; ".join(f"{side}: {reason}" for side, reason in sides.items())
        story.append(
            styles.p(f"{FISWG_NAMES[name]} not located ({where}).", styles.small)
        )
    story += [
        styles.p(f"Note: {note}", styles.small) for note in measured.get("notes", [])
    ]
    return story


def layer_strip(layers: Any, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [
        styles.p("Layer by layer (LIME on pooled features)", styles.h2),
        styles.p(wording.LAYER_MAPS_NOT_CHECKED, styles.small),
    ]
    cells, captions = [], []
    width = TEXT_WIDTH / max(1, len(layers.layers)) - 2
    for layer in layers.layers:
        values = np.clip(layer.lime_maps[0], 0, 1)
        rgb, _, _ = colour_map(values, False, peak=1.0)
        cells.append(image(rgb.astype(np.uint8), width))
        captions.append(styles.p(layer.name, styles.small))
    story.append(plain_table([cells, captions]))
    return story
